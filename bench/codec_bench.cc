// Throughput of the per-chunk codecs on the backup path (docs/architecture.md "Backup data
// flow"): FastCDC chunking, HMAC-SHA256 chunk ids, XXH3-128 blob checksums, zstd level 3,
// AES-256-GCM, and Reed-Solomon erasure coding (ISA-L) beside a plain memcpy, which is what
// "copies" costs the CPU.
// Each benchmark processes one buffer per iteration (8 MiB unless the name says otherwise)
// on one core and reports bytes/s of chunk data.
//
//   codec_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>

#include "cairn/codec/checksum.h"
#include "cairn/codec/chunker.h"
#include "cairn/codec/compress.h"
#include "cairn/codec/crypto.h"
#include "cairn/codec/erasure.h"

namespace cairn::codec {
namespace {

constexpr size_t kBufferSize = 8 << 20;

const Bytes& RandomData() {
  static const Bytes data = [] {
    std::mt19937_64 rng(1);
    Bytes out(kBufferSize);
    for (size_t i = 0; i < out.size(); i += 8) {
      uint64_t v = rng();
      for (int k = 0; k < 8; ++k) out[i + k] = static_cast<uint8_t>(v >> (8 * k));
    }
    return out;
  }();
  return data;
}

// Text-like: words from a small vocabulary with a skewed distribution (compresses ~3-4x).
const Bytes& TextData() {
  static const Bytes data = [] {
    static const char* kWords[] = {
        "the ",     "of ",    "and ",   "backup ", "peer ",    "chunk ", "snapshot ", "restore ",
        "quota ",   "blob ",  "host ",  "cairn ",  "network ", "disk ",  "file ",     "version ",
        "repair ",  "scrub ", "key ",   "owner ",  "a ",       "to ",    "in ",       "is ",
        "placed. ", "lost, ", "kept\n", "1024 ",   "2048 ",    "4096 ",  "Alice ",    "Bob "};
    std::mt19937 rng(2);
    std::geometric_distribution<int> pick(0.15);
    Bytes out;
    out.reserve(kBufferSize);
    while (out.size() < kBufferSize) {
      const char* w = kWords[pick(rng) % std::size(kWords)];
      for (const char* p = w; *p && out.size() < kBufferSize; ++p) {
        out.push_back(static_cast<uint8_t>(*p));
      }
    }
    return out;
  }();
  return data;
}

void SetBytes(benchmark::State& state, size_t per_iteration) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(per_iteration));
}

void BM_FastCdc(benchmark::State& state) {
  ChunkerParams params;
  if (state.range(0) == 1) params = ChunkerParams{2 << 10, 8 << 10, 64 << 10};
  const Key seed = RandomKey();
  Chunker chunker(params, seed);
  const Bytes& data = RandomData();
  size_t chunks = 0;
  for (auto _ : state) {
    size_t off = 0;
    while (off < data.size()) {
      off += chunker.NextCut(ByteSpan(data).subspan(off));
      ++chunks;
    }
    benchmark::DoNotOptimize(off);
  }
  SetBytes(state, data.size());
  state.counters["avg_chunk"] = benchmark::Counter(
      static_cast<double>(state.iterations() * data.size()) / static_cast<double>(chunks));
  state.SetLabel(state.range(0) == 1 ? "2K/8K/64K" : "512K/1M/8M");
}
BENCHMARK(BM_FastCdc)->Arg(0)->Arg(1);

void BM_HmacSha256ChunkId(benchmark::State& state) {
  const Key key = RandomKey();
  const Bytes& data = RandomData();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeChunkId(key, data));
  SetBytes(state, data.size());
}
BENCHMARK(BM_HmacSha256ChunkId);

void BM_Xxh3Checksum(benchmark::State& state) {
  const Bytes& data = RandomData();
  for (auto _ : state) benchmark::DoNotOptimize(BlobChecksum(data));
  SetBytes(state, data.size());
}
BENCHMARK(BM_Xxh3Checksum);

const Bytes& Input(int which) { return which == 0 ? TextData() : RandomData(); }
const char* InputName(int which) { return which == 0 ? "text" : "random"; }

void BM_ZstdCompress(benchmark::State& state) {
  const Bytes& data = Input(static_cast<int>(state.range(0)));
  size_t out_size = 0;
  for (auto _ : state) {
    Bytes frame = ZstdCompress(data, 3);
    out_size = frame.size();
    benchmark::DoNotOptimize(frame.data());
  }
  SetBytes(state, data.size());
  state.counters["ratio"] =
      static_cast<double>(data.size()) / static_cast<double>(std::max<size_t>(out_size, 1));
  state.SetLabel(InputName(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_ZstdCompress)->Arg(0)->Arg(1);

void BM_ZstdDecompress(benchmark::State& state) {
  const Bytes& data = Input(static_cast<int>(state.range(0)));
  const Bytes frame = ZstdCompress(data, 3);
  for (auto _ : state) {
    auto out = ZstdDecompress(frame, data.size());
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(out->data());
  }
  SetBytes(state, data.size());  // uncompressed bytes produced
  state.SetLabel(InputName(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_ZstdDecompress)->Arg(0)->Arg(1);

void BM_AesGcmSeal(benchmark::State& state) {
  const Key key = RandomKey();
  const Nonce nonce = RandomNonce();
  const Bytes& data = RandomData();
  const std::string aad = "owner=1 chunk=0123456789abcdef kind=1 shard=0";
  for (auto _ : state) benchmark::DoNotOptimize(AeadSeal(key, nonce, AsBytes(aad), data));
  SetBytes(state, data.size());
}
BENCHMARK(BM_AesGcmSeal);

// ---- Erasure coding. Args: chunk bytes, k, m[, erasures]. ----

ByteSpan Chunk(int64_t size) { return ByteSpan(RandomData()).first(static_cast<size_t>(size)); }

// Copies: the CPU cost of a replica is one memcpy of the sealed chunk (the network and the
// storage peers do the rest), whatever the number of copies.
void BM_CopiesMemcpy(benchmark::State& state) {
  ByteSpan chunk = Chunk(state.range(0));
  Bytes dst(chunk.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), chunk.data(), chunk.size());
    benchmark::ClobberMemory();
  }
  SetBytes(state, chunk.size());
}
BENCHMARK(BM_CopiesMemcpy)->Arg(1 << 20)->Arg(8 << 20);

// Split into k data shards (a copy) and compute m parity shards.
void BM_ErasureEncode(benchmark::State& state) {
  ByteSpan chunk = Chunk(state.range(0));
  ErasureScheme scheme{static_cast<int>(state.range(1)), static_cast<int>(state.range(2))};
  auto coder = ErasureCoder::Create(scheme);
  if (!coder.ok()) {
    state.SkipWithError(coder.status().ToString().c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(coder->Encode(chunk));
  SetBytes(state, chunk.size());
  state.SetLabel(scheme.ToString());
}
BENCHMARK(BM_ErasureEncode)
    ->Args({1 << 20, 4, 2})
    ->Args({8 << 20, 4, 2})
    ->Args({1 << 20, 10, 4})
    ->Args({8 << 20, 10, 4});

// Rebuild `erasures` lost data shards (the worst case: every lost shard must be decoded)
// from the k survivors.
void BM_ErasureDecode(benchmark::State& state) {
  ByteSpan chunk = Chunk(state.range(0));
  ErasureScheme scheme{static_cast<int>(state.range(1)), static_cast<int>(state.range(2))};
  const int erasures = static_cast<int>(state.range(3));
  auto coder = ErasureCoder::Create(scheme);
  if (!coder.ok()) {
    state.SkipWithError(coder.status().ToString().c_str());
    return;
  }
  std::vector<Bytes> shards = coder->Encode(chunk);
  std::vector<std::optional<Bytes>> slots(shards.begin(), shards.end());
  for (auto _ : state) {
    for (int i = 0; i < erasures; ++i) slots[static_cast<size_t>(i)].reset();
    absl::Status st = coder->Reconstruct(slots);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(slots[0]->data());
  }
  if (*slots[0] != shards[0]) state.SkipWithError("reconstructed shard differs");
  SetBytes(state, chunk.size());
  state.SetLabel(scheme.ToString() + ", " + std::to_string(erasures) + " lost");
}
BENCHMARK(BM_ErasureDecode)
    ->Args({1 << 20, 4, 2, 2})
    ->Args({8 << 20, 4, 2, 2})
    ->Args({1 << 20, 10, 4, 2})
    ->Args({8 << 20, 10, 4, 2})
    ->Args({1 << 20, 10, 4, 4})
    ->Args({8 << 20, 10, 4, 4});

}  // namespace
}  // namespace cairn::codec

BENCHMARK_MAIN();
