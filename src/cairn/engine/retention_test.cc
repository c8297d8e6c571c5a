// Retention policies with restic's semantics: which snapshots each rule keeps and why, the
// buckets' calendar edges (ISO weeks across new year), keep-within's calendar arithmetic, and
// grouping by host and paths. Times are UTC (TZ set for the whole suite).
#include "cairn/engine/retention.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cstdlib>
#include <set>

namespace cairn::engine {
namespace {

class RetentionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tz = std::getenv("TZ");
    if (tz) saved_tz_ = tz;
    had_tz_ = tz != nullptr;
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  static void TearDownTestSuite() {
    if (had_tz_)
      ::setenv("TZ", saved_tz_.c_str(), 1);
    else
      ::unsetenv("TZ");
    ::tzset();
  }
  static inline std::string saved_tz_;
  static inline bool had_tz_ = false;
};

// "YYYY-MM-DD HH:MM" (UTC) -> Unix nanoseconds.
int64_t T(const std::string& text) {
  struct tm tm {};
  EXPECT_NE(::strptime(text.c_str(), "%Y-%m-%d %H:%M", &tm), nullptr) << text;
  return static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000;
}

ports::SnapshotRecord Snap(const std::string& time, std::vector<std::string> tags = {},
                           std::string host = "laptop",
                           std::vector<std::string> paths = {"/home/alice"}) {
  ports::SnapshotRecord r;
  r.snapshot.time_ns = T(time);
  r.snapshot.hostname = std::move(host);
  r.snapshot.paths = std::move(paths);
  r.snapshot.tags = std::move(tags);
  r.id.bytes[0] = static_cast<uint8_t>(r.snapshot.time_ns / 1'000'000'000 % 251);
  r.id.bytes[1] = static_cast<uint8_t>(r.snapshot.time_ns / 1'000'000'000 / 251 % 251);
  return r;
}

// Oldest first, as the catalog lists them. 2024-01-01 is a Monday (ISO 2024-W01); 2024-02-01
// is in 2024-W05.
std::vector<ports::SnapshotRecord> History() {
  return {
      Snap("2024-01-01 08:00"),                 // 0
      Snap("2024-01-01 20:00"),                 // 1
      Snap("2024-01-02 09:00", {"a", "b"}),     // 2
      Snap("2024-01-03 09:00", {"important"}),  // 3
      Snap("2024-01-03 21:00"),                 // 4
      Snap("2024-01-08 10:00"),                 // 5  (2024-W02)
      Snap("2024-02-01 10:00"),                 // 6
      Snap("2024-02-01 10:30"),                 // 7  newest
  };
}

RetentionDuration D(const std::string& text) {
  auto d = ParseRetentionDuration(text);
  EXPECT_TRUE(d.ok()) << text << ": " << d.status();
  return d.ok() ? *d : RetentionDuration{};
}

std::set<size_t> Kept(const std::vector<RetentionDecision>& decisions) {
  std::set<size_t> out;
  for (size_t i = 0; i < decisions.size(); ++i) {
    EXPECT_EQ(decisions[i].keep, !decisions[i].reasons.empty()) << i;
    if (decisions[i].keep) out.insert(i);
  }
  return out;
}

struct PolicyCase {
  std::string name;
  RetentionPolicy policy;
  std::set<size_t> kept;
};

TEST_F(RetentionTest, EachRuleKeepsWhatResticKeeps) {
  auto policy = [](auto set) {
    RetentionPolicy p;
    set(p);
    return p;
  };
  const std::vector<PolicyCase> cases = {
      {"last 3", policy([](auto& p) { p.keep_last = 3; }), {5, 6, 7}},
      {"last 10: all", policy([](auto& p) { p.keep_last = 10; }), {0, 1, 2, 3, 4, 5, 6, 7}},
      {"last unlimited", policy([](auto& p) { p.keep_last = -1; }), {0, 1, 2, 3, 4, 5, 6, 7}},
      // 7 and 6 share an hour: the newer one stands for it.
      {"hourly 2", policy([](auto& p) { p.keep_hourly = 2; }), {5, 7}},
      {"daily 3", policy([](auto& p) { p.keep_daily = 3; }), {4, 5, 7}},
      // Count left at the oldest snapshot: it is kept too although day 01-01 has 1 already.
      {"daily 10", policy([](auto& p) { p.keep_daily = 10; }), {0, 1, 2, 4, 5, 7}},
      {"weekly 2", policy([](auto& p) { p.keep_weekly = 2; }), {5, 7}},
      {"weekly 3", policy([](auto& p) { p.keep_weekly = 3; }), {4, 5, 7}},
      {"monthly unlimited", policy([](auto& p) { p.keep_monthly = -1; }), {0, 5, 7}},
      {"yearly 1", policy([](auto& p) { p.keep_yearly = 1; }), {7}},
      {"within 7d", policy([](auto& p) { p.keep_within = D("7d"); }), {6, 7}},
      {"within 1m", policy([](auto& p) { p.keep_within = D("1m"); }), {1, 2, 3, 4, 5, 6, 7}},
      // 02-01 10:30 - 24d = 01-08 10:30, so 01-08 10:00 is not within; one hour more and it is.
      {"within 24d", policy([](auto& p) { p.keep_within = D("24d"); }), {6, 7}},
      {"within 24d1h", policy([](auto& p) { p.keep_within = D("24d1h"); }), {5, 6, 7}},
      {"within 23d23h", policy([](auto& p) { p.keep_within = D("23d23h"); }), {6, 7}},
      {"tag", policy([](auto& p) { p.keep_tags = {"important"}; }), {3}},
      {"tag list needs all", policy([](auto& p) { p.keep_tags = {"a,b"}; }), {2}},
      {"tag list missing one", policy([](auto& p) { p.keep_tags = {"a,c"}; }), {}},
      {"two tags",
       policy([](auto& p) {
         p.keep_tags = {"a", "important"};
       }),
       {2, 3}},
      {"combined",
       policy([](auto& p) {
         p.keep_last = 1;
         p.keep_daily = 2;
         p.keep_tags = {"important"};
       }),
       {3, 5, 7}},
      {"empty policy keeps all", RetentionPolicy{}, {0, 1, 2, 3, 4, 5, 6, 7}},
  };
  const auto history = History();
  for (const auto& c : cases) {
    auto decisions = ApplyRetention(history, c.policy);
    ASSERT_EQ(decisions.size(), history.size()) << c.name;
    EXPECT_EQ(Kept(decisions), c.kept) << c.name;
    for (size_t i = 0; i < history.size(); ++i) {
      EXPECT_EQ(decisions[i].snapshot.id, history[i].id) << c.name;  // input order
      EXPECT_EQ(decisions[i].group, 0u) << c.name;
    }
  }
}

TEST_F(RetentionTest, ReasonsNameEveryRuleThatKeeps) {
  RetentionPolicy p;
  p.keep_last = 1;
  p.keep_daily = 10;
  p.keep_within = D("1d");
  p.keep_tags = {"important"};
  auto d = ApplyRetention(History(), p);
  EXPECT_EQ(d[7].reasons,
            (std::vector<std::string>{"within 1d", "last snapshot", "daily snapshot"}));
  EXPECT_EQ(d[6].reasons, (std::vector<std::string>{"within 1d"}));
  EXPECT_EQ(d[3].reasons, (std::vector<std::string>{"tag important"}));
  EXPECT_EQ(d[4].reasons, (std::vector<std::string>{"daily snapshot"}));
  EXPECT_EQ(d[0].reasons, (std::vector<std::string>{"oldest daily snapshot"}));
  EXPECT_TRUE(d[5].keep);

  auto all = ApplyRetention(History(), RetentionPolicy{});
  for (const auto& x : all) EXPECT_EQ(x.reasons, (std::vector<std::string>{"policy is empty"}));
}

TEST_F(RetentionTest, WeeksAreIsoWeeksAcrossNewYear) {
  struct Case {
    std::vector<std::string> times;  // oldest first
    std::set<size_t> kept;
  };
  const std::vector<Case> cases = {
      // 2018-12-30 is a Sunday (2018-W52); 2018-12-31 and 2019-01-02 are both 2019-W01.
      {{"2018-12-01 12:00", "2018-12-30 12:00", "2018-12-31 12:00", "2019-01-02 12:00"}, {0, 1, 3}},
      // 2020-12-31 (Thursday) and 2021-01-03 (Sunday) are 2020-W53; 2021-01-04 is 2021-W01.
      {{"2020-12-01 12:00", "2020-12-31 12:00", "2021-01-03 12:00", "2021-01-04 12:00"}, {0, 2, 3}},
      // 2027-01-01 (Friday) is still 2026-W53.
      {{"2026-11-01 12:00", "2026-12-28 12:00", "2027-01-01 12:00"}, {0, 2}},
  };
  RetentionPolicy p;
  p.keep_weekly = 10;
  for (const auto& c : cases) {
    std::vector<ports::SnapshotRecord> snaps;
    for (const auto& t : c.times) snaps.push_back(Snap(t));
    EXPECT_EQ(Kept(ApplyRetention(snaps, p)), c.kept) << c.times.front();
  }
}

TEST_F(RetentionTest, GroupsByHostAndSetOfPaths) {
  std::vector<ports::SnapshotRecord> snaps = {
      Snap("2024-01-01 10:00", {}, "laptop", {"/a", "/b"}),   // group 0
      Snap("2024-01-02 10:00", {}, "laptop", {"/b", "/a"}),   // group 0: same set of paths
      Snap("2024-01-03 10:00", {}, "desktop", {"/a", "/b"}),  // group 1: other host
      Snap("2024-01-04 10:00", {}, "laptop", {"/a"}),         // group 2: other paths
      Snap("2024-01-05 10:00", {}, "desktop", {"/a", "/b"}),  // group 1
      Snap("2023-01-05 10:00", {}, "laptop", {"/a"}),         // group 2, oldest
  };
  RetentionPolicy p;
  p.keep_last = 1;
  auto d = ApplyRetention(snaps, p);
  EXPECT_EQ(Kept(d), (std::set<size_t>{1, 3, 4}));
  EXPECT_EQ(d[0].group, 0u);
  EXPECT_EQ(d[1].group, 0u);
  EXPECT_EQ(d[2].group, 1u);
  EXPECT_EQ(d[3].group, 2u);
  EXPECT_EQ(d[4].group, 1u);
  EXPECT_EQ(d[5].group, 2u);

  // keep-within counts from each group's own newest snapshot.
  p = RetentionPolicy{};
  p.keep_within = D("3d");
  EXPECT_EQ(Kept(ApplyRetention(snaps, p)), (std::set<size_t>{0, 1, 2, 3, 4}));
}

TEST_F(RetentionTest, EqualTimesKeepInputOrder) {
  std::vector<ports::SnapshotRecord> snaps = {Snap("2024-01-01 10:00"), Snap("2024-01-01 10:00"),
                                              Snap("2024-01-01 10:00")};
  snaps[1].id.bytes[5] = 1;
  snaps[2].id.bytes[5] = 2;
  RetentionPolicy p;
  p.keep_last = 1;
  EXPECT_EQ(Kept(ApplyRetention(snaps, p)), (std::set<size_t>{0}));
}

TEST_F(RetentionTest, ParsesResticDurations) {
  struct Case {
    std::string text;
    RetentionDuration want;
    std::string printed;
  };
  const std::vector<Case> good = {
      {"1y2m", {1, 2, 0, 0}, "1y2m"},    {"7d", {0, 0, 7, 0}, "7d"},
      {"36h", {0, 0, 0, 36}, "36h"},     {" 2d12h ", {0, 0, 2, 12}, "2d12h"},
      {"12h3d", {0, 0, 3, 12}, "3d12h"}, {"1y1m1d1h", {1, 1, 1, 1}, "1y1m1d1h"},
      {"0d", {0, 0, 0, 0}, ""},
  };
  for (const auto& c : good) {
    auto d = ParseRetentionDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(*d, c.want) << c.text;
    EXPECT_EQ(d->ToString(), c.printed) << c.text;
  }
  for (const std::string bad :
       {"", "  ", "d", "5", "5w", "-1d", "1d2", "1d1d", "1.5d", "7 d", "99999999999d", "1y 2m"}) {
    auto d = ParseRetentionDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST_F(RetentionTest, DurationsAreSubtractedCalendarWise) {
  struct Case {
    std::string from, duration, want;
  };
  const std::vector<Case> cases = {
      {"2024-03-31 12:00", "1m", "2024-03-02 12:00"},  // 31 Feb normalizes as mktime does
      {"2023-03-31 12:00", "1m", "2023-03-03 12:00"},
      {"2024-02-29 12:00", "1y", "2023-03-01 12:00"},
      {"2024-03-01 01:00", "2h", "2024-02-29 23:00"},
      {"2024-01-15 00:00", "1y2m3d4h", "2022-11-11 20:00"},
      {"2024-01-15 00:00", "36h", "2024-01-13 12:00"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(SubtractRetentionDuration(T(c.from), D(c.duration)), T(c.want))
        << c.from << " - " << c.duration;
  }
  // Sub-second parts are kept.
  EXPECT_EQ(SubtractRetentionDuration(T("2024-01-15 00:00") + 123, D("1d")),
            T("2024-01-14 00:00") + 123);
}

}  // namespace
}  // namespace cairn::engine
