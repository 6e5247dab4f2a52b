#include "tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "error.h"

namespace ssd {

std::vector<int> assign_min_cost(const std::vector<std::vector<double>>& cost) {
  const size_t rows = cost.size(), cols = rows ? cost[0].size() : 0;
  std::vector<int> out(rows, -1);
  if (rows == 0 || cols == 0) return out;
  // The Hungarian method (Kuhn-Munkres, potentials, O(n^3)) on the square matrix of side
  // n = max(rows, cols), a pair not allowed (and a padding one) costing more than every allowed
  // pair together: the fewest such pairs first, then the least cost.
  const size_t n = std::max(rows, cols);
  double total = 1;
  for (const auto& row : cost)
    for (const double c : row)
      if (c >= 0) total += c;
  const auto at = [&](size_t i, size_t j) {   // 1-based
    return i <= rows && j <= cols && cost[i - 1][j - 1] >= 0 ? cost[i - 1][j - 1] : total;
  };
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<size_t> p(n + 1, 0), way(n + 1, 0);   // p[j]: the row column j is given (0: none)
  for (size_t i = 1; i <= n; ++i) {
    p[0] = i;
    size_t j0 = 0;
    std::vector<double> minv(n + 1, std::numeric_limits<double>::infinity());
    std::vector<bool> used(n + 1, false);
    do {
      used[j0] = true;
      const size_t i0 = p[j0];
      double delta = std::numeric_limits<double>::infinity();
      size_t j1 = 0;
      for (size_t j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = at(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (size_t j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const size_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  for (size_t j = 1; j <= cols; ++j)
    if (p[j] >= 1 && p[j] <= rows && cost[p[j] - 1][j - 1] >= 0) out[p[j] - 1] = static_cast<int>(j - 1);
  return out;
}

double box_iou(const TrackBox& a, const TrackBox& b) {
  const double iw = std::min(a.x_max, b.x_max) - std::max(a.x_min, b.x_min);
  const double ih = std::min(a.y_max, b.y_max) - std::max(a.y_min, b.y_min);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  const double area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
  const double area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
  return inter / (area_a + area_b - inter);
}

Tracker::Tracker(const TrackerOptions& options, int64_t first_id) : options_(options), next_id_(first_id) {
  if (!(options.iou_threshold > 0 && options.iou_threshold <= 1))
    throw Error("tracker IoU threshold must lie in (0, 1], not " + std::to_string(options.iou_threshold));
  if (options.max_lost < 0) throw Error("tracker max_lost must be >= 0, not " + std::to_string(options.max_lost));
  if (options.min_hits < 1) throw Error("tracker min_hits must be >= 1, not " + std::to_string(options.min_hits));
  if (options.max_id < 1) throw Error("tracker max_id must be >= 1, not " + std::to_string(options.max_id));
  if (first_id < 1 || first_id > options.max_id)
    throw Error("tracker ids start at 1 or above, up to max_id " + std::to_string(options.max_id) + ", not " +
                std::to_string(first_id));
}

int64_t Tracker::new_id() {
  for (size_t tries = 0; tries <= tracks_.size(); ++tries) {
    const int64_t id = next_id_;
    if (next_id_ == options_.max_id) {
      next_id_ = 1;
      wrapped_ = true;
    } else {
      ++next_id_;
    }
    if (!wrapped_ || std::none_of(tracks_.begin(), tracks_.end(), [&](const Track& t) { return t.id == id; }))
      return id;
  }
  throw Error("tracker: every id up to max_id " + std::to_string(options_.max_id) + " is a live track's");
}

TrackBox Tracker::Track::predicted() const {
  const double steps = unseen + 1;   // frames since it was seen, this one included
  TrackBox p = box;
  p.x_min += velocity[0] * steps;
  p.y_min += velocity[1] * steps;
  p.x_max += velocity[2] * steps;
  p.y_max += velocity[3] * steps;
  return p;
}

namespace {

void check_frames(int frames) {
  if (frames < 1) throw Error("tracker: a frame comes at least 1 frame after the previous one, not " + std::to_string(frames));
}

}  // namespace

size_t Tracker::track_at(const TrackBox& box, const std::vector<bool>& taken) const {
  for (size_t t = 0; t < tracks_.size(); ++t) {
    const TrackBox& b = tracks_[t].box;
    // Seen in the last update() (lost 0; a repeat does not count), at this very box.
    if (!taken[t] && tracks_[t].lost == 0 && b.x_min == box.x_min && b.y_min == box.y_min && b.x_max == box.x_max &&
        b.y_max == box.y_max && b.label == box.label)
      return t;
  }
  return tracks_.size();
}

std::vector<int64_t> Tracker::update(const std::vector<TrackBox>& detections, int frames,
                                     const std::vector<bool>& carried) {
  check_frames(frames);
  if (!carried.empty() && carried.size() != detections.size())
    throw Error("tracker: " + std::to_string(carried.size()) + " carried flags for " +
                std::to_string(detections.size()) + " detections");
  // The frames dropped before this one: each prediction moves on through them (a track not seen
  // in this frame counts them as lost, below).
  for (Track& t : tracks_) t.unseen += frames - 1;
  std::vector<int64_t> ids(detections.size(), 0);
  std::vector<bool> taken(detections.size(), false);   // matched (its id may still be 0: min_hits)
  std::vector<bool> track_taken(tracks_.size(), false), repeated(tracks_.size(), false);
  // The repeats keep their tracks' ids (and the tracks their boxes and motion).
  for (size_t d = 0; d < carried.size(); ++d) {
    if (!carried[d]) continue;
    const size_t t = track_at(detections[d], track_taken);
    if (t == tracks_.size()) continue;
    track_taken[t] = repeated[t] = taken[d] = true;
    ids[d] = tracks_[t].id;
  }
  // Every (IoU, track, detection) pair that may match, best first.
  std::vector<std::tuple<double, size_t, size_t>> pairs;
  for (size_t t = 0; t < tracks_.size(); ++t) {
    const TrackBox p = tracks_[t].predicted();
    for (size_t d = 0; d < detections.size(); ++d) {
      if (options_.match_labels && detections[d].label != tracks_[t].box.label) continue;
      const double iou = box_iou(p, detections[d]);
      if (iou >= options_.iou_threshold) pairs.emplace_back(iou, t, d);
    }
  }
  // Ties (e.g. two tracks predicting the same box) go to the older track, then the earlier
  // detection: the result does not depend on the sort's implementation.
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
    if (std::get<1>(a) != std::get<1>(b)) return std::get<1>(a) < std::get<1>(b);
    return std::get<2>(a) < std::get<2>(b);
  });
  const auto match = [&](size_t t, size_t d) {
    track_taken[t] = taken[d] = true;
    Track& track = tracks_[t];
    // The motion since it was last seen, per frame; from the third detection on, smoothed with
    // the previous estimate.
    const double steps = track.unseen + 1;
    const TrackBox& now = detections[d];
    const double moved[4] = {now.x_min - track.box.x_min, now.y_min - track.box.y_min, now.x_max - track.box.x_max,
                             now.y_max - track.box.y_max};
    for (int k = 0; k < 4; ++k)
      track.velocity[k] = track.hits == 1 ? moved[k] / steps : 0.5 * track.velocity[k] + 0.5 * moved[k] / steps;
    track.hits++;
    track.box = now;
    track.lost = 0;
    track.unseen = 0;
    if (track.id == 0 && track.hits >= options_.min_hits) track.id = new_id();   // (its probation over)
    ids[d] = track.id;
  };
  for (const auto& [iou, t, d] : pairs)
    if (!track_taken[t] && !taken[d]) match(t, d);
  // A track seen once has no motion to predict with: an object that moved more than about half
  // its box since (a car at 8 px a frame, 40 px long, behind ssddetect interval=3) overlapped
  // nothing and got a new id at every analysed frame. Such a track, seen in the last analysed
  // frame (one seen once and then missed is most often a false detection: it chained flickers
  // into tracks and handed its id to objects that came near), may take a detection left of
  // its label and size (each side within 2x) whose centre lies within three quarters of the
  // track's size per frame since it was seen (at most 4 frames: 3 sizes): as many such pairs as
  // can be made, the least total distance among those (nearest first, greedily, handed each
  // object of a convoy the id of the one ahead of it). (Half a size per frame broke the tracks of
  // objects faster than that: bench_tracker's crowd_same_fast, 6-14 px a frame for 20-45 px,
  // counted 62% more ids than objects at interval 1, 3.0% with three quarters; bench/RESULTS.md.)
  std::vector<size_t> young, left;
  for (size_t t = 0; t < tracks_.size(); ++t)
    if (!track_taken[t] && tracks_[t].hits == 1 && tracks_[t].lost == 0) young.push_back(t);
  for (size_t d = 0; d < detections.size(); ++d)
    if (!taken[d]) left.push_back(d);
  if (!young.empty() && !left.empty()) {
    std::vector<std::vector<double>> cost(young.size(), std::vector<double>(left.size(), -1));
    for (size_t i = 0; i < young.size(); ++i) {
      const Track& track = tracks_[young[i]];
      const TrackBox& b = track.box;
      const double w = b.x_max - b.x_min, h = b.y_max - b.y_min;
      const double reach = 0.75 * 0.5 * (w + h) * std::min(track.unseen + 1, 4);
      for (size_t j = 0; j < left.size(); ++j) {
        const TrackBox& n = detections[left[j]];
        if (options_.match_labels && n.label != b.label) continue;
        const double nw = n.x_max - n.x_min, nh = n.y_max - n.y_min;
        if (!(nw <= 2 * w && w <= 2 * nw && nh <= 2 * h && h <= 2 * nh)) continue;
        const double dist =
            std::hypot((n.x_min + n.x_max - b.x_min - b.x_max) / 2, (n.y_min + n.y_max - b.y_min - b.y_max) / 2);
        if (dist <= reach) cost[i][j] = dist;
      }
    }
    const std::vector<int> pick = assign_min_cost(cost);
    for (size_t i = 0; i < young.size(); ++i)
      if (pick[i] >= 0) match(young[i], left[static_cast<size_t>(pick[i])]);
  }
  for (size_t t = 0; t < tracks_.size(); ++t) {
    if (repeated[t]) tracks_[t].unseen++;   // (not lost: its detector did not look)
    if (track_taken[t]) continue;
    tracks_[t].lost += frames;   // (the frames dropped before this one too)
    tracks_[t].unseen++;
  }
  drop_lost();
  for (size_t d = 0; d < detections.size(); ++d) {
    if (taken[d]) continue;
    Track t;
    if (options_.min_hits <= 1) t.id = new_id();
    t.box = detections[d];
    tracks_.push_back(t);
    ids[d] = t.id;
  }
  return ids;
}

std::optional<std::vector<int64_t>> Tracker::repeat(const std::vector<TrackBox>& detections, int frames) {
  check_frames(frames);
  std::vector<int64_t> ids;
  std::vector<bool> taken(tracks_.size(), false);
  for (const TrackBox& d : detections) {
    const size_t t = track_at(d, taken);
    if (t == tracks_.size()) return std::nullopt;
    taken[t] = true;
    ids.push_back(tracks_[t].id);
  }
  for (Track& t : tracks_) {
    t.unseen += frames;
    if (t.lost > 0) t.lost += frames;
  }
  drop_lost();
  return ids;
}

void Tracker::drop_lost() {
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(), [&](const Track& t) { return t.lost > options_.max_lost; }),
                tracks_.end());
}

void Tracker::reset() { tracks_.clear(); }

std::vector<int64_t> Tracker::track_ids() const {
  std::vector<int64_t> ids;
  for (const Track& t : tracks_)
    if (t.id != 0) ids.push_back(t.id);
  return ids;
}

}  // namespace ssd
