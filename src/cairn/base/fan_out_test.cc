#include "cairn/base/fan_out.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace cairn {
namespace {

TEST(FanOutTest, MapReturnsResultsInOrder) {
  auto out = FanOut::Shared().Map<int>(100, [](size_t i) { return static_cast<int>(i * i); });
  ASSERT_EQ(out.size(), 100u);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<int>(i * i));
}

TEST(FanOutTest, CallsRunConcurrently) {
  // Four calls that each wait until all four have started: only finishes if they overlap.
  std::atomic<int> started{0};
  FanOut::Shared().Run(4, [&](size_t) {
    started++;
    while (started.load() < 4) std::this_thread::yield();
  });
  EXPECT_EQ(started.load(), 4);
}

TEST(FanOutTest, NestedAndSaturatedStepsFinish) {
  // More concurrent callers than pool threads, each step nesting another: the callers run what
  // the pool cannot take, so everything finishes.
  std::atomic<int> calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3 * FanOut::kThreads; ++t) {
    callers.emplace_back([&] {
      FanOut::Shared().Run(8, [&](size_t) { FanOut::Shared().Run(3, [&](size_t) { calls++; }); });
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(calls.load(), 3 * FanOut::kThreads * 8 * 3);
}

TEST(FanOutTest, EmptyAndSingleSteps) {
  FanOut::Shared().Run(0, [](size_t) { FAIL() << "no call expected"; });
  std::thread::id ran_on;
  FanOut::Shared().Run(1, [&](size_t) { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace cairn
