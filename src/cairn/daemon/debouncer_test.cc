#include "cairn/daemon/debouncer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr auto kQuiet = 10s;

class DebouncerTest : public ::testing::Test {
 protected:
  env::FakeClock clock_;
  Debouncer d_{&clock_, kQuiet};
};

TEST_F(DebouncerTest, DueAfterTheQuietPeriod) {
  d_.Change("a");
  EXPECT_TRUE(d_.Pending("a"));
  EXPECT_THAT(d_.TakeDue(), IsEmpty());
  clock_.Advance(kQuiet - 1ms);
  EXPECT_THAT(d_.TakeDue(), IsEmpty());
  clock_.Advance(1ms);
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
  EXPECT_FALSE(d_.Pending("a"));
  EXPECT_THAT(d_.TakeDue(), IsEmpty());  // taken once
}

TEST_F(DebouncerTest, EachChangeRestartsTheQuietPeriod) {
  d_.Change("a");
  clock_.Advance(8s);
  d_.Change("a");
  clock_.Advance(8s);
  EXPECT_THAT(d_.TakeDue(), IsEmpty());  // 8 s since the last change
  clock_.Advance(2s);
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
}

TEST_F(DebouncerTest, AContinuousStreamIsDueAfterTheMaximumDelay) {
  // A change every second never leaves a quiet period, yet the source is backed up after
  // kMaxDelayFactor quiet periods since its first change.
  const auto max_delay = kQuiet * Debouncer::kMaxDelayFactor;
  auto elapsed = 0s;
  d_.Change("a");
  while (elapsed + 1s < max_delay) {
    clock_.Advance(1s);
    elapsed += 1s;
    d_.Change("a");
    ASSERT_THAT(d_.TakeDue(), IsEmpty()) << "after " << elapsed.count() << " s";
  }
  clock_.Advance(1s);
  d_.Change("a");
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
  // The stream goes on: the next backup is again at most max_delay later.
  d_.Change("a");
  clock_.Advance(max_delay - 1s);
  d_.Change("a");
  EXPECT_THAT(d_.TakeDue(), IsEmpty());
  clock_.Advance(1s);
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
}

TEST_F(DebouncerTest, OverflowIsDueAtOnceAsARescan) {
  d_.Change("a");
  d_.Overflow("a");
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", true}));
  d_.Overflow("b");  // without an earlier change too
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"b", true}));
}

TEST_F(DebouncerTest, SourcesAreIndependent) {
  d_.Change("a");
  clock_.Advance(5s);
  d_.Change("b");
  clock_.Advance(5s);
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
  EXPECT_TRUE(d_.Pending("b"));
  clock_.Advance(5s);
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"b", false}));
}

TEST_F(DebouncerTest, CanStartLeavesTheOthersPending) {
  d_.Change("a");
  d_.Change("b");
  clock_.Advance(kQuiet);
  // "a" is being backed up: it stays due, "b" is taken.
  EXPECT_THAT(d_.TakeDue([](const std::string& s) { return s != "a"; }),
              ElementsAre(DueSource{"b", false}));
  EXPECT_TRUE(d_.Pending("a"));
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));
}

TEST_F(DebouncerTest, ChangeDuringABackupMakesItDueAgainAfterwards) {
  d_.Change("a");
  clock_.Advance(kQuiet);
  ASSERT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));  // backup starts
  clock_.Advance(1s);
  d_.Change("a");  // while it runs
  EXPECT_TRUE(d_.Pending("a"));
  clock_.Advance(kQuiet);
  EXPECT_THAT(d_.TakeDue([](const std::string&) { return false; }), IsEmpty());  // still runs
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", false}));                 // it ended
}

TEST_F(DebouncerTest, RequeueIsDueAtOnceAndKeepsTheRescanFlag) {
  d_.Overflow("a");
  std::vector<DueSource> due = d_.TakeDue();
  ASSERT_THAT(due, ElementsAre(DueSource{"a", true}));
  d_.Requeue(due[0]);  // the backup could not start
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"a", true}));
  d_.Change("b");
  d_.Requeue(DueSource{"b", false});  // merged with a change: due at once all the same
  EXPECT_THAT(d_.TakeDue(), ElementsAre(DueSource{"b", false}));
}

TEST_F(DebouncerTest, NextDueAndForget) {
  EXPECT_EQ(d_.NextDueNanos(), std::nullopt);
  const int64_t start = clock_.MonotonicNanos();
  d_.Change("a");
  clock_.Advance(3s);
  d_.Change("b");
  EXPECT_EQ(d_.NextDueNanos(), start + std::chrono::nanoseconds(kQuiet).count());
  d_.Forget("a");
  EXPECT_FALSE(d_.Pending("a"));
  EXPECT_EQ(d_.NextDueNanos(), start + std::chrono::nanoseconds(3s + kQuiet).count());
  d_.Overflow("c");
  EXPECT_EQ(d_.NextDueNanos(), clock_.MonotonicNanos());
}

}  // namespace
}  // namespace cairn::daemon
