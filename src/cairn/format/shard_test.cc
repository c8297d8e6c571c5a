// Erasure-coded shard envelopes (scheme 2): SealShards / ParseShard / OpenChunkShards.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cairn/format/blob.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::format {
namespace {

using ::testing::HasSubstr;

constexpr PeerId kOwner = 9;

codec::OwnerKeys TestKeys() {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) {
    keys.id_key[i] = static_cast<uint8_t>(3 * i + 1);
    keys.encryption_key[i] = static_cast<uint8_t>(0x90 + i);
    keys.chunker_seed[i] = static_cast<uint8_t>(0x20 + i);
  }
  return keys;
}

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

Bytes Compressible(size_t n) {
  std::string text;
  while (text.size() < n) text += "shards of a chunk, any k of which rebuild it. ";
  text.resize(n);
  return Bytes(text.begin(), text.end());
}

SealedShards Seal(const Bytes& plain, codec::ErasureScheme scheme,
                  BlobKind kind = BlobKind::kData) {
  auto prepared = PrepareChunk(TestKeys(), kind, plain);
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  auto sealed = SealShards(TestKeys(), kOwner, *prepared, scheme);
  EXPECT_TRUE(sealed.ok()) << sealed.status();
  return std::move(*sealed);
}

std::vector<ByteSpan> Spans(const std::vector<Bytes>& blobs, const std::vector<int>& which) {
  std::vector<ByteSpan> out;
  for (int i : which) out.push_back(blobs[static_cast<size_t>(i)]);
  return out;
}

std::vector<int> Range(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

struct ShardCase {
  std::string name;
  codec::ErasureScheme scheme;
  size_t size;
  bool compressible;
};

class ShardRoundTripTest : public ::testing::TestWithParam<ShardCase> {};

// Every shard is a valid blob to a storage peer (ParseBlobHeader), carries scheme 2, k, m, its
// index, owner and chunk id, and the chunk opens from every k-subset.
TEST_P(ShardRoundTripTest, EveryShardParsesAndAnyKOpen) {
  const ShardCase& c = GetParam();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Bytes plain = c.compressible ? Compressible(c.size) : RandomBytes(rng, c.size);
  SealedShards s = Seal(plain, c.scheme);
  const int n = c.scheme.total();
  ASSERT_EQ(s.shards.size(), static_cast<size_t>(n));
  EXPECT_EQ(s.id, codec::ComputeChunkId(TestKeys().id_key, plain));
  EXPECT_EQ(s.plain_size, plain.size());
  codec::Nonce nonce{};
  for (int i = 0; i < n; ++i) {
    const Bytes& blob = s.shards[static_cast<size_t>(i)];
    auto h = ParseBlobHeader(blob);
    ASSERT_TRUE(h.ok()) << "shard " << i << ": " << h.status();
    EXPECT_EQ(h->scheme, Scheme::kErasure);
    EXPECT_EQ(h->k, c.scheme.k);
    EXPECT_EQ(h->m, c.scheme.m);
    EXPECT_EQ(h->shard, static_cast<uint32_t>(i));
    EXPECT_EQ(h->owner, kOwner);
    EXPECT_EQ(h->chunk, s.id);
    EXPECT_EQ(h->compression, c.compressible ? Compression::kZstd : Compression::kNone);
    if (i == 0) nonce = h->nonce;
    EXPECT_EQ(h->nonce, nonce) << "one seal, one nonce";
    auto v = ParseShard(blob);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->sealed_size, s.sealed_size);
    EXPECT_EQ(v->data.size(), codec::ShardSize(s.sealed_size, c.scheme.k));
    EXPECT_EQ(blob.size(), kBlobHeaderSize + kShardPrefixSize + v->data.size());
    // The header round-trips through its encoder.
    EXPECT_EQ(EncodeBlobHeader(*h), Bytes(blob.begin(), blob.begin() + kBlobHeaderSize));
  }
  // Every k-subset (for 10+4, every one of the 1001) opens to the plaintext.
  const int k = c.scheme.k;
  std::vector<bool> mask(static_cast<size_t>(n), false);
  std::fill(mask.begin(), mask.begin() + k, true);
  int subsets = 0;
  do {
    std::vector<int> which;
    for (int i = 0; i < n; ++i)
      if (mask[static_cast<size_t>(i)]) which.push_back(i);
    auto spans = Spans(s.shards, which);
    std::shuffle(spans.begin(), spans.end(), rng);  // order does not matter
    auto opened = OpenChunkShards(TestKeys(), kOwner, s.id, spans);
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_EQ(opened->plaintext, plain);
    ++subsets;
  } while (std::prev_permutation(mask.begin(), mask.end()));
  EXPECT_EQ(subsets, k == 4 ? 15 : 1001);
}

INSTANTIATE_TEST_SUITE_P(Schemes, ShardRoundTripTest,
                         ::testing::Values(ShardCase{"FourTwoRandom", {4, 2}, 1 << 20, false},
                                           ShardCase{"FourTwoOddSize", {4, 2}, 100003, false},
                                           ShardCase{"FourTwoCompressible", {4, 2}, 300000, true},
                                           ShardCase{"TenFourRandom", {10, 4}, 200001, false},
                                           ShardCase{"TenFourTiny", {10, 4}, 1, false}),
                         [](const auto& info) { return info.param.name; });

// The documented AAD: the canonical header (shard = 0xFFFFFFFF, payload = S - 16) over the
// concatenated data shards' first S bytes.
TEST(ShardFormatTest, AadIsTheCanonicalHeader) {
  std::mt19937_64 rng(1);
  Bytes plain = RandomBytes(rng, 70000);
  SealedShards s = Seal(plain, {4, 2});
  auto v0 = ParseShard(s.shards[0]);
  ASSERT_TRUE(v0.ok());
  Bytes sealed;
  for (int i = 0; i < 4; ++i) {
    auto v = ParseShard(s.shards[static_cast<size_t>(i)]);
    sealed.insert(sealed.end(), v->data.begin(), v->data.end());
  }
  sealed.resize(v0->sealed_size);
  Bytes aad = ShardAadHeader(v0->header, v0->sealed_size);
  EXPECT_EQ(GetU32(aad.data() + 16), kAadShardIndex);
  EXPECT_EQ(GetU64(aad.data() + 72), v0->sealed_size - codec::kTagSize);
  EXPECT_FALSE(ParseBlobHeader(aad).ok());  // never a valid blob on its own
  auto body = codec::AeadOpen(TestKeys().encryption_key, v0->header.nonce, aad, sealed);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, plain);  // random data is stored uncompressed
}

TEST(ShardFormatTest, FewerThanKIsFailedPrecondition) {
  std::mt19937_64 rng(2);
  SealedShards s = Seal(RandomBytes(rng, 100000), {4, 2});
  for (const auto& which : std::vector<std::vector<int>>{{}, {0}, {1, 4}, {0, 2, 5}}) {
    auto opened = OpenChunkShards(TestKeys(), kOwner, s.id, Spans(s.shards, which));
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  }
  // The same shard twice counts once.
  auto twice = OpenChunkShards(TestKeys(), kOwner, s.id, Spans(s.shards, {0, 0, 1, 2}));
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Corrupt shards that still parse (bit rot copied with a fresh checksum, a buggy peer): the
// GCM tag rejects the subsets containing them and another subset opens.
TEST(ShardFormatTest, SurvivesUpToMCorruptShards) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (codec::ErasureScheme scheme : {codec::ErasureScheme{4, 2}, codec::ErasureScheme{10, 4}}) {
    Bytes plain = RandomBytes(rng, 150000 + rng() % 1000);
    SealedShards s = Seal(plain, scheme);
    std::vector<int> order = Range(scheme.total());
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<Bytes> blobs = s.shards;
    std::vector<uint32_t> bad;
    for (int i = 0; i < scheme.m; ++i) {
      Bytes& b = blobs[static_cast<size_t>(order[static_cast<size_t>(i)])];
      // In the first half of the shard: its last bytes may be (or encode) the zero padding after
      // the sealed bytes, which no tag covers, so a flip there goes unnoticed and harmless.
      b[kBlobHeaderSize + kShardPrefixSize + rng() % ((b.size() - 88) / 2)] ^= 0x10;
      bad.push_back(static_cast<uint32_t>(order[static_cast<size_t>(i)]));
    }
    std::sort(bad.begin(), bad.end());
    auto opened = OpenChunkShards(TestKeys(), kOwner, s.id, Spans(blobs, Range(scheme.total())),
                                  /*rebuild=*/true);
    ASSERT_TRUE(opened.ok()) << scheme.ToString() << ": " << opened.status();
    EXPECT_EQ(opened->plaintext, plain);
    EXPECT_EQ(opened->shards, s.shards) << "rebuilt shards equal the originals";
    EXPECT_EQ(opened->mismatched, bad);

    // One more corrupt shard than m: nothing authenticates.
    Bytes& extra = blobs[static_cast<size_t>(order[static_cast<size_t>(scheme.m)])];
    extra[kBlobHeaderSize + kShardPrefixSize] ^= 1;
    auto lost = OpenChunkShards(TestKeys(), kOwner, s.id, Spans(blobs, Range(scheme.total())));
    EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss) << lost.status();
  }
}

// Shards of two seals of one chunk (a re-upload with a new nonce) never mix.
TEST(ShardFormatTest, ShardsOfDifferentSealsDoNotMix) {
  std::mt19937_64 rng(3);
  Bytes plain = RandomBytes(rng, 90000);
  SealedShards a = Seal(plain, {4, 2});
  SealedShards b = Seal(plain, {4, 2});
  ASSERT_EQ(a.id, b.id);
  ASSERT_NE(a.shards[0], b.shards[0]);
  std::vector<ByteSpan> mixed = {a.shards[0], a.shards[1], a.shards[2],
                                 b.shards[3], b.shards[4], b.shards[5]};
  EXPECT_EQ(OpenChunkShards(TestKeys(), kOwner, a.id, mixed).status().code(),
            absl::StatusCode::kFailedPrecondition);
  mixed.push_back(a.shards[5]);
  auto opened = OpenChunkShards(TestKeys(), kOwner, a.id, mixed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, plain);
}

// The header fields are authenticated: the same change on every shard (so they still group
// together) fails the tag.
TEST(ShardFormatTest, AlteredHeaderOnAllShardsIsDataLoss) {
  std::mt19937_64 rng(4);
  SealedShards s = Seal(RandomBytes(rng, 80000), {4, 2});
  struct Change {
    const char* what;
    size_t offset;
    uint8_t value;
  };
  for (const Change& c : {Change{"kind data -> tree", 10, 2}, Change{"compression -> zstd", 11, 1},
                          Change{"nonce", 60, 0}}) {
    std::vector<Bytes> blobs = s.shards;
    for (Bytes& b : blobs) b[c.offset] = c.offset == 60 ? b[c.offset] ^ 0x80 : c.value;
    auto opened = OpenChunkShards(TestKeys(), kOwner, s.id, Spans(blobs, Range(6)));
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
        << c.what << ": " << opened.status();
  }
}

TEST(ShardFormatTest, RejectsOtherChunksAndMalformedShards) {
  std::mt19937_64 rng(5);
  SealedShards s = Seal(RandomBytes(rng, 100000), {4, 2});
  ChunkId other = s.id;
  other.bytes[0] ^= 1;
  auto wrong = OpenChunkShards(TestKeys(), kOwner, other, Spans(s.shards, Range(6)));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("another chunk"));
  auto wrong_owner = OpenChunkShards(TestKeys(), kOwner + 1, s.id, Spans(s.shards, Range(6)));
  EXPECT_FALSE(wrong_owner.ok());

  // S inconsistent with the shard length.
  Bytes bad_total = s.shards[0];
  PutU64(bad_total, 0);  // grow by 8 bytes: now the length rule fails
  EXPECT_FALSE(ParseShard(bad_total).ok());
  Bytes bad_s = s.shards[0];
  uint64_t S = GetU64(bad_s.data() + kBlobHeaderSize);
  for (uint64_t wrong_s : {uint64_t{0}, uint64_t{15}, S * 2, S + 4 * 64, ~uint64_t{0}}) {
    Bytes b = bad_s;
    for (int i = 0; i < 8; ++i)
      b[kBlobHeaderSize + static_cast<size_t>(i)] = static_cast<uint8_t>(wrong_s >> (8 * i));
    EXPECT_EQ(ParseShard(b).status().code(), absl::StatusCode::kInvalidArgument) << wrong_s;
  }
  // A copies blob is not a shard, and a shard is not a copy.
  auto copy = SealChunk(TestKeys(), kOwner, BlobKind::kData, Compressible(1000));
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(ParseShard(copy->blob).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenChunk(TestKeys(), kOwner, s.id, s.shards[0]).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Garbage among good shards is skipped.
  Bytes garbage(200, 0xAB);
  std::vector<ByteSpan> with_garbage = {garbage, s.shards[1], s.shards[2], s.shards[3],
                                        s.shards[5]};
  EXPECT_TRUE(OpenChunkShards(TestKeys(), kOwner, s.id, with_garbage).ok());
}

TEST(ShardFormatTest, SealShardsRejectsBadSchemes) {
  auto prepared = PrepareChunk(TestKeys(), BlobKind::kData, Compressible(1000));
  ASSERT_TRUE(prepared.ok());
  for (codec::ErasureScheme bad : {codec::ErasureScheme{0, 2}, codec::ErasureScheme{17, 1},
                                   codec::ErasureScheme{4, 0}, codec::ErasureScheme{4, 9}}) {
    EXPECT_EQ(SealShards(TestKeys(), kOwner, *prepared, bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cairn::format
