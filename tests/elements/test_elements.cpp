// Tests of the `ssd` GStreamer plugin (ssddetect, ssdoverlay, ssdexport), the example
// application and Python script, and an RTSP camera pipeline against a local RTSP server.
//
// The plugin is found through GST_PLUGIN_PATH (the build tree's gst-plugin/) with a private
// registry file (GST_REGISTRY_1_0), both set by meson; system plugins (videotestsrc, x264enc,
// ...) come from the normal system path. The detector uses the shipped default model (the build
// tree's copy of models/ssd-default.safetensors); SSD_DEFAULT_MODEL overrides it. meson also runs the suite
// under GStreamer's leak tracer (GST_TRACERS=leaks: any object still alive at gst_deinit() fails
// it) and with GLib criticals fatal (G_DEBUG=fatal-criticals).
//
// Synthetic frames come from the training tool's shapes renderer (training/synth.h) and are
// converted to every raw format with GStreamer's own GstVideoConverter, so the detector's
// conversion code is checked against an independent implementation.
#include <malloc.h>
#include <csignal>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#ifdef HAVE_RTSP_SERVER
#include <gst/rtsp-server/rtsp-server.h>
#endif
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

#include "gst-ssd/ssdmeta.h"
#include "../child_process.h"
#include "../python_reference.h"
#include "../temp_dir.h"
#include "caption.h"
#include "config.h"
#include "cpu_workers.h"
#include "detector.h"
#include "rng.h"
#include "synth.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ------------------------------------------------------------------------------------------
// Set-up

class GstEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    for (const char* name : {"ssddetect", "ssdoverlay", "ssdexport"}) {
      GstElementFactory* f = gst_element_factory_find(name);
      ASSERT_NE(f, nullptr) << name << " not found; GST_PLUGIN_PATH="
                            << (g_getenv("GST_PLUGIN_PATH") ? g_getenv("GST_PLUGIN_PATH") : "(unset)");
      gst_object_unref(f);
    }
    // meson runs this suite with GST_TRACERS=leaks (GStreamer's leak tracer): check it is on.
    const char* tracers = g_getenv("GST_TRACERS");
    if (tracers && std::strstr(tracers, "leaks")) {
      GList* active = gst_tracing_get_active_tracers();
      for (GList* l = active; l; l = l->next)
        if (std::strcmp(G_OBJECT_TYPE_NAME(l->data), "GstLeaksTracer") == 0) leak_tracer_ = true;
      g_list_free_full(active, gst_object_unref);
      ASSERT_TRUE(leak_tracer_) << "GST_TRACERS=" << tracers << " but no GstLeaksTracer is active";
    }
  }

  // Every GstObject and GstMiniObject (elements, pads, pools, allocators, buffers, memories,
  // caps, events, queries, messages) made by the tests and the plugin must be gone by the end:
  // gst_deinit() finalises the leak tracer, which lists what is still alive (under
  // GST_DEBUG=GST_TRACER:7) and then warns "Leaks detected ...".
  void TearDown() override {
    static bool leaked = false;
    const GLogFunc previous = g_log_set_default_handler(
        [](const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
          if (std::strstr(message, "Leaks detected")) leaked = true;
          g_log_default_handler(domain, level, message, nullptr);
        },
        nullptr);
    gst_deinit();
    g_log_set_default_handler(previous, nullptr);
    if (leak_tracer_) {
      EXPECT_FALSE(leaked) << "GStreamer objects leaked; rerun with GST_TRACERS=leaks "
                              "GST_DEBUG=GST_TRACER:7 GST_LEAKS_TRACER_STACK_TRACE=1 to list them";
    }
  }

 private:
  bool leak_tracer_ = false;
};
[[maybe_unused]] auto* const gst_env = ::testing::AddGlobalTestEnvironment(new GstEnvironment);

using ssdtest::TempDir;   // (g_dir_make_tmp's NULL where TMPDIR could not be written crashed the suite)

std::string default_model() {
  GstElement* e = gst_element_factory_make("ssddetect", nullptr);
  gchar* model = nullptr;
  g_object_get(e, "model", &model, nullptr);
  std::string m = model ? model : "";
  g_free(model);
  gst_object_unref(e);
  return m;
}

const std::vector<std::string>& labels() { return ssdtrain::synth_class_names(); }

// One large object on the textured background: what the shipped model must find.
ssdtrain::SynthSample one_object(int width, int height, uint64_t seed) {
  ssdtrain::SynthOptions o;
  o.min_objects = o.max_objects = 1;
  o.min_size = 0.35;
  o.max_size = 0.6;
  return ssdtrain::render_synth_image(width, height, seed, o);
}

cv::Mat flat(int width, int height) { return cv::Mat(height, width, CV_8UC3, cv::Scalar(120, 120, 120)); }

// ------------------------------------------------------------------------------------------
// Frames: a BGR cv::Mat converted to any format by GstVideoConverter, optionally with padded
// strides (described by a GstVideoMeta on the buffer).

struct Frame {
  GstBuffer* buffer = nullptr;   // owned
  GstVideoInfo info;             // with the buffer's (possibly padded) strides
  GstCaps* caps = nullptr;       // owned
  Frame() = default;
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  ~Frame() {
    if (buffer) gst_buffer_unref(buffer);
    if (caps) gst_caps_unref(caps);
  }
  GstBuffer* ref() const { return gst_buffer_ref(buffer); }
};

std::unique_ptr<Frame> make_frame(const cv::Mat& bgr, GstVideoFormat format, int pad_right = 0,
                                  const char* colorimetry = "bt601") {
  const int w = bgr.cols, h = bgr.rows;
  GstVideoInfo src_info;
  gst_video_info_set_format(&src_info, GST_VIDEO_FORMAT_BGR, w, h);
  GstBuffer* src = gst_buffer_new_allocate(nullptr, src_info.size, nullptr);
  {
    GstVideoFrame f;
    EXPECT_TRUE(gst_video_frame_map(&f, &src_info, src, GST_MAP_WRITE));
    for (int y = 0; y < h; y++)
      std::memcpy(static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&f, 0)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0),
                  bgr.ptr(y), w * 3);
    gst_video_frame_unmap(&f);
  }

  auto out = std::make_unique<Frame>();
  gst_video_info_set_format(&out->info, format, w, h);
  if (GST_VIDEO_INFO_IS_YUV(&out->info)) {
    EXPECT_TRUE(gst_video_colorimetry_from_string(&out->info.colorimetry, colorimetry));
  }
  out->caps = gst_video_info_to_caps(&out->info);
  if (pad_right > 0) {
    GstVideoAlignment align;
    gst_video_alignment_reset(&align);
    align.padding_right = pad_right;
    align.padding_bottom = 3;
    EXPECT_TRUE(gst_video_info_align(&out->info, &align));
  }
  out->buffer = gst_buffer_new_allocate(nullptr, out->info.size, nullptr);
  gst_buffer_memset(out->buffer, 0, 0xA5, out->info.size);   // garbage in the padding
  if (pad_right > 0) {
    gst_buffer_add_video_meta_full(out->buffer, GST_VIDEO_FRAME_FLAG_NONE, format, w, h,
                                   GST_VIDEO_INFO_N_PLANES(&out->info), out->info.offset, out->info.stride);
  }
  GstVideoConverter* conv = gst_video_converter_new(
      &src_info, &out->info,
      gst_structure_new("config", GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
                        GST_VIDEO_DITHER_NONE, nullptr));
  GstVideoFrame in_f, out_f;
  EXPECT_TRUE(gst_video_frame_map(&in_f, &src_info, src, GST_MAP_READ));
  EXPECT_TRUE(gst_video_frame_map(&out_f, &out->info, out->buffer, GST_MAP_WRITE));
  gst_video_converter_frame(conv, &in_f, &out_f);
  gst_video_frame_unmap(&out_f);
  gst_video_frame_unmap(&in_f);
  gst_video_converter_free(conv);
  gst_buffer_unref(src);
  return out;
}

// ------------------------------------------------------------------------------------------
// Reading the detections back

struct Det {
  std::string label;           // from the `detection` structure
  std::string roi_type;        // the quark
  int label_id = -1;
  double confidence = -1;
  int x = 0, y = 0, w = 0, h = 0;
  double x_min = -1, y_min = -1, x_max = -1, y_max = -1;
  int id = -1;
  int object_id = -1;          // from the `object_id` structure (ssdtrack)
  int carried = -1;            // the `detection` structure's boolean, -1 when absent
};

std::vector<Det> detections(GstBuffer* buffer) {
  std::vector<Det> out;
  gpointer state = nullptr;
  GstMeta* meta;
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    Det d;
    d.roi_type = g_quark_to_string(roi->roi_type);
    d.x = roi->x;
    d.y = roi->y;
    d.w = roi->w;
    d.h = roi->h;
    d.id = roi->id;
    if (const GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, "detection")) {
      if (const gchar* l = gst_structure_get_string(s, "label")) d.label = l;
      gst_structure_get_int(s, "label_id", &d.label_id);
      gst_structure_get_double(s, "confidence", &d.confidence);
      gst_structure_get_double(s, "x_min", &d.x_min);
      gst_structure_get_double(s, "y_min", &d.y_min);
      gst_structure_get_double(s, "x_max", &d.x_max);
      gst_structure_get_double(s, "y_max", &d.y_max);
      gboolean carried = FALSE;
      if (gst_structure_get_boolean(s, "carried", &carried)) d.carried = carried ? 1 : 0;
    }
    if (const GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, "object_id"))
      gst_structure_get_int(s, "id", &d.object_id);
    out.push_back(d);
  }
  return out;
}

// One ssdexport line's detections: label, confidence and pixel box.
std::vector<Det> detections(const nlohmann::json& line) {
  std::vector<Det> out;
  for (const auto& d : line["detections"]) {
    Det o;
    o.label = d["label"].get<std::string>();
    o.confidence = d["confidence"].get<double>();
    o.x = d["box"]["x"].get<int>();
    o.y = d["box"]["y"].get<int>();
    o.w = d["box"]["w"].get<int>();
    o.h = d["box"]["h"].get<int>();
    out.push_back(o);
  }
  return out;
}

double iou(const Det& d, const ssdtrain::BoxAnnotation& g) {
  const double x1 = d.x, y1 = d.y, x2 = d.x + d.w, y2 = d.y + d.h;
  const double iw = std::min<double>(x2, g.x2) - std::max<double>(x1, g.x1);
  const double ih = std::min<double>(y2, g.y2) - std::max<double>(y1, g.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  return inter / ((x2 - x1) * (y2 - y1) + (g.x2 - g.x1) * (g.y2 - g.y1) - inter);
}

// The detection of the truth's label overlapping it most (IoU in *best_iou), or nullptr.
const Det* best_match(const std::vector<Det>& dets, const ssdtrain::BoxAnnotation& truth, double* best_iou) {
  const Det* best = nullptr;
  *best_iou = 0;
  for (const Det& d : dets) {
    if (d.label != labels()[truth.label]) continue;
    const double v = iou(d, truth);
    if (v > *best_iou) {
      *best_iou = v;
      best = &d;
    }
  }
  return best;
}

// Detections (Det, or anything with label, confidence, x, y, w, h) as one line for messages.
template <typename D>
std::string describe(const std::vector<D>& dets) {
  std::string s;
  for (const D& d : dets) {
    char b[160];
    std::snprintf(b, sizeof b, "[%s %.3f %d,%d %dx%d] ", d.label.c_str(), static_cast<double>(d.confidence),
                  static_cast<int>(d.x), static_cast<int>(d.y), static_cast<int>(d.w), static_cast<int>(d.h));
    s += b;
  }
  return s.empty() ? "(none)" : s;
}

std::string describe(const ssdtrain::BoxAnnotation& t) {
  char b[160];
  std::snprintf(b, sizeof b, "truth %s %.0f,%.0f-%.0f,%.0f", labels()[t.label].c_str(), t.x1, t.y1, t.x2, t.y2);
  return b;
}

// ------------------------------------------------------------------------------------------
// Harness helpers

// An ssddetect in a harness. SSD_TEST_IN_FLIGHT=N (the elements-one-at-a-time suite) sets
// in-flight=N where `props` does not: in-flight 1 runs each frame in place, as on CUDA or a
// 1-CPU machine by default, where the default here (2 CPUs) holds it in flight.
GstHarness* detect_harness(const char* props = nullptr) {
  std::string desc = "ssddetect";
  if (props) desc += std::string(" ") + props;
  const char* in_flight = g_getenv("SSD_TEST_IN_FLIGHT");
  if (in_flight && desc.find("in-flight=") == std::string::npos) desc += std::string(" in-flight=") + in_flight;
  GError* err = nullptr;
  GstElement* e = gst_parse_launch(desc.c_str(), &err);
  EXPECT_NE(e, nullptr) << (err ? err->message : "");
  g_clear_error(&err);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  return h;
}

// Pushes one frame through `h` and returns the buffer that comes out (caller unrefs).
GstBuffer* run_frame(GstHarness* h, const Frame& f) {
  gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
  EXPECT_EQ(gst_harness_push(h, f.ref()), GST_FLOW_OK);
  return gst_harness_pull(h);
}

std::vector<Det> detect_once(GstHarness* h, const Frame& f) {
  GstBuffer* out = run_frame(h, f);
  EXPECT_NE(out, nullptr);
  if (!out) return {};
  std::vector<Det> d = detections(out);
  gst_buffer_unref(out);
  return d;
}

// A region of at least one pixel inside a W x H frame.
void expect_inside(const Det& d, int W, int H) {
  EXPECT_GE(d.x, 0);
  EXPECT_GE(d.y, 0);
  EXPECT_GE(d.w, 1);
  EXPECT_GE(d.h, 1);
  EXPECT_LE(d.x + d.w, W);
  EXPECT_LE(d.y + d.h, H);
}

double det_iou(const Det& a, const Det& b) {
  const double iw = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  const double ih = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  return inter / (double(a.w) * a.h + double(b.w) * b.h - inter);
}

// The detections of `image` as a tightly packed RGB frame by a fresh ssddetect: the reference
// that other formats, strides, sizes and transports are compared with.
std::vector<Det> reference(const cv::Mat& image, const char* props = "threshold=0.1") {
  GstHarness* h = detect_harness(props);
  auto f = make_frame(image, GST_VIDEO_FORMAT_RGB);
  std::vector<Det> d = detect_once(h, *f);
  gst_harness_teardown(h);
  return d;
}

// Every detection of `a` with a confidence >= min_conf has one in `b` with the same label,
// IoU >= min_iou and a confidence within `tol`.
void expect_covers(const std::vector<Det>& a, const std::vector<Det>& b, double min_conf, double min_iou, double tol,
                   const std::string& what) {
  for (const Det& d : a) {
    if (d.confidence < min_conf) continue;
    bool ok = false;
    for (const Det& e : b)
      ok = ok || (e.label == d.label && det_iou(d, e) >= min_iou && std::abs(e.confidence - d.confidence) <= tol);
    EXPECT_TRUE(ok) << what << ": no counterpart of " << describe(std::vector<Det>{d}) << " in " << describe(b);
  }
}

// The most confident detection (confidence >= 0.3) of the reference, or nullptr.
const Det* top(const std::vector<Det>& dets) {
  const Det* t = nullptr;
  for (const Det& d : dets)
    if (d.confidence >= 0.3 && (!t || d.confidence > t->confidence)) t = &d;
  return t;
}

// The first of these element factories that is not installed, or "" (tests needing them skip).
std::string missing_factory(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    GstElementFactory* factory = gst_element_factory_find(name);
    if (!factory) return name;
    gst_object_unref(factory);
  }
  return "";
}

// A one-object scene (training/synth.h, `seed`) written as a PNG file into `dir`, with the
// detections a fresh ssddetect gives it; `ref` is empty of confident ones when the model
// finds nothing.
struct PngScene {
  std::string png;
  std::vector<Det> ref;
};
PngScene png_scene(const TempDir& dir, uint64_t seed) {
  const ssdtrain::SynthSample s = one_object(320, 240, seed);
  PngScene scene{dir / "scene.png", {}};
  EXPECT_TRUE(cv::imwrite(scene.png, s.image));
  scene.ref = reference(s.image, nullptr);
  return scene;
}


// A pipeline state change that must fail; returns the error message posted on the bus.
std::string failing_start(const std::string& description) {
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  EXPECT_NE(pipeline, nullptr) << (err ? err->message : "");
  g_clear_error(&err);
  if (!pipeline) return {};
  const GstStateChangeReturn ret = gst_element_set_state(pipeline, GST_STATE_PAUSED);
  EXPECT_EQ(ret, GST_STATE_CHANGE_FAILURE) << description;
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND, GST_MESSAGE_ERROR);
  std::string message;
  if (msg) {
    GError* e = nullptr;
    gst_message_parse_error(msg, &e, nullptr);
    message = e->message;
    g_error_free(e);
    gst_message_unref(msg);
  }
  EXPECT_FALSE(message.empty()) << "no error message for " << description;
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return message;
}

// A pipeline that must preroll (the positive control of the failure tests).
void starts_ok(const std::string& description) {
  GstElement* pipeline = gst_parse_launch(description.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  EXPECT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND), GST_STATE_CHANGE_SUCCESS)
      << description;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

const GstVideoFormat kFormats[] = {
    GST_VIDEO_FORMAT_RGB,  GST_VIDEO_FORMAT_BGR,  GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
    GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA,
    GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420,
};

}  // namespace

// ==========================================================================================
// ssddetect

TEST(SsdDetect, PropertiesHaveDocumentedDefaults) {
  GstElement* e = gst_element_factory_make("ssddetect", nullptr);
  ASSERT_NE(e, nullptr);
  gchar *model = nullptr, *device = nullptr, *classes = nullptr;
  gfloat threshold = 0, nms = 0;
  gint max_det = 0;
  guint interval = 0;
  gint precision = -1;
  gboolean qos = FALSE, graphs = FALSE, agnostic = TRUE;
  g_object_get(e, "model", &model, "device", &device, "classes", &classes, "threshold", &threshold, "nms-iou",
               &nms, "max-detections", &max_det, "interval", &interval, "precision", &precision, "qos", &qos,
               "cuda-graphs", &graphs, "class-agnostic-nms", &agnostic, nullptr);
  EXPECT_FALSE(agnostic);   // per-class NMS, the SSD method's
  EXPECT_TRUE(model && g_str_has_suffix(model, ".safetensors")) << (model ? model : "(null)");
  EXPECT_STREQ(device, "auto");
  EXPECT_EQ(classes, nullptr);
  EXPECT_FLOAT_EQ(threshold, 0.3f);
  EXPECT_FLOAT_EQ(nms, 0.45f);
  EXPECT_EQ(max_det, 100);
  EXPECT_EQ(interval, 1u);
  EXPECT_EQ(precision, 0);
  EXPECT_TRUE(qos);
  EXPECT_TRUE(graphs);
  gchar* region = nullptr;
  g_object_get(e, "region", &region, nullptr);
  EXPECT_EQ(region, nullptr);   // the whole frame
  g_free(region);
  gst_util_set_object_arg(G_OBJECT(e), "precision", "fp16");
  g_object_get(e, "precision", &precision, nullptr);
  EXPECT_EQ(precision, 1);
  g_object_set(e, "model", nullptr, nullptr);   // back to the default
  gchar* model2 = nullptr;
  g_object_get(e, "model", &model2, nullptr);
  EXPECT_STREQ(model, model2);
  g_free(model);
  g_free(model2);
  g_free(device);
  g_free(classes);
  gst_object_unref(e);
}

TEST(SsdDetect, FindsAKnownSyntheticObjectWithFullMetadata) {
  // The training distribution of the shipped model: square synthetic images.
  const int W = 224, H = 224;
  GstHarness* h = detect_harness();
  int found = 0;
  const int kSeeds = 8;
  for (uint64_t seed = 1; seed <= kSeeds; seed++) {
    const ssdtrain::SynthSample s = one_object(W, H, seed);
    ASSERT_EQ(s.boxes.size(), 1u);
    const auto& truth = s.boxes[0];
    auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
    const std::vector<Det> dets = detect_once(h, *f);
    double best_iou;
    const Det* d = best_match(dets, truth, &best_iou);
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + describe(truth) + " got " + describe(dets));
    // Every region is well formed, whatever its class.
    for (size_t i = 0; i < dets.size(); i++) {
      const Det& r = dets[i];
      EXPECT_EQ(r.id, static_cast<int>(i));
      EXPECT_EQ(r.label, r.roi_type);
      ASSERT_GE(r.label_id, 0);
      ASSERT_LT(r.label_id, static_cast<int>(labels().size()));
      EXPECT_EQ(labels()[r.label_id], r.label);
      EXPECT_GE(r.confidence, 0.3);
      EXPECT_LE(r.confidence, 1.0);
      expect_inside(r, W, H);
      // The pixels are the normalised box's, rounded to the nearest.
      EXPECT_EQ(r.x, std::lround(r.x_min * W));
      EXPECT_EQ(r.y, std::lround(r.y_min * H));
      EXPECT_EQ(r.x + r.w, std::lround(r.x_max * W));
      EXPECT_EQ(r.y + r.h, std::lround(r.y_max * H));
    }
    if (d && best_iou > 0.7) found++;
    else std::printf("seed %d: no %s with IoU > 0.7 (best %.3f): %s\n", static_cast<int>(seed),
                     labels()[truth.label].c_str(), best_iou, describe(dets).c_str());
  }
  std::printf("found %d of %d single objects with IoU > 0.7\n", found, kSeeds);
  EXPECT_GE(found, 6);
  gst_harness_teardown(h);
}

// The shipped model on plain scenes (its last runs trained on synthetic images without objects,
// and on shapes over flat and gradient backgrounds): no detection on uniform frames, where the
// model before reported a frame-filling rectangle (confidence 0.44 on black, 0.53 on white), and
// axis-aligned rectangles on flat backgrounds found (the first run with negatives, its images
// with objects all on textured backgrounds, missed most of those over a quarter of the frame
// wide; scripts/plain-scenes.sh measures more of them).
TEST(SsdDetect, TheShippedModelLeavesBlankFramesAloneAndFindsPlainRectangles) {
  const int W = 320, H = 240;
  GstHarness* h = detect_harness();
  for (const cv::Scalar& c : {cv::Scalar(0, 0, 0), cv::Scalar(255, 255, 255), cv::Scalar(128, 128, 128),
                              cv::Scalar(200, 60, 30), cv::Scalar(30, 200, 60), cv::Scalar(30, 60, 200)}) {
    auto f = make_frame(cv::Mat(H, W, CV_8UC3, c), GST_VIDEO_FORMAT_RGB);
    const std::vector<Det> dets = detect_once(h, *f);
    EXPECT_TRUE(dets.empty()) << "a uniform frame " << c << " got " << describe(dets);
  }
  ssdtrain::Rng rng(2026);
  int found = 0;
  const int kFrames = 20;
  for (int i = 0; i < kFrames; ++i) {
    const double grey = rng.uniform(40, 215), side = rng.uniform(0.25, 0.8);
    cv::Scalar bg(grey + rng.uniform(-20, 20), grey + rng.uniform(-20, 20), grey + rng.uniform(-20, 20));
    const double sign = rng.uniform(0, 1) < 0.5 ? -1 : 1;
    cv::Scalar fg(grey + sign * 90 * rng.uniform(0.8, 1.2), grey + sign * 90 * rng.uniform(0.8, 1.2),
                  grey + sign * 90 * rng.uniform(0.8, 1.2));
    const int w = static_cast<int>(side * W), hh = static_cast<int>(std::min(side * H * rng.uniform(0.8, 1.2), 0.95 * H));
    const int x = static_cast<int>(rng.uniform(0, W - w)), y = static_cast<int>(rng.uniform(0, H - hh));
    cv::Mat img(H, W, CV_8UC3, bg);
    cv::rectangle(img, cv::Rect(x, y, w, hh), fg, cv::FILLED);
    ssdtrain::BoxAnnotation truth;
    truth.x1 = static_cast<float>(x);
    truth.y1 = static_cast<float>(y);
    truth.x2 = static_cast<float>(x + w);
    truth.y2 = static_cast<float>(y + hh);
    truth.label = 1;   // rectangle
    auto f = make_frame(img, GST_VIDEO_FORMAT_RGB);
    const std::vector<Det> dets = detect_once(h, *f);
    double best_iou;
    if (best_match(dets, truth, &best_iou) && best_iou > 0.5) found++;
    else std::printf("frame %d: no rectangle with IoU > 0.5 (best %.3f): %s\n", i, best_iou, describe(dets).c_str());
  }
  // 18 with the shipped model (and with the one before it); 6 with the first run on negatives.
  std::printf("found %d of %d plain rectangles with IoU > 0.5\n", found, kFrames);
  EXPECT_GE(found, 16);
  gst_harness_teardown(h);
}

// A frame a few pixels across gets a region for each detection max-detections chose: a box
// narrower or lower than a pixel keeps one (they were dropped: 26 of 100 regions on a 1x1 frame
// at threshold 0.01, 80 on a 2x7 one, where `ssd-train predict` reports 100). At threshold 0
// every box NMS keeps is a detection: more than 100 here.
TEST(SsdDetect, TinyFramesGetARegionForEveryDetection) {
  const ssdtrain::SynthSample s = one_object(224, 224, 3);
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {2, 7}, {3, 3}, {321, 3}}) {
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
    cv::Mat small;
    cv::resize(s.image, small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    GstHarness* harness = detect_harness("threshold=0 max-detections=100");
    auto f = make_frame(small, GST_VIDEO_FORMAT_RGB);
    const std::vector<Det> dets = detect_once(harness, *f);
    gst_harness_teardown(harness);
    EXPECT_EQ(dets.size(), 100u);
    for (const Det& d : dets) {
      expect_inside(d, w, h);
      // The pixel holds the box's centre, or the box covers the pixels its edges round to.
      EXPECT_LE(d.x, (d.x_min + d.x_max) / 2 * w + 0.5);
      EXPECT_GE(d.x + d.w, (d.x_min + d.x_max) / 2 * w - 0.5);
    }
  }
}

// Every format, at an even size and at an odd size with padded strides, gives the detections
// of the tightly packed RGB frame (the conversion on the model's device agrees with
// GstVideoConverter's): packed formats exactly, 4:2:0 YUV up to its chroma subsampling.
struct FormatCase {
  GstVideoFormat format;
  int width, height, pad;
  const char* colorimetry;
};

void PrintTo(const FormatCase& c, std::ostream* os) {
  *os << gst_video_format_to_string(c.format) << " " << c.width << "x" << c.height << " pad " << c.pad << " "
      << c.colorimetry;
}

class SsdDetectFormats : public ::testing::TestWithParam<FormatCase> {};

TEST_P(SsdDetectFormats, MatchesTheRgbReference) {
  const FormatCase c = GetParam();
  const ssdtrain::SynthSample s = one_object(c.width, c.height, 11);
  const std::vector<Det> ref = reference(s.image);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the reference frame";
  GstHarness* h = detect_harness("threshold=0.1");
  auto f = make_frame(s.image, c.format, c.pad, c.colorimetry);
  const std::vector<Det> dets = detect_once(h, *f);
  gst_harness_teardown(h);
  const bool yuv = c.format == GST_VIDEO_FORMAT_NV12 || c.format == GST_VIDEO_FORMAT_I420;
  // 4:2:0 YUV has a quarter of the colour resolution of the RGB reference, so the model sees a
  // slightly different picture: boxes stay within IoU 0.85 and confidences within 0.1 (a weak
  // detection's moved by 0.062 with an earlier default model; a false one on a blurred spot of
  // the background, 0.515 in RGB, by 0.085 in NV12 bt709 with the 2026-12-07 one). Weak overlapping false positives
  // on the textured background (0.33-0.41 with the 2026-11-23 17:50 model, NV12/I420 641x479)
  // then fall either side of NMS, so for YUV only detections >= 0.5 must have a counterpart;
  // the packed RGB formats see the same pixels and must agree down to 0.3.
  const double min_iou = yuv ? 0.85 : 0.98, tol = yuv ? 0.1 : 0.005;
  const double min_conf = yuv ? 0.5 : 0.3;
  EXPECT_GE(top(ref)->confidence, min_conf) << "nothing to compare";
  std::ostringstream what;
  PrintTo(c, &what);
  expect_covers(ref, dets, min_conf, min_iou, tol, what.str() + " vs RGB");
  expect_covers(dets, ref, min_conf, min_iou, tol, "RGB vs " + what.str());
  for (const Det& r : dets) {
    EXPECT_LE(r.x + r.w, c.width);
    EXPECT_LE(r.y + r.h, c.height);
  }
}

static std::vector<FormatCase> format_cases() {
  std::vector<FormatCase> v;
  for (GstVideoFormat f : kFormats) v.push_back({f, 320, 240, 0, "bt601"});
  for (GstVideoFormat f : kFormats) v.push_back({f, 641, 479, 37, "bt601"});
  v.push_back({GST_VIDEO_FORMAT_NV12, 320, 240, 0, "bt709"});
  v.push_back({GST_VIDEO_FORMAT_I420, 321, 241, 5, "bt709"});
  // Full range (JPEG's BT.601, and BT.709): the element reads the range from the caps.
  v.push_back({GST_VIDEO_FORMAT_NV12, 320, 240, 0, "1:4:0:0"});
  v.push_back({GST_VIDEO_FORMAT_I420, 321, 241, 5, "1:3:5:1"});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, SsdDetectFormats, ::testing::ValuesIn(format_cases()),
                         [](const ::testing::TestParamInfo<FormatCase>& i) {
                           return std::string(gst_video_format_to_string(i.param.format)) + "_" +
                                  std::to_string(i.param.width) + "x" + std::to_string(i.param.height) +
                                  (i.param.pad ? "_pad" + std::to_string(i.param.pad) : "") + "_" +
                                  [&] {   // (a colorimetry without a name, e.g. 1:4:0:0)
                                    std::string c = i.param.colorimetry;
                                    std::replace(c.begin(), c.end(), ':', '_');
                                    return c;
                                  }();
                         });

TEST(SsdDetect, PaddedStridesGiveTheSameDetections) {
  const ssdtrain::SynthSample s = one_object(320, 240, 5);
  GstHarness* h = detect_harness("threshold=0.1");
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420}) {
    auto tight = make_frame(s.image, fmt, 0);
    auto padded = make_frame(s.image, fmt, 64);
    ASSERT_GT(GST_VIDEO_INFO_PLANE_STRIDE(&padded->info, 0), GST_VIDEO_INFO_PLANE_STRIDE(&tight->info, 0));
    const auto a = detect_once(h, *tight);
    const auto b = detect_once(h, *padded);
    ASSERT_FALSE(a.empty());
    ASSERT_EQ(a.size(), b.size()) << describe(a) << " vs " << describe(b);
    for (size_t i = 0; i < a.size(); i++) {
      EXPECT_EQ(a[i].label, b[i].label);
      EXPECT_NEAR(a[i].confidence, b[i].confidence, 1e-4);
      EXPECT_EQ(a[i].x, b[i].x);
      EXPECT_EQ(a[i].y, b[i].y);
      EXPECT_EQ(a[i].w, b[i].w);
      EXPECT_EQ(a[i].h, b[i].h);
    }
  }
  gst_harness_teardown(h);
}

TEST(SsdDetect, ClassesPropertyFilters) {
  const ssdtrain::SynthSample s = one_object(320, 240, 2);
  const std::vector<Det> ref = reference(s.image, "threshold=0.1");
  ASSERT_FALSE(ref.empty()) << "the model finds nothing";
  const std::string mine =
      std::max_element(ref.begin(), ref.end(), [](const Det& a, const Det& b) { return a.confidence < b.confidence; })
          ->label;
  std::string others;
  for (const auto& l : labels())
    if (l != mine) others += (others.empty() ? "" : ",") + l;
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);

  GstHarness* keep = detect_harness(("threshold=0.1 classes=\"" + mine + "\"").c_str());
  const auto kept = detect_once(keep, *f);
  gst_harness_teardown(keep);
  ASSERT_FALSE(kept.empty());
  for (const Det& d : kept) EXPECT_EQ(d.label, mine);

  GstHarness* drop = detect_harness(("threshold=0.1 classes=\" " + others + " \"").c_str());
  const auto dropped = detect_once(drop, *f);
  gst_harness_teardown(drop);
  for (const Det& d : dropped) EXPECT_NE(d.label, mine) << describe(dropped);
  EXPECT_EQ(kept.size() + dropped.size(), ref.size()) << "the filter should only split the detections";

  // A list naming no class (" , ") keeps every class, as an empty one does.
  GstHarness* none = detect_harness("threshold=0.1 classes=\" , \"");
  const auto all = detect_once(none, *f);
  gst_harness_teardown(none);
  EXPECT_EQ(all.size(), ref.size()) << describe(all);
}

// class-agnostic-nms: at a low threshold per-class NMS leaves boxes of two labels at one place
// (an object under two labels); across classes no two detections overlap by more than nms-iou
// (up to the boxes' rounding to pixels), and the most confident detection is the same.
TEST(SsdDetect, ClassAgnosticNmsLeavesNoTwoLabelsAtOnePlace) {
  const ssdtrain::SynthSample s = one_object(320, 240, 5);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  const auto overlapping = [](const std::vector<Det>& dets) {
    int pairs = 0;
    for (size_t i = 0; i < dets.size(); ++i)
      for (size_t j = i + 1; j < dets.size(); ++j) pairs += det_iou(dets[i], dets[j]) > 0.5;
    return pairs;
  };
  GstHarness* per_class = detect_harness("threshold=0.02");
  const auto a = detect_once(per_class, *f);
  gst_harness_teardown(per_class);
  GstHarness* across = detect_harness("threshold=0.02 class-agnostic-nms=true");
  const auto b = detect_once(across, *f);
  gst_harness_teardown(across);
  ASSERT_FALSE(b.empty());
  EXPECT_GT(overlapping(a), 0) << "per class: " << describe(a);
  EXPECT_EQ(overlapping(b), 0) << "across classes: " << describe(b);
  EXPECT_LT(b.size(), a.size());
  EXPECT_EQ(top(a)->label, top(b)->label);
  EXPECT_FLOAT_EQ(top(a)->confidence, top(b)->confidence);
}

// The text of the next warning on `bus` (waits up to 60 s; empty if none).
std::string next_warning(GstBus* bus) {
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_WARNING);
  if (!msg) return {};
  GError* e = nullptr;
  gst_message_parse_warning(msg, &e, nullptr);
  std::string text = e->message;
  g_error_free(e);
  gst_message_unref(msg);
  return text;
}

// `classes` set while playing applies from the next frame on, which is analysed even between
// interval's frames; an unknown label is a warning, and the property reverts.
TEST(SsdDetect, ClassesChangeWhilePlaying) {
  const ssdtrain::SynthSample s = one_object(320, 240, 2);
  const std::vector<Det> ref = reference(s.image, "threshold=0.1");
  ASSERT_FALSE(ref.empty()) << "the model finds nothing";
  const std::string mine = ref.front().label;
  size_t n_mine = 0;
  for (const Det& d : ref) n_mine += d.label == mine;
  ASSERT_LT(n_mine, ref.size()) << "the filter must drop something: " << describe(ref);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("threshold=0.1 interval=5");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  EXPECT_EQ(detect_once(h, *f).size(), ref.size());
  g_object_set(h->element, "classes", mine.c_str(), nullptr);
  auto kept = detect_once(h, *f);   // frame 1: analysed anew, not carried from frame 0
  EXPECT_EQ(kept.size(), n_mine) << describe(kept);
  for (const Det& d : kept) EXPECT_EQ(d.label, mine);
  EXPECT_EQ(detect_once(h, *f).size(), n_mine);   // carried, filtered
  g_object_set(h->element, "classes", (mine + ",unicorn").c_str(), nullptr);
  kept = detect_once(h, *f);
  EXPECT_EQ(kept.size(), n_mine) << "the classes in use stay: " << describe(kept);
  const std::string warning = next_warning(bus);
  EXPECT_NE(warning.find("unicorn"), std::string::npos) << warning;
  EXPECT_NE(warning.find(labels()[1]), std::string::npos) << "should list the known classes: " << warning;
  gchar* classes = nullptr;
  g_object_get(h->element, "classes", &classes, nullptr);
  EXPECT_STREQ(classes, mine.c_str());
  g_free(classes);
  g_object_set(h->element, "classes", nullptr, nullptr);
  EXPECT_EQ(detect_once(h, *f).size(), ref.size());
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// Whether two frames' detections are the same (labels, boxes, confidences).
bool same(const std::vector<Det>& a, const std::vector<Det>& b);

// The caps' colour range is the frame's: the same NV12 bytes read as full range (0-255) and as
// video range (16-235) are two pictures (the second of more contrast), with detections of their
// own; full-range frames match the RGB picture (the format cases above).
TEST(SsdDetect, TheCapsColourRangeIsHowTheCodesAreRead) {
  const ssdtrain::SynthSample s = one_object(320, 240, 11);
  auto full = make_frame(s.image, GST_VIDEO_FORMAT_NV12, 0, "1:4:0:0");
  ASSERT_EQ(full->info.colorimetry.range, GST_VIDEO_COLOR_RANGE_0_255);
  Frame limited;
  limited.info = full->info;
  limited.info.colorimetry.range = GST_VIDEO_COLOR_RANGE_16_235;
  limited.caps = gst_video_info_to_caps(&limited.info);
  limited.buffer = full->ref();
  GstHarness* h = detect_harness("threshold=0.1");
  const auto as_full = detect_once(h, *full);
  const auto as_limited = detect_once(h, limited);
  gst_harness_teardown(h);
  ASSERT_FALSE(as_full.empty());
  EXPECT_FALSE(same(as_full, as_limited)) << "the range was not read from the caps: " << describe(as_full);
}

// class-thresholds: a class's own threshold replaces `threshold` for it, above or below (the
// network runs with the lowest); unknown classes and malformed entries fail the start, and
// while playing are a warning that leaves the value in use.
TEST(SsdDetect, ClassThresholdsReplaceTheThresholdForTheirClasses) {
  const ssdtrain::SynthSample s = one_object(320, 240, 2);
  const std::vector<Det> ref = reference(s.image, "threshold=0.05");
  ASSERT_FALSE(ref.empty());
  const std::string mine = ref.front().label;   // the most confident detection's class
  std::vector<Det> without_mine, only_mine;
  for (const Det& d : ref) (d.label == mine ? only_mine : without_mine).push_back(d);
  ASSERT_FALSE(without_mine.empty()) << "the scene needs another class: " << describe(ref);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  auto run = [&](const std::string& props) {
    GstHarness* h = detect_harness(props.c_str());
    auto dets = detect_once(h, *f);
    gst_harness_teardown(h);
    return dets;
  };
  // Above its best confidence: that class goes, the others stay at `threshold`.
  char above[64];
  std::snprintf(above, sizeof above, "%s=%.6f", mine.c_str(), std::min(1.0, ref.front().confidence + 1e-4));
  auto dets = run(std::string("threshold=0.05 class-thresholds=\"") + above + ", \"");
  EXPECT_TRUE(same(dets, without_mine)) << describe(dets) << "\nexpected " << describe(without_mine);
  // Below `threshold`: that class is kept down to its own threshold, the others go.
  dets = run("threshold=0.99 class-thresholds=" + mine + "=0.05");
  EXPECT_TRUE(same(dets, only_mine)) << describe(dets) << "\nexpected " << describe(only_mine);
  // One detection asked for: the most confident of what the filter keeps, with a model of its
  // own and with a shared instance (the more confident `mine` took the only place, and the
  // filter then left none).
  for (const std::string instance : {"", " model-instance-id=filtered"}) {
    SCOPED_TRACE(instance);
    dets = run("threshold=0.05 max-detections=1 classes=" + without_mine.front().label + instance);
    EXPECT_TRUE(same(dets, {without_mine.front()})) << describe(dets) << "\nexpected " << describe(without_mine);
    dets = run(std::string("threshold=0.05 max-detections=1 class-thresholds=") + above + instance);
    EXPECT_TRUE(same(dets, {without_mine.front()})) << describe(dets) << "\nexpected " << describe(without_mine);
  }

  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect class-thresholds=unicorn=0.5 ! fakesink");
  EXPECT_NE(msg.find("unicorn"), std::string::npos) << msg;
  EXPECT_NE(msg.find(labels()[1]), std::string::npos) << "should list the known classes: " << msg;
  for (const std::string& bad : {mine + "=2", mine + "=x", mine, std::string("=0.5")}) {
    const std::string m = failing_start("videotestsrc num-buffers=1 ! ssddetect class-thresholds=\"" + bad + "\" ! fakesink");
    EXPECT_NE(m.find(bad), std::string::npos) << m;
  }

  // While playing.
  GstHarness* h = detect_harness("threshold=0.05");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  EXPECT_TRUE(same(detect_once(h, *f), ref));
  g_object_set(h->element, "class-thresholds", above, nullptr);
  EXPECT_TRUE(same(detect_once(h, *f), without_mine));
  g_object_set(h->element, "class-thresholds", "unicorn=0.5", nullptr);
  EXPECT_TRUE(same(detect_once(h, *f), without_mine)) << "the value in use stays";
  const std::string warning = next_warning(bus);
  EXPECT_NE(warning.find("unicorn"), std::string::npos) << warning;
  gchar* value = nullptr;
  g_object_get(h->element, "class-thresholds", &value, nullptr);
  EXPECT_STREQ(value, above);
  g_free(value);
  g_object_set(h->element, "class-thresholds", nullptr, nullptr);
  EXPECT_TRUE(same(detect_once(h, *f), ref));
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// Whether every detection's `carried` is `expect` (and there are some).
bool all_carried(const std::vector<Det>& dets, bool expect) {
  if (dets.empty()) return false;
  for (const Det& d : dets)
    if (d.carried != (expect ? 1 : 0)) return false;
  return true;
}

bool same(const std::vector<Det>& a, const std::vector<Det>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (a[i].label != b[i].label || a[i].x != b[i].x || a[i].y != b[i].y || a[i].w != b[i].w ||
        a[i].h != b[i].h || std::abs(a[i].confidence - b[i].confidence) > 1e-5)
      return false;
  return true;
}

// The same labels, boxes within a pixel and confidences within `tolerance` (0: same()).
bool close(const std::vector<Det>& a, const std::vector<Det>& b, double tolerance) {
  if (tolerance == 0) return same(a, b);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (a[i].label != b[i].label || std::abs(a[i].x - b[i].x) > 1 || std::abs(a[i].y - b[i].y) > 1 ||
        std::abs(a[i].w - b[i].w) > 1 || std::abs(a[i].h - b[i].h) > 1 ||
        std::abs(a[i].confidence - b[i].confidence) > tolerance)
      return false;
  return true;
}

// Whether a batched run's detections are a one-frame run's: the same on the CPU; on a GPU
// (device=auto on the GPU host) batches of several frames may round differently from batches
// of one, so boxes may move by a pixel and confidences by 1e-3.
bool same_batched(const std::vector<Det>& batched, const std::vector<Det>& single) {
  return close(batched, single, ssd::cuda_available() ? 1e-3 : 0);
}

// Two scenes whose detections differ, and those detections from fresh elements.
struct TwoScenes {
  std::unique_ptr<Frame> a, b;
  std::vector<Det> ref_a, ref_b;
  TwoScenes() {
    a = make_frame(one_object(320, 240, 3).image, GST_VIDEO_FORMAT_RGB);
    b = make_frame(one_object(320, 240, 7).image, GST_VIDEO_FORMAT_RGB);
    for (auto* p : {&ref_a, &ref_b}) {
      GstHarness* h = detect_harness();
      *p = detect_once(h, p == &ref_a ? *a : *b);
      gst_harness_teardown(h);
    }
  }
};

// interval=3: frames 0 and 3 are analysed, 1 and 2 carry frame 0's boxes, 4 carries frame 3's.
// Two detectors in a row: the second numbers its regions after the first one's, so that every
// region of a frame has its own id (what bindings that fetch regions by id rely on).
TEST(SsdDetect, RegionIdsStayUniqueAfterAnotherDetector) {
  TwoScenes s;
  ASSERT_FALSE(s.ref_a.empty());
  GstHarness* h = gst_harness_new_parse("ssddetect ! ssddetect");
  gst_harness_set_src_caps(h, gst_caps_ref(s.a->caps));
  ASSERT_EQ(gst_harness_push(h, s.a->ref()), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  ASSERT_NE(out, nullptr);
  const auto dets = detections(out);
  gst_buffer_unref(out);
  ASSERT_EQ(dets.size(), 2 * s.ref_a.size());
  std::set<int> ids;
  for (const Det& d : dets) ids.insert(d.id);
  EXPECT_EQ(ids.size(), dets.size()) << "region ids repeat";
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), static_cast<int>(dets.size()) - 1);
  gst_harness_teardown(h);
  // Another producer's regions in any order of ids (7, then 1): the new ones follow the highest.
  GstHarness* one = gst_harness_new_parse("ssddetect");
  gst_harness_set_src_caps(one, gst_caps_ref(s.a->caps));
  GstBuffer* in = gst_buffer_copy(s.a->buffer);
  for (const int id : {7, 1}) gst_buffer_add_video_region_of_interest_meta(in, "other", 0, 0, 10, 10)->id = id;
  ASSERT_EQ(gst_harness_push(one, in), GST_FLOW_OK);
  out = gst_harness_pull(one);
  ASSERT_NE(out, nullptr);
  const auto after = detections(out);
  gst_buffer_unref(out);
  ASSERT_EQ(after.size(), 2 + s.ref_a.size());
  std::set<int> seen;
  for (const Det& d : after) {
    EXPECT_TRUE(seen.insert(d.id).second) << "region id " << d.id << " twice";
    if (d.roi_type != "other") {
      EXPECT_GE(d.id, 8);
    }
  }
  gst_harness_teardown(one);
}

TEST(SsdDetect, IntervalCarriesTheLastDetections) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b)) << "the two scenes should give different detections";
  ASSERT_FALSE(s.ref_a.empty());
  GstHarness* h = detect_harness("interval=3");
  // Each frame's regions say whether they were detected on it (`carried` FALSE) or repeated.
  const std::pair<const Frame*, bool> frames[] = {
      {s.a.get(), false}, {s.b.get(), true}, {s.b.get(), true}, {s.b.get(), false}, {s.a.get(), true}};
  const std::vector<Det>* expect[] = {&s.ref_a, &s.ref_a, &s.ref_a, &s.ref_b, &s.ref_b};
  for (int i = 0; i < 5; i++) {
    const std::vector<Det> got = detect_once(h, *frames[i].first);
    EXPECT_TRUE(same(got, *expect[i])) << "frame " << i;
    EXPECT_TRUE(all_carried(got, frames[i].second)) << "frame " << i;
  }
  gst_harness_teardown(h);
}

TEST(SsdDetect, FlushRestartsTheInterval) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b)) << "the two scenes should give different detections";
  GstHarness* h = detect_harness("interval=10");
  EXPECT_TRUE(same(detect_once(h, *s.a), s.ref_a));
  EXPECT_TRUE(same(detect_once(h, *s.b), s.ref_a));   // carried
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  EXPECT_TRUE(same(detect_once(h, *s.b), s.ref_b));   // analysed again after the flush
  gst_harness_teardown(h);
}

#ifdef HAVE_GST_ANALYTICS
// GStreamer >= 1.24: every region of interest is also a GstAnalyticsODMtd in the buffer's
// GstAnalyticsRelationMeta.
namespace {

struct OdMtd {
  std::string label;   // the object type quark
  int x = 0, y = 0, w = 0, h = 0;
  float confidence = -1;
};

// The object-detection entries of the buffer's relation meta; *relation_metas counts the
// relation metas on the buffer.
std::vector<OdMtd> od_mtds(GstBuffer* buffer, int* relation_metas) {
  *relation_metas = 0;
  gpointer meta_state = nullptr;
  while (gst_buffer_iterate_meta_filtered(buffer, &meta_state, GST_ANALYTICS_RELATION_META_API_TYPE))
    ++*relation_metas;
  std::vector<OdMtd> out;
  GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(buffer);
  if (!rmeta) return out;
  gpointer state = nullptr;
  GstAnalyticsMtd mtd;
  while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(), &mtd)) {
    auto* od = static_cast<GstAnalyticsODMtd*>(&mtd);
    OdMtd o;
    EXPECT_TRUE(gst_analytics_od_mtd_get_location(od, &o.x, &o.y, &o.w, &o.h, &o.confidence));
    gfloat conf = -1;
    EXPECT_TRUE(gst_analytics_od_mtd_get_confidence_lvl(od, &conf));
    EXPECT_EQ(conf, o.confidence);
    const GQuark type = gst_analytics_od_mtd_get_obj_type(od);
    o.label = type ? g_quark_to_string(type) : "";
    out.push_back(o);
  }
  return out;
}

// Each region of interest has its own entry in `ods` with the same label, box and confidence
// (the structure's double holds the float confidence exactly). Returns the entries that matched
// no region.
std::vector<OdMtd> unmatched(const std::vector<Det>& rois, std::vector<OdMtd> ods) {
  for (const Det& d : rois) {
    auto it = std::find_if(ods.begin(), ods.end(), [&](const OdMtd& o) {
      return o.label == d.roi_type && o.x == d.x && o.y == d.y && o.w == d.w && o.h == d.h &&
             o.confidence == static_cast<float>(d.confidence);
    });
    EXPECT_NE(it, ods.end()) << "no object-detection meta for " << describe(std::vector<Det>{d}) << " in "
                             << describe(ods);
    if (it != ods.end()) ods.erase(it);
  }
  return ods;
}

}  // namespace

TEST(SsdDetectAnalytics, OneObjectDetectionMtdPerRegionOfInterest) {
  const int W = 224, H = 224;
  GstHarness* h = detect_harness();
  int found = 0, regions = 0;
  const int kSeeds = 8;
  for (uint64_t seed = 1; seed <= kSeeds; seed++) {
    const ssdtrain::SynthSample s = one_object(W, H, seed);
    ASSERT_EQ(s.boxes.size(), 1u);
    const auto& truth = s.boxes[0];
    auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
    GstBuffer* out = run_frame(h, *f);
    ASSERT_NE(out, nullptr);
    const std::vector<Det> dets = detections(out);
    int relation_metas = 0;
    const std::vector<OdMtd> ods = od_mtds(out, &relation_metas);
    gst_buffer_unref(out);
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + describe(truth) + "; regions " + describe(dets) +
                 "; analytics " + describe(ods));
    EXPECT_EQ(relation_metas, dets.empty() ? 0 : 1);
    EXPECT_EQ(ods.size(), dets.size());
    EXPECT_TRUE(unmatched(dets, ods).empty());
    regions += static_cast<int>(dets.size());
    // The known object itself, read from the analytics meta alone.
    for (const OdMtd& o : ods) {
      Det d;
      d.x = o.x, d.y = o.y, d.w = o.w, d.h = o.h;
      if (o.label == labels()[truth.label] && iou(d, truth) > 0.7) {
        found++;
        break;
      }
    }
  }
  std::printf("analytics meta: %d regions; the known object with IoU > 0.7 in %d of %d frames\n", regions,
              found, kSeeds);
  EXPECT_GE(found, 6);
  gst_harness_teardown(h);
}

// A frame that arrives with an upstream analyser's relation meta keeps that one meta, with the
// upstream entry and ours; frames that carry the last detections (interval) get the meta too.
TEST(SsdDetectAnalytics, AddsToAnUpstreamRelationMetaAndOnCarriedFrames) {
  auto f = make_frame(one_object(320, 240, 3).image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("interval=2");
  GstBuffer* out = run_frame(h, *f);   // analysed
  ASSERT_NE(out, nullptr);
  const std::vector<Det> dets = detections(out);
  ASSERT_FALSE(dets.empty()) << "the model finds nothing in the frame";
  int relation_metas = 0;
  std::vector<OdMtd> ods = od_mtds(out, &relation_metas);
  gst_buffer_unref(out);
  EXPECT_EQ(relation_metas, 1);
  EXPECT_TRUE(unmatched(dets, ods).empty()) << describe(ods);

  GstBuffer* in = gst_buffer_copy(f->buffer);
  GstAnalyticsRelationMeta* upstream = gst_buffer_add_analytics_relation_meta(in);
  ASSERT_NE(upstream, nullptr);
  const GQuark upstream_type = g_quark_from_string("upstream-object");
  ASSERT_TRUE(gst_analytics_relation_meta_add_od_mtd(upstream, upstream_type, 1, 2, 30, 40, 0.25f, nullptr));
  ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);   // carries the first frame's detections
  out = gst_harness_pull(h);
  ASSERT_NE(out, nullptr);
  const std::vector<Det> carried = detections(out);
  ods = od_mtds(out, &relation_metas);
  gst_buffer_unref(out);
  EXPECT_TRUE(same(carried, dets)) << describe(carried) << " vs " << describe(dets);
  EXPECT_EQ(relation_metas, 1);
  EXPECT_EQ(ods.size(), carried.size() + 1) << describe(ods);
  const std::vector<OdMtd> rest = unmatched(carried, ods);
  ASSERT_EQ(rest.size(), 1u) << describe(rest);
  EXPECT_EQ(rest[0].label, "upstream-object");
  EXPECT_EQ(rest[0].x, 1);
  EXPECT_EQ(rest[0].y, 2);
  EXPECT_EQ(rest[0].w, 30);
  EXPECT_EQ(rest[0].h, 40);
  EXPECT_EQ(rest[0].confidence, 0.25f);
  gst_harness_teardown(h);
}
#endif  // HAVE_GST_ANALYTICS

// After each caps change the element gives what a fresh element gives for that frame: the
// first frame of the new size is analysed (interval restarts) and nothing of the old size is
// carried over.
TEST(SsdDetect, ResolutionChangeMidStream) {
  const ssdtrain::SynthSample a = one_object(320, 240, 4);
  const ssdtrain::SynthSample b = one_object(641, 479, 4);   // same scene, other size
  auto fa = make_frame(a.image, GST_VIDEO_FORMAT_I420);
  auto fb = make_frame(b.image, GST_VIDEO_FORMAT_BGRx, 24);
  auto fresh = [](const Frame& f) {
    GstHarness* h = detect_harness("interval=2");
    auto d = detect_once(h, f);
    gst_harness_teardown(h);
    return d;
  };
  const auto ref_a = fresh(*fa), ref_b = fresh(*fb);
  ASSERT_TRUE(!ref_a.empty() || !ref_b.empty()) << "the model finds nothing in either frame";
  GstHarness* h = detect_harness("interval=2");
  for (int round = 0; round < 2; round++) {
    for (const Frame* f : {fa.get(), fb.get()}) {
      const auto& ref = f == fa.get() ? ref_a : ref_b;
      const int w = GST_VIDEO_INFO_WIDTH(&f->info), ht = GST_VIDEO_INFO_HEIGHT(&f->info);
      const auto dets = detect_once(h, *f);
      ASSERT_EQ(dets.size(), ref.size()) << w << "x" << ht << " round " << round << ": " << describe(dets)
                                         << " vs " << describe(ref);
      for (size_t i = 0; i < dets.size(); i++) {
        EXPECT_EQ(dets[i].label, ref[i].label);
        EXPECT_EQ(dets[i].x, ref[i].x);
        EXPECT_EQ(dets[i].y, ref[i].y);
        EXPECT_EQ(dets[i].w, ref[i].w);
        EXPECT_EQ(dets[i].h, ref[i].h);
        EXPECT_NEAR(dets[i].confidence, ref[i].confidence, 1e-5);
        EXPECT_LE(dets[i].x + dets[i].w, w);
        EXPECT_LE(dets[i].y + dets[i].h, ht);
      }
    }
  }
  gst_harness_teardown(h);
}

TEST(SsdDetect, ThresholdChangesWhilePlaying) {
  const ssdtrain::SynthSample s = one_object(320, 240, 6);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("threshold=0.05");
  const auto low = detect_once(h, *f);
  ASSERT_FALSE(low.empty());
  double top = 0;
  for (const Det& d : low) top = std::max(top, d.confidence);
  // Above the best confidence nothing is left; the change applies to the next frame.
  g_object_set(h->element, "threshold", static_cast<gfloat>(std::min(1.0, top + 0.01)), nullptr);
  EXPECT_TRUE(detect_once(h, *f).empty());
  g_object_set(h->element, "threshold", 0.05f, "max-detections", 1, nullptr);
  EXPECT_EQ(detect_once(h, *f).size(), 1u);
  gst_harness_teardown(h);

  // With interval, the frame after a change of threshold, max-detections or nms-iou is analysed
  // anew: the boxes carried from the last analysed frame had the old settings (below the new
  // threshold, more than the new count).
  for (const char* change : {"threshold", "max-detections", "nms-iou"}) {
    SCOPED_TRACE(change);
    GstHarness* every5 = detect_harness("threshold=0.05 interval=5");
    ASSERT_GT(detect_once(every5, *f).size(), 1u);
    if (std::string(change) == "threshold") g_object_set(every5->element, change, static_cast<gfloat>(top + 0.01), nullptr);
    if (std::string(change) == "max-detections") g_object_set(every5->element, change, 1, nullptr);
    if (std::string(change) == "nms-iou") g_object_set(every5->element, change, 0.3f, nullptr);
    const auto next = detect_once(every5, *f);
    EXPECT_TRUE(next.empty() || all_carried(next, false));
    if (std::string(change) == "threshold") {
      EXPECT_TRUE(next.empty());
    } else if (std::string(change) == "max-detections") {
      EXPECT_EQ(next.size(), 1u);
    }
    const auto after = detect_once(every5, *f);
    EXPECT_TRUE(after.empty() || all_carried(after, true)) << "then carried again";
    EXPECT_EQ(after.size(), next.size());
    gst_harness_teardown(every5);
  }
}

// ---- region: the part of the frame the network sees

// Copies the w x h pixels at (fx, fy) of `from` to (tx, ty) of `to` (same format), plane by
// plane (x and y even for YUV formats).
void copy_rect(const GstVideoFrame* from, int fx, int fy, GstVideoFrame* to, int tx, int ty, int w, int h) {
  const GstVideoFormatInfo* fi = from->info.finfo;
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(from); p++) {
    guint c = 0;
    while (GST_VIDEO_FORMAT_INFO_PLANE(fi, c) != p) c++;
    const int ps = GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, c);
    const int sx = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(fi, c, fx), sy = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(fi, c, fy);
    const int dx = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(fi, c, tx), dy = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(fi, c, ty);
    const int cw = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(fi, c, w), ch = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(fi, c, h);
    const auto* src = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(from, p));
    auto* dst = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(to, p));
    for (int row = 0; row < ch; row++)
      std::memcpy(dst + (dy + row) * GST_VIDEO_FRAME_PLANE_STRIDE(to, p) + dx * ps,
                  src + (sy + row) * GST_VIDEO_FRAME_PLANE_STRIDE(from, p) + sx * ps, cw * ps);
  }
}

// Whether two frames of one format and size hold the same pixels (padding aside).
bool same_pixels(const GstVideoFrame* a, const GstVideoFrame* b) {
  const GstVideoFormatInfo* fi = a->info.finfo;
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(a); p++) {
    guint c = 0;
    while (GST_VIDEO_FORMAT_INFO_PLANE(fi, c) != p) c++;
    const size_t row_bytes = static_cast<size_t>(GST_VIDEO_FRAME_COMP_WIDTH(a, c)) * GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, c);
    for (int row = 0; row < GST_VIDEO_FRAME_COMP_HEIGHT(a, c); row++)
      if (std::memcmp(static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(a, p)) + row * GST_VIDEO_FRAME_PLANE_STRIDE(a, p),
                      static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(b, p)) + row * GST_VIDEO_FRAME_PLANE_STRIDE(b, p),
                      row_bytes) != 0)
        return false;
  }
  return true;
}

// The part (x, y, w, h) of a frame, copied plane by plane into a frame of its own (x and y even
// for YUV formats): the same pixels the element's region view reads in place.
std::unique_ptr<Frame> crop_frame(const Frame& f, int x, int y, int w, int h) {
  auto out = std::make_unique<Frame>();
  gst_video_info_set_format(&out->info, GST_VIDEO_INFO_FORMAT(&f.info), w, h);
  out->info.colorimetry = f.info.colorimetry;
  out->caps = gst_video_info_to_caps(&out->info);
  out->buffer = gst_buffer_new_allocate(nullptr, out->info.size, nullptr);
  GstVideoFrame in, o;
  EXPECT_TRUE(gst_video_frame_map(&in, &f.info, f.buffer, GST_MAP_READ));
  EXPECT_TRUE(gst_video_frame_map(&o, &out->info, out->buffer, GST_MAP_WRITE));
  copy_rect(&in, x, y, &o, 0, 0, w, h);
  gst_video_frame_unmap(&o);
  gst_video_frame_unmap(&in);
  return out;
}

// Detections of a frame of its own moved by (dx, dy) pixels: where they lie in a larger frame.
std::vector<Det> shifted(std::vector<Det> dets, int dx, int dy) {
  for (Det& d : dets) {
    d.x += dx;
    d.y += dy;
  }
  return dets;
}

// Two scenes in one 640x480 frame: A top left, B bottom right (the other quarters flat grey).
struct QuarterScenes {
  cv::Mat canvas = flat(640, 480);
  QuarterScenes() {
    one_object(320, 240, 3).image.copyTo(canvas(cv::Rect(0, 0, 320, 240)));
    one_object(320, 240, 7).image.copyTo(canvas(cv::Rect(320, 240, 320, 240)));
  }
};

// A format and extra ssddetect properties (a batching path): what the region and crop meta
// tests run with.
using RegionCase = std::tuple<GstVideoFormat, const char*>;
class SsdDetectRegion : public ::testing::TestWithParam<RegionCase> {};

// Packed and 4:2:0 formats, and a batching path on a 4:2:0 format.
std::vector<RegionCase> region_cases(GstVideoFormat batched) {
  return {RegionCase{GST_VIDEO_FORMAT_RGB, ""}, RegionCase{GST_VIDEO_FORMAT_BGRx, ""},
          RegionCase{GST_VIDEO_FORMAT_NV12, ""}, RegionCase{GST_VIDEO_FORMAT_I420, ""},
          RegionCase{batched, "batch-size=2 in-flight=2"}};
}

std::string region_case_name(const ::testing::TestParamInfo<RegionCase>& p) {
  return std::string(gst_video_format_to_string(std::get<0>(p.param))) + (*std::get<1>(p.param) ? "Batched" : "");
}

// With `region` the network sees that part of the frame only, read in place in every format
// (plane pointers moved; NV12/I420 x and y rounded down to even): the detections are those of
// the part copied into a frame of its own, moved to where the part lies; a region reaching
// past the frame is clipped.
TEST_P(SsdDetectRegion, SeesThePartAndReportsFrameCoordinates) {
  const auto [format, props] = GetParam();
  QuarterScenes q;
  auto f = make_frame(q.canvas, format);
  const bool yuv = GST_VIDEO_INFO_IS_YUV(&f->info);
  std::vector<Det> ref_a, ref_b;
  for (auto* ref : {&ref_a, &ref_b}) {
    const int x = ref == &ref_a ? 0 : 320, y = ref == &ref_a ? 0 : 240;
    auto part = crop_frame(*f, x, y, 320, 240);
    GstHarness* h = detect_harness();
    *ref = shifted(detect_once(h, *part), x, y);
    gst_harness_teardown(h);
  }
  ASSERT_FALSE(ref_a.empty());
  ASSERT_FALSE(ref_b.empty());
  GstHarness* whole = detect_harness();
  const auto all = detect_once(whole, *f);
  gst_harness_teardown(whole);
  ASSERT_FALSE(close(all, ref_b, 0.05)) << "the region must make a difference: " << describe(all);

  // B's quarter; for YUV from an odd corner, rounded down; reaching past the frame: clipped.
  const std::string region_b = yuv ? "321,241,400,300" : "320,240,400,300";
  for (const auto& [region, ref] : {std::pair{std::string("0,0,320,240"), &ref_a}, std::pair{region_b, &ref_b}}) {
    SCOPED_TRACE(region);
    GstHarness* h = detect_harness((std::string(props) + " region=" + region).c_str());
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    ASSERT_EQ(gst_harness_push(h, f->ref()), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));   // pushes a held frame out
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    const auto dets = detections(out);
    gst_buffer_unref(out);
    EXPECT_TRUE(close(dets, *ref, 1e-5)) << describe(dets) << "\nexpected " << describe(*ref);
    gst_harness_teardown(h);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, SsdDetectRegion, ::testing::ValuesIn(region_cases(GST_VIDEO_FORMAT_NV12)), region_case_name);

// ---- GstVideoCropMeta: upstream leaving the cropping to downstream

// A harness of `desc` whose sink supports GstVideoMeta and, with `crop`, GstVideoCropMeta (as
// xvimagesink and glimagesink do).
GstHarness* crop_harness(const std::string& desc, bool crop) {
  GstHarness* h = gst_harness_new_parse(desc.c_str());
  gst_harness_add_propose_allocation_meta(h, GST_VIDEO_META_API_TYPE, nullptr);
  if (crop) gst_harness_add_propose_allocation_meta(h, GST_VIDEO_CROP_META_API_TYPE, nullptr);
  return h;
}

// Pushes `f` and EOS (which pushes a held frame out) through `h` and pulls the frame.
GstBuffer* push_to_eos(GstHarness* h, const Frame& f) {
  gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
  EXPECT_EQ(gst_harness_push(h, f.ref()), GST_FLOW_OK);
  EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  return gst_harness_pull(h);
}

// `f`'s frame whole (a copy), with a GstVideoMeta of its size and a GstVideoCropMeta (x, y, w,
// h), and caps of caps_w x caps_h (default w x h): what videocrop sends when downstream takes
// crop metas. `info` stays the whole frame's.
std::unique_ptr<Frame> with_crop_meta(const Frame& f, int x, int y, int w, int h, int caps_w = 0, int caps_h = 0) {
  auto out = std::make_unique<Frame>();
  out->info = f.info;
  GstVideoInfo caps_info;
  gst_video_info_set_format(&caps_info, GST_VIDEO_INFO_FORMAT(&f.info), caps_w ? caps_w : w, caps_h ? caps_h : h);
  caps_info.colorimetry = f.info.colorimetry;
  out->caps = gst_video_info_to_caps(&caps_info);
  out->buffer = gst_buffer_copy_deep(f.buffer);
  gst_buffer_add_video_meta_full(out->buffer, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&f.info),
                                 GST_VIDEO_INFO_WIDTH(&f.info), GST_VIDEO_INFO_HEIGHT(&f.info),
                                 GST_VIDEO_INFO_N_PLANES(&f.info), out->info.offset, out->info.stride);
  GstVideoCropMeta* crop = gst_buffer_add_video_crop_meta(out->buffer);
  crop->x = x;
  crop->y = y;
  crop->width = w;
  crop->height = h;
  return out;
}

class SsdDetectCropMeta : public ::testing::TestWithParam<RegionCase> {};

// A frame of a batch whose picture leaves nothing to analyse (here a crop meta's picture one
// pixel wide, running off its buffer) has no detections, as without batching: not the boxes of
// the frame before it in its batch.
TEST(SsdDetectBatching, AFrameWithNothingToAnalyseHasNoDetections) {
  QuarterScenes q;
  auto f = make_frame(q.canvas, GST_VIDEO_FORMAT_RGB);
  auto seen = with_crop_meta(*f, 320, 240, 320, 240);    // B's quarter
  auto blind = with_crop_meta(*f, 639, 240, 320, 240);   // a column of it in the buffer
  for (const char* props : {"in-flight=1", "batch-size=2 in-flight=1", "batch-size=2 in-flight=2"}) {
    SCOPED_TRACE(props);
    GstHarness* h = detect_harness(props);
    gst_harness_set_src_caps(h, gst_caps_ref(seen->caps));
    ASSERT_EQ(gst_harness_push(h, seen->ref()), GST_FLOW_OK);
    ASSERT_EQ(gst_harness_push(h, blind->ref()), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
    std::vector<std::vector<Det>> out;
    for (int i = 0; i < 2; i++) {
      GstBuffer* b = gst_harness_pull(h);
      ASSERT_NE(b, nullptr) << i;
      out.push_back(detections(b));
      gst_buffer_unref(b);
    }
    EXPECT_FALSE(out[0].empty());
    EXPECT_TRUE(out[1].empty()) << describe(out[1]);
    gst_harness_teardown(h);
  }
}

// Upstream crops: with a sink that supports crop metas behind ssddetect, videocrop still copies
// the picture out (see OffersNoCropMetaSupport). A frame that comes with a crop meta all the
// same is analysed in its picture, the caps' size at the crop's offset, read in place, and its
// boxes are the picture's; `region` is given in the picture; at an odd offset in NV12/I420 the
// network reads nothing outside the picture.
TEST_P(SsdDetectCropMeta, SeesThePictureOfAFrameWithACropMeta) {
  const auto [format, props] = GetParam();
  QuarterScenes q;
  auto f = make_frame(q.canvas, format);
  auto detect = [&, props = props](const Frame& frame, const std::string& more = "") {
    GstHarness* h = crop_harness(std::string("ssddetect ") + props + " " + more, false);
    GstBuffer* out = push_to_eos(h, frame);
    EXPECT_NE(out, nullptr);
    std::vector<Det> dets;
    if (out) dets = detections(out);
    if (out) gst_buffer_unref(out);
    gst_harness_teardown(h);
    return dets;
  };
  const auto ref_b = detect(*crop_frame(*f, 320, 240, 320, 240));        // B's quarter as a frame of its own
  const auto ref_b_part = detect(*crop_frame(*f, 320, 240, 160, 120));   // its top-left quarter
  const auto ref_a = detect(*crop_frame(*f, 0, 0, 320, 240));
  ASSERT_FALSE(ref_b.empty());
  ASSERT_FALSE(close(ref_b, ref_b_part, 0.05)) << "the region must make a difference: " << describe(ref_b);
  ASSERT_FALSE(close(ref_a, ref_b, 0.05));
  auto expect_close = [](const std::vector<Det>& got, const std::vector<Det>& want) {
    EXPECT_TRUE(close(got, want, 1e-5)) << describe(got) << "\nexpected " << describe(want);
    for (const Det& d : got) {
      EXPECT_NEAR(d.x_min * 320, d.x, 1);
      EXPECT_NEAR(d.y_max * 240, d.y + d.h, 1);
    }
  };
  {
    SCOPED_TRACE("videocrop in front, a sink that takes crop metas behind");
    GstHarness* h = crop_harness(std::string("videocrop left=320 top=240 ! ssddetect ") + props, true);
    GstBuffer* out = push_to_eos(h, *f);
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(gst_buffer_get_video_crop_meta(out), nullptr) << "videocrop should have copied the picture out";
    expect_close(detections(out), ref_b);
    gst_buffer_unref(out);
    gst_harness_teardown(h);
  }
  {
    SCOPED_TRACE("a crop meta");
    auto cropped = with_crop_meta(*f, 320, 240, 320, 240);
    expect_close(detect(*cropped), ref_b);
    expect_close(detect(*cropped, "region=0,0,160,120"), ref_b_part);
    // A crop meta whose size is not the caps' (videocrop sets both alike): the caps give the
    // size, in which every element reads the regions.
    expect_close(detect(*with_crop_meta(*f, 320, 240, 160, 120, 320, 240)), ref_b);
    // A picture running off the buffer (the caps' size from the crop's offset): the part of it
    // in the buffer is analysed, boxes in the caps' units.
    const auto ref_edge = detect(*crop_frame(*f, 400, 240, 240, 240));
    ASSERT_FALSE(ref_edge.empty());
    expect_close(detect(*with_crop_meta(*f, 400, 240, 320, 240)), ref_edge);
  }
  if (GST_VIDEO_INFO_IS_YUV(&f->info)) {
    SCOPED_TRACE("a crop meta at an odd offset");
    // The pixels left of and above the picture painted white change nothing.
    auto cropped = with_crop_meta(*f, 321, 241, 318, 238);
    cv::Mat painted = q.canvas.clone();
    painted(cv::Rect(0, 240, 640, 1)).setTo(cv::Scalar(255, 255, 255));
    painted(cv::Rect(320, 0, 1, 480)).setTo(cv::Scalar(255, 255, 255));
    auto pf = make_frame(painted, format);
    const auto plain = detect(*cropped);
    ASSERT_FALSE(plain.empty());
    EXPECT_TRUE(close(detect(*with_crop_meta(*pf, 321, 241, 318, 238)), plain, 1e-6)) << "read outside the picture";
  }
  // A frame larger than the caps (its video meta's size) without a crop meta: the caps-sized
  // part at its top left is the picture (here A's quarter), as gst_video_frame_map() reads it.
  auto larger = with_crop_meta(*f, 0, 0, 320, 240);
  gst_buffer_remove_meta(larger->buffer, reinterpret_cast<GstMeta*>(gst_buffer_get_video_crop_meta(larger->buffer)));
  expect_close(detect(*larger), ref_a);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, SsdDetectCropMeta, ::testing::ValuesIn(region_cases(GST_VIDEO_FORMAT_I420)), region_case_name);

// Neither element that reads or draws pixels offers upstream the crop meta support of a sink
// behind it (videocrop keeps the regions of an element before it in the uncropped frame's
// coordinates: they would be drawn and exported in the wrong place); video meta support is
// offered.
TEST(SsdDetect, OffersNoCropMetaSupport) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  for (const char* element : {"ssddetect", "ssdoverlay", "ssddetect batch-size=2"}) {
    SCOPED_TRACE(element);
    GstHarness* h = crop_harness(element, true);
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    GstQuery* q = gst_query_new_allocation(f->caps, TRUE);
    EXPECT_TRUE(gst_pad_peer_query(h->srcpad, q));
    EXPECT_TRUE(gst_query_find_allocation_meta(q, GST_VIDEO_META_API_TYPE, nullptr));
    EXPECT_FALSE(gst_query_find_allocation_meta(q, GST_VIDEO_CROP_META_API_TYPE, nullptr));
    gst_query_unref(q);
    gst_harness_teardown(h);
  }
}

class SsdOverlayCropMeta : public ::testing::TestWithParam<GstVideoFormat> {};

// ssdoverlay draws a frame that comes with a crop meta in its picture: the whole frame comes out
// as it went in, but for the picture, which is what the copied picture comes out as (box,
// caption and all; nothing drawn outside it). Odd offsets for the packed formats.
TEST_P(SsdOverlayCropMeta, DrawsInThePictureOnly) {
  const GstVideoFormat format = GetParam();
  QuarterScenes q;
  auto f = make_frame(q.canvas, format);
  const bool yuv = GST_VIDEO_INFO_IS_YUV(&f->info);
  const int x = yuv ? 300 : 301, y = yuv ? 220 : 221, w = 640 - 10 - x, h = 480 - 20 - y;
  auto part = crop_frame(*f, x, y, w, h);
  auto cropped = with_crop_meta(*f, x, y, w, h);
  GstBuffer* outs[2];
  for (const bool crop : {true, false}) {
    GstHarness* hh = crop_harness("ssddetect threshold=0.1 ! ssdoverlay", false);
    outs[crop] = push_to_eos(hh, crop ? *cropped : *part);
    ASSERT_NE(outs[crop], nullptr);
    ASSERT_FALSE(detections(outs[crop]).empty());
    gst_harness_teardown(hh);
  }
  // Expected: the input with the copied picture's drawing pasted in.
  GstBuffer* expected = gst_buffer_copy_deep(f->buffer);
  GstVideoFrame copied, exp, got, untouched;
  ASSERT_TRUE(gst_video_frame_map(&copied, &part->info, outs[false], GST_MAP_READ));
  ASSERT_TRUE(gst_video_frame_map(&untouched, &part->info, part->buffer, GST_MAP_READ));
  ASSERT_TRUE(gst_video_frame_map(&exp, &f->info, expected, GST_MAP_WRITE));
  ASSERT_TRUE(gst_video_frame_map(&got, &f->info, outs[true], GST_MAP_READ));
  EXPECT_FALSE(same_pixels(&copied, &untouched)) << "nothing drawn";
  copy_rect(&copied, 0, 0, &exp, x, y, w, h);
  EXPECT_TRUE(same_pixels(&got, &exp));
  for (GstVideoFrame* m : {&copied, &untouched, &exp, &got}) gst_video_frame_unmap(m);
  gst_buffer_unref(expected);
  gst_buffer_unref(outs[0]);
  gst_buffer_unref(outs[1]);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, SsdOverlayCropMeta, ::testing::ValuesIn(kFormats),
                         [](const ::testing::TestParamInfo<GstVideoFormat>& i) {
                           return std::string(gst_video_format_to_string(i.param));
                         });

// The region changes while playing (the next frame is analysed, whatever interval); one outside
// the frame sees nothing, which a warning says, once (there was none before, 2026-12-06); a
// malformed value is a warning and leaves the region as it was.
TEST(SsdDetectRegion, ChangesWhilePlayingAndRefusesMalformedValues) {
  QuarterScenes q;
  auto f = make_frame(q.canvas, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("interval=10");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  const auto all = detect_once(h, *f);
  ASSERT_FALSE(all.empty());
  g_object_set(h->element, "region", "640,0,100,100", nullptr);   // right of the frame
  EXPECT_TRUE(detect_once(h, *f).empty());
  const std::string outside = next_warning(bus);
  EXPECT_NE(outside.find("region 640,0,100,100 leaves nothing of the 640x480 frame"), std::string::npos) << outside;
  EXPECT_TRUE(detect_once(h, *f).empty());
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr) << "warned again for the same region";
  g_object_set(h->element, "region", "320,240,320,240", nullptr);
  const auto b = detect_once(h, *f);
  ASSERT_FALSE(b.empty());
  for (const Det& d : b) EXPECT_TRUE(d.x >= 320 && d.y >= 240) << describe(b);
  for (const char* bad : {"1,2,3", "-1,0,10,10", "0,0,0,10", "a,b,c,d", "1,2,3,4,5"}) {
    g_object_set(h->element, "region", bad, nullptr);
    const std::string warning = next_warning(bus);
    EXPECT_NE(warning.find(bad), std::string::npos) << warning;
    gchar* region = nullptr;
    g_object_get(h->element, "region", &region, nullptr);
    EXPECT_STREQ(region, "320,240,320,240") << bad;
    g_free(region);
  }
  EXPECT_TRUE(same(detect_once(h, *f), b));
  g_object_set(h->element, "region", nullptr, nullptr);   // the whole frame again
  EXPECT_TRUE(same(detect_once(h, *f), all));
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
  // Set before the start (a launch line's typo), a malformed value fails the start, named.
  for (const char* bad : {"0,240,640", "abc"}) {
    const std::string msg = failing_start(std::string("videotestsrc num-buffers=1 ! ssddetect region=") + bad +
                                          " ! fakesink");
    EXPECT_NE(msg.find(std::string("region \"") + bad), std::string::npos) << msg;
  }
}

// A malformed region set while the element starts (while start() loads the model) is refused
// as one set while playing is: a warning, the region in use and the property unchanged. Set
// before the start takes the settings, it fails the start instead. Never is it silently
// taken. The setter runs at delays swept across the start so that some land in the load.
TEST(SsdDetectRegion, MalformedValueSetDuringTheStartIsNeverSilentlyTaken) {
  int during = 0;
  for (int delay_us = 0; delay_us <= 60000; delay_us += 3000) {
    SCOPED_TRACE("delay " + std::to_string(delay_us) + " us");
    GstElement* pipeline =
        gst_parse_launch("videotestsrc num-buffers=1 ! ssddetect name=d region=8,8,100,100 ! fakesink", nullptr);
    ASSERT_NE(pipeline, nullptr);
    GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
    std::thread setter([d, delay_us] {
      g_usleep(delay_us);
      g_object_set(d, "region", "1,2,3", nullptr);
    });
    const GstStateChangeReturn ret = gst_element_set_state(pipeline, GST_STATE_PAUSED);
    setter.join();
    gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND);
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg = gst_bus_pop_filtered(bus, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING));
    ASSERT_NE(msg, nullptr) << "the malformed region was taken without an error or a warning";
    GError* e = nullptr;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      gst_message_parse_error(msg, &e, nullptr);
      EXPECT_EQ(ret, GST_STATE_CHANGE_FAILURE);
      EXPECT_NE(std::string(e->message).find("region \"1,2,3\""), std::string::npos) << e->message;
    } else {
      gst_message_parse_warning(msg, &e, nullptr);
      EXPECT_NE(std::string(e->message).find("Region not changed"), std::string::npos) << e->message;
      gchar* region = nullptr;
      g_object_get(d, "region", &region, nullptr);
      EXPECT_STREQ(region, "8,8,100,100");
      g_free(region);
      during++;
    }
    g_error_free(e);
    gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(d);
    gst_object_unref(pipeline);
  }
  std::printf("malformed region set during or after the start: %d of 21 delays\n", during);
}

// ---- batching: batch-size, batch-timeout, in-flight

constexpr GstClockTime kFrameStep = 40 * GST_MSECOND;   // 25 fps

// A copy of the frame (sharing its memory) stamped as frame `index` of a 25 fps stream.
GstBuffer* stamped(const Frame& f, int index) {
  GstBuffer* b = gst_buffer_copy(f.buffer);
  GST_BUFFER_PTS(b) = index * kFrameStep;
  GST_BUFFER_DURATION(b) = kFrameStep;
  return b;
}

GstCaps* caps_25fps(const Frame& f) {
  GstCaps* c = gst_caps_copy(f.caps);
  gst_caps_set_simple(c, "framerate", GST_TYPE_FRACTION, 25, 1, nullptr);
  return c;
}

// Pulls every buffer the harness holds: (frame index from the PTS, detections).
std::vector<std::pair<int, std::vector<Det>>> pull_all(GstHarness* h) {
  std::vector<std::pair<int, std::vector<Det>>> out;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    out.emplace_back(static_cast<int>(GST_BUFFER_PTS(b) / kFrameStep), detections(b));
    gst_buffer_unref(b);
  }
  return out;
}

// Pulls `n` buffers, waiting for each (the element's output thread pushes them).
std::vector<std::pair<int, std::vector<Det>>> pull_n(GstHarness* h, size_t n) {
  std::vector<std::pair<int, std::vector<Det>>> out;
  for (size_t i = 0; i < n; i++) {
    GstBuffer* b = gst_harness_pull(h);   // waits up to 60 s
    if (!b) break;
    out.emplace_back(static_cast<int>(GST_BUFFER_PTS(b) / kFrameStep), detections(b));
    gst_buffer_unref(b);
  }
  return out;
}

// Holds the element's sink pad stream lock, as a streaming thread in its chain does (a
// recursive lock: this thread's own pushes still go in). The element's output thread, which
// takes it with a try-lock, can then neither collect computed batches nor run a partial batch by
// wall-clock time; it still pushes the frames the streaming thread completed.
class StreamLockHeld {
 public:
  explicit StreamLockHeld(GstHarness* h) : pad_(gst_element_get_static_pad(h->element, "sink")) {
    GST_PAD_STREAM_LOCK(pad_);
  }
  ~StreamLockHeld() {
    GST_PAD_STREAM_UNLOCK(pad_);
    gst_object_unref(pad_);
  }
  StreamLockHeld(const StreamLockHeld&) = delete;
  StreamLockHeld& operator=(const StreamLockHeld&) = delete;

 private:
  GstPad* pad_;
};

// Up to `n` frames the element's output thread pushes (it pushes them without a new frame
// coming), waiting up to 20 s: each one's frame number (25 fps) and detections.
std::vector<std::pair<int, std::vector<Det>>> pull_pushed(GstHarness* h, size_t n) {
  std::vector<std::pair<int, std::vector<Det>>> out;
  const auto t0 = std::chrono::steady_clock::now();
  while (out.size() < n && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
    if (GstBuffer* b = gst_harness_try_pull(h)) {
      out.emplace_back(static_cast<int>(GST_BUFFER_PTS(b) / kFrameStep), detections(b));
      gst_buffer_unref(b);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return out;
}

// interval=2 with a batch in flight (batch-size=1 in-flight=2, the CPU default on 2 cores): a
// skipped frame that comes while the analysed one before it computes goes out once that one is
// computed, carrying its detections, without waiting for the next frame (a stalled source may
// send none for long). The stream lock held keeps the output thread from collecting frame 0
// before frame 1 comes.
TEST(SsdDetectBatching, SkippedFramesDoNotWaitForTheNextAnalysedFrame) {
  TwoScenes s;
  ASSERT_FALSE(s.ref_a.empty());
  GstHarness* h = detect_harness("batch-size=1 in-flight=2 interval=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  {
    StreamLockHeld lock(h);
    ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 0)), GST_FLOW_OK);
    ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 1)), GST_FLOW_OK);
  }
  const auto out = pull_pushed(h, 2);
  ASSERT_EQ(out.size(), 2u) << "the skipped frame waited for the next frame";
  EXPECT_EQ(out[0].first, 0);
  EXPECT_EQ(out[1].first, 1);
  EXPECT_TRUE(same_batched(out[0].second, s.ref_a)) << describe(out[0].second);
  EXPECT_TRUE(same(out[1].second, out[0].second)) << "frame 1 must carry frame 0's detections";
  EXPECT_TRUE(all_carried(out[1].second, true));
  gst_harness_teardown(h);
}

// batch-size=2 in-flight=2 interval=2: frame 3, skipped after the batch of frames 0-2, goes out
// with that batch, carrying frame 2's detections, while frame 4 (analysed) waits for its batch
// to fill. (Frame 3 waited with frame 4 for frame 6 before, 2026-12-06: 4 frame times more.)
TEST(SsdDetectBatching, SkippedFramesGoOutWithTheBatchAheadOfThem) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b));
  GstHarness* h = detect_harness("batch-size=2 in-flight=2 interval=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  {
    StreamLockHeld lock(h);   // the output thread does not collect the batch meanwhile
    for (int i = 0; i < 5; i++) ASSERT_EQ(gst_harness_push(h, stamped(i == 2 ? *s.b : *s.a, i)), GST_FLOW_OK);
  }
  const auto out = pull_pushed(h, 4);
  ASSERT_EQ(out.size(), 4u) << "frame 3 waited for the next batch";
  for (int i = 0; i < 4; i++) EXPECT_EQ(out[i].first, i);
  EXPECT_TRUE(same_batched(out[2].second, s.ref_b)) << describe(out[2].second);
  EXPECT_TRUE(same(out[3].second, out[2].second)) << "frame 3 must carry frame 2's detections";
  EXPECT_TRUE(all_carried(out[3].second, true));
  EXPECT_EQ(gst_harness_try_pull(h), nullptr) << "frame 4 went out before its batch was full";
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  GstBuffer* last = gst_harness_pull(h);   // EOS runs the partial batch
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(GST_BUFFER_PTS(last) / kFrameStep, 4u);
  gst_buffer_unref(last);
  gst_harness_teardown(h);
}

// batch-size=3, in-flight=2: frames are held until their batch is full; a submitted batch's
// frames then come out, in order, once it is computed, without waiting for the next frame
// (the element's output thread pushes them), each with its own scene's detections (as a fresh
// one-frame element gives them); EOS pushes everything still held.
TEST(SsdDetectBatching, HoldsFramesAndKeepsOrderAndDetections) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b));
  GstHarness* h = detect_harness("batch-size=3 in-flight=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  auto scene = [&](int i) -> const Frame& { return i % 3 == 1 ? *s.b : *s.a; };
  std::vector<std::pair<int, std::vector<Det>>> out;
  for (int i = 0; i < 6; i++) {
    ASSERT_EQ(gst_harness_push(h, stamped(scene(i), i)), GST_FLOW_OK);
    if (i % 3 != 2) {
      EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u) << "frame " << i << " came out before its batch was full";
    } else {
      auto batch = pull_n(h, 3);   // no further frame is pushed before these come out
      ASSERT_EQ(batch.size(), 3u) << "a computed batch must come out without the next frame";
      out.insert(out.end(), batch.begin(), batch.end());
    }
  }
  ASSERT_EQ(gst_harness_push(h, stamped(scene(6), 6)), GST_FLOW_OK);
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  auto rest = pull_all(h);
  ASSERT_EQ(rest.size(), 1u) << "EOS must push the held frames out";
  out.insert(out.end(), rest.begin(), rest.end());
  for (int i = 0; i < 7; i++) {
    EXPECT_EQ(out[i].first, i) << "frames out of order";
    EXPECT_TRUE(same_batched(out[i].second, i % 3 == 1 ? s.ref_b : s.ref_a))
        << "frame " << i << ": " << describe(out[i].second);
  }
  GstEvent* eos = nullptr;
  while (GstEvent* e = gst_harness_try_pull_event(h)) {
    if (GST_EVENT_TYPE(e) == GST_EVENT_EOS) eos = gst_event_ref(e);
    gst_event_unref(e);
  }
  EXPECT_NE(eos, nullptr) << "EOS must follow the frames";
  if (eos) gst_event_unref(eos);
  gst_harness_teardown(h);
}

// While frames are held for a batch: a frame dropped as late (QoS) leaves a DISCONT on the first
// frame after it, as GstBaseTransform does without batching, not on a frame held from before
// it; an incoming DISCONT stays on its own frame only. The QoS message of the drop counts the
// frames pushed before it as processed; the position query on the source pad tells the end of
// the last frame out, on the sink pad that of the last frame in.
TEST(SsdDetectBatching, DiscontMarksTheFrameAfterADropAndNoOther) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("batch-size=2");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, caps_25fps(*f));
  std::vector<std::pair<int, bool>> out;   // (frame, DISCONT)
  auto pull_two = [&] {
    for (int k = 0; k < 2; k++) {
      GstBuffer* b = gst_harness_pull(h);
      ASSERT_NE(b, nullptr);
      out.emplace_back(static_cast<int>(GST_BUFFER_PTS(b) / kFrameStep), GST_BUFFER_IS_DISCONT(b));
      gst_buffer_unref(b);
    }
  };
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 1)), GST_FLOW_OK);
  pull_two();
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 2)), GST_FLOW_OK);
  // The sink reports frame 3 too late to be shown: it is dropped, and frame 4 completes the batch.
  ASSERT_TRUE(gst_harness_push_upstream_event(h, gst_event_new_qos(GST_QOS_TYPE_UNDERFLOW, 1.0, 0, 3 * kFrameStep)));
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 3)), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 4)), GST_FLOW_OK);
  pull_two();
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 5)), GST_FLOW_OK);
  GstBuffer* marked = stamped(*f, 6);
  GST_BUFFER_FLAG_SET(marked, GST_BUFFER_FLAG_DISCONT);
  ASSERT_EQ(gst_harness_push(h, marked), GST_FLOW_OK);
  pull_two();
  EXPECT_EQ(out, (std::vector<std::pair<int, bool>>{
                     {0, false}, {1, false}, {2, false}, {4, true}, {5, false}, {6, true}}));
  GstMessage* qos = gst_bus_pop_filtered(bus, GST_MESSAGE_QOS);
  ASSERT_NE(qos, nullptr) << "no QoS message for the dropped frame";
  GstFormat format;
  guint64 processed = 0, dropped = 0;
  gst_message_parse_qos_stats(qos, &format, &processed, &dropped);
  EXPECT_EQ(format, GST_FORMAT_BUFFERS);
  EXPECT_EQ(processed, 2u) << "frames 0 and 1 were out when frame 3 was dropped";
  EXPECT_EQ(dropped, 1u);
  gst_message_unref(qos);
  gint64 position = -1;
  EXPECT_TRUE(gst_pad_peer_query_position(h->sinkpad, GST_FORMAT_TIME, &position));
  EXPECT_EQ(position, 7 * kFrameStep);
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 7)), GST_FLOW_OK);   // held
  EXPECT_TRUE(gst_pad_peer_query_position(h->srcpad, GST_FORMAT_TIME, &position));
  EXPECT_EQ(position, 8 * kFrameStep);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// While frames are held for a batch, a tag or custom event waits with them and goes downstream
// right after the frame it came after: it neither pushes the held frames out (cutting the batch
// short) nor overtakes them. EOS still pushes everything out before it.
TEST(SsdDetectBatching, TagsAndCustomEventsKeepTheirPlaceWithoutEndingTheBatch) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  struct Seen {
    std::mutex lock;
    std::vector<std::string> items;   // what reached the harness's sink pad, in order
  };
  auto record = [](GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* seen = static_cast<Seen*>(data);
    std::string item;
    if (GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info); b && (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER)) {
      item = "frame " + std::to_string(GST_BUFFER_PTS(b) / kFrameStep);
    } else if (GstEvent* e = GST_PAD_PROBE_INFO_EVENT(info)) {
      if (GST_EVENT_TYPE(e) == GST_EVENT_TAG) {
        GstTagList* tags = nullptr;
        gchar* title = nullptr;
        gst_event_parse_tag(e, &tags);
        gst_tag_list_get_string(tags, GST_TAG_TITLE, &title);
        item = std::string("tag ") + (title ? title : "");
        g_free(title);
      } else if (GST_EVENT_TYPE(e) == GST_EVENT_CUSTOM_DOWNSTREAM) {
        item = std::string("custom ") + gst_structure_get_name(gst_event_get_structure(e));
      } else if (GST_EVENT_TYPE(e) == GST_EVENT_EOS) {
        item = "eos";
      }
    }
    if (!item.empty()) {
      std::lock_guard<std::mutex> guard(seen->lock);
      seen->items.push_back(item);
    }
    return GST_PAD_PROBE_OK;
  };
  for (const char* props : {"batch-size=2", "batch-size=2 in-flight=2"}) {
    SCOPED_TRACE(props);
    Seen seen;
    GstHarness* h = detect_harness(props);
    gst_pad_add_probe(h->sinkpad,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                      record, &seen, nullptr);
    gst_harness_set_src_caps(h, caps_25fps(*f));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_tag(gst_tag_list_new(GST_TAG_TITLE, "a", nullptr))));
    EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u) << "the tag pushed the held frame out";
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 1)), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(
        h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, gst_structure_new_empty("marker"))));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 2)), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
    EXPECT_EQ(pull_all(h).size(), 3u);
    {
      std::lock_guard<std::mutex> guard(seen.lock);
      EXPECT_EQ(seen.items, (std::vector<std::string>{"frame 0", "tag a", "frame 1", "custom marker", "frame 2", "eos"}));
    }
    // A flush drops the held frames and their events (the suite's leak tracer sees any kept)...
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_tag(gst_tag_list_new(GST_TAG_TITLE, "b", nullptr))));
    ASSERT_TRUE(gst_harness_push_event(
        h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, gst_structure_new_empty("dropped"))));
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
    // ... but the tag, a sticky event upstream saw delivered, outlives the flush (as sticky
    // events do) and goes before the next frame.
    {
      std::lock_guard<std::mutex> guard(seen.lock);
      seen.items.clear();
    }
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 1)), GST_FLOW_OK);
    EXPECT_EQ(pull_n(h, 2).size(), 2u);
    {
      std::lock_guard<std::mutex> guard(seen.lock);
      EXPECT_EQ(seen.items, (std::vector<std::string>{"tag b", "frame 0", "frame 1"}));
    }
    gst_harness_teardown(h);
  }
}

// With frames held for a batch or in flight, a change of classes, class-thresholds or region
// applies from the next frame on: the frames that came before keep the settings they came with.
TEST(SsdDetectBatching, SettingsChangesApplyFromTheNextFrame) {
  const ssdtrain::SynthSample scene = one_object(320, 240, 2);
  auto f = make_frame(scene.image, GST_VIDEO_FORMAT_RGB);
  const std::vector<Det> all = reference(scene.image, "threshold=0.05");
  ASSERT_FALSE(all.empty());
  const std::string mine = all.front().label;
  const std::vector<Det> only_mine = reference(scene.image, ("threshold=0.05 classes=" + mine).c_str());
  const std::vector<Det> others_high =
      reference(scene.image, ("threshold=0.99 class-thresholds=" + mine + "=0.05").c_str());
  ASSERT_FALSE(same(all, only_mine));
  GstHarness* h = detect_harness("threshold=0.05 batch-size=3 in-flight=2");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  int index = 0;
  auto push = [&](int n) {
    for (int i = 0; i < n; i++) EXPECT_EQ(gst_harness_push(h, stamped(*f, index++)), GST_FLOW_OK);
  };
  std::vector<const std::vector<Det>*> expected;
  push(2);   // held
  expected.insert(expected.end(), 2, &all);
  g_object_set(h->element, "classes", mine.c_str(), nullptr);
  push(2);
  expected.insert(expected.end(), 2, &only_mine);
  g_object_set(h->element, "classes", nullptr, "threshold", 0.99f, "class-thresholds", (mine + "=0.05").c_str(), nullptr);
  push(1);
  expected.push_back(&others_high);
  g_object_set(h->element, "threshold", 0.05f, "class-thresholds", nullptr, nullptr);
  push(1);
  expected.push_back(&all);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  auto out = pull_n(h, expected.size());
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < out.size(); i++) {
    EXPECT_EQ(out[i].first, static_cast<int>(i));
    EXPECT_TRUE(same_batched(out[i].second, *expected[i]))
        << "frame " << i << ": " << describe(out[i].second) << "\nexpected " << describe(*expected[i]);
  }
  gst_harness_teardown(h);
}

// When no further frame comes (a stalled or sparse source), batch-timeout still bounds the wait
// of a partial batch, in wall-clock time: not before it, and without a new frame or EOS.
TEST(SsdDetectBatching, TimeoutRunsAPartialBatchWhenNoFrameComes) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=8 batch-timeout=300000000");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 0)), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, stamped(*s.b, 1)), GST_FLOW_OK);
  const auto out = pull_n(h, 2);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_GE(waited, std::chrono::milliseconds(300)) << "the partial batch ran before batch-timeout";
  EXPECT_EQ(out[0].first, 0);
  EXPECT_TRUE(same_batched(out[0].second, s.ref_a)) << describe(out[0].second);
  EXPECT_TRUE(same_batched(out[1].second, s.ref_b)) << describe(out[1].second);
  gst_harness_teardown(h);

  // The largest timeout waits (no overflow into "now"); EOS still pushes the frame out.
  h = detect_harness("batch-size=4 batch-timeout=18446744073709551615");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 0)), GST_FLOW_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  EXPECT_EQ(pull_all(h).size(), 1u);
  gst_harness_teardown(h);
}

// An application that stops the pipeline from a pad probe that runs on the element's output
// thread (GStreamer advises against state changes from streaming threads) and frees it at once:
// the thread, detached by the stop, holds its own reference on the element until it ends, so
// nothing it touches afterwards is freed under it (the suite's leak tracer sees the element
// finalized in the end).
TEST(SsdDetectBatching, StoppedFromItsOutputThreadAndFreedAtOnce) {
  GstElement* p = gst_parse_launch(
      "appsrc name=src format=time caps=video/x-raw,format=RGB,width=320,height=240,framerate=25/1 ! "
      "ssddetect name=d device=cpu batch-size=2 in-flight=2 ! fakesink sync=false",
      nullptr);
  ASSERT_NE(p, nullptr);
  struct Shared {
    GstElement* pipeline;
    std::atomic<GThread*> streaming{nullptr};
    std::atomic<bool> stopped{false};
    std::atomic<bool> finalized{false};
  } shared{p};
  GstElement* d = gst_bin_get_by_name(GST_BIN(p), "d");
  GstPad* in = gst_element_get_static_pad(d, "sink");
  GstPad* out = gst_element_get_static_pad(d, "src");
  gst_pad_add_probe(
      in, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer data) {
        static_cast<Shared*>(data)->streaming = g_thread_self();
        return GST_PAD_PROBE_OK;
      },
      &shared, nullptr);
  gst_pad_add_probe(
      out, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer data) {
        auto* sh = static_cast<Shared*>(data);
        if (g_thread_self() == sh->streaming || sh->stopped) return GST_PAD_PROBE_OK;
        gst_element_set_state(sh->pipeline, GST_STATE_NULL);   // from the output thread
        sh->stopped = true;
        g_usleep(300 * 1000);   // the application frees the pipeline meanwhile
        return GST_PAD_PROBE_OK;
      },
      &shared, nullptr);
  g_object_weak_ref(
      G_OBJECT(d), [](gpointer data, GObject*) { static_cast<Shared*>(data)->finalized = true; }, &shared);
  gst_object_unref(in);
  gst_object_unref(out);
  gst_object_unref(d);
  ASSERT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
  GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  for (int i = 0; i < 2; i++)   // one batch: computed on a worker, pushed by the output thread
    ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), stamped(*f, i)), GST_FLOW_OK);
  gst_object_unref(src);
  for (int i = 0; i < 200 && !shared.stopped; i++) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(shared.stopped) << "the output thread did not push the batch";
  gst_object_unref(p);   // while the probe still runs on the output thread
  EXPECT_FALSE(shared.finalized) << "the element went while its output thread was still in it";
  for (int i = 0; i < 400 && !shared.finalized; i++) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_TRUE(shared.finalized) << "the output thread ends and drops the element";
}

// A push by the output thread that fails (here: downstream flushing) reaches upstream as the
// result of its next push and of every one after it, as a queue's does, and the held frames
// are dropped (it was returned once, and the frames after went through the network and out
// again); a flush makes the element usable again.
TEST(SsdDetectBatching, OutputThreadPushFailureReachesUpstream) {
  TwoScenes s;
  GstHarness* h = detect_harness("in-flight=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  ASSERT_TRUE(gst_pad_set_active(h->sinkpad, FALSE));   // pushes into it fail: flushing
  GstFlowReturn ret = GST_FLOW_OK;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; ret == GST_FLOW_OK && std::chrono::steady_clock::now() < deadline; i++) {
    ret = gst_harness_push(h, stamped(*s.a, i));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(ret, GST_FLOW_FLUSHING);
  ASSERT_TRUE(gst_pad_set_active(h->sinkpad, TRUE));
  // Every later frame hears it too, until a flush, as from a queue (the next one went through
  // the network and out again: upstream heard each failure once).
  for (int i = 50; i < 53; i++) EXPECT_EQ(gst_harness_push(h, stamped(*s.a, i)), GST_FLOW_FLUSHING);
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  ASSERT_EQ(gst_harness_push(h, stamped(*s.b, 100)), GST_FLOW_OK);
  const auto out = pull_n(h, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, 100);
  EXPECT_TRUE(same_batched(out[0].second, s.ref_b)) << describe(out[0].second);
  gst_harness_teardown(h);
}

// Downstream unlinked (an application re-plumbing its pipeline): the output thread's pushes fail
// with NOT_LINKED, which upstream hears (a demuxer or a tee acts on it); once linked again, the
// next frames go out again, without a flush, as through a queue.
TEST(SsdDetectBatching, FramesGoOutAgainOnceDownstreamIsLinkedAgain) {
  TwoScenes s;
  GstHarness* h = detect_harness("in-flight=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  GstPad* src = gst_element_get_static_pad(h->element, "src");
  ASSERT_TRUE(gst_pad_unlink(src, h->sinkpad));
  GstFlowReturn ret = GST_FLOW_OK;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; ret == GST_FLOW_OK && std::chrono::steady_clock::now() < deadline; i++) {
    ret = gst_harness_push(h, stamped(*s.a, i));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(ret, GST_FLOW_NOT_LINKED);
  ASSERT_EQ(gst_pad_link(src, h->sinkpad), GST_PAD_LINK_OK);
  for (int i = 100; i < 104; i++) EXPECT_EQ(gst_harness_push(h, stamped(*s.b, i)), GST_FLOW_OK) << "frame " << i;
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  const auto out = pull_all(h);
  ASSERT_EQ(out.size(), 4u);
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(out[i].first, 100 + i);
    EXPECT_TRUE(same_batched(out[i].second, s.ref_b)) << describe(out[i].second);
  }
  gst_object_unref(src);
  gst_harness_teardown(h);
}

// A push that waits downstream (a synchronised sink waiting for the frame's time; here a probe
// that blocks) holds up the element's output thread only: upstream's pushes go on while frames
// wait to be pushed, until the frames held and waiting fill the buffers reserved for them
// (batch-size x in-flight); then the next push waits for room instead of queuing without bound.
// Before, the streaming thread pushed the frames it completed itself, and waited with them.
TEST(SsdDetectBatching, ASlowDownstreamDoesNotHoldUpUpstream) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=2 in-flight=1");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  struct Gate {
    std::mutex lock;
    std::condition_variable cv;
    bool open = false;
    int arrived = 0;
  } gate;
  const auto wait_at_gate = [](GstPad*, GstPadProbeInfo*, gpointer data) -> GstPadProbeReturn {
    auto* g = static_cast<Gate*>(data);
    std::unique_lock<std::mutex> lk(g->lock);
    g->arrived++;
    g->cv.notify_all();
    g->cv.wait(lk, [g] { return g->open; });
    return GST_PAD_PROBE_OK;
  };
  gst_pad_add_probe(h->sinkpad, GST_PAD_PROBE_TYPE_BUFFER, wait_at_gate, &gate, nullptr);
  const auto open_gate = [&] {
    std::lock_guard<std::mutex> guard(gate.lock);
    gate.open = true;
    gate.cv.notify_all();
  };
  const auto push = [&](int first, int last) {
    return std::async(std::launch::async, [&, first, last] {
      for (int i = first; i <= last; i++)
        if (gst_harness_push(h, stamped(*s.a, i)) != GST_FLOW_OK) return false;
      return true;
    });
  };
  // Frames 0 and 1 make a batch, computed as frame 1 comes; frame 0 then waits at the gate,
  // frame 1 behind it, and frame 2 is held for the next batch.
  auto first = push(0, 2);
  const bool returned = first.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "upstream's push waited for downstream";
  {
    std::unique_lock<std::mutex> lk(gate.lock);
    EXPECT_TRUE(gate.cv.wait_for(lk, std::chrono::seconds(30), [&] { return gate.arrived == 1; }))
        << "frame 0 did not reach downstream";
  }
  // Frame 3 would make three of the two held: it waits for room.
  auto second = push(3, 3);
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "a frame was taken beyond the buffers reserved";
  open_gate();
  EXPECT_TRUE(first.get());
  EXPECT_TRUE(second.get());
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  const auto out = pull_all(h);
  ASSERT_EQ(out.size(), 4u);
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(out[size_t(i)].first, i);
    EXPECT_TRUE(same_batched(out[size_t(i)].second, s.ref_a)) << i;
  }
  gst_harness_teardown(h);
}

// SOURCE ! ssddetect batch-size=4 in-flight=1 ! fakesink, for what a probe that runs on
// ssddetect's output thread does: `out`, a buffer probe on ssddetect's source pad, and `at_sink`
// (if given) on the sink's pad for `sink_types`, both called with `data`. `in` is ssddetect's
// sink pad. start() plays it.
class ProbedBatching {
 public:
  static constexpr const char* kAppSrc =
      "appsrc name=src format=time caps=video/x-raw,format=RGB,width=64,height=48,framerate=25/1";

  ProbedBatching(const std::string& source, GstPadProbeCallback out, gpointer data,
                 GstPadProbeCallback at_sink = nullptr,
                 GstPadProbeType sink_types = GST_PAD_PROBE_TYPE_BUFFER)
      : pipeline(gst_parse_launch(
            (source + " ! ssddetect name=d device=cpu batch-size=4 in-flight=1 ! fakesink name=sink sync=false")
                .c_str(),
            nullptr)) {
    EXPECT_NE(pipeline, nullptr);
    if (!pipeline) return;
    GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
    in = gst_element_get_static_pad(d, "sink");
    GstPad* src = gst_element_get_static_pad(d, "src");
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, out, data, nullptr);
    gst_object_unref(src);
    gst_object_unref(d);
    if (at_sink) {
      GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
      GstPad* pad = gst_element_get_static_pad(sink, "sink");
      gst_pad_add_probe(pad, sink_types, at_sink, data, nullptr);
      gst_object_unref(pad);
      gst_object_unref(sink);
    }
  }
  ~ProbedBatching() {
    if (!pipeline) return;
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(in);
    gst_object_unref(pipeline);
  }
  ProbedBatching(const ProbedBatching&) = delete;
  ProbedBatching& operator=(const ProbedBatching&) = delete;

  bool start() { return pipeline && gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE; }
  // kAppSrc only: frames 0 .. n - 1 (flat 64x48 RGB), then EOS when `end`.
  void push_frames(int n, bool end) {
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
    for (int i = 0; i < n; i++) EXPECT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), stamped(*f, i)), GST_FLOW_OK);
    if (end) gst_app_src_end_of_stream(GST_APP_SRC(src));
    gst_object_unref(src);
  }
  void end_of_stream() { push_frames(0, true); }
  // Whether the pipeline posted EOS (and no error first) within 60 s.
  bool reached_eos() {
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    const bool eos = msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
    if (msg) gst_message_unref(msg);
    gst_object_unref(bus);
    return eos;
  }

  GstElement* pipeline;
  GstPad* in = nullptr;
};

// An application that seeks back (a flushing seek, to loop, say) from a pad probe on the
// element's output thread, or sends a drain query into it from there: the flush, or the drain,
// must not wait for the push it is called from (only that thread could end it), and the stream
// goes on to EOS, its frames in order at the sink (the drain answers before the frames after the
// one being pushed: they go out after it). (As with `queue`, a serialized event or query sent
// from there while upstream's thread waits for that thread, for room or for held frames to go
// out, waits too: here upstream is idle at the drain.)
TEST(SsdDetectBatching, ASeekOrDrainFromItsOwnPushGoesThrough) {
  for (const bool seek : {true, false}) {
    SCOPED_TRACE(seek ? "flushing seek" : "drain query");
    struct Shared {
      GstElement* pipeline = nullptr;
      GstPad* in = nullptr;
      bool seek;
      std::atomic<int> frames{0};
      std::atomic<int> back{0};   // frames at the sink earlier than the frame before them
      GstClockTime last = GST_CLOCK_TIME_NONE;
      std::atomic<bool> acted{false};
    } shared{nullptr, nullptr, seek};
    ProbedBatching p(
        seek ? "videotestsrc num-buffers=30 ! video/x-raw,format=RGB,width=64,height=48,framerate=25/1"
             : ProbedBatching::kAppSrc,
        [](GstPad*, GstPadProbeInfo*, gpointer data) {
          auto* sh = static_cast<Shared*>(data);
          if (++sh->frames == (sh->seek ? 10 : 2) && !sh->acted.exchange(true)) {
            if (sh->seek) {
              gst_element_seek_simple(sh->pipeline, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0);
            } else {
              GstQuery* q = gst_query_new_drain();
              gst_pad_query(sh->in, q);
              gst_query_unref(q);
            }
          }
          return GST_PAD_PROBE_OK;
        },
        &shared,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) {
          auto* sh = static_cast<Shared*>(data);
          const GstClockTime pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
          if (GST_CLOCK_TIME_IS_VALID(sh->last) && pts < sh->last) sh->back++;
          sh->last = pts;
          return GST_PAD_PROBE_OK;
        });
    shared.pipeline = p.pipeline;
    shared.in = p.in;
    ASSERT_TRUE(p.start());
    if (!seek) {
      p.push_frames(4, false);
      for (int i = 0; i < 2400 && shared.frames < 4; i++) std::this_thread::sleep_for(std::chrono::milliseconds(25));
      EXPECT_EQ(shared.frames, 4) << "stalled in the drain";
      p.end_of_stream();
    }
    EXPECT_TRUE(p.reached_eos()) << "stalled after " << shared.frames << " frames";
    // After the seek the stream starts again from its first frame (the source counts its 30
    // frames across it).
    EXPECT_EQ(shared.back, seek ? 1 : 0);
    EXPECT_GT(shared.frames, seek ? 10 : 3);
  }
}

// An EOS sent into the element from within its output thread's push (a probe ending the stream
// on the first frame, say): the frames held behind the one being pushed go out before the EOS;
// only that one, already on its way, comes after it (and downstream refuses it).
TEST(SsdDetectBatching, AnEventFromItsOwnPushFollowsTheFramesBehindIt) {
  struct Shared {
    GstPad* in = nullptr;
    std::atomic<bool> sent{false};
    std::mutex lock;
    std::vector<std::string> seen;   // at the sink
  } shared;
  ProbedBatching p(
      ProbedBatching::kAppSrc,
      [](GstPad*, GstPadProbeInfo*, gpointer data) {
        auto* sh = static_cast<Shared*>(data);
        if (!sh->sent.exchange(true)) gst_pad_send_event(sh->in, gst_event_new_eos());
        return GST_PAD_PROBE_OK;
      },
      &shared,
      [](GstPad*, GstPadProbeInfo* info, gpointer data) {
        auto* sh = static_cast<Shared*>(data);
        std::lock_guard<std::mutex> guard(sh->lock);
        if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER)
          sh->seen.push_back("frame " + std::to_string(GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info)) / kFrameStep));
        else if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
          sh->seen.push_back("eos");
        return GST_PAD_PROBE_OK;
      },
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM));
  shared.in = p.in;
  ASSERT_TRUE(p.start());
  p.push_frames(4, false);
  ASSERT_TRUE(p.reached_eos());
  std::lock_guard<std::mutex> guard(shared.lock);
  EXPECT_EQ(shared.seen, (std::vector<std::string>{"frame 1", "frame 2", "frame 3", "eos"}));
}

// A flush that starts from within the output thread's push (a probe or callback downstream,
// seeking) while upstream's thread waits in a drain (EOS here) for the frames still to go out:
// the drain stops waiting for that push once the flush has reached the source pad, so that the
// flush can end (its FLUSH_STOP needs the streaming thread's lock). Before, both waited for
// each other.
TEST(SsdDetectBatching, AFlushFromItsOwnPushEndsADrainWaitingForIt) {
  struct Shared {
    GstPad* in = nullptr;
    std::mutex lock;
    std::condition_variable cv;
    bool in_probe = false, eos_sent = false;
    std::atomic<bool> flushed{false};
  } shared;
  ProbedBatching p(
      ProbedBatching::kAppSrc,
      [](GstPad*, GstPadProbeInfo*, gpointer data) {
        auto* sh = static_cast<Shared*>(data);
        {
          std::unique_lock<std::mutex> lk(sh->lock);
          if (sh->in_probe) return GST_PAD_PROBE_OK;   // the first frame only
          sh->in_probe = true;
          sh->cv.notify_all();
          sh->cv.wait(lk, [sh] { return sh->eos_sent; });
        }
        g_usleep(300 * 1000);   // upstream's thread is in the EOS's drain by now
        gst_pad_send_event(sh->in, gst_event_new_flush_start());
        gst_pad_send_event(sh->in, gst_event_new_flush_stop(TRUE));
        sh->flushed = true;
        return GST_PAD_PROBE_OK;
      },
      &shared);
  shared.in = p.in;
  ASSERT_TRUE(p.start());
  p.push_frames(4, false);
  {
    std::unique_lock<std::mutex> lk(shared.lock);
    ASSERT_TRUE(shared.cv.wait_for(lk, std::chrono::seconds(60), [&] { return shared.in_probe; }))
        << "the batch never came out";
  }
  p.end_of_stream();
  {
    std::lock_guard<std::mutex> guard(shared.lock);
    shared.eos_sent = true;
    shared.cv.notify_all();
  }
  for (int i = 0; i < 1200 && !shared.flushed; i++) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  if (!shared.flushed) {
    ADD_FAILURE() << "the flush and the drain wait for each other";
    std::fflush(nullptr);
    std::_Exit(1);   // both threads are stuck: the pipeline cannot be stopped
  }
}

// ------------------------------------------------------------------------------------------
// Page-locked frame memory (gst-plugin/pinned_pool.h): the allocator the plugin registers as
// "SsdHostMemory" (page-locked with CUDA, ordinary memory here) and the pool ssddetect offers
// upstream on CUDA.

GstAllocator* host_allocator() {
  // The plugin registers it when it loads, which making one of its elements makes sure of (this
  // test may run first, or alone).
  if (GstElement* e = gst_element_factory_make("ssddetect", nullptr)) gst_object_unref(e);
  GstAllocator* a = gst_allocator_find("SsdHostMemory");
  EXPECT_NE(a, nullptr) << "the ssd plugin did not register its allocator";
  return a;
}

TEST(SsdHostMemory, AllocatesAlignedMemoryThatMapsSharesAndCopies) {
  GstAllocator* a = host_allocator();
  ASSERT_NE(a, nullptr);
  GstAllocationParams params;
  gst_allocation_params_init(&params);
  params.align = 127;
  params.prefix = 16;
  params.padding = 40;
  params.flags = static_cast<GstMemoryFlags>(GST_MEMORY_FLAG_ZERO_PREFIXED | GST_MEMORY_FLAG_ZERO_PADDED);
  {
    // A block of the same size dirtied and freed first: the next one is likely its memory, whose
    // prefix and padding are then zero only where the allocator zeroes them.
    GstAllocationParams plain = params;
    plain.flags = static_cast<GstMemoryFlags>(0);
    GstMemory* dirty = gst_allocator_alloc(a, 1000, &plain);
    ASSERT_NE(dirty, nullptr);
    GstMapInfo map;
    ASSERT_TRUE(gst_memory_map(dirty, &map, GST_MAP_WRITE));
    std::memset(map.data - 16, 0xab, 1056);
    gst_memory_unmap(dirty, &map);
    gst_memory_unref(dirty);
  }
  GstMemory* mem = gst_allocator_alloc(a, 1000, &params);
  ASSERT_NE(mem, nullptr);
  EXPECT_TRUE(gst_memory_is_type(mem, "SsdHostMemory"));
  gsize offset = 0, maxsize = 0;
  EXPECT_EQ(gst_memory_get_sizes(mem, &offset, &maxsize), 1000u);
  EXPECT_EQ(offset, 16u);
  EXPECT_EQ(maxsize, 1056u);
  GstMapInfo map;
  ASSERT_TRUE(gst_memory_map(mem, &map, GST_MAP_READWRITE));
  EXPECT_EQ(reinterpret_cast<guintptr>(map.data - 16) % 128, 0u) << "the block is not aligned";
  for (int i = -16; i < 0; i++) EXPECT_EQ(map.data[i], 0) << "prefix byte " << i;
  for (int i = 1000; i < 1040; i++) EXPECT_EQ(map.data[i], 0) << "padding byte " << i;
  for (int i = 0; i < 1000; i++) map.data[i] = static_cast<guint8>(i * 7);
  gst_memory_unmap(mem, &map);

  // Shares point into the same block and are read-only; adjacent shares span.
  GstMemory* first = gst_memory_share(mem, 0, 400);
  GstMemory* second = gst_memory_share(mem, 400, -1);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(gst_memory_get_sizes(second, nullptr, nullptr), 600u);
  // Whether `m` holds `size` bytes of the pattern from byte `from` on (its first and last).
  auto expect_pattern = [](GstMemory* m, gsize size, int from) {
    GstMapInfo map;
    ASSERT_TRUE(gst_memory_map(m, &map, GST_MAP_READ));
    EXPECT_EQ(map.size, size);
    EXPECT_EQ(map.data[0], static_cast<guint8>(from * 7));
    EXPECT_EQ(map.data[size - 1], static_cast<guint8>((from + static_cast<int>(size) - 1) * 7));
    gst_memory_unmap(m, &map);
  };
  expect_pattern(second, 600, 400);
  GstMapInfo sub;
  EXPECT_FALSE(gst_memory_map(second, &sub, GST_MAP_WRITE)) << "a share must be read-only";
  gsize span_offset = 99;
  EXPECT_TRUE(gst_memory_is_span(first, second, &span_offset));
  EXPECT_EQ(span_offset, 0u);
  EXPECT_FALSE(gst_memory_is_span(second, first, &span_offset));

  // A copy is a separate, writable block with the same bytes, in system memory (another
  // element's; page-locked memory is for the upload); the share outlives its parent.
  GstMemory* copy = gst_memory_copy(mem, 10, 20);
  ASSERT_NE(copy, nullptr);
  EXPECT_TRUE(gst_memory_is_type(copy, GST_ALLOCATOR_SYSMEM));
  GstMemory* rest = gst_memory_copy(second, 590, -1);   // of a share, to its end
  ASSERT_NE(rest, nullptr);
  expect_pattern(rest, 10, 990);
  gst_memory_unref(rest);
  gst_memory_unref(mem);
  GstMapInfo cm;
  ASSERT_TRUE(gst_memory_map(copy, &cm, GST_MAP_WRITE));
  ASSERT_EQ(cm.size, 20u);
  EXPECT_EQ(cm.data[0], static_cast<guint8>(10 * 7));
  gst_memory_unmap(copy, &cm);
  ASSERT_TRUE(gst_memory_map(second, &sub, GST_MAP_READ));
  EXPECT_EQ(sub.data[1], static_cast<guint8>(401 * 7));
  gst_memory_unmap(second, &sub);
  gst_memory_unref(copy);
  gst_memory_unref(first);
  gst_memory_unref(second);
  gst_object_unref(a);
}

// A video buffer pool on the allocator, as ssddetect configures it, with padded strides.
GstBufferPool* host_pool(const Frame& f) {
  GstAllocator* a = host_allocator();
  GstBufferPool* pool = gst_video_buffer_pool_new();
  GstStructure* config = gst_buffer_pool_get_config(pool);
  GstVideoInfo info;
  EXPECT_TRUE(gst_video_info_from_caps(&info, f.caps));
  gst_buffer_pool_config_set_params(config, f.caps, static_cast<guint>(info.size), 2, 0);
  gst_buffer_pool_config_set_allocator(config, a, nullptr);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_ALIGNMENT);
  GstVideoAlignment align;
  gst_video_alignment_reset(&align);
  align.padding_right = 24;
  align.padding_bottom = 2;
  gst_buffer_pool_config_set_video_alignment(config, &align);
  EXPECT_TRUE(gst_buffer_pool_set_config(pool, config));
  EXPECT_TRUE(gst_buffer_pool_set_active(pool, TRUE));
  gst_object_unref(a);
  return pool;
}

// `f` copied into a buffer of `pool` (which lays its planes out its own way).
GstBuffer* in_pool(GstBufferPool* pool, const Frame& f, int index) {
  GstBuffer* buf = nullptr;
  EXPECT_EQ(gst_buffer_pool_acquire_buffer(pool, &buf, nullptr), GST_FLOW_OK);
  if (!buf) return nullptr;
  GstVideoInfo info;
  EXPECT_TRUE(gst_video_info_from_caps(&info, f.caps));
  GstVideoFrame src, dst;
  EXPECT_TRUE(gst_video_frame_map(&src, &f.info, f.buffer, GST_MAP_READ));
  EXPECT_TRUE(gst_video_frame_map(&dst, &info, buf, GST_MAP_WRITE));
  EXPECT_GT(GST_VIDEO_FRAME_PLANE_STRIDE(&dst, 0), GST_VIDEO_INFO_PLANE_STRIDE(&info, 0)) << "the pool did not pad";
  EXPECT_TRUE(gst_video_frame_copy(&dst, &src));
  gst_video_frame_unmap(&dst);
  gst_video_frame_unmap(&src);
  GST_BUFFER_PTS(buf) = index * GST_SECOND / 25;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 25;
  return buf;
}

// Frames written into the pool's memory (padded, with GstVideoMeta) give the detections of the
// same frames in system memory, one at a time and batched with two batches in flight (frames
// then stay mapped until their batch is collected). `props` adds element properties. On the
// CPU the results are identical; on CUDA (cuDNN may pick other kernels per batch size) within
// `tolerance` in confidence and one pixel.
void pool_frames_match(const char* props, double tolerance) {
  const ssdtrain::SynthSample s = one_object(641, 479, 5);
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420}) {
    SCOPED_TRACE(gst_video_format_to_string(fmt));
    auto frame = make_frame(s.image, fmt, 0);
    GstHarness* ref_h = detect_harness((std::string("threshold=0.1 ") + props).c_str());
    const auto ref = detect_once(ref_h, *frame);
    gst_harness_teardown(ref_h);
    ASSERT_FALSE(ref.empty());
    GstBufferPool* pool = host_pool(*frame);
    for (const char* batching : {"", "batch-size=2 in-flight=2"}) {
      SCOPED_TRACE(batching);
      GstHarness* h = detect_harness((std::string("threshold=0.1 ") + props + " " + batching).c_str());
      gst_harness_set_src_caps(h, caps_25fps(*frame));
      for (int i = 0; i < 5; i++) ASSERT_EQ(gst_harness_push(h, in_pool(pool, *frame, i)), GST_FLOW_OK);
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
      const auto out = pull_all(h);
      ASSERT_EQ(out.size(), 5u);
      for (const auto& [index, dets] : out)
        EXPECT_TRUE(close(dets, ref, tolerance)) << "frame " << index << ": " << describe(dets) << " vs " << describe(ref);
      gst_harness_teardown(h);
    }
    gst_buffer_pool_set_active(pool, FALSE);
    gst_object_unref(pool);
  }
}

TEST(SsdHostMemory, PoolFramesGiveTheSameDetections) { pool_frames_match("device=cpu", 0); }

// The pools in the answer of `desc` (a launch line starting with ssddetect) to an allocation
// query for `f`'s caps, by allocator type ("(default)": the system memory default).
std::vector<std::string> offered_pools(const char* desc, const Frame& f, GstBufferPool** first_pool) {
  GstHarness* h = gst_harness_new_parse(desc);
  gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
  GstQuery* q = gst_query_new_allocation(f.caps, TRUE);
  EXPECT_TRUE(gst_pad_peer_query(h->srcpad, q));
  std::vector<std::string> types;
  for (guint i = 0; i < gst_query_get_n_allocation_pools(q); i++) {
    GstBufferPool* pool = nullptr;
    guint size = 0, min = 0, max = 0;
    gst_query_parse_nth_allocation_pool(q, i, &pool, &size, &min, &max);
    GstAllocator* allocator = nullptr;
    if (pool) {
      GstStructure* config = gst_buffer_pool_get_config(pool);
      gst_buffer_pool_config_get_allocator(config, &allocator, nullptr);
      types.push_back(allocator && allocator->mem_type ? allocator->mem_type : "(default)");
      gst_structure_free(config);
      if (i == 0 && first_pool) *first_pool = GST_BUFFER_POOL(gst_object_ref(pool));
      gst_object_unref(pool);
    } else {
      types.push_back("(no pool)");
    }
  }
  gst_query_unref(q);
  gst_harness_teardown(h);
  return types;
}

// While batching, the element holds up to batch-size x in-flight of upstream's frames: it asks
// upstream's pool for that many buffers more than downstream does, plus the one being written,
// so that a source with a fixed number of buffers (v4l2src) allocates enough. By default (in-flight
// 0) on the CPU of a machine with 2 or more CPUs, 2 frames are in flight.
TEST(SsdDetectBatching, AsksUpstreamForTheFramesItHolds) {
  const ssdtrain::SynthSample s = one_object(320, 240, 5);
  auto frame = make_frame(s.image, GST_VIDEO_FORMAT_RGBx, 0);
  auto first_min = [&](const char* desc) -> int {   // min_buffers of the first pool entry; -1: none
    GstHarness* h = gst_harness_new_parse(desc);
    gst_harness_set_src_caps(h, gst_caps_ref(frame->caps));
    GstQuery* q = gst_query_new_allocation(frame->caps, TRUE);
    gst_pad_peer_query(h->srcpad, q);
    int min = -1;
    if (gst_query_get_n_allocation_pools(q) > 0) {
      GstBufferPool* pool = nullptr;
      guint size = 0, n = 0, max = 0;
      gst_query_parse_nth_allocation_pool(q, 0, &pool, &size, &n, &max);
      if (pool) gst_object_unref(pool);
      min = static_cast<int>(n);
    }
    gst_query_unref(q);
    gst_harness_teardown(h);
    return min;
  };
  EXPECT_EQ(first_min("ssddetect device=cpu batch-size=3 in-flight=2"), 7);
  const int theirs = first_min("videoflip video-direction=horiz");
  ASSERT_GE(theirs, 0) << "videoflip offers a pool";
  EXPECT_EQ(first_min("ssddetect device=cpu batch-size=3 in-flight=2 ! videoflip video-direction=horiz"), theirs + 7);
  EXPECT_EQ(first_min("ssddetect device=cpu batch-size=4 in-flight=1 ! videoflip video-direction=horiz"), theirs + 5);
  EXPECT_EQ(first_min("ssddetect device=cpu in-flight=1 ! videoflip video-direction=horiz"), theirs) << "not batching";
  const int in_flight = ssd::resolve_in_flight(0, true, ssd::usable_cpus(), 0);
  EXPECT_EQ(first_min("ssddetect device=cpu ! videoflip video-direction=horiz"), in_flight > 1 ? theirs + in_flight + 1 : theirs)
      << "the default, " << in_flight << " in flight";
}

// The devices the frame-pool tests run on, with the properties that make ssddetect offer its
// pool there: the CPU with frame-pool=always (the CUDA path's negotiation, the pool's memory
// ordinary), and CUDA as it is by default, where there is a device.
std::vector<std::string> frame_pool_devices() {
  std::vector<std::string> devices{"device=cpu frame-pool=always"};
  if (ssd::cuda_available()) devices.push_back("device=cuda");
  return devices;
}

// A pool of downstream's own memory, as a V4L2 or VA sink offers (any GstBufferPool subclass:
// ssddetect leaves it in place of page-locked frames on CUDA).
typedef struct {
  GstBufferPool parent;
} TestOwnPool;
typedef struct {
  GstBufferPoolClass parent_class;
} TestOwnPoolClass;
G_DEFINE_TYPE(TestOwnPool, test_own_pool, GST_TYPE_BUFFER_POOL)
static void test_own_pool_class_init(TestOwnPoolClass*) {}
static void test_own_pool_init(TestOwnPool*) {}

static GstPadQueryFunction g_harness_sink_query = nullptr;
// The harness's sink answering the allocation query with a TestOwnPool of 2 buffers at most.
static gboolean own_pool_sink_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  if (GST_QUERY_TYPE(query) != GST_QUERY_ALLOCATION) return g_harness_sink_query(pad, parent, query);
  GstCaps* caps = nullptr;
  gst_query_parse_allocation(query, &caps, nullptr);
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps(&info, caps)) return FALSE;
  GstBufferPool* pool = GST_BUFFER_POOL(gst_object_ref_sink(g_object_new(test_own_pool_get_type(), nullptr)));
  gst_query_add_allocation_pool(query, pool, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)), 2, 2);
  gst_object_unref(pool);
  return TRUE;
}

// A batching element asks downstream's pool for the frames it holds also when that pool is of
// downstream's own memory (a bounded one, as V4L2's: upstream would otherwise run dry while a
// batch fills): on the CPU, and where it offers its frame pool (CUDA, frame-pool=always), which
// it then does not.
TEST(SsdDetectBatching, ReservesHeldFramesInAPoolOfDownstreamsOwnMemory) {
  auto frame = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGBx, 0);
  std::vector<std::string> devices = frame_pool_devices();
  devices.insert(devices.begin(), "device=cpu");
  for (const std::string& device : devices) {
    SCOPED_TRACE(device);
    GstHarness* h = gst_harness_new_parse(("ssddetect batch-size=3 in-flight=2 " + device).c_str());
    g_harness_sink_query = GST_PAD_QUERYFUNC(h->sinkpad);
    gst_pad_set_query_function(h->sinkpad, own_pool_sink_query);
    gst_harness_set_src_caps(h, gst_caps_ref(frame->caps));
    GstQuery* q = gst_query_new_allocation(frame->caps, TRUE);
    EXPECT_TRUE(gst_pad_peer_query(h->srcpad, q));
    ASSERT_GT(gst_query_get_n_allocation_pools(q), 0u);
    GstBufferPool* pool = nullptr;
    guint size = 0, min = 0, max = 0;
    gst_query_parse_nth_allocation_pool(q, 0, &pool, &size, &min, &max);
    ASSERT_NE(pool, nullptr);
    EXPECT_EQ(G_OBJECT_TYPE(pool), test_own_pool_get_type()) << G_OBJECT_TYPE_NAME(pool);
    EXPECT_EQ(min, 2u + 3 * 2 + 1) << "downstream's 2, a batch of 3 in each of 2 in flight and the one being written";
    EXPECT_GE(max, min);
    gst_object_unref(pool);
    gst_query_unref(q);
    gst_harness_teardown(h);
  }
}

TEST(SsdDetect, OffersNoPoolOnTheCpu) {
  const ssdtrain::SynthSample s = one_object(320, 240, 5);
  auto frame = make_frame(s.image, GST_VIDEO_FORMAT_RGBx, 0);
  for (const char* desc : {"ssddetect device=cpu", "ssddetect device=cpu ! videoflip video-direction=horiz"}) {
    const auto types = offered_pools(desc, *frame, nullptr);
    EXPECT_TRUE(std::find(types.begin(), types.end(), "SsdHostMemory") == types.end())
        << desc << ": page-locked frames are only worth it on CUDA";
  }
  // Downstream's own pool goes through untouched (videoflip offers a system-memory one).
  EXPECT_EQ(offered_pools("ssddetect device=cpu ! videoflip video-direction=horiz", *frame, nullptr),
            std::vector<std::string>{"(default)"});
}

// The frames the appsink named "sink" at the end of `launch` gets, and how many of those that
// reached the ssddetect named "det" were in its frame pool's memory (SsdHostMemory: page-locked
// on CUDA), counted on its sink pad (an element behind it may copy them: videoflip does, even
// with video-direction=identity). The pipeline runs to its end.
std::pair<int, int> page_locked_frames(const std::string& launch) {
  GstElement* p = gst_parse_launch(launch.c_str(), nullptr);
  EXPECT_NE(p, nullptr) << launch;
  if (!p) return {0, 0};
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstElement* det = gst_bin_get_by_name(GST_BIN(p), "det");
  EXPECT_NE(det, nullptr) << launch;
  std::atomic<int> pinned{0};
  if (det) {
    GstPad* pad = gst_element_get_static_pad(det, "sink");
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer count) {
          if (gst_memory_is_type(gst_buffer_peek_memory(GST_PAD_PROBE_INFO_BUFFER(info), 0), "SsdHostMemory"))
            ++*static_cast<std::atomic<int>*>(count);
          return GST_PAD_PROBE_OK;
        },
        &pinned, nullptr);
    gst_object_unref(pad);
    gst_object_unref(det);
  }
  EXPECT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
  int frames = 0;
  while (GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND)) {
    frames++;
    gst_sample_unref(sample);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return {frames, pinned.load()};
}

// Behind ssddetect offering its pool, a source's frames are in its memory also when the element
// downstream (videoflip, a GstVideoFilter) answers the allocation query with a system-memory pool
// and its own allocation parameter (no allocator, an alignment): upstream configures the pool
// with the first parameter's allocator, which must then be ours.
TEST(SsdDetectFramePool, SourceFramesAreInItBehindAVideoFilter) {
  for (const std::string& device : frame_pool_devices()) {
    SCOPED_TRACE(device);
    const auto [frames, pinned] = page_locked_frames(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGBx,width=320,height=240 ! ssddetect name=det " + device +
        " ! videoflip video-direction=identity ! appsink name=sink sync=false");
    EXPECT_EQ(frames, 5);
    EXPECT_EQ(pinned, 5) << "frames in ordinary memory: the pool took downstream's allocator";
  }
}

// ssddetect offers its pool (page-locked frames on CUDA, uploaded in place, without the staging
// copy), alone and in place of the system-memory pool a downstream element offers, and frames
// from it give the detections of frames in system memory; frame-pool=never offers none.
TEST(SsdDetectFramePool, OffersFramesThatGiveTheSameDetections) {
  const ssdtrain::SynthSample s = one_object(640, 480, 5);
  auto frame = make_frame(s.image, GST_VIDEO_FORMAT_RGBx, 0);
  for (const std::string& device : frame_pool_devices()) {
    SCOPED_TRACE(device);
    const bool cuda = device.find("cuda") != std::string::npos;
    GstBufferPool* pool = nullptr;
    // Offered alone, and in place of the system-memory pool a downstream element offers.
    const auto behind = offered_pools(("ssddetect " + device + " ! videoflip video-direction=horiz").c_str(), *frame,
                                      nullptr);
    ASSERT_FALSE(behind.empty());
    EXPECT_EQ(behind[0], "SsdHostMemory");
    EXPECT_EQ(offered_pools(("ssddetect " + device + " frame-pool=never ! videoflip video-direction=horiz").c_str(),
                            *frame, nullptr),
              std::vector<std::string>{"(default)"});
    const auto types = offered_pools(("ssddetect " + device + " batch-size=2 in-flight=2").c_str(), *frame, &pool);
    ASSERT_FALSE(types.empty());
    EXPECT_EQ(types[0], "SsdHostMemory");
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(gst_buffer_pool_set_active(pool, TRUE));
    GstBuffer* buf = nullptr;
    ASSERT_EQ(gst_buffer_pool_acquire_buffer(pool, &buf, nullptr), GST_FLOW_OK);
    EXPECT_TRUE(gst_memory_is_type(gst_buffer_peek_memory(buf, 0), "SsdHostMemory"));
    gst_buffer_unref(buf);
    gst_buffer_pool_set_active(pool, FALSE);
    gst_object_unref(pool);
    pool_frames_match(device.c_str(), cuda ? 1e-3 : 0);
    // Video meta support is downstream's to offer: behind a sink without it (the harness's, which
    // proposes no meta) upstream does not hear of it, and so sends frames without padding.
    {
      GstHarness* alone = gst_harness_new_parse(("ssddetect " + device).c_str());
      gst_harness_set_src_caps(alone, gst_caps_ref(frame->caps));
      GstQuery* q = gst_query_new_allocation(frame->caps, TRUE);
      gst_pad_peer_query(alone->srcpad, q);
      EXPECT_GT(gst_query_get_n_allocation_pools(q), 0u);
      EXPECT_FALSE(gst_query_find_allocation_meta(q, GST_VIDEO_META_API_TYPE, nullptr));
      gst_query_unref(q);
      gst_harness_teardown(alone);
    }

    // A real source takes the pool: videotestsrc's frames arrive in its memory.
    const auto [frames, pinned] = page_locked_frames(
        "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=640,height=480 ! queue ! ssddetect name=det " + device +
        " ! appsink name=sink sync=false");
    EXPECT_EQ(frames, 3);
    EXPECT_EQ(pinned, 3);
  }
}

// interval=8: after a new stream (concat, gapless playback: stream-start, caps, segment) or a
// jump in the stream (a seek without flush: another segment), the next frame is analysed and
// does not carry the boxes of the frames before; with and without batching. (A segment equal to
// the one in use changes nothing: the other interval tests repeat the harness's.)
TEST(SsdDetect, IntervalStartsAfreshOnANewStreamOrSegment) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b));
  for (const char* props : {"interval=8", "interval=8 batch-size=2"}) {
    for (bool new_stream : {true, false}) {
      SCOPED_TRACE(std::string(props) + (new_stream ? ", new stream" : ", new segment"));
      GstHarness* h = detect_harness(props);
      gst_harness_set_src_caps(h, caps_25fps(*s.a));
      for (int i = 0; i < 3; i++) ASSERT_EQ(gst_harness_push(h, stamped(*s.a, i)), GST_FLOW_OK);
      if (new_stream) {
        ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_stream_start("second")));
        GstCaps* caps = caps_25fps(*s.b);
        ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_caps(caps)));
        gst_caps_unref(caps);
      }
      GstSegment seg;   // the stream (again) from 1 s: another segment than the harness's
      gst_segment_init(&seg, GST_FORMAT_TIME);
      seg.start = seg.time = GST_SECOND;
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
      for (int i = 0; i < 2; i++) ASSERT_EQ(gst_harness_push(h, stamped(*s.b, 25 + i)), GST_FLOW_OK);
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
      const auto out = pull_all(h);
      ASSERT_EQ(out.size(), 5u);
      for (int i = 0; i < 3; i++) EXPECT_TRUE(same_batched(out[size_t(i)].second, s.ref_a)) << "frame " << i;
      for (int i = 3; i < 5; i++)
        EXPECT_TRUE(same_batched(out[size_t(i)].second, s.ref_b)) << "frame " << i << ": " << describe(out[size_t(i)].second);
      gst_harness_teardown(h);
    }
  }
}

// interval=2 with batches of 2 analysed frames: skipped frames carry the last analysed frame's
// detections, across batch boundaries too.
TEST(SsdDetectBatching, IntervalCarriesDetectionsAcrossBatches) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=2 interval=2");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  // analysed: 0 (a), 2 (b), 4 (b), 6 (a); skipped frames show the other scene.
  const Frame* frames[] = {s.a.get(), s.b.get(), s.b.get(), s.a.get(), s.b.get(), s.a.get(), s.a.get(), s.b.get()};
  const std::vector<Det>* expect[] = {&s.ref_a, &s.ref_a, &s.ref_b, &s.ref_b, &s.ref_b, &s.ref_b, &s.ref_a, &s.ref_a};
  for (int i = 0; i < 8; i++) ASSERT_EQ(gst_harness_push(h, stamped(*frames[i], i)), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  auto out = pull_all(h);
  ASSERT_EQ(out.size(), 8u);
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ(out[i].first, i);
    EXPECT_TRUE(same_batched(out[i].second, *expect[i])) << "frame " << i << ": " << describe(out[i].second);
    EXPECT_TRUE(all_carried(out[i].second, i % 2 == 1)) << "frame " << i;
  }
  gst_harness_teardown(h);
}

// A gap buffer (flag GAP) is not analysed nor counted by `interval`, and carries the last
// detections, as a skipped frame: videorate flags the frames it repeats to raise a frame rate
// so, and they went out with no detections (boxes blinked). One without any memory too.
// Frames: a, gap(b), b, gap(a), gap(empty), a with interval 1 and 2, one at a time and batched.
TEST(SsdDetectBatching, GapBuffersCarryTheLastDetections) {
  TwoScenes s;
  for (const char* props : {"interval=1", "interval=2", "batch-size=2 interval=1", "batch-size=3 interval=2"}) {
    SCOPED_TRACE(props);
    GstHarness* h = detect_harness(props);
    gst_harness_set_src_caps(h, caps_25fps(*s.a));
    const Frame* frames[] = {s.a.get(), s.b.get(), s.b.get(), s.a.get(), nullptr, s.a.get()};
    const bool gaps[] = {false, true, false, true, true, false};
    for (int i = 0; i < 6; i++) {
      GstBuffer* b = frames[i] ? stamped(*frames[i], i) : gst_buffer_new();
      GST_BUFFER_PTS(b) = i * kFrameStep;
      if (gaps[i]) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_GAP);
      ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
    }
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
    auto out = pull_all(h);
    ASSERT_EQ(out.size(), 6u);
    // interval=2 counts the pictures only: a (analysed), b (skipped: a's), a (analysed).
    const bool every = std::string(props).find("interval=1") != std::string::npos;
    const std::vector<Det>* expect[] = {&s.ref_a, &s.ref_a, every ? &s.ref_b : &s.ref_a, every ? &s.ref_b : &s.ref_a,
                                        every ? &s.ref_b : &s.ref_a, &s.ref_a};
    const bool carried[] = {false, true, !every, true, true, false};
    for (int i = 0; i < 6; i++) {
      EXPECT_EQ(out[i].first, i);
      EXPECT_TRUE(same_batched(out[i].second, *expect[i])) << "frame " << i << ": " << describe(out[i].second);
      EXPECT_TRUE(all_carried(out[i].second, carried[i])) << "frame " << i;
    }
    gst_harness_teardown(h);
  }
}

// As videorate repeats frames to raise 10 fps to 30: every frame out has the ellipse's box, its
// one id, and the overlay's outline (before, two frames of three had none).
TEST(SsdDetect, FramesVideorateRepeatsKeepTheirBoxes) {
  TempDir tmp;
  const std::string jsonl = tmp / "vr.jsonl";
  const std::string desc =
      "videotestsrc num-buffers=4 pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 ! videorate ! "
      "video/x-raw,framerate=30/1 ! ssddetect threshold=0.5 ! ssdtrack ! ssdexport location=" + jsonl +
      " ! ssdoverlay ! fakesink name=sink";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  int gaps = 0;
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, [](GstPad*, GstPadProbeInfo* info, gpointer data) {
    if (GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_GAP)) ++*static_cast<int*>(data);
    return GST_PAD_PROBE_OK;
  }, &gaps, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
  gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  EXPECT_GE(gaps, 4) << "videorate no longer flags its repeats: the test checks nothing";
  std::ifstream in(jsonl);
  int frames = 0;
  for (std::string line; std::getline(in, line); ++frames) {
    const json row = json::parse(line);
    ASSERT_EQ(row["detections"].size(), 1u) << line;
    EXPECT_EQ(row["detections"][0]["label"], "ellipse") << line;
    EXPECT_EQ(row["detections"][0]["object_id"], 1) << line;
  }
  EXPECT_GE(frames, 9);
}

// A source with a fixed number of buffers (v4l2src, hardware decoders: the pool's max is the
// count the allocation query asked for) never runs dry: the frames `interval` skips wait with
// the batch, so the element reserves batch-size x interval (up to 4) buffers per batch, and a
// batch holding them all runs partial (batch-size=4 interval=3 stalled at frame 0 before). So
// does an interval raised while playing beyond the one the reservation was made for.
TEST(SsdDetectBatching, ASourceWithFixedBuffersNeverRunsDry) {
  for (const char* props : {"batch-size=4 interval=3", "batch-size=4 interval=7", "batch-size=2 in-flight=2 interval=2",
                            "batch-size=4 interval=1 raised-to=3"}) {
    SCOPED_TRACE(props);
    std::string element_props = props;
    const size_t raised_at = element_props.find(" raised-to=");
    const int raised_to = raised_at == std::string::npos ? 0 : std::stoi(element_props.substr(raised_at + 11));
    if (raised_at != std::string::npos) element_props.resize(raised_at);
    const std::string desc = std::string("videotestsrc name=src num-buffers=40 ! "
                                         "video/x-raw,format=RGB,width=160,height=120,framerate=30/1 ! ssddetect name=d ") +
                             element_props + " ! fakesink name=sink sync=false";
    GError* err = nullptr;
    GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
    ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    GstPad* pad = gst_element_get_static_pad(src, "src");
    // The answer to videotestsrc's allocation query: exactly the buffers asked for.
    gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM | GST_PAD_PROBE_TYPE_PULL),
                      [](GstPad*, GstPadProbeInfo* info, gpointer) -> GstPadProbeReturn {
                        GstQuery* q = GST_PAD_PROBE_INFO_QUERY(info);
                        if (GST_QUERY_TYPE(q) == GST_QUERY_ALLOCATION && gst_query_get_n_allocation_pools(q) > 0) {
                          GstBufferPool* pool = nullptr;
                          guint size = 0, min = 0, max = 0;
                          gst_query_parse_nth_allocation_pool(q, 0, &pool, &size, &min, &max);
                          gst_query_set_nth_allocation_pool(q, 0, pool, size, min, min);
                          if (pool) gst_object_unref(pool);
                        }
                        return GST_PAD_PROBE_OK;
                      },
                      nullptr, nullptr);
    gst_object_unref(pad);
    gst_object_unref(src);
    std::atomic<int> frames{0};
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    GstPad* sink_pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(sink_pad, GST_PAD_PROBE_TYPE_BUFFER,
                      [](GstPad*, GstPadProbeInfo*, gpointer n) -> GstPadProbeReturn {
                        ++*static_cast<std::atomic<int>*>(n);
                        return GST_PAD_PROBE_OK;
                      },
                      &frames, nullptr);
    gst_object_unref(sink_pad);
    gst_object_unref(sink);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    if (raised_to > 0) {   // the element has started: the buffers are reserved for interval 1
      GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
      g_object_set(d, "interval", raised_to, nullptr);
      gst_object_unref(d);
    }
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    EXPECT_NE(msg, nullptr) << "stalled after " << frames << " frames";
    if (msg) {
      EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
      gst_message_unref(msg);
    }
    EXPECT_EQ(frames, 40);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipeline);
  }
}

// batch-size=8 in-flight=1 with a batch-timeout of `timeout_ms`: `n` frames of scene a 40 ms
// apart, none of which comes out, then one of scene b n x 40 ms after the first (the stream lock
// held, so that wall-clock time cannot end the batch). What comes out, up to n + 1 frames.
std::vector<std::pair<int, std::vector<Det>>> batch_ended_by_timeout(const TwoScenes& s, int n, int timeout_ms) {
  const std::string props = "batch-size=8 batch-timeout=" + std::to_string(timeout_ms * 1000000LL) + " in-flight=1";
  GstHarness* h = detect_harness(props.c_str());
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  std::vector<std::pair<int, std::vector<Det>>> out;
  {
    StreamLockHeld stream(h);
    for (int i = 0; i < n; i++) EXPECT_EQ(gst_harness_push(h, stamped(*s.a, i)), GST_FLOW_OK);
    EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
    EXPECT_EQ(gst_harness_push(h, stamped(*s.b, n)), GST_FLOW_OK);
    out = pull_pushed(h, static_cast<size_t>(n) + 1);
  }
  gst_harness_teardown(h);
  return out;
}

// batch-timeout: with 40 ms between frames and a 100 ms bound, a partial batch of 8 is run when
// the frame 120 ms after the oldest arrives; reached exactly counts as passed: with an 80 ms
// bound, the frame 80 ms after the oldest ends the batch (not the next one).
TEST(SsdDetectBatching, TimeoutRunsAPartialBatch) {
  TwoScenes s;
  for (const auto& [n, timeout_ms] : {std::pair{3, 100}, std::pair{2, 80}}) {
    SCOPED_TRACE("batch-timeout " + std::to_string(timeout_ms) + " ms");
    const auto out = batch_ended_by_timeout(s, n, timeout_ms);
    ASSERT_EQ(out.size(), size_t(n) + 1) << "the frame batch-timeout after the oldest did not end the batch";
    for (int i = 0; i <= n; i++) {
      EXPECT_EQ(out[size_t(i)].first, i);
      EXPECT_TRUE(same_batched(out[size_t(i)].second, i < n ? s.ref_a : s.ref_b)) << i;
    }
  }
}

// In reverse playback (rate -1, frames in decreasing time) batch-timeout bounds a partial batch in
// stream time too: the fourth frame, 120 ms of stream before the first, sends the four out at
// once (not after the 100 ms of wall-clock time the output thread waits).
TEST(SsdDetectBatching, TimeoutRunsAPartialBatchInReversePlayback) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=8 batch-timeout=100000000 in-flight=1");
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.rate = -1.0;
  seg.stop = 100 * kFrameStep;
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  std::vector<std::pair<int, std::vector<Det>>> out;
  {
    StreamLockHeld stream(h);   // the 100 ms of wall-clock time cannot end the batch
    for (int i = 0; i < 3; i++) ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 20 - i)), GST_FLOW_OK);
    EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
    ASSERT_EQ(gst_harness_push(h, stamped(*s.b, 17)), GST_FLOW_OK);
    out = pull_n(h, 4);
  }
  ASSERT_EQ(out.size(), 4u) << "the stream-time bound did not end the batch";
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(out[size_t(i)].first, 20 - i);
    EXPECT_TRUE(same_batched(out[size_t(i)].second, i < 3 ? s.ref_a : s.ref_b)) << i;
  }
  gst_harness_teardown(h);
}

// A caps change pushes the frames held at the old size out first, with boxes of the old size;
// a flush drops held frames.
TEST(SsdDetectBatching, CapsChangeDrainsAndFlushDrops) {
  const ssdtrain::SynthSample a = one_object(320, 240, 4);
  const ssdtrain::SynthSample b = one_object(641, 479, 4);
  auto fa = make_frame(a.image, GST_VIDEO_FORMAT_RGB);
  auto fb = make_frame(b.image, GST_VIDEO_FORMAT_NV12);
  GstHarness* h = detect_harness("batch-size=4 in-flight=1");
  gst_harness_set_src_caps(h, caps_25fps(*fa));
  ASSERT_EQ(gst_harness_push(h, stamped(*fa, 0)), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, stamped(*fa, 1)), GST_FLOW_OK);
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  gst_harness_set_src_caps(h, caps_25fps(*fb));
  auto old = pull_all(h);
  ASSERT_EQ(old.size(), 2u) << "the caps event must push the held frames out first";
  ASSERT_FALSE(old[0].second.empty());
  for (const auto& [index, dets] : old)
    for (const Det& d : dets) {
      EXPECT_LE(d.x + d.w, 320);
      EXPECT_LE(d.y + d.h, 240);
    }
  ASSERT_EQ(gst_harness_push(h, stamped(*fb, 2)), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u) << "a flush drops held frames";
  for (int i = 3; i < 7; i++) ASSERT_EQ(gst_harness_push(h, stamped(*fb, i)), GST_FLOW_OK);
  auto after = pull_n(h, 4);
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after[0].first, 3);
  gst_harness_teardown(h);
}

// Makes every push out of `element`'s source pad return `flow` (dropping the frame), as an
// element downstream refusing them would; returns the probe.
gulong refuse_pushes(GstElement* element, GstFlowReturn flow) {
  GstPad* src = gst_element_get_static_pad(element, "src");
  const gulong probe = gst_pad_add_probe(
      src, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo* info, gpointer data) {
        gst_buffer_unref(GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = nullptr;
        GST_PAD_PROBE_INFO_FLOW_RETURN(info) = static_cast<GstFlowReturn>(GPOINTER_TO_INT(data));
        return GST_PAD_PROBE_HANDLED;
      },
      GINT_TO_POINTER(flow), nullptr);
  gst_object_unref(src);
  return probe;
}

// The text of an error or warning message, which it takes (unrefs).
std::string take_message_text(GstMessage* m) {
  GError* e = nullptr;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) gst_message_parse_error(m, &e, nullptr);
  else gst_message_parse_warning(m, &e, nullptr);
  std::string text = e ? e->message : "";
  if (e) g_error_free(e);
  gst_message_unref(m);
  return text;
}

// The debug text of the next error on `bus` (waiting up to 10 s); "(none)" if none came.
std::string next_error_debug(GstBus* bus) {
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  if (!msg) return "(none)";
  gchar* debug = nullptr;
  gst_message_parse_error(msg, nullptr, &debug);
  std::string text = debug ? debug : "";
  g_free(debug);
  gst_message_unref(msg);
  return text;
}

// Held frames whose push fails fatally at EOS (downstream refusing their caps, say) make an
// error: no later frame returns the failure upstream, and the stream ended as if it went well
// (a helper's pipeline with ssdtrack after a batching ssddetect lost its last frames so).
TEST(SsdDetectBatching, AFatalPushOfHeldFramesAtEosIsAnError) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=4 in-flight=1");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 0)), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 1)), GST_FLOW_OK);
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  refuse_pushes(h->element, GST_FLOW_NOT_NEGOTIATED);
  gst_harness_push_event(h, gst_event_new_eos());
  const std::string debug = next_error_debug(bus);
  EXPECT_NE(debug.find("not-negotiated"), std::string::npos) << "the held frames' failed push at EOS: " << debug;
  EXPECT_NE(debug.find("GstSsdDetect"), std::string::npos) << debug;
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR), nullptr) << "posted twice";
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// A failure of the output thread's push that no chain returned yet (the stream's last frames)
// fails a drain query and is posted at EOS: a drain answered TRUE and the stream ended with a
// bare EOS, as if its frames had gone out.
TEST(SsdDetectBatching, AFailureNoFrameReturnedFailsADrainAndIsPostedAtEos) {
  TwoScenes s;
  GstHarness* h = detect_harness("batch-size=1 in-flight=2");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  refuse_pushes(h->element, GST_FLOW_NOT_LINKED);
  ASSERT_EQ(gst_harness_push(h, stamped(*s.a, 0)), GST_FLOW_OK);
  GstQuery* drain = gst_query_new_drain();
  EXPECT_FALSE(gst_pad_peer_query(h->srcpad, drain)) << "a drain whose frame was refused answered TRUE";
  gst_query_unref(drain);
  gst_harness_push_event(h, gst_event_new_eos());
  const std::string debug = next_error_debug(bus);
  EXPECT_NE(debug.find("not-linked"), std::string::npos) << "the failed push no frame returned, at EOS: " << debug;
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// A drain query that upstream's streaming thread sends (as decoders do) while the application
// stops and starts the pipeline: the element stops under the sink pad's stream lock, which the
// query holds, so the query never runs on a detector being freed (a helper's process segfaulted
// in 5 of 5 runs of 15 s), and a frame that comes between the stop of the source pad and that of
// the sink pad is turned away as flushing, not with an error.
TEST(SsdDetectBatching, DrainQueriesFromUpstreamDuringStateChangesAreSafe) {
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(
      "videotestsrc name=v pattern=ball ! video/x-raw,width=64,height=48,framerate=30/1 ! ssddetect in-flight=2 "
      "! fakesink", &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  GstElement* v = gst_bin_get_by_name(GST_BIN(pipeline), "v");
  GstPad* src = gst_element_get_static_pad(v, "src");
  gst_pad_add_probe(
      src, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad* pad, GstPadProbeInfo*, gpointer) {
        GstQuery* q = gst_query_new_drain();
        gst_pad_peer_query(pad, q);
        gst_query_unref(q);
        return GST_PAD_PROBE_OK;
      },
      nullptr, nullptr);
  GstBus* bus = gst_element_get_bus(pipeline);
  std::atomic<bool> done{false};
  std::thread states([&] {
    for (int i = 0; !done; ++i) {
      gst_element_set_state(pipeline, i % 2 ? GST_STATE_READY : GST_STATE_PLAYING);
      std::this_thread::sleep_for(std::chrono::milliseconds(10 + (i % 5) * 7));
    }
  });
  int errors = 0;
  std::string first;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (std::chrono::steady_clock::now() < end) {
    if (GstMessage* m = gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_ERROR)) {
      const std::string text = take_message_text(m);
      if (errors++ == 0) first = text;
    }
  }
  done = true;
  states.join();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  EXPECT_EQ(errors, 0) << first;
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(v);
  gst_object_unref(pipeline);
}

// The latency query adds what batching can hold a frame for before its batch is computed (its
// computation is measured: none yet here): 25 fps, batches of 4 hold a frame up to 3 frame
// times, with two batches in flight too (a batch's frames go once it is computed, not with the
// next batch: 7 frame times were reported before); a 100 ms timeout caps a batch at 3 frames (2
// times); one frame at a time (batch-size 1), in flight or not, holds none.
TEST(SsdDetectBatching, LatencyQueryReportsTheAddedLatency) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  // The first frame of a batch waits for the rest of it (3 frame times of 40 ms), or for
  // batch-timeout when that is shorter (a live source's partial batch runs after batch-timeout of
  // wall-clock time: 100 or 20 ms, not the 2 or 0 whole frame times in them).
  using Case = std::pair<const char*, GstClockTime>;
  for (auto [props, added] : {Case{"batch-size=4 in-flight=2", 3 * kFrameStep},
                              Case{"batch-size=4 in-flight=2 batch-timeout=100000000", 100 * GST_MSECOND},
                              Case{"batch-size=4 in-flight=2 batch-timeout=20000000", 20 * GST_MSECOND},
                              Case{"batch-size=4 in-flight=2 batch-timeout=500000000", 3 * kFrameStep},
                              Case{"in-flight=2", 0}, Case{"in-flight=1", 0},
                              // A skipped frame waits for no analysed frame, only for the batch
                              // ahead of it (3 frame times were reported before, 2026-12-06).
                              Case{"in-flight=2 interval=4", 0},
                              Case{"batch-size=2 in-flight=2 interval=3", 3 * kFrameStep}}) {
    GstHarness* h = detect_harness(props);
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    gst_harness_set_src_caps(h, caps_25fps(*f));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    EXPECT_EQ(gst_harness_query_latency(h), 10 * GST_MSECOND + added) << props;
    gst_harness_teardown(h);
  }
}

// An ssddetect with `props` in a harness fed `f`'s caps at 25 fps, 10 ms of upstream latency, and
// a bus of its own for latency messages.
struct LatencyHarness {
  GstHarness* h;
  GstBus* bus = gst_bus_new();
  LatencyHarness(const char* props, const Frame& f) : h(detect_harness(props)) {
    gst_element_set_bus(h->element, bus);
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    gst_harness_set_src_caps(h, caps_25fps(f));
  }
  ~LatencyHarness() {
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  // After frames whose computation took at most `took` (with what was around it): a latency
  // message came, and the query reports `wait` plus more than a millisecond of computation, at
  // most `took` and a quarter more.
  // No latency message came (nothing measured yet: warm-ups), and the query still says `wait`.
  void expect_latency_unchanged(GstClockTime wait) {
    EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY), nullptr);
    EXPECT_EQ(gst_harness_query_latency(h), wait);
  }
  void expect_computation_added(GstClockTime wait, std::chrono::steady_clock::duration took, const char* after) {
    GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY);
    ASSERT_NE(m, nullptr) << "no latency message after " << after;
    gst_message_unref(m);
    const GstClockTime with_compute = gst_harness_query_latency(h);
    EXPECT_GT(with_compute, wait + GST_MSECOND);
    EXPECT_LE(with_compute - wait,
              static_cast<GstClockTime>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count() * 5 / 4 + 1));
  }
};

// The latency includes a batch's computation once measured: before any batch, the wait alone
// (3 frame times for batches of 4); after the second batch (the first warms up), the wait plus
// the time the batch was computed, and a latency message asks the pipeline to query again.
TEST(SsdDetectBatching, TheLatencyIncludesTheBatchesComputation) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  LatencyHarness lh("batch-size=4 threads=1 in-flight=1", *f);
  GstHarness* h = lh.h;
  const GstClockTime wait = 10 * GST_MSECOND + 3 * kFrameStep;
  EXPECT_EQ(gst_harness_query_latency(h), wait);
  for (int i = 0; i < 4; i++) ASSERT_EQ(gst_harness_push(h, stamped(*f, i)), GST_FLOW_OK);   // warm-up
  lh.expect_latency_unchanged(wait);
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 4; i < 8; i++) ASSERT_EQ(gst_harness_push(h, stamped(*f, i)), GST_FLOW_OK);
  // At most the time the four pushes took (the batch's computation), and a quarter more.
  lh.expect_computation_added(wait, std::chrono::steady_clock::now() - t1, "the second batch");
  for (GstBuffer* b; (b = gst_harness_try_pull(h));) gst_buffer_unref(b);
}

// With batches in flight on the CPU the computation is what the worker computed the batch in:
// one frame at a time with two in flight (two workers) adds no wait for a batch, and after the
// third frame (the first of each worker warms up) the latency is the time the frame took to
// compute, at most a quarter more than the push and pull around it (before, only the time
// submit() and collect() blocked counted: next to nothing with a worker computing).
TEST(SsdDetectBatching, TheLatencyIncludesTheComputationOfBatchesInFlight) {
  auto f = make_frame(flat(640, 480), GST_VIDEO_FORMAT_RGB);
  LatencyHarness lh("threads=1 in-flight=2", *f);
  GstHarness* h = lh.h;
  GstBus* bus = lh.bus;
  EXPECT_EQ(gst_harness_query_latency(h), 10 * GST_MSECOND);
  for (int i = 0; i < 2; i++) {   // warm-up, a frame per worker
    ASSERT_EQ(gst_harness_push(h, stamped(*f, i)), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(h));
  }
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY), nullptr);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 2)), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);   // pushed by the output thread once computed
  const auto took = std::chrono::steady_clock::now() - t1;
  ASSERT_NE(out, nullptr);
  gst_buffer_unref(out);
  lh.expect_computation_added(10 * GST_MSECOND, took, "the third frame");
}

// `interval` set while playing changes what batching adds (a batch spans batch-size analysed
// frames, and at most the buffers reserved for it at the start: batch-size x the start's
// interval): the query reports the new figure at once, and the element posts a latency message
// so that a pipeline asks again (25 fps, batches of 4, two in flight, started with every 2nd
// frame: a batch's first frame may wait 6 frame times for the rest of it (7 were reported before
// the frames skipped after a batch went out with it); every frame: 3; every 3rd: 7, as a batch
// holds the 8 buffers reserved for it at most). Without batching nothing changes and nothing is
// posted.
TEST(SsdDetectBatching, IntervalChangeWhilePlayingPostsALatencyMessage) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  {
    GstHarness* h = detect_harness("batch-size=4 in-flight=2 interval=2");
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    gst_harness_set_src_caps(h, caps_25fps(*f));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    EXPECT_EQ(gst_harness_query_latency(h), 10 * GST_MSECOND + 6 * kFrameStep);
    g_object_set(h->element, "interval", 3u, nullptr);
    EXPECT_EQ(gst_harness_query_latency(h), 10 * GST_MSECOND + 7 * kFrameStep);
    gst_harness_teardown(h);
  }
  for (auto [props, frames] : {std::pair{"batch-size=4 in-flight=2 interval=1", 3}, std::pair{"in-flight=1 interval=1", 0}}) {
    std::string start(props);
    start.replace(start.find("interval=1"), 10, "interval=2");
    GstHarness* h = detect_harness(start.c_str());
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    gst_harness_set_src_caps(h, caps_25fps(*f));
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    g_object_set(h->element, "interval", 1u, nullptr);
    GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY);
    EXPECT_EQ(m != nullptr, frames > 0) << props;
    if (m) {
      EXPECT_EQ(GST_MESSAGE_SRC(m), GST_OBJECT(h->element));
      gst_message_unref(m);
    }
    EXPECT_EQ(gst_harness_query_latency(h), 10 * GST_MSECOND + frames * kFrameStep) << props;
    g_object_set(h->element, "interval", 1u, nullptr);   // the same value: no message
    EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY), nullptr) << props;
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

// A live stream without a frame rate and batch-timeout 0: nothing bounds how long a frame waits
// for its batch, which the latency query cannot report; the element says so, once (and not
// before the caps have told it).
TEST(SsdDetectBatching, UnboundedLatencyOfALiveStreamWithoutFrameRateIsAWarning) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  for (auto [props, warns] : {std::pair{"batch-size=4", true}, std::pair{"batch-size=4 batch-timeout=100000000", false},
                              std::pair{"in-flight=2", false}}) {
    GstHarness* h = detect_harness(props);
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    gst_harness_query_latency(h);   // before any caps: the frame rate is not known to be missing
    EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr) << "no caps yet: " << props;
    GstCaps* caps = gst_caps_copy(f->caps);
    gst_caps_set_simple(caps, "framerate", GST_TYPE_FRACTION, 0, 1, nullptr);
    gst_harness_set_src_caps(h, caps);
    ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);
    gst_harness_query_latency(h);
    gst_harness_query_latency(h);
    GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
    EXPECT_EQ(m != nullptr, warns) << props;
    if (m) {
      const std::string text = take_message_text(m);
      EXPECT_NE(text.find("batch-timeout"), std::string::npos) << text;
    }
    EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr) << "once: " << props;
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

// ---- model-instance-id: several streams, one model

// Two streams, each pushing from a thread of its own, share one model instance: each gets the
// detections an element with a model of its own and the same settings gives it (its own
// threshold and classes), while the instance runs their frames together (batch-size 2, waiting
// up to 200 ms for the other stream's frame, which the latency query reports with the batches' computation), with one batch
// at a time and with two in flight.
TEST(SsdDetectShared, StreamsShareOneModelAndKeepTheirOwnDetections) {
  TwoScenes s;
  ASSERT_FALSE(same(s.ref_a, s.ref_b));
  ASSERT_FALSE(s.ref_b.empty());
  // The second stream's own settings: a lower threshold than the instance started with (the
  // first element's 0.3), a count, a class filter, a class threshold and a region.
  const std::string own2 = "threshold=0.05 max-detections=4 classes=" + s.ref_b.front().label +
                           " class-thresholds=" + s.ref_b.front().label + "=0.1 region=10,6,300,228";
  GstHarness* r = detect_harness(own2.c_str());
  const std::vector<Det> ref2 = detect_once(r, *s.b);
  gst_harness_teardown(r);
  ASSERT_FALSE(ref2.empty());
  ASSERT_FALSE(same(ref2, s.ref_b)) << "the second stream's settings should change its detections";
  {
    GstHarness* whole = detect_harness(own2.substr(0, own2.find(" region=")).c_str());
    const auto without_region = detect_once(whole, *s.b);
    gst_harness_teardown(whole);
    ASSERT_FALSE(same(ref2, without_region)) << "the region should change the second stream's detections";
  }

  for (const std::string in_flight : {"in-flight=1", "in-flight=2"}) {
    SCOPED_TRACE(in_flight);
    const std::string shared = "model-instance-id=streams batch-size=2 batch-timeout=200000000 " + in_flight + " ";
    GstHarness* h1 = detect_harness(shared.c_str());
    GstHarness* h2 = detect_harness((shared + own2).c_str());
    constexpr int kFrames = 6;
    auto stream = [](GstHarness* h, const Frame& f, std::vector<std::vector<Det>>* got) {
      gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
      for (int i = 0; i < kFrames; i++) {
        if (gst_harness_push(h, f.ref()) != GST_FLOW_OK) return;
        GstBuffer* out = gst_harness_pull(h);
        if (!out) return;
        got->push_back(detections(out));
        gst_buffer_unref(out);
      }
    };
    std::vector<std::vector<Det>> got1, got2;
    std::thread t1(stream, h1, std::cref(*s.a), &got1), t2(stream, h2, std::cref(*s.b), &got2);
    t1.join();
    t2.join();
    ASSERT_EQ(got1.size(), static_cast<size_t>(kFrames));
    ASSERT_EQ(got2.size(), static_cast<size_t>(kFrames));
    for (int i = 0; i < kFrames; i++) {
      EXPECT_TRUE(same_batched(got1[i], s.ref_a)) << "stream 1 frame " << i << ": " << describe(got1[i]);
      EXPECT_TRUE(same_batched(got2[i], ref2)) << "stream 2 frame " << i << ": " << describe(got2[i]);
    }
    gst_harness_set_upstream_latency(h1, 10 * GST_MSECOND);
    // The wait for the other stream, and the batches' computation (TheLatencyIncludesTheBatchesComputation).
    const GstClockTime latency = gst_harness_query_latency(h1);
    EXPECT_GE(latency, 210 * GST_MSECOND);
    EXPECT_LT(latency, 210 * GST_MSECOND + 5 * GST_SECOND);
    gst_harness_teardown(h1);
    gst_harness_teardown(h2);
  }
}

// A shared instance's batch is computed while the element's streaming thread waits: the latency
// query adds batch-timeout, and after the element's first frame (which may warm up) the batch's
// computation as measured, at most a quarter more than the push it returned from, with a latency
// message (before, batch-timeout alone).
TEST(SsdDetectShared, TheLatencyIncludesTheBatchesComputation) {
  auto f = make_frame(flat(640, 480), GST_VIDEO_FORMAT_RGB);
  LatencyHarness lh("model-instance-id=timed threads=1 batch-size=2 batch-timeout=30000000", *f);
  GstHarness* h = lh.h;
  const GstClockTime wait = 10 * GST_MSECOND + 30 * GST_MSECOND;
  EXPECT_EQ(gst_harness_query_latency(h), wait);
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 0)), GST_FLOW_OK);   // warm-up
  gst_buffer_unref(gst_harness_pull(h));
  lh.expect_latency_unchanged(wait);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(gst_harness_push(h, stamped(*f, 1)), GST_FLOW_OK);   // alone: the batch does not wait
  const auto took = std::chrono::steady_clock::now() - t1;
  gst_buffer_unref(gst_harness_pull(h));
  lh.expect_computation_added(wait, took, "the second frame");
}

// A shared batch waits for other streams' frames only while there are other streams: one
// element alone, or a batch size above the number of elements, runs its frame at once rather
// than after batch-timeout (2 s here).
TEST(SsdDetectShared, ABatchDoesNotWaitForStreamsThatAreNotThere) {
  const ssdtrain::SynthSample scene = one_object(320, 240, 2);
  auto f = make_frame(scene.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = detect_harness("model-instance-id=lonely threshold=0.05 batch-size=4 batch-timeout=2000000000");
  detect_once(h, *f);   // (a first frame may warm up)
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; i++) EXPECT_FALSE(detect_once(h, *f).empty());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 1.5) << "three frames of one stream waited for a batch of 4";
  gst_harness_teardown(h);
}

// A stream whose element stops or pauses, or whose stream ends (EOS), leaves the shared instance:
// the other streams' batches no longer wait for its frames (they did, batch-timeout each, until
// it had been silent for twice batch-timeout, so a remaining live stream fell behind the latency
// it reported and dropped frames); its next frame counts it again.
TEST(SsdDetectShared, AStreamThatStopsOrPausesIsNotWaitedFor) {
  const ssdtrain::SynthSample scene = one_object(320, 240, 2);
  auto f = make_frame(scene.image, GST_VIDEO_FORMAT_RGB);
  const char* props = "model-instance-id=leaving threshold=0.05 batch-size=2 batch-timeout=1000000000";
  // (VOID_PENDING: b's stream ends, EOS, and b stays playing: it sent its last frame.)
  for (const GstState leave_to : {GST_STATE_NULL, GST_STATE_PAUSED, GST_STATE_VOID_PENDING}) {
    SCOPED_TRACE(leave_to == GST_STATE_VOID_PENDING ? "EOS" : gst_element_state_get_name(leave_to));
    GstHarness* a = detect_harness(props);
    GstHarness* b = detect_harness(props);
    // b's stream sends a frame from a thread of its own, alive (its id not reused) until the end.
    std::promise<void> b_sent, finished;
    std::thread b_stream([&] {
      detect_once(b, *f);
      b_sent.set_value();
      finished.get_future().wait();
    });
    b_sent.get_future().wait();
    if (leave_to == GST_STATE_VOID_PENDING) ASSERT_TRUE(gst_harness_push_event(b, gst_event_new_eos()));
    else ASSERT_EQ(gst_element_set_state(b->element, leave_to), GST_STATE_CHANGE_SUCCESS);
    double took = 0;
    std::thread([&] {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_FALSE(detect_once(a, *f).empty());
      took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }).join();
    finished.set_value();
    b_stream.join();
    EXPECT_LT(took, 0.6) << "a's frame waited for the stream that left (batch-timeout 1 s)";
    gst_harness_teardown(b);
    gst_harness_teardown(a);
  }
}

// nms-iou is the instance's: another element's change of its own threshold leaves it (it used to
// reset it to that element's nms-iou).
TEST(SsdDetectShared, AnotherStreamsThresholdChangeLeavesTheNmsIou) {
  const ssdtrain::SynthSample scene = one_object(320, 240, 2);
  auto f = make_frame(scene.image, GST_VIDEO_FORMAT_RGB);
  // (Low threshold, room for every box: the two IoUs keep different counts.)
  GstHarness* alone = detect_harness("threshold=0.02 max-detections=1000");
  const size_t usual = detect_once(alone, *f).size();
  gst_harness_teardown(alone);
  const char* props = "model-instance-id=nms-test threshold=0.02 max-detections=1000 nms-iou=0.95";
  GstHarness* a = detect_harness(props);
  GstHarness* b = detect_harness(props);
  const size_t loose = detect_once(a, *f).size();
  EXPECT_GT(loose, usual) << "NMS at IoU 0.95 should keep more boxes";
  EXPECT_LT(loose, 1000u) << "the count should not be the cap";
  EXPECT_EQ(detect_once(b, *f).size(), loose);   // the instance's IoU
  g_object_set(b->element, "threshold", 0.011f, nullptr);
  detect_once(b, *f);
  EXPECT_EQ(detect_once(a, *f).size(), loose);
  gst_harness_teardown(a);
  gst_harness_teardown(b);
}

// The first element of an id loads the model; another asking for other instance-wide settings
// fails its start naming the difference, one differing only in per-stream settings joins, and
// once the last element has stopped the id is free again.
TEST(SsdDetectShared, OtherSettingsFailTheStartUntilTheInstanceIsGone) {
  GstHarness* h = detect_harness("model-instance-id=settings");
  const std::string pipeline = "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=48 ! ";
  const std::string other = pipeline + "ssddetect model-instance-id=settings nms-iou=0.6 ! fakesink";
  const std::string msg = failing_start(other);
  EXPECT_NE(msg.find("model instance \"settings\" already runs with NMS IoU 0.45"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0.6"), std::string::npos) << msg;
  const std::string precision =
      failing_start(pipeline + "ssddetect model-instance-id=settings precision=fp16 ! fakesink");
  EXPECT_NE(precision.find("fp32 (this one asks for fp16)"), std::string::npos) << precision;
  const std::string agnostic =
      failing_start(pipeline + "ssddetect model-instance-id=settings class-agnostic-nms=true ! fakesink");
  EXPECT_NE(agnostic.find("NMS per class (this one asks for across classes)"), std::string::npos) << agnostic;
  // In flight left to the machine (0) follows from the threads: the message says so (it named
  // in-flight alone, which nobody had set). On 2 CPUs: 2 in flight with threads 0, 1 with 2.
  if (!ssd::cuda_available() && !g_getenv("SSD_TEST_IN_FLIGHT") && ssd::usable_cpus() == 2) {
    const std::string threads = failing_start(pipeline + "ssddetect model-instance-id=settings threads=2 ! fakesink");
    EXPECT_NE(threads.find("2 batch(es) in flight (this one asks for 1), which in-flight 0 chooses for threads 2 on "
                           "2 CPU(s)"),
              std::string::npos)
        << threads;
  }
  starts_ok(pipeline + "ssddetect model-instance-id=settings threshold=0.9 max-detections=3 interval=2 ! fakesink");
  // One device named two ways (the harness's device=auto stands for this machine's).
  if (!ssd::cuda_available()) starts_ok(pipeline + "ssddetect model-instance-id=settings device=cpu ! fakesink");
  // The same model file under another name (a link, a path with "..") is the same model.
  TempDir tmp;
  fs::create_symlink(default_model(), tmp / "linked.safetensors");
  starts_ok(pipeline + "ssddetect model-instance-id=settings model=" + tmp / "linked.safetensors" + " ! fakesink");
  const fs::path model(default_model());
  starts_ok(pipeline + "ssddetect model-instance-id=settings model=" +
            (model.parent_path() / ".." / model.parent_path().filename() / model.filename()).string() + " ! fakesink");
  // A copy is another file, so another model as far as the instance can tell.
  fs::copy_file(default_model(), tmp / "copy.safetensors");
  const std::string copy = failing_start(pipeline + "ssddetect model-instance-id=settings model=" + tmp / "copy.safetensors" + " ! fakesink");
  EXPECT_NE(copy.find("already runs with model file"), std::string::npos) << copy;
  gst_harness_teardown(h);
  starts_ok(other);
}

// An element sharing a model instance refuses a model set while it runs, with a warning that
// says how to change it, and keeps the model in use (property included); stopped, it takes it.
TEST(SsdDetectShared, AModelSetWhileRunningIsRefusedWithAWarning) {
  GstHarness* h = detect_harness("model-instance-id=model-change");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gchar* before = nullptr;
  g_object_get(h->element, "model", &before, nullptr);
  TempDir tmp;
  const std::string copy = tmp / "copy.safetensors";
  fs::copy_file(default_model(), copy);
  g_object_set(h->element, "model", copy.c_str(), nullptr);
  const std::string warning = next_warning(bus);
  EXPECT_NE(warning.find("changes only in the NULL or READY state"), std::string::npos) << warning;
  EXPECT_NE(warning.find("The model of an element sharing a model instance"), std::string::npos) << warning;
  EXPECT_NE(warning.find("Stop the instance's elements, set it on each, and start them again"),
            std::string::npos) << warning;
  gchar* after = nullptr;
  g_object_get(h->element, "model", &after, nullptr);
  EXPECT_STREQ(after, before);
  g_free(after);
  g_free(before);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
  GstElement* stopped = gst_element_factory_make("ssddetect", nullptr);
  g_object_set(stopped, "model-instance-id", "model-change", "model", copy.c_str(), nullptr);
  gchar* taken = nullptr;
  g_object_get(stopped, "model", &taken, nullptr);
  EXPECT_EQ(taken, copy);
  g_free(taken);
  gst_object_unref(stopped);
}

// `nms-iou` is the shared instance's, read at start: set on one element while they run, it is
// refused with a warning, as `model` is (it changed every stream's detections, while the other
// elements' property still gave the old value), and the instance keeps its own.
TEST(SsdDetectShared, AnNmsIouSetWhileRunningIsRefusedWithAWarning) {
  GstHarness* h = detect_harness("model-instance-id=nms-running");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  g_object_set(h->element, "nms-iou", 0.6f, nullptr);   // (the harness is playing)
  const std::string warning = next_warning(bus);
  EXPECT_NE(warning.find("The nms-iou of an element sharing a model instance"), std::string::npos) << warning;
  gfloat now = 0;
  g_object_get(h->element, "nms-iou", &now, nullptr);
  EXPECT_FLOAT_EQ(now, 0.45f);
  const std::string pipeline = "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=48 ! ";
  starts_ok(pipeline + "ssddetect model-instance-id=nms-running ! fakesink");
  const std::string other = failing_start(pipeline + "ssddetect model-instance-id=nms-running nms-iou=0.6 ! fakesink");
  EXPECT_NE(other.find("NMS IoU 0.45 (this one asks for 0.6)"), std::string::npos) << other;
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// ---- bad models: the state change fails and the message names the file and the reason

TEST(SsdDetectModel, MissingFileFailsTheStateChange) {
  const std::string path = "/nonexistent/dir/no-such-model.safetensors";
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + path + " ! fakesink");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  // A file that cannot be looked at: the reason (a symbolic link loop was "does not exist").
  TempDir tmp;
  fs::create_symlink("loop_b", tmp.path() / "loop_a");
  fs::create_symlink("loop_a", tmp.path() / "loop_b");
  const std::string loop = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + tmp / "loop_a/m.safetensors" +
                                         " ! fakesink");
  EXPECT_NE(loop.find("Too many levels of symbolic links"), std::string::npos) << loop;
}

TEST(SsdDetectModel, CorruptFileFailsTheStateChange) {
  TempDir tmp;
  const std::string path = tmp / "garbage.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 4096; i++) out.put(static_cast<char>(rng() & 0xff));
  }
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + path + " ! fakesink");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_GT(msg.size(), path.size() + 30) << "no reason given: " << msg;
}

TEST(SsdDetectModel, TruncatedFileFailsTheStateChange) {
  TempDir tmp;
  const std::string path = tmp / "truncated.safetensors";
  const std::string src = default_model();
  starts_ok("videotestsrc num-buffers=1 ! ssddetect model=" + src + " ! fakesink");
  fs::copy_file(src, path);
  fs::resize_file(path, fs::file_size(path) / 2);
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + path + " ! fakesink");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_GT(msg.size(), path.size() + 30) << "no reason given: " << msg;
}

// A file whose configuration says one more class than its tensors hold: the classifier's
// shape does not match.
// Writes a copy of the weights file `src` to `path` with its configuration (the ssd.config
// metadata) edited by `edit`; the tensors stay as they are.
void write_model_with(const std::string& src, const std::string& path,
                      const std::function<void(ssd::SsdConfig&)>& edit) {
  std::ifstream in(src, std::ios::binary);
  ASSERT_TRUE(in.good()) << src;
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);   // little-endian host
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json j = json::parse(header);
  ASSERT_TRUE(j.contains("__metadata__") && j["__metadata__"].contains("ssd.config")) << header.substr(0, 200);
  ssd::SsdConfig cfg = ssd::SsdConfig::from_json_string(j["__metadata__"]["ssd.config"].get<std::string>());
  edit(cfg);
  j["__metadata__"]["ssd.config"] = cfg.to_json_string();
  const std::string new_header = j.dump();
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = new_header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(new_header.data(), static_cast<std::streamsize>(n));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

TEST(SsdDetectModel, MismatchedConfigurationFailsTheStateChange) {
  TempDir tmp;
  const std::string src = default_model();
  starts_ok("videotestsrc num-buffers=1 ! ssddetect model=" + src + " ! fakesink");
  const std::string path = tmp / "mismatched.safetensors";
  write_model_with(src, path, [](ssd::SsdConfig& c) { c.labels.push_back("unicorn"); });
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + path + " ! fakesink");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_GT(msg.size(), path.size() + 30) << "no reason given: " << msg;
}

// ---- the model property set while running

// The shipped model's tensors with every label prefixed "new-": the same boxes under other
// names, so that a frame's labels tell which model analysed it.
std::string renamed_model(const TempDir& tmp) {
  const std::string path = tmp / "renamed.safetensors";
  write_model_with(default_model(), path, [](ssd::SsdConfig& c) {
    for (auto& l : c.labels) l = "new-" + l;
  });
  return path;
}

std::string model_property(GstElement* e) {
  gchar* m = nullptr;
  g_object_get(e, "model", &m, nullptr);
  std::string r = m ? m : "";
  g_free(m);
  return r;
}


class SsdDetectModelChange : public ::testing::TestWithParam<const char*> {};

// Setting `model` while playing: frames go on through the old model while the new one loads in
// the background, then every later frame goes through the new one (frames held for a batch
// are finished by the old model), in order, with an ssd-model-changed message at the switch.
// A file that cannot be loaded leaves the model in use, with a warning, and the property
// reverts to it.
TEST_P(SsdDetectModelChange, SwitchesBetweenFramesAndKeepsTheModelOnAFailedLoad) {
  TempDir tmp;
  const std::string renamed = renamed_model(tmp);
  TwoScenes s;
  ASSERT_FALSE(s.ref_a.empty());
  GstHarness* h = detect_harness(GetParam());
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  std::vector<std::pair<int, std::vector<Det>>> out;
  int pushed = 0;
  auto push = [&] {
    EXPECT_EQ(gst_harness_push(h, stamped(*s.a, pushed++)), GST_FLOW_OK);
    auto got = pull_all(h);
    out.insert(out.end(), got.begin(), got.end());
  };
  for (int i = 0; i < 3; i++) push();
  g_object_set(h->element, "model", renamed.c_str(), nullptr);
  // Time to load it (a few ms for this model), so that the switch most likely comes with the
  // next frame, while the batched element holds frame 2 for the old model. The first frame
  // pushed once the new model is loaded is its first: the message comes then.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int first_new = -1;
  GstStructure* changed = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  while (first_new < 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    push();
    if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
      if (gst_message_has_name(m, "ssd-model-changed")) {
        first_new = pushed - 1;
        changed = gst_structure_copy(gst_message_get_structure(m));
      }
      gst_message_unref(m);
    }
    if (first_new < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(first_new, 3) << "no ssd-model-changed message within 60 s";
  std::printf("first frame of the new model: %d\n", first_new);
  EXPECT_STREQ(gst_structure_get_string(changed, "model"), renamed.c_str());
  EXPECT_TRUE(g_str_has_prefix(gst_structure_get_string(changed, "labels"), "new-")) << gst_structure_to_string(changed);
  EXPECT_STREQ(gst_structure_get_string(changed, "device"), "cpu");
  gst_structure_free(changed);
  for (int i = 0; i < 2; i++) push();

  // A missing file: a warning naming it; the element goes on with the renamed model.
  const std::string missing = tmp / "missing.safetensors";
  g_object_set(h->element, "model", missing.c_str(), nullptr);
  const std::string warning = next_warning(bus);
  EXPECT_NE(warning.find(missing), std::string::npos) << warning;
  EXPECT_NE(warning.find(renamed), std::string::npos) << "should name the model in use: " << warning;
  EXPECT_EQ(model_property(h->element), renamed);
  for (int i = 0; i < 2; i++) push();

  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  auto rest = pull_all(h);
  out.insert(out.end(), rest.begin(), rest.end());
  ASSERT_EQ(out.size(), static_cast<size_t>(pushed));
  for (int i = 0; i < pushed; i++) {
    EXPECT_EQ(out[i].first, i) << "frames out of order";
    std::vector<Det> dets = out[i].second;
    bool renamed_labels = true, original_labels = true;
    for (Det& d : dets) {
      EXPECT_EQ(d.roi_type, d.label);   // the quark is the label's
      const bool is_new = g_str_has_prefix(d.label.c_str(), "new-");
      renamed_labels &= is_new;
      original_labels &= !is_new;
      if (is_new) d.label = d.roi_type = d.label.substr(4);
    }
    if (i < first_new) {
      EXPECT_TRUE(original_labels) << "frame " << i << " before the switch: " << describe(out[i].second);
    } else {
      EXPECT_TRUE(renamed_labels) << "frame " << i << " after the switch: " << describe(out[i].second);
    }
    // The same tensors: the same boxes and confidences, whichever model.
    EXPECT_TRUE(same_batched(dets, s.ref_a)) << "frame " << i << ": " << describe(out[i].second);
  }
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// The warning of a failed load comes from a thread an application may stop the element from
// (a bus sync handler setting the pipeline to READY): no self-join, no hang.
TEST(SsdDetectModelChange, AnApplicationMayStopTheElementFromTheFailedLoadWarning) {
  GstElement* pipeline = gst_parse_launch(
      "videotestsrc ! video/x-raw,width=160,height=120 ! ssddetect name=d ! fakesink sync=false", nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstBus* bus = gst_element_get_bus(pipeline);
  struct Ctx {
    GstElement* pipeline;
    std::atomic<int> stopped{0};
  } ctx{pipeline};
  gst_bus_set_sync_handler(
      bus,
      [](GstBus*, GstMessage* m, gpointer data) {
        auto* c = static_cast<Ctx*>(data);
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING && c->stopped == 0) {
          c->stopped = gst_element_set_state(c->pipeline, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS ? 1 : 2;
        }
        return GST_BUS_PASS;
      },
      &ctx, nullptr);
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);
  GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
  g_object_set(d, "model", "/nonexistent/model.safetensors", nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  while (ctx.stopped == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ctx.stopped.load(), 1) << "the handler did not stop the pipeline";
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(d);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
}

// An application's sync bus handler (or notify handler) runs in the thread that posts; one that
// stops the element on a message posted while a frame is analysed (the switch to a new model, a
// refused `classes`) finds the element done with that frame: a frame's messages are posted when
// its work is done. (GStreamer advises against stopping an element from its streaming thread, but
// a handler may.)
TEST_P(SsdDetectModelChange, AnApplicationMayStopTheElementFromAFramesMessages) {
  TempDir tmp;
  const std::string renamed = renamed_model(tmp);
  TwoScenes s;
  for (const bool model_change : {true, false}) {
    SCOPED_TRACE(model_change ? "stopped on ssd-model-changed" : "stopped on the refused classes' warning");
    GstHarness* h = detect_harness(GetParam());
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    struct Ctx {
      GstElement* element;
      bool model_change;
      int stopped = 0;
    } ctx{h->element, model_change};
    gst_bus_set_sync_handler(
        bus,
        [](GstBus*, GstMessage* m, gpointer data) {
          auto* c = static_cast<Ctx*>(data);
          const bool stop = c->model_change ? gst_message_has_name(m, "ssd-model-changed")
                                            : GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING;
          if (stop && c->stopped == 0)
            c->stopped = gst_element_set_state(c->element, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS ? 1 : 2;
          return GST_BUS_PASS;
        },
        &ctx, nullptr);
    gst_harness_set_src_caps(h, caps_25fps(*s.a));
    int pushed = 0;
    for (; pushed < 3; pushed++) EXPECT_EQ(gst_harness_push(h, stamped(*s.a, pushed)), GST_FLOW_OK);
    g_object_set(h->element, model_change ? "model" : "classes", model_change ? renamed.c_str() : "unicorn", nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    while (ctx.stopped == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
      gst_harness_push(h, stamped(*s.a, pushed++));   // (flushing once stopped)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(ctx.stopped, 1) << "the handler did not stop the element";
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

INSTANTIATE_TEST_SUITE_P(Batching, SsdDetectModelChange, ::testing::Values("in-flight=1", "batch-size=2 in-flight=2"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(std::string(p.param).find("batch-size") == std::string::npos ? "OneByOne"
                                                                                                          : "Batched");
                         });

// Pushes `f` through `h` (the detections of each frame to `seen`) until a message of `type`
// (and, for element messages, that name) is on `bus`, for up to 60 s; returns it (or null).
GstMessage* push_until_message(GstHarness* h, GstBus* bus, const Frame& f, GstMessageType type, const char* name,
                               std::vector<std::vector<Det>>* seen) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    seen->push_back(detect_once(h, f));
    while (GstMessage* m = gst_bus_pop(bus)) {
      if (GST_MESSAGE_TYPE(m) == type && (!name || gst_message_has_name(m, name))) return m;
      gst_message_unref(m);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return nullptr;
}

// A new model must know the classes `classes` names (checked when the element would switch to
// it, so that `model` and `classes` set in one call go together); elements sharing a model
// instance change their model in READY only. A refused model leaves the element as it was, with
// a warning, and the property reverts.
// A FIFO (or a socket, a device) as the model is refused before it is opened: its open blocks
// until a writer comes, and a FIFO set while playing blocked the loader thread, so that
// stopping the pipeline hung for ever.
TEST(SsdDetectModel, AFifoIsRefusedAtTheStartAndWhilePlaying) {
  TempDir tmp;
  const std::string fifo = tmp / "fifo.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect model=" + fifo + " ! fakesink");
  EXPECT_NE(msg.find(fifo + "\": it is not a regular file"), std::string::npos) << msg;
  TwoScenes s;
  GstHarness* h = detect_harness();
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, gst_caps_ref(s.a->caps));
  detect_once(h, *s.a);
  g_object_set(h->element, "model", fifo.c_str(), nullptr);
  std::vector<std::vector<Det>> seen;
  GstMessage* m = push_until_message(h, bus, *s.a, GST_MESSAGE_WARNING, nullptr, &seen);
  ASSERT_NE(m, nullptr) << "no warning within 60 s";
  const std::string text = take_message_text(m);
  EXPECT_NE(text.find("it is not a regular file"), std::string::npos) << text;
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);   // (it hung here)
}

TEST(SsdDetectModelChange, ClassesGoWithTheModelAndARefusedModelLeavesAllAsItWas) {
  TempDir tmp;
  const std::string renamed = renamed_model(tmp);
  TwoScenes s;
  ASSERT_FALSE(s.ref_a.empty());
  const std::string label = s.ref_a.front().label;   // a class scene A has
  for (const std::string& props : {"classes=" + label, std::string("model-instance-id=change-test")}) {
    SCOPED_TRACE(props);
    GstHarness* h = detect_harness(props.c_str());
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    const std::string original = model_property(h->element);
    gst_harness_set_src_caps(h, gst_caps_ref(s.a->caps));
    const auto before = detect_once(h, *s.a);
    EXPECT_FALSE(before.empty());
    g_object_set(h->element, "model", renamed.c_str(), nullptr);
    std::vector<std::vector<Det>> seen;
    GstMessage* m = push_until_message(h, bus, *s.a, GST_MESSAGE_WARNING, nullptr, &seen);
    ASSERT_NE(m, nullptr) << "no warning within 60 s";
    const std::string warning = take_message_text(m);
    EXPECT_NE(warning.find(props[0] == 'c' ? label : "model-instance-id"), std::string::npos) << warning;
    EXPECT_EQ(model_property(h->element), original);
    seen.push_back(detect_once(h, *s.a));
    for (const auto& dets : seen) EXPECT_TRUE(same(before, dets)) << describe(before) << " / " << describe(dets);
    if (props[0] == 'c') {
      // Both at once: the new model, and the new classes with it.
      const std::string wanted = "new-" + label;
      g_object_set(h->element, "model", renamed.c_str(), "classes", wanted.c_str(), nullptr);
      seen.clear();
      m = push_until_message(h, bus, *s.a, GST_MESSAGE_ELEMENT, "ssd-model-changed", &seen);
      ASSERT_NE(m, nullptr) << "no switch within 60 s";
      gst_message_unref(m);
      const auto after = detect_once(h, *s.a);
      EXPECT_EQ(after.size(), before.size());
      for (const Det& d : after) EXPECT_EQ(d.label, wanted);
      EXPECT_EQ(model_property(h->element), renamed);
    }
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

// What was set while running and no frame applied (a live source's pipeline PAUSED, say) is
// settled when the element stops, as a frame would have settled it: a refused value posts its
// warning and its property goes back, so that the next start runs (before, `classes=unicorn` or
// a garbage `model` set just before a restart failed that start with an error); a model that
// loads and fits is the one the next start runs with.
TEST(SsdDetectModelChange, StoppingSettlesWhatNoFrameApplied) {
  TempDir tmp;
  const std::string renamed = renamed_model(tmp);
  const std::string garbage = tmp / "garbage.safetensors";
  std::ofstream(garbage) << "not a model";
  struct Case {
    const char* property;
    std::string value, start_props, warning, settled;   // settled: the property after the stop
  };
  const std::string star = labels()[3];
  const Case cases[] = {
      {"classes", "unicorn", "", "unicorn", ""},
      {"class-thresholds", star + "=abc", "", "abc", ""},
      {"model", garbage, "", garbage, default_model()},
      {"model", "/nonexistent/model.safetensors", "", "nonexistent", default_model()},
      {"model", renamed, "classes=" + star, "Not switching", default_model()},   // no such class in it
      {"model", renamed, "", "", renamed},                                       // loads, fits: kept
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.property) + "=" + c.value + " " + c.start_props);
    GstElement* pipeline = gst_parse_launch(
        ("videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! ssddetect name=d " +
         c.start_props + " ! fakesink").c_str(),
        nullptr);
    ASSERT_NE(pipeline, nullptr);
    GstBus* bus = gst_element_get_bus(pipeline);
    GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
    ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);   // started, no frame
    g_object_set(d, c.property, c.value.c_str(), nullptr);
    // Stopped (READY: a pipeline going to NULL flushes its bus, the warnings with it).
    ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
    gchar* now = nullptr;
    g_object_get(d, c.property, &now, nullptr);
    EXPECT_EQ(std::string(now ? now : ""), c.settled);
    g_free(now);
    if (!c.warning.empty()) {   // (a failed load's comes from GStreamer's thread pool: waited for)
      const std::string warning = next_warning(bus);
      EXPECT_NE(warning.find(c.warning), std::string::npos) << warning;
    }
    EXPECT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);
    GstMessage* error = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    EXPECT_EQ(error, nullptr) << "the restart failed";
    if (error) gst_message_unref(error);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(d);
    gst_object_unref(bus);
    gst_object_unref(pipeline);
  }
}

// The newest request wins: a model asked for while an earlier one loads makes the earlier one's
// outcome moot. A corrupt file superseded while it loads is neither warned about nor reverted to;
// the newer file is switched to. (The newer request is made from the loader thread's own debug
// line announcing the corrupt file's load, so the two loads overlap whatever the timing.)
TEST(SsdDetectModelChange, AModelAskedForWhileAnotherLoadsSupersedesIt) {
  TempDir tmp;
  const std::string renamed = renamed_model(tmp);
  const std::string garbage = tmp / "garbage.safetensors";
  std::ofstream(garbage) << "not a model";
  TwoScenes s;
  GstHarness* h = detect_harness();
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps(h, caps_25fps(*s.a));
  int pushed = 0;
  EXPECT_EQ(gst_harness_push(h, stamped(*s.a, pushed++)), GST_FLOW_OK);
  struct Hook {
    GstElement* element;
    std::string announce, newer;
    std::atomic<int> fired{0};
  } hook{h->element, "loading model " + garbage + " ", renamed};
  const GstLogFunction on_log = [](GstDebugCategory* category, GstDebugLevel, const gchar*, const gchar*, gint, GObject*,
                   GstDebugMessage* message, gpointer data) {
    auto* k = static_cast<Hook*>(data);
    const gchar* text = gst_debug_message_get(message);
    if (std::strcmp(gst_debug_category_get_name(category), "ssddetect") != 0 || !text ||
        !g_str_has_prefix(text, k->announce.c_str()) || k->fired.fetch_add(1) != 0)
      return;
    g_object_set(k->element, "model", k->newer.c_str(), nullptr);   // (in the loader thread)
  };
  gst_debug_set_threshold_for_name("ssddetect", GST_LEVEL_DEBUG);
  gst_debug_add_log_function(on_log, &hook, nullptr);
  g_object_set(h->element, "model", garbage.c_str(), nullptr);
  auto unexpected = [](GstMessage* m) {
    const GstStructure* st = gst_message_get_structure(m);
    gchar* text = st ? gst_structure_to_string(st) : nullptr;
    ADD_FAILURE() << "unexpected " << GST_MESSAGE_TYPE_NAME(m) << ": " << (text ? text : "");
    g_free(text);
  };
  GstStructure* changed = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  while (!changed && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    EXPECT_EQ(gst_harness_push(h, stamped(*s.a, pushed++)), GST_FLOW_OK);
    pull_all(h);
    // (Popping drops the messages of other types: warnings are looked for here too.)
    while (GstMessage* m = gst_bus_pop_filtered(bus, GstMessageType(GST_MESSAGE_WARNING | GST_MESSAGE_ELEMENT))) {
      if (gst_message_has_name(m, "ssd-model-changed") && !changed)
        changed = gst_structure_copy(gst_message_get_structure(m));
      else
        unexpected(m);
      gst_message_unref(m);
    }
    if (!changed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  gst_debug_remove_log_function(on_log);
  gst_debug_unset_threshold_for_name("ssddetect");
  EXPECT_EQ(hook.fired.load(), 1) << "the loader did not announce the corrupt file's load";
  ASSERT_NE(changed, nullptr) << "no ssd-model-changed message within 60 s";
  EXPECT_STREQ(gst_structure_get_string(changed, "model"), renamed.c_str());
  gst_structure_free(changed);
  EXPECT_EQ(model_property(h->element), renamed);
  // A warning about the superseded file would have been posted (from GStreamer's thread pool)
  // before the newer file's load even began; give the pool time all the same.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(gst_harness_push(h, stamped(*s.a, pushed++)), GST_FLOW_OK);
  pull_all(h);
  while (GstMessage* m = gst_bus_pop_filtered(bus, GstMessageType(GST_MESSAGE_WARNING | GST_MESSAGE_ELEMENT))) {
    unexpected(m);
    gst_message_unref(m);
  }
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

TEST(SsdDetectModel, UnknownClassFailsTheStateChange) {
  starts_ok("videotestsrc num-buffers=1 ! ssddetect classes=\"" + labels()[0] + "\" ! fakesink");
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect classes=\"" + labels()[0] +
                                        ",unicorn\" ! fakesink");
  EXPECT_NE(msg.find("unicorn"), std::string::npos) << msg;
  EXPECT_NE(msg.find(labels()[1]), std::string::npos) << "should list the known classes: " << msg;
}

TEST(SsdDetectModel, UnknownDeviceFailsTheStateChange) {
  starts_ok("videotestsrc num-buffers=1 ! ssddetect device=cpu ! fakesink");
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssddetect device=tpu:3 ! fakesink");
  EXPECT_NE(msg.find(default_model()), std::string::npos) << msg;
}

// ---- in a real pipeline: resident memory while settings change

// Resident memory of this process in MiB, after glibc has given back what it can (so freed
// blocks that the allocator keeps do not count).
double resident_mib() {
  malloc_trim(0);
  long pages = 0, resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

class SsdPipelineMemory : public ::testing::TestWithParam<const char*> {};

// A camera feed runs for days: frames, and the changes an application makes while it plays
// (model, resolution, region, classes; a shared model instance's model only changes in READY,
// so not in that mode), must not make the process grow. videotestsrc's ball
// (an ellipse to the shipped model) through ssddetect ! ssdtrack ! ssdoverlay ! ssdexport,
// with a change every 40 frames, 4000 frames (SSD_MEMORY_TEST_FRAMES); resident memory is
// sampled before each model change (while a model loads, two are in memory) and, past the
// first 1200 frames (the heap settles by about 1000), may grow by less than 3 MiB per 1000
// frames (least-squares slope; -0.2 to 1.3 measured here, alone and beside the training suite,
// noise): a 4 KiB string kept per frame, injected into ssddetect for the check, gave 3.92.
TEST_P(SsdPipelineMemory, StaysFlatWhileFramesAndSettingsChange) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine: resident memory says nothing here";
#endif
  TempDir tmp;
  const std::string model = default_model(), copy = tmp / "copy.safetensors";
  fs::copy_file(model, copy);
  const bool shared = std::string(GetParam()).find("model-instance-id") != std::string::npos;
  const std::string desc =
      "videotestsrc pattern=ball ! capsfilter name=cf caps=video/x-raw,format=NV12,width=320,height=240 ! "
      "ssddetect name=d threshold=0.2 " + std::string(GetParam()) + " ! ssdtrack ! ssdoverlay ! "
      "ssdexport location=" + (tmp / "out.jsonl") + " ! fakesink name=sink sync=false";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  GstElement* cf = gst_bin_get_by_name(GST_BIN(pipeline), "cf");
  GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), "d");
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  struct Counts {
    std::atomic<int> frames{0}, objects{0};
  } counts;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
                      auto* c = static_cast<Counts*>(data);
                      c->frames++;
                      c->objects += static_cast<int>(detections(GST_PAD_PROBE_INFO_BUFFER(info)).size());
                      return GST_PAD_PROBE_OK;
                    },
                    &counts, nullptr);
  gst_object_unref(pad);
  GstBus* bus = gst_element_get_bus(pipeline);
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  const char* frames_env = g_getenv("SSD_MEMORY_TEST_FRAMES");
  const int kWarmup = 1200, kFrames = frames_env ? std::atoi(frames_env) : 4000;
  int changes = 0;
  std::vector<std::pair<int, double>> samples;   // (frames, resident MiB)
  const auto t0 = std::chrono::steady_clock::now();
  while (counts.frames < kFrames && std::chrono::steady_clock::now() - t0 < std::chrono::minutes(5)) {
    if (GstMessage* m = gst_bus_pop_filtered(bus, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
      gchar* text = gst_structure_to_string(gst_message_get_structure(m));
      ADD_FAILURE() << "message from " << GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) << ": " << text;
      g_free(text);
      gst_message_unref(m);
      break;
    }
    while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) gst_message_unref(m);
    if (counts.frames >= 40 * (changes + 1)) {
      // Sampled before each model change, when the previous one (120 frames ago) is long done:
      // while one loads, both models are in memory.
      if (changes % 4 == 0) samples.emplace_back(counts.frames.load(), resident_mib());
      switch (changes++ % 4) {
        case 0:   // a shared instance's model changes only in READY
          if (!shared) g_object_set(d, "model", (changes / 4) % 2 ? copy.c_str() : model.c_str(), nullptr);
          break;
        case 1: {
          GstCaps* caps = gst_caps_from_string((changes / 4) % 2 ? "video/x-raw,format=NV12,width=256,height=192"
                                                                 : "video/x-raw,format=NV12,width=320,height=240");
          g_object_set(cf, "caps", caps, nullptr);
          gst_caps_unref(caps);
          break;
        }
        case 2: g_object_set(d, "region", (changes / 4) % 2 ? "16,16,200,160" : "", nullptr); break;
        default: g_object_set(d, "classes", (changes / 4) % 2 ? "ellipse,star" : "", nullptr); break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  ASSERT_GE(counts.frames.load(), kFrames) << "too slow: " << counts.frames.load() << " frames in 5 minutes";
  // Least-squares slope of resident memory over the frames after the warm-up.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [frames, mib] : samples) {
    if (frames < kWarmup) continue;
    n++, sx += frames, sy += mib, sxx += double(frames) * frames, sxy += frames * mib;
  }
  ASSERT_GE(n, 10);
  const double mib_per_1000_frames = 1000 * (n * sxy - sx * sy) / (n * sxx - sx * sx);
  std::printf("%d frames, %d objects, %d changes; after %d frames resident memory grew %.2f MiB per 1000 frames "
              "(MiB at frame:", counts.frames.load(), counts.objects.load(), changes, kWarmup, mib_per_1000_frames);
  for (const auto& [frames, mib] : samples) std::printf(" %.1f@%d", mib, frames);
  std::printf(")\n");
  EXPECT_GT(counts.objects.load(), counts.frames.load() / 2) << "the ball should be detected";
  EXPECT_GE(changes, kFrames / 40 - 2);
  EXPECT_LT(mib_per_1000_frames, 3.0) << "resident memory grows";
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(d);
  gst_object_unref(cf);
  gst_object_unref(pipeline);
}

INSTANTIATE_TEST_SUITE_P(Modes, SsdPipelineMemory,
                         ::testing::Values("in-flight=1", "batch-size=2 in-flight=2 threads=1 interval=2",
                                           "model-instance-id=memory-test batch-size=2 in-flight=2 threads=1"));

// ---- in a real pipeline: EOS and a flushing seek

// `props`: ssddetect's properties besides interval=4.
void eos_and_flushing_seek(const std::string& props) {
  TempDir tmp;
  const std::string jsonl = tmp / "out.jsonl";
  const std::string desc =
      "videotestsrc num-buffers=40 ! video/x-raw,format=NV12,width=160,height=120,framerate=20/1 ! "
      "ssddetect interval=4 " + props + " ! ssdexport name=export location=" + jsonl + " ! fakesink name=sink sync=false";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  GstElement* exporter = gst_bin_get_by_name(GST_BIN(pipeline), "export");
  GstPad* pad = gst_element_get_static_pad(exporter, "src");
  struct Counts {
    std::atomic<int> buffers{0};
    std::atomic<gint64> max_pts{-1}, min_pts_after_seek{G_MAXINT64};
    std::atomic<bool> seeked{false};
  } counts;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
                      auto* c = static_cast<Counts*>(data);
                      c->buffers++;
                      const gint64 pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
                      if (c->seeked) c->min_pts_after_seek = std::min<gint64>(c->min_pts_after_seek, pts);
                      return GST_PAD_PROBE_OK;
                    },
                    &counts, nullptr);
  gst_object_unref(pad);

  ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_ASYNC);
  ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);
  counts.seeked = true;
  ASSERT_TRUE(gst_element_seek_simple(pipeline, GST_FORMAT_TIME,
                                      static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
                                      GST_SECOND));
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg =
      gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(msg, nullptr) << "no EOS";
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
  // Still PLAYING: ssdexport flushed its file at EOS, one line per buffer that went through.
  std::ifstream in(jsonl);
  int lines = 0;
  std::string line;
  gint64 last_pts = -1;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    EXPECT_EQ(j["width"], 160);
    last_pts = j["pts"].get<gint64>();
    lines++;
  }
  EXPECT_EQ(lines, counts.buffers.load());
  EXPECT_GE(counts.min_pts_after_seek.load(), GST_SECOND) << "buffers before the seek position after the seek";
  EXPECT_GT(last_pts, GST_SECOND) << "nothing after the seek position";
  gst_object_unref(bus);
  gst_object_unref(exporter);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

// With the defaults (on 2 CPUs or more, frames in flight) and one frame at a time, in place.
TEST(SsdPipeline, EosAndFlushingSeek) {
  for (const std::string props : {"", "in-flight=1"}) {
    SCOPED_TRACE(props);
    eos_and_flushing_seek(props);
  }
}

// A media player's pipeline: playbin plays a file and runs `ssddetect ! ssdexport` as its
// video-filter (what an application built on playbin sets, with no pipeline of its own); the
// exported detections of the scene's frame are those of the reference.
TEST(SsdPipeline, PlaybinVideoFilterDetectsInAFile) {
  const std::string missing = missing_factory({"playbin", "pngdec"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 12);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the frame";
  const std::string jsonl = tmp / "playbin.jsonl";
  GstElement* playbin = gst_element_factory_make("playbin", nullptr);
  ASSERT_NE(playbin, nullptr);
  GError* err = nullptr;
  GstElement* filter =
      gst_parse_bin_from_description(("ssddetect threshold=0.1 ! ssdexport location=" + jsonl).c_str(), TRUE, &err);
  ASSERT_NE(filter, nullptr) << (err ? err->message : "");
  const std::string uri = "file://" + png;
  g_object_set(playbin, "uri", uri.c_str(), "video-filter", filter, "video-sink",
               gst_element_factory_make("fakesink", nullptr), "audio-sink", gst_element_factory_make("fakesink", nullptr),
               nullptr);
  gst_element_set_state(playbin, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(playbin);
  GstMessage* msg =
      gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(msg, nullptr) << "no EOS";
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(msg, &e, &debug);
    ADD_FAILURE() << e->message << " (" << (debug ? debug : "") << ")";
    g_error_free(e);
    g_free(debug);
  }
  gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(playbin, GST_STATE_NULL);
  gst_object_unref(playbin);
  std::ifstream in(jsonl);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u) << "one frame in the PNG file";
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j["width"], 320);
  EXPECT_EQ(j["height"], 240);
  expect_covers(ref, detections(j), 0.3, 0.95, 0.01, "playbin's video-filter");
}

// GLib criticals of the GStreamer domain while it lives, recorded instead of logged (or
// aborting the suite, with G_DEBUG=fatal-criticals): for a known one of GStreamer's own, which
// the test then checks is the only kind.
class RecordedCriticals {
 public:
  RecordedCriticals()
      : fatal_(g_log_set_always_fatal(static_cast<GLogLevelFlags>(G_LOG_FATAL_MASK))),
        handler_(g_log_set_handler("GStreamer", G_LOG_LEVEL_CRITICAL, record, this)) {}
  ~RecordedCriticals() {
    g_log_remove_handler("GStreamer", handler_);
    g_log_set_always_fatal(fatal_);
  }
  RecordedCriticals(const RecordedCriticals&) = delete;
  RecordedCriticals& operator=(const RecordedCriticals&) = delete;
  std::vector<std::string> messages() {
    std::lock_guard<std::mutex> guard(mutex_);
    return messages_;
  }

 private:
  static void record(const gchar*, GLogLevelFlags, const gchar* message, gpointer self) {
    auto* r = static_cast<RecordedCriticals*>(self);
    std::lock_guard<std::mutex> guard(r->mutex_);
    r->messages_.emplace_back(message ? message : "");
  }
  GLogLevelFlags fatal_;
  guint handler_;
  std::mutex mutex_;
  std::vector<std::string> messages_;
};

// Gapless playback in a media player: playbin plays file A, and the application sets file B's
// uri in about-to-finish; the video-filter `ssddetect interval=3 ! ssdtrack ! ssdexport !
// ssdoverlay` stays in place. Each file holds 4 frames of one picture (raw BGR in AVI: the
// pixels as written), so B's first frame is the fifth in ssddetect's count, which interval=3
// would skip: it must be analysed afresh (a new stream), with B's own detections, none carried
// from A, and ssdtrack must forget A's tracks (no id of A on B's frames). B is a blank frame of
// A's size (nothing to find: a carried box would show), A's picture again (a playlist looping one
// file: the same boxes at the same places, which tracks kept would take) and a scene of another
// size; ssdexport's lines count on, each with its frame's size. (playbin3 of GStreamer 1.22 hangs
// now and then in such a switch, with `identity` as its video-filter too: not tested here.
// playbin of 1.22.0 now and then disposes an input-selector of the old file still PLAYING, a
// GLib critical, and objects left alive, with `identity` as its video-filter too: 1 switch in
// 100, 2026-12-07; this test failed on it in a CI run. That one critical is let through, any
// other fails the test; it runs in a suite of its own without the leak tracer, elements-gapless.)
TEST(SsdPipeline, GaplessPlaybackStartsEachFileAfresh) {
  if (!g_getenv("SSD_TEST_GAPLESS")) GTEST_SKIP() << "runs in the elements-gapless suite (SSD_TEST_GAPLESS=1)";
  const std::string missing = missing_factory({"playbin", "pngdec", "imagefreeze", "avimux", "avidemux"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  constexpr int kFrames = 4;
  // `image` as an AVI file of kFrames raw BGR frames at 10 fps.
  const auto write_avi = [](const cv::Mat& image, const std::string& path) {
    const std::string png = path + ".png";
    ASSERT_TRUE(cv::imwrite(png, image));
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(("filesrc location=" + png + " ! pngdec ! videoconvert ! video/x-raw,format=BGR ! "
                                      "imagefreeze num-buffers=" + std::to_string(kFrames) +
                                      " ! video/x-raw,framerate=10/1 ! avimux ! filesink location=" + path).c_str(), &err);
    ASSERT_NE(p, nullptr) << (err ? err->message : "");
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* msg = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    EXPECT_TRUE(msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) << "writing " << path;
    if (msg) gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  };
  for (const char* kind : {"blank", "A again", "another size"}) {
    SCOPED_TRACE(std::string("B ") + kind);
    const bool blank = std::string(kind) == "blank";
    TempDir tmp;
    const ssdtrain::SynthSample a = one_object(320, 240, 12);
    const cv::Mat b = blank ? flat(320, 240) : std::string(kind) == "A again" ? a.image : one_object(480, 360, 9).image;
    const std::string avi_a = tmp / "a.avi", avi_b = tmp / "b.avi";
    write_avi(a.image, avi_a);
    write_avi(b, avi_b);
    const std::vector<Det> ref_a = reference(a.image, nullptr), ref_b = reference(b, nullptr);
    ASSERT_NE(top(ref_a), nullptr) << "the model finds nothing in A";
    if (blank) {
      ASSERT_TRUE(ref_b.empty()) << "the model finds something in the blank frame: " << describe(ref_b);
    } else {
      ASSERT_NE(top(ref_b), nullptr) << "the model finds nothing in B";
    }
    const std::string jsonl = tmp / "gapless.jsonl";
    RecordedCriticals criticals;
    GstElement* pb = gst_element_factory_make("playbin", nullptr);
    ASSERT_NE(pb, nullptr);
    GError* err = nullptr;
    GstElement* filter = gst_parse_bin_from_description(
        ("ssddetect interval=3 ! ssdtrack ! ssdexport location=" + jsonl + " ! ssdoverlay").c_str(), TRUE, &err);
    ASSERT_NE(filter, nullptr) << (err ? err->message : "");
    const std::string uri_a = "file://" + avi_a;
    struct Next {
      std::string uri;
      std::atomic<int> calls{0};
    } next{"file://" + avi_b};
    g_object_set(pb, "uri", uri_a.c_str(), "video-filter", filter, "video-sink",
                 gst_element_factory_make("fakesink", nullptr), "audio-sink", gst_element_factory_make("fakesink", nullptr),
                 nullptr);
    g_signal_connect(pb, "about-to-finish", G_CALLBACK(+[](GstElement* e, gpointer data) {
                       auto* n = static_cast<Next*>(data);
                       if (n->calls++ == 0) g_object_set(e, "uri", n->uri.c_str(), nullptr);
                     }),
                     &next);
    gst_element_set_state(pb, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(pb);
    std::vector<std::string> problems;   // errors and warnings, which playback must not post
    for (;;) {
      GstMessage* msg = gst_bus_timed_pop_filtered(
          bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING));
      if (!msg) {
        problems.push_back("no EOS in 60 s");
        break;
      }
      const GstMessageType type = GST_MESSAGE_TYPE(msg);
      if (type != GST_MESSAGE_EOS) {
        GError* e = nullptr;
        gchar* debug = nullptr;
        if (type == GST_MESSAGE_ERROR) {
          gst_message_parse_error(msg, &e, &debug);
        } else {
          gst_message_parse_warning(msg, &e, &debug);
        }
        problems.push_back(std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + e->message);
        g_error_free(e);
        g_free(debug);
      }
      gst_message_unref(msg);
      if (type != GST_MESSAGE_WARNING) break;
    }
    gst_object_unref(bus);
    gst_element_set_state(pb, GST_STATE_NULL);
    gst_object_unref(pb);
    for (const std::string& m : criticals.messages()) {
      const bool known = m.find("Trying to dispose element inputselector") != std::string::npos;
      EXPECT_TRUE(known) << m;
      if (known) std::printf("playbin's known critical at the switch, let through: %s\n", m.substr(0, 70).c_str());
    }
    EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
    EXPECT_GE(next.calls.load(), 1) << "no about-to-finish: B was not played";
    std::ifstream in(jsonl);
    std::vector<json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    ASSERT_EQ(lines.size(), size_t(2 * kFrames)) << "one line per frame of A and B";
    std::set<int> ids_a;
    for (size_t i = 0; i < lines.size(); i++) {
      SCOPED_TRACE("line " + std::to_string(i));
      const bool of_b = i >= size_t(kFrames);
      EXPECT_EQ(lines[i]["frame"], i);
      EXPECT_EQ(lines[i]["width"], of_b ? b.cols : 320);
      EXPECT_EQ(lines[i]["height"], of_b ? b.rows : 240);
      const std::vector<Det> dets = detections(lines[i]);
      for (const auto& d : lines[i]["detections"]) {
        // A file's first frame is analysed; interval=3 carries the boxes on the two after it.
        const size_t n = of_b ? i - kFrames : i;
        EXPECT_EQ(d["carried"].get<bool>(), n % 3 != 0) << d.dump();
        ASSERT_FALSE(d["object_id"].is_null()) << d.dump();
        const int id = d["object_id"].get<int>();
        if (!of_b) {
          ids_a.insert(id);
        } else {
          EXPECT_EQ(ids_a.count(id), 0u) << "A's track " << id << " goes on in B";
        }
      }
      const std::vector<Det>& ref = of_b ? ref_b : ref_a;
      expect_covers(ref, dets, 0.3, 0.95, 0.01, "the reference vs the line");
      expect_covers(dets, ref, 0.3, 0.95, 0.01, "the line vs the reference");
    }
  }
}

// ==========================================================================================
// ssdoverlay

namespace {

struct Box {
  int x0, y0, x1, y1;
};

// Whether sample (sx, sy) of a plane subsampled by (ws, hs) covers any image pixel of the
// outline band of `b` (thickness t, inside the box) or of the rectangle `extra`.
bool allowed(int sx, int sy, int ws, int hs, const Box& b, int t, const Box* extra) {
  const int px0 = sx << ws, px1 = ((sx + 1) << ws) - 1, py0 = sy << hs, py1 = ((sy + 1) << hs) - 1;
  auto intersects = [&](int x0, int y0, int x1, int y1) {   // [x0, x1) x [y0, y1)
    return px1 >= x0 && px0 < x1 && py1 >= y0 && py0 < y1;
  };
  const bool in_outer = intersects(b.x0, b.y0, b.x1, b.y1);
  const bool inside_inner = px0 >= b.x0 + t && px1 < b.x1 - t && py0 >= b.y0 + t && py1 < b.y1 - t;
  if (in_outer && !inside_inner) return true;
  return extra && intersects(extra->x0, extra->y0, extra->x1, extra->y1);
}

struct PlaneDiff {
  int changed = 0;        // samples that differ
  int outside = 0;        // ... outside the allowed region
  int on_left_edge = 0;   // ... in the left outline band, for "it drew the box"
};

PlaneDiff diff_frames(const Frame& before, GstBuffer* after, const Box& b, int t, const Box* extra) {
  PlaneDiff d;
  GstVideoFrame f0, f1;
  EXPECT_TRUE(gst_video_frame_map(&f0, const_cast<GstVideoInfo*>(&before.info), before.buffer, GST_MAP_READ));
  EXPECT_TRUE(gst_video_frame_map(&f1, const_cast<GstVideoInfo*>(&before.info), after, GST_MAP_READ));
  const GstVideoFormatInfo* fi = before.info.finfo;
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&f0); p++) {
    // The first component stored in this plane gives its subsampling and bytes per sample.
    int comp = 0;
    for (int c = 0; c < static_cast<int>(GST_VIDEO_FORMAT_INFO_N_COMPONENTS(fi)); c++)
      if (static_cast<guint>(GST_VIDEO_FORMAT_INFO_PLANE(fi, c)) == p) {
        comp = c;
        break;
      }
    const int ws = GST_VIDEO_FORMAT_INFO_W_SUB(fi, comp), hs = GST_VIDEO_FORMAT_INFO_H_SUB(fi, comp);
    const int pstride = GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, comp);
    const int pw = GST_VIDEO_FRAME_COMP_WIDTH(&f0, comp), ph = GST_VIDEO_FRAME_COMP_HEIGHT(&f0, comp);
    for (int y = 0; y < ph; y++) {
      const guint8* r0 = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&f0, p)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f0, p);
      const guint8* r1 = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&f1, p)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f1, p);
      for (int x = 0; x < pw; x++) {
        if (std::memcmp(r0 + x * pstride, r1 + x * pstride, pstride) == 0) continue;
        d.changed++;
        if (!allowed(x, y, ws, hs, b, t, extra)) d.outside++;
        if ((x << ws) >= b.x0 && (x << ws) < b.x0 + t && (y << hs) > b.y0 + t && (y << hs) < b.y1 - t) d.on_left_edge++;
      }
    }
  }
  gst_video_frame_unmap(&f1);
  gst_video_frame_unmap(&f0);
  return d;
}

// (With a `detection` structure when `confidence` >= 0, with `label_id` when that is >= 0.)
GstBuffer* with_roi(const Frame& f, const Box& b, const char* label, double confidence, int label_id = -1) {
  GstBuffer* buf = gst_buffer_copy_deep(f.buffer);
  auto* roi = gst_buffer_add_video_region_of_interest_meta(buf, label, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
  if (confidence >= 0) {
    GstStructure* s =
        gst_structure_new("detection", "label", G_TYPE_STRING, label, "confidence", G_TYPE_DOUBLE, confidence, nullptr);
    if (label_id >= 0) gst_structure_set(s, "label_id", G_TYPE_INT, label_id, nullptr);
    gst_video_region_of_interest_meta_add_param(roi, s);
  }
  return buf;
}

// An ssdoverlay harness for frames like `f` that draws outlines `thickness` wide, no captions.
GstHarness* outline_harness(const Frame& f, int thickness) {
  GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
  g_object_set(e, "thickness", thickness, "show-labels", FALSE, "show-confidence", FALSE, nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
  return h;
}

}  // namespace

class SsdOverlayFormats : public ::testing::TestWithParam<GstVideoFormat> {};

TEST_P(SsdOverlayFormats, ChangesPixelsOnTheBorderOnly) {
  const GstVideoFormat fmt = GetParam();
  auto f = make_frame(flat(321, 241), fmt, 16);   // odd size, padded strides
  const Box box{51, 61, 151, 141};   // odd corners: chroma samples straddle the edge
  const int t = 3;
  GstHarness* h = outline_harness(*f, t);
  ASSERT_EQ(gst_harness_push(h, with_roi(*f, box, "car", 0.87)), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  ASSERT_NE(out, nullptr);
  const PlaneDiff d = diff_frames(*f, out, box, t, nullptr);
  EXPECT_GT(d.on_left_edge, (box.y1 - box.y0 - 2 * t) * t / 2) << "the box outline was not drawn";
  EXPECT_EQ(d.outside, 0) << "pixels changed away from the box (" << d.changed << " changed)";
  gst_buffer_unref(out);

  // With a caption: it lies above the box, next to its left edge.
  g_object_set(h->element, "show-labels", TRUE, "show-confidence", TRUE, nullptr);
  ASSERT_EQ(gst_harness_push(h, with_roi(*f, box, "car", 0.87)), GST_FLOW_OK);
  out = gst_harness_pull(h);
  const Box caption{box.x0, box.y0 - 30, box.x0 + 120, box.y0};
  const PlaneDiff d2 = diff_frames(*f, out, box, t, &caption);
  EXPECT_EQ(d2.outside, 0);
  EXPECT_GT(d2.changed, d.changed + 100) << "no caption drawn";
  gst_buffer_unref(out);

  // A buffer without regions comes out untouched.
  ASSERT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
  out = gst_harness_pull(h);
  EXPECT_EQ(diff_frames(*f, out, box, t, nullptr).changed, 0);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, SsdOverlayFormats, ::testing::ValuesIn(kFormats),
                         [](const ::testing::TestParamInfo<GstVideoFormat>& i) {
                           return std::string(gst_video_format_to_string(i.param));
                         });

// A confidence is drawn as "0.87" whatever the process's locale (gst-launch and GI apps set the
// user's: in a German one the caption read "car 0,87"). The locale part runs where de_DE.UTF-8
// is installed (or built: localedef -i de_DE -f UTF-8 DIR/de_DE.UTF-8, then LOCPATH=DIR).
TEST(SsdOverlay, ConfidencesAreDrawnWithADecimalPointInAnyLocale) {
  auto f = make_frame(flat(200, 120), GST_VIDEO_FORMAT_RGB);
  const Box box{20, 50, 120, 110};
  GstHarness* h = outline_harness(*f, 1);
  g_object_set(h->element, "show-labels", TRUE, "show-confidence", TRUE, nullptr);
  const auto drawn = [&](GstBuffer* in) {
    EXPECT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    GstMapInfo m;
    gst_buffer_map(out, &m, GST_MAP_READ);
    std::vector<uint8_t> pixels(m.data, m.data + m.size);
    gst_buffer_unmap(out, &m);
    gst_buffer_unref(out);
    return pixels;
  };
  // A region labelled "car 0.87", its confidence not shown: the caption "car 0.87" itself (the
  // same class id, so the same colour).
  g_object_set(h->element, "show-confidence", FALSE, nullptr);
  const std::vector<uint8_t> as_text = drawn(with_roi(*f, box, "car 0.87", 0.87, 0));
  g_object_set(h->element, "show-confidence", TRUE, nullptr);
  EXPECT_EQ(drawn(with_roi(*f, box, "car", 0.87, 0)), as_text);
  const std::string before = setlocale(LC_NUMERIC, nullptr);
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
    const std::vector<uint8_t> german = drawn(with_roi(*f, box, "car", 0.87, 0));
    setlocale(LC_NUMERIC, before.c_str());
    EXPECT_EQ(german, as_text) << "drawn with a decimal comma";
  } else {
    std::printf("(no de_DE.UTF-8 locale here: the caption was checked in the C locale only)\n");
  }
  gst_harness_teardown(h);
}

// NV12 and I420: every chroma sample under a drawn pixel takes the box's colour, whatever the
// parity of the box's edges and of the thickness (at thickness 2 an odd edge left the innermost
// line in the scene's colour and coloured a line outside the box).
TEST(SsdOverlay, YuvOutlinesColourEveryChromaSampleUnderThem) {
  for (const GstVideoFormat fmt : {GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420}) {
    for (const int t : {1, 2, 3, 4}) {
      for (const Box& box : {Box{3, 3, 13, 13}, Box{4, 4, 14, 14}, Box{3, 4, 12, 15}, Box{5, 2, 26, 23}}) {
        SCOPED_TRACE(std::string(gst_video_format_to_string(fmt)) + " thickness " + std::to_string(t) + " box " +
                     std::to_string(box.x0) + "," + std::to_string(box.y0) + "-" + std::to_string(box.x1) + "," +
                     std::to_string(box.y1));
        auto f = make_frame(flat(32, 32), fmt);
        GstHarness* h = outline_harness(*f, t);
        ASSERT_EQ(gst_harness_push(h, with_roi(*f, box, "car", 0.87)), GST_FLOW_OK);
        GstBuffer* out = gst_harness_pull(h);
        ASSERT_NE(out, nullptr);
        GstVideoFrame before, after;
        ASSERT_TRUE(gst_video_frame_map(&before, &f->info, f->buffer, GST_MAP_READ));
        ASSERT_TRUE(gst_video_frame_map(&after, &f->info, out, GST_MAP_READ));
        const int tt = std::min({t, (box.x1 - box.x0 + 1) / 2, (box.y1 - box.y0 + 1) / 2});
        int uncoloured = 0, drawn = 0;
        for (int y = box.y0; y < box.y1; ++y)
          for (int x = box.x0; x < box.x1; ++x) {
            const bool band = x < box.x0 + tt || x >= box.x1 - tt || y < box.y0 + tt || y >= box.y1 - tt;
            if (!band) continue;
            ++drawn;
            // The chroma sample of (x, y): U (NV12: U and V) in plane 1.
            const int ps = fmt == GST_VIDEO_FORMAT_NV12 ? 2 : 1;
            const auto* b = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&before, 1)) +
                            (y / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(&before, 1) + (x / 2) * ps;
            const auto* a = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&after, 1)) +
                            (y / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(&after, 1) + (x / 2) * ps;
            if (std::memcmp(a, b, ps) == 0) ++uncoloured;
          }
        EXPECT_GT(drawn, 0);
        EXPECT_EQ(uncoloured, 0) << "drawn pixels whose chroma keeps the scene's colour";
        const PlaneDiff d = diff_frames(*f, out, box, tt, nullptr);
        EXPECT_EQ(d.outside, 0) << "samples changed away from the box";
        gst_video_frame_unmap(&after);
        gst_video_frame_unmap(&before);
        gst_buffer_unref(out);
        gst_harness_teardown(h);
      }
    }
  }
}

// A box's colour on NV12 and I420 frames, whatever the picture's origin in the frame (a crop
// meta at odd or even offsets, or none): every chroma sample a drawn pixel touches (in the
// frame's sample grid) takes it and no other sample changes; NV12's U and V come in their order,
// the same as I420's planes; and (Y, U, V) is the colour drawn on an RGB frame (converted back
// with the frame's colorimetry, within 3 levels).
TEST(SsdOverlay, YuvChromaIsTheBoxsColourAtAnyPictureOrigin) {
  const Box box{4, 4, 14, 14};
  std::array<int, 3> rgb_colour{};
  {
    auto rgb = make_frame(flat(64, 64), GST_VIDEO_FORMAT_RGB);
    GstHarness* h = outline_harness(*rgb, 1);
    ASSERT_EQ(gst_harness_push(h, with_roi(*rgb, box, "car", 0.87)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    GstVideoFrame fr;
    ASSERT_TRUE(gst_video_frame_map(&fr, &rgb->info, out, GST_MAP_READ));
    const guint8* p = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&fr, 0)) +
                      ((box.y0 + box.y1) / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(&fr, 0) + box.x0 * 3;
    rgb_colour = {p[0], p[1], p[2]};
    gst_video_frame_unmap(&fr);
    gst_buffer_unref(out);
    gst_harness_teardown(h);
  }
  ASSERT_FALSE(rgb_colour[0] == rgb_colour[1] && rgb_colour[1] == rgb_colour[2]) << "a grey box: pick another label";
  for (const auto& [ox, oy] : {std::pair{0, 0}, std::pair{3, 5}, std::pair{2, 4}, std::pair{1, 2}}) {
    std::map<GstVideoFormat, std::pair<int, int>> uv;
    for (const GstVideoFormat fmt : {GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420}) {
      SCOPED_TRACE(std::string(gst_video_format_to_string(fmt)) + " picture at " + std::to_string(ox) + "," +
                   std::to_string(oy));
      auto f = make_frame(flat(64, 64), fmt);
      std::unique_ptr<Frame> cropped = ox || oy ? with_crop_meta(*f, ox, oy, 48, 48) : nullptr;
      const Frame& in = cropped ? *cropped : *f;
      GstHarness* h = outline_harness(in, 1);
      ASSERT_EQ(gst_harness_push(h, with_roi(in, box, "car", 0.87)), GST_FLOW_OK);
      GstBuffer* out = gst_harness_pull(h);
      ASSERT_NE(out, nullptr);
      GstVideoFrame before, after;
      ASSERT_TRUE(gst_video_frame_map(&before, &f->info, f->buffer, GST_MAP_READ));
      ASSERT_TRUE(gst_video_frame_map(&after, &f->info, out, GST_MAP_READ));
      auto chroma = [&](GstVideoFrame* fr, int sx, int sy) {
        const auto* u = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(fr, 1)) + sy * GST_VIDEO_FRAME_PLANE_STRIDE(fr, 1);
        if (fmt == GST_VIDEO_FORMAT_NV12) return std::pair<int, int>{u[2 * sx], u[2 * sx + 1]};
        const auto* v = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(fr, 2)) + sy * GST_VIDEO_FRAME_PLANE_STRIDE(fr, 2);
        return std::pair<int, int>{u[sx], v[sx]};
      };
      std::set<std::pair<int, int>> under;   // the frame's chroma samples under the outline's pixels
      for (int y = box.y0; y < box.y1; ++y)
        for (int x = box.x0; x < box.x1; ++x)
          if (x == box.x0 || x == box.x1 - 1 || y == box.y0 || y == box.y1 - 1) under.insert({(ox + x) / 2, (oy + y) / 2});
      std::set<std::pair<int, int>> colours;
      int uncoloured = 0, outside = 0;
      for (int sy = 0; sy < 32; ++sy)
        for (int sx = 0; sx < 32; ++sx) {
          const bool changed = chroma(&before, sx, sy) != chroma(&after, sx, sy);
          if (under.count({sx, sy})) {
            uncoloured += !changed;
            colours.insert(chroma(&after, sx, sy));
          } else {
            outside += changed;
          }
        }
      EXPECT_EQ(uncoloured, 0) << "samples under the outline that keep the scene's colour";
      EXPECT_EQ(outside, 0) << "samples changed away from the outline";
      ASSERT_EQ(colours.size(), 1u);
      uv[fmt] = *colours.begin();
      // (Y, U, V) back to RGB: the colour drawn on the RGB frame.
      const int Y = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&after, 0))
          [(oy + box.y0) * GST_VIDEO_FRAME_PLANE_STRIDE(&after, 0) + ox + box.x0];
      gdouble kr = 0, kb = 0;
      ASSERT_TRUE(gst_video_color_matrix_get_Kr_Kb(f->info.colorimetry.matrix, &kr, &kb));
      const bool full = f->info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
      const double yy = full ? Y / 255.0 : (Y - 16) / 219.0;
      const double pb = (uv[fmt].first - 128) / (full ? 255.0 : 224.0), pr = (uv[fmt].second - 128) / (full ? 255.0 : 224.0);
      const double r = yy + 2 * (1 - kr) * pr, b = yy + 2 * (1 - kb) * pb, g = (yy - kr * r - kb * b) / (1 - kr - kb);
      const double back[3] = {r * 255, g * 255, b * 255};
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(back[c], rgb_colour[c], 3.0) << "channel " << "RGB"[c];
      gst_video_frame_unmap(&after);
      gst_video_frame_unmap(&before);
      gst_buffer_unref(out);
      gst_harness_teardown(h);
    }
    EXPECT_EQ(uv[GST_VIDEO_FORMAT_NV12], uv[GST_VIDEO_FORMAT_I420]) << "picture at " << ox << "," << oy;
  }
}

// Every packed RGB format draws the class's colour in its own byte order: the outline's pixel
// on each is the RGB frame's (R, G, B) at the format's component offsets.
TEST(SsdOverlay, PackedFormatsDrawTheSameColour) {
  const Box box{10, 10, 30, 30};
  auto colour_on = [&](GstVideoFormat fmt) {
    auto f = make_frame(flat(64, 64), fmt);
    GstHarness* h = outline_harness(*f, 2);
    EXPECT_EQ(gst_harness_push(h, with_roi(*f, box, "car", 0.87, 0)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    GstVideoFrame fr;
    std::array<int, 3> c{-1, -1, -1};
    if (out && gst_video_frame_map(&fr, &f->info, out, GST_MAP_READ)) {
      const GstVideoFormatInfo* fi = f->info.finfo;
      const guint8* p = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&fr, 0)) +
                        15 * GST_VIDEO_FRAME_PLANE_STRIDE(&fr, 0) + box.x0 * GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, 0);
      c = {p[GST_VIDEO_FORMAT_INFO_POFFSET(fi, GST_VIDEO_COMP_R)], p[GST_VIDEO_FORMAT_INFO_POFFSET(fi, GST_VIDEO_COMP_G)],
           p[GST_VIDEO_FORMAT_INFO_POFFSET(fi, GST_VIDEO_COMP_B)]};
      gst_video_frame_unmap(&fr);
    }
    if (out) gst_buffer_unref(out);
    gst_harness_teardown(h);
    return c;
  };
  const auto rgb = colour_on(GST_VIDEO_FORMAT_RGB);
  ASSERT_NE(rgb, (std::array<int, 3>{120, 120, 120})) << "nothing drawn";
  ASSERT_FALSE(rgb[0] == rgb[2]) << "a colour with R = B cannot tell the orders apart";
  for (const GstVideoFormat fmt : {GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB,
                                   GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA})
    EXPECT_EQ(colour_on(fmt), rgb) << gst_video_format_to_string(fmt);
}

// Where the outline and the caption go on RGB: a box 3 px wide at thickness 2 is filled (its
// bands overlap; none is left hollow in the middle); a caption goes above its box when it fits,
// else inside the box's top edge, never over the rows above the box.
TEST(SsdOverlay, ThinBoxesAreFilledAndCaptionsStayOnTheirBox) {
  auto f = make_frame(flat(200, 120), GST_VIDEO_FORMAT_RGB);
  auto changed_rows = [&](GstBuffer* out, int x0, int x1, int y0, int y1) {
    int n = 0;
    GstVideoFrame a, b;
    EXPECT_TRUE(gst_video_frame_map(&a, &f->info, f->buffer, GST_MAP_READ));
    EXPECT_TRUE(gst_video_frame_map(&b, &f->info, out, GST_MAP_READ));
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        const size_t off = size_t(y) * GST_VIDEO_FRAME_PLANE_STRIDE(&a, 0) + size_t(x) * 3;
        n += std::memcmp(static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&a, 0)) + off,
                         static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&b, 0)) + off, 3) != 0;
      }
    gst_video_frame_unmap(&b);
    gst_video_frame_unmap(&a);
    return n;
  };
  GstHarness* h = outline_harness(*f, 2);
  ASSERT_EQ(gst_harness_push(h, with_roi(*f, Box{20, 30, 23, 50}, "car", 0.87, 0)), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  EXPECT_EQ(changed_rows(out, 20, 23, 30, 50), 3 * 20) << "pixels of a 3 px wide box left undrawn";
  gst_buffer_unref(out);
  gst_harness_teardown(h);
  GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
  g_object_set(e, "thickness", 1, nullptr);
  h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  ASSERT_EQ(gst_harness_push(h, with_roi(*f, Box{50, 5, 130, 65}, "car", 0.87, 0)), GST_FLOW_OK);   // no room above
  out = gst_harness_pull(h);
  EXPECT_EQ(changed_rows(out, 0, 200, 0, 5), 0) << "drawn above a box whose caption has no room there";
  EXPECT_GT(changed_rows(out, 52, 128, 7, 12), 0) << "no caption inside the box's top edge";
  gst_buffer_unref(out);
  ASSERT_EQ(gst_harness_push(h, with_roi(*f, Box{50, 60, 130, 110}, "car", 0.87, 0)), GST_FLOW_OK);   // room above
  out = gst_harness_pull(h);
  EXPECT_GT(changed_rows(out, 50, 130, 40, 60), 0) << "no caption above the box";
  EXPECT_EQ(changed_rows(out, 51, 129, 61, 109), 0) << "drawn inside a box whose caption fits above it";
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}

// A class's colour: from its class id when the region has one (so a model's 20 classes get 20
// colours, as the 20 Pascal VOC labels' hashes would not: "car" and "star" share one), else
// from its label; the same in every frame.
TEST(SsdOverlay, ColourComesFromTheClassIdElseTheLabel) {
  auto f = make_frame(flat(200, 200), GST_VIDEO_FORMAT_RGB);
  GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
  g_object_set(e, "show-labels", FALSE, "show-confidence", FALSE, nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  // (label_id -1: a region without a `detection` structure, another producer's: label from
  // roi_type.)
  auto colour_at_left_edge = [&](const char* label, const Box& b, int label_id = -1) {
    EXPECT_EQ(gst_harness_push(h, with_roi(*f, b, label, label_id >= 0 ? 0.5 : -1, label_id)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    GstMapInfo map;
    gst_buffer_map(out, &map, GST_MAP_READ);
    const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&f->info, 0);
    const guint8* p = map.data + ((b.y0 + b.y1) / 2) * stride + b.x0 * 3;
    const std::array<int, 3> c = {p[0], p[1], p[2]};
    gst_buffer_unmap(out, &map);
    gst_buffer_unref(out);
    return c;
  };
  const auto car1 = colour_at_left_edge("car", {10, 10, 60, 60});
  const auto car2 = colour_at_left_edge("car", {100, 120, 180, 190});
  std::set<std::array<int, 3>> colours;
  for (const char* l : {"ellipse", "rectangle", "triangle", "star", "cross", "car"})
    colours.insert(colour_at_left_edge(l, {20, 20, 80, 80}));
  EXPECT_EQ(car1, car2);
  EXPECT_NE(car1, (std::array<int, 3>{120, 120, 120}));
  EXPECT_GE(colours.size(), 5u) << "labels should mostly get distinct colours";

  const char* voc[] = {"aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                       "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                       "train", "tvmonitor"};
  std::set<std::array<int, 3>> class_colours, voc_label_colours;
  for (int id = 0; id < 20; ++id) {
    class_colours.insert(colour_at_left_edge(voc[id], {20, 20, 80, 80}, id));
    voc_label_colours.insert(colour_at_left_edge(voc[id], {20, 20, 80, 80}));
  }
  EXPECT_EQ(class_colours.size(), 20u);
  EXPECT_LT(voc_label_colours.size(), 20u) << "the labels' hashes no longer collide: pick other labels";
  EXPECT_EQ(colour_at_left_edge("car", {10, 10, 60, 60}, 6), colour_at_left_edge("car", {100, 120, 180, 190}, 6));
  gst_harness_teardown(h);
}

// A buffer with nothing to draw is passed on unmapped: a gap buffer without memory (which a write
// map would fail on; one with a picture is drawn on), and one whose regions lie outside the picture or have no area.
// Behind a tee (a buffer shared) a write map would copy the frame's memory for nothing.
TEST(SsdOverlay, PassesBuffersWithNothingToDrawUnmapped) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_NV12);
  GstHarness* h = outline_harness(*f, 2);
  GstBuffer* gap = gst_buffer_new();
  GST_BUFFER_FLAG_SET(gap, GST_BUFFER_FLAG_GAP);
  gst_buffer_add_video_region_of_interest_meta(gap, "car", 5, 5, 20, 20);
  ASSERT_EQ(gst_harness_push(h, gap), GST_FLOW_OK);
  gst_buffer_unref(gst_harness_pull(h));
  // A gap buffer with a picture (videorate's repeat of a frame) is drawn on as any frame.
  {
    GstBuffer* repeat = with_roi(*f, Box{5, 5, 25, 25}, "car", 0.9);
    GST_BUFFER_FLAG_SET(repeat, GST_BUFFER_FLAG_GAP);
    ASSERT_EQ(gst_harness_push(h, repeat), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    std::vector<uint8_t> a(gst_buffer_get_size(f->buffer)), b_out(gst_buffer_get_size(out));
    gst_buffer_extract(f->buffer, 0, a.data(), a.size());
    gst_buffer_extract(out, 0, b_out.data(), b_out.size());
    EXPECT_NE(a, b_out) << "the repeated frame was not drawn on";
    gst_buffer_unref(out);
  }

  for (const Box& b : {Box{70, 10, 90, 30}, Box{10, 50, 30, 60}, Box{10, 10, 10, 30}, Box{10, 10, 40, 10},
                       Box{5, 5, 25, 25}}) {
    const bool inside = b.x0 == 5;   // (the last one: drawn, so its memory is copied)
    SCOPED_TRACE(::testing::Message() << b.x0 << "," << b.y0 << " - " << b.x1 << "," << b.y1);
    GstBuffer* in = with_roi(*f, b, "car", 0.9);
    GstMemory* memory = gst_buffer_peek_memory(in, 0);
    gst_buffer_ref(in);   // shared, as behind a tee
    ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    EXPECT_EQ(gst_buffer_peek_memory(out, 0) == memory, !inside);
    std::vector<uint8_t> a(gst_buffer_get_size(in)), b_out(gst_buffer_get_size(out));
    gst_buffer_extract(in, 0, a.data(), a.size());
    gst_buffer_extract(out, 0, b_out.data(), b_out.size());
    EXPECT_EQ(a == b_out, !inside) << "the input was drawn on, or nothing was drawn";
    gst_buffer_unref(out);
    gst_buffer_unref(in);
  }
  gst_harness_teardown(h);
}

// Captions in any script: Pango lays them out, so "vélo" is drawn with its é (not as "v?lo",
// as OpenCV's ASCII-only Hershey font drew it) and a CJK label with its own glyphs, or boxes
// for a font the machine lacks, not "??"; bytes that are not UTF-8 draw U+FFFD. The caption
// stays in its box above the region, in every format (NV12: luma only).
// Object 0 is an id like any other (another tracker's first object): its caption shows "#0".
// font-scale 0 hides the captions: the outline alone is drawn, as with every caption part off.
TEST(SsdOverlay, IdZeroIsShownAndFontScaleZeroHidesTheCaption) {
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_RGB);
  const auto draw = [&](const std::string& props, int object_id) {
    GstBuffer* in = with_roi(*f, {20, 40, 120, 90}, "car", 0.5, 0);
    if (object_id >= 0)
      gst_video_region_of_interest_meta_add_param(gst_buffer_get_video_region_of_interest_meta_id(in, 0),
                                                  gst_structure_new("object_id", "id", G_TYPE_INT, object_id, nullptr));
    GstHarness* h = gst_harness_new_parse(("ssdoverlay " + props).c_str());
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    GstBuffer* out = gst_harness_push_and_pull(h, in);
    std::vector<uint8_t> px;
    GstMapInfo map;
    if (out && gst_buffer_map(out, &map, GST_MAP_READ)) {
      px.assign(map.data, map.data + map.size);
      gst_buffer_unmap(out, &map);
    }
    if (out) gst_buffer_unref(out);
    gst_harness_teardown(h);
    return px;
  };
  const std::string ids_only = "show-labels=false show-confidence=false";
  const auto outline = draw(ids_only + " show-ids=false", 0);
  ASSERT_FALSE(outline.empty());
  EXPECT_NE(draw(ids_only, 0), outline) << "no caption #0";
  EXPECT_NE(draw("", 3), outline);
  EXPECT_EQ(draw("font-scale=0", 3), outline) << "a caption at font-scale 0";
}

TEST(SsdOverlay, CaptionsShowLabelsInAnyScript) {
  for (const GstVideoFormat fmt : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_NV12}) {
    SCOPED_TRACE(gst_video_format_to_string(fmt));
    auto f = make_frame(flat(320, 240), fmt);
    GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
    g_object_set(e, "thickness", 2, "show-confidence", FALSE, nullptr);
    GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
    gst_object_unref(e);
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    const Box box{40, 100, 200, 200};
    // (Confidence -1: no `detection` structure, whose string fields GStreamer wants UTF-8; the
    // label comes from the region's roi_type.)
    auto draw = [&](const std::string& label, double confidence = 0.5) {
      EXPECT_EQ(gst_harness_push(h, with_roi(*f, box, label.c_str(), confidence)), GST_FLOW_OK);
      GstBuffer* out = gst_harness_pull(h);
      // Only the outline and the caption's box above it (the label's colour behind the text).
      const Box caption{box.x0, box.y0 - 30, box.x0 + 160, box.y0};
      const PlaneDiff d = diff_frames(*f, out, box, 2, &caption);
      EXPECT_EQ(d.outside, 0) << label;
      std::vector<uint8_t> px(gst_buffer_get_size(out));
      gst_buffer_extract(out, 0, px.data(), px.size());
      gst_buffer_unref(out);
      return px;
    };
    const auto velo = draw("velo"), accented = draw("v\xc3\xa9lo"), question = draw("v?lo");
    if (gstssd::have_pango()) {
      EXPECT_NE(accented, velo);
      EXPECT_NE(accented, question);
      EXPECT_NE(draw("\xe6\xb1\xbd\xe8\xbd\xa6"), draw("??"));   // 汽车
      EXPECT_NE(draw("a\x80" "b", -1), draw("ab", -1));   // a stray byte: U+FFFD
    }   // (A build without Pango draws '?' for them: Caption.HersheyFontDrawsAsciiAndEllipsizes.)
    EXPECT_EQ(draw("v\xc3\xa9lo"), accented);   // the same caption again (cached): the same pixels
    gst_harness_teardown(h);
  }
  // A label of 3,000 characters at the largest font-scale (wider than cairo's 32,767 pixels, which
  // crashed the element) ends in an ellipsis at the frame's edge; line breaks stay on one line.
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
  g_object_set(e, "font-scale", 10.0, nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  for (const std::string& label : {std::string(3000, 'w'), std::string("two\nlines\nand more")}) {
    ASSERT_EQ(gst_harness_push(h, with_roi(*f, {10, 10, 300, 230}, label.c_str(), 0.5)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
}

// The caption renderer in each font this build has (the Hershey font always: a build without
// Pango draws with it): a mask one line high that grows with the size, at most the width asked
// for, with its baseline inside it; the same pixels again from the cache.
TEST(Caption, EveryFontDrawsALineWithinTheWidth) {
  std::vector<gstssd::CaptionFont> fonts{gstssd::CaptionFont::hershey};
  if (gstssd::have_pango()) fonts.push_back(gstssd::CaptionFont::pango);
  else EXPECT_THROW(gstssd::CaptionRenderer r(gstssd::CaptionFont::pango), std::invalid_argument);
  for (const gstssd::CaptionFont font : fonts) {
    SCOPED_TRACE(font == gstssd::CaptionFont::pango ? "pango" : "hershey");
    gstssd::CaptionRenderer r(font);
    const gstssd::Caption small = r.render("car 0.87", 14, 1000);
    ASSERT_FALSE(small.coverage.empty());
    EXPECT_EQ(small.coverage.type(), CV_8UC1);
    EXPECT_GE(small.coverage.rows, 12);
    EXPECT_LE(small.coverage.rows, 3 * 14);
    EXPECT_GT(small.baseline, small.coverage.rows / 2);
    EXPECT_LE(small.baseline, small.coverage.rows);
    double lo = 0, hi = 0;
    cv::minMaxLoc(small.coverage, &lo, &hi);
    EXPECT_EQ(lo, 0);
    EXPECT_GE(hi, 200);   // some pixels fully covered
    const gstssd::Caption& again = r.render("car 0.87", 14, 1000);
    EXPECT_EQ(cv::norm(again.coverage, small.coverage, cv::NORM_INF), 0);
    const gstssd::Caption big = r.render("car 0.87", 28, 1000);
    EXPECT_GT(big.coverage.cols, small.coverage.cols * 3 / 2);
    EXPECT_GT(big.coverage.rows, small.coverage.rows * 3 / 2);
    // Wider than the width given (and than cairo's 32,767 pixels): ellipsized, within it.
    const gstssd::Caption& wide = r.render(std::string(3000, 'w'), 280, 300);
    ASSERT_FALSE(wide.coverage.empty());
    EXPECT_LE(wide.coverage.cols, 300);
    EXPECT_TRUE(r.render("", 14, 100).coverage.empty());
  }
}

// The renderer keeps the 1,024 most recent captions and 16 MB of masks at most: past either, the
// least recently drawn go, and drawing one of them again gives the same pixels as the first time
// (as does one still kept, and one kept by being drawn again meanwhile).
TEST(Caption, CaptionsPastTheCacheAreDrawnAgainAlike) {
  std::vector<gstssd::CaptionFont> fonts{gstssd::CaptionFont::hershey};
  if (gstssd::have_pango()) fonts.push_back(gstssd::CaptionFont::pango);
  for (const gstssd::CaptionFont font : fonts) {
    SCOPED_TRACE(font == gstssd::CaptionFont::pango ? "pango" : "hershey");
    gstssd::CaptionRenderer r(font);
    const auto same = [](const cv::Mat& a, const cv::Mat& b) {
      return a.size() == b.size() && !a.empty() && cv::norm(a, b, cv::NORM_INF) == 0;
    };
    // By count: 1,100 captions, "id 1" drawn again now and then.
    const cv::Mat first = r.render("id 0", 14, 1000).coverage.clone();
    const cv::Mat kept = r.render("id 1", 14, 1000).coverage.clone();
    for (int i = 2; i < 1100; ++i) {
      r.render("id " + std::to_string(i), 14, 1000);
      if (i % 500 == 0) {
        EXPECT_TRUE(same(r.render("id 1", 14, 1000).coverage, kept)) << i;
      }
    }
    const cv::Mat last = r.render("id 1099", 14, 1000).coverage.clone();
    EXPECT_TRUE(same(r.render("id 0", 14, 1000).coverage, first)) << "a caption gone from the cache";
    EXPECT_TRUE(same(r.render("id 1", 14, 1000).coverage, kept)) << "a caption drawn again meanwhile";
    EXPECT_TRUE(same(r.render("id 1099", 14, 1000).coverage, last)) << "the most recent caption";
    // By size: captions of about 1 MB each, 40 of them.
    std::vector<cv::Mat> big;
    for (int i = 0; i < 40; ++i) {
      big.push_back(r.render(std::string(30, 'W') + std::to_string(i), 120, 4000).coverage.clone());
      ASSERT_GT(big.back().total(), 100000u) << i;
    }
    for (int i : {0, 1, 20, 39}) {
      EXPECT_TRUE(same(r.render(std::string(30, 'W') + std::to_string(i), 120, 4000).coverage, big[i])) << i;
    }
  }
}

// The Hershey font draws printable ASCII; any other character, and bytes that are not UTF-8,
// as '?'. A caption too wide ends in "..." after as much of the text as fits.
TEST(Caption, HersheyFontDrawsAsciiAndEllipsizes) {
  gstssd::CaptionRenderer r(gstssd::CaptionFont::hershey);
  auto pixels = [&](const std::string& text, int width) { return r.render(text, 14, width).coverage.clone(); };
  auto same = [](const cv::Mat& a, const cv::Mat& b) { return a.size() == b.size() && cv::norm(a, b, cv::NORM_INF) == 0; };
  EXPECT_TRUE(same(pixels("v\xc3\xa9lo", 1000), pixels("v?lo", 1000)));
  EXPECT_TRUE(same(pixels("a\x80" "b", 1000), pixels("a?b", 1000)));
  EXPECT_TRUE(same(pixels("two\nlines", 1000), pixels("two?lines", 1000)));
  EXPECT_FALSE(same(pixels("velo", 1000), pixels("v?lo", 1000)));
  const std::string text = "abcdefghijklmnopqrstuvwxyz";
  const cv::Mat whole = pixels(text, 1000);
  ASSERT_GT(whole.cols, 100);
  const cv::Mat cut = pixels(text, 100);
  EXPECT_LE(cut.cols, 100);
  int matches = -1;
  for (size_t k = 0; k < text.size() && matches < 0; ++k)
    if (same(pixels(text.substr(0, k) + "...", 1000), cut)) matches = static_cast<int>(k);
  EXPECT_GT(matches, 2) << "the cut caption is no start of the text followed by \"...\"";
}

// ==========================================================================================
// The public header for applications (include/gst-ssd/ssdmeta.h), compiled as C

extern "C" gboolean ssdmeta_c_read_nth(GstBuffer* buffer, guint n, GstSsdDetection* out);

// Read by C code through the header, ssddetect's and ssdtrack's regions give what the elements
// wrote (the tests' own reader, detections()); another producer's region without structures
// gives its roi_type and the documented "not given" values; a NaN box is no box.
TEST(PublicHeader, CReadsWhatTheElementsWrite) {
  TwoScenes s;
  ASSERT_FALSE(s.ref_a.empty());
  GstHarness* h = gst_harness_new_parse("ssddetect interval=2 ! ssdtrack");
  gst_harness_set_src_caps(h, gst_caps_ref(s.a->caps));
  for (int frame = 0; frame < 2; frame++) {
    ASSERT_EQ(gst_harness_push(h, s.a->ref()), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    const std::vector<Det> want = detections(out);
    ASSERT_EQ(want.size(), s.ref_a.size());
    for (guint i = 0; i < want.size(); i++) {
      GstSsdDetection d;
      ASSERT_TRUE(ssdmeta_c_read_nth(out, i, &d));
      EXPECT_STREQ(d.label, want[i].label.c_str());
      EXPECT_EQ(d.label_id, want[i].label_id);
      EXPECT_DOUBLE_EQ(d.confidence, want[i].confidence);
      EXPECT_EQ(d.object_id, want[i].object_id);
      EXPECT_GT(d.object_id, 0);
      EXPECT_EQ(d.carried, frame == 1);
      EXPECT_TRUE(d.has_normalized);
      EXPECT_DOUBLE_EQ(d.x_min, want[i].x_min);
      EXPECT_DOUBLE_EQ(d.y_max, want[i].y_max);
    }
    GstSsdDetection none;
    EXPECT_FALSE(ssdmeta_c_read_nth(out, static_cast<guint>(want.size()), &none));
    gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  GstBuffer* other = with_roi(*f, {1, 2, 30, 40}, "person", -1);
  GstSsdDetection d;
  ASSERT_TRUE(ssdmeta_c_read_nth(other, 0, &d));
  EXPECT_STREQ(d.label, "person");
  EXPECT_EQ(d.label_id, -1);
  EXPECT_EQ(d.confidence, -1);
  EXPECT_EQ(d.object_id, -1);
  EXPECT_FALSE(d.carried);
  EXPECT_FALSE(d.has_normalized);
  gst_buffer_unref(other);
  GstBuffer* nan_box = gst_buffer_copy_deep(f->buffer);
  auto* roi = gst_buffer_add_video_region_of_interest_meta(nan_box, "car", 0, 0, 8, 8);
  gst_video_region_of_interest_meta_add_param(
      roi, gst_structure_new(GST_SSD_DETECTION_STRUCTURE, "confidence", G_TYPE_FLOAT, 0.5f, "x_min", G_TYPE_DOUBLE, NAN,
                             "y_min", G_TYPE_DOUBLE, 0.0, "x_max", G_TYPE_DOUBLE, 0.5, "y_max", G_TYPE_DOUBLE, 0.5, nullptr));
  ASSERT_TRUE(ssdmeta_c_read_nth(nan_box, 0, &d));
  EXPECT_DOUBLE_EQ(d.confidence, 0.5);   // a float field is read too
  EXPECT_FALSE(d.has_normalized);
  gst_buffer_unref(nan_box);
}

// ==========================================================================================
// ssdexport

namespace {

// An ssdexport writing to `path`, fed frames of f's caps.
GstHarness* export_harness(const std::string& path, const Frame& f) {
  GstElement* e = gst_element_factory_make("ssdexport", nullptr);
  g_object_set(e, "location", path.c_str(), nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f.caps));
  return h;
}

// Pushes `in` (taken) through an ssdexport writing to `path`, after `segment` if given, then
// EOS; the line written.
std::string export_one(const std::string& path, const Frame& f, GstBuffer* in, const GstSegment* segment = nullptr) {
  GstHarness* h = export_harness(path, f);
  if (segment) {
    EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_segment(segment)));
  }
  EXPECT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
  gst_buffer_unref(gst_harness_pull(h));
  EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

}  // namespace

// ssdexport reads metadata only: any raw video goes through it (here GRAY8, which no element
// of the plugin that reads pixels takes), and its regions are written.
TEST(SsdExport, TakesAnyRawVideo) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  GstElement* e = gst_element_factory_make("ssdexport", nullptr);
  g_object_set(e, "location", path.c_str(), nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps_str(h, "video/x-raw,format=GRAY8,width=64,height=48,framerate=25/1");
  GstBuffer* b = gst_buffer_new_allocate(nullptr, 64 * 48, nullptr);
  gst_buffer_memset(b, 0, 7, 64 * 48);
  GST_BUFFER_PTS(b) = 0;
  gst_buffer_add_video_region_of_interest_meta(b, "dot", 8, 4, 16, 12);
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["width"], 64);
  ASSERT_EQ(j["detections"].size(), 1u);
  EXPECT_EQ(j["detections"][0]["label"], "dot");
  EXPECT_EQ(j["detections"][0]["box"]["w"], 16);
}

// A frame too small for its caps (an application's tightly packed rows of an odd width; GStreamer
// pads each row to 4 bytes) is an error that names both sizes and what to do: ssddetect's and
// ssdoverlay's said only "Could not map the video frame" (2026-12-06).
// ssdtrack, ssdexport and ssdoverlay pass their frames on unchanged, so they accept the caps
// that the element after them accepts, as identity does: a caps change refused further on is
// refused in front of them (behind a batching ssddetect it was taken, its frames held, and their
// push failed at EOS with no error). Unlinked, the templates decide.
// The plugin opened by a relative path (GST_PLUGIN_PATH=gst-plugin from the build folder, as
// a user runs it from a checkout) still finds its build tree's model: it took the host program's
// location for its own (gst-inspect-1.0's), and so the installed path.
TEST(Elements, APluginLoadedByARelativePathFindsItsBuildTreesModel) {
  const char* plugin_path = g_getenv("GST_PLUGIN_PATH");
  ASSERT_NE(plugin_path, nullptr) << "run through meson test";
  const fs::path dir = fs::absolute(std::string(plugin_path).substr(0, std::string(plugin_path).find(':')));
  const fs::path model = dir.parent_path() / "models" / "ssd-default.safetensors";
  ASSERT_TRUE(fs::exists(model)) << model;
  TempDir tmp;
  const std::string cmd = "cd '" + dir.parent_path().string() + "' && env -u SSD_DEFAULT_MODEL -u GST_TRACERS GST_REGISTRY_1_0='" +
                          (tmp / "registry.bin") + "' GST_PLUGIN_PATH='" + dir.filename().string() +
                          "' gst-inspect-1.0 ssddetect 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
  }
  EXPECT_NE(out.find("Default: \"" + model.string() + "\""), std::string::npos) << cmd << "\n" << out.substr(0, 2000);
}

TEST(Elements, PassThroughElementsAcceptOnlyCapsTheirDownstreamAccepts) {
  GstCaps* narrow = gst_caps_from_string("video/x-raw,format=RGB,width=32,height=24,framerate=30/1");
  GstCaps* wide = gst_caps_from_string("video/x-raw,format=RGB,width=64,height=24,framerate=30/1");
  for (const std::string element : {"ssdtrack", "ssdexport location=/dev/null", "ssdoverlay"}) {
    SCOPED_TRACE(element);
    GError* err = nullptr;
    GstElement* pipeline =
        gst_parse_launch((element + " name=e ! capsfilter caps=video/x-raw,width=64 ! fakesink").c_str(), &err);
    ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
    GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), "e");
    GstPad* sink = gst_element_get_static_pad(e, "sink");
    EXPECT_FALSE(gst_pad_query_accept_caps(sink, narrow));
    EXPECT_TRUE(gst_pad_query_accept_caps(sink, wide));
    gst_object_unref(sink);
    gst_object_unref(e);
    gst_object_unref(pipeline);
    GstElement* alone = gst_element_factory_make(element.substr(0, element.find(' ')).c_str(), nullptr);
    ASSERT_NE(alone, nullptr);
    GstPad* pad = gst_element_get_static_pad(alone, "sink");
    EXPECT_TRUE(gst_pad_query_accept_caps(pad, narrow));
    gst_object_unref(pad);
    gst_object_unref(alone);
  }
  gst_caps_unref(narrow);
  gst_caps_unref(wide);
}

TEST(Elements, AFrameTooSmallForItsCapsNamesBothSizes) {
  const std::string caps = "video/x-raw,format=RGB,width=317,height=239,framerate=25/1";
  for (const char* element : {"ssddetect", "ssdoverlay"}) {
    GstHarness* h = gst_harness_new(element);
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    gst_harness_set_src_caps_str(h, caps.c_str());
    GstBuffer* b = gst_buffer_new_allocate(nullptr, 317 * 3 * 239, nullptr);   // 227289 bytes
    gst_buffer_memset(b, 0, 90, 317 * 3 * 239);
    GST_BUFFER_PTS(b) = 0;
    gst_buffer_add_video_region_of_interest_meta(b, "dot", 8, 4, 16, 12);   // (ssdoverlay maps to draw it)
    EXPECT_EQ(gst_harness_push(h, b), GST_FLOW_ERROR) << element;
    GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    ASSERT_NE(m, nullptr) << element;
    const std::string text = take_message_text(m);
    EXPECT_NE(text.find("the buffer holds 227289 bytes where a 317x239 RGB frame takes 227528"), std::string::npos)
        << element << ": " << text;
    EXPECT_NE(text.find("pads each row to a multiple of 4 bytes"), std::string::npos) << element << ": " << text;
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

TEST(SsdExport, WritesOneJsonLinePerFrameAndFlushesAtEos) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_NV12);
  GstHarness* h = export_harness(path, *f);

  GstBuffer* b0 = with_roi(*f, {10, 20, 60, 70}, "star", 0.75);
  auto* roi = gst_buffer_get_video_region_of_interest_meta_id(b0, 0);
  gst_structure_set(gst_video_region_of_interest_meta_get_param(roi, "detection"), "label_id", G_TYPE_INT, 3,
                    nullptr);
  gst_buffer_add_video_region_of_interest_meta(b0, "face", 100, 0, 50, 40);   // no structure
  // Another element's region reaching out of the frame, its width wrapped: clipped.
  gst_buffer_add_video_region_of_interest_meta(b0, "wide", 150, 90, 4294967000u, 30);
  GST_BUFFER_PTS(b0) = 40 * GST_MSECOND;
  GstBuffer* b1 = gst_buffer_copy_deep(f->buffer);
  GST_BUFFER_PTS(b1) = GST_CLOCK_TIME_NONE;
  ASSERT_EQ(gst_harness_push(h, b0), GST_FLOW_OK);
  ASSERT_EQ(gst_harness_push(h, b1), GST_FLOW_OK);
  // Pass-through: the buffer comes out with its metadata.
  GstBuffer* out = gst_harness_pull(h);
  EXPECT_EQ(detections(out).size(), 3u);
  gst_buffer_unref(out);
  gst_buffer_unref(gst_harness_pull(h));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));

  std::ifstream in(path);
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  {  // the keys in the documented order
    std::ifstream again(path);
    std::string first;
    std::getline(again, first);
    EXPECT_EQ(first.rfind("{\"frame\":0,\"pts\":40000000,\"stream_time\":40000000,\"width\":200,\"height\":100,"
                          "\"detections\":[{\"label\":\"star\",", 0), 0u) << first;
  }
  EXPECT_EQ(lines[0]["frame"], 0);
  EXPECT_EQ(lines[0]["pts"], 40 * GST_MSECOND);
  EXPECT_EQ(lines[0]["width"], 200);
  EXPECT_EQ(lines[0]["height"], 100);
  const json& d = lines[0]["detections"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0]["label"], "star");
  EXPECT_EQ(d[0]["label_id"], 3);
  EXPECT_DOUBLE_EQ(d[0]["confidence"].get<double>(), 0.75);
  EXPECT_EQ(d[0]["box"], json({{"x", 10}, {"y", 20}, {"w", 50}, {"h", 50}}));
  EXPECT_DOUBLE_EQ(d[0]["box_normalized"]["x_min"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(d[0]["box_normalized"]["y_max"].get<double>(), 0.7);
  EXPECT_EQ(d[1]["label"], "face");
  EXPECT_TRUE(d[1]["label_id"].is_null());
  EXPECT_TRUE(d[1]["confidence"].is_null());
  EXPECT_EQ(d[2]["box"], json({{"x", 150}, {"y", 90}, {"w", 50}, {"h", 10}}));
  EXPECT_DOUBLE_EQ(d[2]["box_normalized"]["x_max"].get<double>(), 1.0);
  EXPECT_EQ(lines[1]["frame"], 1);
  EXPECT_TRUE(lines[1]["pts"].is_null());
  EXPECT_TRUE(lines[1]["stream_time"].is_null());
  EXPECT_TRUE(lines[1]["detections"].empty());
  gst_harness_teardown(h);
}

// `stream_time` is the pts in the segment's terms: an MP4 demuxer's segment starts at the first
// frame's pts (its decoding delay, 2 frames here) with stream time 0, and the frame's position in
// the stream is its pts less that (ssd-clip score took the pts, every frame 2 off).
TEST(SsdExport, StreamTimeIsThePtsInTheSegmentsTerms) {
  TempDir tmp;
  const std::string path = tmp / "seg.jsonl";
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = export_harness(path, *f);
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.start = 66666666;
  seg.time = 0;
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  for (const GstClockTime pts : {GstClockTime{66666666}, GstClockTime{100000000}, GstClockTime{10000000}}) {
    GstBuffer* b = gst_buffer_copy_deep(f->buffer);
    GST_BUFFER_PTS(b) = pts;
    ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(h));
  }
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["pts"], 66666666);
  EXPECT_EQ(lines[0]["stream_time"], 0);
  EXPECT_EQ(lines[1]["stream_time"], 33333334);
  EXPECT_TRUE(lines[2]["stream_time"].is_null()) << "before the segment";
  // A file played from 10 s (a seek: the segment's start and time 10 s, its running time 0
  // there): the stream time of a frame 0.5 s on is 10.5 s, not its running time.
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.start = seg.time = seg.position = 10 * GST_SECOND;
  GstBuffer* b = gst_buffer_copy_deep(f->buffer);
  GST_BUFFER_PTS(b) = 10 * GST_SECOND + GST_SECOND / 2;
  const std::string first = export_one(tmp / "seeked.jsonl", *f, b, &seg);
  EXPECT_EQ(json::parse(first)["stream_time"], 10 * GST_SECOND + GST_SECOND / 2) << first;
}

// Regions come from any producer: a normalised box with a NaN or infinity in it is replaced by
// the one of the region's pixels (JSON has no NaN: it was written as null).
TEST(SsdExport, ANormalisedBoxThatIsNotFiniteIsTakenFromThePixels) {
  TempDir tmp;
  const std::string path = tmp / "nan.jsonl";
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_RGB);
  GstBuffer* b = with_roi(*f, {10, 20, 60, 70}, "star", 0.5);
  gst_structure_set(gst_video_region_of_interest_meta_get_param(gst_buffer_get_video_region_of_interest_meta_id(b, 0), "detection"),
                    "x_min", G_TYPE_DOUBLE, std::nan(""), "y_min", G_TYPE_DOUBLE, 0.2, "x_max", G_TYPE_DOUBLE,
                    HUGE_VAL, "y_max", G_TYPE_DOUBLE, 0.7, nullptr);
  const std::string line = export_one(path, *f, b);
  const json n = json::parse(line)["detections"][0]["box_normalized"];
  EXPECT_EQ(n, json({{"x_min", 0.05}, {"y_min", 0.2}, {"x_max", 0.3}, {"y_max", 0.7}})) << line;
}

// Class 0 and object 0 are ids like any other (a model's first class, another tracker's first
// object): written as 0, not as null, which stands for a region without one.
TEST(SsdExport, IdsZeroAreWrittenAsZero) {
  TempDir tmp;
  const std::string path = tmp / "zero.jsonl";
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_RGB);
  GstBuffer* b = with_roi(*f, {10, 20, 60, 70}, "first", 0.5, 0);
  gst_video_region_of_interest_meta_add_param(gst_buffer_get_video_region_of_interest_meta_id(b, 0),
                                              gst_structure_new("object_id", "id", G_TYPE_INT, 0, nullptr));
  const std::string line = export_one(path, *f, b);
  const json d = json::parse(line)["detections"][0];
  EXPECT_EQ(d["label_id"], 0) << line;
  EXPECT_EQ(d["object_id"], 0) << line;
}

// Regions come from any producer: a label that is not UTF-8 is written with U+FFFD in place of
// its bad byte, and the stream goes on.
TEST(SsdExport, ALabelThatIsNotUtf8IsWrittenWithAReplacementCharacter) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = export_harness(path, *f);
  GstBuffer* b = gst_buffer_copy_deep(f->buffer);
  gst_buffer_add_video_region_of_interest_meta(b, "caf\xe9", 10, 10, 20, 20);   // Latin-1
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  gst_buffer_unref(gst_harness_pull(h));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const json j = json::parse(line);
  ASSERT_EQ(j["detections"].size(), 1u);
  EXPECT_EQ(j["detections"][0]["label"], "caf\xef\xbf\xbd");
  gst_harness_teardown(h);
}

// Each line is written out as its frame passes (a reader following the file or a pipe sees it
// at once; a pipeline killed without EOS loses none), so a write that fails is an error at that
// frame, naming the file.
TEST(SsdExport, WritesEachLineAsItsFramePassesAndAFailedWriteIsAnError) {
  TempDir tmp;
  const std::string path = tmp / "live.jsonl";
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = export_harness(path, *f);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(h));
    std::ifstream in(path);
    int lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    EXPECT_EQ(lines, i) << "the line of frame " << i - 1 << " is not in the file yet";
  }
  // A write that fails part-way (a full disk; here a file size limit a few bytes past the file's
  // end): the error, and the file ends at its last whole line (half a JSON object was left).
  {
    const auto size = fs::file_size(path);
    struct rlimit old_limit;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    const auto old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = size + 20;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    const GstFlowReturn ret = gst_harness_push(h, gst_buffer_copy_deep(f->buffer));
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, old_handler);
    EXPECT_EQ(ret, GST_FLOW_ERROR);
    EXPECT_EQ(fs::file_size(path), size);
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) EXPECT_NO_THROW(json::parse(line)) << line;
  }
  gst_harness_teardown(h);

  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  GstHarness* full = export_harness("/dev/full", *f);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(full->element, bus);
  EXPECT_EQ(gst_harness_push(full, gst_buffer_copy_deep(f->buffer)), GST_FLOW_ERROR);
  GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  ASSERT_NE(m, nullptr) << "the lost line must be reported";
  const std::string text = take_message_text(m);
  EXPECT_NE(text.find("/dev/full"), std::string::npos) << text;
  gst_element_set_bus(full->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(full);
}

// As filesink: `location` changes only while the element is stopped; a change while it runs is
// refused with a warning and the lines go on to the open file.
TEST(SsdExport, LocationChangesOnlyWhileStopped) {
  TempDir tmp;
  const std::string a = tmp / "a.jsonl", b = tmp / "b.jsonl";
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = export_harness(a, *f);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  ASSERT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
  g_object_set(h->element, "location", b.c_str(), nullptr);
  gchar* now = nullptr;
  g_object_get(h->element, "location", &now, nullptr);
  EXPECT_EQ(std::string(now ? now : ""), a);
  g_free(now);
  GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
  ASSERT_NE(m, nullptr) << "the refused change must be reported";
  const std::string text = take_message_text(m);
  EXPECT_NE(text.find(b), std::string::npos) << text;
  ASSERT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  EXPECT_FALSE(fs::exists(b));
  // Stopped, it takes the new location (for the next start), without a warning.
  gst_element_set_state(h->element, GST_STATE_NULL);
  g_object_set(h->element, "location", b.c_str(), nullptr);
  g_object_get(h->element, "location", &now, nullptr);
  EXPECT_EQ(std::string(now ? now : ""), b);
  g_free(now);
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
  int lines = 0;
  std::ifstream in(a);
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 2);
}

// Each start truncates `location`, unless `append`: then the lines go after the earlier ones
// (a missing file is created), each run counting its frames from 0.
TEST(SsdExport, AppendKeepsTheLinesOfEarlierRuns) {
  TempDir tmp;
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  auto run = [&](const std::string& path, bool append, int frames) {
    GstElement* e = gst_element_factory_make("ssdexport", nullptr);
    g_object_set(e, "location", path.c_str(), "append", append, nullptr);
    GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
    gst_object_unref(e);
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    for (int i = 0; i < frames; i++) {
      EXPECT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
      gst_buffer_unref(gst_harness_pull(h));
    }
    EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
    gst_harness_teardown(h);
  };
  auto frame_numbers = [](const std::string& path) {
    std::vector<int> n;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) n.push_back(json::parse(line)["frame"].get<int>());
    return n;
  };
  const std::string a = tmp / "a.jsonl", b = tmp / "new.jsonl";
  run(a, false, 2);
  run(a, true, 3);
  EXPECT_EQ(frame_numbers(a), (std::vector<int>{0, 1, 0, 1, 2}));
  run(a, false, 1);   // not appending: truncated
  EXPECT_EQ(frame_numbers(a), (std::vector<int>{0}));
  run(b, true, 2);    // appending to a file that does not exist: created
  EXPECT_EQ(frame_numbers(b), (std::vector<int>{0, 1}));
  // The same element stopped and started again (to another file) counts from 0 again too.
  {
    GstHarness* h = export_harness(tmp / "first.jsonl", *f);
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
      gst_buffer_unref(gst_harness_pull(h));
    }
    ASSERT_EQ(gst_element_set_state(h->element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    g_object_set(h->element, "location", (tmp / "second.jsonl").c_str(), nullptr);
    gst_harness_play(h);
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    EXPECT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(h));
    EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
    gst_harness_teardown(h);
    EXPECT_EQ(frame_numbers(tmp / "first.jsonl"), (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(frame_numbers(tmp / "second.jsonl"), (std::vector<int>{0}));
  }
  // Appending to a file whose last line lacks its newline (a writer killed mid-line): the records
  // start a line of their own (the first was glued to that line).
  const std::string c = tmp / "cut.jsonl";
  std::ofstream(c) << "{\"frame\": 7}\n{\"frame\": 8";
  run(c, true, 1);
  std::ifstream in(c);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "{\"frame\": 8");
  EXPECT_EQ(json::parse(lines[2])["frame"], 0) << lines[2];
  GstElement* e = gst_element_factory_make("ssdexport", nullptr);
  gboolean append = TRUE;
  g_object_get(e, "append", &append, nullptr);
  EXPECT_FALSE(append) << "truncating is the default, as filesink's";
  gst_object_unref(e);
}

// `append` set while the element runs is refused with a warning, as `location` is: the file
// was opened (truncated or not) at the start, and the property keeps saying how.
TEST(SsdExport, AppendCannotChangeWhileRunning) {
  TempDir tmp;
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  const std::string a = tmp / "a.jsonl";
  GstElement* e = gst_element_factory_make("ssdexport", nullptr);
  g_object_set(e, "location", a.c_str(), nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  ASSERT_EQ(gst_harness_push(h, gst_buffer_copy_deep(f->buffer)), GST_FLOW_OK);
  g_object_set(h->element, "append", TRUE, nullptr);
  gboolean append = TRUE;
  g_object_get(h->element, "append", &append, nullptr);
  EXPECT_FALSE(append) << "the output was opened truncated";
  const std::string warning = next_warning(bus);   // (posted before set returned: no wait)
  EXPECT_NE(warning.find("append cannot change"), std::string::npos) << "the refused change must be reported: " << warning;
  g_object_set(h->element, "append", FALSE, nullptr);   // the value in use: no warning
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr);
  g_object_set(h->element, "location", a.c_str(), nullptr);   // the same: no warning (it said "still
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr);   // writing to A, not A")
  g_object_set(h->element, "location", (tmp / "b.jsonl").c_str(), nullptr);
  EXPECT_NE(next_warning(bus).find("The location cannot change while the element runs"), std::string::npos);
  // Stopped, it takes the change (for the next start), without a warning.
  gst_element_set_state(h->element, GST_STATE_NULL);
  g_object_set(h->element, "append", TRUE, nullptr);
  g_object_get(h->element, "append", &append, nullptr);
  EXPECT_TRUE(append);
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING), nullptr);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

TEST(SsdExport, UnwritableLocationFailsTheStateChange) {
  const std::string path = "/nonexistent/dir/out.jsonl";
  const std::string msg = failing_start("videotestsrc num-buffers=1 ! ssdexport location=" + path + " ! fakesink");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  // After the failed start the location may be fixed, and the next start opens it.
  TempDir tmp;
  GstElement* e = gst_element_factory_make("ssdexport", nullptr);
  g_object_set(e, "location", path.c_str(), nullptr);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  gst_element_set_state(e, GST_STATE_NULL);
  const std::string fixed = tmp / "fixed.jsonl";
  g_object_set(e, "location", fixed.c_str(), nullptr);
  gchar* now = nullptr;
  g_object_get(e, "location", &now, nullptr);
  EXPECT_EQ(std::string(now ? now : ""), fixed);
  g_free(now);
  EXPECT_NE(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  EXPECT_TRUE(fs::exists(fixed));
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
}

TEST(SsdExport, DetectorOutputRoundTrips) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  const ssdtrain::SynthSample s = one_object(320, 240, 8);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse(("ssddetect ! ssdexport location=" + path).c_str());
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  ASSERT_EQ(gst_harness_push(h, f->ref()), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  const auto dets = detections(out);
  gst_buffer_unref(out);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const json j = json::parse(line);
  ASSERT_EQ(j["detections"].size(), dets.size());
  for (size_t i = 0; i < dets.size(); i++) {
    EXPECT_EQ(j["detections"][i]["label"], dets[i].label);
    EXPECT_EQ(j["detections"][i]["label_id"], dets[i].label_id);
    EXPECT_DOUBLE_EQ(j["detections"][i]["confidence"].get<double>(), dets[i].confidence);
    EXPECT_EQ(j["detections"][i]["box"]["w"], dets[i].w);
    EXPECT_DOUBLE_EQ(j["detections"][i]["box_normalized"]["x_max"].get<double>(), dets[i].x_max);
  }
  gst_harness_teardown(h);
}

#ifdef HAVE_GST_ANALYTICS
// GStreamer >= 1.24: object detections that arrive only as GstAnalyticsODMtd (GStreamer's own
// analytics producers write no regions of interest) are drawn and exported too, with the
// tracking id of a tracking entry they relate to; the entries that stand for regions (as
// ssddetect writes them) are not counted twice (also SsdExport.DetectorOutputRoundTrips).
namespace {

// Adds an object-detection entry (and, with tracking_id > 0, a tracking entry it relates to).
// tracking_id 0: untracked; `retracked_as`, when not 0: a second tracking entry related to it,
// as a second tracker further down a pipeline adds.
void add_od_mtd(GstBuffer* buf, const Box& b, const char* label, float confidence, guint64 tracking_id,
                guint64 retracked_as = 0) {
  GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(buf);
  if (!rmeta) rmeta = gst_buffer_add_analytics_relation_meta(buf);
  ASSERT_NE(rmeta, nullptr);
  GstAnalyticsODMtd od;
  ASSERT_TRUE(gst_analytics_relation_meta_add_od_mtd(rmeta, g_quark_from_string(label), b.x0, b.y0, b.x1 - b.x0,
                                                     b.y1 - b.y0, confidence, &od));
  if (tracking_id == 0) return;
  GstAnalyticsTrackingMtd trk;
  ASSERT_TRUE(gst_analytics_relation_meta_add_tracking_mtd(rmeta, tracking_id, 0, &trk));
  ASSERT_TRUE(gst_analytics_relation_meta_set_relation(rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO, od.id, trk.id));
  if (retracked_as == 0) return;
  ASSERT_TRUE(gst_analytics_relation_meta_add_tracking_mtd(rmeta, retracked_as, 0, &trk));
  ASSERT_TRUE(gst_analytics_relation_meta_set_relation(rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO, od.id, trk.id));
}

}  // namespace

TEST(SsdOverlayAnalytics, DrawsObjectDetectionsThatHaveNoRegion) {
  auto f = make_frame(flat(321, 241), GST_VIDEO_FORMAT_NV12, 16);
  const Box box{51, 61, 151, 141};
  const int t = 3;
  GstElement* e = gst_element_factory_make("ssdoverlay", nullptr);
  g_object_set(e, "thickness", t, "show-labels", FALSE, "show-confidence", FALSE, nullptr);
  GstHarness* h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
  GstBuffer* in = gst_buffer_copy_deep(f->buffer);
  add_od_mtd(in, box, "car", 0.87f, 0);
  ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  ASSERT_NE(out, nullptr);
  const PlaneDiff d = diff_frames(*f, out, box, t, nullptr);
  EXPECT_GT(d.on_left_edge, (box.y1 - box.y0 - 2 * t) * t / 2) << "the box outline was not drawn";
  EXPECT_EQ(d.outside, 0) << "pixels changed away from the box (" << d.changed << " changed)";
  gst_buffer_unref(out);
  gst_harness_teardown(h);
}

TEST(SsdExportAnalytics, WritesObjectDetectionsThatHaveNoRegionWithTheirTrackingIds) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  auto f = make_frame(flat(200, 100), GST_VIDEO_FORMAT_RGB);
  GstBuffer* in = with_roi(*f, {10, 20, 60, 70}, "star", 0.75);
  add_od_mtd(in, {10, 20, 60, 70}, "star", 0.75f, 0);    // stands for the region
  add_od_mtd(in, {120, 10, 180, 90}, "car", 0.5f, 7);    // an analytics producer's alone
  add_od_mtd(in, {0, 0, 20, 20}, "dog", 0.25f, 0);       // untracked
  add_od_mtd(in, {20, 30, 40, 50}, "bus", 0.5f, 3, 9);   // tracked again further down: the newest id
  const std::string line = export_one(path, *f, in);
  const json d = json::parse(line)["detections"];
  ASSERT_EQ(d.size(), 4u) << d.dump();
  EXPECT_EQ(d[0]["label"], "star");
  EXPECT_EQ(d[1]["label"], "car");
  EXPECT_TRUE(d[1]["label_id"].is_null());
  EXPECT_DOUBLE_EQ(d[1]["confidence"].get<double>(), 0.5);
  EXPECT_EQ(d[1]["object_id"], 7);
  EXPECT_EQ(d[1]["box"], json({{"x", 120}, {"y", 10}, {"w", 60}, {"h", 80}}));
  EXPECT_DOUBLE_EQ(d[1]["box_normalized"]["x_max"].get<double>(), 0.9);
  EXPECT_EQ(d[2]["label"], "dog");
  EXPECT_TRUE(d[2]["object_id"].is_null());
  EXPECT_DOUBLE_EQ(d[2]["confidence"].get<double>(), 0.25);
  EXPECT_EQ(d[3]["label"], "bus");
  EXPECT_EQ(d[3]["object_id"], 9);
}

// GStreamer's own analytics elements (gst-plugins-bad; these tests run with 1.26) and ours, in
// one pipeline each way. GStreamer's ONNX elements run the shipped model as scripts/export-onnx.py writes it
// (onnxinference, then ssdobjectdetector writing object detections without regions); ssdtrack,
// ssdexport and ssdoverlay take those, and they are ssddetect's detections: same labels and
// order, confidences within 1e-4, boxes within 1 px (ssdobjectdetector truncates to pixels).
TEST(GstAnalyticsInterop, OnnxElementsRunTheExportedModelAndOurElementsReadTheirDetections) {
  const std::string missing = missing_factory({"onnxinference", "ssdobjectdetector"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed (gst-plugins-bad's onnx plugin)";
  SSD_NEED_PYTHON(std::string(SSD_PYTHON), "torch torchvision safetensors");   // scripts/export-onnx.py
  TempDir tmp;
  const std::string onnx = tmp / "ssd.onnx", jsonl = tmp / "det.jsonl";
  const std::string cmd = std::string(SSD_PYTHON) + " " + SSD_SOURCE_DIR + "/scripts/export-onnx.py " +
                          default_model() + " " + onnx + " --frame 320x240 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  GstHarness* h = gst_harness_new_parse(("onnxinference model-file=" + onnx + " ! ssdobjectdetector label-file=" +
                                         (tmp / "ssd.labels") + " score-threshold=0.3 ! ssdtrack ! ssdexport location=" +
                                         jsonl + " ! ssdoverlay")
                                            .c_str());
  std::vector<std::vector<Det>> ours;
  for (uint64_t seed : {8, 11, 12, 13}) {
    const ssdtrain::SynthSample s = one_object(320, 240, seed);
    auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
    ours.push_back(reference(s.image, nullptr));
    ASSERT_FALSE(ours.back().empty()) << "seed " << seed << ": the shipped model finds nothing";
    gst_harness_set_src_caps(h, gst_caps_ref(f->caps));
    ASSERT_EQ(gst_harness_push(h, f->ref()), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    const Det& d = ours.back()[0];
    const PlaneDiff diff = diff_frames(*f, out, {d.x, d.y, d.x + d.w, d.y + d.h}, 3, nullptr);
    EXPECT_GT(diff.on_left_edge, 0) << "seed " << seed << ": ssdoverlay drew no box";
    gst_buffer_unref(out);
  }
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);

  std::ifstream file(jsonl);
  std::string line;
  for (size_t i = 0; i < ours.size(); i++) {
    SCOPED_TRACE("frame " + std::to_string(i));
    ASSERT_TRUE(std::getline(file, line));
    const json theirs = json::parse(line)["detections"];
    ASSERT_EQ(theirs.size(), ours[i].size()) << theirs.dump() << "\nssddetect:\n" << describe(ours[i]);
    for (size_t k = 0; k < ours[i].size(); k++) {
      const Det& o = ours[i][k];
      const json& t = theirs[k];
      EXPECT_EQ(t["label"], o.label);
      EXPECT_NEAR(t["confidence"].get<double>(), o.confidence, 1e-4);
      EXPECT_TRUE(t["object_id"].is_number_integer()) << "ssdtrack gave no id: " << t.dump();
      EXPECT_NEAR(t["box"]["x"].get<int>(), o.x, 1);
      EXPECT_NEAR(t["box"]["y"].get<int>(), o.y, 1);
      EXPECT_NEAR(t["box"]["w"].get<int>(), o.w, 1);
      EXPECT_NEAR(t["box"]["h"].get<int>(), o.h, 1);
    }
  }
}

// The other way round: GStreamer's objectdetectionoverlay draws what ssddetect writes. In a
// gst-launch-1.0 of its own, without the leak tracer: objectdetectionoverlay 1.26 never frees its
// last overlay composition (its stop() and finalize() leave `composition` alone).
TEST(GstAnalyticsInterop, ObjectDetectionOverlayDrawsSsdDetectsDetections) {
  const std::string missing = missing_factory({"objectdetectionoverlay", "pngenc"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  TempDir tmp;
  const PngScene scene = png_scene(tmp, 8);
  const Det* d = top(scene.ref);
  ASSERT_NE(d, nullptr) << "the shipped model finds nothing in the scene";
  const std::string out = tmp / "drawn.png";
  const std::string cmd = "env -u GST_TRACERS gst-launch-1.0 -q filesrc location=" + scene.png +
                          " ! pngdec ! videoconvert ! video/x-raw,format=RGBx ! ssddetect ! objectdetectionoverlay"
                          " ! videoconvert ! pngenc ! filesink location=" + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const cv::Mat before = cv::imread(scene.png), after = cv::imread(out);
  ASSERT_EQ(after.size(), before.size());
  // The outline (2 px wide, centred on the box's edge) down the box's left side.
  int changed = 0, rows = 0;
  for (int y = d->y + 4; y < d->y + d->h - 4; y++, rows++) {
    bool row_changed = false;
    for (int x = std::max(0, d->x - 2); x <= d->x + 2; x++)
      row_changed = row_changed || after.at<cv::Vec3b>(y, x) != before.at<cv::Vec3b>(y, x);
    changed += row_changed;
  }
  EXPECT_GT(changed, rows * 9 / 10) << changed << " of " << rows << " rows changed on the left edge of "
                                    << describe(std::vector<Det>{*d});
}
#endif  // HAVE_GST_ANALYTICS

// ==========================================================================================
// ssdtrack

namespace {

// A flat 320x240 RGB frame with these regions of interest (label, x, y, w, h), stamped as frame
// `index`.
struct Region {
  const char* label;
  int x, y, w, h;
};
GstBuffer* frame_with_regions(const Frame& f, int index, const std::vector<Region>& regions) {
  GstBuffer* b = stamped(f, index);
  for (const Region& r : regions)
    gst_buffer_add_video_region_of_interest_meta(b, r.label, r.x, r.y, r.w, r.h);
  return b;
}

// The (label, object id) of each region of a buffer pushed through `h`.
std::vector<std::pair<std::string, int>> track_ids(GstHarness* h, GstBuffer* in) {
  EXPECT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  std::vector<std::pair<std::string, int>> ids;
  if (!out) return ids;
  for (const Det& d : detections(out)) ids.emplace_back(d.roi_type, d.object_id);
  gst_buffer_unref(out);
  return ids;
}

}  // namespace

// Regions from any producer (here added by hand): a moving circle and a still square keep their
// ids; the circle hidden for more than max-lost frames comes back with a new one; a flush
// forgets every track; after a restart (READY, then PLAYING) ids go on counting, not reused.
TEST(SsdTrack, ObjectsKeepTheirIdsUntilLostOrFlushed) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack max-lost=2");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  int i = 0;
  for (; i < 10; i++) {
    const auto ids = track_ids(h, frame_with_regions(*f, i, {{"circle", 10 + 9 * i, 40, 30, 30}, {"square", 200, 150, 50, 40}}));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], (std::pair<std::string, int>{"circle", 1})) << "frame " << i;
    EXPECT_EQ(ids[1], (std::pair<std::string, int>{"square", 2})) << "frame " << i;
  }
  for (int k = 0; k < 3; k++, i++) {   // the circle is hidden for 3 frames, more than max-lost=2
    const auto ids = track_ids(h, frame_with_regions(*f, i, {{"square", 200, 150, 50, 40}}));
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0].second, 2);
  }
  auto ids = track_ids(h, frame_with_regions(*f, i++, {{"square", 200, 150, 50, 40}, {"circle", 10 + 9 * 13, 40, 30, 30}}));
  EXPECT_EQ(ids, (std::vector<std::pair<std::string, int>>{{"square", 2}, {"circle", 3}}));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  ids = track_ids(h, frame_with_regions(*f, 0, {{"square", 200, 150, 50, 40}}));
  EXPECT_EQ(ids, (std::vector<std::pair<std::string, int>>{{"square", 4}})) << "a flush forgets the tracks";
  ASSERT_EQ(gst_element_set_state(h->element, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  ASSERT_EQ(gst_element_set_state(h->element, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_stream_start("restarted")));
  gst_harness_set_src_caps(h, caps_25fps(*f));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  ids = track_ids(h, frame_with_regions(*f, 0, {{"circle", 10, 40, 30, 30}}));
  EXPECT_EQ(ids, (std::vector<std::pair<std::string, int>>{{"circle", 5}})) << "ids are not reused after a restart";
  gst_harness_teardown(h);
}

// Frames that ssddetect's `interval` skipped (regions marked `carried`, their boxes the last
// analysed frame's) keep that frame's ids, and the motion is measured per frame between analysed
// frames: an object speeding up (20 px wide, 2 px per frame and 0.5 more each frame) keeps its
// id with every second frame analysed. The same boxes without the mark read as frames without
// motion and lose it. After a flush the tracks are gone: a carried frame starts them afresh. In
// a cascade (a second ssddetect analysing every frame: here a fresh "sign" region in each) the
// car's carried regions keep their ids all the same (they went through matching, as frames
// without motion, once any region of the frame was fresh: 3 ids where there was 1).
TEST(SsdTrack, CarriedFramesKeepTheirIdsAndTheMotionPerFrame) {
  auto f = make_frame(flat(1000, 100), GST_VIDEO_FORMAT_RGB);
  auto region = [&](int index, int x, bool carried, bool with_sign) {
    GstBuffer* b = stamped(*f, index);
    auto* roi = gst_buffer_add_video_region_of_interest_meta(b, "car", x, 40, 20, 20);
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new("detection", "label", G_TYPE_STRING, "car", "carried", G_TYPE_BOOLEAN, carried, nullptr));
    if (with_sign) {
      auto* sign = gst_buffer_add_video_region_of_interest_meta(b, "sign", 900, 10, 30, 30);
      gst_video_region_of_interest_meta_add_param(
          sign, gst_structure_new("detection", "label", G_TYPE_STRING, "sign", "carried", G_TYPE_BOOLEAN, FALSE, nullptr));
    }
    return b;
  };
  // Marked carried, or gap buffers (videorate's repeats of a frame, given its detections), or
  // neither; marked carried beside another detector's fresh regions.
  for (const int marked : {1, 2, 0, 3}) {
    SCOPED_TRACE(marked == 1 ? "carried frames marked" : marked == 2 ? "gap buffers" : marked == 3 ? "cascade" : "not marked");
    GstHarness* h = gst_harness_new_parse("ssdtrack");
    gst_harness_set_src_caps(h, caps_25fps(*f));
    std::set<int> ids, sign_ids;
    double x = 0, v = 2, analysed = 0;
    for (int i = 0; i < 40; ++i, x += v, v += 0.5) {
      const bool carried = i % 2 == 1;
      if (!carried) analysed = x;
      GstBuffer* b = region(i, static_cast<int>(analysed), (marked == 1 || marked == 3) && carried, marked == 3);
      if (marked == 2 && carried) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_GAP);
      const auto out = track_ids(h, b);
      ASSERT_EQ(out.size(), marked == 3 ? 2u : 1u);
      ids.insert(out[0].second);
      if (marked == 3) sign_ids.insert(out[1].second);
    }
    if (marked == 3) {
      EXPECT_EQ(ids, (std::set<int>{1}));
      EXPECT_EQ(sign_ids, (std::set<int>{2}));
    } else if (marked == 2) {
      EXPECT_EQ(ids, (std::set<int>{1}));
    } else if (marked) {
      EXPECT_EQ(ids, (std::set<int>{1}));
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
      GstSegment seg;
      gst_segment_init(&seg, GST_FORMAT_TIME);
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
      using Ids = std::vector<std::pair<std::string, int>>;
      EXPECT_EQ(track_ids(h, region(0, 100, true, false)), (Ids{{"car", 2}}));
      EXPECT_EQ(track_ids(h, region(1, 100, true, false)), (Ids{{"car", 2}}));
    } else {
      EXPECT_GT(ids.size(), 1u) << "the scene no longer tells the two apart: make the object faster";
    }
    gst_harness_teardown(h);
  }
}

// Frames dropped upstream (QoS) count by their timestamps: an object 40 px wide moving 12 px a
// frame, of which frames 0, 1, 4, 5, 8, 9... come (25 fps), keeps its id; the same boxes on
// consecutive timestamps read as moves of 12 and 36 px a frame and lose it (with `interval` and
// QoS drops a ball had 20 ids in 8 s, 2026-12-06).
TEST(SsdTrack, FramesDroppedUpstreamCountForTheMotion) {
  auto f = make_frame(flat(1000, 100), GST_VIDEO_FORMAT_RGB);
  for (const bool dropped : {true, false}) {
    SCOPED_TRACE(dropped ? "timestamps with the dropped frames' gaps" : "consecutive timestamps");
    GstHarness* h = gst_harness_new_parse("ssdtrack");
    gst_harness_set_src_caps(h, caps_25fps(*f));
    std::set<int> ids;
    int index = 0;
    for (int frame = 0; frame < 60; frame += frame % 4 == 0 ? 1 : 3, ++index) {
      const auto out = track_ids(h, frame_with_regions(*f, dropped ? frame : index, {{"car", 12 * frame, 30, 40, 40}}));
      ASSERT_EQ(out.size(), 1u);
      ids.insert(out[0].second);
    }
    if (dropped) EXPECT_EQ(ids, (std::set<int>{1}));
    else EXPECT_GT(ids.size(), 1u) << "the scene no longer tells the two apart: make the object faster";
    gst_harness_teardown(h);
  }
}

// Timestamps rounded to milliseconds (Matroska's, of a 29.97 fps stream) count the frame times
// between them to the nearest: after a car at frame 0, a frame without it at frame 3 (100 ms,
// 2.997 frame times) ends its track at max-lost=2, and the car at frame 4 (133 ms) is a new one;
// at frame 2 (67 ms) instead, it is the same car. (Truncated, 100 ms counted 2 frames.)
TEST(SsdTrack, MillisecondTimestampsCountTheNearestNumberOfFrames) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  for (const int missed_at : {3, 2}) {
    SCOPED_TRACE("no car at frame " + std::to_string(missed_at));
    GstHarness* h = gst_harness_new_parse("ssdtrack max-lost=2");
    GstCaps* caps = gst_caps_copy(f->caps);
    gst_caps_set_simple(caps, "framerate", GST_TYPE_FRACTION, 30000, 1001, nullptr);
    gst_harness_set_src_caps(h, caps);
    auto at = [&](int n, bool car) {   // frame n, its timestamp rounded to a millisecond
      GstBuffer* b = frame_with_regions(*f, 0, car ? std::vector<Region>{{"car", 100, 100, 40, 40}} : std::vector<Region>{});
      GST_BUFFER_PTS(b) = static_cast<GstClockTime>(std::lround(n * 1001.0 / 30.0)) * GST_MSECOND;
      GST_BUFFER_DURATION(b) = GST_CLOCK_TIME_NONE;
      return track_ids(h, b);
    };
    EXPECT_EQ(at(0, true), (std::vector<std::pair<std::string, int>>{{"car", 1}}));
    EXPECT_TRUE(at(missed_at, false).empty());
    EXPECT_EQ(at(missed_at + 1, true), (std::vector<std::pair<std::string, int>>{{"car", missed_at == 3 ? 2 : 1}}));
    gst_harness_teardown(h);
  }
}

// Gap buffers without regions (videorate's empty repeats) count for max-lost as the frames they
// stand for: an object gone for 15 frame times, 12 of them gap buffers, is a new one with
// max-lost=10 (the gaps were not counted: it kept its id), as it is when they are ordinary frames.
// In reverse playback (rate -1: timestamps decrease) frames are as many frame times apart as
// forwards: an object moving steadily keeps its id, also across frames dropped upstream (the
// motion over the 4 frame times from frame 17 to frame 13 is 4 frames' worth).
TEST(SsdTrack, ReversePlaybackCountsTheFramesBetweenDecreasingTimestamps) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack max-lost=2");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.rate = -1.0;
  seg.stop = 100 * kFrameStep;
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  for (int i : {20, 19, 18, 17, 13, 12, 11}) {
    const auto ids = track_ids(h, frame_with_regions(*f, i, {{"circle", 10 + 9 * i, 40, 30, 30}}));
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0], (std::pair<std::string, int>{"circle", 1})) << "frame " << i;
  }
  gst_harness_teardown(h);
}

TEST(SsdTrack, GapBuffersCountForMaxLost) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  for (const bool gaps : {true, false}) {
    SCOPED_TRACE(gaps ? "gap buffers" : "frames without regions");
    GstHarness* h = gst_harness_new_parse("ssdtrack max-lost=10");
    gst_harness_set_src_caps(h, caps_25fps(*f));
    int i = 0;
    for (; i < 5; ++i) EXPECT_EQ(track_ids(h, frame_with_regions(*f, i, {{"car", 100, 100, 40, 40}}))[0].second, 1);
    for (int k = 0; k < 15; ++k, ++i) {
      GstBuffer* b = frame_with_regions(*f, i, {});
      if (gaps && k >= 3) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_GAP);
      EXPECT_TRUE(track_ids(h, b).empty());
    }
    const auto back = track_ids(h, frame_with_regions(*f, i, {{"car", 100, 100, 40, 40}}));
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].second, 2) << "gone for 15 frames, more than max-lost=10";
    gst_harness_teardown(h);
  }
}

// Another segment (a seek without a flush) forgets the tracks, as a flush does; the same segment
// again does not.
TEST(SsdTrack, AnotherSegmentForgetsTheTracks) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  using Ids = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(track_ids(h, frame_with_regions(*f, 0, {{"circle", 10, 40, 30, 30}})), (Ids{{"circle", 1}}));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));   // the harness's again
  EXPECT_EQ(track_ids(h, frame_with_regions(*f, 1, {{"circle", 10, 40, 30, 30}})), (Ids{{"circle", 1}}));
  seg.start = seg.time = 10 * GST_SECOND;
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  EXPECT_EQ(track_ids(h, frame_with_regions(*f, 250, {{"circle", 10, 40, 30, 30}})), (Ids{{"circle", 2}}));
  gst_harness_teardown(h);
}

// A resolution change forgets the tracks (their pixels are another frame's), whichever side
// changed: the width, the height or both; the same caps again keep them.
TEST(SsdTrack, AResolutionChangeForgetsTheTracks) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack");
  using Ids = std::vector<std::pair<std::string, int>>;
  int index = 0, expected = 0;
  for (const auto& [w, hh] : {std::pair{320, 240}, std::pair{320, 240}, std::pair{320, 180}, std::pair{400, 180},
                              std::pair{200, 100}}) {
    GstCaps* caps = caps_25fps(*f);
    gst_caps_set_simple(caps, "width", G_TYPE_INT, w, "height", G_TYPE_INT, hh, nullptr);
    gst_harness_set_src_caps(h, caps);
    if (index == 0 || index > 1) ++expected;   // the first caps, and every change after the repeat
    EXPECT_EQ(track_ids(h, frame_with_regions(*f, index++, {{"car", 10, 10, 40, 40}})), (Ids{{"car", expected}}))
        << w << "x" << hh;
  }
  gst_harness_teardown(h);
}

// A region with no width or height (a detection clipped to the frame's edge) keeps its id like
// any other, as a line of pixels; it does not start a track of its own every frame.
TEST(SsdTrack, RegionsWithoutWidthOrHeightKeepTheirIds) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  for (int i = 0; i < 5; i++) {
    const auto ids = track_ids(h, frame_with_regions(*f, i, {{"circle", 319, 40 + i, 0, 30}, {"square", 100, 239, 50, 0},
                                                             {"circle", 200, 100, 0, 0}}));
    EXPECT_EQ(ids, (std::vector<std::pair<std::string, int>>{{"circle", 1}, {"square", 2}, {"circle", 3}}))
        << "frame " << i;
  }
  gst_harness_teardown(h);
}

// Behind ssddetect (interval=2: every other frame carries the boxes) the shipped model's
// detections of a scene keep their ids in every frame, ssdexport writes them, and ssdoverlay
// writes them into the captions (show-ids changes the pixels of a tracked frame only).
TEST(SsdTrack, FollowsSsdDetectAndShowsInExportAndOverlay) {
  TempDir tmp;
  const std::string path = tmp / "tracked.jsonl";
  const ssdtrain::SynthSample s = one_object(320, 240, 8);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse(("ssddetect interval=2 ! ssdtrack ! ssdexport location=" + path).c_str());
  gst_harness_set_src_caps(h, caps_25fps(*f));
  std::vector<std::vector<Det>> frames;
  for (int i = 0; i < 6; i++) {
    ASSERT_EQ(gst_harness_push(h, stamped(*f, i)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    frames.push_back(detections(out));
    gst_buffer_unref(out);
  }
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
  ASSERT_FALSE(frames[0].empty());
  std::set<int> first;
  for (const Det& d : frames[0]) {
    EXPECT_GT(d.object_id, 0) << describe(frames[0]);
    first.insert(d.object_id);
  }
  EXPECT_EQ(first.size(), frames[0].size()) << "two detections share an id: " << describe(frames[0]);
  for (size_t i = 1; i < frames.size(); i++) {
    ASSERT_EQ(frames[i].size(), frames[0].size());
    for (size_t k = 0; k < frames[i].size(); k++) EXPECT_EQ(frames[i][k].object_id, frames[0][k].object_id) << i;
  }
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const json j = json::parse(line);
  ASSERT_EQ(j["detections"].size(), frames[0].size());
  for (size_t k = 0; k < frames[0].size(); k++) {
    EXPECT_EQ(j["detections"][k]["object_id"], frames[0][k].object_id);
    EXPECT_EQ(j["detections"][k]["carried"], false);   // frame 0: analysed
  }
  ASSERT_TRUE(std::getline(in, line));
  const json j1 = json::parse(line);
  ASSERT_EQ(j1["detections"].size(), frames[0].size());
  for (const auto& d : j1["detections"]) EXPECT_EQ(d["carried"], true) << line;   // frame 1: repeated

  // The overlay: the same tracked frame with and without ids differs; an untracked one does not.
  auto draw = [&](const char* props, bool tracked) {
    const std::string desc = std::string(tracked ? "ssdtrack ! " : "") + "ssdoverlay " + props;
    GstHarness* o = gst_harness_new_parse(desc.c_str());
    gst_harness_set_src_caps(o, caps_25fps(*f));
    GstBuffer* in_buf = frame_with_regions(*f, 0, {{"circle", 40, 60, 80, 70}});
    EXPECT_EQ(gst_harness_push(o, in_buf), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(o);
    std::vector<uint8_t> px(gst_buffer_get_size(out));
    gst_buffer_extract(out, 0, px.data(), px.size());
    gst_buffer_unref(out);
    gst_harness_teardown(o);
    return px;
  };
  EXPECT_NE(draw("show-ids=true", true), draw("show-ids=false", true));
  EXPECT_EQ(draw("show-ids=true", false), draw("show-ids=false", false));
}

#ifdef HAVE_GST_ANALYTICS
// GStreamer >= 1.24: behind ssddetect each object-detection entry relates to a tracking entry
// with its region's object id, first seen at the first frame's PTS and last seen at this one's.
TEST(SsdTrack, AddsAnalyticsTrackingMtdsRelatedToTheDetections) {
  const ssdtrain::SynthSample s = one_object(320, 240, 8);
  auto f = make_frame(s.image, GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssddetect ! ssdtrack");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(gst_harness_push(h, stamped(*f, i)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    std::set<int> want, tracked;
    for (const Det& d : detections(out)) want.insert(d.object_id);
    EXPECT_FALSE(want.empty());
    GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(out);
    EXPECT_NE(rmeta, nullptr);
    gpointer state = nullptr;
    GstAnalyticsMtd od;
    while (rmeta && gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(), &od)) {
      gpointer related = nullptr;
      GstAnalyticsMtd trk;
      if (!gst_analytics_relation_meta_get_direct_related(rmeta, od.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
                                                          gst_analytics_tracking_mtd_get_mtd_type(), &related, &trk)) {
        ADD_FAILURE() << "frame " << i << ": a detection entry without a tracking entry";
        continue;
      }
      guint64 id = 0;
      GstClockTime first = GST_CLOCK_TIME_NONE, last = GST_CLOCK_TIME_NONE;
      gboolean lost = TRUE;
      EXPECT_TRUE(gst_analytics_tracking_mtd_get_info(&trk, &id, &first, &last, &lost));
      EXPECT_EQ(first, 0u) << "frame " << i;
      EXPECT_EQ(last, static_cast<GstClockTime>(i) * kFrameStep) << "frame " << i;
      EXPECT_FALSE(lost);
      tracked.insert(static_cast<int>(id));
    }
    EXPECT_EQ(tracked, want) << "frame " << i;
    gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
}

// Detections that arrive only as object-detection entries (GStreamer's own analytics elements
// write no regions) are tracked too: each of two moving objects keeps its tracking id, and
// ssdexport behind writes those ids.
TEST(SsdTrack, TracksObjectDetectionsThatHaveNoRegion) {
  TempDir tmp;
  const std::string path = tmp / "det.jsonl";
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse(("ssdtrack ! ssdexport location=" + path).c_str());
  gst_harness_set_src_caps(h, caps_25fps(*f));
  std::map<std::string, std::set<guint64>> ids;   // per label, over the frames
  for (int i = 0; i < 4; i++) {
    GstBuffer* in = stamped(*f, i);
    add_od_mtd(in, {20 + 6 * i, 30, 80 + 6 * i, 90}, "car", 0.9f, 0);
    add_od_mtd(in, {200, 100 + 4 * i, 260, 180 + 4 * i}, "dog", 0.8f, 0);
    ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(out);
    ASSERT_NE(rmeta, nullptr);
    gpointer state = nullptr;
    GstAnalyticsMtd od;
    int tracked = 0;
    while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(), &od)) {
      gpointer related = nullptr;
      GstAnalyticsMtd trk;
      ASSERT_TRUE(gst_analytics_relation_meta_get_direct_related(rmeta, od.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
                                                                 gst_analytics_tracking_mtd_get_mtd_type(), &related, &trk))
          << "frame " << i;
      guint64 id = 0;
      GstClockTime first = GST_CLOCK_TIME_NONE, last = GST_CLOCK_TIME_NONE;
      gboolean lost = TRUE;
      EXPECT_TRUE(gst_analytics_tracking_mtd_get_info(&trk, &id, &first, &last, &lost));
      EXPECT_EQ(first, 0u);
      EXPECT_EQ(last, static_cast<GstClockTime>(i) * kFrameStep);
      ids[g_quark_to_string(gst_analytics_od_mtd_get_obj_type(&od))].insert(id);
      tracked++;
    }
    EXPECT_EQ(tracked, 2) << "frame " << i;
    gst_buffer_unref(out);
  }
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
  ASSERT_EQ(ids["car"].size(), 1u);
  ASSERT_EQ(ids["dog"].size(), 1u);
  EXPECT_NE(*ids["car"].begin(), *ids["dog"].begin());
  std::ifstream file(path);
  int lines = 0;
  for (std::string line; std::getline(file, line); lines++) {
    const json d = json::parse(line)["detections"];
    ASSERT_EQ(d.size(), 2u) << line;
    for (const json& det : d)
      EXPECT_EQ(det["object_id"], *ids[det["label"].get<std::string>()].begin()) << line;
  }
  EXPECT_EQ(lines, 4);
}
#endif

// Properties read at start (GST_PARAM_MUTABLE_READY) set while the element runs: refused with a
// warning naming them, and the element still reports the value it runs with (it reported the
// new one, which had no effect). Playing properties change as before.
TEST(SsdElements, StartOnlyPropertiesAreRefusedWhileRunning) {
  auto f = make_frame(flat(64, 48), GST_VIDEO_FORMAT_RGB);
  struct Case {
    const char* element;
    const char* property;
    const char* value;   // as gst_util_set_object_arg() takes it
  };
  for (const Case& c : {Case{"ssddetect", "batch-size", "8"}, Case{"ssddetect", "device", "cuda"},
                        Case{"ssddetect", "threads", "2"}, Case{"ssddetect", "model-instance-id", "x"},
                        Case{"ssdtrack", "max-lost", "0"}, Case{"ssdtrack", "match-labels", "false"}}) {
    SCOPED_TRACE(std::string(c.element) + " " + c.property);
    GstHarness* h = gst_harness_new(c.element);
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    GstBuffer* out = run_frame(h, *f);
    ASSERT_NE(out, nullptr);
    gst_buffer_unref(out);
    GValue before = G_VALUE_INIT;
    g_object_get_property(G_OBJECT(h->element), c.property, &before);
    // The value it runs with, set again (a property editor's "apply"): no change, no warning.
    g_object_set_property(G_OBJECT(h->element), c.property, &before);
    GstMessage* none = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
    EXPECT_EQ(none, nullptr) << "a warning for the value in use";
    if (none) gst_message_unref(none);
    gst_util_set_object_arg(G_OBJECT(h->element), c.property, c.value);
    GValue after = G_VALUE_INIT;
    g_object_get_property(G_OBJECT(h->element), c.property, &after);
    EXPECT_EQ(gst_value_compare(&before, &after), GST_VALUE_EQUAL);
    const std::string warning = next_warning(bus);
    EXPECT_NE(warning.find(std::string("The ") + c.property + " property changes only in the NULL or READY state"),
              std::string::npos) << warning;
    g_value_unset(&before);
    g_value_unset(&after);
    // Stopped, it takes the value.
    gst_element_set_state(h->element, GST_STATE_NULL);
    gst_util_set_object_arg(G_OBJECT(h->element), c.property, c.value);
    gchar* now = nullptr;
    GValue v = G_VALUE_INIT;
    g_object_get_property(G_OBJECT(h->element), c.property, &v);
    now = gst_value_serialize(&v);
    EXPECT_STREQ(now, c.value);
    g_free(now);
    g_value_unset(&v);
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
}

TEST(SsdTrack, PropertiesHaveDocumentedDefaults) {
  GstElement* e = gst_element_factory_make("ssdtrack", nullptr);
  ASSERT_NE(e, nullptr);
  gfloat iou = 0;
  guint lost = 0;
  gboolean labels = FALSE;
  guint hits = 0;
  g_object_get(e, "iou-threshold", &iou, "max-lost", &lost, "match-labels", &labels, "min-hits", &hits, nullptr);
  EXPECT_FLOAT_EQ(iou, 0.3f);
  EXPECT_EQ(lost, 10u);
  EXPECT_TRUE(labels);
  EXPECT_EQ(hits, 1u);   // an id at once
  gst_object_unref(e);
}

// A region that comes with another tracker's `object_id` (a second ssdtrack, another tracker
// upstream) leaves with this one's id in that structure: one object_id structure, not two, of
// which a reader takes the first.
TEST(SsdTrack, ReplacesTheIdAnotherTrackerGaveARegion) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  for (int i = 0; i < 3; i++) {
    GstBuffer* b = frame_with_regions(*f, i, {{"circle", 10 + 5 * i, 40, 30, 30}});
    gst_video_region_of_interest_meta_add_param(gst_buffer_get_video_region_of_interest_meta(b),
                                                gst_structure_new("object_id", "id", G_TYPE_INT, 77 + i, nullptr));
    ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    const auto* roi = gst_buffer_get_video_region_of_interest_meta(out);
    ASSERT_NE(roi, nullptr);
    int structures = 0, id = -1;
    for (GList* l = roi->params; l; l = l->next) {
      if (gst_structure_has_name(GST_STRUCTURE(l->data), "object_id")) {
        ++structures;
        gst_structure_get_int(GST_STRUCTURE(l->data), "id", &id);
      }
    }
    EXPECT_EQ(structures, 1) << "frame " << i;
    EXPECT_EQ(id, 1) << "frame " << i;
    gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
}

// min-hits: a track's regions get no object_id until its min-hits-th (an `object_id` another
// tracker put there goes), then the id it keeps; a region seen once (a flicker) takes no id, so
// the next object's is 2.
TEST(SsdTrack, MinHitsGivesIdsOnlyToTracksSeenThatOften) {
  auto f = make_frame(flat(320, 240), GST_VIDEO_FORMAT_RGB);
  GstHarness* h = gst_harness_new_parse("ssdtrack min-hits=3");
  gst_harness_set_src_caps(h, caps_25fps(*f));
  std::vector<int> circle;
  for (int i = 0; i < 5; i++) {
    std::vector<Region> regions = {{"circle", 10 + 5 * i, 40, 30, 30}};
    if (i == 1) regions.push_back({"square", 200, 150, 50, 40});   // once
    GstBuffer* b = frame_with_regions(*f, i, regions);
    if (i == 0) {   // another tracker's id upstream
      auto* roi = gst_buffer_get_video_region_of_interest_meta(b);
      gst_video_region_of_interest_meta_add_param(roi, gst_structure_new("object_id", "id", G_TYPE_INT, 77, nullptr));
    }
    const auto ids = track_ids(h, b);
    ASSERT_EQ(ids.size(), regions.size());
    circle.push_back(ids[0].second);
    if (i == 1) {
      EXPECT_EQ(ids[1].second, -1) << "a square seen once";
    }
  }
  EXPECT_EQ(circle, (std::vector<int>{-1, -1, 1, 1, 1}));
  for (int i = 5; i < 8; i++) {
    const auto ids = track_ids(h, frame_with_regions(*f, i, {{"circle", 10 + 5 * i, 40, 30, 30}, {"cross", 250, 20, 30, 30}}));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[1].second, i < 7 ? -1 : 2) << "frame " << i;
  }
  gst_harness_teardown(h);
}

// ==========================================================================================
// RTSP camera: a local gst-rtsp-server serves H.264 of a synthetic scene; rtspsrc ! decode !
// ssddetect ! appsink must report the object.

#ifdef HAVE_RTSP_SERVER
namespace {

class RtspServer {
 public:
  RtspServer(const std::string& launch) {
    ctx_ = g_main_context_new();
    loop_ = g_main_loop_new(ctx_, FALSE);
    server_ = gst_rtsp_server_new();
    gst_rtsp_server_set_address(server_, "127.0.0.1");
    gst_rtsp_server_set_service(server_, "0");   // any free port
    GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server_);
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, launch.c_str());
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    gst_rtsp_mount_points_add_factory(mounts, "/cam", factory);
    g_object_unref(mounts);
    source_ = gst_rtsp_server_attach(server_, ctx_);
    port_ = gst_rtsp_server_get_bound_port(server_);
    thread_ = std::thread([this] { g_main_loop_run(loop_); });
  }
  ~RtspServer() {
    g_main_loop_quit(loop_);
    thread_.join();
    if (GSource* s = g_main_context_find_source_by_id(ctx_, source_)) g_source_destroy(s);
    g_object_unref(server_);
    g_main_loop_unref(loop_);
    g_main_context_unref(ctx_);
  }
  int port() const { return port_; }

 private:
  GMainContext* ctx_;
  GMainLoop* loop_;
  GstRTSPServer* server_;
  guint source_ = 0;
  int port_ = -1;
  std::thread thread_;
};

}  // namespace

TEST(SsdRtsp, DetectsObjectsFromAnRtspCamera) {
  const std::string missing =
      missing_factory({"x264enc", "rtph264pay", "rtspsrc", "avdec_h264", "h264parse", "imagefreeze", "pngdec"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 9);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the frame";
  const Det want = *top(ref);
  RtspServer server("( filesrc location=" + png +
                    " ! pngdec ! imagefreeze is-live=true ! videoconvert ! "
                    "video/x-raw,format=I420,framerate=10/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
                    "key-int-max=5 ! rtph264pay name=pay0 pt=96 config-interval=1 )");
  ASSERT_GT(server.port(), 0);
  const std::string client = "rtspsrc location=rtsp://127.0.0.1:" + std::to_string(server.port()) +
                             "/cam protocols=tcp latency=100 ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! "
                             "ssddetect ! appsink name=sink sync=false max-buffers=4 drop=true";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(client.c_str(), &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstBus* bus = gst_element_get_bus(pipeline);
  bool found = false;
  int frames = 0;
  std::string last;
  const gint64 deadline = g_get_monotonic_time() + 25 * G_TIME_SPAN_SECOND;
  while (!found && g_get_monotonic_time() < deadline) {
    if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      ADD_FAILURE() << "client error: " << take_message_text(m);
      break;
    }
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), GST_SECOND);
    if (!sample) continue;
    frames++;
    const auto dets = detections(gst_sample_get_buffer(sample));
    for (const Det& d : dets) found = found || (d.label == want.label && det_iou(d, want) > 0.7);
    last = describe(dets);
    gst_sample_unref(sample);
  }
  EXPECT_TRUE(found) << frames << " frames received; want " << describe(std::vector<Det>{want}) << ", last " << last;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}
#endif

// ==========================================================================================
// The example application and the Python script, run on a synthetic image.

namespace {

struct Spawned {
  int status = -1;
  std::string out, err;
};

Spawned spawn(const std::vector<std::string>& argv) {
  std::vector<gchar*> args;
  for (const auto& a : argv) args.push_back(const_cast<gchar*>(a.c_str()));
  args.push_back(nullptr);
  Spawned r;
  gchar *out = nullptr, *err = nullptr;
  GError* error = nullptr;
  gint status = 0;
  if (!g_spawn_sync(nullptr, args.data(), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &out, &err, &status, &error)) {
    r.err = error->message;
    g_error_free(error);
    return r;
  }
  r.status = g_spawn_check_wait_status(status, nullptr) ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  r.out = out ? out : "";
  r.err = err ? err : "";
  g_free(out);
  g_free(err);
  return r;
}

// Runs argv, sends it SIGINT `seconds` after it printed its first "frame " line (or after 120 s
// without one: a program that starts slowly, e.g. under a sanitizer, is not interrupted before
// its pipeline runs), and returns its exit status and output.
Spawned interrupt_after(const std::vector<std::string>& argv, double seconds) {
  std::vector<gchar*> args;
  for (const auto& a : argv) args.push_back(const_cast<gchar*>(a.c_str()));
  args.push_back(nullptr);
  Spawned r;
  GPid pid = 0;
  gint out_fd = -1;
  GError* error = nullptr;
  if (!g_spawn_async_with_pipes(nullptr, args.data(), nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid,
                                nullptr, &out_fd, nullptr, &error)) {
    r.err = error->message;
    g_error_free(error);
    return r;
  }
  char buf[4096];
  ssize_t n;
  // Reads the program's output until `done` holds or `ms` have passed; false once it closed it.
  auto drain = [&](int64_t ms, const std::function<bool()>& done) {
    const gint64 until = g_get_monotonic_time() + ms * 1000;
    for (gint64 now; !done() && (now = g_get_monotonic_time()) < until;) {
      pollfd p{out_fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>((until - now) / 1000) + 1) <= 0) continue;
      if ((n = read(out_fd, buf, sizeof buf)) <= 0) return false;
      r.out.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  if (drain(120000, [&] { return r.out.find("frame ") != std::string::npos; }))
    drain(static_cast<int64_t>(seconds * 1000), [] { return false; });
  kill(pid, SIGINT);
  while ((n = read(out_fd, buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(out_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  g_spawn_close_pid(pid);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

// ssd-clip, the demo's clip renderer and scorer: a line's frame is its pts at the clip's frame
// rate (ssdexport's `frame` counts the frames that reached it: a frame dropped upstream shifted
// every later one onto the wrong ground truth); lines of frames the truth lacks are reported; a
// clip rendered again into its folder leaves none of the earlier one's frames.
TEST(Examples, ClipScoresLinesByTheirTimestamps) {
  TempDir tmp;
  const std::string clip = tmp / "clip";
  Spawned r = spawn({SSD_CLIP_TOOL, "render", "--out", clip, "--scenes", "4", "--hold", "2", "--fps", "10",
                     "--format", "png", "--width", "96", "--height", "96"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const json truth = json::parse(std::ifstream(clip + "/truth.json"));
  ASSERT_EQ(truth["frames"].size(), 8u);
  // Perfect detections of every frame but frame 2 (dropped upstream), counted as ssdexport
  // counts them, plus a line of a frame past the clip.
  std::ofstream lines(tmp / "dets.jsonl");
  int counted = 0, objects = 0;
  for (const auto& f : truth["frames"]) {
    const int frame = f["frame"].get<int>();
    if (frame == 2) continue;
    json dets = json::array();
    for (const auto& b : f["boxes"]) {
      const int x = static_cast<int>(std::lround(b["x1"].get<double>())), y = static_cast<int>(std::lround(b["y1"].get<double>()));
      dets.push_back({{"label", b["label"]}, {"confidence", 0.9},
                      {"box", {{"x", x}, {"y", y}, {"w", static_cast<int>(std::lround(b["x2"].get<double>())) - x},
                               {"h", static_cast<int>(std::lround(b["y2"].get<double>())) - y}}}});
      ++objects;
    }
    lines << json({{"frame", counted++}, {"pts", frame * 100000000LL}, {"detections", dets}}).dump() << "\n";
  }
  lines << json({{"frame", counted}, {"pts", 20 * 100000000LL}, {"detections", json::array()}}).dump() << "\n";
  lines.close();
  Spawned s = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "dets.jsonl"});
  ASSERT_EQ(s.status, 0) << s.out << s.err;
  EXPECT_NE(s.out.find("frames: 8 (1 without an ssdexport line)"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("matched at IoU>0.50: " + std::to_string(objects)), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("lines of frames the truth does not have (not scored): 1"), std::string::npos) << s.out;
  // Lines whose pts start at an MP4 demuxer's decoding delay (2 frames), their stream_time from 0
  // (ssdexport writes both): scored by the stream time (by the pts, each frame was 2 off).
  {
    std::ifstream in(tmp / "dets.jsonl");
    std::ofstream mp4(tmp / "mp4.jsonl");
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line);
      j["stream_time"] = j["pts"];
      j["pts"] = j["pts"].get<int64_t>() + 200000000LL;
      mp4 << j.dump() << "\n";
    }
  }
  Spawned mp4 = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "mp4.jsonl"});
  ASSERT_EQ(mp4.status, 0) << mp4.out << mp4.err;
  EXPECT_NE(mp4.out.find("matched at IoU>0.50: " + std::to_string(objects)), std::string::npos) << mp4.out;
  // Each frame's file, relative to truth.json's folder (it was the --out path as given).
  EXPECT_EQ(truth["frames"][0]["file"], "frames/00000.png");
  EXPECT_TRUE(fs::exists(clip + "/" + truth["frames"][7]["file"].get<std::string>()));
  // The same detections from frames scaled to 192x144 on their way (ssdexport writes the size it
  // saw): scaled back to the clip's 96x96 (they matched none before, 2026-12-06).
  {
    std::ifstream in(tmp / "dets.jsonl");
    std::ofstream big(tmp / "big.jsonl");
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line);
      j["width"] = 192;
      j["height"] = 144;
      for (auto& d : j["detections"])
        for (const auto& [k, f] : {std::pair{"x", 2.0}, {"w", 2.0}, {"y", 1.5}, {"h", 1.5}})
          d["box"][k] = d["box"][k].get<double>() * f;
      big << j.dump() << "\n";
    }
  }
  Spawned big = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "big.jsonl"});
  ASSERT_EQ(big.status, 0) << big.out << big.err;
  EXPECT_NE(big.out.find("matched at IoU>0.50: " + std::to_string(objects)), std::string::npos) << big.out;
  EXPECT_NE(big.out.find("lines of frames analysed at another size (192x144), boxes scaled to the clip's 96x96: 8"),
            std::string::npos) << big.out;
  // Detections without a confidence (a converter between ssddetect and ssdexport dropped it): no
  // AP, which ranks by it (each counted 1.0 before, and an AP printed from arbitrary ranks).
  {
    std::ifstream in(tmp / "dets.jsonl");
    std::ofstream bare(tmp / "bare.jsonl");
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line);
      for (auto& d : j["detections"]) d["confidence"] = nullptr;
      if (j["pts"] == 20 * 100000000LL)   // (a frame past the clip, not scored: not counted either)
        j["detections"].push_back({{"label", "star"}, {"confidence", nullptr}, {"box", {{"x", 1}, {"y", 1}, {"w", 9}, {"h", 9}}}});
      bare << j.dump() << "\n";
    }
  }
  Spawned bare = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "bare.jsonl"});
  ASSERT_EQ(bare.status, 0) << bare.out << bare.err;
  EXPECT_NE(bare.out.find("matched at IoU>0.50: " + std::to_string(objects)), std::string::npos) << bare.out;
  EXPECT_NE(bare.out.find("AP50: not computed: " + std::to_string(objects) + " of " + std::to_string(objects) +
                          " detections have no confidence"),
            std::string::npos) << bare.out;
  EXPECT_EQ(bare.out.find("AP50 ("), std::string::npos) << bare.out;
  EXPECT_NE(s.out.find("AP50 (VOC all-point, mean over classes): 0."), std::string::npos) << s.out;
  // A folder given for a file: an error (it was scored as an empty file).
  Spawned folder = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", clip});
  EXPECT_EQ(folder.status, 1);
  EXPECT_NE(folder.err.find(clip + " is a directory, not a file"), std::string::npos) << folder.out << folder.err;
  // Timestamps at another frame rate: lines fall on one frame, an error rather than a score.
  std::ofstream(tmp / "fast.jsonl") << json({{"frame", 0}, {"pts", 0}, {"detections", json::array()}}).dump() << "\n"
                                    << json({{"frame", 1}, {"pts", 33333333}, {"detections", json::array()}}).dump() << "\n";
  Spawned fast = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "fast.jsonl"});
  EXPECT_EQ(fast.status, 1);
  EXPECT_NE(fast.err.find("fast.jsonl:2: its pts falls on frame 0"), std::string::npos) << fast.err;
  // A cut-off last line: an error naming the line.
  std::ofstream(tmp / "dets.jsonl", std::ios::app) << "{\"frame\": 9, \"pts\"";
  Spawned cut = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "dets.jsonl"});
  EXPECT_EQ(cut.status, 1);
  EXPECT_NE(cut.err.find("dets.jsonl:" + std::to_string(counted + 2)), std::string::npos) << cut.err;
  // Fields of the wrong type or out of range name the line too (a bare nlohmann message, or a
  // width of 3e9 read as a negative size, before).
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"frame": "0", "detections": []})", "bad.jsonl:1: [json.exception.type_error.302]"},
           {R"({"frame": 0, "detections": [[1]]})", "bad.jsonl:1: [json.exception.type_error.304]"},
           {R"({"frame": 0, "width": 3000000000, "height": 120, "detections": []})", "bad.jsonl:1: frame size 3000000000x120"},
           {R"({"frame": 0, "pts": 1e300, "detections": []})", "bad.jsonl:1: pts 1e+300 out of range"}}) {
    std::ofstream(tmp / "bad.jsonl") << line << "\n";
    Spawned bad = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "bad.jsonl"});
    EXPECT_EQ(bad.status, 1) << line;
    EXPECT_NE(bad.err.find(says), std::string::npos) << line << ": " << bad.err;
  }
  // NTSC's 30000/1001 (or a decimal) as the frame rate; other text is refused, naming it (an
  // integer only, with a message that said 29.97 was outside 1 to 1000).
  const std::string ntsc = tmp / "ntsc";
  r = spawn({SSD_CLIP_TOOL, "render", "--out", ntsc, "--scenes", "1", "--hold", "1", "--fps", "30000/1001", "--width",
             "64", "--height", "48"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NEAR(json::parse(std::ifstream(ntsc + "/truth.json"))["framerate"].get<double>(), 29.97003, 1e-5);
  for (const char* bad : {"29.97x", "0/1", "30/0", "2000"}) {
    r = spawn({SSD_CLIP_TOOL, "render", "--out", ntsc, "--fps", bad});
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_NE(r.err.find(std::string(bad) + ": a frame rate in [1, 1000], as N, N/D (30000/1001) or a decimal"),
              std::string::npos) << r.err;
  }
  // Rendered again, shorter: only the new clip's frames are left.
  r = spawn({SSD_CLIP_TOOL, "render", "--out", clip, "--scenes", "2", "--hold", "1", "--format", "jpg", "--width", "96",
             "--height", "96"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(clip + "/frames")) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"00000.jpg", "00001.jpg"}));
  // A render killed while it writes the frames: its truth.json lists none (score refuses it; new
  // frames sat beside the earlier clip's ground truth), and it renders again without complaint.
  {
    const std::vector<std::string> argv = {SSD_CLIP_TOOL, "render", "--out", clip, "--scenes", "100000", "--hold", "1",
                                           "--format", "png", "--width", "64", "--height", "64"};
    std::vector<gchar*> args;
    for (const auto& a : argv) args.push_back(const_cast<gchar*>(a.c_str()));
    args.push_back(nullptr);
    GPid pid = 0;
    ASSERT_TRUE(g_spawn_async(nullptr, args.data(), nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid, nullptr));
    const auto progress = ssdtest::wait_for_child(pid, [&] { return fs::exists(clip + "/frames/00005.png"); });
    if (!progress.ended) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    g_spawn_close_pid(pid);
    ASSERT_FALSE(progress.ended) << "the render ended by itself, status " << progress.status;
    ASSERT_TRUE(progress.reached) << "the render wrote nothing in 30 s";
    ASSERT_FALSE(fs::exists(clip + "/frames/99999.png")) << "not interrupted";
    EXPECT_TRUE(json::parse(std::ifstream(clip + "/truth.json"))["frames"].empty());
    Spawned partial = spawn({SSD_CLIP_TOOL, "score", "--truth", clip + "/truth.json", "--detections", tmp / "dets.jsonl"});
    EXPECT_EQ(partial.status, 1);
    EXPECT_NE(partial.err.find("lists no frames: its render was interrupted?"), std::string::npos) << partial.err;
    // (A frame the kill cut short, as write_image_file leaves it: removed too.)
    std::ofstream(clip + "/frames/00020.png.tmp") << "half a frame";
    r = spawn({SSD_CLIP_TOOL, "render", "--out", clip, "--scenes", "2", "--hold", "1", "--format", "jpg", "--width", "96",
               "--height", "96"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    std::set<std::string> again;
    for (const auto& e : fs::directory_iterator(clip + "/frames")) again.insert(e.path().filename().string());
    EXPECT_EQ(again, (std::set<std::string>{"00000.jpg", "00001.jpg"}));
  }
  // Mistakes a script makes: a misspelt command, a negative seed, fewer objects at most than at
  // least (the renderer's message named its own fields and a bound of 254).
  for (const auto& [argv, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{SSD_CLIP_TOOL, "rnder"}, "unknown command 'rnder' (commands: render, score, sheet)"},
           {{SSD_CLIP_TOOL, "render", "--out", tmp / "x", "--seed", "-1"}, "--seed: must be an integer in [0, 18446744073709551615]"},
           {{SSD_CLIP_TOOL, "render", "--out", tmp / "x", "--min-objects", "5", "--max-objects", "2"},
            "--min-objects (5) must be <= --max-objects (2)"},
           {{SSD_CLIP_TOOL, "score", "--truth", "", "--detections", "d.jsonl"}, "--truth: an empty path"},
           {{SSD_CLIP_TOOL, "score", "--truth", tmp / "dets.jsonl", "--detections", tmp / "dets.jsonl"},
            "dets.jsonl: not a ground truth that render writes: no 'width'"}}) {
    const Spawned bad = spawn(argv);
    EXPECT_NE(bad.status, 0) << argv[1];
    EXPECT_NE((bad.out + bad.err).find(says), std::string::npos) << bad.out << bad.err;
  }
  // A contact sheet named .jpg is a JPEG (it was a PNG by any name).
  Spawned jpg_sheet = spawn({SSD_CLIP_TOOL, "sheet", "--frames", clip + "/frames", "--out", tmp / "sheet.jpg", "--count", "2"});
  ASSERT_EQ(jpg_sheet.status, 0) << jpg_sheet.err;
  {
    std::ifstream in(tmp / "sheet.jpg", std::ios::binary);
    unsigned char magic[2] = {0, 0};
    in.read(reinterpret_cast<char*>(magic), 2);
    EXPECT_TRUE(magic[0] == 0xFF && magic[1] == 0xD8) << "not a JPEG";
  }
  // Frames of nobody's clip in the way: refused, kept.
  fs::create_directories(tmp.path() / "mine/frames");
  std::ofstream(tmp.path() / "mine/frames/00003.png") << "the user's";
  Spawned mine = spawn({SSD_CLIP_TOOL, "render", "--out", tmp / "mine", "--scenes", "1", "--hold", "1"});
  EXPECT_EQ(mine.status, 1);
  EXPECT_TRUE(fs::exists(tmp.path() / "mine/frames/00003.png"));
  // More objects than a small frame has room for: fewer, with a warning (there was none).
  Spawned crowded = spawn({SSD_CLIP_TOOL, "render", "--out", tmp / "crowded", "--scenes", "2", "--hold", "1", "--width",
                           "32", "--height", "32", "--min-objects", "20", "--max-objects", "20"});
  EXPECT_EQ(crowded.status, 0) << crowded.err;
  EXPECT_NE(crowded.err.find("warning: 2 of 2 scenes hold fewer than --min-objects 20 objects"), std::string::npos)
      << crowded.err;
}

// Each pipeline script's --help prints its comment block, all of it and nothing after it
// (rtsp-camera.sh's ended with its `set -euo pipefail` line, 2026-12-06), on stdout with
// status 0; run without its arguments, the same text goes to stderr with status 2.
TEST(Examples, PipelineScriptsPrintTheirUsage) {
  for (const char* name : {"file-detect.sh", "multi-stream.sh", "rtsp-camera.sh", "synthetic.sh"}) {
    SCOPED_TRACE(name);
    const std::string script = std::string(SSD_SOURCE_DIR "/pipelines/") + name;
    std::string block;
    {
      std::ifstream in(script);
      std::string line;
      std::getline(in, line);   // #!
      while (std::getline(in, line) && line.rfind("#", 0) == 0)
        block += line.substr(line.rfind("# ", 0) == 0 ? 2 : 1) + "\n";
    }
    ASSERT_NE(block.find("usage: pipelines/"), std::string::npos) << block;
    const Spawned help = spawn({"/bin/bash", script, "--help"});
    EXPECT_EQ(help.status, 0) << help.err;
    EXPECT_EQ(help.out, block);
    if (std::string(name) == "synthetic.sh") continue;   // (its arguments are optional)
    const Spawned bare = spawn({"/bin/bash", script});
    EXPECT_EQ(bare.status, 2);
    EXPECT_EQ(bare.out, "");
    EXPECT_EQ(bare.err, block);
  }
}

TEST(Examples, CppApplicationPrintsTheDetections) {
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 12);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the frame";
  const Spawned r = spawn({SSD_EXAMPLE_APP, "--min-detections", "1", png});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("frame 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(top(ref)->label + " #"), std::string::npos) << describe(ref) << "\n" << r.out;   // ssdtrack's id
  // Ctrl-C on a live source: EOS, the pipeline ends cleanly and the summary is printed.
  const std::string live = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 ! "
                           "ssddetect interval=2 ! ssdtrack ! fakesink";
  const Spawned stopped = interrupt_after({SSD_EXAMPLE_APP, "--pipeline", live}, 2.0);
  EXPECT_EQ(stopped.status, 0) << stopped.out;
  EXPECT_NE(stopped.out.find(" frames, "), std::string::npos) << stopped.out;
  EXPECT_NE(stopped.out.find("(carried from the last analysed frame)"), std::string::npos) << stopped.out;
  // A broken model makes it exit with an error, not crash.
  const Spawned bad = spawn({SSD_EXAMPLE_APP, "--model", "/nonexistent.safetensors", png});
  EXPECT_EQ(bad.status, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("/nonexistent.safetensors"), std::string::npos) << bad.err;
  // A misspelt property: gst_parse_launch's message, not a missing element.
  const std::string still = "filesrc location=" + png + " ! pngdec ! imagefreeze num-buffers=2 ! videoconvert ! ";
  const Spawned typo = spawn({SSD_EXAMPLE_APP, "--pipeline", still + "ssddetect treshold=0.5 ! fakesink"});
  EXPECT_EQ(typo.status, 1) << typo.out << typo.err;
  EXPECT_NE(typo.err.find("treshold"), std::string::npos) << typo.err;
  // Regions without a confidence (ssddetect's after videoscale, which drops their `detection`
  // structure), read at the detector named "detect": "?".
  const Spawned scaled = spawn({SSD_EXAMPLE_APP, "--min-detections", "1", "--pipeline",
                                still + "ssddetect ! videoscale ! video/x-raw,width=160,height=120 ! "
                                        "ssddetect name=detect threshold=0.999 ! fakesink"});
  EXPECT_EQ(scaled.status, 0) << scaled.out << scaled.err;
  EXPECT_NE(scaled.out.find(top(ref)->label + " ? [x="), std::string::npos) << scaled.out;
  // A cascade: the first detector's boxes carried (interval=2) beside the second's fresh ones
  // on the second frame: each carried box is marked, not the frame (it was the whole frame).
  const Spawned cascade = spawn({SSD_EXAMPLE_APP, "--pipeline",
                                 "filesrc location=" + png + " ! pngdec ! imagefreeze num-buffers=2 ! videoconvert ! "
                                 "ssddetect interval=2 ! ssddetect name=detect ! fakesink"});
  EXPECT_EQ(cascade.status, 0) << cascade.out << cascade.err;
  EXPECT_NE(cascade.out.find("] (carried)"), std::string::npos) << cascade.out;
  EXPECT_EQ(cascade.out.find("(carried from the last analysed frame)"), std::string::npos) << cascade.out;
  // A FILE beside --pipeline (it was ignored), an empty --model (it meant the shipped model).
  const Spawned both = spawn({SSD_EXAMPLE_APP, "--pipeline", "videotestsrc num-buffers=1 ! ssddetect ! fakesink", png});
  EXPECT_EQ(both.status, 1);
  EXPECT_NE(both.err.find("usage:"), std::string::npos) << both.err;
  const Spawned empty_model = spawn({SSD_EXAMPLE_APP, "--model", "", png});
  EXPECT_EQ(empty_model.status, 1);
  EXPECT_NE(empty_model.err.find("--model: an empty path"), std::string::npos) << empty_model.err;
  // A description naming a file that is not ASCII (GLib converted --pipeline from the locale's
  // charset, ASCII in an application that never calls setlocale(): "Invalid byte sequence").
  const std::string named = tmp / "Pr\u00fcfung \u81ea.png";
  fs::copy_file(png, named);
  const Spawned utf8 = spawn({SSD_EXAMPLE_APP, "--min-detections", "1", "--pipeline",
                              "filesrc location=\"" + named + "\" ! pngdec ! imagefreeze num-buffers=2 ! "
                              "videoconvert ! ssddetect ! fakesink"});
  EXPECT_EQ(utf8.status, 0) << utf8.out << utf8.err;
  EXPECT_NE(utf8.out.find(top(ref)->label), std::string::npos) << utf8.out;
  // Another element named "detect": the ssddetect is still found.
  const Spawned other = spawn({SSD_EXAMPLE_APP, "--min-detections", "1", "--pipeline",
                               "filesrc name=detect location=" + png + " ! pngdec ! imagefreeze num-buffers=2 ! "
                               "videoconvert ! ssddetect ! fakesink"});
  EXPECT_EQ(other.status, 0) << other.out << other.err;
  EXPECT_NE(other.out.find(top(ref)->label), std::string::npos) << other.out;
}

// An application that exits (here: Python's interpreter ends) while its pipelines run: exit()
// destroyed LibTorch's static objects while ssddetect's threads computed with them, and the
// process crashed (SIGSEGV in mkldnn_convolution, or abort on c10::Error "Unknown backend") in
// about half the runs, where identity in place of ssddetect exited cleanly.
TEST(Examples, AnApplicationExitingWhileItsPipelinesRunExitsCleanly) {
  const Spawned gi = spawn({SSD_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"});
  if (gi.status != 0) GTEST_SKIP() << SSD_PYTHON << " has no PyGObject: " << gi.err;
  const std::string script = R"(
import threading, gi
gi.require_version('Gst', '1.0')
from gi.repository import Gst
Gst.init(None)
running = []
for options in ('', 'in-flight=1 threads=1'):
    p = Gst.parse_launch('videotestsrc pattern=ball ! video/x-raw,width=160,height=120 ! '
                         'ssddetect name=d %s ! fakesink sync=false' % options)
    frames, flowing = [0], threading.Event()
    def count(pad, info, frames=frames, flowing=flowing):
        frames[0] += 1
        if frames[0] == 10: flowing.set()
        return Gst.PadProbeReturn.OK
    p.get_by_name('d').get_static_pad('src').add_probe(Gst.PadProbeType.BUFFER, count)
    p.set_state(Gst.State.PLAYING)
    running.append((p, flowing))
for p, flowing in running:
    assert flowing.wait(60), 'no frames'
print('exiting while playing', flush=True)
)";
  for (int run = 0; run < 6; ++run) {
    const Spawned r = spawn({SSD_PYTHON, "-c", script});
    EXPECT_EQ(r.status, 0) << "run " << run << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("exiting while playing"), std::string::npos) << r.out << r.err;
    if (r.status != 0) break;
  }
}

// A Python program that loads libstdc++ before GStreamer (importing PIL or torch first; here by
// ctypes) has C++ exceptions raised by libgcc_s's unwinder and resumed by libunwind's (GStreamer
// brings it into the global scope): ssddetect's first error aborted it without a word. The plugin
// says so when it loads; imported the other way round, or with libgcc_s preloaded (the two ways
// out it names), the error is reported and nothing is said.
TEST(Examples, AProcessThatCannotCatchCxxExceptionsIsWarned) {
  const Spawned gi = spawn({SSD_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"});
  if (gi.status != 0) GTEST_SKIP() << SSD_PYTHON << " has no PyGObject: " << gi.err;
  const std::string script = R"(
import ctypes, os, sys
if sys.argv[1] == "cxx-first":
    ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_NOW)   # as PIL's or torch's C++ libraries load it
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch("videotestsrc num-buffers=1 ! ssddetect classes=dog ! fakesink")
print("state change:", p.set_state(Gst.State.PLAYING).value_nick, flush=True)
msg = p.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.ERROR)
print("error:", msg.parse_error()[0].message if msg else None)
p.set_state(Gst.State.NULL)
)";
  const std::string warning = "gst-ssd: warning: C++ exceptions cannot be caught in this process";
  const char* preloaded = std::getenv("LD_PRELOAD");   // (a sanitizer's runtime, say)
  if (!preloaded || !*preloaded) {   // (a preloaded runtime brings libgcc_s first: no mix to warn of)
    const Spawned mixed = spawn({SSD_PYTHON, "-c", script, "cxx-first"});
    EXPECT_NE(mixed.err.find(warning), std::string::npos) << mixed.out << mixed.err;
    EXPECT_NE(mixed.err.find("LD_PRELOAD=libgcc_s.so.1"), std::string::npos) << mixed.err;
  }
  for (const bool preload : {false, true}) {
    SCOPED_TRACE(preload ? "libgcc_s preloaded" : "GStreamer imported first");
    const Spawned r =
        preload ? spawn({"/usr/bin/env", "LD_PRELOAD=" + std::string(preloaded ? preloaded : "") + " libgcc_s.so.1", SSD_PYTHON,
                         "-c", script, "cxx-first"})
                : spawn({SSD_PYTHON, "-c", script, "gi-first"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("error: Model"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("unknown class \"dog\""), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(warning), std::string::npos) << r.err;
  }
}

TEST(Examples, PythonScriptReadsTheRegionsOfInterest) {
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 12);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the frame";
  // PyGObject comes from Debian's python3-gi (scripts/setup.sh); a host without it (the GPU
  // host has no GStreamer Python bindings) cannot run the script.
  const Spawned gi = spawn({SSD_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"});
  if (gi.status != 0) GTEST_SKIP() << SSD_PYTHON << " has no PyGObject: " << gi.err;
  const Spawned r = spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--min-detections", "1", png});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(top(ref)->label + " #"), std::string::npos) << describe(ref) << "\n" << r.out;   // ssdtrack's id
  const std::string live = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 ! "
                           "ssddetect name=detect interval=2 ! ssdtrack ! fakesink";
  const Spawned stopped = interrupt_after({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--pipeline", live}, 3.0);
  EXPECT_EQ(stopped.status, 0) << stopped.out;
  EXPECT_NE(stopped.out.find(" frames, "), std::string::npos) << stopped.out;
  EXPECT_NE(stopped.out.find("(carried from the last analysed frame)"), std::string::npos) << stopped.out;
  // Behind another detector it reads both detectors' regions (their ids do not collide).
  auto count = [](const std::string& out) {
    const auto at = out.find(" frames, ");
    return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 9);
  };
  const std::string still = "filesrc location=" + png + " ! pngdec ! imagefreeze num-buffers=2 ! videoconvert ! ";
  // (An ssddetect of any name, as ssd-example-app takes it; with several, the one named detect.)
  const Spawned one = spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--pipeline", still + "ssddetect ! fakesink"});
  const Spawned two =
      spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--pipeline", still + "ssddetect ! ssddetect name=detect ! fakesink"});
  EXPECT_EQ(one.status, 0) << one.out << one.err;
  EXPECT_EQ(two.status, 0) << two.out << two.err;
  EXPECT_GT(count(one.out), 0) << one.out;
  EXPECT_EQ(count(two.out), 2 * count(one.out)) << one.out << "\n" << two.out;
  // A cascade: the first detector's boxes carried (interval=2) beside the second's fresh ones
  // on the second frame: each carried box is marked, not the frame (it was the whole frame).
  const Spawned cascade =
      spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--pipeline", still + "ssddetect interval=2 ! ssddetect name=detect ! fakesink"});
  EXPECT_EQ(cascade.status, 0) << cascade.out << cascade.err;
  EXPECT_NE(cascade.out.find("] (carried)"), std::string::npos) << cascade.out;
  EXPECT_EQ(cascade.out.find("(carried from the last analysed frame)"), std::string::npos) << cascade.out;
  // Usage errors exit 1 (2 is "too few detections"), as ssd-example-app's.
  EXPECT_EQ(spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT}).status, 1);
  EXPECT_EQ(spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--pipeline", still + "fakesink"}).status, 1);
  // Regions without a confidence (ssddetect's after videoscale, which drops their `detection`
  // structure): "?", and the frames are counted.
  const Spawned scaled = spawn({SSD_PYTHON, SSD_EXAMPLE_SCRIPT, "--min-detections", "1", "--pipeline",
                                still + "ssddetect ! videoscale ! video/x-raw,width=160,height=120 ! "
                                        "ssddetect name=detect threshold=0.999 ! fakesink"});
  EXPECT_EQ(scaled.status, 0) << scaled.out << scaled.err;
  EXPECT_NE(scaled.out.find(top(ref)->label + " ? [x="), std::string::npos) << scaled.out;
}

// bench/model_change_gap.py, briefly: a live stream whose model changes every second keeps its
// frames, and every change is switched to.
TEST(Examples, ModelChangeBenchmarkSwitchesWithoutLosingFrames) {
  const Spawned gi = spawn({SSD_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"});
  if (gi.status != 0) GTEST_SKIP() << SSD_PYTHON << " has no PyGObject: " << gi.err;
  const std::string script = std::string(SSD_SOURCE_DIR) + "/bench/model_change_gap.py";
  const Spawned r = spawn({SSD_PYTHON, script, "--rounds", "1", "--seconds", "2", "--width", "320", "--height", "240"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto at = r.out.find("\nchanges: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  int frames = 0, switches = 0, warnings = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "\nchanges: %d frames, %d switches, %d warnings", &frames, &switches,
                        &warnings), 3)
      << r.out;
  EXPECT_EQ(switches, 2) << r.out;
  EXPECT_EQ(warnings, 0) << r.out;
  EXPECT_GE(frames, 50) << "2 s of a 30 fps stream: " << r.out;
}

// bench/upstream_wait.py, briefly: it runs the live pipeline to the end and reports each property
// set's gaps (that the element does not hold the source up is SsdDetectBatching.
// ASlowDownstreamDoesNotHoldUpUpstream's, without timing).
TEST(Examples, UpstreamWaitBenchmarkReportsEachPropertySet) {
  const Spawned gi = spawn({SSD_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"});
  if (gi.status != 0) GTEST_SKIP() << SSD_PYTHON << " has no PyGObject: " << gi.err;
  const std::string script = std::string(SSD_SOURCE_DIR) + "/bench/upstream_wait.py";
  const Spawned r = spawn({SSD_PYTHON, script, "--frames", "20", "--size", "160x120", "", "batch-size=2"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> sets;
  for (std::string line; std::getline(lines, line);) {
    char props[64] = "";
    double largest = 0;
    int late = -1, frames = 0;
    if (std::sscanf(line.c_str(), "[%63[^]]] largest gap %lf ms, gaps over 40 ms: %d, frames: %d", props, &largest,
                    &late, &frames) == 4 ||
        std::sscanf(line.c_str(), "[] largest gap %lf ms, gaps over 40 ms: %d, frames: %d", &largest, &late,
                    &frames) == 3) {
      sets.push_back(props);
      EXPECT_EQ(frames, 20) << line;
      EXPECT_GT(largest, 20.0) << "a 30 fps live source: " << line;
      EXPECT_GE(late, 0) << line;
    }
  }
  EXPECT_EQ(sets, (std::vector<std::string>{"", "batch-size=2"})) << r.out;
}

// pipelines/synthetic.sh without a display prints the detections as JSON Lines on stdout and
// nothing else there (gst-launch's messages, the clip tool's and the score go to stderr), and
// writes its OUTPUT to a path with a space in it.
TEST(Pipelines, SyntheticScriptPrintsOnlyJsonLinesAndTakesAnyOutputPath) {
  const std::string missing = missing_factory({"x264enc", "mp4mux", "jpegdec", "multifilesrc"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  const std::string script = SSD_SOURCE_DIR "/pipelines/synthetic.sh";
  for (const char* mode : {"videotestsrc", "clip"}) {
    const Spawned r = spawn({"/usr/bin/env", "-u", "DISPLAY", "-u", "WAYLAND_DISPLAY", "BUILD_DIR=" SSD_BUILD_DIR,
                             "/bin/bash", script, mode});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    std::istringstream lines(r.out);
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(j.is_discarded()) << mode << ": not JSON on stdout: " << line;
      EXPECT_EQ(j["frame"], n) << mode;
    }
    EXPECT_EQ(n, std::string(mode) == "clip" ? 60 : 100) << mode;
  }
  TempDir tmp;
  fs::create_directories(tmp.path() / "with space");
  const std::string out = tmp / "with space/syn.mp4";
  const Spawned r = spawn({"/usr/bin/env", "BUILD_DIR=" SSD_BUILD_DIR, "/bin/bash", script, "clip", out});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_GT(fs::exists(out) ? fs::file_size(out) : 0, 1000u) << r.err;
}

// pipelines/file-detect.sh writes its outputs only when the pipeline succeeded: a misspelt input,
// or one that is no video, leaves files already at OUTPUT and DETECTIONS as they were (the
// sinks truncated them before the source failed); OUTPUT may not be the input. A good input
// gives both, and no ".part" file is left. rtsp-camera.sh without OUTPUT and without a display
// says so (autovideosink crashed there).
TEST(Pipelines, FileScriptKeepsEarlierFilesWhenItFails) {
  const std::string missing = missing_factory({"x264enc", "mp4mux", "qtdemux", "avdec_h264", "imagefreeze", "pngdec"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 9);
  const std::string in = tmp / "in.mp4", out = tmp / "out.mp4", det = tmp / "det.jsonl";
  const Spawned enc = spawn({"/usr/bin/gst-launch-1.0", "-q", "filesrc", "location=" + png, "!", "pngdec", "!",
                             "imagefreeze", "num-buffers=4", "!", "videoconvert", "!",
                             "video/x-raw,format=I420,framerate=10/1", "!", "x264enc", "speed-preset=ultrafast", "!",
                             "mp4mux", "!", "filesink", "location=" + in});
  ASSERT_EQ(enc.status, 0) << enc.out << enc.err;
  auto script = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "BUILD_DIR=" SSD_BUILD_DIR, "/bin/bash",
                                     SSD_SOURCE_DIR "/pipelines/file-detect.sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    return spawn(argv);
  };
  auto text = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  std::ofstream(out) << "earlier video";
  std::ofstream(det) << "earlier detections";
  const std::string not_video = tmp / "not-video.mp4";
  std::ofstream(not_video) << "text";
  for (const std::string& bad : {tmp / "typo.mp4", not_video}) {
    SCOPED_TRACE(bad);
    const Spawned r = script({bad, out, det});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_EQ(text(out), "earlier video");
    EXPECT_EQ(text(det), "earlier detections");
  }
  EXPECT_NE(script({tmp / "typo.mp4", out}).err.find("cannot read the input file"), std::string::npos);
  EXPECT_NE(script({in, in}).err.find("is the input file"), std::string::npos);
  EXPECT_GT(fs::file_size(in), 1000u);
  const Spawned good = script({in, out, det, "threshold=0.3"});
  ASSERT_EQ(good.status, 0) << good.out << good.err;
  EXPECT_GT(fs::file_size(out), 1000u);
  std::ifstream lines(det);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) EXPECT_FALSE(nlohmann::json::parse(line).is_discarded());
  EXPECT_EQ(n, 4);
  for (const auto& e : fs::directory_iterator(tmp.path())) EXPECT_NE(e.path().extension(), ".part") << e.path();

  const Spawned headless = spawn({"/usr/bin/env", "-u", "DISPLAY", "-u", "WAYLAND_DISPLAY", "BUILD_DIR=" SSD_BUILD_DIR,
                                  "/bin/bash", SSD_SOURCE_DIR "/pipelines/rtsp-camera.sh", "rtsp://127.0.0.1:9/none"});
  EXPECT_EQ(headless.status, 1) << headless.out << headless.err;
  EXPECT_NE(headless.err.find("no display"), std::string::npos) << headless.err;
}

// pipelines/multi-stream.sh on two files (one scene, encoded twice): each stream's JSON Lines
// hold all its frames with the scene's object, and ssddetect's log shows the two elements
// sharing one model instance. A later run in which one stream fails leaves those files as they were.
TEST(Pipelines, MultiStreamScriptSharesOneModel) {
  const std::string missing =
      missing_factory({"x264enc", "avdec_h264", "mp4mux", "qtdemux", "imagefreeze", "pngdec", "uridecodebin"});
  if (!missing.empty()) GTEST_SKIP() << missing << " is not installed";
  TempDir tmp;
  const auto [png, ref] = png_scene(tmp, 9);
  ASSERT_NE(top(ref), nullptr) << "the model finds nothing in the frame";
  constexpr int kFrames = 8;
  std::vector<std::string> uris;
  for (const char* name : {"a.mp4", "b.mp4"}) {
    const Spawned enc = spawn({"/usr/bin/gst-launch-1.0", "-q", "filesrc", "location=" + png, "!", "pngdec", "!",
                               "imagefreeze", "num-buffers=" + std::to_string(kFrames), "!", "videoconvert", "!",
                               "video/x-raw,format=I420,framerate=10/1", "!", "x264enc", "speed-preset=ultrafast",
                               "!", "mp4mux", "!", "filesink", "location=" + (tmp / name)});
    ASSERT_EQ(enc.status, 0) << enc.out << enc.err;
    uris.push_back("file://" + (tmp / name));
  }
  const std::string out = tmp / "out";
  const Spawned r = spawn({"/usr/bin/env", "BUILD_DIR=" SSD_BUILD_DIR, "GST_DEBUG=ssddetect:4", "GST_DEBUG_NO_COLOR=1",
                           "/bin/bash", SSD_SOURCE_DIR "/pipelines/multi-stream.sh", out, uris[0], uris[1], "--",
                           "threshold=0.3"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("model instance \"multi-stream\" (2 elements, "), std::string::npos)
      << "the second element did not join the first one's instance:\n" << r.err;
  for (int n = 1; n <= 2; ++n) {
    std::ifstream in(out + "/stream" + std::to_string(n) + ".jsonl");
    ASSERT_TRUE(in) << "no JSON Lines for stream " << n;
    int frames = 0, with_object = 0;
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      frames++;
      for (const auto& d : j["detections"])
        if (d["label"] == top(ref)->label && d["confidence"].get<double>() >= 0.3) {
          with_object++;
          break;
        }
    }
    EXPECT_EQ(frames, kFrames) << "stream " << n;
    EXPECT_GE(with_object, kFrames - 1) << "stream " << n << ": the scene's " << top(ref)->label << " is missing";
  }
  EXPECT_NE(r.out.find("stream 2 (" + uris[1] + "): 8 frames"), std::string::npos) << r.out;

  // A run in which one stream fails (its file is missing) ends them all and leaves the earlier
  // run's files as they were, with no partial file beside them.
  auto files = [&] {
    std::map<std::string, std::string> contents;
    for (const auto& e : fs::directory_iterator(out)) {
      std::ifstream f(e.path(), std::ios::binary);
      contents[e.path().filename()] = std::string(std::istreambuf_iterator<char>(f), {});
    }
    return contents;
  };
  const auto before = files();
  const Spawned failed = spawn({"/usr/bin/env", "BUILD_DIR=" SSD_BUILD_DIR, "/bin/bash",
                                SSD_SOURCE_DIR "/pipelines/multi-stream.sh", out, uris[0],
                                "file://" + (tmp / "missing.mp4")});
  EXPECT_NE(failed.status, 0) << failed.out << failed.err;
  const auto after = files();
  EXPECT_EQ(after.size(), 2u);
  EXPECT_TRUE(after == before) << "the failed run changed or added files in " << out;
}

// A valid value of `p` other than its default: numbers one step (integers) or up to half a unit
// (reals) from it towards the far end of the range, the other boolean, the next value of an
// enum, and for strings the value `strings` gives the property (none: the test fails).
GValue other_value(GParamSpec* p, const std::map<std::string, std::string>& strings) {
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(p));
  const auto step = [](auto d, auto lo, auto hi) { return d < hi ? d + 1 : d - 1 < lo ? lo : d - 1; };
  const auto half = [](double d, double lo, double hi) {
    return d < hi ? d + std::min(0.5, (hi - d) / 2) : d - std::min(0.5, (d - lo) / 2);
  };
  if (G_IS_PARAM_SPEC_BOOLEAN(p)) {
    g_value_set_boolean(&v, !G_PARAM_SPEC_BOOLEAN(p)->default_value);
  } else if (G_IS_PARAM_SPEC_INT(p)) {
    auto* q = G_PARAM_SPEC_INT(p);
    g_value_set_int(&v, step(q->default_value, q->minimum, q->maximum));
  } else if (G_IS_PARAM_SPEC_UINT(p)) {
    auto* q = G_PARAM_SPEC_UINT(p);
    g_value_set_uint(&v, step(q->default_value, q->minimum, q->maximum));
  } else if (G_IS_PARAM_SPEC_INT64(p)) {
    auto* q = G_PARAM_SPEC_INT64(p);
    g_value_set_int64(&v, step(q->default_value, q->minimum, q->maximum));
  } else if (G_IS_PARAM_SPEC_UINT64(p)) {
    auto* q = G_PARAM_SPEC_UINT64(p);
    g_value_set_uint64(&v, step(q->default_value, q->minimum, q->maximum));
  } else if (G_IS_PARAM_SPEC_FLOAT(p)) {
    auto* q = G_PARAM_SPEC_FLOAT(p);
    g_value_set_float(&v, static_cast<float>(half(q->default_value, q->minimum, q->maximum)));
  } else if (G_IS_PARAM_SPEC_DOUBLE(p)) {
    auto* q = G_PARAM_SPEC_DOUBLE(p);
    g_value_set_double(&v, half(q->default_value, q->minimum, q->maximum));
  } else if (G_IS_PARAM_SPEC_ENUM(p)) {
    auto* q = G_PARAM_SPEC_ENUM(p);
    const GEnumClass* e = q->enum_class;
    guint i = 0;
    while (i < e->n_values && e->values[i].value != q->default_value) ++i;
    g_value_set_enum(&v, e->values[(i + 1) % e->n_values].value);
  } else if (G_IS_PARAM_SPEC_STRING(p)) {
    const auto it = strings.find(p->name);
    if (it == strings.end()) {
      ADD_FAILURE() << "no test value for the string property " << p->name;
    } else {
      g_value_set_string(&v, it->second.c_str());
    }
  } else {
    ADD_FAILURE() << p->name << ": a property of type " << g_type_name(G_PARAM_SPEC_VALUE_TYPE(p))
                  << " this test does not know";
  }
  return v;
}

// Every property of the elements reads back the value it was set to, and setting one changes no
// other: each property is set to another value and back, every property read after each step,
// then all are set to other values at once (a setter writing another's field, or a getter
// reading one, fails: ssdoverlay's getter was never run by a test, nor ssdtrack's iou-threshold
// setter).
TEST(Plugin, EveryPropertyReadsBackWhatWasSet) {
  const std::map<std::string, std::string> strings = {
      {"class-thresholds", "square=0.7,circle=0.6"}, {"classes", "circle,triangle"},
      {"device", "cpu"},                              {"model", "/nonexistent/elsewhere.safetensors"},
      {"model-instance-id", "cameras"},               {"region", "10,20,300,200"},
      {"location", "/nonexistent/detections.jsonl"}};
  for (const char* factory : {"ssddetect", "ssdoverlay", "ssdtrack", "ssdexport"}) {
    SCOPED_TRACE(factory);
    GstElement* e = gst_element_factory_make(factory, nullptr);
    ASSERT_NE(e, nullptr);
    guint n = 0;
    GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
    // The element's own properties, readable and writable after construction (not GstObject's
    // or GstBaseTransform's), and the value each should read.
    std::vector<std::pair<GParamSpec*, GValue>> props;
    for (guint i = 0; i < n; ++i) {
      GParamSpec* p = specs[i];
      if (p->owner_type != G_OBJECT_TYPE(e) || (p->flags & G_PARAM_READWRITE) != G_PARAM_READWRITE ||
          (p->flags & G_PARAM_CONSTRUCT_ONLY))
        continue;
      GValue v = G_VALUE_INIT;
      g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(p));
      g_object_get_property(G_OBJECT(e), p->name, &v);
      props.emplace_back(p, v);
    }
    EXPECT_GT(props.size(), 1u);
    const auto expect_all = [&](const std::string& after) {
      for (auto& [p, v] : props) {
        GValue got = G_VALUE_INIT;
        g_value_init(&got, G_PARAM_SPEC_VALUE_TYPE(p));
        g_object_get_property(G_OBJECT(e), p->name, &got);
        if (g_param_values_cmp(p, &v, &got) != 0) {
          gchar* want = g_strdup_value_contents(&v);
          gchar* have = g_strdup_value_contents(&got);
          ADD_FAILURE() << p->name << " after " << after << ": " << have << ", not " << want;
          g_free(want);
          g_free(have);
        }
        g_value_unset(&got);
      }
    };
    const auto set = [&](size_t i, const GValue& v) {
      g_object_set_property(G_OBJECT(e), props[i].first->name, &v);
      g_value_unset(&props[i].second);
      g_value_init(&props[i].second, G_VALUE_TYPE(&v));
      g_value_copy(&v, &props[i].second);
    };
    for (size_t i = 0; i < props.size(); ++i) {
      const std::string name = props[i].first->name;
      GValue initial = G_VALUE_INIT, other = other_value(props[i].first, strings);
      g_value_init(&initial, G_VALUE_TYPE(&props[i].second));
      g_value_copy(&props[i].second, &initial);
      set(i, other);
      expect_all("setting " + name);
      set(i, initial);
      expect_all("setting " + name + " back");
      g_value_unset(&initial);
      g_value_unset(&other);
    }
    for (size_t i = 0; i < props.size(); ++i) {
      GValue other = other_value(props[i].first, strings);
      set(i, other);
      g_value_unset(&other);
    }
    expect_all("setting every property");
    for (auto& [p, v] : props) g_value_unset(&v);
    g_free(specs);
    gst_object_unref(e);
  }
}

// The plugin's origin (gst-inspect's "Origin URL", GST_PLUGIN_DEFINE's "URL to provider of
// plugin") is a URL, the installed README's: it was the bare name.
TEST(Plugin, ItsOriginIsAUrl) {
  GstPlugin* plugin = gst_registry_find_plugin(gst_registry_get(), "ssd");
  ASSERT_NE(plugin, nullptr);
  const std::string origin = gst_plugin_get_origin(plugin);
  EXPECT_EQ(origin.rfind("file:///", 0), 0u) << origin;
  EXPECT_NE(origin.find("/doc/gst-ssd/README.md"), std::string::npos) << origin;
  gst_object_unref(plugin);
}

// The plugin's dynamic symbol table holds its entry points, not the model library linked into
// it nor C++ of its own (gst-plugin/libgstssd.map): an application that links libssdmodel (or
// another version of it) beside the plugin would otherwise have the plugin's calls bound to its
// copy. (393 ssd:: symbols were exported before, 2026-12-06; a debug build, whose templates are
// not inlined, still exported 874 symbols, std:: templates of ssd:: types among them,
// 2026-12-07.)
TEST(Plugin, ExportsItsEntryPointsOnly) {
  const Spawned r = spawn({"/usr/bin/env", "nm", "-D", "--defined-only", SSD_BUILD_DIR "/gst-plugin/libgstssd.so"});
  ASSERT_EQ(r.status, 0) << "nm (binutils) failed: " << r.err;
  std::istringstream in(r.out);
  std::set<std::string> exported;
  // Lines are "value type name"; a lower-case type is a local symbol (but "u", a unique global),
  // which no one can bind to: the link against LibTorch 2.11's wheel leaves one in the table,
  // `t _ZNKSt5ctypeIcE8do_widenEc` (2026-12-07).
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string value, type, name;
    ASSERT_TRUE(fields >> value >> type >> name) << line;
    if (type.size() == 1 && (std::isupper(static_cast<unsigned char>(type[0])) || type == "u")) exported.insert(name);
  }
  EXPECT_EQ(exported, (std::set<std::string>{"gst_plugin_ssd_get_desc", "gst_plugin_ssd_register"})) << r.out;
}
