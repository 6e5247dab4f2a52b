#include "default_model.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "text.h"

namespace ssd {
namespace {

namespace fs = std::filesystem;

// The file mapped at `address`, as the kernel names it in /proc/self/maps (absolute), or empty.
fs::path mapped_file(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  for (std::string line; std::getline(maps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || a < lo || a >= hi) continue;
    const auto slash = line.find('/');
    if (slash == std::string::npos) return {};
    std::string path = line.substr(slash);
    const std::string deleted = " (deleted)";
    if (ends_with(path, deleted)) path.resize(path.size() - deleted.size());
    return path;
  }
  return {};
}

// The file of the binary this code is linked into: a shared library (the plugin) or the
// executable. The kernel's mapping names it absolutely, also where GStreamer opened the plugin
// by a relative path (GST_PLUGIN_PATH=build/gst-plugin: the link map then holds that relative
// name, and the executable was taken for it: a build tree's plugin chose the installed model,
// an installed one run by a build tree's program the build tree's).
fs::path this_binary() {
  if (fs::path p = mapped_file(reinterpret_cast<const void*>(&default_model_path)); !p.empty()) return p;
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
