#include "exit_gate.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "error.h"

namespace ssd {

namespace {

// How long the exit handler waits for LibTorch work under way (a batch on the CPU takes
// milliseconds to a second).
constexpr int kExitWaitMs = 5000;

struct GateState {
  std::mutex mutex;
  std::condition_variable returned;
  long held = 0;
  bool closed = false;
};

// Never destroyed: the gate is used during the process's exit, after static destructors ran.
GateState& gate() {
  static GateState* state = new GateState;
  return *state;
}

}  // namespace

ExitGate::Pass::Pass() {
  GateState& g = gate();
  std::lock_guard<std::mutex> lock(g.mutex);
  if (g.closed) throw Error("the process is exiting: no more inference");
  ++g.held;
}

ExitGate::Pass::~Pass() {
  GateState& g = gate();
  std::lock_guard<std::mutex> lock(g.mutex);
  if (--g.held == 0) g.returned.notify_all();
}

bool ExitGate::close(int wait_ms) {
  GateState& g = gate();
  std::unique_lock<std::mutex> lock(g.mutex);
  g.closed = true;
  return g.returned.wait_for(lock, std::chrono::milliseconds(wait_ms), [&g] { return g.held == 0; });
}

bool ExitGate::closed() {
  GateState& g = gate();
  std::lock_guard<std::mutex> lock(g.mutex);
  return g.closed;
}

void ExitGate::arm(Stage stage) {
  static std::once_flag loaded, computed;
  std::call_once(stage == Stage::kLoaded ? loaded : computed, [] {
    gate();   // (made now, not in the handler)
    std::atexit([] {
      if (!closed() && !close(kExitWaitMs))
        std::fprintf(stderr, "gst-ssd: the process exits while an inference still runs after %d s\n",
                     kExitWaitMs / 1000);
    });
  });
}

}  // namespace ssd
