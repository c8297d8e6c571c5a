// Catalog in memory with the semantics of SqliteCatalog (same conformance suite).
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cairn/base/status.h"
#include "cairn/ports/catalog.h"

namespace cairn::ports {
namespace {

class MemCatalog : public Catalog {
 public:
  absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = chunks_.find(id);
    if (it == chunks_.end()) return std::optional<ChunkRecord>();
    return std::optional<ChunkRecord>(Materialize(it->second));
  }

  absl::Status AddChunk(const ChunkRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = chunks_.try_emplace(record.id);
    Chunk& chunk = it->second;
    if (inserted) {
      chunk.record = record;
      chunk.record.holders.clear();
      chunk.record.shards.clear();
      chunk.record.extras.clear();
    } else {
      chunk.record.target = std::max(chunk.record.target, record.target);
      chunk.record.offsite = std::max(chunk.record.offsite, record.offsite);
      if (chunk.record.plain_size == 0) chunk.record.plain_size = record.plain_size;
    }
    for (PeerId holder : record.holders) {
      chunk.holders.insert(holder);
      chunk.extras.erase(holder);
      pending_.erase({holder, record.id, 0});
    }
    for (const ShardHolder& s : record.shards) {
      chunk.shards.insert(s);
      if (s.shard == 0) chunk.extras.erase(s.peer);
      pending_.erase({s.peer, record.id, s.shard});
    }
    return absl::OkStatus();
  }

  absl::Status AddExtraPlacement(const ChunkId& id, PeerId peer) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = chunks_.find(id);
    if (it == chunks_.end()) {
      return absl::NotFoundError("add extra copy: unknown chunk " + id.ShortHex());
    }
    Chunk& chunk = it->second;
    if (chunk.record.erasure()) {
      return absl::FailedPreconditionError("add extra copy: chunk " + id.ShortHex() +
                                           " is erasure-coded");
    }
    if (!HasRegular(chunk, 0, peer)) chunk.extras.insert(peer);
    pending_.erase({peer, id, 0});
    return absl::OkStatus();
  }

  absl::Status RemoveExtraPlacements(const ChunkId& id, const std::vector<PeerId>& peers) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = chunks_.find(id);
    if (it == chunks_.end()) return absl::OkStatus();
    for (PeerId peer : peers) it->second.extras.erase(peer);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ChunkRecord>> ListChunks(const std::optional<ChunkId>& after,
                                                      size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list chunks: limit must be >= 1");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ChunkRecord> out;
    auto it = after.has_value() ? chunks_.upper_bound(*after) : chunks_.begin();
    for (; it != chunks_.end() && out.size() < limit; ++it) out.push_back(Materialize(it->second));
    return out;
  }

  absl::StatusOr<uint64_t> DeleteChunks(const std::vector<ChunkId>& ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t seq = ++queue_seq_;
    uint64_t queued = 0;
    for (const ChunkId& id : ids) {
      auto it = chunks_.find(id);
      if (it == chunks_.end()) continue;
      const Chunk& chunk = it->second;
      for (PeerId p : chunk.holders) queued += pending_.try_emplace({p, id, 0}, seq).second;
      for (const ShardHolder& s : chunk.shards) {
        queued += pending_.try_emplace({s.peer, id, s.shard}, seq).second;
      }
      for (PeerId p : chunk.extras) queued += pending_.try_emplace({p, id, 0}, seq).second;
      chunks_.erase(it);
      trees_.erase(id);
    }
    return queued;
  }

  absl::StatusOr<uint64_t> SetChunkTargets(std::span<const ChunkTarget> targets) override {
    for (const ChunkTarget& t : targets) {
      if (t.target == 0) {
        return absl::InvalidArgumentError("set chunk targets: target 0 for chunk " +
                                          t.id.ShortHex());
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t changed = 0;
    for (const ChunkTarget& t : targets) {
      auto it = chunks_.find(t.id);
      if (it == chunks_.end() || it->second.record.erasure()) continue;
      if (it->second.record.target == t.target) continue;
      it->second.record.target = t.target;
      ++changed;
    }
    return changed;
  }

  absl::StatusOr<std::vector<PeerId>> PeersWithPendingDeletions() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<PeerId> out;
    for (const auto& [key, seq] : pending_) {
      if (out.empty() || out.back() != std::get<0>(key)) out.push_back(std::get<0>(key));
    }
    return out;
  }

  absl::StatusOr<std::vector<ChunkShard>> ListPendingDeletions(PeerId peer, size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list pending deletions: limit must be >= 1");
    std::lock_guard<std::mutex> lock(mu_);
    // (queue order, chunk, shard) of this peer's rows, oldest first.
    std::vector<std::tuple<uint64_t, ChunkId, uint32_t>> rows;
    for (auto it = pending_.lower_bound({peer, ChunkId(), 0});
         it != pending_.end() && std::get<0>(it->first) == peer; ++it) {
      rows.emplace_back(it->second, std::get<1>(it->first), std::get<2>(it->first));
    }
    std::sort(rows.begin(), rows.end());
    std::vector<ChunkShard> out;
    for (size_t i = 0; i < rows.size() && i < limit; ++i) {
      out.push_back({std::get<1>(rows[i]), std::get<2>(rows[i])});
    }
    return out;
  }

  absl::Status AckDeletions(PeerId peer, const std::vector<ChunkShard>& done) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ChunkShard& blob : done) pending_.erase({peer, blob.chunk, blob.shard});
    return absl::OkStatus();
  }

  absl::Status QueueDeletions(PeerId peer, const std::vector<ChunkShard>& blobs) override {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t seq = ++queue_seq_;
    for (const ChunkShard& blob : blobs) pending_.try_emplace({peer, blob.chunk, blob.shard}, seq);
    return absl::OkStatus();
  }

  absl::StatusOr<MoveOutcome> MovePlacement(const ChunkId& id, uint32_t shard, PeerId from,
                                            PeerId to) override {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t seq = ++queue_seq_;
    auto it = chunks_.find(id);
    if (it == chunks_.end()) {
      pending_.try_emplace({to, id, shard}, seq);
      return MoveOutcome::kUnknownChunk;
    }
    Chunk& chunk = it->second;
    const bool copies = !chunk.record.erasure();
    const uint32_t shard_count = copies ? 1u : uint32_t{chunk.record.ec_k} + chunk.record.ec_m;
    if (shard >= shard_count) {
      return absl::InvalidArgumentError("move blob " + id.ShortHex() + "/" + std::to_string(shard) +
                                        ": chunk has " + std::to_string(shard_count) +
                                        " shard indices");
    }
    const bool from_regular = HasRegular(chunk, shard, from);
    const bool from_extra = copies && chunk.extras.count(from) > 0;
    const bool to_regular = HasRegular(chunk, shard, to);
    const bool to_extra = copies && chunk.extras.count(to) > 0;
    if (from_regular) {
      chunk.holders.erase(from);
      chunk.shards.erase({shard, from});
    }
    if (from_extra) chunk.extras.erase(from);
    if (from_regular || (!from_extra && !to_regular && !to_extra)) {
      if (copies) {
        chunk.holders.insert(to);
      } else {
        chunk.shards.insert({shard, to});
      }
      if (shard == 0) chunk.extras.erase(to);
    } else if (from_extra && !to_regular) {
      chunk.extras.insert(to);
    }
    pending_.erase({to, id, shard});
    return MoveOutcome::kMoved;
  }

  absl::Status RemovePlacements(const ChunkId& id, const std::vector<PeerId>& holders,
                                const std::vector<ShardHolder>& shards) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = chunks_.find(id);
    if (it == chunks_.end()) return absl::OkStatus();
    for (PeerId h : holders) it->second.holders.erase(h);
    for (const ShardHolder& s : shards) it->second.shards.erase(s);
    return absl::OkStatus();
  }

  absl::Status PutTree(const ChunkId& id, ByteSpan encoded) override {
    std::lock_guard<std::mutex> lock(mu_);
    trees_[id] = Bytes(encoded.begin(), encoded.end());
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Bytes>> GetTree(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = trees_.find(id);
    if (it == trees_.end()) return std::optional<Bytes>();
    return std::optional<Bytes>(it->second);
  }

  absl::Status AddSnapshot(const SnapshotRecord& record) override {
    // Stored encoded, as SqliteCatalog does, so both return exactly what the codec round-trips.
    Bytes encoded = format::EncodeSnapshot(record.snapshot);
    std::lock_guard<std::mutex> lock(mu_);
    if (!snapshot_ids_.emplace(record.id, record.snapshot.time_ns).second) {
      return absl::OkStatus();
    }
    snapshots_.emplace(std::make_pair(record.snapshot.time_ns, record.id), std::move(encoded));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SnapshotRecord> out;
    out.reserve(snapshots_.size());
    for (const auto& [key, data] : snapshots_) {
      SnapshotRecord record;
      record.id = key.second;
      CAIRN_ASSIGN_OR_RETURN(record.snapshot, format::DecodeSnapshot(data));
      out.push_back(std::move(record));
    }
    return out;
  }

  absl::StatusOr<bool> RemoveSnapshot(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = snapshot_ids_.find(id);
    if (it == snapshot_ids_.end()) return false;
    snapshots_.erase(std::make_pair(it->second, id));
    snapshot_ids_.erase(it);
    return true;
  }

  absl::StatusOr<CatalogStats> Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    CatalogStats stats;
    for (const auto& [id, chunk] : chunks_) {
      const ChunkRecord r = Materialize(chunk);
      // Blobs placed: copies (shard 0) plus shards, as SqliteCatalog counts placement rows.
      uint64_t blobs = chunk.holders.size() + chunk.shards.size();
      ++stats.chunks;
      if (r.AtTarget()) {
        ++stats.chunks_at_target;
      } else {
        ++stats.chunks_below_target;
      }
      stats.plain_bytes += r.plain_size;
      stats.stored_bytes += r.blob_size * blobs;
      stats.one_copy_bytes += r.blob_size * std::max<uint64_t>(1, r.ec_k);
      stats.extra_blobs += chunk.extras.size();
      stats.extra_bytes += r.blob_size * chunk.extras.size();
    }
    stats.pending_deletions = pending_.size();
    return stats;
  }

  absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = meta_.find(key);
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::Status SetMeta(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    meta_[key] = value;
    return absl::OkStatus();
  }

 private:
  struct Chunk {
    ChunkRecord record;            // holders, shards and extras kept below instead
    std::set<PeerId> holders;      // ascending, unique
    std::set<ShardHolder> shards;  // ascending (shard, peer), unique
    std::set<PeerId> extras;       // ascending, unique
  };
  // A queued deletion: (peer, chunk, shard), as SqliteCatalog's pending_deletions key.
  using PendingKey = std::tuple<PeerId, ChunkId, uint32_t>;

  static ChunkRecord Materialize(const Chunk& chunk) {
    ChunkRecord record = chunk.record;
    record.holders.assign(chunk.holders.begin(), chunk.holders.end());
    record.shards.assign(chunk.shards.begin(), chunk.shards.end());
    record.extras.assign(chunk.extras.begin(), chunk.extras.end());
    return record;
  }

  // A regular placement of (shard, peer), as a placements row would record it (copies are
  // shard 0).
  static bool HasRegular(const Chunk& chunk, uint32_t shard, PeerId peer) {
    return (shard == 0 && chunk.holders.count(peer) > 0) || chunk.shards.count({shard, peer}) > 0;
  }

  std::mutex mu_;
  std::map<ChunkId, Chunk> chunks_;
  std::map<ChunkId, Bytes> trees_;
  // Keyed like SqliteCatalog's ORDER BY time_ns, id.
  std::map<std::pair<int64_t, ChunkId>, Bytes> snapshots_;
  std::map<ChunkId, int64_t> snapshot_ids_;  // id -> time_ns
  std::map<std::string, std::string> meta_;
  // Queued deletions -> the batch that queued them (SqliteCatalog's queued_ns): rows list by
  // batch, then key.
  std::map<PendingKey, uint64_t> pending_;
  uint64_t queue_seq_ = 0;
};

}  // namespace

std::unique_ptr<Catalog> NewMemCatalog() { return std::make_unique<MemCatalog>(); }

}  // namespace cairn::ports
