#include "cairn/codec/checksum.h"

#include <xxhash.h>

#include <cstring>

namespace cairn::codec {

Checksum BlobChecksum(ByteSpan blob) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(blob.data(), blob.size()));
  Checksum out;
  static_assert(sizeof(canonical.digest) == sizeof(Checksum));
  std::memcpy(out.data(), canonical.digest, out.size());
  return out;
}

}  // namespace cairn::codec
