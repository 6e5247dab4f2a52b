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

std::vector<RoiDetection> read_rois(GstBuffer* buffer, int width, int height) {
  std::vector<RoiDetection> out;
  gpointer state = nullptr;
  GstMeta* meta = nullptr;
  const double fw = std::max(width, 1), fh = std::max(height, 1);
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                  GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
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
  return out;
}

}  // namespace gstssd
