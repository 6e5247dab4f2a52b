#include "atomic_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "../model/error.h"

namespace ssdtrain {

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::error_code ec;
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();   // (a file system may report a full disk only when the file is closed)
    if (!f) {
      const int err = errno;   // why opening, writing or closing failed (ENOSPC, EACCES, EROFS...)
      std::filesystem::remove(tmp, ec);   // (a full disk: what part of it was written)
      throw ssd::Error("cannot write " + path.string() + (err ? std::string(": ") + std::strerror(err) : std::string()));
    }
  }
  // A file replaced keeps its permissions (an output the user had made 0600 became 0644, the
  // umask's, when replaced); a symbolic link is replaced itself, as before.
  if (const auto st = std::filesystem::symlink_status(path, ec); !ec && std::filesystem::is_regular_file(st))
    std::filesystem::permissions(tmp, st.permissions(), std::filesystem::perm_options::replace, ec);
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);   // no stray PATH.tmp beside a PATH that could not be replaced
    throw ssd::Error("cannot write " + path.string() + ": " + why);
  }
}

}  // namespace ssdtrain
