#include "cairn/daemon/debouncer.h"

#include <algorithm>

namespace cairn::daemon {

Debouncer::Debouncer(env::Clock* clock, std::chrono::milliseconds quiet_period,
                     std::chrono::milliseconds max_delay)
    : clock_(clock),
      quiet_(std::max(quiet_period, std::chrono::milliseconds(1))),
      max_delay_(max_delay.count() > 0 ? std::max(max_delay, quiet_) : quiet_ * kMaxDelayFactor) {}

void Debouncer::Change(const std::string& source) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pending_.try_emplace(source);
  if (inserted) it->second.first_ns = now;
  it->second.last_ns = now;
}

void Debouncer::Overflow(const std::string& source) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pending_.try_emplace(source);
  if (inserted) it->second.first_ns = now;
  it->second.last_ns = now;
  it->second.rescan = true;
}

void Debouncer::Requeue(const DueSource& due) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pending_.try_emplace(due.source);
  if (inserted) it->second.last_ns = now;
  // Due at once: its quiet period (or an overflow) already passed when it was taken.
  it->second.first_ns = now - std::chrono::nanoseconds(max_delay_).count();
  it->second.rescan = it->second.rescan || due.rescan;
}

void Debouncer::Forget(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.erase(source);
}

int64_t Debouncer::DueAt(const State& s) const {
  if (s.rescan) return s.first_ns;
  return std::min(s.last_ns + std::chrono::nanoseconds(quiet_).count(),
                  s.first_ns + std::chrono::nanoseconds(max_delay_).count());
}

std::vector<DueSource> Debouncer::TakeDue(
    const std::function<bool(const std::string&)>& can_start) {
  const int64_t now = clock_->MonotonicNanos();
  std::vector<DueSource> due;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (DueAt(it->second) <= now && (!can_start || can_start(it->first))) {
      due.push_back(DueSource{it->first, it->second.rescan});
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return due;
}

bool Debouncer::Pending(const std::string& source) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.count(source) > 0;
}

std::optional<int64_t> Debouncer::NextDueNanos() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> next;
  for (const auto& [source, state] : pending_) {
    int64_t at = DueAt(state);
    if (!next || at < *next) next = at;
  }
  return next;
}

}  // namespace cairn::daemon
