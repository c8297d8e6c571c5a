// Fuzz target: the blob envelope and erasure-coded shards (format/blob.h, docs/formats.md
// "Blob envelope", "Shard envelope"): what a storage peer validates on every put and what the
// owner opens on every restore.
//
// The first input byte picks a mode (mod 5); the rest is:
//   0  one blob: ParseBlobHeader and ParseShard; a parsed header re-encodes to the same bytes.
//   1  one blob opened with OpenChunk (a blob not sealed with the key must fail cleanly).
//   2  kind/compression byte, then a body the harness seals under the fuzz owner's key, so that
//      OpenChunk gets past the GCM tag to decompression and the chunk id check (a corrupt or
//      hostile zstd frame from a peer that holds the key).
//   3  up to 24 length-prefixed blobs opened with OpenChunkShards (as shards of one chunk).
//   4  k, m, a plaintext and a damage plan: the harness seals genuine k+m shards, drops or
//      corrupts some as planned, and OpenChunkShards must return the plaintext whenever at
//      least k shards are intact, and rebuild the shards byte for byte.
#include <algorithm>
#include <cstring>

#include "cairn/codec/crypto.h"
#include "cairn/format/blob.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

constexpr PeerId kOwner = 0x1122334455667788ull;

const codec::OwnerKeys& Keys() {
  static const codec::OwnerKeys keys = [] {
    codec::Key master{};
    for (size_t i = 0; i < master.size(); ++i) master[i] = static_cast<uint8_t>(i * 7 + 1);
    return codec::DeriveOwnerKeys(master);
  }();
  return keys;
}

void ParseOne(ByteSpan blob) {
  auto h = format::ParseBlobHeader(blob);
  if (h.ok()) {
    FUZZ_CHECK(blob.size() == format::kBlobHeaderSize + h->payload_size + codec::kTagSize);
    Bytes again = format::EncodeBlobHeader(*h);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), blob.begin()));
  }
  auto s = format::ParseShard(blob);
  if (s.ok()) {
    FUZZ_CHECK(h.ok());
    FUZZ_CHECK(s->data.size() == codec::ShardSize(s->sealed_size, s->header.k));
  }
}

void OpenForeign(ByteSpan blob) {
  ChunkId expected;
  if (blob.size() >= 60) std::memcpy(expected.bytes.data(), blob.data() + 28, ChunkId::kSize);
  PeerId owner = blob.size() >= 28 ? GetU64(blob.data() + 20) : kOwner;
  auto opened = format::OpenChunk(Keys(), owner, expected, blob);
  // Only a blob sealed with the owner's key opens (the seeds are), and then to its chunk.
  if (opened.ok()) FUZZ_CHECK(codec::ComputeChunkId(Keys().id_key, *opened) == expected);
}

void OpenSealed(ByteSpan data) {
  if (data.empty()) return;
  const uint8_t flags = data[0];
  ByteSpan body = data.subspan(1);
  format::BlobHeader h;
  h.kind = static_cast<BlobKind>(1 + (flags & 3) % 3);
  h.compression = (flags & 4) ? format::Compression::kZstd : format::Compression::kNone;
  h.owner = kOwner;
  // With bit 3 the chunk id is that of the body itself (the uncompressed case opens).
  if (flags & 8) h.chunk = codec::ComputeChunkId(Keys().id_key, body);
  h.nonce = codec::Nonce{};
  h.payload_size = body.size();
  Bytes blob = format::EncodeBlobHeader(h);
  Bytes sealed = codec::AeadSeal(Keys().encryption_key, h.nonce, blob, body);
  blob.insert(blob.end(), sealed.begin(), sealed.end());
  auto opened = format::OpenChunk(Keys(), kOwner, h.chunk, blob);
  if (opened.ok()) {
    FUZZ_CHECK(opened->size() <= format::kMaxPlaintextSize);
    FUZZ_CHECK(codec::ComputeChunkId(Keys().id_key, *opened) == h.chunk);
  } else {
    FUZZ_CHECK(opened.status().code() == absl::StatusCode::kDataLoss);
  }
}

void OpenShards(ByteSpan data) {
  std::vector<ByteSpan> blobs = SplitPieces(data, 24);
  ChunkId expected;
  PeerId owner = kOwner;
  if (!blobs.empty() && blobs[0].size() >= 60) {
    owner = GetU64(blobs[0].data() + 20);
    std::memcpy(expected.bytes.data(), blobs[0].data() + 28, ChunkId::kSize);
  }
  auto opened = format::OpenChunkShards(Keys(), owner, expected, blobs, /*rebuild=*/true);
  if (opened.ok()) {  // as in OpenForeign
    FUZZ_CHECK(codec::ComputeChunkId(Keys().id_key, opened->plaintext) == expected);
  } else {
    FUZZ_CHECK(opened.status().code() == absl::StatusCode::kFailedPrecondition ||
               opened.status().code() == absl::StatusCode::kDataLoss);
  }
}

void DamagedShards(ByteSpan data) {
  if (data.size() < 4) return;
  codec::ErasureScheme scheme{1 + data[0] % 16, 1 + data[1] % 8};
  const size_t n = static_cast<size_t>(scheme.total());
  // One plan byte per shard: 0-5 intact, 6 dropped, 7 one byte flipped (at plan-chosen place).
  ByteSpan plan = data.subspan(2, std::min(n, data.size() - 2));
  ByteSpan plaintext = data.subspan(2 + plan.size());
  auto prepared = format::PrepareChunk(Keys(), BlobKind::kData, plaintext);
  FUZZ_CHECK(prepared.ok());
  auto sealed = format::SealShards(Keys(), kOwner, *prepared, scheme);
  FUZZ_CHECK(sealed.ok());
  std::vector<Bytes> shards = sealed->shards;
  std::vector<ByteSpan> given;
  size_t intact = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t p = i < plan.size() ? plan[i] : 0;
    if (p % 8 == 6) continue;
    if (p % 8 == 7) {
      // In the shard bytes, not the header: a changed header field makes it another shard.
      const size_t skip = format::kBlobHeaderSize + format::kShardPrefixSize;
      shards[i][skip + (p * 131u) % (shards[i].size() - skip)] ^= 0x5a;
    } else {
      ++intact;
    }
    given.push_back(shards[i]);
  }
  std::reverse(given.begin(), given.end());  // order must not matter
  auto opened = format::OpenChunkShards(Keys(), kOwner, sealed->id, given, /*rebuild=*/true);
  // k-subsets of the given shards: OpenChunkShards tries at most kMaxShardCombinations of them
  // (blob.h), so with more it may give up before reaching the intact ones.
  uint64_t subsets = 1;
  for (size_t i = 0; i < static_cast<size_t>(scheme.k) && subsets <= 1u << 20; ++i) {
    subsets = subsets * (given.size() - i) / (i + 1);
  }
  if (intact >= static_cast<size_t>(scheme.k) && subsets <= format::kMaxShardCombinations) {
    FUZZ_CHECK(opened.ok());
    FUZZ_CHECK(std::equal(opened->plaintext.begin(), opened->plaintext.end(), plaintext.begin(),
                          plaintext.end()));
    FUZZ_CHECK(opened->shards == sealed->shards);
  } else if (opened.ok()) {
    // Fewer than k intact shards may still open when a corrupt byte sat in padding; the result
    // must then be the genuine plaintext.
    FUZZ_CHECK(std::equal(opened->plaintext.begin(), opened->plaintext.end(), plaintext.begin(),
                          plaintext.end()));
  }
}

Seeds MakeSeeds() {
  Seeds seeds;
  const std::string text = "hello, cairn fuzzing; hello, cairn fuzzing; hello, cairn fuzzing";
  auto copy = format::SealChunk(Keys(), kOwner, BlobKind::kData, AsBytes(text));
  seeds.emplace_back("parse_copy", Concat(0, copy->blob));
  seeds.emplace_back("open_copy", Concat(1, copy->blob));
  Bytes big(600);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  auto prepared = format::PrepareChunk(Keys(), BlobKind::kData, big);
  auto shards = format::SealShards(Keys(), kOwner, *prepared, {4, 2});
  seeds.emplace_back("parse_shard", Concat(0, shards->shards[5]));
  Bytes pieces;
  for (const Bytes& s : shards->shards) AppendPiece(pieces, s);
  seeds.emplace_back("open_shards", Concat(3, pieces));
  Bytes zstd{4 | 8};
  auto small = format::PrepareChunk(Keys(), BlobKind::kTree, AsBytes(text));
  zstd.insert(zstd.end(), small->body.begin(), small->body.end());
  seeds.emplace_back("sealed_zstd", Concat(2, zstd));
  Bytes damaged{3, 1, 0, 6, 7, 0};
  damaged.insert(damaged.end(), text.begin(), text.end());
  seeds.emplace_back("damaged_shards", Concat(4, damaged));
  return seeds;
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn::fuzz;
  if (size == 0) return 0;
  cairn::ByteSpan rest(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      ParseOne(rest);
      break;
    case 1:
      OpenForeign(rest);
      break;
    case 2:
      OpenSealed(rest);
      break;
    case 3:
      OpenShards(rest);
      break;
    default:
      DamagedShards(rest);
  }
  return 0;
}
