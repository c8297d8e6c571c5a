#include "cairn/cluster/announcement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace cairn::cluster {
namespace {

codec::Key Key(uint8_t seed) {
  codec::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 7 + i);
  return k;
}

Announcement Sample() {
  Announcement a;
  a.peer.id = 12;
  a.peer.host_id = "nas";
  a.peer.site = "cabin";
  a.peer.address = "192.168.1.20:7001";
  a.peer.quota = 1ull << 40;
  a.peer.used = 12345;
  a.peer.version = "0.1.0";
  a.peer.incarnation = 1'700'000'000'000'000'000;
  a.peer.node_id = "00112233445566778899aabbccddeeff";
  a.peer.cert_fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  a.sequence = 42;
  a.time_unix_ms = 1'700'000'000'123;
  return a;
}

TEST(AnnouncementTest, RoundTrip) {
  auto datagram = EncodeAnnouncement(Sample(), Key(1));
  ASSERT_TRUE(datagram.ok()) << datagram.status();
  EXPECT_EQ(std::string(datagram->begin(), datagram->begin() + 4), "CRNA");
  EXPECT_LE(datagram->size(), kMaxAnnouncementSize);
  auto decoded = DecodeAnnouncement(*datagram, Key(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, Sample());
}

// Announcements carry the TLS certificate fingerprint (docs/protocol.md "Discovery"); one from
// a peer that has none (an older version) decodes with an empty one.
TEST(AnnouncementTest, CertificateFingerprintIsCarriedOrAbsent) {
  Announcement without = Sample();
  without.peer.cert_fingerprint.clear();
  auto datagram = EncodeAnnouncement(without, Key(1));
  ASSERT_TRUE(datagram.ok()) << datagram.status();
  auto decoded = DecodeAnnouncement(*datagram, Key(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, without);
  Announcement bad = Sample();
  bad.peer.cert_fingerprint = "abcd";
  EXPECT_EQ(EncodeAnnouncement(bad, Key(1)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AnnouncementTest, WrongKeyIsUnauthenticated) {
  auto datagram = EncodeAnnouncement(Sample(), Key(1));
  ASSERT_TRUE(datagram.ok());
  EXPECT_EQ(DecodeAnnouncement(*datagram, Key(2)).status().code(),
            absl::StatusCode::kUnauthenticated);
}

// Flipping any bit of any byte makes the datagram unacceptable.
TEST(AnnouncementTest, EveryAlteredByteIsRefused) {
  Bytes good = *EncodeAnnouncement(Sample(), Key(1));
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 7}) {
      Bytes bad = good;
      bad[i] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_FALSE(DecodeAnnouncement(bad, Key(1)).ok()) << "byte " << i << " bit " << bit;
    }
  }
  // Truncated or extended.
  EXPECT_FALSE(DecodeAnnouncement(ByteSpan(good).first(good.size() - 1), Key(1)).ok());
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_FALSE(DecodeAnnouncement(longer, Key(1)).ok());
}

TEST(AnnouncementTest, GarbageNeverCrashes) {
  uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    Bytes junk(rng() % 1600);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0 && junk.size() >= 5) {
      std::memcpy(junk.data(), "CRNA\x01", 5);
    }
    EXPECT_FALSE(DecodeAnnouncement(junk, Key(1)).ok());
  }
  EXPECT_FALSE(DecodeAnnouncement({}, Key(1)).ok());
}

TEST(AnnouncementTest, ValidMacButMalformedBodyIsInvalid) {
  Announcement a = Sample();
  a.peer.node_id = "short";
  EXPECT_EQ(EncodeAnnouncement(a, Key(1)).status().code(), absl::StatusCode::kInvalidArgument);
  a = Sample();
  a.peer.host_id = std::string(2000, 'h');
  EXPECT_EQ(EncodeAnnouncement(a, Key(1)).status().code(), absl::StatusCode::kInvalidArgument);
  // A MAC'd body with an empty address (a member cannot be reached): refused.
  a = Sample();
  a.peer.address = "";
  auto datagram = EncodeAnnouncement(a, Key(1));
  ASSERT_TRUE(datagram.ok());
  EXPECT_EQ(DecodeAnnouncement(*datagram, Key(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AnnouncementFilterTest, ReplaysAndOlderIncarnationsAreIgnored) {
  AnnouncementFilter filter;
  Announcement a = Sample();
  EXPECT_TRUE(filter.Accept(a));
  EXPECT_FALSE(filter.Accept(a));  // the same datagram again (replay or duplicate)
  Announcement older_seq = a;
  older_seq.sequence = a.sequence - 1;
  EXPECT_FALSE(filter.Accept(older_seq));
  Announcement next = a;
  next.sequence = a.sequence + 1;
  EXPECT_TRUE(filter.Accept(next));
  // The peer restarted: a new incarnation starts its sequence again.
  Announcement restarted = a;
  restarted.peer.incarnation = a.peer.incarnation + 1;
  restarted.sequence = 1;
  EXPECT_TRUE(filter.Accept(restarted));
  // Anything from the previous incarnation is now stale.
  Announcement old = next;
  old.sequence = next.sequence + 100;
  EXPECT_FALSE(filter.Accept(old));
  // Another node claiming the same peer id does not disturb the first one's state.
  Announcement impostor = a;
  impostor.peer.node_id = "ffffffffffffffffffffffffffffffff";
  impostor.peer.incarnation = a.peer.incarnation + 1000;
  EXPECT_TRUE(filter.Accept(impostor));
  restarted.sequence = 2;
  EXPECT_TRUE(filter.Accept(restarted));
}

TEST(AnnouncementFilterTest, Bounded) {
  AnnouncementFilter filter(2);
  Announcement a = Sample();
  EXPECT_TRUE(filter.Accept(a));
  a.peer.id = 13;
  EXPECT_TRUE(filter.Accept(a));
  a.peer.id = 14;
  EXPECT_FALSE(filter.Accept(a));
}

}  // namespace
}  // namespace cairn::cluster
