#include "cairn/engine/testing/fake_peers.h"

#include "cairn/codec/checksum.h"

namespace cairn::engine::testing {

struct FakePeerSet::Peer {
  StoragePeer info;
  std::unique_ptr<ports::BlobStore> store;
  std::atomic<bool> reachable{true};
  std::atomic<uint64_t> get_calls{0};
};

namespace {

#define CAIRN_CHECK_REACHABLE() \
  if (!reachable_->load()) return Unreachable()

class LocalClient : public ports::PeerClient {
 public:
  // `caller`: the peer the calls come from (0: any, no owner checks).
  // `get_fault`: consulted before each GetBlob (FakePeerSet::SetGetFault); `get_calls` counts them.
  LocalClient(ports::BlobStore* store, std::atomic<bool>* reachable, PeerId id, PeerId caller,
              std::function<absl::Status(const BlobKey&)> get_fault,
              std::atomic<uint64_t>* get_calls)
      : store_(store),
        reachable_(reachable),
        id_(id),
        caller_(caller),
        get_fault_(std::move(get_fault)),
        get_calls_(get_calls) {}

  absl::StatusOr<ports::PingReply> Ping(const cluster::PeerInfo&,
                                        const std::vector<cluster::PeerInfo>&) override {
    CAIRN_CHECK_REACHABLE();
    ports::PingReply reply;
    reply.self.id = id_;
    return reply;
  }
  using ports::PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const ports::PutOptions& options) override {
    CAIRN_CHECK_REACHABLE();
    return store_->Put(key, blob, codec::BlobChecksum(blob), options);
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override {
    ++*get_calls_;
    CAIRN_CHECK_REACHABLE();
    absl::Status fault = get_fault_(key);
    if (!fault.ok()) return fault;
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
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
    CAIRN_CHECK_REACHABLE();
    for (const auto& k : keys) {
      if (caller_ != 0 && k.owner != caller_) {
        return absl::PermissionDeniedError("fake peer: DeleteBlobs of another owner's blob");
      }
    }
    uint64_t deleted = 0;
    for (const auto& k : keys) {
      auto has = store_->Has(k);
      if (!has.ok()) return has.status();
      if (!*has) continue;
      absl::Status st = store_->Delete(k);
      if (!st.ok()) return st;
      ++deleted;
    }
    return deleted;
  }
  absl::StatusOr<ports::BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                                size_t limit) override {
    CAIRN_CHECK_REACHABLE();
    if (caller_ != 0 && owner != caller_) {
      return absl::PermissionDeniedError("fake peer: ListBlobs of another owner");
    }
    auto records = store_->ListOwner(owner, after, limit + 1);
    if (!records.ok()) return records.status();
    ports::BlobListPage page;
    page.more = records->size() > limit;
    if (page.more) records->resize(limit);
    page.blobs = std::move(*records);
    return page;
  }
  absl::Status BlobMoved(std::span<const ports::MovedBlob>) override {
    CAIRN_CHECK_REACHABLE();
    return absl::UnimplementedError("fake storage peer: BlobMoved goes to an owner");
  }

 private:
  absl::Status Unreachable() const {
    return absl::UnavailableError("fake peer " + std::to_string(id_) + " is unreachable");
  }
  ports::BlobStore* store_;
  std::atomic<bool>* reachable_;
  PeerId id_;
  PeerId caller_;
  std::function<absl::Status(const BlobKey&)> get_fault_;
  std::atomic<uint64_t>* get_calls_;
};

// The owner's end of BlobMoved (FakePeerSet::AddOwner).
class OwnerClient : public ports::PeerClient {
 public:
  explicit OwnerClient(PeerId caller, FakePeerSet::MovedHandler handler)
      : caller_(caller), handler_(std::move(handler)) {}
  absl::StatusOr<ports::PingReply> Ping(const cluster::PeerInfo&,
                                        const std::vector<cluster::PeerInfo>&) override {
    return ports::PingReply{};
  }
  using ports::PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey&, ByteSpan,
                                            const ports::PutOptions&) override {
    return absl::UnimplementedError("fake owner");
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey&) override {
    return absl::UnimplementedError("fake owner");
  }
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey>) override {
    return absl::UnimplementedError("fake owner");
  }
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey>) override {
    return absl::UnimplementedError("fake owner");
  }
  absl::StatusOr<ports::BlobListPage> ListBlobs(PeerId, const std::optional<BlobKey>&,
                                                size_t) override {
    return absl::UnimplementedError("fake owner");
  }
  absl::Status BlobMoved(std::span<const ports::MovedBlob> moves) override {
    return handler_(caller_, std::vector<ports::MovedBlob>(moves.begin(), moves.end()));
  }

 private:
  PeerId caller_;
  FakePeerSet::MovedHandler handler_;
};

}  // namespace

void FakePeerSet::AddPeer(PeerId id, const std::string& host, uint64_t quota) {
  auto p = std::make_shared<Peer>();
  p->info = StoragePeer();
  p->info.id = id;
  p->info.host = host;
  p->info.quota = quota;
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

void FakePeerSet::SetSite(PeerId id, const std::string& site) {
  std::lock_guard lock(mu_);
  peers_.at(id)->info.site = site;
}

void FakePeerSet::SetSuspect(PeerId id, bool suspect) {
  std::lock_guard lock(mu_);
  peers_.at(id)->info.suspect = suspect;
}

void FakePeerSet::SetGetFault(GetFault fault) {
  auto shared = fault ? std::make_shared<const GetFault>(std::move(fault)) : nullptr;
  std::lock_guard lock(mu_);
  get_fault_ = std::move(shared);
}

absl::Status FakePeerSet::GetFaultFor(PeerId id, const BlobKey& key) {
  std::shared_ptr<const GetFault> fault;
  {
    std::lock_guard lock(mu_);
    fault = get_fault_;
  }
  return fault ? (*fault)(id, key) : absl::OkStatus();
}

uint64_t FakePeerSet::GetCalls(PeerId id) {
  std::lock_guard lock(mu_);
  return peers_.at(id)->get_calls.load();
}

ports::BlobStore* FakePeerSet::Store(PeerId id) {
  std::lock_guard lock(mu_);
  return peers_.at(id)->store.get();
}

uint64_t FakePeerSet::BlobCount(PeerId id) { return Store(id)->Stats().blobs; }

std::vector<StoragePeer> FakePeerSet::Peers() {
  std::lock_guard lock(mu_);
  std::vector<StoragePeer> out;
  for (auto& [id, p] : peers_) {
    StoragePeer s = p->info;
    ports::StoreStats st = p->store->Stats();
    s.used = st.used;
    s.extra = st.extra_bytes;
    out.push_back(s);
  }
  return out;
}

std::shared_ptr<ports::PeerClient> FakePeerSet::Client(PeerId id) { return ClientAs(id, caller_); }

std::shared_ptr<ports::PeerClient> FakePeerSet::ClientAs(PeerId id, PeerId caller) {
  std::lock_guard lock(mu_);
  auto owner = owners_.find(id);
  if (owner != owners_.end()) return std::make_shared<OwnerClient>(caller, owner->second);
  auto it = peers_.find(id);
  if (it == peers_.end()) return nullptr;
  auto peer = it->second;
  // Peers are never removed, so the raw pointers stay valid for the set's lifetime.
  return std::make_shared<LocalClient>(
      peer->store.get(), &peer->reachable, id, caller,
      [this, id](const BlobKey& key) { return GetFaultFor(id, key); }, &peer->get_calls);
}

void FakePeerSet::SetQuota(PeerId id, uint64_t quota) {
  std::lock_guard lock(mu_);
  auto& p = peers_.at(id);
  p->info.quota = quota;
  (void)p->store->SetQuota(quota);
}

void FakePeerSet::AddOwner(PeerId id, MovedHandler handler) {
  std::lock_guard lock(mu_);
  owners_[id] = std::move(handler);
}

namespace {
// FakePeerSet::ViewFrom.
class PeerView : public PeerSet {
 public:
  PeerView(FakePeerSet* set, PeerId self) : set_(set), self_(self) {}
  std::vector<StoragePeer> Peers() override {
    std::vector<StoragePeer> out;
    for (auto& p : set_->Peers()) {
      if (p.id != self_) out.push_back(p);
    }
    return out;
  }
  std::shared_ptr<ports::PeerClient> Client(PeerId id) override {
    return id == self_ ? nullptr : set_->ClientAs(id, self_);
  }
  void ReportFailure(PeerId id) override { set_->ReportFailure(id); }

 private:
  FakePeerSet* set_;
  PeerId self_;
};
}  // namespace

std::unique_ptr<PeerSet> FakePeerSet::ViewFrom(PeerId self) {
  return std::make_unique<PeerView>(this, self);
}

void FakePeerSet::ReportFailure(PeerId) { ++failures_; }

}  // namespace cairn::engine::testing
