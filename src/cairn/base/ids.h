// Identifiers shared by every layer: peer ids, chunk ids and blob keys.
// Value types; thread-compatible.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "cairn/base/bytes.h"

namespace cairn {

// A peer's permanent integer id, unique in the cluster.
using PeerId = uint64_t;

// Chunk id: HMAC-SHA256(owner id key, plaintext), 32 bytes (docs/formats.md "Keys").
struct ChunkId {
  static constexpr size_t kSize = 32;
  std::array<uint8_t, kSize> bytes{};

  std::string Hex() const { return ToHex(bytes); }
  // First 8 bytes as hex: what people see in logs and `cairn snapshots`.
  std::string ShortHex() const { return ToHex(ByteSpan(bytes.data(), 4)); }
  bool IsZero() const {
    for (uint8_t b : bytes)
      if (b) return false;
    return true;
  }
  // INVALID_ARGUMENT unless `data` is exactly 32 bytes.
  static absl::StatusOr<ChunkId> FromBytes(ByteSpan data) {
    if (data.size() != kSize) return absl::InvalidArgumentError("chunk id must be 32 bytes");
    ChunkId id;
    std::memcpy(id.bytes.data(), data.data(), kSize);
    return id;
  }
  static absl::StatusOr<ChunkId> FromHex(std::string_view hex) {
    auto b = cairn::FromHex(hex);
    if (!b.ok()) return b.status();
    return FromBytes(*b);
  }
  auto operator<=>(const ChunkId&) const = default;
  bool operator==(const ChunkId&) const = default;
};

// What a blob holds (docs/formats.md "Blob envelope v1": field kind).
enum class BlobKind : uint8_t { kData = 1, kTree = 2, kSnapshot = 3 };

// Key of a blob on a storage peer: (owner peer id, chunk id, shard index) (docs/formats.md
// "Blob key and file layout on a storage peer"). Replicas use shard 0; erasure-coded shards use
// 0..k+m-1.
struct BlobKey {
  PeerId owner = 0;
  ChunkId chunk;
  uint32_t shard = 0;

  auto operator<=>(const BlobKey&) const = default;
  bool operator==(const BlobKey&) const = default;
  std::string DebugString() const;
};

inline std::string BlobKey::DebugString() const {
  return std::to_string(owner) + "/" + chunk.ShortHex() + "/" + std::to_string(shard);
}

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);  // ids are uniformly random already
    return h;
  }
};
struct BlobKeyHash {
  size_t operator()(const BlobKey& k) const {
    return ChunkIdHash()(k.chunk) ^ (k.owner * 0x9E3779B97F4A7C15ull) ^ k.shard;
  }
};

}  // namespace cairn
