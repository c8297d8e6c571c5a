#include "cairn/base/bytes.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(ParseSizeTest, AcceptsSuffixes) {
  struct Case {
    const char* text;
    uint64_t want;
  } cases[] = {
      {"0", 0},           {"1048576", 1048576}, {"500M", 500ull << 20}, {"20G", 20ull << 30},
      {"1T", 1ull << 40}, {"4k", 4096},         {"2MiB", 2ull << 20},   {"3GB", 3ull << 30},
      {"1.5K", 1536}};
  for (const auto& c : cases) {
    auto got = ParseSize(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(ParseSizeTest, RejectsGarbage) {
  for (const char* text : {"", "M", "-1", "12Q", "1..5G", "abc", "99999999999999999999"}) {
    EXPECT_FALSE(ParseSize(text).ok()) << text;
  }
}

TEST(HexTest, RoundTrip) {
  Bytes b = {0x00, 0x7f, 0xff, 0x10};
  EXPECT_EQ(ToHex(b), "007fff10");
  EXPECT_EQ(*FromHex("007FFF10"), b);
  EXPECT_FALSE(FromHex("abc").ok());
  EXPECT_FALSE(FromHex("zz").ok());
}

TEST(Utf8Test, Validates) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("d\xc3\xa9j\xc3\xa0 vu \xe2\x9c\x93 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe2\x9c"));      // truncated
}

TEST(FixedIntTest, RoundTrip) {
  Bytes b;
  PutU16(b, 0xBEEF);
  PutU32(b, 0xDEADBEEF);
  PutU64(b, 0x0123456789ABCDEFull);
  ASSERT_EQ(b.size(), 14u);
  EXPECT_EQ(GetU16(b.data()), 0xBEEF);
  EXPECT_EQ(GetU32(b.data() + 2), 0xDEADBEEFu);
  EXPECT_EQ(GetU64(b.data() + 6), 0x0123456789ABCDEFull);
}

}  // namespace
}  // namespace cairn
