// TLS for peer connections (docs/security.md "TLS between peers", docs/protocol.md
// "Transport"): gRPC's TLS credentials with each peer's self-signed certificate
// (cluster/tls_identity.h). Nobody checks certificate chains, names or dates; the client checks
// the server's certificate fingerprint against the pin of the peer it dials (check_server),
// and the server asks every client for its certificate, which the peer service then checks
// against the pin of the peer id the call authenticated as (peer_server.h).
//
// TLS versions: gRPC 1.51's TlsCredentialsOptions does not expose its minimum version (its
// internal default is TLS 1.2, maximum TLS 1.3); both ends are cairn with OpenSSL 3, so the
// handshake settles on TLS 1.3 (tests/cluster/test_tls.py checks what a peer negotiates).
//
// Internal to net/. Thread-safety: the credentials are immutable; TlsRefusals is thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cairn/net/peer_client.h"  // TlsOptions

namespace cairn::net {

// The last handshake a client refused, so that its calls can say why (gRPC itself reports a
// failed handshake as UNAVAILABLE without the verifier's message).
class TlsRefusals {
 public:
  void Set(absl::Status refusal);
  void Clear();
  // The refusal recorded since the last successful handshake, if any.
  std::optional<absl::Status> Last() const;

 private:
  mutable std::mutex mu_;
  std::optional<absl::Status> last_;
};

// Server credentials: presents `options`' certificate; asks the client for one without
// verifying it (the peer service pins it).
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& options);

// Channel credentials for `address`: presents `options`' certificate; checks the server's with
// options.check_server, recording refusals in `refusals` (may be null).
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsOptions& options, const std::string& address, std::shared_ptr<TlsRefusals> refusals);

// The fingerprint of the certificate the other end of a connection presented; nullopt when it
// presented none (or the connection is not TLS).
std::optional<std::string> PeerCertFingerprint(const grpc::AuthContext* context);

}  // namespace cairn::net
