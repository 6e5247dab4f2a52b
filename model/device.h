// The device a name such as "auto", "cpu", "cuda" or "cuda:1" stands for: ssddetect's `device`,
// ssd-train's --device. Light: no ATen headers.
#pragma once

#include <string>

#include <c10/core/Device.h>

namespace ssd {

// "auto" (or empty): the first CUDA device when LibTorch sees one, else the CPU. Throws
// ssd::Error for a malformed name, and for a CUDA device this LibTorch build or machine lacks.
c10::Device parse_device(const std::string& name);

// The LibTorch version this was built with and the CUDA devices it sees, for a --version line
// or a bug report: "LibTorch 1.13.0, no CUDA device" or "LibTorch 2.11.0, 1 CUDA device".
std::string runtime_description();

}  // namespace ssd
