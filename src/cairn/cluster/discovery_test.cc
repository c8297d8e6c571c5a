// MulticastDiscovery over the loopback interface: several "peers" in this process, each with its
// own socket on one group:port, find each other without seeds. Skipped (with a note) where the
// loopback interface cannot carry multicast.
#include "cairn/cluster/discovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;

ClusterKey Key(uint8_t seed) {
  ClusterKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 11 + i);
  return k;
}

template <typename Fn>
bool WaitFor(Fn done, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// One simulated peer: membership + pins + discovery.
struct TestPeer {
  TestPeer(PeerId id, const std::string& node_id, uint64_t incarnation) {
    PeerInfo self;
    self.id = id;
    self.host_id = "host-" + std::to_string(id);
    self.address = "0.0.0.0:" + std::to_string(7000 + id);  // filled from the source address
    self.quota = 1000;
    self.node_id = node_id;
    self.incarnation = incarnation;
    MembershipOptions options;
    options.pins = &pins;
    options.cert_pins = &cert_pins;
    membership = std::make_unique<Membership>(self, options, env::RealClock::Default());
  }
  absl::Status Start(const DiscoveryOptions& options, const ClusterKey& key) {
    auto d = MulticastDiscovery::Start(options, key, membership.get(), env::RealClock::Default(),
                                       [this](const absl::Status& s) {
                                         std::lock_guard<std::mutex> lock(mu);
                                         conflict = s;
                                       });
    if (!d.ok()) return d.status();
    discovery = *std::move(d);
    return absl::OkStatus();
  }
  bool Knows(PeerId id) {
    auto view = membership->Find(id);
    return view && view->state == PeerState::kAlive;
  }
  absl::Status Conflict() {
    std::lock_guard<std::mutex> lock(mu);
    return conflict;
  }

  NodePins pins;
  CertPins cert_pins;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<MulticastDiscovery> discovery;
  std::mutex mu;
  absl::Status conflict;
};

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    std::mt19937 rng(seed_);
    options_.group = "239.255.67.82";
    // A port of its own, so that concurrent test runs do not see each other.
    options_.port = 20000 + static_cast<int>(rng() % 30000);
    options_.interval = 100ms;
    options_.interface = "lo";
    options_.ttl = 0;  // never leaves this host
    // Probe: can loopback carry multicast here?
    TestPeer probe(99, NewNodeId(), 1);
    absl::Status st = probe.Start(options_, Key(1));
    if (!st.ok()) {
      GTEST_SKIP() << "multicast on the loopback interface is not available here: " << st;
    }
  }
  std::string Trace() {
    return "seed " + std::to_string(seed_) + " port " + std::to_string(options_.port);
  }

  uint32_t seed_ = 0;
  DiscoveryOptions options_;
};

TEST_F(DiscoveryTest, PeersFindEachOtherWithoutSeedsAndOutsidersAreIgnored) {
  SCOPED_TRACE(Trace());
  TestPeer a(1, NewNodeId(), 100), b(2, NewNodeId(), 100), outsider(3, NewNodeId(), 100);
  ASSERT_TRUE(a.Start(options_, Key(1)).ok());
  ASSERT_TRUE(b.Start(options_, Key(1)).ok());
  ASSERT_TRUE(outsider.Start(options_, Key(2)).ok());  // another cluster key
  ASSERT_TRUE(WaitFor([&] { return a.Knows(2) && b.Knows(1); }));
  // The wildcard listen host was filled with the datagram's source address.
  EXPECT_EQ(a.membership->Find(2)->info.address, "127.0.0.1:7002");
  EXPECT_EQ(a.membership->Find(2)->info.node_id, b.membership->self().node_id);
  EXPECT_EQ(a.membership->Find(2)->info.host_id, "host-2");
  // Wait until the outsider has certainly been heard (and refused) by both.
  ASSERT_TRUE(WaitFor([&] {
    return a.discovery->stats().unauthenticated >= 3 && b.discovery->stats().unauthenticated >= 3;
  }));
  EXPECT_FALSE(a.membership->Find(3).has_value());
  EXPECT_FALSE(b.membership->Find(3).has_value());
  EXPECT_FALSE(outsider.membership->Find(1).has_value());
  EXPECT_GT(a.discovery->stats().own, 0u);  // its own announcements came back and were ignored
  EXPECT_TRUE(a.Conflict().ok());
}

TEST_F(DiscoveryTest, ReplayedAndPinnedConflictsAreIgnored) {
  SCOPED_TRACE(Trace());
  TestPeer a(1, NewNodeId(), 100);
  ASSERT_TRUE(a.Start(options_, Key(1)).ok());
  codec::Key announce = DeriveClusterSubkeys(Key(1)).announce;
  Announcement b;
  b.peer.id = 2;
  b.peer.address = "127.0.0.1:7002";
  b.peer.node_id = NewNodeId();
  b.peer.incarnation = 5;
  b.sequence = 1;
  b.time_unix_ms = env::RealClock::Default()->NowNanos() / 1'000'000;
  Bytes first = *EncodeAnnouncement(b, announce);
  EXPECT_TRUE(a.discovery->HandleDatagram(first, "127.0.0.1"));
  EXPECT_FALSE(a.discovery->HandleDatagram(first, "127.0.0.1"));  // replay
  // Stale: sent long ago (a recording played back later).
  Announcement stale = b;
  stale.sequence = 2;
  stale.time_unix_ms -= 3'600'000;
  EXPECT_FALSE(a.discovery->HandleDatagram(*EncodeAnnouncement(stale, announce), "127.0.0.1"));
  // Another node claiming peer id 2 (pinned at first contact): ignored.
  Announcement impostor = b;
  impostor.peer.node_id = NewNodeId();
  impostor.peer.address = "127.0.0.1:7999";
  impostor.peer.incarnation = 6;
  EXPECT_FALSE(a.discovery->HandleDatagram(*EncodeAnnouncement(impostor, announce), "127.0.0.2"));
  EXPECT_EQ(a.membership->Find(2)->info.address, "127.0.0.1:7002");
  EXPECT_GE(a.discovery->stats().replayed, 1u);
  EXPECT_GE(a.discovery->stats().stale, 1u);
  EXPECT_GE(a.discovery->stats().conflicts, 1u);
}

// Announcements carry the TLS certificate fingerprint: the first one pins it; a later one for
// the same peer id and node id with another certificate is ignored (docs/protocol.md
// "Announcements").
TEST_F(DiscoveryTest, AnnouncedCertificatesArePinnedAndAnotherOneIsIgnored) {
  SCOPED_TRACE(Trace());
  TestPeer a(1, NewNodeId(), 100);
  ASSERT_TRUE(a.Start(options_, Key(1)).ok());
  codec::Key announce = DeriveClusterSubkeys(Key(1)).announce;
  Announcement b;
  b.peer.id = 2;
  b.peer.address = "127.0.0.1:7002";
  b.peer.node_id = NewNodeId();
  b.peer.cert_fingerprint = std::string(64, 'a');
  b.peer.incarnation = 5;
  b.sequence = 1;
  b.time_unix_ms = env::RealClock::Default()->NowNanos() / 1'000'000;
  EXPECT_TRUE(a.discovery->HandleDatagram(*EncodeAnnouncement(b, announce), "127.0.0.1"));
  EXPECT_EQ(a.cert_pins.Pinned(2), std::string(64, 'a'));
  Announcement other = b;
  other.peer.cert_fingerprint = std::string(64, 'b');
  other.peer.address = "127.0.0.1:7999";
  other.peer.incarnation = 6;
  const uint64_t conflicts = a.discovery->stats().conflicts;
  EXPECT_FALSE(a.discovery->HandleDatagram(*EncodeAnnouncement(other, announce), "127.0.0.2"));
  EXPECT_EQ(a.discovery->stats().conflicts, conflicts + 1);
  EXPECT_EQ(a.membership->Find(2)->info.address, "127.0.0.1:7002");
  EXPECT_EQ(a.membership->Find(2)->info.cert_fingerprint, std::string(64, 'a'));
  EXPECT_EQ(a.cert_pins.Pinned(2), std::string(64, 'a'));
}

// Two processes claim peer id 5: the one that started later is told (on_conflict); the one
// that was there first keeps running.
TEST_F(DiscoveryTest, TheNewcomerWithADuplicatePeerIdIsRefused) {
  SCOPED_TRACE(Trace());
  TestPeer first(5, NewNodeId(), 1000), newcomer(5, NewNodeId(), 2000);
  ASSERT_TRUE(first.Start(options_, Key(1)).ok());
  ASSERT_TRUE(newcomer.Start(options_, Key(1)).ok());
  ASSERT_TRUE(WaitFor([&] { return !newcomer.Conflict().ok(); }));
  EXPECT_EQ(newcomer.Conflict().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(newcomer.Conflict().message()),
              ::testing::HasSubstr("peer id 5 belongs to another node"));
  // The first one heard the newcomer too (conflict counted) but was not told to give way.
  ASSERT_TRUE(WaitFor([&] { return first.discovery->stats().conflicts > 0; }));
  EXPECT_TRUE(first.Conflict().ok());
}

TEST(DiscoveryOptionsTest, BadOptions) {
  PeerInfo self;
  self.id = 1;
  self.address = "127.0.0.1:1";
  self.node_id = NewNodeId();
  Membership m(self, {}, env::RealClock::Default());
  DiscoveryOptions o;
  o.group = "10.0.0.1";
  EXPECT_EQ(MulticastDiscovery::Start(o, Key(1), &m, env::RealClock::Default()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = {};
  o.interface = "no-such-interface0";
  EXPECT_EQ(MulticastDiscovery::Start(o, Key(1), &m, env::RealClock::Default()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = {};
  o.port = 0;
  EXPECT_EQ(MulticastDiscovery::Start(o, Key(1), &m, env::RealClock::Default()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::cluster
