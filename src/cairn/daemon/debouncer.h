// Debouncer: turns a stream of change notices per source (inotify events, daemon/watcher.h)
// into "back this source up now" decisions, over an env::Clock so that tests drive time.
//
// A source with unsaved changes becomes due once no change was seen for `quiet_period` (a burst
// of writes is one backup, not hundreds), or at the latest `max_delay` after its first unsaved
// change (a file rewritten every second must not postpone its backup forever). An event-queue
// overflow makes the source due at once, flagged as a full rescan (the events that were lost
// may have been anywhere in the tree).
//
// Typical use: the watcher thread calls Change()/Overflow(); the scheduler calls TakeDue() when
// it can start a backup, starts one per source it got, and hands a due source back with
// Requeue() when the backup could not start after all. Changes that arrive while a backup of the
// source runs make it pending again, so the source is backed up once more afterwards.
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cairn/env/clock.h"

namespace cairn::daemon {

// A source due for a backup.
struct DueSource {
  std::string source;
  bool rescan = false;  // events were lost (queue overflow): the whole tree must be rescanned
  bool operator==(const DueSource&) const = default;
};

class Debouncer {
 public:
  // A continuous stream of changes delays a backup by at most this many quiet periods.
  static constexpr int kMaxDelayFactor = 6;

  // `quiet_period` > 0; `max_delay` 0 = kMaxDelayFactor x quiet_period. `clock` must outlive
  // this object; only its monotonic reading is used.
  Debouncer(env::Clock* clock, std::chrono::milliseconds quiet_period,
            std::chrono::milliseconds max_delay = std::chrono::milliseconds(0));

  // Something changed in `source` (a source name; any string).
  void Change(const std::string& source);
  // Events of `source` were lost: due at once, as a rescan.
  void Overflow(const std::string& source);
  // A due source whose backup could not start (or failed): due again at once, keeping its
  // rescan flag, merged with any change seen since it was taken.
  void Requeue(const DueSource& due);
  // Drops the source's pending state (the source was removed).
  void Forget(const std::string& source);

  // Removes and returns the sources that are due now and for which `can_start(source)` is true
  // (all when `can_start` is empty), in name order; the others stay pending.
  std::vector<DueSource> TakeDue(const std::function<bool(const std::string&)>& can_start = {});

  // Whether `source` has unsaved changes (due or not).
  bool Pending(const std::string& source) const;
  // Monotonic nanoseconds (env::Clock) at which the next pending source becomes due; nullopt
  // when none is pending.
  std::optional<int64_t> NextDueNanos() const;

  std::chrono::milliseconds quiet_period() const { return quiet_; }

 private:
  struct State {
    int64_t first_ns = 0;  // first unsaved change
    int64_t last_ns = 0;   // latest change
    bool rescan = false;   // due at once, as a full rescan
  };
  int64_t DueAt(const State& s) const;  // mu_ held

  env::Clock* const clock_;
  const std::chrono::milliseconds quiet_;
  const std::chrono::milliseconds max_delay_;
  mutable std::mutex mu_;
  std::map<std::string, State> pending_;
};

}  // namespace cairn::daemon
