// Archives (docs/operations.md "Archives: files that live only on the peers"): a named, writable
// file tree whose files live only on the peers, served by `cairn mount --archive` (FUSE; the
// binding is daemon/archive_mount.h). Every commit is a version: a snapshot whose `archive` field
// names the archive and whose root tree is the archive's top directory, so restore, retention,
// GC, check, repair, reclaim and recovery treat its chunks like a backup's.
//
// Data path (docs/architecture.md "Archives"):
//  - The latest version's trees are loaded into memory when the archive is opened; metadata
//    operations (mkdir, rename, chmod, ...) change that tree.
//  - Writes go to a spool file per written file under ArchiveOptions::spool_dir, with the ranges
//    written recorded in memory. Reads take written ranges from the spool and the rest from the
//    file's stored chunks (fetched through a bounded chunk cache, from whichever holder answers,
//    with the next chunks of the file read ahead on two threads).
//  - close(2) (Flush) or fsync of a written file stores it: the changed region is re-chunked with
//    the owner's FastCDC parameters from the start of the first stored chunk it touches until a
//    cut falls on a stored chunk boundary past the change, so a random write into a large file
//    stores only the chunks around it, and an archived file deduplicates against backups of it.
//    New chunks are sealed and placed under the archive's redundancy (PutChunk). Then the tree
//    is committed as a new version (trees of unchanged directories are reused) and the spool
//    file is dropped.
//  - A version never holds a file that is still open for writing with unstored writes: such a
//    file appears with its content of the previous version (or not at all, when new), so a
//    crash never leaves a torn file in a version. Spool files left by a crash are dropped (and
//    logged) when the archive is opened again.
//  - The spool is bounded (ArchiveOptions::spool_bytes): a write that would pass the bound first
//    stores the file's spooled bytes as chunks (without a version), so a sequential write of a
//    file larger than the spool is chunked and sent as it arrives. From then until the next
//    version, garbage collection is held off (the chunks are referenced by no snapshot yet), by
//    holding EngineContext::gc_lock shared (docs/operations.md "Garbage collection").
//
// Methods named after file-system calls return 0 (or a count) or a negative errno, as FUSE
// wants; paths are absolute within the archive ("/" is its top directory), raw bytes.
//
// Thread-safety: Archive is thread-safe (FUSE calls from several threads). One mutex guards the
// tree; each file's content has its own lock, so a file being stored does not block the others.
#pragma once

#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/context.h"
#include "cairn/engine/file_reader.h"
#include "cairn/env/dir_lock.h"
#include "cairn/format/tree.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

// An archive as the catalog knows it: its latest version and how many versions it has.
struct ArchiveInfo {
  std::string name;
  ports::SnapshotRecord latest;
  uint64_t versions = 0;
};

// Every archive of this owner, sorted by name. Errors: the catalog's.
absl::StatusOr<std::vector<ArchiveInfo>> ListArchives(ports::Catalog* catalog);

// The redundancy an archive's version asks for (its copies or k+m).
Redundancy RedundancyOf(const format::Snapshot& version);

// Creates archive `name` with an empty first version stored under `redundancy`. INVALID_ARGUMENT
// for a name that is not format::IsArchiveName; ALREADY_EXISTS when the archive exists;
// UNAVAILABLE when no peer took the version (as PutChunk).
absl::StatusOr<ports::SnapshotRecord> CreateArchive(const EngineContext& ctx,
                                                    const std::string& name,
                                                    const Redundancy& redundancy,
                                                    const std::string& hostname);

struct ArchiveOptions {
  // The archive's spool directory (created when missing). Holds one file per written file that
  // is not yet stored, and the lock that refuses a second mount of the archive.
  std::string spool_dir;
  uint64_t spool_bytes = 1ull << 30;   // bound of spooled bytes (see the file comment)
  uint64_t cache_bytes = 64ull << 20;  // plaintext chunk cache for reads
  std::string hostname;                // recorded in each version
  // close(2) and fsync(2) retry a store or commit that found no peer (UNAVAILABLE) this long
  // before they fail with EIO (what was written stays spooled and is committed later).
  std::chrono::milliseconds unavailable_wait{30000};
};

// What stat(2) shows of one entry.
struct ArchiveAttr {
  format::EntryType type = format::EntryType::kDirectory;
  uint32_t mode = 0755;  // permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // files: bytes; symlinks: target length; directories: 0
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;    // unique within the mounted archive
  uint32_t nlink = 1;  // directories: 2 + subdirectories
};

// Counters, for the mount's status and the tests.
struct ArchiveStats {
  uint64_t versions_committed = 0;  // by this Archive
  uint64_t files_stored = 0;        // file contents stored (close, fsync, spool full)
  uint64_t chunks_stored = 0;       // chunks sealed and sent (not deduplicated)
  uint64_t chunks_deduplicated = 0;
  uint64_t chunks_below_target = 0;
  uint64_t bytes_stored = 0;         // plaintext bytes of chunks sent
  uint64_t spool_flushes = 0;        // stores forced by a full spool
  uint64_t spooled_bytes = 0;        // now
  uint64_t dropped_spool_files = 0;  // left by a crash, dropped at Open
};

class Archive {
 public:
  // Opens archive `name` for reading and writing: its latest version is loaded (every tree),
  // the spool directory is locked and spool files left behind are dropped (logged). NOT_FOUND
  // when no such archive; FAILED_PRECONDITION "archive NAME is already mounted" when another
  // Archive (in any process) holds its spool; trees that cannot be read: their error. `ctx` must
  // outlive the archive.
  static absl::StatusOr<std::unique_ptr<Archive>> Open(const EngineContext& ctx,
                                                       const std::string& name,
                                                       ArchiveOptions options);
  // Does not commit: call Close (or Commit) first. Drops the spool files.
  ~Archive();

  int GetAttr(const std::string& path, ArchiveAttr* out);
  int ReadDir(const std::string& path, std::vector<std::pair<std::string, ArchiveAttr>>* out);
  int ReadLink(const std::string& path, std::string* target);
  // Creates a regular file (or opens it when it exists, truncated with O_TRUNC) and returns a
  // handle for Read/Write. EEXIST with O_EXCL.
  int Create(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid, int flags,
             uint64_t* handle);
  // Opens a regular file (O_TRUNC truncates it). EISDIR for directories, ENOENT.
  int Open(const std::string& path, int flags, uint64_t* handle);
  // Reads up to `size` bytes at `offset`; fewer only at the end of the file. EIO when a chunk
  // could not be fetched.
  long Read(uint64_t handle, char* buf, size_t size, uint64_t offset);
  // Writes `size` bytes at `offset` (a hole before it reads as zeros). EIO when the spool could
  // not be written, or when a full spool could not be stored to the peers.
  long Write(uint64_t handle, const char* buf, size_t size, uint64_t offset);
  // Truncates (or extends with zeros) the file at `path`, or the open file `handle` when set.
  int Truncate(const std::string& path, uint64_t size, std::optional<uint64_t> handle);
  // close(2) of a descriptor: when the file was written and no other descriptor has it open for
  // writing, stores it and commits a version. EIO (the data stays spooled) when that failed.
  int Flush(uint64_t handle);
  // fsync(2): stores the file and commits a version, even while it is open for writing.
  int Fsync(uint64_t handle);
  // The last close of a handle: forgets it (a file written but never flushed is stored and
  // committed, as Flush).
  int Release(uint64_t handle);
  int Unlink(const std::string& path);
  int Mkdir(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid);
  int Rmdir(const std::string& path);
  // rename(2) with renameat2 flags: RENAME_NOREPLACE is honoured, RENAME_EXCHANGE is EINVAL.
  int Rename(const std::string& from, const std::string& to, unsigned flags);
  int Symlink(const std::string& target, const std::string& path, uint32_t uid, uint32_t gid);
  int Chmod(const std::string& path, uint32_t mode);
  // uid/gid UINT32_MAX leave that field unchanged.
  int Chown(const std::string& path, uint32_t uid, uint32_t gid);
  // Sets the modification time (ns since the epoch).
  int SetMtime(const std::string& path, int64_t mtime_ns);
  // Free space: what the alive storage peers can still take (quota minus use, capped by their
  // free disk), divided by the archive's redundancy overhead (copies, or (k+m)/k).
  int StatFs(struct statvfs* out);

  // Stores every written file that no descriptor has open for writing and commits a version
  // when anything changed since the last one (OK without a version when nothing did). Errors
  // as PutChunk/StoreTree/StoreSnapshot; what was not committed stays for the next commit.
  absl::Status Commit();

  // The id of the latest version (the one opened, or the last committed).
  ChunkId latest_version() const;
  ArchiveStats stats() const;
  const std::string& name() const { return name_; }

 private:
  struct Node;
  struct Handle {
    std::shared_ptr<Node> node;
    bool write = false;
  };

  Archive(const EngineContext& ctx, std::string name, ArchiveOptions options);

  // Tree helpers, mu_ held.
  std::shared_ptr<Node> Lookup(const std::string& path) const;
  int LookupParent(const std::string& path, std::shared_ptr<Node>* parent, std::string* leaf) const;
  void Touch(Node* dir);  // marks `dir` and its ancestors changed
  ArchiveAttr AttrOf(const Node& node) const;
  std::shared_ptr<Node> NewNode(format::EntryType type, uint32_t mode, uint32_t uid, uint32_t gid);
  int OpenNode(const std::shared_ptr<Node>& node, int flags, uint64_t* handle);

  // Content helpers: the node's content lock held (exclusive for the mutating ones).
  int TruncateLocked(Node& node, uint64_t size);
  absl::Status EnsureOffsets(Node& node);
  absl::Status ReadLogical(Node& node, uint64_t offset, uint64_t length, char* out);
  absl::StatusOr<std::shared_ptr<const Bytes>> GetChunk(const ChunkId& id);
  // Read-ahead: fetches `ids` into the chunk cache on the prefetch threads (those already
  // queued are skipped; at most kPrefetchQueue wait).
  void Prefetch(std::vector<ChunkId> ids);
  void PrefetchLoop();
  // Stores the file's written content as chunks; the node's base becomes the new chunk list.
  absl::Status StoreContent(Node& node);
  void DropSpool(Node& node);

  // Stores `node` (when written) and commits, retrying UNAVAILABLE; fsync and close.
  int StoreAndCommit(const std::shared_ptr<Node>& node, bool even_if_open);
  absl::Status StoreAndCommitOnce(const std::shared_ptr<Node>& node, bool even_if_open);
  // Builds and stores the tree of `dir` (mu_ held); unchanged directories keep their id.
  absl::StatusOr<ChunkId> StoreDirTree(Node& dir);
  // Files (as the version records them), directories, bytes and chunks below `dir` (mu_ held).
  void CountTree(const Node& dir, format::SnapshotStats* stats) const;
  absl::Status CommitLocked();  // commit_mu_ held

  const EngineContext& ctx_;
  const std::string name_;
  const ArchiveOptions options_;
  Redundancy redundancy_;
  format::Snapshot base_version_;  // copies/ec, hostname of the archive
  env::DirLock lock_;
  ChunkCache cache_;

  mutable std::mutex mu_;  // the tree, handles, version state
  std::shared_ptr<Node> root_;
  std::map<uint64_t, Handle> handles_;
  uint64_t next_handle_ = 1;
  uint64_t next_ino_ = 2;  // 1 is the root
  uint64_t next_spool_ = 1;
  bool changed_ = false;  // something changed since the latest version
  ChunkId latest_;
  ArchiveStats stats_;

  std::mutex commit_mu_;  // one commit at a time
  std::atomic<uint64_t> spooled_bytes_{0};
  // Read-ahead (Prefetch): queued chunk ids and the threads that fetch them.
  static constexpr size_t kPrefetchQueue = 16;
  std::mutex prefetch_mu_;
  std::condition_variable prefetch_cv_;
  std::deque<ChunkId> prefetch_queue_;
  std::set<ChunkId> prefetch_pending_;  // queued or being fetched
  bool prefetch_stop_ = false;
  std::vector<std::thread> prefetchers_;

  // Held (shared) while chunks are stored that no version references yet (spool flushes).
  std::mutex pin_mu_;
  std::shared_lock<std::shared_mutex> gc_pin_;
};

}  // namespace cairn::engine
