#include "device.h"

#include <algorithm>

#include <torch/cuda.h>
#include <torch/version.h>

#include "error.h"

namespace ssd {

c10::Device parse_device(const std::string& name) {
  if (name.empty() || name == "auto")
    return torch::cuda::is_available() ? c10::Device(c10::DeviceType::CUDA, 0) : c10::Device(c10::DeviceType::CPU);
  if (name == "cpu") return c10::DeviceType::CPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (name != "cuda") {   // cuda:N, N one to four digits
      const std::string digits = name.substr(5);
      if (digits.empty() || digits.size() > 4 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw Error("invalid device '" + name + "' (expected auto, cpu, cuda or cuda:N)");
      index = std::stoi(digits);
    }
    if (!torch::cuda::is_available())
      throw Error("device '" + name + "' requested but no CUDA device is available" +
                  " (this LibTorch build or machine has none); use auto or cpu");
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index >= count)
      throw Error("device '" + name + "' requested but only " + std::to_string(count) +
                  " CUDA device(s) exist");
    return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("invalid device '" + name + "' (expected auto, cpu, cuda or cuda:N)");
}

std::string runtime_description() {
  std::string s = "LibTorch " TORCH_VERSION;
  if (!torch::cuda::is_available()) return s + ", no CUDA device";
  const auto n = torch::cuda::device_count();
  return s + ", " + std::to_string(n) + " CUDA device" + (n == 1 ? "" : "s");
}

}  // namespace ssd
