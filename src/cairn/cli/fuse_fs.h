// The read-only file system `cairn mount` serves (cli/mount.cc), and its libfuse binding.
//
//   /snapshots/<time>/<root entry>/...   one directory per snapshot; <time> is the snapshot's
//                                        local time "2026-11-22T10-00-00", with "-<short id>"
//                                        appended when several snapshots share that second
//   /latest -> snapshots/<time>          symlink to the newest snapshot (absent when none)
//
// Files show the size, mode, mtime, uid and gid recorded in the tree; symlinks read as their
// targets; hard links are plain files. Everything is read-only (EROFS).
//
// SnapshotFs resolves paths and caches what it learns from a SnapshotSource (in production the
// local peer's API, cli/mount.cc): directory listings (snapshots are immutable: kept until a
// bound on cached entries is reached, then dropped together), the snapshot list (refreshed
// every few seconds, so new backups appear), and file bytes in aligned blocks (LRU, bounded;
// concurrent reads of one block fetch it once). Its methods return 0 or a negative errno, as
// FUSE wants.
//
// Thread-safety: SnapshotSource implementations and SnapshotFs are thread-safe (FUSE calls from
// several threads).
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::cli {

// What is known about one file-system object.
struct FsNode {
  enum class Type { kDirectory, kFile, kSymlink };
  Type type = Type::kDirectory;
  uint32_t mode = 0555;  // permission bits (st_mode & 07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // files: bytes; symlinks: target length
  int64_t mtime_ns = 0;
  std::string target;  // symlinks, raw bytes
};

// Where the file system's data comes from.
class SnapshotSource {
 public:
  struct Snapshot {
    std::string id;  // full hex id
    int64_t time_ns = 0;
  };
  struct Entry {
    std::string name;  // one path component, raw bytes
    FsNode node;
  };
  virtual ~SnapshotSource() = default;
  // Every snapshot, oldest first.
  virtual absl::StatusOr<std::vector<Snapshot>> Snapshots() = 0;
  // The entries directly in directory `path` ('/'-separated, "" = the snapshot's root) of
  // snapshot `id`. NOT_FOUND when the snapshot or the path is gone.
  virtual absl::StatusOr<std::vector<Entry>> List(const std::string& id,
                                                  const std::string& path) = 0;
  // Up to `length` bytes of file `path` from byte `offset` (fewer only at the end of the file;
  // may also be fewer when the source caps a read: callers ask again for the rest).
  virtual absl::StatusOr<std::string> Read(const std::string& id, const std::string& path,
                                           uint64_t offset, uint64_t length) = 0;
};

// Directory names for `snapshots` (same order): local time "YYYY-MM-DDTHH-MM-SS", with
// "-<first 8 hex of the id>" appended to every snapshot whose second is shared with another
// (the full id if even that collides). Names never contain '/'.
std::vector<std::string> SnapshotDirNames(const std::vector<SnapshotSource::Snapshot>& snapshots);

class SnapshotFs {
 public:
  struct Options {
    std::chrono::milliseconds snapshot_refresh{2000};  // how long the snapshot list is trusted
    uint64_t block_bytes = 1 << 20;                    // read granularity and cache unit
    size_t cache_blocks = 32;                          // bound of the block cache
    size_t max_cached_entries = 1 << 20;               // bound of the listing cache
    uint32_t uid = 0;                                  // owner of the synthetic directories
    uint32_t gid = 0;
  };

  // `source` must outlive the file system.
  SnapshotFs(SnapshotSource* source, Options options);

  // stat(2) of `path` (absolute within the mount, e.g. "/snapshots/2026-.../home/a.txt").
  int GetAttr(const std::string& path, struct stat* st);
  // Names and nodes directly in directory `path` (without "." and ".."); -ENOTDIR for others.
  int ReadDir(const std::string& path, std::vector<std::pair<std::string, FsNode>>* out);
  int ReadLink(const std::string& path, std::string* target);
  // open(2) check: -EROFS for any write access, -EISDIR for directories.
  int Open(const std::string& path, int flags);
  // Reads up to `size` bytes at `offset` into `buf`; returns the count or a negative errno.
  long Read(const std::string& path, char* buf, size_t size, uint64_t offset);

  // The newest snapshot's directory name, "" when there is none (after a refresh).
  std::string LatestName();

 private:
  struct Listing {
    std::vector<SnapshotSource::Entry> entries;  // sorted by name
    std::map<std::string, size_t> index;
  };
  struct Resolved {
    FsNode node;
    std::string snapshot_id;  // "" for the synthetic part of the tree
    std::string inner_path;   // path inside the snapshot ("" = its root)
  };
  struct Block {
    bool done = false;
    absl::StatusOr<std::shared_ptr<const std::string>> data = absl::UnknownError("pending");
  };

  absl::Status RefreshSnapshots(bool force);
  absl::StatusOr<Resolved> Resolve(const std::string& path);
  absl::StatusOr<std::shared_ptr<const Listing>> GetListing(const std::string& id,
                                                            const std::string& dir);
  absl::StatusOr<std::shared_ptr<const std::string>> GetBlock(const std::string& id,
                                                              const std::string& path,
                                                              uint64_t block, uint64_t file_size);
  FsNode SyntheticDir(int64_t mtime_ns) const;
  // errno for a status (and a line on stderr for anything but NOT_FOUND).
  int Errno(const absl::Status& status, const std::string& what);

  SnapshotSource* source_;
  const Options options_;

  std::mutex snapshots_mu_;
  std::chrono::steady_clock::time_point refreshed_{};
  bool have_snapshots_ = false;
  std::vector<SnapshotSource::Snapshot> snapshots_;
  std::vector<std::string> names_;
  std::map<std::string, size_t> by_name_;

  std::mutex listings_mu_;
  std::map<std::string, std::shared_ptr<const Listing>> listings_;  // id '\0' dir
  size_t cached_entries_ = 0;

  std::mutex blocks_mu_;
  std::condition_variable block_loaded_;
  std::list<std::string> block_lru_;  // keys, most recent first
  std::map<std::string, std::pair<std::shared_ptr<Block>, std::list<std::string>::iterator>>
      blocks_;
};

struct FuseOptions {
  bool allow_other = false;  // -o allow_other (others may read; needs user_allow_other)
  bool debug = false;        // libfuse debug output on stderr
};

// Mounts `fs` read-only at `mountpoint` and serves it until it is unmounted (`fusermount3 -u`)
// or the process gets SIGINT, SIGTERM or SIGHUP; then unmounts. Mounted with libfuse's
// auto_unmount, so a process that is killed leaves no stale mount behind (fusermount3 removes
// it). `on_mounted` runs once the mount is in place. FAILED_PRECONDITION when it cannot mount (no
// /dev/fuse, not a directory,
// ...); INTERNAL when the FUSE loop fails.
absl::Status ServeFuse(SnapshotFs* fs, const std::string& mountpoint, const FuseOptions& options,
                       const std::function<void()>& on_mounted);

}  // namespace cairn::cli
