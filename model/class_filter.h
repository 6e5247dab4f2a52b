// Which classes to keep, and a confidence threshold per class: ssddetect's `classes` and
// `class-thresholds`, ssd-train predict's --classes and --class-thresholds, which the output
// stage applies (class_thresholds(); PostprocessOptions::class_thresholds). LibTorch-free.
#pragma once

#include <cstddef>
#include <string>
#include <vector>


namespace ssd {

struct ClassFilter {
  std::string classes, thresholds;   // the texts it was made from
  std::vector<bool> keep;            // per label id; empty: every class
  std::vector<float> threshold;      // per label id, -1: the global threshold; empty: none given

  bool empty() const { return keep.empty() && threshold.empty(); }
  // The output stage's per-class thresholds (PostprocessOptions::class_thresholds) for a model
  // of num_classes: each class's own, global_threshold for a class without one, kDropped for a
  // class `classes` leaves out; empty when the filter is.
  static constexpr float kDropped = 2.0f;   // above every confidence
  std::vector<float> class_thresholds(float global_threshold, size_t num_classes) const;
};

// The filter of `classes` ("car, person": comma-separated labels; "" keeps every class) and
// `thresholds` ("person=0.6,car=0.25": label=confidence in [0, 1]) for a model with these
// labels. Throws ssd::Error naming what does not fit: an unknown class (with the model's
// classes), a malformed entry; classes_name and thresholds_name say where they came from.
ClassFilter parse_class_filter(const std::vector<std::string>& labels, const std::string& classes,
                               const std::string& thresholds,
                               const std::string& classes_name = "classes",
                               const std::string& thresholds_name = "class-thresholds");

// Throws ssd::Error unless `class_thresholds` (ClassFilter::class_thresholds(),
// PostprocessOptions::class_thresholds) is empty or holds C values (with per_image, or C for
// each of some images) for a model of C classes.
void check_class_thresholds(const std::vector<float>& class_thresholds, size_t num_classes,
                            bool per_image = false);

// Why `label` could not be named in `classes` or `class-thresholds` ("," separates the entries,
// "=" gives a threshold, and names are trimmed of spaces); empty if it can.
std::string unnameable_label(const std::string& label);

// "a, b, c": labels joined by a separator, for messages.
std::string join_labels(const std::vector<std::string>& labels, const char* separator = ", ");

}  // namespace ssd
