// Pascal VOC folders: <root>/Annotations/<id>.xml, <root>/JPEGImages/<file>,
// <root>/ImageSets/Main/<split>.txt (one image id per line), e.g. root = VOCdevkit/VOC2007.
// Parsed with pugixml.
//
// Boxes: VOC's 1-based inclusive pixel bounds xmin..xmax become corners
// x1 = xmin - 1, x2 = xmax (the same numbers fastai's pascal_train2007.json holds).
// <difficult>1</difficult> marks BoxAnnotation::ignore.
// Classes: VocOptions::labels when given (an unknown <name> is a DataError); otherwise the 20
// VOC class names (in the usual order, aeroplane = 0 ... tvmonitor = 19) when every name found
// is one of them, else the sorted set of names found.
//
// Bad input throws ssdtrain::DataError naming the file and the entry: a missing split file,
// annotation or image file (when check_files), malformed XML, a missing/non-numeric field, a
// box wholly outside the image or with xmax < xmin. Documented skips (LoadReport): a box with
// zero area after clipping. An empty split list is an error.
#pragma once

#include <string>
#include <vector>

#include "dataset.h"

namespace ssdtrain {

struct VocOptions {
  // ImageSets/Main/<split>.txt; empty: every Annotations/*.xml, sorted by name.
  std::string split = "train";
  std::vector<std::string> labels;  // empty: the VOC 20, or those found (see above)
  bool check_files = true;          // each JPEGImages file must exist (no decoding)
  bool skip_unannotated = false;    // drop images with no box (counted in the report)
};

// The 20 Pascal VOC class names, in the usual (alphabetical) order.
const std::vector<std::string>& voc_class_names();

Dataset load_voc(const std::string& root, const VocOptions& options = {},
                 LoadReport* report = nullptr);

}  // namespace ssdtrain
