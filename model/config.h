// SSD architecture configuration: everything needed to rebuild a model from a weights file.
// Torch-free, so the GStreamer plugin and the CLI can read it without LibTorch headers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ssd {

// One anchor shape multiplier pair (width, height), relative to the grid cell.
// The lesson lists ratios as (height, width) = (1,1), (1,0.5), (0.5,1) because fastai boxes
// are (row, col); ours are (x, y), so the same anchors read (1,1), (0.5,1), (1,0.5).
struct AnchorRatio {
  double w = 1.0;
  double h = 1.0;
  bool operator==(const AnchorRatio& o) const { return w == o.w && h == o.h; }
};

struct SsdConfig {
  // Body: "resnet18", "resnet34", "resnet50" (torchvision module names), or "tiny" (a small
  // ResNet-shaped body for fast CPU inference).
  std::string body = "resnet34";
  int input_size = 224;                      // square input, pixels
  // Anchor grids, finest first. Each is reached from the body's stride-32 map by stride-2
  // head steps; the first may instead be the stride-16 side (fine_grid()), then served by the
  // body's layer3 features merged with the upsampled stride-32 head features (small objects).
  std::vector<int> grids = {4, 2, 1};
  std::vector<double> zooms = {0.7, 1.0, 1.3};
  std::vector<AnchorRatio> ratios = {{1.0, 1.0}, {0.5, 1.0}, {1.0, 0.5}};
  std::vector<std::string> labels;           // class names, background excluded
  int head_channels = 256;                   // StdConv width in the head
  double dropout = 0.1;                      // head dropout (lesson: 0.1 to 0.4)
  double class_bias = -4.0;                  // initial class-logit bias (lesson: -4)
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // RGB, of pixels in [0, 1]
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};

  int num_classes() const { return static_cast<int>(labels.size()); }
  int anchors_per_cell() const { return static_cast<int>(zooms.size() * ratios.size()); }
  int num_anchors() const;
  // Feature-map side of the body output for this input size (stride 32).
  int body_grid() const;
  // Side of the body's stride-16 (layer3) map, and whether grids[0] is that map.
  int fine_grid() const;
  bool has_fine_grid() const;
  // For each grid the head reaches from the body's stride-32 map (all but a fine first one):
  // how many stride-2 head steps precede it, cumulatively. Throws ssd::Error naming the first
  // grid no number of steps reaches.
  std::vector<int> head_steps() const;
  // The weights the configuration alone implies (the head's stride-2 and output convolutions;
  // not the body's nor the convolutions from its maps): a lower bound of the model's parameter
  // count, so a weights file with fewer bytes of tensors than 4 per such weight is not this
  // model's. Assumes a configuration that validate() accepts.
  int64_t min_parameters() const;

  // Throws ssd::Error naming the first inconsistent field.
  void validate() const;

  nlohmann::json to_json() const;
  static SsdConfig from_json(const nlohmann::json& j);  // validates; throws ssd::Error
  std::string to_json_string() const;
  static SsdConfig from_json_string(const std::string& s);

  bool operator==(const SsdConfig& o) const;
};

// Output side of a stride-2, 3x3, pad-1 convolution.
inline int stride2_out(int side) { return (side - 1) / 2 + 1; }

// Body names accepted by SsdConfig::body.
const std::vector<std::string>& known_bodies();

}  // namespace ssd
