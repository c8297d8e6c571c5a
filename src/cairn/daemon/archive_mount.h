// The archives this peer serves as writable FUSE file systems (docs/operations.md "Archives:
// files that live only on the peers"): each mount is an engine::Archive behind libfuse's
// high-level API, served by its own FUSE threads inside the home peer, next to the engines it
// writes through. A committer thread commits what changed without a close (a truncate, a
// rename, a chmod) every `commit_interval`; unmounting commits once more.
//
// Mounted with libfuse's auto_unmount: when the peer dies (even by SIGKILL) fusermount3 removes
// the mount, and the spool of files open for writing is dropped when the archive is mounted
// again (engine/archive.h).
//
// Thread-safety: ArchiveMounts is thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/archive.h"
#include "cairn/engine/context.h"

namespace cairn::daemon {

class ArchiveMounts {
 public:
  struct Options {
    std::string spool_root;  // each archive's spool is spool_root/NAME
    uint64_t spool_bytes = 1ull << 30;
    uint64_t cache_bytes = 64ull << 20;
    std::chrono::milliseconds commit_interval{2000};
    std::string hostname;
  };
  struct Mounted {
    std::string name;
    std::string mountpoint;
    engine::ArchiveStats stats;
  };

  // `ctx` must outlive this object.
  ArchiveMounts(const engine::EngineContext* ctx, Options options);
  // Unmounts every archive (UnmountAll).
  ~ArchiveMounts();

  // Mounts archive `name` at `mountpoint` (an existing directory) and returns once the mount is
  // in place. NOT_FOUND: no such archive; FAILED_PRECONDITION: already mounted (here or by
  // another process), or FUSE cannot mount there (the message says why).
  // `spool_bytes` 0: Options::spool_bytes.
  absl::Status Mount(const std::string& name, const std::string& mountpoint, bool allow_other,
                     uint64_t spool_bytes = 0);
  // Unmounts (fusermount3 -u), then commits. NOT_FOUND when not mounted; FAILED_PRECONDITION
  // when the mount point is busy (a process has a file open there); the commit's error.
  absl::Status Unmount(const std::string& name);
  // Unmounts every archive, lazily when busy (fusermount3 -uz), committing each.
  void UnmountAll();
  // The mounted archives, by name.
  std::vector<Mounted> List();

 private:
  struct Served;
  absl::Status Unmount(const std::string& name, bool lazy);

  const engine::EngineContext* ctx_;
  const Options options_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Served>> mounted_;
};

}  // namespace cairn::daemon
