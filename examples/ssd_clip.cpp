// ssd-clip: the demo's helper around the synthetic shapes renderer (training/synth.h).
//
//   ssd-clip render --out DIR [--width 320 --height 240 --scenes 24 --hold 3 --seed 2024]
//       writes DIR/frames/00000.jpg ... (each scene held for --hold frames) and DIR/truth.json
//       (the ground truth of every frame: label, label_id, corners in pixels, x2/y2 exclusive);
//       the frames of an earlier clip in DIR that the new one does not overwrite are removed
//   ssd-clip score --truth DIR/truth.json --detections detections.jsonl [--iou 0.5]
//       matches ssdexport's JSON Lines against the ground truth (greedy by confidence, same
//       label, IoU > --iou, as VOC's AP) and prints the counts, precision, recall and AP50; a
//       line's frame is its pts (from 0) at truth.json's frame rate (ssdexport's `frame` counts
//       the frames that reached it, which QoS drops upstream would shift), else its `frame`;
//       two lines on one frame are an error (timestamps at another rate); boxes of a line whose
//       frame size (width, height) differs from the clip's are scaled to the clip's
//   ssd-clip sheet --frames DIR --out sheet.png [--count 6 --columns 3]
//       tiles evenly spaced images of DIR (sorted by name) into one contact sheet (PNG; JPEG
//       for a .jpg or .jpeg name)
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "atomic_file.h"
#include "cli_conventions.h"
#include "evaluate.h"
#include "image_file.h"
#include "rng.h"
#include "synth.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RenderArgs {
  std::string out;
  int width = 320, height = 240, scenes = 24, hold = 3;
  std::string fps = "6";   // N, N/D (30000/1001) or a decimal
  uint64_t seed = 2024;
  int min_objects = 1, max_objects = 3;
  std::string format = "jpg";
};

// Whether `name` is a frame render writes: five digits, .jpg or .png.
bool frame_file(const std::string& name) {
  // (or one that a render killed while it wrote the frame left: "00042.png.tmp")
  const bool partial = name.size() == 13 && name.compare(9, 4, ".tmp") == 0;
  return (name.size() == 9 || partial) &&
         std::all_of(name.begin(), name.begin() + 5, [](char c) { return c >= '0' && c <= '9'; }) &&
         (name.compare(5, 4, ".jpg") == 0 || name.compare(5, 4, ".png") == 0);
}

// A frame rate as given: N, N/D (NTSC's 30000/1001, as GStreamer's caps write it) or a decimal.
// Throws std::invalid_argument naming it.
double frame_rate(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789./") != std::string::npos)   // (stod takes " 0x1E", "-30")
    throw std::invalid_argument(text + ": a frame rate in [1, 1000], as N, N/D (30000/1001) or a decimal");
  const auto slash = text.find('/');
  size_t used = 0, used_d = 0;
  double n = 0, d = 1;
  try {
    n = std::stod(text.substr(0, slash), &used);
    if (slash != std::string::npos) d = std::stod(text.substr(slash + 1), &used_d);
  } catch (const std::exception&) {
    used = 0;
  }
  const bool whole = used == text.substr(0, slash).size() &&
                     (slash == std::string::npos || used_d == text.size() - slash - 1);
  const double r = n / d;
  if (!whole || !(r >= 1 && r <= 1000))
    throw std::invalid_argument(text + ": a frame rate in [1, 1000], as N, N/D (30000/1001) or a decimal");
  return r;
}

int render(const RenderArgs& a) {
  if (a.min_objects > a.max_objects) {   // (the renderer's own message named its fields and a bound of 254)
    std::cerr << "ssd-clip: --min-objects (" << a.min_objects << ") must be <= --max-objects (" << a.max_objects << ")\n";
    return 1;
  }
  const fs::path frames = fs::path(a.out) / "frames";
  const fs::path truth_path = fs::path(a.out) / "truth.json";
  fs::create_directories(frames);
  // The folder is to hold exactly the new clip: frames of an earlier one (its truth.json is
  // there) that the new one does not overwrite are removed; frames of nobody's are refused.
  std::vector<fs::path> old_frames;
  for (const auto& e : fs::directory_iterator(frames))
    if (frame_file(e.path().filename().string())) old_frames.push_back(e.path());
  if (!old_frames.empty() && !fs::is_regular_file(truth_path)) {
    std::cerr << "ssd-clip: " << frames.string() << " holds frames such as " << old_frames.front().filename().string()
              << " of no earlier clip (no " << truth_path.string() << "); give an empty folder\n";
    return 1;
  }
  ssdtrain::SynthOptions opt;
  opt.min_objects = a.min_objects;
  opt.max_objects = a.max_objects;
  const auto& labels = ssdtrain::synth_class_names();
  json truth;
  truth["width"] = a.width;
  truth["height"] = a.height;
  truth["framerate"] = frame_rate(a.fps);
  truth["labels"] = labels;
  truth["frames"] = json::array();
  // A truth.json of no frames first: a render interrupted while it writes the frames leaves a
  // folder that is its own (rendered again without complaint) and that score refuses, rather
  // than new frames beside the earlier clip's ground truth.
  ssdtrain::write_file_atomic(truth_path, truth.dump(1) + "\n");
  for (const auto& p : old_frames) fs::remove(p);
  std::vector<int> params;
  if (a.format == "jpg") params = {cv::IMWRITE_JPEG_QUALITY, 95};
  int frame = 0, sparse_scenes = 0;
  for (int scene = 0; scene < a.scenes; ++scene) {
    const ssdtrain::SynthSample s =
        ssdtrain::render_synth_image(a.width, a.height, ssdtrain::derive_seed(a.seed, scene), opt);
    // The renderer gives up placing objects after a number of tries (no room left in a small frame).
    sparse_scenes += static_cast<int>(s.boxes.size()) < a.min_objects;
    json boxes = json::array();
    for (const auto& b : s.boxes) {
      boxes.push_back({{"label", labels.at(b.label)}, {"label_id", b.label},
                       {"x1", b.x1}, {"y1", b.y1}, {"x2", b.x2}, {"y2", b.y2}});
    }
    for (int k = 0; k < a.hold; ++k, ++frame) {
      char name[32];
      std::snprintf(name, sizeof name, "%05d.%s", frame, a.format.c_str());
      const fs::path p = frames / name;
      ssdtrain::write_image_file(p, s.image, "." + a.format, params);
      // (Relative to truth.json's folder, as a COCO file names its images: the --out path as
      // given was relative to the folder render ran in.)
      truth["frames"].push_back({{"frame", frame}, {"scene", scene}, {"file", "frames/" + std::string(name)}, {"boxes", boxes}});
    }
  }
  ssdtrain::write_file_atomic(truth_path, truth.dump(1) + "\n");
  std::cout << "ssd-clip: " << frame << " frames (" << a.scenes << " scenes) of " << a.width << "x" << a.height
            << " in " << frames.string() << ", ground truth in " << truth_path.string() << "\n";
  if (sparse_scenes)
    std::cerr << "ssd-clip: warning: " << sparse_scenes << " of " << a.scenes << " scenes hold fewer than --min-objects "
              << a.min_objects << " objects: no room was found for more in " << a.width << "x" << a.height
              << " frames\n";
  return 0;
}

double iou(const ssdtrain::ScoredBox& d, const ssdtrain::BoxAnnotation& g) {
  const double iw = std::min(d.x2, g.x2) - std::max(d.x1, g.x1);
  const double ih = std::min(d.y2, g.y2) - std::max(d.y1, g.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  const double uni = (d.x2 - d.x1) * (d.y2 - d.y1) + (g.x2 - g.x1) * (g.y2 - g.y1) - inter;
  return uni > 0 ? inter / uni : 0;
}

int score(const std::string& truth_path, const std::string& det_path, double iou_min) {
  for (const std::string& p : {truth_path, det_path}) {
    if (fs::is_directory(p)) {   // (an ifstream opens one, and reads it as empty)
      std::cerr << "ssd-clip: " << p << " is a directory, not a file\n";
      return 1;
    }
  }
  json truth;
  {
    std::ifstream in(truth_path);
    if (!in) {
      std::cerr << "ssd-clip: cannot read " << truth_path << "\n";
      return 1;
    }
    // (Malformed, or lacking what render writes: named, as both inputs are JSON; a bare
    // nlohmann message said neither which file nor that it is the ground truth.)
    try {
      in >> truth;
      if (!truth.is_object()) throw std::runtime_error("not a JSON object");
      for (const char* key : {"width", "height", "framerate", "labels", "frames"})
        if (!truth.contains(key)) throw std::runtime_error(std::string("no '") + key + "'");
      if (!truth.at("framerate").is_number() || !(truth.at("framerate").get<double>() > 0))
        throw std::runtime_error("framerate " + truth.at("framerate").dump() + " is not a positive number");
      if (!truth.at("frames").is_array() || !truth.at("labels").is_array())
        throw std::runtime_error("'frames' and 'labels' must be arrays");
    } catch (const std::exception& e) {
      std::cerr << "ssd-clip: " << truth_path << ": not a ground truth that render writes: " << e.what() << "\n";
      return 1;
    }
  }
  if (truth.at("frames").empty()) {
    std::cerr << "ssd-clip: " << truth_path << " lists no frames: its render was interrupted? (render it again)\n";
    return 1;
  }
  const std::vector<std::string> labels = truth.at("labels").get<std::vector<std::string>>();
  std::map<std::string, int> label_index;
  for (size_t i = 0; i < labels.size(); ++i) label_index[labels[i]] = static_cast<int>(i);

  // Detections by frame number: the pts at the clip's frame rate, else ssdexport's count.
  const double fps = truth.at("framerate").get<double>();
  // A line's boxes are in the pixels of the frame it was analysed in (its width and height):
  // scaled to the clip's size where the pipeline resized the frames.
  const int truth_w = truth.at("width").get<int>(), truth_h = truth.at("height").get<int>();
  int scaled_lines = 0;
  std::set<std::pair<int, int>> scaled_sizes;
  std::map<int64_t, std::vector<ssdtrain::ScoredBox>> dets;
  int unknown_labels = 0, line_number = 0;
  std::map<int64_t, int> unranked_in;   // per frame: detections without a confidence
  {
    std::ifstream in(det_path);
    if (!in) {
      std::cerr << "ssd-clip: cannot read " << det_path << "\n";
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      ++line_number;
      if (line.empty()) continue;
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {   // e.g. the last line of a pipeline killed mid-write
        std::cerr << "ssd-clip: " << det_path << ":" << line_number << ": not a JSON object\n";
        return 1;
      }
      // A field of the wrong type or out of range names the line too (nlohmann's messages do not).
      const auto bad_line = [&](const std::string& why) {
        std::cerr << "ssd-clip: " << det_path << ":" << line_number << ": " << why << "\n";
        return 1;
      };
      try {
        const int64_t counted = j.at("frame").get<int64_t>();
        // The frame's position in the stream (ssdexport's stream_time: its pts in the segment's
        // terms, from 0 also after an MP4 round trip, whose pts start at the decoding delay),
        // else its pts (lines of older ssdexports), else the count.
        const char* time_key = j.contains("stream_time") && j.at("stream_time").is_number() ? "stream_time" : "pts";
        const bool timed = j.contains(time_key) && j.at(time_key).is_number();
        const double pts = timed ? j.at(time_key).get<double>() : 0;
        if (!(std::fabs(pts) < 1e18)) return bad_line(std::string(time_key) + " " + j.at(time_key).dump() + " out of range");
        const int64_t frame = timed ? std::llround(pts * fps / 1e9) : counted;
        // Frames can only be missing before a line (dropped upstream): two lines on one frame, or
        // a line before its count, mean timestamps at another rate or from another origin.
        if (dets.count(frame) || frame < counted) {
          std::cerr << "ssd-clip: " << det_path << ":" << line_number << ": its " << time_key << " falls on frame " << frame
                    << (frame < counted ? " before its count " + std::to_string(counted) : ", as an earlier line's")
                    << " at truth.json's " << fps << " fps: does the pipeline run at that rate (render --fps), with "
                    << "timestamps from 0?\n";
          return 1;
        }
        const double line_wd = j.contains("width") ? j.at("width").get<double>() : truth_w;
        const double line_hd = j.contains("height") ? j.at("height").get<double>() : truth_h;
        if (!(line_wd >= 1 && line_wd <= 1 << 20 && line_hd >= 1 && line_hd <= 1 << 20))
          return bad_line("frame size " + j.value("width", json(truth_w)).dump() + "x" + j.value("height", json(truth_h)).dump());
        const int line_w = static_cast<int>(line_wd), line_h = static_cast<int>(line_hd);
        const float sx = static_cast<float>(truth_w) / line_w, sy = static_cast<float>(truth_h) / line_h;
        if (line_w != truth_w || line_h != truth_h) {
          ++scaled_lines;
          scaled_sizes.insert({line_w, line_h});
        }
        auto& v = dets[frame];
        for (const auto& d : j.at("detections")) {
          auto it = label_index.find(d.at("label").get<std::string>());
          if (it == label_index.end()) {
            ++unknown_labels;
            continue;
          }
          const auto& b = d.at("box");
          ssdtrain::ScoredBox s;
          s.x1 = b.at("x").get<float>() * sx;
          s.y1 = b.at("y").get<float>() * sy;
          s.x2 = s.x1 + b.at("w").get<float>() * sx;
          s.y2 = s.y1 + b.at("h").get<float>() * sy;
          s.label = it->second;
          // (No confidence: a converter between ssddetect and ssdexport dropped the detection's
          // structure. Matched in the order read; no AP, which ranks by it.)
          s.score = d.at("confidence").is_number() ? d.at("confidence").get<float>() : 0.0f;
          unranked_in[frame] += !d.at("confidence").is_number();
          v.push_back(s);
        }
      } catch (const json::exception& e) {
        return bad_line(e.what());
      }
    }
  }

  ssdtrain::MapEvaluator evaluator(labels);
  const int nc = static_cast<int>(labels.size());
  std::vector<int> tp(nc, 0), fp(nc, 0), fn(nc, 0);
  int frames = 0, frames_missing = 0, unranked = 0;
  std::set<int64_t> truth_frames;
  for (const auto& f : truth.at("frames")) {
    const int64_t id = f.at("frame").get<int64_t>();
    truth_frames.insert(id);
    std::vector<ssdtrain::BoxAnnotation> gts;
    for (const auto& b : f.at("boxes")) {
      ssdtrain::BoxAnnotation g;
      g.x1 = b.at("x1").get<float>();
      g.y1 = b.at("y1").get<float>();
      g.x2 = b.at("x2").get<float>();
      g.y2 = b.at("y2").get<float>();
      g.label = b.at("label_id").get<int>();
      gts.push_back(g);
    }
    unranked += unranked_in.count(id) ? unranked_in[id] : 0;   // (of the frames scored only)
    auto it = dets.find(id);
    std::vector<ssdtrain::ScoredBox> d = it == dets.end() ? std::vector<ssdtrain::ScoredBox>{} : it->second;
    if (it == dets.end()) ++frames_missing;
    ++frames;
    evaluator.add_image(id, gts, d);
    // Greedy matching: most confident detection first, to the best unmatched truth.
    std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
    std::vector<bool> used(gts.size(), false);
    for (const auto& det : d) {
      int best = -1;
      double best_iou = iou_min;
      for (size_t g = 0; g < gts.size(); ++g) {
        if (used[g] || gts[g].label != det.label) continue;
        const double v = iou(det, gts[g]);
        if (v > best_iou) {
          best_iou = v;
          best = static_cast<int>(g);
        }
      }
      if (best >= 0) {
        used[best] = true;
        ++tp[det.label];
      } else {
        ++fp[det.label];
      }
    }
    for (size_t g = 0; g < gts.size(); ++g)
      if (!used[g]) ++fn[gts[g].label];
  }
  int TP = 0, FP = 0, FN = 0;
  std::printf("%-10s %6s %6s %6s %6s %9s %7s\n", "class", "truth", "found", "TP", "FP", "precision", "recall");
  for (int c = 0; c < nc; ++c) {
    TP += tp[c];
    FP += fp[c];
    FN += fn[c];
    const int gt = tp[c] + fn[c], found = tp[c] + fp[c];
    std::printf("%-10s %6d %6d %6d %6d %9.3f %7.3f\n", labels[c].c_str(), gt, found, tp[c], fp[c],
                found ? double(tp[c]) / found : 0.0, gt ? double(tp[c]) / gt : 0.0);
  }
  const int GT = TP + FN, FOUND = TP + FP;
  std::printf("%-10s %6d %6d %6d %6d %9.3f %7.3f\n", "all", GT, FOUND, TP, FP, FOUND ? double(TP) / FOUND : 0.0,
              GT ? double(TP) / GT : 0.0);
  const ssdtrain::MapResult map = evaluator.compute();
  int frames_unknown = 0;
  for (const auto& [frame, v] : dets) frames_unknown += truth_frames.count(frame) == 0;
  std::printf("frames: %d (%d without an ssdexport line); objects in truth: %d, detections: %d, matched at IoU>%.2f: %d\n",
              frames, frames_missing, GT, FOUND, iou_min, TP);
  if (frames_unknown) std::printf("ssdexport lines of frames the truth does not have (not scored): %d\n", frames_unknown);
  if (unranked)
    std::printf("AP50: not computed: %d of %d detections have no confidence to rank them by (an element between "
                "ssddetect and ssdexport that converts or scales the frames drops it)\n",
                unranked, FOUND);
  else
    std::printf("AP50 (VOC all-point, mean over classes): %.3f\n", map.map50_voc);
  if (unknown_labels) std::printf("detections with a label the truth does not know: %d\n", unknown_labels);
  if (scaled_lines) {
    std::string sizes;
    for (const auto& [w, h] : scaled_sizes) sizes += (sizes.empty() ? "" : ", ") + std::to_string(w) + "x" + std::to_string(h);
    std::printf("lines of frames analysed at another size (%s), boxes scaled to the clip's %dx%d: %d\n", sizes.c_str(),
                truth_w, truth_h, scaled_lines);
  }
  return 0;
}

int sheet(const std::string& dir, const std::string& out, int count, int columns) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".png" || ext == ".jpeg")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "ssd-clip: no images in " << dir << "\n";
    return 1;
  }
  count = std::max(1, std::min<int>(count, static_cast<int>(files.size())));
  columns = std::max(1, std::min(columns, count));
  std::vector<cv::Mat> tiles;
  for (int i = 0; i < count; ++i) {
    // Evenly spaced, centred in each stretch of the clip.
    const size_t idx = (files.size() * (2 * i + 1)) / (2 * count);
    cv::Mat img = cv::imread(files[idx].string(), cv::IMREAD_COLOR);
    if (img.empty()) {
      std::cerr << "ssd-clip: cannot read " << files[idx] << "\n";
      return 1;
    }
    if (!tiles.empty() && img.size() != tiles[0].size()) cv::resize(img, img, tiles[0].size());
    cv::putText(img, files[idx].stem().string(), {4, img.rows - 6}, cv::FONT_HERSHEY_SIMPLEX, 0.4,
                cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
    tiles.push_back(img);
  }
  const int rows = (count + columns - 1) / columns, gap = 4;
  const cv::Size t = tiles[0].size();
  cv::Mat canvas(rows * t.height + (rows + 1) * gap, columns * t.width + (columns + 1) * gap, CV_8UC3,
                 cv::Scalar(32, 32, 32));
  for (int i = 0; i < count; ++i) {
    const int r = i / columns, c = i % columns;
    tiles[i].copyTo(canvas(cv::Rect(gap + c * (t.width + gap), gap + r * (t.height + gap), t.width, t.height)));
  }
  // (By the name: a PNG in a file named .jpg puzzled the viewers that go by it.)
  std::string ext = fs::path(out).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  ssdtrain::write_image_file(out, canvas, ext == ".jpg" || ext == ".jpeg" ? ".jpg" : ".png");
  std::cout << "ssd-clip: contact sheet of " << count << " frames in " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Synthetic clip, scoring and contact sheet for the gst-ssd demo"};
  app.require_subcommand(1);

  RenderArgs ra;
  auto* r = app.add_subcommand("render", "Render a synthetic shapes clip with ground truth");
  const CLI::Validator not_empty = ssdtrain::not_empty_path(), seed_value = ssdtrain::seed_value();
  r->add_option("--out", ra.out, "Output directory")->required()->check(not_empty);
  r->add_option("--width", ra.width, "Frame width")->capture_default_str()->check(CLI::Range(32, 8192));
  r->add_option("--height", ra.height, "Frame height")->capture_default_str()->check(CLI::Range(32, 8192));
  r->add_option("--scenes", ra.scenes, "Number of different scenes")->capture_default_str()->check(CLI::Range(1, 100000));
  r->add_option("--hold", ra.hold, "Frames per scene")->capture_default_str()->check(CLI::Range(1, 1000));
  r->add_option("--fps", ra.fps, "Frame rate recorded in truth.json: N, N/D (30000/1001) or a decimal, in [1, 1000]")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) {
            try {
              frame_rate(v);
              return std::string();
            } catch (const std::invalid_argument& e) {
              return std::string(e.what());
            }
          },
          "RATE"));
  r->add_option("--seed", ra.seed, "Random seed")->capture_default_str()->check(seed_value);
  r->add_option("--min-objects", ra.min_objects, "Fewest objects per scene (fewer, with a warning, where a small frame has no room)")
      ->capture_default_str()->check(CLI::Range(1, 20));
  r->add_option("--max-objects", ra.max_objects, "Most objects per scene, at least --min-objects")
      ->capture_default_str()->check(CLI::Range(1, 20));
  r->add_option("--format", ra.format, "Image format")->capture_default_str()->check(CLI::IsMember({"jpg", "png"}));

  std::string truth, detections;
  double iou_min = 0.5;
  auto* s = app.add_subcommand("score", "Score ssdexport JSON Lines against the ground truth");
  s->add_option("--truth", truth, "truth.json written by render")->required()->check(not_empty);
  s->add_option("--detections", detections, "JSON Lines written by ssdexport")->required()->check(not_empty);
  s->add_option("--iou", iou_min, "IoU above which a detection matches")->capture_default_str()->check(CLI::Range(0.0, 1.0));

  std::string frames_dir, sheet_out;
  int count = 6, columns = 3;
  auto* c = app.add_subcommand("sheet", "Tile evenly spaced frames into a PNG contact sheet");
  c->add_option("--frames", frames_dir, "Directory of images")->required()->check(not_empty);
  c->add_option("--out", sheet_out, "Output image: PNG, or JPEG for a .jpg or .jpeg name")->required()->check(not_empty);
  c->add_option("--count", count, "Number of frames")->capture_default_str()->check(CLI::Range(1, 100));
  c->add_option("--columns", columns, "Columns")->capture_default_str()->check(CLI::Range(1, 100));

  ssdtrain::take_last_values(app);
  if (const int status = ssdtrain::unknown_command_status(app, argc, argv, "ssd-clip")) return status;
  CLI11_PARSE(app, argc, argv);
  try {
    if (r->parsed()) return render(ra);
    if (s->parsed()) return score(truth, detections, iou_min);
    if (c->parsed()) return sheet(frames_dir, sheet_out, count, columns);
  } catch (const std::exception& e) {
    std::cerr << "ssd-clip: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
