#include "evaluate.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "atomic_file.h"
#include "text.h"

namespace ssdtrain {

namespace {

constexpr int kIouThresholds = 10;   // 0.50:0.05:0.95
constexpr int kRecallPoints = 101;   // 0:0.01:1
// pycocotools' area ranges (all, small, medium, large), in squared pixels, both ends included.
constexpr int kAreaRanges = 4;
constexpr double kAreaLo[kAreaRanges] = {0, 0, 32 * 32, 96 * 96};
constexpr double kAreaHi[kAreaRanges] = {1e10, 32 * 32, 96 * 96, 1e10};
constexpr int kMaxDetSettings = 3;   // pycocotools' maxDets: 1, 10 and MapOptions::max_dets

// numpy.linspace(start, stop, num): start + i * step, the last element exactly stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> v(num);
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) v[i] = i * step + start;
  v[num - 1] = stop;
  return v;
}

// pycocotools' bbIou: x, y, w, h in double; crowd regions use the detection's area as the union.
double coco_iou(const ScoredBox& d, const BoxAnnotation& g) {
  const double dx = d.x1, dy = d.y1, dw = double(d.x2) - d.x1, dh = double(d.y2) - d.y1;
  const double gx = g.x1, gy = g.y1, gw = double(g.x2) - g.x1, gh = double(g.y2) - g.y1;
  const double w = std::fmin(dx + dw, gx + gw) - std::fmax(dx, gx);
  if (w <= 0) return 0;
  const double h = std::fmin(dy + dh, gy + gh) - std::fmax(dy, gy);
  if (h <= 0) return 0;
  const double inter = w * h;
  const double da = dw * dh, ga = gw * gh;
  const double uni = g.ignore ? da : da + ga - inter;
  return inter / uni;
}

double gt_area(const BoxAnnotation& g) {
  return g.area >= 0 ? g.area : (double(g.x2) - g.x1) * (double(g.y2) - g.y1);
}
double det_area(const ScoredBox& d) { return (double(d.x2) - d.x1) * (double(d.y2) - d.y1); }

// VOC IoU (normalised or sub-pixel coordinates, so no "+1").
double voc_iou(const ScoredBox& d, const BoxAnnotation& g) {
  const double w = std::min<double>(d.x2, g.x2) - std::max<double>(d.x1, g.x1);
  const double h = std::min<double>(d.y2, g.y2) - std::max<double>(d.y1, g.y1);
  if (w <= 0 || h <= 0) return 0;
  const double inter = w * h;
  const double da = std::max(0.0, double(d.x2) - d.x1) * std::max(0.0, double(d.y2) - d.y1);
  const double ga = std::max(0.0, double(g.x2) - g.x1) * std::max(0.0, double(g.y2) - g.y1);
  const double uni = da + ga - inter;
  return uni > 0 ? inter / uni : 0;
}

// Indices sorting by decreasing score, stable (numpy argsort(-score, kind='mergesort')).
std::vector<size_t> order_by_score(const std::vector<float>& scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return idx;
}

struct CocoImageEval {
  std::vector<float> scores;                  // D, sorted, truncated
  std::vector<std::vector<char>> matched;     // T x D
  std::vector<std::vector<char>> ignored;     // T x D
  int non_ignored_gt = 0;
};

// pycocotools' evaluateImg for one image, class and area range [lo, hi]: ground truths that
// are crowd regions (BoxAnnotation::ignore) or whose area lies outside the range are ignored
// (they come last, and a detection matched to one counts neither way), as are unmatched
// detections whose own area lies outside it.
CocoImageEval coco_evaluate_image(const std::vector<BoxAnnotation>& gts_in,
                                  const std::vector<ScoredBox>& dets_in,
                                  const std::vector<double>& iou_thresholds, int max_dets, double lo,
                                  double hi) {
  CocoImageEval out;
  // Ground truths: those that count first (stable), then the ignored ones.
  std::vector<BoxAnnotation> gts;
  std::vector<char> gt_ignored;
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& g : gts_in) {
      const double a = gt_area(g);
      const bool ignored = g.ignore || a < lo || a > hi;
      if (ignored != (pass == 1)) continue;
      gts.push_back(g);
      gt_ignored.push_back(ignored);
      if (!ignored) ++out.non_ignored_gt;
    }
  // Detections: highest score first (stable), at most max_dets.
  std::vector<float> raw_scores;
  for (const auto& d : dets_in) raw_scores.push_back(d.score);
  std::vector<ScoredBox> dets;
  for (size_t i : order_by_score(raw_scores)) {
    if (static_cast<int>(dets.size()) >= max_dets) break;
    dets.push_back(dets_in[i]);
  }
  const size_t G = gts.size(), D = dets.size(), T = iou_thresholds.size();
  for (const auto& d : dets) out.scores.push_back(d.score);
  out.matched.assign(T, std::vector<char>(D, 0));
  out.ignored.assign(T, std::vector<char>(D, 0));
  if (G > 0 && D > 0) {
    std::vector<std::vector<double>> ious(D, std::vector<double>(G));
    for (size_t d = 0; d < D; ++d)
      for (size_t g = 0; g < G; ++g) ious[d][g] = coco_iou(dets[d], gts[g]);
    for (size_t t = 0; t < T; ++t) {
      std::vector<char> gt_matched(G, 0);
      for (size_t d = 0; d < D; ++d) {
        double best = std::min(iou_thresholds[t], 1 - 1e-10);
        long m = -1;
        for (size_t g = 0; g < G; ++g) {
          if (gt_matched[g] && !gts[g].ignore) continue;   // taken, and not a crowd region
          if (m > -1 && !gt_ignored[m] && gt_ignored[g]) break;
          if (ious[d][g] < best) continue;
          best = ious[d][g];
          m = static_cast<long>(g);
        }
        if (m == -1) continue;
        out.ignored[t][d] = gt_ignored[m];
        out.matched[t][d] = 1;
        gt_matched[m] = 1;
      }
    }
  }
  for (size_t d = 0; d < D; ++d) {
    const double a = det_area(dets[d]);
    if (a >= lo && a <= hi) continue;
    for (size_t t = 0; t < T; ++t)
      if (!out.matched[t][d]) out.ignored[t][d] = 1;
  }
  return out;
}

// pycocotools' accumulate for one class, area range and detection cap: precision interpolated at
// the 101 recall points and the final recall, per IoU threshold, over the evaluated images (each
// image's first max_det detections). False when no ground truth counts (AP undefined).
struct CocoCurve {
  std::vector<double> ap;       // per IoU threshold: mean interpolated precision
  std::vector<double> recall;   // per IoU threshold
  // At IoU 0.5: the best F1 over the cuts between distinct scores (ClassAp::best_f1), and the
  // interpolated precision at the recall points reached (ClassAp::pr50).
  double best_f1 = -1, f1_threshold = -1, f1_precision = -1, f1_recall = -1;
  std::vector<double> pr50;
};
bool coco_accumulate(const std::vector<CocoImageEval>& evals, int max_det, const std::vector<double>& rec_thr,
                     double score_floor, CocoCurve* out) {
  std::vector<float> scores;
  std::vector<std::vector<char>> matched(kIouThresholds), ignored(kIouThresholds);
  int npig = 0;
  for (const auto& e : evals) {
    const size_t n = std::min(e.scores.size(), static_cast<size_t>(max_det));
    npig += e.non_ignored_gt;
    scores.insert(scores.end(), e.scores.begin(), e.scores.begin() + n);
    for (int t = 0; t < kIouThresholds; ++t) {
      matched[t].insert(matched[t].end(), e.matched[t].begin(), e.matched[t].begin() + n);
      ignored[t].insert(ignored[t].end(), e.ignored[t].begin(), e.ignored[t].begin() + n);
    }
  }
  if (npig == 0) return false;
  const double eps = DBL_EPSILON;   // np.spacing(1)
  const std::vector<size_t> order = order_by_score(scores);
  const size_t nd = order.size();
  out->ap.assign(kIouThresholds, 0);
  out->recall.assign(kIouThresholds, 0);
  for (int t = 0; t < kIouThresholds; ++t) {
    std::vector<double> rc(nd), pr(nd);
    double tp = 0, fp = 0;
    for (size_t i = 0; i < nd; ++i) {
      const size_t j = order[i];
      if (!ignored[t][j]) {
        if (matched[t][j]) tp += 1; else fp += 1;
      }
      rc[i] = tp / npig;
      pr[i] = tp / (fp + tp + eps);
      // A cut below detection i (not between equal scores): F1 of what lies above it.
      const bool cut = i + 1 == nd || scores[order[i + 1]] < scores[j];
      if (t == 0 && cut && tp > 0) {
        const double precision = tp / (tp + fp), f1 = 2 * precision * rc[i] / (precision + rc[i]);
        if (f1 > out->best_f1) {
          const double below = i + 1 < nd ? scores[order[i + 1]] : std::min<double>(score_floor, scores[j]);
          out->best_f1 = f1;
          out->f1_threshold = (scores[j] + below) / 2;
          out->f1_precision = precision;
          out->f1_recall = rc[i];
        }
      }
    }
    out->recall[t] = nd ? rc[nd - 1] : 0;
    for (size_t i = nd; i-- > 1;)
      if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    double q_sum = 0;
    for (int r = 0; r < kRecallPoints; ++r) {
      // searchsorted(rc, thr, side='left'): first index with rc >= thr.
      const size_t pi = std::lower_bound(rc.begin(), rc.end(), rec_thr[r]) - rc.begin();
      if (pi >= nd) break;
      q_sum += pr[pi];
      if (t == 0) out->pr50.push_back(pr[pi]);
    }
    out->ap[t] = q_sum / kRecallPoints;
  }
  return true;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

}  // namespace

double voc_ap(const std::vector<double>& rec, const std::vector<double>& prec, bool eleven_point) {
  if (rec.size() != prec.size()) throw std::invalid_argument("voc_ap: size mismatch");
  if (eleven_point) {
    double ap = 0;
    for (int i = 0; i <= 10; ++i) {
      const double t = i * 0.1;
      double p = 0;
      for (size_t k = 0; k < rec.size(); ++k)
        if (rec[k] >= t) p = std::max(p, prec[k]);
      ap += p / 11.0;
    }
    return ap;
  }
  std::vector<double> mrec{0.0}, mpre{0.0};
  mrec.insert(mrec.end(), rec.begin(), rec.end());
  mpre.insert(mpre.end(), prec.begin(), prec.end());
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i > 0; --i) mpre[i - 1] = std::max(mpre[i - 1], mpre[i]);
  double ap = 0;
  for (size_t i = 0; i + 1 < mrec.size(); ++i)
    if (mrec[i + 1] != mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
  return ap;
}

MapEvaluator::MapEvaluator(std::vector<std::string> labels, MapOptions options)
    : labels_(std::move(labels)), options_(options) {
  if (options_.max_dets <= 0) throw std::invalid_argument("MapEvaluator: max_dets must be > 0");
}

void MapEvaluator::add_image(int64_t image_id, const std::vector<BoxAnnotation>& ground_truth,
                             const std::vector<ScoredBox>& detections) {
  for (const auto& im : images_)
    if (im.id == image_id)
      throw std::invalid_argument("MapEvaluator: image id " + std::to_string(image_id) +
                                  " added twice");
  for (const auto& g : ground_truth)
    if (g.label < 0 || g.label >= num_classes())
      throw std::invalid_argument("MapEvaluator: ground-truth label " + std::to_string(g.label) +
                                  " outside [0, " + std::to_string(num_classes()) + ")");
  for (const auto& d : detections)
    if (d.label < 0 || d.label >= num_classes())
      throw std::invalid_argument("MapEvaluator: detection label " + std::to_string(d.label) +
                                  " outside [0, " + std::to_string(num_classes()) + ")");
  images_.push_back({image_id, ground_truth, detections});
}

// Adds one image to the confusion matrix (MapResult::confusion).
static void add_confusion(const std::vector<BoxAnnotation>& gts, const std::vector<ScoredBox>& dets_in,
                          const MapOptions& o, std::vector<std::vector<int>>* m) {
  const int none = static_cast<int>(m->size()) - 1;
  std::vector<float> scores;
  for (const auto& d : dets_in) scores.push_back(d.score);
  std::vector<char> matched(gts.size(), 0);
  for (size_t i : order_by_score(scores)) {
    const ScoredBox& d = dets_in[i];
    if (!(d.score > o.confusion_threshold)) break;
    double best = o.confusion_iou;
    long g = -1;
    for (size_t k = 0; k < gts.size(); ++k) {
      if (matched[k] && !gts[k].ignore) continue;
      const double v = voc_iou(d, gts[k]);
      if (v >= best) best = v, g = static_cast<long>(k);
    }
    if (g < 0) {
      (*m)[none][d.label]++;
    } else if (!gts[g].ignore) {
      (*m)[gts[g].label][d.label]++;
      matched[g] = 1;
    }
  }
  for (size_t k = 0; k < gts.size(); ++k)
    if (!matched[k] && !gts[k].ignore) (*m)[gts[k].label][none]++;
}

MapResult MapEvaluator::compute() const {
  MapResult result;
  result.num_images = static_cast<int>(images_.size());
  result.confusion_threshold = options_.confusion_threshold;
  result.confusion.assign(labels_.size() + 1, std::vector<int>(labels_.size() + 1, 0));
  for (const auto& im : images_) add_confusion(im.gts, im.dets, options_, &result.confusion);
  // pycocotools visits images in increasing id order.
  std::vector<const Image*> images;
  for (const auto& im : images_) images.push_back(&im);
  std::stable_sort(images.begin(), images.end(),
                   [](const Image* a, const Image* b) { return a->id < b->id; });
  const std::vector<double> iou_thr = linspace(0.5, 0.95, kIouThresholds);
  const std::vector<double> rec_thr = linspace(0.0, 1.0, kRecallPoints);
  const double eps = DBL_EPSILON;   // np.spacing(1)

  const int C = num_classes();
  int n_valid = 0;
  for (int c = 0; c < C; ++c) {
    ClassAp ap;
    ap.name = labels_[c];
    // ---------------- COCO ----------------
    // Per area range: each image's evaluation (images with neither ground truth nor detections
    // of the class are left out, as pycocotools leaves them out).
    std::vector<CocoImageEval> evals[kAreaRanges];
    for (const Image* im : images) {
      std::vector<BoxAnnotation> gts;
      std::vector<ScoredBox> dets;
      for (const auto& g : im->gts) if (g.label == c) gts.push_back(g);
      for (const auto& d : im->dets) if (d.label == c) dets.push_back(d);
      ap.num_det += static_cast<int>(dets.size());
      if (gts.empty() && dets.empty()) continue;
      for (int a = 0; a < kAreaRanges; ++a)
        evals[a].push_back(coco_evaluate_image(gts, dets, iou_thr, options_.max_dets, kAreaLo[a], kAreaHi[a]));
    }
    for (const auto& e : evals[0]) ap.num_gt += e.non_ignored_gt;
    const int max_dets[kMaxDetSettings] = {1, 10, options_.max_dets};
    CocoCurve curve;
    for (int m = 0; m < kMaxDetSettings - 1; ++m)
      if (coco_accumulate(evals[0], max_dets[m], rec_thr, options_.score_floor, &curve))
        (m == 0 ? ap.ar1 : ap.ar10) = mean(curve.recall);
    for (int a = kAreaRanges - 1; a >= 0; --a) {   // "all" last: `curve` then holds it
      curve = CocoCurve{};
      if (!coco_accumulate(evals[a], options_.max_dets, rec_thr, options_.score_floor, &curve)) continue;
      const double ap_a = mean(curve.ap), ar_a = mean(curve.recall);
      if (a == 1) ap.ap_small = ap_a, ap.ar_small = ar_a;
      if (a == 2) ap.ap_medium = ap_a, ap.ar_medium = ar_a;
      if (a == 3) ap.ap_large = ap_a, ap.ar_large = ar_a;
      if (a == 0) ap.ar100 = ar_a;
    }
    if (ap.num_gt == 0) {
      result.classes.push_back(ap);
      continue;
    }
    ap.valid = true;
    ++n_valid;
    const int npig = ap.num_gt;
    ap.ap_coco = mean(curve.ap);
    ap.ap50_coco = curve.ap[0];
    ap.ap75_coco = curve.ap[5];
    ap.recall50 = curve.recall[0];
    ap.best_f1 = curve.best_f1;
    ap.f1_threshold = curve.f1_threshold;
    ap.f1_precision = curve.f1_precision;
    ap.f1_recall = curve.f1_recall;
    ap.pr50 = curve.pr50;

    // ---------------- VOC (AP@0.5, no detection cap) ----------------
    struct VocDet { size_t image; ScoredBox box; };
    std::vector<VocDet> dets;
    std::vector<std::vector<BoxAnnotation>> gts(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      for (const auto& g : images[i]->gts) if (g.label == c) gts[i].push_back(g);
      for (const auto& d : images[i]->dets) if (d.label == c) dets.push_back({i, d});
    }
    std::stable_sort(dets.begin(), dets.end(),
                     [](const VocDet& a, const VocDet& b) { return a.box.score > b.box.score; });
    std::vector<std::vector<char>> detected(images.size());
    for (size_t i = 0; i < images.size(); ++i) detected[i].assign(gts[i].size(), 0);
    std::vector<double> rec(dets.size()), prec(dets.size());
    double tp = 0, fp = 0;
    for (size_t k = 0; k < dets.size(); ++k) {
      const auto& g = gts[dets[k].image];
      double ovmax = -std::numeric_limits<double>::infinity();
      size_t jmax = 0;
      for (size_t j = 0; j < g.size(); ++j) {
        const double o = voc_iou(dets[k].box, g[j]);
        if (o > ovmax) { ovmax = o; jmax = j; }
      }
      if (ovmax > 0.5) {
        if (!g[jmax].ignore) {
          if (!detected[dets[k].image][jmax]) {
            tp += 1;
            detected[dets[k].image][jmax] = 1;
          } else {
            fp += 1;
          }
        }
      } else {
        fp += 1;
      }
      rec[k] = tp / npig;
      prec[k] = tp / std::max(tp + fp, eps);
    }
    ap.ap50_voc07 = voc_ap(rec, prec, true);
    ap.ap50_voc = voc_ap(rec, prec, false);
    result.classes.push_back(ap);
  }
  if (n_valid > 0) {
    result.map50_voc07 = result.map50_voc = result.map_coco = result.map50_coco = result.map75_coco = 0;
    for (const auto& ap : result.classes) {
      if (!ap.valid) continue;
      result.map50_voc07 += ap.ap50_voc07;
      result.map50_voc += ap.ap50_voc;
      result.map_coco += ap.ap_coco;
      result.map50_coco += ap.ap50_coco;
      result.map75_coco += ap.ap75_coco;
    }
    auto class_mean = [&](double ClassAp::*field) {
      double sum = 0;
      int n = 0;
      for (const auto& ap : result.classes)
        if (ap.*field >= 0) sum += ap.*field, ++n;
      return n ? sum / n : -1.0;
    };
    result.map_small = class_mean(&ClassAp::ap_small);
    result.map_medium = class_mean(&ClassAp::ap_medium);
    result.map_large = class_mean(&ClassAp::ap_large);
    result.ar1 = class_mean(&ClassAp::ar1);
    result.ar10 = class_mean(&ClassAp::ar10);
    result.ar100 = class_mean(&ClassAp::ar100);
    result.ar_small = class_mean(&ClassAp::ar_small);
    result.ar_medium = class_mean(&ClassAp::ar_medium);
    result.ar_large = class_mean(&ClassAp::ar_large);
    result.map50_voc07 /= n_valid;
    result.map50_voc /= n_valid;
    result.map_coco /= n_valid;
    result.map50_coco /= n_valid;
    result.map75_coco /= n_valid;
  }
  return result;
}

std::string format_map_table(const MapResult& r) {
  // (Class names padded to the columns they take, not their bytes: ssd::pad_right.)
  int w = 5;
  for (const auto& c : r.classes) w = std::max(w, ssd::display_width(c.name));
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, " %7s %7s %9s %7s %7s %7s %7s\n", "#gt", "#det", "AP50-07", "AP50", "AP",
                "AP50c", "AP75c");
  os << ssd::pad_right("class", w) << buf;
  for (const auto& c : r.classes) {
    if (!c.valid) {
      std::snprintf(buf, sizeof buf, " %7d %7d %9s %7s %7s %7s %7s\n", c.num_gt, c.num_det, "-", "-", "-", "-", "-");
    } else {
      std::snprintf(buf, sizeof buf, " %7d %7d %9.4f %7.4f %7.4f %7.4f %7.4f\n", c.num_gt, c.num_det, c.ap50_voc07,
                    c.ap50_voc, c.ap_coco, c.ap50_coco, c.ap75_coco);
    }
    os << ssd::pad_right(c.name, w) << buf;
  }
  // A mean, or "-" where no class has ground truth (-1).
  auto v = [](double x) {
    char b[16];
    if (x < 0) return std::string("-");
    std::snprintf(b, sizeof b, "%.4f", x);
    return std::string(b);
  };
  std::snprintf(buf, sizeof buf, " %7s %7s %9s %7s %7s %7s %7s\n", "", "", v(r.map50_voc07).c_str(),
                v(r.map50_voc).c_str(), v(r.map_coco).c_str(), v(r.map50_coco).c_str(), v(r.map75_coco).c_str());
  os << ssd::pad_right("mean", w) << buf;
  os << "(AP50-07: VOC2007 11-point; AP50: VOC all-point; AP: COCO AP@[.5:.95]; "
        "AP50c/AP75c: COCO 101-point at IoU 0.5/0.75; " << r.num_images << " images)\n";
  // pycocotools' summary, the numbers COCOeval.summarize() prints.
  os << "COCO AP@[.5:.95] " << v(r.map_coco) << ", AP50 " << v(r.map50_coco) << ", AP75 " << v(r.map75_coco)
     << "; by size: small " << v(r.map_small) << ", medium " << v(r.map_medium) << ", large " << v(r.map_large)
     << "\nCOCO AR@[.5:.95] at 1/10/100 detections " << v(r.ar1) << " / " << v(r.ar10) << " / " << v(r.ar100)
     << "; by size (100): small " << v(r.ar_small) << ", medium " << v(r.ar_medium) << ", large " << v(r.ar_large)
     << "\n(size: the object's area in the image's pixels, COCO's ranges: small up to 32x32, medium 32x32 to 96x96, large above; -: no "
        "ground truth of that size)\n";
  // The confidence threshold with the best F1 per class, ready for ssddetect.
  std::string f1, none;
  for (const auto& c : r.classes) {
    if (c.f1_threshold < 0) {   // no true positive at any threshold: no F1 to pick
      none += (none.empty() ? "" : ", ") + c.name;
      continue;
    }
    char b[128];   // (the name, of any length, not in it)
    std::snprintf(b, sizeof b, " F1 %.3f (P %.3f, R %.3f) above %.3f", c.best_f1, c.f1_precision, c.f1_recall,
                  c.f1_threshold);
    f1 += (f1.empty() ? "" : "; ") + c.name + b;
  }
  if (!f1.empty()) {
    // Ready to paste into a shell's gst-launch-1.0 line. A class named with " or \ needs them
    // escaped inside gst-launch's own quotes as well, so that word goes in single quotes (the
    // shell's double quotes passed gst-launch a bare quote, and a space after it split the line).
    const std::string value = f1_class_thresholds(r);
    // (Thresholds picked on detections with NMS across classes hold with it: both are pasted.)
    const std::string predict_agnostic = r.class_agnostic_nms ? "--class-agnostic-nms " : "";
    os << "Best F1 at IoU 0.5 per class: " << f1 << "\nAs ssddetect's "
       << (r.class_agnostic_nms ? "properties: class-agnostic-nms=true " : "property: ");
    if (value.find_first_of("\"\\") == std::string::npos) {
      os << "class-thresholds=" << ssd::shell_double_quoted(value) << " (ssd-train predict: " << predict_agnostic
         << "--class-thresholds)\n";
    } else {
      std::string launch = "class-thresholds=\"";
      for (const char c : value) launch += (c == '"' || c == '\\' ? "\\" : "") + std::string(1, c);
      os << ssd::shell_single_quoted(launch + "\"") << " (ssd-train predict: " << predict_agnostic
         << "--class-thresholds " << ssd::shell_double_quoted(value) << ")\n";
    }
    if (!none.empty())
      os << "(no F1 above 0, so not in it, keeping ssddetect's threshold: " << none << ")\n";
  }
  return os.str();
}

std::string format_confusion(const MapResult& r) {
  const size_t n = r.confusion.size();
  if (n == 0) return {};
  std::vector<std::string> names;
  for (const auto& c : r.classes) names.push_back(c.name);
  names.push_back("none");
  int w = 6;
  for (const auto& s : names) w = std::max(w, ssd::display_width(s));
  std::ostringstream os;
  os << "Confusion at confidence > " << r.confusion_threshold;
  if (n - 1 > kMaxConfusionTableClasses) {
    // A table this wide is unreadable: the largest counts off the diagonal instead.
    std::vector<std::array<int, 3>> cells;   // count, true, detected
    int right = 0, objects = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        if (i + 1 < n) objects += r.confusion[i][j];
        if (i == j) right += i + 1 < n ? r.confusion[i][j] : 0;
        else if (r.confusion[i][j] > 0) cells.push_back({-r.confusion[i][j], int(i), int(j)});
      }
    std::sort(cells.begin(), cells.end());
    os << ", IoU >= 0.5: " << right << " of " << objects << " objects found and named right; " << n - 1
       << " classes, the largest mix-ups (none: a false detection / a missed object; the whole matrix: --json)\n";
    for (size_t k = 0; k < cells.size() && k < kMaxConfusionTableClasses; ++k)
      os << "  " << names[cells[k][1]] << " -> " << names[cells[k][2]] << ": " << -cells[k][0] << "\n";
    return os.str();
  }
  os << ", IoU >= 0.5 (rows: true class, columns: detected; none: a false detection / a missed object)\n";
  os << ssd::pad_right("true\\det", w);
  for (const auto& s : names) os << " " << ssd::pad_left(s, w);
  os << "\n";
  for (size_t i = 0; i < n; ++i) {
    os << ssd::pad_right(names[i], w);
    for (size_t j = 0; j < n; ++j)
      os << " " << ssd::pad_left(i == n - 1 && j == n - 1 ? "-" : std::to_string(r.confusion[i][j]), w);
    os << "\n";
  }
  return os.str();
}

std::string f1_class_thresholds(const MapResult& r) {
  std::string out;
  for (const auto& c : r.classes) {
    if (c.f1_threshold < 0) continue;
    char b[32];
    std::snprintf(b, sizeof b, "=%.3f", c.f1_threshold);
    out += (out.empty() ? "" : ",") + c.name + b;
  }
  return out;
}

void write_coco_results(const Dataset& dataset,
                        const std::vector<std::vector<ScoredBox>>& detections,
                        const std::string& path) {
  if (detections.size() > dataset.images.size())
    throw std::invalid_argument("write_coco_results: more detection lists than images");
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < detections.size(); ++i)
    for (const ScoredBox& d : detections[i])
      out.push_back({{"image_id", dataset.images[i].id},
                     {"category_id", dataset.category_id(d.label)},
                     {"bbox", {d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1}},
                     {"score", d.score}});
  write_file_atomic(path, out.dump() + "\n");   // (flushed and checked: a full disk is an error)
}

}  // namespace ssdtrain
