// The LibTorch half of ssd-train: training loop (AdamW, one-cycle, freezing, differential
// learning rates, gradient clipping, mixed precision, checkpoints and resume), validation
// (loss + mAP), weights evaluation and the learning-rate finder.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_set>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "../model/anchors.h"
#include "../model/bounded_json.h"
#include "../model/class_filter.h"
#include "../model/device.h"
#include "../model/error.h"
#include "../model/loss.h"
#include "../model/nms.h"
#include "../model/ssd_model.h"
#include "../model/text.h"
#include "../model/weights.h"
#include "atomic_file.h"
#include "image_file.h"
#include "run_lock.h"
#include "loader.h"
#include "grad_clip.h"
#include "mixed_precision.h"
#include "plots.h"
#include "progress.h"
#include "rng.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace ssdtrain {

std::vector<double> group_multipliers(const TrainOptions& o) {
  return {1.0 / (o.lr_div * o.lr_div), 1.0 / o.lr_div, 1.0};
}

namespace {

constexpr const char* kRunFile = "run.json";
constexpr const char* kCheckpointFile = "checkpoint.pt";
constexpr const char* kHistoryFile = "history.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kBestWeightsFile = "best.safetensors";
constexpr uint64_t kLoaderStream = 0x5eed10ad;   // derive_seed(seed, this): loader seed
constexpr uint64_t kSplitStream = 0x5911177;      // train/val split
constexpr uint64_t kSynthValStream = 0x5a1;      // synthetic validation set

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}


// The evaluated epoch with the best validation mAP@[.5:.95] (mAP@0.5 breaking ties; the earliest
// of equals), or nullptr when no epoch was evaluated.
const EpochMetrics* best_epoch(const std::vector<EpochMetrics>& history) {
  const EpochMetrics* best = nullptr;
  for (const auto& m : history) {
    if (!(m.map >= 0)) continue;   // not evaluated (-1), or NaN
    if (!best || m.map > best->map || (m.map == best->map && m.map50 > best->map50)) best = &m;
  }
  return best;
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ssd::Error("cannot read " + path.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------------------------------------
// Batches as tensors.

struct BatchTensors {
  torch::Tensor images, boxes, labels, valid;
  torch::Tensor ignore;   // (B, I, 4) boxes marked ignore; undefined when the batch has none
};

BatchTensors to_tensors(Batch& b, const torch::Device& device) {
  const int64_t B = b.size, S = b.image_size, G = b.max_boxes;
  BatchTensors t;
  t.images = torch::from_blob(b.images.data(), {B, 3, S, S}, torch::kFloat32).to(device);
  t.boxes = torch::from_blob(b.boxes.data(), {B, G, 4}, torch::kFloat32).to(device);
  t.labels = torch::from_blob(b.labels.data(), {B, G}, torch::kInt64).to(device);
  t.valid = torch::from_blob(b.valid.data(), {B, G}, torch::kUInt8).to(device).to(torch::kBool);
  if (b.max_ignored > 0)
    t.ignore = torch::from_blob(b.ignore_boxes.data(), {B, b.max_ignored, 4}, torch::kFloat32)
                   .to(device);
  return t;
}

ssd::LossOptions loss_options(const TrainOptions& o) {
  ssd::LossOptions l;
  l.match_threshold = o.match_threshold;
  l.class_loss = o.focal ? ssd::ClassLoss::Focal : ssd::ClassLoss::BCE;
  l.alpha = o.focal_alpha;
  l.gamma = o.focal_gamma;
  l.mask_ignored = o.ignored == "mask";
  return l;
}

LoaderOptions loader_options(const ssd::SsdConfig& config, int batch, int workers, uint64_t seed,
                             bool train, bool augment) {
  LoaderOptions lo;
  lo.image_size = config.input_size;
  lo.batch_size = batch;
  lo.threads = std::max(1, workers);
  lo.shuffle = train;
  lo.drop_last = false;
  lo.drop_single_last = train;
  lo.augment = train && augment;
  lo.seed = seed;
  lo.mean = config.mean;
  lo.std = config.std;
  return lo;
}

// ------------------------------------------------------------------------------------------
// Validation: loss and mAP over a data set, plus detections of the first few images.

struct ValidationResult {
  double loss = 0;           // per image
  bool have_map = false;
  MapResult map;
  std::vector<std::vector<ScoredBox>> samples;   // detections (pixels) of images 0..n-1
};

// How many of `ds`'s images an evaluation capped at max_images (0: none) looks at.
size_t images_to_evaluate(const Dataset& ds, int max_images) {
  return max_images > 0 ? std::min<size_t>(max_images, ds.images.size()) : ds.images.size();
}

ValidationResult validate(ssd::Ssd& model, const ssd::Anchors& anchors, const Dataset& ds,
                          const LoaderOptions& lo, const torch::Device& device,
                          const ssd::LossOptions* loss_opts, bool compute_map,
                          const ssd::PostprocessOptions& post, int max_images, int sample_count,
                          bool progress, double confusion_threshold = MapOptions{}.confusion_threshold) {
  ValidationResult r;
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  DataLoader loader(ds, lo);
  loader.start_epoch(0);
  MapOptions map_options;
  map_options.score_floor = post.score_threshold;
  map_options.confusion_threshold = confusion_threshold;
  MapEvaluator evaluator(ds.labels, map_options);
  const size_t limit = images_to_evaluate(ds, max_images);
  r.samples.resize(std::min<size_t>(std::max(0, sample_count), limit));   // (of the images evaluated)
  std::unique_ptr<ProgressBar> bar;
  if (progress) bar = std::make_unique<ProgressBar>("validate", static_cast<long>(limit));
  double loss_sum = 0;
  size_t seen = 0;
  Batch b;
  while (seen < limit && loader.next(b)) {
    BatchTensors t = to_tensors(b, device);
    // The batch that reaches past the cap counts its first n images only.
    const int n = static_cast<int>(std::min<size_t>(b.size, limit - seen));
    if (n < b.size) {
      for (torch::Tensor* x : {&t.images, &t.boxes, &t.labels, &t.valid, &t.ignore})
        if (x->defined()) *x = x->narrow(0, 0, n);
    }
    auto out = model->forward(t.images);
    if (loss_opts) {
      auto parts = ssd::ssd_loss(out.first, out.second, t.boxes, t.labels, t.valid, anchors,
                                 *loss_opts, t.ignore);
      loss_sum += parts.total.item<double>();
    }
    bool has_sample = false;   // the first images are kept for predictions.png
    for (int i = 0; i < n; ++i)
      has_sample = has_sample || static_cast<size_t>(b.indices[i]) < r.samples.size();
    if (compute_map || has_sample) {
      auto dets = ssd::postprocess(out.first, out.second, anchors, post);
      for (int i = 0; i < n; ++i) {
        const int64_t idx = b.indices[i];
        const float w = static_cast<float>(b.widths[i]), h = static_cast<float>(b.heights[i]);
        auto boxes = dets[i].boxes.to(torch::kCPU).contiguous();
        auto scores = dets[i].scores.to(torch::kCPU).contiguous();
        auto labels = dets[i].labels.to(torch::kCPU).contiguous();
        std::vector<ScoredBox> sb(boxes.size(0));
        const float* bp = boxes.data_ptr<float>();
        for (int64_t k = 0; k < boxes.size(0); ++k) {
          sb[k].x1 = bp[4 * k] * w;
          sb[k].y1 = bp[4 * k + 1] * h;
          sb[k].x2 = bp[4 * k + 2] * w;
          sb[k].y2 = bp[4 * k + 3] * h;
          sb[k].score = scores.data_ptr<float>()[k];
          sb[k].label = static_cast<int>(labels.data_ptr<int64_t>()[k]);
        }
        if (idx >= 0 && static_cast<size_t>(idx) < r.samples.size()) r.samples[idx] = sb;
        if (compute_map) evaluator.add_image(ds.images[idx].id, ds.images[idx].boxes, sb);   // ties: in id order
      }
    }
    seen += static_cast<size_t>(n);
    if (bar) bar->update(static_cast<long>(seen));
  }
  if (bar) bar->finish();
  r.loss = seen ? loss_sum / seen : 0;
  if (compute_map) {
    r.map = evaluator.compute();
    r.have_map = true;
  }
  if (was_training) model->train();
  return r;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// One-cycle schedule over phases (frozen epochs, then the rest), each its own cycle.

OneCyclePoint one_cycle_at(const TrainOptions& o, int64_t steps_per_epoch, int freeze_epochs, int64_t step) {
  double lr_frac = 1, beta1 = o.beta1_max;
  const int64_t frozen_steps = static_cast<int64_t>(freeze_epochs) * steps_per_epoch;
  int64_t begin = 0, len = static_cast<int64_t>(o.epochs) * steps_per_epoch;
  if (freeze_epochs > 0) {
    if (step < frozen_steps) {
      len = frozen_steps;
    } else {
      begin = frozen_steps;
      len -= frozen_steps;
    }
  }
  const double pos = len > 0 ? double(step - begin) / double(len) : 0.0;
  auto cos_anneal = [](double start, double end, double p) {
    return end + (start - end) / 2.0 * (std::cos(M_PI * p) + 1.0);
  };
  const double start = 1.0 / o.div_factor, final_frac = start / o.final_div;
  if (pos < o.pct_start) {
    const double p = o.pct_start > 0 ? pos / o.pct_start : 1.0;
    lr_frac = cos_anneal(start, 1.0, p);
    beta1 = o.cycle_momentum ? cos_anneal(o.beta1_max, o.beta1_min, p) : o.beta1_max;
  } else {
    const double p = o.pct_start < 1 ? (pos - o.pct_start) / (1.0 - o.pct_start) : 1.0;
    lr_frac = cos_anneal(1.0, final_frac, std::min(1.0, p));
    beta1 = o.cycle_momentum ? cos_anneal(o.beta1_min, o.beta1_max, std::min(1.0, p))
                             : o.beta1_max;
  }
  return {lr_frac, beta1};
}

namespace {

struct Schedule {
  TrainOptions o;
  int64_t steps_per_epoch = 1;
  int freeze_epochs = 0;

  bool frozen(int epoch) const { return epoch < freeze_epochs; }   // epoch 0-based
  OneCyclePoint at(int64_t step) const { return one_cycle_at(o, steps_per_epoch, freeze_epochs, step); }
};

void set_frozen(ssd::Ssd& model, bool frozen) {
  for (auto& p : model->body->parameters()) p.set_requires_grad(!frozen);
}

// train() mode for the model, eval() for a frozen body's BatchNorm layers.
void set_train_mode(ssd::Ssd& model, bool frozen) {
  model->train();
  if (frozen) model->body->eval();
}

// ------------------------------------------------------------------------------------------
// Run files.

// A mAP an epoch lacks (not evaluated: -1 here) is null, as in metrics.csv an empty field (it was
// written as -1, which a reader averaging or plotting history.json took for a value).
json metrics_to_json(const EpochMetrics& m) {
  auto map_value = [](double v) { return v >= 0 ? json(v) : json(nullptr); };
  return json{{"epoch", m.epoch},       {"train_loss", m.train_loss}, {"train_loc", m.train_loc},
              {"train_cls", m.train_cls}, {"val_loss", m.val_loss},   {"map50", map_value(m.map50)},
              {"map", map_value(m.map)}, {"lr", m.lr},                 {"seconds", m.seconds},
              {"validated", m.validated}};
}

EpochMetrics metrics_from_json(const json& j) {
  // JSON has no NaN or infinity: nlohmann writes a non-finite number as null (a validation loss
  // that overflowed, say), read back here as NaN.
  auto number = [&j](const char* key) {
    const json& v = j.at(key);
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  };
  EpochMetrics m;
  m.epoch = j.at("epoch");
  m.train_loss = number("train_loss");
  m.train_loc = j.value("train_loc", 0.0);
  m.train_cls = j.value("train_cls", 0.0);
  m.val_loss = number("val_loss");
  // (null: not evaluated; runs stored before wrote -1)
  m.map50 = j.at("map50").is_null() ? -1.0 : number("map50");
  m.map = j.at("map").is_null() ? -1.0 : number("map");
  m.lr = j.value("lr", 0.0);
  m.seconds = j.value("seconds", 0.0);
  m.validated = j.value("validated", true);
  return m;
}

// A value an epoch lacks (mAP where it was not evaluated, the validation loss without a
// validation set) is an empty field, which CSV readers take as missing (pandas: NaN), not a
// number to plot.
void write_metrics_csv(const fs::path& path, const std::vector<EpochMetrics>& h) {
  std::ostringstream os;
  os << "epoch,train_loss,train_loc,train_cls,val_loss,map50,map,lr,seconds\n";
  auto field = [](double v, bool present) {
    char buf[64] = "";
    if (present && std::isfinite(v)) std::snprintf(buf, sizeof buf, "%.6f", v);
    return std::string(buf);
  };
  char buf[128];
  for (const auto& m : h) {
    std::snprintf(buf, sizeof buf, "%d,%.6f,%.6f,%.6f,", m.epoch, m.train_loss, m.train_loc, m.train_cls);
    os << buf << field(m.val_loss, m.validated) << ',' << field(m.map50, m.map50 >= 0) << ','
       << field(m.map, m.map >= 0);
    std::snprintf(buf, sizeof buf, ",%.6g,%.2f\n", m.lr, m.seconds);
    os << buf;
  }
  write_file_atomic(path, os.str());
}

void write_curve_plots(const fs::path& dir, const std::vector<EpochMetrics>& h) {
  LinePlot loss;
  loss.title = "loss per image";
  loss.x_label = "epoch";
  loss.y_label = "loss";
  Series tr{"train", {}, {}, cv::Scalar(200, 90, 30), true};
  Series va{"validation", {}, {}, cv::Scalar(30, 90, 220), true};
  for (const auto& m : h) {
    tr.x.push_back(m.epoch);
    tr.y.push_back(m.train_loss);
    if (!m.validated) continue;   // --val-fraction 0
    va.x.push_back(m.epoch);
    va.y.push_back(m.val_loss);
  }
  loss.series = {tr};
  if (!va.x.empty()) loss.series.push_back(va);
  write_image_file((dir / "loss.png").string(), render_line_plot(loss), ".png");

  LinePlot map;
  map.title = "validation mAP (COCO-style)";
  map.x_label = "epoch";
  map.y_label = "mAP";
  Series m50{"AP@0.5", {}, {}, cv::Scalar(40, 160, 40), true};
  Series mall{"AP@[.5:.95]", {}, {}, cv::Scalar(160, 40, 160), true};
  for (const auto& m : h) {
    if (!(m.map50 >= 0)) continue;   // not evaluated
    m50.x.push_back(m.epoch);
    m50.y.push_back(m.map50);
    mall.x.push_back(m.epoch);
    mall.y.push_back(m.map);
  }
  map.series = {m50, mall};
  write_image_file((dir / "map.png").string(), render_line_plot(map), ".png");
}

void write_prediction_grid(const fs::path& path, const Dataset& ds,
                           const std::vector<std::vector<ScoredBox>>& samples,
                           double threshold) {
  constexpr int kPanel = 256;
  std::vector<cv::Mat> left, right;
  for (size_t i = 0; i < samples.size() && i < ds.images.size(); ++i) {
    const cv::Mat rgb = load_rgb(ds.images[i]);
    // Drawn at the panel's size, so that boxes and labels keep their width on a large photo
    // (drawn on a 6000x4000 picture, then shrunk, they vanished).
    const double s = double(kPanel) / std::max(rgb.cols, rgb.rows);
    cv::Mat sized, bgr;
    cv::resize(rgb, sized, cv::Size(std::max(1, int(std::lround(rgb.cols * s))), std::max(1, int(std::lround(rgb.rows * s)))),
               0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    cv::cvtColor(sized, bgr, cv::COLOR_RGB2BGR);
    const float sx = float(sized.cols) / rgb.cols, sy = float(sized.rows) / rgb.rows;
    std::vector<BoxAnnotation> truth = ds.images[i].boxes;
    for (auto& b : truth) b.x1 *= sx, b.x2 *= sx, b.y1 *= sy, b.y2 *= sy;
    std::vector<ScoredBox> kept;
    for (auto d : samples[i])
      if (d.score >= threshold) {
        d.x1 *= sx, d.x2 *= sx, d.y1 *= sy, d.y2 *= sy;
        kept.push_back(d);
      }
    left.push_back(draw_boxes(bgr, ds.labels, truth, {}));
    right.push_back(draw_boxes(bgr, ds.labels, {}, kept));
  }
  if (left.empty()) return;
  write_image_file(path.string(), make_pair_grid(left, right, 2, kPanel), ".png");
}

// ------------------------------------------------------------------------------------------
// The training session (new or resumed).

struct Session {
  TrainSpec spec;
  fs::path dir;
  Dataset train_ds, val_ds;
  torch::Device device{torch::kCPU};
  ssd::Ssd model{nullptr};
  ssd::Anchors anchors;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  Precision precision = Precision::FP32;
  GradScaler scaler;      // enabled for fp16
  Schedule schedule;
  int epoch = 0;          // epochs completed
  int64_t step = 0;       // optimizer steps completed
  std::vector<EpochMetrics> history;
  bool quiet = false;
};

// The order of the model's classes where one is already given: a resumed run's own, or the
// --init weights'. Empty for a new model.
std::vector<std::string> given_class_order(const Session& s, bool resuming) {
  if (resuming) return s.spec.config.labels;
  if (!s.spec.options.init_weights.empty())
    return ssd::read_weights_config(s.spec.options.init_weights).labels;
  return {};
}

// How many of `val`'s images are files `train` lists too (by the file each path leads to), and
// one of them.
std::pair<size_t, std::string> shared_images(const Dataset& train, const Dataset& val) {
  const auto file_of = [](const std::string& path) {
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(path, ec);
    return ec ? fs::absolute(path).lexically_normal().string() : p.string();
  };
  std::unordered_set<std::string> training;
  for (const auto& im : train.images) training.insert(file_of(im.path));
  size_t shared = 0;
  std::string example;
  for (const auto& im : val.images)
    if (training.count(file_of(im.path)) && shared++ == 0) example = im.path;
  return {shared, example};
}

void load_data(Session& s, bool with_val = true, bool resuming = false) {
  LoadReport report;
  DataSpec& tr = s.spec.train;
  if (tr.synth > 0 && tr.synth_dir.empty()) tr.synth_dir = (s.dir / "data" / "train").string();
  s.train_ds = load_dataset(tr, &report);
  // The same classes listed in another order (a VOC folder sorts its names, a COCO file lists
  // its categories as it likes) take the given order, so that --init weights' class outputs
  // carry over whole (and a resumed run goes on as it was trained); other classes keep theirs
  // (--init then copies the class outputs by name; a resumed run refuses them).
  if (const auto order = given_class_order(s, resuming); !order.empty() && order != s.train_ds.labels) {
    auto a = order, b = s.train_ds.labels;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) use_labels(s.train_ds, order, tr.describe());
  }
  size_t held_out = 0;   // training images held out for validation (--val-fraction)
  // The warnings (also with --quiet: it quiets the progress bar and the table), then whether the
  // training set can be trained on.
  auto check_training_set = [&s, &held_out, &report] {
    // A class no training box shows (a converter's placeholder category, a class listed for
    // later) is learnt as never present, and the plugin offers it as a label all the same.
    std::vector<size_t> boxes(s.train_ds.labels.size(), 0);
    for (const auto& im : s.train_ds.images)
      for (const auto& b : im.boxes)
        if (!b.ignore && b.label >= 0 && static_cast<size_t>(b.label) < boxes.size()) ++boxes[static_cast<size_t>(b.label)];
    std::vector<std::string> absent;
    for (size_t k = 0; k < boxes.size(); ++k)
      if (boxes[k] == 0) absent.push_back(s.train_ds.labels[k]);
    if (!absent.empty() && absent.size() < boxes.size())
      report.warnings.push_back("no training box shows class(es) " + ssd::join_list(absent) +
                                ": the model learns them as never present");
    // (Each once: a training and a validation split of one VOC folder say the same of its names.)
    for (auto w = report.warnings.begin(); w != report.warnings.end(); ++w)
      if (std::find(report.warnings.begin(), w, *w) == w) std::cerr << "warning: " << ssd::printable(*w) << "\n";
    if (s.train_ds.images.size() < 2)
      throw ssd::Error("the training set has " + std::to_string(s.train_ds.images.size()) +
                       " image(s): training needs 2 or more (BatchNorm normalises over the batch)" +
                       (held_out ? "; " + std::to_string(held_out) +
                                       " more were held out for validation (--val-fraction): give --val-fraction 0 or a validation set"
                                 : std::string()));
    if (s.train_ds.num_boxes(false) == 0)
      throw ssd::Error("the training set has no boxes" +
                       (s.train_ds.num_boxes(true) ? ": its " + std::to_string(s.train_ds.num_boxes(true)) +
                                                         " boxes are all marked ignore (or iscrowd)"
                        : s.spec.train.synth > 0 ? ": every synthetic image is one without objects (--synth-empty " +
                                                       json(s.spec.train.synth_empty).dump() + ")"
                                                 : std::string()));
  };
  const int checkers = std::max(1, s.spec.options.workers);
  if (!with_val) {   // lr-find: training data only
    check_training_set();
    check_images(s.train_ds, checkers);
    return;
  }
  DataSpec& va = s.spec.val;
  if (va.empty() && tr.synth > 0) {
    // Synthetic training data: validate on a separately generated set.
    va.synth = std::max(50, tr.synth / 10);
    va.synth_seed = derive_seed(tr.synth_seed, kSynthValStream);
    va.synth_size = tr.synth_size;
    va.synth_empty = tr.synth_empty;
    va.synth_object_min = tr.synth_object_min;
    va.synth_object_max = tr.synth_object_max;
  }
  if (va.synth > 0 && va.synth_dir.empty()) va.synth_dir = (s.dir / "data" / "val").string();
  if (!va.empty()) {
    if (s.spec.options.val_fraction != TrainOptions{}.val_fraction)
      report.warnings.push_back("--val-fraction has no effect: the validation set is " + va.describe());
    // In the training set's order (a VOC split may lack a class or two).
    s.val_ds = load_dataset(va, &report, &s.train_ds.labels);
    if (s.val_ds.num_boxes(false) == 0)
      report.warnings.push_back("the validation set (" + va.describe() +
                                ") has no boxes: its mAP is none, and no best.safetensors is kept");
    // The same pictures, whichever files list them (a copy of the training JSON, a link to it,
    // two splits that overlap).
    const auto [shared, example] = shared_images(s.train_ds, s.val_ds);
    if (shared > 0 && shared == s.val_ds.images.size())
      report.warnings.push_back("every validation image is a training image (" + va.describe() +
                                (shared == s.train_ds.images.size() ? ": the validation set is the training set"
                                                                   : ": the validation set lies within the training set") +
                                "): its loss and mAP measure fitting, not how the model does on new images");
    else if (shared > 0)
      report.warnings.push_back(std::to_string(shared) + " of the " + std::to_string(s.val_ds.images.size()) +
                                " validation images are training images too (" + example +
                                ", say): its loss and mAP flatter the model");
  } else if (s.spec.options.val_fraction == 0) {
    s.val_ds = Dataset{s.train_ds.labels, {}, s.train_ds.category_ids};   // no validation
  } else {
    // Hold out val_fraction of the training images (deterministic from the seed).
    const size_t n = s.train_ds.images.size();
    const double frac = s.spec.options.val_fraction;   // in (0, 1): check_new_run_options
    const size_t n_val = std::max<size_t>(1, static_cast<size_t>(std::lround(n * frac)));
    if (n < 2 || n_val >= n)
      throw ssd::Error("too few images (" + std::to_string(n) +
                       ") to hold out a validation set; give one with --val-coco/--val-voc");
    std::vector<size_t> idx(n);
    for (size_t i = 0; i < n; ++i) idx[i] = i;
    Rng rng(derive_seed(s.spec.options.seed, kSplitStream));
    rng.shuffle(idx);
    std::sort(idx.begin(), idx.begin() + n_val);
    std::sort(idx.begin() + n_val, idx.end());
    Dataset all = std::move(s.train_ds);
    s.train_ds = Dataset{all.labels, {}, all.category_ids};
    s.val_ds = Dataset{all.labels, {}, all.category_ids};
    for (size_t i = 0; i < n; ++i)
      (i < n_val ? s.val_ds : s.train_ds).images.push_back(all.images[idx[i]]);
    held_out = n_val;
  }
  check_training_set();
  check_images(s.train_ds, checkers);
  check_images(s.val_ds, checkers);
  if (!s.quiet) {
    std::cerr << "data: train " << s.train_ds.images.size() << " images ("
              << s.spec.train.describe() << "), validation "
              << (s.val_ds.images.empty() ? std::string("none (--val-fraction 0)")
                                          : std::to_string(s.val_ds.images.size()) + " images")
              << ", " << s.train_ds.labels.size() << " classes\n";
  }
}

// Calls fn(path, option) on every file or folder path of a run's options (empty ones too) but
// --out, with the option that gives it.
template <typename Fn>
void for_each_path(TrainSpec& spec, Fn&& fn) {
  for (const auto& [d, prefix] : {std::pair{&spec.train, "--"}, std::pair{&spec.val, "--val-"}}) {
    fn(d->coco, prefix + std::string("coco"));
    fn(d->images, prefix + std::string("images"));
    fn(d->voc, prefix + std::string("voc"));
    fn(d->synth_dir, std::string("--synth-dir"));
  }
  fn(spec.options.imagenet, std::string("--imagenet"));
  fn(spec.options.init_weights, std::string("--init"));
}

// A run folder's run.json names its files absolutely, so that `--resume` finds them from any
// working directory.
void make_paths_absolute(TrainSpec& spec) {
  for_each_path(spec, [](std::string& p, const std::string&) {
    if (!p.empty()) p = fs::absolute(p).lexically_normal().string();
  });
}

// run.json stores the paths as JSON text, which is UTF-8: a path that is not (a Latin-1 name from
// an old share, say) is refused, naming its option, before anything is created (writing run.json
// failed with nlohmann's bare "invalid UTF-8 byte", leaving the run folder behind).
void check_paths_are_utf8(TrainSpec& spec) {
  const auto check = [](const std::string& path, const std::string& option) {
    try {
      (void)nlohmann::json(path).dump();
    } catch (const nlohmann::json::type_error&) {
      throw ssd::Error(option + " " + path + ": not valid UTF-8, as run.json stores paths (for --resume); " +
                       "rename it, or give its path another way (a symbolic link with a UTF-8 name)");
    }
  };
  for_each_path(spec, check);
  check(spec.out_dir, "--out");
}

// A run folder moved or copied from `stored` (where run.json was written, e.g. on another
// machine) to `now`: the paths inside it (the synthetic data sets it generated, data a user kept
// there) are taken from where it is now.
void rebase_paths(TrainSpec& spec, fs::path stored, fs::path now) {
  auto clean = [](fs::path& p) {   // (no "." or "..", no trailing separator)
    p = p.lexically_normal();
    if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  };
  clean(stored);
  clean(now);
  if (stored.empty() || stored == now) return;
  for_each_path(spec, [&](std::string& p, const std::string&) {
    if (p.empty()) return;
    const fs::path inside = fs::path(p).lexically_normal().lexically_relative(stored);
    if (!inside.empty() && *inside.begin() != "..") p = (now / inside).lexically_normal().string();
  });
}

// Classes carry over by their exact names: a new class named as a left-out one but for case is
// most likely that class.
void warn_case_only_renames(std::ostream& os, const ssd::TransferReport& t) {
  for (const auto& n : t.classes_new)
    for (const auto& d : t.classes_dropped)
      if (ssd::fold_case(n) == ssd::fold_case(d))
        os << "warning: the data set's class " << n << " is new while the file has " << d
           << ": classes carry over by their exact names (rename one to carry it over)\n";
}

// What --init from weights of another architecture or other classes took (transfer_weights):
// the tensors, and which classes start from the file's class outputs, which do not and why.
// --quiet keeps the warning only.
void describe_transfer(std::ostream& os, const std::string& path, const ssd::SsdConfig& file,
                       const ssd::SsdConfig& model, const ssd::TransferReport& t, bool quiet) {
  warn_case_only_renames(os, t);
  if (quiet) return;
  ssd::SsdConfig same_classes = file;
  same_classes.labels = model.labels;
  const bool other_arch = !(same_classes == model), other_classes = file.labels != model.labels;
  os << "initialised from " << path << " ("
     << (other_arch && other_classes ? "another architecture and other classes"
                                     : other_arch ? "another architecture" : "other classes")
     << "): " << t.copied << " tensors copied, " << t.kept << " new, " << t.unused << " of the file's unused\n";
  if (!other_classes && t.class_convs_copied == t.class_convs) return;
  const auto list = [](const std::vector<std::string>& v) { return v.empty() ? std::string("none") : ssd::join_list(v); };
  const std::string dropped = t.classes_dropped.empty()
                                  ? std::string()
                                  : "; the file's " + ssd::join_list(t.classes_dropped) + " left out (the data set has none)";
  if (t.class_convs_copied == 0) {
    os << "classes: the file's class outputs do not fit this model's (another number of anchors per cell, or "
          "another head width): every class starts from scratch" << dropped << "\n";
  } else {
    os << "classes: " << list(t.classes_copied) << " from the file's outputs";
    if (t.class_convs_copied < t.class_convs)
      os << " on " << t.class_convs_copied << " of the " << t.class_convs << " grids (for the others the file has none that fits)";
    if (other_classes) os << "; " << list(t.classes_new) << " new" << dropped;
    os << "\n";
  }
}

// The model (with the --imagenet body and the --init weights unless `resuming`: then the
// checkpoint replaces every tensor, and those files need not exist any more) and its optimizer.
void build_model_and_optimizer(Session& s, bool resuming = false) {
  const TrainOptions& o = s.spec.options;
  if (o.threads > 0) torch::set_num_threads(o.threads);
  s.device = ssd::parse_device(o.device);
  s.precision = parse_precision(o.precision);
  check_precision(s.precision, s.device);
  s.scaler = GradScaler(s.precision == Precision::FP16);
  s.spec.config.labels = s.train_ds.labels;
  s.spec.config.validate();
  torch::manual_seed(o.seed);
  s.model = ssd::Ssd(s.spec.config);
  if (!o.imagenet.empty() && !resuming) {
    const int n = ssd::import_imagenet_body(o.imagenet, s.model);
    if (!s.quiet) std::cerr << "imported " << n << " ImageNet tensors from " << o.imagenet << "\n";
  }
  if (!o.init_weights.empty() && !resuming) {
    const ssd::SsdConfig init = ssd::read_weights_config(o.init_weights);
    if (init == s.spec.config) {
      ssd::load_weights_into(o.init_weights, s.model);
      if (!s.quiet) std::cerr << "initialised from " << o.init_weights << "\n";
    } else {
      // Another architecture or other classes: what matches is copied, the class outputs by name.
      const ssd::TransferReport t = ssd::transfer_weights(o.init_weights, s.model);
      describe_transfer(std::cerr, o.init_weights, init, s.spec.config, t, s.quiet);
    }
  }
  s.model->to(s.device);
  s.anchors = ssd::make_anchors(s.spec.config).to(s.device);
  auto groups = s.model->layer_groups();
  const auto mult = group_multipliers(o);
  std::vector<torch::optim::OptimizerParamGroup> pg;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto opts = std::make_unique<torch::optim::AdamWOptions>(o.lr * mult[std::min<size_t>(g, 2)]);
    opts->betas({o.beta1_max, o.beta2}).weight_decay(o.wd);
    pg.emplace_back(groups[g], std::move(opts));
  }
  s.optimizer = std::make_unique<torch::optim::AdamW>(
      pg, torch::optim::AdamWOptions(o.lr).betas({o.beta1_max, o.beta2}).weight_decay(o.wd));
  s.schedule.o = o;
  s.schedule.freeze_epochs =
      o.freeze_epochs >= 0 ? o.freeze_epochs : (o.imagenet.empty() ? 0 : 1);
  s.schedule.freeze_epochs = std::min(s.schedule.freeze_epochs, o.epochs);   // (> by the --imagenet default)
  s.schedule.steps_per_epoch = static_cast<int64_t>(batches_per_epoch(
      s.train_ds.images.size(), loader_options(s.spec.config, o.batch_size, 1, 0, true, false)));
}

void save_checkpoint(Session& s) {
  torch::serialize::OutputArchive root, m, opt;
  s.model->save(m);
  s.optimizer->save(opt);
  root.write("model", m);
  root.write("optimizer", opt);
  root.write("epoch", torch::tensor(static_cast<int64_t>(s.epoch)));
  root.write("step", torch::tensor(s.step));
  root.write("cpu_rng", at::detail::getDefaultCPUGenerator().get_state());
  // Dropout on a CUDA device draws from that device's generator.
  if (s.device.is_cuda())
    root.write("cuda_rng", at::globalContext().defaultGenerator(s.device).get_state());
  if (s.scaler.enabled()) {
    torch::serialize::OutputArchive scaler;
    s.scaler.save(scaler);
    root.write("grad_scaler", scaler);
  }
  // Serialised in memory, then written as any other file: LibTorch's file writer, on a full
  // disk, throws from its destructor as the exception unwinds, which ends the process.
  std::string bytes;
  root.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_atomic(s.dir / kCheckpointFile, bytes);
}

void restore_generator(at::Generator gen, const torch::Tensor& state) {   // gen shares the state
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

void load_checkpoint(Session& s) {
  const fs::path path = s.dir / kCheckpointFile;
  if (!fs::exists(path)) throw ssd::Error(path.string() + ": no checkpoint to resume from");
  torch::serialize::InputArchive root, m, opt;
  try {
    root.load_from(path.string(), s.device);   // on the device this continuation runs on
    root.read("model", m);
    root.read("optimizer", opt);
    // LibTorch's load() takes each tensor with the shape the file gives it: a run.json whose
    // architecture was edited (another head width) resumed, and wrote weights files whose
    // configuration contradicted their tensors, which nothing could load.
    std::map<std::string, std::vector<int64_t>> built;
    for (const auto& t : s.model->named_parameters()) built[t.key()] = t.value().sizes().vec();
    for (const auto& t : s.model->named_buffers()) built[t.key()] = t.value().sizes().vec();
    s.model->load(m);
    const auto check = [&](const std::string& name, const torch::Tensor& t) {
      const auto it = built.find(name);
      if (it != built.end() && it->second != t.sizes().vec())
        throw ssd::Error("tensor " + name + " has shape " + c10::str(t.sizes()) + " where run.json's architecture makes " +
                         c10::str(c10::IntArrayRef(it->second)) +
                         ": the checkpoint is not of the run that run.json describes (was run.json edited?)");
    };
    for (const auto& t : s.model->named_parameters()) check(t.key(), t.value());
    for (const auto& t : s.model->named_buffers()) check(t.key(), t.value());
    s.optimizer->load(opt);
    torch::Tensor epoch, step, rng;   // each read into a fresh (undefined) tensor
    root.read("epoch", epoch);
    s.epoch = static_cast<int>(epoch.item<int64_t>());
    root.read("step", step);
    s.step = step.item<int64_t>();
    root.read("cpu_rng", rng);
    restore_generator(at::detail::getDefaultCPUGenerator(), rng.to(torch::kCPU));   // states are CPU bytes
    // Entries newer checkpoints have; older ones resume with the defaults (the CUDA generator as
    // seeded, a fresh loss scaler).
    torch::Tensor cuda_rng;
    if (s.device.is_cuda() && root.try_read("cuda_rng", cuda_rng))
      restore_generator(at::globalContext().defaultGenerator(s.device), cuda_rng.to(torch::kCPU));
    torch::serialize::InputArchive scaler;
    if (s.scaler.enabled() && root.try_read("grad_scaler", scaler)) s.scaler.load(scaler);
  } catch (const c10::Error& e) {
    throw ssd::Error(path.string() + ": cannot read the checkpoint: " + e.what_without_backtrace());
  } catch (const ssd::Error& e) {
    throw ssd::Error(path.string() + ": " + e.what());
  } catch (const std::exception& e) {   // (LibTorch's TorchScript loader throws others too)
    throw ssd::Error(path.string() + ": cannot read the checkpoint: " + e.what());
  }
  s.model->to(s.device);
  if (s.epoch < 0 || s.epoch > s.spec.options.epochs)
    throw ssd::Error(path.string() + ": bad epoch " + std::to_string(s.epoch));
  // Weights that are not numbers are a corrupt checkpoint: the resume would write them over the
  // run's model and best weights before its first step, then fail blaming the learning rate.
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : s.model->named_parameters())
      if (!torch::isfinite(p.value()).all().item<bool>())
        throw ssd::Error(path.string() + ": corrupt checkpoint: parameter " + p.key() +
                         " holds NaN or infinite values (model.safetensors and best.safetensors are left as they are)");
  }
  // History up to the checkpoint.
  s.history.clear();
  const fs::path hp = s.dir / kHistoryFile;
  if (fs::exists(hp)) {
    try {
      for (const auto& j : ssd::parse_bounded_json(read_text(hp), hp.string())) {
        EpochMetrics m = metrics_from_json(j);
        if (m.epoch <= s.epoch) s.history.push_back(m);
      }
    } catch (const json::exception& e) {
      throw ssd::Error(hp.string() + ": " + e.what());
    }
  }
}

void print_table_header() {
  std::printf("%6s %11s %11s %9s %12s %9s %9s\n", "epoch", "train_loss", "val_loss", "mAP@0.5",
              "mAP@.5:.95", "lr", "time");
  std::fflush(stdout);
}

void print_table_row(const EpochMetrics& m) {
  char a[16], b[16];
  if (m.map50 >= 0) {
    std::snprintf(a, sizeof a, "%.4f", m.map50);
    std::snprintf(b, sizeof b, "%.4f", m.map);
  } else {
    std::snprintf(a, sizeof a, "-");
    std::snprintf(b, sizeof b, "-");
  }
  char v[16];
  if (!m.validated)
    std::snprintf(v, sizeof v, "-");
  else
    std::snprintf(v, sizeof v, "%.4f", m.val_loss);
  std::printf("%6d %11.4f %11s %9s %12s %9.2e %9s\n", m.epoch, m.train_loss, v, a, b, m.lr,
              format_duration(m.seconds).c_str());
  std::fflush(stdout);
}

struct StepResult {
  ssd::LossParts parts;   // sums over the batch, fp32
  torch::Tensor loss;     // per image: what backward() differentiates (before loss scaling)
};

// One optimizer step on a batch at the session's precision: zero_grad; forward under autocast
// (bf16/fp16) and the loss in fp32 outside it; backward of the (fp16: scaled) loss; gradient
// clipping of the unscaled gradients; the AdamW step, skipped by the fp16 scaler when a gradient
// is inf/nan; the scaler's update.
StepResult train_step(Session& s, const BatchTensors& t, int64_t batch_size,
                      const ssd::LossOptions& lopts) {
  s.optimizer->zero_grad();
  std::pair<torch::Tensor, torch::Tensor> out;
  {
    AutocastGuard autocast(s.precision, s.device);
    out = s.model->forward(t.images);
  }
  StepResult r;
  r.parts = ssd::ssd_loss(out.first.to(torch::kFloat32), out.second.to(torch::kFloat32), t.boxes,
                          t.labels, t.valid, s.anchors, lopts, t.ignore);
  r.loss = r.parts.total / static_cast<double>(batch_size);
  s.scaler.scale(r.loss).backward();
  const double clip = s.spec.options.clip_grad;
  if (clip > 0) {
    s.scaler.unscale(*s.optimizer);
    clip_grad_norm(s.model->parameters(), clip);   // on the device: no wait for the backward pass
  }
  s.scaler.step(*s.optimizer);
  s.scaler.update();
  return r;
}

// best.safetensors, the model's weights (those of the checkpoint's epoch), when the history
// names that epoch the best: after each checkpoint, and again on resuming (a run that ended
// between the two never has best.safetensors lag the history). From the model, not copied from
// model.safetensors: a run that ended after writing that file but before its checkpoint has
// the next epoch's weights there.
void update_best_weights(Session& s) {
  const EpochMetrics* best = best_epoch(s.history);
  if (!best || best->epoch != s.epoch) return;
  ssd::save_weights((s.dir / kBestWeightsFile).string(), s.model);   // (through a temporary file)
}

TrainResult run_epochs(Session& s) {
  const TrainOptions& o = s.spec.options;
  TrainResult result;
  const ssd::LossOptions lopts = loss_options(o);
  const uint64_t loader_seed = derive_seed(o.seed, kLoaderStream);
  LoaderOptions train_lo =
      loader_options(s.spec.config, o.batch_size, o.workers, loader_seed, true, o.augment);
  LoaderOptions val_lo = loader_options(s.spec.config, o.batch_size, o.workers, 0, false, false);
  ssd::PostprocessOptions post;
  post.score_threshold = 0.01;
  post.max_detections = 100;

  // Loader alone, for comparison with the training step rate.
  {
    LoaderOptions lo = train_lo;
    const size_t batches = std::min<size_t>(
        std::max<size_t>(1, 256 / std::max(1, o.batch_size)), batches_per_epoch(s.train_ds.images.size(), lo));
    result.loader_images_per_s = measure_loader_throughput(s.train_ds, lo, batches).images_per_second;
  }

  DataLoader loader(s.train_ds, train_lo);
  const auto mult = group_multipliers(o);
  const int stop_at = o.stop_after > 0 ? std::min(o.stop_after, o.epochs) : o.epochs;
  if (!s.quiet) {
    std::cerr << "model: " << s.spec.config.body << " " << s.spec.config.input_size << "px, "
              << s.spec.config.num_anchors() << " anchors, device " << s.device.str()
              << ", precision " << precision_name(s.precision) << ", LibTorch threads "
              << torch::get_num_threads() << ", loader threads " << train_lo.threads << "\n";
    print_table_header();
    for (const auto& m : s.history) print_table_row(m);
  }
  bool first_epoch_here = true;
  while (s.epoch < stop_at) {
    const auto t0 = Clock::now();
    const bool frozen = s.schedule.frozen(s.epoch);
    set_frozen(s.model, frozen);
    set_train_mode(s.model, frozen);
    loader.start_epoch(s.epoch);
    std::unique_ptr<ProgressBar> bar;
    if (!s.quiet)
      bar = std::make_unique<ProgressBar>(
          "epoch " + std::to_string(s.epoch + 1) + "/" + std::to_string(o.epochs),
          static_cast<long>(loader.batches_per_epoch()));
    double loss_sum = 0, loc_sum = 0, cls_sum = 0, compute_s = 0;
    size_t images = 0;
    long batches = 0;
    double lr_now = 0;
    int64_t skipped_steps = 0;   // fp16 overflows the loss scaler skipped
    Batch b;
    while (loader.next(b)) {
      const auto tc = Clock::now();
      const OneCyclePoint point = s.schedule.at(s.step);
      auto& groups = s.optimizer->param_groups();
      for (size_t g = 0; g < groups.size(); ++g) {
        auto& go = static_cast<torch::optim::AdamWOptions&>(groups[g].options());
        go.lr(o.lr * point.lr_frac * mult[std::min<size_t>(g, 2)]);
        go.betas({point.beta1, o.beta2});
      }
      lr_now = o.lr * point.lr_frac;
      BatchTensors t = to_tensors(b, s.device);
      const ssd::LossParts parts = train_step(s, t, b.size, lopts).parts;
      ++s.step;   // also after a step the fp16 scaler skipped, as with torch.cuda.amp
      const double lv = parts.total.item<double>();
      if (!std::isfinite(lv)) {
        // fp16: an overflow whose step the loss scaler skipped goes by, as with torch.cuda.amp
        // (left out of the epoch's mean loss); ten in a row, or any without the scaler, end the run.
        if (s.scaler.passes_over_nonfinite_loss()) {
          ++skipped_steps;
          if (bar) bar->update(batches + skipped_steps);   // (a step that ran all the same)
          continue;
        }
        throw ssd::Error("the loss became " + std::to_string(lv) + " at step " + std::to_string(s.step) +
                         (s.scaler.enabled() ? " (" + std::to_string(s.scaler.skipped_in_a_row()) +
                                                   " fp16 steps in a row skipped)"
                                             : std::string()) +
                         "; lower the learning rate (--lr)");
      }
      loss_sum += lv;
      loc_sum += parts.loc.item<double>();
      cls_sum += parts.cls.item<double>();
      images += b.size;
      ++batches;
      compute_s += seconds_since(tc);
      if (bar) {
        char info[64];
        std::snprintf(info, sizeof info, "loss %.4f", loss_sum / images);
        bar->update(batches + skipped_steps, info);
      }
    }
    if (bar) bar->finish();
    if (skipped_steps > 0)
      std::cerr << "warning: epoch " << s.epoch + 1 << ": " << skipped_steps
                << " step(s) skipped for an fp16 overflow (loss scale now " << s.scaler.current_scale() << ")\n";
    const double train_s = seconds_since(t0);
    if (first_epoch_here) {
      result.train_images_per_s = compute_s > 0 ? images / compute_s : 0;
      if (!s.quiet)
        std::fprintf(stderr,
                     "speed: loader alone %.1f images/s (%d thread%s); training step "
                     "(forward+backward+AdamW) %.1f images/s; epoch %.1f images/s overall\n",
                     result.loader_images_per_s, train_lo.threads, train_lo.threads == 1 ? "" : "s",
                     result.train_images_per_s,
                     train_s > 0 ? images / train_s : 0.0);
    }
    first_epoch_here = false;
    ++s.epoch;
    const bool last = s.epoch == o.epochs;
    const bool do_map = last || (o.eval_every > 0 && s.epoch % o.eval_every == 0);
    // Without a validation set (--val-fraction 0): predictions.png shows the first training
    // images (not augmented), and there is no validation loss nor mAP.
    const bool have_val = !s.val_ds.images.empty();
    const Dataset& shown = have_val ? s.val_ds : s.train_ds;
    ValidationResult v = validate(s.model, s.anchors, shown, val_lo, s.device, have_val ? &lopts : nullptr,
                                  have_val && do_map, post, have_val ? o.max_eval_images : std::max(1, o.plot_samples),
                                  o.plot_samples, false);
    if (!have_val) v.loss = std::numeric_limits<double>::quiet_NaN();
    EpochMetrics m;
    m.epoch = s.epoch;
    m.train_loss = images ? loss_sum / images : 0;
    m.train_loc = images ? loc_sum / images : 0;
    m.train_cls = images ? cls_sum / images : 0;
    m.val_loss = v.loss;
    m.validated = have_val;
    if (v.have_map) {
      m.map50 = v.map.map50_coco;
      m.map = v.map.map_coco;
      result.last_map = v.map;
    }
    m.lr = lr_now;
    m.seconds = seconds_since(t0);
    s.history.push_back(m);
    // Run files; the checkpoint defines where a resume starts. The best epoch's weights follow
    // from the history, so a resumed run keeps them as the uninterrupted one.
    ssd::save_weights((s.dir / kWeightsFile).string(), s.model);
    json hist = json::array();
    for (const auto& h : s.history) hist.push_back(metrics_to_json(h));
    write_file_atomic(s.dir / kHistoryFile, hist.dump(1));
    write_metrics_csv(s.dir / "metrics.csv", s.history);
    write_curve_plots(s.dir, s.history);
    write_prediction_grid(s.dir / "predictions.png", shown, v.samples, 0.3);
    if (v.have_map) {
      write_image_file((s.dir / "pr_curve.png").string(), render_pr_curves(v.map), ".png");
      write_image_file((s.dir / "confusion.png").string(), render_confusion(v.map), ".png");
    }
    save_checkpoint(s);
    update_best_weights(s);
    if (!s.quiet) print_table_row(m);
  }
  result.history = s.history;
  result.weights_path = (s.dir / kWeightsFile).string();
  result.finished = s.epoch >= o.epochs;
  const EpochMetrics* best = best_epoch(s.history);
  if (best && fs::exists(s.dir / kBestWeightsFile)) {   // (runs from before best.safetensors have none)
    result.best_epoch = best->epoch;
    result.best_weights_path = (s.dir / kBestWeightsFile).string();
  }
  if (!s.quiet && result.finished && !result.last_map.classes.empty())
    std::printf("\nfinal validation mAP:\n%s", format_map_table(result.last_map).c_str());
  if (!s.quiet) {
    std::fprintf(stderr, "%s %s (weights %s)\n", result.finished ? "finished:" : "stopped:",
                 s.dir.string().c_str(), result.weights_path.c_str());
    if (result.best_epoch > 0)
      std::fprintf(stderr, "best validation mAP@[.5:.95] %.4f (mAP@0.5 %.4f) at epoch %d: %s\n", best->map,
                   best->map50, best->epoch, result.best_weights_path.c_str());
  }
  return result;
}

void check_options(const TrainOptions& o) {
  auto fail = [](const std::string& m) { throw ssd::Error(m); };
  // NaN passes no comparison below, and an infinity would zero a learning rate or end the run in
  // a NaN loss that blames --lr: every real-valued option must be finite.
  const std::pair<const char*, double> reals[] = {
      {"--lr", o.lr}, {"--lr-div", o.lr_div}, {"--wd", o.wd}, {"--pct-start", o.pct_start},
      {"--div-factor", o.div_factor}, {"final_div", o.final_div}, {"--clip", o.clip_grad},
      {"--match-threshold", o.match_threshold}, {"--val-fraction", o.val_fraction},
      {"beta1_max", o.beta1_max}, {"beta1_min", o.beta1_min}, {"beta2", o.beta2},
      {"focal_alpha", o.focal_alpha}, {"focal_gamma", o.focal_gamma}};
  for (const auto& [name, v] : reals)
    if (!std::isfinite(v)) fail(std::string(name) + " must be a finite number, not " + std::to_string(v));
  if (o.epochs < 1) fail("--epochs must be >= 1");
  if (o.batch_size < 2) fail("--batch must be >= 2 (BatchNorm normalises over the batch)");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("--lr must be > 0");
  if (!(o.lr_div >= 1)) fail("--lr-div must be >= 1");
  if (o.wd < 0) fail("--wd must be >= 0");
  if (!(o.pct_start >= 0 && o.pct_start <= 1)) fail("--pct-start must be in [0, 1]");
  if (!(o.div_factor >= 1)) fail("--div-factor must be >= 1");
  if (!(o.final_div >= 1)) fail("final_div (a run.json's; the cycle's end is its start / this) must be >= 1");
  if (o.clip_grad < 0) fail("--clip must be >= 0");
  if (o.workers < 1 || o.workers > kMaxWorkers) fail("--workers must be 1 to " + std::to_string(kMaxWorkers));
  if (o.threads < 0) fail("--threads must be >= 0");
  if (o.stop_after < 0) fail("--stop-after must be >= 0");
  if (o.eval_every < 0) fail("--eval-every must be >= 0");
  if (o.max_eval_images < 0) fail("--max-eval-images must be >= 0");
  if (o.freeze_epochs < -1) fail("--freeze-epochs must be >= -1");
  if (!(o.match_threshold > 0 && o.match_threshold < 1)) fail("--match-threshold must be in (0, 1)");
  if (o.ignored != "mask" && o.ignored != "background")
    fail("--ignored must be mask or background, not \"" + o.ignored + "\"");
  // Before any data is loaded: fp16 on the CPU, or an unknown name, fails at once.
  check_precision(parse_precision(o.precision), ssd::parse_device(o.device));
}

// What a new training run must satisfy besides (a run stored before these checks still resumes,
// and lr-find has no --epochs nor a validation set).
void check_new_run_options(const TrainOptions& o) {
  if (o.freeze_epochs > o.epochs)
    throw ssd::Error("--freeze-epochs (" + std::to_string(o.freeze_epochs) + ") must be <= --epochs (" +
                     std::to_string(o.epochs) + ")");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) throw ssd::Error("--val-fraction must be in [0, 1)");
}

// The classes of the weights a new run writes must be nameable in ssddetect's `classes` and
// `class-thresholds` (and ssd-train predict's --classes and --class-thresholds).
void check_new_run_labels(const std::vector<std::string>& labels, const DataSpec& data) {
  for (const std::string& label : labels)
    if (const std::string why = ssd::unnameable_label(label); !why.empty())
      throw ssd::Error("class \"" + ssd::printable(label) + "\" could not be named in ssddetect's classes and class-thresholds (" +
                       why + "): rename it in the data set (" + data.describe() + ")");
}

}  // namespace

bool cuda_is_available() { return torch::cuda::is_available(); }

LrSuggestionIndices lr_suggestion_indices(const std::vector<double>& lrs, const std::vector<double>& smoothed) {
  const size_t n = std::min(lrs.size(), smoothed.size());
  LrSuggestionIndices r;
  if (n < 3) return r;
  const size_t skip = n / 10, tail = std::min<size_t>(5, n / 10);
  const size_t end = n - tail;   // > skip: n - n/10 - min(5, n/10) >= n - 2n/10 > n/10
  r.minimum = std::min_element(smoothed.begin() + skip, smoothed.begin() + end) - smoothed.begin();
  // Valley: longest[i] = the length of the longest decreasing run ending at i.
  std::vector<size_t> longest(end - skip, 1);
  size_t run_end = 0, run_start = 0;
  for (size_t i = 1; i < longest.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (smoothed[skip + i] < smoothed[skip + j]) longest[i] = std::max(longest[i], longest[j] + 1);
    if (longest[i] > longest[run_end]) {
      run_end = i;
      run_start = i + 1 - longest[i];
    }
  }
  r.valley = skip + run_start + (run_end - run_start) / 2;
  // Neighbouring points differ by noise more than by the trend: slopes over +-w points.
  const size_t w = std::max<size_t>(1, n / 20);
  const size_t first = std::max(skip, w);
  r.steepest = std::min(first, r.minimum);
  double steepest = INFINITY;
  for (size_t i = first; i + w < n && i <= r.minimum; ++i) {
    const double slope = (smoothed[i + w] - smoothed[i - w]) / (std::log(lrs[i + w]) - std::log(lrs[i - w]));
    if (slope < steepest) {
      steepest = slope;
      r.steepest = i;
    }
  }
  return r;
}

TrainResult train(const TrainSpec& spec_in) {
  check_options(spec_in.options);
  check_new_run_options(spec_in.options);
  if (spec_in.out_dir.empty()) throw ssd::Error("no output folder (--out)");
  Session s;
  s.spec = spec_in;
  s.quiet = spec_in.options.quiet;
  s.dir = fs::absolute(spec_in.out_dir);
  s.spec.out_dir = s.dir.string();
  make_paths_absolute(s.spec);   // (as run.json holds them)
  check_paths_are_utf8(s.spec);
  // The folder is locked before it is looked at: one another ssd-train is writing is refused
  // saying so (it was told to --resume the run that was running).
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec) throw ssd::Error("cannot create " + s.dir.string() + ": " + ec.message());
  const RunLock lock(s.dir);
  if (fs::exists(s.dir / kRunFile))
    throw ssd::Error(s.dir.string() + " already holds a run; use --resume " + s.dir.string() +
                     " to continue it, or choose another --out");
  // Files a run writes, without its run.json (weights copied there, say): never overwritten.
  for (const char* name : {kWeightsFile, kBestWeightsFile, kCheckpointFile, kHistoryFile, "metrics.csv"})
    if (fs::exists(s.dir / name))
      throw ssd::Error(s.dir.string() + " holds " + name + " (of no run: there is no " + kRunFile +
                       "), which a run would overwrite; choose another --out, or move the file away");
  load_data(s);
  check_new_run_labels(s.train_ds.labels, s.spec.train);
  build_model_and_optimizer(s);
  if (s.schedule.freeze_epochs >= s.spec.options.epochs)
    std::cerr << "warning: the body stays frozen for the whole run (" << s.schedule.freeze_epochs
              << " frozen epoch(s) of " << s.spec.options.epochs << "): only the head trains\n";
  write_file_atomic(s.dir / kRunFile, train_spec_to_json(s.spec));
  return run_epochs(s);
}

TrainResult resume(const std::string& run_dir, int stop_after, bool quiet, const ResumeOverrides& overrides) {
  Session s;
  s.dir = fs::absolute(run_dir);
  const fs::path rf = s.dir / kRunFile;
  if (!fs::exists(rf)) throw ssd::Error(rf.string() + " not found: not a run folder");
  const RunLock lock(s.dir);
  try {
    s.spec = train_spec_from_json(read_text(rf));
  } catch (const ssd::Error& e) {
    throw ssd::Error(rf.string() + ": " + e.what());
  }
  rebase_paths(s.spec, s.spec.out_dir, s.dir);
  s.spec.out_dir = s.dir.string();
  if (stop_after < 0) s.spec.options.stop_after = 0;           // run to the end
  else if (stop_after > 0) s.spec.options.stop_after = stop_after;   // 0: keep the stored one
  s.spec.options.quiet = quiet;
  s.quiet = quiet;
  if (overrides.device) s.spec.options.device = *overrides.device;
  if (overrides.workers) s.spec.options.workers = *overrides.workers;
  if (overrides.threads) s.spec.options.threads = *overrides.threads;
  if (overrides.precision) s.spec.options.precision = *overrides.precision;
  try {   // (the stored options, or those given for this invocation: named as run.json's)
    check_options(s.spec.options);
  } catch (const ssd::Error& e) {
    throw ssd::Error(rf.string() + ": the run's options: " + e.what());
  }
  load_data(s, /*with_val=*/true, /*resuming=*/true);
  const ssd::SsdConfig stored = s.spec.config;
  // A run that ended before its first checkpoint (a bad image, an interrupt in epoch 1) starts
  // over from its stored options, as `train` would have.
  const bool checkpointed = fs::exists(s.dir / kCheckpointFile);
  build_model_and_optimizer(s, /*resuming=*/checkpointed);
  if (!(stored == s.spec.config))
    throw ssd::Error(rf.string() + ": the data set's classes differ from the run's");
  if (checkpointed) {
    load_checkpoint(s);
    // The run files follow the checkpoint: a run that ended after writing an epoch's weights
    // but before its checkpoint has that epoch's in model.safetensors, the one it does again.
    ssd::save_weights((s.dir / kWeightsFile).string(), s.model);
    update_best_weights(s);
  }
  if (!quiet) {
    if (checkpointed)
      std::cerr << "resuming " << s.dir.string() << " after epoch " << s.epoch << " of " << s.spec.options.epochs << "\n";
    else
      std::cerr << "no checkpoint in " << s.dir.string() << " yet: starting its run from epoch 1\n";
  }
  return run_epochs(s);
}

MapResult evaluate_weights(const EvalSpec& spec) {
  if (spec.threads > 0) torch::set_num_threads(spec.threads);
  if (spec.batch_size < 1) throw ssd::Error("--batch must be >= 1");
  // The matrix can count only the detections eval keeps (those above --threshold).
  if (!(spec.confusion_threshold >= spec.score_threshold && spec.confusion_threshold <= 1))
    throw ssd::Error("--confusion-threshold must be in [--threshold, 1]: " + std::to_string(spec.confusion_threshold));
  const torch::Device device = ssd::parse_device(spec.device);
  ssd::Ssd model = ssd::load_weights(spec.weights, device);
  model->fuse_for_inference();   // inference only, as ssd::Detector runs it
  const ssd::SsdConfig& config = model->config();
  // In the model's order: a data set naming its classes otherwise (a VOC folder's are sorted,
  // a COCO file's categories may come in another order) lines up by name.
  LoadReport report;
  Dataset ds = load_dataset(spec.data, &report, &config.labels);
  for (const auto& w : report.warnings) std::cerr << "warning: " << ssd::printable(w) << "\n";
  // An output at one of the images' paths (--pr-curve data/images/000001.jpg replaced the image
  // with a plot): refused before anything is computed. (The CLI refuses outputs over --coco and
  // --weights before the data set is read.)
  // (By the file itself, device and inode: an image that is a symbolic link or a hard link to
  // the output's file too. An output that does not exist yet is no image.)
  for (const auto& [option, output] : {std::pair<const char*, const std::string&>{"--detections", spec.detections_path},
                                       {"--pr-curve", spec.pr_curve_path},
                                       {"--confusion", spec.confusion_path},
                                       {"--json", spec.json_path}}) {
    std::error_code ec;
    if (output.empty() || !fs::exists(output, ec)) continue;
    for (const ImageRecord& im : ds.images)
      if (fs::equivalent(im.path, output, ec) && !ec)
        throw ssd::Error(std::string(option) + " " + output + " is one of the data set's images (" + im.path +
                         "): it would be written over");
  }
  const ssd::Anchors anchors = ssd::make_anchors(config).to(device);
  if (spec.workers < 1 || spec.workers > kMaxWorkers) throw ssd::Error("--workers must be 1 to " + std::to_string(kMaxWorkers));
  LoaderOptions lo = loader_options(config, spec.batch_size, spec.workers, 0, false, false);
  ssd::PostprocessOptions post;
  post.score_threshold = spec.score_threshold;
  post.nms_iou = spec.nms_iou;
  post.class_agnostic = spec.class_agnostic_nms;
  post.max_detections = 100;
  // With a detections file every evaluated image's detections are kept (as "samples").
  const int keep = spec.detections_path.empty()
                       ? 0
                       : static_cast<int>(images_to_evaluate(ds, spec.max_images));
  ValidationResult v = validate(model, anchors, ds, lo, device, nullptr, true, post,
                                spec.max_images, keep, true, spec.confusion_threshold);
  if (!spec.detections_path.empty())
    write_coco_results(ds, v.samples, spec.detections_path);
  if (!spec.pr_curve_path.empty()) write_image_file(spec.pr_curve_path, render_pr_curves(v.map), ".png");
  if (!spec.confusion_path.empty()) write_image_file(spec.confusion_path, render_confusion(v.map), ".png");
  v.map.class_agnostic_nms = spec.class_agnostic_nms;
  return v.map;
}

LrFindResult lr_find(const LrFindSpec& spec) {
  check_options(spec.train.options);
  if (!(spec.start_lr > 0) || !(spec.end_lr > spec.start_lr) || !std::isfinite(spec.end_lr))
    throw ssd::Error("lr-find needs 0 < --start-lr < --end-lr, finite");
  if (spec.iterations < 5) throw ssd::Error("lr-find needs --iters >= 5");
  if (spec.train.out_dir.empty()) throw ssd::Error("no output folder (--out)");
  Session s;
  s.spec = spec.train;
  s.quiet = spec.train.options.quiet;
  s.dir = fs::absolute(spec.train.out_dir);
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec) throw ssd::Error("cannot create " + s.dir.string() + ": " + ec.message());
  const RunLock lock(s.dir);
  load_data(s, /*with_val=*/false);
  build_model_and_optimizer(s);
  const TrainOptions& o = s.spec.options;
  const bool frozen = s.schedule.freeze_epochs > 0;
  set_frozen(s.model, frozen);
  set_train_mode(s.model, frozen);
  const auto mult = group_multipliers(o);
  const ssd::LossOptions lopts = loss_options(o);
  DataLoader loader(s.train_ds, loader_options(s.spec.config, o.batch_size, o.workers,
                                               derive_seed(o.seed, kLoaderStream), true,
                                               o.augment));
  LrFindResult r;
  double avg = 0, best = INFINITY;
  int epoch = 0;
  loader.start_epoch(epoch);
  std::unique_ptr<ProgressBar> bar;
  if (!s.quiet) bar = std::make_unique<ProgressBar>("lr-find", spec.iterations);
  Batch b;
  for (int i = 0; i < spec.iterations; ++i) {
    if (!loader.next(b)) {
      loader.start_epoch(++epoch);
      if (!loader.next(b)) throw ssd::Error("lr-find: the loader produced no batch");
    }
    // The head's rate; the earlier layer groups take it divided as in training (--lr-div), so
    // that on an unfrozen body the curve is that of the rates `train --lr` would set.
    const double lr =
        spec.start_lr * std::pow(spec.end_lr / spec.start_lr, double(i) / (spec.iterations - 1));
    auto& param_groups = s.optimizer->param_groups();
    for (size_t g = 0; g < param_groups.size(); ++g)
      static_cast<torch::optim::AdamWOptions&>(param_groups[g].options()).lr(lr * mult[std::min<size_t>(g, 2)]);
    BatchTensors t = to_tensors(b, s.device);
    const double lv = train_step(s, t, b.size, lopts).loss.item<double>();
    if (!std::isfinite(lv)) break;
    avg = spec.smoothing * avg + (1 - spec.smoothing) * lv;
    const double smooth = avg / (1 - std::pow(spec.smoothing, i + 1));
    r.lrs.push_back(lr);
    r.losses.push_back(lv);
    r.smoothed.push_back(smooth);
    if (bar) {
      char info[64];
      std::snprintf(info, sizeof info, "lr %.2e loss %.4f", lr, smooth);
      bar->update(i + 1, info);
    }
    best = std::min(best, smooth);
    if (i > 10 && smooth > spec.divergence * best) break;
  }
  if (bar) bar->finish();
  if (r.lrs.size() < 3) throw ssd::Error("lr-find: the loss diverged at once; lower --start-lr");
  // Suggestions (lr_suggestion_indices): the valley, the steepest descent, the minimum / 10.
  const size_t n = r.smoothed.size();
  const LrSuggestionIndices at = lr_suggestion_indices(r.lrs, r.smoothed);
  r.suggested_min10 = r.lrs[at.minimum] / 10.0;
  r.suggested_valley = r.lrs[at.valley];
  r.suggested_steepest = r.lrs[at.steepest];
  std::ostringstream csv;
  csv << "lr,loss,smoothed_loss\n";
  char buf[128];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%.6e,%.6f,%.6f\n", r.lrs[i], r.losses[i], r.smoothed[i]);
    csv << buf;
  }
  r.csv_path = (s.dir / "lr_find.csv").string();
  write_file_atomic(r.csv_path, csv.str());
  LinePlot p;
  p.title = "learning-rate finder (suggestion: valley)";
  p.x_label = "learning rate";
  p.y_label = "loss per image";
  p.log_x = true;
  p.series = {Series{"loss", r.lrs, r.losses, cv::Scalar(200, 200, 200), false},
              Series{"smoothed", r.lrs, r.smoothed, cv::Scalar(200, 90, 30), false}};
  p.vlines = {r.suggested_valley, r.suggested_steepest, r.suggested_min10};
  p.vline_labels = {"valley", "steepest", "min/10"};
  // The y axis ends as far above the smoothed loss past the first tenth as the descent goes
  // below it (at least a tenth of it): the divergence at the end (43x the loss on 200 synthetic
  // images) would otherwise flatten the part of the curve the suggestions are read from.
  const double s0 = r.smoothed[n / 10], smin = r.smoothed[at.minimum];
  p.y_top = s0 + std::max(s0 - smin, 0.1 * std::fabs(s0));
  r.png_path = (s.dir / "lr_find.png").string();
  write_image_file(r.png_path, render_line_plot(p), ".png");
  return r;
}

}  // namespace ssdtrain
