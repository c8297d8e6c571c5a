#include "cairn/engine/check.h"

#include <algorithm>
#include <bit>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/snapshot_read.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

constexpr size_t kMaxBelowDetail = 100;
constexpr size_t kMaxDamaged = 1000;
// Repair's per-chunk error lines; the rest are counted (RepairReport::errors_omitted).
constexpr size_t kMaxErrors = 10;

// Every chunk a snapshot references: the snapshot blob, its trees and their files' chunks.
absl::Status CollectChunks(const EngineContext& ctx, const ports::SnapshotRecord& snap,
                           std::vector<ChunkId>& out, const std::atomic<bool>* cancel) {
  std::unordered_set<ChunkId, ChunkIdHash> seen;
  auto add = [&](const ChunkId& id) {
    if (seen.insert(id).second) out.push_back(id);
  };
  add(snap.id);
  std::vector<ChunkId> trees = {snap.snapshot.root};
  while (!trees.empty()) {
    if (cancel && cancel->load()) return absl::CancelledError("check cancelled");
    ChunkId id = trees.back();
    trees.pop_back();
    if (seen.count(id)) continue;
    add(id);
    CAIRN_ASSIGN_OR_RETURN(format::Tree tree, LoadTree(ctx, id));
    for (const auto& e : tree.entries) {
      for (const auto& c : e.chunks) add(c);
      if (e.subtree) trees.push_back(*e.subtree);
    }
  }
  return absl::OkStatus();
}

bool InSubset(const ChunkId& id, double fraction) {
  if (fraction >= 1.0) return true;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | id.bytes[i];
  return static_cast<double>(v) / 18446744073709551616.0 < fraction;
}

enum class Health { kAtTarget, kBelow, kLost };

struct ChunkState {
  ports::ChunkRecord recorded;  // placements as the catalog knows them
  ports::ChunkRecord intact;    // only those confirmed present and intact on a live peer
  bool known = false;
  Health health = Health::kLost;
  // Fewer intact placements on peers of another site than recorded.offsite (docs/operations.md
  // "Sites and off-site copies"); such a chunk is below target.
  bool offsite_short = false;
};

Health Classify(const ChunkState& s) {
  if (!s.known) return Health::kLost;
  if (s.intact.AtTarget()) return Health::kAtTarget;
  if (s.intact.erasure()) {
    return s.intact.PlacedCount() >= s.intact.ec_k ? Health::kBelow : Health::kLost;
  }
  return s.intact.holders.empty() ? Health::kLost : Health::kBelow;
}

struct Census {
  std::unordered_map<ChunkId, ChunkState, ChunkIdHash> chunks;
  CheckReport report;
};

// Distinct peers holding a blob of `r` (copies or shards).
size_t DistinctHolders(const ports::ChunkRecord& r) {
  if (!r.erasure()) return r.holders.size();
  std::set<PeerId> peers;
  for (const auto& s : r.shards) peers.insert(s.peer);
  return peers.size();
}

// Adds one chunk of target `target` to `shortfalls` (kept ascending by target).
void CountShortfall(std::vector<PeerShortfall>& shortfalls, uint32_t target) {
  auto it = std::lower_bound(shortfalls.begin(), shortfalls.end(), target,
                             [](const PeerShortfall& s, uint32_t t) { return s.target < t; });
  if (it == shortfalls.end() || it->target != target) it = shortfalls.insert(it, {target, 0});
  it->chunks++;
}

std::vector<PeerId> DistinctPeers(const std::vector<ports::ShardHolder>& shards) {
  std::vector<PeerId> peers;
  for (const auto& s : shards) peers.push_back(s.peer);
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

// Placements of erasure-coded chunk `placed` to move so that its shards spread over `alive`
// (the alive storage peers) as evenly as they can: the missing indices are counted as going to
// the least loaded peers first (as StoreShards puts them), then, while some peer holds at least
// two shards more than another, one shard index that only it holds is taken from it (the one
// holding most; the highest index) for the one holding fewest. Each one moved raises the
// losses the chunk survives or leaves them (never lowers them): docs/operations.md "When the
// cluster is too small".
std::vector<ports::ShardHolder> SurplusShards(const ports::ChunkRecord& placed,
                                              const std::vector<PeerId>& alive) {
  std::map<PeerId, std::vector<uint32_t>> held;  // alive peer -> indices only it holds
  std::map<PeerId, int> load;
  std::map<uint32_t, int> holders_of;
  for (PeerId p : alive) load[p] = 0;
  for (const auto& s : placed.shards) {
    holders_of[s.shard]++;
    load[s.peer]++;
  }
  for (const auto& s : placed.shards) {
    if (holders_of[s.shard] == 1) held[s.peer].push_back(s.shard);
  }
  auto least = [&] {
    auto it = load.begin();
    for (auto i = load.begin(); i != load.end(); ++i)
      if (i->second < it->second) it = i;
    return it;
  };
  std::vector<ports::ShardHolder> out;
  if (load.empty()) return out;
  const uint32_t missing =
      placed.target > placed.PlacedCount() ? placed.target - placed.PlacedCount() : 0;
  for (uint32_t i = 0; i < missing; ++i) least()->second++;
  while (true) {
    auto low = least();
    auto high = load.end();
    for (auto i = load.begin(); i != load.end(); ++i) {
      if (held[i->first].empty()) continue;
      if (high == load.end() || i->second > high->second) high = i;
    }
    if (high == load.end() || high->second < low->second + 2) break;
    std::vector<uint32_t>& mine = held[high->first];
    out.push_back({mine.back(), high->first});
    mine.pop_back();
    high->second--;
    low->second++;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Adds one chunk surviving `peers` lost peers to `tolerance` (kept ascending by peers).
void CountTolerance(std::vector<Tolerance>& tolerance, uint32_t peers) {
  auto it = std::lower_bound(tolerance.begin(), tolerance.end(), peers,
                             [](const Tolerance& t, uint32_t p) { return t.peers < p; });
  if (it == tolerance.end() || it->peers != peers) it = tolerance.insert(it, {peers, 0});
  it->chunks++;
}

// The distinct shard indices left when the peers in `lost` (bit i: peers[i]) are gone.
int IndicesLeft(const std::vector<uint32_t>& masks, uint32_t lost) {
  uint32_t left = 0;
  for (size_t i = 0; i < masks.size(); ++i)
    if (!(lost >> i & 1)) left |= masks[i];
  return std::popcount(left);
}

// Whether some set of `f` of the peers (indices from `from` on, added to `lost`) leaves fewer
// than k indices.
bool SomeLossBreaks(const std::vector<uint32_t>& masks, int k, int f, size_t from, uint32_t lost) {
  if (f == 0) return IndicesLeft(masks, lost) < k;
  for (size_t i = from; i + f <= masks.size(); ++i) {
    if (SomeLossBreaks(masks, k, f - 1, i + 1, lost | 1u << i)) return true;
  }
  return false;
}

// Exhaustive search over loss sets above this many peers holding shards costs too much; the
// bound is then computed with one holder per shard index (a lower bound: fewer placements).
constexpr size_t kMaxExhaustiveHolders = 16;

absl::StatusOr<Census> RunCensus(const EngineContext& ctx, const CheckOptions& options,
                                 CheckProgress* progress, const std::atomic<bool>* cancel) {
  Census census;
  CheckReport& report = census.report;
  CAIRN_ASSIGN_OR_RETURN(auto snapshots, ctx.catalog->ListSnapshots());
  std::vector<std::vector<ChunkId>> per_snapshot(snapshots.size());
  for (size_t i = 0; i < snapshots.size(); ++i) {
    absl::Status st = CollectChunks(ctx, snapshots[i], per_snapshot[i], cancel);
    if (absl::IsCancelled(st)) return st;
    if (!st.ok()) {
      report.errors.push_back(
          absl::StrCat("snapshot ", snapshots[i].id.ShortHex(), ": ", std::string(st.message())));
    }
    for (const auto& id : per_snapshot[i]) census.chunks.try_emplace(id);
  }
  if (progress) progress->chunks_total = census.chunks.size();

  // Which peers can be asked: dead peers hold nothing we can count on.
  std::set<PeerId> reachable;
  const std::vector<StoragePeer> all_peers = ctx.peers->Peers();
  for (const auto& p : all_peers) {
    if (p.alive && p.id != ctx.owner) reachable.insert(p.id);
  }
  report.storage_peers = reachable.size();
  // Batched audit: one HasBlobs per peer for all its placements.
  struct Probe {
    ChunkId chunk;
    uint32_t shard;
  };
  std::map<PeerId, std::vector<Probe>> probes;
  for (auto& [id, state] : census.chunks) {
    CAIRN_ASSIGN_OR_RETURN(auto record, ctx.catalog->FindChunk(id));
    if (!record) continue;
    state.known = true;
    state.recorded = *record;
    state.intact = *record;
    state.intact.holders.clear();
    state.intact.shards.clear();
    for (PeerId p : record->holders) probes[p].push_back({id, 0});
    for (const auto& s : record->shards) probes[s.peer].push_back({id, s.shard});
  }
  for (auto& [peer, list] : probes) {
    if (cancel && cancel->load()) return absl::CancelledError("check cancelled");
    std::vector<bool> present(list.size(), false);
    auto client = reachable.count(peer) ? ctx.peers->Client(peer) : nullptr;
    if (client) {
      std::vector<BlobKey> keys;
      keys.reserve(list.size());
      for (const auto& p : list) keys.push_back({ctx.owner, p.chunk, p.shard});
      auto has = client->HasBlobs(keys);
      if (has.ok() && has->size() == list.size()) {
        present = *has;
      } else if (!has.ok()) {
        ctx.peers->ReportFailure(peer);
      }
    }
    for (size_t i = 0; i < list.size(); ++i) {
      if (!present[i]) continue;
      ChunkState& s = census.chunks[list[i].chunk];
      if (s.recorded.erasure())
        s.intact.shards.push_back({list[i].shard, peer});
      else
        s.intact.holders.push_back(peer);
    }
  }

  // Reading the data: every intact-looking blob of the chosen chunks is fetched and verified.
  if (options.read_data) {
    for (auto& [id, s] : census.chunks) {
      if (cancel && cancel->load()) return absl::CancelledError("check cancelled");
      if (!s.known || !InSubset(id, options.read_subset)) continue;
      auto verify = [&](PeerId peer, uint32_t shard) -> bool {
        auto client = ctx.peers->Client(peer);
        if (!client) return false;
        const BlobKey key{ctx.owner, id, shard};
        auto blob = client->GetBlob(key);
        std::string reason;
        if (blob.ok()) {
          report.blobs_read++;
          report.bytes_read += blob->size();
          if (progress) progress->bytes_read += blob->size();
          if (!s.recorded.erasure()) {
            auto plain = format::OpenChunk(ctx.keys, ctx.owner, id, *blob);
            if (plain.ok()) return true;
            reason = std::string(plain.status().message());
          } else {
            auto header = format::ParseBlobHeader(*blob);
            if (header.ok() && header->owner == ctx.owner && header->chunk == id &&
                header->shard == shard) {
              return true;
            }
            reason = header.ok() ? "shard header does not match its key"
                                 : std::string(header.status().message());
          }
        } else if (blob.status().code() == absl::StatusCode::kDataLoss) {
          reason = std::string(blob.status().message());
        } else {
          return false;  // gone or unreachable: missing, not corrupt
        }
        report.corrupt++;
        if (report.damaged.size() < kMaxDamaged)
          report.damaged.push_back({id, shard, peer, reason});
        return false;
      };
      std::vector<PeerId> holders;
      for (PeerId p : s.intact.holders)
        if (verify(p, 0)) holders.push_back(p);
      std::vector<ports::ShardHolder> shards;
      for (const auto& sh : s.intact.shards)
        if (verify(sh.peer, sh.shard)) shards.push_back(sh);
      s.intact.holders = std::move(holders);
      s.intact.shards = std::move(shards);
    }
  }

  std::vector<std::pair<ChunkId, uint32_t>> below;
  for (auto& [id, s] : census.chunks) {
    std::sort(s.intact.holders.begin(), s.intact.holders.end());
    std::sort(s.intact.shards.begin(), s.intact.shards.end());
    s.health = Classify(s);
    if (s.known && s.recorded.offsite > 0 && s.health != Health::kLost) {
      std::vector<PeerId> holders =
          s.intact.erasure() ? DistinctPeers(s.intact.shards) : s.intact.holders;
      s.offsite_short = OffsiteHolders(all_peers, ctx.site, holders) < s.recorded.offsite;
      if (s.offsite_short) {
        report.without_offsite++;
        s.health = Health::kBelow;
      }
    }
    switch (s.health) {
      case Health::kAtTarget:
        report.at_target++;
        break;
      case Health::kBelow: {
        report.below_target++;
        if (s.intact.target > report.storage_peers) {
          CountShortfall(report.short_of_peers, s.intact.target);
        }
        CountTolerance(report.survives, PeerLossesSurvived(s.intact));
        uint32_t placed = s.intact.PlacedCount();
        below.emplace_back(id, s.intact.target > placed ? s.intact.target - placed : 1);
        break;
      }
      case Health::kLost:
        report.lost++;
        break;
    }
    if (progress) progress->chunks_done++;
  }
  report.chunks = census.chunks.size();
  std::sort(below.begin(), below.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (below.size() > kMaxBelowDetail) below.resize(kMaxBelowDetail);
  report.below_detail = std::move(below);
  for (size_t i = 0; i < snapshots.size(); ++i) {
    SnapshotHealth h;
    h.id = snapshots[i].id;
    for (const auto& id : per_snapshot[i]) {
      h.chunks++;
      switch (census.chunks[id].health) {
        case Health::kAtTarget:
          h.at_target++;
          break;
        case Health::kBelow:
          h.below_target++;
          break;
        case Health::kLost:
          h.lost++;
          break;
      }
    }
    report.snapshots.push_back(h);
  }
  return census;
}

// Shared on ctx.gc_lock (engine/gc.h), taken once per public call: RunCensus never locks, so a
// Repair does not take the shared lock again while a collection waits for it exclusively.
std::shared_lock<std::shared_mutex> LockShared(const EngineContext& ctx) {
  if (!ctx.gc_lock) return {};
  return std::shared_lock(*ctx.gc_lock);
}

}  // namespace

uint32_t PeerLossesSurvived(const ports::ChunkRecord& placed) {
  if (!placed.erasure()) {
    std::set<PeerId> peers(placed.holders.begin(), placed.holders.end());
    return peers.empty() ? 0 : static_cast<uint32_t>(peers.size() - 1);
  }
  const int k = placed.ec_k;
  std::map<PeerId, uint32_t> by_peer;  // peer -> bit mask of the shard indices it holds
  std::map<uint32_t, int> holders_of;  // shard index -> peers holding it
  for (const auto& s : placed.shards) {
    if (s.shard >= 32) continue;  // not an index of any scheme (k+m <= 24)
    if (!(by_peer[s.peer] >> s.shard & 1)) holders_of[s.shard]++;
    by_peer[s.peer] |= 1u << s.shard;
  }
  std::vector<uint32_t> masks;
  for (const auto& [peer, mask] : by_peer) masks.push_back(mask);
  const bool single = std::all_of(holders_of.begin(), holders_of.end(),
                                  [](const auto& h) { return h.second == 1; });
  if (!single && masks.size() > kMaxExhaustiveHolders) {
    // Keep each index on its first holder only (a lower bound), then as below.
    uint32_t seen = 0;
    for (uint32_t& m : masks) {
      m &= ~seen;
      seen |= m;
    }
  }
  if (single || masks.size() > kMaxExhaustiveHolders) {
    // Every index on one peer: losing peers removes exactly their indices, so the worst loss
    // of f peers is that of the f holding the most.
    std::vector<int> counts;
    for (uint32_t m : masks) counts.push_back(std::popcount(m));
    std::sort(counts.rbegin(), counts.rend());
    int left = 0;
    for (int c : counts) left += c;
    uint32_t f = 0;
    for (int c : counts) {
      if (left - c < k) break;
      left -= c;
      ++f;
    }
    return left >= k ? f : 0;
  }
  if (IndicesLeft(masks, 0) < k) return 0;
  uint32_t f = 0;
  while (f < masks.size() && !SomeLossBreaks(masks, k, static_cast<int>(f + 1), 0, 0)) ++f;
  return f;
}

std::vector<std::string> DescribeTolerance(const std::vector<Tolerance>& tolerance) {
  std::vector<std::string> out;
  for (const Tolerance& t : tolerance) {
    std::string chunks = absl::StrCat(t.chunks, t.chunks == 1 ? " chunk" : " chunks");
    if (t.peers == 0) {
      out.push_back(absl::StrCat(chunks, " below target survive 0 lost peers: one more lost ",
                                 "peer loses ", t.chunks == 1 ? "it" : "them"));
    } else {
      out.push_back(absl::StrCat(chunks, " below target survive any ", t.peers, " lost ",
                                 t.peers == 1 ? "peer" : "peers"));
    }
  }
  return out;
}

std::vector<std::string> DescribeShortfalls(const std::vector<PeerShortfall>& shortfalls,
                                            uint64_t storage_peers) {
  std::vector<std::string> out;
  for (const PeerShortfall& s : shortfalls) {
    out.push_back(absl::StrCat(
        s.chunks, s.chunks == 1 ? " chunk" : " chunks", " below target: only ", storage_peers,
        storage_peers == 1 ? " storage peer" : " storage peers", " for a target of ", s.target));
  }
  return out;
}

absl::StatusOr<CheckReport> Check(const EngineContext& ctx, const CheckOptions& options,
                                  CheckProgress* progress, const std::atomic<bool>* cancel) {
  auto gc_lock = LockShared(ctx);
  CAIRN_ASSIGN_OR_RETURN(Census census, RunCensus(ctx, options, progress, cancel));
  return std::move(census.report);
}

absl::StatusOr<RepairReport> Repair(const EngineContext& ctx, const CheckOptions& options,
                                    CheckProgress* progress, const std::atomic<bool>* cancel) {
  // Repairs record placements (Catalog::AddChunk) that a collection must not race with.
  auto gc_lock = LockShared(ctx);
  CAIRN_ASSIGN_OR_RETURN(Census census, RunCensus(ctx, options, progress, cancel));
  RepairReport report;
  report.chunks = census.chunks.size();
  std::optional<env::RateLimiter> limiter;
  if (options.repair_rate > 0) limiter.emplace(options.repair_rate, options.repair_rate, ctx.clock);
  report.lost = census.report.lost;
  report.storage_peers = census.report.storage_peers;
  std::vector<PeerId> reachable_peers;  // alive storage peers other than this one
  for (const auto& p : ctx.peers->Peers()) {
    if (p.alive && p.id != ctx.owner) reachable_peers.push_back(p.id);
  }
  for (auto& [id, s] : census.chunks) {
    if (s.health != Health::kBelow) continue;
    if (cancel && cancel->load()) return absl::CancelledError("repair cancelled");
    // Too few storage peers for this target: summarized once, not an error per chunk.
    const bool short_of_peers = s.intact.target > report.storage_peers;
    // A chunk left below target: counted, with the peer losses its placements survive.
    auto still_below = [&](const ports::ChunkRecord& placed) {
      report.still_below_target++;
      CountTolerance(report.survives, PeerLossesSurvived(placed));
    };
    auto fail = [&](const absl::Status& st, const ports::ChunkRecord& placed) {
      still_below(placed);
      if (report.errors.size() < kMaxErrors) {
        report.errors.push_back(
            absl::StrCat("chunk ", id.ShortHex(), ": ", std::string(st.message())));
      } else {
        report.errors_omitted++;
      }
    };
    auto short_fall = [&](const ports::ChunkRecord& placed) {
      still_below(placed);
      CountShortfall(report.short_of_peers, s.intact.target);
    };
    // Forget the placements that are gone, so that reads and placement skip them.
    std::vector<PeerId> gone_holders;
    for (PeerId p : s.recorded.holders) {
      if (!std::binary_search(s.intact.holders.begin(), s.intact.holders.end(), p))
        gone_holders.push_back(p);
    }
    std::vector<ports::ShardHolder> gone_shards;
    for (const auto& sh : s.recorded.shards) {
      if (!std::binary_search(s.intact.shards.begin(), s.intact.shards.end(), sh))
        gone_shards.push_back(sh);
    }
    absl::Status st = ctx.catalog->RemovePlacements(id, gone_holders, gone_shards);
    if (!st.ok()) return st;
    // What a put could add: copies, a copy on an alive storage peer holding none; shards, the
    // missing indices, and the moves that even out the shards per peer (SurplusShards).
    std::vector<ports::ShardHolder> surplus;
    bool improvable = false;
    if (s.intact.erasure()) {
      surplus = SurplusShards(s.intact, reachable_peers);
      improvable = s.intact.PlacedCount() < s.intact.target || !surplus.empty();
    } else {
      improvable = DistinctHolders(s.intact) < report.storage_peers;
    }
    if (s.offsite_short && s.intact.AtTarget()) {
      // Only the off-site copy is missing: a put helps when an alive peer of another site holds
      // none (shards are not moved off-site: docs/operations.md "Sites and off-site copies").
      improvable = false;
      if (!s.intact.erasure()) {
        for (const auto& p : ctx.peers->Peers()) {
          if (p.alive && p.id != ctx.owner && p.site != ctx.site &&
              !std::binary_search(s.intact.holders.begin(), s.intact.holders.end(), p.id)) {
            improvable = true;
          }
        }
      }
    }
    if (!improvable) {
      // No fetch: another repair finds the same until the alive storage peers change.
      report.unimprovable++;
      if (short_of_peers) {
        short_fall(s.intact);
      } else {
        still_below(s.intact);
      }
      continue;
    }
    absl::StatusOr<StoreOutcome> outcome;
    if (s.intact.erasure()) {
      // Rebuild every shard of the stored seal from k intact ones; put the missing indices and
      // the surplus placements' indices (each moved to a peer that holds fewer).
      auto opened = FetchShards(ctx, id, s.intact);
      if (!opened.ok()) {
        fail(opened.status(), s.intact);
        continue;
      }
      format::SealedShards sealed;
      sealed.id = id;
      sealed.plain_size = opened->plaintext.size();
      sealed.scheme = {s.intact.ec_k, s.intact.ec_m};
      sealed.shards = std::move(opened->shards);
      std::vector<ports::ShardHolder> keep;
      for (const auto& sh : s.intact.shards) {
        if (std::find(surplus.begin(), surplus.end(), sh) == surplus.end()) keep.push_back(sh);
      }
      outcome = StoreShards(ctx, s.recorded.kind, sealed, keep, s.recorded.offsite);
      if (outcome.ok()) {
        // A surplus placement whose index now has another holder is forgotten, and its blob
        // deleted when the peer is reached (cancelled if the shard is placed there again).
        for (const auto& sh : surplus) {
          auto& placed = outcome->shards;
          const bool moved = std::any_of(placed.begin(), placed.end(), [&](const auto& p) {
            return p.shard == sh.shard && p.peer != sh.peer;
          });
          const bool kept = std::find(placed.begin(), placed.end(), sh) != placed.end();
          if (!moved) {
            if (!kept) placed.insert(std::lower_bound(placed.begin(), placed.end(), sh), sh);
            continue;
          }
          if (kept) placed.erase(std::find(placed.begin(), placed.end(), sh));
          CAIRN_RETURN_IF_ERROR(ctx.catalog->RemovePlacements(id, {}, {sh}));
          CAIRN_RETURN_IF_ERROR(
              ctx.catalog->QueueDeletions(sh.peer, {ports::ChunkShard{id, sh.shard}}));
        }
        ports::ChunkRecord now = s.intact;
        now.shards = outcome->shards;
        outcome->holders = DistinctPeers(now.shards);
        outcome->at_target = now.AtTarget();
      }
    } else {
      auto plain = FetchChunk(ctx, id);
      if (!plain.ok()) {
        fail(plain.status(), s.intact);
        continue;
      }
      CAIRN_ASSIGN_OR_RETURN(auto known, ctx.catalog->FindChunk(id));
      Redundancy redundancy;
      redundancy.copies = s.recorded.target;
      redundancy.offsite = s.recorded.offsite;
      outcome = PutChunk(ctx, s.recorded.kind, id, *plain, redundancy, known);
    }
    if (!outcome.ok()) {
      fail(outcome.status(), s.intact);
      continue;
    }
    report.blobs_written += outcome->new_copies;
    report.bytes_sent += outcome->sent_bytes;
    if (limiter) {
      // Pay for what was sent; wait in short slices so that a cancel is noticed.
      auto wait = limiter->Reserve(outcome->sent_bytes);
      while (wait.count() > 0) {
        if (cancel && cancel->load()) return absl::CancelledError("repair cancelled");
        auto slice = std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(100));
        std::this_thread::sleep_for(slice);
        wait -= slice;
      }
    }
    if (outcome->at_target) {
      report.repaired++;
      // A placement forgotten because its peer was down may still hold the blob. Now that the
      // chunk is at target without it, queue its deletion so that the blob does not outlive
      // the index's knowledge of it (garbage collection could never reach it): delivered when
      // the peer is back, cancelled if the blob is placed there again meanwhile. Below target,
      // such a blob is kept: it may still be the copy that saves the chunk.
      std::vector<PeerId> now_holders = outcome->holders;
      for (PeerId p : gone_holders) {
        if (std::find(now_holders.begin(), now_holders.end(), p) != now_holders.end()) continue;
        CAIRN_RETURN_IF_ERROR(ctx.catalog->QueueDeletions(p, {ports::ChunkShard{id, 0}}));
      }
      for (const auto& sh : gone_shards) {
        if (std::find(outcome->shards.begin(), outcome->shards.end(), sh) != outcome->shards.end())
          continue;
        CAIRN_RETURN_IF_ERROR(
            ctx.catalog->QueueDeletions(sh.peer, {ports::ChunkShard{id, sh.shard}}));
      }
      continue;
    }
    // Below target still: placed as far as the alive peers allowed (or some were full or
    // failed: an error line, unless the cluster is too small anyway).
    ports::ChunkRecord now = s.intact;
    if (now.erasure()) {
      now.shards = outcome->shards;
    } else {
      now.holders = outcome->holders;
    }
    if (short_of_peers) {
      short_fall(now);
    } else {
      fail(absl::UnavailableError("not enough live peers with space to reach the target"), now);
    }
  }
  return report;
}

}  // namespace cairn::engine
