// Mixed-precision training (ssd-train --precision, names in precision.h): an autocast scope for
// the forward pass, and the dynamic loss scaler fp16 needs (torch.cuda.amp.GradScaler's
// algorithm). Compiles against LibTorch 1.13 and 2.x; trainer.cpp and bench/bench_train.cpp
// use it.
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "precision.h"

namespace torch {
namespace optim {
class Optimizer;
}
namespace serialize {
class InputArchive;
class OutputArchive;
}  // namespace serialize
}  // namespace torch

namespace ssdtrain {

// Throws ssd::Error unless `device` can train at `p`: fp16 needs CUDA (LibTorch's CPU autocast
// is bf16 only); bf16 and fp32 run anywhere.
void check_precision(Precision p, const torch::Device& device);

// Autocast to the precision's dtype on the device's type for the guard's lifetime (a no-op for
// fp32). On exit the previous autocast state and dtype come back, and the cache of cast weights
// is cleared when the outermost autocast scope ends (as torch.autocast's __exit__).
class AutocastGuard {
 public:
  AutocastGuard(Precision p, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Float;
};

// Dynamic loss scaling for fp16, as torch.cuda.amp.GradScaler: the loss is multiplied by the
// scale before backward; unscale() divides the gradients by it and notes whether any is inf or
// nan; step() then runs the optimizer only when all were finite; update() halves the scale after
// such a skipped step, and doubles it after growth_interval finite steps in a row. A disabled
// scaler (fp32, bf16) leaves the loss and the gradients alone and always steps.
// Per iteration: scale(loss).backward(); [unscale(opt); clip;] step(opt); update().
class GradScaler {
 public:
  struct Options {
    double init_scale = 65536.0;     // 2^16
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int64_t growth_interval = 2000;  // finite steps in a row before the scale grows
  };
  explicit GradScaler(bool enabled = false);
  GradScaler(bool enabled, const Options& options);

  bool enabled() const { return enabled_; }
  double current_scale() const { return enabled_ ? scale_ : 1.0; }
  int64_t growth_tracker() const { return growth_tracker_; }   // finite steps since the last change
  // Steps skipped (inf/nan gradients) in a row up to the last update(); 0 after a step taken.
  int64_t skipped_in_a_row() const { return skipped_in_a_row_; }
  // Whether a non-finite loss at the step just ended may be passed over: the scaler skipped that
  // step, as torch.cuda.amp does an fp16 overflow, and fewer than `max_in_a_row` before it were
  // skipped too (more are divergence). Always false for a disabled scaler.
  bool passes_over_nonfinite_loss(int64_t max_in_a_row = 10) const {
    return enabled_ && skipped_in_a_row_ > 0 && skipped_in_a_row_ <= max_in_a_row;
  }

  // loss * scale (the loss itself when disabled).
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Divides the gradients of the optimizer's parameters by the scale and records whether any is
  // inf/nan (before gradient clipping). At most once per iteration: throws ssd::Error on a second
  // call before update().
  void unscale(torch::optim::Optimizer& optimizer);
  // Unscales (unless done already), then steps the optimizer unless a gradient was inf/nan.
  // Returns whether it stepped. Once per iteration (throws ssd::Error on a second call).
  bool step(torch::optim::Optimizer& optimizer);
  // Adjusts the scale after step(); ends the iteration.
  void update();

  // The scale and growth tracker, for checkpoints ("scale", "growth_tracker").
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);   // throws ssd::Error on a bad state

 private:
  bool enabled_;
  Options options_;
  float scale_;                 // float32, as GradScaler's scale tensor
  int64_t growth_tracker_ = 0;
  int64_t skipped_in_a_row_ = 0;
  bool unscaled_ = false;       // unscale() done this iteration
  bool found_inf_ = false;      // ... and found an inf/nan gradient
  bool stepped_ = false;        // step() done this iteration
};

}  // namespace ssdtrain
