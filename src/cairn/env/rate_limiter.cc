#include "cairn/env/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace cairn::env {

bool InterruptibleSleeper::SleepFor(std::chrono::nanoseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  if (d.count() > 0) cv_.wait_for(lock, d, [this] { return interrupted_; });
  return !interrupted_;
}

void InterruptibleSleeper::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

bool InterruptibleSleeper::interrupted() {
  std::lock_guard<std::mutex> lock(mu_);
  return interrupted_;
}

bool FakeSleeper::SleepFor(std::chrono::nanoseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  if (interrupted_) return false;
  if (d.count() > 0) {
    clock_->Advance(d);
    total_ += d;
    ++sleeps_;
  }
  return true;
}

void FakeSleeper::Interrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_ = true;
}

std::chrono::nanoseconds FakeSleeper::total() {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

int FakeSleeper::sleeps() {
  std::lock_guard<std::mutex> lock(mu_);
  return sleeps_;
}

RateLimiter::RateLimiter(uint64_t bytes_per_second, uint64_t burst_bytes, Clock* clock)
    : rate_(std::max<uint64_t>(bytes_per_second, 1)),
      burst_(std::max<uint64_t>(burst_bytes, 1)),
      clock_(clock),
      tokens_(static_cast<double>(burst_)),
      last_ns_(clock->MonotonicNanos()) {}

std::chrono::nanoseconds RateLimiter::Reserve(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_->MonotonicNanos();
  if (now > last_ns_) {
    double refill = static_cast<double>(now - last_ns_) * static_cast<double>(rate_) / 1e9;
    tokens_ = std::min(static_cast<double>(burst_), tokens_ + refill);
    last_ns_ = now;
  }
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  double wait_ns = std::ceil(-tokens_ * 1e9 / static_cast<double>(rate_));
  return std::chrono::nanoseconds(static_cast<int64_t>(wait_ns));
}

bool RateLimiter::Acquire(uint64_t bytes, Sleeper* sleeper) {
  return sleeper->SleepFor(Reserve(bytes));
}

}  // namespace cairn::env
