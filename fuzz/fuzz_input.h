// Shared by the fuzz targets: the loaders under test read files, so each input is written to a
// file of this process's own temporary folder first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace ssdfuzz {

// This process's temporary folder, removed with what it holds when the process exits (the replay
// tests left one in TMPDIR per run).
inline const std::filesystem::path& scratch_dir() {
  struct Scratch {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("ssd-fuzz-" + std::to_string(::getpid()));
    Scratch() { std::filesystem::create_directories(path); }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Scratch dir;
  return dir.path;
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
