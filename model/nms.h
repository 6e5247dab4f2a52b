// Non-maximum suppression and the SSD output stage (decode, per-class NMS, threshold, top-k),
// batched and on the tensors' device.
#pragma once

#include <vector>

#include <torch/types.h>

namespace ssd {

struct Anchors;

// Greedy NMS: indices (int64) of kept boxes in decreasing score order. boxes (N, 4) corners.
// Same result as torchvision.ops.nms.
// On CUDA tensors this is nms_fixed_point; on the CPU a plain greedy sweep.
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold);

// The same result computed without host round trips (the CUDA path): greedy NMS is the unique
// fixed point of keep[j] = !any_{i<j} (keep[i] && IoU(i, j) > t), reached by Jacobi iteration.
// Runs on any device; exposed so the CPU tests exercise it.
// With groups (N) given, within each group, as batched_nms (its CUDA path).
torch::Tensor nms_fixed_point(const torch::Tensor& boxes, const torch::Tensor& scores,
                              double iou_threshold, const torch::Tensor& groups = {});

// NMS within each group id (e.g. class, or image * C + class), as torchvision's batched_nms.
torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                          const torch::Tensor& groups, double iou_threshold);

struct PostprocessOptions {
  double score_threshold = 0.3;
  // Per class id, that class's threshold in place of score_threshold (empty: score_threshold for
  // every class); above 1 drops the class (no score exceeds it). Applied before the candidates
  // are chosen, so a dropped class, or one held to a higher threshold, never takes the places of
  // the others (pre_nms_top_k, max_detections). C values for every image, or C for each of the
  // first images of the batch, one after the other (the images past them get no detections).
  std::vector<float> class_thresholds;
  double nms_iou = 0.45;
  // NMS across classes: a box suppresses every less confident box it overlaps by more than
  // nms_iou whatever their labels (torchvision's nms against its batched_nms; YOLO's agnostic
  // NMS), so that one object is not reported twice under two labels at one place. Off: per class,
  // the SSD lessons' NMS.
  bool class_agnostic = false;
  int max_detections = 100;   // per image, after NMS
  // Candidates per image entering NMS first. Only the work depends on it: where fewer than
  // max_detections of them survive and more pairs pass, postprocess() goes on through those (the
  // detections are always NMS over every passing pair, the most confident max_detections), and
  // postprocess_fixed() says the image has not converged.
  int pre_nms_top_k = 400;
};

// One image's detections, sorted by decreasing score, on the input tensors' device.
struct ImageDetections {
  torch::Tensor boxes;   // (n, 4) float, normalised x1, y1, x2, y2 (clamped to [0, 1])
  torch::Tensor scores;  // (n) float
  torch::Tensor labels;  // (n) int64 class ids in [0, C)
};

// cls_logits (B, A, C+1) (background last; scores are sigmoid of the first C),
// box_activations (B, A, 4).
std::vector<ImageDetections> postprocess(const torch::Tensor& cls_logits,
                                         const torch::Tensor& box_activations,
                                         const Anchors& anchors,
                                         const PostprocessOptions& options = {});

// The same detections with fixed shapes and no host synchronisation (the CUDA path; the tests
// run it on the CPU too). packed (B, M, 6) float rows = label, score, x1, y1, x2, y2 in
// decreasing score order, M = min(max_detections, candidates), rows past counts[b] zero;
// counts (B) int64. NMS runs `iterations` Jacobi steps of nms_fixed_point on each image's
// candidates; converged (B) bool says whether an image reached greedy NMS's fixed point with
// max_detections found or no pair passing past its candidates, and where one did not the rows
// are not final: call postprocess() on the same inputs (exact, but it synchronises). A dozen
// steps suffice unless suppression chains are longer than that.
struct FixedDetections {
  torch::Tensor packed, counts, converged;
};
FixedDetections postprocess_fixed(const torch::Tensor& cls_logits,
                                  const torch::Tensor& box_activations, const Anchors& anchors,
                                  const PostprocessOptions& options = {}, int iterations = 16);

}  // namespace ssd
