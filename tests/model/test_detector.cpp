// The LibTorch-free Detector: every pixel format and stride gives the model the same picture.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <atomic>
#include <thread>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include "blas_check.h"
#include "cpu_workers.h"
#include "detector.h"
#include "error.h"
#include "exit_gate.h"
#include "host_buffer.h"
#include "shared_detector.h"
#include "ssd_model.h"
#include "test_util.h"
#include "weights.h"

using namespace ssd;

namespace {

struct Rgb {
  int w, h;
  std::vector<uint8_t> px;   // tight RGB
};

// A smooth random picture (chroma subsampling then loses little).
Rgb make_picture(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  Rgb p{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  double f[3][2];
  for (auto& c : f) {
    c[0] = 1 + rng() % 5;
    c[1] = 1 + rng() % 5;
  }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        p.px[(size_t(y) * w + x) * 3 + c] = static_cast<uint8_t>(
            127.5 + 100 * std::sin(f[c][0] * x / w * 3.1 + c) * std::cos(f[c][1] * y / h * 2.9));
  return p;
}

// Packs the picture in a packed format with `pad` extra bytes per row.
std::vector<uint8_t> pack(const Rgb& p, PixelFormat f, int pad, int* stride) {
  int bpp = 3, ro = 0, go = 1, bo = 2;
  switch (f) {
    case PixelFormat::RGB: break;
    case PixelFormat::BGR: ro = 2; bo = 0; break;
    case PixelFormat::RGBx: case PixelFormat::RGBA: bpp = 4; break;
    case PixelFormat::BGRx: case PixelFormat::BGRA: bpp = 4; ro = 2; bo = 0; break;
    case PixelFormat::xRGB: bpp = 4; ro = 1; go = 2; bo = 3; break;
    case PixelFormat::xBGR: bpp = 4; ro = 3; go = 2; bo = 1; break;
    default: ADD_FAILURE();
  }
  *stride = p.w * bpp + pad;
  std::vector<uint8_t> out(size_t(*stride) * p.h, 77);
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      const uint8_t* s = &p.px[(size_t(y) * p.w + x) * 3];
      uint8_t* d = &out[size_t(y) * *stride + x * bpp];
      d[ro] = s[0]; d[go] = s[1]; d[bo] = s[2];
    }
  return out;
}

// NV12's chroma plane: U and V interleaved.
std::vector<uint8_t> interleave(const std::vector<uint8_t>& u, const std::vector<uint8_t>& v) {
  std::vector<uint8_t> uv(u.size() * 2);
  for (size_t i = 0; i < u.size(); ++i) {
    uv[2 * i] = u[i];
    uv[2 * i + 1] = v[i];
  }
  return uv;
}

// BT.601 limited-range 4:2:0 planes: Y, then U and V (chroma of 2x2 block averages).
void to_yuv420(const Rgb& p, std::vector<uint8_t>& Y, std::vector<uint8_t>& U,
               std::vector<uint8_t>& V) {
  const int cw = (p.w + 1) / 2, ch = (p.h + 1) / 2;
  Y.assign(size_t(p.w) * p.h, 0);
  U.assign(size_t(cw) * ch, 0);
  V.assign(size_t(cw) * ch, 0);
  std::vector<double> su(U.size()), sv(V.size()), n(U.size());
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      const uint8_t* s = &p.px[(size_t(y) * p.w + x) * 3];
      const double r = s[0] / 255.0, g = s[1] / 255.0, b = s[2] / 255.0;
      const double yy = 0.299 * r + 0.587 * g + 0.114 * b;
      Y[size_t(y) * p.w + x] = static_cast<uint8_t>(std::lround(16 + 219 * yy));
      const size_t ci = size_t(y / 2) * cw + x / 2;
      su[ci] += (b - yy) / 1.772;
      sv[ci] += (r - yy) / 1.402;
      n[ci] += 1;
    }
  for (size_t i = 0; i < U.size(); ++i) {
    U[i] = static_cast<uint8_t>(std::lround(128 + 224 * su[i] / n[i]));
    V[i] = static_cast<uint8_t>(std::lround(128 + 224 * sv[i] / n[i]));
  }
}

// n pictures (seeds seed, seed + 1, ...) of width w0 + dw * i and height h, packed in a packed
// format with `pad` extra bytes per row; the views point into the buffers.
struct Frames {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<FrameView> views;
};
Frames packed_frames(int n, int w0, int dw, int h, uint32_t seed, PixelFormat format, int pad) {
  Frames f;
  for (int i = 0; i < n; ++i) {
    const auto pic = make_picture(w0 + dw * i, h, seed + static_cast<uint32_t>(i));
    int stride = 0;
    f.bufs.push_back(pack(pic, format, pad, &stride));
    f.views.push_back(FrameView{format, pic.w, h, {f.bufs.back().data()}, {stride}, {}});
  }
  return f;
}

class DetectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ssdtest::TestDir("ssd-test-detector");
    torch::manual_seed(5);
    auto c = ssdtest::tiny_config();
    c.class_bias = 0.0;   // random weights: plenty of candidate detections
    Ssd model(c);
    // Random BN statistics so the untrained model's outputs depend on the picture.
    torch::NoGradGuard ng;
    for (auto& b : model->named_buffers())
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    save_weights((*dir_ / "random.safetensors").string(), model);
  }
  static void TearDownTestSuite() {
    delete dir_;   // (null where SetUpTestSuite threw: TMPDIR could not be written)
    dir_ = nullptr;
  }
  static DetectorOptions options() {
    DetectorOptions o;
    o.model_path = (*dir_ / "random.safetensors").string();
    o.device = "cpu";
    o.threshold = 0.0f;
    o.max_detections = 20;
    return o;
  }
  // A shared instance of the model whose batches of up to 4 frames wait up to 1 s for more.
  static SharedDetectorOptions waiting_shared_options() {
    SharedDetectorOptions o;
    o.detector = options();
    o.max_batch = 4;
    o.max_wait = std::chrono::seconds(1);
    return o;
  }
  // Two holders a and b of the instance `id` (batches of up to 4, a 1 s wait), one 160x120 RGB
  // frame, and the seconds since a time: what the tests of a batch's wait use.
  struct TwoStreams {
    explicit TwoStreams(const std::string& id)
        : a(SharedDetector::acquire(id, waiting_shared_options())),
          b(SharedDetector::acquire(id, waiting_shared_options())),
          f(packed_frames(1, 160, 0, 120, 3, PixelFormat::RGB, 0)) {}
    std::vector<Detection> a_detects() { return a->detect(f.views[0], 0.f, 20); }
    std::vector<Detection> b_detects() { return b->detect(f.views[0], 0.f, 20); }
    static double seconds_since(std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    }
    std::shared_ptr<SharedDetector> a, b;
    Frames f;
  };
  // Each frame's detections by a plain detector, one frame at a time: what the other paths of
  // the Detector must give.
  static std::vector<std::vector<Detection>> one_by_one(const std::vector<FrameView>& frames) {
    Detector plain(options());
    std::vector<std::vector<Detection>> expect;
    for (const auto& f : frames) expect.push_back(plain.detect(f));
    return expect;
  }
  static ssdtest::TestDir* dir_;
};
ssdtest::TestDir* DetectorTest::dir_ = nullptr;

void expect_same(const std::vector<Detection>& a, const std::vector<Detection>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].label_id, b[i].label_id) << i;
    EXPECT_NEAR(a[i].confidence, b[i].confidence, tol) << i;
    EXPECT_NEAR(a[i].x_min, b[i].x_min, tol) << i;
    EXPECT_NEAR(a[i].y_max, b[i].y_max, tol) << i;
  }
}

// Detections per stream, per frame.
using StreamDetections = std::vector<std::vector<std::vector<Detection>>>;

// Each stream's frames sent to the shared instance `id` from a thread of its own, through a
// holder of its own (as each ssddetect element holds it: a batch waits for more frames only while
// fewer wait than the instance has holders), at the stream's threshold, count and class
// thresholds.
StreamDetections send_streams(const std::string& id, const SharedDetectorOptions& o, const std::vector<Frames>& frames,
                              const std::vector<float>& thresholds, const std::vector<int>& counts,
                              const std::vector<std::vector<float>>& class_thresholds) {
  const size_t n = frames.size();
  StreamDetections got(n);
  std::vector<std::shared_ptr<SharedDetector>> held(n);
  for (size_t s = 0; s < n; ++s) held[s] = SharedDetector::acquire(id, o);
  std::vector<std::thread> streams;
  for (size_t s = 0; s < n; ++s)
    streams.emplace_back([&, s] {
      for (const auto& f : frames[s].views)
        got[s].push_back(held[s]->detect(f, thresholds[s], counts[s], class_thresholds[s]));
    });
  for (auto& t : streams) t.join();
  return got;
}

void expect_streams_same(const StreamDetections& got, const StreamDetections& expect, float tol) {
  ASSERT_EQ(got.size(), expect.size());
  for (size_t s = 0; s < got.size(); ++s) {
    ASSERT_EQ(got[s].size(), expect[s].size()) << "stream " << s;
    for (size_t i = 0; i < got[s].size(); ++i) {
      SCOPED_TRACE("stream " + std::to_string(s) + " frame " + std::to_string(i));
      expect_same(got[s][i], expect[s][i], tol);
    }
  }
}

// cuDNN's TF32 convolutions (LibTorch's default on Ampere and newer GPUs) round products to
// 10-bit mantissas: the fp32 comparisons with the CPU, or across batch sizes (for which cuDNN may
// choose other kernels), run without them.
class NoTf32 {
 public:
  NoTf32() : was_(at::globalContext().allowTF32CuDNN()) { at::globalContext().setAllowTF32CuDNN(false); }
  ~NoTf32() { at::globalContext().setAllowTF32CuDNN(was_); }

 private:
  bool was_;
};

}  // namespace

TEST_F(DetectorTest, PackedFormatsAndStridesGiveIdenticalResults) {
  Detector det(options());
  EXPECT_EQ(det.device_name(), "cpu");
  EXPECT_EQ(det.labels().size(), 3u);
  for (auto [w, h] : {std::pair{641, 479}, std::pair{224, 224}, std::pair{1280, 720}}) {
    auto pic = make_picture(w, h, 7);
    int stride = 0;
    auto rgb = pack(pic, PixelFormat::RGB, 0, &stride);
    FrameView ref;
    ref.format = PixelFormat::RGB;
    ref.width = w;
    ref.height = h;
    ref.planes[0] = rgb.data();
    ref.strides[0] = stride;
    auto expect = det.detect(ref);
    ASSERT_FALSE(expect.empty());
    for (auto f : {PixelFormat::RGB, PixelFormat::BGR, PixelFormat::RGBx, PixelFormat::BGRx,
                   PixelFormat::xRGB, PixelFormat::xBGR, PixelFormat::RGBA, PixelFormat::BGRA}) {
      for (int pad : {0, 13, 64}) {
        auto buf = pack(pic, f, pad, &stride);
        FrameView v = ref;
        v.format = f;
        v.planes[0] = buf.data();
        v.strides[0] = stride;
        SCOPED_TRACE(std::string(to_string(f)) + " pad " + std::to_string(pad) + " " +
                     std::to_string(w) + "x" + std::to_string(h));
        expect_same(det.detect(v), expect, 1e-6f);
      }
    }
  }
}

// The CPU's box filter sums a block's bytes in 16-bit integers while a block is at most 257 rows
// tall (257 x 255 fits) and in 32-bit ones past that. A picture stretched by whole factors
// (each pixel repeated 2 times across and k times down) shrinks back to the same network input,
// so gives the same detections as the picture itself, in both cases; its white patch would
// overflow 16-bit sums of 300 rows.
TEST_F(DetectorTest, StretchedFramesShrinkBackToThePicture) {
  const std::string path = (*dir_ / "small-input.safetensors").string();
  {
    torch::manual_seed(11);
    auto c = ssdtest::tiny_config();
    c.input_size = 64;
    c.grids = {2, 1};
    c.class_bias = 0.0;
    Ssd model(c);
    save_weights(path, model);
  }
  DetectorOptions o = options();
  o.model_path = path;
  Detector det(o);
  const int S = 64;
  Rgb pic = make_picture(S, S, 21);
  for (int y = 8; y < 40; ++y)
    for (int x = 20; x < 50; ++x)
      for (int c = 0; c < 3; ++c) pic.px[(size_t(y) * S + x) * 3 + size_t(c)] = 255;
  for (PixelFormat f : {PixelFormat::RGB, PixelFormat::RGBx}) {
    int stride = 0;
    auto buf = pack(pic, f, 0, &stride);
    const FrameView v{f, S, S, {buf.data()}, {stride}, {}};
    const auto expect = det.detect(v);
    ASSERT_FALSE(expect.empty());
    for (int k : {200, 300}) {
      Rgb tall{2 * S, S * k, std::vector<uint8_t>(size_t(2 * S) * S * k * 3)};
      for (int y = 0; y < tall.h; ++y)
        for (int x = 0; x < tall.w; ++x)
          std::copy_n(&pic.px[(size_t(y / k) * S + x / 2) * 3], 3, &tall.px[(size_t(y) * tall.w + x) * 3]);
      auto tall_buf = pack(tall, f, 0, &stride);
      SCOPED_TRACE(std::string(to_string(f)) + " stretched 2 x " + std::to_string(k));
      expect_same(det.detect(FrameView{f, tall.w, tall.h, {tall_buf.data()}, {stride}, {}}), expect, 1e-5f);
    }
  }
}

// The box filter shrinks by whole factors and leaves out the last columns and rows that do not
// fill a block: a frame with such a remainder gives the network the picture of its other
// pixels, and the boxes are those of that part of the frame (the same detections as the frame
// cropped to it, scaled to the whole frame), for packed and planar formats and on every output
// path.
TEST_F(DetectorTest, FramesWithARemainderGiveTheBoxesOfThePartTheNetworkSees) {
  const int S = ssdtest::tiny_config().input_size;
  struct Case {
    PixelFormat format;
    int kx, ky, rx, ry;   // the seen part is (kx * S, ky * S); rx < kx, ry < ky more columns and rows
  };
  // Planar YUV: with the remainder, the chroma planes have more columns (rows) than half the
  // seen part's, and some that fill a block of their own factor (I420 across, NV12 down).
  for (const Case c : {Case{PixelFormat::RGB, 2, 3, 1, 2}, Case{PixelFormat::RGBx, 3, 1, 2, 0},
                       Case{PixelFormat::I420, 4, 4, 3, 1}, Case{PixelFormat::NV12, 4, 2, 1, 1}}) {
    const int W = c.kx * S + c.rx, H = c.ky * S + c.ry;
    Rgb pic = make_picture(W, H, 31);
    for (int y = 0; y < H; ++y)   // the left-out strips white: nothing like the picture
      for (int x = 0; x < W; ++x)
        if (x >= c.kx * S || y >= c.ky * S) std::fill_n(&pic.px[(size_t(y) * W + x) * 3], 3, uint8_t(255));
    std::vector<uint8_t> a, b, v;
    FrameView frame{c.format, W, H, {}, {}, {}};
    if (!is_yuv(c.format)) {
      a = pack(pic, c.format, 0, &frame.strides[0]);
      frame.planes[0] = a.data();
    } else {
      to_yuv420(pic, a, b, v);
      const int cw = (W + 1) / 2;
      frame.planes[0] = a.data();
      frame.strides[0] = W;
      if (c.format == PixelFormat::I420) {
        frame.planes[1] = b.data();
        frame.planes[2] = v.data();
        frame.strides[1] = frame.strides[2] = cw;
      } else {
        b = interleave(b, v);
        frame.planes[1] = b.data();
        frame.strides[1] = 2 * cw;
      }
    }
    FrameView seen = frame;   // the same bytes, without the strips
    seen.width = c.kx * S;
    seen.height = c.ky * S;
    const float sx = float(seen.width) / float(W), sy = float(seen.height) / float(H);
    for (int path = 0; path < 3; ++path) {
      DetectorOptions o = options();
      o.fixed_postprocess = path == 1;
      o.max_in_flight = path == 2 ? 2 : 1;
      Detector det(o);
      const auto part = det.detect(seen);
      const auto whole = det.detect(frame);
      SCOPED_TRACE(std::string(to_string(c.format)) + " " + std::to_string(W) + "x" + std::to_string(H) +
                   " path " + std::to_string(path));
      ASSERT_FALSE(part.empty());
      ASSERT_EQ(whole.size(), part.size());
      for (size_t i = 0; i < part.size(); ++i) {
        EXPECT_EQ(whole[i].label_id, part[i].label_id) << i;
        EXPECT_NEAR(whole[i].confidence, part[i].confidence, 1e-6) << i;
        EXPECT_NEAR(whole[i].x_min, part[i].x_min * sx, 1e-6) << i;
        EXPECT_NEAR(whole[i].x_max, part[i].x_max * sx, 1e-6) << i;
        EXPECT_NEAR(whole[i].y_min, part[i].y_min * sy, 1e-6) << i;
        EXPECT_NEAR(whole[i].y_max, part[i].y_max * sy, 1e-6) << i;
      }
    }
  }
}

TEST_F(DetectorTest, Nv12AndI420MatchRgb) {
  Detector det(options());
  const int w = 641, h = 479;
  auto pic = make_picture(w, h, 9);
  int stride = 0;
  auto rgb = pack(pic, PixelFormat::RGB, 0, &stride);
  FrameView ref;
  ref.width = w;
  ref.height = h;
  ref.planes[0] = rgb.data();
  ref.strides[0] = stride;
  auto expect = det.detect(ref);
  std::vector<uint8_t> Y, U, V;
  to_yuv420(pic, Y, U, V);
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  // I420 with padded strides.
  const int ys = w + 3, cs = cw + 5;
  std::vector<uint8_t> yp(size_t(ys) * h), up(size_t(cs) * ch), vp(size_t(cs) * ch);
  for (int y = 0; y < h; ++y) std::copy_n(&Y[size_t(y) * w], w, &yp[size_t(y) * ys]);
  for (int y = 0; y < ch; ++y) {
    std::copy_n(&U[size_t(y) * cw], cw, &up[size_t(y) * cs]);
    std::copy_n(&V[size_t(y) * cw], cw, &vp[size_t(y) * cs]);
  }
  FrameView i420;
  i420.format = PixelFormat::I420;
  i420.width = w;
  i420.height = h;
  i420.planes[0] = yp.data();
  i420.planes[1] = up.data();
  i420.planes[2] = vp.data();
  i420.strides[0] = ys;
  i420.strides[1] = cs;
  i420.strides[2] = cs;
  auto got = det.detect(i420);
  // NV12: interleaved UV.
  const std::vector<uint8_t> uv = interleave(U, V);
  FrameView nv12 = i420;
  nv12.format = PixelFormat::NV12;
  nv12.planes[1] = uv.data();
  nv12.strides[1] = cw * 2;
  nv12.planes[2] = nullptr;
  auto got2 = det.detect(nv12);
  expect_same(got, got2, 1e-6f);
  // YUV rounding and chroma subsampling move scores and boxes a little, not the ranking's top.
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].label_id, expect[0].label_id);
  EXPECT_NEAR(got[0].confidence, expect[0].confidence, 0.05);
  EXPECT_NEAR(got[0].x_min, expect[0].x_min, 0.03);
  EXPECT_NEAR(got[0].y_min, expect[0].y_min, 0.03);
}

// An odd-sized 4:2:0 frame the box filter does not shrink (under twice the input size): its
// chroma planes are rounded up, (w + 1) / 2 x (h + 1) / 2, and the network sees their last
// column and row too (the luma's last pixels' colour): a change there alone changes the
// detections. NV12 and I420 agree.
TEST_F(DetectorTest, OddSizedYuvFramesSeeTheirLastChromaColumnAndRow) {
  Detector det(options());
  const int w = 321, h = 241, cw = (w + 1) / 2, ch = (h + 1) / 2;
  ASSERT_LT(w, 2 * det.config().input_size);
  ASSERT_LT(h, 2 * det.config().input_size);
  std::vector<uint8_t> Y, U, V;
  to_yuv420(make_picture(w, h, 12), Y, U, V);
  ASSERT_EQ(U.size(), size_t(cw) * ch);
  const auto detect = [&](const std::vector<uint8_t>& u, const std::vector<uint8_t>& v) {
    const FrameView i420{PixelFormat::I420, w, h, {Y.data(), u.data(), v.data()}, {w, cw, cw}, {}};
    const auto got = det.detect(i420);
    const std::vector<uint8_t> uv = interleave(u, v);
    const FrameView nv12{PixelFormat::NV12, w, h, {Y.data(), uv.data()}, {w, 2 * cw}, {}};
    expect_same(got, det.detect(nv12), 1e-6f);
    return got;
  };
  const auto differ = [](const std::vector<Detection>& a, const std::vector<Detection>& b) {
    if (a.size() != b.size()) return true;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].label_id != b[i].label_id || std::abs(a[i].confidence - b[i].confidence) > 1e-6f ||
          std::abs(a[i].x_min - b[i].x_min) > 1e-6f || std::abs(a[i].y_min - b[i].y_min) > 1e-6f ||
          std::abs(a[i].x_max - b[i].x_max) > 1e-6f || std::abs(a[i].y_max - b[i].y_max) > 1e-6f)
        return true;
    return false;
  };
  const auto base = detect(U, V);
  ASSERT_FALSE(base.empty());
  auto u = U, v = V;
  for (int x = 0; x < cw; ++x) {   // the last chroma row saturated
    u[size_t(ch - 1) * cw + x] = 255;
    v[size_t(ch - 1) * cw + x] = 0;
  }
  EXPECT_TRUE(differ(base, detect(u, v))) << "the last chroma row is left out";
  u = U;
  v = V;
  for (int y = 0; y < ch; ++y) {   // the last chroma column saturated
    u[size_t(y) * cw + cw - 1] = 255;
    v[size_t(y) * cw + cw - 1] = 0;
  }
  EXPECT_TRUE(differ(base, detect(u, v))) << "the last chroma column is left out";
}

// max_detections 0 (or below) asks for no detection at all, not one.
TEST_F(DetectorTest, NoDetectionsWhenNoneAreAskedFor) {
  auto o = options();
  Detector det(o);
  const auto f = packed_frames(1, 160, 0, 120, 4, PixelFormat::RGB, 0);
  ASSERT_FALSE(det.detect(f.views[0]).empty());
  for (int none : {0, -3}) {
    det.set_postprocess(0.f, 0.45f, none);
    EXPECT_TRUE(det.detect(f.views[0]).empty()) << none;
    o.max_detections = none;
    EXPECT_TRUE(Detector(o).detect(f.views[0]).empty()) << none;
  }
}

TEST_F(DetectorTest, BatchEqualsSingleFramesAndSettingsApply) {
  Detector det(options());
  auto a = make_picture(320, 240, 1), b = make_picture(200, 300, 2);
  int sa = 0, sb = 0;
  auto pa = pack(a, PixelFormat::RGB, 0, &sa);
  auto pb = pack(b, PixelFormat::BGRx, 8, &sb);
  FrameView fa{PixelFormat::RGB, 320, 240, {pa.data()}, {sa}, {}};
  FrameView fb{PixelFormat::BGRx, 200, 300, {pb.data()}, {sb}, {}};
  auto batch = det.detect(std::vector<FrameView>{fa, fb});
  ASSERT_EQ(batch.size(), 2u);
  expect_same(batch[0], det.detect(fa), 1e-5f);
  expect_same(batch[1], det.detect(fb), 1e-5f);
  det.set_postprocess(0.0f, 0.45f, 3);
  EXPECT_EQ(det.detect(fa).size(), 3u);
  det.set_postprocess(1.1f, 0.45f, 100);
  EXPECT_TRUE(det.detect(fa).empty());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ssdtest::expect_error([&] { det.set_postprocess(nan, 0.45f, 100); }, {"NaN"});
  ssdtest::expect_error([&] { det.set_postprocess(0.3f, nan, 100); }, {"NaN"});
  std::vector<float> per_class(det.labels().size(), 0.5f);
  per_class.back() = nan;
  ssdtest::expect_error([&] { det.set_postprocess(0.3f, 0.45f, 100, per_class); }, {"class threshold", "NaN"});
  EXPECT_TRUE(det.detect(fa).empty()) << "a refused setting leaves the one in use";
}

// The fixed output stage (the CUDA path's) where NMS keeps fewer than max_detections of the
// candidates it took while more pairs pass: it has not converged, and the detector runs the exact
// output stage on the same network outputs, which goes on through the pairs past the candidates.
// Here circles outscore squares, which outscore triangles, everywhere: the 400 candidates of
// the 567 box-class pairs are every circle and square and 22 triangles, and NMS at 0.2 leaves
// fewer than 100 of them; triangles past them add to the detections (74 in all where the
// candidates alone gave 66, in the first frame). Same detections as the plain path, batched
// or not.
TEST_F(DetectorTest, FixedOutputStageRunsTheExactOneWhereItsCandidatesRunShort) {
  const std::string path = (*dir_ / "ranked-classes.safetensors").string();
  {
    torch::manual_seed(12);
    auto c = ssdtest::tiny_config();
    c.class_bias = 0.0;
    Ssd model(c);
    torch::NoGradGuard no_grad;
    int biased = 0;
    for (auto& p : model->named_parameters()) {
      const std::string& name = p.key();
      if (name.find(".oconv1.bias") == std::string::npos) continue;
      auto per_class = p.value().view({-1, 4});   // anchor x (circle, square, triangle, background)
      per_class.select(1, 0).add_(6.0);
      per_class.select(1, 1).add_(3.0);
      ++biased;
    }
    ASSERT_EQ(biased, 3) << "one class convolution per grid";
    save_weights(path, model);
  }
  const auto packed = packed_frames(3, 320, 16, 240, 10, PixelFormat::RGB, 4);
  auto o = options();
  o.model_path = path;
  o.max_detections = 100;
  o.nms_iou = 0.2f;
  const auto expect = [&] {
    Detector plain(o);
    std::vector<std::vector<Detection>> e;
    for (const auto& f : packed.views) e.push_back(plain.detect(f));
    return e;
  }();
  for (const auto& e : expect) {
    ASSERT_LT(e.size(), 100u);
    EXPECT_GT(std::count_if(e.begin(), e.end(), [](const Detection& d) { return d.label_id == 2; }), 10);
  }
  o.fixed_postprocess = true;
  Detector fixed(o);
  for (size_t i = 0; i < packed.views.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    expect_same(fixed.detect(packed.views[i]), expect[i], 1e-5f);
  }
  fixed.submit(packed.views);
  const auto batch = fixed.collect();
  ASSERT_EQ(batch.size(), packed.views.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    SCOPED_TRACE("batched frame " + std::to_string(i));
    expect_same(batch[i], expect[i], 1e-5f);
  }
}

// The CUDA path's logic on the CPU: the fixed-shape output stage, pipelined submit/collect.
TEST_F(DetectorTest, FixedOutputStageAndPipelinedBatchesMatchDetect) {
  const auto packed = packed_frames(5, 320, 16, 240, 10, PixelFormat::RGB, 4);
  const auto& frames = packed.views;
  const auto expect = one_by_one(frames);
  ASSERT_FALSE(expect[0].empty());

  auto o = options();
  o.fixed_postprocess = true;
  o.max_in_flight = 3;
  Detector det(o);
  EXPECT_EQ(det.max_in_flight(), 3);
  EXPECT_EQ(det.in_flight(), 0);
  ssdtest::expect_error([&] { det.collect(); }, {"no batch in flight"});
  det.submit({frames[0], frames[1]});
  det.submit({frames[2]});
  det.submit({});
  EXPECT_EQ(det.in_flight(), 3);
  ssdtest::expect_error([&] { det.submit({frames[3]}); }, {"already in flight", "collect"});
  ssdtest::expect_error([&] { det.detect(frames[3]); }, {"in flight"});
  auto b0 = det.collect();
  ASSERT_EQ(b0.size(), 2u);
  expect_same(b0[0], expect[0], 1e-5f);
  expect_same(b0[1], expect[1], 1e-5f);
  det.submit({frames[3], frames[4]});   // the freed slot is reused while two are pending
  auto b1 = det.collect();
  ASSERT_EQ(b1.size(), 1u);
  expect_same(b1[0], expect[2], 1e-5f);
  EXPECT_TRUE(det.collect().empty());
  auto b3 = det.collect();
  ASSERT_EQ(b3.size(), 2u);
  expect_same(b3[0], expect[3], 1e-5f);
  expect_same(b3[1], expect[4], 1e-5f);
  EXPECT_EQ(det.in_flight(), 0);
  // Settings apply to batches submitted afterwards, in the fixed stage too.
  det.set_postprocess(0.0f, 0.45f, 2);
  EXPECT_EQ(det.detect(frames[0]).size(), 2u);
  det.set_postprocess(1.1f, 0.45f, 100);
  EXPECT_TRUE(det.detect(frames[0]).empty());
}

// The CUDA-graph path's logic on the CPU (emulated capture and replay): per-slot graphs keyed by
// batch size and settings give the eager results, also with two batches in flight at once.
namespace {
int threads_of_this_process() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}
}  // namespace

// On the CPU with max_in_flight > 1, each slot computes its batches on a thread of its own
// (consecutive batches side by side on the cores): the same detections, in order, settings
// applying from the next batch on; a malformed frame fails submit() itself.
TEST_F(DetectorTest, CpuInFlightBatchesRunOnWorkerThreadsAndMatchDetect) {
  const auto packed = packed_frames(5, 320, 16, 240, 20, PixelFormat::BGRx, 0);
  const auto& frames = packed.views;
  const auto expect = one_by_one(frames);
  ASSERT_FALSE(expect[0].empty());

  auto o = options();
  o.max_in_flight = 2;
  o.threads = 1;
  Detector det(o);
  const int threads_before = threads_of_this_process();
  for (int round = 0; round < 3; ++round) {   // slots reused, their threads too
    det.submit({frames[0], frames[1]});
    det.submit({frames[2]});
    ssdtest::expect_error([&] { det.submit({frames[3]}); }, {"already in flight"});
    auto b0 = det.collect();
    det.submit({frames[3], frames[4]});
    auto b1 = det.collect();
    auto b2 = det.collect();
    ASSERT_EQ(b0.size(), 2u);
    ASSERT_EQ(b1.size(), 1u);
    ASSERT_EQ(b2.size(), 2u);
    expect_same(b0[0], expect[0], 1e-5f);
    expect_same(b0[1], expect[1], 1e-5f);
    expect_same(b1[0], expect[2], 1e-5f);
    expect_same(b2[0], expect[3], 1e-5f);
    expect_same(b2[1], expect[4], 1e-5f);
  }
  EXPECT_EQ(threads_of_this_process(), threads_before) << "a thread per batch instead of per slot";
  det.set_postprocess(0.0f, 0.45f, 2);
  det.submit({frames[0]});
  EXPECT_EQ(det.collect()[0].size(), 2u);
  FrameView bad = frames[0];
  bad.strides[0] = 3;   // smaller than a row
  ssdtest::expect_error([&] { det.submit({frames[1], bad}); }, {"stride"});
  // A row of more than 2^31 bytes (2^29 RGBx pixels) against a stride of 16: refused without
  // the row size wrapping around in int arithmetic.
  FrameView huge = frames[0];
  huge.format = PixelFormat::RGBx;
  huge.width = 1 << 29;
  huge.height = 2;
  huge.strides[0] = 16;
  ssdtest::expect_error([&] { det.submit({huge}); }, {"stride 16", "2147483648"});
  EXPECT_EQ(det.in_flight(), 0);
  EXPECT_EQ(det.detect(frames[2]).size(), 2u);
}

// In flight and threads of 0 are chosen for the machine: on the CPU a worker per batch for two
// batches when there are two CPUs or more, the CPUs shared among them; on CUDA one batch; a count
// asked for stays.
// The exit gate (in a child process, as closing it is for good): closing waits for the passes
// held (here one given back after 200 ms), a pass asked for after it throws, and a pass held past
// the wait makes close() give up with false.
TEST(ExitGate, ClosingWaitsForThePassesHeldAndRefusesNewOnes) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    {
      std::thread worker([] {
        ExitGate::Pass pass;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(50));   // (the worker holds its pass)
      const auto start = std::chrono::steady_clock::now();
      if (!ExitGate::close(5000)) code |= 1;
      if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(100)) code |= 2;   // it waited
      worker.join();
      try {
        ExitGate::Pass late;
        code |= 4;
      } catch (const Error& e) {
        if (std::string(e.what()).find("the process is exiting") == std::string::npos) code |= 8;
      }
      if (!ExitGate::closed()) code |= 16;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "flags: 1 close failed, 2 it did not wait, 4 a late pass was given, 8 message";
  const pid_t held = fork();
  ASSERT_GE(held, 0);
  if (held == 0) {
    std::thread holder([] {
      ExitGate::Pass pass;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const bool all_back = ExitGate::close(100);
    holder.join();
    _exit(all_back ? 1 : 0);
  }
  ASSERT_EQ(waitpid(held, &status, 0), held);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "close() must give up on a pass held past its wait";
}

TEST(CpuWorkers, AutomaticInFlightAndThreads) {
  EXPECT_EQ(resolve_in_flight(0, true, 1, 0), 1);
  EXPECT_EQ(resolve_in_flight(0, true, 2, 0), 2);
  EXPECT_EQ(resolve_in_flight(0, true, 64, 0), 2);
  EXPECT_EQ(resolve_in_flight(0, false, 64, 0), 1);
  EXPECT_EQ(resolve_in_flight(3, true, 1, 0), 3);
  EXPECT_EQ(resolve_in_flight(4, false, 2, 0), 4);
  // Threads asked for: two workers only where they fit.
  EXPECT_EQ(resolve_in_flight(0, true, 2, 1), 2);
  EXPECT_EQ(resolve_in_flight(0, true, 2, 2), 1);
  EXPECT_EQ(resolve_in_flight(0, true, 4, 2), 2);
  EXPECT_EQ(resolve_in_flight(0, true, 6, 4), 1);
  EXPECT_EQ(resolve_in_flight(2, true, 2, 2), 2);
  EXPECT_EQ(resolve_threads(0, 1, 16), 0);   // LibTorch's default
  EXPECT_EQ(resolve_threads(0, 2, 2), 1);
  EXPECT_EQ(resolve_threads(0, 2, 16), 8);
  EXPECT_EQ(resolve_threads(0, 3, 2), 1);   // at least one each
  EXPECT_EQ(resolve_threads(5, 2, 2), 5);
  // Both together, as the Detector and a shared instance apply them.
  const auto counts = [](int in_flight, int threads, bool cpu_workers, int cpus) {
    const WorkerCounts c = resolve_workers(in_flight, threads, cpu_workers, cpus);
    return std::pair{c.in_flight, c.threads};
  };
  EXPECT_EQ(counts(0, 0, true, 2), std::pair(2, 1));
  EXPECT_EQ(counts(0, 0, true, 16), std::pair(2, 8));
  EXPECT_EQ(counts(0, 0, true, 1), std::pair(1, 0));
  EXPECT_EQ(counts(0, 2, true, 2), std::pair(1, 2));
  EXPECT_EQ(counts(3, 0, true, 6), std::pair(3, 2));
  EXPECT_EQ(counts(0, 0, false, 16), std::pair(1, 0));   // CUDA, or the CUDA path's logic on the CPU
  EXPECT_EQ(counts(2, 0, false, 16), std::pair(2, 0));
  EXPECT_EQ(counts(0, 3, false, 16), std::pair(1, 3));
  EXPECT_GE(usable_cpus(), 1);
  // A container's CPU quota (cgroup v2 cpu.max).
  EXPECT_EQ(cgroup_cpu_limit("max 100000\n"), 0);
  EXPECT_EQ(cgroup_cpu_limit("200000 100000\n"), 2);
  EXPECT_EQ(cgroup_cpu_limit("150000 100000"), 2);
  EXPECT_EQ(cgroup_cpu_limit("50000 100000"), 1);
  EXPECT_EQ(cgroup_cpu_limit(""), 0);
  EXPECT_EQ(cgroup_cpu_limit("garbage"), 0);
  EXPECT_EQ(cgroup_cpu_limit("-1 100000"), 0);   // (v1 without a quota)
  // Where the quota is read: v2's cpu.max of the process's cgroup, else cgroup v1's files (a
  // 1-CPU quota there gave 2 workers).
  namespace fs = std::filesystem;
  const auto root = ssdtest::temp_dir("cgroups");
  auto put = [&](const fs::path& file, const std::string& text) {
    fs::create_directories((root / file).parent_path());
    std::ofstream(root / file) << text;
  };
  put("proc/self/cgroup", "0::/app.slice/x.scope\n");
  put("sys/fs/cgroup/app.slice/x.scope/cpu.max", "150000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(cgroup_cpu_max(root.string())), 2);
  fs::remove_all(root / "sys");
  put("proc/self/cgroup", "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n");
  put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n");
  put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_max(root.string()), "100000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(cgroup_cpu_max(root.string())), 1);
  fs::remove_all(root / "sys");
  put("proc/self/cgroup", "1:cpu:/\n");   // (a container: its own cgroup at the mount's root)
  put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  put("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(cgroup_cpu_max(root.string())), 0);
  // The cpu controller's own line (cpuacct mounted apart, in another cgroup): its path, not
  // cpuacct's, and not the mount's root (no quota there).
  put("proc/self/cgroup", "3:cpuacct:/other\n2:cpu:/docker/abc\n");
  put("sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us", "200000\n");
  put("sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(cgroup_cpu_max(root.string())), 2);
  fs::remove_all(root / "sys");
  EXPECT_EQ(cgroup_cpu_max(root.string()), "");
}

// A detector asked for 0 in flight on the CPU runs resolve_in_flight's count (2 here on 2 CPUs
// or more), with the same detections; compute_time() says how long the last collected batch
// computed, by a worker or by submit(), not how long it then waited to be collected.
TEST_F(DetectorTest, AutomaticInFlightOnTheCpuAndComputeTime) {
  const auto packed = packed_frames(2, 320, 16, 240, 20, PixelFormat::BGRx, 0);
  const auto expect = one_by_one(packed.views);
  for (const int asked : {0, 1}) {
    SCOPED_TRACE("max_in_flight " + std::to_string(asked));
    auto o = options();
    o.max_in_flight = asked;
    Detector det(o);
    EXPECT_EQ(det.max_in_flight(), asked == 0 ? resolve_in_flight(0, true, usable_cpus(), 0) : 1);
    EXPECT_EQ(det.compute_time().count(), 0);
    // Computed within `computing` of submit(), then left 300 ms before it is collected. (A bound
    // of 250 ms on the computation itself failed on a loaded machine, where it took 266-541 ms.)
    const auto submitted = std::chrono::steady_clock::now();
    det.submit({packed.views[0], packed.views[1]});
    while (!det.ready()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto computing = std::chrono::steady_clock::now() - submitted;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto got = det.collect();
    expect_same(got[0], expect[0], 1e-5f);
    expect_same(got[1], expect[1], 1e-5f);
    EXPECT_GT(det.compute_time().count(), 0);
    EXPECT_LE(det.compute_time(), computing) << "the wait to be collected counted";
    // A batch without frames computes nothing (a worker's earlier job does not count).
    det.submit({});
    EXPECT_TRUE(det.collect().empty());
    EXPECT_EQ(det.compute_time().count(), 0);
  }
  // A shared instance on the CPU: a worker (and a model) per batch in flight.
  SharedDetectorOptions so;
  so.detector = options();
  so.detector.max_in_flight = 0;
  auto shared = SharedDetector::acquire("automatic-workers", so);
  EXPECT_EQ(shared->workers(), resolve_in_flight(0, true, usable_cpus(), 0));
  expect_same(shared->detect(packed.views[0], 0.0f, 20), expect[0], 1e-5f);
  // Asking for what 0 resolves to joins it, and the other way round.
  SharedDetectorOptions explicit_counts = so;
  explicit_counts.detector.max_in_flight = shared->workers();
  explicit_counts.detector.threads = resolve_threads(0, shared->workers(), usable_cpus());
  EXPECT_EQ(SharedDetector::acquire("automatic-workers", explicit_counts).get(), shared.get());
  auto other = SharedDetector::acquire("explicit-workers", explicit_counts);
  EXPECT_EQ(SharedDetector::acquire("explicit-workers", so).get(), other.get());
}

// ready() says when collect() would not wait: never with nothing in flight, at once after a
// synchronous submit (one slot on the CPU computes in submit()), and for the worker slots once
// the oldest batch is computed, the next one then being the oldest.
TEST_F(DetectorTest, ReadyTellsWhenTheOldestBatchIsComputed) {
  const auto packed = packed_frames(3, 320, 16, 240, 20, PixelFormat::BGRx, 0);
  const auto& frames = packed.views;
  const auto expect = one_by_one(frames);
  Detector sync(options());
  EXPECT_FALSE(sync.ready());
  sync.submit({frames[0]});
  EXPECT_TRUE(sync.ready());
  expect_same(sync.collect()[0], expect[0], 1e-5f);
  EXPECT_FALSE(sync.ready());

  auto o = options();
  o.max_in_flight = 2;
  o.threads = 1;
  Detector det(o);
  EXPECT_FALSE(det.ready());
  auto wait_ready = [&det] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!det.ready() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return det.ready();
  };
  det.submit({frames[0], frames[1]});
  det.submit({frames[2]});
  ASSERT_TRUE(wait_ready());
  EXPECT_TRUE(det.ready()) << "a computed batch stays ready until collected";
  auto b0 = det.collect();
  ASSERT_EQ(b0.size(), 2u);
  expect_same(b0[0], expect[0], 1e-5f);
  expect_same(b0[1], expect[1], 1e-5f);
  ASSERT_TRUE(wait_ready());
  expect_same(det.collect()[0], expect[2], 1e-5f);
  EXPECT_FALSE(det.ready());
}

TEST_F(DetectorTest, EmulatedGraphsGiveTheEagerResultsAcrossSlotsShapesAndSettings) {
  const auto packed = packed_frames(8, 300, 8, 200, 40, PixelFormat::RGBx, 0);
  const auto& frames = packed.views;
  Detector plain(options());
  EXPECT_FALSE(plain.graphs());   // CUDA graphs only on CUDA
  std::vector<std::vector<Detection>> expect;
  for (const auto& f : frames) expect.push_back(plain.detect(f));
  ASSERT_FALSE(expect[0].empty());

  auto o = options();
  o.emulate_graphs = true;
  EXPECT_FALSE(Detector(o).graphs());   // the graphs hold the fixed-shape stage only
  o.fixed_postprocess = true;
  o.max_in_flight = 2;
  Detector det(o);
  ASSERT_TRUE(det.graphs());
  // Single frames alternate between the two slots: each slot warms up twice, then captures.
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < frames.size(); ++i) expect_same(det.detect(frames[i]), expect[i], 1e-5f);
  auto s = det.graph_stats();
  EXPECT_EQ(s.captures, 2);
  EXPECT_EQ(s.eager, 4);
  EXPECT_EQ(s.replays, 20);
  EXPECT_EQ(s.failures, 0) << s.last_error;
  // The preprocessing is keyed by each frame's layout: each slot sees its four frame sizes three
  // times (two eager runs, then a capture that also replays).
  auto pre = det.preprocess_graph_stats();
  EXPECT_EQ(pre.captures, 8);
  EXPECT_EQ(pre.eager, 16);
  EXPECT_EQ(pre.replays, 8);
  // Batches of two, both slots in flight: one slot's replay must not touch the other's outputs.
  for (int round = 0; round < 4; ++round) {
    const size_t a = (2 * round) % frames.size(), b = (2 * round + 4) % frames.size();
    det.submit({frames[a], frames[a + 1]});
    det.submit({frames[b], frames[b + 1]});
    auto ra = det.collect(), rb = det.collect();
    ASSERT_EQ(ra.size(), 2u);
    ASSERT_EQ(rb.size(), 2u);
    expect_same(ra[0], expect[a], 1e-5f);
    expect_same(ra[1], expect[a + 1], 1e-5f);
    expect_same(rb[0], expect[b], 1e-5f);
    expect_same(rb[1], expect[b + 1], 1e-5f);
  }
  s = det.graph_stats();
  EXPECT_EQ(s.captures, 4);   // batch 2 on each slot
  EXPECT_EQ(s.replays, 20 + 4);
  // New settings are new graphs; the old ones come back when the settings do.
  det.set_postprocess(0.0f, 0.45f, 3);
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < 4; ++i) {
      auto got = det.detect(frames[i]);
      ASSERT_EQ(got.size(), 3u);
      expect_same(got, {expect[i].begin(), expect[i].begin() + 3}, 1e-5f);
    }
  det.set_postprocess(0.0f, 0.45f, 20);
  for (size_t i = 0; i < 4; ++i) expect_same(det.detect(frames[i]), expect[i], 1e-5f);
  s = det.graph_stats();
  EXPECT_EQ(s.captures, 6);
  EXPECT_EQ(s.failures, 0) << s.last_error;
  // Preprocessing, one graph per frame layout and slot: in the pairs each slot replayed the
  // four sizes it had captured and ran the other four eagerly once; then frames 0-3 went to the
  // slots that had captured their sizes (16 replays).
  pre = det.preprocess_graph_stats();
  EXPECT_EQ(pre.captures, 8);
  EXPECT_EQ(pre.eager, 16 + 8);
  EXPECT_EQ(pre.replays, 8 + 8 + 16);
  EXPECT_EQ(pre.failures, 0) << pre.last_error;
}

// Graphed batches run at padded sizes (1, 2, 4, 8, then multiples of 8), so batches of varying
// size replay a few graphs: each frame still gets its own detections, the padding none.
// Above 256 detections (1024 candidates) the fixed-shape output stage, whose memory grows with
// the candidates squared, gives way to the eager one: the same detections, no graph involved;
// back at 100 the graphs run again.
TEST_F(DetectorTest, ManyDetectionsRunTheEagerOutputStage) {
  const auto packed = packed_frames(2, 300, 8, 200, 40, PixelFormat::RGBx, 0);
  auto o = options();
  o.threshold = 0.0f;
  o.max_detections = 300;
  Detector plain(o);
  o.emulate_graphs = true;
  o.fixed_postprocess = true;
  Detector det(o);
  ASSERT_TRUE(det.graphs());
  for (int round = 0; round < 4; ++round)
    for (const auto& f : packed.views) {
      const auto got = det.detect(f);
      EXPECT_GT(got.size(), 100u);
      expect_same(got, plain.detect(f), 1e-5f);
    }
  const auto none = det.graph_stats();
  EXPECT_EQ(none.captures + none.replays + none.eager, 0);
  det.set_postprocess(0.0f, 0.45f, 100);
  for (int round = 0; round < 4; ++round) EXPECT_EQ(det.detect(packed.views[0]).size(), 100u);
  EXPECT_EQ(det.graph_stats().captures, 1);
}

TEST_F(DetectorTest, EmulatedGraphsPadBatchesToAFewSizes) {
  const auto packed = packed_frames(12, 320, 0, 240, 120, PixelFormat::RGBx, 0);
  const auto& frames = packed.views;
  const auto expect = one_by_one(frames);
  auto o = options();
  o.emulate_graphs = true;
  o.fixed_postprocess = true;
  Detector det(o);
  // Sizes 3, 4, 3 share the 4-frame graph (captured on the third), 5 to 8 the 8-frame one,
  // 9 and 12 the 16-frame one.
  const int sizes[] = {3, 4, 3, 5, 6, 7, 8, 9, 12, 9};
  for (const int n : sizes) {
    SCOPED_TRACE("batch of " + std::to_string(n));
    const std::vector<FrameView> batch(frames.begin(), frames.begin() + n);
    const auto got = det.detect(batch);
    ASSERT_EQ(got.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) expect_same(got[static_cast<size_t>(i)], expect[static_cast<size_t>(i)], 1e-5f);
  }
  const auto s = det.graph_stats();
  EXPECT_EQ(s.captures, 3);
  EXPECT_EQ(s.eager, 6);
  EXPECT_EQ(s.replays, 4);
  EXPECT_EQ(s.failures, 0) << s.last_error;
  // One frame layout: one preprocessing graph, replayed for every frame after the first two.
  const auto pre = det.preprocess_graph_stats();
  EXPECT_EQ(pre.captures, 1);
  EXPECT_EQ(pre.eager, 2);
  EXPECT_EQ(pre.replays, 3 + 4 + 3 + 5 + 6 + 7 + 8 + 9 + 12 + 9 - 2);
}

// A stream of one layout (planar and padded packed frames): after the warm-up every batch's
// preprocessing is a replay, on each slot, and the results stay the eager ones.
TEST_F(DetectorTest, EmulatedPreprocessingGraphsReplayPlanarAndPaddedFrames) {
  const auto pic = make_picture(641, 479, 90);
  std::vector<uint8_t> y, u, v;
  to_yuv420(pic, y, u, v);
  const std::vector<uint8_t> uv = interleave(u, v);
  const int cw = (pic.w + 1) / 2;
  const FrameView i420{PixelFormat::I420, pic.w, pic.h, {y.data(), u.data(), v.data()}, {pic.w, cw, cw}, {}};
  const FrameView nv12{PixelFormat::NV12, pic.w, pic.h, {y.data(), uv.data()}, {pic.w, 2 * cw}, {}};
  const auto packed = packed_frames(2, 641, 0, 479, 90, PixelFormat::BGRx, 12);
  Detector plain(options());
  auto o = options();
  o.emulate_graphs = true;
  o.fixed_postprocess = true;
  o.max_in_flight = 2;
  Detector det(o);
  for (const FrameView& f : {i420, nv12, packed.views[0]}) {
    const auto expect = plain.detect(f);
    ASSERT_FALSE(expect.empty());
    const auto before = det.preprocess_graph_stats();
    for (int i = 0; i < 8; ++i) expect_same(det.detect(f), expect, 1e-5f);
    // Two batches in flight replay their own slots' graphs.
    det.submit({f});
    det.submit({f});
    expect_same(det.collect()[0], expect, 1e-5f);
    expect_same(det.collect()[0], expect, 1e-5f);
    const auto after = det.preprocess_graph_stats();
    EXPECT_EQ(after.captures - before.captures, 2) << to_string(f.format);
    EXPECT_EQ(after.eager - before.eager, 4) << to_string(f.format);
    EXPECT_EQ(after.replays - before.replays, 6) << to_string(f.format);
  }
  // Another picture in the same layout replays the same graphs on its own pixels.
  const auto other = plain.detect(packed.views[1]);
  const auto first = plain.detect(packed.views[0]);
  ASSERT_FALSE(!other.empty() && other.size() == first.size() && other[0].confidence == first[0].confidence)
      << "the two pictures must give different detections";
  const auto before = det.preprocess_graph_stats();
  for (int i = 0; i < 2; ++i) expect_same(det.detect(packed.views[1]), other, 1e-5f);
  EXPECT_EQ(det.preprocess_graph_stats().replays - before.replays, 2);
  EXPECT_EQ(det.preprocess_graph_stats().failures, 0);
}

// The Detector runs the network with the body's BatchNorms folded into its convolutions (the
// tiny body: stem, two a block, three downsamples) and each grid's two output convolutions fused;
// its outputs are checked against eager PyTorch without either in tests/bench (PyTorchReference.*).
TEST_F(DetectorTest, FoldsTheBodysBatchNormsAndFusesTheOutputConvolutions) {
  Detector det(options());
  EXPECT_EQ(det.folded_batchnorms(), 12);
  EXPECT_EQ(det.fused_output_convs(), static_cast<int>(det.config().grids.size()));
}

TEST_F(DetectorTest, BadModelsAndDevicesGiveClearErrors) {
  auto o = options();
  o.model_path = (*dir_ / "nope.safetensors").string();
  ssdtest::expect_error([&] { Detector d(o); }, {"nope.safetensors", "cannot open"});
  o = options();
  for (const std::string bad : {"gpu7", "cpu0", "cpus", "cudax"}) {   // (names that only start as a valid one)
    o.device = bad;
    ssdtest::expect_error([&] { Detector d(o); }, {"invalid device '" + bad + "'"});
  }
  // A malformed index is that, with or without a GPU (it was "no CUDA device" without one).
  for (const std::string bad : {"cuda:abc", "cuda:", "cuda:-1", "cuda:1x", "cuda:99999"}) {
    o.device = bad;
    ssdtest::expect_error([&] { Detector d(o); }, {"invalid device '" + bad + "' (expected auto, cpu, cuda or cuda:N)"});
  }
  if (!cuda_available()) {
    o.device = "cuda:0";
    ssdtest::expect_error([&] { Detector d(o); }, {"no CUDA device"});
  }
  Detector det(options());
  FrameView bad{PixelFormat::RGB, 10, 10, {nullptr}, {30}, {}};
  ssdtest::expect_error([&] { det.detect(bad); }, {"null"});
  std::vector<uint8_t> px(100);
  FrameView narrow{PixelFormat::RGB, 10, 10, {px.data()}, {5}, {}};
  ssdtest::expect_error([&] { det.detect(narrow); }, {"stride"});
  EXPECT_THROW(pixel_format_from_string("YUY2"), Error);
  EXPECT_EQ(pixel_format_from_string("NV12"), PixelFormat::NV12);
}

// One model instance shared by several streams (model/shared_detector.h): each stream's thread
// gets the detections a private Detector with its own threshold and count gives, while the
// instance runs the streams' frames together in batches; plainly, and with the CUDA path's
// logic (fixed-shape output stage, emulated graphs, two batches in flight).
// ssddetect constructs its detector in one thread (start()) and detects in another (the
// streaming thread). Construction must run no multi-threaded (OpenMP) region: the pool of
// workers it would leave in the constructing thread made the detecting thread's 2 threads run
// at half the speed of 1 (see Detector::Detector). The thread count applies where it detects.
TEST_F(DetectorTest, ConstructionStartsNoIntraOpWorkersAndDetectingThreadsGetTheThreadCount) {
  // Weights large enough for LibTorch to copy them in parallel (the default head's 128 channels).
  torch::manual_seed(6);
  auto c = ssdtest::tiny_config();
  c.head_channels = 128;
  const auto path = (*dir_ / "wide.safetensors").string();
  Ssd model(c);
  save_weights(path, model);
  auto o = options();
  o.model_path = path;
  o.threads = 2;
  const int threads_before = torch::get_num_threads();
  std::unique_ptr<Detector> det;
  int started = -1;
  std::thread([&] {   // a thread of its own, whose OpenMP pool (if any) is made here
    // (Setting 2 threads also gives LibTorch's global pthreadpool, which only its mobile kernels
    // use, a worker; the constructor sets the count too.)
    torch::set_num_threads(2);
    const int before = threads_of_this_process();
    det = std::make_unique<Detector>(o);
    started = threads_of_this_process() - before;
  }).join();
  EXPECT_EQ(started, 0) << "constructing the detector started threads";
  int in_detecting_thread = 0;
  size_t found = 0;
  auto frames = packed_frames(1, 320, 0, 240, 3, PixelFormat::RGB, 0);
  std::thread([&] {
    found = det->detect(frames.views)[0].size();
    in_detecting_thread = torch::get_num_threads();
  }).join();
  EXPECT_GT(found, 0u);
  EXPECT_EQ(in_detecting_thread, 2);
  torch::set_num_threads(threads_before);
}

// Each detector runs with its own `threads` in whichever thread detects: LibTorch's count is
// per thread once a thread has run a parallel region, but taken at that first region from a
// process-wide value, the one the last detector constructed left (two ssddetect elements with
// threads=1 and threads=2 both ran with 2).
TEST_F(DetectorTest, EachDetectorRunsWithItsOwnThreadCount) {
  const int threads_before = torch::get_num_threads();
  auto one = options(), two = options();
  one.threads = 1;
  two.threads = 2;
  Detector d1(one), d2(two);   // d2 last: the process-wide value is 2
  auto frames = packed_frames(1, 160, 0, 120, 3, PixelFormat::RGB, 0);
  auto run = [&](Detector& d) {
    d.detect(frames.views);
    return torch::get_num_threads();
  };
  int first = 0, second = 0, again = 0, in_other = 0;
  std::thread([&] {
    first = run(d1);
    second = run(d2);
    again = run(d1);
  }).join();
  std::thread([&] { in_other = run(d2); }).join();
  // On the CPU with in-flight 2 a worker thread of the detector computes: it runs with the
  // detector's count too, whatever the process-wide value (2, set last) says.
  auto workers = options();
  workers.threads = 1;
  workers.max_in_flight = 2;
  Detector dw(workers);   // its worker threads start here
  int started = -1;
  std::atomic<int> step{0};
  std::thread submitter([&] {
    torch::set_num_threads(1);   // the submitting thread runs with 1 already (initialised)...
    torch::get_num_threads();
    step = 1;
    while (step.load() != 2) std::this_thread::yield();
    const int before = threads_of_this_process();
    dw.submit(frames.views);
    dw.collect();
    started = threads_of_this_process() - before;
  });
  while (step.load() != 1) std::this_thread::yield();
  torch::set_num_threads(2);   // ... when another detector sets the process-wide value to 2
  step = 2;
  submitter.join();
  EXPECT_LE(started, 0) << "a worker of a threads=1 detector started OpenMP threads";   // (another may end)
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  EXPECT_EQ(again, 1);
  EXPECT_EQ(in_other, 2);
  torch::set_num_threads(threads_before);
}

TEST_F(DetectorTest, SharedInstanceBatchesStreamsAndGivesEachItsOwnDetections) {
  constexpr int kStreams = 4, kFrames = 8;
  // (The untrained model's scores lie around 0.51.)
  const std::vector<float> thresholds = {0.0f, 0.505f, 0.509f, 0.0f};
  const std::vector<int> counts = {20, 20, 20, 3};
  // Streams 1 and 3 filter classes (1: circles dropped; 3: only triangles, down to 0): a class
  // another stream keeps must take no place among their frames' candidates and detections.
  const std::vector<std::vector<float>> class_thresholds = {{}, {2.0f, 0.505f, 0.505f}, {}, {2.0f, 2.0f, 0.0f}};
  std::vector<Frames> frames;
  StreamDetections expect(kStreams);
  Detector plain(options());
  for (int s = 0; s < kStreams; ++s) {
    frames.push_back(packed_frames(kFrames, 240 + 16 * s, 8, 180, 100 + 10 * s, PixelFormat::BGRx, 4 * s));
    plain.set_postprocess(thresholds[s], 0.45f, counts[s], class_thresholds[s]);
    for (const auto& f : frames.back().views) expect[s].push_back(plain.detect(f));
  }
  ASSERT_EQ(expect[0][0].size(), 20u);
  ASSERT_GT(expect[2][0].size(), 0u);
  ASSERT_LT(expect[2][0].size(), 20u);
  ASSERT_EQ(expect[3][0].size(), 3u);
  for (const auto& d : expect[3][0]) EXPECT_EQ(d.label_id, 2);
  ASSERT_GT(expect[1][0].size(), 0u);
  for (const auto& d : expect[1][0]) EXPECT_NE(d.label_id, 0);

  enum class Variant { Plain, CudaLogic, CpuWorkers };
  for (const Variant variant : {Variant::Plain, Variant::CudaLogic, Variant::CpuWorkers}) {
    const bool cuda_logic = variant == Variant::CudaLogic;
    SCOPED_TRACE(cuda_logic                        ? "fixed output stage, emulated graphs, 2 in flight"
                 : variant == Variant::CpuWorkers ? "2 in flight on the CPU: 2 workers"
                                                   : "plain");
    SharedDetectorOptions o;
    o.detector = options();
    o.detector.threshold = 0.3f;   // the instance's starting threshold: streams ask for lower and higher
    if (cuda_logic) {
      o.detector.fixed_postprocess = o.detector.emulate_graphs = true;
      o.detector.max_in_flight = 2;   // each slot has its graphs: 4 batches each, the 4th replayed
    }
    if (variant == Variant::CpuWorkers) o.detector.max_in_flight = 2;
    o.max_batch = kStreams;
    o.max_wait = std::chrono::milliseconds(500);   // every stream's frame makes the batch
    const std::string id = "shared-" + std::to_string(static_cast<int>(variant));
    auto instance = SharedDetector::acquire(id, o);
    EXPECT_EQ(instance->workers(), variant == Variant::CpuWorkers ? 2 : 1);
    expect_streams_same(send_streams(id, o, frames, thresholds, counts, class_thresholds), expect, 1e-5f);
    const auto st = instance->stats();
    EXPECT_EQ(st.frames, kStreams * kFrames);
    if (variant != Variant::CpuWorkers) {
      EXPECT_EQ(st.largest_batch, kStreams);
    }
    EXPECT_LT(st.batches, kStreams * kFrames);
    if (cuda_logic) {
      EXPECT_GT(st.graphs.replays, 0);
    }
  }
}

// A caller's threshold excludes a detection of exactly that confidence in a shared batch too, as a
// private Detector's does: the batch runs at the other stream's lower threshold, so only the cut
// to each caller's settings keeps it out.
TEST_F(DetectorTest, SharedInstanceCutsAtTheCallersThresholdExclusively) {
  TwoStreams s("exclusive-threshold");
  // A round: b's thread (one thread throughout, as a stream's) and this one each send a frame at
  // once; b's detections, if the two frames made one batch (a batch's confidences may differ
  // from a lone frame's in their last bits). The first round counts both streams as sending:
  // from then on each frame waits for the other's.
  std::mutex m;
  std::condition_variable cv;
  std::optional<float> b_threshold;
  std::optional<std::vector<Detection>> b_result;
  bool done = false;
  std::thread b([&] {
    std::unique_lock lock(m);
    for (;;) {
      cv.wait(lock, [&] { return b_threshold || done; });
      if (done) return;
      const float t = *b_threshold;
      b_threshold.reset();
      lock.unlock();
      auto dets = s.b->detect(s.f.views[0], t, 20);
      lock.lock();
      b_result = std::move(dets);
      cv.notify_all();
    }
  });
  const auto round = [&](float threshold) -> std::optional<std::vector<Detection>> {
    const auto batches = s.a->stats().batches;
    {
      std::lock_guard lock(m);
      b_threshold = threshold;
    }
    cv.notify_all();
    s.a_detects();
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return b_result.has_value(); });
    auto dets = std::move(*b_result);
    b_result.reset();
    if (s.a->stats().batches != batches + 1) return std::nullopt;
    return dets;
  };
  // b's detections at threshold 0 in one batch with a's frame, then at the confidence of one of
  // them (below the one before it): the ones before it, not it.
  std::optional<std::vector<Detection>> all, cut;
  for (int i = 0; i < 5 && !all; ++i) all = round(0.f);
  ASSERT_TRUE(all) << "no round made one batch of the two streams' frames";
  ASSERT_EQ(all->size(), 20u);
  size_t k = all->size() / 2;
  while (k + 1 < all->size() && !((*all)[k - 1].confidence > (*all)[k].confidence)) ++k;
  ASSERT_GT((*all)[k - 1].confidence, (*all)[k].confidence);
  for (int i = 0; i < 5 && !cut; ++i) cut = round((*all)[k].confidence);
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  b.join();
  ASSERT_TRUE(cut) << "no round made one batch of the two streams' frames";
  expect_same(*cut, std::vector<Detection>(all->begin(), all->begin() + static_cast<std::ptrdiff_t>(k)), 0.f);
}

TEST_F(DetectorTest, SharedInstancesAreNamedAndRefuseOtherSettings) {
  SharedDetectorOptions o;
  o.detector = options();
  ssdtest::expect_error([&] { SharedDetector::acquire("", o); }, {"name"});
  auto a = SharedDetector::acquire("cams", o);
  SharedDetectorOptions lower = o;
  lower.detector.threshold = 0.7f;   // per stream: joins
  lower.detector.max_detections = 5;
  auto a2 = SharedDetector::acquire("cams", lower);
  EXPECT_EQ(a.get(), a2.get());
  EXPECT_EQ(a->users(), 2);
  EXPECT_EQ(a->labels(), (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(a->device_name(), "cpu");
  auto b = SharedDetector::acquire("other", o);
  EXPECT_NE(a.get(), b.get());

  auto other = o;
  other.detector.nms_iou = 0.6f;
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"\"cams\"", "NMS IoU 0.45", "0.6"});
  other = o;
  other.detector.model_path = "/elsewhere.safetensors";
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"model file", "/elsewhere.safetensors"});
  other = o;
  other.max_batch = 8;
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"batch size 1", "8"});
  // A device is compared as what it stands for: "auto" is the CPU here unless CUDA is there.
  other = o;
  other.detector.device = "auto";
  if (cuda_available()) {
    ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"device cpu", "cuda:0"});
  } else {
    EXPECT_EQ(SharedDetector::acquire("cams", other).get(), a.get());
  }
  other = o;
  other.detector.fixed_postprocess = true;   // (a test option: the CPU emulation of the CUDA path)
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"fixed output stage 0", "asks for 0 and 1"});
  // NMS across classes is the instance's as the IoU is: every stream's detections depend on it.
  other = o;
  other.detector.class_agnostic_nms = true;
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); },
                        {"\"cams\"", "NMS per class", "asks for across classes"});
  other = o;
  other.max_wait = std::chrono::milliseconds(5);
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"batch wait 0 us", "asks for 5000 us"});
  other = o;
  other.detector.threads = a->options().detector.threads + 1;   // (0 resolved: cpu_workers.h)
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); },
                        {std::to_string(a->options().detector.threads) + " thread(s)",
                         "asks for " + std::to_string(other.detector.threads)});
  other = o;
  other.detector.cuda_graphs = !o.detector.cuda_graphs;
  ssdtest::expect_error([&] { SharedDetector::acquire("cams", other); }, {"CUDA graphs on", "asks for off"});
  other = o;
  other.max_batch = 8;

  // A malformed frame fails its own call only; the instance goes on.
  std::vector<uint8_t> px(100);
  FrameView narrow{PixelFormat::RGB, 10, 10, {px.data()}, {5}, {}};
  ssdtest::expect_error([&] { a->detect(narrow, 0.f, 20); }, {"stride"});
  const auto f = packed_frames(1, 160, 0, 120, 7, PixelFormat::RGB, 0);
  Detector plain(options());
  expect_same(a->detect(f.views[0], 0.f, 20), plain.detect(f.views[0]), 1e-5f);
  // A NaN threshold or NMS IoU is refused at the call (as Detector::set_postprocess refuses it),
  // never taken into the batch, whose other streams it would fail; the instance goes on.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ssdtest::expect_error([&] { a->detect(f.views[0], nan, 20); }, {"threshold", "NaN"});
  ssdtest::expect_error([&] { a->set_nms_iou(nan); }, {"NMS IoU", "NaN"});
  expect_same(a->detect(f.views[0], 0.f, 20), plain.detect(f.views[0]), 1e-5f);
  // The NMS IoU is the instance's: every stream's, changed for all.
  a->set_nms_iou(0.9f);
  plain.set_postprocess(0.f, 0.9f, 20);
  expect_same(a2->detect(f.views[0], 0.f, 20), plain.detect(f.views[0]), 1e-5f);
  auto joined = o;
  joined.detector.nms_iou = 0.9f;
  EXPECT_EQ(SharedDetector::acquire("cams", joined).get(), a.get());

  // Gone with its last holder: the name is free for other settings.
  a.reset();
  a2.reset();
  auto fresh = SharedDetector::acquire("cams", other);
  EXPECT_EQ(fresh->users(), 1);
  EXPECT_EQ(fresh->options().max_batch, 8);
  EXPECT_EQ(fresh->options().detector.device, "cpu");
}

// Whether a thread of this process is blocked opening a file (as a reader opening a named pipe
// is until a writer opens it), as /proc shows its system call.
static bool a_thread_waits_in_open() {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "syscall");
    long number = -1;
    if (in >> number && number == SYS_openat) return true;
  }
  return false;
}

// Opens `fifo` for writing once a reader is there and closes it at once: a reader blocked in
// opening it goes on (and, as a model file, fails). False if no reader came within 30 s.
static bool release_fifo_reader(const std::filesystem::path& fifo) {
  for (int i = 0; i < 3000; ++i) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);   // ENXIO while no reader
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A model loads without holding up the callers of other instances (the registry is not locked
// meanwhile): here a load blocked in opening a named pipe. Callers of the instance being loaded
// wait for it, and when it fails load it themselves.
TEST_F(DetectorTest, SharedInstanceLoadsDoNotHoldUpOtherInstances) {
  const auto fifo = *dir_ / "slow.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  SharedDetectorOptions slow;
  slow.detector = options();
  slow.detector.model_path = fifo.string();
  const auto load_in_thread = [&] {
    return std::async(std::launch::async, [&]() -> std::string {
      try {
        SharedDetector::acquire("slow-load", slow);
        return "loaded";
      } catch (const Error& e) {
        return e.what();
      }
    });
  };
  auto first = load_in_thread();
  bool waiting = false;   // the first load waits in opening the pipe
  for (int i = 0; i < 3000 && !(waiting = a_thread_waits_in_open()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(waiting) << "the first load never opened the model file";
  auto second = load_in_thread();   // the same name: waits for the first load
  // Another name loads, is shared and is released meanwhile.
  SharedDetectorOptions o;
  o.detector = options();
  auto other = std::async(std::launch::async, [&] {
    auto a = SharedDetector::acquire("beside-slow-load", o);
    auto b = SharedDetector::acquire("beside-slow-load", o);
    return a.get() == b.get() && a->users() == 2;
  });
  const bool other_done = other.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  EXPECT_TRUE(other_done) << "another instance waited for a model load";
  const bool second_waited = second.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout;
  EXPECT_TRUE(second_waited) << "the same instance's second caller did not wait for its load";
  // The first load goes on, reads no model and fails, naming the file; the second caller then
  // loads it itself (opening the pipe again), and fails likewise. (Its open may also find the
  // first release's writer still there, on a busy machine: the first load fails as soon as its
  // open returns, having found no size. So the pipe is released until the second is done.)
  ASSERT_TRUE(release_fifo_reader(fifo));
  EXPECT_NE(first.get().find(fifo.string() + ": "), std::string::npos);
  for (int i = 0; i < 3000 && second.wait_for(std::chrono::milliseconds(10)) == std::future_status::timeout; ++i) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);   // ENXIO while no reader
    if (fd >= 0) ::close(fd);
  }
  ASSERT_EQ(second.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "the second caller's load never ended";
  EXPECT_NE(second.get().find(fifo.string() + ": "), std::string::npos);
  if (other_done) {
    EXPECT_TRUE(other.get());
  }
  // The failed name is free: a good model loads under it.
  EXPECT_EQ(SharedDetector::acquire("slow-load", o)->users(), 1);
}

// A batch waits for the threads that call detect(), not for the instance's holders: a stream
// that stopped sending frames (paused, ended, or gone) is waited for only until it has been
// silent (since its last frame was done) for twice the wait (here 2 x 1 s), and a batch waiting
// for it then runs at once rather than at its deadline.
TEST_F(DetectorTest, SharedBatchesStopWaitingForAStreamThatWentQuiet) {
  using Clock = std::chrono::steady_clock;
  TwoStreams s("quiet");   // b held all along
  const auto seconds_since = TwoStreams::seconds_since;

  // b sends one frame from a thread of its own (the first caller: it does not wait), then nothing.
  Clock::time_point b_done;
  std::thread([&] {
    s.b_detects();
    b_done = Clock::now();
  }).join();
  // Half a second before b has been quiet for 2 s, a's frame waits for b's, until b stops
  // counting (0.5 s), not until its deadline (1 s).
  std::this_thread::sleep_until(b_done + std::chrono::milliseconds(1500));
  auto t = Clock::now();
  s.a_detects();
  const double waited = seconds_since(t);
  EXPECT_GT(waited, 0.2) << "b had sent a frame 1.5 s before: a's batch should wait for it";
  EXPECT_LT(waited, 0.85) << "a's batch should run once b has been quiet for 2 s";
  // From then on a runs alone, without waiting.
  t = Clock::now();
  for (int i = 0; i < 3; ++i) s.a_detects();
  EXPECT_LT(seconds_since(t), 0.5) << "three frames of the one stream sending waited for the quiet one";
  EXPECT_EQ(s.a->users(), 2);
}

// A batch waits only for the streams whose next frame is due soon at the pace they send (before
// its deadline, and within half a frame interval): a camera at 1 fps beside cameras at 5 fps
// held each of their batches for the whole wait (0.3 s there), and their frames came out later
// than the latency reported. Here b sends a frame every 1.5 s, the wait is 1 s: a's frame waits
// for b's only when b's next one is due soon.
TEST_F(DetectorTest, SharedBatchesWaitOnlyForStreamsWhoseNextFrameIsDue) {
  using Clock = std::chrono::steady_clock;
  TwoStreams s("pace");
  const auto seconds_since = TwoStreams::seconds_since;
  std::promise<Clock::time_point> second_sent;
  std::thread b_stream([&] {
    s.b_detects();   // (alone: no wait)
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto t = Clock::now();
    s.b_detects();
    second_sent.set_value(t);
    std::this_thread::sleep_until(t + std::chrono::milliseconds(1500));
    s.b_detects();
  });
  const Clock::time_point b_second = second_sent.get_future().get();
  auto t = Clock::now();
  s.a_detects();   // b's next frame is due in about 1.5 s, after the deadline
  EXPECT_LT(seconds_since(t), 0.4) << "a's batch waited for a stream whose next frame was not due";
  std::this_thread::sleep_until(b_second + std::chrono::milliseconds(1200));
  t = Clock::now();
  s.a_detects();   // b's next frame is due in about 0.3 s, within the wait
  const double waited = seconds_since(t);
  b_stream.join();
  EXPECT_GT(waited, 0.15) << "b's next frame was due within the wait: a's batch should wait for it";
  EXPECT_LT(waited, 0.75) << "b's frame came: a's batch should run then, not at its deadline";
}

// A stream whose element stops or pauses leaves the instance (leave()): batches stop waiting for
// it at once, not after it has been silent for twice the wait; its next frame counts it again.
TEST_F(DetectorTest, SharedBatchesStopWaitingForAStreamThatLeft) {
  using Clock = std::chrono::steady_clock;
  TwoStreams s("left");
  const auto seconds_since = TwoStreams::seconds_since;
  std::thread::id b_thread;
  std::thread([&] {
    s.b_detects();
    b_thread = std::this_thread::get_id();
  }).join();
  // b is counted (it sent a frame just now): a's frame would wait for it up to 1 s; b leaves.
  s.b->leave(b_thread);
  auto t = Clock::now();
  s.a_detects();
  EXPECT_LT(seconds_since(t), 0.5) << "a's batch waited for a stream that had left";
  // b sends again (from a thread of its own): counted again, a's next frame waits for it.
  std::thread([&] { s.b_detects(); }).join();
  t = Clock::now();
  s.a_detects();
  EXPECT_GT(seconds_since(t), 0.5) << "b sent a frame again: a's batch should wait for it";
}

// A tiny random model in a file of its own, an RGBx picture of w x h, and the CPU detector's
// detections of it (threshold 0): what the CUDA tests compare against.
struct CudaCase {
  ssdtest::TestDir dir;
  std::vector<uint8_t> buf;
  FrameView frame;
  DetectorOptions options;   // the model, threshold 0, device "cpu"
  std::vector<Detection> cpu;
  CudaCase(const char* name, int w, int h, uint32_t seed) : dir(ssdtest::temp_dir(name)) {
    Ssd model(ssdtest::tiny_config());
    save_weights((dir / "m.safetensors").string(), model);
    int stride = 0;
    buf = pack(make_picture(w, h, seed), PixelFormat::RGBx, 0, &stride);
    frame = FrameView{PixelFormat::RGBx, w, h, {buf.data()}, {stride}, {}};
    options.model_path = (dir / "m.safetensors").string();
    options.threshold = 0.0f;
    options.device = "cpu";
    cpu = Detector(options).detect(frame);
  }
};

TEST(DetectorCuda, RunsOnCudaInFp32AndFp16WhenAvailable) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const NoTf32 no_tf32;
  CudaCase c("cuda", 1920, 1080, 3);
  const FrameView& f = c.frame;
  const auto& cpu = c.cpu;
  DetectorOptions o = c.options;
  o.device = "cuda";
  Detector gpu(o);
  EXPECT_EQ(gpu.device_name().rfind("cuda", 0), 0u);
  expect_same(gpu.detect(f), cpu, 2e-3f);
  // Two batches in flight on the detector's own streams.
  o.max_in_flight = 2;
  Detector piped(o);
  piped.submit({f, f});
  piped.submit({f});
  for (int b = 0; b < 2; ++b)
    for (const auto& dets : piped.collect()) expect_same(dets, cpu, 2e-3f);
  o.max_in_flight = 1;
  o.fp16 = true;
  Detector half(o);
  EXPECT_TRUE(half.fp16());
  auto h = half.detect(f);
  ASSERT_FALSE(h.empty());
  EXPECT_NEAR(h[0].confidence, cpu[0].confidence, 0.02);
}

// ssddetect's model change while playing, on CUDA: a second detector is constructed in another
// thread while the first one detects (capturing, then replaying CUDA graphs on its own streams,
// in thread-local capture mode); both give the CPU's detections, and no capture fails.
TEST(DetectorCuda, LoadedInAnotherThreadWhileAnotherDetects) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const NoTf32 no_tf32;
  CudaCase c("cuda-load", 1280, 720, 5);
  const FrameView& f = c.frame;
  const auto& cpu = c.cpu;
  DetectorOptions o = c.options;
  o.device = "cuda";
  o.cuda_graphs = true;
  Detector first(o);
  std::unique_ptr<Detector> second;
  std::atomic<bool> loaded{false};
  std::string error;
  std::thread loader([&] {
    try {
      second = std::make_unique<Detector>(o);
    } catch (const std::exception& e) {
      error = e.what();
    }
    loaded = true;
  });
  int runs = 0;
  while (!loaded || runs < 6) {
    expect_same(first.detect(f), cpu, 2e-3f);
    ++runs;
  }
  loader.join();
  ASSERT_TRUE(second) << error;
  for (int i = 0; i < 4; ++i) expect_same(second->detect(f), cpu, 2e-3f);   // its graphs too
  EXPECT_EQ(first.graph_stats().failures + first.preprocess_graph_stats().failures, 0)
      << first.graph_stats().last_error << first.preprocess_graph_stats().last_error;
  EXPECT_EQ(second->graph_stats().failures + second->preprocess_graph_stats().failures, 0);
  std::printf("%d detections by the first detector while the second loaded\n", runs);
}

// The default model: a binary run from its build tree (this test) takes the build tree's copy
// of the source tree's model; an installed binary the installed copy, never a build or source
// tree (another machine's path, or a stale tree), also where a build tree lacks the model.
TEST(DefaultModel, BuildTreeCopyForBuildTreeBinariesInstalledCopyOtherwise) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("SSD_DEFAULT_MODEL");
  const std::string saved = env ? env : "";
  ::unsetenv("SSD_DEFAULT_MODEL");
  const fs::path mine = default_model_path();
  ::setenv("SSD_DEFAULT_MODEL", "", 1);   // set but empty (VAR= in a launch script): as unset
  const std::string with_empty = default_model_path();
  ::unsetenv("SSD_DEFAULT_MODEL");
  if (!saved.empty()) ::setenv("SSD_DEFAULT_MODEL", saved.c_str(), 1);
  EXPECT_EQ(with_empty, mine.string());
  EXPECT_TRUE(fs::is_directory(mine.parent_path().parent_path() / "meson-private")) << mine;
  EXPECT_EQ(mine.filename(), "ssd-default.safetensors");
  const fs::path source = fs::path(ssdtest::source_dir()) / "models" / "ssd-default.safetensors";
  ASSERT_TRUE(fs::exists(mine)) << mine;
  EXPECT_EQ(fs::file_size(mine), fs::file_size(source));

  const std::string installed = default_model_path_for("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstssd.so");
  const std::string suffix = "/share/gst-ssd/models/ssd-default.safetensors";
  EXPECT_TRUE(installed.size() > suffix.size() &&
              installed.compare(installed.size() - suffix.size(), suffix.size(), suffix) == 0)
      << installed;
  EXPECT_EQ(default_model_path_for("/usr/bin/ssd-train"), installed);
  const auto tree = ssdtest::temp_dir("default-model");
  fs::create_directories(tree / "meson-private");
  fs::create_directories(tree / "gst-plugin");
  EXPECT_EQ(default_model_path_for((tree / "gst-plugin" / "libgstssd.so").string()), installed)
      << "a build tree without the model";
  fs::create_directories(tree / "models");
  std::ofstream(tree / "models" / "ssd-default.safetensors") << "x";
  EXPECT_EQ(default_model_path_for((tree / "gst-plugin" / "libgstssd.so").string()),
            (tree / "models" / "ssd-default.safetensors").string());
  fs::remove_all(tree);
}

TEST(HostBuffer, OrdinaryMemoryEverywherePageLockedOnlyWithCuda) {
  HostBuffer plain(1 << 20, false);
  EXPECT_FALSE(plain.pinned());
  EXPECT_EQ(plain.size(), size_t(1) << 20);
  std::memset(plain.data(), 7, plain.size());
  EXPECT_EQ(plain.data()[plain.size() - 1], 7);
  if (cuda_available()) {
    HostBuffer pinned(1 << 20, true);
    EXPECT_TRUE(pinned.pinned());
  } else {
    ssdtest::expect_error([] { HostBuffer pinned(1 << 20, true); }, {"page-locked", "CUDA"});
  }
}

// Where page-locked memory cannot be had (here: no CUDA device; on a GPU host: the driver has
// none left), ordinary memory stands in and says why.
TEST(HostBuffer, PinnedIfPossibleFallsBackToOrdinaryMemory) {
  std::string why_not = "untouched";
  const auto block = HostBuffer::pinned_if_possible(4096, &why_not);
  ASSERT_TRUE(block);
  EXPECT_EQ(block->size(), 4096u);
  std::memset(block->data(), 9, block->size());
  EXPECT_EQ(block->data()[4095], 9);
  if (cuda_available()) {
    EXPECT_TRUE(block->pinned());
    EXPECT_EQ(why_not, "untouched");
  } else {
    EXPECT_FALSE(block->pinned());
    EXPECT_NE(why_not.find("page-locked"), std::string::npos) << why_not;
    EXPECT_NE(why_not.find("CUDA"), std::string::npos) << why_not;
  }
}

// Frames in page-locked memory are uploaded in place (asynchronously, no staging copy): the
// same detections as the staged path, for packed and planar frames with padded strides, one
// at a time and with two batches in flight (the frames must stay untouched until collect()).
TEST(DetectorCuda, PinnedFramesGiveTheStagedResults) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const NoTf32 no_tf32;
  auto dir = ssdtest::temp_dir("cuda-pinned");
  Ssd model(ssdtest::tiny_config());
  save_weights((dir / "m.safetensors").string(), model);
  DetectorOptions o;
  o.model_path = (dir / "m.safetensors").string();
  o.threshold = 0.0f;
  o.device = "cuda";
  o.max_in_flight = 2;
  const auto packed = packed_frames(2, 1280, 64, 720, 70, PixelFormat::BGRx, 24);
  const auto pic = make_picture(641, 479, 80);
  std::vector<uint8_t> y, u, v;
  to_yuv420(pic, y, u, v);
  std::vector<FrameView> staged = packed.views;
  staged.push_back(FrameView{PixelFormat::I420, pic.w, pic.h, {y.data(), u.data(), v.data()},
                             {pic.w, (pic.w + 1) / 2, (pic.w + 1) / 2}, {}});
  // The same frames copied into page-locked blocks.
  std::vector<std::unique_ptr<HostBuffer>> blocks;
  std::vector<FrameView> pinned;
  for (const auto& f : staged) {
    FrameView p = f;
    p.pinned = true;
    const int planes = is_yuv(f.format) ? 3 : 1;
    for (int i = 0; i < planes; ++i) {
      const int rows = i == 0 ? f.height : (f.height + 1) / 2;
      const size_t bytes = size_t(rows) * f.strides[i];
      blocks.push_back(std::make_unique<HostBuffer>(bytes, true));
      std::memcpy(blocks.back()->data(), f.planes[i], bytes);
      p.planes[i] = blocks.back()->data();
    }
    pinned.push_back(p);
  }
  // With CUDA graphs (all planes in one device buffer) and without (a copy per plane).
  for (const bool graphs : {true, false}) {
    SCOPED_TRACE(graphs ? "CUDA graphs" : "eager");
    o.cuda_graphs = graphs;
    Detector det(o);
    for (int round = 0; round < 3; ++round)
      for (size_t i = 0; i < staged.size(); ++i) expect_same(det.detect(pinned[i]), det.detect(staged[i]), 1e-5f);
    det.submit({pinned[0], pinned[2]});
    det.submit({pinned[1]});
    auto first = det.collect(), second = det.collect();
    // A batch of two against single frames: cuDNN may run other kernels.
    expect_same(first[0], det.detect(staged[0]), 1e-4f);
    expect_same(first[1], det.detect(staged[2]), 1e-4f);
    expect_same(second[0], det.detect(staged[1]), 1e-5f);
  }
}

// One model instance on the GPU shared by four streams (model-instance-id): one worker with
// two batches on the device, CUDA graphs per batch size; each stream gets what a private CUDA
// Detector with its own count gives (cuDNN may pick other kernels per batch size: 2e-3).
TEST(DetectorCuda, SharedInstanceGivesEachStreamItsPrivateDetections) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const NoTf32 no_tf32;
  constexpr int kStreams = 4, kFrames = 12;
  const std::vector<int> counts = {20, 5, 1, 20};
  auto dir = ssdtest::temp_dir("cuda-shared");
  Ssd model(ssdtest::tiny_config());
  save_weights((dir / "m.safetensors").string(), model);
  DetectorOptions o;
  o.model_path = (dir / "m.safetensors").string();
  o.threshold = 0.0f;
  o.device = "cuda";
  std::vector<Frames> frames;
  StreamDetections expect(kStreams);
  Detector plain(o);
  for (int s = 0; s < kStreams; ++s) {
    frames.push_back(packed_frames(kFrames, 1280 + 64 * s, 0, 720, 200 + 10 * s,
                                   s % 2 ? PixelFormat::BGRx : PixelFormat::RGBx, 8 * s));
    plain.set_postprocess(0.0f, 0.45f, counts[s]);
    for (const auto& f : frames.back().views) expect[s].push_back(plain.detect(f));
  }
  SharedDetectorOptions so;
  so.detector = o;
  so.detector.max_in_flight = 2;
  so.max_batch = kStreams;
  so.max_wait = std::chrono::milliseconds(200);
  auto instance = SharedDetector::acquire("cuda-shared", so);
  EXPECT_EQ(instance->workers(), 1);
  EXPECT_EQ(instance->device_name().rfind("cuda", 0), 0u);
  expect_streams_same(send_streams("cuda-shared", so, frames, std::vector<float>(kStreams, 0.0f), counts,
                                   std::vector<std::vector<float>>(kStreams)),
                      expect, 2e-3f);
  const auto st = instance->stats();
  EXPECT_EQ(st.frames, kStreams * kFrames);
  EXPECT_GT(st.largest_batch, 1);
  EXPECT_LT(st.batches, kStreams * kFrames);
  if (cuda_graphs_compiled()) {
    // (A batch size is captured on its third run in a slot: mostly full batches get there.)
    EXPECT_EQ(st.graphs.failures, 0) << st.graphs.last_error;
    EXPECT_GT(st.graphs.captures, 0);
  }
}

TEST(DetectorCuda, GraphsGiveTheEagerResults) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_graphs_compiled()) GTEST_SKIP() << "this build cannot capture CUDA graphs";
  const NoTf32 no_tf32;
  auto dir = ssdtest::temp_dir("cuda-graphs");
  Ssd model(ssdtest::tiny_config());
  save_weights((dir / "m.safetensors").string(), model);
  const auto packed = packed_frames(4, 1280, 0, 720, 60, PixelFormat::RGBx, 0);
  const auto& frames = packed.views;
  for (const bool half : {false, true}) {
    DetectorOptions o;
    o.model_path = (dir / "m.safetensors").string();
    o.threshold = 0.0f;
    o.device = "cuda";
    o.fp16 = half;
    o.cuda_graphs = false;
    Detector eager(o);
    EXPECT_FALSE(eager.graphs());
    o.cuda_graphs = true;
    o.max_in_flight = 2;
    Detector graphed(o);
    ASSERT_TRUE(graphed.graphs());
    for (int round = 0; round < 3; ++round) {
      for (const auto& f : frames) expect_same(graphed.detect(f), eager.detect(f), half ? 2e-3f : 1e-4f);
      graphed.submit({frames[0], frames[1]});
      graphed.submit({frames[2], frames[3]});
      auto a = graphed.collect(), b = graphed.collect();
      expect_same(a[1], eager.detect(frames[1]), half ? 2e-3f : 1e-4f);
      expect_same(b[0], eager.detect(frames[2]), half ? 2e-3f : 1e-4f);
    }
    const auto s = graphed.graph_stats();
    EXPECT_EQ(s.failures, 0) << s.last_error;
    EXPECT_EQ(s.captures, 4);   // batch 1 and 2 on each of the two slots
    EXPECT_GT(s.replays, 0);
    const auto pre = graphed.preprocess_graph_stats();
    EXPECT_EQ(pre.failures, 0) << pre.last_error;
    EXPECT_GT(pre.captures, 0);
    EXPECT_GT(pre.replays, 0);
  }
}

namespace {

// Output of the blas-probe program run with `preload` as LD_PRELOAD (and `env`, "NAME=value ").
std::string run_blas_probe(const std::string& preload, const std::string& env = "") {
  const char* probe = std::getenv("SSD_BLAS_PROBE");   // set by meson test
  if (!probe) return "(SSD_BLAS_PROBE not set: run through meson test)";
  const std::string cmd = env + "LD_PRELOAD=" + preload + " " + probe + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

// The value of the probe's line "<key> <value>" ("" if none).
std::string probe_line(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

constexpr const char* kReferenceBlas = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
constexpr const char* kOpenBlas = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3";

// Why the BLAS probes cannot run here, or "" when they can: they need Debian's LibTorch (the
// wheels bring their own BLAS) and both of Debian's BLAS builds.
std::string blas_probe_unavailable() {
  if (!std::filesystem::exists(kReferenceBlas) || !std::filesystem::exists(kOpenBlas))
    return "needs Debian's libblas3 and libopenblas0-openmp";
  Dl_info torch_cpu{};
  if (!dladdr(reinterpret_cast<void*>(&at::get_num_threads), &torch_cpu) || !torch_cpu.dli_fname)
    return "cannot find LibTorch's CPU library";
  const auto torch_path = std::filesystem::canonical(torch_cpu.dli_fname).string();
  if (torch_path.rfind("/usr/lib/", 0) != 0) return "not Debian's LibTorch (" + torch_path + "): it brings its own BLAS";
  return "";
}

}  // namespace

// Debian's libtorch-dev on the netlib reference BLAS is 5x slower: that case is reported, the
// OpenBLAS one is not. Both libraries are loaded in place of libblas.so.3 with LD_PRELOAD.
TEST(Blas, TheReferenceBlasIsReportedAndOpenBlasIsNot) {
  if (const auto why = blas_probe_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto out = run_blas_probe(kReferenceBlas);
  EXPECT_NE(out.find("sum 36864"), std::string::npos) << out;   // 8 x 8 x 8 outputs of 72
  EXPECT_NE(out.find("reference BLAS (/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"), std::string::npos) << out;
  EXPECT_NE(out.find("libopenblas0-openmp"), std::string::npos) << out;
  EXPECT_EQ(probe_line(out, "core"), "-") << out;   // not OpenBLAS: nothing to choose
  out = run_blas_probe(kOpenBlas);
  EXPECT_NE(out.find("sum 36864"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnone\n"), std::string::npos) << out;
}

TEST(Blas, CoreTypeForTheInstructionSets) {
  EXPECT_EQ(openblas_core_for(false, false, false), "");
  EXPECT_EQ(openblas_core_for(true, false, false), "Haswell");
  EXPECT_EQ(openblas_core_for(true, true, false), "SkylakeX");
  EXPECT_EQ(openblas_core_for(true, true, true), "Cooperlake");
}

// OpenBLAS falls back to its generic Prescott kernels on a CPU newer than itself (Debian 12's
// 0.3.21 on a 5th-generation Xeon, as on the development machine); the model library then
// selects the kernels of the CPU's instruction sets, whose results agree with the netlib
// reference BLAS; an OPENBLAS_CORETYPE the user set is kept. Where OpenBLAS knows the CPU,
// nothing changes.
TEST(Blas, OpenBlasOnItsPrescottFallbackGetsTheCpusKernels) {
  if (const auto why = blas_probe_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string cpu = openblas_core_for_this_cpu();
  const auto reference = run_blas_probe(kReferenceBlas);
  const auto kept = run_blas_probe(kOpenBlas, "OPENBLAS_CORETYPE=Prescott ");
  EXPECT_EQ(probe_line(kept, "kernels"), "unchanged") << kept;
  EXPECT_EQ(probe_line(kept, "core"), "Prescott") << kept;
  const auto out = run_blas_probe(kOpenBlas);
  const std::string before = probe_line(out, "initial-core");
  if (before == "Prescott" && !cpu.empty()) {
    EXPECT_EQ(probe_line(out, "core"), cpu) << out;
    EXPECT_NE(probe_line(out, "kernels").find("Prescott -> " + cpu), std::string::npos) << out;
  } else {
    EXPECT_EQ(probe_line(out, "kernels"), "unchanged") << out;
    EXPECT_EQ(probe_line(out, "core"), before) << out;
  }
  const double ref = std::stod("0" + probe_line(reference, "random"));
  ASSERT_GT(ref, 0) << reference;
  for (const auto* o : {&kept, &out}) {
    EXPECT_NE(o->find("sum 36864"), std::string::npos) << *o;
    EXPECT_NEAR(std::stod("0" + probe_line(*o, "random")), ref, 1e-5 * ref) << *o;
  }
}
