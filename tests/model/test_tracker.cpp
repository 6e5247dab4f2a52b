// The IoU tracker (model/tracker.h): ids that follow objects, predicted motion, lost tracks,
// labels, and an end-to-end cross-check against a brute-force id assignment.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "error.h"
#include "test_util.h"
#include "tracker.h"

using namespace ssd;

namespace {

TrackBox box(double x, double y, double w, double h, int64_t label = 0) { return {x, y, x + w, y + h, label}; }

}  // namespace

TEST(Tracker, BoxIou) {
  EXPECT_DOUBLE_EQ(box_iou(box(0, 0, 10, 10), box(0, 0, 10, 10)), 1.0);
  EXPECT_DOUBLE_EQ(box_iou(box(0, 0, 10, 10), box(5, 0, 10, 10)), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(box_iou(box(0, 0, 10, 10), box(10, 0, 10, 10)), 0.0);   // touching
  EXPECT_DOUBLE_EQ(box_iou(box(0, 0, 0, 10), box(0, 0, 0, 10)), 0.0);     // empty
}

// Two objects moving in opposite directions keep their ids; a third that appears later gets
// the next one.
TEST(Tracker, ObjectsKeepTheirIdsAndNewOnesGetNewIds) {
  Tracker tr;
  std::vector<int64_t> first;
  for (int f = 0; f < 30; ++f) {
    std::vector<TrackBox> dets = {box(10 + 4 * f, 50, 40, 40, 1), box(300 - 3 * f, 200, 30, 60, 2)};
    if (f >= 10) dets.push_back(box(500, 20 + f, 20, 20, 1));
    const auto ids = tr.update(dets);
    ASSERT_EQ(ids.size(), dets.size());
    if (f == 0) first = ids;
    EXPECT_EQ(ids[0], 1) << "frame " << f;
    EXPECT_EQ(ids[1], 2) << "frame " << f;
    if (f >= 10) {
      EXPECT_EQ(ids[2], 3) << "frame " << f;
    }
  }
  EXPECT_EQ(first, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(tr.tracks(), 3u);
  EXPECT_EQ(tr.track_ids(), (std::vector<int64_t>{1, 2, 3}));
}

// An object that speeds up until it moves almost its own width per frame: from one frame to the
// next its boxes barely overlap (IoU 0.05 at the end), but the predicted box finds it in every
// frame. Without the motion (a tracker that sees only the last two frames) it cannot match.
TEST(Tracker, PredictionFollowsFastObjects) {
  Tracker tr;
  std::vector<int64_t> ids;
  const double xs[] = {0, 8, 18, 30, 44, 60, 78};   // steps of 8, 10, ..., 18 px; 20 px wide
  for (double x : xs) ids.push_back(tr.update({box(x, 0, 20, 20)})[0]);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[0]) << "frame " << i;
  EXPECT_EQ(tr.tracks(), 1u);
  EXPECT_LT(box_iou(box(60, 0, 20, 20), box(78, 0, 20, 20)), 0.3);
  Tracker cold;
  const auto a = cold.update({box(60, 0, 20, 20)})[0];
  const auto b = cold.update({box(78, 0, 20, 20)})[0];
  EXPECT_NE(a, b);
}

// A new object has no motion yet: one that moves more than about half its box between analysed
// frames (a 40 px car at 8 px a frame, behind ssddetect interval=3: 24 px) overlapped nothing
// and got a new id at every analysed frame. A track seen once takes the nearest detection of its
// label and size within 3/4 of its size per frame; two new objects moving apart keep their own
// ids; one of another size or label, or too far, is a new object.
TEST(Tracker, NewTracksFollowFastObjectsBetweenAnalysedFrames) {
  Tracker tr;
  std::vector<int64_t> ids;
  for (int f = 0; f < 8; ++f) ids.push_back(tr.update({box(10 + 24.0 * f, 50, 40, 30)}, f == 0 ? 1 : 3)[0]);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[0]) << "analysed frame " << i;
  EXPECT_EQ(tr.tracks(), 1u);
  EXPECT_LT(box_iou(box(10, 50, 40, 30), box(34, 50, 40, 30)), 0.3);   // (what IoU alone saw)

  Tracker apart;
  const auto first = apart.update({box(100, 100, 40, 40), box(150, 100, 40, 40)});
  const auto second = apart.update({box(170, 100, 40, 40), box(80, 100, 40, 40)}, 3);   // (listed the other way)
  EXPECT_EQ(second, (std::vector<int64_t>{first[1], first[0]}));

  Tracker others;
  const int64_t a = others.update({box(100, 100, 40, 40, 1)})[0];
  const auto next = others.update({box(70, 70, 100, 100, 1),   // the same centre, 2.5x the size
                                   box(120, 100, 40, 40, 2),   // another label
                                   box(191, 100, 40, 40, 1)},  // 91 px away: beyond 0.75 x 40 x 3
                                  3);
  for (const int64_t id : next) EXPECT_NE(id, a);
  // Each side within 2x: a box 2.5x as tall (or as wide) only is another object too (a car's
  // track taking a pedestrian's box), here 80 px away, within the reach of 90.
  for (const TrackBox& other : {box(100, 150, 40, 100, 1), box(150, 100, 100, 40, 1)}) {
    Tracker one;
    const int64_t c = one.update({box(100, 100, 40, 40, 1)})[0];
    EXPECT_NE(one.update({other}, 3)[0], c) << other.x_max - other.x_min << "x" << other.y_max - other.y_min;
  }
  // The reach stops growing at 4 frames (3 sizes): after 7 frames dropped, a box 150 px away
  // (beyond 0.75 x 40 x 4 = 120) is another object, one 115 px away the same.
  for (const double dx : {115.0, 150.0}) {
    Tracker gap;
    const int64_t c = gap.update({box(100, 100, 40, 40, 1)})[0];
    const int64_t next_id = gap.update({box(100 + dx, 100, 40, 40, 1)}, 8)[0];
    if (dx < 120) EXPECT_EQ(next_id, c) << dx << " px";
    else EXPECT_NE(next_id, c) << dx << " px";
  }
  Tracker far;
  const int64_t b = far.update({box(100, 100, 40, 40, 1)})[0];
  EXPECT_EQ(far.update({box(189, 100, 40, 40, 1)}, 3)[0], b);   // 89 px: within

  // A track seen once and then missed (most often a false detection) takes nothing: two flickers
  // 45 px and 5 frames apart, or an object appearing 50 px from one seen 8 frames before, are
  // not one object.
  Tracker flicker;
  const int64_t f0 = flicker.update({box(100, 100, 30, 30)})[0];
  for (int f = 1; f < 5; ++f) flicker.update({});
  EXPECT_NE(flicker.update({box(145, 100, 30, 30)})[0], f0);
  Tracker later;
  const int64_t l0 = later.update({box(200, 200, 40, 40)})[0];
  for (int f = 1; f < 8; ++f) later.update({});
  EXPECT_NE(later.update({box(250, 200, 40, 40)})[0], l0);

  // A convoy: two objects 60 px apart, 35 px on per analysed frame. The front track is nearer the
  // rear object's new box (25 px) than its own (35): nearest first gave the rear object the front
  // one's id at every frame. Each keeps its own.
  Tracker convoy;
  const auto start = convoy.update({box(0, 0, 40, 40), box(60, 0, 40, 40)});
  for (int f = 1; f < 6; ++f)
    EXPECT_EQ(convoy.update({box(35.0 * f, 0, 40, 40), box(60 + 35.0 * f, 0, 40, 40)}, 3), start) << "frame " << f;
}

// The motion from the third detection on is smoothed (half the last estimate, half the new move):
// one jittery detection (6 px off, then back) shifts the prediction by half of it, and the
// object keeps its id (predicted at 9 px, IoU 0.38 with its box at 0); taken whole, the jitter
// predicted it at 12 px (IoU 0.25) and the object got a new id.
TEST(Tracker, OneJitteryDetectionMovesThePredictionByHalf) {
  Tracker tr;
  for (const double x : {0.0, 0.0, 6.0, 0.0}) EXPECT_EQ(tr.update({box(x, 0, 20, 20)})[0], 1) << "at " << x;
  EXPECT_GE(box_iou(box(9, 0, 20, 20), box(0, 0, 20, 20)), 0.3);
  EXPECT_LT(box_iou(box(12, 0, 20, 20), box(0, 0, 20, 20)), 0.3);
}

// The assignment of the tracks seen once: the most pairs, then the least total cost, against
// every assignment of small random matrices (some pairs not allowed).
TEST(Tracker, AssignMinCostMatchesBruteForce) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> cost_of(0, 100);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t rows = 1 + rng() % 4, cols = 1 + rng() % 4;
    std::vector<std::vector<double>> cost(rows, std::vector<double>(cols));
    for (auto& row : cost)
      for (double& c : row) c = rng() % 3 == 0 ? -1 : cost_of(rng);
    // Brute force: every injective choice of a column or none per row.
    size_t best_pairs = 0;
    double best_cost = 0;
    std::vector<int> pick(rows, -1);
    const std::function<void(size_t, size_t, double, std::vector<bool>&)> walk = [&](size_t i, size_t pairs, double total,
                                                                                   std::vector<bool>& used) {
      if (i == rows) {
        if (pairs > best_pairs || (pairs == best_pairs && total < best_cost)) {
          best_pairs = pairs;
          best_cost = total;
        }
        return;
      }
      walk(i + 1, pairs, total, used);
      for (size_t j = 0; j < cols; ++j)
        if (!used[j] && cost[i][j] >= 0) {
          used[j] = true;
          walk(i + 1, pairs + 1, total + cost[i][j], used);
          used[j] = false;
        }
    };
    std::vector<bool> used(cols, false);
    walk(0, 0, 0.0, used);
    const std::vector<int> got = assign_min_cost(cost);
    ASSERT_EQ(got.size(), rows);
    size_t pairs = 0;
    double total = 0;
    std::set<int> taken;
    for (size_t i = 0; i < rows; ++i) {
      if (got[i] < 0) continue;
      ASSERT_LT(static_cast<size_t>(got[i]), cols);
      ASSERT_GE(cost[i][static_cast<size_t>(got[i])], 0) << "a pair not allowed, trial " << trial;
      ASSERT_TRUE(taken.insert(got[i]).second) << "a column twice, trial " << trial;
      ++pairs;
      total += cost[i][static_cast<size_t>(got[i])];
    }
    EXPECT_EQ(pairs, best_pairs) << "trial " << trial;
    EXPECT_NEAR(total, best_cost, 1e-9) << "trial " << trial;
  }
  EXPECT_TRUE(assign_min_cost({}).empty());
  EXPECT_EQ(assign_min_cost({{-1, -1}}), std::vector<int>{-1});
}

// A track survives max_lost frames without a detection (an occlusion) and is found again where
// its motion takes it; after more frames than that it is gone and the object gets a new id.
TEST(Tracker, LostTracksComeBackWithinMaxLostOnly) {
  TrackerOptions o;
  o.max_lost = 3;
  Tracker tr(o);
  int64_t id = 0;
  for (int f = 0; f < 5; ++f) id = tr.update({box(10.0 * f, 0, 30, 30)})[0];
  for (int f = 5; f < 8; ++f) EXPECT_TRUE(tr.update({}).empty());   // 3 frames hidden
  EXPECT_EQ(tr.update({box(80, 0, 30, 30)})[0], id) << "back where its motion predicts, within max_lost";
  for (int f = 9; f < 13; ++f) tr.update({});   // 4 frames hidden: more than max_lost
  EXPECT_EQ(tr.tracks(), 0u);
  EXPECT_GT(tr.update({box(130, 0, 30, 30)})[0], id);
}

TEST(Tracker, LabelsSeparateTracksUnlessTurnedOff) {
  Tracker tr;
  const auto a = tr.update({box(0, 0, 50, 50, 1)})[0];
  EXPECT_NE(tr.update({box(2, 0, 50, 50, 2)})[0], a) << "another class at the same place is another object";
  TrackerOptions o;
  o.match_labels = false;
  Tracker any(o);
  const auto b = any.update({box(0, 0, 50, 50, 1)})[0];
  EXPECT_EQ(any.update({box(2, 0, 50, 50, 2)})[0], b) << "a label flip keeps the id when labels are not matched";
}

// Two tracks and two detections where the best pair comes first: the greedy matching takes the
// highest IoU, not the first track, and no two detections share an id.
TEST(Tracker, GreedyMatchingTakesTheBestPairsFirst) {
  Tracker tr;
  const auto ids0 = tr.update({box(0, 0, 40, 40), box(30, 0, 40, 40)});
  // The second detection sits exactly on track 1's box; the first overlaps both tracks.
  const auto ids1 = tr.update({box(16, 0, 40, 40), box(30, 0, 40, 40)});
  EXPECT_EQ(ids1[1], ids0[1]);
  EXPECT_EQ(ids1[0], ids0[0]);
  EXPECT_NE(ids1[0], ids1[1]);
}

TEST(Tracker, ResetForgetsTracksButNotTheCount) {
  Tracker tr;
  const auto a = tr.update({box(0, 0, 10, 10)})[0];
  tr.reset();
  EXPECT_EQ(tr.tracks(), 0u);
  EXPECT_EQ(tr.update({box(0, 0, 10, 10)})[0], a + 1);
}

TEST(Tracker, IdsStartWhereAskedAndTheNextOneIsKnown) {
  Tracker tr({}, 41);
  EXPECT_EQ(tr.next_id(), 41);
  EXPECT_EQ(tr.update({box(0, 0, 10, 10), box(50, 50, 60, 60)}), (std::vector<int64_t>{41, 42}));
  EXPECT_EQ(tr.next_id(), 43);
  Tracker again({}, tr.next_id());
  EXPECT_EQ(again.update({box(0, 0, 10, 10)})[0], 43);
  ssdtest::expect_error([&] { Tracker t({}, 0); }, {"ids start at 1", "0"});
}

// Past max_id the count starts again from 1, skipping the ids of live tracks; when every id is
// taken, update() says so.
TEST(Tracker, IdsWrapAfterMaxIdSkippingLiveOnes) {
  TrackerOptions o;
  o.max_lost = 0;
  o.max_id = 5;
  Tracker tr(o, 4);
  const TrackBox a = box(0, 0, 10, 10);
  auto at = [](int k) { return box(100.0 * k, 500, 10, 10); };   // far apart, each its own track
  EXPECT_EQ(tr.update({a}), (std::vector<int64_t>{4}));
  EXPECT_EQ(tr.update({a, at(1)}), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(tr.update({a, at(2), at(3), at(4)}), (std::vector<int64_t>{4, 1, 2, 3})) << "5 ended: wrapped to 1";
  EXPECT_EQ(tr.next_id(), 4);
  EXPECT_EQ(tr.update({a, at(5)}), (std::vector<int64_t>{4, 5})) << "4 is live: skipped; 1-3 ended";
  EXPECT_EQ(tr.update({a, at(5), at(6), at(7), at(8)}), (std::vector<int64_t>{4, 5, 1, 2, 3}));
  ssdtest::expect_error([&] { tr.update({a, at(5), at(6), at(7), at(8), at(9)}); }, {"every id", "max_id 5"});
  ssdtest::expect_error([&] { Tracker t(o, 6); }, {"up to max_id 5", "6"});
  o.max_id = 0;
  ssdtest::expect_error([&] { Tracker t(o); }, {"max_id", "0"});
}

// ssddetect's `interval`: frames in between repeat the last analysed frame's boxes. repeat()
// gives them that frame's ids, and the motion is then measured per frame: an object speeding up
// (2 px per frame, 0.5 more each frame; 20 px wide) keeps its id with every second frame
// analysed. Fed through update() instead, each repeated box reads as a frame without motion,
// the prediction lags behind and the object is taken for a new one.
TEST(Tracker, RepeatedFramesKeepTheirIdsAndTheMotionPerFrame) {
  std::vector<double> xs = {0};
  for (double v = 2; xs.size() < 40; v += 0.5) xs.push_back(xs.back() + v);
  Tracker with_repeat, without;
  std::set<int64_t> ids, ids_without;
  double analysed = 0;
  for (size_t f = 0; f < xs.size(); ++f) {
    if (f % 2 == 0) analysed = xs[f];
    const std::vector<TrackBox> dets = {box(analysed, 0, 20, 20)};
    const auto r = f % 2 == 0 ? with_repeat.update(dets) : with_repeat.repeat(dets).value();
    ids.insert(r.at(0));
    ids_without.insert(without.update(dets).at(0));
  }
  EXPECT_EQ(ids, (std::set<int64_t>{1}));
  EXPECT_GT(ids_without.size(), 1u) << "the scene no longer tells the two apart: make the object faster";
}

// A cascade: the car's detector analyses every second frame (its boxes repeated between, marked
// carried), another detector every frame (a still sign). update() with the carried flags gives the
// repeats their tracks' ids among the fresh detections, and the car's motion is measured per frame
// (one id); without them the repeats read as frames without motion (14 ids, the README's figure).
// A carried box that is no track's (after reset()) is matched as any other.
TEST(Tracker, CarriedDetectionsAmongFreshOnesKeepTheirIds) {
  std::vector<double> xs = {0};
  for (double v = 2; xs.size() < 40; v += 0.5) xs.push_back(xs.back() + v);
  Tracker told, untold;
  std::set<int64_t> car, car_untold, sign;
  double analysed = 0;
  const TrackBox still = box(900, 0, 30, 30, 2);
  for (size_t f = 0; f < xs.size(); ++f) {
    if (f % 2 == 0) analysed = xs[f];
    const std::vector<TrackBox> dets = {box(analysed, 0, 20, 20), still};
    const auto r = told.update(dets, 1, {f % 2 == 1, false});
    car.insert(r.at(0));
    sign.insert(r.at(1));
    car_untold.insert(untold.update(dets).at(0));
  }
  EXPECT_EQ(car, (std::set<int64_t>{1}));
  EXPECT_EQ(sign, (std::set<int64_t>{2}));
  EXPECT_EQ(car_untold.size(), 14u) << "the README quotes this count";
  told.reset();
  EXPECT_EQ(told.update({box(0, 0, 20, 20)}, 1, {true}), (std::vector<int64_t>{3}));
  EXPECT_THROW(told.update({still}, 1, {true, false}), ssd::Error);
}

// A repeated frame counts as a frame for the motion, in repeat() and as a carried detection in
// update(): an object 20 px wide at 15 px a frame, seen at 0 and 15, repeated, then seen at 45,
// keeps its id (predicted at 45; as if the repeat were no frame, at 30: IoU 0.14, a new id).
TEST(Tracker, ARepeatedFrameCountsForTheMotion) {
  for (const bool carried : {false, true}) {
    SCOPED_TRACE(carried ? "carried in update()" : "repeat()");
    Tracker tr;
    EXPECT_EQ(tr.update({box(0, 0, 20, 20)})[0], 1);
    EXPECT_EQ(tr.update({box(15, 0, 20, 20)})[0], 1);
    if (carried) {
      EXPECT_EQ(tr.update({box(15, 0, 20, 20), box(500, 0, 20, 20, 1)}, 1, {true, false})[0], 1);
    } else {
      EXPECT_EQ(tr.repeat({box(15, 0, 20, 20)}), (std::vector<int64_t>{1}));
    }
    EXPECT_EQ(tr.update({box(45, 0, 20, 20)})[0], 1);
  }
}

// Frames dropped on the way (QoS) count for the motion when update() is told how many frame
// times passed: an object 40 px wide moving 12 px a frame, seen in frames 0, 1, 4, 5, 8, 9...,
// keeps its id; counted as consecutive frames, the moves of 12 and 36 px break it up. A track
// not seen counts the dropped frames as lost too.
TEST(Tracker, DroppedFramesCountForTheMotionAndTheLost) {
  Tracker told, untold;
  std::set<int64_t> ids, ids_untold;
  int previous = 0;
  for (int f = 0; f < 40; f += f % 4 == 0 ? 1 : 3) {
    const std::vector<TrackBox> dets = {box(12.0 * f, 0, 40, 40)};
    ids.insert(told.update(dets, f == 0 ? 1 : f - previous).at(0));
    ids_untold.insert(untold.update(dets).at(0));
    previous = f;
  }
  EXPECT_EQ(ids, (std::set<int64_t>{1}));
  EXPECT_GT(ids_untold.size(), 1u) << "the scene no longer tells the two apart: make the object faster";
  TrackerOptions o;
  o.max_lost = 3;
  Tracker tr(o);
  tr.update({box(0, 0, 20, 20)});
  tr.update({}, 2);   // not seen for 2 frames (one of them dropped)
  EXPECT_EQ(tr.tracks(), 1u);
  tr.update({}, 2);   // 4 frames: more than max_lost (counted one a frame, it lived on)
  EXPECT_EQ(tr.tracks(), 0u);
  EXPECT_THROW(tr.update({}, 0), ssd::Error);
}

// repeat() takes only the boxes of the last update() as they were; anything else (another box,
// another label, a box twice, the tracks forgotten) changes nothing and asks for update(). A
// track already lost counts the repeated frames towards max_lost.
TEST(Tracker, RepeatNeedsTheLastAnalysedBoxes) {
  TrackerOptions o;
  o.max_lost = 2;
  Tracker tr(o);
  const TrackBox a = box(0, 0, 20, 20, 1), b = box(100, 0, 20, 20, 1), c = box(200, 0, 20, 20, 2);
  EXPECT_EQ(tr.update({a, b, c}), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(tr.update({a, b}), (std::vector<int64_t>{1, 2}));   // c lost once
  EXPECT_FALSE(tr.repeat({box(1, 0, 20, 20, 1)}));
  EXPECT_FALSE(tr.repeat({box(0, 0, 20, 20, 2)}));
  EXPECT_FALSE(tr.repeat({a, a}));
  EXPECT_FALSE(tr.repeat({c})) << "c was not seen in the last update()";
  EXPECT_EQ(tr.tracks(), 3u);
  EXPECT_EQ(tr.repeat({b, a}), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(tr.tracks(), 3u) << "c lost for 2 frames: not more than max_lost";
  EXPECT_EQ(tr.repeat({b}), (std::vector<int64_t>{2}));
  EXPECT_EQ(tr.track_ids(), (std::vector<int64_t>{1, 2})) << "c lost for 3 frames: ended";
  EXPECT_EQ(tr.update({a, b}), (std::vector<int64_t>{1, 2})) << "a, not in the last repeat, was not lost";
  tr.reset();
  EXPECT_FALSE(tr.repeat({a}));
  EXPECT_EQ(tr.update({a}), (std::vector<int64_t>{4}));
}

TEST(Tracker, BadOptionsAreRefused) {
  TrackerOptions o;
  o.iou_threshold = 0;
  ssdtest::expect_error([&] { Tracker t(o); }, {"IoU threshold", "(0, 1]"});
  o.iou_threshold = 0.3;
  o.max_lost = -1;
  ssdtest::expect_error([&] { Tracker t(o); }, {"max_lost", "-1"});
  o.max_lost = 10;
  o.min_hits = 0;
  ssdtest::expect_error([&] { Tracker t(o); }, {"min_hits", "0"});
}

// min_hits: a track has no id (0) until its min_hits-th detection, then keeps the one it got;
// flickers that never get that far take no id, so that the ids count the objects followed that
// long (1, 2, ...); a repeat of a frame gives a track on probation 0 too; 1 is the default.
TEST(Tracker, TracksOnProbationHaveNoIdUntilMinHits) {
  TrackerOptions o;
  o.min_hits = 3;
  Tracker tr(o);
  std::vector<std::vector<int64_t>> got;
  for (int f = 0; f < 5; ++f) {
    std::vector<TrackBox> dets = {box(10 + 2.0 * f, 10, 20, 20)};
    if (f == 1) dets.push_back(box(200, 200, 20, 20));   // a flicker: one frame
    if (f == 3) dets.push_back(box(100, 100, 20, 20));   // another
    got.push_back(tr.update(dets));
    if (f == 1) {
      const auto again = tr.repeat(dets);
      ASSERT_TRUE(again);
      EXPECT_EQ(*again, (std::vector<int64_t>{0, 0}));
    }
  }
  EXPECT_EQ(got[0], (std::vector<int64_t>{0}));
  EXPECT_EQ(got[1], (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(got[2], (std::vector<int64_t>{1}));        // its third detection
  EXPECT_EQ(got[3], (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(got[4], (std::vector<int64_t>{1}));
  EXPECT_EQ(tr.next_id(), 2);                         // the flickers took none
  EXPECT_EQ(tr.track_ids(), (std::vector<int64_t>{1}));
  EXPECT_GT(tr.tracks(), 1u);                         // (the last flicker is still a track)
  Tracker plain;
  EXPECT_EQ(plain.update({box(0, 0, 10, 10)}), (std::vector<int64_t>{1}));
}

// Many objects on random straight paths (which may cross), starting apart: every
// object keeps one id over the whole run and no two objects share one, when each detection is
// jittered by a pixel; ids are the ground truth's up to a relabelling.
TEST(Tracker, RandomStraightPathsKeepOneIdEach) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pos(0, 1000), vel(-6, 6), jitter(-1, 1);
  constexpr int kObjects = 12, kFrames = 60;
  struct Obj {
    double x, y, vx, vy;
  };
  std::vector<Obj> objs;
  while (objs.size() < kObjects) {
    Obj o{pos(rng), pos(rng), vel(rng), vel(rng)};
    bool clear = true;   // start at least 80 px from the others (boxes are 40 px)
    for (const auto& p : objs) clear = clear && std::hypot(p.x - o.x, p.y - o.y) > 80;
    if (clear) objs.push_back(o);
  }
  Tracker tr;
  std::vector<int64_t> id_of(kObjects, 0);
  for (int f = 0; f < kFrames; ++f) {
    std::vector<TrackBox> dets;
    for (const auto& o : objs) dets.push_back(box(o.x + f * o.vx + jitter(rng), o.y + f * o.vy + jitter(rng), 40, 40));
    const auto ids = tr.update(dets);
    for (int i = 0; i < kObjects; ++i) {
      if (f == 0) id_of[i] = ids[i];
      EXPECT_EQ(ids[i], id_of[i]) << "object " << i << " frame " << f;
    }
  }
  std::sort(id_of.begin(), id_of.end());
  EXPECT_EQ(std::unique(id_of.begin(), id_of.end()), id_of.end());
}
