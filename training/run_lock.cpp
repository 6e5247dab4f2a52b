#include "run_lock.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "../model/error.h"

namespace ssdtrain {

RunLock::RunLock(const std::filesystem::path& dir) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw ssd::Error("cannot open " + dir.string() + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  const int err = errno;
  if (err == EWOULDBLOCK) {
    ::close(fd_);
    fd_ = -1;
    throw ssd::Error(dir.string() +
                     " is being written by another ssd-train (train, train --resume or lr-find) running now; wait "
                     "for it to end, or choose another folder");
  }
  // (ENOLCK, EINVAL...: a file system without locks; run unlocked, as before there were any.)
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);   // (closing lets go of the lock)
}

}  // namespace ssdtrain
