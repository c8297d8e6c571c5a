// gRPC glue for per-call cluster authentication (cluster/rpc_auth.h; docs/protocol.md
// "Authentication"): body hashes of protobuf messages, the request header on the client, its
// check on the server, and the reply MAC both ways.
//
// Body hash = SHA-256 of the message's deterministic serialization, computed while serializing
// (no copy of large blobs). Sender and receiver serialize the same message with the same schema,
// so they get the same bytes; a field unknown to the receiver is kept and re-serialized after
// the known ones, which is where a sender puts it too as long as new fields take numbers above
// the existing ones (proto/cairn/v1/peer.proto rule).
//
// Internal to net/. Thread-safety: stateless functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/cluster/rpc_auth.h"
#include "google/protobuf/message.h"

namespace cairn::net {

// SHA-256 of the deterministic serialization of `message`.
cluster::Digest HashMessage(const google::protobuf::MessageLite& message);
// SHA-256 of nothing: the body hash of an error answer.
const cluster::Digest& EmptyBodyHash();

// Client: signs a call of `method` with `request` into `context`. Returns the nonce (needed by
// CheckReply), or nullopt when `auth` is null (the call goes out unauthenticated).
std::optional<cluster::CallNonce> SignCall(const cluster::RpcAuth* auth, const char* method,
                                           const google::protobuf::MessageLite& request,
                                           grpc::ClientContext& context);
// The same, for a request already serialized whose HashMessage is `request_hash`.
std::optional<cluster::CallNonce> SignCall(const cluster::RpcAuth* auth, const char* method,
                                           const cluster::Digest& request_hash,
                                           grpc::ClientContext& context);

// Client: the outcome of a call as absl::Status, after checking the callee's reply MAC. With
// no `auth` (nonce nullopt) the status is returned as is. An OK answer without a valid MAC is
// UNAUTHENTICATED (the callee is not a member, or the answer was altered); an error answer
// without one keeps its code (transport errors carry none), except ALREADY_EXISTS, which only
// a member may say (it makes a duplicate peer exit) and otherwise becomes UNAUTHENTICATED.
// `callee` receives the authenticated identity when the MAC verified.
absl::Status CheckReply(const cluster::RpcAuth* auth, const char* method,
                        const std::optional<cluster::CallNonce>& nonce, const grpc::Status& status,
                        const google::protobuf::MessageLite& response,
                        const grpc::ClientContext& context,
                        cluster::NodeIdentity* callee = nullptr);

// Server, before the request message is read: the header's form, call mac, time and nonce
// (cluster::RpcAuth::PreVerifyRequest; `skewed` as there).
absl::StatusOr<cluster::VerifiedRequest> PreVerifyCall(cluster::RpcAuth* auth, const char* method,
                                                       const grpc::ServerContext& context,
                                                       cluster::VerifiedRequest* skewed = nullptr);
// Server, once the request is read: its body mac (cluster::RpcAuth::VerifyRequestBody).
absl::Status VerifyCallBody(const cluster::RpcAuth& auth, const char* method,
                            const google::protobuf::MessageLite& request,
                            const grpc::ServerContext& context);
// Server: both checks of a call already read (cluster::RpcAuth::VerifyRequest).
absl::StatusOr<cluster::VerifiedRequest> VerifyCall(cluster::RpcAuth* auth, const char* method,
                                                    const google::protobuf::MessageLite& request,
                                                    const grpc::ServerContext& context);

// Server: adds the reply MAC for `status` (and `response` when OK) to the trailing metadata.
void SignReply(const cluster::RpcAuth* auth, const char* method,
               const cluster::CallNonce& request_nonce, const grpc::Status& status,
               const google::protobuf::MessageLite& response, grpc::ServerContext& context);

// ---- Server streams (GetBlobs; docs/protocol.md "Batches", "Stream authentication") ----
//
// A streamed answer is authenticated message by message: message number `sequence` (0, 1, ...)
// carries a reply MAC (RpcAuth::SignReply with status 0 and an empty message) whose body hash is
//   SHA-256("cairn-rpc-stream-v1" 0x00 || request mac || u64be(sequence) ||
//           SHA-256(message with its auth field empty))
// and the trailing x-cairn-auth-reply of the stream (whatever its status) uses the body hash
//   SHA-256("cairn-rpc-stream-end-v1" 0x00 || request mac || u64be(messages sent)).
// The request mac binds every message to this one call (its method, caller, time, nonce and
// request body); the sequence number stops reordering, dropping or repeating messages; the count
// in the trailer stops a cut-short stream from passing as complete.

// What a client needs to check a stream's answers.
struct StreamCall {
  cluster::CallNonce nonce{};
  cluster::Digest request_mac{};
};

// The MAC of an x-cairn-auth request header (its last field), nullopt when it has none.
std::optional<cluster::Digest> RequestMacOf(std::string_view header);

cluster::Digest StreamMessageHash(const cluster::Digest& request_mac, uint64_t sequence,
                                  const cluster::Digest& message_hash);
cluster::Digest StreamEndHash(const cluster::Digest& request_mac, uint64_t messages);

// Client: like SignCall, for a call answered by a stream. nullopt when `auth` is null.
std::optional<StreamCall> SignStreamCall(const cluster::RpcAuth* auth, const char* method,
                                         const google::protobuf::MessageLite& request,
                                         grpc::ClientContext& context);

// Client: checks the `auth` value of stream message `sequence`, whose hash with the auth field
// empty is `message_hash`. Returns the signer; UNAUTHENTICATED when it does not verify.
absl::StatusOr<cluster::NodeIdentity> CheckStreamMessage(const cluster::RpcAuth& auth,
                                                         const char* method, const StreamCall& call,
                                                         uint64_t sequence,
                                                         const cluster::Digest& message_hash,
                                                         std::string_view message_auth);

// Client: the stream's final status after checking its trailer for `messages` messages
// received; same rules as CheckReply (an OK end without a valid MAC is UNAUTHENTICATED).
absl::Status CheckStreamEnd(const cluster::RpcAuth* auth, const char* method,
                            const std::optional<StreamCall>& call, const grpc::Status& status,
                            uint64_t messages, const grpc::ClientContext& context,
                            cluster::NodeIdentity* callee = nullptr);

// Server: the request mac of a verified call (from its x-cairn-auth header).
absl::StatusOr<cluster::Digest> RequestMacOf(const grpc::ServerContext& context);

// Server: the `auth` value of stream message `sequence` (hash taken with the field empty).
std::string SignStreamMessage(const cluster::RpcAuth& auth, const char* method,
                              const cluster::CallNonce& request_nonce,
                              const cluster::Digest& request_mac, uint64_t sequence,
                              const cluster::Digest& message_hash);

// Server: the stream's trailing reply MAC, for `messages` messages sent and final `status`.
void SignStreamEnd(const cluster::RpcAuth* auth, const char* method,
                   const cluster::CallNonce& request_nonce, const cluster::Digest& request_mac,
                   const grpc::Status& status, uint64_t messages, grpc::ServerContext& context);

}  // namespace cairn::net
