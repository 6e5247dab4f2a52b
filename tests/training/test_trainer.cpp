// ssd-train: a short training run learns (loss falls, mAP reaches a stated level), a resumed
// run reproduces the uninterrupted one, and the CLI fails cleanly on bad input.
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "../../model/safetensors.h"
#include "model_info.h"
#include "synth.h"
#include "coco.h"
#include "trainer.h"

namespace fs = std::filesystem;
using namespace ssdtrain;

namespace {

using ssdtest::TempDir;

// An easy detection problem: one or two large shapes on a flat background, 96 px.
std::string make_easy_set(const fs::path& dir, int count, uint64_t seed) {
  SynthDatasetOptions o;
  o.count = count;
  o.width = o.height = 96;
  o.seed = seed;
  o.format = "png";
  o.synth.textured_background = false;
  o.synth.noise = 0;
  o.synth.min_objects = 1;
  o.synth.max_objects = 2;
  o.synth.min_size = 0.35;
  o.synth.max_size = 0.7;
  o.synth.max_rotation_deg = 10;
  o.synth.max_occlusion = 0.1;
  write_synth_dataset(dir.string(), o);
  return (dir / "annotations.json").string();
}

TrainSpec small_spec(const std::string& train_json, const std::string& val_json,
                     const std::string& out) {
  TrainSpec s;
  s.config.body = "tiny";
  s.config.input_size = 96;
  s.config.grids = {3, 2, 1};
  s.config.head_channels = 64;
  s.config.dropout = 0.1;
  s.train.coco = train_json;
  s.train.images = (fs::path(train_json).parent_path() / "images").string();
  s.val.coco = val_json;
  s.val.images = (fs::path(val_json).parent_path() / "images").string();
  s.options.batch_size = 16;
  s.options.workers = 1;
  s.options.threads = 0;
  s.options.quiet = true;
  s.options.plot_samples = 4;
  s.out_dir = out;
  return s;
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  std::map<std::string, torch::Tensor> m;
  for (auto& [name, t] : ssd::read_safetensors(path).tensors) m[name] = t;
  return m;
}

double max_abs_diff(const std::string& a, const std::string& b) {
  auto ta = read_tensors(a), tb = read_tensors(b);
  EXPECT_EQ(ta.size(), tb.size());
  double worst = 0;
  for (auto& [name, t] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) {
      ADD_FAILURE() << "missing tensor " << name;
      continue;
    }
    worst = std::max(worst, (t.to(torch::kDouble) - it->second.to(torch::kDouble)).abs().max().item<double>());
  }
  return worst;
}

}  // namespace

// ------------------------------------------------------------------------------------------

TEST(Trainer, ShortTrainingLowersLossAndReachesMap) {
  // A fixed tiny problem the model can fit in a CPU minute: 32 easy images, trained and
  // evaluated on the same images (generalisation needs far more steps than a unit test has;
  // the shipped model's held-out mAP is measured separately, see models/README.md).
  TempDir tmp;
  const std::string tr = make_easy_set(tmp.path() / "train", 32, 1);
  TrainSpec s = small_spec(tr, tr, tmp / "run");
  s.config.dropout = 0;
  s.options.augment = false;
  s.options.epochs = 50;
  s.options.lr = 4e-3;
  s.options.lr_div = 1;
  s.options.eval_every = 25;
  s.options.seed = 3;
  const auto t0 = std::chrono::steady_clock::now();
  TrainResult r = ssdtrain::train(s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.history.size(), 50u);
  const auto& first = r.history.front();
  const auto& last = r.history.back();
  std::printf("train loss %.3f -> %.3f, val loss %.3f -> %.3f, mAP@0.5 %.3f, mAP %.3f, %.1f s\n",
              first.train_loss, last.train_loss, first.val_loss, last.val_loss, last.map50,
              last.map, secs);
  EXPECT_LT(last.train_loss, 0.2 * first.train_loss);
  EXPECT_LT(last.val_loss, 0.2 * first.val_loss);
  // Stated target for this fixed problem: mAP@0.5 >= 0.7 after 50 epochs (100 steps); measured
  // 0.98-0.99 when this test was written.
  EXPECT_GE(last.map50, 0.7);
  EXPECT_GT(last.map50, last.map);
  EXPECT_EQ(r.history[1].map50, -1);   // eval_every 25: not evaluated after epoch 2
  EXPECT_GE(r.history[24].map50, 0);
  EXPECT_GT(r.loader_images_per_s, 0);
  EXPECT_GT(r.train_images_per_s, 0);
  // Run files.
  for (const char* f : {"run.json", "model.safetensors", "checkpoint.pt", "history.json",
                        "metrics.csv", "loss.png", "map.png", "predictions.png"})
    EXPECT_TRUE(fs::exists(tmp.path() / "run" / f)) << f;
  std::ifstream csv(tmp.path() / "run" / "metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 51);
  // The weights file describes the trained architecture and the data set's classes.
  WeightsInfo wi = read_weights_info(r.weights_path);
  EXPECT_EQ(wi.config.grids, (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(wi.config.labels, synth_class_names());
  // Evaluating the weights file gives the trainer's last mAP (same preprocessing).
  EvalSpec es;
  es.weights = r.weights_path;
  es.data.coco = tr;
  es.data.images = s.val.images;
  es.workers = 1;
  MapResult m = evaluate_weights(es);
  EXPECT_NEAR(m.map50_coco, last.map50, 1e-6);
  // Training again into the same folder is refused.
  EXPECT_THROW(ssdtrain::train(s), ssd::Error);
}

TEST(Trainer, ResumeReproducesUninterruptedRun) {
  // One thread: the same operations in the same order give the same bits.
  torch::set_num_threads(1);
  TempDir tmp;
  const std::string tr = make_easy_set(tmp.path() / "train", 48, 5);
  const std::string va = make_easy_set(tmp.path() / "val", 16, 6);
  TrainSpec s = small_spec(tr, va, tmp / "straight");
  s.config.dropout = 0.3;          // dropout draws from the generator whose state is saved
  s.options.epochs = 3;
  s.options.freeze_epochs = 1;     // resume crosses the unfreeze point and the cycle restart
  s.options.threads = 1;
  s.options.lr = 3e-3;
  s.options.seed = 11;
  TrainResult a = ssdtrain::train(s);
  ASSERT_TRUE(a.finished);

  TrainSpec s2 = s;
  s2.out_dir = tmp / "interrupted";
  s2.options.stop_after = 2;
  TrainResult b1 = ssdtrain::train(s2);
  ASSERT_FALSE(b1.finished);
  ASSERT_EQ(b1.history.size(), 2u);
  const std::string b_weights = (tmp.path() / "interrupted" / "model.safetensors").string();
  // Sensitivity: after 2 of 3 epochs the weights differ clearly from the finished run's.
  EXPECT_GT(max_abs_diff(a.weights_path, b_weights), 1e-4);

  torch::manual_seed(999);   // must not matter: the checkpoint restores the generator
  TrainResult b = ssdtrain::resume(tmp / "interrupted", -1, true);
  ASSERT_TRUE(b.finished);
  ASSERT_EQ(b.history.size(), 3u);
  EXPECT_LE(max_abs_diff(a.weights_path, b.weights_path), 1e-6);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(a.history[e].train_loss, b.history[e].train_loss, 1e-6) << "epoch " << e + 1;
    EXPECT_NEAR(a.history[e].val_loss, b.history[e].val_loss, 1e-6) << "epoch " << e + 1;
  }
  EXPECT_NEAR(a.history[2].map50, b.history[2].map50, 1e-9);

  // A different seed gives different weights (the comparison above is not vacuous).
  TrainSpec s3 = s;
  s3.out_dir = tmp / "other_seed";
  s3.options.seed = 12;
  s3.options.epochs = 3;
  TrainResult c = ssdtrain::train(s3);
  EXPECT_GT(max_abs_diff(a.weights_path, c.weights_path), 1e-4);
  torch::set_num_threads(2);
}

TEST(Trainer, LrFindWritesCurveAndSuggestion) {
  TempDir tmp;
  const std::string tr = make_easy_set(tmp.path() / "train", 64, 7);
  LrFindSpec ls;
  ls.train = small_spec(tr, tr, tmp / "lrf");
  ls.train.val = DataSpec{};
  ls.iterations = 30;
  ls.start_lr = 1e-5;
  ls.end_lr = 1.0;
  LrFindResult r = lr_find(ls);
  ASSERT_GE(r.lrs.size(), 12u);
  EXPECT_NEAR(r.lrs.front(), 1e-5, 1e-12);
  for (size_t i = 1; i < r.lrs.size(); ++i) EXPECT_GT(r.lrs[i], r.lrs[i - 1]);
  EXPECT_GT(r.suggested_steepest, 1e-5);
  EXPECT_LT(r.suggested_steepest, 1.0);
  EXPECT_GT(r.suggested_min10, 0);
  EXPECT_TRUE(fs::exists(r.csv_path));
  EXPECT_TRUE(fs::exists(r.png_path));
}

// ------------------------------------------------------------------------------------------
// The command line on bad input: a non-zero exit and a message, never a crash.

namespace {

struct CliRun {
  int status = -1;   // exit code, or -1 when killed by a signal
  bool signalled = false;
  std::string output;
};

CliRun run_cli(const std::string& args) {
  const char* exe = std::getenv("SSD_TRAIN_EXE");
  CliRun r;
  if (!exe) {
    ADD_FAILURE() << "SSD_TRAIN_EXE is not set (meson test sets it)";
    return r;
  }
  const std::string cmd = std::string("\"") + exe + "\" " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  if (WIFSIGNALED(st)) {
    r.signalled = true;
  } else if (WIFEXITED(st)) {
    r.status = WEXITSTATUS(st);
  }
  return r;
}

void expect_clean_failure(const std::string& args, const std::string& expected_text) {
  SCOPED_TRACE("ssd-train " + args);
  CliRun r = run_cli(args);
  EXPECT_FALSE(r.signalled) << r.output;
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_LT(r.status, 128) << r.output;   // not a shell-reported crash
  EXPECT_NE(r.output.find(expected_text), std::string::npos)
      << "expected '" << expected_text << "' in:\n" << r.output;
}

}  // namespace

TEST(Cli, BadInputsGiveCleanErrors) {
  TempDir tmp;
  {
    std::ofstream(tmp / "garbage.safetensors") << "this is not a weights file";
    std::ofstream(tmp / "bad.json") << "{\"images\": [ {";
    std::ofstream(tmp / "empty.json") << "{\"images\": [], \"annotations\": [], \"categories\": []}";
    std::ofstream(tmp / "notanimage.png") << "plain text";
  }
  expect_clean_failure("", "subcommand");
  expect_clean_failure("frobnicate", "subcommand");
  expect_clean_failure("train --out " + tmp / "r1", "needs data");
  expect_clean_failure("train --synth 4", "--out");
  expect_clean_failure("train --coco " + tmp / "missing.json" + " --out " + tmp / "r2", "missing.json");
  expect_clean_failure("train --coco " + tmp / "bad.json" + " --out " + tmp / "r3", "bad.json");
  expect_clean_failure("train --coco " + tmp / "empty.json" + " --out " + tmp / "r4", "error");
  expect_clean_failure("train --synth 8 --body resnet9 --out " + tmp / "r5", "resnet9");
  expect_clean_failure("train --synth 8 --grids 5,2 --out " + tmp / "r6", "grids");
  expect_clean_failure("train --synth 8 --epochs 0 --out " + tmp / "r7", "--epochs");
  expect_clean_failure("train --synth 8 --device tpu --synth-size 64 --size 64 --grids 2,1 --out " +
                           tmp / "r8", "device");
  expect_clean_failure("train --resume " + tmp.path().string(), "run.json");
  expect_clean_failure("train --resume " + tmp.path().string() + " --epochs 3", "--epochs");
  expect_clean_failure("eval --weights " + tmp / "garbage.safetensors" + " --synth 4", "garbage");
  expect_clean_failure("eval --weights " + tmp / "nothere.safetensors" + " --synth 4", "nothere");
  expect_clean_failure("info " + tmp / "garbage.safetensors", "garbage.safetensors");
  expect_clean_failure("info", "weights");
  expect_clean_failure("predict --weights " + tmp / "garbage.safetensors" + " --out " + tmp / "p " +
                           tmp / "notanimage.png", "garbage");
  expect_clean_failure("synth --out " + tmp / "s" + " --count 0", "count");
  expect_clean_failure("lr-find --synth 8 --out " + tmp / "l" + " --iters 2", "iters");
}

TEST(Cli, SynthTrainInfoPredictEval) {
  TempDir tmp;
  // synth is deterministic from its seed.
  CliRun a = run_cli("synth --out " + tmp / "s1" + " --count 6 --seed 4 --size 64 --format png");
  CliRun b = run_cli("synth --out " + tmp / "s2" + " --count 6 --seed 4 --size 64 --format png");
  ASSERT_EQ(a.status, 0) << a.output;
  ASSERT_EQ(b.status, 0) << b.output;
  for (const char* f : {"images/000000.png", "images/000005.png"}) {
    std::ifstream f1(tmp.path() / "s1" / f, std::ios::binary), f2(tmp.path() / "s2" / f, std::ios::binary);
    std::stringstream x, y;
    x << f1.rdbuf();
    y << f2.rdbuf();
    EXPECT_GT(x.str().size(), 100u);
    EXPECT_EQ(x.str(), y.str()) << f;
  }
  // A one-epoch run from the CLI, then info / predict / eval on its weights.
  CliRun t = run_cli("train --synth 24 --synth-size 64 --size 64 --grids 2,1 --head-channels 32 "
                  "--epochs 1 --batch 8 --workers 1 --out " + tmp / "run");
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_NE(t.output.find("mAP@0.5"), std::string::npos) << t.output;
  EXPECT_NE(t.output.find("images/s"), std::string::npos) << t.output;
  const std::string w = tmp / "run/model.safetensors";
  CliRun i = run_cli("info " + w);
  ASSERT_EQ(i.status, 0) << i.output;
  EXPECT_NE(i.output.find("tiny"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("ellipse"), std::string::npos) << i.output;
  CliRun p = run_cli("predict --weights " + w + " --threshold 0 --out " + tmp / "pred " +
                  tmp / "s1/images/000000.png " + tmp / "s1/images/000001.png");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_TRUE(fs::exists(tmp.path() / "pred" / "000000.png"));
  EXPECT_TRUE(fs::exists(tmp.path() / "pred" / "000001.png"));
  EXPECT_TRUE(fs::exists(tmp.path() / "pred" / "detections.json"));
  CliRun e = run_cli("eval --weights " + w + " --coco " + tmp / "s1/annotations.json" + " --images " +
                  tmp / "s1/images" + " --json " + tmp / "eval.json");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("mean"), std::string::npos) << e.output;
  std::ifstream ej(tmp.path() / "eval.json");
  nlohmann::json j = nlohmann::json::parse(ej);
  EXPECT_EQ(j["images"].get<int>(), 6);
  EXPECT_EQ(j["classes"].size(), 5u);
  // Resuming a finished run trains nothing more and succeeds.
  CliRun r = run_cli("train --resume " + tmp / "run" + " --quiet");
  EXPECT_EQ(r.status, 0) << r.output;
}
