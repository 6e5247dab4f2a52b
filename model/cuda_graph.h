// CUDA graphs for the fixed-shape part of inference: a function of one input tensor (here the
// network and the fixed-shape output stage) is captured once per input shape and settings and
// then replayed, one launch instead of hundreds of small kernel launches per batch (batch-1
// inference is launch-bound on a fast GPU).
//
// A captured function must have fixed shapes, no host synchronisation and no host-to-device
// copies of pageable memory; it reads its input from a static buffer that run() copies into, and
// its outputs are static buffers that the next run() overwrites.
//
// GraphKind::Emulated is the CPU stand-in the tests use to exercise the same bookkeeping: its
// "replay" re-runs the function on the static input and copies the results into the static
// outputs, so a caller that forgets the static-buffer rules gets wrong results there too.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <c10/core/Stream.h>
#include <torch/types.h>

#include "graph_stats.h"

namespace ssd {

enum class GraphKind { Cuda, Emulated };

using GraphFn = std::function<std::vector<torch::Tensor>(const torch::Tensor& input)>;

class StaticGraph {
 public:
  // Captures fn on a static copy of `example` (same shape, dtype, device and memory format). For
  // GraphKind::Cuda the current CUDA stream must not be the default stream, and fn should have
  // run eagerly on that shape first (cuDNN's autotuner and lazy initialisation must not run
  // during capture). Throws ssd::Error when capture fails; the stream is left usable.
  StaticGraph(GraphKind kind, const torch::Tensor& example, const GraphFn& fn);
  ~StaticGraph();
  StaticGraph(const StaticGraph&) = delete;
  StaticGraph& operator=(const StaticGraph&) = delete;

  // Copies `input` into the static input and replays on the current stream; returns the static
  // outputs (valid until the next run). `input` must match the example's shape and dtype.
  const std::vector<torch::Tensor>& run(const torch::Tensor& input);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The graphs of one function, keyed by the input's shape and dtype plus a caller's tag (settings
// the function bakes into its kernels, e.g. thresholds). A key's first `warmup_runs` calls (at
// least one) run eagerly, the next captures, on a thread that has run the key eagerly itself (LibTorch keeps
// cuDNN's autotuning results and the cuDNN/cuBLAS handles per thread: a thread's first
// convolution of a shape inside a capture would autotune there and invalidate it; a thread new
// to the key runs it eagerly once first). A capture that fails leaves that key eager for good,
// also after the key was evicted (counted in stats(), with the reason). At most `capacity`
// graphs are kept, the least recently used evicted.
class GraphCache {
 public:
  GraphCache(GraphKind kind, int warmup_runs = 2, size_t capacity = 4);
  std::vector<torch::Tensor> run(const torch::Tensor& input, const std::string& tag,
                                 const GraphFn& fn);
  const GraphStats& stats() const { return stats_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    int eager_runs = 0;
    std::set<std::thread::id> warm_threads;   // threads that ran the key eagerly
    bool failed = false;
    std::unique_ptr<StaticGraph> graph;
  };
  GraphKind kind_;
  int warmup_runs_;
  size_t capacity_;
  std::list<Entry> entries_;   // most recently used first
  std::set<std::string> failed_keys_;
  GraphStats stats_;
};

// A CUDA stream of the caller's own for this object's lifetime. LibTorch's pooled streams are
// handed out round robin, 32 per device, so past 32 users two of them share one; a graph captured
// on a stream that another thread queues work on at the time would record that work too. The
// stream is never destroyed: the destructor synchronises it and gives it back to a process-wide
// list that the next OwnedCudaStream on the device takes from. (LibTorch 2.x's page-locked host
// allocator notes each stream a block was copied on and records an event on it when the block is
// freed, which may be long after the stream's owner is gone: a frame of ssddetect's pool outlives
// the Detector that uploaded it. An event recorded on a destroyed stream fails inside a deleter,
// and the process ends.) In builds without CUDA graphs (nothing is captured there, so sharing
// costs only concurrency) this is one of LibTorch's pooled streams.
class OwnedCudaStream {
 public:
  explicit OwnedCudaStream(const torch::Device& device);
  ~OwnedCudaStream();
  OwnedCudaStream(const OwnedCudaStream&) = delete;
  OwnedCudaStream& operator=(const OwnedCudaStream&) = delete;
  c10::Stream stream() const { return stream_; }

 private:
  [[maybe_unused]] void* handle_ = nullptr;   // cudaStream_t created here (CUDA graph builds), else null
  c10::Stream stream_;
};

}  // namespace ssd
