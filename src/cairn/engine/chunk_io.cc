#include "cairn/engine/chunk_io.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/fan_out.h"
#include "cairn/base/status.h"
#include "cairn/engine/peer_failures.h"

namespace cairn::engine {
namespace {

// The largest k+m a shard blob can declare (format::ParseBlobHeader); a census asks for all.
constexpr uint32_t kMaxShards = codec::kMaxDataShards + codec::kMaxParityShards;

std::vector<placement::Candidate> LiveCandidates(const std::vector<StoragePeer>& peers) {
  std::vector<placement::Candidate> out;
  for (const auto& p : peers) {
    if (!p.alive) continue;
    out.push_back({p.id, p.host, static_cast<double>(std::max<uint64_t>(p.quota, 1)), p.site});
  }
  return out;
}

bool Contains(const std::vector<PeerId>& v, PeerId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

bool Retryable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

const StoragePeer* FindPeer(const std::vector<StoragePeer>& peers, PeerId id) {
  for (const auto& p : peers)
    if (p.id == id) return &p;
  return nullptr;
}

bool LooksFull(const std::vector<StoragePeer>& peers, PeerId id, uint64_t size) {
  const StoragePeer* p = FindPeer(peers, id);
  if (p == nullptr) return false;
  // A disk short of room refuses the put whatever the quota says (docs/operations.md "A full
  // disk").
  if (p->disk_room && size > *p->disk_room) return true;
  // Extra copies give way to a regular put (store/blob_store.h): they do not make a peer full.
  return p->quota > 0 && p->used - std::min(p->extra, p->used) + size > p->quota;
}

// Runs fn(i) for i in [0, n) concurrently on the shared pool and the calling thread
// (base/fan_out.h: no thread per call) and returns the results in order.
template <typename T, typename Fn>
std::vector<T> ParallelMap(size_t n, Fn fn) {
  return FanOut::Shared().Map<T>(n, fn);
}

std::vector<PeerId> DistinctPeers(const std::vector<ports::ShardHolder>& shards) {
  std::vector<PeerId> peers;
  for (const auto& s : shards) peers.push_back(s.peer);
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

std::string PeerList(const std::vector<PeerId>& peers) {
  return peers.empty() ? std::string("none") : absl::StrJoin(peers, ", ");
}

// The retrying side of one chunk fetch (docs/architecture.md "Holders and retries"): reports each
// holder's answer to the peer set and the shared failure memory, and decides whether holders
// that could not be reached are asked again — until ctx.fetch_retry.budget after the fetch
// began, with backoff between rounds, and never for a peer that has been unreachable for
// longer than the budget already (a dead peer must not make every chunk wait).
class FetchRetrier {
 public:
  explicit FetchRetrier(const EngineContext& ctx)
      : ctx_(ctx),
        own_failures_(ctx.clock != nullptr ? ctx.clock : env::RealClock::Default()),
        failures_(ctx.peer_failures != nullptr ? ctx.peer_failures : &own_failures_),
        start_(std::chrono::steady_clock::now()) {}

  PeerFailures& failures() { return *failures_; }

  // Records the answer of `peer` (OK or the call's error).
  void Note(PeerId peer, const absl::Status& status) {
    if (status.ok()) {
      failures_->Succeeded(peer);
    } else if (Retryable(status)) {
      ctx_.peers->ReportFailure(peer);
      failures_->Failed(peer);
    } else {
      // NOT_FOUND, DATA_LOSS...: the peer answered; it is reachable, only this blob is not.
      failures_->Succeeded(peer);
    }
  }

  // Whether `peer`, whose call failed with `status`, is to be asked again in a later round.
  bool WorthRetrying(PeerId peer, const absl::Status& status) {
    if (!Retryable(status)) return false;
    std::optional<int64_t> failing = failures_->FailingForNanos(peer);
    const int64_t budget_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(ctx_.fetch_retry.budget).count();
    return !failing || *failing <= budget_ns;
  }

  // Sleeps before retry round `round_` (jittered in [c/2, c], see FetchRetry; never past the
  // budget) and returns true; false, without sleeping, once the budget is spent.
  bool Backoff() {
    const auto left = ctx_.fetch_retry.budget - Elapsed();
    if (left <= std::chrono::milliseconds(0)) return false;
    int64_t cap = std::max<int64_t>(1, ctx_.fetch_retry.initial_backoff.count());
    const int64_t max = std::max<int64_t>(cap, ctx_.fetch_retry.max_backoff.count());
    for (int i = 0; i < round_ && cap < max; ++i) cap *= 2;
    cap = std::min(cap, max);
    thread_local std::mt19937_64 rng(std::random_device{}());
    std::uniform_int_distribution<int64_t> dist(cap / 2, cap);  // at least half: let it reconnect
    auto wait = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(dist(rng)),
        std::chrono::duration_cast<std::chrono::milliseconds>(left));
    ++round_;
    std::this_thread::sleep_for(wait);
    return true;
  }

  int rounds() const { return round_; }
  std::chrono::milliseconds Elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_);
  }

 private:
  const EngineContext& ctx_;
  PeerFailures own_failures_;
  PeerFailures* failures_;
  const std::chrono::steady_clock::time_point start_;
  int round_ = 0;
};

// Sorts `holders` into the order a fetch asks them (docs/architecture.md "Holders and retries").
void SortHolders(const EngineContext& ctx, const ChunkId& id, const std::vector<StoragePeer>& peers,
                 PeerFailures& failures, std::vector<PeerId>& holders) {
  std::vector<placement::Candidate> all;
  for (const auto& p : peers) {
    all.push_back({p.id, p.host, static_cast<double>(std::max<uint64_t>(p.quota, 1)), p.site});
  }
  std::vector<PeerId> order = placement::PlacementOrder(id, all, ctx.spread);
  struct Rank {
    int state;  // 0 alive, 1 suspect, 2 dead or unknown
    bool failing;
    size_t position;  // in the placement order over every known peer; unknown peers last
    PeerId id;
    bool operator<(const Rank& o) const {
      return std::tie(state, failing, position, id) <
             std::tie(o.state, o.failing, o.position, o.id);
    }
  };
  std::vector<Rank> ranks;
  for (PeerId h : holders) {
    const StoragePeer* p = FindPeer(peers, h);
    int state = p == nullptr ? 2 : p->alive ? 0 : p->suspect ? 1 : 2;
    size_t position = std::find(order.begin(), order.end(), h) - order.begin();
    ranks.push_back({state, failures.Failing(h), position, h});
  }
  std::sort(ranks.begin(), ranks.end());
  holders.clear();
  for (const Rank& r : ranks) holders.push_back(r.id);
}

}  // namespace

std::vector<PeerId> OrderHolders(const EngineContext& ctx, const ChunkId& id,
                                 const std::vector<StoragePeer>& peers,
                                 std::vector<PeerId> holders) {
  FetchRetrier retrier(ctx);
  SortHolders(ctx, id, peers, retrier.failures(), holders);
  return holders;
}

bool SatisfiesRedundancy(const ports::ChunkRecord& known, const Redundancy& redundancy) {
  if (known.erasure()) return known.AtTarget();
  const uint32_t copies = redundancy.CopiesForCopiesChunk();
  return known.holders.size() >= copies && known.offsite >= std::min(redundancy.offsite, copies);
}

uint32_t OffsiteHolders(const std::vector<StoragePeer>& peers, const std::string& home_site,
                        const std::vector<PeerId>& holders) {
  std::set<PeerId> away;
  for (PeerId h : holders) {
    const StoragePeer* p = FindPeer(peers, h);
    if (p != nullptr && p->site != home_site) away.insert(h);
  }
  return static_cast<uint32_t>(away.size());
}

namespace {

// Sorts the holders, sets at_target and records the chunk with its holders in the catalog.
absl::Status RecordCopies(const EngineContext& ctx, BlobKind kind,
                          const format::SealedChunk& sealed, uint32_t copies, uint32_t offsite,
                          const std::vector<StoragePeer>& peers, StoreOutcome& out) {
  std::sort(out.holders.begin(), out.holders.end());
  out.at_target =
      out.holders.size() >= copies && OffsiteHolders(peers, ctx.site, out.holders) >= offsite;
  ports::ChunkRecord record;
  record.id = sealed.id;
  record.kind = kind;
  record.plain_size = sealed.plain_size;
  record.blob_size = sealed.blob.size();
  record.target = copies;
  record.offsite = static_cast<uint8_t>(std::min<uint32_t>(offsite, 255));
  record.holders = out.holders;
  return Annotate(ctx.catalog->AddChunk(record), "record chunk " + sealed.id.ShortHex());
}

}  // namespace

absl::StatusOr<StoreOutcome> StoreChunk(const EngineContext& ctx, BlobKind kind,
                                        const format::SealedChunk& sealed, uint32_t copies,
                                        const std::vector<PeerId>& existing_holders,
                                        uint32_t offsite) {
  StoreOutcome out;
  out.holders = existing_holders;
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  std::vector<placement::Candidate> candidates = LiveCandidates(peers);
  // Off-site copies still missing go first (docs/architecture.md "Placement").
  auto offsite_held = [&] { return OffsiteHolders(peers, ctx.site, out.holders); };
  auto away = [&](PeerId p) {
    const StoragePeer* sp = FindPeer(peers, p);
    return sp != nullptr && sp->site != ctx.site;
  };
  const uint32_t offsite_missing = offsite > offsite_held() ? offsite - offsite_held() : 0;
  std::vector<PeerId> order =
      placement::OffsiteFirst(placement::PlacementOrder(sealed.id, candidates, ctx.spread),
                              candidates, ctx.site, offsite_missing);
  std::vector<std::string> errors;
  const BlobKey key{ctx.owner, sealed.id, 0};
  // Rounds: send to as many peers at once as copies are still missing, in placement order;
  // peers that fail or are full are replaced by the next ones in the next round. The copies
  // of one chunk thus travel in parallel (each storage peer's fsyncs overlap).
  // Once `copies` peers hold it, only a missing off-site copy is still sought.
  size_t next = 0;
  while ((out.holders.size() < copies || offsite_held() < offsite) && next < order.size()) {
    std::vector<std::pair<PeerId, std::shared_ptr<ports::PeerClient>>> round;
    uint32_t round_away = 0;
    while (next < order.size()) {
      const bool want_copy = round.size() + out.holders.size() < copies;
      const bool want_away = offsite_held() + round_away < offsite;
      if (!want_copy && !want_away) break;
      PeerId peer = order[next++];
      if (peer == ctx.owner || Contains(out.holders, peer)) continue;
      if (!want_copy && !away(peer)) continue;
      if (LooksFull(peers, peer, sealed.blob.size())) {
        errors.push_back(absl::StrCat("peer ", peer, ": full"));
        continue;
      }
      auto client = ctx.peers->Client(peer);
      if (!client) continue;
      if (away(peer)) ++round_away;
      round.emplace_back(peer, std::move(client));
    }
    if (round.empty()) break;
    // Every copy of the round goes out at once without a thread per copy: the peer clients
    // queue them into their next batch (net/batching_peer_client.h).
    std::vector<std::future<absl::StatusOr<ports::PutOutcome>>> pending;
    pending.reserve(round.size());
    for (const auto& [peer, client] : round) {
      pending.push_back(client->StartPutBlob(key, sealed.blob, ports::PutOptions{}));
    }
    std::vector<absl::StatusOr<ports::PutOutcome>> results;
    results.reserve(round.size());
    for (auto& f : pending) results.push_back(f.get());
    for (size_t i = 0; i < round.size(); ++i) {
      PeerId peer = round[i].first;
      const auto& put = results[i];
      if (!put.ok()) {
        if (Retryable(put.status())) ctx.peers->ReportFailure(peer);
        errors.push_back(absl::StrCat("peer ", peer, ": ", put.status().ToString()));
        continue;
      }
      out.holders.push_back(peer);
      if (*put == ports::PutOutcome::kStored) {
        out.sent_bytes += sealed.blob.size();
        ++out.new_copies;
      }
    }
  }
  if (out.holders.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "chunk ", sealed.id.ShortHex(), " could not be stored on any peer (",
        order.empty() ? std::string("no live peers") : absl::StrJoin(errors, "; "), ")"));
  }
  if (out.holders.size() < copies) {
    spdlog::warn(
        "chunk {}: {} of {} copies placed, {} live storage peers in the placement order ({})",
        sealed.id.ShortHex(), out.holders.size(), copies, order.size(),
        errors.empty() ? std::string("no more peers") : absl::StrJoin(errors, "; "));
  }
  if (offsite_held() < offsite) {
    spdlog::warn(
        "chunk {}: {} of {} off-site copies placed (no more usable peers of a site other "
        "than '{}')",
        sealed.id.ShortHex(), offsite_held(), offsite, ctx.site);
  }
  CAIRN_RETURN_IF_ERROR(RecordCopies(ctx, kind, sealed, copies, offsite, peers, out));
  return out;
}

absl::StatusOr<std::optional<CopiesInFlight>> StartNewCopies(const EngineContext& ctx,
                                                             BlobKind kind, const ChunkId& id,
                                                             ByteSpan plaintext,
                                                             const Redundancy& redundancy,
                                                             format::PreparedChunk* for_shards) {
  if (redundancy.ec && for_shards == nullptr) return std::optional<CopiesInFlight>();
  CAIRN_ASSIGN_OR_RETURN(format::PreparedChunk prepared,
                         format::PrepareChunk(ctx.keys, kind, plaintext, &id));
  if (redundancy.ec && prepared.body.size() >= format::kMinErasurePayload) {
    *for_shards = std::move(prepared);
    return std::optional<CopiesInFlight>();
  }
  CopiesInFlight f;
  f.kind = kind;
  f.sealed = format::SealCopy(ctx.keys, ctx.owner, prepared);
  f.copies = redundancy.CopiesForCopiesChunk();
  // A small chunk of an erasure-coded backup gets m+1 copies: at most that many off-site.
  f.offsite = std::min(redundancy.offsite, f.copies);
  // StoreChunk's first round: the first `copies` usable peers of the placement order, off-site
  // peers first for the off-site copies.
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  std::vector<placement::Candidate> candidates = LiveCandidates(peers);
  std::vector<PeerId> order =
      placement::OffsiteFirst(placement::PlacementOrder(f.sealed.id, candidates, ctx.spread),
                              candidates, ctx.site, f.offsite);
  const BlobKey key{ctx.owner, f.sealed.id, 0};
  for (PeerId peer : order) {
    if (f.peers.size() >= f.copies) break;
    if (peer == ctx.owner || LooksFull(peers, peer, f.sealed.blob.size())) continue;
    auto client = ctx.peers->Client(peer);
    if (!client) continue;
    f.peers.push_back(peer);
    // The blob's bytes live in f.sealed.blob, whose buffer stays put when `f` is moved.
    f.answers.push_back(client->StartPutBlob(key, f.sealed.blob, ports::PutOptions{}));
  }
  return std::optional<CopiesInFlight>(std::move(f));
}

absl::StatusOr<StoreOutcome> FinishCopies(const EngineContext& ctx, CopiesInFlight& f) {
  StoreOutcome first;
  for (size_t i = 0; i < f.answers.size(); ++i) {
    absl::StatusOr<ports::PutOutcome> put = f.answers[i].get();
    if (!put.ok()) {
      if (Retryable(put.status())) ctx.peers->ReportFailure(f.peers[i]);
      continue;
    }
    first.holders.push_back(f.peers[i]);
    if (*put == ports::PutOutcome::kStored) {
      first.sent_bytes += f.sealed.blob.size();
      ++first.new_copies;
    }
  }
  f.answers.clear();
  // The peers' sites matter only for an off-site target (most chunks have none).
  std::vector<StoragePeer> peers;
  if (f.offsite > 0) peers = ctx.peers->Peers();
  if (first.holders.size() < f.copies ||
      OffsiteHolders(peers, ctx.site, first.holders) < f.offsite) {
    // A peer failed or was missing: StoreChunk goes on down the placement order from the
    // holders it has (and reports what it could not place).
    CAIRN_ASSIGN_OR_RETURN(StoreOutcome rest,
                           StoreChunk(ctx, f.kind, f.sealed, f.copies, first.holders, f.offsite));
    rest.sent_bytes += first.sent_bytes;
    rest.new_copies += first.new_copies;
    return rest;
  }
  CAIRN_RETURN_IF_ERROR(RecordCopies(ctx, f.kind, f.sealed, f.copies, f.offsite, peers, first));
  return first;
}

absl::StatusOr<StoreOutcome> StoreShards(const EngineContext& ctx, BlobKind kind,
                                         const format::SealedShards& sealed,
                                         const std::vector<ports::ShardHolder>& existing,
                                         uint32_t offsite) {
  const uint32_t n = static_cast<uint32_t>(sealed.scheme.total());
  const uint32_t k = static_cast<uint32_t>(sealed.scheme.k);
  if (sealed.shards.size() != n) {
    return absl::InvalidArgumentError("store shards: wrong number of shard blobs");
  }
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  std::vector<placement::Candidate> candidates = LiveCandidates(peers);
  // The first missing shards go to peers of another site while off-site holders are missing
  // (docs/architecture.md "Placement").
  const uint32_t offsite_held = OffsiteHolders(peers, ctx.site, DistinctPeers(existing));
  std::vector<PeerId> order = placement::OffsiteFirst(
      placement::PlacementOrder(sealed.id, candidates, ctx.spread), candidates, ctx.site,
      offsite > offsite_held ? offsite - offsite_held : 0);
  order.erase(std::remove(order.begin(), order.end(), ctx.owner), order.end());

  std::set<ports::ShardHolder> placed;
  std::map<PeerId, int> load;  // shards of this chunk per peer (held or being sent)
  std::vector<bool> have(n, false);
  for (const auto& s : existing) {
    placed.insert(s);
    ++load[s.peer];
    if (s.shard < n) have[s.shard] = true;
  }
  std::set<std::pair<PeerId, uint32_t>> attempted;  // (peer, shard) pairs tried by this call
  std::set<PeerId> failed;                          // unreachable or full for this chunk
  std::vector<std::string> errors;

  // Shard i to the i-th unused peer of the placement order: a peer holding no shard of the chunk
  // on a host holding none (host spread), then a peer holding none; once every peer holds a
  // shard, onto the least loaded peers (below target, still more shards to survive losses;
  // docs/operations.md "When the cluster is too small").
  auto host_of = [&](PeerId p) -> std::string {
    const StoragePeer* sp = FindPeer(peers, p);
    return sp == nullptr ? std::string() : sp->host;
  };
  auto fresh = [&](PeerId p, uint32_t shard, uint64_t size) {
    if (load[p] > 0 || failed.count(p) || attempted.count({p, shard})) return false;
    if (LooksFull(peers, p, size)) {
      failed.insert(p);
      errors.push_back(absl::StrCat("peer ", p, ": full"));
      return false;
    }
    return true;
  };
  auto next_peer = [&](uint32_t shard) -> std::optional<PeerId> {
    const uint64_t size = sealed.shards[shard].size();
    if (ctx.spread == placement::Spread::kHost) {
      std::set<std::string> used_hosts;
      for (const auto& [p, n] : load)
        if (n > 0) used_hosts.insert(host_of(p));
      for (PeerId p : order) {
        if (!used_hosts.count(host_of(p)) && fresh(p, shard, size)) return p;
      }
    }
    for (PeerId p : order) {
      if (fresh(p, shard, size)) return p;
    }
    std::optional<PeerId> best;
    for (PeerId p : order) {
      if (failed.count(p) || attempted.count({p, shard})) continue;
      if (placed.count({shard, p})) continue;
      if (LooksFull(peers, p, size * static_cast<uint64_t>(load[p] + 1))) continue;
      if (!best || load[p] < load[*best]) best = p;
    }
    return best;
  };

  StoreOutcome out;
  std::vector<uint32_t> pending;
  for (uint32_t i = 0; i < n; ++i)
    if (!have[i]) pending.push_back(i);
  while (!pending.empty()) {
    struct Put {
      uint32_t shard;
      PeerId peer;
      std::shared_ptr<ports::PeerClient> client;
    };
    std::vector<Put> round;
    for (uint32_t shard : pending) {
      while (true) {
        std::optional<PeerId> p = next_peer(shard);
        if (!p) break;
        attempted.insert({*p, shard});
        auto client = ctx.peers->Client(*p);
        if (!client) {
          failed.insert(*p);
          continue;
        }
        ++load[*p];
        round.push_back({shard, *p, std::move(client)});
        break;
      }
    }
    pending.clear();
    if (round.empty()) break;
    // PutBlob, and for ALREADY_STORED a read-back: a peer may hold this index from an
    // earlier seal of the chunk (another nonce), which must not be counted as ours.
    std::vector<std::future<absl::StatusOr<ports::PutOutcome>>> sent;
    sent.reserve(round.size());
    for (const Put& put : round) {
      sent.push_back(put.client->StartPutBlob({ctx.owner, sealed.id, put.shard},
                                              sealed.shards[put.shard], ports::PutOptions{}));
    }
    std::vector<absl::StatusOr<ports::PutOutcome>> answers;
    answers.reserve(round.size());
    for (auto& f : sent) answers.push_back(f.get());
    // ALREADY_STORED is rare (a re-run after a crash): its read-back runs on this thread.
    std::vector<absl::Status> results;
    results.reserve(round.size());
    for (size_t i = 0; i < round.size(); ++i)
      results.push_back([&]() -> absl::Status {
        const Put& put = round[i];
        const Bytes& blob = sealed.shards[put.shard];
        const BlobKey key{ctx.owner, sealed.id, put.shard};
        CAIRN_ASSIGN_OR_RETURN(ports::PutOutcome outcome, std::move(answers[i]));
        if (outcome == ports::PutOutcome::kStored) return absl::OkStatus();
        CAIRN_ASSIGN_OR_RETURN(Bytes held, put.client->GetBlob(key));
        if (held != blob) {
          return absl::AlreadyExistsError("holds this shard index of another seal of the chunk");
        }
        return absl::CancelledError("already stored");  // ours: counted, not sent
      }());
    for (size_t i = 0; i < round.size(); ++i) {
      const Put& put = round[i];
      const absl::Status& st = results[i];
      if (st.ok() || absl::IsCancelled(st)) {
        placed.insert({put.shard, put.peer});
        if (st.ok()) {
          out.sent_bytes += sealed.shards[put.shard].size();
          ++out.new_copies;
        }
        continue;
      }
      --load[put.peer];
      if (Retryable(st)) ctx.peers->ReportFailure(put.peer);
      if (!absl::IsAlreadyExists(st)) failed.insert(put.peer);
      errors.push_back(absl::StrCat("peer ", put.peer, " shard ", put.shard, ": ", st.ToString()));
      pending.push_back(put.shard);
    }
  }

  out.shards.assign(placed.begin(), placed.end());
  out.holders = DistinctPeers(out.shards);
  std::set<uint32_t> indices;
  for (const auto& s : out.shards) indices.insert(s.shard);
  if (!out.shards.empty()) {
    ports::ChunkRecord record;
    record.id = sealed.id;
    record.kind = kind;
    record.plain_size = sealed.plain_size;
    record.blob_size = sealed.shards[0].size();
    record.target = n;
    record.ec_k = static_cast<uint8_t>(sealed.scheme.k);
    record.ec_m = static_cast<uint8_t>(sealed.scheme.m);
    record.offsite = static_cast<uint8_t>(std::min<uint32_t>(offsite, 255));
    record.shards = out.shards;
    out.at_target = record.AtTarget() && OffsiteHolders(peers, ctx.site, out.holders) >= offsite;
    if (!out.at_target) {
      spdlog::warn(
          "chunk {}: {} of {} shards on {} distinct peers, {} live storage peers in the placement "
          "order ({})",
          sealed.id.ShortHex(), indices.size(), n, out.holders.size(), order.size(),
          errors.empty() ? std::string("no more peers") : absl::StrJoin(errors, "; "));
    }
    CAIRN_RETURN_IF_ERROR(
        Annotate(ctx.catalog->AddChunk(record), "record chunk " + sealed.id.ShortHex()));
  }
  if (indices.size() < k) {
    return absl::UnavailableError(absl::StrCat(
        "chunk ", sealed.id.ShortHex(), ": only ", indices.size(), " of ", n,
        " shards could be stored, ", k, " are needed (",
        order.empty() ? std::string("no live peers") : absl::StrJoin(errors, "; "), ")"));
  }
  return out;
}

namespace {

// Fetches shards of chunk `id` from `locations` (plus a HasBlobs census of the live peers when
// those are not enough) and opens it. `k` may be 0 when unknown (learnt from the first shard).
class ShardFetch {
 public:
  ShardFetch(const EngineContext& ctx, const ChunkId& id) : ctx_(ctx), id_(id), retrier_(ctx) {
    peers_ = ctx.peers->Peers();
  }

  void AddLocations(const std::vector<ports::ShardHolder>& locations) {
    for (const auto& s : locations) {
      auto& list = candidates_[s.shard];
      if (!Contains(list, s.peer)) list.push_back(s.peer);
    }
    // Live peers first: a suspect one may still answer, but should not make reads wait.
    for (auto& [shard, list] : candidates_) {
      SortHolders(ctx_, id_, peers_, retrier_.failures(), list);
    }
  }

  // A blob already fetched (for the chunk, any shard).
  void AddSeed(Bytes blob, PeerId from) {
    auto v = format::ParseShard(blob);
    if (!v.ok()) return;
    tried_.insert({v->header.shard, from});
    good_indices_.insert(v->header.shard);
    LearnScheme(v->header);
    blobs_.push_back(std::move(blob));
  }

  absl::StatusOr<format::OpenedShards> Run(bool rebuild) {
    bool census_done = false;
    while (true) {
      if (k_ == 0) FetchUntilSchemeKnown();
      if (k_ != 0) {
        FetchMissing(/*all=*/false);
        if (good_indices_.size() >= static_cast<size_t>(k_)) {
          auto opened = Open(rebuild);
          if (opened.ok()) return opened;
          // Not authenticating (corrupt shards that passed the peer checksum): read every
          // other shard and try other k-subsets.
          FetchMissing(/*all=*/true);
          opened = Open(rebuild);
          if (opened.ok()) return opened;
        }
      }
      if (!census_done) {
        Census();
        census_done = true;
        continue;
      }
      if (!RetryUnreachable()) return Finish();
    }
  }

 private:
  void LearnScheme(const format::BlobHeader& h) {
    if (k_ == 0) {
      k_ = h.k;
      m_ = h.m;
    }
  }

  void Note(PeerId peer, uint32_t shard, const absl::Status& st) {
    std::lock_guard lock(mu_);
    if (st.code() == absl::StatusCode::kDataLoss ||
        st.code() == absl::StatusCode::kInvalidArgument) {
      corrupt_ = true;
    }
    if (retrier_.WorthRetrying(peer, st)) unreachable_.insert({shard, peer});
    errors_.push_back(absl::StrCat("peer ", peer, " shard ", shard, ": ", st.ToString()));
    spdlog::warn("chunk {}: peer {} failed for shard {} ({}); trying other shard holders",
                 id_.ShortHex(), peer, shard, st.ToString());
  }

  // When fewer than k shards could be read and some holders could not be reached: waits a
  // backoff (within the retry budget) and makes those (shard, peer) pairs untried again.
  bool RetryUnreachable() {
    std::set<std::pair<uint32_t, PeerId>> again;
    {
      std::lock_guard lock(mu_);
      again.swap(unreachable_);
    }
    if (again.empty() || !retrier_.Backoff()) return false;
    std::vector<PeerId> peers;
    for (const auto& [shard, peer] : again) {
      tried_.erase({shard, peer});
      if (std::find(peers.begin(), peers.end(), peer) == peers.end()) peers.push_back(peer);
    }
    spdlog::warn(
        "chunk {}: retrying unreachable shard holder(s) {} (round {}, {} ms into the fetch)",
        id_.ShortHex(), PeerList(peers), retrier_.rounds(), retrier_.Elapsed().count());
    return true;
  }

  // One GetBlob, validated as a shard of this chunk with index `shard`.
  absl::StatusOr<Bytes> Get(PeerId peer, uint32_t shard) {
    if (peer == ctx_.owner) return absl::NotFoundError("home peer");
    auto client = ctx_.peers->Client(peer);
    if (!client) return absl::UnavailableError("unknown peer");
    auto blob = client->GetBlob(BlobKey{ctx_.owner, id_, shard});
    retrier_.Note(peer, blob.status());
    if (!blob.ok()) return blob.status();
    auto v = format::ParseShard(*blob);
    if (!v.ok()) return absl::DataLossError(std::string(v.status().message()));
    if (v->header.owner != ctx_.owner || v->header.chunk != id_ || v->header.shard != shard) {
      return absl::DataLossError("blob is for another chunk or shard");
    }
    return blob;
  }

  // Fetches shard `shard` from `peers`, one after another, until one is good.
  struct Fetched {
    std::optional<Bytes> blob;
    std::vector<PeerId> tried;
  };
  Fetched FetchOne(uint32_t shard, const std::vector<PeerId>& peers) {
    Fetched out;
    for (PeerId p : peers) {
      out.tried.push_back(p);
      {
        std::lock_guard lock(mu_);
        if (!Contains(peers_tried_, p)) peers_tried_.push_back(p);
      }
      auto blob = Get(p, shard);
      if (blob.ok()) {
        out.blob = std::move(*blob);
        break;
      }
      Note(p, shard, blob.status());
    }
    return out;
  }

  std::vector<PeerId> Untried(uint32_t shard) const {
    std::vector<PeerId> out;
    auto it = candidates_.find(shard);
    if (it == candidates_.end()) return out;
    for (PeerId p : it->second)
      if (!tried_.count({shard, p})) out.push_back(p);
    return out;
  }

  void FetchUntilSchemeKnown() {
    for (const auto& [shard, list] : candidates_) {
      Fetched got = FetchOne(shard, Untried(shard));
      for (PeerId p : got.tried) tried_.insert({shard, p});
      if (got.blob) {
        AddSeed(std::move(*got.blob), got.tried.back());
        return;
      }
    }
  }

  // all=false: rounds of parallel fetches of not yet good shard indices (lowest first) until
  // k are good or no candidate is left. all=true: one round fetching every untried location.
  void FetchMissing(bool all) {
    while (all || good_indices_.size() < static_cast<size_t>(k_)) {
      std::vector<std::pair<uint32_t, std::vector<PeerId>>> round;
      size_t want = all ? SIZE_MAX : static_cast<size_t>(k_) - good_indices_.size();
      for (const auto& [shard, list] : candidates_) {
        if (round.size() >= want) break;
        if (shard >= static_cast<uint32_t>(k_ + m_)) continue;
        if (!all && good_indices_.count(shard)) continue;
        std::vector<PeerId> untried = Untried(shard);
        if (untried.empty()) continue;
        if (all) {
          for (PeerId p : untried) round.push_back({shard, {p}});
        } else {
          round.push_back({shard, untried});
        }
      }
      if (round.empty()) return;
      auto got = ParallelMap<Fetched>(
          round.size(), [&](size_t i) { return FetchOne(round[i].first, round[i].second); });
      for (size_t i = 0; i < round.size(); ++i) {
        for (PeerId p : got[i].tried) tried_.insert({round[i].first, p});
        if (!got[i].blob) continue;
        good_indices_.insert(round[i].first);
        blobs_.push_back(std::move(*got[i].blob));
      }
      if (all) return;
    }
  }

  absl::StatusOr<format::OpenedShards> Open(bool rebuild) {
    // Trying every k-subset again with the same shards would fail again, and costs.
    if (blobs_.size() == opened_with_) return absl::DataLossError(open_error_);
    opened_with_ = blobs_.size();
    std::vector<ByteSpan> spans(blobs_.begin(), blobs_.end());
    auto opened = format::OpenChunkShards(ctx_.keys, ctx_.owner, id_, spans, rebuild);
    if (!opened.ok()) {
      if (opened.status().code() == absl::StatusCode::kDataLoss) corrupt_ = true;
      open_error_ = std::string(opened.status().message());
    }
    return opened;
  }

  // Every live peer (and the ones already known) is asked which shard keys it holds.
  void Census() {
    std::vector<PeerId> ask = placement::PlacementOrder(id_, LiveCandidates(peers_), ctx_.spread);
    const uint32_t n = k_ != 0 ? static_cast<uint32_t>(k_ + m_) : kMaxShards;
    std::vector<BlobKey> keys;
    for (uint32_t i = 0; i < n; ++i) keys.push_back({ctx_.owner, id_, i});
    auto answers = ParallelMap<std::vector<ports::ShardHolder>>(ask.size(), [&](size_t i) {
      std::vector<ports::ShardHolder> found;
      if (ask[i] == ctx_.owner) return found;
      auto client = ctx_.peers->Client(ask[i]);
      if (!client) return found;
      auto has = client->HasBlobs(keys);
      retrier_.Note(ask[i], has.status());
      if (!has.ok()) return found;
      for (size_t j = 0; j < has->size() && j < keys.size(); ++j) {
        if ((*has)[j]) found.push_back({keys[j].shard, ask[i]});
      }
      return found;
    });
    for (const auto& a : answers) AddLocations(a);
  }

  absl::Status Finish() {
    std::string msg = absl::StrCat(
        "chunk ", id_.ShortHex(), ": no ", k_ == 0 ? std::string("k") : std::to_string(k_),
        " intact shards could be read (", good_indices_.size(), " read",
        open_error_.empty() ? std::string() : "; " + open_error_, "; peers tried ",
        PeerList(peers_tried_),
        errors_.empty() ? std::string() : "; " + absl::StrJoin(errors_, "; "), ")");
    spdlog::error("{}", msg);
    if (corrupt_) return absl::DataLossError(msg);
    return absl::UnavailableError(msg);
  }

  const EngineContext& ctx_;
  const ChunkId id_;
  std::vector<StoragePeer> peers_;
  int k_ = 0, m_ = 0;
  std::map<uint32_t, std::vector<PeerId>> candidates_;  // shard -> peers that may hold it
  std::set<std::pair<uint32_t, PeerId>> tried_;
  std::set<uint32_t> good_indices_;
  std::vector<Bytes> blobs_;       // fetched shard blobs that parsed
  size_t opened_with_ = SIZE_MAX;  // blobs_.size() at the last OpenChunkShards

  FetchRetrier retrier_;

  std::mutex mu_;  // guards errors_, corrupt_, unreachable_ and peers_tried_ while fetches run
  std::vector<std::string> errors_;
  bool corrupt_ = false;
  std::set<std::pair<uint32_t, PeerId>> unreachable_;  // (shard, peer) worth another round
  std::vector<PeerId> peers_tried_;
  std::string open_error_;
};

// A holder already asked (read-ahead, StartFetchChunk) and what went wrong with its answer.
struct EarlierAttempt {
  PeerId peer = 0;
  absl::Status status;
  bool corrupt = false;  // DATA_LOSS, or the blob did not open
};

// `earlier`: that holder counts as the first one asked in the first round (it is asked again
// only in later rounds, when it could not be reached).
absl::StatusOr<Bytes> FetchCopies(const EngineContext& ctx, const ChunkId& id,
                                  const std::optional<ports::ChunkRecord>& record,
                                  const std::optional<EarlierAttempt>& earlier = std::nullopt) {
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  FetchRetrier retrier(ctx);
  // Every recorded holder (alive, then suspect, then the others; docs/architecture.md "Holders
  // and retries"), then the recorded extra copies (evictable, so only after the regular ones),
  // then every other live peer in placement order (blobs can be found without the index).
  std::vector<PeerId> holders, extras, order;
  if (record) {
    holders = record->holders;
    SortHolders(ctx, id, peers, retrier.failures(), holders);
    for (PeerId p : record->extras)
      if (!Contains(holders, p)) extras.push_back(p);
    SortHolders(ctx, id, peers, retrier.failures(), extras);
  }
  order = holders;
  order.insert(order.end(), extras.begin(), extras.end());
  for (PeerId p : placement::PlacementOrder(id, LiveCandidates(peers), ctx.spread)) {
    if (!Contains(order, p)) order.push_back(p);
  }
  order.erase(std::remove(order.begin(), order.end(), ctx.owner), order.end());

  const BlobKey key{ctx.owner, id, 0};
  std::vector<std::string> errors;
  std::vector<PeerId> tried;
  bool corrupt = false;
  // Rounds: every candidate once, then again the ones that could not be reached, with backoff,
  // while the retry budget lasts (a restarted holder is reachable again once gRPC reconnects).
  std::vector<PeerId> round = order;
  std::vector<PeerId> again;
  if (earlier) {
    round.erase(std::remove(round.begin(), round.end(), earlier->peer), round.end());
    tried.push_back(earlier->peer);
    errors.push_back(absl::StrCat("peer ", earlier->peer, ": ", earlier->status.ToString()));
    corrupt = earlier->corrupt;
    if (retrier.WorthRetrying(earlier->peer, earlier->status)) again.push_back(earlier->peer);
  }
  while (true) {
    for (size_t i = 0; i < round.size(); ++i) {
      const PeerId peer = round[i];
      if (!Contains(tried, peer)) tried.push_back(peer);
      absl::StatusOr<Bytes> blob = absl::UnavailableError("unknown peer");
      if (auto client = ctx.peers->Client(peer)) blob = client->GetBlob(key);
      retrier.Note(peer, blob.status());
      if (blob.ok() && !record) {
        // Without the index the blob says how the chunk is stored: a shard means k+m shards.
        auto header = format::ParseBlobHeader(*blob);
        if (header.ok() && header->scheme == format::Scheme::kErasure &&
            header->owner == ctx.owner && header->chunk == id) {
          ShardFetch fetch(ctx, id);
          fetch.AddSeed(std::move(*blob), peer);
          auto opened = fetch.Run(/*rebuild=*/false);
          if (!opened.ok()) return opened.status();
          return std::move(opened->plaintext);
        }
      }
      if (blob.ok()) {
        auto plain = format::OpenChunk(ctx.keys, ctx.owner, id, *blob);
        if (plain.ok()) {
          if (!errors.empty()) {
            spdlog::info("chunk {}: fetched from peer {} after {} failed attempt(s)", id.ShortHex(),
                         peer, errors.size());
          }
          return std::move(*plain);
        }
        blob = plain.status();
        corrupt = true;
      } else if (blob.status().code() == absl::StatusCode::kDataLoss) {
        corrupt = true;
      }
      errors.push_back(absl::StrCat("peer ", peer, ": ", blob.status().ToString()));
      const bool holder = Contains(holders, peer) || Contains(extras, peer);
      if (retrier.WorthRetrying(peer, blob.status())) again.push_back(peer);
      if (holder && i + 1 < round.size()) {
        spdlog::warn("chunk {}: holder peer {} failed ({}); trying peer {}", id.ShortHex(), peer,
                     blob.status().ToString(), round[i + 1]);
      }
    }
    if (again.empty() || !retrier.Backoff()) break;
    spdlog::warn("chunk {}: retrying unreachable peer(s) {} (round {}, {} ms into the fetch)",
                 id.ShortHex(), PeerList(again), retrier.rounds(), retrier.Elapsed().count());
    round = std::move(again);
    again.clear();
  }
  if (!record) {
    // No copy (and no shard 0) anywhere: the chunk may be erasure-coded with shard 0 lost.
    ShardFetch fetch(ctx, id);
    auto opened = fetch.Run(/*rebuild=*/false);
    if (opened.ok()) return std::move(opened->plaintext);
    if (opened.status().code() == absl::StatusCode::kDataLoss) corrupt = true;
  }
  std::string msg =
      absl::StrCat("chunk ", id.ShortHex(), ": no copy could be read (holders ", PeerList(holders),
                   "; peers tried ", PeerList(tried), "; ",
                   errors.empty() ? std::string("no peers") : absl::StrJoin(errors, "; "), ")");
  spdlog::error("{}", msg);
  if (corrupt) return absl::DataLossError(msg);
  return absl::UnavailableError(msg);
}

}  // namespace

absl::StatusOr<format::OpenedShards> FetchShards(const EngineContext& ctx, const ChunkId& id,
                                                 const ports::ChunkRecord& record) {
  ShardFetch fetch(ctx, id);
  fetch.AddLocations(record.shards);
  return fetch.Run(/*rebuild=*/true);
}

absl::StatusOr<Bytes> FetchChunk(const EngineContext& ctx, const ChunkId& id) {
  CAIRN_ASSIGN_OR_RETURN(auto record, ctx.catalog->FindChunk(id));
  if (record && record->erasure()) {
    ShardFetch fetch(ctx, id);
    fetch.AddLocations(record->shards);
    CAIRN_ASSIGN_OR_RETURN(format::OpenedShards opened, fetch.Run(/*rebuild=*/false));
    return std::move(opened.plaintext);
  }
  return FetchCopies(ctx, id, record);
}

ChunkFetchInFlight StartFetchChunk(const EngineContext& ctx, const ChunkId& id,
                                   std::optional<ports::ChunkRecord> record) {
  ChunkFetchInFlight fetch{id, std::move(record), 0, std::nullopt};
  if (!fetch.record || fetch.record->erasure() || fetch.record->holders.empty()) return fetch;
  std::vector<PeerId> holders = fetch.record->holders;
  holders.erase(std::remove(holders.begin(), holders.end(), ctx.owner), holders.end());
  if (holders.empty()) return fetch;
  FetchRetrier retrier(ctx);
  SortHolders(ctx, id, ctx.peers->Peers(), retrier.failures(), holders);
  auto client = ctx.peers->Client(holders.front());
  if (!client) return fetch;
  fetch.peer = holders.front();
  fetch.answer = client->StartGetBlob(BlobKey{ctx.owner, id, 0});
  // An answer already there (a client that answers on the calling thread, or a peer that
  // refused at once) is noted now, so that the next chunks started ask the other holders first.
  if (fetch.answer->wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    absl::StatusOr<Bytes> blob = fetch.answer->get();
    retrier.Note(fetch.peer, blob.status());
    fetch.noted = true;
    std::promise<absl::StatusOr<Bytes>> ready;
    ready.set_value(std::move(blob));
    fetch.answer = ready.get_future();
  }
  return fetch;
}

absl::StatusOr<Bytes> FinishFetchChunk(const EngineContext& ctx, ChunkFetchInFlight& fetch) {
  if (fetch.answer) {
    absl::StatusOr<Bytes> blob = fetch.answer->get();
    fetch.answer.reset();
    FetchRetrier retrier(ctx);
    if (!fetch.noted) retrier.Note(fetch.peer, blob.status());
    EarlierAttempt earlier{fetch.peer, blob.status(),
                           blob.status().code() == absl::StatusCode::kDataLoss};
    if (blob.ok()) {
      auto plain = format::OpenChunk(ctx.keys, ctx.owner, fetch.id, *blob);
      if (plain.ok()) return std::move(*plain);
      earlier.status = plain.status();
      earlier.corrupt = true;
    }
    spdlog::warn("chunk {}: holder peer {} failed ({}); trying the others", fetch.id.ShortHex(),
                 fetch.peer, earlier.status.ToString());
    return FetchCopies(ctx, fetch.id, fetch.record, earlier);
  }
  if (fetch.record && fetch.record->erasure()) {
    ShardFetch shards(ctx, fetch.id);
    shards.AddLocations(fetch.record->shards);
    CAIRN_ASSIGN_OR_RETURN(format::OpenedShards opened, shards.Run(/*rebuild=*/false));
    return std::move(opened.plaintext);
  }
  return FetchCopies(ctx, fetch.id, fetch.record);
}

absl::StatusOr<StoreOutcome> StoreNewShards(const EngineContext& ctx, BlobKind kind,
                                            const format::PreparedChunk& prepared,
                                            const codec::ErasureScheme& scheme, uint32_t offsite) {
  CAIRN_ASSIGN_OR_RETURN(format::SealedShards sealed,
                         format::SealShards(ctx.keys, ctx.owner, prepared, scheme));
  return StoreShards(ctx, kind, sealed, {}, offsite);
}

absl::StatusOr<StoreOutcome> PutChunk(const EngineContext& ctx, BlobKind kind, const ChunkId& id,
                                      ByteSpan plaintext, const Redundancy& redundancy,
                                      const std::optional<ports::ChunkRecord>& known) {
  if (known && known->erasure()) {
    StoreOutcome as_is;
    as_is.shards = known->shards;
    as_is.holders = DistinctPeers(known->shards);
    as_is.at_target = known->AtTarget();
    std::set<uint32_t> indices;
    for (const auto& s : known->shards) indices.insert(s.shard);
    // Every shard placed (perhaps two on one peer): nothing a backup can add; moving shards
    // onto distinct peers is repair's work.
    if (indices.size() >= static_cast<size_t>(known->ec_k + known->ec_m)) return as_is;
    // Missing shards must belong to the seal already stored: rebuild them from k others.
    auto opened = FetchShards(ctx, id, *known);
    if (opened.ok()) {
      format::SealedShards sealed;
      sealed.id = id;
      sealed.plain_size = plaintext.size();
      sealed.scheme = {known->ec_k, known->ec_m};
      sealed.shards = std::move(opened->shards);
      auto stored = StoreShards(ctx, kind, sealed, known->shards, known->offsite);
      return stored.ok() ? stored : as_is;
    }
    // Fewer than k readable: the stored seal is lost; seal and store the chunk anew (shard
    // keys still held from the old seal are detected by StoreShards and avoided).
    CAIRN_ASSIGN_OR_RETURN(format::PreparedChunk prepared,
                           format::PrepareChunk(ctx.keys, kind, plaintext, &id));
    CAIRN_ASSIGN_OR_RETURN(
        format::SealedShards sealed,
        format::SealShards(ctx.keys, ctx.owner, prepared, {known->ec_k, known->ec_m}));
    auto stored = StoreShards(ctx, kind, sealed, {}, known->offsite);
    return stored.ok() ? stored : as_is;
  }
  CAIRN_ASSIGN_OR_RETURN(format::PreparedChunk prepared,
                         format::PrepareChunk(ctx.keys, kind, plaintext, &id));
  if (!known && redundancy.ec && prepared.body.size() >= format::kMinErasurePayload) {
    CAIRN_ASSIGN_OR_RETURN(format::SealedShards sealed,
                           format::SealShards(ctx.keys, ctx.owner, prepared, *redundancy.ec));
    return StoreShards(ctx, kind, sealed, {}, redundancy.offsite);
  }
  format::SealedChunk sealed = format::SealCopy(ctx.keys, ctx.owner, prepared);
  const uint32_t copies = redundancy.CopiesForCopiesChunk();
  return StoreChunk(
      ctx, kind, sealed, copies, known ? known->holders : std::vector<PeerId>{},
      std::min(copies, std::max<uint32_t>(redundancy.offsite, known ? known->offsite : 0)));
}

}  // namespace cairn::engine
