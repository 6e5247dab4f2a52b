#include "precision.h"

#include "../model/error.h"

namespace ssdtrain {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  if (name == "fp16") return Precision::FP16;
  throw ssd::Error("unknown precision '" + name + "' (expected fp32, bf16 or fp16)");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::BF16: return "bf16";
    case Precision::FP16: return "fp16";
    case Precision::FP32: break;
  }
  return "fp32";
}

}  // namespace ssdtrain
