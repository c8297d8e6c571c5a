#include "cairn/cluster/cluster_key.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace cairn::cluster {
namespace {

using ::testing::HasSubstr;

ClusterKey TestKey(uint8_t seed) {
  ClusterKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i * 31);
  return k;
}

TEST(ClusterKeyTest, SubkeysAreDeterministicAndDistinct) {
  ClusterSubkeys a = DeriveClusterSubkeys(TestKey(1));
  ClusterSubkeys b = DeriveClusterSubkeys(TestKey(1));
  ClusterSubkeys c = DeriveClusterSubkeys(TestKey(2));
  EXPECT_EQ(a.rpc, b.rpc);
  EXPECT_EQ(a.announce, b.announce);
  EXPECT_NE(a.rpc, a.announce);
  EXPECT_NE(a.rpc, c.rpc);
  EXPECT_NE(a.rpc, TestKey(1));
}

TEST(ClusterKeyTest, NodeIds) {
  std::string a = NewNodeId(), b = NewNodeId();
  EXPECT_TRUE(IsValidNodeId(a));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsValidNodeId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(IsValidNodeId("0123456789abcdef0123456789abcdeg"));
}

TEST(JoinTokenTest, RoundTrip) {
  for (const std::string& address :
       {std::string("127.0.0.1:7001"), std::string("[fd00::2]:7946"), std::string("nas.lan:1"),
        std::string(kMaxTokenAddress, 'a')}) {
    JoinToken token{TestKey(7), address};
    auto text = FormatJoinToken(token);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_THAT(*text, ::testing::StartsWith("cairn1:"));
    EXPECT_EQ(text->find_first_of("+/= \n"), std::string::npos) << *text;
    auto parsed = ParseJoinToken("  " + *text + "\n");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, token);
  }
}

TEST(JoinTokenTest, RefusesBadAddresses) {
  EXPECT_EQ(FormatJoinToken({TestKey(1), ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FormatJoinToken({TestKey(1), std::string(kMaxTokenAddress + 1, 'a')}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Every single-character substitution, deletion and insertion is caught.
TEST(JoinTokenTest, EveryTypoIsCaught) {
  const std::string good = *FormatJoinToken({TestKey(3), "192.168.1.20:7001"});
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937_64 rng(42);
  int tried = 0;
  for (size_t i = 7; i < good.size(); ++i) {
    std::string substituted = good;
    char c;
    do {
      c = alphabet[rng() % alphabet.size()];
    } while (c == good[i]);
    substituted[i] = c;
    std::string dropped = good.substr(0, i) + good.substr(i + 1);
    std::string added = good.substr(0, i) + alphabet[rng() % alphabet.size()] + good.substr(i);
    for (const std::string& typo : {substituted, dropped, added}) {
      ++tried;
      auto parsed = ParseJoinToken(typo);
      EXPECT_FALSE(parsed.ok()) << "typo at " << i << " accepted: " << typo;
      if (!parsed.ok()) {
        EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
      }
    }
  }
  EXPECT_GT(tried, 100);
}

TEST(JoinTokenTest, ClearErrors) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"", "must start with \"cairn1:\""},
      {"cairn2:AAAA", "must start with"},
      {"cairn1:", "truncated"},
      {"cairn1:AAAA", "truncated"},
      {"cairn1:abc+def", "not base64url"},
      {"cairn1:" + std::string(60, 'A'), "checksum mismatch"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseJoinToken(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message)) << c.text;
  }
}

}  // namespace
}  // namespace cairn::cluster
