#include "cairn/codec/erasure.h"

#include <isa-l/erasure_code.h>

#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace cairn::codec {
namespace {

// ISA-L expands each coefficient into a 32-byte lookup table (ec_init_tables).
constexpr size_t kTableBytesPerCoefficient = 32;

absl::Status CheckScheme(const ErasureScheme& s) {
  if (s.k < 1 || s.k > kMaxDataShards || s.m < 1 || s.m > kMaxParityShards) {
    return absl::InvalidArgumentError(absl::StrCat("erasure scheme ", s.k, "+", s.m,
                                                   " out of range (k 1..", kMaxDataShards,
                                                   ", m 1..", kMaxParityShards, ")"));
  }
  return absl::OkStatus();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseSmallInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::string ErasureScheme::ToString() const { return absl::StrCat(k, "+", m); }

absl::StatusOr<ErasureScheme> ParseErasureScheme(std::string_view text) {
  std::string_view t = Trim(text);
  size_t plus = t.find('+');
  ErasureScheme s;
  if (plus == std::string_view::npos || !ParseSmallInt(Trim(t.substr(0, plus)), &s.k) ||
      !ParseSmallInt(Trim(t.substr(plus + 1)), &s.m)) {
    return absl::InvalidArgumentError(
        absl::StrCat("erasure scheme '", std::string(text), "' is not of the form K+M (e.g. 4+2)"));
  }
  if (absl::Status st = CheckScheme(s); !st.ok()) return st;
  return s;
}

size_t ShardSize(size_t size, int k) {
  size_t per = (size + static_cast<size_t>(k) - 1) / static_cast<size_t>(k);
  per = (per + kShardAlignment - 1) / kShardAlignment * kShardAlignment;
  return per == 0 ? kShardAlignment : per;
}

absl::StatusOr<ErasureCoder> ErasureCoder::Create(ErasureScheme scheme) {
  if (absl::Status st = CheckScheme(scheme); !st.ok()) return st;
  const int k = scheme.k, n = scheme.total();
  std::vector<uint8_t> matrix(static_cast<size_t>(n) * k);
  gf_gen_cauchy1_matrix(matrix.data(), n, k);
  std::vector<uint8_t> tables(kTableBytesPerCoefficient * static_cast<size_t>(k) * scheme.m);
  ec_init_tables(k, scheme.m, matrix.data() + static_cast<size_t>(k) * k, tables.data());
  return ErasureCoder(scheme, std::move(matrix), std::move(tables));
}

std::vector<Bytes> ErasureCoder::Encode(ByteSpan data) const {
  const int k = scheme_.k, m = scheme_.m;
  const size_t len = ShardSize(data.size(), k);
  std::vector<Bytes> shards(static_cast<size_t>(k + m));
  std::vector<uint8_t*> src(static_cast<size_t>(k)), dst(static_cast<size_t>(m));
  for (int i = 0; i < k; ++i) {
    Bytes& s = shards[static_cast<size_t>(i)];
    s.assign(len, 0);
    size_t off = static_cast<size_t>(i) * len;
    if (off < data.size())
      std::memcpy(s.data(), data.data() + off, std::min(len, data.size() - off));
    src[static_cast<size_t>(i)] = s.data();
  }
  for (int i = 0; i < m; ++i) {
    Bytes& s = shards[static_cast<size_t>(k + i)];
    s.resize(len);
    dst[static_cast<size_t>(i)] = s.data();
  }
  ec_encode_data(static_cast<int>(len), k, m, const_cast<uint8_t*>(parity_tables_.data()),
                 src.data(), dst.data());
  return shards;
}

absl::Status ErasureCoder::Reconstruct(std::vector<std::optional<Bytes>>& shards) const {
  return Rebuild(shards, /*data_only=*/false);
}

absl::Status ErasureCoder::Rebuild(std::vector<std::optional<Bytes>>& shards,
                                   bool data_only) const {
  const int k = scheme_.k, n = scheme_.total();
  if (shards.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError(absl::StrCat("erasure ", scheme_.ToString(), ": expected ", n,
                                                   " shard slots, got ", shards.size()));
  }
  std::vector<int> present, missing;
  size_t len = 0;
  for (int i = 0; i < n; ++i) {
    const auto& s = shards[static_cast<size_t>(i)];
    if (!s) {
      if (!data_only || i < k) missing.push_back(i);
      continue;
    }
    if (s->empty() || (len != 0 && s->size() != len)) {
      return absl::InvalidArgumentError(
          absl::StrCat("erasure ", scheme_.ToString(), ": shard ", i, " has ", s->size(),
                       " bytes, expected ", len == 0 ? std::string("> 0") : std::to_string(len)));
    }
    len = s->size();
    present.push_back(i);
  }
  if (present.size() < static_cast<size_t>(k)) {
    return absl::FailedPreconditionError(absl::StrCat("erasure ", scheme_.ToString(), ": ",
                                                      present.size(), " shards present, at least ",
                                                      k, " are needed to reconstruct"));
  }
  if (missing.empty()) return absl::OkStatus();
  if (len > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("erasure: shard too large");
  }
  present.resize(static_cast<size_t>(k));

  // B = the encode-matrix rows of the k survivors; D = B^-1 maps survivors to data shards.
  // A missing data shard e is row e of D; a missing parity shard p is (row p of the encode
  // matrix) x D. (ISA-L erasure_code/erasure_code_test.c, gf_gen_decode_matrix.)
  const size_t ku = static_cast<size_t>(k);
  std::vector<uint8_t> b(ku * ku), d(ku * ku);
  for (size_t r = 0; r < ku; ++r) {
    std::memcpy(&b[r * ku], &matrix_[static_cast<size_t>(present[r]) * ku], ku);
  }
  if (gf_invert_matrix(b.data(), d.data(), k) != 0) {
    return absl::InternalError("erasure: survivor matrix is singular (cannot happen for Cauchy)");
  }
  std::vector<uint8_t> rows(missing.size() * ku);
  for (size_t e = 0; e < missing.size(); ++e) {
    size_t idx = static_cast<size_t>(missing[e]);
    uint8_t* row = &rows[e * ku];
    if (idx < ku) {
      std::memcpy(row, &d[idx * ku], ku);
    } else {
      for (size_t i = 0; i < ku; ++i) {
        uint8_t acc = 0;
        for (size_t j = 0; j < ku; ++j) acc ^= gf_mul(matrix_[idx * ku + j], d[j * ku + i]);
        row[i] = acc;
      }
    }
  }
  std::vector<uint8_t> tables(kTableBytesPerCoefficient * ku * missing.size());
  ec_init_tables(k, static_cast<int>(missing.size()), rows.data(), tables.data());
  std::vector<uint8_t*> src(ku), dst(missing.size());
  for (size_t r = 0; r < ku; ++r) src[r] = shards[static_cast<size_t>(present[r])]->data();
  for (size_t e = 0; e < missing.size(); ++e) {
    auto& slot = shards[static_cast<size_t>(missing[e])];
    slot.emplace(len);
    dst[e] = slot->data();
  }
  ec_encode_data(static_cast<int>(len), k, static_cast<int>(missing.size()), tables.data(),
                 src.data(), dst.data());
  return absl::OkStatus();
}

absl::StatusOr<Bytes> ErasureCoder::Decode(std::vector<std::optional<Bytes>> shards,
                                           size_t size) const {
  const int k = scheme_.k;
  // Only the data shards are needed: missing parity is not rebuilt.
  if (absl::Status st = Rebuild(shards, /*data_only=*/true); !st.ok()) return st;
  const size_t len = shards[0]->size();
  for (int i = 1; i < k; ++i) {
    if (shards[static_cast<size_t>(i)]->size() != len) {
      return absl::InvalidArgumentError("erasure: data shards differ in length");
    }
  }
  if (size > len * static_cast<size_t>(k)) {
    return absl::InvalidArgumentError(
        absl::StrCat("erasure: ", size, " bytes requested from ", k, " shards of ", len, " bytes"));
  }
  Bytes out(size);
  for (int i = 0; i < k && static_cast<size_t>(i) * len < size; ++i) {
    size_t off = static_cast<size_t>(i) * len;
    std::memcpy(out.data() + off, shards[static_cast<size_t>(i)]->data(),
                std::min(len, size - off));
  }
  return out;
}

}  // namespace cairn::codec
