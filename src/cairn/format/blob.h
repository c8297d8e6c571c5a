// The blob envelope: the self-describing, versioned container in which a chunk (data, tree or
// snapshot) travels and is stored (design.md §4; byte layout in docs/formats.md).
//
// Layout v1 (all integers little-endian):
//   0  magic "CAIRNBLB" (8)      8  version u16 (=1)     10 kind u8 (1 data, 2 tree, 3 snapshot)
//  11  compression u8 (0 none, 1 zstd)                   12 cipher u8 (1 AES-256-GCM)
//  13  scheme u8 (1 copies, 2 erasure)  14 k u8  15 m u8  16 shard index u32
//  20  owner peer id u64        28 chunk id (32)         60 nonce (12)
//  72  payload length u64       80 payload (ciphertext) ...  then GCM tag (16)
// The header (bytes 0..79) minus nothing is the GCM AAD, so owner, chunk id, kind and shard
// index are bound to the ciphertext.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/codec/crypto.h"

namespace cairn::format {

constexpr uint16_t kBlobVersion = 1;
constexpr size_t kBlobHeaderSize = 80;
// Largest plaintext accepted anywhere (chunks are at most 8 MiB; trees may be larger).
constexpr uint64_t kMaxPlaintextSize = 64ull << 20;
constexpr uint64_t kMaxBlobSize = kMaxPlaintextSize + 1024;

enum class Compression : uint8_t { kNone = 0, kZstd = 1 };
enum class Cipher : uint8_t { kAes256Gcm = 1 };
enum class Scheme : uint8_t { kCopies = 1, kErasure = 2 };

struct BlobHeader {
  uint16_t version = kBlobVersion;
  BlobKind kind = BlobKind::kData;
  Compression compression = Compression::kZstd;
  Cipher cipher = Cipher::kAes256Gcm;
  Scheme scheme = Scheme::kCopies;
  uint8_t k = 1;
  uint8_t m = 0;
  uint32_t shard = 0;
  PeerId owner = 0;
  ChunkId chunk;
  codec::Nonce nonce{};
  uint64_t payload_size = 0;  // ciphertext bytes, excluding the tag
};

// Parses and validates the header and total length of an encoded blob: magic, version,
// known enum values, payload_size + header + tag == blob.size(), payload_size <= kMaxBlobSize.
// INVALID_ARGUMENT (with the reason) on anything else; never reads past `blob`.
// Scheme sanity: copies need k=1, m=0; erasure needs 1 <= k <= 16, m <= 8, shard < k+m.
absl::StatusOr<BlobHeader> ParseBlobHeader(ByteSpan blob);

// The 80 header bytes of `header` in layout v1 (no validation; ParseBlobHeader is the
// validating inverse). Used by SealChunk, by code that wraps erasure-coded shards, and by tests.
Bytes EncodeBlobHeader(const BlobHeader& header);

struct SealedChunk {
  ChunkId id;
  Bytes blob;               // the encoded envelope
  uint64_t plain_size = 0;  // plaintext bytes before compression
};

// Builds a blob for a chunk: chunk id = HMAC(id key, plaintext); compress with zstd (kept
// uncompressed when that is not smaller); encrypt with AES-256-GCM under a random nonce.
// `chunk_id` may be passed when already computed (it must be the HMAC of `plaintext`).
// INVALID_ARGUMENT if plaintext exceeds kMaxPlaintextSize.
absl::StatusOr<SealedChunk> SealChunk(const codec::OwnerKeys& keys, PeerId owner, BlobKind kind,
                                      ByteSpan plaintext, const ChunkId* chunk_id = nullptr);

// Opens a blob fetched for chunk `expected`: parses the header (INVALID_ARGUMENT), checks
// owner and chunk id match (DATA_LOSS: "blob is for another chunk"), verifies the GCM tag
// (DATA_LOSS), decompresses (DATA_LOSS), and recomputes the chunk id from the plaintext
// (DATA_LOSS on mismatch). Returns the plaintext.
// The kind is not checked: the chunk id is the HMAC of the plaintext alone, so identical
// bytes stored once as a file chunk and once as a tree (e.g. a one-byte file equal to an
// empty tree's encoding) are one chunk and one blob under one key, sealed with whichever
// kind came first. The kind is still authenticated (AAD) and reported by ParseBlobHeader.
absl::StatusOr<Bytes> OpenChunk(const codec::OwnerKeys& keys, PeerId owner,
                                const ChunkId& expected, ByteSpan blob);

}  // namespace cairn::format
