#include "plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "../model/error.h"
#include "caption.h"

namespace ssdtrain {

namespace {

std::string format_tick(double v, double step, bool log_axis) {
  char buf[32];
  if (log_axis) {
    std::snprintf(buf, sizeof buf, "%.0e", v);
    return buf;
  }
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3)) {
    std::snprintf(buf, sizeof buf, "%.1e", v);
    return buf;
  }
  int decimals = 0;
  if (step > 0) decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 6), v);
  return buf;
}

const cv::Scalar kMarker(40, 40, 200);   // vertical markers and their labels (BGR)

// Text (class names in any script: caption.h's Pango where the build has it, else OpenCV's
// Hershey font, which drew every byte of a non-ASCII name as '?'), at a size given as Hershey's
// scale (its pixel size as ssdoverlay's font-scale gives it), at most `max_width` pixels wide
// (ellipsized beyond). One renderer per thread that draws.
const gstssd::Caption& caption(const std::string& text, double scale, int max_width) {
  thread_local gstssd::CaptionRenderer renderer;
  return renderer.render(text, std::max(1, static_cast<int>(std::lround(scale * gstssd::kPixelsPerFontScale))),
                         max_width);
}

// `org`: the start of the text's baseline, as cv::putText takes it. An 8-bit image of any
// channel count.
void put_text(cv::Mat& img, const std::string& text, cv::Point org, double scale, const cv::Scalar& color,
              int max_width = std::numeric_limits<int>::max()) {
  const gstssd::Caption& c = caption(text, scale, max_width);
  if (c.coverage.empty() || img.depth() != CV_8U) return;
  const cv::Rect at(org.x, org.y - c.baseline, c.coverage.cols, c.coverage.rows);
  const cv::Rect in = at & cv::Rect(0, 0, img.cols, img.rows);
  const int channels = img.channels();
  for (int y = in.y; y < in.y + in.height; ++y) {
    const uint8_t* cover = c.coverage.ptr<uint8_t>(y - at.y) + (in.x - at.x);
    uint8_t* px = img.ptr<uint8_t>(y) + in.x * channels;
    for (int x = 0; x < in.width; ++x, px += channels) {
      const double a = cover[x] / 255.0;
      for (int k = 0; k < channels && k < 4; ++k)
        px[k] = cv::saturate_cast<uint8_t>(px[k] * (1 - a) + color[k] * a);
    }
  }
}

// Its width and its height above the baseline (as cv::getTextSize gives them).
cv::Size text_size(const std::string& text, double scale) {
  const gstssd::Caption& c = caption(text, scale, std::numeric_limits<int>::max());
  return {c.coverage.cols, c.baseline};
}

void dashed_rect(cv::Mat& img, cv::Point a, cv::Point b, const cv::Scalar& color) {
  const int dash = 6;
  auto seg = [&](cv::Point p, cv::Point q) {
    const double len = std::hypot(q.x - p.x, q.y - p.y);
    for (double s = 0; s < len; s += 2 * dash) {
      const double e = std::min(len, s + dash);
      cv::Point u(p.x + int((q.x - p.x) * s / len), p.y + int((q.y - p.y) * s / len));
      cv::Point v(p.x + int((q.x - p.x) * e / len), p.y + int((q.y - p.y) * e / len));
      cv::line(img, u, v, color, 1, cv::LINE_AA);
    }
  };
  seg(a, {b.x, a.y});
  seg({b.x, a.y}, b);
  seg(b, {a.x, b.y});
  seg({a.x, b.y}, a);
}

void label_box(cv::Mat& img, const std::string& text, cv::Point corner, const cv::Scalar& color) {
  const double scale = 0.4;
  const cv::Size ts = text_size(text, scale);
  int y = corner.y - 2;
  if (y - ts.height < 0) y = corner.y + ts.height + 2;
  const int x = std::clamp(corner.x, 0, std::max(0, img.cols - ts.width - 2));
  cv::rectangle(img, {x, y - ts.height - 2}, {x + ts.width + 2, y + 2}, color, cv::FILLED);
  put_text(img, text, {x + 1, y}, scale, cv::Scalar(255, 255, 255));
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo || target < 1) return ticks;
  // A range within rounding of its values (precisions of 1 and 1 - 1e-16 on a perfect PR curve)
  // is one value: steps that small would not move a tick (this loop once never ended).
  if (hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (int i = 0; i <= 2 * target + 2; ++i) {   // (at most target + 1 of them)
    const double v = first + i * step;
    if (v > hi + step * 1e-9) break;
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

cv::Mat render_line_plot(const LinePlot& plot) {
  const int W = std::max(200, plot.width), H = std::max(150, plot.height);
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 80, right = 20, top = 40, bottom = 55;
  const cv::Rect area(left, top, W - left - right, H - top - bottom);

  auto tx = [&](double x) { return plot.log_x ? std::log10(x) : x; };
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  for (const auto& s : plot.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (plot.log_x && s.x[i] <= 0) continue;
      xmin = std::min(xmin, tx(s.x[i]));
      xmax = std::max(xmax, tx(s.x[i]));
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  const bool have_data = std::isfinite(xmin);
  if (!have_data) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
  // (A range within rounding of its values is one value: nice_ticks.)
  auto one_value = [](double lo, double hi) { return hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi)); };
  if (one_value(xmin, xmax)) { xmin -= 0.5; xmax += 0.5; }
  if (std::isfinite(plot.y_top) && plot.y_top > ymin) ymax = std::min(ymax, plot.y_top);
  if (one_value(ymin, ymax)) { ymin -= 0.5; ymax += 0.5; }
  const double ypad = (ymax - ymin) * 0.05;
  ymin -= ypad;
  ymax += ypad;
  // Pixel positions of values far outside the axes (a diverging loss above y_top) are clamped in
  // double before rounding, so that they stay far outside (and lines towards them are clipped)
  // instead of wrapping around into the plot.
  auto to_pixel = [](double v) { return int(std::lround(std::clamp(v, -1e6, 1e6))); };
  auto px = [&](double x) { return area.x + to_pixel((tx(x) - xmin) / (xmax - xmin) * area.width); };
  auto py = [&](double y) { return area.y + area.height - to_pixel((y - ymin) / (ymax - ymin) * area.height); };

  // Grid and ticks.
  const cv::Scalar grid(225, 225, 225), axis(60, 60, 60);
  const std::vector<double> yt = nice_ticks(ymin, ymax);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : yt) {
    const int y = py(v);
    cv::line(img, {area.x, y}, {area.x + area.width, y}, grid, 1);
    const std::string s = format_tick(v, ystep, false);
    const cv::Size ts = text_size(s, 0.4);
    put_text(img, s, {area.x - ts.width - 6, y + ts.height / 2}, 0.4, axis);
  }
  std::vector<double> xt;
  if (plot.log_x) {
    for (double e = std::ceil(xmin - 1e-9); e <= xmax + 1e-9; e += 1) xt.push_back(std::pow(10.0, e));
  } else {
    xt = nice_ticks(xmin, xmax, 8);
  }
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double v : xt) {
    const int x = px(v);
    cv::line(img, {x, area.y}, {x, area.y + area.height}, grid, 1);
    const std::string s = format_tick(v, xstep, plot.log_x);
    const cv::Size ts = text_size(s, 0.4);
    put_text(img, s, {x - ts.width / 2, area.y + area.height + ts.height + 6}, 0.4, axis);
  }
  cv::rectangle(img, area, axis, 1);

  // A marker's column, or -1 when it is not drawn (not finite, or outside the x range).
  auto marker_x = [&](double v) {
    if (!std::isfinite(v) || (plot.log_x && v <= 0)) return -1;
    const int x = px(v);
    return x < area.x || x > area.x + area.width ? -1 : x;
  };
  for (double v : plot.vlines) {
    const int x = marker_x(v);
    if (x < 0) continue;
    for (int y = area.y; y < area.y + area.height; y += 8)
      cv::line(img, {x, y}, {x, std::min(y + 4, area.y + area.height)}, kMarker, 1);
  }

  // Series.
  cv::Mat clip = img(area);
  for (const auto& s : plot.series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (plot.log_x && s.x[i] <= 0) continue;
      pts.push_back({px(s.x[i]) - area.x, py(s.y[i]) - area.y});
    }
    if (pts.size() > 1) cv::polylines(clip, pts, false, s.color, 2, cv::LINE_AA);
    if (s.markers || pts.size() == 1)
      for (const auto& p : pts) cv::circle(clip, p, 3, s.color, cv::FILLED, cv::LINE_AA);
  }

  // The markers' labels, one below the other so that lines close together keep theirs apart.
  for (size_t k = 0; k < std::min(plot.vlines.size(), plot.vline_labels.size()); ++k) {
    const int x = marker_x(plot.vlines[k]);
    if (x < 0 || plot.vline_labels[k].empty()) continue;
    const cv::Size ts = text_size(plot.vline_labels[k], 0.4);
    const int lx = x + ts.width + 6 <= area.x + area.width ? x + 4 : x - ts.width - 4;
    const cv::Point at(lx, area.y + 14 + 16 * static_cast<int>(k));
    cv::rectangle(img, {at.x - 1, at.y - ts.height - 2}, {at.x + ts.width + 1, at.y + 3},
                  cv::Scalar(255, 255, 255), cv::FILLED);
    put_text(img, plot.vline_labels[k], at, 0.4, kMarker);
  }

  // Labels, title, legend.
  {
    const cv::Size ts = text_size(plot.title, 0.6);
    put_text(img, plot.title, {(W - ts.width) / 2, 26}, 0.6, cv::Scalar(0, 0, 0));
  }
  {
    const cv::Size ts = text_size(plot.x_label, 0.45);
    put_text(img, plot.x_label, {area.x + (area.width - ts.width) / 2, H - 10}, 0.45, axis);
  }
  if (!plot.y_label.empty()) {
    const cv::Size ts = text_size(plot.y_label, 0.45);
    cv::Mat lab(ts.height + 8, ts.width + 4, CV_8UC3, cv::Scalar(255, 255, 255));
    put_text(lab, plot.y_label, {2, ts.height + 2}, 0.45, axis);
    cv::Mat rot;
    cv::rotate(lab, rot, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int y0 = std::max(0, area.y + (area.height - rot.rows) / 2);
    if (rot.rows + y0 <= H && rot.cols + 4 <= W) rot.copyTo(img(cv::Rect(4, y0, rot.cols, rot.rows)));
  }
  int named = 0, widest = 0;
  for (const auto& s : plot.series)
    if (!s.name.empty()) ++named, widest = std::max(widest, text_size(s.name, 0.45).width);
  int ly = plot.legend_bottom_left ? area.y + area.height - 18 * named + 4 : area.y + 16;
  for (const auto& s : plot.series) {
    if (s.name.empty()) continue;
    const cv::Size ts = text_size(s.name, 0.45);
    const int lx = plot.legend_bottom_left ? area.x + 16 : area.x + area.width - ts.width - 40;
    if (plot.legend_bottom_left)   // on a white box: curves may run beneath it
      cv::rectangle(img, {lx - 4, ly - 14}, {lx + 34 + widest, ly + 5}, cv::Scalar(255, 255, 255), cv::FILLED);
    cv::line(img, {lx, ly - 4}, {lx + 24, ly - 4}, s.color, 2, cv::LINE_AA);
    put_text(img, s.name, {lx + 30, ly}, 0.45, cv::Scalar(0, 0, 0));
    ly += 18;
  }
  if (!have_data) put_text(img, "no data", {area.x + 10, area.y + 40}, 0.5, axis);
  return img;
}

cv::Mat render_pr_curves(const MapResult& map) {
  LinePlot plot;
  plot.title = "precision-recall at IoU 0.5 (COCO interpolation), AP50 per class";
  plot.x_label = "recall";
  plot.y_label = "precision";
  plot.y_top = 1.0;
  plot.legend_bottom_left = true;   // good curves keep the top right
  for (size_t k = 0; k < map.classes.size(); ++k) {
    const ClassAp& c = map.classes[k];
    if (!c.valid) continue;
    char name[128];
    std::snprintf(name, sizeof name, "%s %.3f", c.name.c_str(), c.ap50_coco);
    Series s{name, {}, {}, class_color(static_cast<int>(k)), false};
    for (size_t i = 0; i < c.pr50.size(); ++i) {
      s.x.push_back(i / 100.0);
      s.y.push_back(c.pr50[i]);
    }
    plot.series.push_back(std::move(s));
  }
  return render_line_plot(plot);
}

cv::Mat render_confusion(const MapResult& map) {
  const int n = static_cast<int>(map.confusion.size());
  std::vector<std::string> names;
  for (const auto& c : map.classes) names.push_back(c.name);
  names.push_back("none");
  // Cells shrink with many classes so that the image stays about 2,400 pixels wide at most (a
  // data set of hundreds of classes would otherwise take gigabytes); counts are written in
  // cells of 40 pixels or more, class names beside rows of 14 or more.
  const int cell = std::clamp(2400 / std::max(n, 1), 2, 56);
  const bool numbers = cell >= 40, row_names = cell >= 14;
  int label_w = 60;
  if (row_names)
    for (const auto& s : names) label_w = std::max(label_w, text_size(s, 0.45).width + 16);
  const int top = 70, left = label_w + 24;
  cv::Mat img(top + n * cell + 60, left + n * cell + 20, CV_8UC3, cv::Scalar(255, 255, 255));
  char title[128];
  std::snprintf(title, sizeof title, "confusion at confidence > %.2f, IoU >= 0.5", map.confusion_threshold);
  put_text(img, title, {10, 24}, 0.6, cv::Scalar(0, 0, 0));
  put_text(img, "true \\ detected", {left - label_w + 4, top - 8}, 0.45, cv::Scalar(60, 60, 60));
  for (int i = 0; i < n; ++i) {
    int row_total = 0;
    for (int v : map.confusion[i]) row_total += v;
    if (row_names)
      put_text(img, names[i], {left - label_w + 4, top + i * cell + cell / 2 + 5}, 0.45, cv::Scalar(0, 0, 0));
    for (int j = 0; j < n; ++j) {
      const cv::Rect r(left + j * cell, top + i * cell, cell - 1, cell - 1);
      const double share = row_total > 0 ? static_cast<double>(map.confusion[i][j]) / row_total : 0;
      // White to blue by share of the row (the diagonal: found and named right).
      const cv::Scalar shade(255, 255 - 175 * share, 255 - 215 * share);
      cv::rectangle(img, r, (i == n - 1 && j == n - 1) ? cv::Scalar(235, 235, 235) : shade, cv::FILLED);
      if ((i == n - 1 && j == n - 1) || !numbers) continue;
      const std::string v = std::to_string(map.confusion[i][j]);
      const cv::Size ts = text_size(v, 0.45);
      put_text(img, v, {r.x + (cell - ts.width) / 2, r.y + cell / 2 + 5}, 0.45,
               share > 0.55 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0));
    }
    // Column names below the grid, shortened to the cell (they were cut by bytes, in the middle
    // of a character).
    if (!row_names) continue;
    put_text(img, names[i], {left + i * cell + 2, top + n * cell + 18}, 0.4, cv::Scalar(0, 0, 0), cell - 4);
  }
  return img;
}

cv::Scalar class_color(int label) {
  static const cv::Scalar palette[] = {
      {75, 25, 230}, {75, 180, 60}, {25, 225, 255}, {200, 130, 0}, {48, 130, 245},
      {180, 30, 145}, {240, 240, 70}, {230, 50, 240}, {60, 245, 210}, {190, 190, 250},
      {128, 128, 0}, {255, 190, 230}, {40, 110, 170}, {200, 250, 255}, {0, 0, 128},
      {195, 255, 170}, {0, 128, 128}, {180, 215, 255}, {128, 0, 0}, {128, 128, 128}};
  const int n = sizeof(palette) / sizeof(palette[0]);
  return palette[((label % n) + n) % n];
}

cv::Mat draw_boxes(const cv::Mat& image, const std::vector<std::string>& labels,
                   const std::vector<BoxAnnotation>& ground_truth,
                   const std::vector<ScoredBox>& detections) {
  cv::Mat out = image.clone();
  auto name = [&](int l) {
    return (l >= 0 && l < static_cast<int>(labels.size())) ? labels[l] : std::to_string(l);
  };
  for (const auto& g : ground_truth) {
    const cv::Point a(int(std::lround(g.x1)), int(std::lround(g.y1)));
    const cv::Point b(int(std::lround(g.x2)) - 1, int(std::lround(g.y2)) - 1);
    if (g.ignore) {
      dashed_rect(out, a, b, cv::Scalar(160, 160, 160));
      continue;
    }
    cv::rectangle(out, a, b, class_color(g.label), 1, cv::LINE_AA);
    label_box(out, name(g.label), a, class_color(g.label));
  }
  for (const auto& d : detections) {
    const cv::Point a(int(std::lround(d.x1)), int(std::lround(d.y1)));
    const cv::Point b(int(std::lround(d.x2)) - 1, int(std::lround(d.y2)) - 1);
    cv::rectangle(out, a, b, class_color(d.label), 2, cv::LINE_AA);
    char buf[16];
    std::snprintf(buf, sizeof buf, " %.2f", d.score);
    label_box(out, name(d.label) + buf, a, class_color(d.label));
  }
  return out;
}

cv::Mat make_pair_grid(const std::vector<cv::Mat>& left, const std::vector<cv::Mat>& right,
                       int columns, int panel, const std::string& left_title,
                       const std::string& right_title) {
  const size_t n = std::min(left.size(), right.size());
  columns = std::max(1, columns);
  panel = std::max(32, panel);
  const int title_h = 20, gap = 6;
  const int cell_w = 2 * panel + gap, cell_h = panel + title_h;
  const int rows = n == 0 ? 1 : static_cast<int>((n + columns - 1) / columns);
  const int cols = n == 0 ? 1 : std::min<int>(columns, static_cast<int>(n));
  cv::Mat grid(rows * (cell_h + gap) + gap, cols * (cell_w + 3 * gap) + gap, CV_8UC3,
               cv::Scalar(255, 255, 255));
  auto place = [&](const cv::Mat& img, int x, int y, const std::string& title) {
    if (img.empty()) return;
    const double s = double(panel) / std::max(img.cols, img.rows);
    cv::Mat r;
    cv::resize(img, r, cv::Size(std::max(1, int(img.cols * s)), std::max(1, int(img.rows * s))),
               0, 0, cv::INTER_AREA);
    if (r.type() != CV_8UC3) {
      cv::Mat c;
      if (r.channels() == 1) cv::cvtColor(r, c, cv::COLOR_GRAY2BGR); else r.convertTo(c, CV_8UC3);
      r = c;
    }
    r.copyTo(grid(cv::Rect(x, y + title_h, r.cols, r.rows)));
    put_text(grid, title, {x, y + 14}, 0.45, cv::Scalar(40, 40, 40));
  };
  for (size_t i = 0; i < n; ++i) {
    const int cx = gap + static_cast<int>(i % columns) * (cell_w + 3 * gap);
    const int cy = gap + static_cast<int>(i / columns) * (cell_h + gap);
    place(left[i], cx, cy, left_title);
    place(right[i], cx + panel + gap, cy, right_title);
  }
  return grid;
}

}  // namespace ssdtrain
