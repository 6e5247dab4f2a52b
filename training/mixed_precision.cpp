// Mixed precision for ssd-train: precision names, the autocast guard (LibTorch 1.13 and 2.x
// APIs) and the dynamic loss scaler.
#include "mixed_precision.h"

#include <cmath>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "../model/error.h"

// LibTorch 2.4 made the autocast C++ API device-generic (pytorch#124359) and deprecated the
// per-device functions 1.13 has.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SSD_AUTOCAST_DEVICE_GENERIC 1
#else
#define SSD_AUTOCAST_DEVICE_GENERIC 0
#endif

namespace ssdtrain {

namespace {

bool autocast_enabled(c10::DeviceType type) {
#if SSD_AUTOCAST_DEVICE_GENERIC
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast_enabled(c10::DeviceType type, bool enabled) {
#if SSD_AUTOCAST_DEVICE_GENERIC
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType type) {
#if SSD_AUTOCAST_DEVICE_GENERIC
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast_dtype(c10::DeviceType type, c10::ScalarType dtype) {
#if SSD_AUTOCAST_DEVICE_GENERIC
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == c10::DeviceType::CUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace

void check_precision(Precision p, const torch::Device& device) {
  if (p == Precision::FP16 && !device.is_cuda())
    throw ssd::Error("--precision fp16 needs a CUDA device (device is " + device.str() +
                     "): LibTorch's CPU autocast has no fp16; use --precision bf16 on the CPU");
  if (p != Precision::FP32 && !device.is_cuda() && !device.is_cpu())
    throw ssd::Error(std::string("--precision ") + precision_name(p) +
                     " is supported on cpu and cuda devices, not " + device.str());
}

// ------------------------------------------------------------------------------------------

AutocastGuard::AutocastGuard(Precision p, const torch::Device& device) {
  if (p == Precision::FP32) return;
  type_ = device.type();
  prev_enabled_ = autocast_enabled(type_);
  prev_dtype_ = autocast_dtype(type_);
  set_autocast_enabled(type_, true);
  set_autocast_dtype(type_, p == Precision::BF16 ? c10::ScalarType::BFloat16 : c10::ScalarType::Half);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(type_, prev_enabled_);
  set_autocast_dtype(type_, prev_dtype_);
}

// ------------------------------------------------------------------------------------------

GradScaler::GradScaler(bool enabled) : GradScaler(enabled, Options{}) {}

GradScaler::GradScaler(bool enabled, const Options& options)
    : enabled_(enabled), options_(options), scale_(static_cast<float>(options.init_scale)) {
  if (!(options.init_scale > 0) || !(options.growth_factor > 1) ||
      !(options.backoff_factor > 0 && options.backoff_factor < 1) || options.growth_interval < 1)
    throw ssd::Error("GradScaler: needs init_scale > 0, growth_factor > 1, backoff_factor in "
                     "(0, 1) and growth_interval >= 1");
}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) const {
  if (!enabled_) return loss;
  return loss * static_cast<double>(scale_);
}

void GradScaler::unscale(torch::optim::Optimizer& optimizer) {
  if (!enabled_) return;
  if (unscaled_) throw ssd::Error("GradScaler: unscale() called twice before update()");
  if (stepped_) throw ssd::Error("GradScaler: unscale() called after step()");
  // As GradScaler.unscale_: the inverse scale in double, rounded to float (exact: a power of 2
  // for the default factors).
  const double inv_scale = static_cast<float>(1.0 / static_cast<double>(scale_));
  std::vector<torch::Tensor> finite;
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      torch::Tensor& g = p.mutable_grad();
      if (!g.defined()) continue;
      g.mul_(inv_scale);
      finite.push_back(torch::isfinite(g).all());
    }
  }
  found_inf_ = !finite.empty() && !torch::stack(finite).all().item<bool>();
  unscaled_ = true;
}

bool GradScaler::step(torch::optim::Optimizer& optimizer) {
  if (!enabled_) {
    optimizer.step();
    return true;
  }
  if (stepped_) throw ssd::Error("GradScaler: step() called twice before update()");
  if (!unscaled_) unscale(optimizer);
  stepped_ = true;
  if (found_inf_) return false;
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!enabled_) return;
  if (!unscaled_) throw ssd::Error("GradScaler: update() before unscale()/step()");
  // torch._amp_update_scale_: back off after an inf/nan, grow after growth_interval good steps
  // (unless the grown scale would overflow float).
  skipped_in_a_row_ = found_inf_ ? skipped_in_a_row_ + 1 : 0;
  if (found_inf_) {
    scale_ = static_cast<float>(scale_ * options_.backoff_factor);
    growth_tracker_ = 0;
  } else if (growth_tracker_ + 1 == options_.growth_interval) {
    const float grown = static_cast<float>(scale_ * options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  } else {
    ++growth_tracker_;
  }
  unscaled_ = stepped_ = found_inf_ = false;
}

void GradScaler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("scale", torch::tensor(scale_, torch::kFloat32));
  archive.write("growth_tracker", torch::tensor(growth_tracker_, torch::kInt64));
  archive.write("skipped_in_a_row", torch::tensor(skipped_in_a_row_, torch::kInt64));
}

void GradScaler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor scale, tracker;   // fresh tensors: read() would otherwise copy into them
  archive.read("scale", scale);
  archive.read("growth_tracker", tracker);
  if (scale.numel() != 1 || tracker.numel() != 1)
    throw ssd::Error("grad_scaler: scale and growth_tracker must be single values");
  const float s = scale.to(torch::kFloat32).item<float>();
  const int64_t t = tracker.to(torch::kInt64).item<int64_t>();
  if (!(s > 0) || !std::isfinite(s) || t < 0 || t >= options_.growth_interval)
    throw ssd::Error("grad_scaler: bad state (scale " + std::to_string(s) + ", growth_tracker " +
                     std::to_string(t) + ")");
  // (A checkpoint from before it was kept has none: no step skipped then.)
  torch::Tensor skipped;
  int64_t k = 0;
  if (archive.try_read("skipped_in_a_row", skipped)) {
    if (skipped.numel() != 1) throw ssd::Error("grad_scaler: skipped_in_a_row must be a single value");
    k = skipped.to(torch::kInt64).item<int64_t>();
    if (k < 0) throw ssd::Error("grad_scaler: bad state (skipped_in_a_row " + std::to_string(k) + ")");
  }
  scale_ = s;
  growth_tracker_ = t;
  skipped_in_a_row_ = k;
  unscaled_ = stepped_ = found_inf_ = false;
}

}  // namespace ssdtrain
