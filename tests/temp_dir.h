// A fresh temporary directory per use, in TMPDIR, removed with its contents when it goes out of
// scope; every test suite's. The tests paste these paths into shell commands and gst-launch
// descriptions unquoted, so a TMPDIR whose path holds a space or a character a shell or the
// launch syntax reads (quotes, $, !, ;...) is refused, naming it: it wrote files beside TMPDIR
// ("/tmp/my dir" made "/tmp/my") and stopped the element tests half way.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ssdtest {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ssd_test") {
    static std::atomic<int> counter{0};
    std::filesystem::path base;
    try {
      base = std::filesystem::temp_directory_path();
    } catch (const std::filesystem::filesystem_error& e) {
      const char* tmpdir = std::getenv("TMPDIR");
      throw std::runtime_error(std::string("TMPDIR ") + (tmpdir ? tmpdir : "(unset)") + ": " + e.code().message());
    }
    if (base.string().find_first_of(" \t\n\"'`$!&|;<>()*?[]{}\\#~") != std::string::npos)
      throw std::runtime_error("TMPDIR " + base.string() +
                               ": the tests write their files under it and name them in shell and gst-launch "
                               "command lines; use a path without spaces, quotes or shell characters");
    path_ = base / (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
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
