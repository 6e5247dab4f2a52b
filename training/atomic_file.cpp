#include "atomic_file.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "../model/error.h"

namespace ssdtrain {

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::error_code ec;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << bytes;
    f.flush();
    if (!f) {
      f.close();
      std::filesystem::remove(tmp, ec);   // (a full disk: what part of it was written)
      throw ssd::Error("cannot write " + tmp.string());
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);   // no stray PATH.tmp beside a PATH that could not be replaced
    throw ssd::Error("cannot write " + path.string() + ": " + why);
  }
}

}  // namespace ssdtrain
