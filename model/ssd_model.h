// The SSD detector: ResNet body + the lesson's multi-grid head of StdConv blocks with one
// OutConv per grid. Parameter names: body.* (torchvision names) and head.*.
#pragma once

#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/pimpl.h>

#include "config.h"
#include "resnet.h"

namespace ssd {

// conv3x3 -> ReLU -> BatchNorm -> Dropout (the lesson's StdConv).
class StdConvImpl : public torch::nn::Module {
 public:
  StdConvImpl(int64_t nin, int64_t nout, int64_t stride, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(StdConv);

// Two 3x3 convs over one grid: k*(C+1) class logits and k*4 box activations, flattened to
// (B, side*side*k, C+1) and (B, side*side*k, 4) in anchor order.
class OutConvImpl : public torch::nn::Module {
 public:
  OutConvImpl(int64_t k, int64_t nin, int64_t num_classes, double class_bias);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  // For inference: oconv1 and oconv2 (class logits, box values; both read x) as one convolution
  // "oconv" (concat_output_channels), whose output forward splits. Inference-only afterwards, as
  // after the body's BatchNorm fold. Returns 1 if it fused, 0 if fused already.
  int fuse();
  bool fused() const { return !oconv1; }

 private:
  int64_t k_;
  torch::nn::Conv2d oconv1{nullptr}, oconv2{nullptr};
  torch::nn::Conv2d oconv{nullptr};   // once fused: oconv1's channels, then oconv2's
  int64_t class_channels_ = 0;        // once fused: oconv1's out_channels
};
TORCH_MODULE(OutConv);

// The head over the body's stride-32 map x (and, with a fine grid, its stride-16 map c3):
// sconv0, then stride-2 StdConvs down to each grid, one OutConv per grid (`outs`, in the order
// of the grids after the fine one). The fine grid (SsdConfig::has_fine_grid) takes
// `fine` (StdConv over c3) + sconv0's output upsampled (nearest) to the stride-16 side, through
// its own OutConv `fine_out`; it comes first in the output, as in the anchors. A model without
// the fine grid has the same parameter names minus fine.* and fine_out.*, so its weights
// initialise one with it (ssd::transfer_weights) and its outputs stay the same.
class SsdHeadImpl : public torch::nn::Module {
 public:
  SsdHeadImpl(const SsdConfig& config, int64_t in_channels, int64_t stride16_channels);
  // c3 is only read with a fine grid.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& c3, torch::Tensor x);
  int fuse_output_convs();   // OutConvImpl::fuse on each grid's; returns how many it fused
  bool fused() const;        // whether the output convolutions are fused

 private:
  torch::nn::Dropout drop{nullptr};
  StdConv sconv0{nullptr};
  torch::nn::ModuleList sconvs{nullptr};  // stride-2 steps
  torch::nn::ModuleList outs{nullptr};    // one OutConv per grid reached from x
  std::vector<int> out_after_;            // for each of those: number of stride-2 steps before it
  StdConv fine{nullptr};                  // fine grid only
  OutConv fine_out{nullptr};
  int fine_side_ = 0;                     // 0: no fine grid
};
TORCH_MODULE(SsdHead);

class SsdImpl : public torch::nn::Module {
 public:
  explicit SsdImpl(const SsdConfig& config);
  // x: (B, 3, S, S) normalised -> {cls_logits (B, A, C+1), box_activations (B, A, 4)}
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  const SsdConfig& config() const { return config_; }
  ResNet body{nullptr};
  SsdHead head{nullptr};
  // Parameter groups for differential learning rates: early body, late body, head.
  std::vector<std::vector<torch::Tensor>> layer_groups();
  // For inference: the body's BatchNorms folded into its convolutions (ResNetImpl::fold_batchnorm;
  // the head's StdConv puts its BatchNorm after the ReLU, where it does not fold). ssd::Detector
  // does this after loading; the model is inference-only afterwards. Returns how many it folded.
  int fold_batchnorm() { return body->fold_batchnorm(); }
  // For inference: each grid's two output convolutions as one (OutConvImpl::fuse). ssd::Detector
  // does this after loading (its gain measured there); the model is inference-only afterwards.
  // Returns how many it fused (0 once fused).
  int fuse_output_convs() { return head->fuse_output_convs(); }
  // Both of the above, as every inference path runs the model (ssd::Detector, `ssd-train eval`,
  // bench_model). Returns what each did.
  struct InferenceFusion {
    int folded_batchnorms = 0, fused_output_convs = 0;
  };
  InferenceFusion fuse_for_inference() { return {fold_batchnorm(), fuse_output_convs()}; }
  // The convolution weights in channels-last memory format, as ssd::Detector (and bench_model)
  // run the model on every device, with channels-last inputs.
  void to_channels_last();

 private:
  SsdConfig config_;
};
TORCH_MODULE(Ssd);

}  // namespace ssd
