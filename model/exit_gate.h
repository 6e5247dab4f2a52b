// Keeping LibTorch work out of the process's exit.
//
// An application may exit (return from main, call exit(), end its Python interpreter) while its
// pipelines still run. exit() then destroys LibTorch's static objects (its operator registry,
// oneDNN's primitive cache) while a streaming thread or a CPU worker may still be computing with
// them: the process crashed in mkldnn_convolution, or aborted on c10::Error "Unknown backend",
// where the same program with identity in place of ssddetect exited cleanly.
//
// LibTorch work holds an ExitGate::Pass. An exit handler, registered (arm()) once LibTorch has
// computed (and made the statics it makes on first use, whose destructors run before handlers
// registered earlier), closes the gate: it waits for the passes held (for a while: an exit from
// a thread that holds one would wait for itself), and a Pass asked for after that throws.
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

  // Registers the exit handler that closes the gate, once per process (later calls do nothing).
  static void arm();
  // Whether the process is exiting (the gate is closed).
  static bool closed();
  // Closes the gate as the exit handler does; returns whether every pass was given back within
  // `wait_ms` (tests).
  static bool close(int wait_ms);
};

}  // namespace ssd
