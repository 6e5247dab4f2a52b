#include "nms.h"

#include <algorithm>
#include <map>

#include <torch/types.h>

#include "anchors.h"
#include "boxes.h"
#include "class_filter.h"

namespace ssd {

namespace {

struct Sorted {
  torch::Tensor order;      // indices by decreasing score
  torch::Tensor suppress;   // (n, n) bool: earlier box i would suppress later box j
};

// With groups (N) defined, only boxes of the same group suppress each other.
Sorted sort_and_suppress(const torch::Tensor& boxes, const torch::Tensor& scores,
                         double iou_threshold, const torch::Tensor& groups) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes must be (N, 4), got ",
              boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "nms: scores must be (N) = (", boxes.size(0), "), got ", scores.sizes());
  auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto sorted = boxes.index_select(0, order).to(torch::kFloat32);
  auto suppress = box_iou(sorted, sorted) > iou_threshold;
  if (groups.defined()) {
    auto g = groups.index_select(0, order);
    suppress &= g.unsqueeze(1) == g.unsqueeze(0);
  }
  return {order, suppress.triu(1)};
}

}  // namespace

torch::Tensor nms_fixed_point(const torch::Tensor& boxes, const torch::Tensor& scores,
                              double iou_threshold, const torch::Tensor& groups) {
  const int64_t n = boxes.size(0);
  if (n == 0) return torch::empty({0}, scores.options().dtype(torch::kLong));
  auto [order, suppress] = sort_and_suppress(boxes, scores, iou_threshold, groups);
  // Greedy NMS is the unique solution of keep[j] = !any_i<j (keep[i] && suppress[i][j]).
  // Jacobi iteration from keep = all fixes one more leading entry per step and stops at that
  // fixed point, typically after a handful of steps, without leaving the device.
  auto keep = torch::ones({n}, boxes.options().dtype(torch::kBool));
  auto suppress_f = suppress.to(torch::kFloat32);
  for (int64_t step = 0; step <= n; ++step) {
    auto hit = torch::matmul(keep.to(torch::kFloat32).unsqueeze(0), suppress_f).squeeze(0) > 0;
    auto next = ~hit;
    if (torch::equal(next, keep)) break;
    keep = next;
  }
  return order.masked_select(keep);
}

namespace {

torch::Tensor grouped_nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold,
                          const torch::Tensor& groups) {
  if (boxes.is_cuda()) return nms_fixed_point(boxes, scores, iou_threshold, groups);
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes must be (N, 4), got ", boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "nms: scores must be (N) = (", boxes.size(0), "), got ", scores.sizes());
  const int64_t n = boxes.size(0);
  if (n == 0) return torch::empty({0}, scores.options().dtype(torch::kLong));
  // On the CPU: the plain greedy sweep, each IoU computed when needed as box_iou computes it (the
  // same float operations in the same order): no n x n matrix (a frame's 4096 candidates took
  // 0.3 s and a gigabyte so), and boxes removed already are not compared again.
  auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const auto sorted = boxes.index_select(0, order).to(torch::kFloat32).contiguous();
  const auto g = groups.defined() ? groups.index_select(0, order).to(torch::kLong).contiguous() : torch::Tensor();
  const float* b = sorted.data_ptr<float>();
  const int64_t* grp = g.defined() ? g.data_ptr<int64_t>() : nullptr;
  const float t = static_cast<float>(iou_threshold);
  std::vector<float> area(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    area[i] = std::max(b[4 * i + 2] - b[4 * i], 0.f) * std::max(b[4 * i + 3] - b[4 * i + 1], 0.f);
  std::vector<uint8_t> removed(static_cast<size_t>(n), 0);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < n; ++i) {
    if (removed[i]) continue;
    kept.push_back(i);
    const float* bi = b + 4 * i;
    for (int64_t j = i + 1; j < n; ++j) {
      if (removed[j] || (grp && grp[j] != grp[i])) continue;
      const float* bj = b + 4 * j;
      const float w = std::max(std::min(bi[2], bj[2]) - std::max(bi[0], bj[0]), 0.f);
      const float h = std::max(std::min(bi[3], bj[3]) - std::max(bi[1], bj[1]), 0.f);
      const float inter = w * h;
      const float uni = area[i] + area[j] - inter;
      const float iou = uni > 0.f ? inter / std::max(uni, 1e-12f) : 0.f;
      if (iou > t) removed[j] = 1;
    }
  }
  auto idx = torch::from_blob(kept.data(), {static_cast<int64_t>(kept.size())}, torch::kLong);
  return order.index_select(0, idx.clone());
}

}  // namespace

torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold) {
  return grouped_nms(boxes, scores, iou_threshold, torch::Tensor());
}

torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                          const torch::Tensor& groups, double iou_threshold) {
  TORCH_CHECK(groups.dim() == 1 && groups.size(0) == boxes.size(0),
              "batched_nms: groups must be (N) = (", boxes.size(0), "), got ", groups.sizes());
  // A same-group mask on the IoUs of the boxes as they are (not torchvision's shift of each
  // group's boxes apart, whose float32 rounding far from the origin moved IoUs near the
  // threshold by up to 4e-3 at a thousand classes: the CPU and CUDA output stages disagreed).
  return grouped_nms(boxes, scores, iou_threshold, groups);
}

namespace {

// The best pre_nms_top_k (anchor, class) pairs of every image, by decreasing score, those above
// their class's threshold first; and, for the pairs past them, every pair's ranking score.
struct Candidates {
  int64_t C = 0;
  torch::Tensor scores;    // (B, k) float
  torch::Tensor classes;   // (B, k) int64
  torch::Tensor boxes;     // (B, k, 4) float corners, clamped to [0, 1]
  torch::Tensor passes;    // (B, k) bool: above its class's threshold, with a finite box
  torch::Tensor index;     // (B, k) int64: the pairs' places (anchor * C + class) in `ranked`
  torch::Tensor ranked;    // (B, A * C) float: a passing pair's score, -1 for the others
  torch::Tensor passing;   // (B) int64: how many pairs pass, the k candidates' and the others'
  torch::Tensor all_boxes; // (B, A, 4) float corners, clamped to [0, 1]
};

// The per-class thresholds as a tensor on the scores' device that compares with (B, A, C)
// scores: the same C values for every image as one (1, 1, C) row, or C per image as (B, 1, C)
// (images past those given: ClassFilter::kDropped, above every score). Made with fills (a
// host-to-device copy could not be part of a CUDA graph): the commonest value, then one fill per
// value that differs.
torch::Tensor threshold_tensor(const std::vector<float>& t, int64_t B, int64_t C, const torch::Tensor& like) {
  const auto n = static_cast<int64_t>(t.size());
  TORCH_CHECK(n == C || (n % C == 0 && n / C <= B), "postprocess: ", n, " class thresholds for a batch of ", B,
              " images of ", C, " classes");
  const int64_t rows = n == C ? 1 : B;
  std::vector<float> all(t);
  all.resize(static_cast<size_t>(rows * C), ClassFilter::kDropped);
  std::map<float, int64_t> count;
  for (float v : all) ++count[v];
  const float base = std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) {
                       return a.second < b.second;
                     })->first;
  auto thr = torch::full({rows * C}, base, like.options().dtype(torch::kFloat32));
  for (int64_t i = 0; i < rows * C; ++i)
    if (all[static_cast<size_t>(i)] != base) thr.narrow(0, i, 1).fill_(all[static_cast<size_t>(i)]);
  return thr.view({rows, 1, C});
}

Candidates top_candidates(const torch::Tensor& cls_logits, const torch::Tensor& box_activations,
                          const Anchors& anchors, const PostprocessOptions& options) {
  const int64_t B = cls_logits.size(0), A = anchors.size();
  TORCH_CHECK(cls_logits.dim() == 3 && cls_logits.size(1) == A && cls_logits.size(2) >= 2,
              "postprocess: cls_logits must be (B, ", A, ", C+1), got ", cls_logits.sizes());
  TORCH_CHECK(box_activations.dim() == 3 && box_activations.size(0) == B &&
                  box_activations.size(1) == A && box_activations.size(2) == 4,
              "postprocess: box_activations must be (", B, ", ", A, ", 4), got ",
              box_activations.sizes());
  const int64_t C = cls_logits.size(2) - 1;
  auto boxes = activations_to_boxes(box_activations.to(torch::kFloat32), anchors).clamp(0, 1);
  auto scores = torch::sigmoid(cls_logits.narrow(2, 0, C).to(torch::kFloat32));   // (B, A, C)
  // Above the class's threshold, with a finite box (a weights file's NaN must not reach NMS,
  // where it would suppress nothing); the others rank below every such pair.
  auto passes = (options.class_thresholds.empty()
                     ? scores > options.score_threshold
                     : scores > threshold_tensor(options.class_thresholds, B, C, scores)) &
                torch::isfinite(boxes).all(2, /*keepdim=*/true);
  auto flat = torch::where(passes, scores, torch::full({}, -1.0f, scores.options())).reshape({B, A * C});
  const int64_t k = std::min<int64_t>(std::max(options.pre_nms_top_k, 1), A * C);
  auto top_idx = std::get<1>(flat.topk(k, 1, /*largest=*/true, /*sorted=*/true));   // (B, k)
  auto anchor_idx = top_idx.div(C, "floor");
  return {C,
          scores.reshape({B, A * C}).gather(1, top_idx),
          top_idx.remainder(C),
          boxes.gather(1, anchor_idx.unsqueeze(-1).expand({B, k, 4})),
          passes.reshape({B, A * C}).gather(1, top_idx),
          top_idx,
          flat,
          passes.reshape({B, A * C}).sum(1),
          boxes};
}

// The most candidates past the first k that one step of more_detections() compares (its
// matrices are chunk x chunk, and kept x chunk).
constexpr int64_t kChunk = 4096;

// The NMS groups of candidates of these classes: the classes, or one group across them.
torch::Tensor nms_groups(const torch::Tensor& classes, bool class_agnostic) {
  return class_agnostic ? torch::zeros_like(classes) : classes;
}

// Greedy per-class NMS (class_agnostic: across classes) over all of image b's passing pairs, in
// decreasing score order, goes on past its k candidates, whose survivors are `kept`, while fewer
// than `wanted` survive: the pairs past them, a chunk at a time, lose those a kept box of their
// class (class_agnostic: any kept box) suppresses, and the rest of the chunk runs through NMS
// itself. The same detections as NMS over every passing pair (the candidates only spare the work
// where the first k leave enough).
ImageDetections more_detections(const Candidates& cand, int64_t b, ImageDetections kept, int64_t wanted,
                                double iou_threshold, bool class_agnostic) {
  const int64_t C = cand.C;
  auto rest = cand.ranked[b].clone();
  rest.index_fill_(0, cand.index[b], -1.0f);   // (the k candidates are done)
  auto order = std::get<1>(rest.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const int64_t n = (cand.passing[b] - cand.passes[b].sum()).item<int64_t>();   // (first in `order`)
  for (int64_t start = 0; start < n && kept.scores.size(0) < wanted; start += kChunk) {
    auto pairs = order.narrow(0, start, std::min(kChunk, n - start));
    auto classes = pairs.remainder(C);
    auto boxes = cand.all_boxes[b].index_select(0, pairs.div(C, "floor"));
    auto scores = cand.ranked[b].index_select(0, pairs);
    if (kept.scores.size(0) > 0) {
      auto overlap = box_iou(kept.boxes, boxes) > iou_threshold;
      auto hit = (class_agnostic ? overlap : overlap & (kept.labels.unsqueeze(1) == classes.unsqueeze(0))).any(0);
      auto free = hit.logical_not();
      boxes = boxes.index({free});
      scores = scores.index({free});
      classes = classes.index({free});
    }
    auto keep = batched_nms(boxes, scores, nms_groups(classes, class_agnostic), iou_threshold);
    kept.boxes = torch::cat({kept.boxes, boxes.index_select(0, keep)});
    kept.scores = torch::cat({kept.scores, scores.index_select(0, keep)});
    kept.labels = torch::cat({kept.labels, classes.index_select(0, keep)});
  }
  return kept;
}

}  // namespace

std::vector<ImageDetections> postprocess(const torch::Tensor& cls_logits,
                                         const torch::Tensor& box_activations,
                                         const Anchors& anchors,
                                         const PostprocessOptions& options) {
  // Candidates of every image at once, then those that pass.
  auto cand = top_candidates(cls_logits, box_activations, anchors, options);
  const int64_t B = cls_logits.size(0);
  const auto& sel = cand.passes;   // (B, k)
  std::vector<ImageDetections> out;
  out.reserve(B);
  for (int64_t b = 0; b < B; ++b) {
    // Each image on its own (group = class): the work grows with the batch linearly, and no
    // image's result depends on its place in the batch.
    auto mine = sel[b];
    auto boxes = cand.boxes[b].index({mine}), scores = cand.scores[b].index({mine}),
         classes = cand.classes[b].index({mine});
    auto keep = batched_nms(boxes, scores, nms_groups(classes, options.class_agnostic),
                            options.nms_iou);   // decreasing score order
    ImageDetections d{boxes.index_select(0, keep), scores.index_select(0, keep), classes.index_select(0, keep)};
    const int64_t wanted = std::max(options.max_detections, 0);
    if (d.scores.size(0) < wanted && cand.passing[b].item<int64_t>() > cand.scores.size(1))
      d = more_detections(cand, b, std::move(d), wanted, options.nms_iou, options.class_agnostic);
    if (d.scores.size(0) > wanted) {
      d.boxes = d.boxes.narrow(0, 0, wanted);
      d.scores = d.scores.narrow(0, 0, wanted);
      d.labels = d.labels.narrow(0, 0, wanted);
    }
    out.push_back(std::move(d));
  }
  return out;
}

FixedDetections postprocess_fixed(const torch::Tensor& cls_logits,
                                  const torch::Tensor& box_activations, const Anchors& anchors,
                                  const PostprocessOptions& options, int iterations) {
  auto cand = top_candidates(cls_logits, box_activations, anchors, options);
  const int64_t B = cls_logits.size(0), k = cand.scores.size(1);
  const auto& valid = cand.passes;   // (B, k), as postprocess()
  auto overlap = box_iou(cand.boxes, cand.boxes) > options.nms_iou;               // (B, k, k)
  if (!options.class_agnostic) overlap &= cand.classes.unsqueeze(2) == cand.classes.unsqueeze(1);
  auto suppress = overlap.triu(1).to(torch::kFloat32);
  // Jacobi steps towards keep[j] = valid[j] && !any_{i<j} (keep[i] && suppress[i][j]); after
  // step s the first s entries are final, and an unchanged step means the fixed point.
  auto keep = valid;
  torch::Tensor converged = torch::zeros({B}, valid.options());
  for (int step = 0; step < std::max(iterations, 1); ++step) {
    auto hit = torch::bmm(keep.to(torch::kFloat32).unsqueeze(1), suppress).squeeze(1) > 0;
    auto next = valid & ~hit;
    converged = (next == keep).all(1);
    keep = next;
  }
  // The first M kept candidates of each row, in score order: rank kept ones by position.
  const int64_t M = std::min<int64_t>(std::max(options.max_detections, 0), k);
  auto pos = torch::arange(k, cand.classes.options()).unsqueeze(0).expand({B, k});
  auto key = torch::where(keep, k - pos, torch::zeros_like(pos));
  auto sel = std::get<1>(key.topk(M, 1, /*largest=*/true, /*sorted=*/true));      // (B, M)
  auto found = keep.sum(1);
  auto counts = found.clamp_max(M);
  // Fewer than max_detections among the candidates while pairs past them pass: those may hold
  // more detections, which postprocess() finds (not converged: the caller runs it).
  converged &= (found >= std::max(options.max_detections, 0)) | (cand.passing <= k);
  auto row_ok = torch::arange(M, counts.options()).unsqueeze(0) < counts.unsqueeze(1);
  auto rows = torch::cat({cand.classes.gather(1, sel).to(torch::kFloat32).unsqueeze(2),
                          cand.scores.gather(1, sel).unsqueeze(2),
                          cand.boxes.gather(1, sel.unsqueeze(2).expand({B, M, 4}))},
                         2);
  // Zeros past counts[b] (where, not a product: a dropped NaN box's row may fill a place there).
  auto packed = torch::where(row_ok.unsqueeze(2), rows, torch::zeros({}, rows.options()));
  return {packed, counts, converged};
}

}  // namespace ssd
