/**
 * SECTION:element-ssdtrack
 * @title: ssdtrack
 * @see_also: ssddetect, ssdoverlay, ssdexport
 *
 * Follows the objects a detector found from frame to frame and gives each one a persistent
 * id. It reads the #GstVideoRegionOfInterestMeta of every frame (those of ssddetect or of any
 * other element), and attaches to each region a parameter structure named `object_id` with an
 * int field `id` (DL Streamer's convention, as gvatrack writes it; a region that already has
 * one gets its id replaced). ssdoverlay shows the id (`car #3 0.87`) and ssdexport writes it
 * (`"object_id":3`). The pixels are not touched.
 *
 * Tracking is imageless (it uses the boxes only, model/tracker.h): each track's box is
 * predicted where its last motion takes it, the frame's regions are matched to the predictions
 * greedily by decreasing intersection-over-union (at least `iou-threshold`; of the same label
 * unless `match-labels` is off); then a track seen once, in the last analysed frame, which has
 * no motion yet, may take a region left of its label and size (each side within 2x) whose centre
 * lies within three quarters of the track's size per frame since (up to 3 sizes; the most such pairs, the
 * least total distance), so that a fast object behind `interval` keeps its id; a matched track
 * moves to its region, a region matched to no track starts one with a new id, and a track that finds no region for more than `max-lost`
 * frames ends (an object hidden that long comes back with a new id). With `min-hits` above 1 a
 * track's regions get no id until it has had that many (a flicker never gets one, so the ids
 * count the objects followed that long). A region without width or
 * height (another detector's point or line) is matched as the pixels it names, one wide or
 * tall. Ids count up from 1 per
 * element and are not reused, also when the element is stopped and started again, until the
 * count passes 2147483647 (G_MAXINT: the `id` field is an int, as DL Streamer's); it then
 * starts again from 1, skipping the ids of the objects still followed. Frames that ssddetect's
 * `interval` skipped (every region marked `carried`) keep the last analysed frame's ids
 * without being matched, and an object's motion is measured per frame between the analysed
 * frames, so the prediction is not held back by the repeated boxes; so do the carried regions
 * of a frame that another ssddetect analysed (a cascade); so do gap buffers' regions (videorate's
 * repeats of a frame, which ssddetect gives its detections), and a gap buffer without regions is a
 * frame in which no object was seen. Frames are counted by their timestamps at the caps' frame rate, so that frames
 * dropped upstream (QoS, when a live pipeline falls behind) count for the motion and for
 * `max-lost` too. A flush (seek), a new stream, another segment (a seek
 * without a flush) or a resolution change forgets the tracks. The properties are read when the
 * element starts; set while it runs, they are refused with a warning and keep the value in use.
 *
 * When built against GStreamer 1.24 or newer, each #GstAnalyticsODMtd in the buffer's
 * #GstAnalyticsRelationMeta gets a #GstAnalyticsTrackingMtd (tracking id; first and last seen:
 * the PTS of the object's first and of this buffer) that it relates to
 * (%GST_ANALYTICS_REL_TYPE_RELATE_TO): one of the same type and box as a region (as ssddetect
 * adds) with the region's id, and one that no region stands for (GStreamer's own analytics
 * elements, such as its tensor decoders, write only those) tracked like a region.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! ssddetect interval=2 ! ssdtrack ! ssdoverlay ! \
 *     videoconvert ! autovideosink
 * ]| Boxes with an id each, kept while the objects move.
 */
#include "gstssdtrack.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <gst/video/video.h>
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

#include "common.h"
#include "tracker.h"

GST_DEBUG_CATEGORY_STATIC(gst_ssd_track_debug);
#define GST_CAT_DEFAULT gst_ssd_track_debug

namespace {
constexpr gfloat kDefaultIouThreshold = 0.3f;
constexpr guint kDefaultMaxLost = 10;
constexpr gboolean kDefaultMatchLabels = TRUE;
constexpr guint kDefaultMinHits = 1;
}  // namespace

// All C++ state of the element, constructed in init() and destroyed in finalize().
struct SsdTrackState {
  std::mutex lock;   // guards `options` and `running`
  // (Ids up to G_MAXINT: the `id` field is an int, as DL Streamer's.)
  ssd::TrackerOptions options{kDefaultIouThreshold, kDefaultMaxLost, kDefaultMatchLabels, G_MAXINT, kDefaultMinHits};
  bool running = false;   // from start(), which reads `options`, to stop()
  // Streaming state (start/stop/set_caps/sink_event/transform_ip, which GstBaseTransform
  // serialises).
  std::unique_ptr<ssd::Tracker> tracker;
  int64_t next_id = 1;   // kept from stop() to start(): ids are not reused after a restart
  int width = 0, height = 0;
  guint64 frames = 0;
  GstClockTime frame_duration = GST_CLOCK_TIME_NONE;   // from the caps' frame rate
  GstClockTime last_pts = GST_CLOCK_TIME_NONE;         // of the previous frame tracked
#ifdef HAVE_GST_ANALYTICS
  std::map<int64_t, GstClockTime> first_seen;   // PTS of each live track's first region
#endif
};

struct _GstSsdTrack {
  GstBaseTransform parent;
  SsdTrackState* state;
};

enum {
  PROP_0,
  PROP_IOU_THRESHOLD,
  PROP_MAX_LOST,
  PROP_MATCH_LABELS,
  PROP_MIN_HITS,
};

G_DEFINE_TYPE(GstSsdTrack, gst_ssd_track, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(ssdtrack, "ssdtrack", GST_RANK_NONE, GST_TYPE_SSD_TRACK);

// Metadata only: any raw video, in any memory.
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

static void gst_ssd_track_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstSsdTrack* self = GST_SSD_TRACK(object);
  bool refused;   // read at start()
  {
    std::lock_guard<std::mutex> guard(self->state->lock);
    refused = self->state->running && gstssd::read_at_start(pspec);
    ssd::TrackerOptions& o = self->state->options;
    if (!refused) switch (prop_id) {
      case PROP_IOU_THRESHOLD: o.iou_threshold = g_value_get_float(value); break;
      case PROP_MAX_LOST: o.max_lost = static_cast<int>(g_value_get_uint(value)); break;
      case PROP_MATCH_LABELS: o.match_labels = g_value_get_boolean(value); break;
      case PROP_MIN_HITS: o.min_hits = static_cast<int>(g_value_get_uint(value)); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  if (refused) gstssd::warn_read_at_start(GST_ELEMENT(self), pspec, value);
}

static void gst_ssd_track_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstSsdTrack* self = GST_SSD_TRACK(object);
  std::lock_guard<std::mutex> guard(self->state->lock);
  const ssd::TrackerOptions& o = self->state->options;
  switch (prop_id) {
    case PROP_IOU_THRESHOLD: g_value_set_float(value, static_cast<gfloat>(o.iou_threshold)); break;
    case PROP_MAX_LOST: g_value_set_uint(value, static_cast<guint>(o.max_lost)); break;
    case PROP_MATCH_LABELS: g_value_set_boolean(value, o.match_labels); break;
    case PROP_MIN_HITS: g_value_set_uint(value, static_cast<guint>(o.min_hits)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ssd_track_finalize(GObject* object) {
  GstSsdTrack* self = GST_SSD_TRACK(object);
  delete self->state;
  self->state = nullptr;
  G_OBJECT_CLASS(gst_ssd_track_parent_class)->finalize(object);
}

static gboolean gst_ssd_track_start(GstBaseTransform* trans) {
  GstSsdTrack* self = GST_SSD_TRACK(trans);
  SsdTrackState* st = self->state;
  ssd::TrackerOptions options;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    options = st->options;
    st->running = true;
  }
  try {
    st->tracker = std::make_unique<ssd::Tracker>(options, st->next_id);
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> guard(st->lock);
      st->running = false;   // (no stop() follows a failed start)
    }
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid tracker settings: %s", e.what()), (nullptr));
    return FALSE;
  }
  st->frames = 0;
  st->last_pts = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static gboolean gst_ssd_track_stop(GstBaseTransform* trans) {
  SsdTrackState* st = GST_SSD_TRACK(trans)->state;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    st->running = false;
  }
  if (st->tracker) st->next_id = st->tracker->next_id();
  st->tracker.reset();
#ifdef HAVE_GST_ANALYTICS
  st->first_seen.clear();
#endif
  st->width = st->height = 0;
  return TRUE;
}

static gboolean gst_ssd_track_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps*) {
  GstSsdTrack* self = GST_SSD_TRACK(trans);
  SsdTrackState* st = self->state;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  if (st->tracker && (GST_VIDEO_INFO_WIDTH(&info) != st->width || GST_VIDEO_INFO_HEIGHT(&info) != st->height)) {
    GST_DEBUG_OBJECT(self, "new resolution %dx%d: forgetting the tracks", GST_VIDEO_INFO_WIDTH(&info),
                     GST_VIDEO_INFO_HEIGHT(&info));
    st->tracker->reset();
    st->last_pts = GST_CLOCK_TIME_NONE;
  }
  st->width = GST_VIDEO_INFO_WIDTH(&info);
  st->height = GST_VIDEO_INFO_HEIGHT(&info);
  st->frame_duration = gstssd::frame_duration(info);
  return TRUE;
}

static gboolean gst_ssd_track_sink_event(GstBaseTransform* trans, GstEvent* event) {
  SsdTrackState* st = GST_SSD_TRACK(trans)->state;
  if ((GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP || gstssd::starts_afresh(trans, event)) && st->tracker) {
    GST_DEBUG_OBJECT(trans, "%s: forgetting the tracks", GST_EVENT_TYPE_NAME(event));
    st->tracker->reset();
    st->last_pts = GST_CLOCK_TIME_NONE;
  }
  return GST_BASE_TRANSFORM_CLASS(gst_ssd_track_parent_class)->sink_event(trans, event);
}

// The `object_id` structure of a region: replaced in place when there is one, else added; id 0
// (a track on probation, min-hits) removes one (another tracker's, upstream) and adds none.
static void set_object_id(GstVideoRegionOfInterestMeta* roi, int64_t id) {
  if (id == 0) {
    if (GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, gstssd::kObjectIdStructure)) {
      roi->params = g_list_remove(roi->params, s);
      gst_structure_free(s);
    }
    return;
  }
  if (GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, gstssd::kObjectIdStructure)) {
    gst_structure_set(s, "id", G_TYPE_INT, static_cast<gint>(id), nullptr);
  } else {
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new(gstssd::kObjectIdStructure, "id", G_TYPE_INT, static_cast<gint>(id), nullptr));
  }
}

// A region's pixels as the tracker's box. A region with no width or height (a detection
// clipped at the frame's edge, another detector's point) covers at least the row or column of
// pixels it names: as an empty box it would overlap nothing and start a new track every frame.
static ssd::TrackBox pixel_box(double x, double y, double w, double h, int64_t label) {
  return {x, y, x + std::max(w, 1.0), y + std::max(h, 1.0), label};
}

// How many frame times `buf` comes after the previous frame, from their timestamps at the caps'
// frame rate: frames dropped upstream (by QoS, when the pipeline falls behind) count, as the
// objects moved on meanwhile (with `interval` and drops, the tracks broke up at every analysed
// frame). 1 without timestamps or a frame rate.
static int frames_since_previous(SsdTrackState* st, GstBuffer* buf) {
  constexpr guint64 kMost = 1u << 20;   // (a stall of hours: every track is lost anyway)
  const GstClockTime pts = GST_BUFFER_PTS(buf), last = st->last_pts, step = st->frame_duration;
  if (GST_CLOCK_TIME_IS_VALID(pts)) st->last_pts = pts;
  if (!GST_CLOCK_TIME_IS_VALID(pts) || !GST_CLOCK_TIME_IS_VALID(last) || !GST_CLOCK_TIME_IS_VALID(step) || step == 0)
    return 1;
  const GstClockTime apart = pts >= last ? pts - last : last - pts;   // (reverse playback)
  return static_cast<int>(std::clamp<guint64>((apart + step / 2) / step, 1, kMost));
}

static GstFlowReturn track_frame(GstSsdTrack* self, GstBuffer* buf) {
  SsdTrackState* st = self->state;
  if (!st->tracker) {
    GST_ELEMENT_ERROR(self, CORE, STATE_CHANGE, ("The tracker is not started."), (nullptr));
    return GST_FLOW_ERROR;
  }
  // A gap buffer: nothing new (none at all, or a repeat of the last picture, as videorate's
  // duplicates, which ssddetect gives the last detections).
  const bool gap = GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP);
  std::vector<GstVideoRegionOfInterestMeta*> rois;
  std::vector<ssd::TrackBox> boxes;
  std::vector<bool> carried;   // each region: one that an ssddetect's `interval` repeated
  gpointer iter = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(buf, &iter, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    rois.push_back(roi);
    boxes.push_back(pixel_box(roi->x, roi->y, roi->w, roi->h, static_cast<int64_t>(roi->roi_type)));
    GstSsdDetection d;
    gst_ssd_detection_read(roi, &d);
    carried.push_back(d.carried);
  }
#ifdef HAVE_GST_ANALYTICS
  // Detections with no region are tracked too: od_box[k] is entry k's box in the tracker's input.
  GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(buf);
  std::vector<gstssd::OdEntry> ods = gstssd::od_entries(rmeta, rois);
  constexpr size_t kUntracked = static_cast<size_t>(-1);
  std::vector<size_t> od_box(ods.size(), kUntracked);
  for (size_t k = 0; k < ods.size(); ++k) {
    auto* od = static_cast<GstAnalyticsODMtd*>(&ods[k].mtd);
    gint x = 0, y = 0, w = 0, h = 0;
    gfloat conf = 0;
    if (ods[k].region >= 0) {
      od_box[k] = static_cast<size_t>(ods[k].region);
    } else if (gst_analytics_od_mtd_get_location(od, &x, &y, &w, &h, &conf)) {
      od_box[k] = boxes.size();
      boxes.push_back(pixel_box(x, y, w, h, static_cast<int64_t>(gst_analytics_od_mtd_get_obj_type(od))));
      carried.push_back(false);
    }
  }
#endif
  // (A gap buffer without regions, as videorate's repeats of a frame without detections, is a
  // frame in which no object was seen: it counts for max-lost, as it did not, the tracks living
  // on by the rates' ratio longer.)
  const int frames = frames_since_previous(st, buf);
  // A frame the detector skipped keeps the last analysed frame's ids (its boxes are that frame's);
  // the motion is measured between analysed frames. So does a gap buffer's. In a cascade (an
  // ssddetect with `interval` beside one analysing every frame) the repeated regions keep theirs
  // among the others' new ones.
  const bool all_carried = std::all_of(carried.begin(), carried.end(), [](bool c) { return c; });
  std::optional<std::vector<int64_t>> repeated;
  if (!rois.empty() && (all_carried || gap) && boxes.size() == rois.size())
    repeated = st->tracker->repeat(boxes, frames);
  const std::vector<int64_t> ids = repeated ? *std::move(repeated) : st->tracker->update(boxes, frames, carried);
  for (size_t i = 0; i < rois.size(); ++i) set_object_id(rois[i], ids[i]);
#ifdef HAVE_GST_ANALYTICS
  // First sightings of the live tracks (for the tracking metadata); ended ones go.
  std::map<int64_t, GstClockTime> seen;
  for (int64_t id : st->tracker->track_ids()) {
    const auto it = st->first_seen.find(id);
    seen[id] = it != st->first_seen.end() ? it->second : GST_BUFFER_PTS(buf);
  }
  st->first_seen = std::move(seen);
  // Each detection entry relates to a tracking entry with its object's id.
  for (size_t k = 0; k < ods.size(); ++k) {
    if (od_box[k] == kUntracked) continue;
    const int64_t id = ids[od_box[k]];
    if (id == 0) continue;   // (on probation: no id yet)
    GstAnalyticsTrackingMtd trk;
    // Every id of this frame is a live track's, entered in first_seen just before.
    if (!gst_analytics_relation_meta_add_tracking_mtd(rmeta, static_cast<guint64>(id), st->first_seen.at(id), &trk) ||
        !gst_analytics_tracking_mtd_update_last_seen(&trk, GST_BUFFER_PTS(buf)) ||
        !gst_analytics_relation_meta_set_relation(rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO, ods[k].mtd.id, trk.id))
      GST_WARNING_OBJECT(self, "could not add the analytics tracking meta of object %" G_GINT64_FORMAT, id);
  }
#endif
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": %zu detections, %zu tracks", st->frames, boxes.size(),
                 st->tracker->tracks());
  st->frames++;
  return GST_FLOW_OK;
}

static GstFlowReturn gst_ssd_track_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  GstSsdTrack* self = GST_SSD_TRACK(trans);
  return gstssd::run_frame_guarded(GST_ELEMENT(self), "Tracking", [&] { return track_frame(self, buf); });
}

static void gst_ssd_track_class_init(GstSsdTrackClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_ssd_track_set_property;
  gobject_class->get_property = gst_ssd_track_get_property;
  gobject_class->finalize = gst_ssd_track_finalize;
  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  /**
   * GstSsdTrack:iou-threshold:
   *
   * Least intersection-over-union of a region with a track's predicted box for the region to
   * continue that track (a track seen only once may also take a region by distance: see the
   * element's description). Lower follows faster or jerkier objects, higher keeps close objects
   * apart. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_IOU_THRESHOLD,
      g_param_spec_float("iou-threshold", "IoU threshold", "Least IoU of a region with a track's predicted box",
                         0.01f, 1.0f, kDefaultIouThreshold, flags));
  /**
   * GstSsdTrack:max-lost:
   *
   * Frames a track lives on without a region (an object hidden or missed by the detector);
   * found again within them, an object keeps its id. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_MAX_LOST,
      g_param_spec_uint("max-lost", "Max lost", "Frames a track survives without a detection", 0, 100000,
                        kDefaultMaxLost, flags));
  /**
   * GstSsdTrack:match-labels:
   *
   * A region continues only a track of its own label (`roi_type`). Off, a label that flickers
   * between two classes keeps the object's id. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_MATCH_LABELS,
      g_param_spec_boolean("match-labels", "Match labels", "Regions continue only tracks of their own label",
                           kDefaultMatchLabels, flags));
  /**
   * GstSsdTrack:min-hits:
   *
   * Regions a track needs before its regions get an `object_id` (a probation, as DeepStream's
   * probationAge or SORT's min_hits): until then they have none ("not tracked yet"; ssdexport
   * writes null), and a track that never gets that far, most often a false detection
   * flickering for a frame or two, takes no id at all, so that the ids count the objects
   * followed that long. 1: an id at once. Read when the element starts.
   */
  g_object_class_install_property(gobject_class, PROP_MIN_HITS,
      g_param_spec_uint("min-hits", "Min hits", "Regions a track needs before it gets an id", 1, 1000,
                        kDefaultMinHits, flags));

  gst_element_class_set_static_metadata(element_class, "SSD object tracker", "Filter/Analyzer/Video",
      "Gives the regions of interest of a detector persistent object ids from frame to frame",
      "gst-ssd developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_ssd_track_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_ssd_track_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_ssd_track_set_caps);
  trans_class->accept_caps = GST_DEBUG_FUNCPTR(gstssd::accept_caps_with_peer);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_ssd_track_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_ssd_track_transform_ip);
  trans_class->passthrough_on_same_caps = FALSE;

  GST_DEBUG_CATEGORY_INIT(gst_ssd_track_debug, "ssdtrack", 0, "SSD object tracker");
}

static void gst_ssd_track_init(GstSsdTrack* self) {
  self->state = new SsdTrackState();
  // Writes metadata: in place, never passthrough (the buffer is made writable, pixels shared).
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
