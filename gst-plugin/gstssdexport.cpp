/**
 * SECTION:element-ssdexport
 * @title: ssdexport
 * @see_also: ssddetect
 *
 * A pass-through element that writes the regions of interest (#GstVideoRegionOfInterestMeta)
 * of every frame as one JSON object per line (JSON Lines) to the file named by `location`,
 * or to standard output when `location` is unset. Frames without regions produce a line with
 * an empty `detections` array, so the line number is the frame number. Each line reads:
 *
 * |[
 * {"frame":12,"pts":400000000,"stream_time":400000000,"width":640,"height":480,
 *  "detections":[{"label":"car","label_id":2,"confidence":0.87,"object_id":3,"carried":false,
 *                 "box":{"x":10,"y":20,"w":100,"h":50},
 *                 "box_normalized":{"x_min":0.016,"y_min":0.042,"x_max":0.172,"y_max":0.146}}]}
 * ]|
 *
 * `frame` counts the frames that reach the element since it started (frames dropped upstream,
 * e.g. by ssddetect's QoS or a leaky queue, are not counted: `pts` identifies a frame of the
 * source); `pts` is in nanoseconds (null when the buffer has none), and `stream_time` is the
 * frame's position in the stream in nanoseconds, its pts in the segment's terms (0 at the first
 * frame of a file that a demuxer, as MP4's, gives timestamps from its decoding delay on; null
 * without a pts or outside the segment); `label_id` and `confidence` are
 * null for regions that did not come from ssddetect and carry no `detection` structure, and
 * `object_id` (the tracking id of ssdtrack, or of any tracker writing DL Streamer's
 * `object_id` structure) is null for untracked regions. `carried` is true for a box that
 * ssddetect did not detect on this frame but repeated from the last analysed one (its
 * `interval` skips frames; false on analysed frames and for other producers' regions). When built against GStreamer 1.24 or
 * newer, the #GstAnalyticsODMtd entries of the buffer's analytics relation meta that no region
 * stands for (GStreamer's own analytics elements write only those) follow the regions, with a
 * null `label_id` and, as `object_id`, the id of the newest #GstAnalyticsTrackingMtd they
 * relate to. A label that is not valid UTF-8 (any producer's) is written with U+FFFD in place
 * of its bad bytes. Each line is written out as its frame passes (a reader following the file
 * or the pipe sees it at once; a killed pipeline loses none); a failed write is an error. The
 * output is closed when the element stops (a file that fails to close then, e.g. on a network
 * file system, is a warning); a location that cannot be opened for writing fails the READY to PAUSED state
 * change with an error.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! ssddetect ! \
 *     ssdexport location=detections.jsonl ! fakesink
 * ]|
 */
#include "gstssdexport.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include <glib/gstdio.h>
#include <unistd.h>
#include <gst/video/video.h>
#include <nlohmann/json.hpp>

#include "common.h"

GST_DEBUG_CATEGORY_STATIC(gst_ssd_export_debug);
#define GST_CAT_DEFAULT gst_ssd_export_debug

struct SsdExportState {
  std::mutex lock;         // guards `location`, `append` and `started`
  std::string location;    // empty: stdout
  bool append = false;     // add to the file rather than truncate it
  bool started = false;    // between start() and stop(): `location` is the open output's
  // Streaming state.
  FILE* out = nullptr;
  bool owns_out = false;
  std::string opened;      // what `out` is, for messages
  GstVideoInfo info;
  bool have_info = false;
  guint64 frames = 0;
};

struct _GstSsdExport {
  GstBaseTransform parent;
  SsdExportState* state;
};

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_APPEND,
};

G_DEFINE_TYPE(GstSsdExport, gst_ssd_export, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(ssdexport, "ssdexport", GST_RANK_NONE, GST_TYPE_SSD_EXPORT);

// It reads metadata only, never the pixels: any raw video, in any memory.
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

static void gst_ssd_export_set_property(GObject* object, guint prop_id, const GValue* value,
                                        GParamSpec* pspec) {
  GstSsdExport* self = GST_SSD_EXPORT(object);
  std::string refused, in_use;
  {
    std::lock_guard<std::mutex> guard(self->state->lock);
    switch (prop_id) {
      case PROP_LOCATION: {
        const gchar* v = g_value_get_string(value);
        // As filesink: the open output stays until the element stops.
        if (self->state->started && (v ? v : "") != self->state->location) {   // (the same again: no change)
          refused = v ? v : "(stdout)";
          in_use = self->state->location.empty() ? "stdout" : self->state->location;
        } else {
          self->state->location = v ? v : "";
        }
        break;
      }
      case PROP_APPEND: {
        // (GStreamer does not enforce GST_PARAM_MUTABLE_READY: the open output stays as opened.)
        const bool v = g_value_get_boolean(value);
        if (self->state->started && v != self->state->append) {
          refused = v ? "append=true" : "append=false";
          in_use = self->state->append ? "append=true" : "append=false";
        } else {
          self->state->append = v;
        }
        break;
      }
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  if (!refused.empty() && prop_id == PROP_LOCATION)
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("The location cannot change while the element runs: still writing to \"%s\", not \"%s\".",
                         in_use.c_str(), refused.c_str()),
                        (nullptr));
  else if (!refused.empty())
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("append cannot change while the element runs: the output was opened with %s, %s is ignored.",
                         in_use.c_str(), refused.c_str()),
                        (nullptr));
}

static void gst_ssd_export_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstSsdExport* self = GST_SSD_EXPORT(object);
  std::lock_guard<std::mutex> guard(self->state->lock);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string(value, self->state->location.empty() ? nullptr : self->state->location.c_str());
      break;
    case PROP_APPEND: g_value_set_boolean(value, self->state->append); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

// Closes (a file) or flushes (stdout) the output; false, with errno, when the lines still
// buffered could not be written.
static bool close_output(SsdExportState* st) {
  bool ok = true;
  if (st->out) ok = (st->owns_out ? fclose(st->out) : fflush(st->out)) == 0;
  st->out = nullptr;
  st->owns_out = false;
  return ok;
}

static void gst_ssd_export_finalize(GObject* object) {
  GstSsdExport* self = GST_SSD_EXPORT(object);
  close_output(self->state);
  delete self->state;
  self->state = nullptr;
  G_OBJECT_CLASS(gst_ssd_export_parent_class)->finalize(object);
}

// Whether the file at `path` is empty or ends with a newline (or cannot be read: nothing to add).
static bool ends_a_line(const std::string& path) {
  GStatBuf st;
  if (g_stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return true;   // (a FIFO, a terminal, /dev/null)
  FILE* f = g_fopen(path.c_str(), "rb");
  if (!f) return true;
  bool ends = true;
  if (fseek(f, -1, SEEK_END) == 0) ends = fgetc(f) == '\n';   // (an empty file: fails)
  fclose(f);
  return ends;
}

static gboolean gst_ssd_export_start(GstBaseTransform* trans) {
  GstSsdExport* self = GST_SSD_EXPORT(trans);
  SsdExportState* st = self->state;
  close_output(st);
  // Under the lock, so that `location` cannot change between being read and being in use; the
  // element counts as started once the output is open (a failed start is not followed by
  // stop(): the location stays open to a fix).
  std::string location, failure;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    location = st->location;
    if (location.empty()) {
      st->out = stdout;
      st->owns_out = false;
      st->opened = "stdout";
    } else if ((st->out = g_fopen(location.c_str(), st->append ? "a" : "w"))) {
      st->owns_out = true;
      st->opened = location;
      // Appending to a file whose last line has no newline (a writer killed mid-line, a file
      // written by hand): the first record starts a line of its own, or it was glued to that one.
      if (st->append && !ends_a_line(location) && (fputs("\n", st->out) == EOF || fflush(st->out) != 0)) {
        failure = g_strerror(errno);
        fclose(st->out);
        st->out = nullptr;
      }
    } else {
      failure = g_strerror(errno);
    }
    st->started = st->out != nullptr;
  }
  if (!failure.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
                      ("Could not open file \"%s\" for writing: %s", location.c_str(), failure.c_str()),
                      ("system error: %s", failure.c_str()));
    return FALSE;
  }
  st->frames = 0;
  return TRUE;
}

static gboolean gst_ssd_export_stop(GstBaseTransform* trans) {
  GstSsdExport* self = GST_SSD_EXPORT(trans);
  {
    std::lock_guard<std::mutex> guard(self->state->lock);
    self->state->started = false;
  }
  // Lines are flushed as they are written; closing the file can still fail (e.g. NFS): a
  // warning, as the element is going down anyway.
  if (!close_output(self->state)) {
    const int err = errno;
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                        ("Could not write the last detections to \"%s\": %s", self->state->opened.c_str(),
                         g_strerror(err)),
                        (nullptr));
  }
  self->state->have_info = false;
  return TRUE;
}

static gboolean gst_ssd_export_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps*) {
  GstSsdExport* self = GST_SSD_EXPORT(trans);
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  self->state->info = info;
  self->state->have_info = true;
  return TRUE;
}

static GstFlowReturn export_frame(GstSsdExport* self, GstBuffer* buf) {
  SsdExportState* st = self->state;
  if (!st->have_info || !st->out) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Caps not negotiated or output not open."), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const int width = GST_VIDEO_INFO_WIDTH(&st->info), height = GST_VIDEO_INFO_HEIGHT(&st->info);
  nlohmann::ordered_json line;   // the keys in the documented order
  line["frame"] = st->frames++;
  line["pts"] = nullptr;
  line["stream_time"] = nullptr;
  if (GST_BUFFER_PTS_IS_VALID(buf)) {
    line["pts"] = GST_BUFFER_PTS(buf);
    const GstSegment& segment = GST_BASE_TRANSFORM(self)->segment;
    const guint64 stream_time = segment.format == GST_FORMAT_TIME
                                    ? gst_segment_to_stream_time(&segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf))
                                    : GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID(stream_time)) line["stream_time"] = stream_time;
  }
  line["width"] = width;
  line["height"] = height;
  nlohmann::ordered_json dets = nlohmann::ordered_json::array();
  for (const gstssd::RoiDetection& r : gstssd::read_rois(buf, width, height)) {
    nlohmann::ordered_json d;
    d["label"] = r.label;
    d["label_id"] = r.label_id >= 0 ? nlohmann::ordered_json(r.label_id) : nlohmann::ordered_json(nullptr);
    d["confidence"] = r.confidence >= 0 ? nlohmann::ordered_json(r.confidence) : nlohmann::ordered_json(nullptr);
    d["object_id"] = r.object_id >= 0 ? nlohmann::ordered_json(r.object_id) : nlohmann::ordered_json(nullptr);
    d["carried"] = r.carried;
    d["box"] = {{"x", r.x}, {"y", r.y}, {"w", r.w}, {"h", r.h}};
    d["box_normalized"] = {{"x_min", r.x_min}, {"y_min", r.y_min}, {"x_max", r.x_max}, {"y_max", r.y_max}};
    dets.push_back(std::move(d));
  }
  line["detections"] = std::move(dets);
  // Labels come from any producer: text that is not UTF-8 is written with U+FFFD in place of
  // its bad bytes rather than failing the stream.
  const std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  // Where the line starts: the file's size (lines are flushed as written), also in append mode;
  // -1 for a pipe or a terminal.
  GStatBuf file;
  const long before = fstat(fileno(st->out), &file) == 0 && S_ISREG(file.st_mode) ? static_cast<long>(file.st_size) : -1;
  if (fwrite(text.data(), 1, text.size(), st->out) != text.size() || fflush(st->out) != 0) {
    const int err = errno;
    // The part of the line written goes (a full disk left half a JSON object at the file's end,
    // which readers of the lines before it then failed on).
    if (before >= 0 && ftruncate(fileno(st->out), before) == 0) fseek(st->out, before, SEEK_SET);
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Could not write to \"%s\": %s", st->opened.c_str(),
                                              g_strerror(err)), (nullptr));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn gst_ssd_export_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  GstSsdExport* self = GST_SSD_EXPORT(trans);
  return gstssd::run_frame_guarded(GST_ELEMENT(self), "Exporting the detections",
                                   [&] { return export_frame(self, buf); });
}

static void gst_ssd_export_class_init(GstSsdExportClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_ssd_export_set_property;
  gobject_class->get_property = gst_ssd_export_get_property;
  gobject_class->finalize = gst_ssd_export_finalize;

  /**
   * GstSsdExport:location:
   *
   * The JSON Lines file to write (truncated when the element starts, unless `append`); unset
   * writes to standard output. Set before the element starts: a change while it runs is
   * refused with a warning, as filesink refuses it.
   */
  g_object_class_install_property(gobject_class, PROP_LOCATION,
      g_param_spec_string("location", "Location", "JSON Lines output file (unset: stdout)", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY)));
  /**
   * GstSsdExport:append:
   *
   * Add the lines to the end of `location` (created when missing) instead of truncating it
   * when the element starts, as filesink's `append`: a pipeline started again (a camera
   * reconnected, a service restarted) keeps the earlier lines. `frame` starts from 0 at each
   * start; `pts` tells the runs apart. Set while the element runs, it is refused with a
   * warning (the output is open already).
   */
  g_object_class_install_property(gobject_class, PROP_APPEND,
      g_param_spec_boolean("append", "Append", "Append to the location instead of truncating it", FALSE,
                           static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                    GST_PARAM_MUTABLE_READY)));

  gst_element_class_set_static_metadata(element_class, "SSD detection exporter", "Filter/Analyzer/Video",
      "Writes the region-of-interest metadata of every frame as JSON Lines", "gst-ssd developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_ssd_export_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_ssd_export_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_ssd_export_set_caps);
  trans_class->accept_caps = GST_DEBUG_FUNCPTR(gstssd::accept_caps_with_peer);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_ssd_export_transform_ip);
  trans_class->transform_ip_on_passthrough = TRUE;

  GST_DEBUG_CATEGORY_INIT(gst_ssd_export_debug, "ssdexport", 0, "SSD detection exporter");
}

static void gst_ssd_export_init(GstSsdExport* self) {
  self->state = new SsdExportState();
  gst_video_info_init(&self->state->info);
  // Reads metadata only: never makes the buffer writable.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
}
