// Detection datasets for ssd-train: COCO-style JSON, Pascal VOC XML folders, and the synthetic
// shapes generator. LibTorch-free (OpenCV + nlohmann-json) so it compiles fast.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../model/error.h"  // ssd::Error, header-only

namespace ssdtrain {

// Bad dataset input: missing/unreadable files, malformed JSON/XML, unknown categories, boxes
// outside their image... The message names the file and the entry, e.g.
// "data/train.json: annotations[17]: category_id 99 is not in categories".
// Derives from ssd::Error so one catch covers the model library and the data side.
class DataError : public ssd::Error {
 public:
  using ssd::Error::Error;
};

struct BoxAnnotation {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels in the original image, corners
  int label = 0;                         // index into Dataset::labels
  bool ignore = false;                   // COCO ignore/iscrowd, VOC difficult: not a target,
                                         // not counted as a false positive in eval
  // The object's area in pixels as a COCO file gives it ("area": a segment's area for COCO's own
  // data), which COCO evaluation sorts into small/medium/large; -1: the box's. Evaluation only
  // (augmentation leaves it as it was).
  float area = -1;
};

struct ImageRecord {
  std::string path;   // absolute or relative to the working directory
  int width = 0, height = 0;
  int64_t id = 0;
  std::vector<BoxAnnotation> boxes;
};

struct Dataset {
  std::vector<std::string> labels;   // class names, background excluded
  std::vector<ImageRecord> images;
  // COCO category id of each label (load_coco); empty: label index + 1 (VOC, synthetic data,
  // and what write_coco writes).
  std::vector<int64_t> category_ids;

  size_t num_boxes(bool include_ignored = true) const;
  int64_t category_id(int label) const {
    return category_ids.empty() ? label + 1 : category_ids.at(static_cast<size_t>(label));
  }
};

// What a loader skipped (documented skips), for the user to read.
struct LoadReport {
  int skipped_images = 0;        // e.g. images with no usable annotation when requested
  int skipped_annotations = 0;   // e.g. zero-area boxes
  std::vector<std::string> warnings;   // one line per skip, naming the file and the entry

  // Records a documented skip of one annotation / image, with its reason.
  void skip_annotation(std::string why) {
    ++skipped_annotations;
    warnings.push_back(std::move(why));
  }
  void skip_image(std::string why) {
    ++skipped_images;
    warnings.push_back(std::move(why));
  }
};

// Box sanitising shared by the COCO and VOC readers. Corners in pixels; the box is clipped to
// [0, width] x [0, height]. Returns false when nothing of it is left inside the image with a
// positive area (the caller decides: DataError or documented skip).
bool clip_box_to_image(BoxAnnotation& box, int width, int height);

// Image file names (COCO's file_name, VOC's <filename>) that lead outside their data set's image
// folder: an absolute path, or one whose "..", lexically, climbs out of it. They are read where
// they point (data sets in subfolders beside the images use them), so a data set from elsewhere
// could make ssd-train read, train on and draw any picture this user may read: counted, and the
// loaders warn once, naming the first.
class OutsideNames {
 public:
  void check(const std::string& name, const std::string& entry);   // entry: "images[3]", a file
  // "<source>: N image file name(s) lead outside <folder> (the first: <entry> '<name>'): ...", or "".
  std::string warning(const std::string& source, const std::string& folder) const;

 private:
  size_t count_ = 0;
  std::string first_;
};

// A file's coordinate (or area) in pixels as the float a box holds: beyond +-1e30, far past any
// image yet within float's range, it is held there, so that a huge value (1e300) is clipped to
// the image as any other instead of turning infinite (a cast out of range is undefined).
float pixel_value(double v);

// Re-indexes ds's boxes to `labels` by class name, so that a data set whose classes come in
// another order, or lack some (a VOC folder's classes are those it names, sorted), lines up
// with a model's or a training set's classes. COCO category ids go with their names; a label
// the data set lacks gets an id above its largest. A class of ds with boxes that `labels` lacks
// is a DataError naming `source`, the class and how many boxes it has.
void use_labels(Dataset& ds, const std::vector<std::string>& labels, const std::string& source);

}  // namespace ssdtrain
