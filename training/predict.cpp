#include "predict.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "../model/class_filter.h"
#include "../model/detector.h"
#include "../model/error.h"
#include "../model/text.h"
#include "atomic_file.h"
#include "image_file.h"
#include "loader.h"
#include "plots.h"

namespace fs = std::filesystem;

namespace ssdtrain {

namespace {

// The image files to run: each file named, and a folder's image files (those OpenCV has a
// decoder for, by their first bytes; by name), checked before anything is written. A folder's
// other files are left out, those named as images (a GIF, an empty or damaged .jpg) with a
// warning naming them.
std::vector<std::string> input_images(const std::vector<std::string>& named) {
  std::vector<std::string> images;
  for (const auto& p : named) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> in_folder, left_out;
      for (const auto& e : fs::directory_iterator(p, ec)) {
        std::error_code type_ec;
        if (!e.is_regular_file(type_ec)) continue;
        if (cv::haveImageReader(e.path().string())) {
          in_folder.push_back(e.path().string());
          continue;
        }
        const std::string ext = ssd::lower_ascii(e.path().extension().string());
        static const std::set<std::string> image_names{".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif",
                                                       ".tiff", ".webp", ".ppm", ".pgm", ".jp2", ".heic", ".avif"};
        if (image_names.count(ext)) left_out.push_back(e.path().string());
      }
      if (ec) throw ssd::Error(p + ": cannot list the folder: " + ec.message());
      std::sort(left_out.begin(), left_out.end());
      for (const auto& f : left_out)
        std::cerr << "warning: " << ssd::printable(f) << ": left out: OpenCV has no decoder for its contents (empty, damaged, "
                                         "or a format it does not read)\n";
      if (in_folder.empty()) throw ssd::Error(p + ": a folder with no image files in it");
      std::sort(in_folder.begin(), in_folder.end());
      images.insert(images.end(), in_folder.begin(), in_folder.end());
    } else if (!fs::is_regular_file(p, ec)) {
      throw ssd::Error(p + ": no such image file or folder");
    } else if (!cv::haveImageReader(p)) {
      throw ssd::Error(p + ": not an image file (OpenCV has no decoder for it)");
    } else {
      images.push_back(p);
    }
  }
  return images;
}

}  // namespace

std::vector<ImagePrediction> predict_images(const PredictSpec& spec,
                                            const std::function<void(const ImagePrediction&)>& on_image) {
  if (spec.images.empty()) throw ssd::Error("no input images");
  if (spec.out_dir.empty()) throw ssd::Error("no output folder (--out)");
  if (!(spec.threshold >= 0 && spec.threshold <= 1)) throw ssd::Error("--threshold must be in [0, 1]");
  if (!(spec.nms_iou >= 0 && spec.nms_iou <= 1)) throw ssd::Error("--nms must be in [0, 1]");
  if (spec.max_detections < 1 || spec.max_detections > ssd::kMaxDetectionsLimit)
    throw ssd::Error("--max-detections must be in [1, " + std::to_string(ssd::kMaxDetectionsLimit) + "]");
  const std::vector<std::string> images = input_images(spec.images);
  std::set<fs::path> inputs;   // never overwritten (--out may be the images' own folder)
  const fs::path out_dir = fs::weakly_canonical(spec.out_dir);
  bool beside_inputs = false;   // --out is an input's folder: no file of it is overwritten
  for (const auto& p : images) {
    inputs.insert(fs::weakly_canonical(p));
    // The folder the image is named in (a link to an image elsewhere is still in it).
    beside_inputs = beside_inputs || fs::weakly_canonical(fs::absolute(p).parent_path()) == out_dir;
  }
  ssd::DetectorOptions o;
  o.model_path = spec.weights;
  o.device = spec.device;
  o.threshold = spec.threshold;
  o.nms_iou = spec.nms_iou;
  o.class_agnostic_nms = spec.class_agnostic_nms;
  o.max_detections = spec.max_detections;
  o.threads = spec.threads;
  ssd::Detector detector(o);
  // The output stage holds each class to its threshold and drops the classes left out, before
  // it picks the most confident detections (as ssddetect's `classes` and `class-thresholds`).
  const ssd::ClassFilter filter = ssd::parse_class_filter(
      detector.labels(), spec.classes, spec.class_thresholds, "--classes", "--class-thresholds");
  if (!filter.empty())
    detector.set_postprocess(spec.threshold, spec.nms_iou, spec.max_detections,
                             filter.class_thresholds(spec.threshold, detector.labels().size()));
  std::error_code ec;
  fs::create_directories(spec.out_dir, ec);
  if (ec) throw ssd::Error("cannot create " + spec.out_dir + ": " + ec.message());

  std::vector<ImagePrediction> out;
  std::set<std::string> used;
  nlohmann::json all = nlohmann::json::array();
  // File names need not be UTF-8: their bad bytes are written as U+FFFD.
  const auto write_list = [&] {
    write_file_atomic(fs::path(spec.out_dir) / "detections.json",
                      all.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  };
  for (const auto& path : images) {
    cv::Mat bgr;
    try {
      bgr = read_bgr(path);
      if (!bgr.isContinuous()) bgr = bgr.clone();
    } catch (const ssd::Error&) {
      // (A file with an image's first bytes that does not decode.) detections.json lists the
      // images drawn before it, not an earlier run's.
      write_list();
      throw;
    } catch (const cv::Exception& e) {   // (it named no file: "Failed to allocate 3072000000 bytes")
      write_list();
      throw ssd::Error(path + ": " + e.what());
    }
    ssd::FrameView f;
    f.format = ssd::PixelFormat::BGR;
    f.width = bgr.cols;
    f.height = bgr.rows;
    f.planes[0] = bgr.data;
    f.strides[0] = static_cast<int>(bgr.step[0]);
    ImagePrediction p;
    p.image = path;
    const std::vector<ssd::Detection> detections = detector.detect(f);
    for (const auto& d : detections) {
      ScoredBox b;
      b.x1 = d.x_min * bgr.cols;
      b.y1 = d.y_min * bgr.rows;
      b.x2 = d.x_max * bgr.cols;
      b.y2 = d.y_max * bgr.rows;
      b.label = d.label_id;
      b.score = d.confidence;
      p.detections.push_back(b);
    }
    // Output name: the input's stem, made unique; in the images' own folder, beside every file
    // already there (another image of that name, a user's file), not over it.
    std::string stem = fs::path(path).stem().string();
    std::string name = stem + ".png";
    auto taken = [&](const std::string& n) {
      const fs::path candidate = fs::path(spec.out_dir) / n;
      return used.count(n) || inputs.count(fs::weakly_canonical(candidate)) || (beside_inputs && fs::exists(candidate));
    };
    for (int k = 1; taken(name); ++k) name = stem + "_" + std::to_string(k) + ".png";
    used.insert(name);
    p.output = (fs::path(spec.out_dir) / name).string();
    write_image_file(p.output, draw_boxes(bgr, detector.labels(), {}, p.detections), ".png");
    nlohmann::json dets = nlohmann::json::array();
    for (const auto& d : p.detections)
      dets.push_back({{"label", detector.labels().at(d.label)}, {"label_id", d.label},
                      {"score", d.score}, {"box", {d.x1, d.y1, d.x2, d.y2}}});
    all.push_back({{"image", path}, {"output", p.output}, {"width", bgr.cols},
                   {"height", bgr.rows}, {"detections", dets}});
    if (on_image) on_image(p);
    out.push_back(std::move(p));
  }
  write_list();
  return out;
}

}  // namespace ssdtrain
