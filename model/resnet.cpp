#include "resnet.h"

#include <mutex>
#include <utility>
#include <variant>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include "error.h"

namespace ssd {

namespace F = torch::nn::functional;

ResNetSpec resnet_spec(const std::string& name) {
  if (name == "resnet18") return {false, {2, 2, 2, 2}, {64, 128, 256, 512}, 64};
  if (name == "resnet34") return {false, {3, 4, 6, 3}, {64, 128, 256, 512}, 64};
  if (name == "resnet50") return {true, {3, 4, 6, 3}, {64, 128, 256, 512}, 64};
  // The CPU default: ResNet-shaped, one BasicBlock per stage, a quarter of ResNet18's widths.
  // (Half the widths measured 50 ms vs 34 ms a 224 px frame on one loaded core: bench_model.)
  if (name == "tiny") return {false, {1, 1, 1, 1}, {16, 32, 64, 128}, 16};
  throw Error("unknown ResNet body '" + name + "' (expected resnet18, resnet34, resnet50, tiny)");
}

// A new Conv2d with `like`'s options but for out_channels and bias. Its constructor initialises
// the weights from the default generator, whose state is put back: the callers overwrite the
// weights, and loading a model must leave an application's random numbers as they were.
static torch::nn::Conv2d conv_keeping_rng(const torch::nn::Conv2d& like, int64_t out_channels,
                                          bool bias) {
  const auto& o = like->options;
  const auto options = torch::nn::Conv2dOptions(o.in_channels(), out_channels, o.kernel_size())
                           .stride(o.stride())
                           .padding(o.padding())
                           .dilation(o.dilation())
                           .groups(o.groups())
                           .padding_mode(o.padding_mode())
                           .bias(bias);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor generator_state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator_state = generator.get_state();
  }
  torch::nn::Conv2d conv(options);
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(generator_state);
  }
  return conv;
}

torch::nn::Conv2d fold_batchnorm(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn) {
  TORCH_CHECK(bn->options.track_running_stats() && bn->options.affine() &&
                  bn->running_mean.defined() && bn->weight.defined(),
              "fold_batchnorm: the BatchNorm2d needs running statistics and affine parameters");
  TORCH_CHECK(bn->options.num_features() == conv->options.out_channels(),
              "fold_batchnorm: the convolution's ", conv->options.out_channels(),
              " output channels do not match the BatchNorm2d's ", bn->options.num_features());
  torch::NoGradGuard no_grad;
  const auto dd = torch::TensorOptions().dtype(torch::kFloat64).device(conv->weight.device());
  const torch::Tensor g = bn->weight.to(dd) / (bn->running_var.to(dd) + bn->options.eps()).sqrt();
  torch::Tensor bias = bn->bias.to(dd) - bn->running_mean.to(dd) * g;
  if (conv->bias.defined()) bias += conv->bias.to(dd) * g;
  const torch::Tensor weight = conv->weight.to(dd) * g.view({-1, 1, 1, 1});
  torch::nn::Conv2d folded = conv_keeping_rng(conv, conv->options.out_channels(), true);
  const auto dtype = conv->weight.scalar_type();
  folded->to(conv->weight.device(), dtype);
  folded->weight.set_data(weight.to(dtype).contiguous(conv->weight.suggest_memory_format()));
  folded->bias.set_data(bias.to(dtype));
  folded->weight.set_requires_grad(conv->weight.requires_grad());
  folded->bias.set_requires_grad(conv->weight.requires_grad());
  if (!conv->is_training()) folded->eval();
  return folded;
}

// A convolution's explicit padding (empty for "valid" and "same"). The options' padding is a
// c10::variant in LibTorch 1.13 and a std::variant in 2.x: argument-dependent lookup finds the
// `get` of either.
static std::vector<int64_t> explicit_padding(const torch::nn::Conv2d& conv) {
  using std::get;
  const auto& padding = conv->options.padding();
  if (padding.index() != 0) return {};
  const auto& values = *get<0>(padding);
  return {values.begin(), values.end()};
}

torch::nn::Conv2d concat_output_channels(const torch::nn::Conv2d& a, const torch::nn::Conv2d& b) {
  const auto &oa = a->options, &ob = b->options;
  TORCH_CHECK(oa.in_channels() == ob.in_channels() && *oa.kernel_size() == *ob.kernel_size() &&
                  *oa.stride() == *ob.stride() && *oa.dilation() == *ob.dilation() &&
                  oa.groups() == ob.groups() && oa.bias() == ob.bias() &&
                  oa.padding().index() == ob.padding().index() &&   // explicit, valid, same
                  explicit_padding(a) == explicit_padding(b) &&
                  oa.padding_mode().index() == ob.padding_mode().index() &&
                  a->weight.scalar_type() == b->weight.scalar_type() &&
                  a->weight.device() == b->weight.device(),
              "concat_output_channels: the convolutions differ in more than their outputs: weights ",
              a->weight.sizes(), " and ", b->weight.sizes(), ", strides ", oa.stride(), " and ",
              ob.stride(), ", dilations ", oa.dilation(), " and ", ob.dilation(), ", paddings ",
              c10::IntArrayRef(explicit_padding(a)), " and ", c10::IntArrayRef(explicit_padding(b)),
              ", groups ", oa.groups(), " and ", ob.groups(), ", bias ", oa.bias(), " and ", ob.bias());
  torch::nn::Conv2d both = conv_keeping_rng(a, oa.out_channels() + ob.out_channels(), oa.bias());
  torch::NoGradGuard no_grad;
  both->to(a->weight.device(), a->weight.scalar_type());
  both->weight.set_data(torch::cat({a->weight, b->weight}).contiguous(a->weight.suggest_memory_format()));
  if (oa.bias()) both->bias.set_data(torch::cat({a->bias, b->bias}));
  both->weight.set_requires_grad(a->weight.requires_grad());
  if (oa.bias()) both->bias.set_requires_grad(a->weight.requires_grad());
  both->train(a->is_training());
  return both;
}

// forward's conv -> BatchNorm, or the folded conv alone.
static torch::Tensor conv_bn(torch::nn::Conv2d& conv, torch::nn::BatchNorm2d& bn,
                             const torch::Tensor& x) {
  return bn ? bn(conv(x)) : conv(x);
}

// Replaces conv (registered as `name` in `owner`) by its fold with bn, and drops bn (`bn_name`).
// Returns 1 if it folded, 0 if bn was gone already.
static int fold_into(torch::nn::Module& owner, const std::string& name, torch::nn::Conv2d& conv,
                     const std::string& bn_name, torch::nn::BatchNorm2d& bn) {
  if (!bn) return 0;
  conv = owner.replace_module(name, fold_batchnorm(conv, bn));
  owner.unregister_module(bn_name);
  bn = nullptr;
  return 1;
}

// The downsample Sequential(conv1x1, BatchNorm2d) as Sequential(folded conv1x1).
static int fold_downsample(torch::nn::Module& owner, torch::nn::Sequential& downsample) {
  if (!downsample || downsample->size() != 2) return 0;
  auto conv = torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(downsample->ptr(0)));
  auto bn = torch::nn::BatchNorm2d(
      std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(downsample->ptr(1)));
  TORCH_CHECK(conv && bn, "ResNet: a downsample that is not (Conv2d, BatchNorm2d)");
  torch::nn::Sequential folded(fold_batchnorm(conv, bn));
  folded->train(downsample->is_training());
  downsample = owner.replace_module("downsample", folded);
  return 1;
}

static torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
static torch::nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}
static torch::nn::Sequential make_downsample(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return torch::nn::Sequential(conv1x1(in, out, stride), torch::nn::BatchNorm2d(out));
}

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv3x3(inplanes, planes, stride));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  downsample = make_downsample(inplanes, planes * expansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto out = torch::relu(conv_bn(conv1, bn1, x));
  out = conv_bn(conv2, bn2, out);
  out += downsample ? downsample->forward(x) : x;
  return torch::relu(out);
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv1x1(inplanes, planes, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, stride));   // torchvision v1.5
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv1x1(planes, planes * expansion, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * expansion));
  downsample = make_downsample(inplanes, planes * expansion, stride);
  if (downsample) register_module("downsample", downsample);
}

int BasicBlockImpl::fold_batchnorm() {
  return fold_into(*this, "conv1", conv1, "bn1", bn1) + fold_into(*this, "conv2", conv2, "bn2", bn2) +
         fold_downsample(*this, downsample);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  auto out = torch::relu(conv_bn(conv1, bn1, x));
  out = torch::relu(conv_bn(conv2, bn2, out));
  out = conv_bn(conv3, bn3, out);
  out += downsample ? downsample->forward(x) : x;
  return torch::relu(out);
}

int BottleneckImpl::fold_batchnorm() {
  return fold_into(*this, "conv1", conv1, "bn1", bn1) + fold_into(*this, "conv2", conv2, "bn2", bn2) +
         fold_into(*this, "conv3", conv3, "bn3", bn3) + fold_downsample(*this, downsample);
}

ResNetImpl::ResNetImpl(const ResNetSpec& spec) : inplanes_(spec.stem_width) {
  TORCH_CHECK(spec.layers.size() == 4 && spec.widths.size() == 4,
              "ResNet: expected 4 stages, got layers ", spec.layers.size(), " and widths ",
              spec.widths.size());
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, inplanes_, 7)
                                                         .stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(inplanes_));
  layer1 = register_module("layer1", make_layer(spec, spec.widths[0], spec.layers[0], 1));
  layer2 = register_module("layer2", make_layer(spec, spec.widths[1], spec.layers[1], 2));
  layer3 = register_module("layer3", make_layer(spec, spec.widths[2], spec.layers[2], 2));
  stride16_channels_ = inplanes_;
  layer4 = register_module("layer4", make_layer(spec, spec.widths[3], spec.layers[3], 2));
  out_channels_ = inplanes_;
  // torchvision's initialisation.
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) {
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    }
  }
}

torch::nn::Sequential ResNetImpl::make_layer(const ResNetSpec& spec, int64_t planes, int blocks,
                                             int64_t stride) {
  torch::nn::Sequential seq;
  for (int i = 0; i < blocks; ++i) {
    if (spec.bottleneck) {
      seq->push_back(Bottleneck(inplanes_, planes, i == 0 ? stride : 1));
      inplanes_ = planes * BottleneckImpl::expansion;
    } else {
      seq->push_back(BasicBlock(inplanes_, planes, i == 0 ? stride : 1));
      inplanes_ = planes * BasicBlockImpl::expansion;
    }
  }
  return seq;
}

std::pair<torch::Tensor, torch::Tensor> ResNetImpl::forward_levels(torch::Tensor x) {
  TORCH_CHECK(!(folded() && is_training()),
              "ResNet: its BatchNorms are folded into the convolutions (inference only), but it "
              "is in training mode");
  x = torch::relu(conv_bn(conv1, bn1, x));
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  x = layer1->forward(x);
  x = layer2->forward(x);
  torch::Tensor c3 = layer3->forward(x);
  torch::Tensor c4 = layer4->forward(c3);
  return {c3, c4};
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) { return forward_levels(std::move(x)).second; }

int ResNetImpl::fold_batchnorm() {
  int count = fold_into(*this, "conv1", conv1, "bn1", bn1);
  for (auto* layer : {&layer1, &layer2, &layer3, &layer4})
    for (const auto& block : (*layer)->children()) {
      if (auto* b = block->as<BasicBlockImpl>()) count += b->fold_batchnorm();
      if (auto* b = block->as<BottleneckImpl>()) count += b->fold_batchnorm();
    }
  return count;
}

std::vector<std::vector<torch::Tensor>> ResNetImpl::layer_groups() {
  TORCH_CHECK(!folded(), "ResNet: layer groups are for training, but its BatchNorms are folded (inference only)");
  auto params = [](std::initializer_list<torch::nn::Module*> modules) {
    std::vector<torch::Tensor> out;
    for (auto* m : modules)
      for (auto& p : m->parameters()) out.push_back(p);
    return out;
  };
  return {params({conv1.get(), bn1.get(), layer1.get(), layer2.get()}),
          params({layer3.get(), layer4.get()})};
}

}  // namespace ssd
