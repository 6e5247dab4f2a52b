// Tracking benchmark: ssdtrack's tracker (ssd::Tracker) on simulated scenes whose ground truth is
// known, the detector's output stood in for by the true boxes with misses, jitter and false
// detections. How well the ids follow the objects, by the standard measures:
//   bench_tracker [--scenes sparse,crowd_same,...] [--intervals 1,3] [--sequences 20]
//                 [--frames 300] [--detect-prob 0.95] [--jitter 0.04] [--iou-threshold 0.3]
//                 [--max-lost 10] [--min-hits 1] [--mot-dir DIR]
// A scene is drawn anew for each sequence (seeds 0 .. sequences-1): objects of a given size,
// speed and label cross a 640x480 frame in straight lines, entering at a random edge and frame;
// an object is visible while its centre is in the frame. Each frame the detector "analyses"
// (every `interval`-th, as ssddetect's `interval` runs it) detects each visible object with
// probability detect-prob, its box (clipped to the frame) moved by Gaussian noise of sd
// jitter x its size at each side, in random order, plus the scene's false detections (boxes at
// random places, living one frame); the frames in between repeat the last analysed frame's
// boxes, and the tracker is told so (Tracker::repeat, as ssdtrack does for them). The measures
// are taken on the analysed frames, the ground truth of a detection being the object it came
// from (no matching by overlap):
//   objects      objects visible in an analysed frame;
//   ids          distinct ids the tracker gave those objects' detections, and `count error`,
//                (ids - objects) / objects: what counting objects by their ids gets wrong;
//   switches     detections whose id is not the one their object's last detection had (CLEAR
//                MOT's IDSW): `new` those to an id not seen before (the track broke: a
//                fragment), `taken` to an id an earlier detection had (ids swapped or merged);
//   false ids    distinct ids of false detections (a counter must filter these, by track length
//                say);
//   IDF1         2 IDTP / (true boxes + detections), IDTP the detections of the best one-to-one
//                pairing of objects and ids (Ristani et al. 2016);
//   MOTA         1 - (missed + false + switches) / true boxes (Bernardin & Stiefelhagen 2008).
// --mot-dir writes each sequence's ground truth and tracker output in the MOTChallenge format
// (DIR/<scene>-i<interval>-<seed>/gt/gt.txt and .../<same name>.txt: frame, id, left, top, width,
// height, 1, -1, -1, -1; analysed frames only, numbered from 1) and DIR/summary.json with each
// sequence's counts, for bench/tracker_motmetrics.py to score with py-motmetrics.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "error.h"
#include "tracker.h"

namespace {

constexpr double kWidth = 640, kHeight = 480;

struct Object {
  int t0 = 0, t1 = INT_MAX;    // visible in frames [t0, t1) while the centre is in the frame
  double x = 0, y = 0;         // centre at t0
  double vx = 0, vy = 0;       // pixels per frame
  double w = 0, h = 0;
  int64_t label = 0;
};

struct Scene {
  std::vector<Object> objects;
  double false_per_frame = 0;   // mean false detections per analysed frame (Poisson)
  int64_t false_label = -1;     // their label; -1: any of 5
};

class Random {
 public:
  explicit Random(unsigned seed) : rng_(seed) {}
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int integer(int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng_); }
  double normal() { return std::normal_distribution<double>(0, 1)(rng_); }
  int poisson(double mean) { return mean > 0 ? std::poisson_distribution<int>(mean)(rng_) : 0; }
  std::mt19937& engine() { return rng_; }

 private:
  std::mt19937 rng_;
};

// An object entering at a random edge at frame t0, heading across within 35 degrees of straight.
Object crossing(Random& r, double speed_min, double speed_max, double size_min, double size_max,
                int64_t label, int t0) {
  Object o;
  o.t0 = t0;
  o.w = r.uniform(size_min, size_max);
  o.h = o.w * r.uniform(0.75, 1.33);
  o.label = label;
  const double speed = r.uniform(speed_min, speed_max);
  double angle = r.uniform(-0.6, 0.6);
  switch (r.integer(0, 3)) {
    case 0: o.x = -o.w / 2; o.y = r.uniform(0, kHeight); break;
    case 1: o.x = kWidth + o.w / 2; o.y = r.uniform(0, kHeight); angle += M_PI; break;
    case 2: o.x = r.uniform(0, kWidth); o.y = -o.h / 2; angle += M_PI / 2; break;
    default: o.x = r.uniform(0, kWidth); o.y = kHeight + o.h / 2; angle -= M_PI / 2; break;
  }
  o.vx = speed * std::cos(angle);
  o.vy = speed * std::sin(angle);
  return o;
}

// The scenes, in the table's order (the default: all of them).
const std::vector<std::pair<std::string, std::string>> kScenes = {
    {"sparse", "8 objects of 5 labels, 30-60 px, 1-3 px/frame"},
    {"sparse_fast", "8 objects of 5 labels, 30-60 px, 6-12 px/frame"},
    {"sparse_flicker", "sparse_fast and 0.3 false detections a frame, any label"},
    {"crowd", "60 objects of 5 labels, 20-45 px, 1-8 px/frame"},
    {"crowd_same", "60 objects of one label, 20-45 px, 1-8 px/frame"},
    {"crowd_same_fast", "60 objects of one label, 20-45 px, 6-14 px/frame"},
    {"crowd_same_flicker", "crowd_same and 1 false detection a frame, of that label"},
    {"platoon", "6 columns of 6 like objects (25-40 px, one label) 0.3 size apart, 5.4-6.6 px/frame"},
    {"head_on", "16 objects of one label, 25-40 px, in one band from both sides, 3-5 px/frame"},
    {"handover", "10 objects of one label each vanishing, and 2 frames later a like one appearing "
                 "0.3-1 size away, moving elsewhere"},
};

Scene make_scene(const std::string& name, int frames, Random& r) {
  Scene s;
  const auto any_label = [&] { return int64_t(r.integer(0, 4)); };
  const int last_start = std::max(0, frames - 60);
  if (name == "sparse" || name == "sparse_fast" || name == "sparse_flicker") {
    const bool fast = name != "sparse";
    for (int i = 0; i < 8; ++i)
      s.objects.push_back(crossing(r, fast ? 6 : 1, fast ? 12 : 3, 30, 60, any_label(), r.integer(0, last_start)));
    if (name == "sparse_flicker") s.false_per_frame = 0.3;
  } else if (name == "crowd" || name.rfind("crowd_same", 0) == 0) {
    const bool fast = name == "crowd_same_fast";
    for (int i = 0; i < 60; ++i)
      s.objects.push_back(crossing(r, fast ? 6 : 1, fast ? 14 : 8, 20, 45, name == "crowd" ? any_label() : 0,
                                   r.integer(0, std::max(0, frames - 40))));
    if (name == "crowd_same_flicker") {
      s.false_per_frame = 1;
      s.false_label = 0;
    }
  } else if (name == "platoon") {
    for (int g = 0; g < 6; ++g) {
      const double size = r.uniform(25, 40);
      const bool horizontal = r.integer(0, 1);
      const int t0 = r.integer(0, std::max(0, frames - 80));
      const double lane = horizontal ? r.uniform(size, kHeight - size) : r.uniform(size, kWidth - size);
      const int dir = r.integer(0, 1) ? 1 : -1;
      const double speed = 6 * r.uniform(0.9, 1.1);   // a column moves as one (a lane of traffic)
      for (int k = 0; k < 6; ++k) {
        Object o;
        o.w = size * r.uniform(0.95, 1.05);
        o.h = size * r.uniform(0.95, 1.05);
        o.t0 = t0;
        const double behind = -size / 2 - k * size * 1.3;   // entering one after the other
        const double across = lane + r.uniform(-2, 2);
        if (horizontal) {
          o.x = dir > 0 ? behind : kWidth - behind;
          o.y = across;
          o.vx = dir * speed;
        } else {
          o.y = dir > 0 ? behind : kHeight - behind;
          o.x = across;
          o.vy = dir * speed;
        }
        s.objects.push_back(o);
      }
    }
  } else if (name == "head_on") {
    for (int i = 0; i < 16; ++i) {
      Object o;
      o.w = r.uniform(25, 40);
      o.h = o.w * r.uniform(0.9, 1.1);
      o.t0 = r.integer(0, std::max(0, frames - 80));
      const bool rightwards = i % 2;
      o.x = rightwards ? -o.w / 2 : kWidth + o.w / 2;
      o.y = kHeight / 2 + r.uniform(-30, 30);
      o.vx = (rightwards ? 1 : -1) * 4 * r.uniform(0.8, 1.2);
      o.vy = r.uniform(-0.3, 0.3);
      s.objects.push_back(o);
    }
  } else if (name == "handover") {
    // Objects that live a while in mid-frame (an object occluded, or leaving through a door).
    const int gap = 2, life = std::max(1, frames / 20);
    for (int i = 0; i < 10; ++i) {
      Object a;
      a.w = r.uniform(25, 40);
      a.h = a.w * r.uniform(0.9, 1.1);
      a.t0 = i * frames / 10;
      a.t1 = a.t0 + life;
      a.x = r.uniform(100, kWidth - 100);
      a.y = r.uniform(100, kHeight - 100);
      double angle = r.uniform(0, 2 * M_PI), speed = r.uniform(1, 4);
      a.vx = speed * std::cos(angle);
      a.vy = speed * std::sin(angle);
      Object b = a;
      b.t0 = a.t1 + gap;
      b.t1 = b.t0 + life;
      const double end_x = a.x + a.vx * (life - 1), end_y = a.y + a.vy * (life - 1);
      angle = r.uniform(0, 2 * M_PI);
      const double away = r.uniform(0.3, 1.0) * a.w;
      b.x = end_x + away * std::cos(angle);
      b.y = end_y + away * std::sin(angle);
      angle = r.uniform(0, 2 * M_PI);
      speed = r.uniform(1, 4);
      b.vx = speed * std::cos(angle);
      b.vy = speed * std::sin(angle);
      b.w *= r.uniform(0.8, 1.25);
      s.objects.push_back(a);
      s.objects.push_back(b);
    }
  } else {
    throw ssd::Error("unknown scene '" + name + "'");
  }
  return s;
}

struct Counts {
  long objects = 0, true_boxes = 0, detections = 0, missed = 0, false_detections = 0;
  long ids = 0, false_ids = 0, switches = 0, switches_new = 0, idtp = 0;
  Counts& operator+=(const Counts& o) {
    objects += o.objects; true_boxes += o.true_boxes; detections += o.detections; missed += o.missed;
    false_detections += o.false_detections; ids += o.ids; false_ids += o.false_ids; switches += o.switches;
    switches_new += o.switches_new; idtp += o.idtp;
    return *this;
  }
  double count_error() const { return objects ? double(ids - objects) / objects : 0; }
  double idf1() const { return true_boxes + detections ? 2.0 * idtp / double(true_boxes + detections) : 0; }
  double mota() const {
    return true_boxes ? 1 - double(missed + false_detections + switches) / double(true_boxes) : 0;
  }
};

struct Settings {
  int frames = 300;
  double detect_prob = 0.95, jitter = 0.04;
  ssd::TrackerOptions tracker;
};

struct MotWriter {
  std::ofstream gt, result;
  void write(std::ofstream& f, int frame, int64_t id, const ssd::TrackBox& b) {
    f << frame + 1 << ',' << id << ',' << b.x_min << ',' << b.y_min << ',' << b.x_max - b.x_min << ','
      << b.y_max - b.y_min << ",1,-1,-1,-1\n";
  }
};

Counts run_sequence(const std::string& scene_name, int interval, unsigned seed, const Settings& settings,
                    MotWriter* mot) {
  Random r(seed * 7919u + 13u);
  const Scene scene = make_scene(scene_name, settings.frames, r);
  ssd::Tracker tracker(settings.tracker);
  std::vector<ssd::TrackBox> last;
  std::map<int, int64_t> last_id;                  // object -> id of its last detection
  std::set<int64_t> ids_seen;                       // every id given so far
  std::map<std::pair<int, int64_t>, long> pairs;   // (object, id) -> detections
  std::set<int> objects_seen;
  std::set<int64_t> object_ids, false_ids;
  Counts c;
  for (int f = 0; f < settings.frames; ++f) {
    if (f % interval != 0) {
      if (!tracker.repeat(last)) tracker.update(last);
      continue;
    }
    struct Detection {
      ssd::TrackBox box;
      int object;   // -1: a false detection
    };
    std::vector<Detection> dets;
    for (size_t i = 0; i < scene.objects.size(); ++i) {
      const Object& o = scene.objects[i];
      if (f < o.t0 || f >= o.t1) continue;
      const double cx = o.x + o.vx * (f - o.t0), cy = o.y + o.vy * (f - o.t0);
      if (cx < 0 || cy < 0 || cx >= kWidth || cy >= kHeight) continue;   // not visible
      const ssd::TrackBox truth{std::max(0.0, cx - o.w / 2), std::max(0.0, cy - o.h / 2),
                                std::min(kWidth, cx + o.w / 2), std::min(kHeight, cy + o.h / 2), o.label};
      ++c.true_boxes;
      objects_seen.insert(int(i));
      if (mot) mot->write(mot->gt, f, int64_t(i) + 1, truth);
      if (r.uniform(0, 1) > settings.detect_prob) {
        ++c.missed;
        continue;
      }
      const double j = settings.jitter * std::sqrt(o.w * o.h);
      ssd::TrackBox b{cx - o.w / 2 + j * r.normal(), cy - o.h / 2 + j * r.normal(), cx + o.w / 2 + j * r.normal(),
                      cy + o.h / 2 + j * r.normal(), o.label};
      b.x_min = std::max(0.0, b.x_min);
      b.y_min = std::max(0.0, b.y_min);
      b.x_max = std::min(kWidth, b.x_max);
      b.y_max = std::min(kHeight, b.y_max);
      if (b.x_max - b.x_min < 4 || b.y_max - b.y_min < 4) {   // too small for a detector
        ++c.missed;
        continue;
      }
      dets.push_back({b, int(i)});
    }
    for (int k = r.poisson(scene.false_per_frame); k > 0; --k) {
      const double size = r.uniform(20, 45), x = r.uniform(0, kWidth - size), y = r.uniform(0, kHeight - size);
      dets.push_back({{x, y, x + size, y + size * r.uniform(0.8, 1.2),
                       scene.false_label >= 0 ? scene.false_label : int64_t(r.integer(0, 4))},
                      -1});
    }
    std::shuffle(dets.begin(), dets.end(), r.engine());   // a detector's order: by score
    last.clear();
    for (const Detection& d : dets) last.push_back(d.box);
    const std::vector<int64_t> ids = tracker.update(last);
    for (size_t k = 0; k < dets.size(); ++k) {
      const int64_t id = ids[k];
      const int o = dets[k].object;
      if (id == 0) {   // a track on probation (--min-hits): not reported, an object's box missed
        if (o >= 0) ++c.missed;
        continue;
      }
      ++c.detections;
      if (mot) mot->write(mot->result, f, id, dets[k].box);
      if (o < 0) {
        ++c.false_detections;
        false_ids.insert(id);
      } else {
        object_ids.insert(id);
        ++pairs[{o, id}];
        const auto it = last_id.find(o);
        if (it != last_id.end() && it->second != id) {
          ++c.switches;
          if (!ids_seen.count(id)) ++c.switches_new;
        }
        last_id[o] = id;
      }
      ids_seen.insert(id);
    }
  }
  c.objects = long(objects_seen.size());
  c.ids = long(object_ids.size());
  for (const int64_t id : false_ids)
    if (!object_ids.count(id)) ++c.false_ids;
  // IDTP: the best one-to-one pairing of objects and ids by detections shared (every pair allowed,
  // at cost most - shared, so that the least cost over as many pairs as can be is the most shared).
  std::vector<int> rows(objects_seen.begin(), objects_seen.end());
  std::vector<int64_t> cols;
  for (const int64_t id : ids_seen) cols.push_back(id);
  long most = 0;
  for (const auto& [key, n] : pairs) most = std::max(most, n);
  std::vector<std::vector<double>> cost(rows.size(), std::vector<double>(cols.size(), double(most)));
  std::map<int, size_t> row_of;
  std::map<int64_t, size_t> col_of;
  for (size_t i = 0; i < rows.size(); ++i) row_of[rows[i]] = i;
  for (size_t j = 0; j < cols.size(); ++j) col_of[cols[j]] = j;
  for (const auto& [key, n] : pairs) cost[row_of[key.first]][col_of[key.second]] = double(most - n);
  const std::vector<int> pick = ssd::assign_min_cost(cost);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (pick[i] < 0) continue;
    const auto it = pairs.find({rows[i], cols[size_t(pick[i])]});
    if (it != pairs.end()) c.idtp += it->second;
  }
  return c;
}

nlohmann::json to_json(const Counts& c) {
  return {{"objects", c.objects}, {"true_boxes", c.true_boxes}, {"detections", c.detections},
          {"missed", c.missed}, {"false_detections", c.false_detections}, {"ids", c.ids},
          {"false_ids", c.false_ids}, {"switches", c.switches}, {"switches_new", c.switches_new},
          {"idtp", c.idtp}, {"idf1", c.idf1()}, {"mota", c.mota()}};
}

// The table (and with mot_dir the files) for every scene and interval; 0, or 1 where a file
// cannot be written.
int run(const std::vector<std::string>& scenes, const std::vector<int>& intervals, int sequences,
        const Settings& settings, const std::string& mot_dir);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ssdtrack's tracker on simulated scenes with known ground truth"};
  std::string scene_list;
  for (const auto& [name, what] : kScenes) scene_list += (scene_list.empty() ? "" : ",") + name;
  std::vector<std::string> scenes;
  for (const auto& [name, what] : kScenes) scenes.push_back(name);
  std::vector<int> intervals = {1, 3};
  int sequences = 20;
  Settings settings;
  std::string mot_dir;
  bool list = false;
  app.add_option("--scenes", scenes, "scenes, comma separated (--list describes them)")->delimiter(',');
  app.add_flag("--list", list, "describe the scenes and exit");
  app.add_option("--intervals", intervals, "ssddetect intervals: the detector analyses every N-th frame")
      ->delimiter(',')
      ->check(CLI::Range(1, 1000));
  app.add_option("--sequences", sequences, "sequences per scene (seeds 0 ..)")->check(CLI::Range(1, 100000));
  app.add_option("--frames", settings.frames, "frames per sequence")->check(CLI::Range(1, 1000000));
  app.add_option("--detect-prob", settings.detect_prob, "chance a visible object is detected in an analysed frame")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--jitter", settings.jitter, "sd of each box side's noise, as a fraction of the object's size")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--iou-threshold", settings.tracker.iou_threshold, "ssdtrack's iou-threshold")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-lost", settings.tracker.max_lost, "ssdtrack's max-lost")->check(CLI::Range(0, 100000));
  app.add_option("--min-hits", settings.tracker.min_hits,
                 "ssdtrack's min-hits (a track's detections before it has an id are not reported)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--mot-dir", mot_dir, "write MOTChallenge files and summary.json there (for tracker_motmetrics.py)");
  CLI11_PARSE(app, argc, argv);
  if (list) {
    for (const auto& [name, what] : kScenes) std::cout << name << ": " << what << "\n";
    return 0;
  }
  for (const std::string& s : scenes)
    if (std::none_of(kScenes.begin(), kScenes.end(), [&](const auto& k) { return k.first == s; })) {
      std::cerr << "bench_tracker: unknown scene '" << s << "' (scenes: " << scene_list << ")\n";
      return 2;
    }
  try {
    ssd::Tracker check(settings.tracker);   // refuses bad options with their reason
  } catch (const ssd::Error& e) {
    std::cerr << "bench_tracker: " << e.what() << "\n";
    return 2;
  }
  try {
    return run(scenes, intervals, sequences, settings, mot_dir);
  } catch (const std::exception& e) {   // (a --mot-dir that cannot be made, say)
    std::cerr << "bench_tracker: " << e.what() << "\n";
    return 1;
  }
}

namespace {

int run(const std::vector<std::string>& scenes, const std::vector<int>& intervals, int sequences,
        const Settings& settings, const std::string& mot_dir) {
  nlohmann::json summary = nlohmann::json::array();
  if (!mot_dir.empty()) std::filesystem::create_directories(mot_dir);
  std::printf("%-19s %8s %9s %7s %7s %9s %9s %7s %7s %9s %7s %7s\n", "scene", "interval", "sequences",
              "objects", "ids", "count err", "switches", "new", "taken", "false ids", "IDF1", "MOTA");
  for (const std::string& scene : scenes) {
    for (const int interval : intervals) {
      Counts total;
      for (int seed = 0; seed < sequences; ++seed) {
        MotWriter writer;
        const std::string name = scene + "-i" + std::to_string(interval) + "-" + std::to_string(seed);
        if (!mot_dir.empty()) {
          const std::filesystem::path dir = std::filesystem::path(mot_dir) / name;
          std::filesystem::create_directories(dir / "gt");
          writer.gt.open(dir / "gt" / "gt.txt");
          writer.result.open(dir / (name + ".txt"));
          writer.gt.precision(17);
          writer.result.precision(17);
          if (!writer.gt || !writer.result) {
            std::cerr << "bench_tracker: cannot write in " << dir << "\n";
            return 1;
          }
        }
        const Counts c = run_sequence(scene, interval, unsigned(seed), settings, mot_dir.empty() ? nullptr : &writer);
        total += c;
        if (!mot_dir.empty()) {
          nlohmann::json j = to_json(c);
          j["sequence"] = name;
          summary.push_back(j);
        }
      }
      std::printf("%-19s %8d %9d %7ld %7ld %+8.1f%% %9ld %7ld %7ld %9ld %7.4f %7.4f\n", scene.c_str(), interval,
                  sequences, total.objects, total.ids, 100 * total.count_error(), total.switches,
                  total.switches_new, total.switches - total.switches_new, total.false_ids, total.idf1(),
                  total.mota());
      std::fflush(stdout);
    }
  }
  if (!mot_dir.empty()) {
    std::ofstream out(std::filesystem::path(mot_dir) / "summary.json");
    out << summary.dump(1) << "\n";
    if (!out) {
      std::cerr << "bench_tracker: cannot write " << mot_dir << "/summary.json\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
