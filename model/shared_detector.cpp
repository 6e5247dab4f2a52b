#include "shared_detector.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "class_filter.h"
#include "cpu_workers.h"
#include "device.h"
#include "error.h"

namespace ssd {

namespace {

using Clock = std::chrono::steady_clock;

// One caller's frame, on the caller's stack until it is done.
struct Request {
  const FrameView* frame;
  float threshold;
  const std::vector<float>* class_thresholds;   // the caller's (empty: threshold for every class)
  int max_detections;
  Clock::time_point arrival;
  std::thread::id caller;
  std::vector<Detection> result;
  std::string error;   // why the batch failed; empty if it did not
  bool done = false;
  Clock::time_point started{};   // when its batch started
  Clock::duration computed{};    // from then until its detections were handed over
};

// The threshold a caller holds class `label` to.
float threshold_of(const Request& r, int label) {
  const auto& t = *r.class_thresholds;
  return label >= 0 && static_cast<size_t>(label) < t.size() ? t[static_cast<size_t>(label)] : r.threshold;
}

// The caller's detections out of the batch's: those above its class's threshold (the batch ran
// with thresholds no higher, and results are sorted by decreasing confidence), at most its count.
std::vector<Detection> cut(std::vector<Detection> dets, const Request& r) {
  dets.erase(std::remove_if(dets.begin(), dets.end(),
                            [&](const Detection& d) { return !(d.confidence > threshold_of(r, d.label_id)); }),
             dets.end());
  const size_t max_detections = static_cast<size_t>(r.max_detections);
  if (dets.size() > max_detections) dets.resize(max_detections);
  return dets;
}

// Whether two paths name one file (spelt alike, or through links, "..", a relative path).
bool same_file(const std::string& a, const std::string& b) {
  if (a == b) return true;
  std::error_code ec;
  const bool same = std::filesystem::equivalent(a, b, ec);
  return !ec && same;
}

// The first option in which `b` differs from the instance's `a`, in words; empty if none.
std::string difference(const SharedDetectorOptions& a, const SharedDetectorOptions& b) {
  std::ostringstream out;
  const DetectorOptions &x = a.detector, &y = b.detector;
  if (!same_file(x.model_path, y.model_path))
    out << "model file " << x.model_path << " (this one asks for " << y.model_path << ")";
  else if (x.device != y.device)
    out << "device " << x.device << " (this one asks for " << y.device << ")";
  else if (x.fp16 != y.fp16)
    out << "precision " << (x.fp16 ? "fp16" : "fp32") << " (this one asks for " << (y.fp16 ? "fp16" : "fp32") << ")";
  else if (x.nms_iou != y.nms_iou)
    out << "NMS IoU " << x.nms_iou << " (this one asks for " << y.nms_iou << ")";
  else if (x.class_agnostic_nms != y.class_agnostic_nms)
    out << "NMS " << (x.class_agnostic_nms ? "across classes" : "per class") << " (this one asks for "
        << (y.class_agnostic_nms ? "across classes" : "per class") << ")";
  else if (a.max_batch != b.max_batch)
    out << "batch size " << a.max_batch << " (this one asks for " << b.max_batch << ")";
  else if (a.max_wait != b.max_wait)
    out << "batch wait " << a.max_wait.count() << " us (this one asks for " << b.max_wait.count() << " us)";
  else if (x.max_in_flight != y.max_in_flight)
    out << x.max_in_flight << " batch(es) in flight (this one asks for " << y.max_in_flight << ")";
  else if (x.threads != y.threads)
    out << x.threads << " thread(s) (this one asks for " << y.threads << ")";
  else if (x.cuda_graphs != y.cuda_graphs)
    out << "CUDA graphs " << (x.cuda_graphs ? "on" : "off") << " (this one asks for "
        << (y.cuda_graphs ? "on" : "off") << ")";
  else if (x.emulate_graphs != y.emulate_graphs || x.fixed_postprocess != y.fixed_postprocess)
    out << "CUDA graph emulation " << x.emulate_graphs << " and fixed output stage " << x.fixed_postprocess
        << " (this one asks for " << y.emulate_graphs << " and " << y.fixed_postprocess << ")";
  return out.str();
}

// The process's instances by name. A name's first caller loads its model with the registry
// unlocked (`loading`), so that other names are acquired and released meanwhile; later callers
// of that name wait for the load (`loaded`) and then share the instance, or, when it failed,
// load it themselves.
struct RegistryEntry {
  std::weak_ptr<SharedDetector> instance;
  bool loading = false;
};
std::mutex registry_mutex;
std::condition_variable loaded;   // with registry_mutex: a load ended
std::map<std::string, RegistryEntry>& registry() {
  static auto* instances = new std::map<std::string, RegistryEntry>();   // never destroyed
  return *instances;
}

}  // namespace

// One network runner of the instance: a Detector and the thread that feeds it. On CUDA an
// instance has one, whose Detector keeps up to max_in_flight batches on the device; on the CPU,
// where a Detector computes each batch before submit() returns, it has max_in_flight of them,
// each with its own copy of the model, so that batches run on several cores at once.
struct Worker {
  std::unique_ptr<Detector> detector;
  // The detector's output settings. The threshold only goes down and the count only up, so
  // that the output stage's settings (and its CUDA graphs) stay put while streams with
  // different settings share the batches.
  float threshold = 0.f, applied_nms = 0.f;
  std::vector<float> class_thresholds;   // the last batch's, per frame (where a caller filters)
  int max_detections = 0;
  std::thread thread;
};

struct SharedDetector::Impl {
  std::string id;
  SharedDetectorOptions options;
  std::vector<std::unique_ptr<Worker>> workers;   // after construction, each used by its thread only
  std::vector<std::string> labels;
  std::string device_name;
  bool fp16 = false, graphs = false;

  mutable std::mutex mutex;             // guards everything below
  std::condition_variable work;         // for the workers: a frame queued, or stop
  std::condition_variable finished;     // for callers: a batch is done
  std::deque<Request*> queue;
  float nms_iou = 0.45f;
  bool stop = false;
  Stats stats;
  // The threads that called detect() lately, with when each last queued a frame or had one done. A caller
  // blocks in detect() until its frame is done, so it has one frame queued at a time: a batch
  // waits for more frames only while fewer are queued than there are callers. One that queued
  // nothing for `idle_after` (a stream paused, at its end, or gone) is no longer waited for.
  std::map<std::thread::id, Clock::time_point> callers;
  std::map<std::thread::id, int> outstanding;   // each caller's frames queued or in a batch
  // Callers that left (leave()) with a frame outstanding: its batch's end does not count them
  // again (their next frame does).
  std::set<std::thread::id> left;
  Clock::duration idle_after{};
  // Each caller's pace: when it last queued a frame, and the time since the one before (zero
  // until it has queued two). A batch waits only for the callers whose next frame is due before
  // its deadline at that pace: a camera at 1 fps beside cameras at 5 fps held each of their
  // batches for the whole wait, and their frames came out later than the latency reported.
  struct Pace {
    Clock::time_point last{};
    Clock::duration period{};
  };
  std::map<std::thread::id, Pace> pace;

  // The callers still counted, the others forgotten.
  size_t active_callers(Clock::time_point now) {
    for (auto it = callers.begin(); it != callers.end();) it = now - it->second >= idle_after ? callers.erase(it) : ++it;
    // A caller's pace outlives its silences (a camera at 1 fps is quiet for a second between
    // frames, longer than idle_after may be), not a minute without a frame.
    for (auto it = pace.begin(); it != pace.end();)
      it = now - it->second.last >= std::chrono::minutes(1) ? pace.erase(it) : ++it;
    return callers.size();
  }
  // Of those, the ones a batch closing at `deadline` waits for: a frame queued, or the next one
  // due at the caller's pace (or its pace not known yet) within half a frame interval of the
  // oldest frame queued, the shortest interval of the callers queued and its own, and before
  // the deadline. A batch waits for the frames of this round, not for the next frames of
  // streams whose frames just went in the batch before (a stream that missed a batch waited a
  // whole interval for them, and did again each round: its frames 200 ms late at 5 fps).
  size_t callers_due(Clock::time_point now, Clock::time_point deadline) {
    active_callers(now);
    const auto pace_of = [&](std::thread::id caller) -> const Pace* {
      const auto p = pace.find(caller);
      return p == pace.end() || p->second.period == Clock::duration::zero() ? nullptr : &p->second;
    };
    const auto period_of = [&](std::thread::id caller) {
      const Pace* p = pace_of(caller);
      return p ? p->period : Clock::duration::zero();
    };
    std::set<std::thread::id> queued;
    Clock::duration shortest = Clock::duration::zero();   // of the callers queued (zero: none known)
    for (const Request* r : queue) {
      queued.insert(r->caller);
      const auto p = period_of(r->caller);
      if (p > Clock::duration::zero() && (shortest == Clock::duration::zero() || p < shortest)) shortest = p;
    }
    const auto oldest = queue.empty() ? now : queue.front()->arrival;
    size_t n = 0;
    for (const auto& c : callers) {
      const Pace* mine = pace_of(c.first);
      if (queued.count(c.first) || !mine) {
        ++n;
        continue;
      }
      const auto interval = shortest == Clock::duration::zero() ? mine->period : std::min(mine->period, shortest);
      n += mine->last + mine->period <= std::min(deadline, oldest + interval / 2);
    }
    return n;
  }
  // When the next of them stops being counted (time_point::max() if none is).
  Clock::time_point next_idle() const {
    auto first = Clock::time_point::max();
    for (const auto& c : callers) first = std::min(first, c.second + idle_after);
    return first;
  }

  // Hands each caller of a batch its detections, or the batch's error (each caller throws its
  // own copy).
  void finish(Worker& w, const std::vector<Request*>& batch, std::vector<std::vector<Detection>>* results,
              std::exception_ptr error) {
    std::string message;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
        message = "unknown error";
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = Clock::now();
    for (size_t i = 0; i < batch.size(); ++i) {
      Request* r = batch[i];
      // Still sending (its frame may have taken longer than idle_after), unless it left.
      const bool last = --outstanding[r->caller] == 0;
      if (last) outstanding.erase(r->caller);
      if (!left.count(r->caller)) callers[r->caller] = now;
      else if (last) left.erase(r->caller);
      r->computed = now - r->started;
      if (error || !results || i >= results->size()) {
        r->error = error ? message : "model instance \"" + id + "\": no result for a frame";
      } else {
        r->result = cut(std::move((*results)[i]), *r);
      }
      r->done = true;
    }
    if (!error && results) {
      stats.frames += static_cast<int64_t>(batch.size());
      stats.batches++;
      stats.largest_batch = std::max<int64_t>(stats.largest_batch, static_cast<int64_t>(batch.size()));
      if (&w == workers.front().get()) {
        stats.graphs = w.detector->graph_stats();
        stats.preprocess_graphs = w.detector->preprocess_graph_stats();
      }
    }
    finished.notify_all();
  }

  // Starts one batch on the device (on the CPU: computes it).
  bool submit(Worker& w, const std::vector<Request*>& batch, float nms) {
    try {
      float t = w.threshold;
      int m = w.max_detections;
      bool per_class = false;
      std::vector<FrameView> frames;
      for (const Request* r : batch) {
        t = std::min(t, r->threshold);
        m = std::max(m, r->max_detections);
        per_class |= !r->class_thresholds->empty();
        frames.push_back(*r->frame);
      }
      // Where a caller filters classes: each frame's classes at its caller's thresholds (those
      // of a caller without a filter at its threshold), so that another stream's classes take
      // no place among a frame's candidates and detections.
      std::vector<float> ct;
      if (per_class)
        for (const Request* r : batch)
          for (size_t c = 0; c < labels.size(); ++c) ct.push_back(threshold_of(*r, static_cast<int>(c)));
      if (t != w.threshold || m != w.max_detections || nms != w.applied_nms || ct != w.class_thresholds) {
        w.detector->set_postprocess(t, nms, m, ct);
        w.threshold = t;
        w.max_detections = m;
        w.applied_nms = nms;
        w.class_thresholds = std::move(ct);
      }
      w.detector->submit(frames);
      return true;
    } catch (...) {
      finish(w, batch, nullptr, std::current_exception());
      return false;
    }
  }

  void collect(Worker& w, const std::vector<Request*>& batch) {
    std::vector<std::vector<Detection>> results;
    try {
      results = w.detector->collect();
    } catch (...) {
      finish(w, batch, nullptr, std::current_exception());
      return;
    }
    finish(w, batch, &results, nullptr);
  }

  void run(Worker& w) {
    const size_t max_batch = static_cast<size_t>(std::max(1, options.max_batch));
    const size_t max_in_flight = static_cast<size_t>(std::max(1, w.detector->max_in_flight()));
    std::deque<std::vector<Request*>> in_flight;
    // Frames a batch closing at `deadline` waits for: max_batch, or as many as there are callers
    // that may send one by then when fewer.
    auto target = [&](Clock::time_point now, Clock::time_point deadline) {
      return std::min(max_batch, std::max<size_t>(1, callers_due(now, deadline)));
    };
    // (No overflow of arrival + max_wait: a century at most.)
    const auto max_wait = std::min<std::chrono::microseconds>(options.max_wait, std::chrono::hours(24 * 365 * 100));
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return stop || !queue.empty() || !in_flight.empty(); });
      if (queue.empty() && in_flight.empty()) return;   // stopping, nothing left
      bool start = !queue.empty() && in_flight.size() < max_in_flight;
      if (start && max_wait.count() > 0 && queue.size() < target(Clock::now(), queue.front()->arrival + max_wait)) {
        const auto deadline = queue.front()->arrival + max_wait;
        if (Clock::now() < deadline) {
          if (!in_flight.empty()) {
            start = false;   // collect a batch while this one fills
          } else {
            // Until the deadline, more frames, or a caller no longer counted (it may have been
            // the one the batch waited for).
            for (auto now = Clock::now(); !stop && now < deadline && queue.size() < target(now, deadline); now = Clock::now())
              work.wait_until(lock, std::min(deadline, next_idle()));
            if (queue.empty()) continue;   // another worker took the frames meanwhile
          }
        }
      }
      if (start) {
        std::vector<Request*> batch;
        const auto started = Clock::now();
        while (!queue.empty() && batch.size() < max_batch) {
          batch.push_back(queue.front());
          batch.back()->started = started;
          queue.pop_front();
        }
        // Frames of callers with class filters in the order of their filters, not of their
        // arrival: the per-frame thresholds (part of the output stage's graph key) are then the
        // same for every batch of the same streams, and their graphs replay.
        std::stable_sort(batch.begin(), batch.end(), [](const Request* a, const Request* b) {
          return std::tie(*a->class_thresholds, a->threshold) < std::tie(*b->class_thresholds, b->threshold);
        });
        const float nms = nms_iou;
        lock.unlock();
        const bool ok = submit(w, batch, nms);
        lock.lock();
        if (ok) in_flight.push_back(std::move(batch));
      } else {
        std::vector<Request*> batch = std::move(in_flight.front());
        in_flight.pop_front();
        lock.unlock();
        collect(w, batch);
        lock.lock();
      }
    }
  }
};

std::shared_ptr<SharedDetector> SharedDetector::acquire(const std::string& id, const SharedDetectorOptions& asked) {
  if (id.empty()) throw Error("a model instance needs a name");
  // In flight and threads of 0 as chosen for this machine, so that callers leaving them to it and
  // callers asking for what it chooses share the instance.
  SharedDetectorOptions options = asked;
  // The device as named by what it stands for ("auto" the CPU or cuda:0, "cuda" cuda:0), so that
  // callers naming one device two ways share the instance.
  options.detector.device = parse_device(options.detector.device).str();
  const std::string& device = options.detector.device;
  // (As the Detector decides: the CPU emulation of the CUDA path, fixed_postprocess, keeps CUDA's
  // one worker.)
  const bool cpu_workers = device == "cpu" && !options.detector.fixed_postprocess;
  const WorkerCounts counts =
      resolve_workers(asked.detector.max_in_flight, asked.detector.threads, cpu_workers, usable_cpus());
  options.detector.max_in_flight = counts.in_flight;
  options.detector.threads = counts.threads;
  std::unique_lock<std::mutex> lock(registry_mutex);
  auto& instances = registry();
  for (;;) {
    for (auto it = instances.begin(); it != instances.end();)
      it = !it->second.loading && it->second.instance.expired() ? instances.erase(it) : ++it;
    auto it = instances.find(id);
    if (it == instances.end()) break;
    if (it->second.loading) {   // another caller is loading it: share it once loaded
      loaded.wait(lock);
      continue;
    }
    if (auto existing = it->second.instance.lock()) {
      SharedDetectorOptions current = existing->options();
      {
        std::lock_guard<std::mutex> instance_lock(existing->impl_->mutex);
        current.detector.nms_iou = existing->impl_->nms_iou;   // set_nms_iou() may have changed it
      }
      std::string diff = difference(current, options);
      // In flight chosen for the machine (0) follows from the threads: say so, as nobody set it.
      if (!diff.empty() && current.detector.max_in_flight != options.detector.max_in_flight &&
          asked.detector.max_in_flight == 0)
        diff += ", which in-flight 0 chooses for threads " + std::to_string(asked.detector.threads) + " on " +
                std::to_string(usable_cpus()) + " CPU(s): give the elements of an instance the same threads and in-flight";
      if (!diff.empty()) throw Error("model instance \"" + id + "\" already runs with " + diff);
      return existing;
    }
    break;
  }
  instances[id].loading = true;
  lock.unlock();
  std::shared_ptr<SharedDetector> instance;
  try {
    instance = create(id, options, cpu_workers);
  } catch (...) {
    lock.lock();
    instances.erase(id);
    loaded.notify_all();
    throw;
  }
  lock.lock();
  RegistryEntry& entry = instances[id];
  entry.instance = instance;
  entry.loading = false;
  loaded.notify_all();
  return instance;
}

std::shared_ptr<SharedDetector> SharedDetector::create(const std::string& id, const SharedDetectorOptions& options,
                                                       bool cpu_workers) {
  auto impl = std::make_unique<Impl>();
  impl->id = id;
  impl->options = options;
  const int in_flight = options.detector.max_in_flight;
  // On the CPU, in-flight batches are computed side by side: a worker (and a model) each, with
  // the CPUs shared among them.
  DetectorOptions each = options.detector;
  if (cpu_workers) each.max_in_flight = 1;
  for (int k = 0; k < (cpu_workers ? in_flight : 1); ++k) {
    impl->workers.push_back(std::make_unique<Worker>());
    impl->workers.back()->detector = std::make_unique<Detector>(each);
  }
  const Detector& d = *impl->workers.front()->detector;
  impl->labels = d.labels();
  impl->device_name = d.device_name();
  impl->fp16 = d.fp16();
  impl->graphs = d.graphs();
  impl->nms_iou = options.detector.nms_iou;
  for (auto& w : impl->workers) {
    w->applied_nms = options.detector.nms_iou;
    w->threshold = options.detector.threshold;
    w->max_detections = std::max(0, options.detector.max_detections);
  }
  // A caller that queued no frame for twice the wait (at least a second) is not waited for.
  impl->idle_after = std::max<Clock::duration>(
      std::chrono::seconds(1), 2 * std::min<std::chrono::microseconds>(options.max_wait, std::chrono::hours(1)));
  std::shared_ptr<SharedDetector> instance(new SharedDetector(std::move(impl)));
  Impl* i = instance->impl_.get();
  for (auto& w : i->workers) {
    Worker* worker = w.get();
    worker->thread = std::thread([i, worker] { i->run(*worker); });
  }
  return instance;
}

SharedDetector::SharedDetector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SharedDetector::~SharedDetector() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work.notify_all();
  for (auto& w : impl_->workers)
    if (w->thread.joinable()) w->thread.join();
}

std::vector<Detection> SharedDetector::detect(const FrameView& frame, float threshold, int max_detections,
                                              const std::vector<float>& class_thresholds,
                                              std::chrono::nanoseconds* computed) {
  check_frame(frame);
  // (As Detector::set_postprocess: refused here, before it could fail the batch of another
  // stream or silently drop this caller's detections.)
  if (std::isnan(threshold)) throw Error("the threshold must be a number, not NaN");
  check_class_thresholds(class_thresholds, impl_->labels.size());
  Request r{&frame, threshold, &class_thresholds, std::max(0, max_detections), Clock::now(),
            std::this_thread::get_id(), {}, {}, false, {}, {}};
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock(d.mutex);
  d.callers[r.caller] = r.arrival;
  auto& pace = d.pace[r.caller];
  if (pace.last != Clock::time_point{}) pace.period = r.arrival - pace.last;
  pace.last = r.arrival;
  d.left.erase(r.caller);
  d.outstanding[r.caller]++;
  d.queue.push_back(&r);
  d.work.notify_one();
  d.finished.wait(lock, [&] { return r.done; });
  if (computed) *computed = std::chrono::duration_cast<std::chrono::nanoseconds>(r.computed);
  if (!r.error.empty()) throw Error(r.error);
  return std::move(r.result);
}

void SharedDetector::leave(std::thread::id caller) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->callers.erase(caller);
    impl_->pace.erase(caller);
    if (impl_->outstanding.count(caller)) impl_->left.insert(caller);
  }
  impl_->work.notify_all();   // a batch waiting for its frame runs now
}

void SharedDetector::set_nms_iou(float nms_iou) {
  if (std::isnan(nms_iou)) throw Error("the NMS IoU must be a number, not NaN");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->nms_iou = nms_iou;
}

const std::string& SharedDetector::id() const { return impl_->id; }
const SharedDetectorOptions& SharedDetector::options() const { return impl_->options; }
const std::vector<std::string>& SharedDetector::labels() const { return impl_->labels; }
std::string SharedDetector::device_name() const { return impl_->device_name; }
bool SharedDetector::fp16() const { return impl_->fp16; }
bool SharedDetector::graphs() const { return impl_->graphs; }

SharedDetector::Stats SharedDetector::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

int SharedDetector::workers() const { return static_cast<int>(impl_->workers.size()); }

long SharedDetector::users() const {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry().find(impl_->id);
  return it == registry().end() ? 0 : it->second.instance.use_count();
}

}  // namespace ssd
