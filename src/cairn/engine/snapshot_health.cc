#include "cairn/engine/snapshot_health.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/engine/check.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {
namespace {

constexpr uint32_t kNoChunk = std::numeric_limits<uint32_t>::max();

// Totals over a set of chunk references: a tree and everything below it, or a snapshot.
struct Totals {
  uint64_t chunks = 0;
  uint64_t lost = 0;
  uint32_t survives = kNoChunk;      // min over readable chunks
  std::vector<uint8_t> single_host;  // by host index: 1 = a single point for some chunk
  std::vector<uint64_t> bytes;       // by alive peer index: blob bytes held
  std::string error;                 // the first tree that could not be read

  void Add(const Totals& o) {
    chunks += o.chunks;
    lost += o.lost;
    survives = std::min(survives, o.survives);
    for (size_t i = 0; i < single_host.size(); ++i) single_host[i] |= o.single_host[i];
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] += o.bytes[i];
    if (error.empty()) error = o.error;
  }
};

class Walker {
 public:
  Walker(const EngineContext& ctx, const std::atomic<bool>* cancel) : ctx_(ctx), cancel_(cancel) {
    for (const StoragePeer& p : ctx.peers->Peers()) {
      if (!p.alive || p.id == ctx.owner) continue;
      auto [it, added] = host_index_.try_emplace(p.host, hosts_.size());
      if (added) hosts_.push_back(p.host);
      peer_index_[p.id] = {peers_.size(), it->second};
      peers_.push_back(p.id);
    }
  }

  size_t alive_peers() const { return peers_.size(); }
  uint64_t lookups() const { return lookups_; }

  absl::StatusOr<SnapshotSurvival> Snapshot(const ports::SnapshotRecord& snap) {
    Totals t = Empty();
    CAIRN_RETURN_IF_ERROR(AddChunk(snap.id, t));
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Totals> root, Tree(snap.snapshot.root));
    t.Add(*root);
    SnapshotSurvival out;
    out.id = snap.id;
    out.time_ns = snap.snapshot.time_ns;
    out.paths = snap.snapshot.paths;
    out.chunks = t.chunks;
    out.lost_chunks = t.lost;
    out.survives_peers = t.lost > 0 || t.survives == kNoChunk ? 0 : t.survives;
    for (size_t h = 0; h < hosts_.size(); ++h) {
      if (t.single_host[h]) out.single_point_hosts.push_back(hosts_[h]);
    }
    std::sort(out.single_point_hosts.begin(), out.single_point_hosts.end());
    for (size_t i = 0; i < peers_.size(); ++i) {
      if (t.bytes[i] > out.rebuild_bytes) {
        out.rebuild_bytes = t.bytes[i];
        out.rebuild_peer = peers_[i];
      }
    }
    out.error = t.error;
    return out;
  }

 private:
  struct PeerSlot {
    size_t peer = 0;  // index into peers_
    size_t host = 0;  // index into hosts_
  };

  Totals Empty() const {
    Totals t;
    t.single_host.assign(hosts_.size(), 0);
    t.bytes.assign(peers_.size(), 0);
    return t;
  }

  // The totals of tree `id`: its own blob, its files' chunks (each once per tree) and its
  // subtrees' totals (each once per tree). Kept for the other snapshots that share it.
  absl::StatusOr<std::shared_ptr<const Totals>> Tree(const ChunkId& id) {
    if (auto it = trees_.find(id); it != trees_.end()) return it->second;
    if (cancel_ && cancel_->load()) return absl::CancelledError("snapshot health cancelled");
    auto t = std::make_shared<Totals>(Empty());
    CAIRN_RETURN_IF_ERROR(AddChunk(id, *t));
    absl::StatusOr<format::Tree> tree = LoadTree(ctx_, id);
    if (!tree.ok()) {
      if (absl::IsCancelled(tree.status())) return tree.status();
      t->error = absl::StrCat("tree ", id.ShortHex(), ": ", tree.status().message());
    } else {
      std::unordered_set<ChunkId, ChunkIdHash> files, subtrees;
      for (const format::TreeEntry& e : tree->entries) {
        for (const ChunkId& c : e.chunks) {
          if (files.insert(c).second) CAIRN_RETURN_IF_ERROR(AddChunk(c, *t));
        }
        if (e.subtree && subtrees.insert(*e.subtree).second) {
          CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Totals> sub, Tree(*e.subtree));
          t->Add(*sub);
        }
      }
    }
    trees_.emplace(id, t);
    return std::shared_ptr<const Totals>(t);
  }

  // One chunk, from its catalog record and the alive peers.
  absl::Status AddChunk(const ChunkId& id, Totals& t) {
    ++lookups_;
    CAIRN_ASSIGN_OR_RETURN(std::optional<ports::ChunkRecord> record, ctx_.catalog->FindChunk(id));
    t.chunks++;
    if (!record) {
      t.lost++;
      return absl::OkStatus();
    }
    ports::ChunkRecord intact = *record;
    intact.holders.clear();
    intact.shards.clear();
    intact.extras.clear();
    for (PeerId p : record->holders) {
      if (peer_index_.count(p)) intact.holders.push_back(p);
    }
    for (const ports::ShardHolder& s : record->shards) {
      if (peer_index_.count(s.peer)) intact.shards.push_back(s);
    }
    std::sort(intact.holders.begin(), intact.holders.end());
    intact.holders.erase(std::unique(intact.holders.begin(), intact.holders.end()),
                         intact.holders.end());
    if (!Readable(intact, std::nullopt)) {
      t.lost++;
      return absl::OkStatus();
    }
    t.survives = std::min(t.survives, PeerLossesSurvived(intact));
    std::set<size_t> hosts;
    for (PeerId p : intact.holders) {
      const PeerSlot& slot = peer_index_.at(p);
      hosts.insert(slot.host);
      t.bytes[slot.peer] += record->blob_size;
    }
    for (const ports::ShardHolder& s : intact.shards) {
      const PeerSlot& slot = peer_index_.at(s.peer);
      hosts.insert(slot.host);
      t.bytes[slot.peer] += record->blob_size;
    }
    for (size_t h : hosts) {
      if (!Readable(intact, h)) t.single_host[h] = 1;
    }
    return absl::OkStatus();
  }

  // Whether `placed` can be read without the peers of host `without` (nullopt: all of them):
  // a copy, or k distinct shard indices.
  bool Readable(const ports::ChunkRecord& placed, std::optional<size_t> without) const {
    auto kept = [&](PeerId p) { return !without || peer_index_.at(p).host != *without; };
    if (!placed.erasure()) return std::any_of(placed.holders.begin(), placed.holders.end(), kept);
    std::set<uint32_t> indices;
    for (const ports::ShardHolder& s : placed.shards) {
      if (kept(s.peer)) indices.insert(s.shard);
    }
    return indices.size() >= placed.ec_k;
  }

  const EngineContext& ctx_;
  const std::atomic<bool>* cancel_;
  std::vector<PeerId> peers_;  // alive storage peers
  std::vector<std::string> hosts_;
  std::map<std::string, size_t> host_index_;
  std::unordered_map<PeerId, PeerSlot> peer_index_;
  std::unordered_map<ChunkId, std::shared_ptr<const Totals>, ChunkIdHash> trees_;
  uint64_t lookups_ = 0;
};

}  // namespace

absl::StatusOr<SnapshotSurvivalReport> ComputeSnapshotSurvival(const EngineContext& ctx,
                                                               const std::atomic<bool>* cancel) {
  SnapshotSurvivalReport report;
  Walker walker(ctx, cancel);
  report.alive_storage_peers = walker.alive_peers();
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> snapshots,
                         ctx.catalog->ListSnapshots());
  for (const ports::SnapshotRecord& snap : snapshots) {
    if (cancel && cancel->load()) return absl::CancelledError("snapshot health cancelled");
    std::shared_lock<std::shared_mutex> lock;
    if (ctx.gc_lock) lock = std::shared_lock(*ctx.gc_lock);
    CAIRN_ASSIGN_OR_RETURN(SnapshotSurvival s, walker.Snapshot(snap));
    report.snapshots.push_back(std::move(s));
  }
  report.chunk_lookups = walker.lookups();
  return report;
}

}  // namespace cairn::engine
