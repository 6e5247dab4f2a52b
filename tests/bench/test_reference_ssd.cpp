// The C++ detector and training loss against bench/reference_ssd.py and
// bench/reference_train.py: an independent eager-PyTorch implementation (torchvision body, the
// lesson's head, anchors, decoding and loss, torchvision.ops.batched_nms) that loads our weights
// file by name. The same model and frames must give the same detections (boxes and scores within
// 1e-4, same labels; where two candidates' scores tie to within rounding, either may come first,
// see compare_frame), and the same outputs the same loss. This also validates the reference the
// benchmarks time.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include "../model/test_util.h"
#include "../python_reference.h"
#include "anchors.h"
#include "detector.h"
#include "loss.h"
#include "safetensors.h"
#include "ssd_model.h"
#include "weights.h"

using namespace ssd;

namespace {

std::string python() { return ssdtest::test_python(); }
// What bench/reference_ssd.py and reference_train.py import.
const char* const kReferenceModules = "numpy torch torchvision safetensors";
std::string source_dir() {
  const char* p = std::getenv("SSD_SOURCE_DIR");
  return p && *p ? p : ".";
}


// Runs a Python script of the source tree (path from its top) with its arguments.
void run(const std::string& args) {
  const std::string cmd = python() + " " + source_dir() + "/" + args;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "failed: " << cmd;
}

// Random batch-norm affine parameters and running statistics everywhere, so that a swapped
// ReLU/BatchNorm order or a mis-named tensor changes the output.
void randomise_batchnorm(Ssd& model, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& m : model->modules(false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
      bn->running_mean.uniform_(-0.3, 0.3);
      bn->running_var.uniform_(0.5, 1.5);
    }
  }
}

// A smooth picture with some noise, tight RGB (H, W, 3).
torch::Tensor make_picture(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  double f[3][2];
  for (auto& c : f) c[0] = 1 + 5 * u(rng), c[1] = 1 + 5 * u(rng);
  auto t = torch::empty({h, w, 3}, torch::kUInt8);
  auto a = t.accessor<uint8_t, 3>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 127.5 + 90 * std::sin(f[c][0] * x / w * 3.1 + c) *
                                     std::cos(f[c][1] * y / h * 2.9) +
                         30 * (u(rng) - 0.5);
        a[y][x][c] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
  return t;
}

// The picture packed as `format` (RGB, BGR, RGBx or BGRx) with `pad` bytes after each row.
struct Packed {
  std::vector<uint8_t> bytes;
  FrameView view;
};
Packed pack(const torch::Tensor& rgb, PixelFormat format, int pad) {
  const int h = rgb.size(0), w = rgb.size(1);
  const bool four = format == PixelFormat::RGBx || format == PixelFormat::BGRx;
  const bool bgr = format == PixelFormat::BGR || format == PixelFormat::BGRx;
  const int bpp = four ? 4 : 3, stride = w * bpp + pad;
  Packed p;
  p.bytes.assign(size_t(stride) * h, 200);
  auto a = rgb.accessor<uint8_t, 3>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) p.bytes[size_t(y) * stride + x * bpp + (bgr ? 2 - c : c)] = a[y][x][c];
  p.view.format = format;
  p.view.width = w;
  p.view.height = h;
  p.view.planes[0] = p.bytes.data();
  p.view.strides[0] = stride;
  return p;
}

struct FrameSpec {
  int w, h;
  PixelFormat format;
};

// One detection: class, score and normalised box (x1, y1, x2, y2).
struct Det {
  int64_t label;
  float score;
  std::array<float, 4> box;
};

std::string describe(const Det& d) {
  std::ostringstream s;
  s << d.label << " " << d.score << " [" << d.box[0] << " " << d.box[1] << " " << d.box[2] << " "
    << d.box[3] << "]";
  return s.str();
}
std::string describe(const std::vector<Det>& d) {
  std::string s;
  for (const auto& x : d) s += "  " + describe(x) + "\n";
  return s;
}

// Scores and boxes must agree to this (the implementations' scores differ by at most 8e-7 on
// the development machine, PyTorchReference.TinyDetectorMatches).
constexpr float kTolerance = 1e-4f;
// Candidates whose scores differ by less than this are a near-tie: rounding may order them
// either way.
constexpr float kTie = 1e-5f;

bool same(const Det& a, const Det& b) {
  if (a.label != b.label || std::abs(a.score - b.score) > kTolerance) return false;
  for (int j = 0; j < 4; ++j)
    if (std::abs(a.box[j] - b.box[j]) > kTolerance) return false;
  return true;
}

// Index in `candidates` (one frame's (anchor, class) pairs that went into NMS) of the candidate
// that d is, or -1.
int64_t find_candidate(const std::vector<Det>& candidates, const Det& d) {
  for (size_t i = 0; i < candidates.size(); ++i)
    if (same(candidates[i], d)) return static_cast<int64_t>(i);
  return -1;
}

struct FrameComparison {
  size_t compared = 0;  // leading detections that are the same in both lists
  std::string failure;  // empty when the lists agree
  std::string note;     // why the comparison stopped early, when it did
};

// Compares one frame's detections (both sorted by decreasing score) in order. The lists may
// part only where rounding decides: two different candidates with scores within kTie may come
// out in either order, and the first suppresses the second where they overlap, so from there
// on the lists may differ and are not compared; a candidate within kTie of the threshold may be
// in one list only (the last). Any other difference is a failure, and so is a detection that
// is no candidate of the reference's (e.g. a wrongly decoded box with the right score).
// `candidates` gives the reference's candidates; it is called only where the lists differ.
FrameComparison compare_frame(const std::vector<Det>& mine, const std::vector<Det>& ref,
                              float threshold,
                              const std::function<std::vector<Det>()>& candidates) {
  FrameComparison r;
  const size_t n = std::min(mine.size(), ref.size());
  for (; r.compared < n; ++r.compared) {
    const size_t k = r.compared;
    if (same(mine[k], ref[k])) continue;
    const std::string where = "detection " + std::to_string(k) + ": ours " + describe(mine[k]) +
                              ", reference " + describe(ref[k]);
    if (std::abs(mine[k].score - ref[k].score) > kTie) {
      r.failure = where;
      return r;
    }
    const auto c = candidates();
    const int64_t a = find_candidate(c, mine[k]), b = find_candidate(c, ref[k]);
    if (a < 0 || b < 0 || a == b || std::abs(c[a].score - c[b].score) > kTie) {
      r.failure = where + " (candidates " + std::to_string(a) + " and " + std::to_string(b) +
                  " of the reference's " + std::to_string(c.size()) + ")";
      return r;
    }
    r.note = "near-tie at " + where;
    return r;
  }
  if (mine.size() == ref.size()) return r;
  const Det& extra = (mine.size() > ref.size() ? mine : ref)[n];
  const std::string which = mine.size() > ref.size() ? "ours" : "the reference's";
  const std::string counts = "ours has " + std::to_string(mine.size()) + " detections, the reference " +
                             std::to_string(ref.size()) + "; the first extra (" + which + ") is " +
                             describe(extra);
  if (extra.score - threshold <= kTie && find_candidate(candidates(), extra) >= 0)
    r.note = counts + ", a near-tie with the threshold";
  else
    r.failure = counts;
  return r;
}

std::vector<Det> to_dets(const std::vector<Detection>& d) {
  std::vector<Det> out;
  for (const auto& x : d) out.push_back({x.label_id, x.confidence, {x.x_min, x.y_min, x.x_max, x.y_max}});
  return out;
}
std::vector<Det> to_dets(const std::map<std::string, torch::Tensor>& file, const std::string& prefix,
                         size_t frame) {
  const auto i = std::to_string(frame);
  const auto boxes = file.at(prefix + "boxes_" + i), scores = file.at(prefix + "scores_" + i),
             labels = file.at(prefix + "labels_" + i);
  auto b = boxes.accessor<float, 2>();
  auto s = scores.accessor<float, 1>();
  auto l = labels.accessor<int64_t, 1>();
  std::vector<Det> out;
  for (int64_t k = 0; k < scores.size(0); ++k) out.push_back({l[k], s[k], {b[k][0], b[k][1], b[k][2], b[k][3]}});
  return out;
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  const auto f = read_safetensors(path);
  return {f.tensors.begin(), f.tensors.end()};
}

// Runs ssd::Detector and a reference (by default reference_ssd.py detect; any script taking its
// arguments and writing its output) on the same frames and compares the detections
// (compare_frame); at a near-tie the candidates come from reference_ssd.py detect --candidates.
void compare_with_reference(const SsdConfig& cfg, const std::vector<FrameSpec>& specs,
                            float threshold, const std::string& name, int min_total,
                            const std::string& reference = "bench/reference_ssd.py detect") {
  const auto dir = ssdtest::temp_dir("bench-" + name);
  torch::manual_seed(1);  // the same random weights every run, so that a failure reproduces
  Ssd model(cfg);
  randomise_batchnorm(model, 7);
  const auto model_path = (dir / "model.safetensors").string();
  save_weights(model_path, model);

  SafeTensors frames_file;
  std::vector<Packed> packed;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto rgb = make_picture(specs[i].w, specs[i].h, 100 + i);
    frames_file.tensors.emplace_back("frame_" + std::to_string(i), rgb);
    packed.push_back(pack(rgb, specs[i].format, i % 2 ? 12 : 0));
  }
  const auto frames_path = (dir / "frames.safetensors").string();
  write_safetensors(frames_path, frames_file);

  DetectorOptions o;
  o.model_path = model_path;
  o.device = "cpu";
  o.threshold = threshold;
  o.nms_iou = 0.45f;
  o.max_detections = 50;
  Detector det(o);
  std::vector<FrameView> views;
  for (auto& p : packed) views.push_back(p.view);
  const auto ours = det.detect(views);

  auto run_reference = [&](const std::string& script, const std::string& out, float thresh,
                           const std::string& extra) {
    std::ostringstream args;
    args << script << " --model " << model_path << " --frames " << frames_path << " --out " << out
         << " --threshold " << thresh << " --nms-iou 0.45 --max-detections 50" << extra;
    run(args.str());
  };
  const auto out_path = (dir / "reference.safetensors").string();
  run_reference(reference, out_path, threshold, "");
  if (::testing::Test::HasFatalFailure()) return;
  const auto ref = read_tensors(out_path);
  std::map<std::string, torch::Tensor> candidates;
  auto candidates_of = [&](size_t frame) {
    if (candidates.empty()) {
      const auto path = (dir / "candidates.safetensors").string();
      // From just below the threshold, for a near-tie with it.
      run_reference("bench/reference_ssd.py detect", path, threshold - kTie, " --candidates");
      candidates = read_tensors(path);
    }
    return to_dets(candidates, "candidate_", frame);
  };

  size_t total = 0;
  ASSERT_EQ(ours.size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i) + " (" + std::to_string(specs[i].w) + "x" +
                 std::to_string(specs[i].h) + " " + to_string(specs[i].format) + ")");
    const auto mine = to_dets(ours[i]), theirs = to_dets(ref, "", i);
    const auto r = compare_frame(mine, theirs, threshold, [&] { return candidates_of(i); });
    EXPECT_EQ(r.failure, "") << "ours:\n" << describe(mine) << "reference:\n" << describe(theirs);
    if (!r.note.empty())
      std::cout << "frame " << i << ": compared the first " << r.compared << " detections; " << r.note << "\n";
    total += r.compared;
    // Every detection of ours is a candidate of the reference's (which also runs the
    // candidates' path, not only at a near-tie).
    if (i == 0) {
      const auto c = candidates_of(i);
      EXPECT_GT(c.size(), mine.size());
      for (const auto& d : mine) EXPECT_GE(find_candidate(c, d), 0) << describe(d);
    }
  }
  // Enough detections compared that the comparison means something (NMS and top-k both at work).
  EXPECT_GE(total, size_t(min_total));
}

}  // namespace

// compare_frame on made-up lists: the reference has candidates A, B (near-tie with A), C, D and
// E (just above the threshold 0.5).
namespace {
const Det kA{1, 0.7f, {0.1f, 0.1f, 0.3f, 0.3f}}, kB{2, 0.700004f, {0.5f, 0.5f, 0.7f, 0.7f}},
    kC{0, 0.6f, {0.2f, 0.6f, 0.4f, 0.9f}}, kD{1, 0.58f, {0.15f, 0.1f, 0.35f, 0.3f}},
    kE{0, 0.500003f, {0.0f, 0.0f, 0.2f, 0.2f}};
FrameComparison compare(const std::vector<Det>& mine, const std::vector<Det>& ref) {
  return compare_frame(mine, ref, 0.5f, [] { return std::vector<Det>{kA, kB, kC, kD, kE}; });
}
}  // namespace

TEST(CompareDetections, EqualListsAreComparedWhole) {
  const auto r = compare({kB, kA, kC}, {kB, kA, kC});
  EXPECT_EQ(r.failure, "");
  EXPECT_EQ(r.note, "");
  EXPECT_EQ(r.compared, 3u);
}

TEST(CompareDetections, ANearTieEndsTheComparison) {
  // A and B in the other order, and the rest differing as if one had suppressed another.
  const auto r = compare({kB, kA, kC}, {kA, kB, kD});
  EXPECT_EQ(r.failure, "");
  EXPECT_NE(r.note.find("near-tie at detection 0"), std::string::npos) << r.note;
  EXPECT_EQ(r.compared, 0u);
}

TEST(CompareDetections, AWrongBoxWithTheRightScoreFails) {
  Det wrong = kA;
  wrong.box[2] += 0.01f;
  EXPECT_NE(compare({kB, wrong}, {kB, kA}).failure, "");
  // Not a candidate of the reference's, though its score ties with the reference's B.
  EXPECT_NE(compare({wrong, kB}, {kB, kA}).failure, "");
}

TEST(CompareDetections, DifferentScoresOrLabelsFail) {
  EXPECT_NE(compare({kA, kC}, {kA, kD}).failure, "");  // scores 0.02 apart
  Det relabelled = kC;
  relabelled.label = 2;
  EXPECT_NE(compare({kA, relabelled}, {kA, kC}).failure, "");
}

TEST(CompareDetections, OnlyANearTieWithTheThresholdMayBeLeftOut) {
  const auto r = compare({kA, kC, kE}, {kA, kC});
  EXPECT_EQ(r.failure, "");
  EXPECT_NE(r.note.find("near-tie with the threshold"), std::string::npos) << r.note;
  EXPECT_EQ(r.compared, 2u);
  EXPECT_EQ(compare({kA, kC}, {kA, kC, kE}).failure, "");
  EXPECT_NE(compare({kA, kC, kD}, {kA, kC}).failure, "");
  EXPECT_NE(compare({kA}, {kA, kC}).failure, "");
}

TEST(PyTorchReference, TinyDetectorMatches) {
  SSD_NEED_PYTHON(python(), kReferenceModules);
  SsdConfig c;
  c.body = "tiny";
  c.head_channels = 32;
  c.labels = {"circle", "square", "triangle"};
  c.class_bias = 0.0;   // scores spread around 0.5 with random weights
  // Downscale by 2 (640x480), by 3/5 (1280x720), none (224), upscale (300x200), by 4/3 with
  // 3 columns and 2 rows that the pooling leaves out (1003x701).
  compare_with_reference(c,
                         {{640, 480, PixelFormat::RGBx},
                          {1280, 720, PixelFormat::BGR},
                          {224, 224, PixelFormat::RGB},
                          {300, 200, PixelFormat::BGRx},
                          {1003, 701, PixelFormat::RGBx}},
                         0.5f, "tiny", 20);
}

namespace {
// The default architecture, narrower: the fine (stride-16) grid (layer3 features + upsampled
// head features, first in the output), class bias 0 for plenty of candidates.
SsdConfig tiny_fine_grid() {
  SsdConfig c;
  c.body = "tiny";
  c.input_size = 160;
  c.grids = {10, 5, 3, 2, 1};
  c.head_channels = 32;
  c.labels = {"circle", "square", "triangle"};
  c.class_bias = 0.0;
  return c;
}
}  // namespace

TEST(PyTorchReference, TinyFineGridDetectorMatches) {
  SSD_NEED_PYTHON(python(), kReferenceModules);
  const SsdConfig c = tiny_fine_grid();
  ASSERT_TRUE(c.has_fine_grid());
  compare_with_reference(c, {{640, 480, PixelFormat::RGBx}, {160, 160, PixelFormat::RGB}}, 0.5f,
                         "tiny-fine", 20);
}

TEST(PyTorchReference, ResNet18OtherGridsMatches) {
  SSD_NEED_PYTHON(python(), kReferenceModules);
  SsdConfig c;
  c.body = "resnet18";
  c.input_size = 256;
  c.grids = {8, 4, 2, 1};
  c.zooms = {1.0, 1.4};
  c.ratios = {{1.0, 1.0}, {0.5, 1.0}};
  c.head_channels = 64;
  c.labels = {"a", "b", "c", "d", "e"};
  c.class_bias = 0.0;
  c.mean = {0.5f, 0.4f, 0.3f};
  c.std = {0.2f, 0.25f, 0.3f};
  compare_with_reference(c, {{1920, 1080, PixelFormat::RGBx}, {256, 256, PixelFormat::RGB}}, 0.5f,
                         "resnet18", 20);
}

// scripts/export-onnx.py: the whole detector (resize, normalisation, network, decoding, NMS,
// top-k) as one ONNX graph per frame size, run by onnxruntime (tests/bench/onnx_detect.py), gives
// ssd::Detector's detections; the default architecture (fine grid) on a downscaled 640x480 frame,
// an upscaled BGR one, and one with columns and rows the pooling leaves out.
TEST(OnnxExport, RunByOnnxRuntimeMatchesTheDetector) {
  SSD_NEED_PYTHON(python(), std::string(kReferenceModules) + " onnxruntime");
  compare_with_reference(tiny_fine_grid(),
                         {{640, 480, PixelFormat::RGBx}, {200, 150, PixelFormat::BGR}, {650, 490, PixelFormat::RGBx}},
                         0.5f, "onnx", 20, "tests/bench/onnx_detect.py");
}

// ssd_loss (model/loss.cpp + matching.cpp) against reference_train.py's lesson loop and its
// vectorised form on the same outputs and ground truths.
TEST(PyTorchReference, LossMatches) {
  SSD_NEED_PYTHON(python(), kReferenceModules);
  const auto dir = ssdtest::temp_dir("bench-loss");
  SsdConfig c;
  c.labels = {"a", "b", "c", "d"};
  const auto anchors = make_anchors(c);
  const int64_t B = 3, G = 5, A = anchors.size(), C = 4;
  torch::manual_seed(3);
  auto cls = torch::randn({B, A, C + 1}) * 2;
  auto box = torch::randn({B, A, 4});
  auto ctr = torch::rand({B, G, 2}) * 0.6 + 0.2;
  auto wh = torch::rand({B, G, 2}) * 0.4 + 0.05;
  auto gt = torch::cat({ctr - wh / 2, ctr + wh / 2}, -1).clamp(0, 1);
  auto labels = torch::randint(0, C, {B, G}, torch::kLong);
  auto valid = torch::ones({B, G}, torch::kBool);
  // Two nearly equal ground truths (most likely sharing their best anchor: the later one must
  // win it, as in the lesson's loop), without exact IoU ties elsewhere.
  gt[0][1] = gt[0][0] + torch::tensor({0.01f, 0.005f, 0.012f, 0.008f});
  labels[0][1] = (labels[0][0].item<int64_t>() + 1) % C;
  auto parts = ssd_loss(cls, box, gt, labels, valid, anchors);

  SafeTensors in;
  in.tensors = {{"cls", cls}, {"box", box}, {"gt_boxes", gt}, {"gt_labels", labels}};
  in.metadata["ssd.config"] = c.to_json_string();
  const auto in_path = (dir / "in.safetensors").string(), out_path = (dir / "out.safetensors").string();
  write_safetensors(in_path, in);
  run("bench/reference_train.py --loss-check " + in_path + " " + out_path);
  if (::testing::Test::HasFatalFailure()) return;
  const auto out = read_safetensors(out_path);
  std::map<std::string, torch::Tensor> r(out.tensors.begin(), out.tensors.end());
  for (const char* impl : {"lesson", "batched"}) {
    SCOPED_TRACE(impl);
    EXPECT_NEAR(parts.loc.item<double>(), r.at(std::string(impl) + "_loc").item<double>(), 1e-5);
    EXPECT_NEAR(parts.cls.item<double>(), r.at(std::string(impl) + "_cls").item<double>(),
                1e-4 * std::max(1.0, parts.cls.item<double>()));
  }
}

// bench/network_runtimes.py runs each row (it exits non-zero when a PyTorch row's or ONNX
// Runtime's outputs differ from the plain model's by more than 1e-3, e.g. a wrongly folded
// BatchNorm) and prints one table row for each; its profile mode prints the operators. Rows that
// depend on how PyTorch was built (oneDNN layouts, bf16, int8) may instead be reported as failed
// with it (Debian 13's 2.6 cannot run optimize_for_inference's output); eager and TorchScript
// must run, and ONNX Runtime where it is installed.
TEST(BenchScripts, NetworkRuntimesRunsEveryRow) {
  SSD_NEED_PYTHON(python(), kReferenceModules);
  const auto dir = ssdtest::temp_dir("bench-runtimes");
  const auto table = (dir / "table.md").string(), prof = (dir / "profile.md").string();
  const std::string model = source_dir() + "/models/ssd-default.safetensors";
  run("bench/network_runtimes.py --model " + model + " --threads 1 --rounds 1 --seconds 0.05 > " +
      table);
  run("bench/network_runtimes.py --model " + model + " --profile eager > " + prof);
  if (::testing::Test::HasFatalFailure()) return;
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const auto t = slurp(table), p = slurp(prof);
  std::vector<std::string> rows = {"eager", "torchscript"};
  if (std::system((python() + " -c 'import onnxruntime' 2>/dev/null").c_str()) == 0)
    rows.push_back("onnxruntime");
  for (const auto& row : rows) EXPECT_NE(t.find("| " + row + " | "), std::string::npos) << row << " in:\n" << t;
  for (const std::string row : {"onednn", "bf16", "int8"}) {
    EXPECT_TRUE(t.find("| " + row + " | ") != std::string::npos ||
                t.find("\n" + row + ": failed with this PyTorch (") != std::string::npos)
        << row << " in:\n" << t;
  }
  EXPECT_NE(p.find("| aten::"), std::string::npos) << p;
  EXPECT_NE(p.find("us in the convolution kernels"), std::string::npos) << p;
}
