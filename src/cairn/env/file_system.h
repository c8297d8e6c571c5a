// FileSystem: the small file-system interface the segment store runs on (docs/architecture.md "Data
// path"; "fault injection below the store"; modelled on leveldb's Env, helpers/memenv and
// fault_injection_test.cc). Three implementations:
//   - PosixFileSystem(): the real one (pread/pwrite, fdatasync, fsync of directories);
//   - NewMemFileSystem(): everything in memory, for fast tests (optionally on a small "disk");
//   - FaultInjectionFileSystem: wraps another one, remembers what was made durable (file bytes
//     by File::Sync, creates/renames/removes by SyncDir of their directory) and can drop
//     everything else (SimulateCrash), fail chosen calls with an I/O error, or simulate a disk
//     with little free space (SimulateFreeSpace: appends past it fail like ENOSPC).
//
// Paths are plain strings ("dir/name"); a directory's entries are listed by name. Files are
// read at any offset and written by appending at their end (the only way segments grow).
//
// Durability contract (POSIX semantics, which the in-memory and fault-injecting file systems
// model): bytes appended to a file are durable once File::Sync returned OK; a create, rename or
// remove is durable once SyncDir of the directory holding the name returned OK. A failed Sync
// leaves it unknown which unsynced bytes reached the medium.
//
// Thread-safety: FileSystem implementations are thread-safe. A File may be read (ReadAt) from
// any number of threads while one thread appends, syncs or truncates it; ReadAt never sees bytes
// past the size the file had when the call started, except that it may see appended bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"

namespace cairn::env {

// An open file: random reads, appends, sync, truncate.
class File {
 public:
  virtual ~File() = default;

  // Reads up to out.size() bytes at `offset` (bytes from the start of the file). Returns the
  // number read: less than out.size() only at the end of the file (0 at or past it). Errors:
  // DATA_LOSS for an unreadable range (EIO: a bad sector), else errno-mapped.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;

  // Appends `data` at the end of the file. Not durable until Sync. On an error some prefix of
  // `data` may have been appended (Size tells how much). RESOURCE_EXHAUSTED when the file
  // system is full (ENOSPC, EDQUOT).
  virtual absl::Status Append(ByteSpan data) = 0;

  // Appends `parts` one after another, as one Append of their concatenation would (the same
  // errors and partial-append rule), without the caller building that concatenation: the
  // segment store passes each record's header and the blob bytes as they arrived. The default
  // concatenates and calls Append; the POSIX file copies the parts straight into its direct-I/O
  // staging buffer, or writes them with pwritev(2).
  virtual absl::Status AppendV(std::span<const ByteSpan> parts);

  // Makes the file's bytes durable (fdatasync(2)).
  virtual absl::Status Sync() = 0;

  // Cuts the file to `size` bytes (<= its size; INVALID_ARGUMENT otherwise). Durable with the
  // next Sync.
  virtual absl::Status Truncate(uint64_t size) = 0;

  // Current size in bytes (what was appended, including unsynced bytes).
  virtual absl::StatusOr<uint64_t> Size() = 0;

  // Hint that the next reads should come from the medium, not a cache (posix_fadvise DONTNEED);
  // scrub uses it. No-op where it means nothing.
  virtual void DropCache() {}
};

enum class OpenMode {
  kRead,       // existing file, reads only (NOT_FOUND if missing)
  kReadWrite,  // existing file, reads and appends (NOT_FOUND if missing)
  kCreate,     // new empty file, reads and appends (ALREADY_EXISTS if present)
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path`. A file stays readable through its handle after it was removed or renamed.
  // Errors: NOT_FOUND (missing, or its directory is), ALREADY_EXISTS (kCreate), errno-mapped.
  virtual absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;

  // Size of the file at `path` in bytes. NOT_FOUND if missing.
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;

  // Whether a file or directory exists at `path`.
  virtual absl::StatusOr<bool> Exists(const std::string& path) = 0;

  // Renames `from` to `to`, replacing a file at `to`. NOT_FOUND if `from` is missing.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;

  // Removes the file at `path`. NOT_FOUND if missing.
  virtual absl::Status Remove(const std::string& path) = 0;

  // Names of the entries of directory `dir` (files and directories), ascending. NOT_FOUND if
  // missing.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;

  // Creates directory `dir` (its parent must exist); OK if it exists already. Durable once the
  // parent is synced (SyncDir).
  virtual absl::Status CreateDir(const std::string& dir) = 0;

  // Makes creates, renames and removes inside `dir` durable (fsync of the directory).
  virtual absl::Status SyncDir(const std::string& dir) = 0;

  // Bytes an unprivileged writer can still write on the file system holding `path` (a file or
  // directory): statvfs(3) f_bavail x f_frsize. Approximate (other writers, metadata). Errors:
  // NOT_FOUND if `path` is missing, errno-mapped.
  virtual absl::StatusOr<uint64_t> FreeSpace(const std::string& path) = 0;
};

// The process's real file system (POSIX). Never null; lives forever. Appends to files opened for
// writing bypass the page cache (O_DIRECT whole blocks, the last partial block buffered) where
// the file system supports direct I/O, and are plain buffered writes elsewhere
// (docs/architecture.md "Segment writes bypass the page cache").
FileSystem* PosixFileSystem();
// The same with every append buffered (what PosixFileSystem falls back to without O_DIRECT).
FileSystem* PosixFileSystemBuffered();

// A fresh, empty in-memory file system ("/" exists). Everything is durable at once (nothing is
// lost; SimulateCrash belongs to FaultInjectionFileSystem). It holds at most `capacity` bytes of
// file data (FreeSpace = capacity - bytes held): an append past that appends the prefix that
// fits and fails with RESOURCE_EXHAUSTED, as a full disk does.
inline constexpr uint64_t kMemFileSystemCapacity = uint64_t{1} << 40;  // 1 TiB
std::unique_ptr<FileSystem> NewMemFileSystem(uint64_t capacity = kMemFileSystemCapacity);

// "dir" of "dir/name" ("." when there is no '/').
std::string DirName(const std::string& path);

// Wraps `base` (which must outlive it and hold only files it created or saw synced) and
// injects faults:
//   - SimulateCrash(): what a power cut would leave: every file cut back to the size it had at
//     its last successful Sync (bytes appended later are dropped; a truncation is kept), every
//     file created since its directory was last synced removed, every unsynced rename undone
//     (the old name comes back; a file it replaced is not brought back). Removes are taken as
//     durable at once (a removed file never comes back). Open handles keep working afterwards
//     but the store must be reopened, as after a real crash.
//   - FailAfter(op, n): the n-th next call (1 = the very next) of kind `op` fails with an
//     INTERNAL I/O error and does nothing (an Append writes nothing). One failure per arming.
//   - SimulateFreeSpace(n): from now on the file system has `n` bytes free (FreeSpace answers
//     it): appends consume it, truncations and removes give it back, and an append that does
//     not fit appends the prefix that fits and fails with RESOURCE_EXHAUSTED (ENOSPC).
//     SimulateFreeSpace(nullopt) goes back to the base file system's free space.
//   - Counts of each call, for tests asserting how many syncs a workload took.
// Files created through `base` directly (not through this wrapper) are treated as durable.
class FaultInjectionFileSystem : public FileSystem {
 public:
  enum class Op { kAppend, kSync, kTruncate, kCreate, kRename, kRemove, kSyncDir, kRead };

  explicit FaultInjectionFileSystem(FileSystem* base);
  ~FaultInjectionFileSystem() override;

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::StatusOr<bool> Exists(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Remove(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> FreeSpace(const std::string& path) override;

  // Drops everything not durable (see the class comment). Errors: the base file system's.
  absl::Status SimulateCrash();

  // Arms a failure of the n-th next call of kind `op` (n >= 1); replaces an earlier arming of
  // the same kind.
  void FailAfter(Op op, uint64_t n);
  // Disarms every failure.
  void ClearFailures();
  // Simulates a disk with `bytes` free (see the class comment); nullopt ends the simulation.
  void SimulateFreeSpace(std::optional<uint64_t> bytes);
  // Calls of kind `op` made so far (failed ones included).
  uint64_t Count(Op op);
  // Calls of every kind made so far.
  uint64_t TotalCalls();
  // From now on SimulateCrash keeps, of each file's unsynced appended bytes, a prefix of random
  // length (drawn from `seed`) instead of none: the kernel may have written part of them back,
  // which leaves torn records for recovery to find.
  void KeepRandomUnsyncedPrefixes(uint64_t seed);
  // Runs `hook` at the start of every File::Sync (outside any lock of this file system); tests
  // use it to hold a sync while other writers queue up. nullptr removes it.
  void SetSyncHook(std::function<void()> hook);

 private:
  friend class FaultInjectionFile;
  struct FileState {
    uint64_t synced_size = 0;
  };
  // Counts a call of kind `op`; returns the injected error when it is the armed one.
  absl::Status Tick(Op op, const std::string& what);
  // With a simulated free space: how many of `size` bytes an append may write (all of them
  // without a simulation); takes them from the free space.
  uint64_t TakeSpace(uint64_t size);
  // With a simulated free space: gives `bytes` back.
  void ReturnSpace(uint64_t bytes);
  void OnSynced(const std::string& path, uint64_t size);
  void OnTruncated(const std::string& path, uint64_t size);

  FileSystem* const base_;
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // files written through this wrapper
  std::set<std::string> unsynced_creates_;  // created since their directory's last SyncDir
  struct PendingRename {
    std::string from, to;
  };
  std::vector<PendingRename> unsynced_renames_;  // in order
  std::map<Op, uint64_t> counts_;
  std::map<Op, uint64_t> fail_at_;  // op -> count value at which to fail
  std::function<void()> sync_hook_;
  std::optional<uint64_t> free_space_;  // simulated free bytes; nullopt: the base's
  bool torn_ = false;
  uint64_t torn_state_ = 0;  // splitmix64 state for torn prefixes
};

}  // namespace cairn::env
