// zstd compression of chunk plaintext (RFC 8878 frames via libzstd).
// Thread-safety: stateless functions; safe to call concurrently.
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"

namespace cairn::codec {

// Compresses `data` into one zstd frame at `level` (1..19; 3 is zstd's default).
Bytes ZstdCompress(ByteSpan data, int level = 3);

// Decompresses one zstd frame. DATA_LOSS if the frame is malformed or truncated;
// RESOURCE_EXHAUSTED if the content would exceed `max_size` bytes (so hostile input cannot
// allocate unbounded memory).
absl::StatusOr<Bytes> ZstdDecompress(ByteSpan frame, size_t max_size);

}  // namespace cairn::codec
