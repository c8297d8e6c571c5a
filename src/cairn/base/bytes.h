// Byte buffers, hex encoding and human-readable sizes.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// Lower-case hex of `data` (2 characters per byte).
std::string ToHex(ByteSpan data);
// Parses hex (either case, even length). INVALID_ARGUMENT on any other character or odd length.
absl::StatusOr<Bytes> FromHex(std::string_view hex);

// Parses a size: plain bytes ("1048576") or a number with a binary suffix K, M, G, T
// (optionally followed by "B" or "iB"; case-insensitive), e.g. "500M", "20G", "1.5T".
// INVALID_ARGUMENT for anything else, negative values, or overflow.
absl::StatusOr<uint64_t> ParseSize(std::string_view text);
// Formats bytes with a binary suffix and one decimal: "512 B", "1.5 KiB", "20.0 GiB".
std::string FormatSize(uint64_t bytes);

// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Little-endian fixed-width encoding helpers for binary formats.
void PutU16(Bytes& out, uint16_t v);
void PutU32(Bytes& out, uint32_t v);
void PutU64(Bytes& out, uint64_t v);
uint16_t GetU16(const uint8_t* p);
uint32_t GetU32(const uint8_t* p);
uint64_t GetU64(const uint8_t* p);

}  // namespace cairn
