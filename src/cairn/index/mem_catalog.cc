// Catalog in memory with the semantics of SqliteCatalog (same conformance suite).
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "cairn/base/status.h"
#include "cairn/index/catalog.h"

namespace cairn::index {
namespace {

class MemCatalog : public Catalog {
 public:
  absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = chunks_.find(id);
    if (it == chunks_.end()) return std::optional<ChunkRecord>();
    ChunkRecord record = it->second.record;
    record.holders.assign(it->second.holders.begin(), it->second.holders.end());
    record.shards.assign(it->second.shards.begin(), it->second.shards.end());
    return std::optional<ChunkRecord>(std::move(record));
  }

  absl::Status AddChunk(const ChunkRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = chunks_.try_emplace(record.id);
    Chunk& chunk = it->second;
    if (inserted) {
      chunk.record = record;
      chunk.record.holders.clear();
      chunk.record.shards.clear();
    } else {
      chunk.record.target = std::max(chunk.record.target, record.target);
    }
    chunk.holders.insert(record.holders.begin(), record.holders.end());
    chunk.shards.insert(record.shards.begin(), record.shards.end());
    return absl::OkStatus();
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
    if (!snapshot_ids_.insert(record.id).second) return absl::OkStatus();
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

  absl::StatusOr<CatalogStats> Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    CatalogStats stats;
    for (const auto& [id, chunk] : chunks_) {
      ChunkRecord r = chunk.record;
      r.holders.assign(chunk.holders.begin(), chunk.holders.end());
      r.shards.assign(chunk.shards.begin(), chunk.shards.end());
      // Blobs placed: copies (shard 0) plus shards, as SqliteCatalog counts placement rows.
      uint64_t blobs = chunk.holders.size() + chunk.shards.size();
      ++stats.chunks;
      if (r.AtTarget()) {
        ++stats.chunks_at_target;
      } else {
        ++stats.chunks_below_target;
      }
      stats.plain_bytes += chunk.record.plain_size;
      stats.stored_bytes += chunk.record.blob_size * blobs;
    }
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
    ChunkRecord record;            // holders and shards kept below instead
    std::set<PeerId> holders;      // ascending, unique
    std::set<ShardHolder> shards;  // ascending (shard, peer), unique
  };

  std::mutex mu_;
  std::map<ChunkId, Chunk> chunks_;
  std::map<ChunkId, Bytes> trees_;
  // Keyed like SqliteCatalog's ORDER BY time_ns, id.
  std::map<std::pair<int64_t, ChunkId>, Bytes> snapshots_;
  std::set<ChunkId> snapshot_ids_;
  std::map<std::string, std::string> meta_;
};

}  // namespace

std::unique_ptr<Catalog> NewMemCatalog() { return std::make_unique<MemCatalog>(); }

}  // namespace cairn::index
