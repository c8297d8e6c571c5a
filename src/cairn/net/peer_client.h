// The gRPC implementation of the peer port (ports/peer_client.h): GrpcPeerClient (gRPC types
// stay inside net/) wrapped in RetryingPeerClient, which retries UNAVAILABLE and
// DEADLINE_EXCEEDED with exponential backoff and full jitter (AWS Architecture Blog,
// "Exponential Backoff And Jitter", 2015).
#pragma once

#include <chrono>
#include <memory>
#include <string>

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
};

// A gRPC client for the peer at `address` (host:port), wrapped in retries.
std::shared_ptr<PeerClient> NewGrpcPeerClient(const std::string& address,
                                              const ClientOptions& options = {});

// Wraps any client with retry/backoff on UNAVAILABLE and DEADLINE_EXCEEDED.
std::shared_ptr<PeerClient> NewRetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                                  const ClientOptions& options = {});

}  // namespace cairn::net
