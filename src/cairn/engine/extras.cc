#include "cairn/engine/extras.h"

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/status.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

constexpr size_t kPageSize = 512;
constexpr size_t kMaxErrors = 100;
// Blob bytes fetched and put together (one group's transfers in flight at once): bounds the
// memory whatever the chunk sizes, and lets the batching client send the group's blobs in a few
// GetBlobs and PutBlobs calls.
constexpr uint64_t kGroupBytes = 16 << 20;

bool Contains(const std::vector<PeerId>& v, PeerId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

bool Retryable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

// The GC lock, shared (not locked without one).
std::shared_lock<std::shared_mutex> SharedGcLock(std::shared_mutex* mu) {
  return mu != nullptr ? std::shared_lock<std::shared_mutex>(*mu)
                       : std::shared_lock<std::shared_mutex>();
}

// One run of PlaceExtraCopies.
class ExtraPlacer {
 public:
  ExtraPlacer(const EngineContext& ctx, const ExtraOptions& options,
              const std::atomic<bool>* cancel)
      : ctx_(ctx), options_(options), cancel_(cancel) {
    for (const StoragePeer& p : ctx.peers->Peers()) {
      hosts_[p.id] = p.host;
      if (!p.alive || p.id == ctx.owner) continue;
      Target t;
      t.quota = p.quota;
      t.used = p.used;
      t.disk_room = p.disk_room;
      targets_[p.id] = t;
      candidates_.push_back({p.id, p.host, static_cast<double>(p.quota), p.site});
    }
  }

  absl::StatusOr<ExtraReport> Run() {
    if (options_.copies == 0 || (!options_.metadata && !options_.data)) return Finish();
    if (options_.metadata) {
      CAIRN_RETURN_IF_ERROR(
          Pass([](const ports::ChunkRecord& r, size_t) { return r.kind != BlobKind::kData; }));
    }
    if (options_.data) {
      // Pass h places extras of the data chunks whose regular holders are on h distinct hosts,
      // and notes the next larger h that exists.
      size_t h = 1;
      while (!stop_) {
        std::optional<size_t> next;
        CAIRN_RETURN_IF_ERROR(Pass([&](const ports::ChunkRecord& r, size_t hosts) {
          if (r.kind != BlobKind::kData) return false;
          if (hosts > h && (!next || hosts < *next)) next = hosts;
          return hosts == h;
        }));
        if (!next) break;
        h = *next;
      }
    }
    return Finish();
  }

 private:
  struct Target {
    uint64_t quota = 0;
    uint64_t used = 0;
    std::optional<uint64_t> disk_room;  // bytes it may still write on its disk; nullopt: unknown
    bool full = false;                  // refused a put (RESOURCE_EXHAUSTED)
    bool unreachable = false;           // failed a call: skipped for this run
  };

  double Limit(const Target& t) const { return options_.max_fill * static_cast<double>(t.quota); }

  bool HasRoom(const Target& t, uint64_t size) const {
    return !t.full && !t.unreachable && static_cast<double>(t.used + size) <= Limit(t) &&
           (!t.disk_room || size <= *t.disk_room);
  }

  bool Exhausted(const Target& t) const {
    return t.full || t.unreachable || static_cast<double>(t.used) >= Limit(t) ||
           (t.disk_room && *t.disk_room == 0);
  }

  bool AllExhausted() const {
    return std::all_of(targets_.begin(), targets_.end(),
                       [&](const auto& kv) { return Exhausted(kv.second); });
  }

  size_t DistinctHosts(const ports::ChunkRecord& r) const {
    std::set<std::string> hosts;
    for (PeerId p : r.holders) {
      auto it = hosts_.find(p);
      hosts.insert(it != hosts_.end() ? it->second : absl::StrCat("peer:", p));
    }
    return hosts.size();
  }

  void Error(const ports::ChunkRecord& r, const std::string& what) {
    if (report_.errors.size() < kMaxErrors) {
      report_.errors.push_back(absl::StrCat("chunk ", r.id.ShortHex(), ": ", what));
    }
  }

  // One walk over the catalog; `select(record, distinct hosts)` picks the chunks of this pass.
  template <typename Select>
  absl::Status Pass(Select select) {
    std::optional<ChunkId> after;
    while (!stop_) {
      auto lock = SharedGcLock(ctx_.gc_lock);
      CAIRN_ASSIGN_OR_RETURN(std::vector<ports::ChunkRecord> page,
                             ctx_.catalog->ListChunks(after, kPageSize));
      if (page.empty()) break;
      after = page.back().id;
      std::vector<const ports::ChunkRecord*> group;
      uint64_t group_bytes = 0;
      for (const ports::ChunkRecord& r : page) {
        if (cancel_ != nullptr && cancel_->load()) {
          return absl::CancelledError("extra copy placement cancelled");
        }
        if (r.erasure() || r.holders.empty()) continue;
        if (!select(r, DistinctHosts(r))) continue;
        if (AllExhausted()) {
          stop_ = true;
          break;
        }
        ++report_.chunks_considered;
        if (r.extras.size() >= options_.copies) continue;
        group.push_back(&r);
        group_bytes += r.blob_size;
        if (group_bytes >= kGroupBytes) {
          CAIRN_RETURN_IF_ERROR(PlaceGroup(group));
          group.clear();
          group_bytes = 0;
        }
      }
      CAIRN_RETURN_IF_ERROR(PlaceGroup(group));
      if (page.size() < kPageSize) break;
    }
    return absl::OkStatus();
  }

  // The chunk's blob from a regular holder, else from an extra one.
  absl::StatusOr<Bytes> Fetch(const ports::ChunkRecord& r) {
    std::vector<PeerId> sources;
    for (PeerId p : r.holders)
      if (targets_.count(p)) sources.push_back(p);  // alive ones first
    for (PeerId p : r.holders)
      if (!targets_.count(p) && p != ctx_.owner) sources.push_back(p);
    for (PeerId p : r.extras)
      if (p != ctx_.owner) sources.push_back(p);
    const BlobKey key{ctx_.owner, r.id, 0};
    std::vector<std::string> errors;
    for (PeerId p : sources) {
      auto client = ctx_.peers->Client(p);
      if (!client) continue;
      auto blob = client->GetBlob(key);
      if (!blob.ok()) {
        if (Retryable(blob.status())) ctx_.peers->ReportFailure(p);
        errors.push_back(absl::StrCat("peer ", p, ": ", blob.status().ToString()));
        continue;
      }
      if (!IsCopyOf(*blob, r)) {
        errors.push_back(absl::StrCat("peer ", p, ": not a copy of this chunk"));
        continue;
      }
      return std::move(*blob);
    }
    return absl::UnavailableError(absl::StrCat(
        "no copy could be read (",
        errors.empty() ? std::string("no holder reachable") : absl::StrJoin(errors, "; "), ")"));
  }

  // One chunk of a group: where its extra copies go, and its blob.
  struct Placement {
    const ports::ChunkRecord* record = nullptr;
    std::vector<PeerId> to;  // room reserved on each (record->blob_size)
    std::optional<std::future<absl::StatusOr<Bytes>>> fetch;
    std::optional<Bytes> blob;
  };

  // Places the extra copies of a group of chunks with their transfers in flight together: the
  // blobs are all asked for at once (StartGetBlob; the batching peer client sends them in a
  // few GetBlobs calls), then every copy is put at once (StartPutBlob: a few PutBlobs calls,
  // one group commit each on the peer), then recorded. One call per blob per copy, waited for
  // in turn, took a minute of background work after a backup of 73,000 files and slowed the
  // next backup. A peer chosen for a copy and failing it is not replaced by another in this
  // run; the next run places that copy.
  absl::Status PlaceGroup(const std::vector<const ports::ChunkRecord*>& group) {
    std::vector<Placement> plan;
    plan.reserve(group.size());
    for (const ports::ChunkRecord* r : group) {
      Placement pl;
      pl.record = r;
      size_t need = options_.copies - std::min<size_t>(options_.copies, r->extras.size());
      for (PeerId p : placement::PlacementOrder(r->id, candidates_, ctx_.spread)) {
        if (need == 0) break;
        if (p == ctx_.owner || Contains(r->holders, p) || Contains(r->extras, p)) continue;
        Target& t = targets_[p];
        if (!HasRoom(t, r->blob_size)) continue;
        t.used += r->blob_size;  // reserved; given back below unless the peer stored it
        pl.to.push_back(p);
        --need;
      }
      if (pl.to.empty()) continue;
      // From the first live regular holder; Fetch below tries every holder if that fails.
      for (PeerId p : r->holders) {
        if (!targets_.count(p)) continue;
        if (auto client = ctx_.peers->Client(p)) {
          pl.fetch = client->StartGetBlob(BlobKey{ctx_.owner, r->id, 0});
          break;
        }
      }
      plan.push_back(std::move(pl));
    }
    for (Placement& pl : plan) {
      if (pl.fetch) {
        absl::StatusOr<Bytes> blob = pl.fetch->get();
        if (blob.ok() && IsCopyOf(*blob, *pl.record)) pl.blob = std::move(*blob);
      }
      if (!pl.blob) {
        absl::StatusOr<Bytes> fetched = Fetch(*pl.record);
        if (fetched.ok()) {
          pl.blob = std::move(*fetched);
        } else {
          Error(*pl.record, std::string(fetched.status().message()));
        }
      }
      if (!pl.blob) {
        for (PeerId p : pl.to) Unreserve(targets_[p], pl.record->blob_size);
        pl.to.clear();
      }
    }
    struct Put {
      Placement* placement;
      PeerId peer;
      std::future<absl::StatusOr<ports::PutOutcome>> answer;
    };
    std::vector<Put> puts;
    for (Placement& pl : plan) {
      for (PeerId p : pl.to) {
        auto client = ctx_.peers->Client(p);
        if (!client) {
          targets_[p].unreachable = true;
          Unreserve(targets_[p], pl.record->blob_size);
          continue;
        }
        const BlobKey key{ctx_.owner, pl.record->id, 0};
        puts.push_back(
            {&pl, p, client->StartPutBlob(key, *pl.blob, ports::PutOptions{.extra = true})});
      }
    }
    for (Put& put : puts) {
      const ports::ChunkRecord& r = *put.placement->record;
      Target& t = targets_[put.peer];
      absl::StatusOr<ports::PutOutcome> outcome = put.answer.get();
      const uint64_t size = put.placement->blob->size();
      Unreserve(t, r.blob_size);
      if (!outcome.ok()) {
        if (outcome.status().code() == absl::StatusCode::kResourceExhausted) {
          t.full = true;
        } else {
          if (Retryable(outcome.status())) ctx_.peers->ReportFailure(put.peer);
          t.unreachable = true;
          Error(r, absl::StrCat("peer ", put.peer, ": ", outcome.status().ToString()));
        }
        continue;
      }
      // Already stored: the peer holds it (as extra, or as a regular copy the catalog does not
      // know); recording it as extra never overstates the redundancy.
      CAIRN_RETURN_IF_ERROR(Annotate(ctx_.catalog->AddExtraPlacement(r.id, put.peer),
                                     "record extra copy of chunk " + r.id.ShortHex()));
      ++report_.placed;
      if (*outcome == ports::PutOutcome::kStored) {
        t.used += size;
        if (t.disk_room) *t.disk_room -= std::min(*t.disk_room, size);
        report_.bytes += size;
      }
    }
    return absl::OkStatus();
  }

  static void Unreserve(Target& t, uint64_t size) { t.used -= std::min(t.used, size); }

  // Whether `blob` is the copies blob of r's chunk under our owner id: it is spread as is,
  // without decrypting (the peer that sent it verified its checksum).
  bool IsCopyOf(ByteSpan blob, const ports::ChunkRecord& r) const {
    auto header = format::ParseBlobHeader(blob);
    return header.ok() && header->owner == ctx_.owner && header->chunk == r.id &&
           header->scheme == format::Scheme::kCopies;
  }

  absl::StatusOr<ExtraReport> Finish() {
    report_.peers_full = 0;
    for (const auto& [id, t] : targets_)
      if (Exhausted(t)) ++report_.peers_full;
    return std::move(report_);
  }

  const EngineContext& ctx_;
  const ExtraOptions& options_;
  const std::atomic<bool>* cancel_;
  std::map<PeerId, std::string> hosts_;  // every known peer
  std::map<PeerId, Target> targets_;     // live peers
  std::vector<placement::Candidate> candidates_;
  ExtraReport report_;
  bool stop_ = false;
};

}  // namespace

absl::StatusOr<ExtraReport> PlaceExtraCopies(const EngineContext& ctx, const ExtraOptions& options,
                                             const std::atomic<bool>* cancel) {
  if (!(options.max_fill > 0) || options.max_fill > 1) {
    return absl::InvalidArgumentError("extra copies: max_fill must be in (0, 1]");
  }
  ExtraPlacer placer(ctx, options, cancel);
  return placer.Run();
}

absl::StatusOr<uint64_t> PruneExtras(const EngineContext& ctx, const std::atomic<bool>* cancel) {
  std::set<PeerId> alive;
  for (const StoragePeer& p : ctx.peers->Peers())
    if (p.alive) alive.insert(p.id);
  std::set<PeerId> unreachable;
  uint64_t forgotten = 0;
  std::optional<ChunkId> after;
  while (true) {
    if (cancel != nullptr && cancel->load()) return absl::CancelledError("prune cancelled");
    auto lock = SharedGcLock(ctx.gc_lock);
    CAIRN_ASSIGN_OR_RETURN(std::vector<ports::ChunkRecord> page,
                           ctx.catalog->ListChunks(after, kPageSize));
    if (page.empty()) break;
    after = page.back().id;
    std::map<PeerId, std::vector<BlobKey>> asks;
    for (const auto& r : page) {
      for (PeerId p : r.extras) asks[p].push_back({ctx.owner, r.id, 0});
    }
    for (const auto& [peer, keys] : asks) {
      if (!alive.count(peer) || unreachable.count(peer)) continue;
      auto client = ctx.peers->Client(peer);
      if (!client) continue;
      for (size_t i = 0; i < keys.size(); i += ports::kMaxKeysPerCall) {
        std::span<const BlobKey> batch(keys.data() + i,
                                       std::min(ports::kMaxKeysPerCall, keys.size() - i));
        auto has = client->HasBlobs(batch);
        if (!has.ok() || has->size() != batch.size()) {
          if (!has.ok() && Retryable(has.status())) ctx.peers->ReportFailure(peer);
          unreachable.insert(peer);
          break;
        }
        for (size_t j = 0; j < batch.size(); ++j) {
          if ((*has)[j]) continue;
          CAIRN_RETURN_IF_ERROR(ctx.catalog->RemoveExtraPlacements(batch[j].chunk, {peer}));
          ++forgotten;
        }
      }
    }
    if (page.size() < kPageSize) break;
  }
  return forgotten;
}

}  // namespace cairn::engine
