// The gRPC implementation of the peer port (ports/peer_client.h): GrpcPeerClient (gRPC types
// stay inside net/) wrapped in RetryingPeerClient, which retries UNAVAILABLE and
// DEADLINE_EXCEEDED with exponential backoff and full jitter (AWS Architecture Blog,
// "Exponential Backoff And Jitter", 2015).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "cairn/cluster/rpc_auth.h"
#include "cairn/ports/peer_client.h"

namespace cairn::net {

// The port's types, under the names net/ has always used for them.
using ports::BlobListPage;
using ports::BlobPut;
using ports::kMaxBatchBytes;
using ports::kMaxBlobsPerBatch;
using ports::kMaxKeysPerCall;
using ports::MovedBlob;
using ports::PeerClient;
using ports::PingReply;

// TLS for peer connections (net/tls.h; docs/security.md "TLS between peers").
struct TlsOptions {
  // This peer's certificate and private key (PEM), presented to both clients and servers.
  std::string cert_pem;
  std::string key_pem;
  // Client side, during the handshake: the address dialed and the fingerprint of the
  // certificate the server presented (cluster/tls_identity.h). Non-OK refuses the connection,
  // and calls on it fail with this status (PERMISSION_DENIED with its message, not retried).
  // Null: any certificate is accepted (authentication is then the cluster key's alone).
  std::function<absl::Status(const std::string& address, const std::string& fingerprint)>
      check_server;
};

struct ClientOptions {
  std::chrono::milliseconds ping_deadline{3000};
  std::chrono::milliseconds blob_deadline{60000};
  int max_attempts = 4;  // including the first
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  // Cluster authentication (docs/protocol.md "Authentication"): every call is signed with it
  // and every answer must carry a valid reply MAC (else UNAUTHENTICATED, not retried). Null:
  // calls go out unauthenticated (a cluster member refuses them; for tests).
  std::shared_ptr<const cluster::RpcAuth> auth;
  // TLS (docs/protocol.md "Transport"): this peer's certificate and the check of the server's.
  // Null: plaintext (a TLS peer server refuses it; for tests).
  std::shared_ptr<const TlsOptions> tls;
};

// A gRPC client for the peer at `address` (host:port), wrapped in retries.
std::shared_ptr<PeerClient> NewGrpcPeerClient(const std::string& address,
                                              const ClientOptions& options = {});

// Wraps any client with retry/backoff on UNAVAILABLE and DEADLINE_EXCEEDED.
std::shared_ptr<PeerClient> NewRetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                                  const ClientOptions& options = {});

}  // namespace cairn::net
