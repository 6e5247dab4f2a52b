#include "cpu_workers.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace ssd {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  return text.str();
}

// This process's cgroup v2 `cpu.max` text (its "0::PATH" line of /proc/self/cgroup), or the
// root's; empty where there is none (cgroup v1).
std::string own_cpu_max() {
  std::istringstream lines(read_text("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string text = read_text("/sys/fs/cgroup" + line.substr(3) + "/cpu.max");
    if (!text.empty()) return text;
  }
  return read_text("/sys/fs/cgroup/cpu.max");
}

}  // namespace

int cgroup_cpu_limit(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  long long quota = 0, period = 0;
  if (!(in >> quota >> period) || quota <= 0 || period <= 0) return 0;   // "max ...": no limit
  return static_cast<int>(std::min<long long>((quota + period - 1) / period, 1 << 20));
}

int usable_cpus() {
  int cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) cpus = CPU_COUNT(&set);
  const int limit = cgroup_cpu_limit(own_cpu_max());
  return limit > 0 ? std::min(cpus, limit) : cpus;
}

int resolve_in_flight(int requested, bool cpu, int cpus, int threads) {
  if (requested > 0) return requested;
  return cpu && cpus >= 2 * std::max(1, threads) ? 2 : 1;
}

int resolve_threads(int requested, int workers, int cpus) {
  if (requested > 0) return requested;
  if (workers <= 1) return 0;
  return std::max(1, cpus / workers);
}

WorkerCounts resolve_workers(int requested_in_flight, int requested_threads, bool cpu_workers, int cpus) {
  const int in_flight = resolve_in_flight(requested_in_flight, cpu_workers, cpus, requested_threads);
  return {in_flight, cpu_workers ? resolve_threads(requested_threads, in_flight, cpus) : requested_threads};
}

}  // namespace ssd
