#include "cairn/codec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace cairn::codec {
namespace {

// OpenSSL failing on valid arguments (allocation failure, a broken provider) is not something
// a caller can handle: stop loudly rather than hand out a zero key or an unencrypted buffer.
[[noreturn]] void Fatal(const char* what) {
  unsigned long err = ERR_get_error();
  char buf[256] = "no OpenSSL error";
  if (err != 0) ERR_error_string_n(err, buf, sizeof buf);
  std::fprintf(stderr, "cairn::codec fatal: %s: %s\n", what, buf);
  std::abort();
}

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// Explicitly fetched algorithms, fetched once (OpenSSL 3 implicit fetches cost a lookup per
// call, which shows on the chunk-id hot path). Fetched objects are thread-safe to share.
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (m == nullptr) Fatal("fetch HMAC");
    return m;
  }();
  return mac;
}
EVP_MD* Sha256Algorithm() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) Fatal("fetch SHA256");
    return m;
  }();
  return md;
}
EVP_CIPHER* AesGcmAlgorithm() {
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) Fatal("fetch AES-256-GCM");
    return c;
  }();
  return cipher;
}
EVP_KDF* HkdfAlgorithm() {
  static EVP_KDF* kdf = [] {
    EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (k == nullptr) Fatal("fetch HKDF");
    return k;
  }();
  return kdf;
}

// OpenSSL takes `const void*` + size but some paths treat nullptr as "not given" even with
// size 0; an empty span may have a null data pointer.
const uint8_t* NonNull(ByteSpan s) {
  static const uint8_t kEmpty = 0;
  return s.data() != nullptr ? s.data() : &kEmpty;
}

// EVP update calls take an int length; feed large inputs in pieces.
constexpr size_t kMaxPiece = size_t{1} << 30;

}  // namespace

Key RandomKey() {
  Key k;
  if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) Fatal("RAND_bytes");
  return k;
}

Nonce RandomNonce() {
  Nonce n;
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) Fatal("RAND_bytes");
  return n;
}

absl::StatusOr<Bytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t out_len) {
  if (out_len == 0 || out_len > 255 * 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF-SHA256 output length must be in [1, 8160], got ", out_len));
  }
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(HkdfAlgorithm()));
  if (!ctx) Fatal("EVP_KDF_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(NonNull(ikm)), ikm.size());
  // An absent salt is HashLen zero bytes (RFC 5869 §2.2), which is what OpenSSL does when
  // no salt is set; HMAC pads short keys with zeros, so both give the same PRK.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  Bytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    ERR_clear_error();
    return absl::InternalError("HKDF-SHA256 derivation failed");
  }
  return out;
}

OwnerKeys DeriveOwnerKeys(const Key& master) {
  auto derive = [&master](const char* info) {
    absl::StatusOr<Bytes> out = HkdfSha256(master, {}, AsBytes(info), kKeySize);
    if (!out.ok()) Fatal("HKDF-SHA256 of the owner master key");
    Key k;
    std::memcpy(k.data(), out->data(), k.size());
    OPENSSL_cleanse(out->data(), out->size());
    return k;
  };
  OwnerKeys keys;
  keys.id_key = derive("cairn/v1/chunk-id");
  keys.encryption_key = derive("cairn/v1/encrypt");
  keys.chunker_seed = derive("cairn/v1/chunker");
  return keys;
}

std::array<uint8_t, 32> HmacSha256(ByteSpan key, ByteSpan data) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(HmacAlgorithm()));
  if (!ctx) Fatal("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), NonNull(key), key.size(), params) != 1) Fatal("HMAC init");
  for (size_t off = 0; off < data.size(); off += kMaxPiece) {
    size_t len = std::min(kMaxPiece, data.size() - off);
    if (EVP_MAC_update(ctx.get(), data.data() + off, len) != 1) Fatal("HMAC update");
  }
  std::array<uint8_t, 32> out;
  size_t out_len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) != 1 || out_len != out.size()) {
    Fatal("HMAC final");
  }
  return out;
}

std::array<uint8_t, 32> Sha256(ByteSpan data) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), Sha256Algorithm(), nullptr) != 1) {
    Fatal("SHA-256 init");
  }
  for (size_t off = 0; off < data.size(); off += kMaxPiece) {
    size_t len = std::min(kMaxPiece, data.size() - off);
    if (EVP_DigestUpdate(ctx.get(), data.data() + off, len) != 1) Fatal("SHA-256 update");
  }
  std::array<uint8_t, 32> out;
  unsigned int out_len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &out_len) != 1 || out_len != out.size()) {
    Fatal("SHA-256 final");
  }
  return out;
}

Sha256Hasher::Sha256Hasher() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx, Sha256Algorithm(), nullptr) != 1) {
    Fatal("SHA-256 init");
  }
  ctx_ = ctx;
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Hasher::Update(ByteSpan data) {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  for (size_t off = 0; off < data.size(); off += kMaxPiece) {
    size_t len = std::min(kMaxPiece, data.size() - off);
    if (EVP_DigestUpdate(ctx, data.data() + off, len) != 1) Fatal("SHA-256 update");
  }
}

std::array<uint8_t, 32> Sha256Hasher::Finish() {
  std::array<uint8_t, 32> out;
  unsigned int out_len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &out_len) != 1 ||
      out_len != out.size()) {
    Fatal("SHA-256 final");
  }
  return out;
}

ChunkId ComputeChunkId(const Key& id_key, ByteSpan plaintext) {
  ChunkId id;
  id.bytes = HmacSha256(id_key, plaintext);
  return id;
}

Bytes AeadSeal(const Key& key, const Nonce& nonce, ByteSpan aad, ByteSpan plaintext) {
  Bytes out;
  AeadSealAppend(key, nonce, aad, plaintext, &out);
  return out;
}

void AeadSealAppend(const Key& key, const Nonce& nonce, ByteSpan aad, ByteSpan plaintext,
                    Bytes* sealed) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  // The default GCM IV length is 12 bytes (kNonceSize).
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), AesGcmAlgorithm(), key.data(), nonce.data(), nullptr) != 1) {
    Fatal("AES-256-GCM encrypt init");
  }
  int len = 0;
  for (size_t off = 0; off < aad.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, aad.size() - off));
    if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data() + off, piece) != 1) {
      Fatal("AES-256-GCM AAD");
    }
  }
  const size_t start = sealed->size();
  sealed->resize(start + plaintext.size() + kTagSize);
  uint8_t* out = sealed->data() + start;
  size_t written = 0;
  for (size_t off = 0; off < plaintext.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, plaintext.size() - off));
    if (EVP_EncryptUpdate(ctx.get(), out + written, &len, plaintext.data() + off, piece) != 1) {
      Fatal("AES-256-GCM encrypt");
    }
    written += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out + written, &len) != 1) {
    Fatal("AES-256-GCM encrypt final");
  }
  written += static_cast<size_t>(len);
  if (written != plaintext.size()) Fatal("AES-256-GCM produced an unexpected length");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          out + written) != 1) {
    Fatal("AES-256-GCM get tag");
  }
}

absl::StatusOr<Bytes> AeadOpen(const Key& key, const Nonce& nonce, ByteSpan aad,
                               ByteSpan ciphertext_and_tag) {
  if (ciphertext_and_tag.size() < kTagSize) {
    return absl::DataLossError(absl::StrCat("AES-256-GCM input of ", ciphertext_and_tag.size(),
                                            " bytes is shorter than the 16-byte tag"));
  }
  const size_t ct_len = ciphertext_and_tag.size() - kTagSize;
  ByteSpan ct = ciphertext_and_tag.first(ct_len);
  uint8_t tag[kTagSize];
  std::memcpy(tag, ciphertext_and_tag.data() + ct_len, kTagSize);

  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx ||
      EVP_DecryptInit_ex2(ctx.get(), AesGcmAlgorithm(), key.data(), nonce.data(), nullptr) != 1) {
    Fatal("AES-256-GCM decrypt init");
  }
  int len = 0;
  for (size_t off = 0; off < aad.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, aad.size() - off));
    if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data() + off, piece) != 1) {
      Fatal("AES-256-GCM AAD");
    }
  }
  Bytes out(ct_len);
  size_t written = 0;
  for (size_t off = 0; off < ct_len; off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, ct_len - off));
    if (EVP_DecryptUpdate(ctx.get(), out.data() + written, &len, ct.data() + off, piece) != 1) {
      Fatal("AES-256-GCM decrypt");
    }
    written += static_cast<size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    Fatal("AES-256-GCM set tag");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
    ERR_clear_error();
    // Do not hand back (or leave lying around) plaintext that failed authentication.
    OPENSSL_cleanse(out.data(), out.size());
    return absl::DataLossError(
        "AES-256-GCM tag mismatch (wrong key, nonce or AAD, or altered ciphertext)");
  }
  return out;
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cairn::codec
