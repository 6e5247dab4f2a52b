/**
 * SECTION:element-ssddetect
 * @title: ssddetect
 * @see_also: ssdoverlay, ssdexport
 *
 * Runs a Single Shot MultiBox Detector (the fastai 2018 SSD, trained with `ssd-train`) on every
 * video frame and attaches one #GstVideoRegionOfInterestMeta per detected object. The frame
 * itself is not modified (the element works in place and only adds metadata).
 *
 * Each region of interest carries:
 *
 * - pixel coordinates (`x`, `y`, `w`, `h`) clipped to the frame;
 * - `roi_type`: the quark of the class label (e.g. `g_quark_from_string ("car")`);
 * - `id`: the index of the detection in the frame (0, 1, ...; after the largest id of the
 *   regions already on the buffer, e.g. another detector's upstream, so that ids stay unique),
 *   so that bindings without a meta iterator can use
 *   gst_buffer_get_video_region_of_interest_meta_id();
 * - a parameter #GstStructure named `detection` (DL Streamer's convention) with the fields
 *   `label_id` (int), `label` (string), `confidence` (double, 0-1), `x_min`, `y_min`,
 *   `x_max`, `y_max` (double, normalised to the frame size) and `carried` (boolean: TRUE on a
 *   frame `interval` skipped, whose boxes are those of the last analysed frame, repeated).
 *
 * When built against GStreamer 1.24 or newer, each detection is also added to the buffer's
 * GstAnalyticsRelationMeta as a GstAnalyticsODMtd.
 *
 * The model is loaded when the element goes from READY to PAUSED and released when it goes
 * back to READY; a missing, corrupt or incompatible weights file makes that state change fail
 * with an error message naming the file and the reason. The frame is converted (colour,
 * scale, normalisation) on the model's device, so any size and stride of the formats below
 * is accepted without a videoconvert/videoscale in front. The frame is first shrunk by a
 * whole factor (a box filter: the mean of each factor x factor block, so that large frames are
 * not aliased), then resized bilinearly to the model's input; the last columns or rows that do
 * not fill a block (fewer than the factor: under 1/input-size of the frame, e.g. 4 of 854 at a
 * 160 px input) are left out, and the boxes are those of the part analysed. Frames are read at
 * the size of the caps: the element does not offer upstream a #GstVideoCropMeta support of the
 * elements behind it (regions attached before an in-place crop would be in other coordinates
 * than those attached after it), so upstream (videocrop, a decoder) sends cropped frames; a
 * frame that comes with a crop meta all the same is analysed in its picture (the caps' size at
 * the crop's offset), and its boxes are the picture's.
 *
 * ## Falling behind a live source
 *
 * Quality-of-service is enabled by default (the #GstBaseTransform:qos property): when a
 * downstream sink reports that buffers arrive late, frames that are already too late to be
 * shown are dropped before inference instead of being processed, which lets the pipeline
 * catch up. Frames are dropped, never queued without bound; the first frame after dropped ones
 * carries the DISCONT flag (also while batching). Set `qos=false` to analyse every
 * frame (e.g. when recording to a file with a live source, put a `queue` before ssddetect and
 * expect latency to grow), or use `interval` to run the network on every N-th frame only,
 * which keeps every frame and its (carried-over) boxes.
 *
 * ## Batching and pipelining
 *
 * With `batch-size` N > 1 the element holds frames until N of them are to be analysed and runs
 * them through the network together, which raises throughput on a GPU; `batch-timeout` bounds
 * how long a partial batch may wait (in stream time, and in wall-clock time when no further
 * frame comes), and EOS, caps changes, segments, gaps and drain/allocation queries push held
 * frames out first; tags and custom events wait with the held frames and follow the frame they
 * came after (a parser's bitrate tags do not cut batches short). With `in-flight` M > 1 up to
 * M batches are on the device at once, so the upload of one overlaps the inference of another
 * (on the CPU: they are computed side by side).
 * A batch's frames go downstream as soon as it is computed, pushed by a thread of the element's
 * own, so a sparse or stalled source does not leave them waiting for the next frame (a live 30
 * fps 640x480 source with `threads=1 in-flight=2` on the CPU: 7 ms from source to sink, against
 * 33 ms when they waited for the next frame, 2026-12-03), and upstream's thread does not wait
 * while a synchronised sink holds a frame until its time: it waits only when the frames held
 * and those still to go out fill the buffers reserved for the element (below), and for the
 * held frames to go out before a serialized event or query (a live 30 fps source with
 * `batch-size=4`: frames reached ssddetect at most 35.4 ms apart, against 121.6 ms when the
 * streaming thread pushed the batch itself, 2026-12-06, bench/upstream_wait.py). As behind a
 * `queue`, downstream then runs in that thread: pad probes and callbacks downstream (an
 * appsink's) run there, and may seek with a flush, but a serialized event or query they send
 * into ssddetect's own sink pad waits while upstream's thread waits for that thread (send it
 * from another thread, e.g. the application's main loop). The
 * latency query reports the most batching can add: the wait for a full batch (or
 * `batch-timeout` when that is shorter) plus a batch's computation, as measured (a frame does not wait for later batches; on CUDA with M batches in
 * flight, whose computation the host does not time, M - 1 batches of frame times more). Held frames are buffers upstream
 * cannot reuse: the element asks upstream's pool for batch-size x in-flight + 1 buffers more
 * than downstream does in the allocation query, with batch-size times the start's `interval`
 * (up to 4), as skipped frames wait with the batch (v4l2src, say, allocates that many).
 *
 * ## Changing the model while running
 *
 * Setting `model` while the element is PAUSED or PLAYING loads the new file in a thread of the
 * element's own, with the element's settings (device, precision, threshold...), while frames
 * go on through the current model. The element switches to the new model before the next
 * frame it receives once the load is done; frames it holds for a batch are first finished by
 * the old model, so every frame is analysed by one model or the other, in order. On the switch
 * the element posts an element message `ssd-model-changed` with the fields `model` (string),
 * `device` (string) and `labels` (string, comma-separated), and starts `interval` afresh. A
 * file that cannot be loaded (missing, corrupt, another device's failure), or whose labels lack
 * a class `classes` or `class-thresholds` names, leaves the current model in use: the element
 * posts a warning naming the file and the reason, and `model` reverts to the model in use (with
 * a notify::model). `classes` and `class-thresholds` set while a new model is on its way are
 * checked against it when the element switches: to change the model and the classes together,
 * set them in one call, e.g. `g_object_set (detect, "model", path, "classes", "car", NULL)`.
 * Warnings about a failed load come from a thread of GStreamer's pool, so an application may
 * stop the element from its handler. An element stopped before it switched (or before the load
 * was done: stopping waits for it) settles the change as the switch would have: a file that
 * cannot be loaded, or that `classes` or `class-thresholds` do not fit, is refused with the
 * same warning and `model` reverts, so the next start runs with the model in use; a file that
 * loads is the one the next start loads. Likewise `classes`, `class-thresholds` (and `region`,
 * checked when set) set while running are checked when the element stops if no frame came to
 * apply them: a restart never fails on a value refused with a warning while running. Elements sharing a model instance (`model-instance-id`)
 * change their model only while stopped (NULL or READY): set while they run, it is refused
 * with a warning, and they keep the model in use. The properties read when the element starts
 * (`device`, `precision`, `threads`, `batch-size`, `batch-timeout`, `in-flight`, `cuda-graphs`,
 * `model-instance-id`) are refused while it runs, with a warning naming the property: they keep
 * the value in use.
 *
 * ## Several streams, one model
 *
 * Elements with the same `model-instance-id` (one per camera, say) share one loaded model, and
 * their frames are batched together: each element hands over one frame at a time, and the
 * shared instance runs the frames waiting at that moment, up to `batch-size`, as one batch.
 * No stream waits for a batch of its own frames, and each keeps its own threshold, classes and
 * interval.
 *
 * On CUDA the preprocessing (colour conversion, resize, normalisation) of each frame and the
 * network with the output stage of each batch run as replayed CUDA graphs (`cuda-graphs`, on by
 * default): batch-1 inference on a fast GPU is otherwise bound by the launch cost of its
 * hundreds of small kernels. The element also offers upstream a buffer pool
 * of page-locked host memory (`frame-pool`; in place of a system-memory pool downstream offers; a pool of
 * other memory, e.g. GL, is left to downstream): a source or decoder
 * that takes it writes frames where the GPU's copy engine reads them, and each frame goes to
 * the GPU without first being copied into staging memory (about 1 ms of CPU time per 1080p
 * RGBx frame saved).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     ssddetect threshold=0.4 ! ssdoverlay ! videoconvert ! autovideosink
 * ]| Detects objects in a file and shows them.
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! video/x-raw,format=NV12 ! \
 *     ssddetect model=traffic.safetensors device=cuda precision=fp16 interval=2 classes="car,person" ! \
 *     ssdexport location=detections.jsonl ! fakesink
 * ]| Runs a model of one's own (trained by ssd-train on cars and people) on every other webcam
 * frame on the GPU and writes the cars and people it finds to a JSON Lines file.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! ssddetect device=cuda precision=fp16 \
 *     batch-size=16 in-flight=2 ! ssdexport location=detections.jsonl ! fakesink
 * ]| Offline analysis of a file: batches of 16 frames, two batches on the GPU at once.
 * |[
 * gst-launch-1.0 \
 *     rtspsrc location=rtsp://cam1/stream ! decodebin ! videoconvert ! ssddetect model-instance-id=cams batch-size=8 ! \
 *         ssdexport location=cam1.jsonl ! fakesink \
 *     rtspsrc location=rtsp://cam2/stream ! decodebin ! videoconvert ! ssddetect model-instance-id=cams batch-size=8 ! \
 *         ssdexport location=cam2.jsonl ! fakesink
 * ]| Two cameras, one model: their frames run through the network together.
 */
#include "gstssddetect.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <glib/gstdio.h>
#include <gst/video/video.h>
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

#include "blas_check.h"
#include "class_filter.h"
#include "common.h"
#include "detector.h"
#include "error.h"
#include "mapped_frame.h"
#include "pinned_pool.h"
#include "shared_detector.h"
#include "text.h"

GST_DEBUG_CATEGORY_STATIC(gst_ssd_detect_debug);
#define GST_CAT_DEFAULT gst_ssd_detect_debug

namespace {

constexpr const char* kDefaultDevice = "auto";
constexpr GstSsdPrecision kDefaultPrecision = GST_SSD_PRECISION_FP32;
constexpr gfloat kDefaultThreshold = 0.3f;
constexpr gfloat kDefaultNmsIou = 0.45f;
constexpr gboolean kDefaultClassAgnosticNms = FALSE;
constexpr gint kDefaultMaxDetections = 100;
constexpr guint kDefaultInterval = 1;
// The interval counted in the buffers a batch may hold (SsdDetectState::held_per_batch).
constexpr guint kMaxHeldInterval = 4;
constexpr gint kDefaultThreads = 0;
constexpr guint kDefaultBatchSize = 1;
constexpr guint64 kDefaultBatchTimeout = 0;
constexpr guint kDefaultInFlight = 0;   // chosen for the device (ssd::resolve_in_flight)
constexpr gboolean kDefaultCudaGraphs = TRUE;
constexpr GstSsdFramePool kDefaultFramePool = GST_SSD_FRAME_POOL_AUTO;
// How often the output thread looks for computed batches while frames are held.
constexpr std::chrono::milliseconds kOutputPoll{1};

// A rectangle of the frame, in pixels.
using Region = gstssd::Rect;

// What the element keeps of its model's detections: the classes `classes` names (every class
// when it names none), each above the confidence `class-thresholds` gives it, else `threshold`.
using ssd::ClassFilter;

// Property values; guarded by SsdDetectState::lock.
struct Settings {
  std::string model;
  std::string device = kDefaultDevice;
  GstSsdPrecision precision = kDefaultPrecision;
  gfloat threshold = kDefaultThreshold;
  gfloat nms_iou = kDefaultNmsIou;
  gboolean class_agnostic_nms = kDefaultClassAgnosticNms;
  gint max_detections = kDefaultMaxDetections;
  std::string classes;
  std::string class_thresholds;
  guint interval = kDefaultInterval;
  gint threads = kDefaultThreads;
  guint batch_size = kDefaultBatchSize;
  guint64 batch_timeout = kDefaultBatchTimeout;
  guint in_flight = kDefaultInFlight;
  gboolean cuda_graphs = kDefaultCudaGraphs;
  GstSsdFramePool frame_pool = kDefaultFramePool;
  std::string model_instance_id;
  std::string region_text;          // the `region` property as set
  std::optional<Region> region;     // parsed; none: the whole frame
  std::string region_error;         // a malformed `region` set before start(), which then fails
};

// A frame held by the batching path, with whether the network sees it. Once its batch is
// submitted, an analysed frame stays mapped until the batch is collected: the device may read
// it in place (page-locked memory, ssd::FrameView::pinned) until then.
struct HeldFrame {
  GstBuffer* buffer;
  bool analyse;
  std::shared_ptr<gstssd::VideoFrameMap> map;
  std::optional<Region> region;   // the part the network saw, once submitted (none: all of it)
  Region picture;                 // the frame's picture in its buffer (gstssd::picture_rect)
  bool blind = false;             // analysed, but the region lies outside the frame
  std::chrono::nanoseconds blocked{0};   // first frame of a batch: how long its submit() took
  // Serialized events that came after the frame and that only need to stay in order with the
  // frames (passes_with_frames()): they go downstream right after it.
  std::vector<GstEvent*> events;
};

// The end of a frame with a PTS: PTS + duration (the PTS when it has none), as GstBaseTransform
// records positions.
GstClockTime buffer_end(GstBuffer* b) {
  return GST_BUFFER_PTS(b) + (GST_BUFFER_DURATION_IS_VALID(b) ? GST_BUFFER_DURATION(b) : 0);
}

// Frees an event held with discarded frames, or moves it to `sticky` (when given) if sticky.
void drop_event(GstEvent* e, std::vector<GstEvent*>* sticky) {
  if (sticky && GST_EVENT_IS_STICKY(e)) sticky->push_back(e);
  else gst_event_unref(e);
}

// Frees what a held frame owns (a frame dropped with its batch, or discarded); its sticky events
// go to `sticky` when given.
void release(const HeldFrame& h, std::vector<GstEvent*>* sticky = nullptr) {
  gst_buffer_unref(h.buffer);
  for (GstEvent* e : h.events) drop_event(e, sticky);
}

// Serialized events that batching holds with the frames, in order, instead of pushing the held
// frames out first: they mean nothing for the frames' timing (tags, such as the bitrate tags a
// parser sends every few frames, a table of contents, custom events).
bool passes_with_frames(GstEvent* event) {
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_TAG:
    case GST_EVENT_TOC:
    case GST_EVENT_CUSTOM_DOWNSTREAM:
    case GST_EVENT_CUSTOM_DOWNSTREAM_STICKY:
      return true;
    default:
      return false;
  }
}

}  // namespace

// All C++ state of the element, constructed in init() and destroyed in finalize().
struct SsdDetectState {
  std::mutex lock;              // guards `settings` and the three flags below
  Settings settings;
  bool postprocess_changed = false;
  // `nms-iou` set since a shared instance last took this element's (at start too): the IoU is
  // the instance's, so only its own change, not another output setting's, may set it.
  bool nms_iou_changed = true;
  bool filter_changed = false;    // `classes` or `class-thresholds` set while running
  bool region_changed = false;    // `region` set while running

  // Streaming state: only touched from start()/stop()/set_caps()/transform_ip()/sink_event(),
  // which GstBaseTransform serialises, and by the output thread under the sink pad's stream lock
  // (except `ready` and what goes with it, guarded by output_lock).
  std::unique_ptr<ssd::Detector> detector;      // the element's own model, or
  std::shared_ptr<ssd::SharedDetector> shared;  // the instance it shares (model-instance-id; set under
                                                // `lock`, set_shared(): set_property() reads it)
  std::atomic<std::thread::id> shared_caller{};   // the thread that sends it this element's frames
  float threshold = kDefaultThreshold;          // the output settings, as last applied:
  std::vector<float> class_thresholds;          // `threshold`, the filter's per class (empty: none)
  int max_detections = kDefaultMaxDetections;
  // The detector runs on a CUDA device. Atomic: the latency query reads it from any thread (a
  // source pad query is not serialised with the stream), while start(), stop() and a model switch
  // write it.
  std::atomic<bool> on_cuda{false};
  ClassFilter filter;                      // `classes` and `class-thresholds` in use
  std::optional<Region> region;            // the `region` in use (none: the whole frame)
  bool region_checked = false;             // whether it was compared with the frame (once per region and caps)
  GstVideoInfo info;
  bool have_info = false;
  guint64 frames_since_reset = 0;
  std::vector<ssd::Detection> last;        // detections of the last analysed frame
  guint64 inferences = 0;
  int64_t graph_failures_reported = 0;

  // Batching (batch-size > 1 or in-flight > 1; fixed at start()). Frames wait in `pending`
  // until a batch is complete, then the batch is submitted to the detector and moves to
  // `submitted`; when in-flight batches are outstanding the oldest is collected, its frames
  // get their metadata and move to `ready`, from where the output thread pushes them in order
  // (the streaming thread only waits for it to: a push into a synchronised sink waits for the
  // frame's time, which must not hold up upstream's thread). Never through generate_output():
  // GstBaseTransform would mark the first buffer it returns after a QoS drop or an incoming
  // DISCONT with DISCONT, a frame held from before the gap; the element marks the frame after
  // a drop itself (discont_next), and an incoming DISCONT stays on its own frame.
  // batch_size, in_flight, held_per_batch and batch_timeout are written by start() under `lock`,
  // which the source pad's queries (latency, position: any thread, at any time, also while the
  // element starts or stops) read them under; the streaming code reads them without it.
  guint batch_size = kDefaultBatchSize, in_flight = kDefaultInFlight;
  // Frames (analysed, skipped by `interval`, gaps) a batch may hold: batch-size x the interval
  // at the start, the interval counted up to kMaxHeldInterval. The allocation query reserves
  // that many of upstream's buffers per batch in flight; a batch that holds them all runs
  // partial, so that a source with a fixed number of buffers never runs out.
  guint held_per_batch = kDefaultBatchSize;
  guint64 batch_timeout = kDefaultBatchTimeout;
  std::deque<HeldFrame> pending;
  guint pending_analysed = 0;
  std::deque<std::vector<HeldFrame>> submitted;
  bool discont_next = false;   // a frame was dropped (QoS): the next frame held is a DISCONT
  // Sticky events (tags...) that were held with frames that got discarded (a flush, a failed
  // push): upstream saw them delivered, and sticky events outlive a flush, so they are stored on
  // the source pad, to go before the next frame, as soon as the pad is not flushing.
  std::vector<GstEvent*> kept_sticky;
  // Frames the element pushed itself (batching), for its QoS messages: GstBaseTransform counts
  // only the frames that go through its own chain.
  std::atomic<guint64> pushed{0};
  // The end (PTS + duration) of the last frame pushed, for position queries (read by any thread).
  std::atomic<GstClockTime> position_out{GST_CLOCK_TIME_NONE};
  std::chrono::steady_clock::time_point pending_since;   // when the oldest pending frame came
  GstClockTime frame_duration = GST_CLOCK_TIME_NONE;   // from the caps; guarded by `lock`
  bool have_frame_rate_info = false;                   // caps seen since start(); guarded by `lock`
  std::atomic<bool> warned_unbounded_latency{false};   // live, no frame rate, no batch-timeout
  // How long a batch keeps its first frame beyond the wait for the batch: its computation (the
  // time submit() and collect() block for it, or what a CPU worker computed it in), measured,
  // with a quarter added, and only raised (the latency reported should not move back and forth).
  // A model's first batch in each in-flight slot (warm-up) and batches that capture a CUDA graph
  // are not counted (note_compute_time).
  std::atomic<guint64> compute_latency{0};   // ns
  guint64 batches_timed = 0;
  guint64 graph_captures_seen = 0;   // a batch that captured a CUDA graph is not timed

  // The output thread (batching only; started by start(), joined by stop()). It pushes the
  // frames in `ready` downstream, and when no frame comes to the streaming thread, it collects
  // a submitted batch as soon as the batch is computed, and runs a partial batch once it has
  // waited batch-timeout of wall-clock time. It works on the streaming state above only while
  // holding the sink pad's stream lock, which it takes with a try-lock (never delaying a
  // streaming thread that holds it), so that stays serialised with the streaming thread as
  // GstBaseTransform serialises its vfuncs; it pushes without it. The streaming thread waits
  // for its pushes only where order requires (serialized events and queries, flushes) or when
  // the frames held and waiting to be pushed fill what upstream's pool keeps for the element
  // (held_buffers()).
  std::thread output_thread;
  std::mutex output_lock;   // guards the members below
  std::condition_variable output_wake;   // for the output thread: news
  std::condition_variable ready_space;   // for the streaming thread: a frame left `ready`
  std::deque<GstMiniObject*> ready;   // frames (GstBuffer) and the events between them (GstEvent)
  size_t ready_frames = 0;            // the frames in `ready`
  // Items taken from `ready` the output thread is pushing: 1, or more when something downstream
  // sent a serialized event back into the sink pad from within the push, and the element pushed
  // the frames before it from there (see own_pushes()).
  int pushing = 0;
  guint64 flushes = 0;   // FLUSH_STOPs seen: a push that fails across one fails for the old frames
  // Sticky events that were in `ready` after a failed push: the streaming thread keeps them
  // (kept_sticky), as those of discarded frames (a flushing pad does not store them).
  std::vector<GstEvent*> failed_sticky;
  // Each start() starts a thread of a new generation; stop_output_thread() ends the current one
  // (a thread stopped from itself, detached, may outlive it beside the next start's).
  guint64 output_generation = 0;
  // What the output thread waits for: submitted batches to be computed (it looks every
  // kOutputPoll), and the moment a partial batch has waited batch-timeout (max(): none).
  bool watch_submitted = false;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // A push of the output thread that failed (flushing, not linked, EOS...), or a batch that
  // failed in it or in a drain: returned to upstream by every chain, as a queue does, until a
  // flush or restart (not linked: until the source pad is linked again); the frames waiting to
  // be pushed are dropped meanwhile. `output_flow_told`: a chain returned it.
  GstFlowReturn output_flow = GST_FLOW_OK;
  bool output_flow_told = false;

  // Model updates while playing: setting `model` on a running element with a model of its own
  // asks the loader thread (started on the first such request, joined by stop()) to load the
  // file with the settings the element started with, while frames go on through the current
  // model; the streaming thread swaps the loaded model in before its next frame, after the old
  // model has finished the frames held for it.
  bool running = false;         // guarded by `lock`: between start() and stop()
  bool settings_taken = false;  // guarded by `lock`: from start()'s copy of the settings to stop()
                                // (or a failed start): properties read at start are refused
  Settings started;             // guarded by `lock`: the settings start() loaded the model with
  std::string model_in_use;     // guarded by `lock`: the file of the model in use
  std::thread loader_thread;
  std::mutex loader_lock;       // guards the members below
  std::condition_variable loader_wake;
  bool loader_stop = false;
  std::string load_request;                 // the file to load next; empty: none
  bool loading = false;                     // a load in progress
  std::unique_ptr<ssd::Detector> loaded;    // loaded, for the streaming thread to swap in
  std::string loaded_model;

  bool batching() const { return batch_size > 1 || in_flight > 1; }

  // Ends the loader thread once it has settled the file it was asked for (loaded into `loaded`,
  // or refused with a warning), so that a `model` set just before the element stops is not left
  // unchecked for the next start.
  void join_loader() {
    {
      std::lock_guard<std::mutex> guard(loader_lock);
      loader_stop = true;
    }
    loader_wake.notify_all();
    if (loader_thread.joinable()) loader_thread.join();
    loader_stop = false;
    load_request.clear();
  }
  void stop_loader() {
    join_loader();
    loaded.reset();
  }

  void stop_output_thread() {
    {
      std::lock_guard<std::mutex> guard(output_lock);
      output_generation++;
      pushing = 0;   // (a push of a thread stopped from itself no longer counts)
    }
    output_wake.notify_all();
    ready_space.notify_all();
    if (!output_thread.joinable()) return;
    if (output_thread.get_id() == std::this_thread::get_id()) {
      // Stopped from the output thread itself (an application's sync bus handler or pad probe
      // changing the state while this thread pushes, which GStreamer advises against): it cannot
      // join itself; it ends its loop when the handler returns, and its reference on the
      // element keeps the state it still touches alive if the application frees the element.
      GST_WARNING("ssddetect stopped from its own output thread; the thread ends by itself");
      output_thread.detach();
      return;
    }
    output_thread.join();
  }
  ~SsdDetectState() {
    stop_output_thread();
    stop_loader();
  }
};

struct _GstSsdDetect {
  GstBaseTransform parent;
  SsdDetectState* state;
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_THRESHOLD,
  PROP_NMS_IOU,
  PROP_MAX_DETECTIONS,
  PROP_CLASSES,
  PROP_INTERVAL,
  PROP_THREADS,
  PROP_BATCH_SIZE,
  PROP_BATCH_TIMEOUT,
  PROP_IN_FLIGHT,
  PROP_CUDA_GRAPHS,
  PROP_MODEL_INSTANCE_ID,
  PROP_REGION,
  PROP_CLASS_THRESHOLDS,
  PROP_CLASS_AGNOSTIC_NMS,
  PROP_FRAME_POOL,
};

G_DEFINE_TYPE(GstSsdDetect, gst_ssd_detect, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(ssddetect, "ssddetect", GST_RANK_NONE, GST_TYPE_SSD_DETECT);

GType gst_ssd_precision_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_SSD_PRECISION_FP32, "32-bit floating point", "fp32"},
      {GST_SSD_PRECISION_FP16, "16-bit floating point (CUDA only; CPU runs fp32)", "fp16"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSsdPrecision", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_ssd_frame_pool_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_SSD_FRAME_POOL_AUTO, "Page-locked frames on CUDA, none on the CPU", "auto"},
      {GST_SSD_FRAME_POOL_NEVER, "None: upstream allocates as downstream proposes", "never"},
      {GST_SSD_FRAME_POOL_ALWAYS, "Also on the CPU (ordinary memory there: the CUDA negotiation without a GPU)",
       "always"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSsdFramePool", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_SSD_VIDEO_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_SSD_VIDEO_CAPS));

static bool to_pixel_format(GstVideoFormat f, ssd::PixelFormat* out) {
  switch (f) {
    case GST_VIDEO_FORMAT_RGB: *out = ssd::PixelFormat::RGB; return true;
    case GST_VIDEO_FORMAT_BGR: *out = ssd::PixelFormat::BGR; return true;
    case GST_VIDEO_FORMAT_RGBx: *out = ssd::PixelFormat::RGBx; return true;
    case GST_VIDEO_FORMAT_BGRx: *out = ssd::PixelFormat::BGRx; return true;
    case GST_VIDEO_FORMAT_xRGB: *out = ssd::PixelFormat::xRGB; return true;
    case GST_VIDEO_FORMAT_xBGR: *out = ssd::PixelFormat::xBGR; return true;
    case GST_VIDEO_FORMAT_RGBA: *out = ssd::PixelFormat::RGBA; return true;
    case GST_VIDEO_FORMAT_BGRA: *out = ssd::PixelFormat::BGRA; return true;
    case GST_VIDEO_FORMAT_NV12: *out = ssd::PixelFormat::NV12; return true;
    case GST_VIDEO_FORMAT_I420: *out = ssd::PixelFormat::I420; return true;
    default: return false;
  }
}

// Parses the `region` property, "x,y,width,height" in pixels ("" or unset: none). Throws
// ssd::Error.
static std::optional<Region> parse_region(const std::string& text) {
  const std::string t = ssd::trim(text);
  if (t.empty()) return std::nullopt;
  const auto fail = [&] {
    return ssd::Error("region \"" + text + "\" is not x,y,width,height in pixels (x, y >= 0; width, height > 0)");
  };
  int v[4];
  int n = 0;
  for (const std::string& item : ssd::split_list(t)) {
    char* end = nullptr;
    const gint64 x = item.empty() ? -1 : g_ascii_strtoll(item.c_str(), &end, 10);
    if (n == 4 || item.empty() || *end != '\0' || x < 0 || x > G_MAXINT) throw fail();
    v[n++] = static_cast<int>(x);
  }
  if (n != 4 || v[2] == 0 || v[3] == 0) throw fail();
  return Region{v[0], v[1], v[2], v[3]};
}

// The region, given relative to `bounds`' origin, clipped to `bounds`, with x and y rounded
// down to even in subsampled (YUV) formats so that the chroma planes start at the region too
// (up where that would leave `bounds`, which a crop may start at an odd pixel); width or height
// 0 when it lies outside.
static Region clip_region(const Region& r, const Region& bounds, bool subsampled) {
  int x0 = bounds.x + std::min(r.x, bounds.width), y0 = bounds.y + std::min(r.y, bounds.height);
  if (subsampled) {
    if (x0 & 1) x0 += x0 - 1 >= bounds.x ? -1 : 1;
    if (y0 & 1) y0 += y0 - 1 >= bounds.y ? -1 : 1;
  }
  const int x1 = bounds.x + static_cast<int>(std::min<long>(static_cast<long>(r.x) + r.width, bounds.width));
  const int y1 = bounds.y + static_cast<int>(std::min<long>(static_cast<long>(r.y) + r.height, bounds.height));
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}

// The detector options of these settings.
static ssd::DetectorOptions detector_options(const Settings& s) {
  ssd::DetectorOptions opts;
  opts.model_path = s.model;
  opts.device = s.device;
  opts.fp16 = s.precision == GST_SSD_PRECISION_FP16;
  opts.threshold = s.threshold;
  opts.nms_iou = s.nms_iou;
  opts.class_agnostic_nms = s.class_agnostic_nms;
  opts.max_detections = s.max_detections;
  opts.threads = s.threads;
  opts.max_in_flight = static_cast<int>(s.in_flight);   // 0: the detector chooses
  opts.cuda_graphs = s.cuda_graphs;
  return opts;
}

// `classes` and `class-thresholds` for a model with these labels. Throws ssd::Error.
static ClassFilter class_filter(const std::vector<std::string>& labels, const std::string& classes,
                                const std::string& thresholds) {
  return ssd::parse_class_filter(labels, classes, thresholds, "the classes property", "class-thresholds");
}

static void reset_tracking(SsdDetectState* st) {
  st->frames_since_reset = 0;
  st->last.clear();
}

static void discard_held(SsdDetectState* st);
static void wait_push_done(GstSsdDetect* self, bool until_flushing);
static void store_kept_sticky(GstSsdDetect* self);
static void output_loop(GstSsdDetect* self, guint64 generation);

// What the element asks of its model, whether its own or a shared instance's.
static bool model_loaded(const SsdDetectState* st) { return st->detector || st->shared; }

// Holds the shared instance `instance` (or none), under `lock`, which set_property() reads it
// under; one let go is released (maybe destroyed) after.
static void set_shared(SsdDetectState* st, std::shared_ptr<ssd::SharedDetector> instance) {
  std::lock_guard<std::mutex> guard(st->lock);
  std::swap(st->shared, instance);
}
// The element's stream leaves the shared instance (stopped, or paused): the instance's batches no
// longer wait for its frames until it sends one again.
static void leave_shared(SsdDetectState* st) {
  std::shared_ptr<ssd::SharedDetector> instance;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    instance = st->shared;
  }
  const std::thread::id caller = st->shared_caller.exchange(std::thread::id());
  if (instance && caller != std::thread::id()) instance->leave(caller);
}
static const std::vector<std::string>& model_labels(const SsdDetectState* st) {
  return st->shared ? st->shared->labels() : st->detector->labels();
}
static std::string model_device(const SsdDetectState* st) {
  return st->shared ? st->shared->device_name() : st->detector->device_name();
}
static bool model_fp16(const SsdDetectState* st) { return st->shared ? st->shared->fp16() : st->detector->fp16(); }
static bool model_graphs(const SsdDetectState* st) {
  return st->shared ? st->shared->graphs() : st->detector->graphs();
}
// The graph counters of the network and of the preprocessing.
static std::pair<ssd::GraphStats, ssd::GraphStats> model_graph_stats(const SsdDetectState* st) {
  if (st->shared) {
    const auto s = st->shared->stats();
    return {s.graphs, s.preprocess_graphs};
  }
  return {st->detector->graph_stats(), st->detector->preprocess_graph_stats()};
}

// A CUDA graph capture that failed (that batch size then runs without graphs) is worth a
// warning on the bus, once per failure.
static void report_graph_failures(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  if (!model_graphs(st)) return;
  const auto [g, pre] = model_graph_stats(st);
  if (g.failures + pre.failures <= st->graph_failures_reported) return;
  st->graph_failures_reported = g.failures + pre.failures;
  gstssd::after_frame(GST_ELEMENT(self), [self, error = pre.failures ? pre.last_error : g.last_error] {
    GST_ELEMENT_WARNING(self, LIBRARY, FAILED,
                        ("Could not capture a CUDA graph; this batch size or frame layout runs without one (slower)."),
                        ("%s", error.c_str()));
  });
}
static GstFlowReturn drain(GstSsdDetect* self, bool for_event);
static GstFlowReturn submit_pending(GstSsdDetect* self);
static void complete_oldest(GstSsdDetect* self);
static void note_compute_time(GstSsdDetect* self, std::chrono::nanoseconds took);

/* GObject vmethods */

/* Model updates while playing */

// Whether a model change is under way: requested, loading, or loaded and not yet switched to.
static bool model_change_pending(SsdDetectState* st) {
  std::lock_guard<std::mutex> guard(st->loader_lock);
  return !st->load_request.empty() || st->loading || st->loaded;
}

// A failed load, reported from a GStreamer thread-pool thread (gst_element_call_async, which
// keeps the element alive meanwhile), never from the loader thread: an application handler of
// the warning or of notify::model may stop the element, which joins the loader thread.
struct FailedLoad {
  std::string path, error, in_use;
  bool reverted;
};
static void report_failed_load(GstElement* element, gpointer data) {
  const auto* f = static_cast<const FailedLoad*>(data);
  GST_ELEMENT_WARNING(element, RESOURCE, OPEN_READ,
                      ("Could not load model \"%s\": %s. The element goes on with model \"%s\".", f->path.c_str(),
                       f->error.c_str(), f->in_use.c_str()),
                      ("model property set while running"));
  if (f->reverted) g_object_notify(G_OBJECT(element), "model");
}

// The loader thread: loads each requested model (the newest request wins) and leaves it in
// `loaded` for the streaming thread; a file that fails to load is a warning, and the property
// goes back to the model in use (or the one loaded for the switch) unless another file is asked
// for meanwhile.

// Why `path` cannot be the model, or "": it does not exist, or it is no regular file. A FIFO's
// open blocks until a writer comes (a stalled network file system's may too): the loader thread
// blocked so, and stopping the pipeline waited for it for ever.
static std::string model_file_problem(const std::string& path) {
  GStatBuf st;
  if (g_stat(path.c_str(), &st) != 0)   // (the reason: no such file, a symbolic link loop, no permission...)
    return errno == ENOENT ? std::string("the file does not exist") : std::string(g_strerror(errno));
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return "it is not a regular file (a FIFO, a socket or a device)";
  return "";
}

static void loader_loop(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::unique_lock<std::mutex> lk(st->loader_lock);
  while (true) {
    st->loader_wake.wait(lk, [st] { return st->loader_stop || !st->load_request.empty(); });
    if (st->load_request.empty()) return;   // stopping, with nothing left to settle
    const std::string path = std::move(st->load_request);
    st->load_request.clear();
    st->loading = true;
    lk.unlock();
    GST_DEBUG_OBJECT(self, "loading model %s while running", path.c_str());
    Settings s;
    {
      std::lock_guard<std::mutex> guard(st->lock);
      s = st->started;   // device, precision, threads, in-flight... as the element started
      s.threshold = st->settings.threshold;
      s.nms_iou = st->settings.nms_iou;
      s.max_detections = st->settings.max_detections;
    }
    s.model = path;
    std::unique_ptr<ssd::Detector> detector;
    std::string error;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      if (const std::string why = model_file_problem(path); !why.empty()) throw ssd::Error(why);
      detector = std::make_unique<ssd::Detector>(detector_options(s));
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    lk.lock();
    st->loading = false;
    if (!st->load_request.empty()) {   // superseded by a newer request
      lk.unlock();
      detector.reset();
      lk.lock();
      continue;
    }
    if (detector) {
      GST_INFO_OBJECT(self, "loaded model %s in %.0f ms while playing; switching to it at the next frame", path.c_str(),
                      ms);
      // A model loaded before and not switched to yet is destroyed with no lock held.
      std::unique_ptr<ssd::Detector> unused = std::exchange(st->loaded, std::move(detector));
      st->loaded_model = path;
      lk.unlock();
      unused.reset();
      lk.lock();
      continue;
    }
    lk.unlock();
    auto* failed = new FailedLoad{path, error, {}, false};
    {
      std::lock_guard<std::mutex> guard(st->lock);
      std::lock_guard<std::mutex> g(st->loader_lock);
      failed->in_use = st->loaded ? st->loaded_model : st->model_in_use;
      failed->reverted = st->settings.model == path && st->load_request.empty();
      if (failed->reverted) st->settings.model = failed->in_use;
    }
    gst_element_call_async(GST_ELEMENT(self), report_failed_load, failed,
                           [](gpointer d) { delete static_cast<FailedLoad*>(d); });
    lk.lock();
  }
}

// Asks the loader thread to load the `model` property's file, when the element runs with a model
// of its own. Throws std::system_error when the thread cannot start.
static void request_model(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::lock_guard<std::mutex> guard(st->lock);
  if (!st->running || st->shared) return;
  {
    std::lock_guard<std::mutex> g(st->loader_lock);
    st->load_request = st->settings.model;
  }
  if (!st->loader_thread.joinable()) st->loader_thread = std::thread(loader_loop, self);
  st->loader_wake.notify_all();
}

// Applies the output settings to the detector (to a shared instance: the NMS IoU, which is every
// stream's; the thresholds and count go with each frame): the network's output stage holds each
// class to its threshold of the filter (leaving out the classes it drops) before it picks the
// candidates and the most confident detections. `lock` held.
static void apply_postprocess_locked(SsdDetectState* st) {
  const Settings& s = st->settings;
  st->class_thresholds = st->filter.class_thresholds(s.threshold, model_labels(st).size());
  if (st->shared) {
    if (st->nms_iou_changed) st->shared->set_nms_iou(s.nms_iou);
  } else {
    st->detector->set_postprocess(s.threshold, s.nms_iou, s.max_detections, st->class_thresholds);
  }
  st->threshold = s.threshold;
  st->max_detections = s.max_detections;
  st->postprocess_changed = false;
  st->nms_iou_changed = false;
}

// Puts the current `classes` and `class-thresholds` in place, checked against the model's
// labels; when they do not fit, the filter in use stays, with a warning, and the properties go
// back to its values. Streaming thread (or stop()).
static void check_filter(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::string classes, thresholds;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    classes = st->settings.classes;
    thresholds = st->settings.class_thresholds;
    st->filter_changed = false;
  }
  try {
    st->filter = class_filter(model_labels(st), classes, thresholds);
  } catch (const ssd::Error& e) {
    const ClassFilter& in_use = st->filter;   // (not assigned: class_filter() threw)
    bool classes_back, thresholds_back;
    {
      std::lock_guard<std::mutex> guard(st->lock);
      classes_back = st->settings.classes == classes && classes != in_use.classes;
      thresholds_back = st->settings.class_thresholds == thresholds && thresholds != in_use.thresholds;
      if (classes_back) st->settings.classes = in_use.classes;
      if (thresholds_back) st->settings.class_thresholds = in_use.thresholds;
    }
    gstssd::after_frame(GST_ELEMENT(self), [self, classes, thresholds, why = std::string(e.what()),
                                            kept_classes = in_use.classes, kept_thresholds = in_use.thresholds,
                                            classes_back, thresholds_back] {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                          ("classes \"%s\" and class-thresholds \"%s\" not applied: %s. The element keeps classes "
                           "\"%s\" and class-thresholds \"%s\".",
                           classes.c_str(), thresholds.c_str(), why.c_str(), kept_classes.c_str(),
                           kept_thresholds.c_str()),
                          (nullptr));
      if (classes_back) g_object_notify(G_OBJECT(self), "classes");
      if (thresholds_back) g_object_notify(G_OBJECT(self), "class-thresholds");
    });
  }
}

// check_filter(), then the output stage's settings for it. Streaming thread.
static void update_filter(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  check_filter(self);
  reset_tracking(st);   // the next frame is analysed: carried boxes had the old filter
  std::lock_guard<std::mutex> guard(st->lock);
  apply_postprocess_locked(st);
}

// A model loaded for a switch whose labels lack a class `classes` or `class-thresholds` names
// (`why`): not switched to; a warning, and `model` goes back to the model in use unless another
// file was asked for meanwhile.
static void refuse_model(GstSsdDetect* self, const std::string& path, const std::string& why) {
  SsdDetectState* st = self->state;
  std::string in_use;
  bool revert;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    std::lock_guard<std::mutex> g(st->loader_lock);
    in_use = st->model_in_use;
    revert = st->settings.model == path && st->load_request.empty() && !st->loading && !st->loaded;
    if (revert) st->settings.model = in_use;
  }
  gstssd::after_frame(GST_ELEMENT(self), [self, path, why, in_use, revert] {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("Not switching to model \"%s\": %s. The element goes on with model \"%s\".", path.c_str(),
                         why.c_str(), in_use.c_str()),
                        (nullptr));
    if (revert) g_object_notify(G_OBJECT(self), "model");
  });
}

// stop(), once the streaming and loader threads are done: the settings changed while running
// that no frame has applied yet are settled as the next frame would have, so that the next start
// runs with what the element would have run with, not fail on them. A model loaded for a switch
// is checked against `classes` and `class-thresholds` (the next start loads it again when they
// fit, else the property goes back, with the warning); `classes` and `class-thresholds` set for
// the model in use are checked against it (they go back, with the warning, when they do not fit).
static void settle_pending_changes(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::unique_ptr<ssd::Detector> next;
  std::string path;
  {
    std::lock_guard<std::mutex> guard(st->loader_lock);
    next = std::move(st->loaded);
    path = std::move(st->loaded_model);
  }
  if (next) {
    std::string classes, thresholds;
    {
      std::lock_guard<std::mutex> guard(st->lock);
      classes = st->settings.classes;
      thresholds = st->settings.class_thresholds;
    }
    try {
      class_filter(next->labels(), classes, thresholds);
    } catch (const ssd::Error& e) {
      next.reset();
      refuse_model(self, path, e.what());
    }
  }
  bool check;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    check = st->filter_changed && st->settings.model == st->model_in_use;
  }
  if (check && model_loaded(st)) check_filter(self);
}

// Streaming thread: swaps in a model the loader thread has loaded, after the frames held for the
// old model have been through it (they go out from `ready` in order).
static GstFlowReturn adopt_loaded_model(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  {
    std::lock_guard<std::mutex> guard(st->loader_lock);
    if (!st->loaded) return GST_FLOW_OK;
  }
  if (st->batching()) {   // while `loaded` waits, filter changes wait for it too
    const GstFlowReturn ret = submit_pending(self);
    while (!st->submitted.empty()) complete_oldest(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  std::unique_ptr<ssd::Detector> next;
  std::string path;
  {
    std::lock_guard<std::mutex> guard(st->loader_lock);
    next = std::move(st->loaded);   // (only this thread and stop() take it)
    path = std::move(st->loaded_model);
  }
  // The class filter, for the new model's labels (`classes` and `class-thresholds` set with the
  // model, or before it, are checked here); a model they do not fit is not switched to.
  std::string classes, thresholds;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    classes = st->settings.classes;
    thresholds = st->settings.class_thresholds;
  }
  try {
    st->filter = class_filter(next->labels(), classes, thresholds);
  } catch (const ssd::Error& e) {
    next.reset();
    refuse_model(self, path, e.what());
    return GST_FLOW_OK;
  }
  std::unique_ptr<ssd::Detector> old = std::exchange(st->detector, std::move(next));
  st->batches_timed = 0;   // the new model's first batch warms up: not timed
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->model_in_use = path;
    if (st->settings.classes == classes && st->settings.class_thresholds == thresholds) st->filter_changed = false;
    apply_postprocess_locked(st);   // the new model's threshold, NMS IoU and count
  }
  reset_tracking(st);   // boxes carried over came from the old model
  const std::string device = st->detector->device_name();
  st->on_cuda = device != "cpu";
  st->graph_failures_reported = 0;
  old.reset();
  const auto& labels = st->detector->labels();
  const std::string joined = ssd::join_labels(labels, ",");
  GST_INFO_OBJECT(self, "switched to model %s (%zu classes)", path.c_str(), labels.size());
  GstMessage* changed = gst_message_new_element(
      GST_OBJECT(self), gst_structure_new("ssd-model-changed", "model", G_TYPE_STRING, path.c_str(), "device",
                                          G_TYPE_STRING, device.c_str(), "labels", G_TYPE_STRING, joined.c_str(),
                                          nullptr));
  gstssd::after_frame(GST_ELEMENT(self), [self, changed] { gst_element_post_message(GST_ELEMENT(self), changed); });
  return GST_FLOW_OK;
}

static void gst_ssd_detect_set_property(GObject* object, guint prop_id, const GValue* value,
                                        GParamSpec* pspec) {
  GstSsdDetect* self = GST_SSD_DETECT(object);
  SsdDetectState* st = self->state;
  bool load = false, refused = false;   // a model set while running: acted on after the lock
  bool read_at_start = false;           // a property start() read, set since: refused
  bool latency_changed = false;         // an `interval` that changes what batching adds
  std::string bad_region;               // why a `region` value was refused
  try {
    std::lock_guard<std::mutex> guard(st->lock);
    Settings& s = st->settings;
    read_at_start = st->settings_taken && gstssd::read_at_start(pspec);
    if (!read_at_start) switch (prop_id) {
      case PROP_MODEL: {
        const gchar* v = g_value_get_string(value);
        const std::string path = (v && *v) ? v : ssd::default_model_path();
        if (st->settings_taken && !s.model_instance_id.empty()) {   // read at start, as the shared instance
          refused = true;   // (the same path too: it means reload the file, which an instance cannot)
        } else {
          s.model = path;
          load = st->running;
        }
        break;
      }
      case PROP_DEVICE: {
        const gchar* v = g_value_get_string(value);
        s.device = (v && *v) ? v : kDefaultDevice;
        break;
      }
      case PROP_PRECISION:
        s.precision = static_cast<GstSsdPrecision>(g_value_get_enum(value));
        break;
      case PROP_THRESHOLD:
        s.threshold = g_value_get_float(value);
        st->postprocess_changed = true;
        break;
      case PROP_NMS_IOU:
        // A shared instance's is every stream's, read at start like the model: changed from
        // one element while they run, it changed the others' detections while their property
        // said otherwise.
        if (st->settings_taken && !s.model_instance_id.empty()) {
          refused = g_value_get_float(value) != s.nms_iou;   // (the same again: no change)
          break;
        }
        s.nms_iou = g_value_get_float(value);
        st->postprocess_changed = true;
        st->nms_iou_changed = true;
        break;
      case PROP_MAX_DETECTIONS:
        s.max_detections = g_value_get_int(value);
        st->postprocess_changed = true;
        break;
      case PROP_CLASSES: {
        const gchar* v = g_value_get_string(value);
        s.classes = v ? v : "";
        st->filter_changed = true;
        break;
      }
      case PROP_CLASS_THRESHOLDS: {
        const gchar* v = g_value_get_string(value);
        s.class_thresholds = v ? v : "";
        st->filter_changed = true;
        break;
      }
      case PROP_INTERVAL: {
        const guint was = std::max(1u, s.interval);
        s.interval = g_value_get_uint(value);
        latency_changed = st->running && st->batching() && std::max(1u, s.interval) != was;
        break;
      }
      case PROP_THREADS:
        s.threads = g_value_get_int(value);
        break;
      case PROP_BATCH_SIZE:
        s.batch_size = g_value_get_uint(value);
        break;
      case PROP_BATCH_TIMEOUT:
        s.batch_timeout = g_value_get_uint64(value);
        break;
      case PROP_IN_FLIGHT:
        s.in_flight = g_value_get_uint(value);
        break;
      case PROP_CUDA_GRAPHS:
        s.cuda_graphs = g_value_get_boolean(value);
        break;
      case PROP_FRAME_POOL:
        s.frame_pool = static_cast<GstSsdFramePool>(g_value_get_enum(value));
        break;
      case PROP_CLASS_AGNOSTIC_NMS:
        s.class_agnostic_nms = g_value_get_boolean(value);
        break;
      case PROP_MODEL_INSTANCE_ID: {
        const gchar* v = g_value_get_string(value);
        s.model_instance_id = v ? v : "";
        break;
      }
      case PROP_REGION: {
        const std::string v = g_value_get_string(value) ? g_value_get_string(value) : "";
        try {
          s.region = parse_region(v);
          s.region_text = ssd::trim(v);
          s.region_error.clear();
          st->region_changed = true;
        } catch (const ssd::Error& e) {
          if (st->settings_taken) {
            bad_region = e.what();   // started or starting: a warning, the region in use stays
          } else {
            s.region = std::nullopt;   // before the start: start() fails, naming the value
            s.region_text = ssd::trim(v);
            s.region_error = e.what();
          }
        }
        break;
      }
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "setting property %s failed: %s", pspec->name, e.what());
  }
  if (read_at_start) gstssd::warn_read_at_start(GST_ELEMENT(self), pspec, value);
  if (!bad_region.empty())
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Region not changed: %s.", bad_region.c_str()), (nullptr));
  if (refused)
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("The %s of an element sharing a model instance (model-instance-id) changes only in the "
                         "NULL or READY state: the element keeps the one it runs with. Stop the instance's "
                         "elements, set it on each, and start them again.",
                         pspec->name),
                        (nullptr));
  if (latency_changed) {
    // Batching holds a frame for batch-size analysed frames, so the latency it adds grows with
    // `interval`: the pipeline asks again (gst_bin_recalculate_latency).
    GST_DEBUG_OBJECT(self, "interval changed while batching: posting a latency message");
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
  }
  if (load) {
    try {
      request_model(self);
    } catch (const std::exception& e) {
      GST_ELEMENT_WARNING(self, RESOURCE, FAILED, ("Could not start loading the new model: %s", e.what()), (nullptr));
    }
  }
}

static void gst_ssd_detect_get_property(GObject* object, guint prop_id, GValue* value,
                                        GParamSpec* pspec) {
  GstSsdDetect* self = GST_SSD_DETECT(object);
  SsdDetectState* st = self->state;
  std::lock_guard<std::mutex> guard(st->lock);
  const Settings& s = st->settings;
  switch (prop_id) {
    case PROP_MODEL: g_value_set_string(value, s.model.c_str()); break;
    case PROP_DEVICE: g_value_set_string(value, s.device.c_str()); break;
    case PROP_PRECISION: g_value_set_enum(value, s.precision); break;
    case PROP_THRESHOLD: g_value_set_float(value, s.threshold); break;
    case PROP_NMS_IOU: g_value_set_float(value, s.nms_iou); break;
    case PROP_MAX_DETECTIONS: g_value_set_int(value, s.max_detections); break;
    case PROP_CLASSES: g_value_set_string(value, s.classes.empty() ? nullptr : s.classes.c_str()); break;
    case PROP_CLASS_THRESHOLDS:
      g_value_set_string(value, s.class_thresholds.empty() ? nullptr : s.class_thresholds.c_str());
      break;
    case PROP_INTERVAL: g_value_set_uint(value, s.interval); break;
    case PROP_THREADS: g_value_set_int(value, s.threads); break;
    case PROP_BATCH_SIZE: g_value_set_uint(value, s.batch_size); break;
    case PROP_BATCH_TIMEOUT: g_value_set_uint64(value, s.batch_timeout); break;
    case PROP_IN_FLIGHT: g_value_set_uint(value, s.in_flight); break;
    case PROP_CUDA_GRAPHS: g_value_set_boolean(value, s.cuda_graphs); break;
    case PROP_FRAME_POOL: g_value_set_enum(value, s.frame_pool); break;
    case PROP_CLASS_AGNOSTIC_NMS: g_value_set_boolean(value, s.class_agnostic_nms); break;
    case PROP_MODEL_INSTANCE_ID:
      g_value_set_string(value, s.model_instance_id.empty() ? nullptr : s.model_instance_id.c_str());
      break;
    case PROP_REGION: g_value_set_string(value, s.region_text.empty() ? nullptr : s.region_text.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ssd_detect_finalize(GObject* object) {
  GstSsdDetect* self = GST_SSD_DETECT(object);
  delete self->state;
  self->state = nullptr;
  G_OBJECT_CLASS(gst_ssd_detect_parent_class)->finalize(object);
}

/* GstBaseTransform vmethods */

static gboolean gst_ssd_detect_start(GstBaseTransform* trans) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  SsdDetectState* st = self->state;
  // A failed start is not followed by stop(): the settings are free again.
  struct UntakeOnFailure {
    SsdDetectState* st;
    bool started = false;
    ~UntakeOnFailure() {
      if (started) return;
      std::lock_guard<std::mutex> guard(st->lock);
      st->settings_taken = false;
    }
  } untake{st};
  Settings s;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    s = st->settings;
    st->settings_taken = true;
    st->postprocess_changed = false;
    // A shared instance takes a starting element's nms-iou: the first's, or a joiner's, which
    // acquire() has found equal to the instance's.
    st->nms_iou_changed = true;
    st->filter_changed = false;
    st->region_changed = false;
  }
  st->region = s.region;
  st->region_checked = false;
  if (!s.region_error.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid region property: %s.", s.region_error.c_str()),
                      (nullptr));
    return FALSE;
  }
  if (s.model.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No model file given (the model property is empty)."),
                      (nullptr));
    return FALSE;
  }
  if (const std::string why = model_file_problem(s.model); !why.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Could not load model \"%s\": %s.", s.model.c_str(), why.c_str()),
                      ("model property: %s", s.model.c_str()));
    return FALSE;
  }
  const ssd::DetectorOptions opts = detector_options(s);
  const std::string& instance = s.model_instance_id;
  try {
    if (instance.empty()) {
      st->detector = std::make_unique<ssd::Detector>(opts);
    } else {
      // Shared with the other elements of this id: batch-size, batch-timeout and in-flight are
      // the instance's, which batches the frames of all its streams.
      ssd::SharedDetectorOptions shared;
      shared.detector = opts;
      shared.max_batch = static_cast<int>(std::max(1u, s.batch_size));
      shared.max_wait = std::chrono::microseconds(s.batch_timeout / 1000);
      set_shared(st, ssd::SharedDetector::acquire(instance, shared));
    }
  } catch (const std::exception& e) {
    // A thread the system refused (ulimit -u, a cgroup's pids.max) is no problem of the model's.
    if (const auto* se = dynamic_cast<const std::system_error*>(&e);
        se && se->code() == std::errc::resource_unavailable_try_again) {
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                        ("Could not start the detector's threads: the system refused one (%s); see the "
                         "process limit (ulimit -u) or the cgroup's pids.max.", e.what()),
                        ("model %s, threads %d", s.model.c_str(), s.threads));
      return FALSE;
    }
    if (instance.empty()) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load model \"%s\": %s", s.model.c_str(), e.what()),
                        ("device=%s precision=%s", s.device.c_str(), opts.fp16 ? "fp16" : "fp32"));
    } else {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                        ("Could not load model \"%s\" as model instance \"%s\": %s", s.model.c_str(),
                         instance.c_str(), e.what()),
                        ("device=%s precision=%s", s.device.c_str(), opts.fp16 ? "fp16" : "fp32"));
    }
    return FALSE;
  } catch (...) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load model \"%s\": unknown error", s.model.c_str()),
                      (nullptr));
    return FALSE;
  }

  // The class filter, checked against the model's labels.
  try {
    st->filter = class_filter(model_labels(st), s.classes, s.class_thresholds);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Model \"%s\": %s", s.model.c_str(), e.what()), (nullptr));
    st->detector.reset();
    set_shared(st, nullptr);
    return FALSE;
  }
  const std::string device = model_device(st);
  if (device == "cpu") {
    const std::string slow = ssd::slow_blas_warning();
    if (!slow.empty())
      GST_ELEMENT_WARNING(self, LIBRARY, INIT, ("Slow CPU inference: %s.", slow.c_str()), (nullptr));
  }
  st->on_cuda = device != "cpu";
  reset_tracking(st);
  st->inferences = 0;
  st->graph_failures_reported = 0;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    apply_postprocess_locked(st);   // the output stage's thresholds: the filter's
  }
  {
    std::lock_guard<std::mutex> guard(st->lock);   // (the source pad's queries read them)
    // A shared instance batches across its streams; the element itself passes frames one by one.
    st->batch_size = st->shared ? 1u : std::max(1u, s.batch_size);
    st->in_flight = st->shared ? 1u : static_cast<guint>(st->detector->max_in_flight());
    st->held_per_batch = st->batch_size * std::clamp(s.interval, 1u, kMaxHeldInterval);
    st->batch_timeout = s.batch_timeout;
  }
  {
    std::lock_guard<std::mutex> guard(st->output_lock);   // (an output thread stopped from itself may be ending)
    st->output_flow = GST_FLOW_OK;
    st->output_flow_told = false;
  }
  st->discont_next = false;
  st->position_out = GST_CLOCK_TIME_NONE;
  st->pushed = 0;
  st->warned_unbounded_latency = false;
  st->compute_latency = 0;
  st->batches_timed = 0;
  st->graph_captures_seen = 0;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->have_frame_rate_info = false;
    st->frame_duration = GST_CLOCK_TIME_NONE;
  }
  if (st->batching()) {
    guint64 generation;
    {
      std::lock_guard<std::mutex> guard(st->output_lock);
      st->watch_submitted = false;
      st->deadline = std::chrono::steady_clock::time_point::max();
      generation = st->output_generation;
    }
    try {
      gst_object_ref(self);   // the thread's own, dropped when it ends
      st->output_thread = std::thread([self, generation] {
        output_loop(self, generation);
        gst_object_unref(self);   // may finalize the element (stopped and freed meanwhile)
      });
    } catch (const std::system_error& e) {
      gst_object_unref(self);
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Could not start the output thread: %s", e.what()), (nullptr));
      st->detector.reset();
      return FALSE;
    }
  }
  bool changed_meanwhile;   // `model` set while this start() loaded the model: load that one next
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->running = true;
    st->started = s;
    // A model loaded while playing keeps the in-flight count resolved now (frames held for it).
    if (st->detector) st->started.in_flight = st->in_flight;
    st->model_in_use = s.model;
    changed_meanwhile = !st->shared && st->settings.model != s.model;
  }
  if (changed_meanwhile) {
    try {
      request_model(self);
    } catch (const std::exception& e) {
      GST_ELEMENT_WARNING(self, RESOURCE, FAILED, ("Could not start loading the new model: %s", e.what()), (nullptr));
    }
  }
  std::string sharing;
  if (st->shared) {
    const long users = st->shared->users();
    sharing = ", model instance \"" + instance + "\" (" + std::to_string(users) + (users == 1 ? " element, " : " elements, ") +
              std::to_string(st->shared->workers()) + (st->shared->workers() == 1 ? " worker)" : " workers)");
  }
  GST_INFO_OBJECT(self, "loaded model %s on %s (%s), %zu classes, batch %u, in flight %u, CUDA graphs %s%s",
                  s.model.c_str(), device.c_str(), model_fp16(st) ? "fp16" : "fp32", model_labels(st).size(),
                  std::max(1u, s.batch_size), st->in_flight, model_graphs(st) ? "on" : "off", sharing.c_str());
  untake.started = true;
  return TRUE;
}

static gboolean gst_ssd_detect_stop(GstBaseTransform* trans) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  SsdDetectState* st = self->state;
  // Under the sink pad's stream lock, which a frame and a serialized query (a drain) hold: GstBaseTransform
  // stops when its source pad deactivates, while the sink pad still takes them, and a drain query from
  // upstream ran on the detector this frees (a segfault in a helper's state cycles).
  struct StreamLock {
    GstPad* pad;
    explicit StreamLock(GstPad* p) : pad(p) { GST_PAD_STREAM_LOCK(pad); }
    ~StreamLock() { GST_PAD_STREAM_UNLOCK(pad); }
  } stream_lock(GST_BASE_TRANSFORM_SINK_PAD(trans));
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->running = false;   // no more model updates
    st->settings_taken = false;
  }
  st->stop_output_thread();   // first: it may be working on the detector and the held frames
  st->join_loader();
  try {
    settle_pending_changes(self);
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "settling the settings changed while running failed: %s", e.what());
  }
  st->stop_loader();
  try {
    if (st->shared) {
      const auto s = st->shared->stats();
      GST_INFO_OBJECT(self,
                      "leaving model instance \"%s\" after %" G_GUINT64_FORMAT " inferences; the instance ran %"
                      G_GINT64_FORMAT " frames of its streams in %" G_GINT64_FORMAT " batches (largest %" G_GINT64_FORMAT
                      ")", st->shared->id().c_str(), st->inferences, s.frames, s.batches, s.largest_batch);
    }
    if (st->detector) {
      const auto [g, pre] = model_graph_stats(st);
      GST_INFO_OBJECT(self,
                      "releasing the model after %" G_GUINT64_FORMAT " inferences; CUDA graphs: network %" G_GINT64_FORMAT
                      " captured, %" G_GINT64_FORMAT " batches replayed, %" G_GINT64_FORMAT " eager; preprocessing %"
                      G_GINT64_FORMAT " captured, %" G_GINT64_FORMAT " replayed, %" G_GINT64_FORMAT " eager",
                      st->inferences, g.captures, g.replays, g.eager, pre.captures, pre.replays, pre.eager);
    }
    discard_held(st);
    for (GstEvent* e : st->kept_sticky) gst_event_unref(e);   // the pads are inactive
    st->kept_sticky.clear();
    st->detector.reset();
    leave_shared(st);
    set_shared(st, nullptr);   // the instance goes with its last element
    st->on_cuda = false;
    st->have_info = false;
    reset_tracking(st);
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "releasing the model failed: %s", e.what());
  }
  return TRUE;
}

static gboolean gst_ssd_detect_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps* outcaps) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  SsdDetectState* st = self->state;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  ssd::PixelFormat pf;
  if (!to_pixel_format(GST_VIDEO_INFO_FORMAT(&info), &pf)) {
    GST_ERROR_OBJECT(self, "unsupported format in %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, incaps, outcaps);
  st->info = info;
  st->have_info = true;
  st->region_checked = false;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->have_frame_rate_info = true;
    st->frame_duration = gstssd::frame_duration(info);
  }
  // A new resolution or format: analyse the next frame instead of carrying old boxes over.
  reset_tracking(st);
  return TRUE;
}

// Keeps `event` to go downstream after the newest frame held (waiting for its batch, computing,
// or ready, or being pushed); false when no frame is held (the event goes on now).
static bool hold_event(SsdDetectState* st, GstEvent* event) {
  if (!st->pending.empty()) {
    st->pending.back().events.push_back(event);
  } else if (!st->submitted.empty()) {
    st->submitted.back().back().events.push_back(event);
  } else {
    {
      std::lock_guard<std::mutex> guard(st->output_lock);
      if (st->ready.empty() && st->pushing == 0) return false;
      st->ready.push_back(GST_MINI_OBJECT_CAST(event));
    }
    st->output_wake.notify_all();
  }
  return true;
}

static gboolean gst_ssd_detect_sink_event(GstBaseTransform* trans, GstEvent* event) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  const gstssd::HoldPosts hold(GST_ELEMENT(self));
  SsdDetectState* st = self->state;
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) {
    GST_DEBUG_OBJECT(self, "flush: forgetting the last detections and dropping held frames");
    discard_held(st);
    reset_tracking(st);
    wait_push_done(self, false);   // the frame being pushed goes before the end of the flush
    {
      std::lock_guard<std::mutex> guard(st->output_lock);
      st->output_flow = GST_FLOW_OK;
      st->output_flow_told = false;
      st->flushes++;
    }
    st->discont_next = false;   // the next frame is one after a flush: upstream marks it
    st->position_out = GST_CLOCK_TIME_NONE;
    const gboolean res = GST_BASE_TRANSFORM_CLASS(gst_ssd_detect_parent_class)->sink_event(trans, event);
    store_kept_sticky(self);   // the source pad accepts them again
    return res;
  } else if (GST_EVENT_IS_SERIALIZED(event) && st->batching() && passes_with_frames(event) &&
             hold_event(st, event)) {
    GST_DEBUG_OBJECT(self, "%s: held after the last held frame", GST_EVENT_TYPE_NAME(event));
    return TRUE;
  } else if (GST_EVENT_IS_SERIALIZED(event) && st->batching()) {
    // Held frames go out before the event (EOS, segment, caps, gap...) that follows them.
    GST_DEBUG_OBJECT(self, "%s: draining %zu held frames", GST_EVENT_TYPE_NAME(event), st->pending.size());
    const GstFlowReturn ret = drain(self, true);
    if (ret != GST_FLOW_OK) GST_DEBUG_OBJECT(self, "draining: %s", gst_flow_get_name(ret));
    bool told;
    {
      std::lock_guard<std::mutex> guard(st->output_lock);
      told = st->output_flow_told;
    }
    // At EOS no frame follows to return a failure upstream: a fatal one of the output thread's
    // pushes (downstream refusing the frames' caps, say) that no chain returned is posted here,
    // as a queue or a source posts its own, so that the stream does not seem to end well. (Not
    // GST_FLOW_ERROR: whoever returns it posts an error, as a failed batch did here.)
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS && !told &&
        (ret == GST_FLOW_NOT_LINKED || (ret < GST_FLOW_EOS && ret != GST_FLOW_ERROR)))
      GST_ELEMENT_FLOW_ERROR(self, ret);
  }
  // After EOS the stream sends no frame (until a flush or a new stream): the shared instance's
  // batches stop waiting for its frames now, as for a paused stream, not once it has been silent
  // for twice batch-timeout (the other cameras' frames waited that long, and live ones were
  // dropped late).
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) leave_shared(st);
  if (gstssd::starts_afresh(trans, event)) {
    // Another stream (concat, gapless playback) or a jump in this one (a seek without a flush):
    // the next frame is analysed, no frame carries the boxes of the frames before.
    reset_tracking(st);
  }
  return GST_BASE_TRANSFORM_CLASS(gst_ssd_detect_parent_class)->sink_event(trans, event);
}

// `carried`: the frame was not analysed (`interval`) and gets the last analysed frame's boxes.
static void attach_detections(GstSsdDetect* self, GstBuffer* buf, const std::vector<ssd::Detection>& dets,
                              bool carried) {
  SsdDetectState* st = self->state;
  const int width = GST_VIDEO_INFO_WIDTH(&st->info);
  const int height = GST_VIDEO_INFO_HEIGHT(&st->info);
  const auto& labels = model_labels(st);
#ifdef HAVE_GST_ANALYTICS
  GstAnalyticsRelationMeta* rmeta = nullptr;
#endif
  // Ids follow those of regions already on the buffer (another detector's), unique per frame.
  gint index = 0;
  gpointer iter = nullptr;
  while (GstMeta* m = gst_buffer_iterate_meta_filtered(buf, &iter, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    const gint id = reinterpret_cast<GstVideoRegionOfInterestMeta*>(m)->id;
    if (id < G_MAXINT) index = std::max(index, id + 1);
  }
  for (const ssd::Detection& d : dets) {
    const double x0 = std::clamp<double>(d.x_min, 0.0, 1.0), y0 = std::clamp<double>(d.y_min, 0.0, 1.0);
    const double x1 = std::clamp<double>(d.x_max, 0.0, 1.0), y1 = std::clamp<double>(d.y_max, 0.0, 1.0);
    if (!(x1 > x0 && y1 > y0)) continue;   // nothing left inside the frame
    // A box inside the frame narrower or lower than a pixel (a tiny frame's) keeps one, at the
    // pixel its centre is in: a region for each detection max-detections chose.
    const auto pixels = [](double lo, double hi, int size, int* p0, int* p1) {
      *p0 = static_cast<int>(std::lround(lo * size));
      *p1 = static_cast<int>(std::lround(hi * size));
      if (*p1 <= *p0) {
        *p0 = std::clamp(static_cast<int>((lo + hi) / 2 * size), 0, size - 1);
        *p1 = *p0 + 1;
      }
    };
    int px0, py0, px1, py1;
    pixels(x0, x1, width, &px0, &px1);
    pixels(y0, y1, height, &py0, &py1);
    const bool known = d.label_id >= 0 && d.label_id < static_cast<int>(labels.size());
    const std::string label = known ? labels[d.label_id] : "class" + std::to_string(d.label_id);
    const GQuark type = g_quark_from_string(label.c_str());

    GstVideoRegionOfInterestMeta* roi = gst_buffer_add_video_region_of_interest_meta_id(
        buf, type, px0, py0, px1 - px0, py1 - py0);
    roi->id = index++;
    roi->parent_id = -1;
    GstStructure* s = gst_structure_new(gstssd::kDetectionStructure,
                                        "label_id", G_TYPE_INT, d.label_id,
                                        "label", G_TYPE_STRING, label.c_str(),
                                        "confidence", G_TYPE_DOUBLE, static_cast<double>(d.confidence),
                                        "x_min", G_TYPE_DOUBLE, x0,
                                        "y_min", G_TYPE_DOUBLE, y0,
                                        "x_max", G_TYPE_DOUBLE, x1,
                                        "y_max", G_TYPE_DOUBLE, y1,
                                        "carried", G_TYPE_BOOLEAN, carried ? TRUE : FALSE, nullptr);
    gst_video_region_of_interest_meta_add_param(roi, s);   // takes ownership
#ifdef HAVE_GST_ANALYTICS
    // Returns the relation meta an upstream analyser attached, if any (one per buffer).
    if (!rmeta) rmeta = gst_buffer_add_analytics_relation_meta(buf);
    const bool added = rmeta && gst_analytics_relation_meta_add_od_mtd(rmeta, type, px0, py0, px1 - px0,
                                                                       py1 - py0, d.confidence, nullptr);
    if (!added) GST_WARNING_OBJECT(self, "could not add the analytics object-detection meta of %s", label.c_str());
#endif
    GST_LOG_OBJECT(self, "%s %.3f at %d,%d %dx%d", label.c_str(), d.confidence, px0, py0, px1 - px0, py1 - py0);
  }
}

// Applies property changes made while playing: the output settings, the region and the class
// filter (a filter that does not fit the model is a warning, and the properties revert; while a
// new model is on its way, a filter change waits for it and is checked against it).
static guint apply_settings(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  bool filter_changed;
  guint interval;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    if (st->postprocess_changed) {
      apply_postprocess_locked(st);
      reset_tracking(st);   // the next frame is analysed: carried boxes had the old threshold, IoU, count
    }
    interval = std::max(1u, st->settings.interval);
    if (st->region_changed) {
      st->region = st->settings.region;
      st->region_changed = false;
      st->region_checked = false;
      reset_tracking(st);   // the next frame is analysed: carried boxes came from the old region
    }
    filter_changed = st->filter_changed;
  }
  if (filter_changed && !model_change_pending(st)) update_filter(self);
  return interval;
}

// Whether apply_settings() would change what the network or the filter does with the next frame.
static bool settings_change_pending(SsdDetectState* st) {
  bool filter;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    if (st->postprocess_changed || st->region_changed) return true;
    filter = st->filter_changed;
  }
  return filter && !model_change_pending(st);
}

// Whether the network sees this frame: every `interval`-th picture. A gap buffer (nothing new:
// none at all, or a repeat of the last picture, as videorate's duplicates) is not analysed nor
// counted, and carries the last detections as a frame `interval` skips.
static bool count_frame(SsdDetectState* st, GstBuffer* buf, guint interval) {
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP)) return false;
  const bool analyse = st->frames_since_reset % interval == 0;
  st->frames_since_reset++;
  return analyse;
}

// The frame at the size of the caps `info` (a buffer's frame may be larger: its video meta's
// size, which the map takes), or the part of it `region` gives (clipped, non-empty): each
// plane's pointer moved to the region's first pixel, with the frame's strides.
static ssd::FrameView frame_view(const gstssd::VideoFrameMap& frame, const GstVideoInfo& info,
                                 const std::optional<Region>& region) {
  ssd::FrameView view;
  to_pixel_format(frame.format(), &view.format);
  view.width = region ? region->width : GST_VIDEO_INFO_WIDTH(&info);
  view.height = region ? region->height : GST_VIDEO_INFO_HEIGHT(&info);
  for (int i = 0; i < frame.n_planes() && i < 3; i++) {
    view.planes[i] = frame.plane(i);
    view.strides[i] = frame.stride(i);
  }
  if (region) {
    const GstVideoFormatInfo* finfo = frame.info().finfo;
    bool moved[GST_VIDEO_MAX_PLANES] = {};
    for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS(finfo); c++) {
      const guint p = GST_VIDEO_FORMAT_INFO_PLANE(finfo, c);
      if (p >= 3 || moved[p]) continue;
      moved[p] = true;
      const int x = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(finfo, c, region->x);
      const int y = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(finfo, c, region->y);
      view.planes[p] += static_cast<ptrdiff_t>(y) * view.strides[p] + x * GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, c);
    }
  }
  const gstssd::YuvCoefficients yuv = gstssd::yuv_coefficients(frame.info());
  view.yuv.kr = yuv.kr;
  view.yuv.kb = yuv.kb;
  view.yuv.full_range = yuv.full_range;
  view.pinned = gstssd::is_pinned(frame.buffer());
  return view;
}

// The part of a frame the network sees, in its buffer's pixels: none for the caps-sized frame at
// the buffer's origin (frame_view's default), else `region` within the frame's picture
// (gstssd::picture_rect: caps-sized, at a crop meta's offset), or that picture, clipped to it
// (width or height 0: nothing of it).
static std::optional<Region> analysed_region(const SsdDetectState* st, const Region& picture) {
  const bool whole = picture.x == 0 && picture.y == 0 && picture.width == GST_VIDEO_INFO_WIDTH(&st->info) &&
                     picture.height == GST_VIDEO_INFO_HEIGHT(&st->info);
  if (!st->region && whole) return std::nullopt;
  const Region within = st->region ? *st->region : Region{0, 0, picture.width, picture.height};
  return clip_region(within, picture, GST_VIDEO_INFO_IS_YUV(&st->info));
}
static bool blind(const std::optional<Region>& r) { return r && (r->width < 2 || r->height < 2); }

// The first analysed frame of a `region` and of caps: a region that leaves nothing of the frame
// to analyse (e.g. one measured on a larger picture) is a warning, as no detection will ever come;
// one that runs past the frame's edge, which clips it, a line in the debug log.
static void check_region(GstSsdDetect* self, const std::optional<Region>& analysed, const Region& picture) {
  SsdDetectState* st = self->state;
  if (st->region_checked || !st->region || !analysed) return;
  st->region_checked = true;
  const Region& r = *st->region;
  if (blind(analysed)) {
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("The region %d,%d,%d,%d leaves nothing of the %dx%d frame to analyse: no object will be "
                         "detected.", r.x, r.y, r.width, r.height, picture.width, picture.height),
                        ("region %d,%d %dx%d clipped to the picture: %dx%d", r.x, r.y, r.width, r.height,
                         analysed->width, analysed->height));
  } else if (static_cast<long>(r.x) + r.width > picture.width || static_cast<long>(r.y) + r.height > picture.height) {
    GST_INFO_OBJECT(self, "region %d,%d %dx%d runs past the %dx%d frame: %d,%d %dx%d analysed", r.x, r.y, r.width,
                    r.height, picture.width, picture.height, analysed->x - picture.x, analysed->y - picture.y,
                    analysed->width, analysed->height);
  }
}

// Detections normalised to the region the network saw, as boxes normalised to the picture, whose
// size is the caps' (also where a crop meta's runs off the buffer and the picture is clipped).
static void region_to_frame(const std::optional<Region>& r, const Region& picture, const GstVideoInfo& info,
                            std::vector<ssd::Detection>* dets) {
  if (!r) return;
  const double w = GST_VIDEO_INFO_WIDTH(&info), h = GST_VIDEO_INFO_HEIGHT(&info);
  auto to_x = [&](float v) { return static_cast<float>((r->x - picture.x + std::clamp(v, 0.f, 1.f) * r->width) / w); };
  auto to_y = [&](float v) { return static_cast<float>((r->y - picture.y + std::clamp(v, 0.f, 1.f) * r->height) / h); };
  for (ssd::Detection& d : *dets) {
    d.x_min = to_x(d.x_min);
    d.x_max = to_x(d.x_max);
    d.y_min = to_y(d.y_min);
    d.y_max = to_y(d.y_max);
  }
}

static GstFlowReturn map_error(GstSsdDetect* self, GstBuffer* buf) {
  GST_ELEMENT_ERROR(self, STREAM, FAILED,
                    ("Could not map the video frame: %s.", gstssd::map_failure(buf, self->state->info).c_str()),
                    (nullptr));
  return GST_FLOW_ERROR;
}

static GstFlowReturn not_ready(GstSsdDetect* self) {
  {
    // Stopped (GstBaseTransform stops when the source pad deactivates, before the sink pad): a
    // frame that comes meanwhile is turned away as a flushing pad would, not with an error (a
    // restart's first error used to be this one, before the real cause).
    std::lock_guard<std::mutex> guard(self->state->lock);
    if (!self->state->running) return GST_FLOW_FLUSHING;
  }
  GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("No model loaded or caps not negotiated."), (nullptr));
  return GST_FLOW_NOT_NEGOTIATED;
}

static void note_compute_time(GstSsdDetect* self, std::chrono::nanoseconds took);

// One frame at a time (batch-size 1, in-flight 1): the in-place transform.
static GstFlowReturn detect_frame(GstSsdDetect* self, GstBuffer* buf) {
  SsdDetectState* st = self->state;
  if (!model_loaded(st) || !st->have_info) return not_ready(self);
  adopt_loaded_model(self);   // (nothing is held without batching: always GST_FLOW_OK)
  const guint interval = apply_settings(self);
  const bool analyse = count_frame(st, buf, interval);
  if (analyse) {
    const Region picture = gstssd::picture_rect(buf, st->info);
    const std::optional<Region> region = analysed_region(st, picture);
    check_region(self, region, picture);
    std::vector<ssd::Detection> dets;
    if (!blind(region)) {
      gstssd::VideoFrameMap frame(&st->info, buf, GST_MAP_READ);
      if (!frame) return map_error(self, buf);
      const ssd::FrameView view = frame_view(frame, st->info, region);
      // A shared instance returns once this frame's batch (with other streams' frames) is done:
      // its computation, beyond the wait for those frames, is latency as a held batch's is.
      if (st->shared) {
        std::chrono::nanoseconds computed{};
        st->shared_caller = std::this_thread::get_id();
        dets = st->shared->detect(view, st->threshold, st->max_detections, st->class_thresholds, &computed);
        note_compute_time(self, computed);
      } else {
        dets = st->detector->detect(view);
      }
      st->inferences++;
      report_graph_failures(self);
      region_to_frame(region, picture, st->info, &dets);
    }
    st->last = std::move(dets);
  }
  // Frames between two analysed ones carry the last detections so that boxes do not blink.
  attach_detections(self, buf, st->last, !analyse);
  return GST_FLOW_OK;
}

/* Batching: several frames per network run, several runs in flight */

// Hands frames (and the events after them) to the output thread to push, in order.
static void queue_ready(SsdDetectState* st, const std::vector<GstMiniObject*>& items) {
  {
    std::lock_guard<std::mutex> guard(st->output_lock);
    for (GstMiniObject* item : items) {
      if (GST_IS_BUFFER(item)) st->ready_frames++;
      st->ready.push_back(item);
    }
  }
  st->output_wake.notify_all();
}

// A held frame on its way out: the last detections attached (carried over unless it was analysed)
// and, after it, the events that came after it.
static void frame_out(GstSsdDetect* self, const HeldFrame& h, std::vector<GstMiniObject*>* out) {
  attach_detections(self, h.buffer, self->state->last, !h.analyse);
  out->push_back(GST_MINI_OBJECT_CAST(h.buffer));
  for (GstEvent* e : h.events) out->push_back(GST_MINI_OBJECT_CAST(e));
}

// The oldest submitted batch: waits for its detections, attaches them (carrying the last
// detections over to frames the network skipped) and moves its frames to `ready`.
static void complete_oldest(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::vector<HeldFrame> batch = std::move(st->submitted.front());
  st->submitted.pop_front();
  std::vector<std::vector<ssd::Detection>> results;
  const auto collect_start = std::chrono::steady_clock::now();
  try {
    results = st->detector->collect();
  } catch (...) {
    for (const HeldFrame& h : batch) release(h);
    throw;
  }
  // What submit() and collect() blocked for (on CUDA with one batch in flight, about the batch's
  // computation; with more, added_latency() allows a batch of frame times more), or what a CPU
  // worker computed it in while they did not.
  note_compute_time(self, std::max<std::chrono::nanoseconds>(
                              batch.front().blocked + (std::chrono::steady_clock::now() - collect_start),
                              st->detector->compute_time()));
  report_graph_failures(self);
  for (HeldFrame& h : batch) h.map.reset();   // the device is done with the frames: unmap
  size_t next = 0;
  std::vector<GstMiniObject*> out;
  for (const HeldFrame& h : batch) {
    if (h.analyse && h.blind) {
      st->last.clear();
    } else if (h.analyse && next < results.size()) {
      st->last = std::move(results[next++]);
      region_to_frame(h.region, h.picture, st->info, &st->last);
    }
    frame_out(self, h, &out);
  }
  queue_ready(st, out);
}

// Raises the computation time the latency query adds when a batch took longer than it says to
// compute, with a quarter more, by more than a millisecond (not the first batch of a model, nor
// one that captured a CUDA graph), and posts a latency message so that the pipeline asks again.
// (Not the time from its submission to its collection: that includes the output thread's wait in
// a synchronised sink's push, for as long as the latency reported, which would feed on itself.)
static void note_compute_time(GstSsdDetect* self, std::chrono::nanoseconds took) {
  SsdDetectState* st = self->state;
  if (model_graphs(st)) {   // a capture (a batch size's third run) takes longer than a replay
    const auto [g, pre] = model_graph_stats(st);
    const guint64 captures = static_cast<guint64>(g.captures + pre.captures + g.failures + pre.failures);
    const bool captured = captures != st->graph_captures_seen;
    st->graph_captures_seen = captures;
    if (captured) return;
  }
  // The first batch of each in-flight slot (of a model) warms up (on the CPU: a worker's first).
  if (st->batches_timed++ < st->in_flight) return;
  const guint64 ns = static_cast<guint64>(std::max<int64_t>(0, took.count()));
  const guint64 reported = st->compute_latency;
  if (ns <= reported || ns - reported < GST_MSECOND) return;
  st->compute_latency = ns + ns / 4;
  GST_DEBUG_OBJECT(self, "a batch took %" GST_TIME_FORMAT ": reporting %" GST_TIME_FORMAT " more latency",
                   GST_TIME_ARGS(ns), GST_TIME_ARGS(st->compute_latency.load()));
  gstssd::after_frame(GST_ELEMENT(self), [self] {
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
  });
}

// Sends the pending frames to the detector as one batch (frames are copied to the device or to
// pinned staging memory before this returns, except frames in page-locked memory, which stay
// mapped until their batch is collected), then collects batches beyond in-flight - 1. The
// settings in effect are those applied when the newest pending frame came (hold_frame() submits
// the pending frames before it applies a change).
static GstFlowReturn submit_pending(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  if (st->pending.empty()) return GST_FLOW_OK;
  std::vector<HeldFrame> batch(st->pending.begin(), st->pending.end());
  st->pending.clear();
  st->pending_analysed = 0;
  st->submitted.push_back(std::move(batch));   // owns the buffers from here on
  std::vector<HeldFrame>& frames = st->submitted.back();
  auto drop_batch = [st] {
    for (const HeldFrame& h : st->submitted.back()) release(h);
    st->submitted.pop_back();
  };
  std::vector<ssd::FrameView> views;
  for (HeldFrame& h : frames) {
    if (!h.analyse) continue;
    h.picture = gstssd::picture_rect(h.buffer, st->info);
    h.region = analysed_region(st, h.picture);
    check_region(self, h.region, h.picture);
    h.blind = blind(h.region);
    if (h.blind) continue;
    h.map = std::make_shared<gstssd::VideoFrameMap>(&st->info, h.buffer, GST_MAP_READ);
    if (!*h.map) {
      const GstFlowReturn ret = map_error(self, h.buffer);
      drop_batch();
      return ret;
    }
    views.push_back(frame_view(*h.map, st->info, h.region));
  }
  const auto submit_start = std::chrono::steady_clock::now();
  try {
    st->detector->submit(views);
  } catch (...) {
    drop_batch();
    throw;
  }
  frames.front().blocked = std::chrono::steady_clock::now() - submit_start;
  st->inferences += views.size();
  GST_LOG_OBJECT(self, "submitted %zu frames (%zu analysed, %s), %d batch(es) in flight", frames.size(),
                 views.size(), views.empty() || !views.front().pinned ? "staged" : "page-locked",
                 st->detector->in_flight());
  while (st->submitted.size() >= st->in_flight) complete_oldest(self);
  return GST_FLOW_OK;
}

// Completes the submitted batches that are computed already, oldest first, without waiting.
// Frames held behind them with none to analyse among them (those `interval` skips, gaps) then
// go out too, with the last detections: they do not wait for the next analysed frame, which a
// sparse or stalled source may be long in sending.
static void collect_computed(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  while (!st->submitted.empty() && st->detector->ready()) complete_oldest(self);
  if (!st->submitted.empty() || st->pending.empty() || st->pending_analysed > 0) return;
  std::vector<GstMiniObject*> out;
  for (const HeldFrame& h : st->pending) frame_out(self, h, &out);   // (none analysed)
  st->pending.clear();
  queue_ready(st, out);
}

// Takes ownership of `buf` and holds it until its batch has been analysed.
static GstFlowReturn hold_frame(GstSsdDetect* self, GstBuffer* buf) {
  SsdDetectState* st = self->state;
  buf = gst_buffer_make_writable(buf);   // metadata is added later
  if (!st->detector || !st->have_info) {
    gst_buffer_unref(buf);
    return not_ready(self);
  }
  // A step before the frame is held: when it fails or throws, the frame is dropped.
  auto before_holding = [buf](auto&& step) {
    GstFlowReturn ret;
    try {
      ret = step();
    } catch (...) {
      gst_buffer_unref(buf);
      throw;
    }
    if (ret != GST_FLOW_OK) gst_buffer_unref(buf);
    return ret;
  };
  GstFlowReturn ret = before_holding([&] { return adopt_loaded_model(self); });
  if (ret != GST_FLOW_OK) return ret;
  // A change of the output settings, the region or the filter applies from this frame on: the
  // frames held before it go to the network with the settings they came with.
  if (!st->pending.empty() && settings_change_pending(st)) {
    ret = before_holding([&] { return submit_pending(self); });
    if (ret != GST_FLOW_OK) return ret;
  }
  if (st->discont_next) {
    GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);   // the first frame held after dropped ones
    st->discont_next = false;
  }
  const guint interval = apply_settings(self);
  const bool analyse = count_frame(st, buf, interval);
  if (!analyse && st->pending.empty() && st->submitted.empty()) {
    // Nothing ahead of it: a skipped frame goes straight out with the last detections.
    attach_detections(self, buf, st->last, true);
    queue_ready(st, {GST_MINI_OBJECT_CAST(buf)});
    return GST_FLOW_OK;
  }
  if (!analyse && st->pending.empty() && st->submitted.back().size() < st->held_per_batch) {
    // The batch ahead of it is computing: a skipped frame, which carries that batch's last
    // detections, goes out right behind its frames, not with the next batch (which it waited
    // for to fill: a batch of 4 with `interval=2` held it 7 frame times), while the batch holds
    // fewer frames than the buffers reserved for one.
    st->submitted.back().push_back({buf, false});
    collect_computed(self);
    return GST_FLOW_OK;
  }
  if (st->pending.empty()) st->pending_since = std::chrono::steady_clock::now();
  st->pending.push_back({buf, analyse});
  if (analyse) st->pending_analysed++;
  // (A batch holding every buffer reserved for it runs partial: see held_per_batch.)
  bool full = st->pending_analysed >= st->batch_size || st->pending.size() >= st->held_per_batch;
  if (!full && st->batch_timeout > 0 && st->pending.size() > 1) {
    // The bound on added latency: the stream has moved on by batch-timeout since the oldest
    // held frame.
    const GstClockTime first = GST_BUFFER_PTS(st->pending.front().buffer), now = GST_BUFFER_PTS(buf);
    // (Either way: frames come in decreasing time in reverse playback.)
    full = GST_CLOCK_TIME_IS_VALID(first) && GST_CLOCK_TIME_IS_VALID(now) &&
           (now >= first ? now - first : first - now) >= st->batch_timeout;
  }
  ret = full ? submit_pending(self) : GST_FLOW_OK;
  if (ret == GST_FLOW_OK) collect_computed(self);
  return ret;
}

// When the partial batch in `pending` has waited batch-timeout of wall-clock time (max(): never).
static std::chrono::steady_clock::time_point pending_deadline(const SsdDetectState* st) {
  constexpr guint64 kLongest = guint64{1} << 62;   // ns, ~146 years: no overflow below
  if (st->pending.empty() || st->batch_timeout == 0 || st->batch_timeout > kLongest)
    return std::chrono::steady_clock::time_point::max();
  return st->pending_since + std::chrono::nanoseconds(static_cast<int64_t>(st->batch_timeout));
}

// Tells the output thread what to wait for (it sleeps while no batch is submitted and no
// partial batch has a timeout).
static void publish_holding(SsdDetectState* st) {
  const bool watch = !st->submitted.empty();
  const auto deadline = pending_deadline(st);
  {
    std::lock_guard<std::mutex> guard(st->output_lock);
    if (st->watch_submitted == watch && st->deadline == deadline) return;
    st->watch_submitted = watch;
    st->deadline = deadline;
  }
  st->output_wake.notify_all();
}

// The pushes this thread is in: an element's output thread (of that generation), in more than
// one when something downstream sends an event or query back into the sink pad from within a
// push (a probe or an application's callback seeking, say), which must not wait for that push.
// A serialized one takes the sink pad's stream lock first: while upstream's thread holds it,
// waiting for room for its frame (which this push frees), the two wait for each other, as they
// would across a full queue. A flushing seek's flush-start is not serialized and never waits so.
struct OwnPush {
  const SsdDetectState* st;
  guint64 generation;
};
thread_local std::vector<OwnPush> t_pushing;

// (output_lock held: the current generation.)
static int own_pushes(const SsdDetectState* st) {
  return static_cast<int>(std::count_if(t_pushing.begin(), t_pushing.end(), [st](const OwnPush& p) {
    return p.st == st && p.generation == st->output_generation;
  }));
}

// Whether `pad` flushes (or is inactive).
static bool pad_flushing(GstPad* pad) {
  GST_OBJECT_LOCK(pad);
  const bool flushing = GST_PAD_IS_FLUSHING(pad);
  GST_OBJECT_UNLOCK(pad);
  return flushing;
}

// The output thread's pushes: the frames in `ready`, in order, with the events between them,
// until none is left (called and returning with `lk`, output_lock, held; released while it
// pushes), or until the thread of `generation` is stopped. After a failed push (output_flow) the
// frames are dropped, until the streaming thread has heard of the failure; sticky events the
// source pad cannot take then are kept (failed_sticky), as those of discarded frames.
static void push_ready(GstSsdDetect* self, std::unique_lock<std::mutex>& lk, guint64 generation) {
  SsdDetectState* st = self->state;
  while (!st->ready.empty() && st->output_generation == generation) {
    GstMiniObject* item = st->ready.front();
    st->ready.pop_front();
    const bool frame = GST_IS_BUFFER(item);
    if (frame) st->ready_frames--;
    const GstFlowReturn flow = st->output_flow;
    const guint64 flushes = st->flushes;
    if (!frame && flow != GST_FLOW_OK) {
      GstEvent* e = GST_EVENT_CAST(item);
      if (GST_EVENT_IS_STICKY(e)) st->failed_sticky.push_back(e);
      else gst_event_unref(e);
      continue;
    }
    st->pushing++;
    lk.unlock();
    if (frame) st->ready_space.notify_all();   // room for a frame upstream may be waiting to hold
    GstFlowReturn ret = GST_FLOW_OK;
    GstEvent* refused = nullptr;   // a sticky event a flushing source pad did not take
    t_pushing.push_back({st, generation});
    if (!frame) {
      GstEvent* e = GST_EVENT_CAST(item);
      GST_DEBUG_OBJECT(self, "pushing the %s event held with the frames", GST_EVENT_TYPE_NAME(e));
      const bool sticky = GST_EVENT_IS_STICKY(e);
      if (sticky) gst_event_ref(e);
      if (!gst_pad_push_event(GST_BASE_TRANSFORM_SRC_PAD(self), e) && sticky &&
          pad_flushing(GST_BASE_TRANSFORM_SRC_PAD(self)))
        refused = e;
      else if (sticky)
        gst_event_unref(e);
    } else if (flow == GST_FLOW_OK) {
      GstBuffer* b = GST_BUFFER_CAST(item);
      if (GST_BUFFER_PTS_IS_VALID(b)) st->position_out = buffer_end(b);
      st->pushed++;
      ret = gst_pad_push(GST_BASE_TRANSFORM_SRC_PAD(self), b);
    } else {
      gst_mini_object_unref(item);
    }
    t_pushing.pop_back();
    lk.lock();
    if (st->output_generation != generation) {   // stopped meanwhile (from this push): not this session's
      if (refused) gst_event_unref(refused);
      break;
    }
    st->pushing--;
    if (refused) st->failed_sticky.push_back(refused);
    if (ret != GST_FLOW_OK && st->output_flow == GST_FLOW_OK && st->flushes == flushes) {
      GST_DEBUG_OBJECT(self, "output thread: %s; dropping the held frames", gst_flow_get_name(ret));
      st->output_flow = ret;
    }
    st->ready_space.notify_all();
  }
}

// How often a streaming thread waiting for the output thread's pushes looks whether a pad
// flushes meanwhile (a flush also makes the pushes fail and so ends the wait).
constexpr std::chrono::milliseconds kFlushPoll{20};

// Whether a flush is under way: the sink pad flushes, or the source pad still does (a FLUSH_STOP
// that already cleared the sink pad's flag waits for the streaming thread).
static bool flushing(GstSsdDetect* self) {
  return pad_flushing(GST_BASE_TRANSFORM_SINK_PAD(self)) || pad_flushing(GST_BASE_TRANSFORM_SRC_PAD(self));
}

// The streaming thread's wait for the output thread (`lk`: output_lock, held): until `done`
// holds, looking every kFlushPoll whether to give up (`give_up`, called without the lock).
// Returns whether `done` holds.
template <typename Done, typename GiveUp>
static bool wait_output(SsdDetectState* st, std::unique_lock<std::mutex>& lk, Done done, GiveUp give_up) {
  while (!done()) {
    lk.unlock();
    const bool stop = give_up();
    lk.lock();
    if (stop) return done();
    st->ready_space.wait_for(lk, kFlushPoll, done);
  }
  return true;
}

// Streaming thread: waits until the output thread has pushed (or dropped) every frame and event
// in `ready`; returns what its pushes returned (output_flow), or GST_FLOW_FLUSHING when a flush
// starts meanwhile. Called from within the output thread's own push (a probe or callback
// downstream sending an event or query into the sink pad), it cannot wait for that push: with
// `push_own` (an event, which must follow the frames) it pushes the frames after it itself
// (only the frame being pushed comes after the event then); else (a query, answered without
// them) they go out after that push, in order.
static GstFlowReturn wait_pushed(GstSsdDetect* self, bool push_own) {
  SsdDetectState* st = self->state;
  std::unique_lock<std::mutex> lk(st->output_lock);
  if (own_pushes(st) > 0) {
    if (push_own) push_ready(self, lk, st->output_generation);
    return st->output_flow;
  }
  const bool pushed = wait_output(
      st, lk, [st] { return st->ready.empty() && st->pushing == 0; }, [self] { return flushing(self); });
  return pushed ? st->output_flow : GST_FLOW_FLUSHING;
}

// How long a FLUSH_STOP waits for the output thread's push in progress (downstream flushes: it
// returns at once, unless it waits for something else, such as a query sent from within it
// that waits for the streaming thread's lock).
constexpr std::chrono::seconds kFlushStopPatience{5};

// Streaming thread, after discard_held(): waits until the output thread's push in progress, if
// any (but one of this thread's own), has returned, so that nothing older follows downstream;
// with `until_flushing`, only until the source pad flushes (nothing this thread sends then can
// overtake the push: the pad refuses it; a FLUSH_STOP waits for the push in the end), else at
// most kFlushStopPatience. Then keeps the sticky events the pushes could not deliver.
static void wait_push_done(GstSsdDetect* self, bool until_flushing) {
  SsdDetectState* st = self->state;
  std::unique_lock<std::mutex> lk(st->output_lock);
  const int own = own_pushes(st);
  const auto patience = std::chrono::steady_clock::now() + kFlushStopPatience;
  const bool done = wait_output(st, lk, [st, own] { return st->pushing <= own; }, [&] {
    return until_flushing ? pad_flushing(GST_BASE_TRANSFORM_SRC_PAD(self)) : std::chrono::steady_clock::now() >= patience;
  });
  if (!done && !until_flushing)
    GST_WARNING_OBJECT(self, "the output thread's push has not returned after %d s: going on without it",
                       static_cast<int>(kFlushStopPatience.count()));
  st->kept_sticky.insert(st->kept_sticky.end(), st->failed_sticky.begin(), st->failed_sticky.end());
  st->failed_sticky.clear();
}

// Streaming thread: waits until the frames held (pending, submitted) and those waiting to be
// pushed leave room for one more frame within held_per_batch x in-flight, the buffers upstream
// keeps for the element (see held_buffers()); the wait ends early on a failed push. A frame that
// waits for its batch never blocks the one before it: the frames held without `ready` never
// fill that room (a full batch is submitted, and batches beyond in-flight - 1 are collected).
// A frame that comes from within the output thread's own push (a loop back) takes one more.
// False when a flush starts meanwhile.
static bool wait_for_room(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  size_t held = st->pending.size();
  for (const auto& batch : st->submitted) held += batch.size();
  const size_t room = static_cast<size_t>(st->held_per_batch) * st->in_flight;
  std::unique_lock<std::mutex> lk(st->output_lock);
  if (own_pushes(st) > 0) return true;
  const auto has_room = [&] { return held + st->ready_frames < room || st->output_flow != GST_FLOW_OK; };
  return wait_output(st, lk, has_room, [self] { return flushing(self); });
}

// Records a failure of the frames held (their batch failed), for the output thread to drop the
// frames waiting to be pushed and for the next chain to return, unless one is recorded already.
static void note_failure(SsdDetectState* st, GstFlowReturn ret) {
  std::lock_guard<std::mutex> guard(st->output_lock);
  if (st->output_flow == GST_FLOW_OK) st->output_flow = ret;
}

static void discard_held(SsdDetectState* st) {
  // Batches on the device first: it may still be reading their frames in place.
  if (st->detector) {
    while (st->detector->in_flight() > 0) {
      try {
        st->detector->collect();
      } catch (const std::exception&) {
      }
    }
  }
  for (const HeldFrame& h : st->pending) release(h, &st->kept_sticky);
  st->pending.clear();
  st->pending_analysed = 0;
  for (const auto& batch : st->submitted)
    for (const HeldFrame& h : batch) release(h, &st->kept_sticky);
  st->submitted.clear();   // unmaps their frames
  std::deque<GstMiniObject*> ready;
  {
    std::lock_guard<std::mutex> guard(st->output_lock);
    ready.swap(st->ready);
    st->ready_frames = 0;
    st->kept_sticky.insert(st->kept_sticky.end(), st->failed_sticky.begin(), st->failed_sticky.end());
    st->failed_sticky.clear();
  }
  st->ready_space.notify_all();
  for (GstMiniObject* item : ready) {
    if (GST_IS_EVENT(item)) drop_event(GST_EVENT_CAST(item), &st->kept_sticky);
    else gst_mini_object_unref(item);
  }
  publish_holding(st);
}

// Stores the sticky events of discarded frames on the source pad (sent before the next frame),
// unless it is flushing: they wait for the end of the flush then.
static void store_kept_sticky(GstSsdDetect* self) {
  SsdDetectState* st = self->state;
  std::vector<GstEvent*> flushing;
  for (GstEvent* e : st->kept_sticky) {
    if (gst_pad_store_sticky_event(GST_BASE_TRANSFORM_SRC_PAD(self), e) == GST_FLOW_FLUSHING) {
      flushing.push_back(e);
      continue;
    }
    GST_DEBUG_OBJECT(self, "%s event of a discarded frame kept on the source pad", GST_EVENT_TYPE_NAME(e));
    gst_event_unref(e);
  }
  st->kept_sticky = std::move(flushing);
}

// Runs every held frame through the network and waits until the output thread has pushed them
// all downstream, in order (`for_event`: before a serialized event; else a query: see
// wait_pushed()). A failure stays recorded (output_flow) for the next chain.
static GstFlowReturn drain(GstSsdDetect* self, bool for_event) {
  SsdDetectState* st = self->state;
  GstFlowReturn ret = gstssd::run_frame_guarded(GST_ELEMENT(self), "Object detection", [&] {
    GstFlowReturn r = submit_pending(self);
    while (r == GST_FLOW_OK && !st->submitted.empty()) complete_oldest(self);
    return r;
  });
  if (ret != GST_FLOW_OK) note_failure(st, ret);
  publish_holding(st);
  const GstFlowReturn pushed = wait_pushed(self, for_event);
  if (ret == GST_FLOW_OK) ret = pushed;
  if (ret != GST_FLOW_OK) {
    discard_held(st);
    wait_push_done(self, true);
    store_kept_sticky(self);
  }
  return ret;
}

// One look of the output thread, under the sink pad's stream lock: collects the batches
// computed by now (their frames go to `ready`), runs a partial batch that has waited
// batch-timeout (wall-clock), and drops the frames held after a failure.
static void output_step(GstSsdDetect* self) {
  const gstssd::HoldPosts hold(GST_ELEMENT(self));
  SsdDetectState* st = self->state;
  if (!st->detector) return;
  GstFlowReturn ret;
  {
    std::lock_guard<std::mutex> guard(st->output_lock);
    ret = st->output_flow;
  }
  if (ret == GST_FLOW_OK) {
    ret = gstssd::run_frame_guarded(GST_ELEMENT(self), "Object detection", [&] {
      collect_computed(self);
      if (std::chrono::steady_clock::now() >= pending_deadline(st)) {
        GST_LOG_OBJECT(self, "no frame for batch-timeout: running a partial batch of %zu frames", st->pending.size());
        return submit_pending(self);
      }
      return GST_FLOW_OK;
    });
    if (ret != GST_FLOW_OK) note_failure(st, ret);
  }
  if (ret != GST_FLOW_OK) {
    discard_held(st);
    store_kept_sticky(self);
  }
  publish_holding(st);
}

static void output_loop(GstSsdDetect* self, guint64 generation) {
  SsdDetectState* st = self->state;
  GstPad* sinkpad = GST_BASE_TRANSFORM_SINK_PAD(self);
  using Clock = std::chrono::steady_clock;
  std::unique_lock<std::mutex> lk(st->output_lock);
  // Looks for computed batches at most every kOutputPoll (also when the streaming thread holds
  // the lock, or a look found nothing to do yet), never spinning; pushes frames at once.
  auto last_look = Clock::now() - kOutputPoll;
  while (st->output_generation == generation) {
    if (!st->ready.empty()) {
      push_ready(self, lk, generation);
      continue;
    }
    if (!st->watch_submitted && st->deadline == Clock::time_point::max()) {
      st->output_wake.wait(lk);
      continue;
    }
    const auto now = Clock::now();
    auto until = st->watch_submitted ? std::min(st->deadline, now + kOutputPoll) : st->deadline;
    st->output_wake.wait_until(lk, std::max(until, last_look + kOutputPoll));
    if (st->output_generation != generation) break;
    if (!st->ready.empty()) continue;   // frames to push first
    if (!st->watch_submitted && Clock::now() < st->deadline) continue;   // woken with news: look again
    lk.unlock();
    last_look = Clock::now();
    if (GST_PAD_STREAM_TRYLOCK(sinkpad)) {
      output_step(self);
      GST_PAD_STREAM_UNLOCK(sinkpad);
    }
    lk.lock();
  }
}

// a + b, at most the largest valid time (a huge batch-timeout must not wrap the latency).
static GstClockTime add_times(GstClockTime a, GstClockTime b) {
  const GstClockTime most = GST_CLOCK_TIME_NONE - 1;
  return a >= most || b >= most - a ? most : a + b;
}

// What the source pad's queries read of the state, taken at once under `lock`: those queries come
// from any thread, also while start() or stop() runs (see SsdDetectState::batch_size).
struct QueryView {
  bool batching, shared, on_cuda;
  guint batch_size, in_flight, held_per_batch;
  guint64 batch_timeout, interval;   // interval: the frames to come (set while playing)
  GstClockTime frame_duration;
  bool have_frame_rate_info;
};
static QueryView query_view(SsdDetectState* st) {
  std::lock_guard<std::mutex> guard(st->lock);
  QueryView v;
  v.batching = st->batching();
  v.shared = st->shared != nullptr;
  v.on_cuda = st->on_cuda;
  v.batch_size = st->batch_size;
  v.in_flight = st->in_flight;
  v.held_per_batch = st->held_per_batch;
  v.batch_timeout = st->batch_timeout;
  v.interval = std::max(1u, st->settings.interval);
  v.frame_duration = st->frame_duration;
  v.have_frame_rate_info = st->have_frame_rate_info;
  return v;
}

// The wait for a batch: a frame may wait for the rest of its batch (then for its computation,
// measured: compute_latency). It does not wait for later batches: the output thread pushes a
// batch's frames once it is computed. On CUDA with batches in flight the computation is not
// measured (the device runs it while submit() and collect() do not block): a batch of frame
// times more per batch in flight is allowed for it instead.
static GstClockTime added_latency(const QueryView& v) {
  const GstClockTime duration = v.frame_duration;
  const guint64 interval = v.interval;
  const guint64 batches = v.on_cuda ? v.in_flight : 1;
  if (!GST_CLOCK_TIME_IS_VALID(duration) || duration == 0)   // unknown frame rate: the timeout is the bound
    return v.batch_timeout > (GST_CLOCK_TIME_NONE - 1) / batches ? GST_CLOCK_TIME_NONE - 1 : v.batch_timeout * batches;
  // A batch's first frame, an analysed one (the frames skipped after a batch go with it), waits
  // for the other analysed frames and the frames skipped between them, unless the batch holds all
  // the buffers reserved for it first (it then runs partial); a batch in flight is allowed the
  // frame times a batch spans.
  const guint64 span = std::min<guint64>(static_cast<guint64>(v.batch_size) * interval, v.held_per_batch);
  const guint64 wait = std::min<guint64>(static_cast<guint64>(v.batch_size - 1) * interval, v.held_per_batch - 1);
  GstClockTime first = wait * duration, each = span * duration;
  if (v.batch_timeout > 0) {
    // A live source's partial batch runs batch-timeout of wall-clock time after its first frame
    // came (sooner when a frame batch-timeout of stream time later comes first), so that frame
    // waits batch-timeout, not just the whole frame times in it.
    first = std::min(first, v.batch_timeout);
    if (v.batch_timeout < each) each = (v.batch_timeout + duration - 1) / duration * duration;
  }
  return first + (batches - 1) * each;
}

static GstFlowReturn gst_ssd_detect_submit_input_buffer(GstBaseTransform* trans, gboolean is_discont,
                                                        GstBuffer* input) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  const gstssd::HoldPosts hold(GST_ELEMENT(self));
  SsdDetectState* st = self->state;
  // The default keeps the buffer in queued_buf after caps and QoS handling (or drops it).
  GstFlowReturn ret = GST_BASE_TRANSFORM_CLASS(gst_ssd_detect_parent_class)->submit_input_buffer(
      trans, is_discont, input);
  if (ret == GST_BASE_TRANSFORM_FLOW_DROPPED && st->batching()) st->discont_next = true;   // late (QoS)
  if (ret != GST_FLOW_OK || !st->batching() || !trans->queued_buf) return ret;
  GstBuffer* buf = trans->queued_buf;
  trans->queued_buf = nullptr;
  // What GstBaseTransform's chain records when a frame goes through it: the position the sink
  // pad's position query answers.
  if (GST_BUFFER_PTS_IS_VALID(buf) && trans->segment.format == GST_FORMAT_TIME)
    trans->segment.position = buffer_end(buf);
  if (!wait_for_room(self)) {
    gst_buffer_unref(buf);
    return GST_FLOW_FLUSHING;
  }
  GstFlowReturn failed;
  {
    std::lock_guard<std::mutex> guard(st->output_lock);
    failed = st->output_flow;
  }
  if (failed == GST_FLOW_NOT_LINKED && gst_pad_is_linked(GST_BASE_TRANSFORM_SRC_PAD(self))) {
    std::lock_guard<std::mutex> guard(st->output_lock);   // linked again: frames go out again
    st->output_flow = GST_FLOW_OK;
    st->output_flow_told = false;
    failed = GST_FLOW_OK;
  }
  if (failed != GST_FLOW_OK) {
    // A push of the output thread failed: upstream hears it now, and for every frame after
    // until a flush, as from a queue (it heard it once, and later frames ran through the
    // network and were pushed again), and the frames held are dropped.
    gst_buffer_unref(buf);
    discard_held(st);
    store_kept_sticky(self);
    std::lock_guard<std::mutex> guard(st->output_lock);
    st->output_flow_told = true;
    return failed;
  }
  ret = gstssd::run_frame_guarded(GST_ELEMENT(self), "Object detection", [&] { return hold_frame(self, buf); });
  publish_holding(st);
  return ret;
}

// The QoS messages GstBaseTransform posts for dropped frames count as processed the frames that
// went through its chain, none while batching: the count of the frames pushed is set instead.
static gboolean gst_ssd_detect_post_message(GstElement* element, GstMessage* message) {
  SsdDetectState* st = GST_SSD_DETECT(element)->state;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_QOS && GST_MESSAGE_SRC(message) == GST_OBJECT(element) &&
      st->batching()) {
    GstFormat format;
    guint64 processed = 0, dropped = 0;
    gst_message_parse_qos_stats(message, &format, &processed, &dropped);
    if (format == GST_FORMAT_BUFFERS) {
      message = GST_MESSAGE_CAST(gst_mini_object_make_writable(GST_MINI_OBJECT_CAST(message)));
      gst_message_set_qos_stats(message, GST_FORMAT_BUFFERS, st->pushed, dropped);
    }
  }
  return GST_ELEMENT_CLASS(gst_ssd_detect_parent_class)->post_message(element, message);
}

// A stream that pauses leaves its shared instance: the other streams' batches do not wait for
// its frames (a live source sends none while paused) until it sends one again.
static GstStateChangeReturn gst_ssd_detect_change_state(GstElement* element, GstStateChange transition) {
  const GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_ssd_detect_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED && ret != GST_STATE_CHANGE_FAILURE)
    leave_shared(GST_SSD_DETECT(element)->state);
  return ret;
}

static gboolean gst_ssd_detect_query(GstBaseTransform* trans, GstPadDirection direction, GstQuery* query) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  const gstssd::HoldPosts hold(GST_ELEMENT(self));
  SsdDetectState* st = self->state;
  if (direction == GST_PAD_SINK && GST_QUERY_IS_SERIALIZED(query) && st->batching() && st->detector) {
    // e.g. a drain or allocation query: answer it after the held frames are out. gst_pad_query
    // holds the sink pad's stream lock for serialized queries, as the output thread holds it.
    // A drain query whose frames could not go out fails, as a queue's does.
    if (drain(self, false) != GST_FLOW_OK && GST_QUERY_TYPE(query) == GST_QUERY_DRAIN) return FALSE;
  }
  const QueryView v = direction == GST_PAD_SRC ? query_view(st) : QueryView{};
  if (direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_POSITION && v.batching) {
    // GstBaseTransform knows the position of the frames it pushed itself only: the stream time
    // of the end of the last frame out.
    GstFormat format;
    gst_query_parse_position(query, &format, nullptr);
    const GstClockTime end = st->position_out;
    if (format == GST_FORMAT_TIME && trans->segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID(end)) {
      gst_query_set_position(query, format, gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, end));
      return TRUE;
    }
  }
  const gboolean res = GST_BASE_TRANSFORM_CLASS(gst_ssd_detect_parent_class)->query(trans, direction, query);
  if (res && direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_LATENCY &&
      (v.batching || v.shared)) {
    gboolean live = FALSE;
    GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
    gst_query_parse_latency(query, &live, &min, &max);
    // A shared instance's batch waits at most batch-timeout (wall-clock) for other streams, then
    // is computed.
    const GstClockTime extra =
        add_times(v.shared ? v.batch_timeout : added_latency(v), st->compute_latency.load());
    GST_DEBUG_OBJECT(self, "batching adds %" GST_TIME_FORMAT " of latency", GST_TIME_ARGS(extra));
    if (live && !v.shared && v.batch_size > 1 && v.batch_timeout == 0 && !st->warned_unbounded_latency) {
      // (have_frame_rate_info: caps came; without them there is nothing to say.)
      if (v.have_frame_rate_info && !GST_CLOCK_TIME_IS_VALID(v.frame_duration)) {
        st->warned_unbounded_latency = true;
        GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                            ("The live stream has no frame rate and batch-timeout is 0: a frame may wait for its "
                             "batch for any time, which the latency reported cannot include; set batch-timeout "
                             "to bound it."),
                            ("batch-size %u, caps without a framerate", v.batch_size));
      }
    }
    gst_query_set_latency(query, live, add_times(min, extra), GST_CLOCK_TIME_IS_VALID(max) ? add_times(max, extra) : max);
  }
  return res;
}

// Whether downstream's offered pool holds ordinary system memory (a plain video buffer pool, as
// videoconvert or an encoder offers), which page-locked memory can stand in for; a pool of
// another memory (GL, DMABuf, a device's) is downstream's to keep.
static bool system_memory_pool(GstBufferPool* pool) {
  if (!pool) return true;
  GstStructure* config = gst_buffer_pool_get_config(pool);
  GstAllocator* allocator = nullptr;
  gst_buffer_pool_config_get_allocator(config, &allocator, nullptr);
  const bool plain = !allocator || g_strcmp0(allocator->mem_type, GST_ALLOCATOR_SYSMEM) == 0;
  gst_structure_free(config);
  return plain && (G_OBJECT_TYPE(pool) == GST_TYPE_BUFFER_POOL || G_OBJECT_TYPE(pool) == GST_TYPE_VIDEO_BUFFER_POOL);
}

// How many of upstream's buffers the element may hold at once (batching), plus the one being
// written.
static guint held_buffers(const SsdDetectState* st) { return st->held_per_batch * st->in_flight + 1; }

// While batching the element holds up to batch-size x in-flight of upstream's frames (times the
// interval, up to kMaxHeldInterval: skipped frames wait with the batch too): asks
// upstream's pool for that many buffers more than downstream does, plus the one being written
// (a source with a fixed number of buffers, such as v4l2src, allocates them), as the
// page-locked pool on CUDA does. Returns whether it added a pool entry of its own.
static bool reserve_held_frames(GstSsdDetect* self, GstQuery* query) {
  SsdDetectState* st = self->state;
  if (!st->batching()) return false;
  GstCaps* caps = nullptr;
  gst_query_parse_allocation(query, &caps, nullptr);
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps(&info, caps)) return false;
  const guint held = held_buffers(st);
  if (gst_query_get_n_allocation_pools(query) > 0) {
    GstBufferPool* pool = nullptr;
    guint size = 0, min = 0, max = 0;
    gst_query_parse_nth_allocation_pool(query, 0, &pool, &size, &min, &max);
    min += held;
    if (max > 0) max = std::max(max, min);
    gst_query_set_nth_allocation_pool(query, 0, pool, size, min, max);
    if (pool) gst_object_unref(pool);
    GST_DEBUG_OBJECT(self, "asking upstream for %u buffers, %u of them held for batches", min, held - 1);
    return false;
  }
  gst_query_add_allocation_pool(query, nullptr, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)), held, 0);
  GST_DEBUG_OBJECT(self, "asking upstream for %u buffers, %u of them held for batches", held, held - 1);
  return true;
}

// On CUDA (or as `frame-pool` says), offers upstream a pool of page-locked frames
// (gst-plugin/pinned_pool.h): frames written there are uploaded in place, without a staging
// copy. The element works in place, so upstream writes into the buffers that travel on: a
// system-memory pool downstream offered is replaced by ours (first in the query, with
// downstream's buffer counts), a pool of any other memory is left alone. Where no page-locked
// pool is offered, the frames the element holds are asked for in downstream's pool (or in a
// pool entry of their own), as on the CPU.
static gboolean gst_ssd_detect_propose_allocation(GstBaseTransform* trans, GstQuery* decide_query, GstQuery* query) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  SsdDetectState* st = self->state;
  // In place, the default asks downstream; see gstssd::refuse_crop_meta().
  const gboolean downstream = GST_BASE_TRANSFORM_CLASS(gst_ssd_detect_parent_class)->propose_allocation(
      trans, decide_query, query);
  gstssd::refuse_crop_meta(query);
  const auto without_pinned_pool = [&] { return reserve_held_frames(self, query) || downstream; };
  GstSsdFramePool mode;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    mode = st->settings.frame_pool;
  }
  if (mode == GST_SSD_FRAME_POOL_NEVER || (mode == GST_SSD_FRAME_POOL_AUTO && !st->on_cuda))
    return without_pinned_pool();
  try {
    GstCaps* caps = nullptr;
    gboolean need_pool = FALSE;
    gst_query_parse_allocation(query, &caps, &need_pool);
    GstVideoInfo info;
    if (!caps || !gst_video_info_from_caps(&info, caps)) return downstream;
    // Frames the element holds (batches waiting and in flight) plus the one being written.
    guint min_buffers = held_buffers(st), max_buffers = 0;
    guint size = static_cast<guint>(GST_VIDEO_INFO_SIZE(&info));
    const bool replace = gst_query_get_n_allocation_pools(query) > 0;
    if (replace) {
      GstBufferPool* theirs = nullptr;
      guint their_size = 0, their_min = 0, their_max = 0;
      gst_query_parse_nth_allocation_pool(query, 0, &theirs, &their_size, &their_min, &their_max);
      const bool plain = system_memory_pool(theirs);
      if (theirs) gst_object_unref(theirs);
      if (!plain) {
        GST_DEBUG_OBJECT(self, "downstream offers a pool of its own memory: not offering page-locked frames");
        return without_pinned_pool();
      }
      min_buffers += their_min;
      max_buffers = their_max > 0 ? std::max(their_max, min_buffers) : 0;
      size = std::max(size, their_size);
    }
    GstBufferPool* pool = gstssd::new_host_buffer_pool(caps, min_buffers, max_buffers);
    if (!pool) return without_pinned_pool();
    if (replace) {
      gst_query_set_nth_allocation_pool(query, 0, pool, size, min_buffers, max_buffers);
    } else {
      gst_query_add_allocation_pool(query, pool, size, min_buffers, max_buffers);
    }
    gst_object_unref(pool);
    // The allocator too: upstream configures the pool with the first allocation parameter's
    // allocator, and downstream's system-memory one (a GstVideoFilter's: none, with its
    // alignment) would make the pool's frames ordinary memory. Its alignment, prefix and
    // padding stay.
    if (gst_query_get_n_allocation_params(query) == 0) {
      GstAllocationParams params;
      gst_allocation_params_init(&params);
      gst_query_add_allocation_param(query, gstssd::host_allocator(), &params);
    } else {
      GstAllocator* theirs = nullptr;
      GstAllocationParams params;
      gst_query_parse_nth_allocation_param(query, 0, &theirs, &params);
      if (!theirs || g_strcmp0(theirs->mem_type, GST_ALLOCATOR_SYSMEM) == 0)
        gst_query_set_nth_allocation_param(query, 0, gstssd::host_allocator(), &params);
      if (theirs) gst_object_unref(theirs);
    }
    // Video meta support is downstream's to offer (the frames go on to it): with it, upstream
    // may send padded frames that a downstream element without it cannot read.
    GST_DEBUG_OBJECT(self, "offering a pool of page-locked frames for %" GST_PTR_FORMAT, caps);
    return TRUE;
  } catch (const std::exception& e) {
    GST_WARNING_OBJECT(self, "could not offer page-locked frames: %s", e.what());
    return without_pinned_pool();
  }
}

static GstFlowReturn gst_ssd_detect_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  GstSsdDetect* self = GST_SSD_DETECT(trans);
  const gstssd::HoldPosts hold(GST_ELEMENT(self));
  return gstssd::run_frame_guarded(GST_ELEMENT(self), "Object detection",
                                   [&] { return detect_frame(self, buf); });
}

/* GObject boilerplate */

static void gst_ssd_detect_class_init(GstSsdDetectClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_ssd_detect_set_property;
  gobject_class->get_property = gst_ssd_detect_get_property;
  gobject_class->finalize = gst_ssd_detect_finalize;

  std::string default_model;
  try {
    default_model = ssd::default_model_path();
  } catch (const std::exception&) {
  }
  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  const auto ready_flags = static_cast<GParamFlags>(flags | GST_PARAM_MUTABLE_READY);
  const auto playing_flags = static_cast<GParamFlags>(flags | GST_PARAM_MUTABLE_PLAYING);

  /**
   * GstSsdDetect:model:
   *
   * Path of the weights file (safetensors written by `ssd-train`, architecture and labels
   * included). Defaults to the shipped model: the installed copy
   * (<datadir>/gst-ssd/models/ssd-default.safetensors), or, for a plugin run from its build tree,
   * the build tree's copy of models/ssd-default.safetensors ($SSD_DEFAULT_MODEL overrides both).
   * Loaded when the element starts. Set while the element runs (PAUSED or
   * PLAYING), the file is loaded in the background and the element switches to it between two
   * frames, without stopping the stream (see "Changing the model while running" above); setting
   * the same path again reloads the file, e.g. after `ssd-train` wrote it anew. An element that
   * shares a model instance (`model-instance-id`) changes its model only while stopped (NULL or
   * READY): set while it runs, it is refused with a warning.
   */
  g_object_class_install_property(gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model", "Path of the SSD weights file (.safetensors; may change while playing, "
                          "except with a model-instance-id)",
                          default_model.c_str(), playing_flags));
  /**
   * GstSsdDetect:device:
   *
   * Where the network runs: `auto` (the first CUDA device if there is one, else the CPU),
   * `cpu`, `cuda` or `cuda:N`. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_DEVICE,
      g_param_spec_string("device", "Device", "Inference device: auto, cpu, cuda or cuda:N",
                          kDefaultDevice, ready_flags));
  /**
   * GstSsdDetect:precision:
   *
   * Floating-point precision of the network: fp16 halves memory traffic on CUDA devices; on
   * the CPU the network always runs in fp32. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_PRECISION,
      g_param_spec_enum("precision", "Precision", "Inference precision", GST_TYPE_SSD_PRECISION,
                        kDefaultPrecision, ready_flags));
  /**
   * GstSsdDetect:threshold:
   *
   * Confidence (0-1) a reported detection must exceed (one exactly at it is dropped). Can be
   * changed while playing.
   */
  g_object_class_install_property(gobject_class, PROP_THRESHOLD,
      g_param_spec_float("threshold", "Threshold", "A detection needs a confidence above this", 0.0f, 1.0f,
                         kDefaultThreshold, playing_flags));
  /**
   * GstSsdDetect:nms-iou:
   *
   * Non-maximum suppression: a box overlapping a more confident box of the same class (of any
   * class with `class-agnostic-nms`) by more than this intersection-over-union is dropped. Can be
   * changed while playing, but not on
   * elements sharing a model instance (model-instance-id), whose value is the instance's:
   * there a change while running is refused with a warning, as `model` is.
   */
  g_object_class_install_property(gobject_class, PROP_NMS_IOU,
      g_param_spec_float("nms-iou", "NMS IoU",
                         "IoU above which the less confident of two overlapping boxes of a class (any class with "
                         "class-agnostic-nms) is suppressed",
                         0.0f, 1.0f, kDefaultNmsIou, playing_flags));
  /**
   * GstSsdDetect:class-agnostic-nms:
   *
   * Non-maximum suppression across classes: a box overlapping a more confident box of any
   * class by more than `nms-iou` is dropped, so that one object is not reported twice, under
   * two labels at one place (which also gives it two tracks behind ssdtrack). Off (the default):
   * per class, as the SSD method has it, so that two objects of different classes overlapping
   * more than that are both kept. On elements sharing a model instance (model-instance-id) the
   * instance's, which they must agree on. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_CLASS_AGNOSTIC_NMS,
      g_param_spec_boolean("class-agnostic-nms", "Class-agnostic NMS",
                           "Suppress overlapping boxes across classes, not only within each class",
                           kDefaultClassAgnosticNms, ready_flags));
  /**
   * GstSsdDetect:max-detections:
   *
   * Largest number of detections per frame: the most confident of those `classes` and the
   * thresholds keep (a class left out or held to a higher threshold takes no place), after
   * per-class NMS over every box above its threshold. (The output stage takes 4 candidates per
   * detection, at least 400, into NMS first, and goes on through the others only where fewer
   * survive than asked for.) Can be changed while playing.
   */
  g_object_class_install_property(gobject_class, PROP_MAX_DETECTIONS,
      g_param_spec_int("max-detections", "Max detections", "Largest number of detections per frame", 1,
                       ssd::kMaxDetectionsLimit, kDefaultMaxDetections, playing_flags));
  /**
   * GstSsdDetect:classes:
   *
   * Comma-separated class labels to keep (e.g. "car,person"); unset, empty or naming no class
   * (",") keeps all. A label the model does not know fails the start with an error listing the
   * known labels. Set while the element runs, it applies from the next frame on (which is then
   * analysed, whatever `interval`); a label the model does not know is then a warning listing the
   * known labels, and the property reverts to the classes in use.
   */
  g_object_class_install_property(gobject_class, PROP_CLASSES,
      g_param_spec_string("classes", "Classes", "Comma-separated labels to keep (empty: all; may change while playing)",
                          nullptr, playing_flags));
  /**
   * GstSsdDetect:class-thresholds:
   *
   * Confidence thresholds of their own for some classes, as "label=confidence,..." (e.g.
   * "person=0.6,car=0.25"): a detection of such a class is kept when its confidence is above
   * this value instead of `threshold` (in the network's output stage, before the most confident
   * are picked: see `max-detections`); a class named twice is an error. A label the model does not know or
   * a malformed entry fails the start with an error naming it. Can be changed while playing
   * (then a warning, and the value in use stays). `ssd-train eval` prints the thresholds with the
   * best F1 score on a validation set in this form, and `ssd-train predict --class-thresholds`
   * draws what they keep.
   */
  g_object_class_install_property(gobject_class, PROP_CLASS_THRESHOLDS,
      g_param_spec_string("class-thresholds", "Class thresholds",
                          "Per-class confidence thresholds replacing threshold, label=confidence,... (unset: none)",
                          nullptr, playing_flags));
  /**
   * GstSsdDetect:region:
   *
   * The part of the frame the network looks at, as "x,y,width,height" in pixels, e.g.
   * "0,200,1280,520" for a road below the sky: the element crops it on the model's device
   * (no copy in front of it), scales it to the network's input as it would the whole frame,
   * and reports the detections in the frame's coordinates. Nothing outside it is detected, and
   * objects in it are seen at a higher resolution than in the whole frame. Clipped to the
   * frame (in a frame with a #GstVideoCropMeta: given in, and clipped to, its picture);
   * in NV12 and I420 x and y are rounded to even (down, or up at the edge of a crop meta's picture
   * that starts at an odd pixel); a region that is then less than 2
   * pixels wide or high (e.g. one outside the frame) detects nothing. Unset or empty: the whole
   * frame.
   * Can be changed while playing (from the next frame on, which is then analysed, whatever
   * `interval`); a malformed value is then (and while the element starts) a warning and leaves
   * the region as it was, and one set before the element starts fails the start with an error.
   */
  g_object_class_install_property(gobject_class, PROP_REGION,
      g_param_spec_string("region", "Region", "Part of the frame to analyse: x,y,width,height in pixels (unset: all)",
                          nullptr, playing_flags));
  /**
   * GstSsdDetect:interval:
   *
   * Run the network on every N-th frame only; the frames in between carry the detections of
   * the last analysed frame, so boxes do not blink. The count restarts after a flush and a
   * caps change. Can be changed while playing; with batching, which holds a frame until
   * `batch-size` analysed frames have come, the latency changes with it, and the element posts a
   * latency message so that the pipeline asks again. A batch also holds the frames skipped
   * between its analysed ones, and the element asks upstream's pool, when it starts, for as many
   * buffers as its batches may hold with the interval then (counted up to 4): an interval raised
   * beyond that while playing makes batches run partial once they hold that many frames, so that
   * a source with a fixed number of buffers does not run out. A gap buffer (flag GAP: nothing
   * new, such as the frames `videorate` repeats to raise a frame rate) is not analysed nor
   * counted, and carries the last detections too.
   */
  g_object_class_install_property(gobject_class, PROP_INTERVAL,
      g_param_spec_uint("interval", "Interval",
                        "Run inference every N frames (the frames in between carry the last detections)", 1, G_MAXUINT,
                        kDefaultInterval, playing_flags));
  /**
   * GstSsdDetect:threads:
   *
   * Intra-op CPU threads for the network. 0 (the default) chooses: with one batch in flight,
   * LibTorch's default (on the 2-vCPU dev machine: 1 with Debian 12's LibTorch 1.13, 2 with
   * Debian 13's LibTorch 2.6); with several in flight on the CPU (each computed by a worker of
   * its own), the CPUs it may use shared among the workers, at least one each. Set explicitly,
   * each in-flight worker uses this many: keep threads x in-flight at or below the cores (see
   * `in-flight`). Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_THREADS,
      g_param_spec_int("threads", "Threads", "CPU inference threads (0 = automatic)", 0, 1024,
                       kDefaultThreads, ready_flags));
  /**
   * GstSsdDetect:batch-size:
   *
   * Number of analysed frames run through the network together. Above 1 the element holds
   * frames until the batch is complete (or `batch-timeout` or a serialized event such as EOS,
   * a caps change or a drain query ends it early) and then pushes them, in order, with their
   * metadata; the latency query reports the delay this adds: the wait for the batch to fill,
   * plus the batch's computation as measured (on the CPU about batch-size times a frame's):
   * when a batch takes longer than reported, the element reports that time and a quarter more
   * and posts a latency message (a model's first batch, a warm-up, and a batch that captures a
   * CUDA graph do not count; the figure only grows). It asks upstream for as many
   * buffers more as it may hold: batch-size x in-flight, times `interval` up to 4 (the frames
   * `interval` skips wait with the batch); a batch holding that many frames runs partial, so a
   * source with a fixed number of buffers (v4l2src, hardware decoders) never runs dry. Read
   * when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint("batch-size", "Batch size", "Frames per network run (holds frames until full)", 1, 256,
                        kDefaultBatchSize, ready_flags));
  /**
   * GstSsdDetect:batch-timeout:
   *
   * Bound on the latency batching adds, in nanoseconds: a partial batch is run as soon as a
   * frame arrives whose timestamp is this much later than the oldest held frame's, or, when no
   * frame comes, once the oldest held frame has waited this long (wall-clock). 0 (the default)
   * waits for a full batch (or EOS, a caps change, a drain). With `model-instance-id` it is the
   * longest a shared batch waits (wall-clock) for more streams' frames, 0 not waiting at all;
   * it waits only while fewer frames are queued than `batch-size` and than streams send frames
   * to the instance whose next frame is due within the wait at the pace they send (each queues
   * one frame at a time: one element alone never waits, nor others for a slower stream whose
   * next frame is not due). A stream
   * whose element pauses or stops, or whose stream ends (EOS), is no longer waited for, nor one
   * that sent no frame for twice this time, and at least a second.
   * A live stream whose caps give no frame rate has no other bound: with 0 the element posts a
   * warning, as the latency it reports cannot include the wait. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64("batch-timeout", "Batch timeout",
                          "Run a partial batch once the stream moved on by this many ns (0 = wait for a full batch; "
                          "with model-instance-id: the longest a shared batch waits for other streams, 0 = none)",
                          0, G_MAXUINT64, kDefaultBatchTimeout, ready_flags));
  /**
   * GstSsdDetect:in-flight:
   *
   * Batches submitted to the device before the oldest one's results are awaited; 0 (the
   * default) chooses: on the CPU 2 when the process may run on 2 or more CPUs and `threads` is 0
   * or at most half of them (with `threads` 0, one thread each on 2 CPUs: 640x480 RGB 420.9 ->
   * 695.7 fps on the 2-vCPU dev machine against in-flight 1, 1080p 331.5 -> 647.4, medians of
   * three alternating rounds of `bench/bench_element`, 2026-12-05), else 1; on CUDA 1. Above 1, on
   * CUDA, the upload, inference and download of consecutive batches overlap (each in-flight
   * batch has a CUDA stream of its own); a batch's frames go downstream once it is computed
   * (a frame does not wait for later batches: on the CPU the latency query adds no frame times
   * for them; on CUDA, whose computation the host does not time, in-flight - 1 batches of them).
   * On the CPU each in-flight batch is computed on a thread of its own, so consecutive batches
   * run side by side on the CPU's cores: with `threads=1 in-flight=2` one stream's frames use
   * two cores (640x480 on 2 cores: 414 fps against 239 with `threads=1` and 204 with
   * `threads=2`, 2026-12-03). Each worker runs `threads` intra-op threads (0: the CPUs shared
   * among the workers), and more threads than cores in all compete for them (640x480 on 2 cores,
   * 2026-12-05: `threads=1 in-flight=2` 638 fps, `threads=2 in-flight=2` 461 fps, `threads=2`
   * alone 391). 1, with `batch-size` 1, analyses each frame in place as it passes, holding none.
   * For a shared model instance
   * (`model-instance-id`), in-flight workers, each with a copy of the model, compute batches of
   * the streams' frames side by side. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_IN_FLIGHT,
      g_param_spec_uint("in-flight", "In flight", "Batches on the device at once (pipelining; 0 = automatic)", 0, 16,
                        kDefaultInFlight, ready_flags));

  /**
   * GstSsdDetect:cuda-graphs:
   *
   * On CUDA, replay the preprocessing and the network with the output stage as CUDA graphs:
   * a launch per frame and one per batch instead of hundreds of small kernel launches, which
   * is what limits batch-1 inference on a fast GPU. The preprocessing is captured per frame
   * layout (format, size, strides), the network per batch size (and per threshold, nms-iou,
   * max-detections, classes and class-thresholds value; for a shared model instance whose
   * streams filter classes differently, per make-up of the batch), each on its third use, the
   * first two running normally; above 256 `max-detections` the output stage runs without a
   * graph (its memory grows with the square of the candidates). Batches run
   * padded to 1, 2, 4, 8 or a multiple of 8 frames, so that partial batches and batches of
   * streams sharing a model (model-instance-id) replay a few graphs. If a capture fails the
   * element posts a warning and that case runs without a graph for good. No effect on the
   * CPU. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_CUDA_GRAPHS,
      g_param_spec_boolean("cuda-graphs", "CUDA graphs", "Replay inference as CUDA graphs (CUDA only)",
                           kDefaultCudaGraphs, ready_flags));

  /**
   * GstSsdDetect:frame-pool:
   *
   * Whether the element offers upstream a buffer pool of its own frame memory in answer to the
   * allocation query: `auto`, page-locked frames on CUDA (uploaded without a staging copy; in
   * place of a system-memory pool downstream offers, a pool of other memory being left to
   * downstream) and none on the CPU; `never`, none (upstream allocates as downstream proposes:
   * a way out where a source or decoder misbehaves with the pool); `always`, on the CPU too,
   * where the pool's memory is ordinary memory (the tests use it to run the CUDA negotiation
   * without a GPU). Changes only in the NULL or READY state.
   */
  g_object_class_install_property(gobject_class, PROP_FRAME_POOL,
      g_param_spec_enum("frame-pool", "Frame pool", "Offer upstream a pool of page-locked frames",
                        GST_TYPE_SSD_FRAME_POOL, kDefaultFramePool, ready_flags));

  /**
   * GstSsdDetect:model-instance-id:
   *
   * Share one loaded model between the ssddetect elements of this process that have the same
   * id (DL Streamer's property of that name), e.g. one per camera: the weights are on the
   * device once, and the frames of all these streams run through the network together, in
   * batches of up to `batch-size` frames made of the frames that are waiting when the previous
   * batch is done (so batches grow with the load; with `batch-timeout` a batch also waits that
   * long, in wall-clock time, for more frames), with up to `in-flight` batches on the device
   * at once (on the CPU: computed side by side by `in-flight` workers, each with a copy of the
   * model; with in-flight=2 four 640x480 streams ran 23 % faster in total on two cores than
   * four elements with a model each, bench/RESULTS.md). The element itself then passes its frames on one at a time: its streaming thread
   * waits until its frame's batch is done (the latency query adds `batch-timeout` and the
   * batch's computation, as measured, after the first). The first element to start loads the model; the
   * others must ask for the same `model`, `device` (auto counting as the device it stands for),
   * `precision`, `nms-iou` (the instance's at the time: changed while playing, see below, it
   * is the one a restarting element must ask for too), `threads`, `batch-size`,
   * `batch-timeout`, `in-flight` and `cuda-graphs`, else their start fails with an error naming
   * the difference. `threshold`, `max-detections`, `classes`,
   * `class-thresholds`, `region` and `interval` stay each element's own, and so are its
   * detections: those its own model would give it.
   * Changing `nms-iou` while playing changes it for every stream of the instance. The model is
   * released when the last element stops. Unset (the default): the element has a model of its
   * own. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_MODEL_INSTANCE_ID,
      g_param_spec_string("model-instance-id", "Model instance id",
                          "Elements with the same id share one model and batch their frames together (unset: own model)",
                          nullptr, ready_flags));

  gst_element_class_set_static_metadata(element_class, "SSD object detector", "Filter/Analyzer/Video",
      "Detects objects with a Single Shot MultiBox Detector and attaches region-of-interest metadata; "
      "with qos=true (default) frames already late downstream are dropped before inference",
      "gst-ssd developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  element_class->post_message = GST_DEBUG_FUNCPTR(gst_ssd_detect_post_message);
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_ssd_detect_change_state);
  trans_class->start = GST_DEBUG_FUNCPTR(gst_ssd_detect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_ssd_detect_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_ssd_detect_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_ssd_detect_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_ssd_detect_transform_ip);
  trans_class->submit_input_buffer = GST_DEBUG_FUNCPTR(gst_ssd_detect_submit_input_buffer);
  trans_class->query = GST_DEBUG_FUNCPTR(gst_ssd_detect_query);
  trans_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_ssd_detect_propose_allocation);
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api(GST_TYPE_SSD_PRECISION, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_SSD_FRAME_POOL, static_cast<GstPluginAPIFlags>(0));
  GST_DEBUG_CATEGORY_INIT(gst_ssd_detect_debug, "ssddetect", 0, "SSD object detector");
}

static void gst_ssd_detect_init(GstSsdDetect* self) {
  self->state = new SsdDetectState();
  try {
    self->state->settings.model = ssd::default_model_path();
  } catch (const std::exception& e) {
    GST_WARNING_OBJECT(self, "no default model: %s", e.what());
  }
  gst_video_info_init(&self->state->info);
  GstBaseTransform* trans = GST_BASE_TRANSFORM(self);
  gst_base_transform_set_in_place(trans, TRUE);
  gst_base_transform_set_passthrough(trans, FALSE);
  // Drop frames a live sink would drop anyway instead of spending inference on them.
  gst_base_transform_set_qos_enabled(trans, TRUE);
}
