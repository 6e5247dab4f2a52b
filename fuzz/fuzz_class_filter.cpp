// ssddetect's `classes` and `class-thresholds` properties and ssd-train predict's --classes and
// --class-thresholds (model/class_filter.h), which users type: any text gives a filter that
// keeps only what it names, above what it says, or ssd::Error; nothing else may escape or crash.
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
    const float global = 0.3f, lowest = f.lowest(global);
    if (!(lowest <= global && lowest >= 0.f)) __builtin_trap();
    // Detections of every label (and one the model does not have) at several confidences.
    std::vector<ssd::Detection> dets;
    for (int label = -1; label <= static_cast<int>(labels.size()); ++label)
      for (float c : {0.f, 0.05f, 0.3f, 0.31f, 0.9f, 1.f}) {
        ssd::Detection d;
        d.label_id = label;
        d.confidence = c;
        dets.push_back(d);
      }
    const size_t before = dets.size();
    f.apply(global, &dets);
    if (dets.size() > before) __builtin_trap();
    for (const auto& d : dets) {
      const bool known = d.label_id >= 0 && d.label_id < static_cast<int>(labels.size());
      if (!f.keep.empty() && !(known && f.keep[d.label_id])) __builtin_trap();
      if (!f.threshold.empty()) {
        const float t = known && f.threshold[d.label_id] >= 0 ? f.threshold[d.label_id] : global;
        if (!(d.confidence > t)) __builtin_trap();
      }
    }
    if (f.empty() && dets.size() != before) __builtin_trap();
  } catch (const ssd::Error&) {
  }
  return 0;
}
