// The cross-checks against Python code nobody here wrote (torchvision, pycocotools, safetensors,
// onnxruntime) run the Python meson gives them in SSD_PYTHON: the project's .venv, which
// scripts/setup.sh makes (Debian's PyTorch and torchvision, plus the PyPI packages), else Debian's
// /usr/bin/python3, else python3 from PATH. A check starts with SSD_NEED_PYTHON(python, modules):
// where that Python lacks one of the modules (a build from a release tarball without the .venv,
// say), the check is skipped naming what to install, unless SSD_REQUIRE_REFERENCES is set
// (scripts/test.sh, the README's test command and CI's, sets it): then it fails.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace ssdtest {

// The Python of SSD_PYTHON ("python3" when unset).
inline std::string test_python() {
  const char* p = std::getenv("SSD_PYTHON");
  return p && *p ? p : "python3";
}

// Those of `modules` (top-level names, space separated) that `python` cannot import, space
// separated; empty when it has them all. Asked once per Python and list.
inline std::string missing_python_modules(const std::string& python, const std::string& modules) {
  static std::mutex mu;
  static std::map<std::string, std::string> known;
  std::lock_guard<std::mutex> lock(mu);
  const std::string key = python + "\n" + modules;
  if (const auto it = known.find(key); it != known.end()) return it->second;
  const std::string cmd = "\"" + python +
                          "\" -c 'import importlib.util as u, sys; "
                          "print(\" \".join(m for m in sys.argv[1:] if u.find_spec(m) is None))' " +
                          modules + " 2>/dev/null";
  std::string out;
  int status = -1;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    status = ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (status != 0) out = modules + " (" + python + " does not run)";
  return known[key] = out;
}

inline bool references_required() {
  const char* r = std::getenv("SSD_REQUIRE_REFERENCES");
  return r && *r && std::string(r) != "0";
}

}  // namespace ssdtest

// Skips the test (fails it under SSD_REQUIRE_REFERENCES) when `python` lacks one of `modules`.
#define SSD_NEED_PYTHON(python, modules)                                                          \
  do {                                                                                           \
    const std::string ssd_missing_ = ::ssdtest::missing_python_modules((python), (modules));     \
    if (!ssd_missing_.empty()) {                                                                 \
      if (::ssdtest::references_required())                                                      \
        FAIL() << (python) << " lacks the Python modules " << ssd_missing_                      \
               << " this cross-check needs (bash scripts/setup.sh installs them in .venv)";      \
      GTEST_SKIP() << (python) << " lacks the Python modules " << ssd_missing_                  \
                   << " this cross-check needs (bash scripts/setup.sh installs them in .venv)";  \
    }                                                                                            \
  } while (0)
