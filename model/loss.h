// SSD loss from the lesson: L1 on matched boxes + focal loss as BCE over non-background classes.
#pragma once

#include <torch/types.h>

namespace ssd {

struct Anchors;

enum class ClassLoss { Focal, BCE };

struct LossOptions {
  double match_threshold = 0.4;
  ClassLoss class_loss = ClassLoss::Focal;
  double alpha = 0.25;
  double gamma = 2.0;
  // false: ssd_loss does not use its ignore_boxes (anchors in them are background, as in the
  // lessons, which left such boxes out).
  bool mask_ignored = true;
};

struct LossParts {
  torch::Tensor loc;    // scalar, summed over the batch
  torch::Tensor cls;    // scalar, summed over the batch
  torch::Tensor total;  // loc + cls
};

// Binary cross-entropy with logits, summed, with the focal weight
// alpha_t * (1 - p_t)^gamma when focal is true. logits and targets (N, C), targets in {0, 1}.
// `weight`, when defined, multiplies each element's term before the sum (it broadcasts: (N, 1)
// weighs rows).
torch::Tensor focal_bce_sum(const torch::Tensor& logits, const torch::Tensor& targets,
                            bool focal, double alpha, double gamma,
                            const torch::Tensor& weight = {});

// cls_logits (B, A, C+1) (background last), box_activations (B, A, 4), gt_boxes (B, G, 4)
// normalised corners, gt_labels (B, G) int64 in [0, C), gt_valid (B, G) bool.
// Per image, as the lesson's ssd_1_loss: loc = mean |box - gt| over positive anchors,
// cls = sum(BCE over the C non-background classes) / C; both summed over the batch.
// ignore_boxes (B, I, 4), normalised corners, when defined: regions marked ignore (COCO
// ignore/iscrowd, VOC difficult), padded with all-zero rows. An anchor that matched no ground
// truth and lies more than match_threshold inside one of them (box_ioa: intersection over the
// anchor's area, as COCO scores detections against crowd regions) is left out of the class loss,
// neither object nor background. Undefined, I = 0 or options.mask_ignored false: every anchor
// counts.
LossParts ssd_loss(const torch::Tensor& cls_logits, const torch::Tensor& box_activations,
                   const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels,
                   const torch::Tensor& gt_valid, const Anchors& anchors,
                   const LossOptions& options = {}, const torch::Tensor& ignore_boxes = {});

// The anchors ssd_loss leaves out of the class loss: (B, A) bool, true where an anchor that is
// not `positive` (B, A) has more than `threshold` of its area inside one of ignore_boxes
// (B, I, 4) (all-zero rows: padding).
torch::Tensor ignored_anchors(const torch::Tensor& ignore_boxes, const torch::Tensor& positive,
                              const torch::Tensor& anchor_corners, double threshold);

}  // namespace ssd
