#include "default_model.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace ssd {
namespace {

namespace fs = std::filesystem;

// The file of the binary this code is linked into: a shared library (the plugin, loaded by its
// path) or the executable.
fs::path this_binary() {
  Dl_info info{};
  link_map* map = nullptr;
  if (::dladdr1(reinterpret_cast<void*>(&default_model_path), &info, reinterpret_cast<void**>(&map),
                RTLD_DL_LINKMAP) &&
      map && map->l_name && map->l_name[0] == '/')
    return map->l_name;
  std::error_code ec;   // the executable (whose link map has no name)
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe;
}

// The build tree's copy of the default model (models/meson.build puts it there) when `binary`
// lies in a meson build tree (a folder above it holds meson-private/), else empty.
std::string build_tree_model(const fs::path& binary) {
  std::error_code ec;
  for (fs::path dir = binary.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "meson-private", ec)) {
      const fs::path model = dir / "models" / SSD_DEFAULT_MODEL_NAME;
      return fs::exists(model, ec) ? model.string() : std::string();
    }
    if (dir == dir.root_path()) break;
  }
  return {};
}

}  // namespace

std::string default_model_path_for(const std::string& binary) {
  const std::string from_build_tree = build_tree_model(binary);
  return from_build_tree.empty() ? SSD_INSTALLED_MODEL : from_build_tree;
}

std::string default_model_path() {
  if (const char* env = std::getenv("SSD_DEFAULT_MODEL"); env && *env) return env;
  static const std::string path = default_model_path_for(this_binary().string());
  return path;
}

}  // namespace ssd
