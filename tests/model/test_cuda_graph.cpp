// Captured graphs (model/cuda_graph.h): the static-buffer rules and the cache's bookkeeping with
// the CPU emulation, and real CUDA graphs against eager runs where a GPU is present.
#include <gtest/gtest.h>

#include <thread>

#include <torch/cuda.h>
#include <torch/types.h>

#include <c10/core/StreamGuard.h>

#ifdef SSD_WITH_CUDA_GRAPHS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "cuda_graph.h"
#include "error.h"
#include "test_util.h"

using namespace ssd;

namespace {

std::vector<torch::Tensor> affine(const torch::Tensor& x) {
  return {x * 2 + 1, x.sum(1)};
}

}  // namespace

TEST(StaticGraph, EmulatedReplayWritesTheSameOutputBuffersFromTheStaticInput) {
  auto a = torch::arange(6, torch::kFloat32).view({2, 3});
  StaticGraph g(GraphKind::Emulated, a, affine);
  const auto out_ptr = g.run(a)[0].data_ptr();
  EXPECT_TRUE(torch::equal(g.run(a)[0], a * 2 + 1));
  auto b = torch::full({2, 3}, 5.0f);
  const auto& out = g.run(b);
  // New values in the captured buffers: a caller that keeps output tensors sees them change.
  EXPECT_EQ(out[0].data_ptr(), out_ptr);
  EXPECT_TRUE(torch::equal(out[0], b * 2 + 1));
  EXPECT_TRUE(torch::equal(out[1], torch::full({2}, 15.0f)));
  // The static input is a copy: changing the caller's tensor afterwards changes nothing.
  b.fill_(0);
  EXPECT_TRUE(torch::equal(out[0], torch::full({2, 3}, 11.0f)));
  ssdtest::expect_error([&] { g.run(torch::zeros({3, 3})); },
                        {"[3, 3]", "does not match the captured", "[2, 3]"});
  ssdtest::expect_error([&] { g.run(torch::zeros({2, 3}, torch::kFloat64)); }, {"double", "float"});
}

TEST(StaticGraph, EmulatedReplayRefusesAFunctionWhoseShapesChange) {
  int calls = 0;
  GraphFn grows = [&](const torch::Tensor& x) {
    return std::vector<torch::Tensor>{x.repeat({++calls, 1})};
  };
  StaticGraph g(GraphKind::Emulated, torch::ones({1, 2}), grows);
  ssdtest::expect_error([&] { g.run(torch::ones({1, 2})); }, {"output 0", "[2, 2]", "[1, 2]", "fixed shapes"});
}

TEST(StaticGraph, CaptureFailuresAreErrors) {
  // A CUDA capture of a CPU tensor, whether or not this build has CUDA graphs.
  ssdtest::expect_error([] { StaticGraph g(GraphKind::Cuda, torch::ones({2}), affine); },
                        {cuda_graphs_compiled() ? "needs a CUDA tensor" : "cannot capture CUDA graphs"});
  ssdtest::expect_error(
      [] {
        StaticGraph g(GraphKind::Emulated, torch::ones({2}),
                      [](const torch::Tensor&) -> std::vector<torch::Tensor> { throw Error("boom"); });
      },
      {"boom"});
}

TEST(GraphCache, WarmsUpCapturesReplaysAndEvictsTheLeastRecentlyUsed) {
  GraphCache cache(GraphKind::Emulated, /*warmup_runs=*/2, /*capacity=*/2);
  int calls = 0;
  GraphFn fn = [&](const torch::Tensor& x) {
    ++calls;
    return affine(x);
  };
  auto x1 = torch::rand({1, 3}), x2 = torch::rand({2, 3});
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(torch::equal(cache.run(x1, "t", fn)[0], x1 * 2 + 1));
  EXPECT_EQ(cache.stats().eager, 2);
  EXPECT_EQ(cache.stats().captures, 0);
  for (int i = 0; i < 3; ++i) {
    auto x = torch::rand({1, 3});
    EXPECT_TRUE(torch::allclose(cache.run(x, "t", fn)[0], x * 2 + 1));
  }
  EXPECT_EQ(cache.stats().captures, 1);
  EXPECT_EQ(cache.stats().replays, 3);
  EXPECT_EQ(cache.stats().eager, 2);
  // Another tag or shape is another graph; a third key evicts the least recently used.
  cache.run(x1, "other", fn);
  cache.run(x2, "t", fn);
  EXPECT_EQ(cache.size(), 2u);
  const auto before = cache.stats();
  cache.run(x1, "t", fn);   // evicted: warms up again
  EXPECT_EQ(cache.stats().eager, before.eager + 1);
  EXPECT_EQ(cache.stats().replays, before.replays);
  EXPECT_EQ(cache.stats().failures, 0);
  EXPECT_GT(calls, 0);
}

TEST(GraphCache, CapturesOnAThreadThatRanTheKeyEagerly) {
  // LibTorch keeps cuDNN's autotuning and its library handles per thread: a capture on a thread
  // that never ran the key would autotune inside the capture (and fail on a GPU). Warmed up on
  // one thread, the key runs eagerly once more on another before that one captures it.
  GraphCache cache(GraphKind::Emulated, /*warmup_runs=*/2, /*capacity=*/2);
  auto x = torch::rand({1, 3});
  for (int i = 0; i < 2; ++i) cache.run(x, "t", affine);
  EXPECT_EQ(cache.stats().eager, 2);
  std::thread other([&] {
    EXPECT_TRUE(torch::equal(cache.run(x, "t", affine)[0], x * 2 + 1));
    EXPECT_EQ(cache.stats().eager, 3);
    EXPECT_EQ(cache.stats().captures, 0);
    EXPECT_TRUE(torch::allclose(cache.run(x, "t", affine)[0], x * 2 + 1));
    EXPECT_EQ(cache.stats().captures, 1);
    EXPECT_EQ(cache.stats().replays, 1);   // (the run that captures replays too)
  });
  other.join();
  // Any thread replays the graph.
  EXPECT_TRUE(torch::allclose(cache.run(x, "t", affine)[0], x * 2 + 1));
  EXPECT_EQ(cache.stats().replays, 2);
  EXPECT_EQ(cache.stats().eager, 3);
}

TEST(GraphCache, AFailedCaptureLeavesTheKeyEagerWithTheReason) {
  GraphCache cache(GraphKind::Cuda, /*warmup_runs=*/1, /*capacity=*/1);
  auto x = torch::rand({2, 3});
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(cache.run(x, "", affine)[0], x * 2 + 1));
  EXPECT_EQ(cache.stats().failures, 1);   // tried once, on the second run
  EXPECT_EQ(cache.stats().captures, 0);
  EXPECT_EQ(cache.stats().eager, 4);
  EXPECT_NE(cache.stats().last_error.find("capture"), std::string::npos) << cache.stats().last_error;
  // Evicted by another key and back: still eager, without another try.
  cache.run(x, "other", affine);
  EXPECT_EQ(cache.size(), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(cache.run(x, "", affine)[0], x * 2 + 1));
  EXPECT_EQ(cache.stats().failures, 1);
  EXPECT_EQ(cache.stats().eager, 4 + 1 + 3);
}

TEST(CudaGraph, ReplaysMatchEagerRunsOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_graphs_compiled()) GTEST_SKIP() << "this build cannot capture CUDA graphs";
  const torch::Device dev(torch::kCUDA, 0);
  const OwnedCudaStream stream(dev);
  c10::StreamGuard on_stream(stream.stream());
  auto w = torch::randn({64, 64}, dev);
  GraphFn fn = [&](const torch::Tensor& x) {
    auto h = torch::relu(torch::matmul(x, w));
    return std::vector<torch::Tensor>{h, std::get<1>(h.topk(5, 1))};
  };
  GraphCache cache(GraphKind::Cuda, /*warmup_runs=*/1);
  for (int i = 0; i < 6; ++i) {
    auto x = torch::randn({8, 64}, dev);
    auto expect = fn(x);
    auto got = cache.run(x, "", fn);
    EXPECT_TRUE(torch::allclose(got[0], expect[0], 1e-5, 1e-5)) << i;
    EXPECT_TRUE(torch::equal(got[1], expect[1])) << i;
  }
  EXPECT_EQ(cache.stats().failures, 0) << cache.stats().last_error;
  EXPECT_EQ(cache.stats().captures, 1);
  EXPECT_EQ(cache.stats().replays, 5);
}

#ifdef SSD_WITH_CUDA_GRAPHS
namespace {

int64_t reserved_bytes(c10::DeviceIndex device) {
  c10::cuda::CUDACachingAllocator::emptyCache();
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device).reserved_bytes[0].current;
}

}  // namespace
#endif

// An OwnedCudaStream's stream outlives it: a page-locked block copied on it and freed after the
// owner is gone (ssddetect's pool frames outlive its Detector) has LibTorch 2.x record an event on
// that stream then, which on a destroyed stream failed inside the block's deleter and ended the
// process. The stream goes to the next owner instead.
TEST(CudaGraph, AnOwnedStreamOutlivesItsOwnerForThePinnedBlocksCopiedOnIt) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_graphs_compiled()) GTEST_SKIP() << "LibTorch's pooled streams in this build";
  const torch::Device dev(torch::kCUDA, 0);
  auto pinned = torch::arange(1 << 20, torch::TensorOptions().dtype(torch::kInt32)).pin_memory();
  c10::StreamId first = 0;
  {
    const OwnedCudaStream owned(dev);
    first = owned.stream().id();
    c10::StreamGuard on_stream(owned.stream());
    auto copy = pinned.to(dev, /*non_blocking=*/true);
    EXPECT_EQ(copy.sum().item<int64_t>(), int64_t(1 << 20) * ((1 << 20) - 1) / 2);
  }
  pinned = torch::Tensor();   // freed after its stream's owner
  const OwnedCudaStream next(dev);
  EXPECT_EQ(next.stream().id(), first);
  const OwnedCudaStream another(dev);   // while `next` holds it: a stream of its own
  EXPECT_NE(another.stream().id(), first);
}

// A capture that a host synchronisation inside invalidates fails cleanly: the key stays eager
// with the reason, the graph's memory pool goes back to the allocator (64 MiB allocated inside
// the failed capture are not kept reserved), and the same stream then captures another graph.
TEST(CudaGraph, AnInvalidatedCaptureLeavesTheStreamAndTheAllocatorUsable) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#ifndef SSD_WITH_CUDA_GRAPHS
  GTEST_SKIP() << "this build cannot capture CUDA graphs";
#else
  const torch::Device dev(torch::kCUDA, 0);
  const OwnedCudaStream stream(dev);
  c10::StreamGuard on_stream(stream.stream());
  GraphFn syncs = [&](const torch::Tensor& x) {
    auto big = torch::ones({16 << 20}, x.options());   // 64 MiB
    const float scale = big.sum().item<float>() / float(16 << 20);   // a synchronisation
    return std::vector<torch::Tensor>{x * scale};
  };
  auto x = torch::randn({4, 4}, dev);
  syncs(x);   // the allocator's own blocks for eager runs, reserved before the baseline
  const int64_t before = reserved_bytes(dev.index());
  GraphCache cache(GraphKind::Cuda, /*warmup_runs=*/1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(cache.run(x, "syncs", syncs)[0], x)) << i;
  EXPECT_EQ(cache.stats().failures, 1);
  EXPECT_EQ(cache.stats().captures, 0);
  EXPECT_NE(cache.stats().last_error.find("capture"), std::string::npos) << cache.stats().last_error;
  EXPECT_EQ(reserved_bytes(dev.index()), before);
  for (int i = 0; i < 4; ++i) {
    auto y = torch::randn({4, 4}, dev);
    EXPECT_TRUE(torch::allclose(cache.run(y, "affine", affine)[0], y * 2 + 1)) << i;
  }
  EXPECT_EQ(cache.stats().captures, 1);
  EXPECT_EQ(cache.stats().replays, 2);
  EXPECT_EQ(cache.stats().failures, 1);
#endif
}
