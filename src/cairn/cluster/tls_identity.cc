#include "cairn/cluster/tls_identity.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/env/file.h"

namespace cairn::cluster {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

constexpr char kKeyInfo[] = "cairn-tls-ed25519-v1";

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

absl::Status Internal(const char* what) {
  return absl::InternalError(absl::StrCat("TLS identity: ", what, " failed (OpenSSL)"));
}

X509Ptr ReadCert(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ReadKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

absl::StatusOr<TlsIdentity> MakeTlsIdentity(const codec::Key& owner_key, PeerId peer_id) {
  CAIRN_ASSIGN_OR_RETURN(Bytes seed, codec::HkdfSha256(ByteSpan(owner_key.data(), owner_key.size()),
                                                       ByteSpan(), AsBytes(kKeyInfo), 32));
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) return Internal("making the Ed25519 key");
  X509Ptr cert(X509_new());
  if (!cert) return Internal("X509_new");
  const std::string cn = absl::StrCat("cairn peer ", peer_id);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notBefore(cert.get()), "20240101000000Z") != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notAfter(cert.get()), "99991231235959Z") != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1) {
    return Internal("filling in the certificate");
  }
  // One DNS name, the name every client asks for (kTlsServerName): gRPC's server matches the
  // name a client sends (SNI) against its certificate's and logs an error when none matches.
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name,
                                            absl::StrCat("DNS:", kTlsServerName).c_str());
  if (san == nullptr) return Internal("making the subjectAltName");
  const int added = X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  if (added != 1) return Internal("adding the subjectAltName");
  // Ed25519 signs the message itself: no separate digest (RFC 8410).
  if (X509_sign(cert.get(), key.get(), nullptr) <= 0) return Internal("signing the certificate");
  TlsIdentity id;
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return Internal("writing PEM");
  }
  id.cert_pem = BioText(cert_bio.get());
  id.key_pem = BioText(key_bio.get());
  CAIRN_ASSIGN_OR_RETURN(id.fingerprint, CertFingerprint(id.cert_pem));
  return id;
}

absl::StatusOr<TlsIdentity> LoadOrCreateTlsIdentity(const std::string& key_path,
                                                    const std::string& cert_path,
                                                    const codec::Key& owner_key, PeerId peer_id) {
  const bool have_key = Exists(key_path);
  const bool have_cert = Exists(cert_path);
  const std::string way_out = absl::StrCat(" (remove ", key_path, " and ", cert_path,
                                           ": both are made again from the owner key at start)");
  if (!have_key && !have_cert) {
    CAIRN_ASSIGN_OR_RETURN(TlsIdentity made, MakeTlsIdentity(owner_key, peer_id));
    CAIRN_RETURN_IF_ERROR(env::WriteFileAtomic(key_path, AsBytes(made.key_pem), 0600));
    CAIRN_RETURN_IF_ERROR(env::WriteFileAtomic(cert_path, AsBytes(made.cert_pem), 0600));
    return made;
  }
  if (!have_key || !have_cert) {
    return absl::FailedPreconditionError(
        absl::StrCat(have_key ? cert_path : key_path, " is missing but ",
                     have_key ? key_path : cert_path, " exists", way_out));
  }
  TlsIdentity id;
  auto key_text = env::ReadFileString(key_path, 64 << 10);
  auto cert_text = env::ReadFileString(cert_path, 64 << 10);
  if (!key_text.ok() || !cert_text.ok()) {
    const absl::Status& s = key_text.ok() ? cert_text.status() : key_text.status();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the TLS identity: ", s.message(), way_out));
  }
  id.key_pem = *std::move(key_text);
  id.cert_pem = *std::move(cert_text);
  PkeyPtr key = ReadKey(id.key_pem);
  if (!key) {
    return absl::FailedPreconditionError(
        absl::StrCat(key_path, " is not a PEM private key", way_out));
  }
  X509Ptr cert = ReadCert(id.cert_pem);
  if (!cert) {
    return absl::FailedPreconditionError(
        absl::StrCat(cert_path, " is not a PEM certificate", way_out));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(key_path, " does not match the certificate ", cert_path, way_out));
  }
  CAIRN_ASSIGN_OR_RETURN(id.fingerprint, CertFingerprint(id.cert_pem));
  return id;
}

absl::StatusOr<std::string> CertFingerprint(std::string_view cert_pem) {
  X509Ptr cert = ReadCert(cert_pem);
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate");
  unsigned char* der = nullptr;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (n <= 0) return absl::InvalidArgumentError("the certificate has no public key");
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(n), digest);
  OPENSSL_free(der);
  return ToHex(ByteSpan(digest, sizeof digest));
}

bool IsValidCertFingerprint(std::string_view fingerprint) {
  if (fingerprint.size() != 64) return false;
  for (char c : fingerprint) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string ShortFingerprint(std::string_view fingerprint) {
  return std::string(fingerprint.substr(0, 16));
}

}  // namespace cairn::cluster
