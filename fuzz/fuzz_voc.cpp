// One Pascal VOC annotation file given to ssd-train (training/voc.h): any bytes load or throw
// DataError; nothing else may escape, crash or trip a sanitizer.
#include <cstddef>
#include <cstdint>

#include "fuzz_dataset.h"
#include "fuzz_input.h"
#include "voc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ssdfuzz::write_input("voc/Annotations/000001.xml", data, size);
  ssdtrain::VocOptions options;
  options.split = "";   // every Annotations/*.xml
  options.check_files = false;
  try {
    ssdtrain::LoadReport report;
    const auto ds = ssdtrain::load_voc((ssdfuzz::scratch_dir() / "voc").string(), options, &report);
    ssdfuzz::check_dataset(ds);
  } catch (const ssdtrain::DataError&) {
  }
  return 0;
}
