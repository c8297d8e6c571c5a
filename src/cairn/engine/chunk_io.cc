#include "cairn/engine/chunk_io.h"

#include <algorithm>
#include <future>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/status.h"

namespace cairn::engine {
namespace {

std::vector<placement::Candidate> LiveCandidates(const std::vector<StoragePeer>& peers) {
  std::vector<placement::Candidate> out;
  for (const auto& p : peers) {
    if (!p.alive) continue;
    out.push_back({p.id, p.host, static_cast<double>(std::max<uint64_t>(p.quota, 1))});
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

}  // namespace

absl::StatusOr<StoreOutcome> StoreChunk(const EngineContext& ctx, BlobKind kind,
                                        const format::SealedChunk& sealed, uint32_t copies,
                                        const std::vector<PeerId>& existing_holders) {
  StoreOutcome out;
  out.holders = existing_holders;
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  std::vector<placement::Candidate> candidates = LiveCandidates(peers);
  std::vector<PeerId> order = placement::PlacementOrder(sealed.id, candidates, ctx.spread);
  std::vector<std::string> errors;
  const BlobKey key{ctx.owner, sealed.id, 0};
  // Rounds: send to as many peers at once as copies are still missing, in placement order;
  // peers that fail or are full are replaced by the next ones in the next round. The copies
  // of one chunk thus travel in parallel (each storage peer's fsyncs overlap).
  size_t next = 0;
  while (out.holders.size() < copies && next < order.size()) {
    std::vector<std::pair<PeerId, std::shared_ptr<net::PeerClient>>> round;
    while (round.size() + out.holders.size() < copies && next < order.size()) {
      PeerId peer = order[next++];
      if (peer == ctx.owner || Contains(out.holders, peer)) continue;
      auto it = std::find_if(peers.begin(), peers.end(), [&](const StoragePeer& p) { return p.id == peer; });
      if (it != peers.end() && it->quota > 0 && it->used + sealed.blob.size() > it->quota) {
        errors.push_back(absl::StrCat("peer ", peer, ": full"));
        continue;
      }
      auto client = ctx.peers->Client(peer);
      if (!client) continue;
      round.emplace_back(peer, std::move(client));
    }
    std::vector<std::future<absl::StatusOr<store::PutOutcome>>> pending;
    for (size_t i = 1; i < round.size(); ++i) {
      pending.push_back(std::async(std::launch::async, [&, i] { return round[i].second->PutBlob(key, sealed.blob); }));
    }
    std::vector<absl::StatusOr<store::PutOutcome>> results;
    if (!round.empty()) results.push_back(round[0].second->PutBlob(key, sealed.blob));
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
      if (*put == store::PutOutcome::kStored) {
        out.sent_bytes += sealed.blob.size();
        ++out.new_copies;
      }
    }
  }
  if (out.holders.empty()) {
    return absl::UnavailableError(
        absl::StrCat("chunk ", sealed.id.ShortHex(), " could not be stored on any peer (",
                     order.empty() ? std::string("no live peers")
                                   : absl::StrJoin(errors, "; "),
                     ")"));
  }
  std::sort(out.holders.begin(), out.holders.end());
  index::ChunkRecord record;
  record.id = sealed.id;
  record.kind = kind;
  record.plain_size = sealed.plain_size;
  record.blob_size = sealed.blob.size();
  record.target = copies;
  record.holders = out.holders;
  CAIRN_RETURN_IF_ERROR(
      Annotate(ctx.catalog->AddChunk(record), "record chunk " + sealed.id.ShortHex()));
  return out;
}

absl::StatusOr<Bytes> FetchChunk(const EngineContext& ctx, const ChunkId& id) {
  CAIRN_ASSIGN_OR_RETURN(auto record, ctx.catalog->FindChunk(id));
  std::vector<StoragePeer> peers = ctx.peers->Peers();
  auto is_alive = [&](PeerId p) {
    auto it = std::find_if(peers.begin(), peers.end(), [&](const StoragePeer& s) { return s.id == p; });
    return it != peers.end() && it->alive;
  };
  // Recorded holders that are alive; then every other live peer in placement order (blobs can
  // be found without the index); last, holders that are not known to be alive (a suspect
  // peer may still answer, but should not make every read wait on its timeouts first).
  std::vector<PeerId> tried_order, unresponsive;
  if (record) {
    for (PeerId p : record->holders) (is_alive(p) ? tried_order : unresponsive).push_back(p);
  }
  for (PeerId p : placement::PlacementOrder(id, LiveCandidates(peers), ctx.spread)) {
    if (!Contains(tried_order, p) && !Contains(unresponsive, p)) tried_order.push_back(p);
  }
  tried_order.insert(tried_order.end(), unresponsive.begin(), unresponsive.end());
  const BlobKey key{ctx.owner, id, 0};
  std::vector<std::string> errors;
  bool corrupt = false;
  for (PeerId peer : tried_order) {
    if (peer == ctx.owner) continue;
    auto client = ctx.peers->Client(peer);
    if (!client) {
      errors.push_back(absl::StrCat("peer ", peer, ": unknown"));
      continue;
    }
    auto blob = client->GetBlob(key);
    if (!blob.ok()) {
      if (Retryable(blob.status())) ctx.peers->ReportFailure(peer);
      if (blob.status().code() == absl::StatusCode::kDataLoss) corrupt = true;
      errors.push_back(absl::StrCat("peer ", peer, ": ", blob.status().ToString()));
      continue;
    }
    auto plain = format::OpenChunk(ctx.keys, ctx.owner, id, *blob);
    if (!plain.ok()) {
      corrupt = true;
      errors.push_back(absl::StrCat("peer ", peer, ": ", plain.status().ToString()));
      continue;
    }
    return std::move(*plain);
  }
  std::string msg = absl::StrCat("chunk ", id.ShortHex(), ": no copy could be read (",
                                 errors.empty() ? std::string("no peers") : absl::StrJoin(errors, "; "), ")");
  if (corrupt) return absl::DataLossError(msg);
  return absl::UnavailableError(msg);
}

}  // namespace cairn::engine
