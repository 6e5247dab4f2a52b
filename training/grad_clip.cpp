#include "grad_clip.h"

#include <torch/utils.h>

namespace ssdtrain {

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params)
    if (p.grad().defined()) {
      grads.push_back(p.grad());
      norms.push_back(p.grad().norm(2).to(torch::kFloat32));
    }
  if (grads.empty()) return {};
  const torch::Tensor norm = torch::stack(norms).norm(2);
  const torch::Tensor coef = (max_norm / (norm + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef.to(g.scalar_type()));
  return norm;
}

}  // namespace ssdtrain
