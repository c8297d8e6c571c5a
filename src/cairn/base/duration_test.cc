#include "cairn/base/duration.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cairn {
namespace {

TEST(DurationTest, Parses) {
  const std::pair<const char*, int64_t> kCases[] = {
      {"500ms", 500},      {"2s", 2000},         {"10m", 600000},    {"1h", 3600000},
      {"1h30m", 5400000},  {"1.5s", 1500},       {" 3s ", 3000},     {"2S", 2000},
      {"1d", 86400000},    {"2d12h", 216000000}, {"0.5d", 43200000}, {"7D", 604800000},
      {"1d1ms", 86400001}, {"1m30s", 90000},
  };
  for (const auto& [text, ms] : kCases) {
    auto d = ParseDuration(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status();
    EXPECT_EQ(d->count(), ms) << text;
  }
}

TEST(DurationTest, RejectsWithTheText) {
  for (const char* bad : {"", " ", "2", "s", "d", "2x", "-2s", "0s", "0d", "2s3", "ms", "..s",
                          "1dd", "1w", "1y", "1 d", "20000000000d", "1e3s"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(d.status().message().find(absl::StrCat("'", bad, "'")), std::string::npos)
        << d.status();
  }
}

TEST(DurationTest, FormatRoundTrips) {
  for (int64_t ms : {int64_t{1}, int64_t{500}, int64_t{1000}, int64_t{1500}, int64_t{60000},
                     int64_t{90000}, int64_t{3600000}, int64_t{5400000}, int64_t{86400000},
                     int64_t{86400001}, int64_t{7} * 86400000}) {
    std::string text = FormatDuration(std::chrono::milliseconds(ms));
    auto back = ParseDuration(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(back->count(), ms) << text;
  }
  EXPECT_EQ(FormatDuration(std::chrono::seconds(2)), "2s");
  EXPECT_EQ(FormatDuration(std::chrono::minutes(10)), "10m");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(500)), "500ms");
  // Days are written as hours: readable by versions that do not know `d`.
  EXPECT_EQ(FormatDuration(std::chrono::hours(24)), "24h");
  EXPECT_EQ(FormatDuration(*ParseDuration("1d")), "24h");
}

}  // namespace
}  // namespace cairn
