#include "cairn/cluster/node_pins.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/cluster/membership.h"

namespace cairn::cluster {
namespace {

using ::testing::HasSubstr;

const std::string kNodeA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kNodeB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

TEST(NodePinsTest, FirstContactPinsAndPersists) {
  std::map<PeerId, std::string> saved;
  int saves = 0;
  NodePins pins([&](const std::map<PeerId, std::string>& all) {
    saved = all;
    ++saves;
    return absl::OkStatus();
  });
  EXPECT_TRUE(pins.Check(3, kNodeA).ok());
  EXPECT_TRUE(pins.Check(3, kNodeA).ok());
  EXPECT_EQ(saves, 1);  // persisted once, when pinned
  EXPECT_EQ(saved, (std::map<PeerId, std::string>{{3, kNodeA}}));
  absl::Status refused = pins.Check(3, kNodeB);
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("peer id 3 belongs to another node"));
  EXPECT_TRUE(pins.Conflicts(3, kNodeB));
  EXPECT_FALSE(pins.Conflicts(3, kNodeA));
  EXPECT_FALSE(pins.Conflicts(4, kNodeB));  // not pinned: no conflict, and not pinned by asking
  EXPECT_FALSE(pins.Pinned(4).has_value());
  EXPECT_EQ(pins.Check(4, "nope").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*pins.Pinned(3), kNodeA);
}

TEST(NodePinsTest, SerializeParseAndLoad) {
  std::map<PeerId, std::string> all{{1, kNodeA}, {70000, kNodeB}};
  std::string text = NodePins::Serialize(all);
  EXPECT_EQ(NodePins::Parse(text), all);
  EXPECT_EQ(NodePins::Parse(text + "garbage line\n0 " + kNodeA + "\n5 short\n"), all);
  NodePins pins;
  pins.Load(all);
  EXPECT_EQ(pins.Check(70000, kNodeA).code(), absl::StatusCode::kAlreadyExists);
  // Upper-case hex is the same node.
  EXPECT_TRUE(pins.Check(1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").ok());
}

TEST(NodePinsTest, MembershipIgnoresPeersPinnedToAnotherNode) {
  env::FakeClock clock;
  NodePins pins;
  MembershipOptions options;
  options.pins = &pins;
  PeerInfo self;
  self.id = 1;
  self.address = "127.0.0.1:7001";
  self.node_id = "cccccccccccccccccccccccccccccccc";
  Membership membership(self, options, &clock);
  PeerInfo a;
  a.id = 3;
  a.address = "127.0.0.1:7003";
  a.node_id = kNodeA;
  membership.ObserveDirect(a);
  ASSERT_TRUE(membership.Find(3).has_value());
  PeerInfo b = a;
  b.node_id = kNodeB;
  b.address = "127.0.0.1:7999";
  b.incarnation = 99;
  membership.ObserveDirect(b);
  membership.ObserveIndirect(b);
  EXPECT_EQ(membership.Find(3)->info.address, "127.0.0.1:7003");
  EXPECT_EQ(membership.Find(3)->info.node_id, kNodeA);
  // A peer without a valid node id is not recorded when pins are in force.
  PeerInfo anonymous;
  anonymous.id = 4;
  anonymous.address = "127.0.0.1:7004";
  membership.ObserveDirect(anonymous);
  EXPECT_FALSE(membership.Find(4).has_value());
}

}  // namespace
}  // namespace cairn::cluster
