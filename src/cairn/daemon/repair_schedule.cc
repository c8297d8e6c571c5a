#include "cairn/daemon/repair_schedule.h"

#include <algorithm>

namespace cairn::daemon {

RepairSchedule::RepairSchedule(RepairScheduleOptions options) : options_(options) {
  last_run_ns_ = options_.clock->MonotonicNanos();
}

bool RepairSchedule::Due(const std::set<PeerId>& alive, bool newly_dead, bool requested) {
  std::lock_guard lock(mu_);
  const int64_t now = options_.clock->MonotonicNanos();
  const bool periodic = std::chrono::nanoseconds(now - last_run_ns_) >= options_.interval;
  bool due = false;
  if (stuck_ && alive != stuck_alive_) {
    due = true;  // other peers: what could not be improved may be now
  } else if (stuck_ && now < retry_at_ns_) {
    if (newly_dead || requested || periodic) ++skipped_;
  } else {
    due = newly_dead || requested || periodic;
  }
  if (due) last_run_ns_ = now;
  return due;
}

void RepairSchedule::Finished(const std::set<PeerId>& alive, const RepairOutcome& outcome) {
  std::lock_guard lock(mu_);
  const int64_t now = options_.clock->MonotonicNanos();
  last_run_ns_ = now;
  if (outcome.settled || outcome.progressed) {
    stuck_ = false;
    backoff_ = std::chrono::nanoseconds(0);
    return;
  }
  const std::chrono::nanoseconds max =
      std::max<std::chrono::nanoseconds>(options_.max_backoff, options_.interval);
  if (stuck_ && alive == stuck_alive_ && backoff_.count() > 0) {
    backoff_ = std::min<std::chrono::nanoseconds>(backoff_ * 2, max);
  } else {
    backoff_ = std::min<std::chrono::nanoseconds>(options_.first_backoff, max);
  }
  stuck_ = true;
  stuck_alive_ = alive;
  retry_at_ns_ = now + backoff_.count();
}

std::chrono::nanoseconds RepairSchedule::backoff() const {
  std::lock_guard lock(mu_);
  return stuck_ ? backoff_ : std::chrono::nanoseconds(0);
}

uint64_t RepairSchedule::skipped() const {
  std::lock_guard lock(mu_);
  return skipped_;
}

}  // namespace cairn::daemon
