// The catalog port (docs/architecture.md "Modules"). Catalog: the home peer's index of its own
// backups (docs/architecture.md "Modules and their dependencies"): snapshots, the chunks it owns
// and which peers hold each chunk's blobs, and a cache of decoded trees. It is a cache of what is
// on the peers and can be rebuilt from them (engine/recover.h).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/base/status.h"
#include "cairn/format/tree.h"

namespace cairn::ports {

// One placed blob of an erasure-coded chunk: shard index `shard` is held by `peer`.
struct ShardHolder {
  uint32_t shard = 0;
  PeerId peer = 0;
  auto operator<=>(const ShardHolder&) const = default;
  bool operator==(const ShardHolder&) const = default;
};

// A chunk and its redundancy. The scheme is fixed when the chunk is first added:
//  - copies (ec_k == 0): target = copies wanted; `holders` = peers holding a copy (shard 0);
//  - erasure coding k+m (ec_k >= 1): target = k+m; `shards` = (shard, peer) placements.
// The chunk is at target when it has `target` copies, resp. when every one of the k+m shard
// indices has a holder and at least k+m distinct peers hold its shards.
struct ChunkRecord {
  ChunkId id;
  BlobKind kind = BlobKind::kData;
  uint64_t plain_size = 0;  // plaintext bytes
  uint64_t blob_size = 0;   // size of one blob (envelope): a copy, or one shard
  uint32_t target = 0;      // copies wanted, or k+m shards
  uint8_t ec_k = 0;         // 0 = copies; else data shards
  uint8_t ec_m = 0;         // parity shards (erasure coding only)
  // Of those copies or shards, how many should be on distinct peers of another site than the
  // home peer's (docs/operations.md "Sites and off-site copies"); 0 = no off-site target.
  // Not part of AtTarget (which knows no sites): check counts it apart.
  uint8_t offsite = 0;
  std::vector<PeerId> holders;      // copies: peers confirmed to hold a copy (shard 0), ascending
  std::vector<ShardHolder> shards;  // erasure: confirmed placements, ascending (shard, peer)
  // Extra copies (docs/operations.md; copies chunks only, shard 0): peers asked to keep one beyond
  // the target, ascending. Never counted by PlacedCount/AtTarget; the peer may evict them.
  std::vector<PeerId> extras;

  bool erasure() const { return ec_k > 0; }
  // Distinct shard indices with a holder (erasure), or copies held.
  uint32_t PlacedCount() const;
  bool AtTarget() const;
};

inline uint32_t ChunkRecord::PlacedCount() const {
  if (!erasure()) return static_cast<uint32_t>(holders.size());
  uint32_t n = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    if (i == 0 || shards[i].shard != shards[i - 1].shard) ++n;
  }
  return n;
}

inline bool ChunkRecord::AtTarget() const {
  if (!erasure()) return holders.size() >= target;
  std::vector<PeerId> peers;
  for (const auto& s : shards) peers.push_back(s.peer);
  std::sort(peers.begin(), peers.end());
  size_t distinct = static_cast<size_t>(std::unique(peers.begin(), peers.end()) - peers.begin());
  return PlacedCount() >= target && distinct >= target;
}

struct SnapshotRecord {
  ChunkId id;  // chunk id of the snapshot blob
  format::Snapshot snapshot;
};

struct CatalogStats {
  uint64_t chunks = 0;
  uint64_t chunks_at_target = 0;  // ChunkRecord::AtTarget()
  uint64_t chunks_below_target = 0;
  uint64_t plain_bytes = 0;   // sum of plain_size
  uint64_t stored_bytes = 0;  // sum of blob_size x placed blobs (copies or shards; no extras)
  // Sum of blob_size x max(1, ec_k): what one copy of every chunk takes (compressed and
  // encrypted); stored_bytes / one_copy_bytes is the redundancy overhead.
  uint64_t one_copy_bytes = 0;
  uint64_t extra_blobs = 0;        // extra placements
  uint64_t extra_bytes = 0;        // sum of blob_size over them
  uint64_t pending_deletions = 0;  // queued blob deletions not yet confirmed by their peer
};

// One blob of a chunk, without the owner (the catalog is one owner's).
struct ChunkShard {
  ChunkId chunk;
  uint32_t shard = 0;
  auto operator<=>(const ChunkShard&) const = default;
  bool operator==(const ChunkShard&) const = default;
};

// A chunk and the target it should have (Catalog::SetChunkTargets).
struct ChunkTarget {
  ChunkId id;
  uint32_t target = 0;  // copies wanted (>= 1)
};

// What MovePlacement did with a BlobMoved notice.
enum class MoveOutcome {
  kMoved,         // the placement now names the new peer
  kUnknownChunk,  // the chunk is no longer in the catalog (collected): a deletion of the
                  // moved blob on the new peer was queued instead
};

class Catalog {
 public:
  virtual ~Catalog() = default;

  // nullopt when the chunk is unknown.
  virtual absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) = 0;
  // FindChunk for each id, answers in the order of `ids` (restore looks up a directory's chunks
  // at once: one read transaction instead of one per chunk). The default calls FindChunk in turn.
  virtual absl::StatusOr<std::vector<std::optional<ChunkRecord>>> FindChunks(
      std::span<const ChunkId> ids) {
    std::vector<std::optional<ChunkRecord>> found;
    found.reserve(ids.size());
    for (const ChunkId& id : ids) {
      CAIRN_ASSIGN_OR_RETURN(std::optional<ChunkRecord> r, FindChunk(id));
      found.push_back(std::move(r));
    }
    return found;
  }
  // Inserts the chunk if new (kind, sizes, scheme, target and offsite from `record`; target and
  // offsite raised if larger; a plain_size of 0 = unknown (after `recover`) is filled in from a
  // record that knows it; the scheme of a known chunk never changes) and adds `record.holders` (as
  // shard 0) and `record.shards` to its placements (a set: repeated calls are harmless). A regular
  // placement replaces an extra one of the same peer. In the same transaction it cancels any
  // pending deletion of the blobs it records (a blob placed again after a garbage collection
  // queued its deletion must not be deleted). `record.extras` is ignored.
  virtual absl::Status AddChunk(const ChunkRecord& record) = 0;
  // AddChunk for each record, all in one transaction (backup records chunks in batches,
  // docs/architecture.md "Data path"). The default calls AddChunk in turn.
  virtual absl::Status AddChunks(std::span<const ChunkRecord> records) {
    for (const ChunkRecord& r : records) CAIRN_RETURN_IF_ERROR(AddChunk(r));
    return absl::OkStatus();
  }
  // Records an extra copy of copies chunk `id` on `peer` (no-op when `peer` holds a regular
  // copy; cancels a pending deletion of that blob). NOT_FOUND for an unknown chunk;
  // FAILED_PRECONDITION for an erasure-coded one.
  virtual absl::Status AddExtraPlacement(const ChunkId& id, PeerId peer) = 0;
  // Forgets extra copies (evicted or gone). Unknown chunks and peers are fine.
  virtual absl::Status RemoveExtraPlacements(const ChunkId& id,
                                             const std::vector<PeerId>& peers) = 0;
  // Up to `limit` (>= 1) chunk records with ids after `after` (from the first when nullopt),
  // ascending by id, each as FindChunk returns it. INVALID_ARGUMENT when `limit` is 0.
  virtual absl::StatusOr<std::vector<ChunkRecord>> ListChunks(const std::optional<ChunkId>& after,
                                                              size_t limit) = 0;

  // Garbage collection (engine/gc.h): in one transaction, drops these chunk records (and their
  // cached trees) and queues a deletion of every blob they had placed — regular and extra —
  // for its peer. Unknown ids are skipped. Returns the number of deletions queued.
  virtual absl::StatusOr<uint64_t> DeleteChunks(const std::vector<ChunkId>& ids) = 0;
  // Targets after snapshots were forgotten (engine/gc.h; docs/operations.md "Redundancy
  // targets"): in one transaction, sets the target of each listed copies chunk (ec_k == 0) to
  // the given value, lower or higher. Unknown chunks and erasure-coded chunks (whose k+m is
  // fixed by their scheme) are skipped; placements are not touched. Returns the number of
  // targets that changed. INVALID_ARGUMENT, nothing changed, for a target of 0.
  virtual absl::StatusOr<uint64_t> SetChunkTargets(std::span<const ChunkTarget> targets) = 0;
  // Peers with queued deletions, ascending.
  virtual absl::StatusOr<std::vector<PeerId>> PeersWithPendingDeletions() = 0;
  // Up to `limit` (>= 1) queued deletions for `peer`, oldest first (those queued together: by
  // chunk id, then shard). INVALID_ARGUMENT when `limit` is 0.
  virtual absl::StatusOr<std::vector<ChunkShard>> ListPendingDeletions(PeerId peer,
                                                                       size_t limit) = 0;
  // The peer confirmed these deletions: drop them from the queue.
  virtual absl::Status AckDeletions(PeerId peer, const std::vector<ChunkShard>& done) = 0;
  // Queues deletions outside garbage collection (a blob moved to a peer after its chunk was
  // collected). Idempotent.
  virtual absl::Status QueueDeletions(PeerId peer, const std::vector<ChunkShard>& blobs) = 0;

  // BlobMoved (reclaim): blob (`id`, `shard`) moved from peer `from` to peer `to`. Known chunk:
  // drops the placement (from, shard) — regular or extra — and records (to, shard) of the same
  // sort (a regular one when `from` held none, unless `to` already holds it: a repeated
  // notice), cancelling any pending deletion of it.
  // Unknown chunk: queues the deletion of (id, shard) on `to` (kUnknownChunk). Idempotent.
  // INVALID_ARGUMENT, nothing changed, when `shard` is not one of the known chunk's indices
  // (copies: 0; erasure: 0..k+m-1).
  virtual absl::StatusOr<MoveOutcome> MovePlacement(const ChunkId& id, uint32_t shard, PeerId from,
                                                    PeerId to) = 0;
  // Forgets placements that no longer hold the chunk (check found them missing, corrupt or on
  // a dead peer): `holders` as shard-0 copies and `shards` as (shard, peer). Unknown chunks
  // and placements are fine (idempotent).
  virtual absl::Status RemovePlacements(const ChunkId& id, const std::vector<PeerId>& holders,
                                        const std::vector<ShardHolder>& shards) = 0;

  // Tree cache: encoded tree bytes by tree chunk id (PutTree replaces; GetTree: nullopt when
  // not cached).
  virtual absl::Status PutTree(const ChunkId& id, ByteSpan encoded) = 0;
  virtual absl::StatusOr<std::optional<Bytes>> GetTree(const ChunkId& id) = 0;

  // Snapshots (idempotent add by id: a second add of a known id keeps the first), listed oldest
  // first (by time_ns, then id). ListSnapshots: DATA_LOSS/INVALID_ARGUMENT if a stored snapshot
  // no longer decodes.
  virtual absl::Status AddSnapshot(const SnapshotRecord& record) = 0;
  virtual absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots() = 0;
  // Forgets a snapshot (its chunks stay until garbage collection). Returns false when the id
  // was not known.
  virtual absl::StatusOr<bool> RemoveSnapshot(const ChunkId& id) = 0;

  // Totals over all chunks; holders counted as in FindChunk.
  virtual absl::StatusOr<CatalogStats> Stats() = 0;
  // Chunks with an off-site target (ChunkRecord::offsite > 0) placed (copies or shards; extras
  // not counted) on fewer distinct peers of `offsite_peers` (ascending: the peers of another
  // site than this one) than that target (docs/operations.md "Sites and off-site copies"). The
  // default pages through ListChunks.
  virtual absl::StatusOr<uint64_t> CountWithoutOffsite(std::span<const PeerId> offsite_peers) {
    uint64_t n = 0;
    std::optional<ChunkId> after;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<ChunkRecord> page, ListChunks(after, 1000));
      if (page.empty()) return n;
      for (const ChunkRecord& r : page) {
        if (r.offsite == 0) continue;
        std::vector<PeerId> away;
        for (PeerId p : r.holders) away.push_back(p);
        for (const ShardHolder& s : r.shards) away.push_back(s.peer);
        std::sort(away.begin(), away.end());
        away.erase(std::unique(away.begin(), away.end()), away.end());
        size_t held = 0;
        for (PeerId p : away) {
          if (std::binary_search(offsite_peers.begin(), offsite_peers.end(), p)) ++held;
        }
        if (held < r.offsite) ++n;
      }
      after = page.back().id;
    }
  }

  // Small settings by key (e.g. the chunker parameters recorded for existing data); values are
  // raw bytes. GetMeta returns nullopt when the key was never set; SetMeta replaces.
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual absl::Status SetMeta(const std::string& key, const std::string& value) = 0;
};

// Catalog in memory, with the semantics of the SQLite one (index/catalog.h): for engine tests
// and the staging catalog of a recovery (engine/recover.h).
std::unique_ptr<Catalog> NewMemCatalog();

}  // namespace cairn::ports
