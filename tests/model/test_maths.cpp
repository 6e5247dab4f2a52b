// Anchors, box coding, IoU, matching, loss, NMS, the class filter and the BatchNorm fold against
// the lesson's values, hand-made cases and brute-force references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "anchors.h"
#include "boxes.h"
#include "class_filter.h"
#include "config.h"
#include "detector.h"
#include "error.h"
#include "loss.h"
#include "matching.h"
#include "nms.h"
#include "resnet.h"
#include "ssd_model.h"
#include "test_util.h"
#include "text.h"
#include "yuv.h"

using namespace ssd;

namespace {
torch::Tensor random_boxes(int64_t n, torch::Generator& g, double min_size = 0.02) {
  auto xy = torch::rand({n, 2}, g) * 0.8;
  auto wh = torch::rand({n, 2}, g) * 0.4 + min_size;
  return torch::cat({xy, xy + wh}, 1);
}
torch::Generator gen(uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return g;
}
// Inference-mode statistics far from the initial ones, scales of both signs.
void randomise_batchnorms(torch::nn::Module& m, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& child : m.modules(/*include_self=*/true))
    if (auto* bn = child->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(-1.5, 1.5);
      bn->bias.uniform_(-0.5, 0.5);
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.2, 2.0);
    }
}
double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}
}  // namespace

TEST(Anchors, LessonDefaultCountAndValues) {
  SsdConfig c;
  c.labels = {"a"};
  auto a = make_anchors(c);
  ASSERT_EQ(a.size(), 189);
  ASSERT_EQ(c.num_anchors(), 189);
  // The lesson prints anchors as (row, col, h, w); ours are (cx, cy, w, h).
  // First 4x4 cell, centre 0.125: zoom 0.7 x ratios (1,1), (h 1, w .5), (h .5, w 1).
  const float expect[9][4] = {
      {0.125f, 0.125f, 0.175f, 0.175f},   {0.125f, 0.125f, 0.0875f, 0.175f},
      {0.125f, 0.125f, 0.175f, 0.0875f},  {0.125f, 0.125f, 0.25f, 0.25f},
      {0.125f, 0.125f, 0.125f, 0.25f},    {0.125f, 0.125f, 0.25f, 0.125f},
      {0.125f, 0.125f, 0.325f, 0.325f},   {0.125f, 0.125f, 0.1625f, 0.325f},
      {0.125f, 0.125f, 0.325f, 0.1625f}};
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(a.centers[i][j].item<float>(), expect[i][j], 1e-6);
  // 4x4 centres 0.125 ... 0.875, cell-major with x fastest (the lesson's row repeat).
  const float lin[4] = {0.125f, 0.375f, 0.625f, 0.875f};
  for (int cell = 0; cell < 16; ++cell) {
    EXPECT_NEAR(a.centers[cell * 9][0].item<float>(), lin[cell % 4], 1e-6);
    EXPECT_NEAR(a.centers[cell * 9][1].item<float>(), lin[cell / 4], 1e-6);
    EXPECT_NEAR(a.grid_sizes[cell * 9][0].item<float>(), 0.25f, 1e-7);
  }
  // 2x2 grid: centres 0.25, 0.75, size 0.5 (zoom 1, ratio 1:1 is the 4th of each cell).
  EXPECT_NEAR(a.centers[144 + 3][0].item<float>(), 0.25f, 1e-6);
  EXPECT_NEAR(a.centers[144 + 3][2].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(a.centers[144 + 9 + 3][0].item<float>(), 0.75f, 1e-6);
  // 1x1 grid: the last anchor is zoom 1.3, lesson ratio (h .5, w 1).
  EXPECT_NEAR(a.centers[188][0].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(a.centers[188][2].item<float>(), 1.3f, 1e-6);
  EXPECT_NEAR(a.centers[188][3].item<float>(), 0.65f, 1e-6);
  EXPECT_TRUE(torch::allclose(a.corners, centers_to_corners(a.centers)));
}

TEST(Anchors, FinerGridsFor300px) {
  SsdConfig c;
  c.labels = {"a"};
  c.input_size = 300;
  c.grids = {10, 5, 3, 2, 1};
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(make_anchors(c).size(), (100 + 25 + 9 + 4 + 1) * 9);
  c.grids = {4, 2, 1};   // 10 -> 5 -> 3: 4 is unreachable
  EXPECT_THROW(c.validate(), std::exception);
}

TEST(Anchors, FineGridIsTheStride16Map) {
  SsdConfig c;
  c.labels = {"a"};
  c.input_size = 160;            // stride 32: 5x5, stride 16: 10x10
  c.grids = {10, 5, 3, 2, 1};
  EXPECT_EQ(c.body_grid(), 5);
  EXPECT_EQ(c.fine_grid(), 10);
  EXPECT_TRUE(c.has_fine_grid());
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.num_anchors(), (100 + 25 + 9 + 4 + 1) * 9);
  auto a = make_anchors(c);
  EXPECT_EQ(a.size(), c.num_anchors());
  // The fine grid's anchors come first: centre of cell (0, 0) at 0.05, size zoom / 10.
  EXPECT_NEAR(a.centers[0][0].item<float>(), 0.05f, 1e-6);
  EXPECT_NEAR(a.centers[0][2].item<float>(), 0.07f, 1e-6);
  c.grids = {10, 3, 2, 1};       // the body's 5x5 may be skipped after the fine grid
  EXPECT_NO_THROW(c.validate());
  c.grids = {10};
  EXPECT_NO_THROW(c.validate());
  for (auto bad : {std::vector<int>{9, 5, 3}, std::vector<int>{10, 10, 5},
                   std::vector<int>{5, 10, 3}, std::vector<int>{20, 10, 5}}) {
    c.grids = bad;
    ssdtest::expect_error([&] { c.validate(); }, {"grids", "stride-16"});
  }
  c.input_size = 300;            // 19 and 10: 10 is reached from the body's map, 19 is fine
  c.grids = {19, 10, 5, 3, 2, 1};
  EXPECT_TRUE(c.has_fine_grid());
  EXPECT_NO_THROW(c.validate());
  c.grids = {10, 5, 3, 2, 1};
  EXPECT_FALSE(c.has_fine_grid());
  EXPECT_NO_THROW(c.validate());
}

// Each anchor's cell size is that of its own grid (a saturated activation moves a centre by half
// of it): 1/4 on the 4x4 grid, 1/2 on the 2x2, 1 on the 1x1.
TEST(Anchors, EachAnchorsCellSizeIsItsOwnGrids) {
  SsdConfig c;
  c.labels = {"a"};
  auto a = make_anchors(c);
  ASSERT_EQ(a.size(), 189);
  for (int64_t i = 0; i < a.size(); ++i) {
    const float expect = i < 144 ? 0.25f : i < 180 ? 0.5f : 1.0f;
    EXPECT_FLOAT_EQ(a.grid_sizes[i][0].item<float>(), expect) << "anchor " << i;
  }
  c.input_size = 160;   // with the stride-16 map first: 1/10, then 1/5
  c.grids = {10, 5};
  auto f = make_anchors(c);
  EXPECT_FLOAT_EQ(f.grid_sizes[0][0].item<float>(), 0.1f);
  EXPECT_FLOAT_EQ(f.grid_sizes[900][0].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ(f.grid_sizes[f.size() - 1][0].item<float>(), 0.2f);
}

// The configuration JSON in a weights file is read strictly (fuzz/fuzz_config.cpp found
// nlohmann's get<int>() converting 1.1e12 with undefined behaviour): integers must be integers
// in range, reals finite, and what it would make the model allocate is bounded.
TEST(Config, JsonIsReadStrictlyAndBounded) {
  SsdConfig c;
  c.labels = {"a", "b"};
  const auto good = c.to_json();
  EXPECT_EQ(SsdConfig::from_json(good), c);
  auto with = [&](const char* key, nlohmann::json v) {
    auto j = good;
    j[key] = std::move(v);
    return j.dump();
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> bad = {
      {with("input_size", 224.5), {"input_size", "integer", "224.5"}},
      {with("input_size", 1e12), {"input_size", "integer"}},
      {with("input_size", 4294967296000LL), {"input_size", "out of range"}},
      {with("input_size", "224"), {"input_size", "integer"}},
      {with("grids", {4, 2.5, 1}), {"grid", "integer", "2.5"}},
      {with("grids", {4, 1094000021457LL, 1}), {"grid", "out of range"}},
      {with("grids", 4), {"grids", "array"}},
      {with("head_channels", -1e300), {"head_channels", "integer"}},
      {with("zooms", {1.0, 1e300}), {"zoom", "out of range"}},
      {with("mean", {0.5, 0.5}), {"mean", "3 numbers"}},
      {with("std", {0.2, "x", 0.2}), {"std", "number"}},
      {with("ratios_wh", {{1.0, 1.0}, {1.0}}), {"ratios_wh", "pairs"}},
      {with("dropout", true), {"dropout", "number"}},
      {with("dropout", 1.0), {"dropout must be in [0, 1)"}},   // (a head that learns nothing)
      {with("dropout", -0.1), {"dropout must be in [0, 1)"}},
      {with("zooms", std::vector<double>(65, 1.0)), {"65 zooms", "64 anchors per cell"}},
      {with("labels", std::vector<std::string>(10001, "x")), {"10001 labels"}},
      {with("labels", {"a", "b", "a"}), {"'a' appears twice"}},
      {with("labels", {"a", std::string("\0b", 2)}), {"labels[1] holds a NUL character"}},
      {with("input_size", 31), {"input_size 31 is outside [32, 4096]"}},
      {with("input_size", 4097), {"input_size 4097 is outside [32, 4096]"}},
      {with("head_channels", 0), {"head_channels 0 is outside [1, 4096]"}},
      {with("head_channels", 4097), {"head_channels 4097 is outside [1, 4096]"}},
      {with("grids", nlohmann::json::array()), {"grids is empty"}},
      {with("zooms", nlohmann::json::array()), {"zooms is empty"}},
      {with("zooms", {1.0, 0.0}), {"zoom 0", "must be > 0"}},
      {with("ratios_wh", nlohmann::json::array()), {"ratios is empty"}},
      {with("ratios_wh", {{1.0, 1.0}, {0.5, -1.0}}), {"anchor ratios must be > 0"}},
      {with("labels", nlohmann::json::array()), {"labels is empty"}},
      {with("labels", {"a", ""}), {"labels[1] is empty"}},
      {with("body", "vgg16"), {"unknown body 'vgg16'"}},
      {with("background", "first"), {"background = \"last\""}},
  };
  for (const auto& [text, words] : bad) {
    SCOPED_TRACE(text.substr(0, 200));
    try {
      SsdConfig::from_json_string(text);
      ADD_FAILURE() << "accepted";
    } catch (const ssd::Error& e) {   // only ssd::Error: what callers catch
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  }
  for (const int h : {1, 4096}) {   // the bounds of head_channels
    auto j = nlohmann::json::parse(with("head_channels", h));
    EXPECT_NO_THROW(SsdConfig::from_json(j)) << h;
  }
  // Distinct labels, many of them, with a narrow head: accepted.
  std::vector<std::string> many;
  for (int i = 0; i < 1000; ++i) many.push_back("c" + std::to_string(i));
  auto j = nlohmann::json::parse(with("labels", many));
  EXPECT_NO_THROW(SsdConfig::from_json(j));
  j["head_channels"] = 4096;   // 3 grids x 9 x 4096 x 9 anchors x 1005 outputs: 1e9 parameters
  ssdtest::expect_error([&] { SsdConfig::from_json(j); }, {"output convolutions", "parameters"});
}

// The bound on anchors per cell lets exactly 64 through (8 zooms x 8 ratios, or 64 zooms of one
// ratio); one more is refused.
TEST(Config, SixtyFourAnchorsPerCellAreAccepted) {
  SsdConfig c;
  c.labels = {"a", "b"};
  c.ratios = {{1.0, 1.0}};
  c.zooms.assign(64, 1.0);
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(SsdConfig::from_json_string(c.to_json_string()).anchors_per_cell(), 64);
  c.zooms.assign(8, 1.0);
  c.ratios.assign(8, {1.0, 1.0});
  EXPECT_NO_THROW(c.validate());
  c.zooms.push_back(1.0);   // 9 x 8 = 72
  ssdtest::expect_error([&] { c.validate(); }, {"9 zooms x 8 ratios", "more than 64 anchors per cell"});
}

// Two configurations that differ in any one field are not equal (a resumed run compares its
// run.json's configuration with its checkpoint's), and each field reads back from the JSON.
TEST(Config, EqualityAndTheJsonRoundTripHoldEveryField) {
  SsdConfig base;
  base.labels = {"a", "b"};
  ASSERT_EQ(SsdConfig::from_json_string(base.to_json_string()), base);
  const std::vector<std::pair<const char*, std::function<void(SsdConfig&)>>> changes = {
      {"body", [](SsdConfig& c) { c.body = "resnet18"; }},
      {"input_size", [](SsdConfig& c) { c.input_size = 256; }},
      {"grids", [](SsdConfig& c) { c.grids = {4, 2}; }},
      {"zooms", [](SsdConfig& c) { c.zooms[1] = 1.1; }},
      {"ratios", [](SsdConfig& c) { c.ratios[1].w = 0.6; }},
      {"labels", [](SsdConfig& c) { c.labels[1] = "c"; }},
      {"head_channels", [](SsdConfig& c) { c.head_channels = 128; }},
      {"dropout", [](SsdConfig& c) { c.dropout = 0.2; }},
      {"class_bias", [](SsdConfig& c) { c.class_bias = -3.0; }},
      {"mean", [](SsdConfig& c) { c.mean[2] = 0.5f; }},
      {"std", [](SsdConfig& c) { c.std[0] = 0.3f; }},
  };
  for (const auto& [name, change] : changes) {
    SCOPED_TRACE(name);
    SsdConfig c = base;
    change(c);
    ASSERT_NO_THROW(c.validate());
    EXPECT_FALSE(c == base);
    EXPECT_FALSE(base == c);
    const SsdConfig back = SsdConfig::from_json_string(c.to_json_string());
    EXPECT_TRUE(back == c);
    EXPECT_FALSE(back == base);
  }
}

TEST(Boxes, IoUHandMadeCases) {
  auto b = [](std::vector<float> v) { return torch::tensor(v).view({1, 4}); };
  auto iou = [&](std::vector<float> x, std::vector<float> y) {
    return box_iou(b(x), b(y)).template item<float>();
  };
  EXPECT_FLOAT_EQ(iou({0, 0, 2, 2}, {0, 0, 2, 2}), 1.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 1, 1}, {2, 2, 3, 3}), 0.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 1, 1}, {1, 0, 2, 1}), 0.f);          // touching edges
  EXPECT_NEAR(iou({0, 0, 2, 2}, {1, 0, 3, 2}), 1.f / 3, 1e-6);   // half overlap
  EXPECT_NEAR(iou({0, 0, 4, 4}, {1, 1, 2, 2}), 1.f / 16, 1e-6);  // contained
  EXPECT_NEAR(iou({0, 0, 2, 1}, {1, 0, 2, 3}), 1.f / 4, 1e-6);   // cross shape: 1 / (2+3-1)
  EXPECT_FLOAT_EQ(iou({1, 1, 1, 1}, {1, 1, 1, 1}), 0.f);          // empty boxes: 0, not NaN
  // Batched forms agree with the plain one.
  auto g = gen(1);
  auto a = random_boxes(5, g), c = random_boxes(7, g);
  auto plain = box_iou(a, c);
  EXPECT_TRUE(torch::allclose(box_iou(a.unsqueeze(0), c)[0], plain));
  EXPECT_TRUE(torch::allclose(box_iou(a.unsqueeze(0), c.unsqueeze(0))[0], plain));
  EXPECT_THROW(box_iou(torch::zeros({3, 5}), c), c10::Error);
}

TEST(Boxes, IntersectionOverTheFirstBoxsArea) {
  auto b = [](std::vector<float> v) { return torch::tensor(v).view({1, 4}); };
  auto ioa = [&](std::vector<float> x, std::vector<float> y) {
    return box_ioa(b(x), b(y)).template item<float>();
  };
  EXPECT_FLOAT_EQ(ioa({1, 1, 2, 2}, {0, 0, 4, 4}), 1.f);          // inside
  EXPECT_NEAR(ioa({0, 0, 4, 4}, {1, 1, 2, 2}), 1.f / 16, 1e-6);  // contains: not symmetric
  EXPECT_NEAR(ioa({0, 0, 2, 2}, {1, 0, 3, 2}), 0.5f, 1e-6);      // half of it
  EXPECT_NEAR(ioa({0, 0, 2, 1}, {1, 0, 2, 3}), 0.5f, 1e-6);      // cross shape: 1 / 2
  EXPECT_FLOAT_EQ(ioa({0, 0, 1, 1}, {1, 0, 2, 1}), 0.f);          // touching edges
  EXPECT_FLOAT_EQ(ioa({1, 1, 1, 3}, {0, 0, 4, 4}), 0.f);          // no area: 0, not NaN
  EXPECT_FLOAT_EQ(ioa({1, 1, 2, 2}, {0, 0, 0, 0}), 0.f);          // padding row
  // Batched forms agree with the plain one; ioa >= iou everywhere.
  auto g = gen(2);
  auto a = random_boxes(5, g), c = random_boxes(7, g);
  auto plain = box_ioa(a, c);
  EXPECT_TRUE(torch::allclose(box_ioa(a.unsqueeze(0), c)[0], plain));
  EXPECT_TRUE(torch::allclose(box_ioa(a.unsqueeze(0), c.unsqueeze(0))[0], plain));
  EXPECT_TRUE((plain >= box_iou(a, c) - 1e-6).all().item<bool>());
  EXPECT_THROW(box_ioa(torch::zeros({3, 5}), c), c10::Error);
}

TEST(Boxes, CodingRoundTripsAndMatchesTheLesson) {
  SsdConfig c;
  c.labels = {"a"};
  auto anchors = make_anchors(c);
  auto g = gen(2);
  auto act = torch::rand({3, anchors.size(), 4}, g) * 4 - 2;
  auto boxes = activations_to_boxes(act, anchors);
  EXPECT_TRUE(torch::allclose(boxes_to_activations(boxes, anchors), act, 1e-3, 1e-3));
  auto ctr = corners_to_centers(boxes);
  EXPECT_TRUE(torch::allclose(centers_to_corners(ctr), boxes, 1e-6, 1e-6));
  // Zero activations give the anchors; saturated ones move half a cell, scale 0.5x / 1.5x.
  EXPECT_TRUE(torch::allclose(activations_to_boxes(torch::zeros({anchors.size(), 4}), anchors),
                              anchors.corners));
  auto big = torch::full({anchors.size(), 4}, 30.0);
  auto moved = corners_to_centers(activations_to_boxes(big, anchors));
  EXPECT_TRUE(torch::allclose(moved.narrow(1, 0, 2) - anchors.centers.narrow(1, 0, 2),
                              (anchors.grid_sizes / 2).expand({-1, 2}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(moved.narrow(1, 2, 2), anchors.centers.narrow(1, 2, 2) * 1.5,
                              1e-5, 1e-6));
}

// The lesson's map_to_ground_truth, one image at a time, as a reference.
static std::pair<torch::Tensor, torch::Tensor> lesson_map(const torch::Tensor& overlaps) {
  auto prior_idx = std::get<1>(overlaps.max(1));
  auto per_anchor = overlaps.max(0);
  auto gt_overlap = std::get<0>(per_anchor).clone();
  auto gt_idx = std::get<1>(per_anchor).clone();
  for (int64_t i = 0; i < prior_idx.size(0); ++i) {
    auto o = prior_idx[i].item<int64_t>();
    gt_overlap[o] = 1.99;
    gt_idx[o] = i;
  }
  return {gt_overlap, gt_idx};
}

TEST(Matching, EveryGroundTruthGetsItsBestAnchorAndEqualsTheLesson) {
  SsdConfig c;
  c.labels = {"a"};
  auto anchors = make_anchors(c);
  auto g = gen(3);
  const int64_t B = 6, G = 5;
  auto gt = random_boxes(B * G, g).view({B, G, 4});
  // Image i has i % G + 1 valid ground truths, the rest is padding; image 5 copies a box so
  // two ground truths contest one anchor.
  auto valid = torch::zeros({B, G}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) valid[b].narrow(0, 0, b % G + 1).fill_(true);
  gt[5][1] = gt[5][0];
  auto m = match_anchors(gt, valid, anchors.corners, 0.45);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = b % G + 1;
    auto overlaps = box_iou(gt[b].narrow(0, 0, n), anchors.corners);
    auto [ref_overlap, ref_idx] = lesson_map(overlaps);
    EXPECT_TRUE(torch::equal(m.gt_index[b], ref_idx)) << "image " << b;
    EXPECT_TRUE(torch::allclose(m.overlap[b], ref_overlap)) << "image " << b;
    EXPECT_TRUE(torch::equal(m.positive[b], ref_overlap > 0.45));
    EXPECT_LT(m.gt_index[b].max().item<int64_t>(), n);   // never a padding row
    auto best = std::get<1>(overlaps.max(1));
    for (int64_t i = 0; i < n; ++i) {
      auto a = best[i].item<int64_t>();
      EXPECT_TRUE(m.positive[b][a].item<bool>());
      // The owner of a contested anchor is the last ground truth that wanted it.
      int64_t owner = -1;
      for (int64_t j = 0; j < n; ++j)
        if (best[j].item<int64_t>() == a) owner = j;
      EXPECT_EQ(m.gt_index[b][a].item<int64_t>(), owner);
    }
  }
}

// An anchor other than a ground truth's best is positive only strictly above the threshold, as
// the lesson's `gt_overlap > thresh`: at exactly 0.5 against 0.5 it is background.
TEST(Matching, AnOverlapAtTheThresholdIsBackground) {
  auto gt = torch::tensor({0.f, 0.f, 1.f, 1.f}).view({1, 1, 4});
  auto valid = torch::ones({1, 1}, torch::kBool);
  auto anchors = torch::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 0.5f, 1.f}).view({2, 4});   // IoU 1 and 0.5
  auto m = match_anchors(gt, valid, anchors, 0.5);
  EXPECT_TRUE(m.positive[0][0].item<bool>());
  EXPECT_FALSE(m.positive[0][1].item<bool>()) << "IoU 0.5 is not above 0.5";
  EXPECT_TRUE(match_anchors(gt, valid, anchors, 0.49).positive[0][1].item<bool>());
}

TEST(Loss, FocalEqualsItsFormula) {
  auto g = gen(4);
  auto x = torch::randn({50, 7}, g, torch::kFloat64) * 3;
  auto t = (torch::rand({50, 7}, g, torch::kFloat64) > 0.8).to(torch::kFloat64);
  const double alpha = 0.25, gamma = 2.0;
  auto p = torch::sigmoid(x);
  auto pt = p * t + (1 - p) * (1 - t);
  auto at = alpha * t + (1 - alpha) * (1 - t);
  auto expect = (-at * (1 - pt).pow(gamma) * torch::log(pt)).sum().item<double>();
  EXPECT_NEAR(focal_bce_sum(x, t, true, alpha, gamma).item<double>(), expect, 1e-9 * expect);
  auto bce = (-(t * torch::log(p) + (1 - t) * torch::log(1 - p))).sum().item<double>();
  EXPECT_NEAR(focal_bce_sum(x, t, false, alpha, gamma).item<double>(), bce, 1e-9 * bce);
}

TEST(Loss, ZeroBoxLossWhenActivationsHitTheTruthAndNormalisedAsTheLesson) {
  SsdConfig c;
  c.labels = {"a", "b", "c"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), C = 3;
  // Ground truths are anchors themselves: their activations are 0 and the box loss vanishes.
  auto gt = torch::stack({anchors.corners[5], anchors.corners[100]}).unsqueeze(0);
  auto labels = torch::tensor({1, 2}, torch::kLong).unsqueeze(0);
  auto valid = torch::ones({1, 2}, torch::kBool);
  // Threshold 0.99: only the anchors forced to a ground truth (the boxes themselves) match.
  LossOptions opt;
  opt.match_threshold = 0.99;
  auto m = match_anchors(gt, valid, anchors.corners, opt.match_threshold);
  EXPECT_EQ(m.positive.sum().item<int64_t>(), 2);
  auto act = boxes_to_activations(gt[0].index_select(0, m.gt_index[0]), anchors).unsqueeze(0);
  act = torch::where(m.positive.unsqueeze(-1), act, torch::zeros_like(act));
  auto g = gen(5);
  auto logits = torch::randn({1, A, C + 1}, g);
  auto l = ssd_loss(logits, act, gt, labels, valid, anchors, opt);
  EXPECT_NEAR(l.loc.item<float>(), 0.f, 1e-5);
  // Class loss: focal BCE over the C non-background columns / C, background for negatives.
  auto target = torch::zeros({A, C});
  for (int64_t a = 0; a < A; ++a)
    if (m.positive[0][a].item<bool>())
      target[a][labels[0][m.gt_index[0][a].item<int64_t>()].item<int64_t>()] = 1;
  auto expect = focal_bce_sum(logits[0].narrow(1, 0, C), target, true, 0.25, 2.0) / C;
  EXPECT_NEAR(l.cls.item<float>(), expect.item<float>(), 1e-4);
  // Batch loss is the sum of per-image losses, padding ignored.
  auto gt2 = torch::cat({gt, torch::zeros({1, 1, 4})}, 1).repeat({2, 1, 1});
  auto labels2 = torch::cat({labels, torch::zeros({1, 1}, torch::kLong)}, 1).repeat({2, 1});
  auto valid2 = torch::cat({valid, torch::zeros({1, 1}, torch::kBool)}, 1).repeat({2, 1});
  auto l2 = ssd_loss(logits.repeat({2, 1, 1}), act.repeat({2, 1, 1}), gt2, labels2, valid2,
                     anchors, opt);
  EXPECT_NEAR(l2.total.item<float>(), 2 * l.total.item<float>(), 1e-3);
  // Gradients flow to both heads.
  auto lg = logits.clone().requires_grad_(true);
  auto ag = (act + 0.1).requires_grad_(true);
  ssd_loss(lg, ag, gt, labels, valid, anchors, opt).total.backward();
  EXPECT_GT(lg.grad().abs().sum().item<float>(), 0.f);
  EXPECT_GT(ag.grad().abs().sum().item<float>(), 0.f);
}

TEST(Loss, AnchorsInsideAnIgnoredRegionAreLeftOutOfTheClassLoss) {
  SsdConfig c;
  c.labels = {"a", "b", "c"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), C = 3;
  // A ground truth inside the region marked ignore (the right half of the image): its anchors
  // stay positive; the region's other anchors are neither object nor background.
  auto gt = torch::tensor({0.6f, 0.3f, 0.9f, 0.7f}).view({1, 1, 4});
  auto labels = torch::tensor({2}, torch::kLong).view({1, 1});
  auto valid = torch::ones({1, 1}, torch::kBool);
  auto region = torch::tensor({0.5f, 0.f, 1.f, 1.f}).view({1, 1, 4});
  LossOptions opt;
  auto m = match_anchors(gt, valid, anchors.corners, opt.match_threshold);
  auto ignored = ignored_anchors(region, m.positive, anchors.corners, opt.match_threshold)[0];
  // By hand: an anchor is ignored when not positive and over 0.4 of its area lies at x >= 0.5.
  int64_t n_ignored = 0, n_positive_inside = 0;
  for (int64_t a = 0; a < A; ++a) {
    auto k = anchors.corners[a];
    const float x1 = k[0].item<float>(), y1 = k[1].item<float>(), x2 = k[2].item<float>(),
                y2 = k[3].item<float>();
    const float area = (x2 - x1) * (y2 - y1);
    const float inside = std::max(0.f, std::min(x2, 1.f) - std::max(x1, 0.5f)) *
                         std::max(0.f, std::min(y2, 1.f) - std::max(y1, 0.f));
    const bool positive = m.positive[0][a].item<bool>();
    const bool expect = !positive && inside / area > 0.4f;
    EXPECT_EQ(ignored[a].item<bool>(), expect) << "anchor " << a;
    n_ignored += expect;
    n_positive_inside += positive && inside / area > 0.4f;
  }
  EXPECT_GT(n_ignored, 40);
  EXPECT_GT(n_positive_inside, 0);

  auto g = gen(6);
  auto logits = torch::randn({1, A, C + 1}, g);
  auto act = 0.3 * torch::randn({1, A, 4}, g);
  auto plain = ssd_loss(logits, act, gt, labels, valid, anchors, opt);
  auto masked = ssd_loss(logits, act, gt, labels, valid, anchors, opt, region);
  // Class loss: the same focal BCE over the anchors that are not ignored.
  auto target = torch::zeros({A, C});
  for (int64_t a = 0; a < A; ++a)
    if (m.positive[0][a].item<bool>()) target[a][2] = 1;
  auto keep = ~ignored;
  auto expect = focal_bce_sum(logits[0].narrow(1, 0, C).index({keep}), target.index({keep}), true,
                              0.25, 2.0) / C;
  EXPECT_NEAR(masked.cls.item<float>(), expect.item<float>(), 1e-4);
  EXPECT_LT(masked.cls.item<float>(), plain.cls.item<float>());
  EXPECT_FLOAT_EQ(masked.loc.item<float>(), plain.loc.item<float>());   // boxes as before
  // Padding rows (empty boxes) change nothing; nor does a batch without regions, nor
  // mask_ignored = false.
  auto padded = torch::cat({region, torch::zeros({1, 2, 4})}, 1);
  EXPECT_FLOAT_EQ(ssd_loss(logits, act, gt, labels, valid, anchors, opt, padded).cls.item<float>(),
                  masked.cls.item<float>());
  EXPECT_FLOAT_EQ(
      ssd_loss(logits, act, gt, labels, valid, anchors, opt, torch::zeros({1, 0, 4})).cls.item<float>(),
      plain.cls.item<float>());
  LossOptions off = opt;
  off.mask_ignored = false;
  EXPECT_FLOAT_EQ(ssd_loss(logits, act, gt, labels, valid, anchors, off, region).cls.item<float>(),
                  plain.cls.item<float>());
  // No gradient reaches an ignored anchor's class logits; every other anchor gets one.
  auto lg = logits.clone().requires_grad_(true);
  ssd_loss(lg, act, gt, labels, valid, anchors, opt, region).total.backward();
  auto per_anchor = lg.grad()[0].narrow(1, 0, C).abs().sum(1);
  EXPECT_EQ(per_anchor.index({ignored}).max().item<float>(), 0.f);
  EXPECT_GT(per_anchor.index({keep}).min().item<float>(), 0.f);
  // Per image in a batch: the second image has no region.
  auto two = ssd_loss(logits.repeat({2, 1, 1}), act.repeat({2, 1, 1}), gt.repeat({2, 1, 1}),
                      labels.repeat({2, 1}), valid.repeat({2, 1}), anchors, opt,
                      torch::cat({region, torch::zeros({1, 1, 4})}, 0));
  EXPECT_NEAR(two.cls.item<float>(), masked.cls.item<float>() + plain.cls.item<float>(), 1e-3);
  ssdtest::expect_error(
      [&] { ssd_loss(logits, act, gt, labels, valid, anchors, opt, torch::zeros({2, 1, 4})); },
      {"ignore_boxes", "[2, 1, 4]"});
}

// The box loss of each image is the mean absolute error over the 4 coordinates of its positive
// anchors (the lesson's L1 over the matched boxes), and the batch's the sum of the images'; an
// image without a positive anchor adds nothing (not NaN).
TEST(Loss, BoxLossIsEachImagesMeanL1OverItsPositiveAnchorsSummedOverTheBatch) {
  SsdConfig c;
  c.labels = {"a", "b"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), B = 3;
  // Image 0: two objects; image 1: one and a padding row; image 2: padding only.
  auto gt = torch::tensor({0.1f, 0.1f, 0.45f, 0.5f,  0.5f, 0.3f, 0.95f, 0.9f,
                           0.2f, 0.55f, 0.6f, 0.85f, 0.f, 0.f, 0.f, 0.f,
                           0.f, 0.f, 0.f, 0.f,       0.f, 0.f, 0.f, 0.f}).view({B, 2, 4});
  auto labels = torch::tensor({0, 1, 1, 0, 0, 0}, torch::kLong).view({B, 2});
  auto valid = torch::tensor({1, 1, 1, 0, 0, 0}).to(torch::kBool).view({B, 2});
  auto g = gen(7);
  auto act = 0.5 * torch::randn({B, A, 4}, g);
  auto logits = torch::randn({B, A, 3}, g);
  LossOptions opt;
  auto l = ssd_loss(logits, act, gt, labels, valid, anchors, opt);
  auto m = match_anchors(gt, valid, anchors.corners, opt.match_threshold);
  auto pred = activations_to_boxes(act, anchors).to(torch::kFloat64);
  double expect = 0;
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t a = 0; a < A; ++a) {
      if (!m.positive[b][a].item<bool>()) continue;
      ++n;
      const int64_t k = m.gt_index[b][a].item<int64_t>();
      for (int j = 0; j < 4; ++j) sum += std::abs(pred[b][a][j].item<double>() - gt[b][k][j].item<double>());
    }
    if (b < 2) {
      EXPECT_GT(n, 1) << "image " << b;   // several anchors: a mean over 4 n coordinates
    } else {
      EXPECT_EQ(n, 0);
    }
    if (n > 0) expect += sum / (4.0 * n);
  }
  EXPECT_GT(expect, 0.05);
  EXPECT_NEAR(l.loc.item<double>(), expect, 1e-5 * expect);
  EXPECT_TRUE(std::isfinite(l.total.item<float>()));
  // Image by image: the batch's box loss is the sum of the single images'.
  double sum_single = 0;
  for (int64_t b = 0; b < B; ++b)
    sum_single += ssd_loss(logits.narrow(0, b, 1), act.narrow(0, b, 1), gt.narrow(0, b, 1),
                           labels.narrow(0, b, 1), valid.narrow(0, b, 1), anchors, opt)
                      .loc.item<double>();
  EXPECT_NEAR(l.loc.item<double>(), sum_single, 1e-5 * expect);
}

// An anchor is ignored when strictly more than the threshold's share of its area lies in an
// ignored region, as a match needs an overlap strictly above it: exactly half of it inside is
// not enough at 0.5.
TEST(Loss, AnAnchorWithExactlyTheThresholdsShareInsideARegionIsNotIgnored) {
  // Anchors with none, half and all of their area in the right half of the image.
  auto anchors = torch::tensor({0.f, 0.f, 0.5f, 0.5f, 0.25f, 0.f, 0.75f, 0.5f, 0.5f, 0.f, 1.f, 0.5f}).view({3, 4});
  auto region = torch::tensor({0.5f, 0.f, 1.f, 1.f}).view({1, 1, 4});
  auto none = torch::zeros({1, 3}, torch::kBool);
  auto at = [&](double t) {
    auto r = ignored_anchors(region, none, anchors, t)[0];
    return std::vector<bool>{r[0].item<bool>(), r[1].item<bool>(), r[2].item<bool>()};
  };
  EXPECT_EQ(at(0.5), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(at(0.49), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(at(0.0), (std::vector<bool>{false, true, true}));   // none inside: never ignored
}

// Plain greedy NMS, one box at a time.
static std::vector<int64_t> brute_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                                      double t) {
  auto order = std::get<1>(scores.sort(0, true));
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < order.size(0); ++i) {
    auto bi = order[i].item<int64_t>();
    bool ok = true;
    for (auto k : keep)
      if (box_iou(boxes[bi].view({1, 4}), boxes[k].view({1, 4})).item<float>() > t) ok = false;
    if (ok) keep.push_back(bi);
  }
  return keep;
}

TEST(Nms, EqualsBruteForceOnRandomBoxes) {
  auto g = gen(6);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 5 + trial * 7;
    auto boxes = random_boxes(n, g);
    auto scores = torch::rand({n}, g);
    for (double t : {0.3, 0.5, 0.7}) {
      auto ref = brute_nms(boxes, scores, t);
      for (auto keep : {nms(boxes, scores, t), nms_fixed_point(boxes, scores, t)}) {
        ASSERT_EQ(keep.size(0), static_cast<int64_t>(ref.size())) << "n " << n << " t " << t;
        for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(keep[i].item<int64_t>(), ref[i]);
      }
    }
  }
  EXPECT_EQ(nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5).size(0), 0);
  EXPECT_EQ(nms_fixed_point(torch::zeros({0, 4}), torch::zeros({0}), 0.5).size(0), 0);
}

// A box is suppressed only by an IoU above the threshold, as torchvision's nms: at 0 boxes that
// do not touch both stay, at 1 two identical boxes both stay, and an IoU of exactly 0.5 stays at
// 0.5. Both NMS implementations (the fixed-point one is CUDA's).
TEST(Nms, SuppressesOnlyAboveTheThreshold) {
  auto scores = torch::tensor({0.9f, 0.8f});
  auto apart = torch::tensor({0.f, 0.f, .2f, .2f, .5f, .5f, .7f, .7f}).view({2, 4});
  auto same = torch::tensor({.1f, .1f, .3f, .3f, .1f, .1f, .3f, .3f}).view({2, 4});
  auto half = torch::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f, .5f, 1.f}).view({2, 4});   // IoU 0.5
  for (const bool fixed : {false, true}) {
    SCOPED_TRACE(fixed ? "nms_fixed_point" : "nms");
    auto run = [&](const torch::Tensor& b, double t) { return (fixed ? nms_fixed_point(b, scores, t) : nms(b, scores, t)).size(0); };
    EXPECT_EQ(run(apart, 0.0), 2);
    EXPECT_EQ(run(same, 1.0), 2);
    EXPECT_EQ(run(same, 0.99), 1);
    EXPECT_EQ(run(half, 0.5), 2);
    EXPECT_EQ(run(half, 0.49), 1);
  }
}

TEST(Nms, BatchedKeepsGroupsApart) {
  auto g = gen(7);
  const int64_t n = 60;
  auto boxes = random_boxes(n, g);
  auto scores = torch::rand({n}, g);
  auto groups = torch::randint(0, 3, {n}, g);
  auto keep = batched_nms(boxes, scores, groups, 0.5);
  std::vector<int64_t> expect;
  for (int64_t grp = 0; grp < 3; ++grp) {
    auto idx = torch::nonzero(groups == grp).squeeze(1);
    for (auto i : brute_nms(boxes.index_select(0, idx), scores.index_select(0, idx), 0.5))
      expect.push_back(idx[i].item<int64_t>());
  }
  std::sort(expect.begin(), expect.end(), [&](int64_t a, int64_t b) {
    return scores[a].item<float>() > scores[b].item<float>();
  });
  ASSERT_EQ(keep.size(0), static_cast<int64_t>(expect.size()));
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(keep[i].item<int64_t>(), expect[i]);
  // The same from the fixed-point NMS that batched_nms runs on CUDA.
  EXPECT_TRUE(torch::equal(nms_fixed_point(boxes, scores, 0.5, groups), keep));
}

// Per-group NMS decides on the boxes' own IoUs whatever the group ids: two concentric boxes
// whose IoU lies just below or above the threshold, in group 0, 999 and 9999 (shifting each
// group's boxes apart, torchvision's trick, rounded such IoUs by up to 4e-3 at a thousand
// groups in float32, and the CPU's output stage then disagreed with the CUDA one's).
TEST(Nms, BatchedDecidesOnTheBoxesOwnIoUsAtAnyGroupId) {
  for (const float outer : {0.0299f, 0.0296f}) {   // IoU 0.4474, 0.4565 against t = 0.45
    auto boxes = torch::tensor({0.5f - 0.01f, 0.5f - 0.01f, 0.5f + 0.01f, 0.5f + 0.01f,
                                0.5f - outer / 2, 0.5f - outer / 2, 0.5f + outer / 2, 0.5f + outer / 2}).view({2, 4});
    auto scores = torch::tensor({0.9f, 0.8f});
    const int64_t alone = nms(boxes, scores, 0.45).size(0);
    EXPECT_EQ(alone, outer > 0.0298f ? 2 : 1);
    EXPECT_EQ(nms_fixed_point(boxes, scores, 0.45).size(0), alone);
    for (const int64_t group : {0, 999, 9999}) {
      auto groups = torch::full({2}, group, torch::kLong);
      EXPECT_EQ(batched_nms(boxes, scores, groups, 0.45).size(0), alone) << "group " << group;
      EXPECT_EQ(nms_fixed_point(boxes, scores, 0.45, groups).size(0), alone) << "group " << group;   // CUDA's
    }
    // Boxes of two groups do not suppress each other.
    EXPECT_EQ(nms_fixed_point(boxes, scores, 0.45, torch::tensor({int64_t{3}, int64_t{4}})).size(0), 2);
  }
}

// Per-class thresholds (a class filter) apply before the candidates are chosen: a class held to
// a higher threshold or dropped takes no place from the others, neither among max_detections nor
// among pre_nms_top_k (a car at 0.95 and a person at 0.73, only persons wanted, one detection
// asked for: the person; it was none).
TEST(Postprocess, ClassThresholdsApplyBeforeTheCountAndTheCandidates) {
  SsdConfig c;
  c.labels = {"car", "person"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size();
  auto cls = torch::full({1, A, 3}, -10.f);
  for (int64_t a = 0; a < 20; ++a) cls[0][a][0] = 3.f - 0.01f * a;   // 20 cars above 0.94
  cls[0][A - 1][1] = 1.f;                                           // a person at 0.73
  auto box = torch::zeros({1, A, 4});
  PostprocessOptions o;
  o.max_detections = 1;
  o.pre_nms_top_k = 5;
  o.nms_iou = 1.0;   // nothing suppressed
  auto labels_of = [&](const PostprocessOptions& opt) {
    std::vector<std::vector<int64_t>> out;
    const auto eager = postprocess(cls, box, anchors, opt);
    out.emplace_back(eager[0].labels.data_ptr<int64_t>(), eager[0].labels.data_ptr<int64_t>() + eager[0].labels.numel());
    const auto fixed = postprocess_fixed(cls, box, anchors, opt, 8);
    std::vector<int64_t> f;
    for (int64_t i = 0; i < fixed.counts[0].item<int64_t>(); ++i) f.push_back(static_cast<int64_t>(fixed.packed[0][i][0].item<float>()));
    out.push_back(f);
    return out;
  };
  using Labels = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(labels_of(o), (Labels{{0}, {0}}));   // no filter: the best car
  o.class_thresholds = {ClassFilter::kDropped, 0.3f};
  EXPECT_EQ(labels_of(o), (Labels{{1}, {1}}));
  o.class_thresholds = {0.99f, 0.5f};            // cars held above their scores
  EXPECT_EQ(labels_of(o), (Labels{{1}, {1}}));
  o.class_thresholds = {0.3f, 0.8f};             // the person below its own threshold
  o.max_detections = 5;
  EXPECT_EQ(labels_of(o), (Labels{{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}}));
  o.class_thresholds = {0.3f};
  ssdtest::expect_error([&] { postprocess(cls, box, anchors, o); }, {"1 class thresholds for a batch of 1 images of 2 classes"});
  // Per image (a shared instance's streams): C values for each of the first images; images past
  // them get none.
  auto cls3 = cls.repeat({3, 1, 1}), box3 = box.repeat({3, 1, 1});
  o.max_detections = 1;
  o.class_thresholds = {ClassFilter::kDropped, 0.3f, 0.3f, 0.3f};
  for (bool fixed : {false, true}) {
    SCOPED_TRACE(fixed ? "fixed" : "eager");
    std::vector<int64_t> counts, labels;
    if (fixed) {
      const auto f = postprocess_fixed(cls3, box3, anchors, o, 8);
      for (int64_t b = 0; b < 3; ++b) {
        counts.push_back(f.counts[b].item<int64_t>());
        if (counts.back() > 0) labels.push_back(static_cast<int64_t>(f.packed[b][0][0].item<float>()));
      }
    } else {
      for (const auto& d : postprocess(cls3, box3, anchors, o)) {
        counts.push_back(d.labels.size(0));
        if (d.labels.size(0) > 0) labels.push_back(d.labels[0].item<int64_t>());
      }
    }
    EXPECT_EQ(counts, (std::vector<int64_t>{1, 1, 0}));
    EXPECT_EQ(labels, (std::vector<int64_t>{1, 0}));
  }
}

TEST(Postprocess, ThresholdTopKAndPerClassNms) {
  SsdConfig c;
  c.labels = {"a", "b"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size();
  auto g = gen(8);
  auto cls = torch::randn({3, A, 3}, g) * 3;
  auto box = torch::randn({3, A, 4}, g) * 0.2;
  PostprocessOptions o;
  o.score_threshold = 0.6;
  o.nms_iou = 0.45;
  o.max_detections = 7;
  auto out = postprocess(cls, box, anchors, o);
  ASSERT_EQ(out.size(), 3u);
  auto boxes_all = activations_to_boxes(box, anchors).clamp(0, 1);
  for (int64_t b = 0; b < 3; ++b) {
    const auto& d = out[b];
    ASSERT_LE(d.scores.size(0), 7);
    ASSERT_GT(d.scores.size(0), 0);
    EXPECT_TRUE((d.scores > 0.6).all().item<bool>());
    EXPECT_TRUE(torch::equal(std::get<0>(d.scores.sort(0, true)), d.scores));
    // Brute force: per class, threshold, NMS, then merge by score, top 7.
    std::vector<std::pair<float, int64_t>> ref;
    auto s = torch::sigmoid(cls[b].narrow(1, 0, 2));
    for (int64_t k = 0; k < 2; ++k) {
      auto idx = torch::nonzero(s.select(1, k) > 0.6).squeeze(1);
      auto sk = s.select(1, k).index_select(0, idx);
      for (auto i : brute_nms(boxes_all[b].index_select(0, idx), sk, 0.45))
        ref.push_back({sk[i].item<float>(), k});
    }
    std::sort(ref.begin(), ref.end(), [](auto& x, auto& y) { return x.first > y.first; });
    if (ref.size() > 7) ref.resize(7);
    ASSERT_EQ(d.scores.size(0), static_cast<int64_t>(ref.size()));
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_FLOAT_EQ(d.scores[i].item<float>(), ref[i].first);
      EXPECT_EQ(d.labels[i].item<int64_t>(), ref[i].second);
    }
  }
}

// One object under two labels at one place: per-class NMS reports both, NMS across classes the
// more confident only; a box of the other label elsewhere stays either way. Both output stages.
TEST(Postprocess, ClassAgnosticNmsSuppressesAcrossLabels) {
  SsdConfig c;
  c.labels = {"a", "b"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size();
  auto cls = torch::full({1, A, 3}, -10.0f);
  auto box = torch::zeros({1, A, 4});   // the anchors' own boxes
  const int64_t here = 0, there = A - 1;   // a 4x4 cell's anchor and the 1x1 grid's last
  cls[0][here][0] = 3.0f;    // a: 0.953
  cls[0][here][1] = 2.0f;    // b: 0.881, the same box
  cls[0][there][1] = 1.0f;   // b: 0.731 elsewhere
  ASSERT_LT(box_iou(anchors.corners.narrow(0, here, 1), anchors.corners.narrow(0, there, 1)).item<float>(), 0.45f);
  for (const bool agnostic : {false, true}) {
    SCOPED_TRACE(agnostic ? "across classes" : "per class");
    PostprocessOptions o;
    o.class_agnostic = agnostic;
    const auto d = postprocess(cls, box, anchors, o)[0];
    const std::vector<int64_t> want = agnostic ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0, 1, 1};
    ASSERT_EQ(d.labels.size(0), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(d.labels[i].item<int64_t>(), want[i]);
    EXPECT_NEAR(d.scores[d.scores.size(0) - 1].item<float>(), 0.731f, 1e-3);
    const auto f = postprocess_fixed(cls, box, anchors, o);
    ASSERT_TRUE(f.converged[0].item<bool>());
    ASSERT_EQ(f.counts[0].item<int64_t>(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(static_cast<int64_t>(f.packed[0][static_cast<int64_t>(i)][0].item<float>()), want[i]);
  }
}

// An image's detections do not depend on the batch it is in: the batch's output equals each
// image's alone, bit for bit, at the last place of a batch of 64 too (where one NMS over the
// whole batch, groups shifted apart by image * C + class, loses the coordinates' low bits and
// decides pairs near the IoU threshold otherwise); threshold 0, one class, many overlaps.
TEST(Postprocess, AnImagesDetectionsDoNotDependOnItsBatch) {
  SsdConfig c;
  c.labels = {"a"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), B = 64;
  auto g = gen(21);
  auto cls = torch::randn({B, A, 2}, g);
  auto box = torch::randn({B, A, 4}, g) * 0.5;
  PostprocessOptions o;
  o.score_threshold = 0.0;
  o.nms_iou = 0.45;
  o.max_detections = 200;
  o.pre_nms_top_k = 189;
  const auto batch = postprocess(cls, box, anchors, o);
  ASSERT_EQ(batch.size(), static_cast<size_t>(B));
  int differing = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto alone = postprocess(cls.narrow(0, b, 1), box.narrow(0, b, 1), anchors, o);
    const bool same = torch::equal(alone[0].scores, batch[b].scores) && torch::equal(alone[0].boxes, batch[b].boxes) &&
                      torch::equal(alone[0].labels, batch[b].labels);
    differing += !same;
  }
  EXPECT_EQ(differing, 0) << "images whose detections changed with their place in the batch";
}

// A NaN box (from a weights file's NaN, say) is dropped before NMS: it is no detection, and the
// other boxes of its image and of the other images are suppressed as without it.
TEST(Postprocess, NanBoxesAreDroppedAndSuppressNothingElse) {
  SsdConfig c;
  c.labels = {"a", "b"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), B = 3;
  auto g = gen(22);
  auto cls = torch::randn({B, A, 3}, g) * 3;
  auto box = torch::randn({B, A, 4}, g) * 0.3;
  PostprocessOptions o;
  o.score_threshold = 0.05;
  o.max_detections = 50;
  const auto clean = postprocess(cls, box, anchors, o);
  auto poisoned = box.clone();
  poisoned[1].select(1, 0).fill_(std::numeric_limits<float>::quiet_NaN());   // every box of image 1
  poisoned[2][7][2] = std::numeric_limits<float>::quiet_NaN();               // one of image 2
  const auto out = postprocess(cls, poisoned, anchors, o);
  EXPECT_TRUE(torch::equal(out[0].boxes, clean[0].boxes));
  EXPECT_EQ(out[1].scores.size(0), 0);
  EXPECT_TRUE(torch::isfinite(out[2].boxes).all().item<bool>());
  const auto fixed = postprocess_fixed(cls, poisoned, anchors, o, 64);
  EXPECT_EQ(fixed.counts[1].item<int64_t>(), 0);
  EXPECT_TRUE(torch::isfinite(fixed.packed).all().item<bool>());
  for (int64_t b : {0, 2}) EXPECT_EQ(fixed.counts[b].item<int64_t>(), out[b].scores.size(0));
}

// The sync-free, fixed-shape output stage equals postprocess() wherever it reports convergence,
// and with enough Jacobi steps it converges on every image.
TEST(Postprocess, FixedShapeEqualsDynamic) {
  SsdConfig c;
  c.labels = {"a", "b", "c"};
  auto anchors = make_anchors(c);
  const int64_t A = anchors.size(), B = 4;
  auto g = gen(9);
  int not_converged = 0;
  for (int trial = 0; trial < 6; ++trial) {
    // Strong, clustered scores: many overlapping candidates of a class, long suppression chains.
    auto cls = torch::randn({B, A, 4}, g) * 3 + 1.5;
    auto box = torch::randn({B, A, 4}, g) * 0.3;
    PostprocessOptions o;
    o.score_threshold = trial % 2 ? 0.5 : 0.05;
    o.nms_iou = trial < 3 ? 0.45 : 0.3;
    // Across classes in two trials, asking for fewer (NMS across classes leaves fewer of the 200
    // candidates: past 8 the fixed stage would say more pairs may hold more detections).
    o.class_agnostic = trial == 1 || trial == 4;
    o.max_detections = trial == 5 ? 3 : o.class_agnostic ? 8 : 50;
    o.pre_nms_top_k = 200;
    auto ref = postprocess(cls, box, anchors, o);
    for (int iterations : {1, 64}) {
      auto fixed = postprocess_fixed(cls, box, anchors, o, iterations);
      const int64_t M = std::min<int64_t>(o.max_detections, o.pre_nms_top_k);
      ASSERT_EQ(fixed.packed.sizes(), (torch::IntArrayRef{B, M, 6}));
      ASSERT_EQ(fixed.counts.sizes(), (torch::IntArrayRef{B}));
      for (int64_t b = 0; b < B; ++b) {
        if (!fixed.converged[b].item<bool>()) {
          ASSERT_EQ(iterations, 1) << "64 steps must converge";
          ++not_converged;
          continue;
        }
        const auto& d = ref[b];
        const int64_t n = fixed.counts[b].item<int64_t>();
        ASSERT_EQ(n, d.scores.size(0)) << "trial " << trial << " image " << b;
        auto rows = fixed.packed[b];
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(static_cast<int64_t>(rows[i][0].item<float>()), d.labels[i].item<int64_t>());
          EXPECT_FLOAT_EQ(rows[i][1].item<float>(), d.scores[i].item<float>());
          for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(rows[i][2 + j].item<float>(), d.boxes[i][j].item<float>());
        }
        if (n < M) {
          EXPECT_EQ(rows.narrow(0, n, M - n).abs().sum().item<float>(), 0.f);
        }
      }
    }
  }
  // One Jacobi step cannot finish a suppression chain: the flag must have said so somewhere.
  EXPECT_GT(not_converged, 0);
}

// ResNet50's bottlenecks stride in their 3x3 convolution, as torchvision's (v1.5) whose ImageNet
// weights --imagenet imports: the 1x1 convolutions keep the resolution. (Striding in the first
// 1x1, v1, gives maps of the same sizes, so no shape check would see it.)
TEST(ResNet, Resnet50StridesInTheBottlenecks3x3ConvolutionAsTorchvision) {
  ResNet net(resnet_spec("resnet50"));
  int checked = 0;
  for (const auto& item : net->named_modules()) {
    const auto* conv = item.value()->as<torch::nn::Conv2dImpl>();
    if (!conv || item.key().rfind("layer", 0) != 0) continue;
    SCOPED_TRACE(item.key());
    const bool first_block = item.key().find(".0.") != std::string::npos;
    const bool downsampling_layer = item.key().rfind("layer1.", 0) != 0;
    const bool strided = first_block && downsampling_layer &&
                         (item.key().find(".conv2") != std::string::npos ||
                          item.key().find(".downsample.") != std::string::npos);
    EXPECT_EQ(conv->options.stride()->at(0), strided ? 2 : 1);
    EXPECT_EQ(conv->options.stride()->at(1), strided ? 2 : 1);
    checked += strided;
  }
  EXPECT_EQ(checked, 6);   // conv2 and downsample.0 of layer2.0, layer3.0 and layer4.0
}

// The fold's formula, by hand: a strided conv with its own bias, channels-last, then BatchNorm.
TEST(FoldBatchnorm, OneConvolutionEqualsConvolutionThenBatchNorm) {
  torch::manual_seed(3);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(5, 7, 3).stride(2).padding(1).bias(true));
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(7).eps(1e-3));
  randomise_batchnorms(*bn, 4);
  conv->eval();
  bn->eval();
  {
    torch::NoGradGuard ng;
    conv->weight.set_data(conv->weight.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  auto folded = fold_batchnorm(conv, bn);
  EXPECT_TRUE(folded->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(folded->is_training());
  const auto x = torch::randn({2, 5, 9, 11});
  torch::NoGradGuard ng;
  const auto expected = bn(conv(x));
  const auto got = folded(x);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max();
  // By hand for one output channel: g = weight / sqrt(var + eps).
  const double g = (bn->weight[2] / (bn->running_var[2] + 1e-3).sqrt()).item<double>();
  EXPECT_NEAR(folded->bias[2].item<double>(),
              ((conv->bias[2] - bn->running_mean[2]) * g + bn->bias[2]).item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(folded->weight[2], conv->weight[2] * g, 1e-5, 1e-6));
  ssdtest::expect_error(
      [&] { fold_batchnorm(conv, torch::nn::BatchNorm2d(6)); }, {"7 output channels", "6"});
}

// Every block type: Bottleneck bodies (resnet50) and the default architecture's fine grid (the
// stride-16 map folded too) give the same outputs after the fold.
TEST(FoldBatchnorm, ModelsGiveTheSameOutputs) {
  for (const std::string body : {"resnet50", "tiny"}) {
    SCOPED_TRACE(body);
    SsdConfig c;
    c.body = body;
    c.input_size = 160;
    c.grids = {10, 5, 3, 2, 1};
    c.head_channels = 32;
    c.labels = {"a", "b"};
    torch::manual_seed(5);
    Ssd model(c);
    randomise_batchnorms(*model, 6);
    model->eval();
    const auto x = torch::randn({2, 3, 160, 160});
    torch::NoGradGuard ng;
    const auto [cls, box] = model->forward(x);
    torch::manual_seed(9);
    const auto expected_random = torch::rand({4});
    torch::manual_seed(9);
    EXPECT_FALSE(model->body->folded());
    EXPECT_EQ(model->fold_batchnorm(), body == "tiny" ? 12 : 53);   // stem + blocks + downsamples
    EXPECT_EQ(model->fold_batchnorm(), 0);   // a second call has nothing left to fold
    EXPECT_TRUE(torch::equal(torch::rand({4}), expected_random)) << "the fold used the default generator";
    for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
    ssdtest::expect_error([&] { model->layer_groups(); }, {"folded"});
    EXPECT_TRUE(model->body->folded());
    model->train();
    ssdtest::expect_error([&] { model->forward(x); }, {"folded", "training mode"});
    model->eval();
    const auto [cls2, box2] = model->forward(x);
    EXPECT_LT(rel_error(cls2, cls), 1e-5);
    EXPECT_LT(rel_error(box2, box), 1e-5);
    int batchnorms = 0;
    for (const auto& m : model->body->modules(false))
      batchnorms += m->as<torch::nn::BatchNorm2dImpl>() != nullptr;
    EXPECT_EQ(batchnorms, 0);
  }
}

TEST(ConcatOutputChannels, GivesBothConvolutionsOutputsInOnePass) {
  torch::manual_seed(3);
  torch::nn::Conv2d a(torch::nn::Conv2dOptions(6, 5, 3).stride(2).padding(1));
  torch::nn::Conv2d b(torch::nn::Conv2dOptions(6, 4, 3).stride(2).padding(1));
  a->eval();
  b->eval();
  {
    torch::NoGradGuard ng;
    a->weight.set_data(a->weight.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  torch::manual_seed(9);
  const auto expected_random = torch::rand({4});
  torch::manual_seed(9);
  auto both = concat_output_channels(a, b);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected_random)) << "the fusion used the default generator";
  EXPECT_EQ(both->options.out_channels(), 9);
  EXPECT_TRUE(both->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(both->is_training());
  const auto x = torch::randn({2, 6, 7, 8});
  torch::NoGradGuard ng;
  const auto got = both(x);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 9, 4, 4}));
  EXPECT_TRUE(torch::allclose(got.narrow(1, 0, 5), a(x), 1e-5, 1e-6)) << (got.narrow(1, 0, 5) - a(x)).abs().max();
  EXPECT_TRUE(torch::allclose(got.narrow(1, 5, 4), b(x), 1e-5, 1e-6)) << (got.narrow(1, 5, 4) - b(x)).abs().max();
  // Convolutions that do not read their input alike are refused, naming what differs.
  ssdtest::expect_error(
      [&] { concat_output_channels(a, torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 4, 3).stride(1).padding(1))); },
      {"differ", "strides [2, 2] and [1, 1]"});
  ssdtest::expect_error(
      [&] { concat_output_channels(a, torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 4, 3).stride(2).padding(0))); },
      {"differ", "paddings [1, 1] and [0, 0]"});
  ssdtest::expect_error(
      [&] { concat_output_channels(a, torch::nn::Conv2d(torch::nn::Conv2dOptions(5, 4, 3).stride(2).padding(1))); },
      {"differ", "[5, 6, 3, 3] and [4, 5, 3, 3]"});
}

// Each grid's class and box convolutions fused into one (as ssd::Detector runs the model): the
// same outputs, the default generator untouched, and training refused afterwards; then the
// weights in channels-last memory format (SsdImpl::to_channels_last, as the Detector runs them).
TEST(FuseOutputConvs, ModelsGiveTheSameOutputs) {
  for (const auto& grids : {std::vector<int>{10, 5, 3, 2, 1}, std::vector<int>{4, 2, 1}}) {
    SCOPED_TRACE(grids.size());
    SsdConfig c;
    c.body = "tiny";
    c.input_size = grids[0] == 10 ? 160 : 128;
    c.grids = grids;
    c.head_channels = 32;
    c.labels = {"a", "b", "c"};
    torch::manual_seed(5);
    Ssd model(c);
    randomise_batchnorms(*model, 6);
    model->eval();
    const auto x = torch::randn({2, 3, c.input_size, c.input_size});
    torch::NoGradGuard ng;
    const auto [cls, box] = model->forward(x);
    const size_t tensors = model->named_parameters().size();
    torch::manual_seed(9);
    const auto expected_random = torch::rand({4});
    torch::manual_seed(9);
    EXPECT_EQ(model->fuse_output_convs(), static_cast<int>(grids.size()));
    EXPECT_EQ(model->fuse_output_convs(), 0);   // a second call has nothing left to fuse
    EXPECT_TRUE(torch::equal(torch::rand({4}), expected_random)) << "the fusion used the default generator";
    EXPECT_EQ(model->named_parameters().size(), tensors - 2 * grids.size());   // 4 -> 2 a grid
    model->train();
    ssdtest::expect_error([&] { model->forward(x); }, {"fused", "training mode"});
    model->eval();
    EXPECT_EQ(model->fold_batchnorm(), 12);   // and the body's fold, as the Detector does
    const auto [cls2, box2] = model->forward(x);
    ASSERT_EQ(cls2.sizes(), cls.sizes());
    ASSERT_EQ(box2.sizes(), box.sizes());
    EXPECT_LT(rel_error(cls2, cls), 1e-5);
    EXPECT_LT(rel_error(box2, box), 1e-5);
    // And channels-last weights and input, as the Detector runs it: same outputs.
    model->to_channels_last();
    for (const auto& p : model->named_parameters()) {
      if (p.value().dim() == 4) {
        EXPECT_TRUE(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.key();
      }
    }
    const auto [cls3, box3] = model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast));
    EXPECT_LT(rel_error(cls3, cls), 1e-5);
    EXPECT_LT(rel_error(box3, box), 1e-5);
  }
}

// YUV -> RGB (model/yuv.h, ssddetect's conversion of NV12 and I420) on the 8-bit codes of the
// colour bars, 100% and 75%, of BT.601 and of BT.709 (SMPTE RP 219's), video range, and on
// JFIF's full-range BT.601 codes: each comes back to its colour within the codes' rounding (1.75
// levels of 255). The 75% bars are away from the clamp at 0 and 1, where an error would hide.
TEST(Yuv, ColourBarsGiveTheirColours) {
  struct Bar {
    int y, cb, cr;
    double r, g, b;   // 0-1
  };
  const double f = 0.75;
  const std::vector<Bar> bt601 = {
      {235, 128, 128, 1, 1, 1}, {210, 16, 146, 1, 1, 0}, {170, 166, 16, 0, 1, 1}, {145, 54, 34, 0, 1, 0},
      {106, 202, 222, 1, 0, 1}, {81, 90, 240, 1, 0, 0},  {41, 240, 110, 0, 0, 1}, {16, 128, 128, 0, 0, 0},
      {180, 128, 128, f, f, f}, {162, 44, 142, f, f, 0}, {131, 156, 44, 0, f, f}, {112, 72, 58, 0, f, 0},
      {84, 184, 198, f, 0, f},  {65, 100, 212, f, 0, 0}, {35, 212, 114, 0, 0, f}};
  const std::vector<Bar> bt709 = {
      {219, 16, 138, 1, 1, 0},  {188, 154, 16, 0, 1, 1}, {173, 42, 26, 0, 1, 0},  {78, 214, 230, 1, 0, 1},
      {63, 102, 240, 1, 0, 0},  {32, 240, 118, 0, 0, 1}, {168, 44, 136, f, f, 0}, {145, 147, 44, 0, f, f},
      {134, 63, 52, 0, f, 0},   {63, 193, 204, f, 0, f}, {51, 109, 212, f, 0, 0}, {28, 212, 120, 0, 0, f}};
  const std::vector<Bar> jfif = {{255, 128, 128, 1, 1, 1}, {0, 128, 128, 0, 0, 0},  {128, 128, 128, 128 / 255.0, 128 / 255.0, 128 / 255.0},
                                 {76, 85, 255, 1, 0, 0},   {150, 44, 21, 0, 1, 0}, {29, 255, 107, 0, 0, 1},
                                 // Unsaturated colours, which no clamping hides: the full range's chroma scale
                                 // (255, not the limited range's 224) decides them.
                                 {109, 138, 187, 0.75, 0.25, 0.5}, {146, 118, 69, 0.25, 0.75, 0.5},
                                 {97, 181, 150, 0.5, 0.25, 0.75}};
  const std::vector<std::tuple<std::string, YuvMatrix, const std::vector<Bar>*>> sets = {
      {"BT.601", {0.299, 0.114, false}, &bt601}, {"BT.709", {0.2126, 0.0722, false}, &bt709}, {"JFIF", {0.299, 0.114, true}, &jfif}};
  for (const auto& [name, matrix, bars] : sets) {
    const int64_t n = static_cast<int64_t>(bars->size());
    auto y = torch::empty({1, 1, 1, n}), cbcr = torch::empty({1, 2, 1, n});
    for (int64_t i = 0; i < n; ++i) {
      const Bar& b = (*bars)[static_cast<size_t>(i)];
      y[0][0][0][i] = b.y;
      cbcr[0][0][0][i] = b.cb;
      cbcr[0][1][0][i] = b.cr;
    }
    const auto rgb = yuv_to_rgb(y, cbcr, matrix);
    ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{1, 3, 1, n}));
    for (int64_t i = 0; i < n; ++i) {
      const Bar& b = (*bars)[static_cast<size_t>(i)];
      const double want[3] = {b.r, b.g, b.b};
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(rgb[0][c][0][i].item<double>(), want[c], 1.75 / 255) << name << " (" << b.y << ", " << b.cb << ", " << b.cr << ") " << "RGB"[c];
    }
  }
  ssdtest::expect_error([] { yuv_to_rgb(torch::zeros({1, 1, 4, 4}), torch::zeros({1, 2, 2, 2}), {}); },
                        {"yuv_to_rgb", "[1, 1, 4, 4]", "[1, 2, 2, 2]"});
}

TEST(Text, TrimsAndSplitsLists) {
  EXPECT_EQ(trim(" \t a b\r\n"), "a b");
  EXPECT_EQ(trim(" \n\t"), "");
  EXPECT_EQ(trim(""), "");
  using Items = std::vector<std::string>;
  EXPECT_EQ(split_list(" a, b ,,c,"), (Items{"a", "b", "", "c"}));
  EXPECT_EQ(split_list(""), Items{});
  EXPECT_EQ(split_list(" "), Items{""});
  EXPECT_EQ(split_list("x=1; y = 2", ';'), (Items{"x=1", "y = 2"}));
}

// Columns of class names in a table (eval padded by bytes: a Cyrillic name's row moved 11
// columns left of its header).
TEST(Text, DisplayWidthCountsColumnsNotBytes) {
  EXPECT_EQ(display_width("cross"), 5);
  EXPECT_EQ(display_width("gr\u00f6\u00dfer"), 6);
  EXPECT_EQ(display_width("\u0442\u0440\u0435\u0443\u0433\u043e\u043b\u044c\u043d\u0438\u043a"), 11);
  EXPECT_EQ(display_width("\u661f star"), 7);     // a wide CJK character takes two
  EXPECT_EQ(display_width("e\u0301"), 1);         // a combining accent none
  EXPECT_EQ(display_width("a\xff\xfe"), 3);      // a byte that is not UTF-8 one
  EXPECT_EQ(display_width(""), 0);
  EXPECT_EQ(pad_right("\u661f", 4), "\u661f  ");
  EXPECT_EQ(pad_left("\u00f6", 3), "  \u00f6");
  EXPECT_EQ(pad_right("wider", 2), "wider");
  EXPECT_EQ(decode_utf8("a\x80" "b\u00e9\xc3"), U"a\ufffdb\u00e9\ufffd");   // (what the Hershey captions draw)
}

// Names that differ only in case, in any script (the warnings about them folded ASCII only).
TEST(Text, FoldCaseLowersEveryScript) {
  EXPECT_EQ(fold_case("Dog"), fold_case("dog"));
  EXPECT_EQ(fold_case("\u00d6lkanne"), fold_case("\u00f6lkanne"));                 // Ölkanne
  EXPECT_EQ(fold_case("v\u00c9lo"), fold_case("v\u00e9lo"));                        // vÉlo
  EXPECT_EQ(fold_case("\u0414\u041e\u041c"), fold_case("\u0434\u043e\u043c"));  // ДОМ, дом
  EXPECT_EQ(fold_case("\u0391\u03a3"), U"\u03b1\u03c3");                         // ΑΣ
  EXPECT_EQ(fold_case("\u03a3\u039a\u03a5\u039b\u039f\u03a3"), fold_case("\u03c3\u03ba\u03c5\u03bb\u03bf\u03c2"));   // final sigma
  EXPECT_NE(fold_case("\u00f6lkanne"), fold_case("olkanne"));
  EXPECT_EQ(fold_case("\u81ea\u8ee2\u8eca 1"), U"\u81ea\u8ee2\u8eca 1");         // no case: as it is
}

// Names from files printed on a terminal: control characters escaped (an ESC sequence in a label
// recoloured the terminal, a CR overwrote the line), UTF-8 text, newlines and tabs as they are.
TEST(Text, PrintableEscapesControlCharacters) {
  EXPECT_EQ(printable("red\x1b[31mcar\rX\x7f"), "red\\x1b[31mcar\\x0dX\\x7f");
  EXPECT_EQ(printable("cr\u009b31m"), "cr\\x9b31m");   // C1's CSI
  EXPECT_EQ(printable("gr\u00f6\u00dfe \u81ea\n\tok"), "gr\u00f6\u00dfe \u81ea\n\tok");
  EXPECT_TRUE(has_control_characters("a\x1b"));
  EXPECT_TRUE(has_control_characters("a\u0085"));
  // C1 is U+0080 to U+009F, both ends included (U+009F is APC, a terminal's command string).
  EXPECT_EQ(printable("a\u0080b\u009fc\u00a0"), "a\\x80b\\x9fc\u00a0");
  EXPECT_TRUE(has_control_characters("a\u009f"));
  EXPECT_TRUE(has_control_characters("\u0080"));
  EXPECT_TRUE(has_control_characters("star\nfile:   FORGED"));   // (a name's newline forges a line)
  EXPECT_TRUE(has_control_characters("a\tb"));
  EXPECT_FALSE(has_control_characters("\u00e9t\u00e9 \u00a0"));   // (U+00A0 is no control character)
}

// A value printed in double quotes for a shell gives the value back when a shell reads it (eval's
// class-thresholds line broke on a class named with a quote): /bin/sh is the reference.
TEST(Text, ShellDoubleQuotedIsReadBackByTheShell) {
  for (const std::string& value : {std::string("rectangle=0.385,star=0.289"), std::string("\u00d6lkanne \"gro\u00df\"=0.1"),
                                  std::string("a$HOME`id`\\n b=0.2"), std::string("'single' and \\\"=1"), std::string()}) {
    for (const std::string& quoted : {shell_double_quoted(value), shell_single_quoted(value)}) {
      const std::string command = "printf '%s' " + quoted;
      FILE* sh = popen(command.c_str(), "r");
      ASSERT_NE(sh, nullptr);
      std::string out;
      char buf[256];
      for (size_t n; (n = fread(buf, 1, sizeof buf, sh)) > 0;) out.append(buf, n);
      EXPECT_EQ(pclose(sh), 0) << command;
      EXPECT_EQ(out, value) << command;
    }
  }
}

TEST(ClassFilter, KeepsTheNamedClassesAboveTheirThresholds) {
  const std::vector<std::string> labels{"cat", "dog", "car"};
  auto det = [](int label, float confidence) {
    Detection d;
    d.label_id = label;
    d.confidence = confidence;
    return d;
  };
  const std::vector<Detection> all{det(0, 0.9f), det(1, 0.5f), det(2, 0.35f), det(0, 0.2f), det(2, 0.1f)};
  // What the output stage keeps with the filter's per-class thresholds (the global one for
  // every class when the filter is empty).
  auto kept = [&](const ClassFilter& f, float global) {
    const std::vector<float> t = f.class_thresholds(global, labels.size());
    std::vector<std::pair<int, float>> out;
    for (const auto& x : all)
      if (x.confidence > (t.empty() ? global : t[static_cast<size_t>(x.label_id)])) out.emplace_back(x.label_id, x.confidence);
    return out;
  };
  using Kept = std::vector<std::pair<int, float>>;
  // Nothing given: the global threshold for every class.
  const ClassFilter none = parse_class_filter(labels, " , ", "");
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(kept(none, 0.3f), (Kept{{0, 0.9f}, {1, 0.5f}, {2, 0.35f}}));
  // classes only: the others dropped.
  EXPECT_EQ(kept(parse_class_filter(labels, " car ,cat", ""), 0.3f), (Kept{{0, 0.9f}, {2, 0.35f}}));
  // Thresholds above and below the global one; the others keep the global (0.3), strictly above.
  const ClassFilter t = parse_class_filter(labels, "", "cat=0.95, car=0.05,dog=0.5");
  EXPECT_EQ(kept(t, 0.3f), (Kept{{2, 0.35f}, {2, 0.1f}}));
  // A threshold of 0 is a threshold (every car with any confidence), not "unset".
  EXPECT_EQ(parse_class_filter(labels, "", "car=0").class_thresholds(0.3f, 3), (std::vector<float>{0.3f, 0.3f, 0.f}));
  const ClassFilter one = parse_class_filter(labels, "", "car=0.2");
  EXPECT_EQ(kept(one, 0.3f), (Kept{{0, 0.9f}, {1, 0.5f}, {2, 0.35f}}));
  // Both: classes first, then thresholds.
  EXPECT_EQ(kept(parse_class_filter(labels, "car", "car=0.05"), 0.3f), (Kept{{2, 0.35f}, {2, 0.1f}}));
  // Errors name the entry, where it came from, and the model's classes.
  ssdtest::expect_error([&] { parse_class_filter(labels, "cat,unicorn", "", "--classes"); },
                        {"unknown class \"unicorn\" in --classes", "cat, dog, car"});
  ssdtest::expect_error([&] { parse_class_filter(labels, "", "unicorn=0.5"); },
                        {"unicorn", "class-thresholds", "cat, dog, car"});
  for (const std::string bad : {"cat=2", "cat=x", "cat", "=0.5", "cat=0.5x", "cat=-0.1", "cat=nan", "cat=0,5", "cat=+", "cat=++1", "cat=+-0"})
    ssdtest::expect_error([&] { parse_class_filter(labels, "", bad); },
                          {"class-thresholds entry", "label=confidence"});
  EXPECT_FLOAT_EQ(parse_class_filter(labels, "", "cat=1e-1").threshold[0], 0.1f);
  EXPECT_FLOAT_EQ(parse_class_filter(labels, "", "cat=+.5").threshold[0], 0.5f);
  EXPECT_FLOAT_EQ(parse_class_filter(labels, "", "cat=1").threshold[0], 1.f);
  ssdtest::expect_error([&] { parse_class_filter(labels, "", "cat=0.1, dog=0.2, cat=0.9"); },
                        {"class-thresholds gives class \"cat\" two thresholds"});
  EXPECT_EQ(join_labels(labels, ","), "cat,dog,car");
  // As the output stage's per-class thresholds: each class's own, the global one, or dropped.
  EXPECT_TRUE(none.class_thresholds(0.3f, 3).empty());
  EXPECT_EQ(t.class_thresholds(0.3f, 3), (std::vector<float>{0.95f, 0.5f, 0.05f}));
  EXPECT_EQ(one.class_thresholds(0.3f, 3), (std::vector<float>{0.3f, 0.3f, 0.2f}));
  EXPECT_EQ(parse_class_filter(labels, "car, dog", "car=0.05").class_thresholds(0.3f, 3),
            (std::vector<float>{ClassFilter::kDropped, 0.3f, 0.05f}));
}
