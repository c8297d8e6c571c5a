// engine::PeerSet over the cluster Membership and gRPC peer clients: the daemon's view of
// which peers can store this owner's blobs (docs/architecture.md "Placement", "Membership").
//
// Peers(): every known peer except this one, alive only when its membership state is alive.
// Client(id): one cached client per address (a peer that moves to a new address gets a new
// client). ReportFailure(): forwarded to Membership (counted for `cairn peers`).
//
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/cluster/membership.h"
#include "cairn/engine/peer_set.h"
#include "cairn/net/peer_client.h"

namespace cairn::daemon {

// Makes a client for an address; the default is net::NewGrpcPeerClient.
using ClientFactory = std::function<std::shared_ptr<net::PeerClient>(const std::string& address)>;

class ClusterPeerSet : public engine::PeerSet {
 public:
  // `membership` must outlive this object.
  ClusterPeerSet(cluster::Membership* membership, ClientFactory factory);

  std::vector<engine::StoragePeer> Peers() override;
  std::shared_ptr<net::PeerClient> Client(PeerId id) override;
  void ReportFailure(PeerId id) override;

  // The cached client for `address` (made on first use).
  std::shared_ptr<net::PeerClient> ClientForAddress(const std::string& address);

 private:
  cluster::Membership* membership_;
  ClientFactory factory_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<net::PeerClient>> clients_;  // by address
};

}  // namespace cairn::daemon
