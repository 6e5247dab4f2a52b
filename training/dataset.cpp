#include "dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "text.h"

namespace ssdtrain {

size_t Dataset::num_boxes(bool include_ignored) const {
  size_t n = 0;
  for (const auto& im : images)
    for (const auto& b : im.boxes)
      if (include_ignored || !b.ignore) ++n;
  return n;
}

void use_labels(Dataset& ds, const std::vector<std::string>& labels, const std::string& source) {
  if (ds.labels == labels) return;
  std::vector<int> to(ds.labels.size(), -1);
  for (size_t i = 0; i < ds.labels.size(); ++i) {
    const auto it = std::find(labels.begin(), labels.end(), ds.labels[i]);
    if (it != labels.end()) to[i] = static_cast<int>(it - labels.begin());
  }
  std::vector<size_t> unknown(ds.labels.size(), 0);
  for (const auto& im : ds.images)
    for (const auto& b : im.boxes)
      if (b.label >= 0 && static_cast<size_t>(b.label) < to.size() && to[static_cast<size_t>(b.label)] < 0)
        ++unknown[static_cast<size_t>(b.label)];
  for (size_t i = 0; i < unknown.size(); ++i) {
    if (unknown[i] == 0) continue;
    throw DataError(source + ": class '" + ds.labels[i] + "' (" + std::to_string(unknown[i]) +
                    " boxes) is not among the classes " + ssd::join_list(labels));
  }
  if (!ds.category_ids.empty()) {
    int64_t next = *std::max_element(ds.category_ids.begin(), ds.category_ids.end()) + 1;
    // (A class the data set lacks gets an id of its own; any id, negative too, is a category's.)
    std::vector<std::optional<int64_t>> ids(labels.size());
    for (size_t i = 0; i < to.size(); ++i)
      if (to[i] >= 0) ids[static_cast<size_t>(to[i])] = ds.category_ids[i];
    ds.category_ids.clear();
    for (const auto& id : ids) ds.category_ids.push_back(id ? *id : next++);
  }
  for (auto& im : ds.images)
    for (auto& b : im.boxes) b.label = to[static_cast<size_t>(b.label)];
  ds.labels = labels;
}

void OutsideNames::check(const std::string& name, const std::string& entry) {
  const std::filesystem::path p = std::filesystem::path(name).lexically_normal();
  if (!p.is_absolute() && (p.empty() || *p.begin() != "..")) return;
  if (count_++ == 0) first_ = entry + " '" + name + "'";
}

std::string OutsideNames::warning(const std::string& source, const std::string& folder) const {
  if (count_ == 0) return {};
  return source + ": " + std::to_string(count_) + " image file name(s) lead outside " + folder + " (the first: " + first_ +
         "): they are read where they point; a data set from elsewhere can name any picture you may read";
}

float pixel_value(double v) { return static_cast<float>(std::clamp(v, -1e30, 1e30)); }

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
