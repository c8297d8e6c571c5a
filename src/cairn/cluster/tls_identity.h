// A peer's TLS identity (docs/security.md "TLS between peers"): an Ed25519 key pair and a
// self-signed X.509 certificate, used by gRPC for every peer connection, and the fingerprint
// by which members pin it to the peer id (cert_pins.h).
//
//   key          Ed25519 (RFC 8032); its 32-byte seed is HKDF-SHA256(owner master key, salt
//                empty, info "cairn-tls-ed25519-v1"), so that `cairn recover` (which restores
//                the owner key) gives a rebuilt peer the key members pinned.
//   certificate  X.509 v3, serial 1, subject = issuer = CN "cairn peer <peer id>", valid from
//                2024-01-01 to 9999-12-31 (RFC 5280 §4.1.2.5: no well-defined expiration),
//                one subjectAltName, DNS "cairn" (kTlsServerName), signed with the key. Nobody
//                checks its names or dates: members check its fingerprint.
//   fingerprint  SHA-256 of the certificate's DER SubjectPublicKeyInfo (the RFC 7469
//                "pin-sha256" input), 64 lowercase hex characters.
//
// Files (docs/operations.md "Peer directory"): DIR/secrets/tls.key (PKCS#8 PEM, 0600) and
// DIR/secrets/tls.crt (PEM, 0600).
//
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/codec/crypto.h"

namespace cairn::cluster {

// The server name every client asks for (TLS SNI) and every certificate carries.
inline constexpr char kTlsServerName[] = "cairn";

struct TlsIdentity {
  std::string cert_pem;
  std::string key_pem;
  std::string fingerprint;  // 64 lowercase hex characters
};

// Makes the key (derived from `owner_key`) and the certificate for `peer_id`. INTERNAL when
// OpenSSL fails.
absl::StatusOr<TlsIdentity> MakeTlsIdentity(const codec::Key& owner_key, PeerId peer_id);

// Reads `key_path` and `cert_path`; when both are missing, writes MakeTlsIdentity's (0600,
// atomically) first, so that directories made before TLS get one on their first start.
// FAILED_PRECONDITION naming the file when one is missing, unreadable or not PEM of the right
// kind, or when the key does not match the certificate (the message says to remove both: they
// are made again from the owner key).
absl::StatusOr<TlsIdentity> LoadOrCreateTlsIdentity(const std::string& key_path,
                                                    const std::string& cert_path,
                                                    const codec::Key& owner_key, PeerId peer_id);

// The fingerprint of a PEM certificate. INVALID_ARGUMENT when it is not one.
absl::StatusOr<std::string> CertFingerprint(std::string_view cert_pem);

// True for 64 hex characters (either case).
bool IsValidCertFingerprint(std::string_view fingerprint);

// The first 16 hex characters, for messages.
std::string ShortFingerprint(std::string_view fingerprint);

}  // namespace cairn::cluster
