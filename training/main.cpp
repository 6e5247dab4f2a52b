// ssd-train: trains, evaluates and inspects the SSD detector (see `ssd-train --help`).
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>

#include "../model/blas_check.h"
#include "../model/config.h"
#include "../model/detector.h"
#include "../model/device.h"
#include "../model/error.h"
#include "../model/text.h"
#include "atomic_file.h"
#include "cli_conventions.h"
#include "evaluate.h"
#include "model_info.h"
#include "precision.h"
#include "predict.h"
#include "remove_on_interrupt.h"
#include "synth.h"
#include "trainer.h"

using namespace ssdtrain;

namespace {

// An option's value must be a number >= `least`: "--count: must be >= 1 (0 given)" (CLI11's own
// PositiveNumber printed "Value 0 not in range 0.000000 to 1797693...").
CLI::Validator at_least(long long least) {
  return CLI::Validator(
      [least](std::string& value) {
        char* end = nullptr;
        const double x = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0' || !(x >= static_cast<double>(least)))
          return "must be >= " + std::to_string(least) + " (" + value + " given)";
        return std::string();
      },
      least == 1 ? "POSITIVE" : least == 0 ? "NONNEGATIVE" : ">=" + std::to_string(least));   // (as CLI11's)
}

// The synthetic shapes' size: "MIN,MAX", the longer side before rotation as a fraction of the
// image side, 0.02 <= MIN <= MAX <= 1 (SynthOptions' min_size, max_size).
CLI::Option* add_object_size_option(CLI::App* app, const std::string& name, double& min, double& max) {
  std::ostringstream defaults;
  defaults << min << "," << max;
  return app
      ->add_option_function<std::vector<double>>(
          name,
          [name, &min, &max](const std::vector<double>& v) {
            if (std::isnan(v[0]) || std::isnan(v[1])) throw CLI::ValidationError(name, "MIN and MAX must be numbers");
            if (!(v[0] <= v[1])) {
              std::ostringstream what;
              what << "MIN must not exceed MAX (" << v[0] << " > " << v[1] << ")";
              throw CLI::ValidationError(name, what.str());
            }
            min = v[0];
            max = v[1];
          },
          "MIN,MAX: a shape's longer side (before rotation) as a fraction of the image side, drawn between the two")
      ->expected(2)
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)   // (given twice: the last pair)
      ->check(CLI::Range(0.02, 1.0))
      ->default_str(defaults.str());
}

// Data-set options; `prefix` "" or "val-"; `synth_dir_default` says where --synth writes
// without --synth-dir (empty: no --synth options).
std::vector<CLI::Option*> add_data_options(CLI::App* app, DataSpec& d, const std::string& prefix,
                                           const std::string& synth_dir_default) {
  std::vector<CLI::Option*> opts;
  const std::string what = prefix.empty() ? "" : "validation ";
  opts.push_back(app->add_option("--" + prefix + "coco", d.coco,
                                 "COCO-style " + what + "annotations JSON")
                     ->check(CLI::ExistingFile));
  opts.push_back(app->add_option("--" + prefix + "images", d.images,
                                 "image folder for --" + prefix + "coco (default: the JSON's folder, or its images/ as synth writes it)")
                     ->check(CLI::ExistingDirectory));
  opts.push_back(app->add_option("--" + prefix + "voc", d.voc,
                                 "Pascal VOC " + what + "root (holding Annotations/, JPEGImages/, ImageSets/" +
                                     (prefix.empty() ? std::string("; classes: the 20 VOC classes when every name "
                                                                   "used is one, else the names used)")
                                                     : std::string(")")))
                     ->check(CLI::ExistingDirectory));
  opts.push_back(app->add_option("--" + prefix + "voc-split", d.voc_split,
                                 "VOC ImageSets/Main split name")
                     ->capture_default_str());
  if (!synth_dir_default.empty()) {
    opts.push_back(app->add_option("--synth", d.synth, "use N synthetic images (shapes) instead")
                       ->check(at_least(1)));
    opts.push_back(app->add_option("--synth-seed", d.synth_seed, "seed of the synthetic set")
                       ->capture_default_str());
    opts.push_back(app->add_option("--synth-size", d.synth_size, "synthetic image side, pixels")
                       ->capture_default_str()
                       ->check(CLI::Range(32, 4096)));
    opts.push_back(app->add_option("--synth-empty", d.synth_empty,
                                   "fraction of synthetic images with no object (flat, gradient or textured backgrounds; "
                                   "teaches the model to leave blank scenes alone); above 0 the images with objects change "
                                   "too: half on plain backgrounds, a quarter of the shapes upright")
                       ->capture_default_str()
                       ->check(CLI::Range(0.0, 1.0)));
    opts.push_back(add_object_size_option(app, "--synth-object-size", d.synth_object_min, d.synth_object_max));
    opts.push_back(app->add_option("--synth-dir", d.synth_dir,
                                   "folder for the synthetic images (default: " + synth_dir_default + ")"));
  }
  return opts;
}

// Data options given that the data chosen does not use (--images without --coco, --voc-split
// without --voc, --synth-seed without --synth): warned about, as they were ignored without a word.
void warn_unused_data_options(const std::vector<CLI::Option*>& opts, const DataSpec& d) {
  for (const CLI::Option* o : opts) {
    if (o->count() == 0) continue;
    const std::string name = o->get_name();
    const auto is = [&](const char* option) { return ssd::ends_with(name, option); };
    std::string needs;
    if (is("images") && d.coco.empty()) needs = "coco";
    else if (is("voc-split") && d.voc.empty()) needs = "voc";
    else if ((is("synth-seed") || is("synth-size") || is("synth-empty") || is("synth-object-size") ||
              is("synth-dir")) && d.synth == 0) needs = "synth";
    if (!needs.empty())
      std::cerr << "warning: " << name << " has no effect without --" << (name.rfind("--val-", 0) == 0 ? "val-" : "")
                << needs << "\n";
  }
}

std::vector<CLI::Option*> add_arch_options(CLI::App* app, ssd::SsdConfig& c) {
  std::vector<CLI::Option*> opts;
  opts.push_back(app->add_option("--body", c.body, "body: resnet18, resnet34, resnet50 or tiny")
                     ->capture_default_str()
                     ->check(CLI::IsMember(ssd::known_bodies())));
  opts.push_back(app->add_option("--size", c.input_size, "input side, pixels")
                     ->capture_default_str()
                     ->check(CLI::Range(32, 4096)));
  opts.push_back(app->add_option("--grids", c.grids,
                                 "anchor grids, finest first (e.g. 7,4,2,1; a first grid of "
                                 "size/16, e.g. 10,5,3,2,1 at 160, uses the stride-16 features)")
                     ->delimiter(',')
                     ->capture_default_str());
  opts.push_back(app->add_option("--zooms", c.zooms, "anchor zooms (e.g. 0.7,1,1.3)")
                     ->delimiter(',')
                     ->capture_default_str());
  opts.push_back(app->add_option("--head-channels", c.head_channels, "head convolution width")
                     ->capture_default_str()
                     ->check(at_least(1)));
  opts.push_back(app->add_option("--dropout", c.dropout, "head dropout")
                     ->capture_default_str()
                     ->check(CLI::Range(0.0, 0.95)));
  return opts;
}

// With --init (not --resume): the architecture is the file's but for the options given (a
// fine-tune needs the file's architecture for its tensors to carry over; the anchor ratios, the
// normalisation and the class bias, which no option sets, come from it too).
void take_init_architecture(const std::vector<CLI::Option*>& arch, ssd::SsdConfig& config, const std::string& init) {
  if (init.empty()) return;
  ssd::SsdConfig c = read_weights_info(init).config;
  c.labels = config.labels;
  for (const CLI::Option* o : arch) {
    if (o->count() == 0) continue;
    const std::string& n = o->get_name();
    if (n == "--body") c.body = config.body;
    else if (n == "--size") c.input_size = config.input_size;
    else if (n == "--grids") c.grids = config.grids;
    else if (n == "--zooms") c.zooms = config.zooms;
    else if (n == "--head-channels") c.head_channels = config.head_channels;
    else if (n == "--dropout") c.dropout = config.dropout;
    else throw std::logic_error("take_init_architecture: no field for " + n);
  }
  config = c;
}

std::vector<CLI::Option*> add_train_options(CLI::App* app, TrainOptions& o) {
  std::vector<CLI::Option*> v;
  v.push_back(app->add_option("--epochs", o.epochs, "epochs")->capture_default_str());
  v.push_back(app->add_option("--batch", o.batch_size, "batch size")->capture_default_str());
  v.push_back(app->add_option("--lr", o.lr, "peak learning rate (head)")->capture_default_str());
  v.push_back(app->add_option("--lr-div", o.lr_div,
                              "unfrozen layer groups get lr/d^2, lr/d, lr (early body, late body, head)")
                  ->capture_default_str());
  v.push_back(app->add_option("--wd", o.wd, "AdamW weight decay (on every parameter, BatchNorm and biases included)")->capture_default_str());
  v.push_back(app->add_option("--pct-start", o.pct_start, "one-cycle warm-up fraction")
                  ->capture_default_str());
  v.push_back(app->add_option("--div-factor", o.div_factor, "one-cycle: start lr = lr / this; the cycle ends at start lr / 1e4")
                  ->capture_default_str());
  v.push_back(app->add_option("--freeze-epochs", o.freeze_epochs,
                              "epochs with the body frozen, its BatchNorm statistics kept (-1: 1 with --imagenet, else 0); the frozen epochs and the rest each run a one-cycle of their own")
                  ->capture_default_str());
  v.push_back(app->add_option("--clip", o.clip_grad, "max gradient norm (0: off)")
                  ->capture_default_str());
  v.push_back(app->add_option("--workers", o.workers, "data loader threads")->capture_default_str()
                  ->check(CLI::Range(1, kMaxWorkers)));
  v.push_back(app->add_option("--threads", o.threads, "LibTorch threads (0: default)")
                  ->capture_default_str());
  v.push_back(app->add_option("--seed", o.seed, "random seed")->capture_default_str());
  v.push_back(app->add_option("--device", o.device, "cpu, cuda, cuda:N or auto")
                  ->capture_default_str());
  v.push_back(app->add_option("--precision", o.precision,
                              "fp32, or mixed precision: bf16 (CUDA or CPU) or fp16 (CUDA, with "
                              "loss scaling); weights and loss stay fp32")
                  ->capture_default_str()
                  ->check([](const std::string& name) {
                    try {
                      ssdtrain::parse_precision(name);
                      return std::string();
                    } catch (const std::exception& e) {
                      return std::string(e.what());
                    }
                  }));
  v.push_back(app->add_option("--imagenet", o.imagenet,
                              "torchvision ImageNet ResNet weights for the body (.pth state dict "
                              "or .safetensors)")
                  ->check(CLI::ExistingFile));
  v.push_back(app->add_option("--init", o.init_weights,
                              "start from this weights file, of its architecture unless architecture "
                              "options are given, e.g. to continue with a new schedule "
                              "(the same classes in any order: the data set takes the file's) or to "
                              "fine-tune it to other classes (the model takes the data set's; the "
                              "class outputs of classes the file has are copied by name); from "
                              "another architecture (e.g. without the fine grid) the tensors that "
                              "match are copied")
                  ->check(CLI::ExistingFile));
  v.push_back(app->add_flag("!--no-augment", o.augment, "no data augmentation"));
  v.push_back(app->add_flag("!--no-focal", o.focal, "plain BCE class loss instead of focal"));
  v.push_back(app->add_option("--match-threshold", o.match_threshold, "anchor matching IoU")
                  ->capture_default_str());
  v.push_back(app->add_option("--ignored", o.ignored,
                              "boxes marked ignore (COCO ignore/iscrowd, VOC difficult): mask = "
                              "anchors more than --match-threshold inside one are left out of "
                              "the class loss; background = trained as background")
                  ->capture_default_str()
                  ->check(CLI::IsMember({"mask", "background"})));
  v.push_back(app->add_option("--eval-every", o.eval_every, "mAP every N epochs (and the last; 0: the last only)")
                  ->capture_default_str());
  v.push_back(app->add_option("--max-eval-images", o.max_eval_images,
                              "cap on validation images for the validation loss and mAP (0: all)")
                  ->capture_default_str());
  v.push_back(app->add_option("--val-fraction", o.val_fraction,
                              "fraction held out for validation when no validation set is given "
                              "(0: none, every image trains; not with --synth, which makes a "
                              "validation set of its own)")
                  ->capture_default_str());
  return v;
}

void print_map(const MapResult& r, const std::string& json_path) {
  std::printf("%s%s", format_map_table(r).c_str(), format_confusion(r).c_str());
  if (json_path.empty()) return;
  nlohmann::json j;
  j["images"] = r.num_images;
  j["map50_voc07"] = r.map50_voc07;
  j["map50_voc"] = r.map50_voc;
  j["map_coco"] = r.map_coco;
  j["map50_coco"] = r.map50_coco;
  j["map75_coco"] = r.map75_coco;
  // The rest of pycocotools' summary; -1 where no class has ground truth of that size.
  j["map_small"] = r.map_small;
  j["map_medium"] = r.map_medium;
  j["map_large"] = r.map_large;
  j["ar1"] = r.ar1;
  j["ar10"] = r.ar10;
  j["ar100"] = r.ar100;
  j["ar_small"] = r.ar_small;
  j["ar_medium"] = r.ar_medium;
  j["ar_large"] = r.ar_large;
  // A class without ground truth (not `valid`) has no AP: -1, as pycocotools writes it and as
  // its other fields here are (its APs read 0, which a reader averaging them took for a value).
  for (const auto& c : r.classes) {
    auto ap = [&c](double v) { return c.valid ? v : -1.0; };
    j["classes"].push_back({{"name", c.name}, {"num_gt", c.num_gt}, {"num_det", c.num_det},
                            {"valid", c.valid}, {"ap50_voc07", ap(c.ap50_voc07)},
                            {"ap50_voc", ap(c.ap50_voc)}, {"ap_coco", ap(c.ap_coco)},
                            {"ap50_coco", ap(c.ap50_coco)}, {"ap75_coco", ap(c.ap75_coco)},
                            {"ap_small", c.ap_small}, {"ap_medium", c.ap_medium}, {"ap_large", c.ap_large},
                            {"ar100", c.ar100}, {"best_f1", c.best_f1}, {"f1_threshold", c.f1_threshold},
                            {"f1_precision", c.f1_precision}, {"f1_recall", c.f1_recall}});
  }
  j["class_thresholds"] = f1_class_thresholds(r);   // ssddetect's property, best F1 per class
  j["class_agnostic_nms"] = r.class_agnostic_nms;   // (the NMS those thresholds were picked with)
  j["confusion"] = {{"threshold", r.confusion_threshold}, {"iou", 0.5}, {"matrix", r.confusion}};
  write_file_atomic(json_path, j.dump(2) + "\n");   // (flushed and checked: a full disk is an error)
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) is an error naming the file, as a full disk is, and leaves no
  // half-written file: the write fails with EFBIG instead of the signal killing the process
  // without a word, its checkpoint.pt.tmp left behind.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"ssd-train: trains and evaluates the SSD object detector (fastai 2018 lessons) "
               "with LibTorch"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every command");
  app.set_version_flag("--version", [] {
    return std::string("ssd-train " SSD_VERSION "\n") + ssd::runtime_description() + "\nOpenCV " CV_VERSION;
  }, "print the version, the LibTorch and OpenCV it runs with and the CUDA devices it sees, and exit");

  // ---- train
  TrainSpec ts;
  ts.config.body = "tiny";
  std::string resume_dir;
  int stop_after = 0;
  auto* train = app.add_subcommand("train", "train a model into a run folder");
  auto train_data = add_data_options(
      train, ts.train, "",
      "<out>/data/train; without a validation set, one of max(50, N/10) images is made in <out>/data/val");
  ts.val.voc_split = "val";   // a VOC folder's validation split, not the training one
  auto val_data = add_data_options(train, ts.val, "val-", "");
  auto arch = add_arch_options(train, ts.config);
  auto topts = add_train_options(train, ts.options);
  auto* out_opt = train->add_option("--out", ts.out_dir, "run folder to create");
  train->add_option("--resume", resume_dir,
                    "continue the run in this folder from its last checkpoint (other options "
                    "come from its run.json; --device, --precision, --workers, --threads, "
                    "--stop-after and --quiet may be given)")
      ->check(CLI::ExistingDirectory);
  train->add_option("--stop-after", stop_after,
                    "stop after this many epochs in total (resume later with --resume; 0: no stop)")
      ->check(at_least(0));
  train->add_flag("--quiet", ts.options.quiet, "no progress bar or table (warnings still go to stderr)");

  // ---- eval
  EvalSpec es;
  std::string eval_json;
  auto* eval = app.add_subcommand("eval", "mAP of a weights file on a data set, per class");
  eval->add_option("--weights", es.weights, "weights file (default: the shipped model)");
  es.data.voc_split = "val";   // held-out images, not the ones a model was trained on
  const auto eval_data = add_data_options(eval, es.data, "", "a temporary folder, removed afterwards");
  eval->add_option("--device", es.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  eval->add_option("--batch", es.batch_size, "batch size")->capture_default_str();
  eval->add_option("--workers", es.workers, "data loader threads")->capture_default_str()
      ->check(CLI::Range(1, kMaxWorkers));
  eval->add_option("--threads", es.threads, "LibTorch threads (0: default)")->capture_default_str()
      ->check(at_least(0));
  eval->add_option("--threshold", es.score_threshold, "detections counted need a score above this")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  eval->add_option("--max-images", es.max_images, "evaluate the first N images (0: all)")
      ->capture_default_str()->check(at_least(0));
  eval->add_flag("--class-agnostic-nms", es.class_agnostic_nms,
                 "NMS across classes, as ssddetect's class-agnostic-nms (default: per class)");
  // Output files are checked before the evaluation runs, not after.
  const CLI::Validator in_existing_folder(
      [](std::string& path) {
        // (error_code forms: a path the system cannot look at, such as a symbolic link loop or a
        // name over 255 bytes, threw from within CLI11 and aborted.)
        std::error_code ec;
        if (path.empty()) return std::string("an empty path");
        if (std::filesystem::is_directory(path, ec)) return path + " is a folder: give a file name (in it, say)";
        if (ec && ec != std::errc::no_such_file_or_directory) return path + ": " + ec.message();
        const std::filesystem::path parent = std::filesystem::absolute(path, ec).parent_path();
        if (ec) return path + ": " + ec.message();
        if (std::filesystem::is_directory(parent, ec)) return std::string();
        return ec && ec != std::errc::no_such_file_or_directory ? parent.string() + ": " + ec.message()
                                                                 : "no folder " + parent.string() + " to write " + path + " in";
      },
      "FILE in an existing folder");
  eval->add_option("--json", eval_json, "also write the results as JSON")->check(in_existing_folder);
  eval->add_option("--detections", es.detections_path,
                   "also write every detection as a COCO results file (pycocotools' loadRes)")
      ->check(in_existing_folder);
  eval->add_option("--pr-curve", es.pr_curve_path, "also draw the precision-recall curves at IoU 0.5 (PNG)")
      ->check(in_existing_folder);
  eval->add_option("--confusion", es.confusion_path,
                   "also draw the confusion matrix (confidence > --confusion-threshold, IoU >= 0.5; PNG)")
      ->check(in_existing_folder);
  auto* confusion_threshold = eval->add_option(
      "--confusion-threshold", es.confusion_threshold,
      "the confusion matrix counts detections above this confidence, in [--threshold, 1] (printed, "
      "--json, --confusion; default: 0.3, or --threshold when that is higher)");

  // ---- predict
  PredictSpec ps;
  auto* predict = app.add_subcommand("predict", "draw detections on images into PNG files");
  predict->add_option("--weights", ps.weights, "weights file (default: the shipped model)");
  predict->add_option("--out", ps.out_dir, "output folder")->required();
  predict->add_option("--threshold", ps.threshold, "a detection needs a confidence above this")->capture_default_str();
  predict->add_option("--nms", ps.nms_iou, "NMS IoU threshold")->capture_default_str();
  predict->add_flag("--class-agnostic-nms", ps.class_agnostic_nms,
                    "NMS across classes, as ssddetect's class-agnostic-nms (default: per class)");
  predict->add_option("--max-detections", ps.max_detections, "most detections an image")->capture_default_str()
      ->check(CLI::Range(1, ssd::kMaxDetectionsLimit));   // ssddetect's bound
  predict->add_option("--classes", ps.classes, "keep only these classes (comma-separated labels)");
  predict->add_option("--class-thresholds", ps.class_thresholds,
                      "per-class minimum confidence, label=conf,... (eval prints the best-F1 ones)");
  predict->add_option("--device", ps.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  predict->add_option("--threads", ps.threads, "LibTorch threads (0: default)")->capture_default_str()
      ->check(at_least(0));
  predict->add_option("images", ps.images, "image files, or folders (their image files)")->required();

  // ---- synth
  SynthDatasetOptions so;
  std::string synth_out;
  auto* synth = app.add_subcommand("synth", "write the synthetic shapes data set (COCO JSON + images)");
  synth->add_option("--out", synth_out, "output folder")->required();
  synth->add_option("--count", so.count, "number of images")->capture_default_str()
      ->check(at_least(1));
  synth->add_option("--seed", so.seed, "seed (same seed, same data set)")->capture_default_str();
  synth->add_option("--size", so.width, "image side, pixels")->capture_default_str()
      ->check(CLI::Range(32, 4096));
  synth->add_option("--format", so.format, "jpg or png")->capture_default_str()
      ->check(CLI::IsMember({"jpg", "png"}));
  synth->add_option("--empty", so.synth.empty_fraction,
                    "fraction of images with no object (flat, gradient or textured backgrounds); above 0 the "
                    "images with objects change too: half on plain backgrounds, a quarter of the shapes upright")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  add_object_size_option(synth, "--object-size", so.synth.min_size, so.synth.max_size);

  // ---- lr-find
  LrFindSpec ls;
  ls.train.config.body = "tiny";
  auto* lrf = app.add_subcommand("lr-find", "loss against an exponentially growing learning rate");
  const auto lrf_data = add_data_options(lrf, ls.train.train, "", "<out>/data/train");
  const auto lrf_arch = add_arch_options(lrf, ls.train.config);
  for (CLI::Option* o : add_train_options(lrf, ls.train.options)) {
    // What only a training run uses (lr-find sets the rates step by step: the head's, and the
    // earlier layer groups' divided by --lr-div as in training).
    static const std::set<std::string> training_only{"--epochs", "--lr", "--pct-start", "--div-factor",
                                                     "--eval-every", "--max-eval-images", "--val-fraction"};
    if (training_only.count(o->get_name())) lrf->remove_option(o);
  }
  lrf->add_option("--out", ls.train.out_dir, "output folder (lr_find.csv, lr_find.png)")->required();
  lrf->add_option("--start-lr", ls.start_lr, "first learning rate")->capture_default_str();
  lrf->add_option("--end-lr", ls.end_lr, "last learning rate")->capture_default_str();
  lrf->add_option("--iters", ls.iterations, "steps (at least 5)")->capture_default_str();
  lrf->add_flag("--quiet", ls.train.options.quiet, "no progress bar");

  // ---- info
  std::string info_path;
  auto* info = app.add_subcommand("info", "architecture, classes and tensors of a weights file");
  info->add_option("weights", info_path, "weights file")->required();

  // A path given empty (an unset make variable, say) is an error, not the default it would mean
  // (eval --weights "" evaluated the shipped model); a seed is an integer in [0, 2^64 - 1] (-1
  // and values past it were taken, wrapped or clamped).
  static const std::set<std::string> path_options{
      "--coco", "--images", "--voc", "--val-coco", "--val-images", "--val-voc", "--synth-dir", "--out", "--resume",
      "--weights", "--json", "--detections", "--pr-curve", "--confusion", "--imagenet", "--init", "weights", "images"};
  const CLI::Validator not_empty = not_empty_path();
  // A weights file that is a FIFO (or a device): refused before it is opened, which blocks until
  // a writer comes (ssd-train info on one hung).
  static const std::set<std::string> weights_options{"--weights", "--init", "--imagenet", "weights"};
  const CLI::Validator regular_file(
      [](std::string& v) {
        std::error_code ec;
        const auto st = std::filesystem::status(v, ec);
        return ec || std::filesystem::is_regular_file(st) || std::filesystem::is_directory(st) || !std::filesystem::exists(st)
                   ? std::string()
                   : v + " is not a regular file (a FIFO, a pipe, a socket or a device): give the weights file itself";
      },
      "FILE");
  take_last_values(app);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* o : sub->get_options()) {
      if (path_options.count(o->get_name())) o->check(not_empty);
      if (weights_options.count(o->get_name())) o->check(regular_file);
      if (o->get_name() == "--seed" || o->get_name() == "--synth-seed") o->check(seed_value());
    }
  // A list option's element left empty ("--grids 4,,1", "4,2,1,"): an error (CLI11 dropped it,
  // and the run trained other grids than written, without a word).
  // Each value given to one: "--grids=V", or the arguments after "--grids" up to the next option
  // (CLI11 takes "--grids 4 2 1" too).
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    const std::string arg = argv[i];
    for (const std::string list : {"--grids", "--zooms", "--synth-object-size", "--object-size"}) {
      std::vector<std::string> values;
      if (arg == list)
        for (int k = i + 1; k < argc && argv[k][0] != '-'; ++k) values.push_back(argv[k]);
      else if (arg.rfind(list + "=", 0) == 0)
        values.push_back(arg.substr(list.size() + 1));
      for (const std::string& value : values)
        if (!value.empty() && (value.front() == ',' || value.back() == ',' || value.find(",,") != std::string::npos)) {
          std::cerr << list << ": an empty element in " << value << " (two commas in a row?)\n";
          return static_cast<int>(CLI::ExitCodes::ValidationError);
        }
    }
  }
  if (const int status = unknown_command_status(app, argc, argv, "ssd-train")) return status;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // OpenBLAS on a CPU newer than itself: its fast kernels (stderr, so stdout stays the result).
  if (const auto kernels = ssd::select_openblas_kernels(); !kernels.empty()) std::cerr << kernels << "\n";

  try {
    if (train->parsed()) {
      if (!resume_dir.empty()) {
        std::vector<CLI::Option*> others = train_data;
        others.insert(others.end(), val_data.begin(), val_data.end());
        others.insert(others.end(), arch.begin(), arch.end());
        others.insert(others.end(), topts.begin(), topts.end());
        others.push_back(out_opt);
        static const std::set<std::string> may_change{"--device", "--workers", "--threads", "--precision"};
        ResumeOverrides overrides;
        for (auto* o : others) {
          if (o->count() == 0) continue;
          if (!may_change.count(o->get_name()))
            throw ssd::Error("--resume continues the stored run; " + o->get_name() +
                             " cannot be changed (only --device, --precision, --workers, --threads, --stop-after and --quiet)");
          if (o->get_name() == "--device") overrides.device = ts.options.device;
          if (o->get_name() == "--workers") overrides.workers = ts.options.workers;
          if (o->get_name() == "--threads") overrides.threads = ts.options.threads;
          if (o->get_name() == "--precision") overrides.precision = ts.options.precision;
        }
        TrainResult r = ssdtrain::resume(resume_dir, stop_after > 0 ? stop_after : -1, ts.options.quiet, overrides);
        return r.history.empty() ? 1 : 0;
      }
      if (ts.out_dir.empty()) throw ssd::Error("train needs --out RUN_DIR (or --resume RUN_DIR)");
      warn_unused_data_options(train_data, ts.train);
      warn_unused_data_options(val_data, ts.val);
      if (ts.train.empty()) throw ssd::Error("train needs data: --coco FILE, --voc DIR or --synth N");
      ts.options.stop_after = stop_after;
      take_init_architecture(arch, ts.config, ts.options.init_weights);
      {  // early check of the architecture, before any data is loaded or generated
        ssd::SsdConfig c = ts.config;
        c.labels = {"check"};
        c.validate();
      }
      TrainResult r = ssdtrain::train(ts);
      return r.history.empty() ? 1 : 0;
    }
    if (eval->parsed()) {
      // An output over an input (--detections over --coco lost the data set) or over another
      // output (--json and --detections at one path: one replaced the other): refused first.
      {
        std::vector<std::pair<std::string, std::string>> files = {
            {"--coco", es.data.coco}, {"--weights", es.weights}, {"--json", eval_json},
            {"--detections", es.detections_path}, {"--pr-curve", es.pr_curve_path}, {"--confusion", es.confusion_path}};
        constexpr size_t kInputs = 2;
        for (size_t i = kInputs; i < files.size(); ++i)
          for (size_t j = 0; j < i; ++j) {
            if (files[i].second.empty() || files[j].second.empty()) continue;
            std::error_code ec;
            const auto a = std::filesystem::weakly_canonical(files[i].second, ec);
            const auto b = std::filesystem::weakly_canonical(files[j].second, ec);
            if (!ec && a == b)
              throw ssd::Error(files[i].first + " " + files[i].second + " is " + files[j].first +
                               (j < kInputs ? "'s file: it would be written over" : "'s file too: give each its own"));
          }
      }
      es.json_path = eval_json;
      if (es.weights.empty()) es.weights = ssd::default_model_path();
      if (confusion_threshold->count() == 0) es.confusion_threshold = std::max(es.confusion_threshold, es.score_threshold);
      if (es.data.empty()) throw ssd::Error("eval needs data: --coco FILE, --voc DIR or --synth N");
      warn_unused_data_options(eval_data, es.data);
      std::string tmp_dir;
      if (es.data.synth > 0 && es.data.synth_dir.empty()) {
        tmp_dir = (std::filesystem::temp_directory_path() /
                   ("ssd-train-eval-" + std::to_string(::getpid())))
                      .string();
        es.data.synth_dir = tmp_dir;
      }
      MapResult r;
      {
        // Ctrl-C removes the temporary folder too (before any thread of LibTorch's is started).
        std::optional<RemoveOnInterrupt> removed_on_interrupt;
        if (!tmp_dir.empty()) removed_on_interrupt.emplace(tmp_dir);
        try {
          r = evaluate_weights(es);
        } catch (...) {
          if (!tmp_dir.empty()) std::filesystem::remove_all(tmp_dir);
          throw;
        }
        if (!tmp_dir.empty()) std::filesystem::remove_all(tmp_dir);
      }
      std::printf("weights: %s\ndata: %s\n%s", es.weights.c_str(), es.data.describe().c_str(),
                  es.class_agnostic_nms ? "NMS: across classes (--class-agnostic-nms)\n" : "");
      print_map(r, eval_json);
      return 0;
    }
    if (predict->parsed()) {
      if (ps.weights.empty()) ps.weights = ssd::default_model_path();
      // A line per image as it is done (they all came at the end, none after an interrupt).
      predict_images(ps, [](const ImagePrediction& p) {
        std::printf("%s: %zu detections -> %s\n", ssd::printable(p.image).c_str(), p.detections.size(),
                    ssd::printable(p.output).c_str());
        std::fflush(stdout);
      });
      return 0;
    }
    if (synth->parsed()) {
      so.height = so.width;
      Dataset ds = write_synth_dataset(synth_out, so);
      std::printf("wrote %zu images, %zu boxes, classes:", ds.images.size(), ds.num_boxes());
      for (const auto& l : ds.labels) std::printf(" %s", l.c_str());
      std::printf("\n%s/annotations.json (images in %s/images)\n", synth_out.c_str(),
                  synth_out.c_str());
      return 0;
    }
    if (lrf->parsed()) {
      if (ls.train.train.empty()) throw ssd::Error("lr-find needs data: --coco FILE, --voc DIR or --synth N");
      warn_unused_data_options(lrf_data, ls.train.train);
      take_init_architecture(lrf_arch, ls.train.config, ls.train.options.init_weights);
      if (ls.train.train.synth > 0 && ls.train.train.synth_dir.empty())
        ls.train.train.synth_dir = ls.train.out_dir + "/data/train";
      LrFindResult r = lr_find(ls);
      std::printf("lr-find: %zu steps, lr %.2e .. %.2e%s\n", r.lrs.size(), r.lrs.front(), r.lrs.back(),
                  static_cast<int>(r.lrs.size()) < ls.iterations ? " (stopped early: the loss diverged)" : "");
      std::printf("suggested learning rate: %.2e (valley); also %.2e (steepest descent), %.2e (minimum / 10)\n",
                  r.suggested_valley, r.suggested_steepest, r.suggested_min10);
      std::printf("%s\n%s\n", r.csv_path.c_str(), r.png_path.c_str());
      return 0;
    }
    if (info->parsed()) {
      WeightsInfo wi = read_weights_info(info_path);
      std::printf("%s", format_weights_info(info_path, wi).c_str());
      return 0;
    }
  } catch (const std::bad_alloc&) {   // (it said "std::bad_alloc")
    std::fprintf(stderr, "ssd-train: error: out of memory\n");
    return 1;
  } catch (const c10::Error& e) {   // (LibTorch's own, out of memory say: without its 40-line C++ backtrace)
    std::fprintf(stderr, "ssd-train: error: %s\n", ssd::printable(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {   // (printable: file names and class names from the data)
    std::fprintf(stderr, "ssd-train: error: %s\n", ssd::printable(e.what()).c_str());
    return 1;
  }
  return 1;
}
