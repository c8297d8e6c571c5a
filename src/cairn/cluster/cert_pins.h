// Peer id -> TLS certificate fingerprint pins (docs/security.md "TLS between peers"): trust on
// first use, as Syncthing pins device ids and SSH known_hosts pins host keys. The first
// authenticated contact from a peer id (a call it makes, showing its client certificate, or an
// announcement, which carries the fingerprint) pins the fingerprint it presented; later, a
// connection to or from that peer id with another certificate is refused.
//
// Fingerprints are tls_identity.h's (SHA-256 of the SubjectPublicKeyInfo, 64 hex characters).
// Pins are persisted through a callback (the daemon keeps them in the index `meta` table, key
// `cluster.cert_pins`, docs/formats.md "Peer database `DIR/index.db`") and loaded at start
// with Load(). A pin is never replaced automatically; docs/security.md says how an operator
// removes one.
//
// Thread-safety: thread-safe. The persist callback runs under the pins' lock (it must not call
// back into this object).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cairn/base/ids.h"

namespace cairn::cluster {

class CertPins {
 public:
  // Called with every pin after a new pin was added. An error is logged; the pin still holds
  // in memory.
  using Persist = std::function<absl::Status(const std::map<PeerId, std::string>& pins)>;

  explicit CertPins(Persist persist = nullptr);

  // Adds pins read back from storage (no persist call). Invalid fingerprints are skipped.
  void Load(const std::map<PeerId, std::string>& pins);

  // OK when `peer_id` is pinned to `fingerprint`, or was not pinned and now is (persisted).
  // PERMISSION_DENIED "peer id N presented TLS certificate X, but it is pinned to certificate
  // Y ..." when it is pinned to another one; INVALID_ARGUMENT when `fingerprint` is not 64 hex
  // characters.
  absl::Status Check(PeerId peer_id, const std::string& fingerprint);
  // PERMISSION_DENIED as Check when `peer_id` is pinned to another fingerprint, else OK (never
  // pins).
  absl::Status Verify(PeerId peer_id, const std::string& fingerprint) const;
  std::optional<std::string> Pinned(PeerId peer_id) const;
  std::map<PeerId, std::string> All() const;

  // The text form used for storage: one "peer_id fingerprint" line per pin, ascending ids.
  static std::string Serialize(const std::map<PeerId, std::string>& pins);
  // Parses Serialize()'s output; malformed lines are skipped.
  static std::map<PeerId, std::string> Parse(const std::string& text);

 private:
  Persist persist_;
  mutable std::mutex mu_;
  std::map<PeerId, std::string> pins_;
};

// The PERMISSION_DENIED status of a certificate that does not match its pin.
absl::Status CertMismatch(PeerId peer_id, const std::string& presented, const std::string& pinned);

}  // namespace cairn::cluster
