// The repair loop's schedule (docs/operations.md "When the cluster is too small"): a check every
// second that finds the same unimprovable chunks must not start a repair every second.
#include "cairn/daemon/repair_schedule.h"

#include <gtest/gtest.h>

#include <vector>

namespace cairn::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class RepairScheduleTest : public ::testing::Test {
 protected:
  RepairScheduleOptions Options() {
    RepairScheduleOptions o;
    o.interval = milliseconds(600'000);
    o.first_backoff = milliseconds(30'000);
    o.max_backoff = milliseconds(3'600'000);
    o.clock = &clock_;
    return o;
  }

  // Ticks once a second for `span` as the repair loop does, a check requesting a repair at
  // every tick; each repair started ends at once with `outcome`. Returns the seconds (since
  // the start of the span) at which repairs started.
  std::vector<int64_t> Run(RepairSchedule& s, seconds span, const std::set<PeerId>& alive,
                           RepairOutcome outcome) {
    std::vector<int64_t> started;
    for (int64_t t = 0; t < span.count(); ++t) {
      clock_.Advance(seconds(1));
      if (s.Due(alive, /*newly_dead=*/false, /*requested=*/true)) {
        started.push_back(t + 1);
        s.Finished(alive, outcome);
      }
    }
    return started;
  }

  env::FakeClock clock_;
};

TEST_F(RepairScheduleTest, UnimprovableRepairsBackOffExponentially) {
  RepairSchedule s(Options());
  const std::set<PeerId> alive = {2, 3, 5, 6, 8};
  // Two hours of checks every second, each repair leaving chunks it cannot improve.
  std::vector<int64_t> started = Run(s, seconds(7200), alive, RepairOutcome{false, false});
  // At once, then after 30 s, 60 s, 120 s ... doubling up to an hour.
  EXPECT_EQ(started, (std::vector<int64_t>{1, 31, 91, 211, 451, 931, 1891, 3811}));
  EXPECT_EQ(s.backoff(), seconds(3600));
  EXPECT_EQ(s.skipped(), 7200u - started.size());
}

TEST_F(RepairScheduleTest, PeersChangingEndTheBackoff) {
  RepairSchedule s(Options());
  std::set<PeerId> alive = {2, 3, 5, 6, 8};
  ASSERT_EQ(Run(s, seconds(100), alive, RepairOutcome{false, false}).size(), 3u);
  EXPECT_EQ(s.backoff(), seconds(120));
  // A sixth peer comes back: a repair starts at the next tick, without a request.
  alive.insert(9);
  clock_.Advance(seconds(1));
  EXPECT_TRUE(s.Due(alive, false, false));
  // It moved shards onto the new peer (wrote blobs): no backoff any more.
  s.Finished(alive, RepairOutcome{false, true});
  EXPECT_EQ(s.backoff(), seconds(0));
  clock_.Advance(seconds(1));
  EXPECT_TRUE(s.Due(alive, false, true));
  // The next one can do nothing more: backing off starts again from 30 s.
  s.Finished(alive, RepairOutcome{false, false});
  EXPECT_EQ(s.backoff(), seconds(30));
  clock_.Advance(seconds(1));
  EXPECT_FALSE(s.Due(alive, /*newly_dead=*/true, true));
  // A peer dying changes the alive peers too.
  alive.erase(2);
  EXPECT_TRUE(s.Due(alive, true, false));
}

TEST_F(RepairScheduleTest, SettledRepairsRunOnEveryTrigger) {
  RepairSchedule s(Options());
  const std::set<PeerId> alive = {2, 3};
  // Nothing is due without a trigger until the interval has passed.
  clock_.Advance(seconds(1));
  EXPECT_FALSE(s.Due(alive, false, false));
  clock_.Advance(seconds(600));
  EXPECT_TRUE(s.Due(alive, false, false));
  s.Finished(alive, RepairOutcome{true, false});
  // Healthy: each request runs (no backoff), the next periodic one an interval later.
  EXPECT_EQ(Run(s, seconds(5), alive, RepairOutcome{true, false}).size(), 5u);
  EXPECT_EQ(s.skipped(), 0u);
  clock_.Advance(seconds(599));
  EXPECT_FALSE(s.Due(alive, false, false));
  clock_.Advance(seconds(1));
  EXPECT_TRUE(s.Due(alive, false, false));
}

}  // namespace
}  // namespace cairn::daemon
