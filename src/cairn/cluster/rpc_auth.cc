#include "cairn/cluster/rpc_auth.h"

#include <cstring>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"

namespace cairn::cluster {
namespace {

constexpr char kRequestDomain[] = "cairn-rpc-request-v1";
constexpr char kCallDomain[] = "cairn-rpc-call-v1";
constexpr char kReplyDomain[] = "cairn-rpc-reply-v1";
constexpr char kVersion[] = "v1";         // of x-cairn-auth-reply
constexpr char kRequestVersion[] = "v2";  // of x-cairn-auth (v1 had no call mac)
constexpr char kSkewPrefix[] = "clock skew: the caller's clock is ";

void PutBe(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PutString(Bytes& out, std::string_view s) {
  PutBe(out, s.size(), 4);
  out.insert(out.end(), s.begin(), s.end());
}

// 16 raw bytes of a valid node id (zeros for an invalid one, which then never verifies).
void PutNodeId(Bytes& out, const std::string& node_id) {
  auto raw = FromHex(node_id);
  if (raw.ok() && raw->size() == 16) {
    out.insert(out.end(), raw->begin(), raw->end());
  } else {
    out.insert(out.end(), 16, 0);
  }
}

absl::Status Unauthenticated(const std::string& why) {
  return absl::UnauthenticatedError(absl::StrCat("not authenticated as a cluster member: ", why));
}

template <size_t N>
bool ParseHexArray(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  auto raw = FromHex(text);
  if (!raw.ok() || raw->size() != N) return false;
  std::memcpy(out.data(), raw->data(), N);
  return true;
}

struct ParsedRequest {
  NodeIdentity caller;
  int64_t unix_seconds = 0;
  CallNonce nonce{};
  Digest call_mac{};
  Digest mac{};
};

absl::StatusOr<ParsedRequest> ParseRequestHeader(std::string_view header) {
  if (header.empty()) return Unauthenticated("no x-cairn-auth header");
  std::vector<std::string> parts = absl::StrSplit(std::string(header), ' ');
  if (parts.size() == 6 && parts[0] == "v1") {
    return Unauthenticated(
        "x-cairn-auth v1 (a cairn older than this peer, without the call mac: upgrade it)");
  }
  ParsedRequest out;
  if (parts.size() != 7 || parts[0] != kRequestVersion ||
      !absl::SimpleAtoi(parts[1], &out.caller.peer_id) || out.caller.peer_id == 0 ||
      !IsValidNodeId(parts[2]) || !absl::SimpleAtoi(parts[3], &out.unix_seconds) ||
      !ParseHexArray(parts[4], out.nonce) || !ParseHexArray(parts[5], out.call_mac) ||
      !ParseHexArray(parts[6], out.mac)) {
    return Unauthenticated("malformed x-cairn-auth header");
  }
  out.caller.node_id = absl::AsciiStrToLower(parts[2]);
  return out;
}

}  // namespace

std::string ClockSkewMessage(int64_t caller_minus_callee, int64_t max_skew) {
  const uint64_t magnitude = caller_minus_callee < 0
                                 ? static_cast<uint64_t>(-(caller_minus_callee + 1)) + 1
                                 : static_cast<uint64_t>(caller_minus_callee);
  return absl::StrCat(
      kSkewPrefix, magnitude, " s ", caller_minus_callee < 0 ? "behind" : "ahead of",
      " the callee's, more than the ", max_skew, " s accepted: synchronize the clocks (NTP)");
}

namespace {
constexpr char kSignedByUrl[] = "type.cairn.dev/cairn.SignedBy";
}  // namespace

void SetSignedBy(absl::Status* status, const NodeIdentity& callee) {
  if (status->ok()) return;
  status->SetPayload(kSignedByUrl, absl::Cord(absl::StrCat(callee.peer_id, " ", callee.node_id)));
}

std::optional<NodeIdentity> SignedBy(const absl::Status& status) {
  auto payload = status.GetPayload(kSignedByUrl);
  if (!payload) return std::nullopt;
  std::string text(*payload);
  size_t space = text.find(' ');
  NodeIdentity who;
  if (space == std::string::npos || !absl::SimpleAtoi(text.substr(0, space), &who.peer_id) ||
      who.peer_id == 0) {
    return std::nullopt;
  }
  who.node_id = text.substr(space + 1);
  return who;
}

std::optional<int64_t> ParseClockSkew(std::string_view message) {
  size_t at = message.find(kSkewPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = message.substr(at + sizeof kSkewPrefix - 1);
  size_t space = rest.find(' ');
  int64_t magnitude = 0;
  if (space == std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(rest.data(), space), &magnitude) || magnitude < 0) {
    return std::nullopt;
  }
  rest = rest.substr(space);
  auto starts_with = [&](std::string_view prefix) {
    return rest.substr(0, prefix.size()) == prefix;
  };
  if (starts_with(" s behind")) return -magnitude;
  if (starts_with(" s ahead of")) return magnitude;
  return std::nullopt;
}

RpcAuth::RpcAuth(const ClusterKey& key, NodeIdentity self, env::Clock* clock,
                 RpcAuthOptions options)
    : rpc_key_(DeriveClusterSubkeys(key).rpc),
      self_{self.peer_id, absl::AsciiStrToLower(self.node_id)},
      clock_(clock),
      options_(options) {}

Digest RpcAuth::RequestMac(std::string_view method, const NodeIdentity& caller,
                           int64_t unix_seconds, const CallNonce& nonce,
                           const Digest* body_hash) const {
  Bytes in;
  in.reserve(160 + method.size());
  const char* domain = body_hash != nullptr ? kRequestDomain : kCallDomain;
  in.insert(in.end(), domain, domain + std::strlen(domain) + 1);  // with NUL
  PutString(in, method);
  PutBe(in, caller.peer_id, 8);
  PutNodeId(in, caller.node_id);
  PutBe(in, static_cast<uint64_t>(unix_seconds), 8);
  in.insert(in.end(), nonce.begin(), nonce.end());
  if (body_hash != nullptr) in.insert(in.end(), body_hash->begin(), body_hash->end());
  return codec::HmacSha256(rpc_key_, in);
}

Digest RpcAuth::ReplyMac(std::string_view method, const CallNonce& request_nonce,
                         const NodeIdentity& callee, int status_code, std::string_view message,
                         const Digest& body_hash) const {
  Bytes in;
  in.reserve(160 + method.size() + message.size());
  in.insert(in.end(), kReplyDomain, kReplyDomain + sizeof kReplyDomain);  // with NUL
  PutString(in, method);
  in.insert(in.end(), request_nonce.begin(), request_nonce.end());
  PutBe(in, callee.peer_id, 8);
  PutNodeId(in, callee.node_id);
  PutBe(in, static_cast<uint32_t>(status_code), 4);
  PutString(in, message);
  in.insert(in.end(), body_hash.begin(), body_hash.end());
  return codec::HmacSha256(rpc_key_, in);
}

SignedRequest RpcAuth::SignRequest(std::string_view method, const Digest& body_hash) const {
  SignedRequest out;
  codec::Key random = codec::RandomKey();
  std::memcpy(out.nonce.data(), random.data(), out.nonce.size());
  const int64_t now = clock_->NowNanos() / 1'000'000'000;
  Digest call_mac = RequestMac(method, self_, now, out.nonce, nullptr);
  Digest mac = RequestMac(method, self_, now, out.nonce, &body_hash);
  out.header = absl::StrCat(kRequestVersion, " ", self_.peer_id, " ", self_.node_id, " ", now, " ",
                            ToHex(out.nonce), " ", ToHex(call_mac), " ", ToHex(mac));
  return out;
}

absl::StatusOr<VerifiedRequest> RpcAuth::PreVerifyRequest(std::string_view method,
                                                          std::string_view header,
                                                          VerifiedRequest* skewed) {
  CAIRN_ASSIGN_OR_RETURN(ParsedRequest parsed, ParseRequestHeader(header));
  // The MAC before the time: only a member learns that its clock is off.
  Digest want = RequestMac(method, parsed.caller, parsed.unix_seconds, parsed.nonce, nullptr);
  if (!codec::ConstantTimeEqual(want, parsed.call_mac)) {
    return Unauthenticated("bad MAC (another cluster key, or the request was altered)");
  }
  VerifiedRequest out;
  out.caller = parsed.caller;
  out.nonce = parsed.nonce;
  const int64_t now = clock_->NowNanos() / 1'000'000'000;
  out.clock_offset_seconds = parsed.unix_seconds - now;
  const int64_t skew = options_.max_skew.count();
  if (parsed.unix_seconds < now - skew || parsed.unix_seconds > now + skew) {
    if (skewed != nullptr) *skewed = out;
    return absl::UnauthenticatedError(ClockSkewMessage(out.clock_offset_seconds, skew));
  }
  // Only requests with a valid MAC reach the cache, so outsiders cannot fill it.
  std::lock_guard<std::mutex> lock(mu_);
  ExpireNonces(now);
  if (nonces_.count(out.nonce) > 0) return Unauthenticated("replayed request (nonce seen before)");
  if (nonces_.size() >= options_.max_nonces) {
    return absl::UnavailableError("too many calls in the replay window; retry later");
  }
  nonces_.insert(out.nonce);
  expiry_.push({parsed.unix_seconds + skew, out.nonce});
  return out;
}

absl::Status RpcAuth::VerifyRequestBody(std::string_view method, std::string_view header,
                                        const Digest& body_hash) const {
  CAIRN_ASSIGN_OR_RETURN(ParsedRequest parsed, ParseRequestHeader(header));
  Digest want = RequestMac(method, parsed.caller, parsed.unix_seconds, parsed.nonce, &body_hash);
  if (!codec::ConstantTimeEqual(want, parsed.mac)) {
    return Unauthenticated("bad MAC (another cluster key, or the request was altered)");
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifiedRequest> RpcAuth::VerifyRequest(std::string_view method,
                                                       std::string_view header,
                                                       const Digest& body_hash) {
  CAIRN_ASSIGN_OR_RETURN(VerifiedRequest out, PreVerifyRequest(method, header));
  CAIRN_RETURN_IF_ERROR(VerifyRequestBody(method, header, body_hash));
  return out;
}

void RpcAuth::ExpireNonces(int64_t now_seconds) {
  while (!expiry_.empty() && expiry_.top().first < now_seconds) {
    // A nonce whose time is older than now - max_skew can no longer pass the time check.
    nonces_.erase(expiry_.top().second);
    expiry_.pop();
  }
}

size_t RpcAuth::remembered_nonces() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nonces_.size();
}

std::string RpcAuth::SignReply(std::string_view method, const CallNonce& request_nonce,
                               int status_code, std::string_view message,
                               const Digest& body_hash) const {
  Digest mac = ReplyMac(method, request_nonce, self_, status_code, message, body_hash);
  return absl::StrCat(kVersion, " ", self_.peer_id, " ", self_.node_id, " ", ToHex(mac));
}

absl::StatusOr<NodeIdentity> RpcAuth::VerifyReply(std::string_view method,
                                                  const CallNonce& request_nonce, int status_code,
                                                  std::string_view message, const Digest& body_hash,
                                                  std::string_view header) const {
  if (header.empty()) return Unauthenticated("the answer carries no x-cairn-auth-reply");
  std::vector<std::string> parts = absl::StrSplit(std::string(header), ' ');
  NodeIdentity callee;
  Digest mac{};
  if (parts.size() != 4 || parts[0] != kVersion || !absl::SimpleAtoi(parts[1], &callee.peer_id) ||
      !IsValidNodeId(parts[2]) || !ParseHexArray(parts[3], mac)) {
    return Unauthenticated("malformed x-cairn-auth-reply");
  }
  callee.node_id = absl::AsciiStrToLower(parts[2]);
  Digest want = ReplyMac(method, request_nonce, callee, status_code, message, body_hash);
  if (!codec::ConstantTimeEqual(want, mac)) {
    return Unauthenticated("the answer's MAC does not match (another cluster key, or altered)");
  }
  return callee;
}

}  // namespace cairn::cluster
