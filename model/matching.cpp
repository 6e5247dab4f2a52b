#include "matching.h"

#include <torch/types.h>

#include "boxes.h"

namespace ssd {

Match match_anchors(const torch::Tensor& gt_boxes, const torch::Tensor& gt_valid,
                    const torch::Tensor& anchor_corners, double threshold) {
  TORCH_CHECK(gt_boxes.dim() == 3 && gt_boxes.size(2) == 4,
              "match_anchors: gt_boxes must be (B, G, 4), got ", gt_boxes.sizes());
  TORCH_CHECK(gt_valid.dim() == 2 && gt_valid.size(0) == gt_boxes.size(0) &&
                  gt_valid.size(1) == gt_boxes.size(1),
              "match_anchors: gt_valid must be (B, G) = ", gt_boxes.sizes().slice(0, 2),
              ", got ", gt_valid.sizes());
  TORCH_CHECK(anchor_corners.dim() == 2 && anchor_corners.size(1) == 4,
              "match_anchors: anchor_corners must be (A, 4), got ", anchor_corners.sizes());
  const int64_t A = anchor_corners.size(0);
  const int64_t G = gt_boxes.size(1);
  auto valid = gt_valid.to(torch::kBool);
  // (B, G, A); padding rows get -1 so they never win an anchor.
  auto overlaps = box_iou(gt_boxes, anchor_corners);
  overlaps = overlaps.masked_fill(~valid.unsqueeze(-1), -1.0);

  auto best_anchor = std::get<1>(overlaps.max(2));          // (B, G) each gt's best anchor
  auto per_anchor = overlaps.max(1);                         // over ground truths
  auto overlap = std::get<0>(per_anchor);                    // (B, A)
  auto gt_index = std::get<1>(per_anchor);                   // (B, A)

  // Forced assignments: anchor a is forced to gt g when g's best anchor is a. The lesson's
  // loop lets the last such g win; take the largest g per anchor.
  auto arange_a = torch::arange(A, best_anchor.options());
  auto hits = (best_anchor.unsqueeze(-1) == arange_a) & valid.unsqueeze(-1);    // (B, G, A)
  auto g_plus1 = torch::arange(1, G + 1, best_anchor.options()).view({1, G, 1});
  auto forced_g = (hits.to(torch::kLong) * g_plus1).amax(1) - 1;                 // (B, A)
  auto forced = forced_g >= 0;
  overlap = torch::where(forced, torch::full_like(overlap, 1.99), overlap);
  gt_index = torch::where(forced, forced_g, gt_index);
  return {overlap, gt_index, overlap > threshold};
}

}  // namespace ssd
