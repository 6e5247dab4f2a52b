// ssd-train's training loop, evaluation of a weights file, and the learning-rate finder.
// This header is LibTorch-free (the CLI includes it); trainer.cpp holds the LibTorch code and
// run_spec.cpp the JSON form of the options and the dataset loading.
//
// A run folder holds:
//   run.json            the TrainSpec (architecture, data, hyper-parameters) as JSON
//   model.safetensors   the weights (ssd::save_weights), updated every epoch
//   checkpoint.pt       model + AdamW state + schedule position + RNG state (CPU, and the CUDA
//                       device's when training there) + fp16 loss-scaler state (atomic write)
//   history.json        per-epoch metrics (for resuming the plots and the CSV)
//   metrics.csv         epoch,train_loss,train_loc,train_cls,val_loss,map50,map,lr,seconds
//   loss.png, map.png   curves; predictions.png: validation images, ground truth | prediction
//   data/               the synthetic data set when trained with --synth
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../model/config.h"
#include "dataset.h"
#include "evaluate.h"
#include "synth.h"

namespace ssdtrain {

// Where a data set comes from: exactly one of coco, voc or synth (> 0).
struct DataSpec {
  std::string coco;               // COCO-style JSON
  std::string images;             // image folder for coco (empty: the JSON's folder)
  std::string voc;                // Pascal VOC root (VOCdevkit/VOC2007)
  std::string voc_split = "train";
  int synth = 0;                  // number of synthetic images
  uint64_t synth_seed = 0;
  int synth_size = 224;           // synthetic image side, pixels
  double synth_empty = 0;         // fraction of synthetic images with no object
  // A synthetic shape's longer side (before rotation) as a fraction of the image side, drawn
  // in [min, max] (SynthOptions' min_size, max_size).
  double synth_object_min = SynthOptions{}.min_size, synth_object_max = SynthOptions{}.max_size;
  std::string synth_dir;          // where the synthetic images are written

  bool empty() const { return coco.empty() && voc.empty() && synth <= 0; }
  std::string describe() const;
};

// Loads (or, for synth, generates into synth_dir unless it already holds the same set) the
// data set. Throws ssd::Error / DataError with a readable message.
Dataset load_dataset(const DataSpec& spec, LoadReport* report = nullptr);
// The same with the classes of the result set to `labels` (a model's, a training set's), boxes
// re-indexed by class name (use_labels()).
Dataset load_dataset(const DataSpec& spec, LoadReport* report, const std::vector<std::string>* labels);

// The most data loader threads (--workers) a command takes.
constexpr int kMaxWorkers = 256;

struct TrainOptions {
  int epochs = 10;
  int freeze_epochs = -1;     // body frozen for the first N epochs; -1: 1 with --imagenet, else 0
  int stop_after = 0;         // stop after this many epochs (0: run all; resume later)
  int batch_size = 16;
  double lr = 3e-3;           // peak learning rate of the head
  double lr_div = 3.0;        // layer groups: lr / lr_div^2, lr / lr_div, lr (unfrozen)
  double wd = 1e-2;           // AdamW decoupled weight decay
  double pct_start = 0.25;    // one-cycle warm-up fraction
  double div_factor = 25.0;   // start lr = lr / div_factor
  double final_div = 1e4;     // final lr = start lr / final_div
  bool cycle_momentum = true; // beta1: 0.95 -> 0.85 during warm-up, back to 0.95
  double beta1_max = 0.95, beta1_min = 0.85, beta2 = 0.99;
  double clip_grad = 1.0;     // max global gradient norm (0: no clipping)
  int workers = 2;            // loader threads
  int threads = 0;            // LibTorch intra-op threads (0: LibTorch's default)
  uint64_t seed = 0;
  std::string device = "cpu"; // cpu, cuda, cuda:N
  std::string precision = "fp32";   // fp32; bf16 (CUDA or CPU) / fp16 (CUDA only): autocast
                                    // forward, fp32 loss and weights; fp16 with loss scaling
  std::string imagenet;       // torchvision ResNet weights to import into the body
  std::string init_weights;   // start from this weights file (another architecture or other
                              // classes: the tensors that fit are copied, the class outputs by
                              // class name, see ssd::transfer_weights)
  bool augment = true;
  int eval_every = 1;         // mAP every N epochs (always after the last)
  int max_eval_images = 0;    // cap on validation images used for mAP (0: all)
  double match_threshold = 0.4;
  bool focal = true;
  double focal_alpha = 0.25, focal_gamma = 2.0;
  // Boxes marked ignore (COCO ignore/iscrowd, VOC difficult): "mask" leaves the anchors that lie
  // inside one out of the class loss (ssd::ssd_loss's ignore_boxes); "background" trains them as
  // background, as the lessons did (and runs stored before this option was added).
  std::string ignored = "mask";
  int plot_samples = 8;       // images in predictions.png
  double val_fraction = 0.1;  // held out from the training set when no validation set is given
  bool quiet = false;         // no progress bar / table (tests)
};

struct TrainSpec {
  ssd::SsdConfig config;      // labels come from the data set
  DataSpec train, val;        // val may be empty: split off val_fraction of train
  TrainOptions options;
  std::string out_dir;
};

std::string train_spec_to_json(const TrainSpec& spec);
TrainSpec train_spec_from_json(const std::string& text);   // throws ssd::Error

struct EpochMetrics {
  int epoch = 0;              // 1-based
  double train_loss = 0, train_loc = 0, train_cls = 0;   // per image, mean over the epoch
  double val_loss = 0;        // per image (NaN when not validated)
  bool validated = true;      // false without a validation set (--val-fraction 0)
  double map50 = -1, map = -1; // COCO AP@0.5 / AP@[.5:.95]; -1 when not evaluated
  double lr = 0;              // head learning rate at the end of the epoch
  double seconds = 0;
};

struct TrainResult {
  std::vector<EpochMetrics> history;
  std::string weights_path;   // the last epoch's weights (model.safetensors)
  // The evaluated epoch with the best validation mAP@[.5:.95] and its weights
  // (best.safetensors); 0 and empty when no epoch was evaluated.
  int best_epoch = 0;
  std::string best_weights_path;
  bool finished = false;      // false when stopped by stop_after
  double loader_images_per_s = 0;   // loader alone (measured before training)
  double train_images_per_s = 0;    // forward + backward + step, first epoch
  MapResult last_map;
};

// Trains a new run into spec.out_dir (created; must not hold a run already).
TrainResult train(const TrainSpec& spec);
// What a resumed run may do otherwise than its stored options say, for this continuation only
// (run.json keeps them): where it computes (e.g. a run begun on a GPU host continued on a CPU)
// and with how many threads (the data order does not depend on them).
struct ResumeOverrides {
  std::optional<std::string> device;   // none: the stored one (each checked as train checks it)
  std::optional<int> workers;
  std::optional<int> threads;
  // An fp16 run begun on a GPU goes on on the CPU in bf16 or fp32 (the fp16 loss scale is
  // dropped; back in fp16 the scale starts afresh). A run whose precision changed no longer
  // reproduces the uninterrupted one.
  std::optional<std::string> precision;
};

// Continues the run in run_dir from its checkpoint (from its start when it has none yet).
// stop_after > 0 overrides the stored one, 0 keeps it, -1 runs to the end; quiet as in
// TrainOptions.
TrainResult resume(const std::string& run_dir, int stop_after = -1, bool quiet = false,
                   const ResumeOverrides& overrides = {});

struct EvalSpec {
  std::string weights;
  DataSpec data;
  std::string device = "cpu";
  int batch_size = 16;
  int workers = 2;
  int threads = 0;
  double score_threshold = 0.01;   // detections kept for mAP
  double nms_iou = 0.45;
  bool class_agnostic_nms = false;   // NMS across classes (ssd::PostprocessOptions::class_agnostic)
  int max_images = 0;
  // When set, every detection is also written there as a COCO results file (see
  // write_coco_results), which pycocotools' COCO.loadRes reads.
  std::string detections_path;
  // When set, the precision-recall curves are drawn there (PNG, render_pr_curves), and the
  // confusion matrix (render_confusion).
  std::string pr_curve_path, confusion_path;
  double confusion_threshold = MapOptions{}.confusion_threshold;   // the matrix's detections: above it
  // The results JSON the caller writes (ssd-train eval --json): like the outputs above, refused
  // where it is one of the data set's images.
  std::string json_path;
};
// mAP of a weights file on a data set, its classes matched to the model's by name (a class with
// boxes the model lacks is an error); the loader's documented skips are printed to stderr.
MapResult evaluate_weights(const EvalSpec& spec);

struct LrFindSpec {
  TrainSpec train;            // architecture, data, batch size, wd, device...; out_dir = output
  double start_lr = 1e-7, end_lr = 10.0;
  int iterations = 100;
  double smoothing = 0.98;    // exponential moving average of the loss (bias-corrected)
  double divergence = 4.0;    // stop once the smoothed loss exceeds this times the best
};
struct LrFindResult {
  std::vector<double> lrs, losses, smoothed;
  double suggested_valley = 0;    // lr half way down the longest descent (the suggestion)
  double suggested_steepest = 0;  // lr at the steepest descent of the smoothed loss
  double suggested_min10 = 0;     // (lr at the minimum smoothed loss) / 10
  std::string csv_path, png_path;
};
LrFindResult lr_find(const LrFindSpec& spec);
// The learning rate multipliers of the layer groups, early body, late body, head: 1/lr_div^2,
// 1/lr_div, 1 (the lesson's differential rates, lr/100, lr/10, lr with lr_div 10).
std::vector<double> group_multipliers(const TrainOptions& o);
// The one-cycle schedule at global step `step` (0-based) of a run of o.epochs epochs of
// steps_per_epoch steps whose first freeze_epochs are a cycle of their own, the rest another:
// the learning rate as a fraction of the peak (cosine from 1/div_factor up to 1 over pct_start of
// the cycle, then down to 1/div_factor/final_div) and AdamW's beta1 (with cycle_momentum, from
// beta1_max down to beta1_min while the rate rises, and back while it falls).
struct OneCyclePoint {
  double lr_frac = 1, beta1 = 0.95;
};
OneCyclePoint one_cycle_at(const TrainOptions& o, int64_t steps_per_epoch, int freeze_epochs, int64_t step);
// Indices of lr-find's suggestions in the sweep. All look only past its first tenth and before
// its last points (at most 5), as fastai's suggestions do: early on the bias-corrected average
// holds few minibatch losses, and a noisy one there must not pass for the minimum or a descent.
// `valley` (fastai's default suggestion since 2.5): the longest strictly decreasing run of the
// smoothed loss (not necessarily contiguous points), and the point half way along it;
// `minimum`: the least smoothed loss; `steepest`: the most negative slope of the smoothed loss
// against log(lr), as a difference over +-n/20 points, at or before `minimum` (the most
// sensitive to noise of the three).
struct LrSuggestionIndices {
  size_t valley = 0, steepest = 0, minimum = 0;
};
LrSuggestionIndices lr_suggestion_indices(const std::vector<double>& lrs, const std::vector<double>& smoothed);

// Number of LibTorch CPU threads and the CUDA check, for the CLI.
bool cuda_is_available();

}  // namespace ssdtrain
