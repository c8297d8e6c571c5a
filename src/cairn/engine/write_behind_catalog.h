// WriteBehindCatalog: a Catalog decorator that records chunks in batches (docs/architecture.md
// "Data path"). A backup stores thousands of small chunks per second; one SQLite transaction
// per chunk costs as much as sending it. AddChunk is buffered and written with
// Catalog::AddChunks, one transaction per `batch` records (and by Flush); FindChunk answers
// from the buffer first, so the run sees its own records at once. Every other call that
// touches chunks, placements or snapshots flushes first, so the order of changes as the
// wrapped catalog sees them is the order they were made in.
//
// Crash safety: a record still buffered when the process dies is lost, but only the record:
// the blobs are on their peers, and the next backup that meets the chunk stores it again
// (puts are idempotent: ALREADY_STORED). No snapshot refers to an unrecorded chunk, because
// AddSnapshot flushes first.
//
// Thread-safety: thread-safe. The wrapped catalog must outlive this object; the destructor
// flushes (errors are lost there: call Flush and check it).
#pragma once

#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cairn/ports/catalog.h"

namespace cairn::engine {

class WriteBehindCatalog final : public ports::Catalog {
 public:
  WriteBehindCatalog(ports::Catalog* inner, size_t batch) : inner_(inner), batch_(batch) {}
  ~WriteBehindCatalog() override;
  WriteBehindCatalog(const WriteBehindCatalog&) = delete;
  WriteBehindCatalog& operator=(const WriteBehindCatalog&) = delete;

  // Writes every buffered record (one transaction). Errors: the wrapped catalog's; the records
  // stay buffered then, and the next Flush tries again.
  absl::Status Flush();

  absl::StatusOr<std::optional<ports::ChunkRecord>> FindChunk(const ChunkId& id) override;
  absl::StatusOr<std::vector<std::optional<ports::ChunkRecord>>> FindChunks(
      std::span<const ChunkId> ids) override;
  absl::Status AddChunk(const ports::ChunkRecord& record) override;
  absl::Status AddChunks(std::span<const ports::ChunkRecord> records) override;
  absl::Status AddExtraPlacement(const ChunkId& id, PeerId peer) override;
  absl::Status RemoveExtraPlacements(const ChunkId& id, const std::vector<PeerId>& peers) override;
  absl::StatusOr<std::vector<ports::ChunkRecord>> ListChunks(const std::optional<ChunkId>& after,
                                                             size_t limit) override;
  absl::StatusOr<uint64_t> DeleteChunks(const std::vector<ChunkId>& ids) override;
  absl::StatusOr<uint64_t> SetChunkTargets(std::span<const ports::ChunkTarget> targets) override;
  absl::StatusOr<std::vector<PeerId>> PeersWithPendingDeletions() override;
  absl::StatusOr<std::vector<ports::ChunkShard>> ListPendingDeletions(PeerId peer,
                                                                      size_t limit) override;
  absl::Status AckDeletions(PeerId peer, const std::vector<ports::ChunkShard>& done) override;
  absl::Status QueueDeletions(PeerId peer, const std::vector<ports::ChunkShard>& blobs) override;
  absl::StatusOr<ports::MoveOutcome> MovePlacement(const ChunkId& id, uint32_t shard, PeerId from,
                                                   PeerId to) override;
  absl::Status RemovePlacements(const ChunkId& id, const std::vector<PeerId>& holders,
                                const std::vector<ports::ShardHolder>& shards) override;
  absl::Status PutTree(const ChunkId& id, ByteSpan encoded) override;
  absl::StatusOr<std::optional<Bytes>> GetTree(const ChunkId& id) override;
  absl::Status AddSnapshot(const ports::SnapshotRecord& record) override;
  absl::StatusOr<std::vector<ports::SnapshotRecord>> ListSnapshots() override;
  absl::StatusOr<bool> RemoveSnapshot(const ChunkId& id) override;
  absl::StatusOr<ports::CatalogStats> Stats() override;
  absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) override;
  absl::Status SetMeta(const std::string& key, const std::string& value) override;

 private:
  absl::Status FlushLocked();

  ports::Catalog* const inner_;
  const size_t batch_;
  std::mutex mu_;  // guards the buffer and serializes flushes
  std::vector<ports::ChunkRecord> pending_;
  std::unordered_map<ChunkId, size_t, ChunkIdHash> by_id_;  // index into pending_
};

}  // namespace cairn::engine
