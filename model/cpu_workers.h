// How many batches a detector keeps in flight and how many threads each CPU worker runs when the
// user leaves it to the machine (ssddetect's `in-flight` and `threads` of 0). LibTorch-free.
#pragma once

#include <string>

namespace ssd {

// The CPUs the calling thread may run on: its affinity mask, at most its cgroup's CPU quota
// rounded up (a container started with --cpus=2 on a larger host: 2); at least 1.
int usable_cpus();

// This process's CPU quota as cgroup v2's `cpu.max` writes it ("QUOTA PERIOD" or "max PERIOD"):
// its cgroup's (the "0::PATH" line of /proc/self/cgroup), else the root's, else cgroup v1's
// cpu.cfs_quota_us and cpu.cfs_period_us ("-1 PERIOD" without a quota); empty where there is
// none. `root`: where the file system is (tests give a tree of their own).
std::string cgroup_cpu_max(const std::string& root = "");

// The CPUs a cgroup v2 `cpu.max` file's text allows ("QUOTA PERIOD", rounded up); 0 for "max"
// (no limit) or text it cannot read.
int cgroup_cpu_limit(const std::string& cpu_max);

// Batches a detector keeps in flight when asked for `requested`: itself when above 0; 0 (auto):
// on the CPU 2 when the process has 2 or more CPUs (consecutive batches computed side by side,
// a worker each: ssddetect at 640x480 on 2 CPUs 420.9 -> 695.7 fps, 2026-12-05) and each worker's
// `threads` (0: chosen too, resolve_threads) leave room for two, else 1; on CUDA 1.
int resolve_in_flight(int requested, bool cpu, int cpus, int threads);

// Intra-op threads of each of `workers` CPU workers when asked for `requested`: itself when above
// 0; 0 (auto): with one worker 0 (LibTorch's default), with several the CPUs shared among them,
// at least one each (LibTorch's default in each oversubscribes the CPUs: 2 workers of 2 threads
// on 2 CPUs ran 461 fps at 640x480 against 638 with 1 thread each, 2026-12-05).
int resolve_threads(int requested, int workers, int cpus);

// The batches a detector keeps in flight and the intra-op threads it runs, for those asked (0:
// chosen by the two rules above). `cpu_workers`: its batches in flight are computed by CPU
// workers (a CPU device with the ordinary output stage, not CUDA's fixed-shape one); otherwise
// in flight resolves as on CUDA, and the threads stay as asked.
struct WorkerCounts {
  int in_flight;
  int threads;
};
WorkerCounts resolve_workers(int requested_in_flight, int requested_threads, bool cpu_workers, int cpus);

}  // namespace ssd
