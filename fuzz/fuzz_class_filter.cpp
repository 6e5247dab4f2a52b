// ssddetect's `classes` and `class-thresholds` properties and ssd-train predict's --classes and
// --class-thresholds (model/class_filter.h), which users type: any text gives a filter that
// keeps only what it names, above what it says (per-class thresholds), or ssd::Error; nothing else may escape or crash.
// The input is the classes text, a NUL byte, then the thresholds text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "class_filter.h"
#include "error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string classes = input.substr(0, nul);
  const std::string thresholds = nul == std::string::npos ? "" : input.substr(nul + 1);
  static const std::vector<std::string> labels{"cat", "dog", "traffic light", "a=b", ""};
  try {
    const ssd::ClassFilter f = ssd::parse_class_filter(labels, classes, thresholds);
    if (!f.keep.empty() && f.keep.size() != labels.size()) __builtin_trap();
    if (!f.threshold.empty() && f.threshold.size() != labels.size()) __builtin_trap();
    for (float t : f.threshold)
      if (!(t == -1.f || (t >= 0.f && t <= 1.f))) __builtin_trap();
    const float global = 0.3f;
    // The output stage's per-class thresholds: one per label, each the class's own, the global
    // one, or above every confidence for a class left out; none for an empty filter.
    const std::vector<float> t = f.class_thresholds(global, labels.size());
    if (f.empty() != t.empty()) __builtin_trap();
    if (!t.empty() && t.size() != labels.size()) __builtin_trap();
    for (size_t c = 0; c < t.size(); ++c) {
      if (!f.keep.empty() && !f.keep[c]) {
        if (!(t[c] > 1.f)) __builtin_trap();
      } else if (!(t[c] == (!f.threshold.empty() && f.threshold[c] >= 0 ? f.threshold[c] : global))) {
        __builtin_trap();
      }
      if (!(t[c] >= 0.f)) __builtin_trap();
    }
  } catch (const ssd::Error&) {
  }
  return 0;
}
