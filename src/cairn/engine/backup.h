// Backup engine (design.md §3): walk -> (parent snapshot: skip unchanged) -> read -> FastCDC ->
// HMAC chunk id -> dedup (catalog) -> zstd -> AES-256-GCM -> [Reed-Solomon k+m] -> placement ->
// PutBlob to N (or k+m) distinct peers -> record placement -> tree blobs -> snapshot blob ->
// snapshot in catalog. Storing is engine/chunk_io.h (PutChunk).
//
// Concurrency: one walker thread reads, chunks and hashes files and builds trees; a pool of
// upload workers compresses, encrypts and uploads new chunks. The queue between them holds at
// most `queue_chunks` chunks, so memory is bounded by (queue_chunks + upload_threads) x
// max chunk size whatever the data size.
//
// Thread-safety: one Run at a time per BackupEngine; progress may be read from other threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/codec/chunker.h"
#include "cairn/codec/crypto.h"
#include "cairn/codec/erasure.h"
#include "cairn/engine/peer_set.h"
#include "cairn/env/clock.h"
#include "cairn/format/tree.h"
#include "cairn/index/catalog.h"
#include "cairn/placement/placement.h"

namespace cairn::engine {

// What the engines share: this owner's identity and keys, its catalog and the cluster.
struct EngineContext {
  PeerId owner = 0;
  codec::OwnerKeys keys;
  codec::ChunkerParams chunker;
  index::Catalog* catalog = nullptr;
  PeerSet* peers = nullptr;
  env::Clock* clock = nullptr;
  placement::Spread spread = placement::Spread::kHost;
  // Garbage-collection lock (docs/operations.md "Garbage collection"; engine/gc.h): backup,
  // check, repair, extra-copy placement, snapshot rewrite and BlobMoved take it shared; GC's
  // mark+sweep and each batch of deletion delivery take it exclusive. Null: no locking.
  std::shared_mutex* gc_lock = nullptr;
};

struct BackupOptions {
  std::vector<std::string> paths;  // absolute or relative; made absolute
  uint32_t copies = 2;             // replication degree (>= 1); ignored when `ec` is set
  // Erasure coding k+m instead of copies: chunks become k+m shards on distinct peers (small
  // chunks m+1 copies). Chunks already stored keep their scheme (docs/operations.md).
  std::optional<codec::ErasureScheme> ec;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;  // fnmatch(3) globs, matched against the base name and
                                      // against the full path
  std::string hostname;
  int upload_threads = 8;
  int queue_chunks = 8;
  bool use_parent = true;  // skip files unchanged since the latest snapshot of the same paths
};

// Live counters, updated while a backup runs.
struct BackupProgress {
  std::atomic<uint64_t> files_total{0};  // from a concurrent stat-only scan
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<bool> scan_done{false};
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};  // file bytes processed (read or unchanged)
  std::atomic<uint64_t> bytes_read{0};  // file bytes actually read
  std::atomic<uint64_t> new_bytes{0};
  std::atomic<uint64_t> sent_bytes{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> new_chunks{0};
};

struct BackupResult {
  ChunkId snapshot_id;
  format::Snapshot snapshot;
  uint64_t files_read = 0;       // files whose content was read
  uint64_t files_unchanged = 0;  // files taken from the parent snapshot without reading
  uint64_t bytes_read = 0;
  double seconds = 0;
  // Problems that did not stop the backup: unreadable files, skipped special files.
  std::vector<std::string> warnings;
  // Chunks stored below their target: fewer copies than asked, or not all k+m shards on
  // distinct peers (the backup is degraded, exit code 3).
  uint64_t chunks_below_target = 0;
  bool degraded() const { return chunks_below_target > 0 || !errors.empty(); }
  std::vector<std::string> errors;  // files that could not be backed up
};

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
