// Runs a small convolution through LibTorch, then prints ssd::slow_blas_warning() or "none".
#include <cstdio>

#include <torch/nn/functional/conv.h>
#include <torch/types.h>

#include "blas_check.h"

int main() {
  auto y = torch::nn::functional::conv2d(torch::ones({1, 8, 10, 10}), torch::ones({8, 8, 3, 3}));
  const auto w = ssd::slow_blas_warning();
  std::printf("sum %.0f\n%s\n", y.sum().item<double>(), w.empty() ? "none" : w.c_str());
  return 0;
}
