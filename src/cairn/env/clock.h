// Time source behind an interface so that tests can drive time (leveldb env.h style).
// Thread-safety: all implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace cairn::env {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, nanoseconds since the Unix epoch.
  virtual int64_t NowNanos() = 0;
  // Monotonic time in nanoseconds (arbitrary origin), for intervals and deadlines.
  virtual int64_t MonotonicNanos() = 0;
};

// The process clock (CLOCK_REALTIME / CLOCK_MONOTONIC).
class RealClock : public Clock {
 public:
  int64_t NowNanos() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicNanos() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // Process-wide instance.
  static RealClock* Default() {
    static RealClock clock;
    return &clock;
  }
};

// A clock that only moves when told to. Both readings advance together.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_nanos = 1'700'000'000'000'000'000) : now_(start_nanos) {}
  int64_t NowNanos() override { return now_.load(); }
  int64_t MonotonicNanos() override { return now_.load(); }
  void Advance(std::chrono::nanoseconds d) { now_ += d.count(); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace cairn::env
