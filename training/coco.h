// COCO-style detection JSON, exactly as fastai's pascal_train2007.json:
//   images      [{file_name, height, width, id}, ...]
//   annotations [{bbox: [x, y, w, h] (pixels), category_id, image_id, ignore?, iscrowd?}, ...]
//   categories  [{id, name}, ...]
// plus a folder holding the image files. Category ids map to contiguous label indices in the
// order of `categories` (pascal_train2007.json: aeroplane = 0 ... tvmonitor = 19).
//
// Boxes: corners are (x, y) - (x + w, y + h), the COCO / pycocotools convention (VOC's 1-based
// inclusive xmin..xmax is stored as x = xmin - 1, w = xmax - xmin + 1, so x + w = xmax).
// `ignore` or `iscrowd` != 0 marks BoxAnnotation::ignore (kept, but not a training target).
//
// Bad input throws ssdtrain::DataError naming the file and the entry:
//  - unreadable or malformed JSON, a missing or wrongly typed field;
//  - an image entry whose file does not exist (when check_files), duplicate image ids;
//  - an annotation whose category_id is not in categories or image_id not in images;
//  - a negative width/height, or a box wholly outside its image;
//  - an empty `annotations` list (a detection dataset with no boxes at all).
// Documented skips, counted in LoadReport: a box with zero area after clipping to the image
// (degenerate boxes appear in real datasets); boxes partly outside the image are clipped.
// Images without annotations are kept as negatives unless skip_unannotated.
#pragma once

#include <string>

#include "dataset.h"

namespace ssdtrain {

struct CocoOptions {
  // Folder the file_name entries are relative to; empty: each image beside the JSON file, or in
  // its images/ subfolder when it is there and not beside the JSON file (ssd-train synth's
  // layout).
  std::string image_dir;
  bool check_files = true;        // each image file must exist (a cheap stat, no decoding)
  bool skip_unannotated = false;  // drop images with no annotation (counted in the report)
};

Dataset load_coco(const std::string& json_path, const CocoOptions& options = {},
                  LoadReport* report = nullptr);

// The `info.description` write_coco writes (how synth recognises a set of its own).
inline constexpr const char* kCocoWriterDescription = "written by ssd-train";

// Writes `dataset` as COCO JSON (the same fields load_coco reads, plus area/iscrowd/ignore/id).
// file_name = each image's path relative to image_dir (which must contain them).
// Category ids are label index + 1. Throws DataError when the file cannot be written.
void write_coco(const Dataset& dataset, const std::string& json_path,
                const std::string& image_dir);

}  // namespace ssdtrain
