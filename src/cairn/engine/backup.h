// Backup engine (docs/architecture.md "Backup data flow"): walk -> (parent snapshot: skip
// unchanged) -> read -> FastCDC -> HMAC chunk id -> dedup (catalog) -> zstd -> AES-256-GCM ->
// [Reed-Solomon k+m] -> placement -> PutBlob to N (or k+m) distinct peers -> record placement
// -> tree blobs -> snapshot blob -> snapshot in catalog. Storing is engine/chunk_io.h (PutChunk).
//
// Concurrency: one walker thread reads, chunks and hashes files and builds trees; a fixed pool
// of upload workers compresses and encrypts new chunks and starts their puts
// (engine/chunk_io.h StartNewCopies); one finisher thread collects the answers in order and
// records the chunks (FinishCopies). Concurrent puts to one peer travel in batches
// (net/batching_peer_client.h). The plaintext queued or being uploaded is at
// most `max_bytes_in_flight` (plus one chunk), so memory stays flat whatever the data size.
//
// Thread-safety: one Run at a time per BackupEngine; progress may be read from other threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/codec/chunker.h"
#include "cairn/codec/crypto.h"
#include "cairn/codec/erasure.h"
#include "cairn/engine/context.h"
#include "cairn/engine/peer_set.h"
#include "cairn/env/clock.h"
#include "cairn/format/tree.h"
#include "cairn/placement/placement.h"

namespace cairn::engine {

struct BackupOptions {
  std::vector<std::string> paths;  // absolute or relative; made absolute
  uint32_t copies = 2;             // replication degree (>= 1); ignored when `ec` is set
  // Erasure coding k+m instead of copies: chunks become k+m shards on distinct peers (small
  // chunks m+1 copies). Chunks already stored keep their scheme (docs/operations.md).
  std::optional<codec::ErasureScheme> ec;
  // Of the copies (or k+m shards) of each new chunk, how many go to peers of another site
  // (docs/operations.md "Sites and off-site copies"); a chunk that could not get them is
  // stored anyway and counted below target.
  uint32_t offsite = 0;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;  // fnmatch(3) globs, matched against the base name and
                                      // against the full path
  std::string hostname;
  // Workers seal chunks; a new chunk's copies are then sent without waiting (the answers are
  // collected by one finisher thread), so many chunks are in flight to each peer at once with
  // few threads (they share batches and the storage peers' group commits). Erasure-coded and
  // topped-up chunks are stored by the worker itself (copies use at most cores + 1 workers:
  // they only seal). Memory is bounded by bytes.
  int upload_threads = 8;
  int queue_chunks = 64;
  // Bytes of chunks queued, being sealed or with puts in flight (plaintext until sealed, then
  // the sealed blob). 16 MiB keeps a home peer within 128 MiB and is still several round trips
  // of a storage peer's group commit at full speed.
  uint64_t max_bytes_in_flight = 16ull << 20;
  // Change detection against the parent (the latest snapshot of exactly these paths;
  // docs/architecture.md "Change detection"): a file whose size, mtime, ctime and inode equal
  // the parent entry's is not read, its chunk list is reused. A parent entry with ctime or
  // inode 0 (a tree written before they were recorded) does not compare that field.
  bool use_parent = true;
  // Compare content instead of metadata: every file is read and chunked, and a file whose
  // chunk ids equal the parent entry's counts as unchanged (it was read all the same). Catches
  // changes that kept size, mtime, ctime and inode (tools that restore timestamps, bit rot).
  bool rehash = false;
  // Test hook, called on the walker thread after each pass over a regular file's content
  // (`attempt` 1, then 2 when the file changed during the first pass) and before the file is
  // stat'ed again to see whether it changed while it was read. Empty: none.
  std::function<void(const std::string& path, int attempt)> after_file_read;
};

// Live counters, updated while a backup runs.
struct BackupProgress {
  // From a concurrent stat-only scan, started once the backup has run for a second (0 for a
  // backup that ended sooner).
  std::atomic<uint64_t> files_total{0};
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<bool> scan_done{false};
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};  // file bytes processed (read or unchanged)
  std::atomic<uint64_t> bytes_read{0};  // file bytes actually read
  std::atomic<uint64_t> new_bytes{0};
  std::atomic<uint64_t> sent_bytes{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> new_chunks{0};
  std::atomic<uint64_t> files_read{0};       // as BackupResult
  std::atomic<uint64_t> files_unchanged{0};  // as BackupResult
  std::atomic<uint64_t> files_changed_during_read{0};
};

struct BackupResult {
  ChunkId snapshot_id;
  format::Snapshot snapshot;
  bool rehash = false;      // BackupOptions::rehash
  uint32_t offsite = 0;     // BackupOptions::offsite
  uint64_t files_read = 0;  // files whose content was read (a file read twice counts once)
  // Files whose content is the parent's: taken from the parent without reading (metadata
  // equal), or with `rehash` read and found to have the parent's chunk ids.
  uint64_t files_unchanged = 0;
  // With `rehash`: files whose size, mtime, ctime and inode matched the parent's but whose
  // content did not, i.e. changes the metadata comparison alone would have missed.
  uint64_t files_changed_same_metadata = 0;
  // Files that changed while they were read (size, mtime or ctime differ between fstat before
  // and after the read) and were read a second time.
  uint64_t files_reread = 0;
  // Files that changed again during the second read: stored as read (the bytes may be a mix
  // of versions), named in `warnings`, and recorded so that the next run reads them again.
  uint64_t files_changed_during_read = 0;
  uint64_t bytes_read = 0;  // file bytes read, second reads included
  double seconds = 0;
  // Problems that did not stop the backup: skipped special files, files that kept changing
  // while they were read.
  std::vector<std::string> warnings;
  // Chunks stored below their target: fewer copies than asked, not all k+m shards on
  // distinct peers, or fewer off-site holders than BackupOptions::offsite (the backup is
  // degraded, exit code 3).
  uint64_t chunks_below_target = 0;
  // Set when the cluster cannot give the requested redundancy at all (RedundancyWarning, as
  // the backup started): too few storage peers are known, or alive. Empty otherwise.
  std::string redundancy_warning;
  bool degraded() const { return chunks_below_target > 0 || !errors.empty(); }
  std::vector<std::string> errors;  // files that could not be backed up
};

// Why `copies` copies (or, when `ec` is set, k+m shards on distinct peers) cannot be held by
// the storage peers `peers` (every known peer but this one, as PeerSet::Peers lists them):
// fewer are known ("--copies 5 asks for 5 copies but only 2 other storage peers are known;
// chunks will stay below target until more peers join"), or fewer are alive. Empty when
// enough are alive. Small chunks of an erasure-coded backup need only m+1 peers; the warning
// is about the k+m that the others need.
std::string RedundancyWarning(uint32_t copies, const std::optional<codec::ErasureScheme>& ec,
                              const std::vector<StoragePeer>& peers);

class BackupEngine {
 public:
  explicit BackupEngine(EngineContext ctx) : ctx_(ctx) {}

  // Runs one backup. `progress` may be null. Returns the result also when degraded (files
  // unreadable, chunks below target); fails with UNAVAILABLE when no chunk could be stored at
  // all (no peers), INVALID_ARGUMENT for bad options, NOT_FOUND when a path is missing, and
  // CANCELLED when `cancel` becomes true. A snapshot is recorded only when every chunk, tree
  // and the snapshot blob was stored on at least one peer.
  absl::StatusOr<BackupResult> Run(const BackupOptions& options, BackupProgress* progress,
                                   const std::atomic<bool>* cancel = nullptr);

 private:
  EngineContext ctx_;
};

}  // namespace cairn::engine
