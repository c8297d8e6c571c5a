#include "cairn/codec/compress.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <random>
#include <string>

namespace cairn::codec {
namespace {

Bytes TextLike(size_t size) {
  static const char* kWords[] = {"backup ", "peer ", "chunk ",  "the ",  "snapshot ", "restore ",
                                 "of ",     "a ",    "quota\n", "blob ", "cairn ",    "host "};
  std::mt19937 rng(1);
  Bytes out;
  out.reserve(size);
  while (out.size() < size) {
    const char* w = kWords[rng() % std::size(kWords)];
    for (const char* p = w; *p && out.size() < size; ++p) out.push_back(static_cast<uint8_t>(*p));
  }
  return out;
}

Bytes Random(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A frame without the content-size field, as a streaming compressor writes it.
Bytes CompressWithoutContentSize(ByteSpan data) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  Bytes out(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  EXPECT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  return out;
}

TEST(ZstdTest, RoundTrips) {
  struct Case {
    const char* name;
    Bytes data;
  } cases[] = {{"empty", {}},
               {"one byte", {0x42}},
               {"text 1 MiB", TextLike(1 << 20)},
               {"random 1 MiB", Random(1 << 20, 7)},
               {"zeros 3 MiB", Bytes(3 << 20, 0)}};
  for (const Case& c : cases) {
    for (int level : {1, 3, 19}) {
      Bytes frame = ZstdCompress(c.data, level);
      auto out = ZstdDecompress(frame, c.data.size());
      ASSERT_TRUE(out.ok()) << c.name << " level " << level << ": " << out.status();
      EXPECT_EQ(*out, c.data) << c.name << " level " << level;
    }
  }
  EXPECT_LT(ZstdCompress(TextLike(1 << 20)).size(), (1u << 20) / 3) << "text compresses";
}

TEST(ZstdTest, UnknownContentSizeRoundTripsUnderTheBound) {
  for (size_t size : {size_t{0}, size_t{100}, size_t{1} << 20, (size_t{5} << 20) + 3}) {
    Bytes data = TextLike(size);
    Bytes frame = CompressWithoutContentSize(data);
    auto out = ZstdDecompress(frame, size);  // exactly at the bound
    ASSERT_TRUE(out.ok()) << size << ": " << out.status();
    EXPECT_EQ(*out, data) << size;
  }
}

TEST(ZstdTest, BoundExceededIsResourceExhausted) {
  Bytes data = TextLike(100000);
  EXPECT_EQ(ZstdDecompress(ZstdCompress(data), 99999).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ZstdDecompress(ZstdCompress(data), 0).status().code(),
            absl::StatusCode::kResourceExhausted);
  for (size_t bound : {size_t{0}, size_t{1}, size_t{99999}, size_t{50000}}) {
    EXPECT_EQ(ZstdDecompress(CompressWithoutContentSize(data), bound).status().code(),
              absl::StatusCode::kResourceExhausted)
        << bound;
  }
  // A tiny frame that expands to 64 MiB is refused before anything is allocated.
  Bytes bomb = ZstdCompress(Bytes(64 << 20, 0));
  EXPECT_LT(bomb.size(), 10000u);
  EXPECT_EQ(ZstdDecompress(bomb, 1 << 20).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ZstdTest, TruncatedAndGarbageFramesAreDataLoss) {
  Bytes data = TextLike(200000);
  for (Bytes frame : {ZstdCompress(data), CompressWithoutContentSize(data)}) {
    for (size_t keep :
         {size_t{0}, size_t{1}, size_t{4}, size_t{6}, frame.size() / 2, frame.size() - 1}) {
      Bytes cut(frame.begin(), frame.begin() + keep);
      EXPECT_EQ(ZstdDecompress(cut, data.size()).status().code(), absl::StatusCode::kDataLoss)
          << "kept " << keep << " of " << frame.size();
    }
    Bytes trailing = frame;
    trailing.push_back(0);
    EXPECT_EQ(ZstdDecompress(trailing, data.size()).status().code(), absl::StatusCode::kDataLoss);
    Bytes two = frame;
    two.insert(two.end(), frame.begin(), frame.end());
    EXPECT_EQ(ZstdDecompress(two, 2 * data.size()).status().code(), absl::StatusCode::kDataLoss)
        << "concatenated frames";
  }
  EXPECT_EQ(ZstdDecompress(AsBytes("definitely not zstd"), 1 << 20).status().code(),
            absl::StatusCode::kDataLoss);
  Bytes magic_then_garbage = {0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(ZstdDecompress(magic_then_garbage, 1 << 20).status().code(),
            absl::StatusCode::kDataLoss);
}

// Hostile input never crashes: random bytes, random bytes after the magic number, and
// valid frames with random bit flips all give OK, DATA_LOSS or RESOURCE_EXHAUSTED.
TEST(ZstdTest, RandomInputNeverCrashes) {
  const uint32_t seed = 20240601;
  std::mt19937 rng(seed);
  const Bytes valid = ZstdCompress(TextLike(50000));
  const Bytes valid_unknown = CompressWithoutContentSize(TextLike(50000));
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes input;
    switch (iter % 4) {
      case 0:
        input = Random(rng() % 2000, rng());
        break;
      case 1:
        input = Random(rng() % 2000, rng());
        input.insert(input.begin(), {0x28, 0xb5, 0x2f, 0xfd});
        break;
      case 2:
      case 3:
        input = iter % 4 == 2 ? valid : valid_unknown;
        for (int flips = 1 + rng() % 4; flips > 0; --flips) {
          input[rng() % input.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        }
        break;
    }
    auto out = ZstdDecompress(input, 1 << 20);
    auto code = out.status().code();
    EXPECT_TRUE(code == absl::StatusCode::kOk || code == absl::StatusCode::kDataLoss ||
                code == absl::StatusCode::kResourceExhausted)
        << "iter " << iter << " seed " << seed << ": " << out.status();
    if (out.ok()) {
      EXPECT_LE(out->size(), size_t{1} << 20);
    }
  }
}

}  // namespace
}  // namespace cairn::codec
