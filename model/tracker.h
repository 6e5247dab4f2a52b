// Multi-object tracking by detection: a persistent id for each object across the frames of a
// stream, from each frame's boxes alone (no pixels). An IoU tracker with constant-velocity
// prediction, the imageless kind that DL Streamer's gvatrack and DeepStream's IOU tracker
// offer: each track's box is predicted where its last motion takes it, detections are matched
// to predictions greedily by decreasing IoU (at least `iou_threshold`, of the same label
// unless told otherwise), then tracks seen only once, in the last analysed frame (no motion
// yet), to detections left of their label and size within 3/4 of their size per frame (most
// pairs, least distance); a matched track moves to its detection, an unmatched detection
// starts a track with a new id, and a track without a detection for more than `max_lost`
// frames ends. Frames the detector skipped, whose boxes repeat the last analysed frame's
// (ssddetect's `interval`), keep that frame's ids without being matched (repeat()), so that the
// motion is measured between analysed frames. Ids count up from 1 and are not reused until the
// count passes `max_id`. Pure C++, LibTorch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ssd {

struct TrackerOptions {
  double iou_threshold = 0.3;   // least IoU of a detection with a track's predicted box
  int max_lost = 10;            // frames a track lives on without a detection
  bool match_labels = true;     // a detection continues only a track of its own label
  // The largest id; the one after it is 1 again, and on from there the ids of live tracks are
  // skipped (ssdtrack: G_MAXINT, for DL Streamer's int `id`).
  int64_t max_id = INT64_MAX;
  // Detections a track needs before it has an id (a probation, as DeepStream's probationAge or
  // SORT's min_hits): its earlier ones get id 0, "not tracked yet", and a track that never gets
  // that far (a false detection flickering) takes no id. 1: an id at once.
  int min_hits = 1;
};

// One detection of a frame: a box in any units used consistently (pixels, say) and a label.
struct TrackBox {
  double x_min = 0, y_min = 0, x_max = 0, y_max = 0;
  int64_t label = 0;
};

class Tracker {
 public:
  // Throws ssd::Error for an iou_threshold outside (0, 1], a negative max_lost, a min_hits below
  // 1, a max_id below 1, or a first_id outside [1, max_id]. Ids count up from first_id (an element restarted goes
  // on from next_id()).
  explicit Tracker(const TrackerOptions& options = {}, int64_t first_id = 1);

  // One frame's detections, in: the id of each (>= 1; 0 for one whose track has had fewer than
  // min_hits detections), in the same order, out. Frames come in
  // stream order; `frames` is how many frame times it comes after the previous one (more than 1
  // where frames were dropped on the way, by QoS say: the predictions move on, and the tracks
  // not seen count as lost, for those frames too). Throws ssd::Error when every id up to max_id
  // is a live track's, or for `frames` below 1.
  //
  // `carried` (empty, or one flag per detection): a detection that repeats its detector's last
  // analysed frame (an ssddetect with `interval` behind another that analysed this frame: a
  // cascade) keeps the id of the track seen at exactly its box in the last update(), unmatched,
  // as repeat() does for a frame of repeats only, so that its motion is measured between the
  // analysed frames; one without such a track is matched as the others are.
  std::vector<int64_t> update(const std::vector<TrackBox>& detections, int frames = 1,
                              const std::vector<bool>& carried = {});

  // A frame the detector did not analyse, whose detections repeat the last analysed frame's
  // boxes: the ids of the tracks seen at exactly those boxes in the last update() (each track
  // once), in order. Nothing is matched; each track's prediction moves on a frame, so the
  // motion measured at the next update() is per frame, and a track lost before counts one frame
  // more. nullopt, and nothing changed, when a detection is not such a track's box (after a
  // reset(), say): pass the frame to update(). `frames`: as update()'s.
  std::optional<std::vector<int64_t>> repeat(const std::vector<TrackBox>& detections, int frames = 1);

  // Forgets every track (after a seek or a jump in the stream); ids go on counting.
  void reset();

  size_t tracks() const { return tracks_.size(); }   // alive, matched or not, with an id or not
  int64_t next_id() const { return next_id_; }        // the id the next track to get one gets
  std::vector<int64_t> track_ids() const;             // the ids of those that have one
  const TrackerOptions& options() const { return options_; }

 private:
  struct Track {
    int64_t id = 0;            // 0 until it has had min_hits detections
    TrackBox box;              // where it was last seen
    double velocity[4] = {};   // per frame, of x_min, y_min, x_max, y_max
    int lost = 0;              // frames since it was last seen (0 through the repeats after)
    int unseen = 0;            // frames since it was last seen: those lost and those repeated
    int hits = 1;              // detections it has had
    TrackBox predicted() const;
  };
  // The index of the track seen in the last update() (not lost) at exactly `box`, not `taken`;
  // tracks_.size() when there is none.
  size_t track_at(const TrackBox& box, const std::vector<bool>& taken) const;
  int64_t new_id();    // the next id no live track has
  void drop_lost();    // ends the tracks lost for more than max_lost frames
  TrackerOptions options_;
  std::vector<Track> tracks_;
  int64_t next_id_ = 1;
  bool wrapped_ = false;   // the count passed max_id: live tracks may hold the next ids
};

// Intersection over union of two boxes (0 when either is empty).
double box_iou(const TrackBox& a, const TrackBox& b);

// A one-to-one assignment of rows to columns: cost[i][j] >= 0 where row i may take column j, < 0
// where it may not. As many pairs as can be made, the least total cost among those. For each row
// its column, -1 for none. (All rows are of one length.)
std::vector<int> assign_min_cost(const std::vector<std::vector<double>>& cost);

}  // namespace ssd
