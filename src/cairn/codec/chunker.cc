#include "cairn/codec/chunker.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"

namespace cairn::codec {
namespace {

// Derivation domain for the gear table (see chunker.h). Never change: cut points of stored
// data depend on it.
constexpr char kGearInfo[] = "cairn/v1/gear";

// A mask with `bits` one-bits spread evenly over bits 16..63 of the fingerprint. Bit i of the
// gear hash depends on the last i+1 bytes, so high bits give the widest effective window
// (FastCDC §3.3 spreads the mask bits the same way, "padding zeros" between them).
uint64_t SpreadMask(int bits) {
  uint64_t mask = 0;
  for (int i = 0; i < bits; ++i) mask |= uint64_t{1} << (63 - (i * 48) / bits);
  return mask;
}

}  // namespace

absl::Status ChunkerParams::Validate() const {
  if (min_size < 64 || !(min_size < avg_size) || !(avg_size < max_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunker sizes must satisfy 64 <= min < avg < max, got min=", min_size,
                     " avg=", avg_size, " max=", max_size));
  }
  if (!std::has_single_bit(avg_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunker avg_size must be a power of two, got ", avg_size));
  }
  if (max_size > 64u * 1024 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunker max_size must be at most 64 MiB, got ", max_size));
  }
  return absl::OkStatus();
}

Chunker::Chunker(const ChunkerParams& params, ByteSpan seed) : params_(params) {
  absl::Status valid = params.Validate();
  if (!valid.ok()) {
    std::fprintf(stderr, "cairn::codec::Chunker: %s\n", valid.ToString().c_str());
    std::abort();
  }
  // gear[4j + k] = little-endian u64 from bytes 8k..8k+7 of
  // HMAC-SHA256(seed, "cairn/v1/gear" || u32le(j)), j = 0..63.
  for (uint32_t j = 0; j < 64; ++j) {
    std::string msg(kGearInfo);
    for (int s = 0; s < 32; s += 8) msg.push_back(static_cast<char>((j >> s) & 0xff));
    std::array<uint8_t, 32> block = HmacSha256(seed, AsBytes(msg));
    for (int k = 0; k < 4; ++k) {
      uint64_t v = 0;
      for (int b = 7; b >= 0; --b) v = (v << 8) | block[8 * k + b];
      gear_[4 * j + k] = v;
    }
  }
  // Normalization level 2 (FastCDC §3.4): log2(avg)+2 bits before avg, log2(avg)-2 after.
  const int avg_bits = std::countr_zero(params.avg_size);
  mask_s_ = SpreadMask(avg_bits + 2);
  mask_l_ = SpreadMask(avg_bits - 2);
}

absl::StatusOr<Chunker> Chunker::Create(const ChunkerParams& params, ByteSpan seed) {
  CAIRN_RETURN_IF_ERROR(params.Validate());
  return Chunker(params, seed);
}

size_t Chunker::NextCut(ByteSpan data) const {
  const size_t n = data.size();
  // Cut-point skipping (FastCDC §3.2): no boundary is looked for below min_size, and the hash
  // starts fresh there.
  if (n <= params_.min_size) return n;
  const size_t end = std::min<size_t>(n, params_.max_size);
  const size_t normal = std::min<size_t>(end, params_.avg_size);
  const uint8_t* p = data.data();
  const uint64_t* gear = gear_.data();
  uint64_t fp = 0;
  size_t i = params_.min_size;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear[p[i]];
    if ((fp & mask_s_) == 0) return i + 1;
  }
  for (; i < end; ++i) {
    fp = (fp << 1) + gear[p[i]];
    if ((fp & mask_l_) == 0) return i + 1;
  }
  return end;  // hard cut at max_size (or the end of the stream)
}

}  // namespace cairn::codec
