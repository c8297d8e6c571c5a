// Catalog: the home peer's index of its own backups (design.md §2 "index"): snapshots, the
// chunks it owns and which peers hold each chunk's blobs, and a cache of decoded trees. It is
// a cache of what is on the peers and can be rebuilt from them (issue: recover).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/format/tree.h"

namespace cairn::index {

class Database;

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
  uint64_t plain_size = 0;          // plaintext bytes
  uint64_t blob_size = 0;           // size of one blob (envelope): a copy, or one shard
  uint32_t target = 0;              // copies wanted, or k+m shards
  uint8_t ec_k = 0;                 // 0 = copies; else data shards
  uint8_t ec_m = 0;                 // parity shards (erasure coding only)
  std::vector<PeerId> holders;      // copies: peers confirmed to hold a copy (shard 0), ascending
  std::vector<ShardHolder> shards;  // erasure: confirmed placements, ascending (shard, peer)

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
  uint64_t stored_bytes = 0;  // sum of blob_size x placed blobs (copies or shards)
};

class Catalog {
 public:
  virtual ~Catalog() = default;

  // nullopt when the chunk is unknown.
  virtual absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) = 0;
  // Inserts the chunk if new (kind, sizes, scheme, target from `record`; target raised if
  // larger; the scheme of a known chunk never changes) and adds `record.holders` (as shard
  // 0) and `record.shards` to its placements (a set: repeated calls are harmless).
  virtual absl::Status AddChunk(const ChunkRecord& record) = 0;
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

  // Totals over all chunks; holders counted as in FindChunk.
  virtual absl::StatusOr<CatalogStats> Stats() = 0;

  // Small settings by key (e.g. the chunker parameters recorded for existing data); values are
  // raw bytes. GetMeta returns nullopt when the key was never set; SetMeta replaces.
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual absl::Status SetMeta(const std::string& key, const std::string& value) = 0;
};

// Catalog on SQLite tables in `db` (which must outlive it).
std::unique_ptr<Catalog> NewSqliteCatalog(Database* db);
// Catalog in memory; for engine tests.
std::unique_ptr<Catalog> NewMemCatalog();

}  // namespace cairn::index
