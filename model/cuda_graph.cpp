#include "cuda_graph.h"

#include <algorithm>
#include <exception>
#include <sstream>

#include <torch/version.h>

#ifdef SSD_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
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
// Captures fn(input) into graph on the current stream, which must not be the default stream.
std::vector<torch::Tensor> capture(at::cuda::CUDAGraph& graph, const torch::Tensor& input,
                                   const GraphFn& fn) {
  const auto index = input.device().index();
  if (c10::cuda::getCurrentCUDAStream(index) == c10::cuda::getDefaultCUDAStream(index))
    throw Error("CUDA graph capture needs a non-default current stream");
  // Thread-local capture mode: other threads' CUDA calls (other elements of the pipeline) do not
  // invalidate this capture, nor does it make theirs fail.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
#else
  graph.capture_begin();
#endif
  std::vector<torch::Tensor> outputs;
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
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    g.outputs = capture(*g.graph, g.input, fn);
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

StaticGraph::~StaticGraph() = default;

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
    : kind_(kind), warmup_runs_(std::max(warmup_runs, 0)), capacity_(std::max<size_t>(capacity, 1)) {}

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
    if (entries_.size() > capacity_) entries_.pop_back();
  } else if (it != entries_.begin()) {
    entries_.splice(entries_.begin(), entries_, it);
  }
  Entry& e = entries_.front();
  if (!e.graph && !e.failed && e.eager_runs >= warmup_runs_) {
    try {
      e.graph = std::make_unique<StaticGraph>(kind_, input, fn);
      ++stats_.captures;
    } catch (const Error& err) {
      e.failed = true;
      ++stats_.failures;
      stats_.last_error = err.what();
    }
  }
  if (e.graph) {
    ++stats_.replays;
    return e.graph->run(input);
  }
  ++e.eager_runs;
  ++stats_.eager;
  return fn(input);
}

}  // namespace ssd
