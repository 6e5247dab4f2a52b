// Cross-checks against code nobody here wrote: torchvision's resnet34, box_iou and nms
// (Debian's python3-torchvision), run by tests/model/reference.py.
#include <gtest/gtest.h>

#include <torch/types.h>

#include "anchors.h"
#include "boxes.h"
#include "nms.h"
#include "safetensors.h"
#include "ssd_model.h"
#include "test_util.h"
#include "weights.h"

using namespace ssd;

namespace {
std::map<std::string, torch::Tensor> as_map(const SafeTensors& s) {
  return {s.tensors.begin(), s.tensors.end()};
}
// What tests/model/reference.py imports.
const char* const kReferenceModules = "torch torchvision safetensors";
void run_reference(const std::string& args) {
  const std::string cmd = ssdtest::test_python() + " " + ssdtest::source_dir() +
                          "/tests/model/reference.py " + args;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "reference failed: " << cmd;
}
double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}
}  // namespace

class ResNetReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ssdtest::TestDir("ssd-test-resnet-ref");
    if (ssdtest::missing_python_modules(ssdtest::test_python(), kReferenceModules).empty())
      run_reference("resnet " + dir_->string());
  }
  void SetUp() override { SSD_NEED_PYTHON(ssdtest::test_python(), kReferenceModules); }
  static void TearDownTestSuite() {
    delete dir_;   // (null where SetUpTestSuite threw: TMPDIR could not be written)
    dir_ = nullptr;
  }
  void check(const std::string& weights_file, bool fold = false) {
    SsdConfig c;
    c.body = "resnet34";
    c.labels = {"x"};
    Ssd model(c);
    const int imported = import_imagenet_body((*dir_ / weights_file).string(), model);
    // Every body parameter and BN statistic (num_batches_tracked may be absent), no fc.
    int expected = 0;
    for (const auto& b : model->body->named_buffers())
      if (b.key().find("num_batches_tracked") == std::string::npos) ++expected;
    expected += static_cast<int>(model->body->named_parameters().size());
    EXPECT_GE(imported, expected);
    model->eval();
    if (fold) {
      const int64_t batchnorms = count_batchnorms(*model->body);
      EXPECT_EQ(batchnorms, 36);
      const size_t tensors = model->body->named_parameters().size();
      EXPECT_EQ(model->fold_batchnorm(), batchnorms);
      EXPECT_TRUE(model->body->folded());
      EXPECT_EQ(count_batchnorms(*model->body), 0);
      // Each BatchNorm's weight and bias became its convolution's bias.
      EXPECT_EQ(model->body->named_parameters().size(), tensors - batchnorms);
      EXPECT_EQ(model->body->named_buffers().size(), 0u);
    }
    auto io = as_map(read_safetensors((*dir_ / "resnet34_io.safetensors").string()));
    torch::NoGradGuard ng;
    auto ours = model->body->forward(io["input"]);
    ASSERT_EQ(ours.sizes(), io["features"].sizes());
    const double err = rel_error(ours, io["features"]);
    std::cout << "resnet34 features relative error vs torchvision (" << weights_file
              << (fold ? ", BatchNorms folded" : "") << "): " << err << "\n";
    EXPECT_LT(err, 1e-5);
    if (fold) {   // inference only from now on
      model->train();
      ssdtest::expect_error([&] { model->body->forward(io["input"]); },
                            {"folded", "training mode"});
    }
  }
  static int64_t count_batchnorms(torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& child : m.modules(false)) n += child->as<torch::nn::BatchNorm2dImpl>() != nullptr;
    return n;
  }
  static ssdtest::TestDir* dir_;
};
ssdtest::TestDir* ResNetReference::dir_ = nullptr;

TEST_F(ResNetReference, FeaturesEqualTorchvisionFromTorchSave) { check("resnet34.pt"); }
TEST_F(ResNetReference, FeaturesEqualTorchvisionFromSafetensors) { check("resnet34.safetensors"); }
// ssd::Detector folds the BatchNorms into the convolutions: still torchvision's features.
TEST_F(ResNetReference, FoldedBatchNormsGiveTorchvisionsFeatures) {
  check("resnet34.safetensors", /*fold=*/true);
}

// torch.save(model.state_dict()) as most users write it: an OrderedDict, which LibTorch's
// unpickler cannot build; the error says how to save the file instead (it blamed PyTorch).
TEST_F(ResNetReference, AnOrderedDictFileSaysHowToSaveIt) {
  SsdConfig c;
  c.body = "resnet34";
  c.labels = {"x"};
  Ssd model(c);
  ssdtest::expect_error([&] { import_imagenet_body((*dir_ / "resnet34_ordered.pt").string(), model); },
                        {"resnet34_ordered.pt", "torch.save(dict(model.state_dict()), PATH)", ".safetensors"});
}

TEST_F(ResNetReference, ImportRejectsAMismatchedBody) {
  SsdConfig c;
  c.body = "resnet50";
  c.labels = {"x"};
  Ssd model(c);
  ssdtest::expect_error(
      [&] { import_imagenet_body((*dir_ / "resnet34.safetensors").string(), model); },
      {"resnet34.safetensors", "resnet50"});
}

TEST(OpsReference, IoUAndNmsEqualTorchvision) {
  SSD_NEED_PYTHON(ssdtest::test_python(), kReferenceModules);
  auto dir = ssdtest::temp_dir("ops-ref");
  auto g = at::detail::createCPUGenerator(99);
  // Clustered boxes so NMS has real work at every threshold.
  const int64_t n = 300;
  auto centres = torch::rand({n / 10, 2}, g).repeat_interleave(10, 0) +
                 torch::randn({n, 2}, g) * 0.03;
  auto wh = torch::rand({n, 2}, g) * 0.2 + 0.05;
  auto a = torch::cat({centres - wh / 2, centres + wh / 2}, 1);
  auto b = torch::cat({torch::rand({50, 2}, g), torch::rand({50, 2}, g) + 1}, 1);
  auto scores = torch::rand({n}, g);
  const std::vector<double> thresholds = {0.3, 0.45, 0.5, 0.7};
  const std::string in = dir / "in.safetensors", out = dir / "out.safetensors";
  write_safetensors(in, {{{"thresholds", "0.3,0.45,0.5,0.7"}},
                         {{"boxes_a", a}, {"boxes_b", b}, {"scores", scores}}});
  run_reference("ops " + in + " " + out);
  auto ref = as_map(read_safetensors(out));
  EXPECT_TRUE(torch::allclose(box_iou(a, b), ref["iou"], 1e-5, 1e-6));
  for (size_t i = 0; i < thresholds.size(); ++i) {
    auto expect = ref["nms_" + std::to_string(i)];
    for (auto keep : {nms(a, scores, thresholds[i]), nms_fixed_point(a, scores, thresholds[i])}) {
      EXPECT_TRUE(torch::equal(keep, expect))
          << "threshold " << thresholds[i] << ": " << keep.size(0) << " vs " << expect.size(0);
      EXPECT_LT(keep.size(0), n);
    }
  }
}

// The output stage gives torchvision's batched_nms over every (anchor, class) pair above the
// threshold, the most confident max_detections: also where NMS leaves fewer than that among its
// first pre_nms_top_k candidates (ssddetect and predict gave 77 detections of the 100 asked for
// at threshold 0 and NMS IoU 0.2, while more survived) and above 4096 detections (they gave 4096
// at most); the fixed-shape stage (CUDA's) says such an image has not converged, so that the
// caller runs postprocess(). With class_agnostic, torchvision's nms over the same pairs.
TEST(OpsReference, OutputStageIsBatchedNmsOverEveryPassingPair) {
  SSD_NEED_PYTHON(ssdtest::test_python(), kReferenceModules);
  auto dir = ssdtest::temp_dir("output-ref");
  SsdConfig c;
  c.labels = {"a", "b", "c", "d", "e"};
  c.grids = {10, 5, 3, 2, 1};   // the shipped model's: 1251 anchors, 6255 pairs
  const Anchors anchors = make_anchors(c);
  const int64_t A = anchors.size(), C = 5;
  ASSERT_GT(A * C, 4096);
  auto g = at::detail::createCPUGenerator(7);
  // Scores (A, C) all different, a random order of (1 ... A*C) / (A*C + 1) (no ties, whose
  // order NMS leaves open), the highest on the large anchors of the coarse grids (the last 126),
  // which overlap: many candidates that NMS leaves few of, as around objects.
  const int64_t N = A * C, coarse = 126 * C;
  auto rank = torch::cat({torch::randperm(N - coarse, g), torch::randperm(coarse, g) + (N - coarse)});
  auto p = (rank.to(torch::kFloat64) + 1) / (N + 1);
  auto cls = torch::zeros({1, A, C + 1});
  cls[0].narrow(1, 0, C).copy_((p.log() - (-p).log1p()).view({A, C}));
  auto act = torch::randn({1, A, 4}, g) * 0.5;
  const auto boxes = activations_to_boxes(act, anchors).clamp(0, 1)[0].contiguous();
  const auto scores = torch::sigmoid(cls.narrow(2, 0, C))[0].contiguous();
  struct Case {
    double threshold, iou;
    int most;
    bool fixed_final;   // postprocess_fixed's rows are final (converged)
    bool agnostic = false;   // NMS across classes (torchvision's nms)
  };
  // Every pair passes in the first two, and every pair survives NMS in the second; the last two
  // suppress across classes, the first of them past the first 100 candidates.
  const std::vector<Case> cases = {{0.0, 0.2, 100, false}, {0.0, 1.0, 100000, false}, {0.3, 0.45, 10, true},
                                   {0.0, 0.2, 100, false, true}, {0.3, 0.45, 10, true, true}};
  std::string meta;
  for (const Case& k : cases)
    meta += (meta.empty() ? "" : ";") + std::to_string(k.threshold) + " " + std::to_string(k.iou) + " " +
            std::to_string(k.most) + " " + std::to_string(int(k.agnostic));
  const std::string in = dir / "in.safetensors", out = dir / "out.safetensors";
  write_safetensors(in, {{{"cases", meta}}, {{"boxes", boxes}, {"scores", scores}}});
  run_reference("output " + in + " " + out);
  auto ref = as_map(read_safetensors(out));
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("threshold " + std::to_string(cases[i].threshold) + " iou " + std::to_string(cases[i].iou) +
                 " max " + std::to_string(cases[i].most) + (cases[i].agnostic ? " across classes" : ""));
    PostprocessOptions o;
    o.score_threshold = cases[i].threshold;
    o.nms_iou = cases[i].iou;
    o.class_agnostic = cases[i].agnostic;
    o.max_detections = cases[i].most;
    o.pre_nms_top_k = 100;
    const auto labels = ref["labels_" + std::to_string(i)];
    const auto d = postprocess(cls, act, anchors, o)[0];
    ASSERT_EQ(d.scores.size(0), labels.size(0));
    ASSERT_EQ(std::get<0>(at::_unique(d.scores)).size(0), d.scores.size(0)) << "tied scores";
    EXPECT_TRUE(torch::equal(d.labels, labels));
    EXPECT_TRUE(torch::equal(d.scores, ref["scores_" + std::to_string(i)]));
    EXPECT_TRUE(torch::allclose(d.boxes, ref["boxes_" + std::to_string(i)], 0, 1e-6));
    if (cases[i].most > 1024) continue;   // (k x k matrices: the fixed stage takes up to 1024 candidates)
    const auto f = postprocess_fixed(cls, act, anchors, o, 64);
    EXPECT_EQ(f.converged[0].item<bool>(), cases[i].fixed_final);
  }
  // NMS over the first case's 100 candidates alone leaves fewer than 100 (the case tests the
  // pairs past them).
  const auto top = std::get<1>(scores.reshape(-1).topk(100));
  EXPECT_LT(batched_nms(boxes.index_select(0, top.div(C, "floor")), scores.reshape(-1).index_select(0, top),
                        top.remainder(C), 0.2).size(0), 100);
}
