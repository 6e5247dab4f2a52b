// Multi-threaded batch loader for ssd-train (LibTorch-free: batches are plain vectors the
// trainer wraps with torch::from_blob).
//
// Sources of the data side, all LibTorch-free, for training/meson.build:
//   dataset.cpp coco.cpp voc.cpp synth.cpp augment.cpp loader.cpp
// (headers: dataset.h rng.h coco.h voc.h synth.h augment.h loader.h), needing
//   dependencies: [opencv_dep, json_dep, dependency('pugixml'), dependency('threads')]
// e.g. ssdtrain_data_lib = static_library('ssdtrain-data', <those>, dependencies: <those>);
// tests/training/meson.build links ssdtrain_data_lib when it is defined.
//
// Determinism: the epoch order is a Fisher-Yates shuffle seeded with derive_seed(seed, epoch);
// sample i's augmentation uses Rng(derive_seed(epoch seed, i)), i = the dataset index. Batches
// come out in order whatever the number of threads, so a run is reproducible.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "augment.h"
#include "dataset.h"

namespace ssdtrain {

struct LoaderOptions {
  int image_size = 224;
  int batch_size = 16;
  int threads = 2;          // worker threads (>= 1)
  int prefetch = 4;         // batches ready or in flight ahead of the consumer
  bool shuffle = true;
  bool drop_last = false;   // drop a last, smaller batch
  // Drop a last batch of one sample (training: BatchNorm cannot normalise a single value per
  // channel, as on the 1x1 grid), so that e.g. 17 images in batches of 16 train.
  bool drop_single_last = false;
  bool augment = true;      // false: load + squish resize only (validation)
  AugmentOptions aug;
  uint64_t seed = 0;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // RGB, of pixels in [0, 1]
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

struct Batch {
  int size = 0;        // B
  int image_size = 0;  // S
  int max_boxes = 0;   // G = most targets of one image in this batch, >= 1
  std::vector<float> images;     // B*3*S*S, CHW, normalised with mean/std
  std::vector<float> boxes;      // B*G*4 x1,y1,x2,y2 in [0,1] of the S x S input; padding 0
  std::vector<int64_t> labels;   // B*G label indices (padding 0)
  std::vector<uint8_t> valid;    // B*G 1 for a real target, 0 for padding
  int max_ignored = 0;  // I = most boxes marked ignore in one image of this batch (may be 0)
  std::vector<float> ignore_boxes;  // B*I*4 x1,y1,x2,y2 in [0,1] of boxes marked ignore
                                    // (BoxAnnotation::ignore), moved with the pixels as the
                                    // targets are; padding 0 (an empty box)
  std::vector<int64_t> indices;  // B dataset indices
  std::vector<int> widths, heights;  // B original image sizes (to map predictions back)
};

// Reads an image file as BGR CV_8UC3 in its stored pixel grid: an EXIF orientation tag is not
// applied, as pycocotools, PIL, torchvision and the Pascal VOC tools read images (annotations'
// boxes and sizes are in that grid) and as GStreamer's decoders hand frames to ssddetect. Throws
// DataError naming the file when it is missing or cannot be decoded. A JPEG file cut short
// decodes (its missing part grey) with a warning naming it on stderr, once per file.
cv::Mat read_bgr(const std::string& path);

// Decodes every image of `ds` (at an eighth of its size, which a JPEG decodes in a fraction of
// the time) on `threads` threads, so that a file that cannot be read or decoded fails the start
// of a run, not an epoch into it (a validation image, after the first epoch's training). Throws
// DataError naming the first few such files, in the set's order.
void check_images(const Dataset& ds, int threads);

// Reads an image as RGB CV_8UC3 (read_bgr). Throws DataError naming the file when it is missing
// or cannot be decoded, or when its size differs from the record's (width/height 0 = unknown:
// accepted).
cv::Mat load_rgb(const ImageRecord& rec);

// One sample as the loader makes it: load, augment (or just resize), normalise into `chw`
// (3*S*S floats). Returns the boxes that keep an area, in pixels of the S x S input: the
// targets and the boxes marked ignore (BoxAnnotation::ignore), in the record's order.
std::vector<BoxAnnotation> make_sample(const ImageRecord& rec, const LoaderOptions& options,
                                       uint64_t sample_seed, float* chw);

// The batches an epoch of n samples gives with these options.
size_t batches_per_epoch(size_t n, const LoaderOptions& options);

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, const LoaderOptions& options);  // keeps a reference
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts producing epoch `epoch` (stops a running one first).
  void start_epoch(int epoch);
  // Next batch of the current epoch, in order; false when the epoch is done. When building a
  // batch failed (e.g. DataError for an unreadable image), every batch before it is still
  // returned, then next() rethrows that exception (the same one on every later call).
  bool next(Batch& out);

  size_t batches_per_epoch() const;   // ssdtrain::batches_per_epoch() of the data set
  const std::vector<int64_t>& epoch_order() const { return order_; }
  const LoaderOptions& options() const { return opt_; }

 private:
  void stop();
  void worker();
  void build_batch(size_t b, Batch& out) const;

  const Dataset& ds_;
  LoaderOptions opt_;
  std::vector<int64_t> order_;
  uint64_t epoch_seed_ = 0;
  size_t num_batches_ = 0;

  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  size_t next_to_build_ = 0;   // next batch index a worker takes
  size_t next_to_return_ = 0;  // next batch index next() returns
  std::map<size_t, Batch> ready_;
  std::exception_ptr error_;  // the failure of the lowest-numbered failed batch
  size_t error_batch_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::vector<std::thread> workers_;
};

struct LoaderThroughput {
  size_t images = 0;
  double seconds = 0;
  double images_per_second = 0;
};

// Runs the loader alone over up to `max_batches` batches (0: one whole epoch) and times it.
LoaderThroughput measure_loader_throughput(const Dataset& dataset, const LoaderOptions& options,
                                           size_t max_batches = 0);

}  // namespace ssdtrain
