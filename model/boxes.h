// Pure box maths: centre/corner conversion, IoU, and the lesson's activation-to-box coding.
#pragma once

#include <torch/types.h>

namespace ssd {

struct Anchors;

// (..., 4) cx, cy, w, h  <->  (..., 4) x1, y1, x2, y2
torch::Tensor centers_to_corners(const torch::Tensor& boxes);
torch::Tensor corners_to_centers(const torch::Tensor& boxes);

// Areas of (..., 4) corner boxes; degenerate boxes have area 0.
torch::Tensor box_area(const torch::Tensor& corners);

// IoU of (N, 4) x (M, 4) corner boxes -> (N, M). Batched: (B, N, 4) x (M, 4) -> (B, N, M),
// or (B, N, 4) x (B, M, 4) -> (B, N, M).
torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b);

// Intersection over the first box's area: the fraction of each box of `a` inside each box of
// `b` (0 where an `a` box has no area), in box_iou's shapes. COCO's IoU with a crowd region.
torch::Tensor box_ioa(const torch::Tensor& a, const torch::Tensor& b);

// The lesson's actn_to_bb: tanh(activations) (..., A, 4) -> corner boxes (..., A, 4).
// Centre moves up to half a grid cell, width/height scale 0.5x to 1.5x the anchor's.
torch::Tensor activations_to_boxes(const torch::Tensor& activations, const Anchors& anchors);
// Inverse of activations_to_boxes for boxes it can reach (used to test the round trip).
torch::Tensor boxes_to_activations(const torch::Tensor& corners, const Anchors& anchors);

}  // namespace ssd
