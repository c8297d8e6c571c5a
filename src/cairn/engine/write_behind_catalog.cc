#include "cairn/engine/write_behind_catalog.h"

#include <algorithm>

#include "cairn/base/status.h"

namespace cairn::engine {
namespace {

template <typename T>
void MergeSorted(std::vector<T>& into, const std::vector<T>& from) {
  into.insert(into.end(), from.begin(), from.end());
  std::sort(into.begin(), into.end());
  into.erase(std::unique(into.begin(), into.end()), into.end());
}

// What two AddChunk calls of one chunk amount to (Catalog::AddChunk): placements are a set, the
// target only grows, a known plaintext size replaces an unknown one. The scheme and sizes of
// the first record stand.
void Merge(ports::ChunkRecord& into, const ports::ChunkRecord& from) {
  MergeSorted(into.holders, from.holders);
  MergeSorted(into.shards, from.shards);
  into.target = std::max(into.target, from.target);
  if (into.plain_size == 0) into.plain_size = from.plain_size;
}

}  // namespace

WriteBehindCatalog::~WriteBehindCatalog() { (void)Flush(); }

absl::Status WriteBehindCatalog::Flush() {
  std::lock_guard lock(mu_);
  return FlushLocked();
}

absl::Status WriteBehindCatalog::FlushLocked() {
  if (pending_.empty()) return absl::OkStatus();
  CAIRN_RETURN_IF_ERROR(inner_->AddChunks(pending_));
  pending_.clear();
  by_id_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ports::ChunkRecord>> WriteBehindCatalog::FindChunk(const ChunkId& id) {
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(std::optional<ports::ChunkRecord> stored, inner_->FindChunk(id));
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return stored;
  const ports::ChunkRecord& buffered = pending_[it->second];
  if (!stored) return std::optional<ports::ChunkRecord>(buffered);
  // A known chunk: its scheme stays; the buffered placements add to the stored ones.
  Merge(*stored, buffered);
  return stored;
}

absl::StatusOr<std::vector<std::optional<ports::ChunkRecord>>> WriteBehindCatalog::FindChunks(
    std::span<const ChunkId> ids) {
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::optional<ports::ChunkRecord>> found,
                         inner_->FindChunks(ids));
  for (size_t i = 0; i < ids.size() && i < found.size(); ++i) {
    auto it = by_id_.find(ids[i]);
    if (it == by_id_.end()) continue;
    const ports::ChunkRecord& buffered = pending_[it->second];
    if (!found[i]) {
      found[i] = buffered;
    } else {
      Merge(*found[i], buffered);
    }
  }
  return found;
}

absl::Status WriteBehindCatalog::AddChunk(const ports::ChunkRecord& record) {
  std::lock_guard lock(mu_);
  auto [it, added] = by_id_.try_emplace(record.id, pending_.size());
  if (added) {
    pending_.push_back(record);
    pending_.back().extras.clear();  // AddChunk ignores them
  } else {
    Merge(pending_[it->second], record);
  }
  if (pending_.size() >= batch_) return FlushLocked();
  return absl::OkStatus();
}

absl::Status WriteBehindCatalog::AddChunks(std::span<const ports::ChunkRecord> records) {
  for (const auto& r : records) CAIRN_RETURN_IF_ERROR(AddChunk(r));
  return absl::OkStatus();
}

// Everything else: flush, then pass through (under the lock, so that no record is buffered
// between the flush and the call).
#define CAIRN_FLUSH_THEN(call)          \
  std::lock_guard lock(mu_);            \
  CAIRN_RETURN_IF_ERROR(FlushLocked()); \
  return inner_->call

absl::Status WriteBehindCatalog::AddExtraPlacement(const ChunkId& id, PeerId peer) {
  CAIRN_FLUSH_THEN(AddExtraPlacement(id, peer));
}
absl::Status WriteBehindCatalog::RemoveExtraPlacements(const ChunkId& id,
                                                       const std::vector<PeerId>& peers) {
  CAIRN_FLUSH_THEN(RemoveExtraPlacements(id, peers));
}
absl::StatusOr<std::vector<ports::ChunkRecord>> WriteBehindCatalog::ListChunks(
    const std::optional<ChunkId>& after, size_t limit) {
  CAIRN_FLUSH_THEN(ListChunks(after, limit));
}
absl::StatusOr<uint64_t> WriteBehindCatalog::DeleteChunks(const std::vector<ChunkId>& ids) {
  CAIRN_FLUSH_THEN(DeleteChunks(ids));
}
absl::StatusOr<uint64_t> WriteBehindCatalog::SetChunkTargets(
    std::span<const ports::ChunkTarget> targets) {
  CAIRN_FLUSH_THEN(SetChunkTargets(targets));
}
absl::StatusOr<std::vector<PeerId>> WriteBehindCatalog::PeersWithPendingDeletions() {
  CAIRN_FLUSH_THEN(PeersWithPendingDeletions());
}
absl::StatusOr<std::vector<ports::ChunkShard>> WriteBehindCatalog::ListPendingDeletions(
    PeerId peer, size_t limit) {
  CAIRN_FLUSH_THEN(ListPendingDeletions(peer, limit));
}
absl::Status WriteBehindCatalog::AckDeletions(PeerId peer,
                                              const std::vector<ports::ChunkShard>& done) {
  CAIRN_FLUSH_THEN(AckDeletions(peer, done));
}
absl::Status WriteBehindCatalog::QueueDeletions(PeerId peer,
                                                const std::vector<ports::ChunkShard>& blobs) {
  CAIRN_FLUSH_THEN(QueueDeletions(peer, blobs));
}
absl::StatusOr<ports::MoveOutcome> WriteBehindCatalog::MovePlacement(const ChunkId& id,
                                                                     uint32_t shard, PeerId from,
                                                                     PeerId to) {
  CAIRN_FLUSH_THEN(MovePlacement(id, shard, from, to));
}
absl::Status WriteBehindCatalog::RemovePlacements(const ChunkId& id,
                                                  const std::vector<PeerId>& holders,
                                                  const std::vector<ports::ShardHolder>& shards) {
  CAIRN_FLUSH_THEN(RemovePlacements(id, holders, shards));
}
absl::Status WriteBehindCatalog::AddSnapshot(const ports::SnapshotRecord& record) {
  CAIRN_FLUSH_THEN(AddSnapshot(record));
}
absl::StatusOr<bool> WriteBehindCatalog::RemoveSnapshot(const ChunkId& id) {
  CAIRN_FLUSH_THEN(RemoveSnapshot(id));
}
absl::StatusOr<ports::CatalogStats> WriteBehindCatalog::Stats() { CAIRN_FLUSH_THEN(Stats()); }

#undef CAIRN_FLUSH_THEN

// The tree cache, snapshot listing and settings do not depend on chunk records: no flush.
absl::Status WriteBehindCatalog::PutTree(const ChunkId& id, ByteSpan encoded) {
  return inner_->PutTree(id, encoded);
}
absl::StatusOr<std::optional<Bytes>> WriteBehindCatalog::GetTree(const ChunkId& id) {
  return inner_->GetTree(id);
}
absl::StatusOr<std::vector<ports::SnapshotRecord>> WriteBehindCatalog::ListSnapshots() {
  return inner_->ListSnapshots();
}
absl::StatusOr<std::optional<std::string>> WriteBehindCatalog::GetMeta(const std::string& key) {
  return inner_->GetMeta(key);
}
absl::Status WriteBehindCatalog::SetMeta(const std::string& key, const std::string& value) {
  return inner_->SetMeta(key, value);
}

}  // namespace cairn::engine
