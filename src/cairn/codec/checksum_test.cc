#include "cairn/codec/checksum.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>

namespace cairn::codec {
namespace {

TEST(BlobChecksumTest, EmptyInputMatchesXxh3Canonical) {
  Checksum got = BlobChecksum({});
  // XXH3_128bits("") as XXH128_canonical_t: high 64 bits first, big-endian.
  EXPECT_EQ(ToHex(got), "99aa06d3014798d86001c324468d497f");
  XXH128_hash_t h = XXH3_128bits("", 0);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(got[i], static_cast<uint8_t>(h.high64 >> (56 - 8 * i))) << i;
    EXPECT_EQ(got[8 + i], static_cast<uint8_t>(h.low64 >> (56 - 8 * i))) << i;
  }
}

TEST(BlobChecksumTest, DetectsEveryOneBitFlip) {
  const uint32_t seed = 42;
  std::mt19937 rng(seed);
  Bytes blob(1000);
  for (auto& b : blob) b = static_cast<uint8_t>(rng());
  const Checksum base = BlobChecksum(blob);
  EXPECT_EQ(BlobChecksum(blob), base) << "deterministic";
  for (size_t bit = 0; bit < blob.size() * 8; bit += 7) {
    blob[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(BlobChecksum(blob), base) << "bit " << bit << " seed " << seed;
    blob[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace cairn::codec
