// Conversions between the generated cairn.v1 protobuf types (proto/cairn/v1/peer.proto) and
// cairn's domain types. Protobuf types do not leak past net/ (docs/architecture.md "Modules
// and their dependencies"), so every message crosses here, and everything read from the wire
// is validated here:
//   - chunk_id exactly 32 bytes, checksum exactly 16 bytes, HasBlobs/DeleteBlobs/BlobMoved at
//     most kMaxKeysPerCall keys, GetBlobs at most kMaxBlobsPerBatch keys, a ListBlobs limit of
//     1..kMaxKeysPerCall; anything else is INVALID_ARGUMENT.
//
// Internal to net/. Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/cluster/membership.h"
#include "cairn/codec/checksum.h"
#include "cairn/net/peer_client.h"
#include "cairn/store/blob_store.h"
#include "cairn/v1/peer.pb.h"

namespace cairn::net {

// Largest number of keys in one HasBlobs request (peer.proto).
constexpr size_t kMaxHasBlobsKeys = kMaxKeysPerCall;

void ToProto(const BlobKey& key, v1::BlobKey* out);
// INVALID_ARGUMENT unless chunk_id is exactly 32 bytes.
absl::StatusOr<BlobKey> FromProto(const v1::BlobKey& key);

void ToProto(const cluster::PeerInfo& info, v1::PeerInfo* out);
cluster::PeerInfo FromProto(const v1::PeerInfo& info);

// The checksum as 16 raw bytes (big-endian XXH3-128, codec/checksum.h).
std::string ChecksumToProto(const codec::Checksum& checksum);
// INVALID_ARGUMENT unless exactly 16 bytes.
absl::StatusOr<codec::Checksum> ChecksumFromProto(std::string_view bytes);

v1::PutBlobResponse::Outcome ToProto(ports::PutOutcome outcome);
// INVALID_ARGUMENT for an outcome this version does not know.
absl::StatusOr<ports::PutOutcome> FromProto(v1::PutBlobResponse::Outcome outcome);

// The keys of a HasBlobs request. INVALID_ARGUMENT for more than kMaxHasBlobsKeys keys or
// any malformed key.
absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::HasBlobsRequest& request);
// The keys of a DeleteBlobs request; same checks.
absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::DeleteBlobsRequest& request);
// The keys of a GetBlobs request: at most kMaxBlobsPerBatch, each well-formed
// (INVALID_ARGUMENT otherwise).
absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::GetBlobsRequest& request);

// A ListBlobs request. INVALID_ARGUMENT for a limit outside 1..kMaxKeysPerCall or a malformed
// `after` key.
struct ListBlobsArgs {
  PeerId owner = 0;
  std::optional<BlobKey> after;
  size_t limit = 0;
};
absl::StatusOr<ListBlobsArgs> FromProto(const v1::ListBlobsRequest& request);
void ToProto(const ListBlobsArgs& args, v1::ListBlobsRequest* out);

void ToProto(const ports::BlobRecord& record, v1::ListedBlob* out);
// INVALID_ARGUMENT for a malformed key or checksum.
absl::StatusOr<ports::BlobRecord> FromProto(const v1::ListedBlob& blob);

// A ListBlobs answer to a request for `owner` with `limit`: INVALID_ARGUMENT when it lists more
// than `limit` blobs, a blob of another owner, or a malformed one.
absl::StatusOr<BlobListPage> PageFromProto(const v1::ListBlobsResponse& response, PeerId owner,
                                           size_t limit);

void ToProto(std::span<const MovedBlob> moves, v1::BlobMovedRequest* out);
// The moves of a BlobMoved request. INVALID_ARGUMENT for more than kMaxKeysPerCall moves or a
// malformed key.
absl::StatusOr<std::vector<MovedBlob>> MovesFromProto(const v1::BlobMovedRequest& request);

// The IP part of a gRPC peer string (ServerContext::peer()): "ipv4:127.0.0.1:5000" ->
// "127.0.0.1", "ipv6:[::1]:5000" (brackets possibly percent-encoded) -> "[::1]". Empty when
// the string is not an ipv4/ipv6 peer.
std::string HostFromGrpcPeer(std::string_view grpc_peer);

// When `address` (host:port) has an empty or wildcard host ("", 0.0.0.0, [::]), returns it
// with the host replaced by `caller_host`; otherwise (or when either is unusable) returns
// `address` unchanged. Lets a peer listening on 0.0.0.0 be reached at the IP it called from.
std::string FillWildcardHost(const std::string& address, const std::string& caller_host);

}  // namespace cairn::net
