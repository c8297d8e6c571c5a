#pragma once

// The PutBlobs request written straight from the caller's blobs into the one buffer gRPC sends
// (docs/protocol.md "Batches"): the same bytes as the deterministic serialization of a
// v1::PutBlobsRequest holding them, without first copying every blob into a protobuf message
// and serializing it again. This halves the memory a batch holds on the home peer and saves
// a copy and a hashing pass per byte sent.

#include <grpcpp/support/byte_buffer.h>

#include <span>

#include "cairn/cluster/rpc_auth.h"
#include "cairn/net/peer_client.h"

namespace cairn::net {

// Blobs of at least this many bytes are not copied into the request: its ByteBuffer points at
// them (docs/protocol.md "Batches"). Smaller ones are copied, cheaper than a slice each.
inline constexpr size_t kBlobByReference = 16 * 1024;

struct EncodedPutBlobs {
  // The serialized v1::PutBlobsRequest: slices of the encoder's own bytes, and slices that
  // point at the caller's blobs of kBlobByReference bytes or more, which must therefore stay
  // valid and unchanged until the call that sends `request` returned.
  grpc::ByteBuffer request;
  cluster::Digest hash;  // SHA-256 of it: what HashMessage gives for the parsed request
  size_t bytes = 0;      // its size in bytes
};

// Encodes `puts` (every blob non-empty; the caller checks sizes and limits) in order as the
// repeated `blobs` field of v1::PutBlobsRequest, fields in number order and default values left
// out, exactly as protobuf's deterministic serialization writes them (checked by
// put_blobs_wire_test against protobuf itself).
EncodedPutBlobs EncodePutBlobs(std::span<const BlobPut* const> puts);

}  // namespace cairn::net
