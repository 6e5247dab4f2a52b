// Chooses OpenBLAS's kernels as the model library does (ssd::select_openblas_kernels), runs two
// small convolutions through LibTorch's BLAS path (batch 1, small maps: im2col + sgemm), then
// prints, a line each:
//   initial-core <OpenBLAS core type at start, or "-">
//   kernels <what select_openblas_kernels() did, or "unchanged">
//   core <OpenBLAS core type now, or "-">
//   sum <sum of an all-ones convolution: 36864>
//   random <sum of |conv| of seeded random data, 9 digits>
//   <ssd::slow_blas_warning() or "none">
#include <cstdio>
#include <string>

#include <torch/nn/functional/conv.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "blas_check.h"

int main() {
  const std::string before = ssd::openblas_core();
  const std::string kernels = ssd::select_openblas_kernels();
  auto y = torch::nn::functional::conv2d(torch::ones({1, 8, 10, 10}), torch::ones({8, 8, 3, 3}));
  torch::manual_seed(0);
  auto x = torch::randn({1, 16, 12, 12}), w = torch::randn({32, 16, 3, 3});
  auto r = torch::nn::functional::conv2d(x, w, torch::nn::functional::Conv2dFuncOptions().padding(1));
  const auto now = ssd::openblas_core();
  const auto warning = ssd::slow_blas_warning();
  std::printf("initial-core %s\nkernels %s\ncore %s\nsum %.0f\nrandom %.9g\n%s\n", before.empty() ? "-" : before.c_str(),
              kernels.empty() ? "unchanged" : kernels.c_str(), now.empty() ? "-" : now.c_str(),
              y.sum().item<double>(), r.abs().sum().item<double>(), warning.empty() ? "none" : warning.c_str());
  return 0;
}
