// RateLimiter: a token bucket in bytes per second that keeps a background task (scrub; later
// repair) to a configured average rate, and the Sleeper it waits with, so that tests drive time
// with a FakeClock instead of sleeping.
//
// Token bucket (e.g. Tanenbaum & Wetherall, Computer Networks, 5th ed., §5.4.2 "Traffic
// shaping"): the bucket holds at most `burst` bytes and refills at `rate` bytes per second of
// monotonic time. Reserve(n) takes n bytes; when the bucket does not hold them it goes into debt
// and the caller waits until the refill has paid it back. A request larger than the bucket is
// therefore allowed (a blob of any size passes) and over any interval the bytes granted are at
// most burst + rate x elapsed.
//
// Thread-safety: RateLimiter, InterruptibleSleeper and FakeSleeper are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "cairn/env/clock.h"

namespace cairn::env {

// Waits on behalf of a rate-limited or scheduled loop.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Waits `d` (returns at once when d <= 0). False when the sleeper was interrupted: the caller
  // should stop what it is doing.
  virtual bool SleepFor(std::chrono::nanoseconds d) = 0;
  // Ends a sleep in progress; every later SleepFor returns false at once. Final.
  virtual void Interrupt() = 0;
};

// Real waiting on a condition variable.
class InterruptibleSleeper : public Sleeper {
 public:
  bool SleepFor(std::chrono::nanoseconds d) override;
  void Interrupt() override;
  bool interrupted();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;
};

// For tests: SleepFor advances `clock` by the requested time instead of waiting, and adds it to
// total().
class FakeSleeper : public Sleeper {
 public:
  explicit FakeSleeper(FakeClock* clock) : clock_(clock) {}
  bool SleepFor(std::chrono::nanoseconds d) override;
  void Interrupt() override;
  std::chrono::nanoseconds total();
  int sleeps();  // calls with d > 0

 private:
  FakeClock* const clock_;
  std::mutex mu_;
  bool interrupted_ = false;
  std::chrono::nanoseconds total_{0};
  int sleeps_ = 0;
};

class RateLimiter {
 public:
  // `bytes_per_second` and `burst_bytes` are at least 1 (0 is treated as 1). The bucket starts
  // full. `clock` (its monotonic reading) must outlive the limiter.
  RateLimiter(uint64_t bytes_per_second, uint64_t burst_bytes, Clock* clock);

  // Takes `bytes` from the bucket and returns how long the caller must wait before using them:
  // zero while the bucket held enough, else the time the refill needs to pay the debt back
  // (rounded up to whole nanoseconds).
  std::chrono::nanoseconds Reserve(uint64_t bytes);

  // Reserve(bytes), then sleeper->SleepFor(the wait). False if the sleeper was interrupted.
  bool Acquire(uint64_t bytes, Sleeper* sleeper);

  uint64_t rate() const { return rate_; }
  uint64_t burst() const { return burst_; }

 private:
  const uint64_t rate_;   // bytes per second
  const uint64_t burst_;  // bucket size, bytes
  Clock* const clock_;
  std::mutex mu_;
  double tokens_;  // bytes; negative = debt
  int64_t last_ns_;
};

}  // namespace cairn::env
