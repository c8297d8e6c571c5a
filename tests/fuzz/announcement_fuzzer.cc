// Fuzz target: multicast announcements (cluster/announcement.h, docs/protocol.md
// "Announcements"), datagrams anyone on the LAN can send. With an even first byte the rest is
// the datagram as received; with an odd one it is the body, which the harness frames and MACs
// with the cluster's announce key so that the fuzzer reaches the protobuf body and its checks.
// A decoded announcement re-encodes to one that decodes the same, and the replay filter accepts
// it once.
#include "cairn/cluster/announcement.h"
#include "cairn/cluster/tls_identity.h"
#include "cairn/codec/crypto.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

const codec::Key& AnnounceKey() {
  static const codec::Key key = [] {
    cluster::ClusterKey k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0xa0 + i);
    return cluster::DeriveClusterSubkeys(k).announce;
  }();
  return key;
}

Seeds MakeSeeds() {
  cluster::Announcement a;
  a.peer.id = 77;
  a.peer.host_id = "host-1";
  a.peer.address = "127.0.0.1:7600";
  a.peer.quota = 1 << 30;
  a.peer.used = 12345;
  a.peer.version = "0.1.0";
  a.peer.incarnation = 1700000000000000000;
  a.peer.node_id = "0123456789abcdef0123456789abcdef";
  a.peer.disk_room = 99;
  a.peer.cert_fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  a.sequence = 3;
  a.time_unix_ms = 1700000000000;
  Bytes datagram = *cluster::EncodeAnnouncement(a, AnnounceKey());
  // The body alone: without "CRNA" || version and the 32-byte MAC.
  Bytes body(datagram.begin() + 5, datagram.end() - 32);
  return {{"datagram", Concat(0, datagram)}, {"body", Concat(1, body)}};
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  using namespace cairn::fuzz;
  if (size == 0) return 0;
  Bytes datagram(data + 1, data + size);
  if (data[0] & 1) {
    Bytes framed{'C', 'R', 'N', 'A', cluster::kAnnouncementVersion};
    framed.insert(framed.end(), datagram.begin(), datagram.end());
    auto mac = codec::HmacSha256(AnnounceKey(), framed);
    framed.insert(framed.end(), mac.begin(), mac.end());
    datagram = std::move(framed);
  }
  auto a = cluster::DecodeAnnouncement(datagram, AnnounceKey());
  if (!a.ok()) {
    FUZZ_CHECK(a.status().code() == absl::StatusCode::kInvalidArgument ||
               a.status().code() == absl::StatusCode::kUnauthenticated);
    return 0;
  }
  FUZZ_CHECK(a->peer.id != 0 && !a->peer.address.empty());
  FUZZ_CHECK(cluster::IsValidNodeId(a->peer.node_id));
  FUZZ_CHECK(a->peer.cert_fingerprint.empty() ||
             cluster::IsValidCertFingerprint(a->peer.cert_fingerprint));
  auto again = cluster::EncodeAnnouncement(*a, AnnounceKey());
  if (again.ok()) {
    auto b = cluster::DecodeAnnouncement(*again, AnnounceKey());
    FUZZ_CHECK(b.ok());
    FUZZ_CHECK(*b == *a);
  }
  cluster::AnnouncementFilter filter;
  FUZZ_CHECK(filter.Accept(*a));
  FUZZ_CHECK(!filter.Accept(*a));
  return 0;
}
