// Catalog: the home peer's index of its own backups (design.md §2 "index"): snapshots, the
// chunks it owns and which peers hold each chunk's blobs, and a cache of decoded trees. It is
// a cache of what is on the peers and can be rebuilt from them (issue: recover).
//
// Thread-safety: implementations are thread-safe.
#pragma once

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

struct ChunkRecord {
  ChunkId id;
  BlobKind kind = BlobKind::kData;
  uint64_t plain_size = 0;      // plaintext bytes
  uint64_t blob_size = 0;       // size of one blob (envelope)
  uint32_t target = 0;          // copies wanted
  std::vector<PeerId> holders;  // peers confirmed to hold a copy (shard 0), ascending
};

struct SnapshotRecord {
  ChunkId id;  // chunk id of the snapshot blob
  format::Snapshot snapshot;
};

struct CatalogStats {
  uint64_t chunks = 0;
  uint64_t chunks_at_target = 0;  // holders.size() >= target
  uint64_t chunks_below_target = 0;
  uint64_t plain_bytes = 0;   // sum of plain_size
  uint64_t stored_bytes = 0;  // sum of blob_size * holders
};

class Catalog {
 public:
  virtual ~Catalog() = default;

  // nullopt when the chunk is unknown.
  virtual absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) = 0;
  // Inserts the chunk if new (kind, sizes, target from `record`; target raised if larger) and
  // adds `record.holders` to its holder set (a set: repeated calls are harmless).
  virtual absl::Status AddChunk(const ChunkRecord& record) = 0;

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
