#include "ssd_model.h"

#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/types.h>

namespace ssd {

StdConvImpl::StdConvImpl(int64_t nin, int64_t nout, int64_t stride, double dropout) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(nin, nout, 3).stride(stride).padding(1)));
  bn = register_module("bn", torch::nn::BatchNorm2d(nout));
  drop = register_module("drop", torch::nn::Dropout(dropout));
}

torch::Tensor StdConvImpl::forward(const torch::Tensor& x) {
  return drop(bn(torch::relu(conv(x))));
}

OutConvImpl::OutConvImpl(int64_t k, int64_t nin, int64_t num_classes, double class_bias) : k_(k) {
  oconv1 = register_module(
      "oconv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(nin, (num_classes + 1) * k, 3).padding(1)));
  oconv2 = register_module("oconv2",
                           torch::nn::Conv2d(torch::nn::Conv2dOptions(nin, 4 * k, 3).padding(1)));
  torch::NoGradGuard no_grad;
  oconv1->bias.fill_(class_bias);   // the lesson: bias.data.zero_().add_(bias)
}

static torch::Tensor flatten_conv(const torch::Tensor& x, int64_t k) {
  // (B, k*n, H, W) -> (B, H*W*k, n): cell-major, then anchor, as the anchors are ordered.
  const int64_t B = x.size(0), n = x.size(1) / k;
  return x.permute({0, 2, 3, 1}).reshape({B, -1, n});
}

std::pair<torch::Tensor, torch::Tensor> OutConvImpl::forward(const torch::Tensor& x) {
  if (!oconv) return {flatten_conv(oconv1(x), k_), flatten_conv(oconv2(x), k_)};
  TORCH_CHECK(!is_training(), "OutConv: its two convolutions are fused (inference only), but it is "
                              "in training mode");
  const torch::Tensor y = oconv(x);
  return {flatten_conv(y.narrow(1, 0, class_channels_), k_),
          flatten_conv(y.narrow(1, class_channels_, y.size(1) - class_channels_), k_)};
}

int OutConvImpl::fuse() {
  if (oconv) return 0;
  oconv = register_module("oconv", concat_output_channels(oconv1, oconv2));
  class_channels_ = oconv1->options.out_channels();
  unregister_module("oconv1");
  unregister_module("oconv2");
  oconv1 = oconv2 = nullptr;
  return 1;
}

SsdHeadImpl::SsdHeadImpl(const SsdConfig& config, int64_t in_channels,
                         int64_t stride16_channels) {
  const int64_t ch = config.head_channels;
  drop = register_module("drop", torch::nn::Dropout(config.dropout));
  sconv0 = register_module("sconv0", StdConv(in_channels, ch, 1, config.dropout));
  sconvs = register_module("sconvs", torch::nn::ModuleList());
  outs = register_module("outs", torch::nn::ModuleList());
  out_after_ = config.head_steps();
  for (int i = 0; i < (out_after_.empty() ? 0 : out_after_.back()); ++i)
    sconvs->push_back(StdConv(ch, ch, 2, config.dropout));
  for (size_t i = 0; i < out_after_.size(); ++i)
    outs->push_back(OutConv(config.anchors_per_cell(), ch, config.num_classes(),
                            config.class_bias));
  if (config.has_fine_grid()) {
    fine_side_ = config.fine_grid();
    fine = register_module("fine", StdConv(stride16_channels, ch, 1, config.dropout));
    fine_out = register_module(
        "fine_out", OutConv(config.anchors_per_cell(), ch, config.num_classes(), config.class_bias));
  }
}

std::pair<torch::Tensor, torch::Tensor> SsdHeadImpl::forward(const torch::Tensor& c3,
                                                             torch::Tensor x) {
  x = sconv0(drop(torch::relu(x)));
  std::vector<torch::Tensor> cls, box;
  if (fine_side_ > 0) {
    TORCH_CHECK(c3.defined() && c3.dim() == 4 && c3.size(2) == fine_side_ &&
                    c3.size(3) == fine_side_,
                "SsdHead: the fine grid needs the stride-16 map (B, C, ", fine_side_, ", ",
                fine_side_, "), got ", c3.defined() ? c3.sizes() : torch::IntArrayRef{});
    namespace F = torch::nn::functional;
    auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{fine_side_, fine_side_})
                                    .mode(torch::kNearest));
    auto [c, b] = fine_out(fine(c3) + up);
    cls.push_back(c);
    box.push_back(b);
  }
  int done = 0;
  for (size_t i = 0; i < out_after_.size(); ++i) {
    for (; done < out_after_[i]; ++done) x = sconvs[done]->as<StdConv>()->forward(x);
    auto [c, b] = outs[i]->as<OutConv>()->forward(x);
    cls.push_back(c);
    box.push_back(b);
  }
  return {torch::cat(cls, 1), torch::cat(box, 1)};
}

int SsdHeadImpl::fuse_output_convs() {
  int count = fine_out ? fine_out->fuse() : 0;
  for (const auto& out : *outs) count += out->as<OutConv>()->fuse();
  return count;
}

bool SsdHeadImpl::fused() const {
  return outs->size() > 0 && (*outs)[0]->as<OutConv>()->fused();
}

SsdImpl::SsdImpl(const SsdConfig& config) : config_(config) {
  config_.validate();
  body = register_module("body", ResNet(resnet_spec(config_.body)));
  head = register_module("head",
                         SsdHead(config_, body->out_channels(), body->stride16_channels()));
}

std::pair<torch::Tensor, torch::Tensor> SsdImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == config_.input_size &&
                  x.size(3) == config_.input_size,
              "Ssd: expected input (B, 3, ", config_.input_size, ", ", config_.input_size,
              "), got ", x.sizes());
  // Before anything runs: training mode would update the BatchNorms' statistics on its way.
  TORCH_CHECK(!(is_training() && head->fused()),
              "Ssd: its output convolutions are fused (inference only), but it is in training mode");
  auto [c3, c4] = body->forward_levels(x);   // the head reads c3 only with a fine grid
  return head(c3, c4);
}

void SsdImpl::to_channels_last() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

std::vector<std::vector<torch::Tensor>> SsdImpl::layer_groups() {
  auto groups = body->layer_groups();
  groups.push_back(head->parameters());
  return groups;
}

}  // namespace ssd
