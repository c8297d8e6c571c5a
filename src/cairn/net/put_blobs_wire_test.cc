#include "cairn/net/put_blobs_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cairn/codec/checksum.h"
#include "cairn/net/call_auth.h"
#include "cairn/net/convert.h"
#include "cairn/v1/peer.pb.h"

namespace cairn::net {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string Deterministic(const v1::PutBlobsRequest& request) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  request.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// The encoder writes what protobuf writes, so that the callee's HashMessage of the request it
// parses equals the hash the caller signed: edge values (owner 0, shard 0, extra, blob sizes
// around varint length boundaries) and random ones.
TEST(PutBlobsWireTest, SameBytesAsProtobufDeterministicSerialization) {
  std::mt19937_64 rng(7);
  std::vector<size_t> sizes = {1, 2, 127, 128, 129, 16383, 16384, 16385, 300000, 2097152};
  std::vector<Bytes> blobs;
  std::vector<BlobPut> puts;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Bytes blob(sizes[i]);
    for (auto& b : blob) b = static_cast<uint8_t>(rng());
    blobs.push_back(std::move(blob));
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    BlobPut put;
    put.key.owner = i == 0 ? 0 : (i == 1 ? 1 : rng());
    for (auto& b : put.key.chunk.bytes) b = static_cast<uint8_t>(rng());
    put.key.shard = i % 3 == 0 ? 0 : static_cast<uint32_t>(rng() % 300);
    put.blob = blobs[i];
    put.options.extra = i % 2 == 1;
    puts.push_back(put);
  }
  for (size_t n : {size_t{1}, size_t{2}, puts.size()}) {
    std::vector<const BlobPut*> wire;
    v1::PutBlobsRequest expected;
    for (size_t i = 0; i < n; ++i) {
      wire.push_back(&puts[i]);
      v1::PutBlobRequest* out = expected.add_blobs();
      ToProto(puts[i].key, out->mutable_key());
      out->set_blob(reinterpret_cast<const char*>(puts[i].blob.data()), puts[i].blob.size());
      out->set_checksum(ChecksumToProto(codec::BlobChecksum(puts[i].blob)));
      out->set_extra(puts[i].options.extra);
    }
    EncodedPutBlobs encoded = EncodePutBlobs(wire);
    const std::string bytes = Flatten(encoded.request);
    EXPECT_EQ(bytes.size(), encoded.bytes);
    EXPECT_EQ(bytes, Deterministic(expected)) << n << " blobs";
    EXPECT_EQ(encoded.hash, HashMessage(expected));
    // And the callee parses it back to the same blobs.
    v1::PutBlobsRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ASSERT_EQ(parsed.blobs_size(), static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(
          parsed.blobs(static_cast<int>(i)).blob(),
          std::string(reinterpret_cast<const char*>(puts[i].blob.data()), puts[i].blob.size()));
      EXPECT_EQ(parsed.blobs(static_cast<int>(i)).extra(), puts[i].options.extra);
      auto key = FromProto(parsed.blobs(static_cast<int>(i)).key());
      ASSERT_TRUE(key.ok());
      EXPECT_EQ(*key, puts[i].key);
    }
    EXPECT_EQ(HashMessage(parsed), encoded.hash);
  }
}

}  // namespace
}  // namespace cairn::net
