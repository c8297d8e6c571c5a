// An exclusive, advisory lock on a peer directory: one `cairn peer` per directory
// (docs/cli.md "cairn peer", docs/operations.md "One peer per directory").
//
// The lock is flock(2) on DIR/peer.lock, held for the life of the DirLock; the holder's pid is
// written into the file (decimal, newline) for the message a second process prints. The kernel
// drops the lock when the holder exits, also on a crash or SIGKILL, so a stale file left behind
// never blocks a new peer; the file itself is never removed (removing it would let two
// processes lock two different inodes under one name).
//
// Thread-safety: a DirLock is a value owned by one thread; Acquire may be called concurrently
// from different processes (the kernel decides who wins).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace cairn::env {

class DirLock {
 public:
  DirLock() = default;
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  // Releases the lock (and empties the pid in the file).
  ~DirLock();

  // Locks `dir` (which must exist) without waiting. Errors:
  //   FAILED_PRECONDITION "already running (pid N)" when another open file description holds
  //     the lock ("pid unknown" if the holder has not written its pid within ~0.5 s);
  //   errno-mapped (NOT_FOUND, PERMISSION_DENIED, ...) when DIR/peer.lock cannot be opened.
  static absl::StatusOr<DirLock> Acquire(const std::string& dir);

  // DIR/peer.lock.
  static std::string PathIn(const std::string& dir);

  bool held() const { return fd_ >= 0; }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  void Release();

  int fd_ = -1;
};

}  // namespace cairn::env
