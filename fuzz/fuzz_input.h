// Shared by the fuzz targets: the loaders under test read files, so each input is written to a
// file of this process's own temporary folder first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace ssdfuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ssd-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the input to `path` (under scratch_dir() when relative) and returns the full path.
inline std::string write_input(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  const auto full = path.is_absolute() ? path : scratch_dir() / path;
  std::filesystem::create_directories(full.parent_path());
  std::ofstream(full, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  return full.string();
}

}  // namespace ssdfuzz
