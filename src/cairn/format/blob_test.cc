#include "cairn/format/blob.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::format {
namespace {

using ::testing::HasSubstr;

constexpr PeerId kOwner = 7;

codec::OwnerKeys TestKeys(uint8_t salt = 0) {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) {
    keys.id_key[i] = static_cast<uint8_t>(i + salt);
    keys.encryption_key[i] = static_cast<uint8_t>(0x80 + i + salt);
    keys.chunker_seed[i] = static_cast<uint8_t>(0x40 + i + salt);
  }
  return keys;
}

Bytes RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

Bytes Compressible(size_t n) {
  std::string text;
  while (text.size() < n) text += "the quick brown fox jumps over the lazy dog. ";
  text.resize(n);
  return Bytes(text.begin(), text.end());
}

struct RoundTripCase {
  std::string name;
  BlobKind kind;
  Bytes plaintext;
  Compression want_compression;
};

class SealOpenTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(SealOpenTest, RoundTrip) {
  const RoundTripCase& c = GetParam();
  const auto keys = TestKeys();
  auto sealed = SealChunk(keys, kOwner, c.kind, c.plaintext);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->id, codec::ComputeChunkId(keys.id_key, c.plaintext));
  EXPECT_EQ(sealed->plain_size, c.plaintext.size());

  auto header = ParseBlobHeader(sealed->blob);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->version, kBlobVersion);
  EXPECT_EQ(header->kind, c.kind);
  EXPECT_EQ(header->compression, c.want_compression);
  EXPECT_EQ(header->cipher, Cipher::kAes256Gcm);
  EXPECT_EQ(header->scheme, Scheme::kCopies);
  EXPECT_EQ(header->k, 1);
  EXPECT_EQ(header->m, 0);
  EXPECT_EQ(header->shard, 0u);
  EXPECT_EQ(header->owner, kOwner);
  EXPECT_EQ(header->chunk, sealed->id);
  EXPECT_EQ(sealed->blob.size(), kBlobHeaderSize + header->payload_size + codec::kTagSize);
  if (c.want_compression == Compression::kNone) {
    EXPECT_EQ(header->payload_size, c.plaintext.size());
  } else {
    EXPECT_LT(header->payload_size, c.plaintext.size());
  }
  // The header round-trips through its encoder.
  EXPECT_EQ(EncodeBlobHeader(*header),
            Bytes(sealed->blob.begin(), sealed->blob.begin() + kBlobHeaderSize));

  auto opened = OpenChunk(keys, kOwner, sealed->id, sealed->blob);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, c.plaintext);
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, SealOpenTest,
    ::testing::Values(
        RoundTripCase{"DataCompressible", BlobKind::kData, Compressible(200000),
                      Compression::kZstd},
        RoundTripCase{"DataRandom", BlobKind::kData, RandomBytes(100000, 1), Compression::kNone},
        RoundTripCase{"DataEmpty", BlobKind::kData, {}, Compression::kNone},
        RoundTripCase{"DataOneByte", BlobKind::kData, {0x42}, Compression::kNone},
        RoundTripCase{"TreeCompressible", BlobKind::kTree, Compressible(5000), Compression::kZstd},
        RoundTripCase{"TreeRandom", BlobKind::kTree, RandomBytes(3000, 2), Compression::kNone},
        RoundTripCase{"TreeEmpty", BlobKind::kTree, {}, Compression::kNone},
        RoundTripCase{"SnapshotCompressible", BlobKind::kSnapshot, Compressible(1000),
                      Compression::kZstd},
        RoundTripCase{"SnapshotRandom", BlobKind::kSnapshot, RandomBytes(500, 3),
                      Compression::kNone},
        RoundTripCase{"SnapshotEmpty", BlobKind::kSnapshot, {}, Compression::kNone}),
    [](const auto& info) { return info.param.name; });

TEST(SealChunkTest, UsesPrecomputedIdAndFreshNonces) {
  const auto keys = TestKeys();
  Bytes plain = Compressible(1000);
  ChunkId id = codec::ComputeChunkId(keys.id_key, plain);
  auto a = SealChunk(keys, kOwner, BlobKind::kData, plain, &id);
  auto b = SealChunk(keys, kOwner, BlobKind::kData, plain, &id);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id, id);
  EXPECT_NE(a->blob, b->blob);  // random nonce
  EXPECT_EQ(a->blob.size(), b->blob.size());
  auto opened = OpenChunk(keys, kOwner, id, b->blob);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plain);
}

TEST(SealChunkTest, RejectsOversizedPlaintext) {
  Bytes big(kMaxPlaintextSize + 1);
  auto sealed = SealChunk(TestKeys(), kOwner, BlobKind::kData, big);
  EXPECT_EQ(sealed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenChunkTest, WrongEncryptionKeyIsDataLoss) {
  Bytes plain = Compressible(3000);
  auto sealed = SealChunk(TestKeys(), kOwner, BlobKind::kData, plain);
  ASSERT_TRUE(sealed.ok());
  codec::OwnerKeys other = TestKeys();
  other.encryption_key[0] ^= 1;
  auto opened = OpenChunk(other, kOwner, sealed->id, sealed->blob);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
}

TEST(OpenChunkTest, WrongIdKeyIsDataLoss) {
  Bytes plain = Compressible(3000);
  auto sealed = SealChunk(TestKeys(), kOwner, BlobKind::kData, plain);
  ASSERT_TRUE(sealed.ok());
  codec::OwnerKeys other = TestKeys();
  other.id_key[5] ^= 0x20;
  auto opened = OpenChunk(other, kOwner, sealed->id, sealed->blob);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
}

TEST(OpenChunkTest, MismatchedExpectationsAreDataLoss) {
  const auto keys = TestKeys();
  Bytes plain = Compressible(3000);
  auto sealed = SealChunk(keys, kOwner, BlobKind::kTree, plain);
  ASSERT_TRUE(sealed.ok());
  ChunkId other_id = sealed->id;
  other_id.bytes[31] ^= 1;

  struct Case {
    std::string name;
    PeerId owner;
    ChunkId id;
  };
  for (const Case& c : {Case{"chunk", kOwner, other_id}, Case{"owner", kOwner + 1, sealed->id}}) {
    SCOPED_TRACE(c.name);
    auto opened = OpenChunk(keys, c.owner, c.id, sealed->blob);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(opened.status().message()), HasSubstr("another chunk"));
  }
}

TEST(OpenChunkTest, SameBytesUnderAnotherKindAreTheSameChunk) {
  // A one-byte file whose content equals an empty tree's encoding has the tree's chunk id;
  // whichever kind sealed the blob, opening it for that id returns the bytes.
  const auto keys = TestKeys();
  Bytes plain = {0x01};
  auto as_tree = SealChunk(keys, kOwner, BlobKind::kTree, plain);
  auto as_data = SealChunk(keys, kOwner, BlobKind::kData, plain);
  ASSERT_TRUE(as_tree.ok() && as_data.ok());
  EXPECT_EQ(as_tree->id, as_data->id);
  EXPECT_EQ(*OpenChunk(keys, kOwner, as_data->id, as_tree->blob), plain);
  EXPECT_EQ(*OpenChunk(keys, kOwner, as_tree->id, as_data->blob), plain);
}

TEST(OpenChunkTest, ContentNotMatchingItsIdIsDataLoss) {
  // A blob sealed under a wrong precomputed id: authentic, but the content is another chunk's.
  const auto keys = TestKeys();
  Bytes plain = Compressible(3000);
  ChunkId wrong = codec::ComputeChunkId(keys.id_key, RandomBytes(10, 4));
  auto sealed = SealChunk(keys, kOwner, BlobKind::kData, plain, &wrong);
  ASSERT_TRUE(sealed.ok());
  auto opened = OpenChunk(keys, kOwner, wrong, sealed->blob);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("does not match its chunk id"));
}

TEST(OpenChunkTest, AnyFlippedBitFails) {
  const auto keys = TestKeys();
  for (const Bytes& plain : {Compressible(300), RandomBytes(150, 5), Bytes{}}) {
    auto sealed = SealChunk(keys, kOwner, BlobKind::kData, plain);
    ASSERT_TRUE(sealed.ok());
    for (size_t i = 0; i < sealed->blob.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80}) {
        Bytes bad = sealed->blob;
        bad[i] ^= mask;
        auto opened = OpenChunk(keys, kOwner, sealed->id, bad);
        ASSERT_FALSE(opened.ok()) << "byte " << i << " mask " << int(mask) << " of "
                                  << sealed->blob.size() << " went unnoticed";
      }
    }
  }
}

TEST(ParseBlobHeaderTest, EveryTruncationAndExtensionFails) {
  const auto keys = TestKeys();
  auto sealed = SealChunk(keys, kOwner, BlobKind::kData, Compressible(200));
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(ParseBlobHeader(sealed->blob).ok());
  for (size_t n = 0; n < sealed->blob.size(); ++n) {
    ByteSpan prefix(sealed->blob.data(), n);
    auto h = ParseBlobHeader(prefix);
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << "length " << n;
    EXPECT_FALSE(OpenChunk(keys, kOwner, sealed->id, prefix).ok());
  }
  Bytes longer = sealed->blob;
  longer.push_back(0);
  EXPECT_EQ(ParseBlobHeader(longer).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseBlobHeaderTest, RandomInputFails) {
  const uint64_t seed = 20240601;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto sealed = SealChunk(TestKeys(), kOwner, BlobKind::kData, Compressible(100));
  ASSERT_TRUE(sealed.ok());
  for (int i = 0; i < 10000; ++i) {
    Bytes data(rng() % 300);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    // Half the inputs start like a real blob so that later checks get exercised too.
    if (i % 2 == 1) {
      std::copy_n(sealed->blob.begin(), std::min<size_t>(data.size(), 10), data.begin());
    }
    auto h = ParseBlobHeader(data);
    ASSERT_FALSE(h.ok()) << "input " << i;
    ASSERT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << "input " << i;
  }
}

BlobHeader ValidHeader() {
  BlobHeader h;
  h.kind = BlobKind::kData;
  h.owner = 3;
  h.chunk.bytes.fill(0xab);
  h.payload_size = 5;
  return h;
}

Bytes BlobWithHeader(const BlobHeader& h) {
  Bytes b = EncodeBlobHeader(h);
  b.resize(b.size() + 5 + codec::kTagSize);
  return b;
}

TEST(ParseBlobHeaderTest, ValidatesFields) {
  struct Case {
    std::string name;
    std::function<void(BlobHeader&)> mutate;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"valid copies", [](BlobHeader&) {}, true},
      {"valid erasure",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 4;
         h.m = 2;
         h.shard = 5;
       },
       true},
      {"erasure max",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 16;
         h.m = 8;
         h.shard = 23;
       },
       true},
      {"erasure m=0",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 1;
         h.m = 0;
       },
       true},
      {"version 0", [](BlobHeader& h) { h.version = 0; }, false},
      {"version 2", [](BlobHeader& h) { h.version = 2; }, false},
      {"kind 0", [](BlobHeader& h) { h.kind = static_cast<BlobKind>(0); }, false},
      {"kind 4", [](BlobHeader& h) { h.kind = static_cast<BlobKind>(4); }, false},
      {"compression 2", [](BlobHeader& h) { h.compression = static_cast<Compression>(2); }, false},
      {"cipher 0", [](BlobHeader& h) { h.cipher = static_cast<Cipher>(0); }, false},
      {"cipher 2", [](BlobHeader& h) { h.cipher = static_cast<Cipher>(2); }, false},
      {"scheme 0", [](BlobHeader& h) { h.scheme = static_cast<Scheme>(0); }, false},
      {"scheme 3", [](BlobHeader& h) { h.scheme = static_cast<Scheme>(3); }, false},
      {"copies k=2", [](BlobHeader& h) { h.k = 2; }, false},
      {"copies m=1", [](BlobHeader& h) { h.m = 1; }, false},
      {"erasure k=0",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 0;
         h.m = 2;
       },
       false},
      {"erasure k=17",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 17;
         h.m = 2;
       },
       false},
      {"erasure m=9",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 4;
         h.m = 9;
       },
       false},
      {"erasure shard=k+m",
       [](BlobHeader& h) {
         h.scheme = Scheme::kErasure;
         h.k = 4;
         h.m = 2;
         h.shard = 6;
       },
       false},
      {"payload larger", [](BlobHeader& h) { h.payload_size = 6; }, false},
      {"payload smaller", [](BlobHeader& h) { h.payload_size = 4; }, false},
      {"payload huge", [](BlobHeader& h) { h.payload_size = kMaxBlobSize + 1; }, false},
      {"payload overflow", [](BlobHeader& h) { h.payload_size = ~0ull; }, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    BlobHeader h = ValidHeader();
    c.mutate(h);
    Bytes blob = EncodeBlobHeader(h);
    blob.resize(blob.size() + 5 + codec::kTagSize);
    auto parsed = ParseBlobHeader(blob);
    if (c.ok) {
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(EncodeBlobHeader(*parsed), EncodeBlobHeader(h));
    } else {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  Bytes bad_magic = BlobWithHeader(ValidHeader());
  bad_magic[0] = 'X';
  EXPECT_EQ(ParseBlobHeader(bad_magic).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::format
