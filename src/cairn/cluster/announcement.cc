#include "cairn/cluster/announcement.h"

#include <cstring>
#include <exception>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cairn/v1/peer.pb.h"

namespace cairn::cluster {
namespace {

constexpr size_t kMagicSize = 4;
constexpr size_t kHeaderSize = kMagicSize + 1;
constexpr size_t kMacSize = 32;
constexpr size_t kMaxField = 256;  // host id, site, address, version

}  // namespace

absl::StatusOr<Bytes> EncodeAnnouncement(const Announcement& a, const codec::Key& announce_key) {
  auto node = FromHex(a.peer.node_id);
  if (!IsValidNodeId(a.peer.node_id) || !node.ok()) {
    return absl::InvalidArgumentError("announcement needs a node id of 32 hex characters");
  }
  v1::Announcement msg;
  v1::PeerInfo* p = msg.mutable_peer();
  p->set_peer_id(a.peer.id);
  p->set_host_id(a.peer.host_id);
  p->set_site(a.peer.site);
  p->set_address(a.peer.address);
  p->set_quota(a.peer.quota);
  p->set_used(a.peer.used);
  p->set_extra(a.peer.extra);
  if (a.peer.disk_room) p->set_disk_room(*a.peer.disk_room);
  p->set_version(a.peer.version);
  p->set_incarnation(a.peer.incarnation);
  p->set_node_id(reinterpret_cast<const char*>(node->data()), node->size());
  if (!a.peer.cert_fingerprint.empty()) {
    auto cert = FromHex(a.peer.cert_fingerprint);
    if (!cert.ok() || cert->size() != 32) {
      return absl::InvalidArgumentError(
          "announcement needs a certificate fingerprint of 64 hex characters (or none)");
    }
    p->set_cert_sha256(reinterpret_cast<const char*>(cert->data()), cert->size());
  }
  msg.set_sequence(a.sequence);
  msg.set_time_unix_ms(a.time_unix_ms);
  std::string body;
  try {
    if (!msg.SerializeToString(&body)) return absl::InternalError("serialize announcement");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("serialize announcement: ", e.what()));
  }
  if (kHeaderSize + body.size() + kMacSize > kMaxAnnouncementSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("announcement of ", kHeaderSize + body.size() + kMacSize, " bytes exceeds ",
                     kMaxAnnouncementSize, " (host id or address too long?)"));
  }
  Bytes out(kAnnouncementMagic, kAnnouncementMagic + kMagicSize);
  out.push_back(kAnnouncementVersion);
  out.insert(out.end(), body.begin(), body.end());
  std::array<uint8_t, 32> mac = codec::HmacSha256(announce_key, out);
  out.insert(out.end(), mac.begin(), mac.end());
  return out;
}

absl::StatusOr<Announcement> DecodeAnnouncement(ByteSpan datagram, const codec::Key& announce_key) {
  if (datagram.size() < kHeaderSize + kMacSize || datagram.size() > kMaxAnnouncementSize ||
      std::memcmp(datagram.data(), kAnnouncementMagic, kMagicSize) != 0) {
    return absl::InvalidArgumentError("not a cairn announcement");
  }
  if (datagram[kMagicSize] != kAnnouncementVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("announcement version ", datagram[kMagicSize], " is not supported"));
  }
  ByteSpan signed_part = datagram.first(datagram.size() - kMacSize);
  std::array<uint8_t, 32> want = codec::HmacSha256(announce_key, signed_part);
  if (!codec::ConstantTimeEqual(want, datagram.last(kMacSize))) {
    return absl::UnauthenticatedError("announcement MAC does not verify");
  }
  ByteSpan body = signed_part.subspan(kHeaderSize);
  v1::Announcement msg;
  try {
    if (!msg.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::InvalidArgumentError("malformed announcement body");
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed announcement body: ", e.what()));
  }
  const v1::PeerInfo& p = msg.peer();
  if (p.peer_id() == 0 || p.node_id().size() != 16 ||
      (!p.cert_sha256().empty() && p.cert_sha256().size() != 32) || p.address().empty() ||
      p.address().size() > kMaxField || p.host_id().size() > kMaxField ||
      p.site().size() > kMaxField || p.version().size() > kMaxField) {
    return absl::InvalidArgumentError("announcement with missing or oversized fields");
  }
  Announcement a;
  a.peer.id = p.peer_id();
  a.peer.host_id = p.host_id();
  a.peer.site = p.site();
  a.peer.address = p.address();
  a.peer.quota = p.quota();
  a.peer.used = p.used();
  a.peer.extra = p.extra();
  if (p.has_disk_room()) a.peer.disk_room = p.disk_room();
  a.peer.version = p.version();
  a.peer.incarnation = p.incarnation();
  a.peer.node_id = ToHex(AsBytes(p.node_id()));
  if (!p.cert_sha256().empty()) a.peer.cert_fingerprint = ToHex(AsBytes(p.cert_sha256()));
  a.sequence = msg.sequence();
  a.time_unix_ms = msg.time_unix_ms();
  return a;
}

bool AnnouncementFilter::Accept(const Announcement& a) {
  auto key = std::make_pair(a.peer.id, a.peer.node_id);
  auto it = seen_.find(key);
  if (it == seen_.end()) {
    if (seen_.size() >= max_peers_) return false;
    seen_[key] = Seen{a.peer.incarnation, a.sequence};
    return true;
  }
  Seen& s = it->second;
  if (a.peer.incarnation < s.incarnation) return false;
  if (a.peer.incarnation == s.incarnation && a.sequence <= s.sequence) return false;
  s = Seen{a.peer.incarnation, a.sequence};
  return true;
}

}  // namespace cairn::cluster
