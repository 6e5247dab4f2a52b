// One ssd-train at a time writes a run folder: `train`, `train --resume` and `lr-find` hold an
// exclusive lock on the folder (flock(2) on the folder itself: nothing is left in it, and the
// lock goes with the process, also when it is killed). A second process writing the same
// folder would leave run.json with its options beside the other's checkpoint and metrics.
#pragma once

#include <filesystem>

namespace ssdtrain {

class RunLock {
 public:
  // Locks `dir` (an existing folder). Throws ssd::Error naming it when another process holds
  // it; a file system that does not lock folders (some network ones) is not locked.
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace ssdtrain
