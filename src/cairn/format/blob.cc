#include "cairn/format/blob.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
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

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
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

absl::StatusOr<PreparedChunk> PrepareChunk(const codec::OwnerKeys& keys, BlobKind kind,
                                           ByteSpan plaintext, const ChunkId* chunk_id) {
  if (plaintext.size() > kMaxPlaintextSize) {
    return absl::InvalidArgumentError("chunk of " + std::to_string(plaintext.size()) +
                                      " bytes exceeds the maximum of " +
                                      std::to_string(kMaxPlaintextSize));
  }
  // zstd level 1 (docs/formats.md "Blob envelope"): about twice as fast as level 3 for ~8%
  // larger output; the level is not recorded (any level decodes alike).
  constexpr int kZstdLevel = 1;
  PreparedChunk out;
  out.id = chunk_id != nullptr ? *chunk_id : codec::ComputeChunkId(keys.id_key, plaintext);
  out.kind = kind;
  out.plain_size = plaintext.size();
  // Kept uncompressed when zstd does not make it smaller (random or already compressed data;
  // an empty plaintext).
  out.compression = Compression::kNone;
  if (!plaintext.empty()) {
    Bytes compressed = codec::ZstdCompress(plaintext, kZstdLevel);
    if (compressed.size() < plaintext.size()) {
      out.body = std::move(compressed);
      out.compression = Compression::kZstd;
      return out;
    }
  }
  out.body.assign(plaintext.begin(), plaintext.end());
  return out;
}

SealedChunk SealCopy(const codec::OwnerKeys& keys, PeerId owner, const PreparedChunk& chunk) {
  SealedChunk out;
  out.id = chunk.id;
  out.plain_size = chunk.plain_size;
  BlobHeader h;
  h.kind = chunk.kind;
  h.compression = chunk.compression;
  h.owner = owner;
  h.chunk = chunk.id;
  h.nonce = codec::RandomNonce();
  h.payload_size = chunk.body.size();
  out.blob = EncodeBlobHeader(h);
  const size_t header_size = out.blob.size();
  out.blob.reserve(header_size + chunk.body.size() + codec::kTagSize);
  // The header is the AAD; the seal goes straight behind it (no second buffer).
  codec::AeadSealAppend(keys.encryption_key, h.nonce, ByteSpan(out.blob.data(), header_size),
                        chunk.body, &out.blob);
  return out;
}

absl::StatusOr<SealedChunk> SealChunk(const codec::OwnerKeys& keys, PeerId owner, BlobKind kind,
                                      ByteSpan plaintext, const ChunkId* chunk_id) {
  CAIRN_ASSIGN_OR_RETURN(PreparedChunk prepared, PrepareChunk(keys, kind, plaintext, chunk_id));
  return SealCopy(keys, owner, prepared);
}

Bytes ShardAadHeader(const BlobHeader& shard_header, uint64_t sealed_size) {
  BlobHeader h = shard_header;
  h.shard = kAadShardIndex;
  h.payload_size = sealed_size - codec::kTagSize;
  return EncodeBlobHeader(h);
}

namespace {

// Shard blob i of a seal: header(shard i, payload length L - 8) || u64 S || data.
Bytes EncodeShard(const BlobHeader& common, uint32_t index, uint64_t sealed_size, ByteSpan data) {
  BlobHeader h = common;
  h.shard = index;
  h.payload_size = kShardPrefixSize + data.size() - codec::kTagSize;
  Bytes out = EncodeBlobHeader(h);
  out.reserve(kBlobHeaderSize + kShardPrefixSize + data.size());
  PutU64(out, sealed_size);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

}  // namespace

absl::StatusOr<SealedShards> SealShards(const codec::OwnerKeys& keys, PeerId owner,
                                        const PreparedChunk& chunk, codec::ErasureScheme scheme) {
  CAIRN_ASSIGN_OR_RETURN(codec::ErasureCoder coder, codec::ErasureCoder::Create(scheme));
  BlobHeader h;
  h.kind = chunk.kind;
  h.compression = chunk.compression;
  h.scheme = Scheme::kErasure;
  h.k = static_cast<uint8_t>(scheme.k);
  h.m = static_cast<uint8_t>(scheme.m);
  h.owner = owner;
  h.chunk = chunk.id;
  h.nonce = codec::RandomNonce();
  const uint64_t sealed_size = chunk.body.size() + codec::kTagSize;
  Bytes aad = ShardAadHeader(h, sealed_size);
  Bytes sealed = codec::AeadSeal(keys.encryption_key, h.nonce, aad, chunk.body);
  std::vector<Bytes> pieces = coder.Encode(sealed);
  SealedShards out;
  out.id = chunk.id;
  out.plain_size = chunk.plain_size;
  out.scheme = scheme;
  out.sealed_size = sealed_size;
  out.shards.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    out.shards.push_back(EncodeShard(h, static_cast<uint32_t>(i), sealed_size, pieces[i]));
  }
  return out;
}

absl::StatusOr<ShardView> ParseShard(ByteSpan blob) {
  CAIRN_ASSIGN_OR_RETURN(BlobHeader h, ParseBlobHeader(blob));
  if (h.scheme != Scheme::kErasure) return Invalid("not an erasure-coded shard");
  if (h.m < 1) return Invalid("erasure scheme with m=0");
  ShardView v;
  v.header = h;
  // ParseBlobHeader checked blob.size() == 80 + payload + 16 >= 96.
  v.sealed_size = GetU64(blob.data() + kBlobHeaderSize);
  v.data = blob.subspan(kBlobHeaderSize + kShardPrefixSize);
  if (v.sealed_size < codec::kTagSize || v.sealed_size - codec::kTagSize > kMaxBlobSize) {
    return Invalid("shard total length " + std::to_string(v.sealed_size) + " out of range");
  }
  if (v.data.size() != codec::ShardSize(v.sealed_size, h.k)) {
    return Invalid("shard of " + std::to_string(v.data.size()) + " bytes does not fit total " +
                   std::to_string(v.sealed_size) + " for k=" + std::to_string(h.k));
  }
  return v;
}

namespace {

// The end of every open: decompress and check the content against its chunk id.
absl::StatusOr<Bytes> FinishOpen(const codec::OwnerKeys& keys, const ChunkId& expected,
                                 Compression compression, Bytes body) {
  Bytes plaintext;
  if (compression == Compression::kZstd) {
    auto d = codec::ZstdDecompress(body, kMaxPlaintextSize);
    if (!d.ok()) {
      return absl::DataLossError("blob " + expected.ShortHex() +
                                 " does not decompress: " + std::string(d.status().message()));
    }
    plaintext = std::move(*d);
  } else {
    if (body.size() > kMaxPlaintextSize) {
      return absl::DataLossError("blob " + expected.ShortHex() + " plaintext too large");
    }
    plaintext = std::move(body);
  }
  ChunkId actual = codec::ComputeChunkId(keys.id_key, plaintext);
  if (!codec::ConstantTimeEqual(actual.bytes, expected.bytes)) {
    return absl::DataLossError("blob " + expected.ShortHex() +
                               " content does not match its chunk id");
  }
  return plaintext;
}

absl::Status AnotherChunk(const ChunkId& expected, PeerId owner, const BlobHeader& h) {
  return absl::DataLossError("blob is for another chunk: expected " + expected.ShortHex() +
                             " of owner " + std::to_string(owner) + ", got " + h.chunk.ShortHex() +
                             " of owner " + std::to_string(h.owner));
}

}  // namespace

absl::StatusOr<Bytes> OpenChunk(const codec::OwnerKeys& keys, PeerId owner, const ChunkId& expected,
                                ByteSpan blob) {
  CAIRN_ASSIGN_OR_RETURN(BlobHeader h, ParseBlobHeader(blob));
  if (h.owner != owner || h.chunk != expected) return AnotherChunk(expected, owner, h);
  if (h.scheme != Scheme::kCopies) {
    return absl::FailedPreconditionError("blob " + expected.ShortHex() + " shard " +
                                         std::to_string(h.shard) +
                                         " is an erasure-coded shard, not a whole copy");
  }
  ByteSpan aad = blob.first(kBlobHeaderSize);
  auto body = codec::AeadOpen(keys.encryption_key, h.nonce, aad, blob.subspan(kBlobHeaderSize));
  if (!body.ok()) {
    return absl::DataLossError("blob " + expected.ShortHex() +
                               " failed authentication: " + std::string(body.status().message()));
  }
  return FinishOpen(keys, expected, h.compression, std::move(*body));
}

absl::StatusOr<OpenedShards> OpenChunkShards(const codec::OwnerKeys& keys, PeerId owner,
                                             const ChunkId& expected,
                                             std::span<const ByteSpan> blobs, bool rebuild) {
  // Group the usable shards by seal: the canonical AAD header plus S identify one seal.
  struct Group {
    BlobHeader header;  // of the first shard seen
    uint64_t sealed_size = 0;
    Bytes aad;
    std::map<uint32_t, ByteSpan> data;  // shard index -> L bytes (first blob per index wins)
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> skipped;
  for (size_t i = 0; i < blobs.size(); ++i) {
    auto v = ParseShard(blobs[i]);
    if (!v.ok()) {
      skipped.push_back("blob " + std::to_string(i) + ": " + std::string(v.status().message()));
      continue;
    }
    if (v->header.owner != owner || v->header.chunk != expected) {
      skipped.push_back("shard " + std::to_string(v->header.shard) + ": for another chunk");
      continue;
    }
    Bytes aad = ShardAadHeader(v->header, v->sealed_size);
    std::string key(aad.begin(), aad.end());
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) {
      it->second.header = v->header;
      it->second.sealed_size = v->sealed_size;
      it->second.aad = std::move(aad);
    }
    it->second.data.emplace(v->header.shard, v->data);
  }
  // Largest group first: with at most m bad shards the genuine seal has the most members.
  std::vector<const Group*> order;
  for (const auto& [key, g] : groups) order.push_back(&g);
  std::stable_sort(order.begin(), order.end(),
                   [](const Group* a, const Group* b) { return a->data.size() > b->data.size(); });

  int tried = 0;
  size_t best = 0;
  int need = 0;
  std::string last_error;
  for (const Group* g : order) {
    const int k = g->header.k, n = g->header.k + g->header.m;
    best = std::max(best, g->data.size());
    need = need == 0 ? k : std::min(need, k);
    if (g->data.size() < static_cast<size_t>(k)) continue;
    CAIRN_ASSIGN_OR_RETURN(codec::ErasureCoder coder,
                           codec::ErasureCoder::Create({k, static_cast<int>(g->header.m)}));
    std::vector<uint32_t> have;
    for (const auto& [idx, data] : g->data) have.push_back(idx);
    // k-subsets of `have` in lexicographic order (positions into `have`).
    std::vector<size_t> pick(static_cast<size_t>(k));
    for (size_t i = 0; i < pick.size(); ++i) pick[i] = i;
    while (tried < kMaxShardCombinations) {
      ++tried;
      std::vector<std::optional<Bytes>> slots(static_cast<size_t>(n));
      for (size_t p : pick) {
        ByteSpan d = g->data.at(have[p]);
        slots[have[p]].emplace(d.begin(), d.end());
      }
      auto sealed = coder.Decode(slots, g->sealed_size);
      if (sealed.ok()) {
        auto body = codec::AeadOpen(keys.encryption_key, g->header.nonce, g->aad, *sealed);
        if (body.ok()) {
          CAIRN_ASSIGN_OR_RETURN(
              Bytes plain, FinishOpen(keys, expected, g->header.compression, std::move(*body)));
          OpenedShards out;
          out.plaintext = std::move(plain);
          if (rebuild) {
            std::vector<Bytes> pieces = coder.Encode(*sealed);
            for (size_t i = 0; i < pieces.size(); ++i) {
              out.shards.push_back(
                  EncodeShard(g->header, static_cast<uint32_t>(i), g->sealed_size, pieces[i]));
            }
            for (const auto& [key, other] : groups) {
              for (const auto& [idx, data] : other.data) {
                bool same =
                    &other == g && idx < pieces.size() &&
                    std::equal(data.begin(), data.end(), pieces[idx].begin(), pieces[idx].end());
                if (!same) out.mismatched.push_back(idx);
              }
            }
            std::sort(out.mismatched.begin(), out.mismatched.end());
          }
          return out;
        }
        last_error = std::string(body.status().message());
      } else {
        last_error = std::string(sealed.status().message());
      }
      // Next k-subset: advance the rightmost position that can move.
      int i = k - 1;
      while (i >= 0 && pick[static_cast<size_t>(i)] ==
                           have.size() - static_cast<size_t>(k) + static_cast<size_t>(i)) {
        --i;
      }
      if (i < 0) break;
      ++pick[static_cast<size_t>(i)];
      for (size_t j = static_cast<size_t>(i) + 1; j < pick.size(); ++j) pick[j] = pick[j - 1] + 1;
    }
  }
  std::string why = skipped.empty() ? std::string() : " (skipped: " + Join(skipped) + ")";
  if (tried == 0) {
    return absl::FailedPreconditionError(
        "chunk " + expected.ShortHex() + ": " + std::to_string(best) + " usable shard(s)" +
        (need > 0 ? ", " + std::to_string(need) + " needed" : std::string()) + why);
  }
  return absl::DataLossError("chunk " + expected.ShortHex() + ": no " + std::to_string(need) +
                             " of the shards authenticate (" + std::to_string(tried) +
                             " combination(s) tried, last: " + last_error + ")" + why);
}

}  // namespace cairn::format
