// Gradient clipping by the global L2 norm, computed and applied on the gradients' device.
#pragma once

#include <vector>

#include <torch/types.h>

namespace ssdtrain {

// Scales every defined gradient of `params` by min(1, max_norm / (norm + 1e-6)), norm the L2
// norm of all of them together: torch.nn.utils.clip_grad_norm_'s rule. Unlike LibTorch's
// clip_grad_norm_, which returns the norm as a double, nothing is read back to the host, so on
// CUDA the step goes on without waiting for the backward pass (as PyTorch's Python version).
// Returns the norm (a 0-dim float tensor on the device; undefined when no gradient is).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace ssdtrain
