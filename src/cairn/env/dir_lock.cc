#include "cairn/env/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::env {
namespace {

// The pid written by the holder, or 0 if the file is empty or holds something else.
long ReadPid(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  long pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(std::string(buf, n)), &pid) || pid <= 0) {
    return 0;
  }
  return pid;
}

}  // namespace

DirLock::DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirLock::~DirLock() { Release(); }

void DirLock::Release() {
  if (fd_ < 0) return;
  // Empty the pid first: a reader that finds the file unlocked must not see our pid as a holder.
  (void)::ftruncate(fd_, 0);
  ::close(fd_);  // drops the flock
  fd_ = -1;
}

std::string DirLock::PathIn(const std::string& dir) { return dir + "/peer.lock"; }

absl::StatusOr<DirLock> DirLock::Acquire(const std::string& dir) {
  const std::string path = PathIn(dir);
  // No O_TRUNC: the file may hold the running peer's pid. O_CLOEXEC: a child (fusermount,
  // a hook) must not inherit, and so keep, the lock.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  // The DirLock is made only once the lock is ours: its destructor empties the file, which
  // must not happen to the pid of the process that holds it.
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("flock ", path));
    }
    // The holder writes its pid right after locking; give it a moment to do so.
    long pid = ReadPid(fd);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (pid == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      pid = ReadPid(fd);
    }
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat("a cairn peer is already running (pid ",
                                                      pid > 0 ? absl::StrCat(pid) : "unknown",
                                                      ") on ", dir, " (", path, " is locked)"));
  }
  DirLock lock(fd);
  const std::string text = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, absl::StrCat("write pid to ", path));
  }
  return lock;
}

}  // namespace cairn::env
