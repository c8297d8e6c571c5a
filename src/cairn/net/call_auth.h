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

#include <optional>
#include <string>

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

// Server: verifies the x-cairn-auth header of a call (cluster::RpcAuth::VerifyRequest).
absl::StatusOr<cluster::VerifiedRequest> VerifyCall(cluster::RpcAuth* auth, const char* method,
                                                    const google::protobuf::MessageLite& request,
                                                    const grpc::ServerContext& context);

// Server: adds the reply MAC for `status` (and `response` when OK) to the trailing metadata.
void SignReply(const cluster::RpcAuth* auth, const char* method,
               const cluster::CallNonce& request_nonce, const grpc::Status& status,
               const google::protobuf::MessageLite& response, grpc::ServerContext& context);

}  // namespace cairn::net
