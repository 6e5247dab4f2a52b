#include "common.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace gstssd {

YuvCoefficients yuv_coefficients(const GstVideoInfo& info) {
  YuvCoefficients c;
  if (!GST_VIDEO_INFO_IS_YUV(&info)) return c;
  gdouble kr = 0, kb = 0;
  if (gst_video_color_matrix_get_Kr_Kb(info.colorimetry.matrix, &kr, &kb)) {
    c.kr = kr;
    c.kb = kb;
  }
  c.full_range = info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
  return c;
}

// d's pixel box: the part of (x, y, w, h) inside the frame (another element's metadata may reach
// outside it, or wrap its unsigned sizes), and the normalised box from it.
static void set_box(RoiDetection& d, int64_t x, int64_t y, int64_t w, int64_t h, int width, int height) {
  const int64_t x0 = std::clamp<int64_t>(x, 0, width), y0 = std::clamp<int64_t>(y, 0, height);
  const int64_t x1 = std::clamp<int64_t>(x + std::max<int64_t>(w, 0), x0, width);
  const int64_t y1 = std::clamp<int64_t>(y + std::max<int64_t>(h, 0), y0, height);
  d.x = static_cast<int>(x0);
  d.y = static_cast<int>(y0);
  d.w = static_cast<int>(x1 - x0);
  d.h = static_cast<int>(y1 - y0);
  const double fw = std::max(width, 1), fh = std::max(height, 1);
  d.x_min = d.x / fw;
  d.y_min = d.y / fh;
  d.x_max = (d.x + d.w) / fw;
  d.y_max = (d.y + d.h) / fh;
}

#ifdef HAVE_GST_ANALYTICS
static bool od_matches_roi(GstAnalyticsODMtd* od, const GstVideoRegionOfInterestMeta& roi) {
  gint x = 0, y = 0, w = 0, h = 0;
  gfloat conf = 0;
  return gst_analytics_od_mtd_get_obj_type(od) == roi.roi_type &&
         gst_analytics_od_mtd_get_location(od, &x, &y, &w, &h, &conf) && x == static_cast<gint>(roi.x) &&
         y == static_cast<gint>(roi.y) && w == static_cast<gint>(roi.w) && h == static_cast<gint>(roi.h);
}

std::vector<OdEntry> od_entries(GstAnalyticsRelationMeta* rmeta, const std::vector<GstVideoRegionOfInterestMeta*>& rois) {
  std::vector<OdEntry> ods;
  if (!rmeta) return ods;
  std::vector<bool> used(rois.size(), false);
  gpointer state = nullptr;
  OdEntry e;
  while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(), &e.mtd)) {
    e.region = -1;
    for (size_t i = 0; i < rois.size() && e.region < 0; ++i)
      if (!used[i] && od_matches_roi(static_cast<GstAnalyticsODMtd*>(&e.mtd), *rois[i])) {
        used[i] = true;
        e.region = static_cast<int>(i);
      }
    ods.push_back(e);
  }
  return ods;
}

// The object-detection entries of the buffer's relation meta that none of `rois` stands for.
static void read_od_mtds(GstBuffer* buffer, const std::vector<GstVideoRegionOfInterestMeta*>& rois, int width,
                         int height, std::vector<RoiDetection>& out) {
  GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(buffer);
  for (OdEntry& e : od_entries(rmeta, rois)) {
    auto* od = static_cast<GstAnalyticsODMtd*>(&e.mtd);
    RoiDetection d;
    gfloat conf = 0;
    gint x = 0, y = 0, w = 0, h = 0;
    if (e.region >= 0 || !gst_analytics_od_mtd_get_location(od, &x, &y, &w, &h, &conf)) continue;
    d.confidence = conf;
    if (const GQuark type = gst_analytics_od_mtd_get_obj_type(od)) d.label = g_quark_to_string(type);
    set_box(d, x, y, w, h, width, height);
    gpointer related = nullptr;
    GstAnalyticsMtd trk;
    guint64 id = 0;
    GstClockTime first = GST_CLOCK_TIME_NONE, last = GST_CLOCK_TIME_NONE;
    gboolean lost = FALSE;
    // The newest tracking entry, when trackers one after another each related one to it (as the
    // last tracker replaces a region's object_id).
    while (gst_analytics_relation_meta_get_direct_related(rmeta, e.mtd.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
                                                          gst_analytics_tracking_mtd_get_mtd_type(), &related, &trk))
      if (gst_analytics_tracking_mtd_get_info(static_cast<GstAnalyticsTrackingMtd*>(&trk), &id, &first, &last, &lost))
        d.object_id = id <= static_cast<guint64>(G_MAXINT) ? static_cast<int>(id) : -1;
    out.push_back(std::move(d));
  }
}
#endif

std::vector<RoiDetection> read_rois(GstBuffer* buffer, int width, int height) {
  std::vector<RoiDetection> out;
  std::vector<GstVideoRegionOfInterestMeta*> rois;
  gpointer state = nullptr;
  GstMeta* meta = nullptr;
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                  GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    rois.push_back(roi);
    RoiDetection d;
    set_box(d, roi->x, roi->y, roi->w, roi->h, width, height);
    GstSsdDetection m;   // the structures, as an application reads them (gst-ssd/ssdmeta.h)
    gst_ssd_detection_read(roi, &m);
    if (m.label) d.label = m.label;
    d.label_id = m.label_id;
    d.confidence = m.confidence;
    d.object_id = m.object_id;
    d.carried = m.carried;
    if (m.has_normalized) {   // (else the box from the pixels stays)
      d.x_min = m.x_min;
      d.y_min = m.y_min;
      d.x_max = m.x_max;
      d.y_max = m.y_max;
    }
    out.push_back(std::move(d));
  }
#ifdef HAVE_GST_ANALYTICS
  read_od_mtds(buffer, rois, width, height, out);
#endif
  return out;
}

bool starts_afresh(GstBaseTransform* trans, GstEvent* event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_STREAM_START) return true;
  if (GST_EVENT_TYPE(event) != GST_EVENT_SEGMENT) return false;
  const GstSegment* segment = nullptr;
  gst_event_parse_segment(event, &segment);
  // The position in use moves with the frames (GstBaseTransform records each one's end): the
  // same segment sent again is not another one.
  GstSegment incoming = *segment;
  incoming.position = trans->segment.position;
  incoming.duration = trans->segment.duration;
  return !gst_segment_is_equal(&incoming, &trans->segment);
}

gboolean accept_caps_with_peer(GstBaseTransform* trans, GstPadDirection direction, GstCaps* caps) {
  // (The elements derive from GstBaseTransform itself: its default checks the templates.)
  auto* base = static_cast<GstBaseTransformClass*>(g_type_class_peek(GST_TYPE_BASE_TRANSFORM));
  if (!base->accept_caps(trans, direction, caps)) return FALSE;
  GstPad* other = direction == GST_PAD_SINK ? GST_BASE_TRANSFORM_SRC_PAD(trans) : GST_BASE_TRANSFORM_SINK_PAD(trans);
  return !gst_pad_is_linked(other) || gst_pad_peer_query_accept_caps(other, caps);
}

std::string map_failure(GstBuffer* buffer, const GstVideoInfo& info) {
  const gsize size = gst_buffer_get_size(buffer);
  const gsize need = GST_VIDEO_INFO_SIZE(&info);
  gchar* text;
  if (!gst_buffer_get_video_meta(buffer) && size < need) {
    text = g_strdup_printf("the buffer holds %" G_GSIZE_FORMAT " bytes where a %dx%d %s frame takes %" G_GSIZE_FORMAT
                           " (GStreamer's default layout pads each row to a multiple of 4 bytes: pad the rows, or "
                           "attach a GstVideoMeta giving the strides)",
                           size, GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info),
                           GST_VIDEO_INFO_NAME(&info), need);
  } else {
    text = g_strdup_printf("a buffer of %" G_GSIZE_FORMAT " bytes for a %dx%d %s frame%s", size,
                           GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_NAME(&info),
                           gst_buffer_get_video_meta(buffer) ? " with a GstVideoMeta" : "");
  }
  std::string s(text);
  g_free(text);
  return s;
}

GstClockTime frame_duration(const GstVideoInfo& info) {
  return GST_VIDEO_INFO_FPS_N(&info) > 0
             ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info), GST_VIDEO_INFO_FPS_N(&info))
             : GST_CLOCK_TIME_NONE;
}

Rect picture_rect(GstBuffer* buffer, const GstVideoInfo& info) {
  int width = GST_VIDEO_INFO_WIDTH(&info), height = GST_VIDEO_INFO_HEIGHT(&info);
  if (const GstVideoMeta* meta = gst_buffer_get_video_meta(buffer)) {
    width = static_cast<int>(meta->width);
    height = static_cast<int>(meta->height);
  }
  // The caps' size, whatever the crop's (videocrop sets both alike): every element reads
  // regions in the same units.
  guint64 x = 0, y = 0;
  const guint64 w = GST_VIDEO_INFO_WIDTH(&info), h = GST_VIDEO_INFO_HEIGHT(&info);
  if (const GstVideoCropMeta* crop = gst_buffer_get_video_crop_meta(buffer)) {
    x = crop->x;
    y = crop->y;
  }
  const auto clip = [](guint64 v, int size) { return static_cast<int>(std::min<guint64>(v, std::max(size, 0))); };
  Rect r;
  r.x = clip(x, width);
  r.y = clip(y, height);
  r.width = clip(x + w, width) - r.x;
  r.height = clip(y + h, height) - r.y;
  return r;
}

bool read_at_start(const GParamSpec* pspec) { return (pspec->flags & GST_PARAM_MUTABLE_READY) != 0; }

void warn_read_at_start(GstElement* element, const GParamSpec* pspec, const GValue* value) {
  GValue current = G_VALUE_INIT;
  g_value_init(&current, G_PARAM_SPEC_VALUE_TYPE(pspec));
  g_object_get_property(G_OBJECT(element), pspec->name, &current);
  const bool same = g_param_values_cmp(const_cast<GParamSpec*>(pspec), &current, value) == 0;
  g_value_unset(&current);
  if (same) return;
  gst_element_message_full(element, GST_MESSAGE_WARNING, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                           g_strdup_printf("The %s property changes only in the NULL or READY state: the element "
                                           "keeps the value it runs with.",
                                           pspec->name),
                           nullptr, __FILE__, GST_FUNCTION, __LINE__);
}

void refuse_crop_meta(GstQuery* allocation_query) {
  guint index = 0;
  while (gst_query_find_allocation_meta(allocation_query, GST_VIDEO_CROP_META_API_TYPE, &index))
    gst_query_remove_nth_allocation_meta(allocation_query, index);
}

namespace {

// The innermost HoldPosts open in this thread (they live on its stack, each pointing at the one
// open before it: nothing of theirs is on the heap once they close).
thread_local HoldPosts* t_innermost = nullptr;

}  // namespace

HoldPosts::HoldPosts(GstElement* element) : element_(element), outer_(t_innermost) { t_innermost = this; }

HoldPosts::~HoldPosts() {
  t_innermost = outer_;
  // (Only the element's outermost one holds posts. A handler may post through another element:
  // the chain is consistent again.)
  for (auto& post : posts_) post();
}

void after_frame(GstElement* element, std::function<void()> post) {
  HoldPosts* outermost = nullptr;
  for (HoldPosts* h = t_innermost; h; h = h->outer_)
    if (h->element_ == element) outermost = h;
  if (!outermost) {
    post();
    return;
  }
  outermost->posts_.push_back(std::move(post));
}

}  // namespace gstssd
