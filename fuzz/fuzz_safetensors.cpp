// A weights file (model/safetensors.h), as ssddetect's `model` property or ssd-train's
// --weights / --init names it: any bytes read or throw ssd::Error; nothing else may escape,
// crash, trip a sanitizer or allocate more than the file could describe.
#include <cstddef>
#include <cstdint>

#include "error.h"
#include "fuzz_input.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = ssdfuzz::write_input("weights.safetensors", data, size);
  try {
    const auto st = ssd::read_safetensors(path);
    size_t bytes = 0;
    for (const auto& [name, t] : st.tensors) bytes += t.numel() * t.element_size();
    if (bytes > size) __builtin_trap();
  } catch (const ssd::Error&) {
  }
  try {
    ssd::read_safetensors_metadata(path);
  } catch (const ssd::Error&) {
  }
  return 0;
}
