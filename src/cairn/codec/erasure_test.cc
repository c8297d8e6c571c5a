#include "cairn/codec/erasure.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cairn/codec/crypto.h"

namespace cairn::codec {
namespace {

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// All subsets of {0..n-1} with at most `max` elements, as index lists.
std::vector<std::vector<int>> SubsetsUpTo(int n, int max) {
  std::vector<std::vector<int>> out;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) > max) continue;
    std::vector<int> s;
    for (int i = 0; i < n; ++i)
      if (mask & (1u << i)) s.push_back(i);
    out.push_back(std::move(s));
  }
  return out;
}

std::string Describe(const std::vector<int>& erased) {
  std::string s = "erased {";
  for (size_t i = 0; i < erased.size(); ++i) s += (i ? "," : "") + std::to_string(erased[i]);
  return s + "}";
}

TEST(ErasureSchemeTest, ParsesAndRejects) {
  struct Case {
    std::string text;
    bool ok;
    int k, m;
  };
  const Case cases[] = {
      {"4+2", true, 4, 2},   {" 10 + 4 ", true, 10, 4}, {"16+8", true, 16, 8}, {"1+1", true, 1, 1},
      {"17+2", false, 0, 0}, {"4+9", false, 0, 0},      {"0+2", false, 0, 0},  {"4+0", false, 0, 0},
      {"4", false, 0, 0},    {"4+", false, 0, 0},       {"+2", false, 0, 0},   {"a+b", false, 0, 0},
      {"-1+2", false, 0, 0}, {"4+2+1", false, 0, 0},    {"", false, 0, 0},     {"4x2", false, 0, 0},
  };
  for (const auto& c : cases) {
    auto s = ParseErasureScheme(c.text);
    EXPECT_EQ(s.ok(), c.ok) << "'" << c.text << "': " << s.status();
    if (c.ok && s.ok()) {
      EXPECT_EQ(s->k, c.k);
      EXPECT_EQ(s->m, c.m);
      EXPECT_EQ(ParseErasureScheme(s->ToString())->k, c.k);
    }
    if (!c.ok && !s.ok()) {
      EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(ErasureCoderTest, CreateRejectsOutOfRange) {
  for (ErasureScheme s :
       {ErasureScheme{0, 2}, ErasureScheme{17, 2}, ErasureScheme{4, 0}, ErasureScheme{4, 9}}) {
    auto c = ErasureCoder::Create(s);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << s.ToString();
  }
}

TEST(ErasureCoderTest, ShardSizeIsAlignedAndCovers) {
  for (size_t size : {0ul, 1ul, 63ul, 64ul, 65ul, 1000ul, 1ul << 20, (1ul << 20) + 17}) {
    for (int k : {1, 3, 4, 10, 16}) {
      size_t l = ShardSize(size, k);
      EXPECT_EQ(l % kShardAlignment, 0u);
      EXPECT_GE(l * static_cast<size_t>(k), size);
      EXPECT_LT(l * static_cast<size_t>(k), size + static_cast<size_t>(k) * kShardAlignment + 1);
      EXPECT_GE(l, kShardAlignment);
    }
  }
}

// The acceptance test: every combination of up to m erasures rebuilds every shard
// byte for byte, and Decode returns the input, for sizes that are not multiples of k.
TEST(ErasureCoderTest, ReconstructsEveryCombinationOfUpToMErasures) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (ErasureScheme scheme : {ErasureScheme{4, 2}, ErasureScheme{10, 4}}) {
    auto coder = ErasureCoder::Create(scheme);
    ASSERT_TRUE(coder.ok()) << coder.status();
    const size_t size = 1 + rng() % 20000;  // rarely a multiple of k or of the alignment
    SCOPED_TRACE(scheme.ToString() + " size " + std::to_string(size));
    Bytes data = RandomBytes(rng, size);
    std::vector<Bytes> shards = coder->Encode(data);
    ASSERT_EQ(shards.size(), static_cast<size_t>(scheme.total()));
    // Systematic: data shards are the input, zero-padded.
    for (int i = 0; i < scheme.k; ++i) {
      size_t off = static_cast<size_t>(i) * shards[0].size();
      for (size_t j = 0; j < shards[0].size(); ++j) {
        uint8_t want = off + j < size ? data[off + j] : 0;
        ASSERT_EQ(shards[static_cast<size_t>(i)][j], want) << "shard " << i << " byte " << j;
      }
    }
    int combinations = 0;
    for (const auto& erased : SubsetsUpTo(scheme.total(), scheme.m)) {
      std::vector<std::optional<Bytes>> slots(shards.begin(), shards.end());
      for (int e : erased) slots[static_cast<size_t>(e)].reset();
      auto decoded = coder->Decode(slots, size);
      ASSERT_TRUE(decoded.ok()) << Describe(erased) << ": " << decoded.status();
      ASSERT_EQ(*decoded, data) << Describe(erased);
      ASSERT_TRUE(coder->Reconstruct(slots).ok()) << Describe(erased);
      for (int i = 0; i < scheme.total(); ++i) {
        ASSERT_TRUE(slots[static_cast<size_t>(i)].has_value());
        ASSERT_EQ(*slots[static_cast<size_t>(i)], shards[static_cast<size_t>(i)])
            << Describe(erased) << " shard " << i;
      }
      ++combinations;
    }
    EXPECT_EQ(combinations, scheme.k == 4 ? 22 : 1471);  // sum of C(k+m, e), e = 0..m
  }
}

TEST(ErasureCoderTest, RandomSizesRoundTrip) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 40; ++round) {
    ErasureScheme scheme{1 + static_cast<int>(rng() % kMaxDataShards),
                         1 + static_cast<int>(rng() % kMaxParityShards)};
    auto coder = ErasureCoder::Create(scheme);
    ASSERT_TRUE(coder.ok());
    size_t size = rng() % 3 == 0 ? rng() % 100 : rng() % (300 << 10);
    SCOPED_TRACE(scheme.ToString() + " size " + std::to_string(size));
    Bytes data = RandomBytes(rng, size);
    std::vector<Bytes> shards = coder->Encode(data);
    std::vector<std::optional<Bytes>> slots(shards.begin(), shards.end());
    // Erase m random shards.
    std::vector<int> idx(static_cast<size_t>(scheme.total()));
    for (int i = 0; i < scheme.total(); ++i) idx[static_cast<size_t>(i)] = i;
    std::shuffle(idx.begin(), idx.end(), rng);
    for (int i = 0; i < scheme.m; ++i)
      slots[static_cast<size_t>(idx[static_cast<size_t>(i)])].reset();
    auto decoded = coder->Decode(slots, size);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, data);
  }
}

TEST(ErasureCoderTest, FewerThanKShardsIsFailedPrecondition) {
  auto coder = ErasureCoder::Create({4, 2});
  ASSERT_TRUE(coder.ok());
  Bytes data(5000, 7);
  std::vector<Bytes> shards = coder->Encode(data);
  std::vector<std::optional<Bytes>> slots(shards.begin(), shards.end());
  slots[0].reset();
  slots[2].reset();
  slots[5].reset();  // 3 of 6 left, 4 needed
  absl::Status st = coder->Reconstruct(slots);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("at least 4"), std::string::npos) << st;
  EXPECT_EQ(coder->Decode(slots, data.size()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ErasureCoderTest, RejectsMalformedInput) {
  auto coder = ErasureCoder::Create({4, 2});
  ASSERT_TRUE(coder.ok());
  std::vector<Bytes> shards = coder->Encode(Bytes(1000, 1));
  std::vector<std::optional<Bytes>> slots(shards.begin(), shards.end());
  // Wrong slot count.
  std::vector<std::optional<Bytes>> five(slots.begin(), slots.begin() + 5);
  EXPECT_EQ(coder->Reconstruct(five).code(), absl::StatusCode::kInvalidArgument);
  // Shards of different lengths.
  auto uneven = slots;
  uneven[1]->push_back(0);
  uneven[0].reset();
  EXPECT_EQ(coder->Reconstruct(uneven).code(), absl::StatusCode::kInvalidArgument);
  // More bytes asked than the shards hold.
  EXPECT_EQ(coder->Decode(slots, 4 * shards[0].size() + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The encode matrix is part of the stored format: these digests pin it (docs/formats.md).
TEST(ErasureCoderTest, ParityIsStable) {
  Bytes data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  auto coder = ErasureCoder::Create({4, 2});
  ASSERT_TRUE(coder.ok());
  std::vector<Bytes> shards = coder->Encode(data);
  Bytes parity = shards[4];
  parity.insert(parity.end(), shards[5].begin(), shards[5].end());
  EXPECT_EQ(ToHex(Sha256(parity)),
            "f2d7b299ad3eaa926c3d9026bd28daadf6ba08bea282ce55f533750cc71c28bd");
}

}  // namespace
}  // namespace cairn::codec
