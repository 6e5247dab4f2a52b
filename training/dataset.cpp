#include "dataset.h"

#include <algorithm>
#include <cmath>

namespace ssdtrain {

size_t Dataset::num_boxes(bool include_ignored) const {
  size_t n = 0;
  for (const auto& im : images)
    for (const auto& b : im.boxes)
      if (include_ignored || !b.ignore) ++n;
  return n;
}

bool clip_box_to_image(BoxAnnotation& box, int width, int height) {
  if (!std::isfinite(box.x1) || !std::isfinite(box.y1) || !std::isfinite(box.x2) ||
      !std::isfinite(box.y2))
    return false;
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  box.x1 = std::clamp(box.x1, 0.0f, w);
  box.x2 = std::clamp(box.x2, 0.0f, w);
  box.y1 = std::clamp(box.y1, 0.0f, h);
  box.y2 = std::clamp(box.y2, 0.0f, h);
  return box.x2 > box.x1 && box.y2 > box.y1;
}

}  // namespace ssdtrain
