#include "cpu_workers.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace ssd {

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
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

}  // namespace ssd
