// The blob envelope: the self-describing, versioned container in which a chunk (data, tree or
// snapshot) travels and is stored (byte layout: docs/formats.md "Blob envelope v1").
//
// Layout v1 (all integers little-endian):
//   0  magic "CAIRNBLB" (8)      8  version u16 (=1)     10 kind u8 (1 data, 2 tree, 3 snapshot)
//  11  compression u8 (0 none, 1 zstd)                   12 cipher u8 (1 AES-256-GCM)
//  13  scheme u8 (1 copies, 2 erasure)  14 k u8  15 m u8  16 shard index u32
//  20  owner peer id u64        28 chunk id (32)         60 nonce (12)
//  72  payload length u64       80 payload (ciphertext) ...  then GCM tag (16)
// Copies (scheme 1): the header (bytes 0..79) is the GCM AAD, so owner, chunk id, kind and
// scheme are bound to the ciphertext.
//
// Erasure-coded shards (scheme 2, docs/formats.md "Shard envelope"): the chunk is sealed once;
// ciphertext || tag (S bytes) is split into k data + m parity shards of L bytes
// (codec/erasure.h). Shard i is the blob  header(shard = i, payload length = L - 8) || u64 S ||
// L shard bytes,  so every blob, copy or shard, is exactly 80 + payload length + 16 bytes and
// storage peers validate both alike. The AAD of the one GCM seal is the canonical header: the
// shard header with shard = kAadShardIndex and payload length = S - 16 (the ciphertext
// length), the same whichever shards rebuild it.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/codec/crypto.h"
#include "cairn/codec/erasure.h"

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

// Erasure coding applies to chunks whose sealed payload (ciphertext after compression) has at
// least this many bytes; smaller chunks are stored as m+1 copies instead: same failure
// tolerance, no tiny shards (docs/formats.md "Shard envelope"). Every plaintext under 64 KiB is
// below it.
constexpr uint64_t kMinErasurePayload = 64 << 10;
// The shard index in the AAD of an erasure-coded chunk; never a valid shard index.
constexpr uint32_t kAadShardIndex = 0xFFFFFFFF;
// Size of the u64 total sealed length S that starts a shard's body.
constexpr size_t kShardPrefixSize = 8;
// OpenChunkShards tries at most this many k-subsets of the shards it is given. C(14,10) = 1001
// covers every subset for 10+4; larger schemes with many corrupt shards may need repair.
constexpr int kMaxShardCombinations = 2048;

// A chunk with its id computed and its body compressed: the common first half of sealing
// as copies (SealCopy) or as shards (SealShards).
struct PreparedChunk {
  ChunkId id;
  BlobKind kind = BlobKind::kData;
  uint64_t plain_size = 0;
  Compression compression = Compression::kNone;
  Bytes body;  // zstd frame, or the plaintext itself when that is not larger
};

// Chunk id = HMAC(id key, plaintext) (or `chunk_id` when given; it must be that HMAC) and zstd
// compression, kept uncompressed when that is not smaller. INVALID_ARGUMENT if the plaintext
// exceeds kMaxPlaintextSize.
absl::StatusOr<PreparedChunk> PrepareChunk(const codec::OwnerKeys& keys, BlobKind kind,
                                           ByteSpan plaintext, const ChunkId* chunk_id = nullptr);

struct SealedChunk {
  ChunkId id;
  Bytes blob;               // the encoded envelope
  uint64_t plain_size = 0;  // plaintext bytes before compression
};

// Builds a copies blob for a chunk: PrepareChunk then SealCopy (AES-256-GCM, random nonce).
// `chunk_id` may be passed when already computed (it must be the HMAC of `plaintext`).
// INVALID_ARGUMENT if plaintext exceeds kMaxPlaintextSize.
absl::StatusOr<SealedChunk> SealChunk(const codec::OwnerKeys& keys, PeerId owner, BlobKind kind,
                                      ByteSpan plaintext, const ChunkId* chunk_id = nullptr);

// Encrypts a prepared chunk into one copies blob (scheme 1) under a random nonce.
SealedChunk SealCopy(const codec::OwnerKeys& keys, PeerId owner, const PreparedChunk& chunk);

struct SealedShards {
  ChunkId id;
  uint64_t plain_size = 0;
  codec::ErasureScheme scheme;
  uint64_t sealed_size = 0;   // S: ciphertext + tag bytes
  std::vector<Bytes> shards;  // k+m shard blobs; shards[i] has shard index i
};

// Encrypts a prepared chunk once (random nonce, canonical AAD) and erasure-codes ciphertext ||
// tag into k+m shard blobs (see the file comment). INVALID_ARGUMENT for a scheme outside
// 1..16 + 1..8. Any payload size works; callers apply kMinErasurePayload.
absl::StatusOr<SealedShards> SealShards(const codec::OwnerKeys& keys, PeerId owner,
                                        const PreparedChunk& chunk, codec::ErasureScheme scheme);

// One shard blob, parsed: its header, S, and its L shard bytes (a view into the blob).
struct ShardView {
  BlobHeader header;
  uint64_t sealed_size = 0;
  ByteSpan data;
};

// Parses a shard blob: ParseBlobHeader, scheme 2 with m >= 1, S >= 16 (a tag), S - 16 <=
// kMaxBlobSize and L == codec::ShardSize(S, k). INVALID_ARGUMENT otherwise (also for a copies
// blob).
absl::StatusOr<ShardView> ParseShard(ByteSpan blob);

// The 80-byte AAD header shared by all shards of one seal (shard = kAadShardIndex, payload
// length = S - 16).
Bytes ShardAadHeader(const BlobHeader& shard_header, uint64_t sealed_size);

struct OpenedShards {
  Bytes plaintext;
  // With `rebuild`: all k+m shard blobs of the seal that opened, rebuilt byte for byte
  // (what repair stores), and the indices of the given shards that differ from them.
  std::vector<Bytes> shards;
  std::vector<uint32_t> mismatched;
};

// Opens chunk `expected` from some of its shard blobs (any order, any subset). Blobs that do
// not parse or are for another owner/chunk are skipped; the rest are grouped by seal (same
// canonical header and S) and, for each group with k distinct shards, k-subsets are tried in
// lexicographic order of shard index (data shards first, which needs no decoding), up to
// kMaxShardCombinations in all: reconstruct, verify the GCM tag, decompress, recompute the
// chunk id. A corrupt shard that passed the storage peer's checksum fails the tag and the next
// subset is tried, so up to m bad shards among the k+m are survived.
// FAILED_PRECONDITION when fewer than k usable shards of one seal were given (fetch more);
// DATA_LOSS when no subset opens (the message says how many were tried).
absl::StatusOr<OpenedShards> OpenChunkShards(const codec::OwnerKeys& keys, PeerId owner,
                                             const ChunkId& expected,
                                             std::span<const ByteSpan> blobs, bool rebuild = false);

// Opens a copies blob fetched for chunk `expected`: parses the header (INVALID_ARGUMENT), checks
// owner and chunk id match (DATA_LOSS: "blob is for another chunk"), verifies the GCM tag
// (DATA_LOSS), decompresses (DATA_LOSS), and recomputes the chunk id from the plaintext
// (DATA_LOSS on mismatch). Returns the plaintext. FAILED_PRECONDITION for a shard blob
// (scheme 2: use OpenChunkShards).
// The kind is not checked: the chunk id is the HMAC of the plaintext alone, so identical
// bytes stored once as a file chunk and once as a tree (e.g. a one-byte file equal to an
// empty tree's encoding) are one chunk and one blob under one key, sealed with whichever
// kind came first. The kind is still authenticated (AAD) and reported by ParseBlobHeader.
absl::StatusOr<Bytes> OpenChunk(const codec::OwnerKeys& keys, PeerId owner, const ChunkId& expected,
                                ByteSpan blob);

}  // namespace cairn::format
