#include "synth.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "../model/bounded_json.h"
#include "../model/error.h"
#include "coco.h"
#include "image_file.h"
#include "rng.h"

namespace fs = std::filesystem;

namespace ssdtrain {

namespace {

enum Shape { kEllipse = 0, kRectangle, kTriangle, kStar, kCross, kNumShapes };
enum class Background { kTextured = 0, kFlat = 1, kGradient = 2 };

constexpr double kPi = 3.14159265358979323846;

cv::Vec3b random_colour(Rng& rng) {
  return cv::Vec3b(static_cast<uchar>(rng.uniform_int(0, 255)),
                   static_cast<uchar>(rng.uniform_int(0, 255)),
                   static_cast<uchar>(rng.uniform_int(0, 255)));
}

int colour_distance(const cv::Vec3b& a, const cv::Scalar& b) {
  return static_cast<int>(std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]));
}

// Shape outline in local coordinates (unit-ish, centred at 0), before scaling/rotation.
std::vector<cv::Point2d> local_outline(int shape, Rng& rng) {
  std::vector<cv::Point2d> p;
  switch (shape) {
    case kEllipse:
      for (int k = 0; k < 72; ++k) {
        const double a = 2 * kPi * k / 72;
        p.emplace_back(0.5 * std::cos(a), 0.5 * std::sin(a));
      }
      break;
    case kRectangle:
      p = {{-0.5, -0.5}, {0.5, -0.5}, {0.5, 0.5}, {-0.5, 0.5}};
      break;
    case kTriangle: {
      const double apex = rng.uniform(-0.3, 0.3);  // apex offset: isoceles to scalene
      p = {{apex, -0.5}, {0.5, 0.5}, {-0.5, 0.5}};
      break;
    }
    case kStar: {
      const double inner = rng.uniform(0.38, 0.5);
      for (int k = 0; k < 10; ++k) {
        const double a = -kPi / 2 + kPi * k / 5;
        const double r = (k % 2 == 0) ? 0.5 : 0.5 * inner;
        p.emplace_back(r * std::cos(a), r * std::sin(a));
      }
      break;
    }
    case kCross: {
      const double t = rng.uniform(0.15, 0.2);  // half arm thickness
      p = {{-t, -0.5}, {t, -0.5}, {t, -t}, {0.5, -t}, {0.5, t}, {t, t},
           {t, 0.5},   {-t, 0.5}, {-t, t}, {-0.5, t}, {-0.5, -t}, {-t, -t}};
      break;
    }
  }
  return p;
}

void check_options(int width, int height, const SynthOptions& o) {
  auto bad = [](const std::string& what) { throw DataError("synth options: " + what); };
  if (width < 32 || height < 32 || width > 8192 || height > 8192)
    bad("image size " + std::to_string(width) + "x" + std::to_string(height) +
        " outside 32..8192");
  if (o.min_objects < 1 || o.max_objects < o.min_objects || o.max_objects > 254)
    bad("need 1 <= min_objects <= max_objects <= 254");
  if (!(o.min_size >= 0.02) || !(o.max_size >= o.min_size) || !(o.max_size <= 1.0))
    bad("need 0.02 <= min_size <= max_size <= 1");
  if (!(o.max_aspect >= 1.0) || !(o.max_aspect <= 10.0)) bad("need 1 <= max_aspect <= 10");
  if (!(o.max_occlusion >= 0.0) || !(o.max_occlusion < 1.0)) bad("need 0 <= max_occlusion < 1");
  if (!(o.noise >= 0.0) || !(o.noise <= 128.0)) bad("need 0 <= noise <= 128");
  if (!std::isfinite(o.max_rotation_deg)) bad("max_rotation_deg is not finite");
  if (!(o.empty_fraction >= 0.0) || !(o.empty_fraction <= 1.0)) bad("need 0 <= empty_fraction <= 1");
}

void draw_gradient(cv::Mat& img, Rng& rng) {
  // Linear gradient between two colours along a random direction.
  const int w = img.cols, h = img.rows;
  const cv::Vec3b c0 = random_colour(rng), c1 = random_colour(rng);
  const double ang = rng.uniform(0, 2 * kPi);
  const double dx = std::cos(ang), dy = std::sin(ang);
  const double span = std::abs(dx) * w + std::abs(dy) * h;
  const double off = std::min(0.0, dx * w) + std::min(0.0, dy * h);
  for (int y = 0; y < h; ++y) {
    cv::Vec3b* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      const double t = (dx * x + dy * y - off) / span;
      for (int c = 0; c < 3; ++c)
        row[x][c] = cv::saturate_cast<uchar>(c0[c] + t * (c1[c] - c0[c]));
    }
  }
}

void draw_background(cv::Mat& img, Rng& rng, const SynthOptions& o) {
  const int w = img.cols, h = img.rows;
  if (!o.textured_background) {
    img.setTo(cv::Scalar(random_colour(rng)));
    return;
  }
  draw_gradient(img, rng);
  // Low-frequency colour blotches: a small random grid, upsampled smoothly, blended in.
  const int gw = static_cast<int>(rng.uniform_int(3, 6)), gh = static_cast<int>(rng.uniform_int(3, 6));
  cv::Mat grid(gh, gw, CV_8UC3);
  for (int y = 0; y < gh; ++y)
    for (int x = 0; x < gw; ++x) grid.at<cv::Vec3b>(y, x) = random_colour(rng);
  cv::Mat blotch;
  cv::resize(grid, blotch, img.size(), 0, 0, cv::INTER_CUBIC);
  const double a = rng.uniform(0.25, 0.6);
  cv::addWeighted(img, 1.0 - a, blotch, a, 0.0, img);
  // Blurred spots of other colours (no crisp edges, so not confused with the shapes).
  const int side = std::min(w, h);
  cv::Mat spots = img.clone();
  const int nspots = static_cast<int>(rng.uniform_int(2, 6));
  for (int i = 0; i < nspots; ++i) {
    const cv::Point c(static_cast<int>(rng.uniform_int(0, w - 1)), static_cast<int>(rng.uniform_int(0, h - 1)));
    const int r = std::max(2, static_cast<int>(side * rng.uniform(0.03, 0.12)));
    cv::circle(spots, c, r, cv::Scalar(random_colour(rng)), cv::FILLED, cv::LINE_8);
  }
  int k = std::max(3, side / 16) | 1;
  cv::GaussianBlur(spots, img, cv::Size(k, k), 0);
  // Random thin lines and arcs of other colours.
  const int nlines = static_cast<int>(rng.uniform_int(2, 7));
  for (int i = 0; i < nlines; ++i) {
    const cv::Point p0(static_cast<int>(rng.uniform_int(-w / 4, w + w / 4)),
                       static_cast<int>(rng.uniform_int(-h / 4, h + h / 4)));
    const cv::Point p1(static_cast<int>(rng.uniform_int(-w / 4, w + w / 4)),
                       static_cast<int>(rng.uniform_int(-h / 4, h + h / 4)));
    const int thick = static_cast<int>(rng.uniform_int(1, std::max(1, side / 100)));
    cv::line(img, p0, p1, cv::Scalar(random_colour(rng)), thick, cv::LINE_8);
  }
}

void add_noise(cv::Mat& img, Rng& rng, double amplitude) {
  if (amplitude <= 0) return;
  // Triangular noise in (-amplitude, amplitude): the sum of two uniform bytes, re-centred.
  const double scale = amplitude / 255.0;
  for (int y = 0; y < img.rows; ++y) {
    uchar* row = img.ptr<uchar>(y);
    const int n = img.cols * 3;
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng.next_u32();
      const int tri = static_cast<int>(r & 0xFF) + static_cast<int>((r >> 8) & 0xFF) - 255;
      row[i] = cv::saturate_cast<uchar>(row[i] + tri * scale);
    }
  }
}

}  // namespace

const std::vector<std::string>& synth_class_names() {
  static const std::vector<std::string> names = {"ellipse", "rectangle", "triangle", "star",
                                                 "cross"};
  return names;
}

SynthSample render_synth_image(int width, int height, uint64_t seed, const SynthOptions& o) {
  check_options(width, height, o);
  Rng rng(seed);
  SynthSample s;
  s.image.create(height, width, CV_8UC3);
  s.owner = cv::Mat::zeros(height, width, CV_8U);
  // With negatives (empty_fraction > 0) plain backgrounds occur with objects too, so that a
  // plain background is no cue for "nothing here": a negative takes the textured, a flat or a
  // gradient background evenly, an image with objects a flat one a third of the time and a
  // gradient one a sixth. Without, nothing more is drawn from the seed (the sets made before keep
  // their pixels).
  bool empty = false;
  Background background = Background::kTextured;
  double noise = o.noise;
  if (o.empty_fraction > 0) {
    empty = rng.uniform(0, 1) < o.empty_fraction;
    const int64_t kind = rng.uniform_int(0, 5);   // negatives: 0-1, 2-3, 4-5; others: 0-2, 3-4, 5
    background = empty ? static_cast<Background>(kind / 2)
                       : kind < 3 ? Background::kTextured : kind < 5 ? Background::kFlat : Background::kGradient;
    noise = rng.uniform(0, o.noise);
  }
  switch (background) {
    case Background::kTextured:
      draw_background(s.image, rng, o);
      break;
    case Background::kFlat: {
      cv::Vec3b c = random_colour(rng);
      if (rng.uniform_int(0, 2) == 0) {   // a grey: black, white or between
        const int64_t k = rng.uniform_int(0, 3);
        c[0] = c[1] = c[2] = k == 0 ? 0 : k == 1 ? 255 : c[0];
      }
      s.image.setTo(cv::Scalar(c));
      break;
    }
    case Background::kGradient:
      draw_gradient(s.image, rng);
  }
  if (empty) {
    add_noise(s.image, rng, noise);
    return s;
  }

  const int side = std::min(width, height);
  const int n_target = static_cast<int>(rng.uniform_int(o.min_objects, o.max_objects));
  std::vector<int> labels;
  std::vector<int> full_area;  // pixels each object had when drawn
  cv::Mat mask(height, width, CV_8U);
  constexpr int kShift = 4;  // sub-pixel polygon vertices (1/16 px)
  for (int obj = 0, attempts = 0; obj < n_target && attempts < 40 * n_target; ++attempts) {
    const int shape = static_cast<int>(rng.uniform_int(0, kNumShapes - 1));
    std::vector<cv::Point2d> pts = local_outline(shape, rng);
    const double size = side * rng.uniform(o.min_size, o.max_size);
    const double aspect = std::exp(rng.uniform(-std::log(o.max_aspect), std::log(o.max_aspect)));
    const double sx = aspect >= 1 ? size : size * aspect, sy = aspect >= 1 ? size / aspect : size;
    // (With negatives a quarter of the shapes stand upright: a plain scene's objects often do.)
    const bool upright = o.empty_fraction > 0 && rng.uniform(0, 1) < 0.25;
    const double rot = upright ? 0.0 : rng.uniform(-o.max_rotation_deg, o.max_rotation_deg) * kPi / 180.0;
    const double cr = std::cos(rot), sr = std::sin(rot);
    double minx = 1e9, maxx = -1e9, miny = 1e9, maxy = -1e9;
    for (auto& p : pts) {
      const double x = p.x * sx, y = p.y * sy;
      p = {x * cr - y * sr, x * sr + y * cr};
      minx = std::min(minx, p.x); maxx = std::max(maxx, p.x);
      miny = std::min(miny, p.y); maxy = std::max(maxy, p.y);
    }
    // Centre so that the whole shape lies inside the image (1 px margin).
    const double cx_lo = 1 - minx, cx_hi = width - 2 - maxx;
    const double cy_lo = 1 - miny, cy_hi = height - 2 - maxy;
    if (cx_hi < cx_lo || cy_hi < cy_lo) continue;
    const double cx = rng.uniform(cx_lo, cx_hi), cy = rng.uniform(cy_lo, cy_hi);
    std::vector<cv::Point> poly;
    poly.reserve(pts.size());
    for (const auto& p : pts)
      poly.emplace_back(static_cast<int>(std::lround((p.x + cx) * (1 << kShift))),
                        static_cast<int>(std::lround((p.y + cy) * (1 << kShift))));
    mask.setTo(0);
    cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255), cv::LINE_8,
                 kShift);
    const int area = cv::countNonZero(mask);
    if (area < 16) continue;
    // Occlusion limit: earlier objects keep at least (1 - max_occlusion) of their pixels.
    bool ok = true;
    std::vector<int> covered(labels.size(), 0);
    for (int y = 0; y < height; ++y) {
      const uchar* m = mask.ptr<uchar>(y);
      const uchar* ow = s.owner.ptr<uchar>(y);
      for (int x = 0; x < width; ++x)
        if (m[x] && ow[x]) ++covered[ow[x] - 1];
    }
    for (size_t j = 0; j < labels.size() && ok; ++j) {
      const int visible = cv::countNonZero(s.owner == static_cast<int>(j + 1));
      if (visible - covered[j] < (1.0 - o.max_occlusion) * full_area[j]) ok = false;
    }
    if (!ok) continue;
    // Colour: far from the background under the shape and from shapes it overlaps.
    const cv::Scalar under = cv::mean(s.image, mask);
    cv::Vec3b colour;
    for (int t = 0; t < 30; ++t) {
      colour = random_colour(rng);
      if (colour_distance(colour, under) < 150) continue;
      bool far = true;
      for (int y = 0; y < height && far; ++y) {
        const uchar* m = mask.ptr<uchar>(y);
        const uchar* ow = s.owner.ptr<uchar>(y);
        const cv::Vec3b* px = s.image.ptr<cv::Vec3b>(y);
        for (int x = 0; x < width; ++x)
          if (m[x] && ow[x] && colour_distance(colour, cv::Scalar(px[x])) < 120) { far = false; break; }
      }
      if (far) break;
    }
    s.image.setTo(cv::Scalar(colour), mask);
    s.owner.setTo(cv::Scalar(static_cast<double>(labels.size() + 1)), mask);
    labels.push_back(shape);
    full_area.push_back(area);
    ++obj;
  }
  add_noise(s.image, rng, noise);

  for (size_t j = 0; j < labels.size(); ++j) {
    const cv::Rect r = cv::boundingRect(s.owner == static_cast<int>(j + 1));
    BoxAnnotation b;
    b.x1 = static_cast<float>(r.x);
    b.y1 = static_cast<float>(r.y);
    b.x2 = static_cast<float>(r.x + r.width);
    b.y2 = static_cast<float>(r.y + r.height);
    b.label = labels[j];
    s.boxes.push_back(b);
  }
  return s;
}

void lock_synth_folder(const fs::path& images, bool exclusive) {
  static std::mutex mu;
  static std::map<fs::path, int> held;   // folder -> its open descriptor (never closed)
  std::lock_guard<std::mutex> guard(mu);
  const fs::path key = fs::weakly_canonical(images);
  auto it = held.find(key);
  if (it == held.end()) {
    const int fd = ::open(images.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw ssd::Error("cannot open " + images.string() + ": " + std::strerror(errno));
    it = held.emplace(key, fd).first;
  }
  if (::flock(it->second, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 || errno != EWOULDBLOCK)
    return;   // (ENOLCK, EINVAL...: a file system without locks goes unlocked)
  throw ssd::Error(images.parent_path().string() + " holds a synthetic set that another ssd-train running now " +
                   (exclusive ? "uses; writing another set there would change its images under it"
                              : "is writing") +
                   ": give another --synth-dir, or wait for it to end");
}

Dataset write_synth_dataset(const std::string& dir, const SynthDatasetOptions& opt) {
  if (opt.count < 1) throw DataError("synth: count must be >= 1");
  if (opt.format != "jpg" && opt.format != "png")
    throw DataError("synth: format must be jpg or png, not '" + opt.format + "'");
  if (opt.jpeg_quality < 1 || opt.jpeg_quality > 100) throw DataError("synth: jpeg_quality must be 1..100");
  check_options(opt.width, opt.height, opt.synth);
  const fs::path root = fs::absolute(dir);
  const fs::path img_dir = root / "images";
  std::error_code ec;
  fs::create_directories(img_dir, ec);
  if (ec) throw DataError(img_dir.string() + ": cannot create directory: " + ec.message());
  lock_synth_folder(img_dir, /*exclusive=*/true);   // (ssd-train synth wrote over a running train's set)
  // The folder is to hold exactly the new set: images of an earlier set that ssd-train wrote
  // here (its annotations.json says so) and that the new one does not overwrite are removed;
  // an annotations.json or any image of the new set's names that is not such a set's is a
  // DataError (nothing of the user's is overwritten or deleted).
  bool earlier_set = false;
  const fs::path annotations = root / "annotations.json";
  {
    std::ifstream f(annotations);
    try {
      const nlohmann::json j = ssd::parse_bounded_json(f, annotations.string());
      earlier_set = j.is_object() && j.contains("info") && j["info"].is_object() &&
                    j["info"].value("description", "") == kCocoWriterDescription;
    } catch (const std::exception&) {   // (none, malformed or too deep: not such a set's)
    }
  }
  if (!earlier_set && fs::exists(annotations))
    throw DataError(annotations.string() + ": is not a synthetic set's that ssd-train wrote; give an empty folder");
  std::vector<fs::path> in_the_way, stale;
  for (const auto& e : fs::directory_iterator(img_dir, ec)) {
    const std::string n = e.path().filename().string();
    // (NNNNNN.png.tmp: an image being written when a run was interrupted; write_image_file's.)
    const bool partial = n.size() == 14 && n.compare(10, 4, ".tmp") == 0;
    const bool image = (n.size() == 10 || partial) &&
                       std::all_of(n.begin(), n.begin() + 6, [](char c) { return c >= '0' && c <= '9'; }) &&
                       (n.compare(6, 4, ".jpg") == 0 || n.compare(6, 4, ".png") == 0);
    if (!image) continue;
    in_the_way.push_back(e.path());
    if (partial || std::stoi(n.substr(0, 6)) >= opt.count || n.compare(7, 3, opt.format) != 0) stale.push_back(e.path());
  }
  if (!in_the_way.empty() && !earlier_set)
    throw DataError(img_dir.string() + ": holds " + std::to_string(in_the_way.size()) + " image(s) such as " +
                    in_the_way.front().filename().string() +
                    " that the new set would overwrite or leave beside it; give an empty folder");
  for (const auto& p : stale) fs::remove(p, ec);

  Dataset ds;
  ds.labels = synth_class_names();
  // An annotations.json of no images first: a run interrupted while writing the images leaves a
  // folder this function recognises as its own and writes again.
  write_coco(ds, annotations.string(), img_dir.string());
  std::vector<int> params;
  if (opt.format == "jpg") params = {cv::IMWRITE_JPEG_QUALITY, opt.jpeg_quality};
  else params = {cv::IMWRITE_PNG_COMPRESSION, 6};
  for (int i = 0; i < opt.count; ++i) {
    SynthSample s = render_synth_image(opt.width, opt.height, derive_seed(opt.seed, static_cast<uint64_t>(i)), opt.synth);
    char name[32];
    std::snprintf(name, sizeof name, "%06d.%s", i, opt.format.c_str());
    const fs::path p = img_dir / name;
    write_image_file(p, s.image, "." + opt.format, params);
    ImageRecord rec;
    rec.path = p.string();
    rec.width = opt.width;
    rec.height = opt.height;
    rec.id = i + 1;
    rec.boxes = std::move(s.boxes);
    ds.images.push_back(std::move(rec));
  }
  write_coco(ds, (root / "annotations.json").string(), img_dir.string());
  return ds;   // (the lock stays exclusive: the caller shares it once the set is complete)
}

}  // namespace ssdtrain
