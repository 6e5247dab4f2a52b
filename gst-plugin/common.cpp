#include "common.h"

#include <algorithm>

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

static bool get_double(const GstStructure* s, const char* field, double* out) {
  if (gst_structure_get_double(s, field, out)) return true;
  gfloat f = 0;
  const GValue* v = gst_structure_get_value(s, field);
  if (v && G_VALUE_HOLDS_FLOAT(v)) {
    f = g_value_get_float(v);
    *out = f;
    return true;
  }
  return false;
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
static void read_od_mtds(GstBuffer* buffer, const std::vector<GstVideoRegionOfInterestMeta*>& rois, double fw,
                         double fh, std::vector<RoiDetection>& out) {
  GstAnalyticsRelationMeta* rmeta = gst_buffer_get_analytics_relation_meta(buffer);
  for (OdEntry& e : od_entries(rmeta, rois)) {
    auto* od = static_cast<GstAnalyticsODMtd*>(&e.mtd);
    RoiDetection d;
    gfloat conf = 0;
    if (e.region >= 0 || !gst_analytics_od_mtd_get_location(od, &d.x, &d.y, &d.w, &d.h, &conf)) continue;
    d.confidence = conf;
    if (const GQuark type = gst_analytics_od_mtd_get_obj_type(od)) d.label = g_quark_to_string(type);
    d.x_min = d.x / fw;
    d.y_min = d.y / fh;
    d.x_max = (d.x + d.w) / fw;
    d.y_max = (d.y + d.h) / fh;
    gpointer related = nullptr;
    GstAnalyticsMtd trk;
    guint64 id = 0;
    GstClockTime first = GST_CLOCK_TIME_NONE, last = GST_CLOCK_TIME_NONE;
    gboolean lost = FALSE;
    if (gst_analytics_relation_meta_get_direct_related(rmeta, e.mtd.id, GST_ANALYTICS_REL_TYPE_RELATE_TO,
                                                       gst_analytics_tracking_mtd_get_mtd_type(), &related, &trk) &&
        gst_analytics_tracking_mtd_get_info(static_cast<GstAnalyticsTrackingMtd*>(&trk), &id, &first, &last, &lost) &&
        id <= static_cast<guint64>(G_MAXINT))
      d.object_id = static_cast<int>(id);
    out.push_back(std::move(d));
  }
}
#endif

std::vector<RoiDetection> read_rois(GstBuffer* buffer, int width, int height) {
  std::vector<RoiDetection> out;
  std::vector<GstVideoRegionOfInterestMeta*> rois;
  gpointer state = nullptr;
  GstMeta* meta = nullptr;
  const double fw = std::max(width, 1), fh = std::max(height, 1);
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                  GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    rois.push_back(roi);
    RoiDetection d;
    d.x = static_cast<int>(roi->x);
    d.y = static_cast<int>(roi->y);
    d.w = static_cast<int>(roi->w);
    d.h = static_cast<int>(roi->h);
    d.x_min = d.x / fw;
    d.y_min = d.y / fh;
    d.x_max = (d.x + d.w) / fw;
    d.y_max = (d.y + d.h) / fh;
    if (const gchar* type = g_quark_to_string(roi->roi_type)) d.label = type;
    if (const GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, kDetectionStructure)) {
      if (const gchar* label = gst_structure_get_string(s, "label")) d.label = label;
      gint id = 0;
      if (gst_structure_get_int(s, "label_id", &id)) d.label_id = id;
      get_double(s, "confidence", &d.confidence);
      double x0, y0, x1, y1;
      if (get_double(s, "x_min", &x0) && get_double(s, "y_min", &y0) &&
          get_double(s, "x_max", &x1) && get_double(s, "y_max", &y1)) {
        d.x_min = x0;
        d.y_min = y0;
        d.x_max = x1;
        d.y_max = y1;
      }
    }
    if (const GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, kObjectIdStructure)) {
      gint id = -1;
      if (gst_structure_get_int(s, "id", &id)) d.object_id = id;
    }
    out.push_back(std::move(d));
  }
#ifdef HAVE_GST_ANALYTICS
  read_od_mtds(buffer, rois, fw, fh, out);
#endif
  return out;
}

}  // namespace gstssd
