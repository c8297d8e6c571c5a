// The gRPC peer service (proto/cairn/v1/peer.proto) in front of a BlobStore and Membership.
// Malformed requests get INVALID_ARGUMENT; garbage on the port is dropped by gRPC's HTTP/2
// layer; the server keeps serving either way. Max message size fits the largest blob.
//
// Every call is authenticated before anything else (docs/protocol.md "Authentication"): a
// call without a valid x-cairn-auth header gets UNAUTHENTICATED and nothing is read, written or
// recorded (no membership update, no peer list, no blob). Then the caller's peer id must be
// pinned to the node id it presents (Membership's NodePins, pinned on first contact): another
// node gets ALREADY_EXISTS "peer id N belongs to another node". Answers to authenticated calls
// carry a reply MAC (x-cairn-auth-reply); the messages of a streamed answer (GetBlobs) carry one
// each, bound to their place in the stream (docs/protocol.md "Batches").
//
// Thread-safety: thread-safe; gRPC's sync server runs handlers on its own thread pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/cluster/membership.h"
#include "cairn/cluster/rpc_auth.h"
#include "cairn/net/peer_client.h"
#include "cairn/store/blob_store.h"

namespace cairn::net {

struct PeerServerSecurity {
  // Required: verifies every call and signs every answer (this peer's identity and cluster key).
  std::shared_ptr<cluster::RpcAuth> auth;
  // Called (from a handler thread) when a Ping shows that this process is the newer of two
  // processes with one peer id: the other one was running first and keeps the id.
  std::function<void(const absl::Status&)> on_conflict;
  // Called for an authenticated BlobMoved from peer `from` (this peer is the owner of every
  // key; the server checked that). Its status is the call's answer. Null: UNIMPLEMENTED.
  std::function<absl::Status(PeerId from, const std::vector<MovedBlob>& moves)> on_blobs_moved;
  // Called (from a handler thread) when a call has been answered: its gRPC method name
  // ("/cairn.v1.Peer/Ping"), status code (grpc::StatusCode; 0 = OK) and the time since it
  // arrived. For the per-RPC metrics (docs/operations.md "Monitoring"). Null: not called.
  std::function<void(const char* method, int code, std::chrono::nanoseconds elapsed)> on_call;
  // TLS (net/tls.h; docs/security.md "TLS between peers"): the server presents this
  // certificate and asks each client for its own; a call from another peer is then refused
  // PERMISSION_DENIED unless the client presented a certificate, and one matching the pin of
  // the peer id the call authenticated as (Membership's CertPins, pinned on first contact).
  // check_server is not used here. Null: plaintext (for tests).
  std::shared_ptr<const TlsOptions> tls;
};

class PeerServer {
 public:
  // Listens on `listen_address` (host:port; port 0 picks a free port). `store` and
  // `membership` must outlive the server. UNAVAILABLE if the address cannot be bound
  // (in use, not a local address); INVALID_ARGUMENT if it is not host:port with a port 0-65535,
  // or `security.auth` is null.
  static absl::StatusOr<std::unique_ptr<PeerServer>> Start(const std::string& listen_address,
                                                           ports::BlobStore* store,
                                                           cluster::Membership* membership,
                                                           PeerServerSecurity security);
  virtual ~PeerServer() = default;
  // The port actually bound.
  virtual int port() const = 0;
  // Stops accepting calls and waits for running ones (bounded by `grace`).
  virtual void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) = 0;
};

}  // namespace cairn::net
