// Shared by the dataset fuzz targets (COCO, VOC): what a loader returns keeps the invariants
// training/dataset.h documents, or the process traps so libFuzzer and the replay report it.
#pragma once

#include "dataset.h"

namespace ssdfuzz {

inline void check_dataset(const ssdtrain::Dataset& ds) {
  for (const auto& im : ds.images)
    for (const auto& b : im.boxes)
      if (!(b.label >= 0 && b.label < static_cast<int>(ds.labels.size()) && b.x1 < b.x2 && b.y1 < b.y2 &&
            b.x1 >= 0 && b.y1 >= 0 && b.x2 <= im.width && b.y2 <= im.height))
        __builtin_trap();
}

}  // namespace ssdfuzz
