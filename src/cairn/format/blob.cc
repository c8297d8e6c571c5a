#include "cairn/format/blob.h"

#include <cstring>
#include <string>

#include "cairn/base/status.h"
#include "cairn/codec/compress.h"

namespace cairn::format {
namespace {

constexpr char kMagic[8] = {'C', 'A', 'I', 'R', 'N', 'B', 'L', 'B'};

// Field offsets of layout v1 (see blob.h).
constexpr size_t kOffVersion = 8;
constexpr size_t kOffKind = 10;
constexpr size_t kOffCompression = 11;
constexpr size_t kOffCipher = 12;
constexpr size_t kOffScheme = 13;
constexpr size_t kOffK = 14;
constexpr size_t kOffM = 15;
constexpr size_t kOffShard = 16;
constexpr size_t kOffOwner = 20;
constexpr size_t kOffChunk = 28;
constexpr size_t kOffNonce = 60;
constexpr size_t kOffPayloadSize = 72;
static_assert(kOffPayloadSize + 8 == kBlobHeaderSize);
static_assert(kOffNonce + codec::kNonceSize == kOffPayloadSize);
static_assert(kOffChunk + ChunkId::kSize == kOffNonce);

constexpr uint8_t kMaxErasureK = 16;
constexpr uint8_t kMaxErasureM = 8;

absl::Status Invalid(const std::string& why) {
  return absl::InvalidArgumentError("malformed blob: " + why);
}

}  // namespace

Bytes EncodeBlobHeader(const BlobHeader& h) {
  Bytes out;
  out.reserve(kBlobHeaderSize);
  out.insert(out.end(), kMagic, kMagic + sizeof kMagic);
  PutU16(out, h.version);
  out.push_back(static_cast<uint8_t>(h.kind));
  out.push_back(static_cast<uint8_t>(h.compression));
  out.push_back(static_cast<uint8_t>(h.cipher));
  out.push_back(static_cast<uint8_t>(h.scheme));
  out.push_back(h.k);
  out.push_back(h.m);
  PutU32(out, h.shard);
  PutU64(out, h.owner);
  out.insert(out.end(), h.chunk.bytes.begin(), h.chunk.bytes.end());
  out.insert(out.end(), h.nonce.begin(), h.nonce.end());
  PutU64(out, h.payload_size);
  return out;
}

absl::StatusOr<BlobHeader> ParseBlobHeader(ByteSpan blob) {
  if (blob.size() < kBlobHeaderSize + codec::kTagSize) {
    return Invalid("too short (" + std::to_string(blob.size()) + " bytes)");
  }
  const uint8_t* p = blob.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return Invalid("bad magic");
  BlobHeader h;
  h.version = GetU16(p + kOffVersion);
  if (h.version != kBlobVersion) {
    return Invalid("unsupported version " + std::to_string(h.version));
  }
  uint8_t kind = p[kOffKind];
  if (kind < 1 || kind > 3) return Invalid("unknown kind " + std::to_string(kind));
  h.kind = static_cast<BlobKind>(kind);
  uint8_t compression = p[kOffCompression];
  if (compression > 1) return Invalid("unknown compression " + std::to_string(compression));
  h.compression = static_cast<Compression>(compression);
  uint8_t cipher = p[kOffCipher];
  if (cipher != 1) return Invalid("unknown cipher " + std::to_string(cipher));
  h.cipher = Cipher::kAes256Gcm;
  uint8_t scheme = p[kOffScheme];
  h.k = p[kOffK];
  h.m = p[kOffM];
  h.shard = GetU32(p + kOffShard);
  if (scheme == static_cast<uint8_t>(Scheme::kCopies)) {
    if (h.k != 1 || h.m != 0) return Invalid("copies scheme needs k=1, m=0");
  } else if (scheme == static_cast<uint8_t>(Scheme::kErasure)) {
    if (h.k < 1 || h.k > kMaxErasureK || h.m > kMaxErasureM) {
      return Invalid("erasure scheme k=" + std::to_string(h.k) + " m=" + std::to_string(h.m) +
                     " out of range");
    }
    if (h.shard >= static_cast<uint32_t>(h.k) + h.m) {
      return Invalid("shard " + std::to_string(h.shard) + " out of range");
    }
  } else {
    return Invalid("unknown scheme " + std::to_string(scheme));
  }
  h.scheme = static_cast<Scheme>(scheme);
  h.owner = GetU64(p + kOffOwner);
  std::memcpy(h.chunk.bytes.data(), p + kOffChunk, ChunkId::kSize);
  std::memcpy(h.nonce.data(), p + kOffNonce, codec::kNonceSize);
  h.payload_size = GetU64(p + kOffPayloadSize);
  if (h.payload_size > kMaxBlobSize) {
    return Invalid("payload of " + std::to_string(h.payload_size) + " bytes is too large");
  }
  // Cannot overflow: blob.size() >= header + tag was checked above.
  if (h.payload_size != blob.size() - kBlobHeaderSize - codec::kTagSize) {
    return Invalid("payload length " + std::to_string(h.payload_size) + " does not match " +
                   std::to_string(blob.size()) + " blob bytes");
  }
  return h;
}

absl::StatusOr<SealedChunk> SealChunk(const codec::OwnerKeys& keys, PeerId owner, BlobKind kind,
                                      ByteSpan plaintext, const ChunkId* chunk_id) {
  if (plaintext.size() > kMaxPlaintextSize) {
    return absl::InvalidArgumentError("chunk of " + std::to_string(plaintext.size()) +
                                      " bytes exceeds the maximum of " +
                                      std::to_string(kMaxPlaintextSize));
  }
  SealedChunk out;
  out.id = chunk_id != nullptr ? *chunk_id : codec::ComputeChunkId(keys.id_key, plaintext);
  out.plain_size = plaintext.size();

  BlobHeader h;
  h.kind = kind;
  h.owner = owner;
  h.chunk = out.id;
  h.nonce = codec::RandomNonce();

  // Kept uncompressed when zstd does not make it smaller (random or already compressed data;
  // an empty plaintext).
  Bytes compressed;
  ByteSpan body = plaintext;
  h.compression = Compression::kNone;
  if (!plaintext.empty()) {
    compressed = codec::ZstdCompress(plaintext);
    if (compressed.size() < plaintext.size()) {
      body = compressed;
      h.compression = Compression::kZstd;
    }
  }
  h.payload_size = body.size();

  out.blob = EncodeBlobHeader(h);
  Bytes sealed = codec::AeadSeal(keys.encryption_key, h.nonce, out.blob, body);
  out.blob.insert(out.blob.end(), sealed.begin(), sealed.end());
  return out;
}

absl::StatusOr<Bytes> OpenChunk(const codec::OwnerKeys& keys, PeerId owner,
                                const ChunkId& expected, ByteSpan blob) {
  CAIRN_ASSIGN_OR_RETURN(BlobHeader h, ParseBlobHeader(blob));
  if (h.owner != owner || h.chunk != expected) {
    return absl::DataLossError("blob is for another chunk: expected " + expected.ShortHex() +
                               " of owner " + std::to_string(owner) + ", got " +
                               h.chunk.ShortHex() + " of owner " + std::to_string(h.owner));
  }
  ByteSpan aad = blob.first(kBlobHeaderSize);
  auto body = codec::AeadOpen(keys.encryption_key, h.nonce, aad, blob.subspan(kBlobHeaderSize));
  if (!body.ok()) {
    return absl::DataLossError("blob " + expected.ShortHex() +
                               " failed authentication: " + std::string(body.status().message()));
  }
  Bytes plaintext;
  if (h.compression == Compression::kZstd) {
    auto d = codec::ZstdDecompress(*body, kMaxPlaintextSize);
    if (!d.ok()) {
      return absl::DataLossError("blob " + expected.ShortHex() +
                                 " does not decompress: " + std::string(d.status().message()));
    }
    plaintext = std::move(*d);
  } else {
    if (body->size() > kMaxPlaintextSize) {
      return absl::DataLossError("blob " + expected.ShortHex() + " plaintext too large");
    }
    plaintext = std::move(*body);
  }
  ChunkId actual = codec::ComputeChunkId(keys.id_key, plaintext);
  if (!codec::ConstantTimeEqual(actual.bytes, expected.bytes)) {
    return absl::DataLossError("blob " + expected.ShortHex() +
                               " content does not match its chunk id");
  }
  return plaintext;
}

}  // namespace cairn::format
