#include "cairn/cluster/membership.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::cluster {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

PeerInfo Info(PeerId id, const std::string& address, uint64_t incarnation = 1) {
  PeerInfo info;
  info.id = id;
  info.host_id = "host-" + std::to_string(id);
  info.address = address;
  info.quota = 1000 * id;
  info.used = id;
  info.version = "0.1.0";
  info.incarnation = incarnation;
  return info;
}

class MembershipTest : public ::testing::Test {
 protected:
  MembershipTest() : membership_(Info(5, "127.0.0.1:7005"), Options(), &clock_) {}
  static MembershipOptions Options() {
    MembershipOptions o;
    o.suspect_after = seconds(15);
    o.dead_after = seconds(600);
    return o;
  }
  PeerState StateOf(PeerId id) {
    auto view = membership_.Find(id);
    EXPECT_TRUE(view.has_value()) << "peer " << id << " unknown";
    return view ? view->state : PeerState::kDead;
  }

  env::FakeClock clock_;
  Membership membership_;
};

TEST(PeerStateNameTest, Names) {
  EXPECT_STREQ(PeerStateName(PeerState::kAlive), "alive");
  EXPECT_STREQ(PeerStateName(PeerState::kSuspect), "suspect");
  EXPECT_STREQ(PeerStateName(PeerState::kDead), "dead");
}

TEST_F(MembershipTest, SelfIsListedAliveNow) {
  membership_.UpdateSelf(4096, 100);
  auto peers = membership_.Peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_TRUE(peers[0].self);
  EXPECT_EQ(peers[0].state, PeerState::kAlive);
  EXPECT_EQ(peers[0].info.id, 5u);
  EXPECT_EQ(peers[0].info.quota, 4096u);
  EXPECT_EQ(peers[0].info.used, 100u);
  EXPECT_EQ(peers[0].last_seen_ns, clock_.NowNanos());
  EXPECT_EQ(membership_.Self().quota, 4096u);
  EXPECT_EQ(membership_.self().address, "127.0.0.1:7005");

  clock_.Advance(seconds(3600));  // self never goes stale
  auto self = membership_.Find(5);
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->state, PeerState::kAlive);
  EXPECT_EQ(self->last_seen_ns, clock_.NowNanos());
}

TEST_F(MembershipTest, DirectContactLifecycle) {
  const int64_t contact_wall = clock_.NowNanos();
  membership_.ObserveDirect(Info(7, "127.0.0.1:7007"));
  struct Step {
    seconds advance;
    PeerState want;
  };
  // Times are cumulative since the contact: alive below 15 s, suspect below 600 s, then dead.
  const Step steps[] = {
      {seconds(0), PeerState::kAlive},    {seconds(14), PeerState::kAlive},
      {seconds(1), PeerState::kSuspect},  {seconds(500), PeerState::kSuspect},
      {seconds(84), PeerState::kSuspect}, {seconds(1), PeerState::kDead},
      {seconds(10000), PeerState::kDead},
  };
  int64_t elapsed = 0;
  for (const Step& step : steps) {
    clock_.Advance(step.advance);
    elapsed += step.advance.count();
    EXPECT_EQ(StateOf(7), step.want) << "after " << elapsed << " s: " << PeerStateName(StateOf(7));
  }
  auto view = membership_.Find(7);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->last_seen_ns, contact_wall);

  // Contact again: alive at once, with the new info.
  PeerInfo moved = Info(7, "127.0.0.1:7107", 2);
  membership_.ObserveDirect(moved);
  EXPECT_EQ(StateOf(7), PeerState::kAlive);
  view = membership_.Find(7);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->info, moved);
  EXPECT_EQ(view->last_seen_ns, clock_.NowNanos());
}

TEST_F(MembershipTest, AFailedCallMakesAPeerSuspectUntilContact) {
  membership_.ObserveDirect(Info(7, "a:1"));
  membership_.ReportFailure(7);
  membership_.ReportFailure(7);
  membership_.ReportFailure(99);  // unknown: ignored
  EXPECT_EQ(membership_.Find(7)->failures, 2u);
  EXPECT_EQ(StateOf(7), PeerState::kSuspect);  // no placement on it until it answers again
  EXPECT_FALSE(membership_.Find(99).has_value());
  membership_.ObserveDirect(Info(7, "a:1"));
  EXPECT_EQ(membership_.Find(7)->failures, 0u);
  EXPECT_EQ(StateOf(7), PeerState::kAlive);
}

TEST_F(MembershipTest, IndirectLearningDoesNotVouchForLiveness) {
  membership_.ObserveIndirect(Info(8, "127.0.0.1:7008"));
  auto view = membership_.Find(8);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->info.address, "127.0.0.1:7008");
  EXPECT_EQ(view->state, PeerState::kSuspect);  // nobody talked to it yet
  EXPECT_EQ(view->last_seen_ns, 0);

  clock_.Advance(seconds(599));
  membership_.ObserveIndirect(Info(8, "127.0.0.1:7008"));  // hearing of it again: no refresh
  EXPECT_EQ(StateOf(8), PeerState::kSuspect);
  clock_.Advance(seconds(1));
  EXPECT_EQ(StateOf(8), PeerState::kDead);

  membership_.ObserveDirect(Info(8, "127.0.0.1:7008"));
  EXPECT_EQ(StateOf(8), PeerState::kAlive);
  // An indirect report about a contacted peer does not refresh it either.
  clock_.Advance(seconds(20));
  membership_.ObserveIndirect(Info(8, "127.0.0.1:7008"));
  EXPECT_EQ(StateOf(8), PeerState::kSuspect);
}

TEST_F(MembershipTest, IndirectInfoWinsOnlyWhenNewer) {
  membership_.ObserveDirect(Info(9, "old:1", 10));
  membership_.ObserveIndirect(Info(9, "stale:1", 9));
  EXPECT_EQ(membership_.Find(9)->info.address, "old:1");
  membership_.ObserveIndirect(Info(9, "same:1", 10));
  EXPECT_EQ(membership_.Find(9)->info.address, "old:1");
  PeerInfo restarted = Info(9, "new:1", 11);
  restarted.host_id = "other-host";
  membership_.ObserveIndirect(restarted);
  auto view = membership_.Find(9);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->info.address, "new:1");
  EXPECT_EQ(view->info.host_id, "other-host");
  EXPECT_EQ(view->info.incarnation, 11u);
  EXPECT_EQ(view->state, PeerState::kAlive);  // liveness is still that of the direct contact
}

TEST_F(MembershipTest, SelfIsNeverLearnedFromOthers) {
  PeerInfo impostor = Info(5, "127.0.0.99:1", 999);
  membership_.ObserveDirect(impostor);
  membership_.ObserveIndirect(impostor);
  auto peers = membership_.Peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_TRUE(peers[0].self);
  EXPECT_EQ(peers[0].info.address, "127.0.0.1:7005");
}

TEST_F(MembershipTest, PeersSortedByIdWithSelfInPlace) {
  membership_.ObserveDirect(Info(9, "a:9"));
  membership_.ObserveIndirect(Info(2, "a:2"));
  membership_.ObserveDirect(Info(7, "a:7"));
  std::vector<PeerId> ids;
  std::vector<bool> selves;
  for (const PeerView& v : membership_.Peers()) {
    ids.push_back(v.info.id);
    selves.push_back(v.self);
  }
  EXPECT_THAT(ids, ElementsAre(2, 5, 7, 9));
  EXPECT_THAT(selves, ElementsAre(false, true, false, false));
}

TEST_F(MembershipTest, PingTargetsSeedsThenKnownPeers) {
  EXPECT_THAT(membership_.PingTargets(), IsEmpty());
  membership_.AddSeed("seed-a:1");
  membership_.AddSeed("seed-b:1");
  membership_.AddSeed("seed-a:1");        // duplicate
  membership_.AddSeed("");                // ignored
  membership_.AddSeed("127.0.0.1:7005");  // our own address: never pinged
  EXPECT_THAT(membership_.PingTargets(), ElementsAre("seed-a:1", "seed-b:1"));

  // seed-b turns out to be peer 3; peer 4 is known only indirectly; peer 6 shares an address
  // with peer 4 (stale entry), listed once.
  membership_.ObserveDirect(Info(3, "seed-b:1"));
  membership_.ObserveIndirect(Info(4, "p4:1"));
  membership_.ObserveIndirect(Info(6, "p4:1"));
  EXPECT_THAT(membership_.PingTargets(), ElementsAre("seed-a:1", "seed-b:1", "p4:1"));

  // Dead peers are still pinged so that their return is noticed.
  clock_.Advance(seconds(3600));
  EXPECT_EQ(StateOf(3), PeerState::kDead);
  EXPECT_THAT(membership_.PingTargets(), ElementsAre("seed-a:1", "seed-b:1", "p4:1"));
}

TEST_F(MembershipTest, ZeroStartClockStillTracksContact) {
  env::FakeClock clock(0);
  Membership m(Info(1, "a:1"), Options(), &clock);
  m.ObserveDirect(Info(2, "a:2"));
  EXPECT_EQ(m.Find(2)->state, PeerState::kAlive);
  clock.Advance(seconds(15));
  EXPECT_EQ(m.Find(2)->state, PeerState::kSuspect);
}

TEST_F(MembershipTest, ClockOffsetsAreKeptPerKnownPeer) {
  membership_.ObserveClockOffset(6, 1500);  // unknown: nothing to attach it to
  EXPECT_EQ(membership_.Find(6), std::nullopt);
  membership_.ObserveDirect(Info(6, "127.0.0.1:7006"));
  EXPECT_EQ(membership_.Find(6)->clock_offset_ms, std::nullopt);
  EXPECT_EQ(membership_.Find(6)->clock_measured_ns, 0);
  membership_.ObserveClockOffset(6, -1500);
  EXPECT_EQ(membership_.Find(6)->clock_offset_ms, -1500);
  EXPECT_EQ(membership_.Find(6)->clock_measured_ns, clock_.NowNanos());
  membership_.ObserveClockOffset(5, 99);  // self
  EXPECT_EQ(membership_.Find(5)->clock_offset_ms, std::nullopt);
  // A later contact keeps the last measurement; a new one replaces it.
  membership_.ObserveDirect(Info(6, "127.0.0.1:7006"));
  EXPECT_EQ(membership_.Find(6)->clock_offset_ms, -1500);
  membership_.ObserveClockOffset(6, 20);
  EXPECT_EQ(membership_.Find(6)->clock_offset_ms, 20);
}

TEST_F(MembershipTest, ClockRefusalLearnsThePeerWithoutVouchingForIt) {
  const std::string node(32, 'a');
  membership_.ObserveClockRefusal(7, node, "127.0.0.1:7007", 600000);
  auto view = membership_.Find(7);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->info.address, "127.0.0.1:7007");
  EXPECT_EQ(view->info.node_id, node);
  EXPECT_EQ(view->clock_offset_ms, 600000);
  EXPECT_EQ(view->last_seen_ns, 0);  // never answered a ping
  EXPECT_EQ(view->state, PeerState::kSuspect);
  clock_.Advance(seconds(600));
  EXPECT_EQ(StateOf(7), PeerState::kDead);
  // Another node claiming the same peer id does not overwrite it.
  membership_.ObserveClockRefusal(7, std::string(32, 'b'), "127.0.0.1:7008", -5000);
  EXPECT_EQ(membership_.Find(7)->clock_offset_ms, 600000);
  EXPECT_EQ(membership_.Find(7)->info.address, "127.0.0.1:7007");
  // Self and an empty address are ignored.
  membership_.ObserveClockRefusal(5, node, "127.0.0.1:7005", 1);
  membership_.ObserveClockRefusal(8, node, "", 1);
  EXPECT_EQ(membership_.Find(5)->clock_offset_ms, std::nullopt);
  EXPECT_EQ(membership_.Find(8), std::nullopt);
}

}  // namespace
}  // namespace cairn::cluster
