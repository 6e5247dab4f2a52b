// The lesson's map_to_ground_truth, vectorised over a padded batch of ground truths.
#pragma once

#include <torch/types.h>

namespace ssd {

struct Match {
  torch::Tensor overlap;   // (B, A) float: IoU with the assigned ground truth; 1.99 when forced
  torch::Tensor gt_index;  // (B, A) int64: index of the assigned ground truth in [0, G)
  torch::Tensor positive;  // (B, A) bool: overlap > threshold (forced anchors always positive)
};

// gt_boxes (B, G, 4) corner boxes, gt_valid (B, G) bool (padding = false),
// anchor_corners (A, 4). Each valid ground truth takes its best anchor (later ground truths win
// a contested anchor, as in the lesson's loop); every other anchor takes its best ground truth
// and is positive if that IoU exceeds `threshold`.
Match match_anchors(const torch::Tensor& gt_boxes, const torch::Tensor& gt_valid,
                    const torch::Tensor& anchor_corners, double threshold);

}  // namespace ssd
