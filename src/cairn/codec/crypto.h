// Keys, keyed chunk ids and authenticated encryption (docs/formats.md "Keys"; docs/security.md).
// All of OpenSSL 3 lives behind this header.
//
//  - Owner keys: HKDF-SHA256 (RFC 5869) expands the 256-bit owner master key into the id key
//    (info "cairn/v1/chunk-id"), the encryption key ("cairn/v1/encrypt") and the chunker seed
//    ("cairn/v1/chunker"); salt is empty.
//  - Chunk id: HMAC-SHA256 (RFC 2104) of the plaintext under the id key.
//  - AEAD: AES-256-GCM (NIST SP 800-38D), 96-bit random nonce, 128-bit tag.
//
// Thread-safety: stateless functions; safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"

namespace cairn::codec {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

using Key = std::array<uint8_t, kKeySize>;
using Nonce = std::array<uint8_t, kNonceSize>;

struct OwnerKeys {
  Key id_key;
  Key encryption_key;
  Key chunker_seed;
};

// A fresh random 256-bit key from the OS CSPRNG.
Key RandomKey();
Nonce RandomNonce();

// HKDF-SHA256 (RFC 5869 §2.2-2.3): extract with `salt` (empty = HashLen zero bytes), then
// expand with `info` to `out_len` bytes. INVALID_ARGUMENT unless 1 <= out_len <= 255*32.
absl::StatusOr<Bytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t out_len);

// HKDF-SHA256 (RFC 5869) of `master` into the three owner subkeys (see file comment).
// Deterministic: the same master key always gives the same subkeys.
OwnerKeys DeriveOwnerKeys(const Key& master);

// HMAC-SHA256(key, data) (RFC 2104), 32 bytes.
std::array<uint8_t, 32> HmacSha256(ByteSpan key, ByteSpan data);

// SHA-256 (FIPS 180-4), 32 bytes.
std::array<uint8_t, 32> Sha256(ByteSpan data);

// Incremental SHA-256 (FIPS 180-4) for inputs produced piece by piece (e.g. a protobuf message
// serialized into a stream), so that they need not be copied into one buffer first.
// Thread-compatible: one hasher per thread.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(ByteSpan data);
  // The digest of everything given to Update(); the hasher must not be used afterwards.
  std::array<uint8_t, 32> Finish();

 private:
  void* ctx_;  // EVP_MD_CTX (OpenSSL stays out of this header)
};

// Chunk id = HMAC-SHA256(id_key, plaintext) (docs/formats.md "Keys").
ChunkId ComputeChunkId(const Key& id_key, ByteSpan plaintext);

// AES-256-GCM encryption. Returns ciphertext || 16-byte tag (size = plaintext + 16).
Bytes AeadSeal(const Key& key, const Nonce& nonce, ByteSpan aad, ByteSpan plaintext);
// AeadSeal that appends ciphertext || tag to `*out`, so that a blob is sealed straight behind
// its header without another buffer and copy. `aad` may lie in `*out` (it is read before `*out`
// grows); `plaintext` must not.
void AeadSealAppend(const Key& key, const Nonce& nonce, ByteSpan aad, ByteSpan plaintext,
                    Bytes* out);

// AES-256-GCM decryption of ciphertext || tag. DATA_LOSS if the tag does not verify (wrong
// key, altered ciphertext, altered AAD) or the input is shorter than the tag.
absl::StatusOr<Bytes> AeadOpen(const Key& key, const Nonce& nonce, ByteSpan aad,
                               ByteSpan ciphertext_and_tag);

// Constant-time comparison of two equal-length byte strings (false if lengths differ).
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace cairn::codec
