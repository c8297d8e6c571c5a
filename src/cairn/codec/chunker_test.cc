#include "cairn/codec/chunker.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "cairn/codec/checksum.h"

namespace cairn::codec {
namespace {

constexpr size_t kMiB = 1 << 20;

Bytes RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(size);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k) out[i + k] = static_cast<uint8_t>(v >> (8 * k));
  }
  for (; i < size; ++i) out[i] = static_cast<uint8_t>(rng());
  return out;
}

// Chunk lengths of `data`, feeding NextCut at most max_size bytes at a time as a streaming
// caller would (cut points must not depend on how much lookahead is passed).
std::vector<size_t> Chunk(const Chunker& chunker, ByteSpan data) {
  std::vector<size_t> lengths;
  size_t off = 0;
  while (off < data.size()) {
    ByteSpan rest = data.subspan(off);
    size_t n = chunker.NextCut(rest);
    EXPECT_EQ(
        n, chunker.NextCut(rest.first(std::min<size_t>(rest.size(), chunker.params().max_size))));
    EXPECT_GT(n, 0u);
    lengths.push_back(n);
    off += n;
  }
  return lengths;
}

Bytes SeedOf(uint8_t fill) { return Bytes(32, fill); }

void ExpectBoundsAndMean(const ChunkerParams& params, size_t total, uint64_t seed) {
  Chunker chunker(params, SeedOf(3));
  Bytes data = RandomBytes(total, seed);
  std::vector<size_t> lengths = Chunk(chunker, data);
  ASSERT_GE(lengths.size(), 2u);
  size_t sum = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    sum += lengths[i];
    EXPECT_LE(lengths[i], params.max_size) << i;
    if (i + 1 < lengths.size()) {
      EXPECT_GE(lengths[i], params.min_size) << i;
    }
  }
  EXPECT_EQ(sum, data.size());
  // Tolerance: mean within ±25% of avg_size. Normalized chunking (level 2) with
  // min = avg/2 or avg/4 expects a mean of ~1.14-1.20 x avg on random data
  // (min + E[bytes to a MaskS hit before avg] + P(no hit) * avg/4), so this mainly catches a
  // wrong mask (one bit off doubles or halves the mean).
  double mean = static_cast<double>(sum) / static_cast<double>(lengths.size());
  EXPECT_GT(mean, 0.75 * params.avg_size) << "mean " << mean << " data seed " << seed;
  EXPECT_LT(mean, 1.25 * params.avg_size) << "mean " << mean << " data seed " << seed;
}

TEST(ChunkerParamsTest, Validate) {
  struct Case {
    uint32_t min, avg, max;
    bool ok;
  } cases[] = {
      {512 << 10, 1 << 20, 8 << 20, true},         // defaults
      {2 << 10, 8 << 10, 64 << 10, true},          // small
      {64, 128, 256, true},                        // smallest allowed
      {1 << 20, 16 << 20, 64 << 20, true},         // largest max
      {63, 128, 256, false},                       // min too small
      {1 << 20, 1 << 20, 8 << 20, false},          // min == avg
      {512 << 10, 1000000, 8 << 20, false},        // avg not a power of two
      {512 << 10, 8 << 20, 8 << 20, false},        // avg == max
      {2 << 20, 1 << 20, 8 << 20, false},          // min > avg
      {1 << 20, 16 << 20, (64 << 20) + 1, false},  // max > 64 MiB
      {0, 0, 0, false},
  };
  for (const Case& c : cases) {
    ChunkerParams p{c.min, c.avg, c.max};
    absl::Status s = p.Validate();
    EXPECT_EQ(s.ok(), c.ok) << c.min << "/" << c.avg << "/" << c.max << ": " << s;
    if (!c.ok) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(Chunker::Create(p, SeedOf(1)).status().code(), absl::StatusCode::kInvalidArgument);
    } else {
      EXPECT_TRUE(Chunker::Create(p, SeedOf(1)).ok());
    }
  }
  EXPECT_TRUE(ChunkerParams{}.Validate().ok());
}

TEST(ChunkerTest, ShortInputsAreOneChunk) {
  ChunkerParams params;
  Chunker chunker(params, SeedOf(1));
  EXPECT_EQ(chunker.NextCut({}), 0u);
  Bytes data = RandomBytes(params.min_size, 1);
  EXPECT_EQ(chunker.NextCut(ByteSpan(data).first(10)), 10u);
  EXPECT_EQ(chunker.NextCut(data), params.min_size);
}

TEST(ChunkerTest, HardCutAtMaxSize) {
  ChunkerParams params{2 << 10, 8 << 10, 64 << 10};
  Chunker chunker(params, SeedOf(1));
  // Constant data: the gear hash settles to a fixed value, so unless that value happens to
  // hit a mask every chunk is cut at max_size.
  for (uint8_t fill : {0x00, 0x41, 0xff}) {
    Bytes data(1 << 20, fill);
    std::vector<size_t> lengths = Chunk(chunker, data);
    for (size_t i = 0; i + 1 < lengths.size(); ++i) {
      EXPECT_GE(lengths[i], params.min_size);
      EXPECT_LE(lengths[i], params.max_size);
    }
  }
}

TEST(ChunkerTest, DeterministicForSameSeedAndData) {
  Bytes data = RandomBytes(16 * kMiB, 11);
  Chunker a(ChunkerParams{}, SeedOf(5));
  Chunker b(ChunkerParams{}, SeedOf(5));
  std::vector<size_t> cuts = Chunk(a, data);
  EXPECT_GT(cuts.size(), 5u);
  EXPECT_EQ(cuts, Chunk(a, data));
  EXPECT_EQ(cuts, Chunk(b, data));
}

TEST(ChunkerTest, DifferentSeedGivesDifferentCuts) {
  Bytes data = RandomBytes(16 * kMiB, 12);
  std::vector<size_t> a = Chunk(Chunker(ChunkerParams{}, SeedOf(5)), data);
  std::vector<size_t> b = Chunk(Chunker(ChunkerParams{}, SeedOf(6)), data);
  std::vector<size_t> c = Chunk(Chunker(ChunkerParams{}, Bytes{1, 2, 3}), data);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
  // Not merely shifted: almost no cut point (as an absolute offset) is shared.
  std::set<size_t> offsets_a;
  size_t off = 0;
  for (size_t n : a) offsets_a.insert(off += n);
  size_t shared = 0;
  off = 0;
  for (size_t n : b) shared += offsets_a.count(off += n);
  EXPECT_LE(shared, 2u) << "the final cut (end of data) may be shared";
}

TEST(ChunkerTest, DefaultParamsBoundsAndMeanOver64MiB) {
  ExpectBoundsAndMean(ChunkerParams{}, 64 * kMiB, 21);
}

TEST(ChunkerTest, SmallParamsBoundsAndMeanOver16MiB) {
  ExpectBoundsAndMean(ChunkerParams{2 << 10, 8 << 10, 64 << 10}, 16 * kMiB, 22);
}

// Content-defined: inserting one byte near the start changes only the chunk(s) around it.
TEST(ChunkerTest, InsertionChangesOnlyNearbyChunks) {
  struct Case {
    ChunkerParams params;
    size_t size;
  } cases[] = {{ChunkerParams{}, 32 * kMiB}, {ChunkerParams{2 << 10, 8 << 10, 64 << 10}, 4 * kMiB}};
  for (const Case& c : cases) {
    const uint64_t seed = 31;
    Chunker chunker(c.params, SeedOf(9));
    Bytes original = RandomBytes(c.size, seed);
    Bytes edited = original;
    edited.insert(edited.begin() + 1000, 0x5a);

    auto chunk_sums = [&](const Bytes& data) {
      std::vector<Checksum> sums;
      size_t off = 0;
      for (size_t n : Chunk(chunker, data)) {
        sums.push_back(BlobChecksum(ByteSpan(data).subspan(off, n)));
        off += n;
      }
      return sums;
    };
    std::vector<Checksum> before = chunk_sums(original);
    std::vector<Checksum> after = chunk_sums(edited);
    std::set<Checksum> known(before.begin(), before.end());
    size_t shared = 0;
    for (const Checksum& s : after) shared += known.count(s);
    double fraction = static_cast<double>(shared) / static_cast<double>(after.size());
    EXPECT_GE(fraction, 0.90) << shared << " of " << after.size() << " chunks shared, avg "
                              << c.params.avg_size << " data seed " << seed;
    EXPECT_LT(shared, after.size()) << "the chunk holding the insertion must change";
  }
}

}  // namespace
}  // namespace cairn::codec
