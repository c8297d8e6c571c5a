// In-memory peers for engine tests: each fake peer is a store::MemBlobStore behind a
// PeerClient that calls it directly, with switches to make a peer unreachable or lose blobs.
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cairn/engine/peer_set.h"
#include "cairn/store/blob_store.h"

namespace cairn::engine::testing {

class FakePeerSet : public PeerSet {
 public:
  // Adds a peer with its own in-memory store of `quota` bytes.
  void AddPeer(PeerId id, const std::string& host, uint64_t quota);
  // An unreachable peer answers every call with UNAVAILABLE (and is still listed as alive,
  // as a peer that just died would be).
  void SetReachable(PeerId id, bool reachable);
  void SetAlive(PeerId id, bool alive);
  // The site Peers() reports for `id` (default "", the LAN).
  void SetSite(PeerId id, const std::string& site);
  // Peers() lists `id` as suspect (set alive to false as well for a peer that is only suspect).
  void SetSuspect(PeerId id, bool suspect);
  // Called before every GetBlob a peer serves (also those inside GetBlobs); a non-OK status is
  // answered instead of the blob, as a holder that restarted, lost the blob or corrupted it
  // would. Null (the default): no faults. May be called concurrently.
  using GetFault = std::function<absl::Status(PeerId peer, const BlobKey& key)>;
  void SetGetFault(GetFault fault);
  // GetBlob calls peer `id` answered or refused (reachable or not).
  uint64_t GetCalls(PeerId id);
  ports::BlobStore* Store(PeerId id);
  // Changes a peer's quota (its store's and the one Peers() reports).
  void SetQuota(PeerId id, uint64_t quota);
  // Calls made through Client() come from `caller` (0, the default: anyone; no owner checks on
  // DeleteBlobs/ListBlobs).
  void SetCaller(PeerId caller) { caller_ = caller; }
  // Registers an owner endpoint (not a storage peer: not listed by Peers()): BlobMoved calls to
  // `id` go to `handler` with the calling peer's id; its other calls are UNIMPLEMENTED.
  using MovedHandler =
      std::function<absl::Status(PeerId from, const std::vector<ports::MovedBlob>& moves)>;
  void AddOwner(PeerId id, MovedHandler handler);
  // The cluster as peer `self` sees it (a storage peer evacuating): every peer but `self`,
  // calls made as `self`. Valid while this set lives.
  std::unique_ptr<PeerSet> ViewFrom(PeerId self);
  // A client for `id` whose calls come from `caller`.
  std::shared_ptr<ports::PeerClient> ClientAs(PeerId id, PeerId caller);
  // Blob keys held by `id`.
  uint64_t BlobCount(PeerId id);

  std::vector<StoragePeer> Peers() override;
  std::shared_ptr<ports::PeerClient> Client(PeerId id) override;
  void ReportFailure(PeerId id) override;
  uint64_t failures() const { return failures_; }

 private:
  struct Peer;
  absl::Status GetFaultFor(PeerId id, const BlobKey& key);
  std::mutex mu_;
  std::map<PeerId, std::shared_ptr<Peer>> peers_;
  std::map<PeerId, MovedHandler> owners_;
  std::atomic<PeerId> caller_{0};
  std::atomic<uint64_t> failures_{0};
  std::shared_ptr<const GetFault> get_fault_;  // guarded by mu_
};

}  // namespace cairn::engine::testing
