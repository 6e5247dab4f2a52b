#include "loss.h"

#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include "anchors.h"
#include "boxes.h"
#include "matching.h"

namespace ssd {

torch::Tensor focal_bce_sum(const torch::Tensor& logits, const torch::Tensor& targets,
                            bool focal, double alpha, double gamma,
                            const torch::Tensor& weight) {
  TORCH_CHECK(logits.sizes() == targets.sizes(), "focal_bce_sum: logits ", logits.sizes(),
              " and targets ", targets.sizes(), " differ");
  namespace F = torch::nn::functional;
  auto bce = F::binary_cross_entropy_with_logits(
      logits, targets, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  if (weight.defined()) bce = bce * weight;
  if (!focal) return bce.sum();
  // The lesson's FocalLoss.get_weight: w = alpha_t * (1 - p_t)^gamma. The weight keeps its
  // gradient (BCE's own weight argument would refuse one), so this is the focal loss's gradient.
  auto p = torch::sigmoid(logits);
  auto pt = p * targets + (1 - p) * (1 - targets);
  auto w = (alpha * targets + (1 - alpha) * (1 - targets)) * (1 - pt).pow(gamma);
  return (w * bce).sum();
}

torch::Tensor ignored_anchors(const torch::Tensor& ignore_boxes, const torch::Tensor& positive,
                              const torch::Tensor& anchor_corners, double threshold) {
  TORCH_CHECK(ignore_boxes.dim() == 3 && ignore_boxes.size(2) == 4 && positive.dim() == 2 &&
                  ignore_boxes.size(0) == positive.size(0) &&
                  positive.size(1) == anchor_corners.size(0),
              "ignored_anchors: ignore_boxes must be (B, I, 4) and positive (B, A) with A = ",
              anchor_corners.size(0), " anchors, got ", ignore_boxes.sizes(), " and ",
              positive.sizes());
  if (ignore_boxes.size(1) == 0) return torch::zeros_like(positive, torch::kBool);
  const int64_t B = positive.size(0), A = positive.size(1);
  auto corners = anchor_corners.to(torch::kFloat32).unsqueeze(0).expand({B, A, 4});
  auto inside = box_ioa(corners, ignore_boxes.to(torch::kFloat32));   // (B, A, I)
  return (inside.amax(2) > threshold) & ~positive.to(torch::kBool);
}

LossParts ssd_loss(const torch::Tensor& cls_logits, const torch::Tensor& box_activations,
                   const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels,
                   const torch::Tensor& gt_valid, const Anchors& anchors,
                   const LossOptions& options, const torch::Tensor& ignore_boxes) {
  const int64_t B = cls_logits.size(0), A = anchors.size();
  TORCH_CHECK(cls_logits.dim() == 3 && cls_logits.size(1) == A && cls_logits.size(2) >= 2,
              "ssd_loss: cls_logits must be (B, ", A, ", C+1), got ", cls_logits.sizes());
  TORCH_CHECK(box_activations.dim() == 3 && box_activations.size(0) == B &&
                  box_activations.size(1) == A && box_activations.size(2) == 4,
              "ssd_loss: box_activations must be (", B, ", ", A, ", 4), got ",
              box_activations.sizes());
  TORCH_CHECK(gt_labels.sizes() == gt_valid.sizes() && gt_boxes.dim() == 3 &&
                  gt_boxes.size(0) == B && gt_boxes.sizes().slice(0, 2) == gt_labels.sizes(),
              "ssd_loss: gt_boxes ", gt_boxes.sizes(), ", gt_labels ", gt_labels.sizes(),
              " and gt_valid ", gt_valid.sizes(), " must be (B, G, 4), (B, G), (B, G) with B = ",
              B);
  const int64_t C = cls_logits.size(2) - 1;
  auto m = match_anchors(gt_boxes.to(torch::kFloat32), gt_valid, anchors.corners,
                         options.match_threshold);
  auto pos = m.positive;                                                   // (B, A)

  // Box loss: per image, mean |box - gt| over the positive anchors' 4 coordinates.
  auto pred = activations_to_boxes(box_activations.to(torch::kFloat32), anchors);   // (B, A, 4)
  auto gt = gt_boxes.to(torch::kFloat32).gather(1, m.gt_index.unsqueeze(-1).expand({B, A, 4}));
  auto abs_err = (pred - gt).abs().sum(-1) * pos;                          // (B, A)
  auto npos = pos.sum(1).to(torch::kFloat32);                              // (B)
  auto loc = (abs_err.sum(1) / (npos * 4).clamp_min(1)).sum();

  // Class loss: background (index C) for non-positive anchors, one-hot without background.
  auto cls_t = gt_labels.gather(1, m.gt_index);
  cls_t = torch::where(pos, cls_t, torch::full_like(cls_t, C));
  auto onehot = torch::zeros({B, A, C + 1}, cls_logits.options().dtype(torch::kFloat32))
                    .scatter_(2, cls_t.unsqueeze(-1), 1.0)
                    .narrow(2, 0, C);
  auto logits = cls_logits.narrow(2, 0, C).to(torch::kFloat32);
  torch::Tensor weight;   // (B * A, 1): 0 for anchors in an ignored region
  if (ignore_boxes.defined() && options.mask_ignored) {
    auto ignored = ignored_anchors(ignore_boxes, pos, anchors.corners, options.match_threshold);
    weight = (~ignored).to(torch::kFloat32).reshape({-1, 1});
  }
  auto cls = focal_bce_sum(logits.reshape({-1, C}), onehot.reshape({-1, C}),
                           options.class_loss == ClassLoss::Focal, options.alpha, options.gamma,
                           weight) /
             static_cast<double>(C);
  return {loc, cls, loc + cls};
}

}  // namespace ssd
