#include "remove_on_interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <system_error>

#include "../model/error.h"

namespace ssdtrain {

namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
int wake[2] = {-1, -1};   // the handler writes the signal's number; 0 stops the watcher
struct sigaction earlier[sizeof kSignals / sizeof kSignals[0]];

// Async-signal-safe: one write().
void on_signal(int sig) {
  const unsigned char c = static_cast<unsigned char>(sig);
  const ssize_t n = ::write(wake[1], &c, 1);
  (void)n;
}

}  // namespace

RemoveOnInterrupt::RemoveOnInterrupt(std::filesystem::path dir) : dir_(std::move(dir)) {
  if (wake[0] >= 0) throw ssd::Error("RemoveOnInterrupt: one at a time");
  if (::pipe(wake) != 0) throw ssd::Error("cannot create a pipe for the signal handler");
  watcher_ = std::thread([this] {
    unsigned char sig = 0;
    while (::read(wake[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig == 0) return;
    // Other threads may still be writing into it: a few tries.
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      if (!ec) break;
    }
    ::signal(sig, SIG_DFL);
    ::kill(::getpid(), sig);
  });
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i) ::sigaction(kSignals[i], &sa, &earlier[i]);
}

RemoveOnInterrupt::~RemoveOnInterrupt() {
  for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i) ::sigaction(kSignals[i], &earlier[i], nullptr);
  const unsigned char stop = 0;
  if (::write(wake[1], &stop, 1) == 1 && watcher_.joinable()) watcher_.join();
  else if (watcher_.joinable()) watcher_.detach();
  ::close(wake[0]);
  ::close(wake[1]);
  wake[0] = wake[1] = -1;
}

}  // namespace ssdtrain
