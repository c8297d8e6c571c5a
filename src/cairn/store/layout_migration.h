// Upgrade of a storage peer directory from the one-file-per-blob layout (DiskBlobStore:
// DIR/blobs/ab/cd/<owner>-<chunk hex>-<shard>, rows in the `blobs` table) into segments
// (SegmentBlobStore: DIR/segments, migration 0005 tables); docs/formats.md "Segments", "Upgrade
// from the file layout".
//
//   - NeedsLayoutMigration: whether a directory still holds anything in the file layout (the
//     daemon asks at start).
//   - MigratingBlobStore: the BlobStore the daemon serves while the migration runs. New blobs go
//     to the segments; reads, Has, Delete, listings and usage see both layouts, so that every
//     blob stays reachable whichever layout holds it at the moment. The quota covers both.
//   - FileLayoutMigrator: moves the blobs over in batches, in the background, rate-limited and
//     resumable: each blob is read and verified against its old record, appended to the segment
//     store in one group commit per batch, and only once that is durable is the old copy
//     dropped. A crash at any point leaves every blob readable from at least one layout; a blob
//     found in both is taken from the segments and its old copy dropped.
//
// Thread-safety: NeedsLayoutMigration is stateless. MigratingBlobStore is thread-safe (as every
// BlobStore). FileLayoutMigrator: MigrateBatch/Run from one thread at a time; Stop and Progress
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "cairn/env/clock.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/segment_blob_store.h"

namespace cairn::store {

// True when the file layout still holds something: a row in `registry` (the `blobs` table), or
// any entry under `blobs_root` (DIR/blobs) other than its quarantine directory — blob files,
// leftover temp files or fan-out directories the migration has not removed yet. Quarantined
// files alone do not count (they are kept for inspection, never migrated). Errors: the
// registry's; I/O errors listing `blobs_root` (a missing root is "nothing there").
absl::StatusOr<bool> NeedsLayoutMigration(const std::string& blobs_root, BlobRegistry* registry);

class FileLayoutMigrator;

// A BlobStore over both layouts while a FileLayoutMigrator runs:
//   - Put/PutBatch: a key the file layout holds answers kAlreadyStored (a regular put of a key
//     held there as extra promotes it, in both layouts when it is in both); any other key goes
//     to the segment store.
//   - Get: the segments, then the file layout, then the segments again (the blob may have moved
//     in between). A copy the segment store finds corrupt is quarantined there; an intact file
//     copy is then served instead (the migrator moves it again).
//   - Has/ScrubBlob: either layout. Delete: both (segments first).
//   - Stats, UsageByOwner: sums (a blob in both layouts during a batch is counted once).
//   - ListOwner/ListHeld: both merged in key order (owner as a signed 64-bit integer, chunk id
//     bytes, shard: the SQLite registries' order, which both stores must share), without
//     duplicates.
//   - Quota: `quota` covers both. The segment store's own quota is kept at quota minus the
//     bytes only the file layout holds, so that a put into the segments can never make the sum
//     exceed it; it rises as the migrator moves blobs over (docs/formats.md "Upgrade from the
//     file layout"). EvictExtras evicts from the file layout first (its blobs are older).
// Once the migrator finished, every call goes to the segment store alone.
class MigratingBlobStore : public BlobStore {
 public:
  // `segments` and `files` (a DiskBlobStore on DIR/blobs) must outlive the wrapper. Sets the
  // segment store's quota as described above. INVALID_ARGUMENT for null stores; the segment
  // store's SetQuota errors.
  static absl::StatusOr<std::unique_ptr<MigratingBlobStore>> Create(SegmentBlobStore* segments,
                                                                    BlobStore* files,
                                                                    uint64_t quota);

  using BlobStore::Put;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum,
                                 const PutOptions& options) override;
  std::vector<absl::StatusOr<PutOutcome>> PutBatch(std::span<const PutItem> items) override;
  absl::StatusOr<Bytes> Get(const BlobKey& key) override;
  absl::StatusOr<bool> Has(const BlobKey& key) override;
  absl::Status Delete(const BlobKey& key) override;
  StoreStats Stats() override;
  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override;
  absl::Status SetQuota(uint64_t quota) override;
  absl::StatusOr<EvictResult> EvictExtras(uint64_t target_used) override;
  absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override;
  absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                   size_t limit) override;
  absl::StatusOr<ScrubOutcome> ScrubBlob(const BlobKey& key) override;

  // True once the migrator removed the file layout: the wrapper is the segment store alone.
  bool migrated() const { return migrated_.load(); }
  SegmentBlobStore* segments() const { return segments_; }
  BlobStore* files() const { return files_; }

 private:
  friend class FileLayoutMigrator;
  MigratingBlobStore(SegmentBlobStore* segments, BlobStore* files, uint64_t quota);

  // Sets the segment store's quota to quota_ - (bytes only the file layout holds) + `headroom`,
  // and at least its used bytes + `headroom` when `headroom` > 0 (a batch being moved must
  // fit even when the sum is over the quota: moving does not change it).
  absl::Status Rebalance(uint64_t headroom = 0);
  // Bytes and blobs held in both layouts now (copied by the migrator, old copy not yet dropped).
  void InBothTotals(uint64_t* blobs, uint64_t* bytes, uint64_t* extra_blobs, uint64_t* extra_bytes);
  void ForgetInBoth(const BlobKey& key);

  SegmentBlobStore* const segments_;
  BlobStore* const files_;
  std::atomic<bool> migrated_{false};
  // Puts and deletes hold it shared; the migrator holds it exclusively while it checks, copies
  // and registers a batch, so that no put or delete of the file layout interleaves with that.
  std::shared_mutex move_mu_;
  std::mutex mu_;
  uint64_t quota_ ABSL_GUARDED_BY(mu_);
  std::map<BlobKey, BlobRecord> in_both_ ABSL_GUARDED_BY(mu_);
};

struct LayoutMigrationOptions {
  // Bytes of old blob files read per second (token bucket, burst one second's worth); 0 =
  // unlimited.
  uint64_t bytes_per_second = 32ull << 20;
  // A batch (one group commit) takes at most this many blobs and, past its first blob, this
  // many bytes.
  size_t batch_blobs = 64;
  uint64_t batch_bytes = 8ull << 20;
  // Time and waiting for the rate limit; nullptr = real ones owned by the migrator.
  env::Clock* clock = nullptr;
  env::Sleeper* sleeper = nullptr;
};

// For `cairn status` while migrating. Counts are since the migrator was created, except
// remaining_* (what the file layout still holds).
struct LayoutMigrationProgress {
  uint64_t moved_blobs = 0;  // copied into the segments, old copy dropped
  uint64_t moved_bytes = 0;
  uint64_t already_blobs = 0;   // found in the segments already (an earlier run): old copy dropped
  uint64_t damaged_blobs = 0;   // old file did not match its record: quarantined, not copied
  uint64_t missing_blobs = 0;   // old record without its file and not in the segments: dropped
  uint64_t leftover_files = 0;  // unregistered files (temp or never acknowledged) removed
  uint64_t remaining_blobs = 0;
  uint64_t remaining_bytes = 0;
  bool done = false;
};

class FileLayoutMigrator {
 public:
  // `store` (whose files() is the DiskBlobStore on `blobs_root`) must outlive the migrator.
  // INVALID_ARGUMENT for a null store, an empty root or batch_blobs 0.
  static absl::StatusOr<std::unique_ptr<FileLayoutMigrator>> Create(
      const std::string& blobs_root, MigratingBlobStore* store,
      const LayoutMigrationOptions& options);

  // Moves one batch: up to batch_blobs records of the file layout (key order) are read
  // (rate-limited) and verified against their records, appended to the segment store with one
  // PutBatch (one sync), then dropped from the file layout (record and file). When no record is
  // left it removes the leftover files and empty directories of `blobs_root` (its quarantine
  // directory stays while it holds files) and returns true: the migration is done. Returns
  // false when more remains. Errors: CANCELLED after Stop; the stores' errors (the first
  // failing blob's, after the rest of the batch was handled). Any error leaves every blob in at
  // least one layout; calling again (also after reopening everything) continues.
  absl::StatusOr<bool> MigrateBatch();

  // MigrateBatch until done. OK when done; CANCELLED after Stop; else the first error.
  absl::Status Run();

  // Makes Run/MigrateBatch return CANCELLED soon (ends a rate-limit wait). Final.
  void Stop();

  LayoutMigrationProgress Progress();

 private:
  FileLayoutMigrator(std::string blobs_root, MigratingBlobStore* store,
                     const LayoutMigrationOptions& options);
  // Removes what is left under blobs_root_ once the registry is empty.
  absl::Status Finish();

  const std::string blobs_root_;
  MigratingBlobStore* const store_;
  const LayoutMigrationOptions options_;
  std::unique_ptr<env::InterruptibleSleeper> own_sleeper_;
  env::Sleeper* sleeper_;
  std::unique_ptr<env::RateLimiter> limiter_;  // nullptr: unlimited
  std::atomic<bool> stopped_{false};
  std::optional<BlobKey> cursor_;  // last key handled in this pass (MigrateBatch's thread only)

  std::mutex mu_;
  LayoutMigrationProgress progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::store
