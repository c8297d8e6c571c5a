// BlobStore: the blobs a storage peer holds for other owners (docs/formats.md "Blob key and file
// layout on a storage peer"; docs/architecture.md "Invariants and where they hold").
//
// Every blob is kept with its XXH3-128 checksum: verified when it is written (against the
// checksum the sender computed) and every time it is read. The store never holds more than
// its quota. Writes are atomic and durable (temp + fsync + rename + directory fsync) and are
// recorded in a BlobRegistry (SQLite in production) so that usage survives restarts.
//
// Scrub: ListHeld walks the held blobs in key order and in batches, and
// ScrubBlob re-hashes one. A blob whose bytes no longer match its record (bit rot, truncation,
// unreadable sectors) is *quarantined*: kept aside for inspection but no longer held — Has is
// false, Get is NOT_FOUND, it is not counted in `used` — so the owner's next check or repair
// sees it missing, and a later Put of the key stores a fresh copy. Get quarantines too when it
// finds a mismatch (it then answers DATA_LOSS once, NOT_FOUND afterwards).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/codec/checksum.h"
#include "cairn/ports/blob_store.h"

namespace cairn::store {

// The port's types, under the names the storage side has always used for them.
using ports::BlobRecord;
using ports::BlobStore;
using ports::DiskRoom;
using ports::EvictResult;
using ports::HeldBytes;
using ports::MovedBlob;
using ports::MovedOutbox;
using ports::OwnerUsage;
using ports::PutItem;
using ports::PutOptions;
using ports::PutOutcome;
using ports::Room;
using ports::ScrubOutcome;
using ports::ScrubOutcomeName;
using ports::StoreStats;

// The kind byte of an envelope (BlobRecord::kind), 0 when `blob` has no valid header.
uint8_t BlobKindOf(ByteSpan blob);

// Durable record of held blobs, one row per key. Thread-safe.
class BlobRegistry {
 public:
  virtual ~BlobRegistry() = default;
  // Inserts or replaces the record.
  virtual absl::Status Add(const BlobRecord& record) = 0;
  virtual absl::Status Remove(const BlobKey& key) = 0;
  // nullopt when not registered.
  virtual absl::StatusOr<std::optional<BlobRecord>> Find(const BlobKey& key) = 0;
  // Sum of sizes and count of all records (and of the extra ones).
  virtual absl::StatusOr<StoreStats> Totals() = 0;
  // Marks a record extra or regular. NOT_FOUND when not registered.
  virtual absl::Status SetExtra(const BlobKey& key, bool extra) = 0;
  // Per owner, ascending by owner.
  virtual absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() = 0;
  // Up to `limit` extra records, oldest stored first (the eviction order).
  virtual absl::StatusOr<std::vector<BlobRecord>> ListExtras(size_t limit) = 0;
  // Like List, restricted to one owner.
  virtual absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                            const std::optional<BlobKey>& after,
                                                            size_t limit) = 0;
  // Calls `fn` for every record (any order); stops early and returns its error if it fails.
  virtual absl::Status ForEach(const std::function<absl::Status(const BlobRecord&)>& fn) = 0;
  // Up to `limit` (>= 1) records with keys after `after` (from the first when nullopt), in the
  // registry's key order (stable across calls and restarts; Sqlite: owner, chunk id bytes,
  // shard). Records added or removed between calls never make a walk skip or repeat others.
  virtual absl::StatusOr<std::vector<BlobRecord>> List(const std::optional<BlobKey>& after,
                                                       size_t limit) = 0;
};

std::unique_ptr<MovedOutbox> NewMemMovedOutbox();

// The checks Put makes before storing anything, shared by every BlobStore (and usable by a
// server before it queues a write): DATA_LOSS if BlobChecksum(blob) != checksum;
// INVALID_ARGUMENT if `blob` is not a valid envelope (format::ParseBlobHeader) or its header
// names another owner, chunk or shard than `key`.
absl::Status ValidateBlobForKey(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum);

// In-memory BlobRegistry for tests and for DiskBlobStore's unit tests.
class MemBlobRegistry;
std::unique_ptr<BlobRegistry> NewMemBlobRegistry();

// Blobs as files under `root` in a two-level fan-out by chunk id: root/ab/cd/<owner>-<chunk
// hex>-<shard>. Open() creates `root` if missing and removes leftover temp files (".*.tmp-*",
// from writes interrupted by a crash). A Put writes the file (env::WriteFileAtomic, creating
// and fsyncing fan-out directories as needed) before registering it; a Delete removes the
// file before unregistering it. A crash in between leaves either an unregistered file (a
// retried Put overwrites it) or a record without a file (Has is false, Get NOT_FOUND; a
// retried Put or Delete settles it; scrub drops such a record). Concurrent puts of one key are
// serialized: the second sees kAlreadyStored.
//
// Quarantine: the file is renamed (atomically, then both directories fsynced) to
// root/quarantine/<owner>-<chunk hex>-<shard>.<wall-clock ns> and only then unregistered, so a
// crash in between leaves a record without a file (see above). Files in root/quarantine are
// never read or deleted by cairn; Open counts them for Stats.
//
// Extra copies: the extra flag lives in the registry record (so it survives restarts, and Open
// loads the extra totals with the others). Evicting an extra blob (a regular put that needs the
// room, or EvictExtras) removes its file, then its record, like Delete; it skips keys that
// another Put, Delete or quarantine is working on instead of waiting for them, so a regular put
// may still find no room when every remaining extra blob is busy (RESOURCE_EXHAUSTED).
class DiskBlobStore : public BlobStore {
 public:
  // Called (outside any lock of the store) after a blob was quarantined or its record dropped
  // because its file was missing, with the outcome and the reason; the daemon logs it.
  using DamageObserver =
      std::function<void(const BlobKey& key, ScrubOutcome outcome, const std::string& reason)>;

  // `registry` must outlive the store. INVALID_ARGUMENT/INTERNAL if root cannot be created.
  static absl::StatusOr<std::unique_ptr<DiskBlobStore>> Open(const std::string& root,
                                                             uint64_t quota, BlobRegistry* registry,
                                                             DamageObserver observer = nullptr);
  ~DiskBlobStore() override;

  using BlobStore::Put;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum,
                                 const PutOptions& options) override;
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

  // Path of the file that holds `key` (tests corrupt it; scrub reads it).
  std::string PathFor(const BlobKey& key) const;
  // root/quarantine.
  std::string QuarantineDir() const;

 private:
  struct State;
  explicit DiskBlobStore(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// In-memory BlobStore with the same semantics (checksum, envelope, quota, quarantine); for
// engine tests.
std::unique_ptr<BlobStore> NewMemBlobStore(uint64_t quota);

// Test hook: applies `mutate` to the bytes a MemBlobStore holds for `key`, without touching the
// recorded checksum (simulates bit rot or truncation). INVALID_ARGUMENT if `store` is not a
// MemBlobStore, NOT_FOUND if the key is not held.
absl::Status MutateMemBlobForTesting(BlobStore* store, const BlobKey& key,
                                     const std::function<void(Bytes&)>& mutate);

}  // namespace cairn::store
