#include "cairn/engine/testing/fake_peers.h"

#include "cairn/codec/checksum.h"

namespace cairn::engine::testing {

struct FakePeerSet::Peer {
  StoragePeer info;
  std::unique_ptr<store::BlobStore> store;
  std::atomic<bool> reachable{true};
};

namespace {

#define CAIRN_CHECK_REACHABLE() \
  if (!reachable_->load()) return Unreachable()

class LocalClient : public net::PeerClient {
 public:
  LocalClient(store::BlobStore* store, std::atomic<bool>* reachable, PeerId id)
      : store_(store), reachable_(reachable), id_(id) {}

  absl::StatusOr<net::PingReply> Ping(const cluster::PeerInfo&,
                                      const std::vector<cluster::PeerInfo>&) override {
    CAIRN_CHECK_REACHABLE();
    net::PingReply reply;
    reply.self.id = id_;
    return reply;
  }
  absl::StatusOr<store::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob) override {
    CAIRN_CHECK_REACHABLE();
    return store_->Put(key, blob, codec::BlobChecksum(blob));
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override {
    CAIRN_CHECK_REACHABLE();
    return store_->Get(key);
  }
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
    CAIRN_CHECK_REACHABLE();
    std::vector<bool> out;
    for (const auto& k : keys) {
      auto has = store_->Has(k);
      out.push_back(has.ok() && *has);
    }
    return out;
  }

 private:
  absl::Status Unreachable() const {
    return absl::UnavailableError("fake peer " + std::to_string(id_) + " is unreachable");
  }
  store::BlobStore* store_;
  std::atomic<bool>* reachable_;
  PeerId id_;
};

}  // namespace

void FakePeerSet::AddPeer(PeerId id, const std::string& host, uint64_t quota) {
  auto p = std::make_shared<Peer>();
  p->info = {id, host, quota, 0, true};
  p->store = store::NewMemBlobStore(quota);
  std::lock_guard lock(mu_);
  peers_[id] = p;
}

void FakePeerSet::SetReachable(PeerId id, bool reachable) {
  std::lock_guard lock(mu_);
  peers_.at(id)->reachable = reachable;
}

void FakePeerSet::SetAlive(PeerId id, bool alive) {
  std::lock_guard lock(mu_);
  peers_.at(id)->info.alive = alive;
}

store::BlobStore* FakePeerSet::Store(PeerId id) {
  std::lock_guard lock(mu_);
  return peers_.at(id)->store.get();
}

uint64_t FakePeerSet::BlobCount(PeerId id) { return Store(id)->Stats().blobs; }

std::vector<StoragePeer> FakePeerSet::Peers() {
  std::lock_guard lock(mu_);
  std::vector<StoragePeer> out;
  for (auto& [id, p] : peers_) {
    StoragePeer s = p->info;
    s.used = p->store->Stats().used;
    out.push_back(s);
  }
  return out;
}

std::shared_ptr<net::PeerClient> FakePeerSet::Client(PeerId id) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return nullptr;
  auto peer = it->second;
  // Peers are never removed, so the raw pointers stay valid for the set's lifetime.
  return std::make_shared<LocalClient>(peer->store.get(), &peer->reachable, id);
}

void FakePeerSet::ReportFailure(PeerId) { ++failures_; }

}  // namespace cairn::engine::testing
