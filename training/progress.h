// Progress reporting for ssd-train on stderr: a redrawn bar with rate and ETA when stderr is a
// terminal, otherwise (logs, CI) a plain line every `plain_every` seconds and at the end.
// LibTorch-free.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace ssdtrain {

// "1:02:03" / "2:03" for a duration in seconds.
std::string format_duration(double seconds);

// The width of the terminal `out` writes to; 0 when it is none (a file, a pipe) or a dumb one
// (TERM=dumb: no cursor movement), where progress goes as plain lines.
int terminal_columns(std::FILE* out);

class ProgressBar {
 public:
  // total: number of steps; label: shown before the bar ("epoch 3/10").
  ProgressBar(std::string label, long total, std::FILE* out = stderr, double plain_every = 30.0);
  ~ProgressBar();
  // Marks `done` steps complete; `info` is appended (e.g. "loss 3.21").
  void update(long done, const std::string& info = "");
  // Ends the bar (clears the line on a terminal, prints a final plain line otherwise, with the
  // steps last marked done).
  void finish(const std::string& info = "");
  bool is_tty() const { return tty_; }

 private:
  std::string line(long done, const std::string& info) const;
  std::string label_;
  long total_;
  long done_ = 0;   // as last marked
  std::FILE* out_;
  int columns_;   // the terminal's width; 0: not an interactive terminal
  bool tty_;
  bool finished_ = false;
  double plain_every_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace ssdtrain
