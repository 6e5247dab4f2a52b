#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace ssdtrain {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

int terminal_columns(std::FILE* out) {
  if (!out || ::isatty(::fileno(out)) == 0) return 0;
  // (A terminal that cannot move the cursor or clear a line, as Emacs' compilation buffers are:
  // plain lines, as for a log.)
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return 0;
  struct winsize ws {};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

ProgressBar::ProgressBar(std::string label, long total, std::FILE* out, double plain_every)
    : label_(std::move(label)),
      total_(std::max(1L, total)),
      out_(out),
      columns_(terminal_columns(out)),
      tty_(columns_ > 0),
      plain_every_(plain_every),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && tty_ && out_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
  }
}

std::string ProgressBar::line(long done, const std::string& info) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : NAN;
  char buf[160];
  std::snprintf(buf, sizeof buf, " %ld/%ld [%s<%s, %.2f it/s]", done, total_,
                format_duration(elapsed).c_str(), format_duration(eta).c_str(), rate);
  const std::string rest = std::string(buf) + (info.empty() ? "" : " " + info);
  std::string s = label_;
  if (tty_) {
    // The bar takes what the terminal has left, up to 30 columns (none under 5): a line wider than
    // the terminal wrapped, and each redraw left the wrapped part behind.
    const int room = columns_ - 1 - static_cast<int>(label_.size() + rest.size()) - 3;
    const int width = std::min(30, room);
    if (width >= 5) {
      const int fill = static_cast<int>(width * std::min(1.0, double(done) / total_));
      s += " |" + std::string(fill, '#') + std::string(width - fill, '.') + "|";
    }
  }
  s += rest;
  if (tty_ && static_cast<int>(s.size()) > columns_ - 1) s.resize(static_cast<size_t>(std::max(0, columns_ - 1)));
  return s;
}

void ProgressBar::update(long done, const std::string& info) {
  if (!out_ || finished_) return;
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (done < total_ && std::chrono::duration<double>(now - last_print_).count() < 0.1) return;
    std::fprintf(out_, "\r\033[K%s", line(done, info).c_str());
  } else {
    if (std::chrono::duration<double>(now - last_print_).count() < plain_every_) return;
    std::fprintf(out_, "%s\n", line(done, info).c_str());
  }
  last_print_ = now;
  std::fflush(out_);
}

void ProgressBar::finish(const std::string& info) {
  if (!out_ || finished_) return;
  finished_ = true;
  if (tty_) {
    std::fputs("\r\033[K", out_);
  } else if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() >=
             plain_every_) {
    // Only long phases get a closing line in logs; short ones are summarised by the caller.
    std::fprintf(out_, "%s\n", line(done_, info).c_str());   // (fewer than total_ when stopped early)
  }
  std::fflush(out_);
}

}  // namespace ssdtrain
