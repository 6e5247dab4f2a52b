// Steady-state throughput of a GStreamer pipeline, measured inside one process:
//
//   bench_element [--warmup 100] [--frames 500] [--windows 5] [--timeout 300]
//                 [--still CAPS] [--streams N] DESCRIPTION...
//
// DESCRIPTION is a gst-launch-1.0 description without its sink (e.g. "videotestsrc !
// video/x-raw,format=NV12,width=1920,height=1080 ! ssddetect device=cuda"); the tool appends
// "! fakesink sync=false" and counts the buffers reaching it. With --still CAPS (fixed raw video
// caps, e.g. "video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1") the source is an
// appsrc the tool puts in front of DESCRIPTION, fed from a thread of its own with one prepared
// frame (videotestsrc's pattern) again and again: no pixel is written per frame, so the source
// costs next to nothing. Once the stream is negotiated the frame is copied into a few buffers
// of the pool downstream offered (ssddetect's page-locked pool on CUDA), so the element sees
// frames in the memory it asked for, as it would from a source or decoder that writes into it. After --warmup buffers (start-up,
// model load, cuDNN autotuning and CUDA graph capture are behind by then) it times --windows
// consecutive windows of --frames buffers each: wall time (monotonic clock) and the process's CPU
// time (all threads), both read in the sink's streaming thread as the window's last buffer
// arrives. Then it stops the pipeline (the source need not end by itself; a source that ends
// early gives the windows it completed, or an error when none). With --streams N the pipeline
// (with its --still source) is laid out N times side by side in one bin, each copy with its
// own sink, and the buffers of all sinks count together: the fps is the total of the N
// streams (e.g. N cameras whose ssddetect elements share one model-instance-id).
//
// Output: one line per window, then one line for scripts:
//   RESULT fps=<median> fps_min=<min> fps_max=<max> cpu_ms=<median CPU ms per frame> windows=<n>
// Exit status 1 on a pipeline error, a timeout or no complete window. Plugins come from the
// usual places (GST_PLUGIN_PATH for the build tree's).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <atomic>
#include <thread>

#include <CLI/CLI.hpp>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

namespace {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() { return 1e-6 * static_cast<double>(g_get_monotonic_time()); }

struct Sample {
  double wall, cpu;
};

// Written by the sink's streaming thread, read by the main thread after the pipeline stopped.
struct Counter {
  std::mutex lock;
  guint64 buffers = 0;
  guint64 warmup = 0, frames = 0, windows = 0;
  std::vector<Sample> marks;   // at buffer warmup, warmup + frames, ...
  GMainLoop* loop = nullptr;
  bool done = false;
};

GstPadProbeReturn count_buffer(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* c = static_cast<Counter*>(data);
  guint n = 1;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  std::lock_guard<std::mutex> guard(c->lock);
  for (guint i = 0; i < n && !c->done; ++i) {
    c->buffers++;
    if (c->buffers >= c->warmup && (c->buffers - c->warmup) % c->frames == 0) {
      c->marks.push_back({wall_seconds(), process_cpu_seconds()});
      if (c->marks.size() == c->windows + 1) {
        c->done = true;
        g_main_loop_quit(c->loop);
      }
    }
  }
  return GST_PAD_PROBE_OK;
}

struct BusResult {
  GMainLoop* loop;
  std::string error;
  bool eos = false;
  bool timed_out = false;
};

gboolean on_bus(GstBus*, GstMessage* msg, gpointer data) {
  auto* r = static_cast<BusResult*>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
      GError* err = nullptr;
      gchar* dbg = nullptr;
      gst_message_parse_error(msg, &err, &dbg);
      r->error = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + err->message +
                 (dbg ? std::string(" (") + dbg + ")" : std::string());
      g_clear_error(&err);
      g_free(dbg);
      g_main_loop_quit(r->loop);
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError* err = nullptr;
      gst_message_parse_warning(msg, &err, nullptr);
      std::fprintf(stderr, "warning from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
      g_clear_error(&err);
      break;
    }
    case GST_MESSAGE_EOS:
      r->eos = true;
      g_main_loop_quit(r->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

gboolean on_timeout(gpointer data) {
  auto* r = static_cast<BusResult*>(data);
  r->error = "timed out";
  r->timed_out = true;
  g_main_loop_quit(r->loop);
  return G_SOURCE_REMOVE;
}

// One frame of videotestsrc's default pattern in `caps` (transfer full), or nullptr.
GstBuffer* pattern_frame(const std::string& caps) {
  GError* err = nullptr;
  const std::string desc = "videotestsrc num-buffers=1 ! " + caps + " ! appsink name=out";
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (!p || err) {
    std::fprintf(stderr, "bench_element: --still %s: %s\n", caps.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    if (p) gst_object_unref(p);
    return nullptr;
  }
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  GstBuffer* frame = sample ? gst_buffer_ref(gst_sample_get_buffer(sample)) : nullptr;
  if (sample) gst_sample_unref(sample);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return frame;
}

// Feeds the appsrc with the prepared frame until `stop`: shallow copies (the pixels are
// shared), time-stamped at the caps' frame rate. After the first frame went through, the frame
// is copied into buffers of the pool the appsrc negotiated with downstream, if any.
class StillSource {
 public:
  StillSource(GstElement* appsrc, GstBuffer* frame, GstCaps* caps, const Counter* counter, std::mutex* lock)
      : appsrc_(appsrc), frame_(frame), counter_(counter), counter_lock_(lock) {
    gst_video_info_from_caps(&info_, caps);
    thread_ = std::thread([this] { run(); });
  }
  ~StillSource() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (GstBuffer* b : pooled_) gst_buffer_unref(b);
    if (pool_) {
      gst_buffer_pool_set_active(pool_, FALSE);
      gst_object_unref(pool_);
    }
    gst_buffer_unref(frame_);
  }
  // Stops feeding; call before the pipeline goes to NULL (which unblocks a waiting push).
  void stop() { stop_ = true; }
  std::string memory() const { return memory_; }

 private:
  void run() {
    const GstClockTime step = GST_VIDEO_INFO_FPS_N(&info_) > 0
                                  ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info_),
                                                              GST_VIDEO_INFO_FPS_N(&info_))
                                  : GST_SECOND / 30;
    for (guint64 i = 0; !stop_; ++i) {
      if (!tried_pool_) {
        // appsrc's first allocation query goes out before it has caps (and fails); once frames
        // flow, a reconfiguration makes it ask again with the caps, and a few frames later the
        // pool downstream offered is its pool.
        const guint64 n = arrived();
        if (reconfigured_at_ == 0 && n > 0) {
          GstPad* pad = gst_element_get_static_pad(appsrc_, "src");
          gst_pad_mark_reconfigure(pad);
          gst_object_unref(pad);
          reconfigured_at_ = n;
        } else if (reconfigured_at_ > 0 && n > reconfigured_at_ + 8) {
          use_downstream_pool();
        }
      }
      GstBuffer* src = pooled_.empty() ? frame_ : pooled_[i % pooled_.size()];
      GstBuffer* b = gst_buffer_copy(src);   // shares the memory
      GST_BUFFER_PTS(b) = i * step;
      GST_BUFFER_DURATION(b) = step;
      if (gst_app_src_push_buffer(GST_APP_SRC(appsrc_), b) != GST_FLOW_OK) break;
    }
  }
  guint64 arrived() {
    std::lock_guard<std::mutex> guard(*counter_lock_);
    return counter_->buffers;
  }
  void use_downstream_pool() {
    tried_pool_ = true;
    pool_ = gst_base_src_get_buffer_pool(GST_BASE_SRC(appsrc_));
    if (!pool_) {
      memory_ = "the prepared frame (no pool offered downstream)";
      return;
    }
    if (!gst_buffer_pool_set_active(pool_, TRUE)) {
      memory_ = "the prepared frame (the pool downstream offered did not activate)";
      return;
    }
    for (int i = 0; i < 4; ++i) {
      GstBuffer* b = nullptr;
      if (gst_buffer_pool_acquire_buffer(pool_, &b, nullptr) != GST_FLOW_OK) break;
      GstVideoFrame src, dst;
      const bool ok = gst_video_frame_map(&src, &info_, frame_, GST_MAP_READ);
      if (ok && gst_video_frame_map(&dst, &info_, b, GST_MAP_WRITE)) {
        gst_video_frame_copy(&dst, &src);
        gst_video_frame_unmap(&dst);
        pooled_.push_back(b);
      } else {
        gst_buffer_unref(b);
      }
      if (ok) gst_video_frame_unmap(&src);
    }
    GstMemory* mem = pooled_.empty() ? nullptr : gst_buffer_peek_memory(pooled_.front(), 0);
    memory_ = pooled_.empty() ? "the prepared frame (no buffer from the pool offered downstream)"
                              : std::to_string(pooled_.size()) + " buffers of the pool offered downstream (" +
                                    (mem && mem->allocator->mem_type ? mem->allocator->mem_type : "?") + " memory)";
  }

  GstElement* appsrc_;
  GstBuffer* frame_;
  GstVideoInfo info_;
  const Counter* counter_;
  std::mutex* counter_lock_;
  std::atomic<bool> stop_{false};
  bool tried_pool_ = false;
  guint64 reconfigured_at_ = 0;
  GstBufferPool* pool_ = nullptr;
  std::vector<GstBuffer*> pooled_;
  std::string memory_ = "the prepared frame";
  std::thread thread_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  CLI::App app{"Steady-state frames per second of a GStreamer pipeline (appends ! fakesink sync=false)"};
  guint64 warmup = 100, frames = 500, windows = 5;
  double timeout = 300;
  std::vector<std::string> words;
  app.add_option("--warmup", warmup, "Buffers before the first window")->capture_default_str();
  app.add_option("--frames", frames, "Buffers per window")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--windows", windows, "Timed windows (medians over them)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--timeout", timeout, "Seconds before giving up")->capture_default_str();
  std::string still;
  app.add_option("--still", still, "Source: one prepared frame in these raw video caps, pushed again and again");
  int streams = 1;
  app.add_option("--streams", streams, "Copies of the pipeline side by side (fps counts all their frames)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("description", words, "gst-launch-1.0 pipeline description without the sink (none: --still alone)");
  CLI11_PARSE(app, argc, argv);

  if (words.empty() && still.empty()) {
    std::fprintf(stderr, "bench_element: no pipeline description (and no --still source)\n");
    return 2;
  }
  std::string desc;
  for (int i = 0; i < streams; ++i) {
    const std::string n = std::to_string(i);
    std::string one = still.empty() ? "" : "appsrc name=bench_src" + n + " format=time max-bytes=0 max-buffers=4 block=true ";
    for (const auto& w : words) one += (one.empty() ? "" : (&w == &words.front() && !still.empty() ? "! " : " ")) + w;
    desc += (i ? "  " : "") + one + " ! fakesink name=bench_sink" + n + " sync=false";
  }
  GstBuffer* frame = nullptr;
  GstCaps* still_caps = nullptr;
  if (!still.empty()) {
    still_caps = gst_caps_from_string(still.c_str());
    GstVideoInfo vi;
    if (!still_caps || !gst_caps_is_fixed(still_caps) || !gst_video_info_from_caps(&vi, still_caps)) {
      std::fprintf(stderr, "bench_element: --still needs fixed raw video caps, not \"%s\"\n", still.c_str());
      return 1;
    }
    frame = pattern_frame(still);
    if (!frame) return 1;
  }

  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline || err) {
    std::fprintf(stderr, "bench_element: could not build \"%s\": %s\n", desc.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    return 1;
  }
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  Counter counter;
  std::vector<GstElement*> appsrcs;
  counter.warmup = std::max<guint64>(warmup, 1);
  counter.frames = frames;
  counter.windows = windows;
  counter.loop = loop;
  for (int i = 0; i < streams; ++i) {
    const std::string n = std::to_string(i);
    if (!still.empty()) {
      appsrcs.push_back(gst_bin_get_by_name(GST_BIN(pipeline), ("bench_src" + n).c_str()));
      g_object_set(appsrcs.back(), "caps", still_caps, nullptr);
    }
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), ("bench_sink" + n).c_str());
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      count_buffer, &counter, nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
  }

  BusResult result{loop, {}, false, false};
  GstBus* bus = gst_element_get_bus(pipeline);
  const guint watch = gst_bus_add_watch(bus, on_bus, &result);
  gst_object_unref(bus);
  const guint timer = g_timeout_add(static_cast<guint>(timeout * 1000), on_timeout, &result);
  const double t0 = wall_seconds();
  // A failed start posts its error on the bus, which ends the loop.
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::vector<std::unique_ptr<StillSource>> feeders;
  for (GstElement* appsrc : appsrcs)
    feeders.push_back(std::make_unique<StillSource>(appsrc, gst_buffer_ref(frame), still_caps, &counter, &counter.lock));
  g_main_loop_run(loop);
  const double t_end = wall_seconds();
  if (!result.timed_out) g_source_remove(timer);
  for (auto& feeder : feeders) feeder->stop();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  for (size_t i = 0; i < feeders.size(); ++i)
    std::printf("source%s: %s\n", streams > 1 ? (" " + std::to_string(i)).c_str() : "", feeders[i]->memory().c_str());
  feeders.clear();
  for (GstElement* appsrc : appsrcs) gst_object_unref(appsrc);
  if (frame) gst_buffer_unref(frame);
  if (still_caps) gst_caps_unref(still_caps);
  g_source_remove(watch);

  std::vector<Sample> marks;
  {
    std::lock_guard<std::mutex> guard(counter.lock);
    marks = counter.marks;
  }
  std::vector<double> fps, cpu_ms;
  for (size_t i = 1; i < marks.size(); ++i) {
    const double dt = marks[i].wall - marks[i - 1].wall, dc = marks[i].cpu - marks[i - 1].cpu;
    fps.push_back(static_cast<double>(frames) / dt);
    cpu_ms.push_back(1000.0 * dc / static_cast<double>(frames));
    std::printf("window %zu: %.1f fps, %.3f CPU ms/frame\n", i, fps.back(), cpu_ms.back());
  }
  std::printf("from PLAYING: %.1f s to the last window's end (%.1f s to the end of the warm-up)\n", t_end - t0,
              marks.empty() ? 0.0 : marks.front().wall - t0);
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  if (!result.error.empty()) {
    std::fprintf(stderr, "bench_element: %s\n", result.error.c_str());
    return 1;
  }
  if (fps.empty()) {
    std::fprintf(stderr, "bench_element: the stream ended after %" G_GUINT64_FORMAT
                 " buffers, before a window of %" G_GUINT64_FORMAT " after %" G_GUINT64_FORMAT " warm-up buffers\n",
                 counter.buffers, frames, warmup);
    return 1;
  }
  std::printf("RESULT fps=%.2f fps_min=%.2f fps_max=%.2f cpu_ms=%.4f windows=%zu\n", median(fps),
              *std::min_element(fps.begin(), fps.end()), *std::max_element(fps.begin(), fps.end()),
              median(cpu_ms), fps.size());
  return 0;
}
