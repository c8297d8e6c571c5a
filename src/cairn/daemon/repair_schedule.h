// When the daemon's repair loop starts a repair (docs/operations.md "When the cluster is too
// small"): whenever a peer becomes dead, after a check that found chunks below target, and every
// `[repair] interval` — but not again and again for chunks no repair can improve. A repair that
// leaves chunks below target (or lost) without writing a blob makes the schedule back off: no
// automatic repair for `first_backoff`, doubled after each further such repair up to
// `max_backoff`, while the alive storage peers stay the same. A change of those peers (one
// joins, comes back or goes) ends the backoff at once; so does a repair that wrote blobs or left
// every chunk at target. Repairs asked for by the user (`cairn repair`) always run, and their
// outcome counts like the automatic ones'.
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>

#include "cairn/base/ids.h"
#include "cairn/env/clock.h"

namespace cairn::daemon {

struct RepairScheduleOptions {
  std::chrono::milliseconds interval{600'000};       // [repair] interval
  std::chrono::milliseconds first_backoff{30'000};   // after the first repair that could do nothing
  std::chrono::milliseconds max_backoff{3'600'000};  // never less than `interval`
  env::Clock* clock = env::RealClock::Default();     // MonotonicNanos
};

// What a finished repair left (engine::RepairReport).
struct RepairOutcome {
  bool settled = false;     // every chunk at target, none lost, no error
  bool progressed = false;  // it wrote at least one blob
};

class RepairSchedule {
 public:
  explicit RepairSchedule(RepairScheduleOptions options);

  // Whether the repair loop starts a repair now. `alive`: the alive storage peers other than
  // this one; `newly_dead`: a peer became dead since the last call; `requested`: a check found
  // chunks below target since the last call. A trigger that the backoff holds back is counted
  // (skipped()).
  bool Due(const std::set<PeerId>& alive, bool newly_dead, bool requested);

  // A repair (automatic or not) that started when `alive` were the alive storage peers ended.
  void Finished(const std::set<PeerId>& alive, const RepairOutcome& outcome);

  // The current backoff (0 when none) and the triggers it held back so far.
  std::chrono::nanoseconds backoff() const;
  uint64_t skipped() const;

 private:
  const RepairScheduleOptions options_;
  mutable std::mutex mu_;
  int64_t last_run_ns_ = 0;  // monotonic: the last repair started (Due) or ended (Finished)
  bool stuck_ = false;       // the last repair could do nothing for what it left below target
  std::set<PeerId> stuck_alive_;
  std::chrono::nanoseconds backoff_{0};
  int64_t retry_at_ns_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace cairn::daemon
