// One Detector shared by several video streams in a process, batching their frames together
// (the GStreamer elements' `model-instance-id`): one copy of the weights on the device, and on
// a GPU one network run for the frames of N cameras instead of N runs of one frame.
//
// Each stream holds the instance (acquire()), calls detect() from its own thread and blocks until
// its frame's detections are ready. A worker thread of the instance takes the frames waiting at that moment (up to
// max_batch; optionally waiting up to max_wait for more after the first) and runs them as one
// batch. Frames that arrive while a batch runs form the next one, so batches grow with the load
// ("dynamic batching"). With detector.max_in_flight N > 1, N batches are in progress at once:
// on CUDA the one worker starts the next batch while earlier ones are still on the device; on
// the CPU (where a Detector computes a batch before submit() returns) the instance has N
// workers, each with a copy of the model, computing batches side by side on the cores (with
// fixed_postprocess, the CPU emulation of the CUDA path, it keeps CUDA's one worker).
// LibTorch-free.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "detector.h"

namespace ssd {

struct SharedDetectorOptions {
  // The detector every stream of the instance uses. Its threshold and max_detections are only
  // the starting values of the output stage: each detect() call passes its own, and the batch
  // runs with the lowest threshold and the highest count asked for, then each frame's
  // detections are cut to its caller's (the same detections as a private Detector with the
  // caller's settings: greedy NMS never lets a box below a threshold suppress one above it;
  // one difference: above 100 detections the output stage also takes more candidates into
  // NMS, 4 per detection, so a caller sharing a batch with one that asks for more than 100 may
  // get a few more of its own when NMS leaves fewer than it asked for).
  // nms_iou is the instance's.
  DetectorOptions detector;
  int max_batch = 1;                         // frames per network run, at most
  // How long a batch waits for more frames after its first: only while fewer frames are queued
  // than max_batch and than threads call detect() whose next frame is due before the wait ends,
  // at the pace each has queued its frames (a caller blocks until its frame is done, so each has
  // one frame queued at a time: one stream alone, or a batch size above the number of streams,
  // does not wait; nor do the others for a slower stream whose next frame is not due yet). A thread that queued no frame for twice max_wait, and at least a
  // second, is no longer counted (its stream paused, ended, or left the instance), and a batch
  // waiting for it runs then.
  std::chrono::microseconds max_wait{0};
};

class SharedDetector {
 public:
  // The instance named `id` in this process: created from `options` (loading the model) by
  // the first caller, shared by later callers while any of them holds it, destroyed when the
  // last one lets go. A later caller whose options differ from the instance's in anything but
  // the threshold and max_detections (the same model file under another path to it counts as the
  // same; max_in_flight and threads of 0 count as what they resolve to, cpu_workers.h) gets
  // ssd::Error naming the difference; loading errors are Detector's. A model loads without
  // holding up the callers of other names; callers of the name being loaded wait for it.
  static std::shared_ptr<SharedDetector> acquire(const std::string& id, const SharedDetectorOptions& options);

  ~SharedDetector();
  SharedDetector(const SharedDetector&) = delete;
  SharedDetector& operator=(const SharedDetector&) = delete;

  // Detects objects in one frame, batched with the other streams' frames; blocks until done.
  // Thread-safe. The frame's memory must stay valid until this returns. A malformed frame
  // throws ssd::Error at once (without reaching the batch); an inference failure throws for
  // every frame of the failed batch.
  // class_thresholds: per label id, that class's threshold in place of `threshold` (above 1:
  // dropped), as Detector::set_postprocess; each frame of the batch is held to its caller's (so
  // a class the caller leaves out takes no place among its frame's candidates and detections,
  // whatever the other streams keep). On CUDA with graphs, streams of an instance with
  // different filters capture a graph per make-up of the batch (the thresholds are part of it).
  // computed: if given, set to how long the frame's batch took from its start (the wait for
  // other streams' frames not included) until its detections were handed over.
  std::vector<Detection> detect(const FrameView& frame, float threshold, int max_detections,
                                const std::vector<float>& class_thresholds = {},
                                std::chrono::nanoseconds* computed = nullptr);

  // The stream whose frames thread `caller` sent has left (its element stopped or paused):
  // batches no longer wait for its frames, from now on rather than once it has been silent for
  // twice max_wait. A later detect() from that thread counts it again.
  void leave(std::thread::id caller);

  // Changes the instance's NMS IoU threshold (every stream's) from the next batch on.
  void set_nms_iou(float nms_iou);

  const std::string& id() const;
  const SharedDetectorOptions& options() const;   // as created, max_in_flight and threads resolved
  const std::vector<std::string>& labels() const;
  std::string device_name() const;
  bool fp16() const;
  bool graphs() const;

  struct Stats {
    int64_t frames = 0;        // frames detected
    int64_t batches = 0;       // network runs
    int64_t largest_batch = 0;
    GraphStats graphs, preprocess_graphs;   // the detector's, after the last batch
  };
  Stats stats() const;
  long users() const;     // holders of the instance (acquire() callers still holding it)
  int workers() const;    // network runners: 1, or max_in_flight on the CPU

 private:
  struct Impl;
  explicit SharedDetector(std::unique_ptr<Impl> impl);
  // A new instance: its model loaded, its workers started.
  static std::shared_ptr<SharedDetector> create(const std::string& id, const SharedDetectorOptions& options,
                                                bool cpu_workers);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ssd
