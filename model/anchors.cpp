#include "anchors.h"

#include <torch/types.h>

#include "boxes.h"

namespace ssd {

Anchors Anchors::to(const torch::Device& device) const {
  return {centers.to(device), corners.to(device), grid_sizes.to(device)};
}

Anchors make_anchors(const std::vector<int>& grids, const std::vector<double>& zooms,
                     const std::vector<AnchorRatio>& ratios) {
  // Same order as the lesson: grid, then cell (row-major: y slow, x fast), then zoom, then
  // ratio. The lesson's anc_x (np.repeat) is the row coordinate because fastai boxes are
  // (row, col); here it is cy.
  std::vector<float> data;
  std::vector<float> sizes;
  for (int g : grids) {
    const double off = 1.0 / (2.0 * g);
    for (int row = 0; row < g; ++row) {
      for (int col = 0; col < g; ++col) {
        const double cy = g == 1 ? off : off + row * (1.0 - 2.0 * off) / (g - 1);
        const double cx = g == 1 ? off : off + col * (1.0 - 2.0 * off) / (g - 1);
        for (double z : zooms) {
          for (const auto& r : ratios) {
            data.insert(data.end(), {static_cast<float>(cx), static_cast<float>(cy),
                                     static_cast<float>(z * r.w / g),
                                     static_cast<float>(z * r.h / g)});
            sizes.push_back(static_cast<float>(1.0 / g));
          }
        }
      }
    }
  }
  const int64_t n = static_cast<int64_t>(sizes.size());
  Anchors a;
  a.centers = torch::from_blob(data.data(), {n, 4}, torch::kFloat32).clone();
  a.grid_sizes = torch::from_blob(sizes.data(), {n, 1}, torch::kFloat32).clone();
  a.corners = centers_to_corners(a.centers);
  return a;
}

Anchors make_anchors(const SsdConfig& config) {
  return make_anchors(config.grids, config.zooms, config.ratios);
}

}  // namespace ssd
