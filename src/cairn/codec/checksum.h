// Blob checksums: XXH3-128 of the whole blob (docs/formats.md "Blob envelope v1"). Storage
// peers cannot verify the owner's GCM tag, so they keep this to catch bit rot and transfer
// errors; tampering is the owner's tag's job.
// Thread-safety: stateless.
#pragma once

#include <array>
#include <cstdint>

#include "cairn/base/bytes.h"

namespace cairn::codec {

// 16 bytes, big-endian (high 64 bits first), as XXH128_canonical_t.
using Checksum = std::array<uint8_t, 16>;

Checksum BlobChecksum(ByteSpan blob);

}  // namespace cairn::codec
