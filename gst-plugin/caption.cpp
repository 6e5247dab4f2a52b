#include "caption.h"

#include <cstring>

#include <glib.h>
#include <pango/pangocairo.h>

namespace gstssd {

namespace {

constexpr size_t kCachedBytes = 16 << 20;   // masks kept (labels, ids and confidences of recent frames)

}  // namespace

struct CaptionRenderer::Impl {
  // A font map and context of its own: Pango's cairo font maps are not shared between threads.
  PangoFontMap* map = nullptr;
  PangoContext* context = nullptr;
  PangoLayout* layout = nullptr;
  PangoFontDescription* font = nullptr;
  int pixels = 0, max_width = 0;
  size_t bytes = 0;   // of the masks in `recent`
  Caption empty;
  // Most recently used first.
  std::list<std::pair<std::string, Caption>> recent;
  std::unordered_map<std::string, std::list<std::pair<std::string, Caption>>::iterator> index;

  Impl() {
    map = pango_cairo_font_map_new();
    context = pango_font_map_create_context(map);
    // Grey antialiasing without hinting: the same glyph shapes at every position.
    cairo_font_options_t* options = cairo_font_options_create();
    cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    pango_cairo_context_set_font_options(context, options);
    cairo_font_options_destroy(options);
    layout = pango_layout_new(context);
    pango_layout_set_single_paragraph_mode(layout, TRUE);
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    font = pango_font_description_from_string("Sans");
  }

  ~Impl() {
    pango_font_description_free(font);
    g_object_unref(layout);
    g_object_unref(context);
    g_object_unref(map);
  }

  Caption draw(const std::string& utf8) {
    gchar* valid = g_utf8_make_valid(utf8.c_str(), static_cast<gssize>(utf8.size()));
    pango_layout_set_text(layout, valid, -1);
    g_free(valid);
    PangoRectangle ink, logical;
    pango_layout_get_pixel_extents(layout, &ink, &logical);
    Caption c;
    if (logical.width <= 0 || logical.height <= 0) return c;
    c.baseline = pango_layout_get_baseline(layout) / PANGO_SCALE - logical.y;
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_A8, logical.width, logical.height);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {   // e.g. a side over 32767 px
      cairo_surface_destroy(surface);
      return c;
    }
    cairo_t* cr = cairo_create(surface);
    cairo_move_to(cr, -logical.x, -logical.y);
    pango_cairo_show_layout(cr, layout);
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    c.coverage = cv::Mat(logical.height, logical.width, CV_8UC1);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    for (int r = 0; r < logical.height; ++r) std::memcpy(c.coverage.ptr(r), data + r * stride, logical.width);
    cairo_surface_destroy(surface);
    return c;
  }
};

CaptionRenderer::CaptionRenderer() : impl_(std::make_unique<Impl>()) {}

CaptionRenderer::~CaptionRenderer() = default;

const Caption& CaptionRenderer::render(const std::string& utf8, int pixels, int max_width) {
  Impl& d = *impl_;
  if (utf8.empty() || pixels <= 0 || max_width <= 0) return d.empty;
  if (pixels != d.pixels || max_width != d.max_width) {
    d.pixels = pixels;
    d.max_width = max_width;
    pango_font_description_set_absolute_size(d.font, static_cast<double>(pixels) * PANGO_SCALE);
    pango_layout_set_font_description(d.layout, d.font);
    pango_layout_set_width(d.layout, max_width > G_MAXINT / PANGO_SCALE ? -1 : max_width * PANGO_SCALE);
    d.recent.clear();
    d.index.clear();
    d.bytes = 0;
  }
  auto it = d.index.find(utf8);
  if (it != d.index.end()) {
    d.recent.splice(d.recent.begin(), d.recent, it->second);
    return d.recent.front().second;
  }
  d.recent.emplace_front(utf8, d.draw(utf8));
  d.index[utf8] = d.recent.begin();
  d.bytes += d.recent.front().second.coverage.total();
  while (d.bytes > kCachedBytes && d.recent.size() > 1) {   // the newest always stays
    d.bytes -= d.recent.back().second.coverage.total();
    d.index.erase(d.recent.back().first);
    d.recent.pop_back();
  }
  return d.recent.front().second;
}

}  // namespace gstssd
