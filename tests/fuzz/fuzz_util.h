// Shared helpers of the libFuzzer targets (docs/security.md "Fuzzing").
//
// Each target defines LLVMFuzzerTestOneInput and, with CAIRN_FUZZ_SEEDS(...), the seed inputs
// it starts from: valid encodings made with cairn's own encoders, so that the seeds follow the
// formats as they change. Run a target with CAIRN_FUZZ_WRITE_SEEDS=DIR in the environment and it
// writes its seeds into DIR and exits (bench/fuzz.sh does this before fuzzing).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/base/bytes.h"

namespace cairn::fuzz {

// A property of cairn's code that must hold for every input: abort (a finding) when it does not.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

using Seeds = std::vector<std::pair<std::string, Bytes>>;  // file name, bytes

inline Bytes SeedBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

inline Bytes Concat(uint8_t mode, ByteSpan rest) {
  Bytes out{mode};
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// Writes `seeds` into $CAIRN_FUZZ_WRITE_SEEDS and exits, when that variable is set.
inline void MaybeWriteSeeds(const Seeds& seeds) {
  const char* dir = std::getenv("CAIRN_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  for (const auto& [name, bytes] : seeds) {
    std::string path = std::string(dir) + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
      std::fprintf(stderr, "cannot write seed %s\n", path.c_str());
      std::exit(1);
    }
    std::fclose(f);
  }
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

// Reads length-prefixed pieces (u16 little-endian length, then that many bytes) from `data`
// until it runs out: a way for one input to carry several blobs.
inline std::vector<ByteSpan> SplitPieces(ByteSpan data, size_t max_pieces) {
  std::vector<ByteSpan> out;
  while (data.size() >= 2 && out.size() < max_pieces) {
    size_t n = data[0] | (static_cast<size_t>(data[1]) << 8);
    data = data.subspan(2);
    n = std::min(n, data.size());
    out.push_back(data.first(n));
    data = data.subspan(n);
  }
  return out;
}

inline void AppendPiece(Bytes& out, ByteSpan piece) {
  out.push_back(static_cast<uint8_t>(piece.size()));
  out.push_back(static_cast<uint8_t>(piece.size() >> 8));
  out.insert(out.end(), piece.begin(), piece.end());
}

}  // namespace cairn::fuzz

// Defines LLVMFuzzerInitialize to write `expr` (a cairn::fuzz::Seeds) when asked.
#define CAIRN_FUZZ_SEEDS(expr)                         \
  extern "C" int LLVMFuzzerInitialize(int*, char***) { \
    ::cairn::fuzz::MaybeWriteSeeds(expr);              \
    return 0;                                          \
  }
