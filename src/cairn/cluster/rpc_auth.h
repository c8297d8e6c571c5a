// Per-call authentication of the peer protocol with the cluster key (docs/protocol.md
// "Authentication"; docs/security.md). Pure logic: net/ carries the values in
// gRPC metadata and computes the body hashes.
//
// Request (client -> server), metadata `x-cairn-auth`:
//   "v2 <peer id> <node id> <unix seconds> <nonce: 32 hex> <call mac: 64 hex> <mac: 64 hex>"
//   call mac = HMAC-SHA256(rpc key, "cairn-rpc-call-v1" 0x00 || u32be(len(method)) || method ||
//                          u64be(peer id) || node id[16] || i64be(unix seconds) || nonce[16])
//   mac = HMAC-SHA256(rpc key, "cairn-rpc-request-v1" 0x00 || u32be(len(method)) || method ||
//                     u64be(peer id) || node id[16] || i64be(unix seconds) || nonce[16] ||
//                     body hash[32])
// Reply (server -> client), trailing metadata `x-cairn-auth-reply`:
//   "v1 <peer id> <node id> <mac: 64 hex>"
//   mac = HMAC-SHA256(rpc key, "cairn-rpc-reply-v1" 0x00 || u32be(len(method)) || method ||
//                     request nonce[16] || u64be(peer id) || node id[16] || i32be(status code) ||
//                     u32be(len(message)) || message || body hash[32])
// `method` is the full gRPC method ("/cairn.v1.Peer/Ping"); the body hash is SHA-256 of the
// deterministic protobuf serialization of the request (reply: of the response, or of nothing
// for an error). The rpc key is the HKDF subkey of the cluster key (cluster_key.h).
//
// The call mac covers the metadata alone, so that a server checks it before it reads the body
// (docs/security.md "What an unauthenticated client can do"): PreVerifyRequest. A request
// verifies when the header parses, the call mac matches (constant-time), its time is within
// ±max_skew of this peer's clock, its nonce was not seen before (PreVerifyRequest claims it,
// so one header admits at most one body) and then the mac matches the body
// (VerifyRequestBody). Nonces are
// remembered until their time is max_skew in the past (then the time check refuses them
// anyway), at most max_nonces of them: when full, new calls are refused (UNAVAILABLE, which
// clients retry) rather than forgetting a nonce that could still be replayed.
//
// Thread-safety: thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/env/clock.h"

namespace cairn::cluster {

using Digest = std::array<uint8_t, 32>;
using CallNonce = std::array<uint8_t, 16>;

inline constexpr char kAuthMetadataKey[] = "x-cairn-auth";
inline constexpr char kAuthReplyMetadataKey[] = "x-cairn-auth-reply";

// Who a peer is: its peer id and node id (32 hex characters).
struct NodeIdentity {
  PeerId peer_id = 0;
  std::string node_id;
  bool operator==(const NodeIdentity&) const = default;
};

struct RpcAuthOptions {
  std::chrono::seconds max_skew{300};
  size_t max_nonces = size_t{1} << 20;
};

struct SignedRequest {
  std::string header;  // the x-cairn-auth value
  CallNonce nonce{};   // needed to check the reply
};

struct VerifiedRequest {
  NodeIdentity caller;
  CallNonce nonce{};
  // The caller's clock minus this peer's, in seconds, as measured from the request's time on
  // arrival (so it includes the network delay, well under a second on a LAN).
  int64_t clock_offset_seconds = 0;
};

// The message of the UNAUTHENTICATED answer to a member whose clock is more than `max_skew`
// seconds off (docs/protocol.md "Authentication"): names the offset, which side is ahead and
// the window, and ParseClockSkew reads the offset back from it. `caller_minus_callee` is in
// seconds.
std::string ClockSkewMessage(int64_t caller_minus_callee, int64_t max_skew);
// The caller-minus-callee offset (seconds) named by a ClockSkewMessage inside `message`;
// nullopt when `message` has none.
std::optional<int64_t> ParseClockSkew(std::string_view message);

// Client side: marks the error `status` of a call as answered by `callee`, whose reply MAC
// verified (an absl::Status payload; it survives Annotate and WithMessage, base/status.h). The
// daemon uses it to tell which member refused a ping because of the clocks (docs/operations.md
// "When a peer's clock is off"). OK statuses are left alone.
void SetSignedBy(absl::Status* status, const NodeIdentity& callee);
// The member SetSignedBy named on `status`; nullopt when none (e.g. an unsigned transport error,
// or an error answer whose MAC did not verify).
std::optional<NodeIdentity> SignedBy(const absl::Status& status);

class RpcAuth {
 public:
  // `self` is this peer (its node id must be valid, IsValidNodeId); `clock` must outlive this.
  RpcAuth(const ClusterKey& key, NodeIdentity self, env::Clock* clock, RpcAuthOptions options = {});

  const NodeIdentity& self() const { return self_; }

  // Client side: the header for one call of `method` whose request hashes to `body_hash`, with
  // a fresh random nonce and the current time.
  SignedRequest SignRequest(std::string_view method, const Digest& body_hash) const;

  // Server side, before the body is read: checks the header's form, its call mac, its time and
  // claims its nonce. UNAUTHENTICATED when the header is missing or malformed (an x-cairn-auth
  // v1 header of an older cairn says so), the call mac does not match (another cluster key, or
  // anything altered), the nonce was seen before (a replay), or the time is off by more than
  // max_skew; UNAVAILABLE when the replay cache is full. The message names the reason but
  // never anything about this peer or the cluster, except that for a member (call mac valid)
  // whose clock is off it is a ClockSkewMessage, and `*skewed` (when not null) receives the
  // caller and its offset.
  absl::StatusOr<VerifiedRequest> PreVerifyRequest(std::string_view method, std::string_view header,
                                                   VerifiedRequest* skewed = nullptr);
  // Server side, once the body is read: the header's mac against `body_hash`, for a header
  // PreVerifyRequest accepted. UNAUTHENTICATED when it does not match (another body, method
  // or caller than the one signed).
  absl::Status VerifyRequestBody(std::string_view method, std::string_view header,
                                 const Digest& body_hash) const;
  // Both checks at once (PreVerifyRequest, then VerifyRequestBody).
  absl::StatusOr<VerifiedRequest> VerifyRequest(std::string_view method, std::string_view header,
                                                const Digest& body_hash);

  // Server side: the x-cairn-auth-reply value for an answer to a verified request.
  std::string SignReply(std::string_view method, const CallNonce& request_nonce, int status_code,
                        std::string_view message, const Digest& body_hash) const;
  // Client side: the callee's identity when `header` is a valid reply MAC for this answer;
  // UNAUTHENTICATED otherwise.
  absl::StatusOr<NodeIdentity> VerifyReply(std::string_view method, const CallNonce& request_nonce,
                                           int status_code, std::string_view message,
                                           const Digest& body_hash, std::string_view header) const;

  // Number of nonces currently remembered (for tests and metrics).
  size_t remembered_nonces() const;

 private:
  // `body_hash` null: the call mac (no body).
  Digest RequestMac(std::string_view method, const NodeIdentity& caller, int64_t unix_seconds,
                    const CallNonce& nonce, const Digest* body_hash) const;
  Digest ReplyMac(std::string_view method, const CallNonce& request_nonce,
                  const NodeIdentity& callee, int status_code, std::string_view message,
                  const Digest& body_hash) const;
  // Caller holds mu_. Drops nonces whose time is more than max_skew in the past.
  void ExpireNonces(int64_t now_seconds);

  const codec::Key rpc_key_;
  const NodeIdentity self_;
  env::Clock* const clock_;
  const RpcAuthOptions options_;

  struct NonceHash {
    size_t operator()(const CallNonce& n) const {
      size_t h = 0;
      std::memcpy(&h, n.data(), sizeof h);  // random bytes: any 8 of them are a fine hash
      return h;
    }
  };
  mutable std::mutex mu_;
  std::unordered_set<CallNonce, NonceHash> nonces_;
  // (expiry time in unix seconds, nonce), earliest first.
  std::priority_queue<std::pair<int64_t, CallNonce>, std::vector<std::pair<int64_t, CallNonce>>,
                      std::greater<>>
      expiry_;
};

}  // namespace cairn::cluster
