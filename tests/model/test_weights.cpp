// Weights file: bit-exact round trip, Python-compatible layout, and clear errors for truncated,
// corrupt and mismatched files.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "error.h"
#include "safetensors.h"
#include "safetensors_header.h"
#include "ssd_model.h"
#include "test_util.h"
#include "weights.h"

using namespace ssd;
using ssdtest::expect_error;

namespace {
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}
}  // namespace

TEST(Weights, RoundTripIsBitExact) {
  auto dir = ssdtest::temp_dir("roundtrip");
  torch::manual_seed(11);
  Ssd model(ssdtest::tiny_config());
  {  // non-trivial BN statistics
    torch::NoGradGuard ng;
    for (auto& b : model->named_buffers())
      if (b.value().is_floating_point()) b.value().uniform_(0.5, 1.5);
  }
  const std::string path = dir / "m.safetensors";
  save_weights(path, model);
  EXPECT_EQ(read_weights_config(path), model->config());
  auto loaded = load_weights(path);
  EXPECT_EQ(loaded->config(), model->config());
  auto a = model->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  auto ab = model->named_buffers(), bb = loaded->named_buffers();
  ASSERT_EQ(ab.size(), bb.size());
  for (const auto& p : ab) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
  // Same bytes when written again.
  save_weights((dir / "again.safetensors").string(), loaded);
  EXPECT_EQ(slurp(path), slurp(dir / "again.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // Arranged for inference, it is not saved (the file would not load).
  loaded->fuse_for_inference();
  ssdtest::expect_error([&] { save_weights((dir / "fused.safetensors").string(), loaded); },
                        {"fused.safetensors", "not written", "fuse_for_inference()"});
  EXPECT_FALSE(std::filesystem::exists(dir / "fused.safetensors"));
}

TEST(Weights, PythonSafetensorsOpensItWithTheConfig) {
  SSD_NEED_PYTHON(ssdtest::test_python(), "torch safetensors");
  auto dir = ssdtest::temp_dir("python");
  Ssd model(ssdtest::tiny_config());
  const std::string path = dir / "m.safetensors";
  save_weights(path, model);
  const std::string script =
      "import json, sys\n"
      "from safetensors import safe_open\n"
      "f = safe_open(sys.argv[1], 'pt')\n"
      "c = json.loads(f.metadata()['ssd.config'])\n"
      "t = f.get_tensor('head.outs.0.oconv1.bias')\n"
      "assert c['labels'] == ['circle', 'square', 'triangle'], c\n"
      "assert abs(float(t[0]) + 4.0) < 1e-6, t\n"
      "print(len(list(f.keys())))\n";
  spit(dir / "check.py", script);
  const std::string cmd = ssdtest::test_python() + " " + (dir / "check.py").string() + " " + path +
                          " > " + (dir / "out.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const size_t n = model->named_parameters().size() + model->named_buffers().size();
  EXPECT_EQ(std::stoul(slurp(dir / "out.txt")), n);
}

TEST(Weights, TruncatedCorruptAndMismatchedFilesGiveClearErrors) {
  auto dir = ssdtest::temp_dir("corrupt");
  Ssd model(ssdtest::tiny_config());
  const std::string good = dir / "good.safetensors";
  save_weights(good, model);
  const std::string bytes = slurp(good);

  expect_error([&] { load_weights((dir / "missing.safetensors").string()); },
               {"missing.safetensors", "cannot open"});
  // A pipe (read as "truncated: 18446744073709551615 bytes"): a FIFO with a writer.
  const std::string fifo = dir / "fifo.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto old_handler = std::signal(SIGPIPE, SIG_IGN);   // (the reader may be gone when it writes)
  std::thread writer([&] { std::ofstream(fifo, std::ios::binary) << bytes.substr(0, 16); });
  expect_error([&] { load_weights(fifo); }, {"fifo.safetensors", "cannot seek in it: not a regular file"});
  writer.join();
  std::signal(SIGPIPE, old_handler);

  const std::string trunc = dir / "trunc.safetensors";
  spit(trunc, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_weights(trunc); }, {"trunc.safetensors", "truncated"});
  spit(trunc, bytes.substr(0, 5));
  expect_error([&] { load_weights(trunc); }, {"trunc.safetensors", "truncated"});

  const std::string garbage = dir / "garbage.safetensors";
  std::string g = bytes;
  for (size_t i = 8; i < 40; ++i) g[i] = '#';
  spit(garbage, g);
  expect_error([&] { load_weights(garbage); }, {"garbage.safetensors", "corrupt"});
  spit(garbage, std::string(4096, '\xff'));
  expect_error([&] { load_weights(garbage); }, {"garbage.safetensors", "not a safetensors"});
  // A header over safetensors' 100 MiB in a file that holds it (sparse): said so, not "does not
  // fit"; a pickle (PyTorch's legacy torch.save) named as one.
  {
    const uint64_t n = (100u << 20) + 1;
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    spit(garbage, len);
    std::filesystem::resize_file(garbage, n + 16);
  }
  expect_error([&] { load_weights(garbage); }, {"garbage.safetensors", "header length 104857601 is over the 104857600 bytes"});
  spit(garbage, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8", 12) + std::string(100, 'x'));
  expect_error([&] { load_weights(garbage); }, {"garbage.safetensors", "a Python pickle (PyTorch's legacy torch.save"});
  // (torch.save(..., _use_new_zipfile_serialization=False, pickle_protocol=N) for each protocol
  // that has the PROTO opcode, 2 to 5; 6 is no pickle's yet.)
  for (const char protocol : {'\x02', '\x03', '\x04', '\x05', '\x06'}) {
    SCOPED_TRACE(int(protocol));
    spit(garbage, std::string("\x80") + protocol + std::string("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8", 10) +
                      std::string(100, 'x'));
    expect_error([&] { load_weights(garbage); },
                 {"garbage.safetensors", protocol <= '\x05' ? "a Python pickle (PyTorch's legacy torch.save" : "does not fit"});
  }
  // ... but a safetensors header of 1152 (0x480) bytes starts with those bytes too: read.
  {
    std::string header = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    header.resize(1152, ' ');
    std::string len(8, '\0');
    len[0] = '\x80';
    len[1] = '\x04';
    spit(garbage, len + header + std::string(4, '\0'));
    EXPECT_EQ(read_safetensors(garbage).tensors.size(), 1u);
  }

  // A valid safetensors file without our metadata.
  const std::string plain = dir / "plain.safetensors";
  write_safetensors(plain, {{}, {{"x", torch::zeros({2})}}});
  expect_error([&] { load_weights(plain); }, {"plain.safetensors", "ssd.config"});

  // Right architecture in the metadata, wrong tensor shape: names the tensor and both shapes.
  auto c2 = ssdtest::tiny_config();
  c2.head_channels = 48;
  Ssd other(c2);
  SafeTensors mixed = read_safetensors(good);
  for (auto& [name, t] : mixed.tensors)
    if (name == "head.sconv0.conv.weight") t = other->named_parameters()[name];
  const std::string wrong = dir / "wrong.safetensors";
  write_safetensors(wrong, mixed);
  expect_error([&] { load_weights(wrong); },
               {"wrong.safetensors", "head.sconv0.conv.weight", "[48, 128, 3, 3]", "[32, 128, 3, 3]"});

  // Wrong dtype.
  SafeTensors halfed = read_safetensors(good);
  for (auto& [name, t] : halfed.tensors)
    if (name == "body.conv1.weight") t = t.to(torch::kHalf);
  write_safetensors(wrong, halfed);
  expect_error([&] { load_weights(wrong); }, {"body.conv1.weight", "dtype", "Half"});
  // Every tensor in half precision (a file converted to fp16): the dtype is named, not "truncated"
  // (the size check counted 4 bytes a weight).
  for (const auto type : {torch::kHalf, torch::kBFloat16}) {
    SafeTensors all = read_safetensors(good);
    for (auto& [name, t] : all.tensors)
      if (t.is_floating_point()) t = t.to(type);
    write_safetensors(wrong, all);
    expect_error([&] { load_weights(wrong); },
                 {"wrong.safetensors", "has dtype", "but the model expects Float (the weights are stored as float32"});
  }
  // Another version of the format: refused, named.
  SafeTensors later = read_safetensors(good);
  later.metadata[kFormatKey] = "gst-ssd/9";
  write_safetensors(wrong, later);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "its format is 'gst-ssd/9'", "reads 'gst-ssd/1'"});
  // A label ssddetect's classes could never name (ssd-train does not write one).
  auto unnameable = ssdtest::tiny_config();
  unnameable.labels.back() = "cat,dog";
  SafeTensors named = read_safetensors(good);
  named.metadata[kConfigKey] = unnameable.to_json_string();
  write_safetensors(wrong, named);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "\"cat,dog\" cannot be named in ssddetect's classes"});
  // A label with a terminal escape sequence (recolouring the terminal that printed it): refused,
  // and the message shows it escaped.
  unnameable.labels.back() = "red\x1b[31mcar";
  named.metadata[kConfigKey] = unnameable.to_json_string();
  write_safetensors(wrong, named);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "\"red\\x1b[31mcar\" cannot be named", "a control character"});

  // NaN or infinite values (a diverged training run's weights): named, refused.
  SafeTensors nan = read_safetensors(good);
  for (auto& [name, t] : nan.tensors)
    if (name == "head.sconv0.conv.weight") t = t.clone().index_put_({0, 0, 0, 0}, std::nanf(""));
  write_safetensors(wrong, nan);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "head.sconv0.conv.weight", "NaN"});

  // Missing and unexpected tensors.
  SafeTensors fewer = read_safetensors(good);
  fewer.tensors.pop_back();
  write_safetensors(wrong, fewer);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "missing"});
  SafeTensors more = read_safetensors(good);
  more.tensors.emplace_back("extra.weight", torch::zeros({1}));
  write_safetensors(wrong, more);
  expect_error([&] { load_weights(wrong); }, {"unexpected tensor 'extra.weight'"});

  // Corrupt configuration JSON and an impossible architecture.
  SafeTensors badcfg = read_safetensors(good);
  badcfg.metadata[kConfigKey] = "{\"body\": ";
  write_safetensors(wrong, badcfg);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "JSON"});
  auto j = ssdtest::tiny_config();
  j.body = "vgg16";
  badcfg.metadata[kConfigKey] = j.to_json_string();
  write_safetensors(wrong, badcfg);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "unknown body 'vgg16'"});

  // Offsets pointing past the data: rewrite one tensor's end offset in the header.
  std::string hdr = bytes;
  auto pos = hdr.find("\"data_offsets\":[0,");
  ASSERT_NE(pos, std::string::npos);
  hdr.replace(pos, 18, "\"data_offsets\":[9,");
  spit(wrong, hdr);
  expect_error([&] { load_weights(wrong); }, {"wrong.safetensors", "corrupt"});
}

TEST(Weights, LoadIntoChecksTheArchitecture) {
  auto dir = ssdtest::temp_dir("into");
  Ssd model(ssdtest::tiny_config());
  const std::string path = dir / "m.safetensors";
  save_weights(path, model);
  auto c = ssdtest::tiny_config();
  c.labels.push_back("star");
  Ssd other(c);
  expect_error([&] { load_weights_into(path, other); }, {"m.safetensors", "differs"});
  Ssd same(ssdtest::tiny_config());
  load_weights_into(path, same);
  EXPECT_TRUE(torch::equal(same->named_parameters()["head.sconv0.conv.weight"],
                           model->named_parameters()["head.sconv0.conv.weight"]));
}

// A model with the fine (stride-16) grid added, initialised from one without it, keeps that
// model's outputs for the shared grids; its fine-grid outputs come first and are new.
TEST(Weights, TransferIntoAFineGridModelKeepsTheOtherGridsOutputs) {
  auto dir = ssdtest::temp_dir("transfer");
  auto c = ssdtest::tiny_config();
  c.input_size = 96;              // stride 32: 3x3, stride 16: 6x6
  c.grids = {3, 2, 1};
  torch::manual_seed(5);
  Ssd coarse(c);
  {  // non-trivial BN statistics (small means, so that the ReLUs stay alive)
    torch::NoGradGuard ng;
    for (auto& b : coarse->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.1, 0.1);
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
    }
  }
  const std::string path = dir / "coarse.safetensors";
  save_weights(path, coarse);
  auto f = c;
  f.grids = {6, 3, 2, 1};
  ASSERT_TRUE(f.has_fine_grid());
  torch::manual_seed(6);
  Ssd fine(f);
  const TransferReport r = transfer_weights(path, fine);
  EXPECT_EQ(r.copied, static_cast<int>(coarse->parameters().size() + coarse->buffers().size()));
  EXPECT_GT(r.kept, 0);            // head.fine.* and head.fine_out.*
  EXPECT_EQ(r.unused, 0);
  for (const auto& p : fine->named_parameters()) {
    if (p.key().rfind("head.fine", 0) != 0) {
      EXPECT_TRUE(torch::equal(p.value(), coarse->named_parameters()[p.key()])) << p.key();
    }
  }
  coarse->eval();
  fine->eval();
  torch::manual_seed(7);
  auto x = torch::randn({2, 3, 96, 96});
  torch::NoGradGuard ng;
  auto [cc, cb] = coarse->forward(x);
  auto [fc, fb] = fine->forward(x);
  const int64_t n_fine = 6 * 6 * f.anchors_per_cell();
  ASSERT_EQ(fc.size(1), cc.size(1) + n_fine) << fc.sizes() << " vs " << cc.sizes();
  ASSERT_EQ(fc.size(1), f.num_anchors());
  EXPECT_TRUE(torch::allclose(fc.slice(1, n_fine), cc, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(fb.slice(1, n_fine), cb, 1e-5, 1e-6));
  // The fine grid sees the stride-16 features: changing one corner of the image changes the
  // fine outputs of the cells there more than those of the opposite corner (4.7x measured with
  // these seeds; the upsampled stride-32 path spreads some change everywhere).
  auto y = x.clone();
  y.slice(2, 0, 16).slice(3, 0, 16).add_(3.0);
  auto [yc, yb] = fine->forward(y);
  auto d = (yb - fb).abs().sum(2);      // (B, A)
  const int k = f.anchors_per_cell();
  EXPECT_GT(d.slice(1, 0, k).sum().item<double>(),
            2 * d.slice(1, n_fine - k, n_fine).sum().item<double>());
  // Round trip of the fine model and clear errors.
  const std::string fpath = dir / "fine.safetensors";
  save_weights(fpath, fine);
  auto loaded = load_weights(fpath);
  auto [lc, lb] = loaded->forward(x);
  EXPECT_TRUE(torch::equal(lc, fc));
}

// Fine-tuning to other classes: the class-logit rows move by class name (per anchor), the
// background's too; a class the file lacks keeps its initialisation; everything else is copied.
TEST(Weights, TransferToOtherClassesCopiesClassOutputsByName) {
  auto dir = ssdtest::temp_dir("transfer-classes");
  auto c = ssdtest::tiny_config();
  c.labels = {"cat", "dog", "bird"};
  torch::manual_seed(11);
  Ssd src(c);
  const std::string path = dir / "animals.safetensors";
  save_weights(path, src);
  auto d = c;
  d.labels = {"bird", "fish", "cat"};   // bird, cat from the file (other places), fish new, dog left out
  torch::manual_seed(12);
  Ssd dst(d);
  const auto before = dst->named_parameters().find("head.outs.0.oconv1.weight")->clone();
  const TransferReport r = transfer_weights(path, dst);
  EXPECT_EQ(r.kept, 0);
  EXPECT_EQ(r.unused, 0);
  EXPECT_EQ(r.classes_copied, (std::vector<std::string>{"bird", "cat"}));
  EXPECT_EQ(r.classes_new, (std::vector<std::string>{"fish"}));
  EXPECT_EQ(r.classes_dropped, (std::vector<std::string>{"dog"}));
  EXPECT_EQ(r.class_convs, static_cast<int>(c.grids.size()));
  EXPECT_EQ(r.class_convs_copied, r.class_convs);
  auto sp = src->named_parameters(), dp = dst->named_parameters();
  int class_convs = 0;
  for (const auto& p : dp) {
    const torch::Tensor& s = sp[p.key()];
    if (p.key().find(".oconv1.") == std::string::npos) {
      EXPECT_TRUE(torch::equal(p.value(), s)) << p.key();
      continue;
    }
    ++class_convs;
    const int64_t k = c.anchors_per_cell();
    ASSERT_EQ(s.size(0), k * 4) << p.key();
    ASSERT_EQ(p.value().size(0), k * 4) << p.key();
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_TRUE(torch::equal(p.value()[j * 4 + 0], s[j * 4 + 2])) << p.key() << " anchor " << j << ": bird";
      EXPECT_TRUE(torch::equal(p.value()[j * 4 + 2], s[j * 4 + 0])) << p.key() << " anchor " << j << ": cat";
      EXPECT_TRUE(torch::equal(p.value()[j * 4 + 3], s[j * 4 + 3])) << p.key() << " anchor " << j << ": background";
    }
  }
  EXPECT_EQ(class_convs, 2 * static_cast<int>(c.grids.size()));   // weight and bias of each grid's
  // fish (row 1 of each anchor) kept the model's initialisation.
  const auto& w = dp["head.outs.0.oconv1.weight"];
  for (int64_t j = 0; j < c.anchors_per_cell(); ++j) EXPECT_TRUE(torch::equal(w[j * 4 + 1], before[j * 4 + 1]));
  // The model's outputs for a shared class are the file's model's (same input, eval mode).
  src->eval();
  dst->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({1, 3, c.input_size, c.input_size});
  auto [sc, sb] = src->forward(x);
  auto [dc, db] = dst->forward(x);
  EXPECT_TRUE(torch::allclose(dc.select(2, 2), sc.select(2, 0)));   // cat
  EXPECT_TRUE(torch::allclose(dc.select(2, 0), sc.select(2, 2)));   // bird
  EXPECT_TRUE(torch::allclose(dc.select(2, 3), sc.select(2, 3)));   // background
  EXPECT_TRUE(torch::equal(db, sb));
  // Another anchor count: the class convolutions do not fit and keep the model's.
  auto e = d;
  e.ratios = {{1.0, 1.0}};
  Ssd other(e);
  const TransferReport r2 = transfer_weights(path, other);
  EXPECT_GT(r2.kept, 0);
  EXPECT_EQ(r2.class_convs_copied, 0);   // (so the classes did not carry over, whatever their names)
  EXPECT_EQ(r2.class_convs, static_cast<int>(c.grids.size()));
  // Another head width, the same anchors: neither the class convolutions' weights nor their
  // biases (a bias goes with its weight) are taken.
  auto wide = d;
  wide.head_channels = c.head_channels * 2;
  Ssd wide_model(wide);
  const auto bias_before = wide_model->named_parameters()["head.outs.0.oconv1.bias"].clone();
  const TransferReport r3 = transfer_weights(path, wide_model);
  EXPECT_EQ(r3.class_convs_copied, 0);
  EXPECT_TRUE(torch::equal(wide_model->named_parameters()["head.outs.0.oconv1.bias"], bias_before));
  // An fp16 file fills an fp32 model (its values converted).
  src->to(torch::kHalf);
  const std::string half_path = dir / "animals-fp16.safetensors";
  save_weights(half_path, src);
  torch::manual_seed(13);
  Ssd from_half(d);
  const TransferReport r4 = transfer_weights(half_path, from_half);
  EXPECT_EQ(r4.class_convs_copied, r4.class_convs);
  EXPECT_TRUE(torch::equal(from_half->named_parameters()["body.conv1.weight"],
                           src->named_parameters()["body.conv1.weight"].to(torch::kFloat)));
}


// Into a model of fewer or more classes than the file's: each anchor's background row is the
// file's background row (the last of its anchor's), and the shared classes' rows come by name.
TEST(Weights, TransferToFewerOrMoreClassesTakesTheFilesBackgroundRow) {
  auto dir = ssdtest::temp_dir("transfer-background");
  auto c = ssdtest::tiny_config();
  c.labels = {"cat", "dog", "bird"};
  torch::manual_seed(21);
  Ssd src(c);
  const std::string path = dir / "animals.safetensors";
  save_weights(path, src);
  const int64_t k = c.anchors_per_cell(), ns = 4;
  for (const auto& labels : {std::vector<std::string>{"dog"}, std::vector<std::string>{"fish", "bird", "cat", "dog", "owl"}}) {
    SCOPED_TRACE(std::to_string(labels.size()) + " classes");
    auto d = c;
    d.labels = labels;
    torch::manual_seed(22);
    Ssd dst(d);
    const TransferReport r = transfer_weights(path, dst);
    EXPECT_EQ(r.class_convs_copied, r.class_convs);
    const int64_t nd = static_cast<int64_t>(labels.size()) + 1;
    auto sp = src->named_parameters(), dp = dst->named_parameters();
    for (const char* name : {"head.outs.0.oconv1.weight", "head.outs.0.oconv1.bias"}) {
      const torch::Tensor& from = sp[name];
      const torch::Tensor& to = dp[name];
      ASSERT_EQ(to.size(0), k * nd) << name;
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_TRUE(torch::equal(to[j * nd + nd - 1], from[j * ns + ns - 1])) << name << " anchor " << j << ": background";
        for (int64_t i = 0; i + 1 < nd; ++i) {
          const auto it = std::find(c.labels.begin(), c.labels.end(), labels[static_cast<size_t>(i)]);
          if (it == c.labels.end()) continue;
          EXPECT_TRUE(torch::equal(to[j * nd + i], from[j * ns + (it - c.labels.begin())]))
              << name << " anchor " << j << ": " << *it;
        }
      }
    }
  }
}

// Sizes and offsets in a safetensors header must be non-negative JSON integers whose byte
// counts cannot overflow (fuzz/fuzz_safetensors.cpp found 2.4e58 as an offset converted with
// undefined behaviour); every refusal is an ssd::Error naming the file.
// A header or configuration nested 100,000 levels deep (200 KB) is an error naming the file, not
// a stack overflow in nlohmann's recursive copy or dump.
TEST(Weights, DeeplyNestedJsonIsAnError) {
  auto dir = ssdtest::temp_dir("deep-json");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto header_file = [](const std::string& path, const std::string& h) {
    std::string b(8, '\0');
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    spit(path, b + h);
  };
  const std::string in_header = dir / "deep-header.safetensors";
  header_file(in_header, R"({"t":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,0]},"u":1})");
  expect_error([&] { read_safetensors(in_header); }, {"deep-header.safetensors", "nested deeper than 64"});
  expect_error([&] { load_weights(in_header); }, {"deep-header.safetensors", "nested deeper than 64"});

  SsdConfig c = ssdtest::tiny_config();
  std::string config = c.to_json_string();
  const std::string size = "\"input_size\":" + std::to_string(c.input_size);
  ASSERT_NE(config.find(size), std::string::npos) << config;
  config.replace(config.find(size), size.size(), "\"input_size\":" + deep);
  const std::string in_config = dir / "deep-config.safetensors";
  header_file(in_config, nlohmann::json{{"__metadata__", {{kConfigKey, config}, {kFormatKey, kFormatValue}}}}.dump());
  expect_error([&] { load_weights(in_config); }, {"deep-config.safetensors", "nested deeper than 64"});
}

// A small file whose configuration describes a huge model (ResNet-50 body, 4096 head channels at
// 4096 px: gigabytes of weights) is refused before the model is built; it peaked at 4.7 GB of
// memory before saying a tensor was missing. A grid repeated is refused (100,000 of them took
// 920 MB).
TEST(Weights, ASmallFileCannotDescribeAHugeModel) {
  auto dir = ssdtest::temp_dir("huge-config");
  SsdConfig c;
  c.body = "resnet50";
  c.input_size = 4096;
  c.head_channels = 4096;
  c.grids = {1};
  c.labels = {"a"};
  ASSERT_NO_THROW(c.validate());
  EXPECT_GT(c.min_parameters(), int64_t{900} * 1000 * 1000);
  const std::string path = dir / "huge.safetensors";
  SafeTensors content;
  content.metadata[kConfigKey] = c.to_json_string();
  content.metadata[kFormatKey] = kFormatValue;
  write_safetensors(path, content);
  expect_error([&] { load_weights(path); }, {"huge.safetensors", "tensors hold 0 values", "truncated or its configuration corrupt"});
  c.grids = {2, 1, 1};
  expect_error([&] { c.validate(); }, {"strictly decreasing", "grids[1] = 1, grids[2] = 1"});
  // The bound is a floor a real file passes: the shipped-size tiny model's file loads.
  Ssd model(ssdtest::tiny_config());
  save_weights((dir / "tiny.safetensors").string(), model);
  EXPECT_NO_THROW(load_weights((dir / "tiny.safetensors").string()));
}

TEST(Weights, HeaderNumbersAreReadStrictly) {
  auto dir = ssdtest::temp_dir("header-numbers");
  const std::string path = dir / "h.safetensors";
  auto file = [&](const std::string& entry, size_t data_bytes) {
    const std::string h = "{\"t\":" + entry + "}";
    std::string b(8, '\0');
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    spit(path, b + h + std::string(data_bytes, '\x01'));
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> bad = {
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8.0]})", {"non-negative integers", "8.0"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,2.42e58]})", {"non-negative integers"}},
      {R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})", {"non-negative integers", "2.5"}},
      {R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", {"non-negative integers", "-2"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", {"data_offsets", "2 entries"}},
      {R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})", {"shape is not an array"}},
      {R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})", {"out of range"}},
      // 2^32 x 2^32 x 4 bytes wraps a 64-bit byte count to 0.
      {R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})", {"too large"}},
  };
  for (const auto& [entry, words] : bad) {
    SCOPED_TRACE(entry);
    file(entry, 8);
    try {
      read_safetensors(path);
      ADD_FAILURE() << "accepted";
    } catch (const ssd::Error& e) {
      EXPECT_NE(std::string(e.what()).find("h.safetensors"), std::string::npos) << e.what();
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  }
  // Good ones: a plain tensor, and an empty one whose other dimension is huge.
  file(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8);
  EXPECT_EQ(read_safetensors(path).tensors.at(0).second.numel(), 2);
  file(R"({"dtype":"F32","shape":[4611686018427387904,0],"data_offsets":[0,0]})", 0);
  EXPECT_EQ(read_safetensors(path).tensors.at(0).second.numel(), 0);
  // An empty tensor at the offset where a full one starts tiles the data in either order.
  file(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"I8","shape":[0],"data_offsets":[0,0]})", 8);
  const auto h = read_safetensors_header(path);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "t");
  EXPECT_EQ(h.tensors[0].elements(), 2u);
  EXPECT_EQ(h.tensors[1].dtype, "I8");
  EXPECT_EQ(h.data_size, 8u);
  EXPECT_EQ(read_safetensors(path).tensors.size(), 2u);
  // The tensors tile the data section, as the format requires: two that share bytes (a tensor's
  // weights aliased by another's), a hole between them, or bytes after the last are corruption.
  const std::vector<std::tuple<std::string, size_t, std::vector<std::string>>> untiled = {
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})", 12,
       {"'u' starts at byte 4 where 8 was expected", "overlap or hole"}},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]},"u":{"dtype":"F32","shape":[1],"data_offsets":[8,12]})", 12,
       {"'u' starts at byte 8 where 4 was expected", "overlap or hole"}},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})", 8, {"'t' starts at byte 4 where 0 was expected"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 12, {"4 trailing bytes after the last tensor"}},
  };
  for (const auto& [entry, bytes, words] : untiled) {
    SCOPED_TRACE(entry);
    file(entry, bytes);
    try {
      read_safetensors(path);
      ADD_FAILURE() << "accepted";
    } catch (const ssd::Error& e) {
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  }
}
