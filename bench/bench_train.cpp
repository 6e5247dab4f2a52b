// Training-step throughput of the C++ model: images/s of one ssd-train step on random data.
//   bench_train [--body tiny] [--head-channels 128] [--input-size 224] [--grids 4,2,1]
//               [--classes 20] [--batch 16] [--device cpu|cuda]
//               [--precision fp32|bf16|fp16] [--steps 10] [--repeats 5] [--threads N] [--gt 4]
// One step is what training/trainer.cpp does per batch: zero_grad, Ssd forward (under autocast
// for bf16/fp16), ssd_loss in fp32 (matching + L1 + focal BCE), loss / B, backward (of the
// scaled loss for fp16), unscale, clip_grad_norm_(1.0), AdamW step over the three layer groups
// (skipped by the fp16 loss scaler on inf/nan gradients), and the loss read back (.item()).
// Inputs are random (B, 3, S, S) images and G random ground-truth boxes per image, fixed across
// steps; the data loader is not timed.
// Prints one JSON line with the median images/s over `repeats` rounds of `steps` steps.
// bench/reference_train.py times the same step in eager PyTorch.
// --precision bf16 | fp16: ssd-train's mixed precision (training/mixed_precision.h: autocast,
// and for fp16 the dynamic loss scaler), as reference_train.py's torch.autocast + GradScaler.
// fp16 needs CUDA; bf16 also runs on the CPU.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../training/grad_clip.h"
#include "../training/mixed_precision.h"
#include "anchors.h"
#include "blas_check.h"
#include "error.h"
#include "loss.h"
#include "ssd_model.h"

int main(int argc, char** argv) {
  CLI::App app{"SSD training-step throughput (random data)"};
  std::string body = "tiny", device_name = "cpu", precision = "fp32";
  int head_channels = 128, batch = 16, steps = 10, repeats = 5, threads = 0, input_size = 224,
      gt = 4, classes = 20;
  app.add_option("--body", body, "tiny, resnet18, resnet34, resnet50");
  app.add_option("--head-channels", head_channels, "head width");
  app.add_option("--input-size", input_size, "square input side");
  std::vector<int> grids = ssd::SsdConfig{}.grids;
  app.add_option("--grids", grids, "anchor grids, finest first (default 4,2,1)")->delimiter(',');
  app.add_option("--classes", classes, "number of classes");
  app.add_option("--batch", batch, "images per step");
  app.add_option("--gt", gt, "ground-truth boxes per image");
  app.add_option("--device", device_name, "cpu, cuda, cuda:N");
  app.add_option("--precision", precision, "fp32, bf16 (CUDA or CPU) or fp16 (CUDA, loss scaling)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--steps", steps, "steps per round");
  app.add_option("--repeats", repeats, "rounds (the median is reported)");
  app.add_option("--threads", threads, "CPU intra-op threads (0 = LibTorch default)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) torch::set_num_threads(threads);
  if (const auto kernels = ssd::select_openblas_kernels(); !kernels.empty()) std::cout << "> " << kernels << "\n";
  const torch::Device device(device_name);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::cerr << "bench_train: no CUDA device available\n";
    return 2;
  }
  const ssdtrain::Precision prec = ssdtrain::parse_precision(precision);
  try {
    ssdtrain::check_precision(prec, device);
  } catch (const ssd::Error& e) {
    std::cerr << "bench_train: " << e.what() << "\n";
    return 2;
  }
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);

  torch::manual_seed(0);
  ssd::SsdConfig cfg;
  cfg.body = body;
  cfg.head_channels = head_channels;
  cfg.input_size = input_size;
  for (int c = 0; c < classes; ++c) cfg.labels.push_back("c" + std::to_string(c));
  cfg.grids = grids;
  ssd::Ssd model(cfg);
  model->to(device);
  model->train();
  const auto anchors = ssd::make_anchors(cfg).to(device);

  // AdamW over the layer groups with the trainer's lr multipliers (lr / 9, lr / 3, lr).
  const double lr = 3e-3, div = 3.0;
  auto groups = model->layer_groups();
  std::vector<torch::optim::OptimizerParamGroup> pg;
  for (size_t g = 0; g < groups.size(); ++g) {
    const double mult = g == 0 ? 1 / (div * div) : g == 1 ? 1 / div : 1.0;
    auto opts = std::make_unique<torch::optim::AdamWOptions>(lr * mult);
    opts->betas({0.95, 0.99}).weight_decay(1e-2);
    pg.emplace_back(groups[g], std::move(opts));
  }
  torch::optim::AdamW opt(pg, torch::optim::AdamWOptions(lr).betas({0.95, 0.99}).weight_decay(1e-2));

  auto fopt = torch::TensorOptions().device(device);
  auto images = torch::randn({batch, 3, input_size, input_size}, fopt);
  auto ctr = torch::rand({batch, gt, 2}, fopt) * 0.6 + 0.2;
  auto wh = torch::rand({batch, gt, 2}, fopt) * 0.3 + 0.1;
  auto boxes = torch::cat({ctr - wh / 2, ctr + wh / 2}, -1).clamp(0, 1);
  auto labels = torch::randint(0, classes, {batch, gt}, fopt.dtype(torch::kLong));
  auto valid = torch::ones({batch, gt}, fopt.dtype(torch::kBool));
  ssd::LossOptions lopts;
  ssdtrain::GradScaler scaler(prec == ssdtrain::Precision::FP16);

  auto step = [&] {
    opt.zero_grad();
    std::pair<torch::Tensor, torch::Tensor> out;
    {
      ssdtrain::AutocastGuard autocast(prec, device);
      out = model->forward(images);
    }
    auto parts = ssd::ssd_loss(out.first.to(torch::kFloat32), out.second.to(torch::kFloat32), boxes,
                               labels, valid, anchors, lopts);
    auto loss = parts.total / static_cast<double>(batch);
    scaler.scale(loss).backward();
    scaler.unscale(opt);
    ssdtrain::clip_grad_norm(model->parameters(), 1.0);   // as the trainer: no host sync
    scaler.step(opt);
    scaler.update();
    return parts.total.item<double>();   // the trainer reads the loss back every step
  };

  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) step();   // warm-up (allocator, cuDNN autotuning)
  std::vector<double> rates;
  double last_loss = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) last_loss = step();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(double(batch) * steps / s);
  }
  auto sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json j;
  j["impl"] = "libtorch-c++";
  j["body"] = body;
  j["head_channels"] = head_channels;
  j["input_size"] = input_size;
  j["grids"] = grids;
  j["batch"] = batch;
  j["device"] = device.str();
  j["precision"] = precision;
  j["threads"] = torch::get_num_threads();
  j["images_per_s"] = std::round(sorted[sorted.size() / 2] * 100) / 100;
  j["rounds"] = rates;
  j["last_loss"] = last_loss;
  if (scaler.enabled()) j["loss_scale"] = scaler.current_scale();
  std::cout << j.dump() << std::endl;
  return std::isfinite(last_loss) ? 0 : 1;
}
