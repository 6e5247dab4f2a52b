#include "augment.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace ssdtrain {

namespace {

float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

double iou(const BoxAnnotation& b, const cv::Rect& r) {
  const double ix1 = std::max<double>(b.x1, r.x), iy1 = std::max<double>(b.y1, r.y);
  const double ix2 = std::min<double>(b.x2, r.x + r.width), iy2 = std::min<double>(b.y2, r.y + r.height);
  const double inter = std::max(0.0, ix2 - ix1) * std::max(0.0, iy2 - iy1);
  const double a = static_cast<double>(b.x2 - b.x1) * (b.y2 - b.y1);
  const double ur = a + static_cast<double>(r.width) * r.height - inter;
  return ur > 0 ? inter / ur : 0.0;
}

bool centre_inside(const BoxAnnotation& b, const cv::Rect& r) {
  const float cx = 0.5f * (b.x1 + b.x2), cy = 0.5f * (b.y1 + b.y2);
  return cx >= r.x && cx < r.x + r.width && cy >= r.y && cy < r.y + r.height;
}

}  // namespace

void hflip(Sample& s) {
  cv::flip(s.image, s.image, 1);
  const float w = static_cast<float>(s.image.cols);
  for (auto& b : s.boxes) {
    const float x1 = w - b.x2, x2 = w - b.x1;
    b.x1 = x1;
    b.x2 = x2;
  }
}

void rotate(Sample& s, double degrees, const cv::Scalar& fill) {
  const int w = s.image.cols, h = s.image.rows;
  // Pixel index coordinates (pixel i's centre at i); box corners are continuous (pixel i spans
  // [i, i+1)), hence the half-pixel shifts below.
  const cv::Point2f centre((w - 1) * 0.5f, (h - 1) * 0.5f);
  const cv::Mat m = cv::getRotationMatrix2D(centre, degrees, 1.0);
  cv::Mat out;
  cv::warpAffine(s.image, out, m, s.image.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, fill);
  s.image = out;
  const double a = m.at<double>(0, 0), b = m.at<double>(0, 1), c = m.at<double>(0, 2);
  const double d = m.at<double>(1, 0), e = m.at<double>(1, 1), f = m.at<double>(1, 2);
  const cv::Rect full(0, 0, w, h);
  std::vector<BoxAnnotation> kept;
  kept.reserve(s.boxes.size());
  for (const auto& bx : s.boxes) {
    const double xs[4] = {bx.x1, bx.x2, bx.x1, bx.x2}, ys[4] = {bx.y1, bx.y1, bx.y2, bx.y2};
    double minx = 1e30, maxx = -1e30, miny = 1e30, maxy = -1e30;
    for (int k = 0; k < 4; ++k) {
      const double px = xs[k] - 0.5, py = ys[k] - 0.5;
      const double qx = a * px + b * py + c + 0.5, qy = d * px + e * py + f + 0.5;
      minx = std::min(minx, qx); maxx = std::max(maxx, qx);
      miny = std::min(miny, qy); maxy = std::max(maxy, qy);
    }
    BoxAnnotation nb = bx;
    nb.x1 = static_cast<float>(minx); nb.x2 = static_cast<float>(maxx);
    nb.y1 = static_cast<float>(miny); nb.y2 = static_cast<float>(maxy);
    // A target whose centre left the image is dropped; an ignored region keeps what stays in it
    // (as crop() keeps it): the anchors on that part stay out of the class loss.
    if (!nb.ignore && !centre_inside(nb, full)) continue;
    if (!clip_box_to_image(nb, w, h)) continue;
    kept.push_back(nb);
  }
  s.boxes = std::move(kept);
}

void adjust_lighting(Sample& s, double contrast, double brightness) {
  // p' = (p/255 - 0.5) * c + 0.5 + b  <=>  p' = c p + 255 (0.5 - 0.5 c + b)
  s.image.convertTo(s.image, -1, contrast, 255.0 * (0.5 - 0.5 * contrast + brightness));
}

void zoom_out(Sample& s, int canvas_w, int canvas_h, int left, int top, const cv::Scalar& fill) {
  const int w = s.image.cols, h = s.image.rows;
  if (canvas_w < w + left || canvas_h < h + top || left < 0 || top < 0)
    throw DataError("zoom_out: image does not fit the canvas");
  cv::Mat canvas(canvas_h, canvas_w, s.image.type(), fill);
  s.image.copyTo(canvas(cv::Rect(left, top, w, h)));
  s.image = canvas;
  for (auto& b : s.boxes) {
    b.x1 += left; b.x2 += left;
    b.y1 += top; b.y2 += top;
  }
}

void crop(Sample& s, const cv::Rect& roi) {
  if ((roi & cv::Rect(0, 0, s.image.cols, s.image.rows)) != roi || roi.area() <= 0)
    throw DataError("crop: region outside the image");
  s.image = s.image(roi).clone();
  std::vector<BoxAnnotation> kept;
  kept.reserve(s.boxes.size());
  for (auto b : s.boxes) {
    if (!b.ignore && !centre_inside(b, roi)) continue;   // an ignored region keeps its part
    b.x1 -= roi.x; b.x2 -= roi.x;
    b.y1 -= roi.y; b.y2 -= roi.y;
    if (!clip_box_to_image(b, roi.width, roi.height)) continue;
    kept.push_back(b);
  }
  s.boxes = std::move(kept);
}

bool random_ssd_crop(Sample& s, Rng& rng, double min_side) {
  static const double kMinIou[] = {0.1, 0.3, 0.5, 0.7, 0.9, -1.0};
  const int w = s.image.cols, h = s.image.rows;
  const bool has_targets = std::any_of(s.boxes.begin(), s.boxes.end(),
                                       [](const BoxAnnotation& b) { return !b.ignore; });
  for (int round = 0; round < 8; ++round) {
    const double min_iou = kMinIou[rng.uniform_int(0, 5)];
    for (int trial = 0; trial < 50; ++trial) {
      const int cw = static_cast<int>(std::lround(rng.uniform(min_side, 1.0) * w));
      const int ch = static_cast<int>(std::lround(rng.uniform(min_side, 1.0) * h));
      if (cw < 1 || ch < 1) continue;
      const double ar = static_cast<double>(ch) / cw;
      if (ar < 0.5 || ar > 2.0) continue;
      const int left = static_cast<int>(rng.uniform_int(0, w - cw));
      const int top = static_cast<int>(rng.uniform_int(0, h - ch));
      const cv::Rect roi(left, top, cw, ch);
      if (has_targets) {
        double best = 0.0;
        bool keeps_target = false;
        for (const auto& b : s.boxes) {
          if (b.ignore) continue;
          best = std::max(best, iou(b, roi));
          if (centre_inside(b, roi)) keeps_target = true;
        }
        if (best < min_iou || !keeps_target) continue;
      }
      crop(s, roi);
      return true;
    }
  }
  return false;
}

void squish_resize(Sample& s, int size) {
  const int w = s.image.cols, h = s.image.rows;
  if (size < 1) throw DataError("squish_resize: size must be positive");
  if (w != size || h != size) {
    const int interp = (w >= size && h >= size) ? cv::INTER_AREA : cv::INTER_LINEAR;
    cv::Mat out;
    cv::resize(s.image, out, cv::Size(size, size), 0, 0, interp);
    s.image = out;
  }
  const float sx = static_cast<float>(size) / w, sy = static_cast<float>(size) / h;
  const float fs = static_cast<float>(size);
  for (auto& b : s.boxes) {
    b.x1 = clampf(b.x1 * sx, 0, fs); b.x2 = clampf(b.x2 * sx, 0, fs);
    b.y1 = clampf(b.y1 * sy, 0, fs); b.y2 = clampf(b.y2 * sy, 0, fs);
  }
}

void augment(Sample& s, int size, const AugmentOptions& o, Rng& rng,
             const std::array<float, 3>& mean) {
  const cv::Scalar fill(mean[0] * 255.0, mean[1] * 255.0, mean[2] * 255.0);
  // Draw every random number unconditionally, in a fixed order, so the stream of a sample
  // does not depend on which steps its image happened to take.
  const bool do_light = rng.bernoulli(o.lighting_prob);
  const double contrast = rng.uniform(1.0 - o.contrast, 1.0 + o.contrast);
  const double brightness = rng.uniform(-o.brightness, o.brightness);
  const bool do_zoom = rng.bernoulli(o.zoom_out_prob) && o.max_zoom_out > 1.0;
  const double zoom = rng.uniform(1.0, std::max(1.0, o.max_zoom_out));
  const double zx = rng.uniform(), zy = rng.uniform();
  const bool do_rot = rng.bernoulli(o.rotate_prob) && o.max_rotate_deg > 0.0;
  const double deg = rng.uniform(-o.max_rotate_deg, o.max_rotate_deg);
  const bool do_crop = rng.bernoulli(o.crop_prob);
  const bool do_flip = o.flip && rng.bernoulli(0.5);
  Rng crop_rng(rng.next_u32() | (static_cast<uint64_t>(rng.next_u32()) << 32));

  if (do_light) adjust_lighting(s, contrast, brightness);
  if (do_zoom) {
    const int w = s.image.cols, h = s.image.rows;
    const int cw = static_cast<int>(std::lround(w * zoom)), ch = static_cast<int>(std::lround(h * zoom));
    const int left = static_cast<int>(std::floor(zx * (cw - w + 1)));
    const int top = static_cast<int>(std::floor(zy * (ch - h + 1)));
    zoom_out(s, cw, ch, std::min(left, cw - w), std::min(top, ch - h), fill);
  }
  if (do_rot) {
    std::vector<BoxAnnotation> before = s.boxes;
    cv::Mat before_img = s.image;
    rotate(s, deg, fill);
    // Never rotate every target out of the picture.
    const auto targets = [](const std::vector<BoxAnnotation>& v) {
      return std::count_if(v.begin(), v.end(), [](const BoxAnnotation& b) { return !b.ignore; });
    };
    if (targets(s.boxes) == 0 && targets(before) > 0) {
      s.boxes = std::move(before);
      s.image = before_img;
    }
  }
  if (do_crop) random_ssd_crop(s, crop_rng, o.min_crop_side);
  if (do_flip) hflip(s);
  squish_resize(s, size);
}

void to_chw_normalised(const cv::Mat& rgb, const std::array<float, 3>& mean,
                       const std::array<float, 3>& std, float* out) {
  CV_Assert(rgb.type() == CV_8UC3);
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (v / 255.0f - mean[c]) / std[c];
  const int w = rgb.cols, h = rgb.rows;
  const size_t plane = static_cast<size_t>(w) * h;
  float* r = out;
  float* g = out + plane;
  float* b = out + 2 * plane;
  for (int y = 0; y < h; ++y) {
    const uchar* p = rgb.ptr<uchar>(y);
    const size_t o = static_cast<size_t>(y) * w;
    for (int x = 0; x < w; ++x) {
      r[o + x] = lut[0][p[3 * x]];
      g[o + x] = lut[1][p[3 * x + 1]];
      b[o + x] = lut[2][p[3 * x + 2]];
    }
  }
}

}  // namespace ssdtrain
