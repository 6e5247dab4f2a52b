// Detection metrics, LibTorch-free: Pascal VOC AP@0.5 (VOC2007 11-point and VOC2010+ all-point)
// and COCO-style AP (101-point interpolation over IoU 0.50:0.05:0.95, at most 100 detections per
// image and class), the latter reproducing pycocotools' COCOeval for bounding boxes, with its
// whole summary (AP by object size, average recall at 1, 10 and 100 detections per image; a
// ground truth's size is its COCO "area" when the data set gives one, else its box's, as
// BoxAnnotation::area says): ignored ground truths are treated as COCO's iscrowd regions (IoU = intersection / area
// of the detection, may absorb any number of detections, which then count neither way).
// In the VOC metrics an ignored ground truth is VOC's "difficult": normal IoU, a detection
// matched to it is neither a true nor a false positive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataset.h"

namespace ssdtrain {

struct ScoredBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // corners, same units as the ground truth
  int label = 0;                         // class index in [0, num_classes)
  float score = 0;
};

struct ClassAp {
  std::string name;
  int num_gt = 0;        // non-ignored ground truths
  int num_det = 0;       // detections (all of them, before COCO's per-image cap)
  bool valid = false;    // false when the class has no non-ignored ground truth (left out of means)
  double ap50_voc07 = 0; // VOC2007 11-point AP@0.5
  double ap50_voc = 0;   // VOC2010+ all-point AP@0.5
  double ap_coco = 0;    // COCO AP@[.5:.95]
  double ap50_coco = 0;  // COCO AP@0.5 (101-point)
  double ap75_coco = 0;  // COCO AP@0.75
  double recall50 = 0;   // COCO recall at IoU 0.5 (max 100 detections)
  // COCO by object size (area of the ground truth, and of unmatched detections, in the image's
  // pixels: small <= 32^2 < medium <= 96^2 < large), and average recall over IoU 0.50:0.95 at
  // 1, 10 and 100 detections per image; -1 where the class has no ground truth of that size.
  double ap_small = -1, ap_medium = -1, ap_large = -1;
  double ar1 = -1, ar10 = -1, ar100 = -1, ar_small = -1, ar_medium = -1, ar_large = -1;
  // The confidence threshold with the best F1 score at IoU 0.5 (COCO matching, 100 detections
  // per image): detections above it give this F1, precision and recall. It lies halfway between
  // the detection scores it separates (above MapOptions::score_floor); -1 when no detection matches.
  double best_f1 = -1, f1_threshold = -1, f1_precision = -1, f1_recall = -1;
  // The precision-recall curve at IoU 0.5 as COCO interpolates it: precision at recall 0, 0.01,
  // ... up to the highest recall reached (the mean over all 101 points, zeros past the end, is
  // ap50_coco).
  std::vector<double> pr50;
};

struct MapResult {
  std::vector<ClassAp> classes;
  int num_images = 0;
  // Means over valid classes (-1 when there is none, as pycocotools' stats: no ground truth but
  // ignored boxes).
  double map50_voc07 = -1, map50_voc = -1, map_coco = -1, map50_coco = -1, map75_coco = -1;
  // Detections above MapOptions::confusion_threshold matched to ground truth of any class (IoU >=
  // confusion_iou, most confident first, each to the unmatched ground truth it overlaps most):
  // confusion[true][detected] over num_classes + 1 rows and columns, the last being "none": row
  // C counts detections of nothing (false detections), column C ground truth nothing detected.
  // Ignored ground truth counts neither way.
  std::vector<std::vector<int>> confusion;
  double confusion_threshold = 0;
  // The rest of pycocotools' summary (COCOeval.stats[3:12]): means over the classes with ground
  // truth of that size; -1 when none has any.
  double map_small = -1, map_medium = -1, map_large = -1;
  double ar1 = -1, ar10 = -1, ar100 = -1, ar_small = -1, ar_medium = -1, ar_large = -1;
  // The detections had NMS across classes (eval --class-agnostic-nms): the best-F1 thresholds
  // are ssddetect's with class-agnostic-nms=true.
  bool class_agnostic_nms = false;
};

struct MapOptions {
  int max_dets = 100;   // COCO: per image and class
  // The score below which the detections were not produced (the detector's threshold): the
  // lowest confidence threshold the best-F1 search suggests lies halfway above it.
  double score_floor = 0;
  // The confusion matrix's detections (MapResult::confusion): those above this confidence (the
  // ssddetect default), matched at this IoU.
  double confusion_threshold = 0.3, confusion_iou = 0.5;
};

// The best-F1 thresholds of the classes that have one, as ssddetect's class-thresholds property
// takes them: "label=0.412,label=0.38" (3 decimals; empty when none).
std::string f1_class_thresholds(const MapResult& r);

// Accumulates images one at a time (ground truth and detections of the same image), then
// computes every metric. Boxes with x2 <= x1 or y2 <= y1 have area 0 and overlap nothing.
class MapEvaluator {
 public:
  explicit MapEvaluator(std::vector<std::string> labels, MapOptions options = {});
  // Throws std::invalid_argument for a label outside [0, num_classes) or a repeated image id.
  void add_image(int64_t image_id, const std::vector<BoxAnnotation>& ground_truth,
                 const std::vector<ScoredBox>& detections);
  MapResult compute() const;
  int num_classes() const { return static_cast<int>(labels_.size()); }

 private:
  struct Image {
    int64_t id;
    std::vector<BoxAnnotation> gts;
    std::vector<ScoredBox> dets;
  };
  std::vector<std::string> labels_;
  MapOptions options_;
  std::vector<Image> images_;
};

// The confusion matrix as a text table (true classes down, detected classes across); with more
// than kMaxConfusionTableClasses classes, the count of objects found and named right and the
// largest counts off the diagonal instead.
inline constexpr size_t kMaxConfusionTableClasses = 20;
std::string format_confusion(const MapResult& result);

// The per-class table ("class  #gt  #det  AP50(07)  AP50  AP  AP75") and the means, as text.
std::string format_map_table(const MapResult& result);

// Writes detections as a COCO results file, the list pycocotools' COCO.loadRes reads:
// [{"image_id", "category_id", "bbox": [x, y, w, h] (pixels), "score"}, ...], image ids and
// category ids from the data set. detections[i] belongs to dataset.images[i]; images past
// detections.size() are left out. Throws ssd::Error when the file cannot be written.
void write_coco_results(const Dataset& dataset,
                        const std::vector<std::vector<ScoredBox>>& detections,
                        const std::string& path);

// VOC AP from a precision/recall curve (exposed for tests): 11-point or all-point.
double voc_ap(const std::vector<double>& recall, const std::vector<double>& precision,
              bool eleven_point);

}  // namespace ssdtrain
