#include "detector.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include <ATen/Parallel.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <c10/util/Optional.h>

#include <torch/cuda.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "anchors.h"
#include "blas_check.h"
#include "class_filter.h"
#include "cpu_workers.h"
#include "cuda_graph.h"
#include "device.h"
#include "error.h"
#include "exit_gate.h"
#include "nms.h"
#include "ssd_model.h"
#include "weights.h"
#include "yuv.h"

namespace ssd {

namespace F = torch::nn::functional;

namespace {

struct FormatInfo {
  PixelFormat format;
  const char* name;
  int bytes_per_pixel;      // packed formats; 0 for planar YUV
  int r, g, b;              // byte offsets of R, G, B within a packed pixel
};
const FormatInfo kFormats[] = {
    {PixelFormat::RGB, "RGB", 3, 0, 1, 2},   {PixelFormat::BGR, "BGR", 3, 2, 1, 0},
    {PixelFormat::RGBx, "RGBx", 4, 0, 1, 2}, {PixelFormat::BGRx, "BGRx", 4, 2, 1, 0},
    {PixelFormat::xRGB, "xRGB", 4, 1, 2, 3}, {PixelFormat::xBGR, "xBGR", 4, 3, 2, 1},
    {PixelFormat::RGBA, "RGBA", 4, 0, 1, 2}, {PixelFormat::BGRA, "BGRA", 4, 2, 1, 0},
    {PixelFormat::NV12, "NV12", 0, 0, 0, 0}, {PixelFormat::I420, "I420", 0, 0, 0, 0},
};

const FormatInfo& info(PixelFormat f) {
  for (const auto& i : kFormats)
    if (i.format == f) return i;
  throw Error("unknown pixel format");
}

// One plane of a frame: `rows` rows of `cols` x `channels` bytes, `stride` bytes apart.
struct Plane {
  const uint8_t* data;
  int64_t rows, cols, channels, stride;
  // The bytes from the first pixel to the last (the last row's padding excluded).
  int64_t bytes() const { return (rows - 1) * stride + cols * channels; }
};

Plane plane(const uint8_t* data, int rows, int cols, int channels, int stride) {
  if (!data) throw Error("frame plane pointer is null");
  const int64_t row = static_cast<int64_t>(cols) * channels;   // no int overflow for huge widths
  if (stride < row)
    throw Error("frame stride " + std::to_string(stride) + " is smaller than a row (" + std::to_string(row) +
                " bytes)");
  return {data, rows, cols, channels, stride};
}

// The (rows, cols, channels) view of a plane's bytes (wherever they are).
torch::Tensor plane_view(const torch::Tensor& bytes, const Plane& p) {
  return bytes.as_strided({p.rows, p.cols, p.channels}, {p.stride, p.channels, 1});
}

// The planes of a frame (validated), in the order to_rgb() takes them.
std::vector<Plane> planes_of(const FrameView& f) {
  if (f.width <= 0 || f.height <= 0)
    throw Error("invalid frame size " + std::to_string(f.width) + "x" + std::to_string(f.height));
  const auto& fi = info(f.format);
  if (fi.bytes_per_pixel) return {plane(f.planes[0], f.height, f.width, fi.bytes_per_pixel, f.strides[0])};
  const int cw = f.width / 2 + f.width % 2, ch = f.height / 2 + f.height % 2;   // rounded up
  if (f.format == PixelFormat::NV12)
    return {plane(f.planes[0], f.height, f.width, 1, f.strides[0]), plane(f.planes[1], ch, cw, 2, f.strides[1])};
  return {plane(f.planes[0], f.height, f.width, 1, f.strides[0]), plane(f.planes[1], ch, cw, 1, f.strides[1]),
          plane(f.planes[2], ch, cw, 1, f.strides[2])};
}

// The whole factor the box filter shrinks n pixels by before the bilinear resize to `size`.
int64_t shrink_factor(int64_t n, int size) { return std::max<int64_t>(1, n / size); }

// The columns (rows) of a frame n pixels wide (tall) that the network sees. The box filter of
// to_rgb() shrinks by a whole factor f = shrink_factor(n, size) and leaves out the last n % f
// that do not fill a block (fewer than n / size: under 1 / size of the frame), so the network's
// picture, and the [0, 1] boxes it gives, span the first (n / f) * f; collect() scales the
// boxes by seen_fraction() to the whole frame. Planar YUV: the luma plane's, and to_rgb() takes
// the chroma of those pixels only.
int64_t seen_pixels(int64_t n, int size) {
  const int64_t factor = shrink_factor(n, size);
  return n / factor * factor;
}
std::pair<float, float> seen_fraction(const FrameView& f, int size) {
  return {static_cast<float>(double(seen_pixels(f.width, size)) / double(f.width)),
          static_cast<float>(double(seen_pixels(f.height, size)) / double(f.height))};
}

// (N, C, H, W) float -> (N, C, size, size): box-filter shrink by the integer factor first (so a
// 1080p frame is not aliased), then bilinear, as OpenCV's INTER_AREA + INTER_LINEAR do.
torch::Tensor resize_square(torch::Tensor x, int size) {
  const int64_t fh = shrink_factor(x.size(2), size), fw = shrink_factor(x.size(3), size);
  if (fh >= 2 || fw >= 2) x = F::avg_pool2d(x, F::AvgPool2dFuncOptions({fh, fw}));
  if (x.size(2) == size && x.size(3) == size) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{size, size})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

// Rows [begin, end) of box_filter_host's output, for planes of C bytes a pixel, the column sums
// kept in Acc (uint16_t while fh bytes of 255 fit in it: the widening adds of the first loop
// vectorise 16 bytes at a time, where float sums took a conversion per byte; packed 1080p
// frames 10-25 % more fps through ssddetect on the CPU, bench/RESULTS.md, 2026-12-05).
template <typename Acc, int C>
void box_filter_rows(const uint8_t* base, int64_t stride, int64_t fh, int64_t fw, int64_t h2, int64_t w2,
                     const std::vector<int64_t>& channels, float mul, float* o, int64_t begin, int64_t end) {
  const int64_t row_len = w2 * fw * C, K = int64_t(channels.size());
  std::vector<Acc> acc(static_cast<size_t>(row_len));
  for (int64_t y = begin; y < end; ++y) {
    std::fill(acc.begin(), acc.end(), Acc(0));
    Acc* a = acc.data();
    for (int64_t r = 0; r < fh; ++r) {
      const uint8_t* row = base + (y * fh + r) * stride;
      for (int64_t i = 0; i < row_len; ++i) a[i] = static_cast<Acc>(a[i] + row[i]);
    }
    for (int64_t x = 0; x < w2; ++x) {
      uint32_t sum[C] = {};
      const Acc* p = a + x * fw * C;
      for (int64_t j = 0; j < fw; ++j)
        for (int c = 0; c < C; ++c) sum[c] += p[j * C + c];
      for (int64_t k = 0; k < K; ++k) o[(k * h2 + y) * w2 + x] = static_cast<float>(sum[channels[size_t(k)]]) * mul;
    }
  }
}

// resize_square's box filter (avg_pool2d with kernel = stride = (fh, fw)) of a (rows, cols, C)
// uint8 plane in host memory, read straight from its bytes: (1, channels.size(), rows / fh,
// cols / fw) float, channel k from byte channels[k] of each pixel, each block's mean times
// `scale`. LibTorch's ops took a float copy of the whole frame and reduced over a block's few
// bytes per pixel, most of the CPU's preprocessing (bench/RESULTS.md, 2026-12-03). The sums are
// integers, exact, so each output is the float of the block's sum times scale / (fh * fw).
torch::Tensor box_filter_host(const torch::Tensor& px, int64_t fh, int64_t fw, const std::vector<int64_t>& channels,
                              float scale) {
  TORCH_CHECK(px.is_cpu() && px.dim() == 3 && px.scalar_type() == torch::kUInt8 && px.stride(2) == 1 &&
                  px.stride(1) == px.size(2) && px.size(2) >= 1 && px.size(2) <= 4,
              "box_filter_host: a (rows, cols, 1 to 4 channels) uint8 host plane, got ", px.sizes(), " strides ",
              px.strides());
  const int64_t C = px.size(2), h2 = px.size(0) / fh, w2 = px.size(1) / fw;
  for (int64_t c : channels) TORCH_CHECK(c >= 0 && c < C, "box_filter_host: channel ", c, " of ", C);
  auto out = torch::empty({1, int64_t(channels.size()), h2, w2}, torch::kFloat32);
  const uint8_t* base = px.data_ptr<uint8_t>();
  const int64_t stride = px.stride(0);
  float* o = out.data_ptr<float>();
  const float mul = scale / static_cast<float>(fh * fw);
  const bool narrow = fh * 255 <= 65535;
  at::parallel_for(0, h2, 8, [&](int64_t begin, int64_t end) {
    auto run = [&](auto acc_tag, auto c_tag) {
      box_filter_rows<decltype(acc_tag), decltype(c_tag)::value>(base, stride, fh, fw, h2, w2, channels, mul, o,
                                                                  begin, end);
    };
    auto with_c = [&](auto acc_tag) {
      switch (C) {
        case 1: return run(acc_tag, std::integral_constant<int, 1>{});
        case 2: return run(acc_tag, std::integral_constant<int, 2>{});
        case 3: return run(acc_tag, std::integral_constant<int, 3>{});
        default: return run(acc_tag, std::integral_constant<int, 4>{});
      }
    };
    if (narrow) with_c(uint16_t{});
    else with_c(uint32_t{});
  });
  return out;
}

// resize_square of a (rows, cols, C) uint8 plane's channels `channels`, times `scale`.
torch::Tensor resize_plane_host(const torch::Tensor& px, int size, const std::vector<int64_t>& channels, float scale) {
  const int64_t fh = shrink_factor(px.size(0), size), fw = shrink_factor(px.size(1), size);
  return resize_square(box_filter_host(px, fh, fw, channels, scale), size);
}

}  // namespace

PixelFormat pixel_format_from_string(const std::string& name) {
  for (const auto& i : kFormats)
    if (name == i.name) return i.format;
  throw Error("unsupported pixel format '" + name + "'");
}
const char* to_string(PixelFormat format) { return info(format).name; }
bool is_yuv(PixelFormat format) { return info(format).bytes_per_pixel == 0; }

bool cuda_available() { return torch::cuda::is_available(); }

struct Detector::Impl {
  DetectorOptions options;
  torch::Device device{torch::kCPU};
  bool half = false;
  Ssd model{nullptr};
  int folded_batchnorms = 0;
  int fused_output_convs = 0;
  Anchors anchors;
  torch::Tensor mean, inv_std;   // (1, 3, 1, 1) on the device
  std::mutex mutex;              // guards pp
  PostprocessOptions pp;

  bool fixed = false;             // fixed-shape, sync-free output stage (always on CUDA)

  // On the CPU with max_in_flight > 1, each slot computes its batches on a thread of its own,
  // so that consecutive batches run side by side on the cores (one intra-op thread each is the
  // efficient setting): submit() hands the batch over and returns, collect() waits for it.
  class CpuWorker {
   public:
    CpuWorker() : thread_([this] { run(); }) {}
    ~CpuWorker() {
      {
        std::lock_guard<std::mutex> lock(m_);
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    void post(std::function<void()> job) {
      {
        std::lock_guard<std::mutex> lock(m_);
        job_ = std::move(job);
        done_ = false;
        error_ = nullptr;
      }
      cv_.notify_all();
    }
    // Whether the posted job has finished (wait() would return at once).
    bool done() {
      std::lock_guard<std::mutex> lock(m_);
      return done_;
    }
    // Waits for the posted job; rethrows what it threw. Returns how long the job ran.
    std::chrono::nanoseconds wait() {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [this] { return done_; });
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return took_;
    }

   private:
    void run() {
      std::unique_lock<std::mutex> lock(m_);
      for (;;) {
        cv_.wait(lock, [this] { return stop_ || job_; });
        if (!job_) return;   // stopping, nothing left to do
        auto job = std::move(job_);
        job_ = nullptr;
        lock.unlock();
        std::exception_ptr error;
        const auto start = std::chrono::steady_clock::now();
        try {
          ExitGate::Pass pass;
          job();
        } catch (...) {
          error = std::current_exception();
        }
        const auto took = std::chrono::steady_clock::now() - start;
        lock.lock();
        error_ = error;
        took_ = took;
        done_ = true;
        cv_.notify_all();
      }
    }
    std::mutex m_;
    std::condition_variable cv_;
    std::function<void()> job_;
    bool done_ = true, stop_ = false;
    std::exception_ptr error_;
    std::chrono::nanoseconds took_{0};
    std::thread thread_;   // last: starts once the members above exist
  };

  // One batch between submit() and collect(): its pinned host staging for the uploads (one
  // buffer per frame plane, reused by later batches in this slot), its CUDA stream, and its
  // result. A slot is reused only after collect() has synchronised its stream, so its staging
  // and result buffers are free again by then.
  struct Slot {
    std::unique_ptr<CpuWorker> worker;   // CPU, max_in_flight > 1
    std::vector<torch::Tensor> staging;
    size_t staging_used = 0;
    std::unique_ptr<OwnedCudaStream> owned_stream;   // CUDA only
    c10::optional<c10::Stream> stream;               // owned_stream's
    size_t frames = 0;
    std::vector<std::pair<float, float>> seen;  // each frame's seen_fraction()
    std::vector<std::vector<Detection>> ready;  // CPU path: computed by submit()
    std::chrono::nanoseconds computed{0};       // CPU: how long the batch's computation took
    bool has_packed = false;
    torch::Tensor packed;   // fixed path: (B, M * 6 + 2) host rows, pinned on CUDA
    torch::Tensor cls, box; // fixed path: network outputs on the device, for the exact fallback
    PostprocessOptions pp;
    // The slot's graphs (null: the fixed-shape stage runs eagerly): a slot's own, so that a
    // replay never overwrites the outputs of a batch another slot has not collected yet, and
    // captured on its stream. pre_cache holds the preprocessing of one frame (its bytes -> its
    // normalised picture), keyed by the frame's layout, so that batches of any size replay the
    // same graphs; graph_cache the network and output stage, keyed by the (padded, see
    // graph_batch()) batch size and the output settings.
    std::unique_ptr<GraphCache> pre_cache, graph_cache;
  };
  std::vector<Slot> slots;
  size_t head = 0, pending = 0;   // ring of slots: the oldest pending one, how many are pending
  std::chrono::nanoseconds last_compute{0};   // the last collected batch's (compute_time())
  Slot* filling = nullptr;        // the slot submit() is uploading into

  ~Impl() {
    for (auto& s : slots) s.worker.reset();   // a batch still computing finishes first
    for (auto& s : slots) {
      if (!s.stream) continue;
      try {
        s.stream->synchronize();   // no copy may still target memory freed below
      } catch (...) {
      }
    }
  }

  // A host plane's bytes (the byte range from its first to its last pixel, one block) as a
  // host tensor an asynchronous copy may read until the slot's stream has passed it: on CUDA a
  // pinned plane (FrameView::pinned) where it lies, others copied (one memcpy) into the slot's
  // pinned staging memory; on the CPU the caller's memory itself.
  torch::Tensor host_bytes(const Plane& p, bool pinned) {
    auto bytes = torch::from_blob(const_cast<uint8_t*>(p.data), {p.bytes()}, torch::kUInt8);
    if (!device.is_cuda() || pinned) return bytes;
    auto& staging = filling->staging;
    if (filling->staging_used == staging.size()) staging.emplace_back();
    auto& buf = staging[filling->staging_used++];
    if (!buf.defined() || buf.numel() != bytes.numel())
      buf = torch::empty({bytes.numel()}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    buf.copy_(bytes);
    return buf;
  }

  // A host plane -> its (rows, cols, channels) uint8 view on the device: its bytes travel as one
  // block, asynchronously on the current (the slot's) stream, and the strided view is taken on
  // the device. On the CPU the view of the caller's memory (no copy).
  torch::Tensor upload(const Plane& p, bool pinned) {
    return plane_view(host_bytes(p, pinned).to(device, /*non_blocking=*/true), p);
  }

  // The normalised network input of host frames (their planes uploaded, then preprocess()).
  torch::Tensor input_of(const std::vector<FrameView>& frames) {
    std::vector<std::vector<torch::Tensor>> planes;
    for (const auto& f : frames) {
      planes.emplace_back();
      for (const auto& p : planes_of(f)) planes.back().push_back(upload(p, f.pinned));
    }
    return preprocess(frames, planes);
  }

  // The normalised network input (B, 3, S, S) of frames whose planes are on the device.
  torch::Tensor preprocess(const std::vector<FrameView>& frames, const std::vector<std::vector<torch::Tensor>>& planes) {
    std::vector<torch::Tensor> inputs;
    inputs.reserve(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) inputs.push_back(to_rgb(frames[i], planes[i]));
    auto x = (torch::cat(inputs, 0) - mean) * inv_std;
    if (half) x = x.to(torch::kHalf);
    return x.contiguous(torch::MemoryFormat::ChannelsLast);
  }

  // The same with the preprocessing of each frame replayed from the slot's graph for the
  // frame's layout (format, size, strides, YUV matrix): the frame's planes go to the device as
  // one byte buffer (each plane at a 256-byte aligned offset), and its normalised picture is
  // copied into the batch before the next replay of that graph overwrites it. The batch has
  // graph_batch(frames) rows; the rows past the frames are zeros.
  torch::Tensor preprocess_on_graph(Slot& slot, const std::vector<FrameView>& frames) {
    const int64_t B = static_cast<int64_t>(frames.size()), S = model->config().input_size;
    const auto options = torch::TensorOptions().dtype(half ? torch::kHalf : torch::kFloat32).device(device)
                             .memory_format(torch::MemoryFormat::ChannelsLast);
    auto x = torch::empty({graph_batch(B), 3, S, S}, options);
    if (x.size(0) > B) x.narrow(0, B, x.size(0) - B).zero_();
    for (int64_t i = 0; i < B; ++i) {
      const FrameView& f = frames[static_cast<size_t>(i)];
      std::ostringstream layout;
      layout << std::setprecision(17) << to_string(f.format) << ' ' << f.width << 'x' << f.height;
      const auto planes = planes_of(f);
      std::vector<int64_t> offsets;
      int64_t total = 0;
      for (const auto& p : planes) {
        offsets.push_back(total);
        total += (p.bytes() + 255) / 256 * 256;
        layout << ' ' << p.stride;
      }
      if (is_yuv(f.format)) layout << ' ' << f.yuv.kr << ' ' << f.yuv.kb << ' ' << f.yuv.full_range;
      auto flat = torch::empty({total}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
      for (size_t j = 0; j < planes.size(); ++j)
        flat.narrow(0, offsets[j], planes[j].bytes()).copy_(host_bytes(planes[j], f.pinned), /*non_blocking=*/true);
      auto fn = [this, f, planes, offsets](const torch::Tensor& in) {
        std::vector<torch::Tensor> views;
        for (size_t j = 0; j < planes.size(); ++j)
          views.push_back(plane_view(in.narrow(0, offsets[j], planes[j].bytes()), planes[j]));
        return std::vector<torch::Tensor>{preprocess({f}, {views})};
      };
      x.narrow(0, i, 1).copy_(slot.pre_cache->run(flat, layout.str(), fn)[0]);
    }
    return x;
  }

  // The batch size a graphed batch of B frames runs at: the next power of two up to 8, then the
  // next multiple of 8. Batches of varying size (partial batches, several streams sharing the
  // model) then replay a few graphs instead of warming up and capturing one per size; the padding
  // costs compute only where a batch is small enough to be bound by kernel launches anyway, or
  // at most 7 pictures of a larger one.
  static int64_t graph_batch(int64_t B) {
    if (B > 8) return (B + 7) / 8 * 8;
    int64_t p = 1;
    while (p < B) p *= 2;
    return p;
  }

  // Network + fixed-shape output stage on the normalised batch x: (B, M * 6 + 2) rows = the
  // detections, the count and the convergence flag of each image, then the network's outputs.
  std::vector<torch::Tensor> fixed_stage(const torch::Tensor& x, const PostprocessOptions& pp) {
    auto [cls, box] = model->forward(x);
    auto f = postprocess_fixed(cls, box, anchors, pp);
    const auto B = x.size(0);
    auto packed = torch::cat({f.packed.reshape({B, -1}), f.counts.to(torch::kFloat32).unsqueeze(1),
                              f.converged.to(torch::kFloat32).unsqueeze(1)},
                             1);
    return {packed, cls, box};
  }

  // fixed_stage on the slot's graph for this shape and these settings (or eagerly).
  std::vector<torch::Tensor> run_fixed_stage(Slot& slot, const torch::Tensor& x) {
    const PostprocessOptions pp = slot.pp;
    if (!slot.graph_cache) return fixed_stage(x, pp);
    std::ostringstream tag;   // the settings postprocess_fixed bakes into its kernels
    tag << std::setprecision(17) << pp.score_threshold << ' ' << pp.nms_iou << ' ' << pp.class_agnostic << ' '
        << pp.max_detections << ' ' << pp.pre_nms_top_k;
    for (float t : pp.class_thresholds) tag << ' ' << t;
    return slot.graph_cache->run(x, tag.str(),
                                 [this, pp](const torch::Tensor& in) { return fixed_stage(in, pp); });
  }

  // R, G, B byte offsets of each packed format as index tensors on the device, made by the
  // constructor (a tensor built from host values per frame would be a synchronous upload).
  std::vector<torch::Tensor> channel_indices;
  const torch::Tensor& channel_index(const FormatInfo& fi) {
    return channel_indices[static_cast<size_t>(&fi - kFormats)];
  }

  // One frame, its planes on the device (planes_of()'s order, (rows, cols, channels) uint8
  // views) -> (1, 3, S, S) float RGB in [0, 1].
  torch::Tensor to_rgb(const FrameView& f, const std::vector<torch::Tensor>& planes) {
    const int S = model->config().input_size;
    const auto& fi = info(f.format);
    if (fi.bytes_per_pixel) {
      const auto& px = planes[0];
      if (px.is_cpu()) return resize_plane_host(px, S, {fi.r, fi.g, fi.b}, 1.0f / 255.0f);
      // On the GPU, the integer-factor box filter in the frame's own (H, W, bytes) layout with
      // LibTorch's ops (before box_filter_host, the CPU's too): the float copy and
      // both sums read memory in order, and only the small result is transposed to CHW
      // (1080p RGBx: 54 -> 22 ms a frame on one core, bench/RESULTS.md). Same result as
      // resize_square's avg_pool2d step.
      const auto& idx = channel_index(fi);
      const int64_t bpp = fi.bytes_per_pixel;
      const int64_t fh = shrink_factor(f.height, S), fw = shrink_factor(f.width, S);
      const int64_t h2 = f.height / fh, w2 = f.width / fw;
      auto fl = px.narrow(0, 0, h2 * fh).narrow(1, 0, w2 * fw).to(torch::kFloat32).contiguous();
      auto box = fl.view({h2, fh, w2 * fw * bpp}).sum(1).view({h2, w2, fw, bpp}).sum(2);
      auto rgb = box.index_select(2, idx).permute({2, 0, 1}).unsqueeze(0).contiguous()
                     .mul_(1.0 / (255.0 * double(fh * fw)));
      return resize_square(rgb, S);
    }
    // Planar YUV 4:2:0: resize the planes first (conversion is affine, so it commutes with
    // resizing), then convert only S x S pixels.
    const auto& y = planes[0];
    auto yf = y.is_cpu() ? resize_plane_host(y, S, {0}, 1.0f)
                         : resize_square(y.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32), S);
    // The chroma of the luma pixels the network sees (seen_pixels()): with an even luma factor
    // the chroma planes then shrink by half of it and cover the same part of the frame exactly.
    auto chroma = [&](int i) {
      return planes[size_t(i)]
          .narrow(0, 0, (seen_pixels(f.height, S) + 1) / 2)
          .narrow(1, 0, (seen_pixels(f.width, S) + 1) / 2);
    };
    torch::Tensor uvf;
    if (y.is_cpu()) {
      // Each chroma plane filtered from its own bytes (I420's U and V are not copied together).
      uvf = f.format == PixelFormat::NV12
                ? resize_plane_host(chroma(1), S, {0, 1}, 1.0f)
                : torch::cat({resize_plane_host(chroma(1), S, {0}, 1.0f), resize_plane_host(chroma(2), S, {0}, 1.0f)}, 1);
    } else {
      const torch::Tensor uv = f.format == PixelFormat::NV12 ? chroma(1) : torch::cat({chroma(1), chroma(2)}, 2);
      uvf = resize_square(uv.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32), S);
    }
    return yuv_to_rgb(yf, uvf, f.yuv);
  }
};

Detector::Detector(const DetectorOptions& options) : impl_(std::make_unique<Impl>()) {
  ExitGate::Pass pass;
  auto& d = *impl_;
  d.options = options;
  if (options.model_path.empty()) throw Error("no model file given");
  d.device = parse_device(options.device);
  d.half = options.fp16 && d.device.is_cuda();
  // In flight and threads of 0: chosen for this machine (a worker per batch in flight on the CPU,
  // the CPUs shared among them).
  const bool cpu_workers = !d.device.is_cuda() && !options.fixed_postprocess;
  const WorkerCounts counts = resolve_workers(options.max_in_flight, options.threads, cpu_workers, usable_cpus());
  d.options.max_in_flight = counts.in_flight;
  d.options.threads = counts.threads;
  // LibTorch's intra-op threads are OpenMP's, and OpenMP (libgomp) keeps a pool of workers for
  // each thread that runs a parallel region. ssddetect constructs its detector in the
  // application's thread (start()) and detects in its streaming thread; loading the weights here
  // with 2 threads left a pool (an idle worker) in the application's thread, and with it the
  // streaming thread's 2 threads ran slower than 1 (2 CPUs, 640x480: 93 fps against 150, and 31
  // fps with LibTorch 2.6's default of 2 threads; without that pool 163 and 154 fps;
  // bench/RESULTS.md, 2026-12-03), most likely as libgomp stops its workers spinning between
  // regions once its pools hold more threads than there are CPUs. So the constructing thread
  // loads with one thread (no pool), and the count is set at the end for the threads that detect.
  // (LibTorch hands the count to a thread at its first parallel region: one that starts its
  // first inference while another detector loads gets 1.)
  // (The count asked for, or the one found: threads chosen for CPU workers are the workers' own.)
  const int threads = options.threads > 0 ? options.threads : torch::get_num_threads();
  torch::set_num_threads(1);
  struct RestoreThreads {
    int n;
    ~RestoreThreads() { torch::set_num_threads(n); }
  } restore_threads{threads};
  select_openblas_kernels();   // before this process's first BLAS call
  try {
    d.model = load_weights(options.model_path, d.device);
  } catch (const c10::Error& e) {
    throw Error(options.model_path + ": " + e.what_without_backtrace());
  }
  // The body's BatchNorms folded into its convolutions, in double precision before any fp16:
  // the default model's forward on the CPU 2.28 / 2.30 -> 2.20 / 2.16 ms at batch 1, 11.6 / 11.2
  // -> 10.6 / 10.8 ms at batch 8 (one thread; bench/RESULTS.md, 2026-12-04, BatchNorm folding).
  // And each grid's class and box convolutions as one (they read the same map): one im2col and
  // one matrix product instead of two. The default model's forward on the CPU with two threads
  // 1.885 -> 1.78 ms at batch 1 and 6.45 -> 5.91 ms at batch 8 (medians of six; one thread: within
  // noise; bench/RESULTS.md, 2026-12-05, output convolutions fused).
  const auto fusion = d.model->fuse_for_inference();
  d.folded_batchnorms = fusion.folded_batchnorms;
  d.fused_output_convs = fusion.fused_output_convs;
  if (d.half) d.model->to(torch::kHalf);
  // Channels-last weights and inputs: tensor-core friendly on CUDA; on the CPU LibTorch then
  // takes its channels-last convolutions, where NCHW batch-1 inputs of the head's and the late
  // body's small maps go to its im2col path (the default model's detector at 640x480: 138 -> 164
  // images/s with one thread, bench/RESULTS.md, 2026-12-03).
  d.model->to_channels_last();
  if (d.device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);   // input shapes are fixed
  d.anchors = make_anchors(d.model->config()).to(d.device);
  const auto& c = d.model->config();
  auto fopt = torch::TensorOptions().dtype(torch::kFloat32).device(d.device);
  d.mean = torch::tensor({c.mean[0], c.mean[1], c.mean[2]}, fopt).view({1, 3, 1, 1});
  d.inv_std = 1.0 / torch::tensor({c.std[0], c.std[1], c.std[2]}, fopt).view({1, 3, 1, 1});
  d.pp.class_agnostic = options.class_agnostic_nms;
  set_postprocess(options.threshold, options.nms_iou, options.max_detections);
  for (const auto& fi : kFormats)
    d.channel_indices.push_back(torch::tensor({int64_t(fi.r), int64_t(fi.g), int64_t(fi.b)}, torch::kLong).to(d.device));
  d.fixed = d.device.is_cuda() || options.fixed_postprocess;
  const bool graphs = d.fixed && (d.device.is_cuda() ? options.cuda_graphs && cuda_graphs_compiled()
                                                     : options.emulate_graphs);
  d.slots.resize(static_cast<size_t>(d.options.max_in_flight));
  if (!d.device.is_cuda() && !d.fixed && d.slots.size() > 1)
    for (auto& slot : d.slots) slot.worker = std::make_unique<Impl::CpuWorker>();
  if (graphs) {
    const GraphKind kind = d.device.is_cuda() ? GraphKind::Cuda : GraphKind::Emulated;
    for (auto& slot : d.slots) {
      // Frame layouts: a few cameras of different sizes sharing the model. Network graphs: the
      // 11 padded batch sizes up to 64 (graph_batch: 1, 2, 4, 8, 16, 24, ... 64) with one
      // setting, or the small ones with a few.
      slot.pre_cache = std::make_unique<GraphCache>(kind, 2, 8);
      slot.graph_cache = std::make_unique<GraphCache>(kind, 2, 12);
    }
  }
  if (d.device.is_cuda()) {
    for (auto& slot : d.slots) {
      slot.owned_stream = std::make_unique<OwnedCudaStream>(d.device);
      slot.stream = slot.owned_stream->stream();
    }
    // The weights, anchors and constants were written on this thread's current stream; the
    // slots' streams wait for them on the device. (Not a device-wide synchronisation: that is
    // invalid while another thread captures a CUDA graph, as another element's streaming thread
    // may, or this element's while a new model loads.)
    c10::Event written(c10::DeviceType::CUDA);
    written.record(c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStream(d.device));
    for (auto& slot : d.slots) written.block(*slot.stream);
  }
  ExitGate::arm(ExitGate::Stage::kLoaded);   // (an exit during the first inference waits for it too)
}

Detector::~Detector() {
  try {
    ExitGate::Pass pass;
    impl_.reset();
  } catch (const Error&) {   // the process is exiting: LibTorch's statics may be gone, its tensors are left
    (void)impl_.release();
  }
}

// The most candidates per frame of the fixed-shape output stage (postprocess_fixed), whose
// (B, k, k) IoU and suppression matrices grow with k squared: 9 MB a frame at the default
// k = 400, 52 MB at 1024, 802 MB at 4096 (bench/RESULTS.md, 2026-12-05, night).
constexpr int kMaxFixedCandidates = 1024;

void Detector::set_postprocess(float threshold, float nms_iou, int max_detections,
                               std::vector<float> class_thresholds) {
  // (NaN would leave the candidates' order, and the threshold tensors keyed by value, undefined.)
  if (std::isnan(threshold) || std::isnan(nms_iou)) throw Error("the threshold and the NMS IoU must be numbers, not NaN");
  check_class_thresholds(class_thresholds, labels().size(), /*per_image=*/true);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->pp.class_thresholds = std::move(class_thresholds);
  impl_->pp.score_threshold = threshold;
  impl_->pp.nms_iou = nms_iou;
  impl_->pp.max_detections = std::max(0, max_detections);
  impl_->pp.pre_nms_top_k = static_cast<int>(std::clamp<int64_t>(4 * int64_t{max_detections}, 400, kMaxCandidates));
}

namespace {

// One result row (label, score, x1, y1, x2, y2) as a Detection.
Detection from_row(const float* r) {
  Detection det;
  det.label_id = static_cast<int>(r[0]);
  det.confidence = r[1];
  det.x_min = r[2];
  det.y_min = r[3];
  det.x_max = r[4];
  det.y_max = r[5];
  return det;
}

// Dynamic post-processing results -> per-image detections, with one device-to-host copy:
// (n, 7) rows = image, label, score, x1, y1, x2, y2.
std::vector<std::vector<Detection>> download(const std::vector<ImageDetections>& dets) {
  std::vector<std::vector<Detection>> out(dets.size());
  std::vector<torch::Tensor> rows;
  for (size_t i = 0; i < dets.size(); ++i) {
    const auto& r = dets[i];
    auto n = r.scores.size(0);
    rows.push_back(torch::cat({torch::full({n, 1}, double(i), r.boxes.options()),
                               r.labels.to(torch::kFloat32).unsqueeze(1), r.scores.unsqueeze(1), r.boxes},
                              1));
  }
  if (rows.empty()) return out;
  auto host = torch::cat(rows, 0).to(torch::kCPU).contiguous();
  auto a = host.accessor<float, 2>();
  for (int64_t i = 0; i < host.size(0); ++i) {
    out[static_cast<size_t>(a[i][0])].push_back(from_row(&a[i][1]));
  }
  return out;
}

}  // namespace

namespace {

// `threads` (> 0) intra-op threads for the calling thread. LibTorch's count (OpenMP's) is per
// thread once the thread has run a parallel region, but a thread's first region takes the
// process-wide value set last, whichever detector set it: so each detector sets its own count in
// the thread that runs it (get_num_threads() does that first initialisation). 0: as it is.
void use_threads(int threads) {
  if (threads > 0 && torch::get_num_threads() != threads) torch::set_num_threads(threads);
}

}  // namespace

void Detector::submit(const std::vector<FrameView>& frames) {
  ExitGate::Pass pass;
  auto& d = *impl_;
  if (d.pending == d.slots.size())
    throw Error("submit: " + std::to_string(d.pending) + " batch(es) already in flight (max_in_flight " +
                std::to_string(d.slots.size()) + "); collect() first");
  auto& slot = d.slots[(d.head + d.pending) % d.slots.size()];
  // The threads count of the thread that computes: this one, or the slot's worker (then this
  // thread's, which another detector may share, is left as it is).
  if (!slot.worker) use_threads(d.options.threads);
  slot.frames = frames.size();
  slot.seen.clear();
  for (const auto& f : frames) slot.seen.push_back(seen_fraction(f, d.model->config().input_size));
  slot.ready.clear();
  slot.computed = std::chrono::nanoseconds(0);
  slot.has_packed = false;
  slot.cls = slot.box = torch::Tensor();
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    slot.pp = d.pp;
  }
  // The eager output stage: the detections of a batch's network input, computed now.
  auto eager_output = [&d, &slot](const torch::Tensor& x) {
    auto [cls, box] = d.model->forward(x);
    slot.ready = download(postprocess(cls, box, d.anchors, slot.pp));
  };
  if (slot.worker && !frames.empty()) {
    for (const auto& f : frames) planes_of(f);   // a malformed frame fails here, as on one thread
    slot.worker->post([&d, eager_output, frames] {
      use_threads(d.options.threads);   // the worker's thread computes: its count too
      try {
        c10::InferenceMode guard;
        eager_output(d.input_of(frames));
      } catch (const c10::Error& e) {
        throw Error(std::string("inference failed: ") + e.what_without_backtrace());
      }
    });
    d.pending++;
    return;
  }
  if (!frames.empty()) {
    const auto start = std::chrono::steady_clock::now();
    try {
      c10::InferenceMode guard;
      c10::optional<c10::StreamGuard> on_stream;
      if (slot.stream) on_stream.emplace(*slot.stream);
      d.filling = &slot;
      slot.staging_used = 0;
      const torch::Tensor x = slot.pre_cache ? d.preprocess_on_graph(slot, frames) : d.input_of(frames);
      // The fixed-shape stage holds a candidates x candidates matrix per frame: for more
      // candidates than kMaxFixedCandidates (max_detections above 256) the eager stage runs
      // instead (on CUDA it synchronises with the host).
      if (!d.fixed || slot.pp.pre_nms_top_k > kMaxFixedCandidates) {
        eager_output(x);
      } else {
        // Fixed shapes, no host synchronisation: one (B, M * 6 + 2) block = the detections,
        // the count and the convergence flag of each image, copied back asynchronously.
        auto out = d.run_fixed_stage(slot, x);
        // Graphed batches are padded (graph_batch()): the frames' rows only.
        const auto B = static_cast<int64_t>(frames.size());
        const auto packed = out[0].narrow(0, 0, B);
        if (d.device.is_cuda()) {
          if (!slot.packed.defined() || slot.packed.sizes() != packed.sizes())
            slot.packed = torch::empty(packed.sizes(),
                                       torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
          slot.packed.copy_(packed, /*non_blocking=*/true);
        } else {
          slot.packed = packed.contiguous();
        }
        slot.has_packed = true;
        slot.cls = out[1].narrow(0, 0, B);
        slot.box = out[2].narrow(0, 0, B);
      }
    } catch (...) {
      d.filling = nullptr;
      // Copies queued before the failure (of LibTorch, or of a frame found malformed after
      // others were queued) may still read the caller's (pinned) frames.
      if (slot.stream) {
        try {
          slot.stream->synchronize();
        } catch (...) {
        }
      }
      try {
        throw;
      } catch (const c10::Error& e) {
        throw Error(std::string("inference failed: ") + e.what_without_backtrace());
      }
    }
    d.filling = nullptr;
    if (!slot.stream) slot.computed = std::chrono::steady_clock::now() - start;   // (CUDA: queued only)
  }
  d.pending++;
}

std::vector<std::vector<Detection>> Detector::collect() {
  ExitGate::Pass pass;
  // (Once LibTorch has computed, and made the statics it makes on first use.)
  struct ArmWhenDone {
    ~ArmWhenDone() { ExitGate::arm(ExitGate::Stage::kComputed); }
  } arm;
  auto& d = *impl_;
  if (d.pending == 0) throw Error("collect: no batch in flight");
  auto& slot = d.slots[d.head];
  if (!slot.worker) use_threads(d.options.threads);   // (ssddetect may collect in another thread than it submits)
  d.head = (d.head + 1) % d.slots.size();
  d.pending--;
  std::vector<std::vector<Detection>> out(slot.frames);
  d.last_compute = slot.computed;
  if (slot.worker) {
    const auto took = slot.worker->wait();   // rethrows the batch's error
    if (slot.frames > 0) d.last_compute = took;   // (no frames: no job was posted)
  }
  // The boxes of the part of each frame the network saw, in [0, 1] of the whole frame.
  auto to_frames = [&slot](std::vector<std::vector<Detection>>& dets) {
    for (size_t b = 0; b < dets.size() && b < slot.seen.size(); ++b) {
      const auto [sx, sy] = slot.seen[b];
      if (sx == 1.0f && sy == 1.0f) continue;
      for (auto& det : dets[b]) {
        det.x_min *= sx;
        det.x_max *= sx;
        det.y_min *= sy;
        det.y_max *= sy;
      }
    }
  };
  try {
    if (slot.stream) slot.stream->synchronize();
    if (!slot.has_packed) {
      out = std::move(slot.ready);
      out.resize(slot.frames);
      to_frames(out);
      return out;
    }
    auto a = slot.packed.accessor<float, 2>();
    const int64_t cols = slot.packed.size(1), M = (cols - 2) / 6;
    bool converged = true;
    for (int64_t b = 0; b < slot.packed.size(0); ++b) converged = converged && a[b][cols - 1] > 0.5f;
    if (!converged) {
      // A suppression chain longer than the fixed number of NMS steps (rare): the exact,
      // synchronising output stage on the same network outputs.
      c10::InferenceMode guard;
      c10::optional<c10::StreamGuard> on_stream;
      if (slot.stream) on_stream.emplace(*slot.stream);
      out = download(postprocess(slot.cls, slot.box, d.anchors, slot.pp));
    } else {
      for (int64_t b = 0; b < slot.packed.size(0); ++b) {
        const auto n = std::min<int64_t>(static_cast<int64_t>(a[b][cols - 2]), M);
        auto& dets = out[static_cast<size_t>(b)];
        dets.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          dets.push_back(from_row(&a[b][i * 6]));
        }
      }
    }
  } catch (const c10::Error& e) {
    slot.cls = slot.box = torch::Tensor();
    throw Error(std::string("inference failed: ") + e.what_without_backtrace());
  }
  slot.cls = slot.box = torch::Tensor();
  to_frames(out);
  return out;
}

bool Detector::ready() const {
  ExitGate::Pass pass;
  const auto& d = *impl_;
  if (d.pending == 0) return false;
  const auto& slot = d.slots[d.head];
  if (slot.worker && !slot.worker->done()) return false;
  try {
    return !slot.stream || slot.stream->query();   // the stream's queued work (and download) is done
  } catch (const c10::Error& e) {
    throw Error(std::string("inference failed: ") + e.what_without_backtrace());
  }
}

int Detector::in_flight() const { return static_cast<int>(impl_->pending); }
std::chrono::nanoseconds Detector::compute_time() const { return impl_->last_compute; }
int Detector::max_in_flight() const { return static_cast<int>(impl_->slots.size()); }

std::vector<std::vector<Detection>> Detector::detect(const std::vector<FrameView>& frames) {
  if (impl_->pending)
    throw Error("detect: " + std::to_string(impl_->pending) + " batch(es) in flight; collect() them first");
  submit(frames);
  return collect();
}

std::vector<Detection> Detector::detect(const FrameView& frame) {
  return std::move(detect(std::vector<FrameView>{frame})[0]);
}

void check_frame(const FrameView& frame) { planes_of(frame); }

const SsdConfig& Detector::config() const { return impl_->model->config(); }
const std::vector<std::string>& Detector::labels() const { return impl_->model->config().labels; }
std::string Detector::device_name() const { return impl_->device.str(); }
bool Detector::fp16() const { return impl_->half; }
int Detector::folded_batchnorms() const { return impl_->folded_batchnorms; }
int Detector::fused_output_convs() const { return impl_->fused_output_convs; }
bool Detector::graphs() const { return impl_->slots.front().graph_cache != nullptr; }

GraphStats Detector::graph_stats() const {
  GraphStats total;
  for (const auto& slot : impl_->slots)
    if (slot.graph_cache) total += slot.graph_cache->stats();
  return total;
}

GraphStats Detector::preprocess_graph_stats() const {
  GraphStats total;
  for (const auto& slot : impl_->slots)
    if (slot.pre_cache) total += slot.pre_cache->stats();
  return total;
}

}  // namespace ssd
