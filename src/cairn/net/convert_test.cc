#include "cairn/net/convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "cairn/net/status_map.h"

namespace cairn::net {
namespace {

using ::testing::HasSubstr;

TEST(ConvertTest, BlobKeyRoundTrip) {
  BlobKey key;
  key.owner = 0xfedcba9876543210ull;
  for (size_t i = 0; i < ChunkId::kSize; ++i) key.chunk.bytes[i] = static_cast<uint8_t>(i * 7);
  key.shard = 5;
  v1::BlobKey proto;
  ToProto(key, &proto);
  auto back = FromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, key);
}

TEST(ConvertTest, ChunkIdMustBe32Bytes) {
  for (size_t size : {0, 1, 31, 33, 64}) {
    v1::BlobKey proto;
    proto.set_chunk_id(std::string(size, 'x'));
    auto key = FromProto(proto);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << "size " << size;
  }
}

TEST(ConvertTest, ChecksumMustBe16Bytes) {
  for (size_t size : {0, 15, 17, 32}) {
    EXPECT_EQ(ChecksumFromProto(std::string(size, 'c')).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "size " << size;
  }
  codec::Checksum sum{};
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = static_cast<uint8_t>(0xf0 + i);
  auto back = ChecksumFromProto(ChecksumToProto(sum));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, sum);
}

TEST(ConvertTest, PeerInfoRoundTrip) {
  cluster::PeerInfo info{7,
                         "host-a",
                         "offsite",
                         "10.0.0.1:7001",
                         1 << 30,
                         12345,
                         "0.1.0",
                         99,
                         "00112233445566778899aabbccddeeff",
                         uint64_t{5} << 20,
                         uint64_t{7} << 20,
                         std::string(64, 'c')};
  v1::PeerInfo proto;
  ToProto(info, &proto);
  EXPECT_EQ(proto.node_id().size(), 16u);      // raw bytes on the wire
  EXPECT_EQ(proto.cert_sha256().size(), 32u);  // likewise
  EXPECT_EQ(FromProto(proto), info);
  // A fingerprint that is not 32 bytes on the wire is none.
  proto.set_cert_sha256("short");
  EXPECT_EQ(FromProto(proto).cert_fingerprint, "");
  // A node id that is not 16 bytes on the wire is no node id.
  proto.set_node_id("short");
  EXPECT_EQ(FromProto(proto).node_id, "");
}

TEST(ConvertTest, PutOutcome) {
  for (auto outcome : {ports::PutOutcome::kStored, ports::PutOutcome::kAlreadyStored}) {
    auto back = FromProto(ToProto(outcome));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, outcome);
  }
  EXPECT_EQ(FromProto(static_cast<v1::PutBlobResponse::Outcome>(7)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, HasBlobsKeyLimit) {
  v1::HasBlobsRequest request;
  for (size_t i = 0; i < kMaxHasBlobsKeys; ++i) {
    request.add_keys()->set_chunk_id(std::string(32, static_cast<char>(i)));
  }
  auto keys = KeysFromProto(request);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), kMaxHasBlobsKeys);

  request.add_keys()->set_chunk_id(std::string(32, 'z'));
  EXPECT_EQ(KeysFromProto(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, HasBlobsMalformedKeyNamesItsIndex) {
  v1::HasBlobsRequest request;
  request.add_keys()->set_chunk_id(std::string(32, 'a'));
  request.add_keys()->set_chunk_id("short");
  auto keys = KeysFromProto(request);
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(keys.status().message(), HasSubstr("key 1"));
}

TEST(ConvertTest, HostFromGrpcPeer) {
  struct Case {
    std::string peer;
    std::string host;
  };
  const Case cases[] = {
      {"ipv4:127.0.0.1:54321", "127.0.0.1"},
      {"ipv4:192.168.1.20:7001", "192.168.1.20"},
      {"ipv6:[::1]:54321", "[::1]"},
      {"ipv6:%5B::1%5D:54321", "[::1]"},
      {"ipv6:%5B%3A%3A1%5D:54321", "[::1]"},
      {"ipv6:[fe80::1%25eth0]:7001", "[fe80::1%eth0]"},
      {"unix:/tmp/sock", ""},
      {"ipv4:", ""},
      {"ipv4:1.2.3.4", ""},
      {"", ""},
      {"ipv6:::1:80", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(HostFromGrpcPeer(c.peer), c.host) << c.peer;
}

TEST(ConvertTest, FillWildcardHost) {
  struct Case {
    std::string address;
    std::string caller;
    std::string want;
  };
  const Case cases[] = {
      {"0.0.0.0:7001", "127.0.0.1", "127.0.0.1:7001"},
      {":7001", "10.1.2.3", "10.1.2.3:7001"},
      {"[::]:7001", "[::1]", "[::1]:7001"},
      {"192.168.1.5:7001", "127.0.0.1", "192.168.1.5:7001"},
      {"desk.lan:7001", "127.0.0.1", "desk.lan:7001"},
      {"0.0.0.0:7001", "", "0.0.0.0:7001"},
      {"0.0.0.0:", "127.0.0.1", "0.0.0.0:"},
      {"", "127.0.0.1", ""},
      {"noport", "127.0.0.1", "noport"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FillWildcardHost(c.address, c.caller), c.want) << c.address << " / " << c.caller;
  }
}

TEST(StatusMapTest, CodesMapOneToOne) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), "msg " + std::to_string(code));
    grpc::Status wire = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(wire.error_message(), "msg " + std::to_string(code));
    EXPECT_EQ(FromGrpcStatus(wire), status);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  // 20: unknown to both, yet a valid value of grpc::StatusCode (an unscoped enum without a fixed
  // type holds only 0..31; a larger value would be undefined behaviour, caught by UBSan).
  EXPECT_EQ(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "x")).code(),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "x")).error_code(),
            grpc::StatusCode::UNKNOWN);
}

BlobKey TestKey(PeerId owner, uint8_t fill, uint32_t shard = 0) {
  BlobKey key;
  key.owner = owner;
  key.chunk.bytes.fill(fill);
  key.shard = shard;
  return key;
}

TEST(ConvertTest, ListBlobsRequestRoundTripAndLimits) {
  for (const std::optional<BlobKey>& after :
       {std::optional<BlobKey>(), std::optional(TestKey(4, 9, 2))}) {
    v1::ListBlobsRequest proto;
    ToProto(ListBlobsArgs{4, after, 77}, &proto);
    auto back = FromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->owner, 4u);
    EXPECT_EQ(back->after, after);
    EXPECT_EQ(back->limit, 77u);
  }
  for (uint32_t limit : {0u, static_cast<uint32_t>(kMaxKeysPerCall + 1), UINT32_MAX}) {
    v1::ListBlobsRequest proto;
    proto.set_owner(4);
    proto.set_limit(limit);
    EXPECT_EQ(FromProto(proto).status().code(), absl::StatusCode::kInvalidArgument) << limit;
  }
  v1::ListBlobsRequest bad_after;
  bad_after.set_limit(5);
  bad_after.mutable_after()->set_chunk_id("short");
  EXPECT_EQ(FromProto(bad_after).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, ListBlobsPageIsChecked) {
  ports::BlobRecord a{TestKey(4, 1), 100, {}, true, static_cast<uint8_t>(BlobKind::kSnapshot)};
  a.checksum[0] = 7;
  ports::BlobRecord b{TestKey(4, 2, 1), 200, {}, false};
  v1::ListBlobsResponse response;
  ToProto(a, response.add_blobs());
  ToProto(b, response.add_blobs());
  response.set_more(true);
  auto page = PageFromProto(response, 4, 2);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->more);
  ASSERT_EQ(page->blobs.size(), 2u);
  EXPECT_EQ(page->blobs[0].key, a.key);
  EXPECT_EQ(page->blobs[0].size, 100u);
  EXPECT_EQ(page->blobs[0].checksum, a.checksum);
  EXPECT_TRUE(page->blobs[0].extra);
  EXPECT_FALSE(page->blobs[1].extra);
  EXPECT_EQ(page->blobs[0].kind, static_cast<uint8_t>(BlobKind::kSnapshot));
  EXPECT_EQ(page->blobs[1].kind, 0);  // unknown
  // A kind from a later version reads as unknown.
  v1::ListBlobsResponse later = response;
  later.mutable_blobs(0)->set_kind(1000);
  EXPECT_EQ(PageFromProto(later, 4, 2)->blobs[0].kind, 0);
  // More than asked for, another owner's blob, a malformed checksum: refused.
  EXPECT_EQ(PageFromProto(response, 4, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PageFromProto(response, 5, 2).status().code(), absl::StatusCode::kInvalidArgument);
  response.mutable_blobs(1)->set_checksum("x");
  EXPECT_EQ(PageFromProto(response, 4, 2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, KeyAndMoveListsAreBounded) {
  const std::vector<MovedBlob> moves = {{TestKey(2, 1), 5}, {TestKey(2, 3, 4), 6}};
  v1::BlobMovedRequest moved;
  ToProto(moves, &moved);
  auto back = MovesFromProto(moved);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, moves);
  while (static_cast<size_t>(moved.moves_size()) <= kMaxKeysPerCall) {
    *moved.add_moves() = moved.moves(0);
  }
  EXPECT_EQ(MovesFromProto(moved).status().code(), absl::StatusCode::kInvalidArgument);
  v1::BlobMovedRequest bad_move;
  bad_move.add_moves()->mutable_key()->set_chunk_id("short");
  EXPECT_EQ(MovesFromProto(bad_move).status().code(), absl::StatusCode::kInvalidArgument);

  v1::DeleteBlobsRequest del;
  for (size_t i = 0; i < kMaxKeysPerCall; ++i) ToProto(TestKey(2, 1), del.add_keys());
  auto keys = KeysFromProto(del);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), kMaxKeysPerCall);
  ToProto(TestKey(2, 1), del.add_keys());
  EXPECT_EQ(KeysFromProto(del).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::net
