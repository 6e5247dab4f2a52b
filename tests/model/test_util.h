// Helpers shared by the model tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "../python_reference.h"
#include "../temp_dir.h"
#include "config.h"

namespace ssdtest {

// A fresh temporary directory (TempDir: in TMPDIR, removed with its files when it goes out of
// scope; these were left behind, 19 MB a run) used as a path.
class TestDir : public TempDir {
 public:
  using TempDir::TempDir;
  operator const std::filesystem::path&() const { return path(); }
  std::filesystem::path operator/(const std::filesystem::path& rel) const { return path() / rel; }
  std::string string() const { return path().string(); }
};

inline TestDir temp_dir(const std::string& name) { return TestDir("ssd-test-" + name); }

inline ssd::SsdConfig tiny_config() {
  ssd::SsdConfig c;
  c.body = "tiny";
  c.head_channels = 32;
  c.labels = {"circle", "square", "triangle"};
  return c;
}

inline std::string source_dir() {
  const char* p = std::getenv("SSD_SOURCE_DIR");
  return p && *p ? p : ".";
}

// Expects `fn` to throw an exception whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception thrown";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg;
  }
}

}  // namespace ssdtest
