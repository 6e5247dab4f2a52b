#include "loader.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "rng.h"
#include "text.h"

namespace ssdtrain {

namespace {

// Whether a JPEG file's bytes lack the end-of-image marker (FF D9) near their end: a file cut
// short (an interrupted copy or download). libjpeg decodes such a file as far as it goes and
// greys the rest, saying only "Premature end of JPEG file" on stderr, without the file's name.
bool truncated_jpeg(const std::vector<uchar>& bytes) {
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return false;   // not a JPEG
  // Some writers append bytes after the marker: it is looked for in the last 4 KiB.
  const size_t stop = bytes.size() > 4096 ? bytes.size() - 4096 : 2;
  for (size_t i = bytes.size() - 1; i > stop; --i)
    if (bytes[i - 1] == 0xFF && bytes[i] == 0xD9) return false;
  return true;
}

// Once per file and process (a training run reads each image every epoch).
void warn_once(const std::string& path, const std::string& what) {
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  if (warned.insert(path).second) std::cerr << "warning: " << ssd::printable(path) << ": " << what << "\n";
}

cv::Mat decode_image(const std::string& path, int flags) {
  if (!std::filesystem::is_regular_file(path)) throw DataError(path + ": image file not found");
  std::vector<uchar> bytes;
  {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    // (errno: why the file would not open or read; "Too many open files" under a low ulimit -n
    // is the system's limit, not a bad image.)
    if (in) bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in && !in.eof())
      throw DataError(path + ": cannot read image file" + (errno ? std::string(": ") + std::strerror(errno) : std::string()));
  }
  const bool cut_short = truncated_jpeg(bytes);
  // (A JPEG cut short may decode at a reduced size, from its first scans, and not at its own.)
  if (cut_short) flags &= ~cv::IMREAD_REDUCED_GRAYSCALE_8;
  cv::Mat bgr;
  try {
    if (!bytes.empty()) bgr = cv::imdecode(bytes, flags);
  } catch (const cv::Exception& e) {
    throw DataError(path + ": cannot decode image: " + e.what());
  }
  if (bgr.empty() && cut_short)   // (a progressive JPEG needs its last scans)
    throw DataError(path + ": the JPEG file ends early (no end-of-image marker) and does not "
                           "decode; replace or remove the file");
  if (bgr.empty()) throw DataError(path + ": cannot read or decode image");
  if (cut_short)
    warn_once(path, "the JPEG file ends early (no end-of-image marker): its missing part is "
                    "decoded as grey; replace or remove the file");
  return bgr;
}

}  // namespace

// Why `n` data loader threads could not all start (the system refused one: a --workers far
// beyond the machine's; the threads created were running, and the process aborted).
static std::string cannot_start_threads(int n, const std::system_error& e) {
  return "cannot start " + std::to_string(n) + " data loader threads (--workers): " + e.what();
}

cv::Mat read_bgr(const std::string& path) {
  return decode_image(path, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
}

void check_images(const Dataset& ds, int threads) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::vector<std::pair<size_t, std::string>> failed;   // (image index, error)
  auto work = [&] {
    for (size_t i; (i = next++) < ds.images.size();) {
      try {
        const ImageRecord& rec = ds.images[i];
        const cv::Mat small = decode_image(rec.path, cv::IMREAD_REDUCED_GRAYSCALE_8 | cv::IMREAD_IGNORE_ORIENTATION);
        // An image of another size than its annotation says (a replaced file, width and height
        // swapped) fails here too, not an epoch into the run: decoded at an eighth (rounded up by
        // JPEG's scaled decoding, down by the others'), the sizes differ by more than one pixel;
        // read whole, it gets load_rgb's message.
        const auto off = [](int got, int full) { return std::abs(got - (full + 7) / 8) > 1; };
        if (rec.width > 0 && rec.height > 0 && (off(small.cols, rec.width) || off(small.rows, rec.height)))
          load_rgb(rec);
      } catch (const DataError& e) {
        std::lock_guard<std::mutex> lk(mu);
        failed.emplace_back(i, e.what());
      }
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  } catch (const std::system_error& e) {   // (more threads than the system allows)
    next = ds.images.size();   // the ones started stop
    for (auto& t : pool) t.join();
    throw DataError(cannot_start_threads(threads, e));
  }
  work();
  for (auto& t : pool) t.join();
  if (failed.empty()) return;
  std::sort(failed.begin(), failed.end());
  std::string text = failed.front().second;
  constexpr size_t kNamed = 5;
  for (size_t k = 1; k < std::min(failed.size(), kNamed); ++k) text += "\n  " + failed[k].second;
  if (failed.size() > kNamed) text += "\n  and " + std::to_string(failed.size() - kNamed) + " more";
  throw DataError(failed.size() == 1 ? text
                                     : std::to_string(failed.size()) + " images cannot be used:\n  " + text);
}

cv::Mat load_rgb(const ImageRecord& rec) {
  const cv::Mat bgr = read_bgr(rec.path);
  if ((rec.width > 0 && bgr.cols != rec.width) || (rec.height > 0 && bgr.rows != rec.height))
    throw DataError(rec.path + ": image is " + std::to_string(bgr.cols) + "x" +
                    std::to_string(bgr.rows) + " but its annotation says " +
                    std::to_string(rec.width) + "x" + std::to_string(rec.height));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

std::vector<BoxAnnotation> make_sample(const ImageRecord& rec, const LoaderOptions& opt,
                                       uint64_t sample_seed, float* chw) {
  Sample s;
  // (OpenCV's errors name no file: an image whose pixels did not fit in memory, 32000x32000 from
  // a 6 KB JPEG, said only "Failed to allocate 3072000000 bytes".)
  try {
    s.image = load_rgb(rec);
    s.boxes = rec.boxes;
    if (opt.augment) {
      Rng rng(sample_seed);
      augment(s, opt.image_size, opt.aug, rng, opt.mean);
    } else {
      squish_resize(s, opt.image_size);
    }
    to_chw_normalised(s.image, opt.mean, opt.std, chw);
  } catch (const cv::Exception& e) {
    throw DataError(rec.path + ": " + e.what());
  }
  std::vector<BoxAnnotation> targets;
  targets.reserve(s.boxes.size());
  for (const auto& b : s.boxes)
    if (b.x2 > b.x1 && b.y2 > b.y1) targets.push_back(b);
  return targets;
}

DataLoader::DataLoader(const Dataset& dataset, const LoaderOptions& options)
    : ds_(dataset), opt_(options) {
  if (opt_.image_size < 8) throw DataError("loader: image_size must be >= 8");
  if (opt_.batch_size < 1) throw DataError("loader: batch_size must be >= 1");
  if (opt_.threads < 1) throw DataError("loader: threads must be >= 1");
  if (opt_.prefetch < 1) opt_.prefetch = 1;
  if (ds_.images.empty()) throw DataError("loader: the dataset has no images");
  for (int c = 0; c < 3; ++c)
    if (!(opt_.std[c] > 0)) throw DataError("loader: std must be positive");
}

DataLoader::~DataLoader() { stop(); }

size_t batches_per_epoch(size_t n, const LoaderOptions& options) {
  const size_t b = static_cast<size_t>(std::max(1, options.batch_size));
  if (options.drop_last || (options.drop_single_last && n % b == 1)) return n / b;
  return (n + b - 1) / b;
}

size_t DataLoader::batches_per_epoch() const { return ssdtrain::batches_per_epoch(ds_.images.size(), opt_); }

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_work_.notify_all();
  cv_ready_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void DataLoader::start_epoch(int epoch) {
  stop();
  epoch_seed_ = derive_seed(opt_.seed, static_cast<uint64_t>(epoch));
  order_.resize(ds_.images.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
  if (opt_.shuffle) {
    Rng rng(epoch_seed_);
    rng.shuffle(order_);
  }
  num_batches_ = batches_per_epoch();
  next_to_build_ = 0;
  next_to_return_ = 0;
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  started_ = true;
  try {
    for (int i = 0; i < opt_.threads; ++i) workers_.emplace_back(&DataLoader::worker, this);
  } catch (const std::system_error& e) {   // (more threads than the system allows)
    stop();
    throw DataError(cannot_start_threads(opt_.threads, e));
  }
}

void DataLoader::worker() {
  for (;;) {
    size_t b;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] {
        return stopping_ || error_ || next_to_build_ >= num_batches_ ||
               next_to_build_ < next_to_return_ + static_cast<size_t>(opt_.prefetch);
      });
      if (stopping_ || error_ || next_to_build_ >= num_batches_) return;
      b = next_to_build_++;
    }
    Batch batch;
    std::exception_ptr err;
    try {
      build_batch(b, batch);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (err) {
        if (!error_ || b < error_batch_) {
          error_ = err;
          error_batch_ = b;
        }
      } else {
        ready_.emplace(b, std::move(batch));
      }
    }
    cv_ready_.notify_all();
    if (err) {
      cv_work_.notify_all();
      return;
    }
  }
}

void DataLoader::build_batch(size_t b, Batch& out) const {
  const size_t bs = static_cast<size_t>(opt_.batch_size);
  const size_t begin = b * bs, end = std::min(order_.size(), begin + bs);
  const int n = static_cast<int>(end - begin);
  const int s = opt_.image_size;
  const size_t chw = 3 * static_cast<size_t>(s) * s;
  out.size = n;
  out.image_size = s;
  out.images.assign(chw * n, 0.0f);
  out.indices.assign(order_.begin() + begin, order_.begin() + end);
  out.widths.resize(n);
  out.heights.resize(n);
  std::vector<std::vector<BoxAnnotation>> targets(n), ignored(n);
  int g = 1, ig = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t idx = out.indices[i];
    const ImageRecord& rec = ds_.images[static_cast<size_t>(idx)];
    for (const BoxAnnotation& b :
         make_sample(rec, opt_, derive_seed(epoch_seed_, static_cast<uint64_t>(idx)),
                     out.images.data() + chw * i))
      (b.ignore ? ignored[i] : targets[i]).push_back(b);
    out.widths[i] = rec.width;
    out.heights[i] = rec.height;
    g = std::max(g, static_cast<int>(targets[i].size()));
    ig = std::max(ig, static_cast<int>(ignored[i].size()));
  }
  out.max_boxes = g;
  out.boxes.assign(static_cast<size_t>(n) * g * 4, 0.0f);
  out.labels.assign(static_cast<size_t>(n) * g, 0);
  out.valid.assign(static_cast<size_t>(n) * g, 0);
  out.max_ignored = ig;
  out.ignore_boxes.assign(static_cast<size_t>(n) * ig * 4, 0.0f);
  const float inv = 1.0f / static_cast<float>(s);
  auto put = [inv](const BoxAnnotation& b, float* to) {
    to[0] = b.x1 * inv;
    to[1] = b.y1 * inv;
    to[2] = b.x2 * inv;
    to[3] = b.y2 * inv;
  };
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < targets[i].size(); ++k) {
      const size_t j = static_cast<size_t>(i) * g + k;
      put(targets[i][k], &out.boxes[4 * j]);
      out.labels[j] = targets[i][k].label;
      out.valid[j] = 1;
    }
    for (size_t k = 0; k < ignored[i].size(); ++k)
      put(ignored[i][k], &out.ignore_boxes[4 * (static_cast<size_t>(i) * ig + k)]);
  }
}

bool DataLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!started_)
    throw DataError("loader: next() before start_epoch()");
  if (next_to_return_ >= num_batches_) return false;
  // Batches before a failed one were all taken by workers before it (they take batches in
  // order and stop taking after a failure), so they arrive: wait for them.
  cv_ready_.wait(lk, [&] {
    return ready_.count(next_to_return_) > 0 || (error_ && error_batch_ <= next_to_return_);
  });
  auto it = ready_.find(next_to_return_);
  if (it == ready_.end()) {
    std::exception_ptr e = error_;
    lk.unlock();
    stop();
    std::rethrow_exception(e);
  }
  out = std::move(it->second);
  ready_.erase(it);
  ++next_to_return_;
  lk.unlock();
  cv_work_.notify_all();
  return true;
}

LoaderThroughput measure_loader_throughput(const Dataset& dataset, const LoaderOptions& options,
                                           size_t max_batches) {
  DataLoader loader(dataset, options);
  LoaderThroughput r;
  const auto t0 = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  Batch b;
  size_t n = 0;
  while ((max_batches == 0 || n < max_batches) && loader.next(b)) {
    r.images += static_cast<size_t>(b.size);
    ++n;
  }
  const auto t1 = std::chrono::steady_clock::now();
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.images_per_second = r.seconds > 0 ? r.images / r.seconds : 0.0;
  return r;
}

}  // namespace ssdtrain
