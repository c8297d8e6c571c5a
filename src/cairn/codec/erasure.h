// Reed-Solomon erasure coding k+m over GF(2^8) (docs/formats.md "Shard envelope"), with Intel
// ISA-L. All of ISA-L lives behind this header.
//
// A buffer of S bytes is zero-padded to k * L bytes (L = ShardSize(S, k)) and cut into k data
// shards of L bytes; m parity shards of L bytes are computed with the systematic Cauchy matrix
// of ISA-L's gf_gen_cauchy1_matrix (rows 0..k-1 the identity, row k+i, column j =
// 1 / ((k+i) xor j) in GF(2^8) with polynomial x^8+x^4+x^3+x^2+1, 0x11D). Every k x k
// submatrix of a Cauchy-based systematic matrix is invertible, so any k of the k+m shards
// rebuild the rest (Blömer et al., "An XOR-based erasure-resilient coding scheme", ICSI
// TR-95-048, 1995; Plank, "Erasure Codes for Storage Systems", ;login: 38(6), 2013). The matrix
// is part of the stored format (docs/formats.md): changing it would make old shards unreadable.
//
// Thread-safety: an ErasureCoder is immutable after Create and may be used from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"

namespace cairn::codec {

constexpr int kMaxDataShards = 16;   // k
constexpr int kMaxParityShards = 8;  // m
// Shard lengths are multiples of this (bytes): keeps ISA-L's vector loops on full registers.
constexpr size_t kShardAlignment = 64;

// An erasure coding scheme k+m: k data shards, m parity shards; any k rebuild the chunk.
struct ErasureScheme {
  int k = 0;
  int m = 0;
  int total() const { return k + m; }
  std::string ToString() const;  // "4+2"
  bool operator==(const ErasureScheme&) const = default;
};

// Parses "K+M" (e.g. "4+2", "10+4"; surrounding spaces allowed). INVALID_ARGUMENT unless
// 1 <= K <= kMaxDataShards and 1 <= M <= kMaxParityShards.
absl::StatusOr<ErasureScheme> ParseErasureScheme(std::string_view text);

// L: bytes per shard for `size` bytes of input: ceil(size / k) rounded up to a multiple of
// kShardAlignment; at least kShardAlignment.
size_t ShardSize(size_t size, int k);

class ErasureCoder {
 public:
  // INVALID_ARGUMENT unless 1 <= k <= kMaxDataShards and 1 <= m <= kMaxParityShards.
  static absl::StatusOr<ErasureCoder> Create(ErasureScheme scheme);

  const ErasureScheme& scheme() const { return scheme_; }

  // Splits `data` into k data shards (zero-padded) and appends m parity shards: k+m shards
  // of ShardSize(data.size(), k) bytes each, shard i at index i.
  std::vector<Bytes> Encode(ByteSpan data) const;

  // Rebuilds the missing shards in place. `shards` has k+m entries (index = shard number);
  // nullopt marks an erasure; present shards must all have the same non-zero length.
  // When more than k are present the first k (by index) are used; the others are left as
  // they are (the code cannot tell which present shard is wrong: callers verify the result).
  // FAILED_PRECONDITION when fewer than k shards are present (nothing to rebuild from);
  // INVALID_ARGUMENT when the vector length or shard lengths are wrong.
  absl::Status Reconstruct(std::vector<std::optional<Bytes>>& shards) const;

  // Reconstructs (as above) and returns the first `size` bytes of the concatenated data
  // shards: the original input of Encode. Same status codes, plus INVALID_ARGUMENT when
  // `size` exceeds k x the shard length.
  absl::StatusOr<Bytes> Decode(std::vector<std::optional<Bytes>> shards, size_t size) const;

 private:
  absl::Status Rebuild(std::vector<std::optional<Bytes>>& shards, bool data_only) const;
  ErasureCoder(ErasureScheme scheme, std::vector<uint8_t> matrix, std::vector<uint8_t> tables)
      : scheme_(scheme), matrix_(std::move(matrix)), parity_tables_(std::move(tables)) {}

  ErasureScheme scheme_;
  std::vector<uint8_t> matrix_;         // (k+m) x k encode matrix, row-major
  std::vector<uint8_t> parity_tables_;  // ec_init_tables of the m parity rows
};

}  // namespace cairn::codec
