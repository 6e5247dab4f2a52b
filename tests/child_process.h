// Waiting for a child process (a test's ssd-train, ssd-clip or forked writer) to get somewhere
// before the test interrupts it.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace ssdtest {

struct ChildProgress {
  bool reached = false;   // reached() held
  bool ended = false;     // the child ended by itself first (reaped: status is its wait status)
  int status = 0;
};

// Polls reached() every 10 ms, up to `limit`, while the child `pid` runs. A child that ends by
// itself (a full disk, a bad argument) is said at once, with its status, rather than waited on
// for the whole limit and reported as one that wrote nothing.
template <typename Reached>
ChildProgress wait_for_child(pid_t pid, Reached reached, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  ChildProgress p;
  for (auto waited = std::chrono::milliseconds(0); waited < limit; waited += std::chrono::milliseconds(10)) {
    if ((p.reached = reached())) return p;
    if (::waitpid(pid, &p.status, WNOHANG) == pid) {
      p.ended = true;
      p.reached = reached();
      return p;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p;
}

}  // namespace ssdtest
