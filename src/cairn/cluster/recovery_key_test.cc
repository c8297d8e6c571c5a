#include "cairn/cluster/recovery_key.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/cluster/cluster_key.h"

namespace cairn::cluster {
namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

RecoveryKey MakeKey(uint64_t seed) {
  std::mt19937_64 rng(seed);
  RecoveryKey k;
  k.peer_id = rng() % 1000 + 1;
  for (auto& b : k.owner_key) b = static_cast<uint8_t>(rng());
  for (auto& b : k.cluster_key) b = static_cast<uint8_t>(rng());
  Bytes node(16);
  for (auto& b : node) b = static_cast<uint8_t>(rng());
  k.node_id = ToHex(node);
  return k;
}

// The characters after "cairn-recovery-1:", without the group separators.
std::string Body(const std::string& text) {
  std::string out;
  for (char c : text.substr(text.find(':') + 1)) {
    if (c != '-') out += c;
  }
  return out;
}

std::string WithBody(const std::string& body) { return "cairn-recovery-1:" + body; }

// RFC 4648 base32, lower case, no padding (an independent copy of the encoder).
std::string Base32(const Bytes& data) {
  std::string out;
  uint64_t buf = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buf = (buf << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buf >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buf << (5 - bits)) & 31];
  return out;
}

// A version-1 layout with an arbitrary payload version byte and a correct CRC.
std::string EncodeWithVersion(const RecoveryKey& k, uint8_t version) {
  Bytes raw = {version};
  for (int i = 0; i < 8; ++i) raw.push_back(static_cast<uint8_t>(k.peer_id >> (8 * i)));
  raw.insert(raw.end(), k.owner_key.begin(), k.owner_key.end());
  raw.insert(raw.end(), k.cluster_key.begin(), k.cluster_key.end());
  Bytes node = *FromHex(k.node_id);
  raw.insert(raw.end(), node.begin(), node.end());
  uint32_t crc = Crc32(raw);
  for (int i = 0; i < 4; ++i) raw.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  return WithBody(Base32(raw));
}

TEST(RecoveryKeyTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32(AsBytes(std::string("123456789"))), 0xCBF43926u);
}

TEST(RecoveryKeyTest, RoundTrip) {
  for (uint64_t seed : {1, 2, 3, 42, 1000}) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    RecoveryKey k = MakeKey(seed);
    auto text = FormatRecoveryKey(k);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(text->rfind("cairn-recovery-1:", 0), 0u) << *text;
    auto back = ParseRecoveryKey(*text);
    ASSERT_TRUE(back.ok()) << back.status() << " " << *text;
    EXPECT_EQ(*back, k);
  }
}

TEST(RecoveryKeyTest, LargestPeerIdRoundTrips) {
  RecoveryKey k = MakeKey(7);
  k.peer_id = ~uint64_t{0};
  auto back = ParseRecoveryKey(*FormatRecoveryKey(k));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->peer_id, k.peer_id);
}

TEST(RecoveryKeyTest, CaseSpacesAndGroupingDoNotMatter) {
  RecoveryKey k = MakeKey(5);
  std::string text = *FormatRecoveryKey(k);
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string body = Body(text);
  std::string wrapped =
      "  cairn-recovery-1:\n" + body.substr(0, 70) + "\n  " + body.substr(70) + "\n";
  for (const std::string& variant : {upper, wrapped, WithBody(body)}) {
    auto back = ParseRecoveryKey(variant);
    ASSERT_TRUE(back.ok()) << back.status() << " for " << variant;
    EXPECT_EQ(*back, k);
  }
}

// Every single-character substitution (by any other base32 character, or by something that is
// not base32) is rejected: the CRC catches every burst of up to 32 bits, and one character is 5.
TEST(RecoveryKeyTest, EverySingleCharacterTypoIsRejected) {
  for (uint64_t seed : {11, 12}) {
    RecoveryKey k = MakeKey(seed);
    std::string body = Body(*FormatRecoveryKey(k));
    size_t tried = 0;
    for (size_t i = 0; i < body.size(); ++i) {
      for (char c : std::string(kAlphabet) + "01890!") {
        if (c == body[i]) continue;
        std::string typo = body;
        typo[i] = c;
        auto parsed = ParseRecoveryKey(WithBody(typo));
        ASSERT_FALSE(parsed.ok()) << "seed " << seed << ": '" << c << "' at " << i << " accepted";
        EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
        ++tried;
      }
    }
    EXPECT_GT(tried, 149u * 31u);
  }
}

TEST(RecoveryKeyTest, SwappedNeighboursDroppedAndAddedCharactersAreRejected) {
  RecoveryKey k = MakeKey(21);
  std::string body = Body(*FormatRecoveryKey(k));
  for (size_t i = 0; i + 1 < body.size(); ++i) {
    if (body[i] == body[i + 1]) continue;
    std::string swapped = body;
    std::swap(swapped[i], swapped[i + 1]);
    EXPECT_FALSE(ParseRecoveryKey(WithBody(swapped)).ok()) << "swap at " << i;
  }
  for (size_t i = 0; i < body.size(); ++i) {
    std::string dropped = body;
    dropped.erase(i, 1);
    auto parsed = ParseRecoveryKey(WithBody(dropped));
    ASSERT_FALSE(parsed.ok()) << "drop at " << i;
    EXPECT_NE(parsed.status().message().find("dropped or added"), std::string::npos)
        << parsed.status();
    std::string added = body;
    added.insert(i, 1, 'a');
    EXPECT_FALSE(ParseRecoveryKey(WithBody(added)).ok()) << "add at " << i;
  }
}

TEST(RecoveryKeyTest, WrongVersionIsRejected) {
  RecoveryKey k = MakeKey(31);
  std::string text = *FormatRecoveryKey(k);
  // A later text version.
  std::string v2 = "cairn-recovery-2:" + text.substr(text.find(':') + 1);
  auto parsed = ParseRecoveryKey(v2);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("version 2 is not supported"), std::string::npos)
      << parsed.status();
  // The right text version with a payload of another version and a valid checksum.
  ASSERT_TRUE(ParseRecoveryKey(EncodeWithVersion(k, 1)).ok());
  for (uint8_t version : {0, 2, 255}) {
    parsed = ParseRecoveryKey(EncodeWithVersion(k, version));
    ASSERT_FALSE(parsed.ok()) << int(version);
    EXPECT_NE(parsed.status().message().find("not supported"), std::string::npos)
        << parsed.status();
  }
}

TEST(RecoveryKeyTest, OtherTextIsRejectedWithAClearError) {
  RecoveryKey k = MakeKey(41);
  std::string token = *FormatJoinToken(JoinToken{k.cluster_key, "127.0.0.1:7000"});
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"", "not a cairn recovery key"},
      {token, "not a cairn recovery key"},
      {ToHex(k.owner_key), "not a cairn recovery key"},
      {"cairn-recovery-x:abc", "names no version"},
      {"cairn-recovery-1:", "dropped or added"},
      {"cairn-recovery-1:abc=", "never appears"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseRecoveryKey(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
    EXPECT_NE(parsed.status().message().find(c.want), std::string::npos)
        << c.text << ": " << parsed.status();
  }
}

TEST(RecoveryKeyTest, FormatRefusesIncompleteKeys) {
  RecoveryKey k = MakeKey(51);
  k.peer_id = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(FormatRecoveryKey(k).status()));
  k = MakeKey(51);
  k.node_id = "xyz";
  EXPECT_TRUE(absl::IsInvalidArgument(FormatRecoveryKey(k).status()));
}

}  // namespace
}  // namespace cairn::cluster
