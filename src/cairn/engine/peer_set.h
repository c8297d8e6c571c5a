// PeerSet: the narrow view of the cluster the engines need — who can store blobs and how to
// call them. The daemon implements it over Membership and gRPC clients; tests use in-memory
// peers (engine/testing/fake_peers.h).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/ids.h"
#include "cairn/ports/peer_client.h"

namespace cairn::engine {

struct StoragePeer {
  PeerId id = 0;
  std::string host;
  // Site label (docs/operations.md "Sites and off-site copies"); "" = the LAN site.
  std::string site;
  uint64_t quota = 0;  // bytes; the placement weight
  uint64_t used = 0;
  bool alive = true;
  uint64_t extra = 0;  // of used: extra copies, which a regular put evicts (store/blob_store.h)
  // Not alive but heard from lately (docs/architecture.md "Membership": missed pings, or a call
  // that failed): may still answer. A peer neither alive nor suspect is dead.
  bool suspect = false;
  // Bytes it may still write on its disk (free space minus a reserve); nullopt when unknown.
  // Extra copies do not give way to it (docs/operations.md "A full disk").
  std::optional<uint64_t> disk_room;
};

class PeerSet {
 public:
  virtual ~PeerSet() = default;
  // Every known peer except this one (the home peer never stores its own blobs).
  virtual std::vector<StoragePeer> Peers() = 0;
  // A client for `id`, or nullptr when the peer is unknown.
  virtual std::shared_ptr<ports::PeerClient> Client(PeerId id) = 0;
  // A call to `id` failed with UNAVAILABLE/DEADLINE_EXCEEDED after retries.
  virtual void ReportFailure(PeerId /*id*/) {}
};

}  // namespace cairn::engine
