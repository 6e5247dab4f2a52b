// COCO-style JSON given to ssd-train (training/coco.h): any bytes load or throw DataError;
// nothing else may escape, crash or trip a sanitizer.
#include <cstddef>
#include <cstdint>

#include "coco.h"
#include "fuzz_dataset.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = ssdfuzz::write_input("coco/train.json", data, size);
  ssdtrain::CocoOptions options;
  options.check_files = false;
  try {
    ssdtrain::LoadReport report;
    const auto ds = ssdtrain::load_coco(path, options, &report);
    ssdfuzz::check_dataset(ds);
  } catch (const ssdtrain::DataError&) {
  }
  return 0;
}
