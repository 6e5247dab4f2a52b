#include "caption.h"

#include "text.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#ifdef __GLIBC__
#include <malloc.h>   // malloc_trim
#endif
#include <opencv2/imgproc.hpp>
#ifdef HAVE_PANGOCAIRO
#include <glib.h>
#include <pango/pangocairo.h>
#endif

namespace gstssd {

namespace {

constexpr size_t kCachedBytes = 16 << 20;   // masks kept (labels, ids and confidences of recent frames)
// And at most this many: a frame brings up to a few hundred captions, most of them new (an id and
// a confidence), so more only keeps small allocations alive all over the heap (see render()).
constexpr size_t kCachedCaptions = 1024;
// Returning freed memory to the system (malloc_trim): at most once per kTrimEvery, after a
// caption was rendered. See CaptionRenderer::render().
constexpr std::chrono::seconds kTrimEvery{1};

// Draws one caption at the size and width limit last set.
class Font {
 public:
  virtual ~Font() = default;
  virtual void set_size(int pixels, int max_width) = 0;
  virtual Caption draw(const std::string& utf8) = 0;
};

#ifdef HAVE_PANGOCAIRO
class PangoFont : public Font {
 public:
  PangoFont() {
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

  ~PangoFont() override {
    pango_font_description_free(font);
    g_object_unref(layout);
    g_object_unref(context);
    g_object_unref(map);
  }

  void set_size(int pixels, int max_width) override {
    pango_font_description_set_absolute_size(font, static_cast<double>(pixels) * PANGO_SCALE);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_width(layout, max_width > G_MAXINT / PANGO_SCALE ? -1 : max_width * PANGO_SCALE);
  }

  Caption draw(const std::string& utf8) override {
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

 private:
  // A font map and context of its own: Pango's cairo font maps are not shared between threads.
  PangoFontMap* map = nullptr;
  PangoContext* context = nullptr;
  PangoLayout* layout = nullptr;
  PangoFontDescription* font = nullptr;
};
#endif

// OpenCV's FONT_HERSHEY_SIMPLEX, antialiased: its scale 1 is about 28 px high (cap line to
// descender), the em the overlay's font-scale 1 asks for.
class HersheyFont : public Font {
 public:
  void set_size(int pixels, int max_width) override {
    scale_ = pixels / kPixelsPerFontScale;
    thickness_ = std::max(1, static_cast<int>(std::lround(pixels / 14.0)));
    max_width_ = max_width;
  }

  Caption draw(const std::string& utf8) override {
    std::string text = ascii(utf8);
    Caption c;
    if (text.empty()) return c;
    int descent = 0;
    if (width(text, &descent) > max_width_) {
      // The longest start of the text that fits with "..." after it (none: "..." alone,
      // clipped to the width).
      size_t lo = 0, hi = text.size();
      while (lo < hi) {
        const size_t mid = (lo + hi + 1) / 2;
        if (width(text.substr(0, mid) + "...", nullptr) <= max_width_) lo = mid; else hi = mid - 1;
      }
      text = text.substr(0, lo) + "...";
    }
    const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale_, thickness_, &descent);
    const int pad = (thickness_ + 1) / 2;   // the strokes' half width beyond the glyphs' box
    const int cols = std::min(size.width + 2 * pad, max_width_), rows = size.height + descent + 2 * pad;
    if (cols <= 0 || rows <= 0) return c;
    c.coverage = cv::Mat::zeros(rows, cols, CV_8UC1);
    c.baseline = pad + size.height;
    cv::putText(c.coverage, text, cv::Point(pad, c.baseline), cv::FONT_HERSHEY_SIMPLEX, scale_, cv::Scalar(255),
                thickness_, cv::LINE_AA);
    return c;
  }

 private:
  // Printable ASCII as it is; every other character (after invalid bytes are replaced) as '?'.
  static std::string ascii(const std::string& utf8) {
    std::string out;
    for (const char32_t u : ssd::decode_utf8(utf8)) out += (u >= 0x20 && u < 0x7f) ? static_cast<char>(u) : '?';
    return out;
  }

  int width(const std::string& text, int* descent) const {
    int d = 0;
    const int pad = (thickness_ + 1) / 2;
    const int w = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale_, thickness_, &d).width + 2 * pad;
    if (descent) *descent = d;
    return w;
  }

  double scale_ = 0.5;
  int thickness_ = 1, max_width_ = 1;
};

}  // namespace

bool have_pango() {
#ifdef HAVE_PANGOCAIRO
  return true;
#else
  return false;
#endif
}

CaptionFont default_caption_font() { return have_pango() ? CaptionFont::pango : CaptionFont::hershey; }

struct CaptionRenderer::Impl {
  std::unique_ptr<Font> font;
  int pixels = 0, max_width = 0;
  size_t bytes = 0;   // of the masks in `recent`
  std::chrono::steady_clock::time_point trimmed{};   // when memory was last given back
  Caption empty;
  // Most recently used first.
  std::list<std::pair<std::string, Caption>> recent;
  std::unordered_map<std::string, std::list<std::pair<std::string, Caption>>::iterator> index;
};

CaptionRenderer::CaptionRenderer(CaptionFont font) : impl_(std::make_unique<Impl>()) {
  if (font == CaptionFont::hershey) {
    impl_->font = std::make_unique<HersheyFont>();
  } else {
#ifdef HAVE_PANGOCAIRO
    impl_->font = std::make_unique<PangoFont>();
#else
    throw std::invalid_argument("this build of gst-ssd has no Pango (meson option pango)");
#endif
  }
}
CaptionRenderer::~CaptionRenderer() = default;

const Caption& CaptionRenderer::render(const std::string& utf8, int pixels, int max_width) {
  Impl& d = *impl_;
  if (utf8.empty() || pixels <= 0 || max_width <= 0) return d.empty;
  if (pixels != d.pixels || max_width != d.max_width) {
    d.pixels = pixels;
    d.max_width = max_width;
    d.font->set_size(pixels, max_width);
    d.recent.clear();
    d.index.clear();
    d.bytes = 0;
  }
  auto it = d.index.find(utf8);
  if (it != d.index.end()) {
    d.recent.splice(d.recent.begin(), d.recent, it->second);
    return d.recent.front().second;
  }
  d.recent.emplace_front(utf8, d.font->draw(utf8));
  d.index[utf8] = d.recent.begin();
  d.bytes += d.recent.front().second.coverage.total();
  while ((d.bytes > kCachedBytes || d.recent.size() > kCachedCaptions) && d.recent.size() > 1) {   // the newest stays
    d.bytes -= d.recent.back().second.coverage.total();
    d.index.erase(d.recent.back().first);
    d.recent.pop_back();
  }
#ifdef __GLIBC__
  // New captions (ids, confidences: most frames bring some) are small allocations that live on,
  // made among the large ones the detector frees each frame (LibTorch's tensors, which glibc
  // serves from the heap once its mmap threshold has risen): the heap fragments, and glibc keeps
  // the memory freed around them. A process whose live memory was about 200 MB grew to 1-2 GB at
  // 160x120 (2026-12-06). malloc_trim gives the free pages back to the system.
  const auto now = std::chrono::steady_clock::now();
  if (now - d.trimmed >= kTrimEvery) {
    malloc_trim(0);
    d.trimmed = now;
  }
#endif
  return d.recent.front().second;
}

}  // namespace gstssd
