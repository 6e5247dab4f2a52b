// High-level, LibTorch-free inference API used by the GStreamer elements and the tools:
// loads a weights file onto a device, takes raw video frames (packed RGB-family, NV12, I420 at
// any size and stride), converts, resizes and normalises them on the model's device, runs the
// SSD and returns the detections. Only the small result comes back to the host.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "default_model.h"
#include "graph_stats.h"

namespace ssd {

enum class PixelFormat { RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, NV12, I420 };

// Parses "RGB", "BGRx", "NV12"... (GStreamer's names); throws ssd::Error.
PixelFormat pixel_format_from_string(const std::string& name);
const char* to_string(PixelFormat format);
bool is_yuv(PixelFormat format);

// YUV -> RGB conversion: the matrix's Kr, Kb and the range (GStreamer's GstVideoColorimetry).
struct YuvMatrix {
  double kr = 0.299, kb = 0.114;   // BT.601
  bool full_range = false;
};

// One frame in host memory (borrowed pointers, valid for the duration of the call, or, when
// `pinned` or on the CPU with max_in_flight > 1, until its batch is collected).
struct FrameView {
  PixelFormat format = PixelFormat::RGB;
  int width = 0, height = 0;
  const uint8_t* planes[3] = {nullptr, nullptr, nullptr};
  int strides[3] = {0, 0, 0};   // bytes per row of each plane
  YuvMatrix yuv;
  // The planes lie in page-locked host memory (HostBuffer with pinned = true) that stays valid
  // and unmodified until collect() has returned this frame's batch: on CUDA each plane is then
  // copied to the device straight from there, asynchronously, without the copy into the
  // detector's own pinned staging memory. No effect on the CPU.
  bool pinned = false;
};

struct Detection {
  int label_id = 0;
  float confidence = 0.f;
  float x_min = 0.f, y_min = 0.f, x_max = 0.f, y_max = 0.f;  // normalised to [0, 1]
};

// The most detections a frame that ssddetect's `max-detections` and ssd-train predict's
// --max-detections accept.
constexpr int kMaxDetectionsLimit = 100000;
// The most candidates (anchor, class) the output stage takes into NMS first per frame: 4 per
// detection asked for, at least 400, at most this; where fewer than max_detections of them survive
// NMS and more pairs pass the thresholds, it goes on through those, so that the detections are
// NMS's over every passing pair whatever this bound. (NMS holds candidates x candidates matrices
// per frame: the fixed-shape stage, CUDA's, peaked at 802 MB a frame at this bound,
// bench/RESULTS.md; it gives way to the eager stage above 1024 candidates.)
constexpr int kMaxCandidates = 4096;

struct DetectorOptions {
  std::string model_path;
  std::string device = "auto";   // auto, cpu, cuda, cuda:N
  bool fp16 = false;             // half precision (CUDA only; CPU stays fp32)
  float threshold = 0.3f;        // minimum confidence
  float nms_iou = 0.45f;
  bool class_agnostic_nms = false;   // NMS across classes (PostprocessOptions::class_agnostic)
  int max_detections = 100;      // per frame
  // CPU intra-op threads; 0: LibTorch's default, or with several CPU workers (max_in_flight) the
  // CPUs shared among them (resolve_threads in cpu_workers.h).
  int threads = 0;
  // Batches submit() may start before collect() takes the oldest; 0: chosen for the device
  // (resolve_in_flight in cpu_workers.h: 2 on a CPU of 2 or more, else 1). max_in_flight() says which.
  int max_in_flight = 1;
  // Output stage with fixed shapes and no host synchronisation (postprocess_fixed): always on
  // CUDA; on the CPU only when set (the tests use it to run the CUDA path's logic).
  bool fixed_postprocess = false;
  // Replays the preprocessing of each frame (one graph per in-flight slot and frame layout:
  // format, size, strides), and the network with the fixed-shape output stage (one per slot,
  // padded batch size and output setting; a batch of B frames runs as 1, 2, 4 or 8 frames, or
  // the next multiple of 8) as CUDA graphs, each captured on its key's third use (the first two
  // run eagerly and warm cuDNN up); a capture that fails leaves that key eager for good
  // (preprocess_graph_stats() / graph_stats() say why). CUDA only, and only in builds that can
  // capture them (cuda_graphs_compiled()).
  bool cuda_graphs = true;
  // CPU only, with fixed_postprocess: the same graph bookkeeping with an emulated capture and
  // replay (model/cuda_graph.h), so the tests exercise the CUDA path's logic.
  bool emulate_graphs = false;
};

class Detector {
 public:
  // Loads the model; throws ssd::Error (missing, corrupt or mismatched file, unknown device).
  explicit Detector(const DetectorOptions& options);
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Runs the model on a batch of frames (formats and sizes may differ between frames).
  std::vector<std::vector<Detection>> detect(const std::vector<FrameView>& frames);
  std::vector<Detection> detect(const FrameView& frame);

  // Pipelined use. submit() starts a batch and returns; on CUDA it returns as soon as the
  // frames are copied to pinned staging memory (the caller may release them, except pinned
  // frames, which are read in place until collect()) and the upload,
  // inference, decoding, NMS and the one small download are queued on a CUDA stream of this
  // detector's own, one stream per in-flight batch so that consecutive batches overlap. On the
  // CPU with max_in_flight > 1 each in-flight batch is computed on a thread of its own (one per
  // slot), so submit() returns at once and the frames must stay valid until collect(); with 1
  // it computes the batch before returning. collect() waits for the oldest submitted
  // batch and returns its detections. At most options.max_in_flight batches may be pending;
  // submit() throws ssd::Error beyond that, collect() when none is.
  void submit(const std::vector<FrameView>& frames);
  std::vector<std::vector<Detection>> collect();
  // Whether the oldest submitted batch is computed, so that collect() returns without waiting
  // (false when none is in flight). Does not wait; like submit() and collect(), not to be
  // called concurrently with them.
  bool ready() const;
  // How long the last collected batch took to compute on the CPU (by its worker, or by submit()),
  // however long it then waited to be collected; 0 on CUDA, where the device computes it
  // asynchronously (the time submit() and collect() block is the caller's to measure).
  std::chrono::nanoseconds compute_time() const;
  int in_flight() const;
  int max_in_flight() const;

  // Changes the post-processing parameters (cheap; takes effect on the next call).
  // class_thresholds: per label id, that class's threshold in place of `threshold`, above 1 to
  // drop the class (ClassFilter::class_thresholds); empty: `threshold` for every class; or one
  // per label for each frame of the next batches, frame after frame (frames past them get no
  // detections; SharedDetector gives each stream's frame its own). Applied before the
  // candidates and max_detections are chosen. Throws ssd::Error for another count.
  void set_postprocess(float threshold, float nms_iou, int max_detections,
                       std::vector<float> class_thresholds = {});

  const SsdConfig& config() const;
  const std::vector<std::string>& labels() const;
  std::string device_name() const;   // e.g. "cpu", "cuda:0"
  bool fp16() const;
  // BatchNorms of the body folded into its convolutions at load (SsdImpl::fold_batchnorm).
  int folded_batchnorms() const;
  // Grids whose class and box convolutions were fused into one at load (SsdImpl::fuse_output_convs).
  int fused_output_convs() const;
  // Whether batches go through captured graphs (CUDA graphs, or their CPU emulation), and the
  // graph counters summed over the in-flight slots: of the network and output stage, and of the
  // preprocessing.
  bool graphs() const;
  GraphStats graph_stats() const;
  GraphStats preprocess_graph_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws ssd::Error when `frame` cannot be read (size, plane pointers, strides), as
// Detector::submit would: callers that batch frames of several sources check each one first.
void check_frame(const FrameView& frame);

// True when LibTorch sees a CUDA device.
bool cuda_available();


}  // namespace ssd
