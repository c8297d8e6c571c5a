// Content-defined chunking with FastCDC.
//
// Algorithm: W. Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach
// for Data Deduplication", USENIX ATC 2016 — gear rolling hash, cut-point skipping below the
// minimum size, and normalized chunking (a stricter mask MaskS before the average size and a
// looser MaskL after it, normalization level 2). The 256-entry gear table is derived from a
// secret seed (the owner's chunker key, docs/formats.md "Chunking") so that cut points do not
// leak content.
//
// Thread-safety: immutable after construction; NextCut may be called concurrently.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"

namespace cairn::codec {

// Chunk size bounds in bytes. Defaults are restic's: 512 KiB / 1 MiB / 8 MiB.
// Recorded with the data and never changed under existing data (docs/formats.md "Chunking").
// With normalization level 2 the mean chunk of random data is above avg_size: about
// 1.2 x avg for the defaults (min = avg/2) and 1.14 x avg for min = avg/4.
struct ChunkerParams {
  uint32_t min_size = 512 * 1024;
  uint32_t avg_size = 1024 * 1024;  // must be a power of two
  uint32_t max_size = 8 * 1024 * 1024;

  // INVALID_ARGUMENT unless 64 <= min < avg < max, avg is a power of two, max <= 64 MiB.
  absl::Status Validate() const;
};

class Chunker {
 public:
  // `seed` (any length, normally 32 bytes) keys the gear table. `params` must be valid
  // (the process aborts otherwise; use Create for parameters read from disk or the network).
  //
  // Gear table (a format: never change it under existing data): for j = 0..63,
  // block_j = HMAC-SHA256(seed, "cairn/v1/gear" || u32le(j)) and gear[4j + k] is the
  // little-endian u64 in bytes 8k..8k+7 of block_j. MaskS has log2(avg)+2 and MaskL
  // log2(avg)-2 one-bits spread evenly over bits 16..63 (bit 63 - floor(48 i / n), i < n).
  Chunker(const ChunkerParams& params, ByteSpan seed);

  // As the constructor, but INVALID_ARGUMENT (from ChunkerParams::Validate) for bad params.
  static absl::StatusOr<Chunker> Create(const ChunkerParams& params, ByteSpan seed);

  // Returns the length in bytes of the chunk that starts at data[0]. Callers pass at least
  // max_size bytes unless they are at the end of the stream; the result is in
  // [min(min_size, data.size()), min(max_size, data.size())] and depends only on the content
  // (and the seed), so inserting a byte changes only the cut points near the insertion.
  size_t NextCut(ByteSpan data) const;

  const ChunkerParams& params() const { return params_; }

 private:
  ChunkerParams params_;
  std::array<uint64_t, 256> gear_;
  uint64_t mask_s_;  // more one-bits: harder to cut before avg_size
  uint64_t mask_l_;  // fewer one-bits: easier to cut after avg_size
};

}  // namespace cairn::codec
