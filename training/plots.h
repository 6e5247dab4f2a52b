// PNG plots for ssd-train, drawn with OpenCV (no plotting library): line charts (loss curves,
// mAP, the learning-rate finder) and images with boxes (predictions beside ground truth).
// LibTorch-free.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "dataset.h"
#include "evaluate.h"

namespace ssdtrain {

struct Series {
  std::string name;
  std::vector<double> x, y;   // same length; non-finite points are skipped
  cv::Scalar color{200, 80, 30};  // BGR
  bool markers = false;           // draw a dot at each point
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false;              // x values must be > 0 (others are skipped)
  std::vector<double> vlines;      // vertical markers (e.g. the suggested learning rate)
  std::vector<std::string> vline_labels;   // their labels, at the top (as many as there are)
  // Top of the y axis (NaN: the data's largest value): a spike (a diverging loss) above it is
  // cut off instead of flattening the rest of the plot.
  double y_top = std::numeric_limits<double>::quiet_NaN();
  bool legend_bottom_left = false;   // else top right
  int width = 800, height = 500;
};

// Renders to an image (CV_8UC3). Empty series draw an empty, labelled frame.
cv::Mat render_line_plot(const LinePlot& plot);

// "Nice" axis ticks covering [lo, hi] (about `target` of them): 1, 2, 5 x 10^k steps.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// The precision-recall curves at IoU 0.5 of the classes with ground truth (MapResult's pr50),
// one line per class, its AP@0.5 in the legend.
cv::Mat render_pr_curves(const MapResult& map);

// The confusion matrix (MapResult::confusion) as a grid: true classes down, detected classes
// across, "none" last; each cell shows its count, shaded by its share of the row.
cv::Mat render_confusion(const MapResult& map);

// A distinct colour for class `label` (BGR).
cv::Scalar class_color(int label);

// Draws boxes on a copy of `image` (BGR). Boxes are in the image's pixel coordinates.
// Ground truth: thin class-coloured boxes (ignored ones dashed grey) with the class name;
// detections: thicker boxes labelled "name 0.87".
cv::Mat draw_boxes(const cv::Mat& image, const std::vector<std::string>& labels,
                   const std::vector<BoxAnnotation>& ground_truth,
                   const std::vector<ScoredBox>& detections);

// Lays out pairs (left: ground truth, right: prediction) in a grid of `columns` pairs per row,
// each panel scaled to `panel` pixels on its longer side, with titles above.
cv::Mat make_pair_grid(const std::vector<cv::Mat>& left, const std::vector<cv::Mat>& right,
                       int columns = 2, int panel = 256,
                       const std::string& left_title = "ground truth",
                       const std::string& right_title = "prediction");

}  // namespace ssdtrain
