// Writing a file so that a reader (or a crash) never sees half of it: the bytes go to
// `<path>.tmp`, which is then renamed over `path`.
#pragma once

#include <filesystem>
#include <string>

namespace ssdtrain {

// Throws ssd::Error naming the file when it cannot be written.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace ssdtrain
