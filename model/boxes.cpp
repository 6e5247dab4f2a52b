#include "boxes.h"

#include <torch/types.h>

#include "anchors.h"

namespace ssd {

torch::Tensor centers_to_corners(const torch::Tensor& boxes) {
  TORCH_CHECK(boxes.size(-1) == 4, "centers_to_corners: expected (..., 4) boxes, got ",
              boxes.sizes());
  auto c = boxes.narrow(-1, 0, 2);
  auto half = boxes.narrow(-1, 2, 2) / 2;
  return torch::cat({c - half, c + half}, -1);
}

torch::Tensor corners_to_centers(const torch::Tensor& boxes) {
  TORCH_CHECK(boxes.size(-1) == 4, "corners_to_centers: expected (..., 4) boxes, got ",
              boxes.sizes());
  auto lo = boxes.narrow(-1, 0, 2);
  auto hi = boxes.narrow(-1, 2, 2);
  return torch::cat({(lo + hi) / 2, hi - lo}, -1);
}

torch::Tensor box_area(const torch::Tensor& corners) {
  auto wh = (corners.narrow(-1, 2, 2) - corners.narrow(-1, 0, 2)).clamp_min(0);
  return wh.select(-1, 0) * wh.select(-1, 1);
}

namespace {

// Pairwise intersection areas of a and b in box_iou's shapes; `name` for the messages.
torch::Tensor intersection(const torch::Tensor& a, const torch::Tensor& b, const char* name) {
  TORCH_CHECK(a.size(-1) == 4 && b.size(-1) == 4, name, ": expected (..., 4) boxes, got ",
              a.sizes(), " and ", b.sizes());
  TORCH_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && (b.dim() == 2 || b.dim() == 3)),
              name, ": expected (N, 4) x (M, 4), (B, N, 4) x (M, 4) or (B, N, 4) x (B, M, 4), got ",
              a.sizes(), " and ", b.sizes());
  auto bb = b.dim() == 3 ? b.unsqueeze(-3) : b.unsqueeze(0);  // (.., 1, M, 4)
  if (a.dim() == 3 && b.dim() == 2) bb = b.unsqueeze(0).unsqueeze(0);
  auto aa = a.unsqueeze(-2);                                    // (.., N, 1, 4)
  auto lo = torch::max(aa.narrow(-1, 0, 2), bb.narrow(-1, 0, 2));
  auto hi = torch::min(aa.narrow(-1, 2, 2), bb.narrow(-1, 2, 2));
  auto wh = (hi - lo).clamp_min(0);
  return wh.select(-1, 0) * wh.select(-1, 1);
}

}  // namespace

torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b) {
  auto inter = intersection(a, b, "box_iou");
  auto uni = box_area(a).unsqueeze(-1) + box_area(b).unsqueeze(-2) - inter;
  // Two empty boxes: IoU 0 rather than NaN.
  return torch::where(uni > 0, inter / uni.clamp_min(1e-12), torch::zeros_like(inter));
}

torch::Tensor box_ioa(const torch::Tensor& a, const torch::Tensor& b) {
  auto inter = intersection(a, b, "box_ioa");
  auto area = box_area(a).unsqueeze(-1).expand_as(inter);
  return torch::where(area > 0, inter / area.clamp_min(1e-12), torch::zeros_like(inter));
}

torch::Tensor activations_to_boxes(const torch::Tensor& activations, const Anchors& anchors) {
  TORCH_CHECK(activations.size(-1) == 4 && activations.size(-2) == anchors.size(),
              "activations_to_boxes: expected (..., ", anchors.size(), ", 4) activations, got ",
              activations.sizes());
  auto t = torch::tanh(activations);
  auto ctr = anchors.centers.narrow(-1, 0, 2);
  auto wh = anchors.centers.narrow(-1, 2, 2);
  auto centers = t.narrow(-1, 0, 2) / 2 * anchors.grid_sizes + ctr;
  auto sizes = (t.narrow(-1, 2, 2) / 2 + 1) * wh;
  return centers_to_corners(torch::cat({centers, sizes}, -1));
}

torch::Tensor boxes_to_activations(const torch::Tensor& corners, const Anchors& anchors) {
  auto c = corners_to_centers(corners);
  auto t_ctr = (c.narrow(-1, 0, 2) - anchors.centers.narrow(-1, 0, 2)) * 2 / anchors.grid_sizes;
  auto t_wh = (c.narrow(-1, 2, 2) / anchors.centers.narrow(-1, 2, 2) - 1) * 2;
  return torch::atanh(torch::cat({t_ctr, t_wh}, -1));
}

}  // namespace ssd
