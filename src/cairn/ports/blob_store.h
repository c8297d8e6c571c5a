// The storage-side port (docs/architecture.md "Modules"): a BlobStore holds the blobs a
// storage peer keeps for other owners (docs/architecture.md "Data path"), with the records it
// answers with. The engines (reclaim) use it through this interface only; store/ implements it
// (SegmentBlobStore, the old one-file-per-blob DiskBlobStore, and a memory store for tests).
//
// Every blob is kept with its XXH3-128 checksum: verified when it is written (against the
// checksum the sender computed) and every time it is read. The store never holds more than
// its quota. A put is answered once the blob is durable.
//
// Scrub (docs/operations.md): ListHeld walks the held blobs in key order and in batches, and
// ScrubBlob re-hashes one. A blob whose bytes no longer match its record (bit rot, truncation,
// unreadable sectors) is *quarantined*: kept aside for inspection but no longer held — Has is
// false, Get is NOT_FOUND, it is not counted in `used` — so the owner's next check or repair
// sees it missing, and a later Put of the key stores a fresh copy. Get quarantines too when it
// finds a mismatch (it then answers DATA_LOSS once, NOT_FOUND afterwards).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/codec/checksum.h"

namespace cairn::ports {

enum class PutOutcome { kStored, kAlreadyStored };

// Extra copies (docs/operations.md): an owner may ask a peer with spare space to keep a blob as
// *extra* — beyond the chunk's target, never counted toward it, and evicted first when space is
// needed.
struct PutOptions {
  bool extra = false;
};

// One blob of a PutBatch.
struct PutItem {
  BlobKey key;
  ByteSpan blob;
  codec::Checksum checksum{};
  PutOptions options;
};

struct StoreStats {
  uint64_t quota = 0;        // bytes lent
  uint64_t used = 0;         // bytes of blobs held (extra ones included)
  uint64_t blobs = 0;        // blobs held (extra ones included)
  uint64_t extra_blobs = 0;  // of which held as extra copies
  uint64_t extra_bytes = 0;
  uint64_t quarantined = 0;        // blobs set aside as corrupt (not in used/blobs)
  uint64_t quarantined_bytes = 0;  // their size on disk
  // Segment stores only (SegmentBlobStore; 0 for the others). `used` = live_bytes + dead_bytes:
  // a deleted or evicted blob's bytes stay in its segment, and count, until compaction.
  uint64_t live_bytes = 0;                  // bytes of held blobs
  uint64_t dead_bytes = 0;                  // bytes of deleted/evicted blobs not yet compacted away
  uint64_t segments = 0;                    // segment files
  uint64_t compactions = 0;                 // segments rewritten since open
  uint64_t compaction_copied_bytes = 0;     // live bytes they copied
  uint64_t compaction_reclaimed_bytes = 0;  // dead and quarantined bytes they returned
  uint64_t compacting_segment = 0;          // segment being rewritten now, 0 when none
  uint64_t compaction_done_bytes = 0;       // of it: live bytes copied so far
  uint64_t compaction_total_bytes = 0;      // of it: live bytes to copy
  // The file system holding the store (SegmentBlobStore only; docs/operations.md "A full
  // disk"): its free bytes (env::FileSystem::FreeSpace) when last asked, nullopt when unknown
  // (other stores, or the query failed), and the bytes the store leaves free on it for the
  // index and compaction.
  std::optional<uint64_t> disk_free;
  uint64_t disk_reserve = 0;
};

// Bytes of the blobs held (what an owner relies on), without dead bytes still waiting for
// compaction in a segment store.
inline uint64_t HeldBytes(const StoreStats& s) { return s.used - std::min(s.dead_bytes, s.used); }

// Bytes the store may still write on its disk: free space minus the reserve; nullopt when the
// free space is unknown.
inline std::optional<uint64_t> DiskRoom(const StoreStats& s) {
  if (!s.disk_free) return std::nullopt;
  return *s.disk_free - std::min(*s.disk_free, s.disk_reserve);
}

// Bytes of blobs the store can take now: the smaller of quota - used and DiskRoom. Extra copies
// are counted as used (a regular put may evict them, within the quota only).
inline uint64_t Room(const StoreStats& s) {
  uint64_t room = s.quota - std::min(s.quota, s.used);
  if (auto disk = DiskRoom(s)) room = std::min(room, *disk);
  return room;
}

// What ScrubBlob found.
enum class ScrubOutcome {
  kIntact,       // size and XXH3-128 match the record
  kQuarantined,  // bytes differ from the record (flipped, truncated, extended, unreadable):
                 // set aside, no longer held
  kMissing,      // registered but its file is gone: the record is dropped, no longer held
  kNotHeld,      // not registered (e.g. deleted after it was listed): nothing to check
};

const char* ScrubOutcomeName(ScrubOutcome outcome);

struct BlobRecord {
  BlobKey key;
  uint64_t size = 0;
  codec::Checksum checksum{};
  bool extra = false;  // held as an extra copy (evictable)
  // The envelope's kind (BlobKind value: 1 data, 2 tree, 3 snapshot), recorded at Put from the
  // blob header so that ListBlobs can tell an owner recovering its index which blobs are
  // snapshots without sending them. 0 = unknown (stored before index migration 0004).
  uint8_t kind = 0;
};

// What one owner has on this storage peer (`cairn status` as a storage peer).
struct OwnerUsage {
  PeerId owner = 0;
  uint64_t blobs = 0;  // extra ones included
  uint64_t bytes = 0;
  uint64_t extra_blobs = 0;
  uint64_t extra_bytes = 0;
};

// A blob this storage peer handed to another peer during a reclaim (evacuation): `key` is
// now held by peer `to`. The owner is told with BlobMoved (docs/protocol.md).
struct MovedBlob {
  BlobKey key;
  PeerId to = 0;
  auto operator<=>(const MovedBlob&) const = default;
  bool operator==(const MovedBlob&) const = default;
};

struct EvictResult {
  uint64_t blobs = 0;
  uint64_t bytes = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Stores `blob` under `key`. Checks, in order: the checksum of `blob` equals `checksum`
  // (DATA_LOSS otherwise); the blob is a well-formed envelope whose header names key.owner,
  // key.chunk and key.shard (INVALID_ARGUMENT otherwise); the key is not held yet
  // (kAlreadyStored, nothing written: puts are idempotent); used + size <= quota
  // (RESOURCE_EXHAUSTED otherwise). Returns kStored once the blob is durable.
  //
  // Extra copies: a regular put (options.extra false) that does not fit evicts extra blobs
  // (oldest stored first) until it fits — but only when evicting every extra blob would make
  // it fit; otherwise it evicts nothing and answers RESOURCE_EXHAUSTED. A regular put of a key
  // held as extra promotes it to regular (durably; answers kAlreadyStored). An extra put never
  // evicts anything (RESOURCE_EXHAUSTED when used + size > quota) and leaves a key already
  // held — extra or regular — as it is (kAlreadyStored).
  virtual absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob,
                                         const codec::Checksum& checksum,
                                         const PutOptions& options) = 0;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob,
                                 const codec::Checksum& checksum) {
    return Put(key, blob, checksum, PutOptions{});
  }

  // Stores several blobs; each item is checked and answered as Put would answer it, in the
  // order of `items` (one item's failure does not fail the others). A store that writes in
  // groups (the segment store's group commit) makes the whole batch durable with one sync;
  // the default runs Put for each item in turn.
  virtual std::vector<absl::StatusOr<PutOutcome>> PutBatch(std::span<const PutItem> items) {
    std::vector<absl::StatusOr<PutOutcome>> out;
    out.reserve(items.size());
    for (const PutItem& item : items) {
      out.push_back(Put(item.key, item.blob, item.checksum, item.options));
    }
    return out;
  }

  // Reads a blob and verifies its checksum. NOT_FOUND if not held; DATA_LOSS if the bytes on
  // disk no longer match the recorded checksum (the blob is then not returned, and is
  // quarantined: later calls answer NOT_FOUND).
  virtual absl::StatusOr<Bytes> Get(const BlobKey& key) = 0;

  // Get of each key in order: calls fn(i, answer for keys[i]) as each blob is read, so that
  // one blob at a time is held, and stops at fn's first error, which it returns (OK after the
  // last key). A store with a registry looks the keys up together (the segment store); this
  // default calls Get for each.
  using GetEachFn = std::function<absl::Status(size_t, absl::StatusOr<Bytes>)>;
  virtual absl::Status GetEach(std::span<const BlobKey> keys, const GetEachFn& fn) {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (absl::Status st = fn(i, Get(keys[i])); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // True when the blob is held (registered and its file present with the recorded size).
  // Does not re-hash; scrub does that.
  virtual absl::StatusOr<bool> Has(const BlobKey& key) = 0;

  // Drops a blob and frees its space (a segment store: once compaction rewrote its segment;
  // until then its bytes count as dead, see StoreStats). OK also when the key is not held (deletes
  // are idempotent, docs/protocol.md). Callers enforce who may delete (docs/protocol.md).
  virtual absl::Status Delete(const BlobKey& key) = 0;

  virtual StoreStats Stats() = 0;

  // Usage per owner, ascending by owner. Errors: the registry's.
  virtual absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() = 0;

  // Changes the quota (bytes). Blobs already held stay even if used > quota (reclaim moves
  // them); new puts are refused until used fits. Does not evict (see EvictExtras).
  virtual absl::Status SetQuota(uint64_t quota) = 0;

  // Evicts extra blobs, oldest stored first, until used <= `target_used` or no extra blob is
  // left. Returns what was evicted. Errors: I/O or registry failures (what was evicted so far
  // stays evicted).
  virtual absl::StatusOr<EvictResult> EvictExtras(uint64_t target_used) = 0;

  // Up to `limit` (>= 1) held blobs of `owner` with keys after `after` (chunk id, shard order;
  // from the first when nullopt; only after's chunk id and shard count). For ListBlobs
  // (recovery, audit). INVALID_ARGUMENT for limit 0.
  virtual absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                            const std::optional<BlobKey>& after,
                                                            size_t limit) = 0;

  // Up to `limit` (>= 1) held blobs whose keys come after `after` (from the first when nullopt),
  // in the store's key order, which is stable: a scrub walks the store in such batches and can
  // resume after the last key it reached, also after a restart. Errors: the registry's.
  virtual absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                           size_t limit) = 0;

  // Re-reads blob `key` from the medium (bypassing the page cache where the OS allows) and
  // compares its size and XXH3-128 with the recorded ones; quarantines it on a mismatch (see the
  // file comment). Reads at most the recorded size + 1 bytes. Errors (I/O failures other than
  // unreadable data, a broken registry) leave the blob as it was.
  virtual absl::StatusOr<ScrubOutcome> ScrubBlob(const BlobKey& key) = 0;
};

// Durable queue of BlobMoved notices not yet delivered to their owners (the owner may be
// offline). Thread-safe.
class MovedOutbox {
 public:
  virtual ~MovedOutbox() = default;
  // Queues a notice; replaces an earlier one for the same key.
  virtual absl::Status Add(const MovedBlob& move) = 0;
  // Owners with queued notices, ascending.
  virtual absl::StatusOr<std::vector<PeerId>> Owners() = 0;
  // Up to `limit` notices for `owner`, oldest first.
  virtual absl::StatusOr<std::vector<MovedBlob>> List(PeerId owner, size_t limit) = 0;
  // Drops delivered notices (a notice whose key was re-queued with another `to` stays).
  virtual absl::Status Ack(const std::vector<MovedBlob>& delivered) = 0;
  virtual absl::StatusOr<uint64_t> Count() = 0;
};

}  // namespace cairn::ports
