// A fresh temporary directory per use, removed with its contents when it goes out of scope.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace ssdtest {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ssd_test") {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& rel) const { return (path_ / rel).string(); }
  std::string operator/(const std::string& rel) const { return str(rel); }

 private:
  std::filesystem::path path_;
};

}  // namespace ssdtest
