// Multicast announcements (docs/protocol.md "Announcements"): the datagram a peer
// sends to the LAN every few seconds so that others find it without seeds.
//
//   datagram = "CRNA" || 0x01 || body || mac[32]
//   body     = protobuf cairn.v1.Announcement {peer: PeerInfo (id, host id, address, quota, used,
//              version, incarnation, node id), sequence, time_unix_ms}
//   mac      = HMAC-SHA256(announce key, "CRNA" || 0x01 || body)   (cluster_key.h subkey)
//
// A receiver accepts an announcement when the MAC verifies (the sender holds the cluster key),
// its time is within ±max_skew of the receiver's clock, and AnnouncementFilter has not seen a
// later one from that peer: within one incarnation the sequence must increase, and announcements
// from an older incarnation than the newest seen are ignored. So a recorded announcement
// replayed later, or an altered one, is ignored.
//
// Thread-safety: the functions are stateless; AnnouncementFilter is thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/cluster/membership.h"

namespace cairn::cluster {

inline constexpr char kAnnouncementMagic[] = "CRNA";
inline constexpr uint8_t kAnnouncementVersion = 1;
// Largest datagram sent or accepted (fits one Ethernet frame with IP/UDP headers).
inline constexpr size_t kMaxAnnouncementSize = 1400;

struct Announcement {
  PeerInfo peer;  // node_id: 32 hex characters; cert_fingerprint: 64 hex characters or empty
  uint64_t sequence = 0;
  int64_t time_unix_ms = 0;
  bool operator==(const Announcement&) const = default;
};

// The datagram for `a`, MAC'd with `announce_key` (ClusterSubkeys::announce). INVALID_ARGUMENT
// when it would exceed kMaxAnnouncementSize or the node id is not 32 hex characters.
absl::StatusOr<Bytes> EncodeAnnouncement(const Announcement& a, const codec::Key& announce_key);

// Verifies and decodes a datagram. UNAUTHENTICATED when the MAC does not verify (another
// cluster, or altered); INVALID_ARGUMENT when it is not an announcement at all (too short or
// long, wrong magic/version) or its body is malformed (peer id 0, bad node id, empty address,
// oversized strings). Never crashes on any input.
absl::StatusOr<Announcement> DecodeAnnouncement(ByteSpan datagram, const codec::Key& announce_key);

// Replay protection per (peer id, node id) (see file comment): keyed by node too, so that a
// second process claiming a peer id cannot make the genuine one's announcements look old.
// Remembers at most `max_peers` of them; announcements from further new ones are refused.
class AnnouncementFilter {
 public:
  explicit AnnouncementFilter(size_t max_peers = 4096) : max_peers_(max_peers) {}
  // True (and remembered) when `a` is newer than anything seen from its (peer id, node id).
  bool Accept(const Announcement& a);

 private:
  struct Seen {
    uint64_t incarnation = 0;
    uint64_t sequence = 0;
  };
  size_t max_peers_;
  std::map<std::pair<PeerId, std::string>, Seen> seen_;
};

}  // namespace cairn::cluster
