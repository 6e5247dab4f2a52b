// Helpers shared by the model tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "../python_reference.h"
#include "config.h"

namespace ssdtest {

// A fresh temporary directory for one test.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ssd-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

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
