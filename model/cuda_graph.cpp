#include "cuda_graph.h"

#include <algorithm>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>

#include <torch/version.h>

#include <c10/core/impl/VirtualGuardImpl.h>

#ifdef SSD_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 11)
#include <ATen/core/CachingHostAllocator.h>
#endif
#endif

#include "error.h"

namespace ssd {

bool cuda_graphs_compiled() {
#ifdef SSD_WITH_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

struct StaticGraph::Impl {
  GraphKind kind = GraphKind::Emulated;
  GraphFn fn;                          // Emulated: run again by each replay
  torch::Tensor input;                 // the static input
  std::vector<torch::Tensor> outputs;  // the static outputs
#ifdef SSD_WITH_CUDA_GRAPHS
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

namespace {

std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

#ifdef SSD_WITH_CUDA_GRAPHS
#define SSD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// LibTorch's CUDAGraph, with a look at whether capture_end() got as far as ending the capture
// (its destructor then returns the graph's memory pool to the allocator; before that, nothing does).
struct CudaGraph : at::cuda::CUDAGraph {
  bool capture_ended() const { return capture_ended_; }
};

// After a failed capture: what capture_end() did not get to. Its first step, ending the stream's
// capture, throws for an invalidated capture (a synchronisation or an unsupported call inside),
// before it tells the caching allocators that the capture is over; they would then go on routing
// allocations through a filter that points into the destroyed graph, stop processing their
// events, and never free the graph's pool. Each call may find its part already done (it throws
// then, and that is fine).
void end_failed_capture(const CudaGraph& graph, c10::DeviceIndex device, c10::MempoolId_t pool) {
  if (graph.capture_ended()) return;   // the destructor's reset() releases the pool
#if SSD_TORCH_AT_LEAST(2, 4)
  namespace alloc = c10::cuda::CUDACachingAllocator;
  try {
    alloc::endAllocateToPool(device, pool);
  } catch (...) {
  }
  try {
    alloc::releasePool(device, pool);
  } catch (...) {
  }
#if SSD_TORCH_AT_LEAST(2, 11)
  // Page-locked host memory allocated during a capture has a graph pool of its own too.
  auto* host = at::getHostAllocator(at::kCUDA);
  bool host_ended = false;
  try {
    host->end_allocate_to_pool(pool);
    host_ended = true;
  } catch (...) {
  }
  try {
    if (host_ended) host->release_pool(pool);
  } catch (...) {
  }
#endif
#else
  (void)device;
  (void)pool;
#endif
}

// Held while a graph is captured (and a failed one destroyed) and while one is destroyed:
// LibTorch's CUDAGraph registers itself with the CUDA generators' shared state in
// capture_begin() and unregisters in its destructor, unlocked; two elements' streaming threads
// may capture at once.
std::mutex& graph_bookkeeping_mutex() {
  static std::mutex m;
  return m;
}

// Captures fn(input) into graph on the current stream, which must not be the default stream.
// The graph gets a memory pool of its own, named here so that a failed capture can release it.
std::vector<torch::Tensor> capture(CudaGraph& graph, const torch::Tensor& input, const GraphFn& fn) {
  const auto index = input.device().index();
  if (c10::cuda::getCurrentCUDAStream(index) == c10::cuda::getDefaultCUDAStream(index))
    throw Error("CUDA graph capture needs a non-default current stream");
  const auto pool = at::cuda::graph_pool_handle();
  std::vector<torch::Tensor> outputs;
  try {
    // Thread-local capture mode: other threads' CUDA calls (other elements of the pipeline) do
    // not invalidate this capture, nor does it make theirs fail.
#if SSD_TORCH_AT_LEAST(2, 1)
    graph.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
#else
    graph.capture_begin(pool);
#endif
    try {
      outputs = fn(input);
    } catch (...) {
      // End the (now invalid) capture so the stream is usable again; that error is secondary.
      try {
        graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    graph.capture_end();
  } catch (...) {
    outputs.clear();   // blocks of the failed graph's pool, freed before the pool is released
    end_failed_capture(graph, index, pool);
    throw;
  }
  return outputs;
}
#endif

}  // namespace

StaticGraph::StaticGraph(GraphKind kind, const torch::Tensor& example, const GraphFn& fn)
    : impl_(std::make_unique<Impl>()) {
  auto& g = *impl_;
  g.kind = kind;
  try {
    g.input = torch::empty_like(example);   // keeps the memory format (channels_last)
    g.input.copy_(example);
    if (kind == GraphKind::Emulated) {
      g.fn = fn;
      g.outputs = fn(g.input);
      return;
    }
#ifdef SSD_WITH_CUDA_GRAPHS
    if (!example.is_cuda())
      throw Error("CUDA graph capture needs a CUDA tensor, got one on " + example.device().str());
    // Before the graph: a failed one is destroyed (unwinding) with the lock still held.
    const std::lock_guard<std::mutex> lock(graph_bookkeeping_mutex());
    auto graph = std::make_unique<CudaGraph>();
    try {
      g.outputs = capture(*graph, g.input, fn);
    } catch (...) {
#if !SSD_TORCH_AT_LEAST(2, 4)
      // LibTorch before 2.4: end_failed_capture cannot tell the allocator, which may still hold
      // a pointer to the graph; the graph is left alive (a small leak per failed capture).
      (void)graph.release();
#endif
      throw;
    }
    g.graph = std::move(graph);
#else
    throw Error("this build cannot capture CUDA graphs (LibTorch without CUDA, or no CUDA runtime "
                "headers when it was configured)");
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("CUDA graph capture failed: " + message_of(e));
  }
}

StaticGraph::~StaticGraph() {
#ifdef SSD_WITH_CUDA_GRAPHS
  if (impl_->graph) {
    const std::lock_guard<std::mutex> lock(graph_bookkeeping_mutex());
    impl_->graph.reset();
  }
#endif
}

const std::vector<torch::Tensor>& StaticGraph::run(const torch::Tensor& input) {
  auto& g = *impl_;
  TORCH_CHECK(input.sizes() == g.input.sizes() && input.dtype() == g.input.dtype() &&
                  input.device() == g.input.device(),
              "StaticGraph::run: input ", input.sizes(), " ", input.dtype(), " on ", input.device(),
              " does not match the captured ", g.input.sizes(), " ", g.input.dtype(), " on ",
              g.input.device());
  g.input.copy_(input);
  if (g.kind == GraphKind::Emulated) {
    auto fresh = g.fn(g.input);
    TORCH_CHECK(fresh.size() == g.outputs.size(), "StaticGraph::run: the function returned ",
                fresh.size(), " outputs, ", g.outputs.size(), " when captured");
    for (size_t i = 0; i < fresh.size(); ++i) {
      TORCH_CHECK(fresh[i].sizes() == g.outputs[i].sizes() && fresh[i].dtype() == g.outputs[i].dtype(),
                  "StaticGraph::run: output ", i, " is ", fresh[i].sizes(), " ", fresh[i].dtype(),
                  ", captured as ", g.outputs[i].sizes(), " ", g.outputs[i].dtype(),
                  " (a captured function must have fixed shapes)");
      g.outputs[i].copy_(fresh[i]);
    }
    return g.outputs;
  }
#ifdef SSD_WITH_CUDA_GRAPHS
  g.graph->replay();
#endif
  return g.outputs;
}

GraphCache::GraphCache(GraphKind kind, int warmup_runs, size_t capacity)
    : kind_(kind), warmup_runs_(std::max(warmup_runs, 1)), capacity_(std::max<size_t>(capacity, 1)) {}

std::vector<torch::Tensor> GraphCache::run(const torch::Tensor& input, const std::string& tag,
                                           const GraphFn& fn) {
  std::ostringstream k;
  k << input.sizes() << ' ' << input.dtype() << ' ' << input.device() << ' ' << tag;
  const std::string key = k.str();
  auto it = entries_.begin();
  while (it != entries_.end() && it->key != key) ++it;
  if (it == entries_.end()) {
    entries_.emplace_front();
    entries_.front().key = key;
    entries_.front().failed = failed_keys_.count(key) > 0;
    if (entries_.size() > capacity_) entries_.pop_back();
  } else if (it != entries_.begin()) {
    entries_.splice(entries_.begin(), entries_, it);
  }
  Entry& e = entries_.front();
  const auto thread = std::this_thread::get_id();
  if (!e.graph && !e.failed && e.eager_runs >= warmup_runs_ && e.warm_threads.count(thread)) {
    try {
      e.graph = std::make_unique<StaticGraph>(kind_, input, fn);
      ++stats_.captures;
    } catch (const Error& err) {
      e.failed = true;
      failed_keys_.insert(key);
      ++stats_.failures;
      stats_.last_error = err.what();
    }
  }
  if (e.graph) {
    ++stats_.replays;
    return e.graph->run(input);
  }
  ++e.eager_runs;
  e.warm_threads.insert(thread);
  ++stats_.eager;
  return fn(input);
}

#ifdef SSD_WITH_CUDA_GRAPHS
namespace {

// The streams OwnedCudaStream created that no OwnedCudaStream holds now, by device (never
// destroyed, see cuda_graph.h; never freed either, so that a block freed during the process's
// exit still finds its stream).
struct FreeStreams {
  std::mutex mutex;
  std::map<c10::DeviceIndex, std::vector<cudaStream_t>> by_device;
};
FreeStreams& free_streams() {
  static auto* list = new FreeStreams;
  return *list;
}

}  // namespace

OwnedCudaStream::OwnedCudaStream(const torch::Device& device)
    : stream_(c10::Stream::DEFAULT, device) {
  TORCH_CHECK(device.is_cuda(), "OwnedCudaStream: ", device, " is not a CUDA device");
  const c10::cuda::CUDAGuard on_device(device.index());
  const c10::DeviceIndex index = c10::cuda::current_device();   // (device.index() may be -1)
  cudaStream_t s = nullptr;
  {
    auto& list = free_streams();
    const std::lock_guard<std::mutex> lock(list.mutex);
    auto& mine = list.by_device[index];
    if (!mine.empty()) {
      s = mine.back();
      mine.pop_back();
    }
  }
  if (!s) C10_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  handle_ = s;
  stream_ = c10::cuda::getStreamFromExternal(s, index).unwrap();
}

OwnedCudaStream::~OwnedCudaStream() {
  const c10::cuda::CUDAGuard on_device(stream_.device_index());
  auto* s = static_cast<cudaStream_t>(handle_);
  // Nothing may still run on it when the next owner takes it (the owner synchronises first;
  // this is the last guard).
  (void)cudaStreamSynchronize(s);
  auto& list = free_streams();
  const std::lock_guard<std::mutex> lock(list.mutex);
  list.by_device[stream_.device_index()].push_back(s);
}
#else
OwnedCudaStream::OwnedCudaStream(const torch::Device& device)
    : stream_(c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStreamFromGlobalPool(device)) {}

OwnedCudaStream::~OwnedCudaStream() = default;
#endif

}  // namespace ssd
