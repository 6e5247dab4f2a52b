// The C++ detector and training loss against bench/reference_ssd.py and
// bench/reference_train.py: an independent eager-PyTorch implementation (torchvision body, the
// lesson's head, anchors, decoding and loss, torchvision.ops.batched_nms) that loads our weights
// file by name. The same model and frames must give the same detections (boxes and scores within
// 1e-4, same labels), and the same outputs the same loss. This also validates the reference the
// benchmarks time.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include "anchors.h"
#include "detector.h"
#include "loss.h"
#include "safetensors.h"
#include "ssd_model.h"
#include "weights.h"

using namespace ssd;

namespace {

std::string python() {
  const char* p = std::getenv("SSD_PYTHON");
  return p && *p ? p : "python3";
}
std::string source_dir() {
  const char* p = std::getenv("SSD_SOURCE_DIR");
  return p && *p ? p : ".";
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ssd-test-bench-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
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

std::string describe(const std::vector<Detection>& d) {
  std::ostringstream s;
  for (const auto& x : d)
    s << "  " << x.label_id << " " << x.confidence << " [" << x.x_min << " " << x.y_min << " "
      << x.x_max << " " << x.y_max << "]\n";
  return s.str();
}

// Runs ssd::Detector and a reference (by default reference_ssd.py detect; any script taking its
// arguments and writing its output) on the same frames and compares the detections.
void compare_with_reference(const SsdConfig& cfg, const std::vector<FrameSpec>& specs,
                            float threshold, const std::string& name, int min_total,
                            const std::string& reference = "bench/reference_ssd.py detect") {
  const auto dir = temp_dir(name);
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
  const auto out_path = (dir / "reference.safetensors").string();
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

  std::ostringstream args;
  args << reference << " --model " << model_path << " --frames " << frames_path
       << " --out " << out_path << " --threshold " << threshold
       << " --nms-iou 0.45 --max-detections 50";
  run(args.str());
  if (::testing::Test::HasFatalFailure()) return;
  const auto ref_file = read_safetensors(out_path);
  std::map<std::string, torch::Tensor> ref(ref_file.tensors.begin(), ref_file.tensors.end());

  int total = 0;
  ASSERT_EQ(ours.size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& mine = ours[i];
    const auto boxes = ref.at("boxes_" + std::to_string(i));
    const auto scores = ref.at("scores_" + std::to_string(i));
    const auto labels = ref.at("labels_" + std::to_string(i));
    SCOPED_TRACE("frame " + std::to_string(i) + " (" + std::to_string(specs[i].w) + "x" +
                 std::to_string(specs[i].h) + " " + to_string(specs[i].format) + ")");
    ASSERT_EQ(static_cast<int64_t>(mine.size()), scores.size(0))
        << "ours:\n" << describe(mine) << "reference scores: " << scores;
    auto b = boxes.accessor<float, 2>();
    auto s = scores.accessor<float, 1>();
    auto l = labels.accessor<int64_t, 1>();
    for (size_t k = 0; k < mine.size(); ++k) {
      EXPECT_EQ(mine[k].label_id, l[k]) << "detection " << k;
      EXPECT_NEAR(mine[k].confidence, s[k], 1e-4) << "detection " << k;
      EXPECT_NEAR(mine[k].x_min, b[k][0], 1e-4) << "detection " << k;
      EXPECT_NEAR(mine[k].y_min, b[k][1], 1e-4) << "detection " << k;
      EXPECT_NEAR(mine[k].x_max, b[k][2], 1e-4) << "detection " << k;
      EXPECT_NEAR(mine[k].y_max, b[k][3], 1e-4) << "detection " << k;
    }
    total += static_cast<int>(mine.size());
  }
  // Enough detections that the comparison means something (NMS and top-k both at work).
  EXPECT_GE(total, min_total);
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(PyTorchReference, TinyDetectorMatches) {
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
  const SsdConfig c = tiny_fine_grid();
  ASSERT_TRUE(c.has_fine_grid());
  compare_with_reference(c, {{640, 480, PixelFormat::RGBx}, {160, 160, PixelFormat::RGB}}, 0.5f,
                         "tiny-fine", 20);
}

TEST(PyTorchReference, ResNet18OtherGridsMatches) {
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
// an upscaled BGR one, and one with columns and rows the pooling leaves out. Skips without onnxruntime (scripts/setup.sh installs it).
TEST(OnnxExport, RunByOnnxRuntimeMatchesTheDetector) {
  if (std::system((python() + " -c 'import onnxruntime' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "onnxruntime is not installed for " << python();
  compare_with_reference(tiny_fine_grid(),
                         {{640, 480, PixelFormat::RGBx}, {200, 150, PixelFormat::BGR}, {650, 490, PixelFormat::RGBx}},
                         0.5f, "onnx", 20, "tests/bench/onnx_detect.py");
}

// ssd_loss (model/loss.cpp + matching.cpp) against reference_train.py's lesson loop and its
// vectorised form on the same outputs and ground truths.
TEST(PyTorchReference, LossMatches) {
  const auto dir = temp_dir("loss");
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
  std::filesystem::remove_all(dir);
}

// bench/network_runtimes.py runs each row (it exits non-zero when a PyTorch row's or ONNX
// Runtime's outputs differ from the plain model's by more than 1e-3, e.g. a wrongly folded
// BatchNorm) and prints one table row for each; its profile mode prints the operators. Rows that
// depend on how PyTorch was built (oneDNN layouts, bf16, int8) may instead be reported as failed
// with it (Debian 13's 2.6 cannot run optimize_for_inference's output); eager and TorchScript
// must run, and ONNX Runtime where it is installed.
TEST(BenchScripts, NetworkRuntimesRunsEveryRow) {
  const auto dir = temp_dir("runtimes");
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
  std::filesystem::remove_all(dir);
}
