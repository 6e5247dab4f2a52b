#include "atomic_file.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "../model/error.h"

namespace ssdtrain {

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << bytes;
    f.flush();
    if (!f) throw ssd::Error("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw ssd::Error("cannot write " + path.string() + ": " + ec.message());
}

}  // namespace ssdtrain
