// ssd-train's --precision names (LibTorch-free, so that the CLI validates them with the same
// function the trainer uses); the autocast and loss scaling behind them are mixed_precision.h.
#pragma once

#include <string>

namespace ssdtrain {

// fp32: no autocast. bf16 / fp16: autocast to that dtype (weights and gradients stay fp32).
enum class Precision { FP32, BF16, FP16 };

// "fp32", "bf16" or "fp16"; anything else throws ssd::Error.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);

}  // namespace ssdtrain
