// Keeping LibTorch work out of the process's exit.
//
// An application may exit (return from main, call exit(), end its Python interpreter) while its
// pipelines still run. exit() then destroys LibTorch's static objects (its operator registry,
// oneDNN's primitive cache) while a streaming thread or a CPU worker may still be computing with
// them: the process crashed in mkldnn_convolution, or aborted on c10::Error "Unknown backend",
// where the same program with identity in place of ssddetect exited cleanly.
//
// LibTorch work holds an ExitGate::Pass. An exit handler closes the gate: it waits for the
// passes held (for a while: an exit from a thread that holds one would wait for itself; it says
// so on stderr when it gives up), and a Pass asked for after that throws. Handlers run in the
// reverse order of their registration, interleaved with the static destructors, so the handler
// is registered (arm()) once a model has loaded and again once LibTorch has computed: after the
// statics made then (on first use: oneDNN's primitive cache, the thread pools), so that it runs
// before their destructors.
#pragma once

namespace ssd {

class ExitGate {
 public:
  // Held while a thread computes with LibTorch (or frees its tensors). Throws ssd::Error once
  // the process is exiting.
  class Pass {
   public:
    Pass();
    ~Pass();
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
  };

  // Registers the exit handler that closes the gate: once per process for each stage (a model
  // loaded, a first inference done); later calls do nothing.
  enum class Stage { kLoaded, kComputed };
  static void arm(Stage stage);
  // Whether the process is exiting (the gate is closed).
  static bool closed();
  // Closes the gate (the exit handler's work); returns whether every pass was given back within
  // `wait_ms`.
  static bool close(int wait_ms);
};

}  // namespace ssd
