#include "cairn/codec/compress.h"

#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cairn::codec {
namespace {

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// One context per thread, reused: ZSTD_compress/ZSTD_decompress make and free a context (a few
// hundred KiB at level 3) on every call, which costs more than compressing a small chunk.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  return cctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  return dctx.get();
}

absl::Status FrameError(const char* what, size_t code) {
  return absl::DataLossError(absl::StrCat("zstd: ", what, ": ", ZSTD_getErrorName(code)));
}

absl::Status TooLarge(size_t max_size) {
  return absl::ResourceExhaustedError(
      absl::StrCat("zstd: decompressed content exceeds the limit of ", max_size, " bytes"));
}

// Frames of unknown content size: stream into a buffer that grows up to `max_size`.
absl::StatusOr<Bytes> DecompressStreaming(ByteSpan frame, size_t max_size) {
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  if (!dctx) return absl::ResourceExhaustedError("zstd: cannot allocate a decompression context");
  Bytes out;
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  const size_t step = ZSTD_DStreamOutSize();
  for (;;) {
    if (out.size() >= max_size) {
      // Full: the frame may still end here. Probe with a 1-byte buffer.
      uint8_t probe;
      ZSTD_outBuffer o{&probe, 1, 0};
      size_t r = ZSTD_decompressStream(dctx.get(), &o, &in);
      if (ZSTD_isError(r)) return FrameError("corrupt frame", r);
      if (o.pos > 0) return TooLarge(max_size);
      if (r == 0) break;
      if (in.pos == in.size) return absl::DataLossError("zstd: truncated frame");
      continue;
    }
    size_t old = out.size();
    size_t grow = std::min(step, max_size - old);
    out.resize(old + grow);
    ZSTD_outBuffer o{out.data() + old, grow, 0};
    size_t r = ZSTD_decompressStream(dctx.get(), &o, &in);
    out.resize(old + o.pos);
    if (ZSTD_isError(r)) return FrameError("corrupt frame", r);
    if (r == 0) break;  // frame complete
    if (in.pos == in.size && o.pos < grow) return absl::DataLossError("zstd: truncated frame");
  }
  return out;
}

}  // namespace

Bytes ZstdCompress(ByteSpan data, int level) {
  level = std::clamp(level, 1, ZSTD_maxCLevel());
  // Compress into a per-thread scratch buffer (grown once) and copy out only the frame: a fresh
  // ZSTD_compressBound-sized vector per chunk costs page faults and zeroing of megabytes.
  // Chunks above 2 MiB are rare (FastCDC's mean is 1 MiB): they get a buffer of their own, so
  // that no thread keeps a max-chunk-sized scratch for good.
  constexpr size_t kScratchMax = size_t{2} << 20;
  const size_t bound = ZSTD_compressBound(data.size());
  thread_local Bytes scratch;
  Bytes own;
  Bytes& buf = bound <= kScratchMax ? scratch : own;
  if (buf.size() < bound) buf.resize(bound);
  ZSTD_CCtx* cctx = ThreadCCtx();
  if (cctx == nullptr) std::abort();  // out of memory
  size_t n = ZSTD_compressCCtx(cctx, buf.data(), bound, data.data(), data.size(), level);
  // With a ZSTD_compressBound-sized destination, compression only fails on allocation failure.
  if (ZSTD_isError(n)) std::abort();
  return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

absl::StatusOr<Bytes> ZstdDecompress(ByteSpan frame, size_t max_size) {
  // Exactly one regular zstd frame (RFC 8878 §3.1.1), nothing before or after it: we never
  // write skippable frames or concatenations, so anything else is damage.
  if (frame.size() < 4) return absl::DataLossError("zstd: truncated frame");
  uint32_t magic = uint32_t{frame[0]} | uint32_t{frame[1]} << 8 | uint32_t{frame[2]} << 16 |
                   uint32_t{frame[3]} << 24;
  if (magic != ZSTD_MAGICNUMBER) return absl::DataLossError("zstd: bad magic number");
  size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size)) return FrameError("malformed or truncated frame", frame_size);
  if (frame_size != frame.size()) {
    return absl::DataLossError(
        absl::StrCat("zstd: ", frame.size() - frame_size, " trailing bytes after the frame"));
  }
  unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR) return absl::DataLossError("zstd: bad frame header");
  if (content == ZSTD_CONTENTSIZE_UNKNOWN) return DecompressStreaming(frame, max_size);
  if (content > max_size) return TooLarge(max_size);
  Bytes out(static_cast<size_t>(content));
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return absl::ResourceExhaustedError("zstd: cannot allocate a context");
  size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return FrameError("corrupt frame", n);
  if (n != content) return absl::DataLossError("zstd: content size does not match the header");
  return out;
}

}  // namespace cairn::codec
