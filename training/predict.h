// `ssd-train predict`: runs a weights file on image files through the deployment path
// (ssd::Detector, the same code the GStreamer element uses) and draws the detections into PNG
// files, plus a detections.json listing them. LibTorch-free.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "evaluate.h"

namespace ssdtrain {

struct PredictSpec {
  std::string weights;
  std::vector<std::string> images;   // image files, and folders: their image files, by name
  std::string out_dir;
  std::string device = "cpu";
  float threshold = 0.3f;
  float nms_iou = 0.45f;
  bool class_agnostic_nms = false;   // NMS across classes (ssddetect's class-agnostic-nms)
  int max_detections = 100;
  std::string classes;            // keep only these labels ("a,b"; ssddetect's `classes`)
  std::string class_thresholds;   // "a=0.6,b=0.25" (ssddetect's `class-thresholds`; eval prints one)
  int threads = 0;
};

struct ImagePrediction {
  std::string image, output;           // input file, PNG written
  std::vector<ScoredBox> detections;   // pixels of the input image
};

// Throws ssd::Error for a bad weights file, an unwritable folder, or an input that is missing,
// not an image file, or a folder without any (all checked before anything is written), or an
// image that does not decode (detections.json then lists the images before it).
// `on_image`, when given, is called with each image's prediction once its picture is written (a
// caller printing them shows its progress as it goes).
std::vector<ImagePrediction> predict_images(const PredictSpec& spec,
                                            const std::function<void(const ImagePrediction&)>& on_image = {});

}  // namespace ssdtrain
