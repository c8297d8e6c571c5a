#include "cairn/engine/reclaim.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/status.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

// A batch holds the bytes of its blobs in memory: at most this many blobs and, beyond the
// first, this many bytes.
constexpr size_t kBatchBlobs = 256;
constexpr uint64_t kBatchBytes = 64ull << 20;
constexpr size_t kMaxReasons = 10;

bool Retryable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

// (owner, chunk): the blobs of one chunk.
using ChunkKey = std::pair<PeerId, ChunkId>;

struct Other {
  std::string host;
  uint64_t quota = 0;
  uint64_t used = 0;  // tracked as blobs are put
  bool full = false;  // refused a put: skipped for the rest of the run
  bool down = false;  // unreachable: skipped for the rest of the run
};

struct Pending {
  ports::BlobRecord record;
  Bytes blob;
  std::vector<BlobKey> siblings;  // every blob key of the chunk (shards 0..k+m-1, or shard 0)
};

class Evacuation {
 public:
  Evacuation(const EvacuateContext& ctx, uint64_t target_used, EvacuateProgress* progress,
             const std::atomic<bool>* cancel)
      : ctx_(ctx), target_(target_used), progress_(progress), cancel_(cancel) {}

  absl::StatusOr<EvacuateReport> Run() {
    if (ctx_.store == nullptr || ctx_.outbox == nullptr || ctx_.peers == nullptr) {
      return absl::InvalidArgumentError("evacuate: store, outbox and peers are required");
    }
    const ports::StoreStats stats = ctx_.store->Stats();
    // Dead bytes in segments go with compaction, after the evacuation: not moved.
    const uint64_t held = ports::HeldBytes(stats);
    const uint64_t regular = held - std::min(stats.extra_bytes, held);
    const uint64_t must_move = regular > target_ ? regular - target_ : 0;
    uint64_t free = 0;
    for (const StoragePeer& p : ctx_.peers->Peers()) {
      if (!p.alive || p.id == ctx_.self) continue;
      // Their extra copies give way to the regular blobs moved to them.
      const uint64_t regular_used = p.used - std::min(p.extra, p.used);
      // A disk short of room caps what it takes: room = min(quota - used, disk room).
      const uint64_t cap = p.disk_room ? std::min(p.quota, regular_used + *p.disk_room) : p.quota;
      others_[p.id] = Other{p.host, cap, regular_used};
      candidates_.push_back({p.id, p.host, static_cast<double>(p.quota), p.site});
      if (cap > regular_used) free += cap - regular_used;
    }
    if (must_move > free) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot reclaim: ", must_move, " bytes must move but the other peers have only ", free,
          " bytes free; nothing was moved or deleted"));
    }
    // An owner never takes its own blobs: whatever must move of owner o's blobs (at least what
    // is left after every other owner's moved) needs room on peers other than o.
    CAIRN_ASSIGN_OR_RETURN(std::vector<ports::OwnerUsage> owners, ctx_.store->UsageByOwner());
    for (const ports::OwnerUsage& o : owners) {
      const uint64_t regular_o = o.bytes - std::min(o.extra_bytes, o.bytes);
      const uint64_t others_regular = regular - std::min(regular_o, regular);
      const uint64_t needed = must_move > others_regular ? must_move - others_regular : 0;
      uint64_t free_o = 0;
      if (auto it = others_.find(o.owner);
          it != others_.end() && it->second.quota > it->second.used) {
        free_o = it->second.quota - it->second.used;
      }
      if (needed > free - free_o) {
        return absl::ResourceExhaustedError(
            absl::StrCat("cannot reclaim: ", needed, " bytes of peer ", o.owner,
                         "'s blobs must move but the peers other than it have only ", free - free_o,
                         " bytes free; nothing was moved or deleted"));
      }
    }
    if (progress_ != nullptr) progress_->bytes_total = must_move;

    if (held > target_) {
      CAIRN_ASSIGN_OR_RETURN(ports::EvictResult evicted, ctx_.store->EvictExtras(target_));
      report_.evicted_blobs = evicted.blobs;
      report_.evicted_bytes = evicted.bytes;
      if (progress_ != nullptr) {
        progress_->blobs_evicted = evicted.blobs;
        progress_->bytes_evicted = evicted.bytes;
      }
    }
    if (ctx_.rate > 0) {
      limiter_.emplace(ctx_.rate, ctx_.rate,
                       ctx_.clock != nullptr ? ctx_.clock : env::RealClock::Default());
    }

    std::optional<BlobKey> after;
    while (Used() > target_) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<ports::BlobRecord> page,
                             ctx_.store->ListHeld(after, kBatchBlobs));
      if (page.empty()) break;
      std::vector<Pending> batch;
      uint64_t batch_bytes = 0;
      for (const ports::BlobRecord& rec : page) {
        if (!batch.empty() && batch_bytes >= kBatchBytes) break;
        after = rec.key;
        if (rec.extra) continue;
        CAIRN_ASSIGN_OR_RETURN(std::optional<Pending> pending, Load(rec));
        if (!pending) continue;
        batch_bytes += pending->blob.size();
        batch.push_back(std::move(*pending));
      }
      CAIRN_RETURN_IF_ERROR(MoveBatch(batch));
    }

    report_.used_after = Used();
    if (report_.used_after > target_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot reclaim: ", unplaced_blobs_, " blobs (", unplaced_bytes_,
          " bytes) could not be placed on another peer and were kept; ", report_.moved_blobs,
          " blobs (", report_.moved_bytes, " bytes) moved, ", report_.evicted_blobs,
          " extra copies evicted; used is ", report_.used_after, " bytes, target ", target_,
          reasons_.empty() ? std::string() : " (" + absl::StrJoin(reasons_, "; ") + ")"));
    }
    return report_;
  }

 private:
  uint64_t Used() { return ports::HeldBytes(ctx_.store->Stats()); }

  bool Cancelled() const { return cancel_ != nullptr && cancel_->load(); }

  void Unplaced(const ports::BlobRecord& rec, const std::string& why) {
    ++unplaced_blobs_;
    unplaced_bytes_ += rec.size;
    if (reasons_.size() < kMaxReasons) {
      reasons_.push_back(absl::StrCat("blob ", rec.key.DebugString(), ": ", why));
    }
  }

  // Reads a held blob and the keys of its chunk's other blobs. nullopt when it is no longer
  // held (deleted or quarantined since it was listed) or cannot be moved (kept, counted).
  absl::StatusOr<std::optional<Pending>> Load(const ports::BlobRecord& rec) {
    auto blob = ctx_.store->Get(rec.key);
    if (!blob.ok()) {
      if (absl::IsNotFound(blob.status()) || absl::IsDataLoss(blob.status())) {
        return std::optional<Pending>();
      }
      return Annotate(blob.status(), "read blob " + rec.key.DebugString());
    }
    auto header = format::ParseBlobHeader(*blob);
    if (!header.ok()) {
      Unplaced(rec, std::string(header.status().message()));
      return std::optional<Pending>();
    }
    Pending p;
    p.record = rec;
    p.blob = std::move(*blob);
    const uint32_t n =
        header->scheme == format::Scheme::kErasure ? uint32_t{header->k} + header->m : 1u;
    for (uint32_t i = 0; i < n; ++i) p.siblings.push_back({rec.key.owner, rec.key.chunk, i});
    if (rec.key.shard >= n) p.siblings.push_back(rec.key);
    return std::optional<Pending>(std::move(p));
  }

  // Who holds which blob keys (one HasBlobs census per live peer). Peers whose census failed
  // are returned in `unknown` (they cannot be targets: they may hold a blob of the chunk).
  std::map<ChunkKey, std::set<PeerId>> Census(const std::vector<Pending>& batch,
                                              std::set<PeerId>* unknown) {
    std::set<BlobKey> unique;
    for (const Pending& p : batch) unique.insert(p.siblings.begin(), p.siblings.end());
    std::vector<BlobKey> keys(unique.begin(), unique.end());
    std::map<ChunkKey, std::set<PeerId>> holders;
    for (auto& [id, other] : others_) {
      if (other.down) continue;
      auto client = ctx_.peers->Client(id);
      if (!client) {
        unknown->insert(id);
        continue;
      }
      for (size_t i = 0; i < keys.size(); i += ports::kMaxKeysPerCall) {
        std::span<const BlobKey> part(keys.data() + i,
                                      std::min(ports::kMaxKeysPerCall, keys.size() - i));
        auto has = client->HasBlobs(part);
        if (!has.ok() || has->size() != part.size()) {
          if (!has.ok() && Retryable(has.status())) {
            ctx_.peers->ReportFailure(id);
            other.down = true;
          }
          unknown->insert(id);
          break;
        }
        for (size_t j = 0; j < part.size(); ++j) {
          if ((*has)[j]) holders[{part[j].owner, part[j].chunk}].insert(id);
        }
      }
    }
    return holders;
  }

  absl::Status MoveBatch(const std::vector<Pending>& batch) {
    if (batch.empty()) return absl::OkStatus();
    std::set<PeerId> unknown;
    std::map<ChunkKey, std::set<PeerId>> holders = Census(batch, &unknown);
    for (const Pending& p : batch) {
      if (Cancelled()) return absl::CancelledError("reclaim cancelled");
      if (Used() <= target_) break;
      CAIRN_RETURN_IF_ERROR(MoveOne(p, unknown, holders[{p.record.key.owner, p.record.key.chunk}]));
    }
    return absl::OkStatus();
  }

  // Targets for `p` in preference order: placement order, hosts without a blob of the chunk
  // first (kHost).
  std::vector<PeerId> Targets(const Pending& p, const std::set<PeerId>& unknown,
                              const std::set<PeerId>& chunk_holders) {
    std::set<std::string> held_hosts;
    for (PeerId h : chunk_holders) {
      auto it = others_.find(h);
      if (it != others_.end()) held_hosts.insert(it->second.host);
    }
    const uint64_t size = p.blob.size();
    std::vector<PeerId> first, second;
    for (PeerId id : placement::PlacementOrder(p.record.key.chunk, candidates_, ctx_.spread)) {
      if (id == p.record.key.owner || id == ctx_.self) continue;
      if (unknown.count(id) || chunk_holders.count(id)) continue;
      const Other& o = others_[id];
      if (o.full || o.down || o.quota < o.used || o.quota - o.used < size) continue;
      if (ctx_.spread == placement::Spread::kHost && held_hosts.count(o.host)) {
        second.push_back(id);
      } else {
        first.push_back(id);
      }
    }
    first.insert(first.end(), second.begin(), second.end());
    return first;
  }

  absl::Status Pace(uint64_t bytes) {
    if (!limiter_) return absl::OkStatus();
    if (ctx_.sleeper != nullptr) {
      if (!limiter_->Acquire(bytes, ctx_.sleeper)) return absl::CancelledError("reclaim cancelled");
      return absl::OkStatus();
    }
    auto wait = limiter_->Reserve(bytes);
    while (wait.count() > 0) {
      if (Cancelled()) return absl::CancelledError("reclaim cancelled");
      auto slice = std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(100));
      std::this_thread::sleep_for(slice);
      wait -= slice;
    }
    return absl::OkStatus();
  }

  absl::Status MoveOne(const Pending& p, const std::set<PeerId>& unknown,
                       std::set<PeerId>& chunk_holders) {
    const BlobKey& key = p.record.key;
    std::vector<std::string> errors;
    for (PeerId target : Targets(p, unknown, chunk_holders)) {
      Other& o = others_[target];
      if (o.full || o.down) continue;
      auto client = ctx_.peers->Client(target);
      if (!client) continue;
      CAIRN_RETURN_IF_ERROR(Pace(p.blob.size()));
      auto put = client->PutBlob(key, p.blob, ports::PutOptions{});
      if (!put.ok()) {
        if (absl::IsResourceExhausted(put.status())) {
          o.full = true;
        } else if (Retryable(put.status())) {
          ctx_.peers->ReportFailure(target);
          o.down = true;
        }
        errors.push_back(absl::StrCat("peer ", target, ": ", put.status().ToString()));
        continue;
      }
      // Confirmed held by `target`: only now may it go from here (invariant §11.2).
      CAIRN_RETURN_IF_ERROR(
          Annotate(ctx_.store->Delete(key), "delete moved blob " + key.DebugString()));
      CAIRN_RETURN_IF_ERROR(
          Annotate(ctx_.outbox->Add({key, target}), "queue BlobMoved for " + key.DebugString()));
      if (*put == ports::PutOutcome::kStored) o.used += p.blob.size();
      chunk_holders.insert(target);
      ++report_.moved_blobs;
      report_.moved_bytes += p.blob.size();
      if (progress_ != nullptr) {
        ++progress_->blobs_moved;
        progress_->bytes_moved += p.blob.size();
      }
      return absl::OkStatus();
    }
    Unplaced(p.record, errors.empty() ? std::string("no other peer without a blob of its chunk "
                                                    "has room for it")
                                      : absl::StrJoin(errors, "; "));
    return absl::OkStatus();
  }

  const EvacuateContext& ctx_;
  const uint64_t target_;
  EvacuateProgress* progress_;
  const std::atomic<bool>* cancel_;
  std::map<PeerId, Other> others_;  // live peers but self
  std::vector<placement::Candidate> candidates_;
  std::optional<env::RateLimiter> limiter_;
  EvacuateReport report_;
  uint64_t unplaced_blobs_ = 0;
  uint64_t unplaced_bytes_ = 0;
  std::vector<std::string> reasons_;
};

}  // namespace

absl::StatusOr<EvacuateReport> Evacuate(const EvacuateContext& ctx, uint64_t target_used,
                                        EvacuateProgress* progress,
                                        const std::atomic<bool>* cancel) {
  Evacuation evacuation(ctx, target_used, progress, cancel);
  return evacuation.Run();
}

absl::StatusOr<uint64_t> DeliverMovedNotices(ports::MovedOutbox* outbox, PeerSet* peers) {
  std::map<PeerId, bool> alive;
  for (const StoragePeer& p : peers->Peers()) alive[p.id] = p.alive;
  CAIRN_ASSIGN_OR_RETURN(std::vector<PeerId> owners, outbox->Owners());
  uint64_t delivered = 0;
  for (PeerId owner : owners) {
    auto known = alive.find(owner);
    if (known != alive.end() && !known->second) continue;  // known dead: keep for later
    auto client = peers->Client(owner);
    if (!client) continue;
    std::vector<ports::MovedBlob> previous;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<ports::MovedBlob> batch,
                             outbox->List(owner, ports::kMaxKeysPerCall));
      // The same batch again after an Ack would mean the outbox is not draining: stop.
      if (batch.empty() || batch == previous) break;
      absl::Status st = client->BlobMoved(batch);
      if (!st.ok()) {
        if (Retryable(st)) peers->ReportFailure(owner);
        break;  // kept queued
      }
      CAIRN_RETURN_IF_ERROR(outbox->Ack(batch));
      delivered += batch.size();
      previous = std::move(batch);
    }
  }
  return delivered;
}

absl::Status ApplyBlobMoves(const EngineContext& ctx, PeerId from,
                            const std::vector<ports::MovedBlob>& moves) {
  for (const ports::MovedBlob& m : moves) {
    if (m.key.owner != ctx.owner) {
      return absl::InvalidArgumentError(absl::StrCat("BlobMoved from peer ", from, ": blob ",
                                                     m.key.DebugString(), " is not ours"));
    }
    if (m.to == from || m.to == ctx.owner) {
      return absl::InvalidArgumentError(absl::StrCat("BlobMoved from peer ", from, ": blob ",
                                                     m.key.DebugString(),
                                                     " cannot have moved to peer ", m.to));
    }
  }
  std::shared_lock<std::shared_mutex> lock;
  if (ctx.gc_lock != nullptr) lock = std::shared_lock<std::shared_mutex>(*ctx.gc_lock);
  for (const ports::MovedBlob& m : moves) {
    auto moved = ctx.catalog->MovePlacement(m.key.chunk, m.key.shard, from, m.to);
    CAIRN_RETURN_IF_ERROR(Annotate(moved.status(), "apply BlobMoved of " + m.key.DebugString()));
  }
  return absl::OkStatus();
}

}  // namespace cairn::engine
