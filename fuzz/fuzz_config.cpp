// The architecture JSON a weights file carries in its metadata (model/config.h), which
// ssddetect and ssd-train read from files users hand them: any bytes give a configuration that
// the model can be built from, or ssd::Error; nothing else may escape or crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto c = ssd::SsdConfig::from_json_string(std::string(reinterpret_cast<const char*>(data), size));
    // An accepted configuration round-trips and has a sane anchor count.
    if (!(ssd::SsdConfig::from_json_string(c.to_json_string()) == c)) __builtin_trap();
    if (c.num_anchors() <= 0) __builtin_trap();
  } catch (const ssd::Error&) {
  }
  return 0;
}
