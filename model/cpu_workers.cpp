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

}  // namespace

std::string cgroup_cpu_max(const std::string& root) {
  std::istringstream lines(read_text(root + "/proc/self/cgroup"));
  std::string v1_path;   // the cpu controller's cgroup, on a v1 hierarchy
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0) {   // v2: its cpu.max
      const std::string text = read_text(root + "/sys/fs/cgroup" + line.substr(3) + "/cpu.max");
      if (!text.empty()) return text;
      continue;
    }
    // v1: "N:cpu,cpuacct:PATH" (the controllers between the first two colons).
    const auto a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::istringstream controllers(line.substr(a + 1, b - a - 1));
    for (std::string c; std::getline(controllers, c, ',');)
      if (c == "cpu") v1_path = line.substr(b + 1);
  }
  if (const std::string text = read_text(root + "/sys/fs/cgroup/cpu.max"); !text.empty()) return text;
  // v1 (docker --cpus on a cgroupfs v1 host; ssddetect picked 2 workers in a 1-CPU quota): its
  // quota and period as cpu.max writes them, "-1" meaning none. The hierarchy is mounted at
  // cpu,cpuacct (or cpu); a container sees its own cgroup at the mount's root.
  for (const std::string mount : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"})
    for (const std::string& path : {v1_path, std::string()}) {
      const std::string quota = read_text(root + mount + path + "/cpu.cfs_quota_us");
      const std::string period = read_text(root + mount + path + "/cpu.cfs_period_us");
      if (!quota.empty() && !period.empty()) return quota.substr(0, quota.find('\n')) + " " + period;
    }
  return std::string();
}

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
  const int limit = cgroup_cpu_limit(cgroup_cpu_max());
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
