#include "cairn/cluster/cluster_key.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"

namespace cairn::cluster {
namespace {

constexpr size_t kCheckSize = 4;
constexpr char kCheckDomain[] = "cairn-join-token-v1";

codec::Key Derive(const ClusterKey& key, const char* info) {
  absl::StatusOr<Bytes> out = codec::HkdfSha256(key, {}, AsBytes(info), codec::kKeySize);
  codec::Key k{};
  // HkdfSha256 only fails for an out-of-range length, and kKeySize is in range.
  if (out.ok()) std::memcpy(k.data(), out->data(), k.size());
  return k;
}

std::array<uint8_t, 32> TokenCheck(const ClusterKey& key, std::string_view address) {
  codec::Sha256Hasher hasher;
  hasher.Update(AsBytes(kCheckDomain));
  hasher.Update(key);
  hasher.Update(AsBytes(address));
  return hasher.Finish();
}

}  // namespace

ClusterSubkeys DeriveClusterSubkeys(const ClusterKey& key) {
  ClusterSubkeys subkeys;
  subkeys.rpc = Derive(key, "cairn/v1/cluster-rpc");
  subkeys.announce = Derive(key, "cairn/v1/cluster-announce");
  return subkeys;
}

std::string NewNodeId() {
  codec::Key random = codec::RandomKey();
  return ToHex(ByteSpan(random.data(), 16));
}

bool IsValidNodeId(std::string_view node_id) {
  if (node_id.size() != 32) return false;
  for (char c : node_id) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::string> FormatJoinToken(const JoinToken& token) {
  if (token.address.empty() || token.address.size() > kMaxTokenAddress) {
    return absl::InvalidArgumentError(absl::StrCat("a join token needs an address of 1 to ",
                                                   kMaxTokenAddress, " bytes, got \"",
                                                   token.address, "\""));
  }
  std::string raw(reinterpret_cast<const char*>(token.key.data()), token.key.size());
  raw += token.address;
  std::array<uint8_t, 32> check = TokenCheck(token.key, token.address);
  raw.append(reinterpret_cast<const char*>(check.data()), kCheckSize);
  std::string encoded;
  absl::WebSafeBase64Escape(raw, &encoded);  // no padding
  return absl::StrCat(kJoinTokenPrefix, encoded);
}

absl::StatusOr<JoinToken> ParseJoinToken(std::string_view text) {
  std::string s(absl::StripAsciiWhitespace(std::string(text)));
  const std::string prefix = kJoinTokenPrefix;
  if (s.compare(0, prefix.size(), prefix) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a cairn join token: it must start with \"", prefix,
                     "\" (print one with `cairn cluster token` on a member)"));
  }
  std::string body = s.substr(prefix.size());
  for (char c : body) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return absl::InvalidArgumentError(
          absl::StrCat("join token contains '", std::string(1, c),
                       "', which is not base64url: it was mistyped or mangled"));
    }
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(body, &raw) || raw.size() < codec::kKeySize + 1 + kCheckSize) {
    return absl::InvalidArgumentError("join token is truncated or mistyped");
  }
  JoinToken token;
  std::memcpy(token.key.data(), raw.data(), token.key.size());
  token.address = raw.substr(codec::kKeySize, raw.size() - codec::kKeySize - kCheckSize);
  std::array<uint8_t, 32> check = TokenCheck(token.key, token.address);
  if (!codec::ConstantTimeEqual(ByteSpan(check.data(), kCheckSize),
                                AsBytes(std::string_view(raw).substr(raw.size() - kCheckSize)))) {
    return absl::InvalidArgumentError(
        "join token checksum mismatch: it was mistyped or truncated (copy it again from "
        "`cairn cluster token`)");
  }
  if (token.address.size() > kMaxTokenAddress) {
    return absl::InvalidArgumentError("join token address too long");
  }
  return token;
}

}  // namespace cairn::cluster
