// What the CUDA-graph path (model/cuda_graph.h) reports, LibTorch-free so that the elements and
// tools can use it.
#pragma once

#include <cstdint>
#include <string>

namespace ssd {

struct GraphStats {
  int64_t captures = 0;   // graphs captured
  int64_t replays = 0;    // batches run by replaying a graph
  int64_t eager = 0;      // batches run eagerly (warm-up, or after a failed capture)
  int64_t failures = 0;   // captures that failed (those keys stay eager)
  std::string last_error; // why the last capture failed

  GraphStats& operator+=(const GraphStats& o) {
    captures += o.captures;
    replays += o.replays;
    eager += o.eager;
    failures += o.failures;
    if (!o.last_error.empty()) last_error = o.last_error;
    return *this;
  }
};

// True when this build can capture CUDA graphs (LibTorch with CUDA, and the CUDA runtime headers
// found when it was configured).
bool cuda_graphs_compiled();

}  // namespace ssd
