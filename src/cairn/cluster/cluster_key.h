// The cluster key, its subkeys, node ids and join tokens (docs/security.md "Keys and identities").
//
//  - Cluster key: 256 random bits shared by every member (DIR/secrets/cluster.key). It is never
//    used directly: HKDF-SHA256 (RFC 5869, empty salt) derives one subkey per use, so that a MAC
//    made for one purpose can never be replayed as another:
//      rpc key       info "cairn/v1/cluster-rpc"       (per-call authentication, rpc_auth.h)
//      announce key  info "cairn/v1/cluster-announce"  (multicast announcements, announcement.h)
//  - Node id: 128 random bits made once per peer directory (DIR/secrets/node.id), written as 32
//    lower-case hex characters. Peers pin peer id -> node id on first contact (node_pins.h), so
//    that a second process claiming a peer id that is in use is refused.
//  - Join token: what `cairn cluster token` prints and `cairn init --join` reads:
//      "cairn1:" base64url-without-padding( key[32] || address[n] || check[4] )
//    where address is the issuing peer's listen address (UTF-8 host:port, n <= 255) and check
//    is the first 4 bytes of SHA-256("cairn-join-token-v1" || key || address): any typo (a
//    changed, dropped or added character) is caught with probability 1 - 2^-32.
//
// Thread-safety: value types and stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/codec/crypto.h"

namespace cairn::cluster {

using ClusterKey = codec::Key;

struct ClusterSubkeys {
  codec::Key rpc;
  codec::Key announce;
};

// HKDF-SHA256 subkeys of `key` (see file comment). Deterministic.
ClusterSubkeys DeriveClusterSubkeys(const ClusterKey& key);

// A fresh random node id: 32 lower-case hex characters (128 bits from the OS CSPRNG).
std::string NewNodeId();
// True for exactly 32 hex characters (either case).
bool IsValidNodeId(std::string_view node_id);

inline constexpr char kJoinTokenPrefix[] = "cairn1:";
// Longest address a token carries (bytes).
inline constexpr size_t kMaxTokenAddress = 255;

struct JoinToken {
  ClusterKey key{};
  std::string address;  // the issuing peer's listen address, a seed for the joiner
  bool operator==(const JoinToken&) const = default;
};

// The token text (see file comment). INVALID_ARGUMENT when the address is empty or longer than
// kMaxTokenAddress.
absl::StatusOr<std::string> FormatJoinToken(const JoinToken& token);
// Parses a token; surrounding whitespace is ignored. INVALID_ARGUMENT naming the problem: wrong
// prefix, not base64url, too short, or a checksum mismatch ("mistyped or truncated").
absl::StatusOr<JoinToken> ParseJoinToken(std::string_view text);

}  // namespace cairn::cluster
