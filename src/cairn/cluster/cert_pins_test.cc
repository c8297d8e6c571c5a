#include "cairn/cluster/cert_pins.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/cluster/membership.h"
#include "cairn/env/clock.h"

namespace cairn::cluster {
namespace {

using ::testing::HasSubstr;

const std::string kCertA(64, 'a');
const std::string kCertB(64, 'b');

TEST(CertPinsTest, FirstContactPinsAndPersistsAndAnotherCertificateIsRefused) {
  std::map<PeerId, std::string> saved;
  int saves = 0;
  CertPins pins([&](const std::map<PeerId, std::string>& all) {
    saved = all;
    ++saves;
    return absl::OkStatus();
  });
  EXPECT_TRUE(pins.Verify(3, kCertB).ok());  // nothing pinned yet: Verify does not pin
  EXPECT_FALSE(pins.Pinned(3).has_value());
  EXPECT_TRUE(pins.Check(3, kCertA).ok());
  EXPECT_TRUE(
      pins.Check(3, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").ok());
  EXPECT_EQ(saves, 1);
  EXPECT_EQ(saved, (std::map<PeerId, std::string>{{3, kCertA}}));
  for (const absl::Status& refused : {pins.Check(3, kCertB), pins.Verify(3, kCertB)}) {
    EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("peer id 3 presented TLS certificate " + kCertB +
                          ", but it is pinned to certificate " + kCertA));
  }
  EXPECT_EQ(pins.Pinned(3), kCertA);
  EXPECT_EQ(pins.Check(4, "not-a-fingerprint").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(pins.Pinned(4).has_value());
}

TEST(CertPinsTest, SerializeParseRoundTripSkipsMalformedLines) {
  std::map<PeerId, std::string> pins = {{1, kCertA}, {20, kCertB}};
  EXPECT_EQ(CertPins::Parse(CertPins::Serialize(pins)), pins);
  EXPECT_EQ(CertPins::Parse("0 " + kCertA + "\nx " + kCertA + "\n5 abc\n7 " + kCertB + " extra\n" +
                            "9 " + kCertB + "\n"),
            (std::map<PeerId, std::string>{{9, kCertB}}));
  CertPins loaded;
  loaded.Load({{2, kCertA}, {3, "bad"}});
  EXPECT_EQ(loaded.All(), (std::map<PeerId, std::string>{{2, kCertA}}));
}

TEST(CertPinsTest, MembershipIgnoresNewsWithAnotherCertificateForAPinnedPeer) {
  CertPins pins;
  MembershipOptions options;
  options.cert_pins = &pins;
  PeerInfo self;
  self.id = 1;
  self.address = "127.0.0.1:1";
  Membership membership(self, options, env::RealClock::Default());
  PeerInfo peer;
  peer.id = 2;
  peer.address = "127.0.0.1:2";
  peer.cert_fingerprint = kCertA;
  membership.ObserveDirect(peer);
  EXPECT_EQ(pins.Pinned(2), kCertA);
  PeerInfo impostor = peer;
  impostor.address = "127.0.0.1:9";
  impostor.cert_fingerprint = kCertB;
  impostor.incarnation = 99;
  membership.ObserveDirect(impostor);
  membership.ObserveIndirect(impostor);
  std::optional<PeerView> seen = membership.Find(2);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->info.address, "127.0.0.1:2");
  EXPECT_EQ(seen->info.cert_fingerprint, kCertA);
}

}  // namespace
}  // namespace cairn::cluster
