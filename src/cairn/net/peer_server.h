// The gRPC peer service (proto/cairn/v1/peer.proto) in front of a BlobStore and Membership.
// Malformed requests get INVALID_ARGUMENT; garbage on the port is dropped by gRPC's HTTP/2
// layer; the server keeps serving either way. Max message size fits the largest blob.
//
// Thread-safety: thread-safe; gRPC's sync server runs handlers on its own thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/cluster/membership.h"
#include "cairn/store/blob_store.h"

namespace cairn::net {

class PeerServer {
 public:
  // Listens on `listen_address` (host:port; port 0 picks a free port). `store` and
  // `membership` must outlive the server. UNAVAILABLE if the address cannot be bound
  // (in use, not a local address); INVALID_ARGUMENT if it is not host:port with a port 0-65535.
  static absl::StatusOr<std::unique_ptr<PeerServer>> Start(const std::string& listen_address,
                                                           store::BlobStore* store,
                                                           cluster::Membership* membership);
  virtual ~PeerServer() = default;
  // The port actually bound.
  virtual int port() const = 0;
  // Stops accepting calls and waits for running ones (bounded by `grace`).
  virtual void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) = 0;
};

}  // namespace cairn::net
