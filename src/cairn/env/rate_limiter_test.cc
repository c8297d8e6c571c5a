#include "cairn/env/rate_limiter.h"

#include <chrono>
#include <future>
#include <random>
#include <vector>

#include "cairn/env/clock.h"
#include "gtest/gtest.h"

namespace cairn::env {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

struct LimiterStep {
  nanoseconds advance;  // fake time passing before the call
  uint64_t bytes;
  nanoseconds want_wait;
};

TEST(RateLimiterTest, TokenBucketMath) {
  // 1000 bytes/s, bucket of 1000 bytes, starting full.
  const std::vector<LimiterStep> steps = {
      {0ns, 400, 0ns},       // from the full bucket
      {0ns, 600, 0ns},       // empties it exactly
      {0ns, 1, 1ms},         // one byte of debt = 1 ms
      {1ms, 0, 0ns},         // debt paid
      {0ns, 2500, 2500ms},   // larger than the bucket: allowed, repaid by waiting
      {2500ms, 0, 0ns},      // paid
      {10s, 1000, 0ns},      // idle refills at most one bucket
      {0ns, 1000, 1s},       // so the next kilobyte waits
      {250ms, 500, 1250ms},  // partial refill: 1000 - 250 + 500 = 1250 bytes owed
      {2s, 1, 0ns},          // back to a bucket of 750 - 1
      {0ns, 999, 250ms},     // 749 - 999 = -250 bytes
  };
  FakeClock clock;
  RateLimiter limiter(1000, 1000, &clock);
  for (size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    clock.Advance(steps[i].advance);
    EXPECT_EQ(limiter.Reserve(steps[i].bytes).count(), steps[i].want_wait.count());
  }
}

TEST(RateLimiterTest, WaitsRoundUpToWholeNanoseconds) {
  FakeClock clock;
  RateLimiter limiter(3, 1, &clock);  // 3 bytes/s: one byte = 333333333.3 ns
  EXPECT_EQ(limiter.Reserve(1).count(), 0);
  EXPECT_EQ(limiter.Reserve(1).count(), 333333334);
}

TEST(RateLimiterTest, LongRunAverageIsTheRate) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  constexpr uint64_t kRate = 20 << 20, kBurst = 1 << 20;
  RateLimiter limiter(kRate, kBurst, &clock);
  const int64_t start = clock.MonotonicNanos();
  uint64_t total = 0;
  int calls = 0;
  for (; total < (1ull << 30); ++calls) {
    uint64_t n = 1 + rng() % (8 << 20);  // blobs up to 8 MiB
    ASSERT_TRUE(limiter.Acquire(n, &sleeper));
    total += n;
  }
  // All the time that passed is time slept, and it is what the rate demands beyond the first
  // bucket, give or take the rounding of each wait.
  const int64_t elapsed = clock.MonotonicNanos() - start;
  EXPECT_EQ(elapsed, sleeper.total().count());
  const double want = static_cast<double>(total - kBurst) * 1e9 / kRate;
  EXPECT_GE(static_cast<double>(elapsed), want - 1);
  EXPECT_LE(static_cast<double>(elapsed), want + calls);
}

TEST(RateLimiterTest, ZeroRateOrBurstIsTreatedAsOne) {
  FakeClock clock;
  RateLimiter limiter(0, 0, &clock);
  EXPECT_EQ(limiter.rate(), 1u);
  EXPECT_EQ(limiter.burst(), 1u);
  EXPECT_EQ(limiter.Reserve(1).count(), 0);
  EXPECT_EQ(limiter.Reserve(2).count(), 2'000'000'000);
}

TEST(SleeperTest, FakeSleeperAdvancesTheClockUntilInterrupted) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  const int64_t start = clock.NowNanos();
  EXPECT_TRUE(sleeper.SleepFor(3s));
  EXPECT_TRUE(sleeper.SleepFor(0s));
  EXPECT_EQ(clock.NowNanos() - start, 3'000'000'000);
  EXPECT_EQ(sleeper.sleeps(), 1);
  sleeper.Interrupt();
  EXPECT_FALSE(sleeper.SleepFor(1s));
  EXPECT_EQ(sleeper.total(), nanoseconds(3s));
}

TEST(SleeperTest, InterruptEndsARealSleep) {
  InterruptibleSleeper sleeper;
  EXPECT_TRUE(sleeper.SleepFor(1ns));
  auto sleeping = std::async(std::launch::async, [&] { return sleeper.SleepFor(1h); });
  sleeper.Interrupt();
  ASSERT_EQ(sleeping.wait_for(60s), std::future_status::ready);
  EXPECT_FALSE(sleeping.get());
  EXPECT_FALSE(sleeper.SleepFor(1h));  // returns at once
  EXPECT_TRUE(sleeper.interrupted());
}

}  // namespace
}  // namespace cairn::env
