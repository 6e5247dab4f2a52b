// A temporary folder removed when the process is interrupted (SIGINT, SIGTERM, SIGHUP): Ctrl-C
// during `ssd-train eval --synth N` leaves no synthetic images behind in the temporary folder.
#pragma once

#include <filesystem>
#include <thread>

namespace ssdtrain {

// While it lives, an interrupting signal removes `dir` and then ends the process as the signal
// would have (so a shell sees "interrupted", status 128 + signal). One at a time per process.
// It does not remove `dir` itself: the caller does when it ends normally.
class RemoveOnInterrupt {
 public:
  explicit RemoveOnInterrupt(std::filesystem::path dir);
  ~RemoveOnInterrupt();   // the signals' earlier handling is restored
  RemoveOnInterrupt(const RemoveOnInterrupt&) = delete;
  RemoveOnInterrupt& operator=(const RemoveOnInterrupt&) = delete;

 private:
  std::filesystem::path dir_;
  std::thread watcher_;   // removes dir_ when the signal handler writes the signal to it
};

}  // namespace ssdtrain
