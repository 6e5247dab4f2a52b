// Anchor boxes as in the fastai 2018 SSD lesson: for each grid (finest first), each cell
// row-major, each zoom, each ratio. Coordinates are normalised to [0, 1], (x, y) order.
#pragma once

#include <vector>

#include <torch/types.h>

#include "config.h"

namespace ssd {

struct Anchors {
  torch::Tensor centers;     // (A, 4): cx, cy, w, h
  torch::Tensor corners;     // (A, 4): x1, y1, x2, y2
  torch::Tensor grid_sizes;  // (A, 1): 1 / grid side of each anchor's grid
  int64_t size() const { return centers.size(0); }
  Anchors to(const torch::Device& device) const;
};

Anchors make_anchors(const std::vector<int>& grids, const std::vector<double>& zooms,
                     const std::vector<AnchorRatio>& ratios);
Anchors make_anchors(const SsdConfig& config);

}  // namespace ssd
