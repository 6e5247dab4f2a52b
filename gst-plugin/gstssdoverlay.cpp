/**
 * SECTION:element-ssdoverlay
 * @title: ssdoverlay
 * @see_also: ssddetect
 *
 * Draws every #GstVideoRegionOfInterestMeta of a buffer onto the frame, in place: a box and a
 * caption such as `car 0.87` (`car #3 0.87` for an object ssdtrack follows) on a filled label
 * background. Regions from any producer are
 * drawn, not only those of ssddetect: the label is taken from the `detection` parameter
 * structure when there is one, else from the region's `roi_type` quark; the confidence is
 * shown when the structure has a `confidence` field. When built against GStreamer 1.24 or
 * newer, the #GstAnalyticsODMtd entries of the buffer's analytics relation meta that no region
 * stands for (GStreamer's own analytics elements write only those) are drawn too, labelled by
 * their object type and confidence, with the id of a #GstAnalyticsTrackingMtd they relate to.
 * Each class gets its own colour, the same in every frame and every run: the region's class id
 * (the `detection` structure's `label_id`, as ssddetect writes it) picks one of 20 palette
 * entries, so a model's first 20 classes never share one; a region without a class id is
 * coloured by a hash of its label. Gap buffers, and buffers with no region inside the picture,
 * are passed on without being mapped. Captions are laid out and drawn by Pango in the "Sans" font
 * (fontconfig's; a character it lacks comes from another installed font, as in textoverlay),
 * so labels in any script show as written; bytes that are not UTF-8 show as U+FFFD. A build
 * without Pango (meson option `pango`) draws them in OpenCV's Hershey font instead: printable
 * ASCII, any other character as '?'.
 *
 * NV12 and I420 frames are drawn in their own planes without converting the frame: the luma
 * of the colour on the Y plane and its chroma on the half-resolution chroma plane(s), using
 * the frame's colour matrix.
 * Frames are drawn at the size of the caps: the element does not offer upstream a
 * #GstVideoCropMeta support of the elements behind it (regions attached before an in-place crop
 * would be in other coordinates than those attached after it), so upstream (videocrop, a
 * decoder) sends cropped frames; a frame that comes with a crop meta all the same is drawn in
 * its picture, nothing outside it (but for the 4:2:0 chroma samples a picture at an odd offset
 * shares with the pixels beside it).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc ! video/x-raw,format=NV12 ! ssddetect ! \
 *     ssdoverlay thickness=3 show-confidence=false ! videoconvert ! autovideosink
 * ]|
 */
#include "gstssdoverlay.h"

#include <algorithm>
#include <charconv>
#include <array>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gst/video/video.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "caption.h"
#include "common.h"
#include "mapped_frame.h"

GST_DEBUG_CATEGORY_STATIC(gst_ssd_overlay_debug);
#define GST_CAT_DEFAULT gst_ssd_overlay_debug

namespace {

constexpr gint kDefaultThickness = 2;
constexpr gdouble kDefaultFontScale = 0.5;
constexpr gboolean kDefaultShowLabels = TRUE;
constexpr gboolean kDefaultShowConfidence = TRUE;
constexpr gboolean kDefaultShowIds = TRUE;

struct Settings {
  gint thickness = kDefaultThickness;
  gdouble font_scale = kDefaultFontScale;
  bool show_labels = kDefaultShowLabels;
  bool show_confidence = kDefaultShowConfidence;
  bool show_ids = kDefaultShowIds;
};

struct Rgb {
  int r, g, b;
};

// A 20-colour qualitative palette (Tableau 20 order, saturated colours first).
constexpr std::array<Rgb, 20> kPalette = {{
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
    {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229},
}};

}  // namespace

struct SsdOverlayState {
  std::mutex lock;   // guards settings
  Settings settings;
  GstVideoInfo info;
  bool have_info = false;
  // Made by the streaming thread when it first draws a caption; freed in stop().
  std::unique_ptr<gstssd::CaptionRenderer> captions;
};

struct _GstSsdOverlay {
  GstBaseTransform parent;
  SsdOverlayState* state;
};

enum {
  PROP_0,
  PROP_THICKNESS,
  PROP_FONT_SCALE,
  PROP_SHOW_LABELS,
  PROP_SHOW_CONFIDENCE,
  PROP_SHOW_IDS,
};

G_DEFINE_TYPE(GstSsdOverlay, gst_ssd_overlay, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(ssdoverlay, "ssdoverlay", GST_RANK_NONE, GST_TYPE_SSD_OVERLAY);

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_SSD_VIDEO_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_SSD_VIDEO_CAPS));

// A region's colour. The producer's class id (ssddetect's `label_id`) picks the palette entry,
// so a model's first 20 classes get 20 distinct colours; a region without one (another
// producer's) is coloured by a hash of its label, FNV-1a: stable across runs and platforms
// (std::hash is not), though two labels may share a colour.
static Rgb colour_for(const gstssd::RoiDetection& r) {
  if (r.label_id >= 0) return kPalette[static_cast<size_t>(r.label_id) % kPalette.size()];
  guint32 h = 2166136261u;
  for (unsigned char c : r.label) {
    h ^= c;
    h *= 16777619u;
  }
  return kPalette[h % kPalette.size()];
}

namespace {

// Draws on one frame's picture (`picture`, in the frame's pixels: the whole frame, or a crop
// meta's rectangle), in the picture's coordinates: packed RGB-family formats on a single
// cv::Mat, 4:2:0 YUV on the planes.
class Painter {
 public:
  Painter(gstssd::VideoFrameMap& frame, const gstssd::Rect& picture) : frame_(frame), ox_(picture.x), oy_(picture.y) {
    const GstVideoFormat f = frame.format();
    yuv_ = f == GST_VIDEO_FORMAT_NV12 || f == GST_VIDEO_FORMAT_I420;
    const cv::Rect area(picture.x, picture.y, picture.width, picture.height);
    const int w = frame.width(), h = frame.height();
    if (yuv_) {
      // The chroma samples the picture's pixels touch (an odd x or y shares its first ones).
      const int cw = (w + 1) / 2, ch = (h + 1) / 2;
      const cv::Rect chroma(picture.x / 2, picture.y / 2, (picture.x + picture.width + 1) / 2 - picture.x / 2,
                            (picture.y + picture.height + 1) / 2 - picture.y / 2);
      y_ = cv::Mat(h, w, CV_8UC1, frame.plane(0), frame.stride(0))(area);
      if (f == GST_VIDEO_FORMAT_NV12) {
        uv_ = cv::Mat(ch, cw, CV_8UC2, frame.plane(1), frame.stride(1))(chroma);
      } else {
        u_ = cv::Mat(ch, cw, CV_8UC1, frame.plane(1), frame.stride(1))(chroma);
        v_ = cv::Mat(ch, cw, CV_8UC1, frame.plane(2), frame.stride(2))(chroma);
      }
      const gstssd::YuvCoefficients c = gstssd::yuv_coefficients(frame.info());
      kr_ = c.kr;
      kb_ = c.kb;
      full_range_ = c.full_range;
    } else {
      const int bpp = GST_VIDEO_FORMAT_INFO_PSTRIDE(frame.info().finfo, 0);
      rgb_ = cv::Mat(h, w, bpp == 3 ? CV_8UC3 : CV_8UC4, frame.plane(0), frame.stride(0))(area);
    }
  }

  // `filled` draws a solid rectangle; otherwise an outline of `thickness` pixels lying inside
  // the rectangle [x0, x1) x [y0, y1).
  void rect(int x0, int y0, int x1, int y1, const Rgb& c, int thickness, bool filled) {
    if (x1 <= x0 || y1 <= y0) return;
    const std::vector<cv::Rect> parts = filled ? std::vector<cv::Rect>{cv::Rect(x0, y0, x1 - x0, y1 - y0)}
                                               : outline_bands(x0, y0, x1, y1, thickness);
    if (!yuv_) {
      for (const cv::Rect& r : parts) cv::rectangle(rgb_, r, packed(c), cv::FILLED);
      return;
    }
    int Y, U, V;
    to_yuv(c, &Y, &U, &V);
    for (const cv::Rect& r : parts) {
      cv::rectangle(y_, r, cv::Scalar(Y), cv::FILLED);
      // Chroma at half resolution: every sample the band's pixels touch (in the frame's sample
      // grid, which the picture may start half-way into), so that no drawn pixel keeps the
      // scene's colour.
      const int cx0 = (ox_ + r.x) / 2 - ox_ / 2, cy0 = (oy_ + r.y) / 2 - oy_ / 2;
      const int cx1 = (ox_ + r.x + r.width + 1) / 2 - ox_ / 2, cy1 = (oy_ + r.y + r.height + 1) / 2 - oy_ / 2;
      const cv::Rect cr(cx0, cy0, cx1 - cx0, cy1 - cy0);
      if (!uv_.empty()) {
        cv::rectangle(uv_, cr, cv::Scalar(U, V), cv::FILLED);
      } else {
        cv::rectangle(u_, cr, cv::Scalar(U), cv::FILLED);
        cv::rectangle(v_, cr, cv::Scalar(V), cv::FILLED);
      }
    }
  }

  // A caption's coverage with its top-left corner at (x, y), in a neutral colour (black or
  // white) blended by coverage: luma only on YUV frames, the colour channels (not alpha or
  // padding) of packed RGB. Clipped to the picture.
  void text(const gstssd::Caption& c, int x, int y, bool white) {
    cv::Mat& plane = yuv_ ? y_ : rgb_;
    const cv::Rect where = cv::Rect(x, y, c.coverage.cols, c.coverage.rows) & cv::Rect(0, 0, plane.cols, plane.rows);
    if (where.empty()) return;
    int value = white ? 255 : 0;
    if (yuv_) {
      int U, V;
      to_yuv({value, value, value}, &value, &U, &V);
    }
    const int channels = plane.channels();
    // The colour channels: all 1 (Y) or 3 (RGB, BGR); 4-byte formats skip their alpha/padding.
    const GstVideoFormat f = frame_.format();
    const int first = (f == GST_VIDEO_FORMAT_xRGB || f == GST_VIDEO_FORMAT_xBGR) ? 1 : 0;
    const int colours = channels == 1 ? 1 : 3;
    for (int r = where.y; r < where.y + where.height; ++r) {
      const uint8_t* a = c.coverage.ptr<uint8_t>(r - y) + (where.x - x);
      uint8_t* p = plane.ptr<uint8_t>(r) + where.x * channels + first;
      for (int k = 0; k < where.width; ++k, p += channels) {
        if (a[k] == 0) continue;
        for (int ch = 0; ch < colours; ++ch) p[ch] = static_cast<uint8_t>((p[ch] * (255 - a[k]) + value * a[k] + 127) / 255);
      }
    }
  }

 private:
  // The outline of [x0, x1) x [y0, y1) as four filled bands inside it, `thickness` wide (at most
  // half the box; cv::rectangle would centre thick lines on the edge).
  static std::vector<cv::Rect> outline_bands(int x0, int y0, int x1, int y1, int thickness) {
    const int t = std::max(1, std::min({thickness, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2}));
    const int w = x1 - x0, h = y1 - y0;
    return {cv::Rect(x0, y0, w, t), cv::Rect(x0, y1 - t, w, t), cv::Rect(x0, y0, t, h), cv::Rect(x1 - t, y0, t, h)};
  }

  // The colour in the frame's channel order (alpha/padding bytes set to 255).
  cv::Scalar packed(const Rgb& c) const {
    switch (frame_.format()) {
      case GST_VIDEO_FORMAT_RGB: return cv::Scalar(c.r, c.g, c.b);
      case GST_VIDEO_FORMAT_BGR: return cv::Scalar(c.b, c.g, c.r);
      case GST_VIDEO_FORMAT_RGBx:
      case GST_VIDEO_FORMAT_RGBA: return cv::Scalar(c.r, c.g, c.b, 255);
      case GST_VIDEO_FORMAT_BGRx:
      case GST_VIDEO_FORMAT_BGRA: return cv::Scalar(c.b, c.g, c.r, 255);
      case GST_VIDEO_FORMAT_xRGB: return cv::Scalar(255, c.r, c.g, c.b);
      case GST_VIDEO_FORMAT_xBGR: return cv::Scalar(255, c.b, c.g, c.r);
      default: return cv::Scalar(c.r, c.g, c.b, 255);
    }
  }

  void to_yuv(const Rgb& c, int* Y, int* U, int* V) const {
    const double r = c.r / 255.0, g = c.g / 255.0, b = c.b / 255.0;
    const double y = kr_ * r + (1.0 - kr_ - kb_) * g + kb_ * b;
    const double pb = (b - y) / (2.0 * (1.0 - kb_));
    const double pr = (r - y) / (2.0 * (1.0 - kr_));
    double yy, uu, vv;
    if (full_range_) {
      yy = 255.0 * y;
      uu = 128.0 + 255.0 * pb;
      vv = 128.0 + 255.0 * pr;
    } else {
      yy = 16.0 + 219.0 * y;
      uu = 128.0 + 224.0 * pb;
      vv = 128.0 + 224.0 * pr;
    }
    *Y = std::clamp(static_cast<int>(std::lround(yy)), 0, 255);
    *U = std::clamp(static_cast<int>(std::lround(uu)), 0, 255);
    *V = std::clamp(static_cast<int>(std::lround(vv)), 0, 255);
  }

  gstssd::VideoFrameMap& frame_;
  int ox_ = 0, oy_ = 0;   // the picture's origin in the frame
  bool yuv_ = false;
  cv::Mat rgb_, y_, uv_, u_, v_;
  double kr_ = 0.299, kb_ = 0.114;
  bool full_range_ = false;
};

}  // namespace

/* GObject vmethods */

static void gst_ssd_overlay_set_property(GObject* object, guint prop_id, const GValue* value,
                                         GParamSpec* pspec) {
  GstSsdOverlay* self = GST_SSD_OVERLAY(object);
  std::lock_guard<std::mutex> guard(self->state->lock);
  Settings& s = self->state->settings;
  switch (prop_id) {
    case PROP_THICKNESS: s.thickness = g_value_get_int(value); break;
    case PROP_FONT_SCALE: s.font_scale = g_value_get_double(value); break;
    case PROP_SHOW_LABELS: s.show_labels = g_value_get_boolean(value); break;
    case PROP_SHOW_CONFIDENCE: s.show_confidence = g_value_get_boolean(value); break;
    case PROP_SHOW_IDS: s.show_ids = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ssd_overlay_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstSsdOverlay* self = GST_SSD_OVERLAY(object);
  std::lock_guard<std::mutex> guard(self->state->lock);
  const Settings& s = self->state->settings;
  switch (prop_id) {
    case PROP_THICKNESS: g_value_set_int(value, s.thickness); break;
    case PROP_FONT_SCALE: g_value_set_double(value, s.font_scale); break;
    case PROP_SHOW_LABELS: g_value_set_boolean(value, s.show_labels); break;
    case PROP_SHOW_CONFIDENCE: g_value_set_boolean(value, s.show_confidence); break;
    case PROP_SHOW_IDS: g_value_set_boolean(value, s.show_ids); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_ssd_overlay_finalize(GObject* object) {
  GstSsdOverlay* self = GST_SSD_OVERLAY(object);
  delete self->state;
  self->state = nullptr;
  G_OBJECT_CLASS(gst_ssd_overlay_parent_class)->finalize(object);
}

/* GstBaseTransform vmethods */

static gboolean gst_ssd_overlay_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps*) {
  GstSsdOverlay* self = GST_SSD_OVERLAY(trans);
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  self->state->info = info;
  self->state->have_info = true;
  return TRUE;
}

static gboolean gst_ssd_overlay_stop(GstBaseTransform* trans) {
  GST_SSD_OVERLAY(trans)->state->have_info = false;
  GST_SSD_OVERLAY(trans)->state->captions.reset();
  return TRUE;
}

static GstFlowReturn draw_frame(GstSsdOverlay* self, GstBuffer* buf) {
  SsdOverlayState* st = self->state;
  if (!st->have_info) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Caps not negotiated."), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  // Regions are in the picture's coordinates (a crop meta's rectangle, else the frame's).
  const gstssd::Rect picture = gstssd::picture_rect(buf, st->info);
  const int width = picture.width, height = picture.height;
  // A gap buffer may have no picture to draw on (no memory at all), or have one: a repeat of the
  // last, as videorate's duplicates, which are drawn on as any frame.
  const bool gap = GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP);
  if (gap && gst_buffer_get_size(buf) == 0) return GST_FLOW_OK;
  // The regions, clipped to the picture (read_rois); those left without an area are not drawn.
  std::vector<gstssd::RoiDetection> rois = gstssd::read_rois(buf, width, height);
  rois.erase(std::remove_if(rois.begin(), rois.end(), [](const gstssd::RoiDetection& r) { return r.w <= 0 || r.h <= 0; }),
             rois.end());
  // Nothing to draw: do not map (a write map of a shared buffer copies its memory).
  if (rois.empty()) return GST_FLOW_OK;
  Settings s;
  {
    std::lock_guard<std::mutex> guard(st->lock);
    s = st->settings;
  }

  gstssd::VideoFrameMap frame(&st->info, buf, GST_MAP_READWRITE);
  if (!frame && gap) return GST_FLOW_OK;   // (less than a picture in it)
  if (!frame) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED,
                      ("Could not map the video frame for writing: %s.", gstssd::map_failure(buf, st->info).c_str()),
                      (nullptr));
    return GST_FLOW_ERROR;
  }
  Painter painter(frame, picture);
  for (const gstssd::RoiDetection& r : rois) {
    const int x0 = r.x, y0 = r.y, x1 = r.x + r.w, y1 = r.y + r.h;
    const Rgb colour = colour_for(r);
    painter.rect(x0, y0, x1, y1, colour, s.thickness, false);

    std::string caption;
    if (s.show_labels) caption = r.label;
    if (s.show_ids && r.object_id >= 0) caption += (caption.empty() ? "#" : " #") + std::to_string(r.object_id);
    if (s.show_confidence && r.confidence >= 0) {
      // (to_chars: "0.87" whatever the process's locale; printf wrote "0,87" in a German one.)
      char buf_conf[32];
      const auto conf = std::to_chars(buf_conf, buf_conf + sizeof buf_conf, std::min(r.confidence, 1e9),
                                      std::chars_format::fixed, 2);
      caption += (caption.empty() ? "" : " ") + std::string(buf_conf, conf.ptr);
    }
    if (caption.empty() || s.font_scale <= 0) continue;
    if (!st->captions) st->captions = std::make_unique<gstssd::CaptionRenderer>();
    const int pad = 2;
    // (At most the picture's width: beyond it would be clipped anyway.)
    const gstssd::Caption& text = st->captions->render(
        caption, std::max(1, static_cast<int>(std::lround(s.font_scale * gstssd::kPixelsPerFontScale))), std::max(1, width - 2 * pad));
    if (text.coverage.empty()) continue;
    const int bw = text.coverage.cols + 2 * pad, bh = text.coverage.rows + 2 * pad;
    // Above the box when there is room, else inside its top edge.
    int bx0 = x0, by0 = y0 - bh;
    if (by0 < 0) by0 = y0;
    bx0 = std::clamp(bx0, 0, std::max(0, width - bw));
    const int bx1 = std::min(width, bx0 + bw), by1 = std::min(height, by0 + bh);
    painter.rect(bx0, by0, bx1, by1, colour, 0, true);
    const double luma = 0.299 * colour.r + 0.587 * colour.g + 0.114 * colour.b;
    painter.text(text, bx0 + pad, by0 + pad, luma < 140);
  }
  return GST_FLOW_OK;
}

// In place, the default asks downstream; see gstssd::refuse_crop_meta().
static gboolean gst_ssd_overlay_propose_allocation(GstBaseTransform* trans, GstQuery* decide_query, GstQuery* query) {
  const gboolean res =
      GST_BASE_TRANSFORM_CLASS(gst_ssd_overlay_parent_class)->propose_allocation(trans, decide_query, query);
  gstssd::refuse_crop_meta(query);
  return res;
}

static GstFlowReturn gst_ssd_overlay_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  GstSsdOverlay* self = GST_SSD_OVERLAY(trans);
  return gstssd::run_frame_guarded(GST_ELEMENT(self), "Drawing the detections",
                                   [&] { return draw_frame(self, buf); });
}

/* GObject boilerplate */

static void gst_ssd_overlay_class_init(GstSsdOverlayClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_ssd_overlay_set_property;
  gobject_class->get_property = gst_ssd_overlay_get_property;
  gobject_class->finalize = gst_ssd_overlay_finalize;

  const auto flags =
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  /**
   * GstSsdOverlay:thickness:
   *
   * Width of the box outline in pixels; the outline lies inside the region.
   */
  g_object_class_install_property(gobject_class, PROP_THICKNESS,
      g_param_spec_int("thickness", "Thickness", "Box outline width in pixels", 1, 64, kDefaultThickness,
                       flags));
  /**
   * GstSsdOverlay:font-scale:
   *
   * Size of the captions' font: its em is 28 x font-scale pixels (14 at the default 0.5);
   * 0 hides captions.
   */
  g_object_class_install_property(gobject_class, PROP_FONT_SCALE,
      g_param_spec_double("font-scale", "Font scale", "Caption font scale (0 hides captions)", 0.0, 10.0,
                          kDefaultFontScale, flags));
  /**
   * GstSsdOverlay:show-labels:
   *
   * Write the class label above each box.
   */
  g_object_class_install_property(gobject_class, PROP_SHOW_LABELS,
      g_param_spec_boolean("show-labels", "Show labels", "Write the class label of each box",
                           kDefaultShowLabels, flags));
  /**
   * GstSsdOverlay:show-confidence:
   *
   * Write the confidence (0.00-1.00) next to the label, when the region has one.
   */
  g_object_class_install_property(gobject_class, PROP_SHOW_CONFIDENCE,
      g_param_spec_boolean("show-confidence", "Show confidence", "Write the confidence of each box",
                           kDefaultShowConfidence, flags));
  /**
   * GstSsdOverlay:show-ids:
   *
   * Write the tracking id (`#3`) after the label, when the region has one (an `object_id`
   * structure, as ssdtrack attaches).
   */
  g_object_class_install_property(gobject_class, PROP_SHOW_IDS,
      g_param_spec_boolean("show-ids", "Show ids", "Write the tracking id of each box (from ssdtrack)",
                           kDefaultShowIds, flags));

  gst_element_class_set_static_metadata(element_class, "SSD detection overlay", "Filter/Effect/Video",
      "Draws region-of-interest metadata (boxes, labels, confidences) onto video frames",
      "gst-ssd developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_ssd_overlay_set_caps);
  trans_class->accept_caps = GST_DEBUG_FUNCPTR(gstssd::accept_caps_with_peer);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_ssd_overlay_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_ssd_overlay_transform_ip);
  trans_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_ssd_overlay_propose_allocation);
  trans_class->passthrough_on_same_caps = FALSE;

  GST_DEBUG_CATEGORY_INIT(gst_ssd_overlay_debug, "ssdoverlay", 0, "SSD detection overlay");
}

static void gst_ssd_overlay_init(GstSsdOverlay* self) {
  self->state = new SsdOverlayState();
  gst_video_info_init(&self->state->info);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
