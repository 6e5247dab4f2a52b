// Captions as coverage masks: ssdoverlay's, and the text of ssd-train's pictures (plots.cpp).
// Laid out and rendered by Pango where the build has it (any script: a glyph the font lacks comes
// from another font fontconfig finds, as in GStreamer's textoverlay), else by OpenCV's Hershey
// font (printable ASCII; other characters drawn as '?'), which needs nothing beyond OpenCV.
#pragma once

#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include <opencv2/core.hpp>

namespace gstssd {

struct Caption {
  cv::Mat coverage;   // CV_8UC1, 0-255: how much of each pixel the text covers
  int baseline = 0;   // rows from the top to the text's baseline
};

// A caption font's size (its em) in pixels at scale 1 (ssdoverlay's font-scale, and the scale
// ssd-train's pictures give as OpenCV's putText takes it): 14 px at 0.5, about the height of
// OpenCV's Hershey font at that scale, which the captions were first drawn in.
constexpr double kPixelsPerFontScale = 28.0;

// Who draws the captions: Pango (the `pango` build option) or OpenCV's Hershey font.
enum class CaptionFont { pango, hershey };

// Whether this build has Pango; the font a CaptionRenderer takes by default (Pango when built
// with it).
bool have_pango();
CaptionFont default_caption_font();

// Renders captions in one font at one pixel size and width limit at a time, keeping the most
// recent ones (a label or a confidence repeats from frame to frame), 1,024 and 16 MB of masks at
// most; with glibc, rendering a new one gives the process's free memory back to the system
// (malloc_trim), at most once a second. Not thread-safe: one per streaming thread.
class CaptionRenderer {
 public:
  // Throws std::invalid_argument for CaptionFont::pango in a build without Pango.
  explicit CaptionRenderer(CaptionFont font = default_caption_font());
  ~CaptionRenderer();
  CaptionRenderer(const CaptionRenderer&) = delete;
  CaptionRenderer& operator=(const CaptionRenderer&) = delete;

  // `utf8` (invalid bytes shown as U+FFFD by Pango, '?' in the Hershey font; one line: Pango
  // draws line breaks as symbols) in the font's pixel size `pixels` (its em, > 0), at most
  // `max_width` pixels wide (ellipsized at the end beyond). The mask is as high as the font's
  // line and as wide as the text's logical extent; an empty text, or one that cannot be
  // rendered, gives an empty mask. The reference is valid until the next call.
  const Caption& render(const std::string& utf8, int pixels, int max_width);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gstssd
