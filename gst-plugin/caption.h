// ssdoverlay's captions as coverage masks, laid out and rendered by Pango (any script: a glyph
// the font lacks comes from another font fontconfig finds, as in GStreamer's textoverlay).
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

// Renders captions in one font at one pixel size and width limit at a time, keeping the most
// recent ones (a label or a confidence repeats from frame to frame) up to 16 MB of masks. Not
// thread-safe: one per streaming thread.
class CaptionRenderer {
 public:
  CaptionRenderer();
  ~CaptionRenderer();
  CaptionRenderer(const CaptionRenderer&) = delete;
  CaptionRenderer& operator=(const CaptionRenderer&) = delete;

  // `utf8` (invalid bytes shown as U+FFFD; one line: line breaks are drawn as symbols) in the
  // font's pixel size `pixels` (its em, > 0), at most `max_width` pixels wide (ellipsized at
  // the end beyond). The mask is as high as the font's line and as wide as the text's logical
  // extent; an empty text, or one cairo cannot render, gives an empty mask. The reference is
  // valid until the next call.
  const Caption& render(const std::string& utf8, int pixels, int max_width);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gstssd
