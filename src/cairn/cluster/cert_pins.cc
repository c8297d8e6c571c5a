#include "cairn/cluster/cert_pins.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/cluster/tls_identity.h"

namespace cairn::cluster {

absl::Status CertMismatch(PeerId peer_id, const std::string& presented, const std::string& pinned) {
  return absl::PermissionDeniedError(absl::StrCat(
      "peer id ", peer_id, " presented TLS certificate ", presented,
      ", but it is pinned to certificate ", pinned,
      ": refusing it (a different process is using this peer id, or the peer's secrets/tls.key "
      "changed; docs/security.md \"TLS between peers\" says how to remove the pin)"));
}

CertPins::CertPins(Persist persist) : persist_(std::move(persist)) {}

void CertPins::Load(const std::map<PeerId, std::string>& pins) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, fp] : pins) {
    if (id != 0 && IsValidCertFingerprint(fp)) pins_[id] = absl::AsciiStrToLower(fp);
  }
}

absl::Status CertPins::Check(PeerId peer_id, const std::string& fingerprint) {
  if (!IsValidCertFingerprint(fingerprint)) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer id ", peer_id, " presented no valid TLS certificate fingerprint"));
  }
  const std::string fp = absl::AsciiStrToLower(fingerprint);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pins_.try_emplace(peer_id, fp);
  if (!inserted) {
    if (it->second == fp) return absl::OkStatus();
    return CertMismatch(peer_id, fp, it->second);
  }
  if (persist_) {
    // As with node id pins: the pin holds in memory either way.
    absl::Status saved = persist_(pins_);
    if (!saved.ok()) {
      spdlog::warn("cannot save the TLS certificate pin of peer {}: {}", peer_id, saved.ToString());
    }
  }
  return absl::OkStatus();
}

absl::Status CertPins::Verify(PeerId peer_id, const std::string& fingerprint) const {
  const std::string fp = absl::AsciiStrToLower(fingerprint);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(peer_id);
  if (it == pins_.end() || it->second == fp) return absl::OkStatus();
  return CertMismatch(peer_id, fp, it->second);
}

std::optional<std::string> CertPins::Pinned(PeerId peer_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(peer_id);
  if (it == pins_.end()) return std::nullopt;
  return it->second;
}

std::map<PeerId, std::string> CertPins::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pins_;
}

std::string CertPins::Serialize(const std::map<PeerId, std::string>& pins) {
  std::string out;
  for (const auto& [id, fp] : pins) absl::StrAppend(&out, id, " ", fp, "\n");
  return out;
}

std::map<PeerId, std::string> CertPins::Parse(const std::string& text) {
  std::map<PeerId, std::string> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  for (const std::string& line : lines) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    PeerId id = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &id) || id == 0 ||
        !IsValidCertFingerprint(parts[1])) {
      continue;
    }
    out[id] = absl::AsciiStrToLower(parts[1]);
  }
  return out;
}

}  // namespace cairn::cluster
