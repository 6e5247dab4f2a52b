// Multi-object tracking by detection: a persistent id for each object across the frames of a
// stream, from each frame's boxes alone (no pixels). An IoU tracker with constant-velocity
// prediction, the imageless kind that DL Streamer's gvatrack and DeepStream's IOU tracker
// offer: each track's box is predicted where its last motion takes it, detections are matched
// to predictions greedily by decreasing IoU (at least `iou_threshold`, of the same label
// unless told otherwise), a matched track moves to its detection, an unmatched detection
// starts a track with a new id, and a track without a detection for more than `max_lost`
// frames ends. Ids count up from 1 and are never reused. Pure C++, LibTorch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ssd {

struct TrackerOptions {
  double iou_threshold = 0.3;   // least IoU of a detection with a track's predicted box
  int max_lost = 10;            // frames a track lives on without a detection
  bool match_labels = true;     // a detection continues only a track of its own label
};

// One detection of a frame: a box in any units used consistently (pixels, say) and a label.
struct TrackBox {
  double x_min = 0, y_min = 0, x_max = 0, y_max = 0;
  int64_t label = 0;
};

class Tracker {
 public:
  // Throws ssd::Error for an iou_threshold outside (0, 1] or a negative max_lost, or a
  // first_id below 1. Ids count up from first_id (an element restarted goes on from next_id()).
  explicit Tracker(const TrackerOptions& options = {}, int64_t first_id = 1);

  // One frame's detections, in: the id of each (>= 1), in the same order, out. Frames come in
  // stream order; a frame the detector skipped is passed with the boxes it carried.
  std::vector<int64_t> update(const std::vector<TrackBox>& detections);

  // Forgets every track (after a seek or a jump in the stream); ids go on counting.
  void reset();

  size_t tracks() const { return tracks_.size(); }   // alive, matched or not
  int64_t next_id() const { return next_id_; }        // the id the next new track gets
  std::vector<int64_t> track_ids() const;             // their ids
  const TrackerOptions& options() const { return options_; }

 private:
  struct Track {
    int64_t id;
    TrackBox box;              // where it was last seen
    double velocity[4] = {};   // per frame, of x_min, y_min, x_max, y_max
    int lost = 0;              // frames since it was last seen
    int hits = 1;              // detections it has had
    TrackBox predicted() const;
  };
  TrackerOptions options_;
  std::vector<Track> tracks_;
  int64_t next_id_ = 1;
};

// Intersection over union of two boxes (0 when either is empty).
double box_iou(const TrackBox& a, const TrackBox& b);

}  // namespace ssd
