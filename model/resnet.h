// ResNet bodies with torchvision's exact module and parameter names (conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0, ...), so ImageNet state dicts import by name. The classifier (avgpool,
// fc) is left out: the body returns the stride-32 feature map.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace ssd {

struct ResNetSpec {
  bool bottleneck = false;            // Bottleneck (ResNet50) or BasicBlock blocks
  std::vector<int> layers;            // blocks per stage, 4 stages
  std::vector<int> widths;            // planes per stage
  int stem_width = 64;
};

// Spec for "resnet18", "resnet34", "resnet50" or "tiny"; throws ssd::Error for other names.
ResNetSpec resnet_spec(const std::string& name);

// A convolution followed by an inference-mode BatchNorm2d as one convolution with a bias, on
// the convolution's device and dtype: weight * g and (bias - running_mean) * g + bn.bias, with
// g = bn.weight / sqrt(running_var + eps) per output channel, computed in double precision.
torch::nn::Conv2d fold_batchnorm(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn);

// Two convolutions of the same input (same in_channels, kernel, stride, padding, dilation,
// groups; both with a bias or both without) as one whose output channels are a's, then b's: one
// pass over the input instead of two. On a's device and dtype, in a's memory format.
torch::nn::Conv2d concat_output_channels(const torch::nn::Conv2d& a, const torch::nn::Conv2d& b);

class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int expansion = 1;
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  int fold_batchnorm();   // see ResNetImpl::fold_batchnorm; returns how many it folded

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int expansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  int fold_batchnorm();   // see ResNetImpl::fold_batchnorm; returns how many it folded

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetSpec& spec);
  torch::Tensor forward(torch::Tensor x);   // (B, 3, H, W) -> (B, out_channels, H/32, W/32)
  // {layer3 output (B, stride16_channels, H/16, W/16), layer4 output (as forward)}.
  std::pair<torch::Tensor, torch::Tensor> forward_levels(torch::Tensor x);
  int64_t out_channels() const { return out_channels_; }
  int64_t stride16_channels() const { return stride16_channels_; }
  // Layer groups for differential learning rates: {conv1, bn1, layer1, layer2}, {layer3, layer4}.
  std::vector<std::vector<torch::Tensor>> layer_groups();
  // For inference: every convolution absorbs the BatchNorm2d after it (the BatchNorms go, the
  // convolutions get a bias), so a forward runs 36 (ResNet34) or 12 (tiny) fewer passes over the
  // feature maps with the same result up to rounding. The module is inference-only afterwards:
  // its state dict no longer matches the weights file, and forward in training mode throws.
  // Returns how many BatchNorms it folded (0 once folded).
  int fold_batchnorm();
  bool folded() const { return !bn1; }   // the stem's BatchNorm is gone once folded

 private:
  torch::nn::Sequential make_layer(const ResNetSpec& spec, int64_t planes, int blocks,
                                   int64_t stride);
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  int64_t inplanes_ = 64;
  int64_t out_channels_ = 0;
  int64_t stride16_channels_ = 0;
};
TORCH_MODULE(ResNet);

}  // namespace ssd
