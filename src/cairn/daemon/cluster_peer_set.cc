#include "cairn/daemon/cluster_peer_set.h"

#include <optional>
#include <utility>

namespace cairn::daemon {

ClusterPeerSet::ClusterPeerSet(cluster::Membership* membership, ClientFactory factory)
    : membership_(membership), factory_(std::move(factory)) {
  if (!factory_) {
    factory_ = [](const std::string& address) { return net::NewGrpcPeerClient(address); };
  }
}

std::vector<engine::StoragePeer> ClusterPeerSet::Peers() {
  std::vector<engine::StoragePeer> out;
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (v.self || v.info.id == membership_->self().id) continue;
    engine::StoragePeer p;
    p.id = v.info.id;
    p.host = v.info.host_id;
    p.site = v.info.site;
    p.quota = v.info.quota;
    p.used = v.info.used;
    p.extra = v.info.extra;
    p.disk_room = v.info.disk_room;
    p.alive = v.state == cluster::PeerState::kAlive;
    p.suspect = v.state == cluster::PeerState::kSuspect;
    out.push_back(std::move(p));
  }
  return out;
}

std::shared_ptr<net::PeerClient> ClusterPeerSet::Client(PeerId id) {
  std::optional<cluster::PeerView> view = membership_->Find(id);
  if (!view || view->info.address.empty()) return nullptr;
  return ClientForAddress(view->info.address);
}

std::shared_ptr<net::PeerClient> ClusterPeerSet::ClientForAddress(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(address);
  if (it != clients_.end()) return it->second;
  std::shared_ptr<net::PeerClient> client = factory_(address);
  clients_.emplace(address, client);
  return client;
}

void ClusterPeerSet::ReportFailure(PeerId id) { membership_->ReportFailure(id); }

}  // namespace cairn::daemon
