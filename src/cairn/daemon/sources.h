// SourceScheduler: keeps the configured sources ([[source]] in cairn.toml, `cairn source add`)
// backed up (docs/operations.md "Sources and continuous backup").
//
// Each source with `watch = true` has a Watcher (inotify, recursive); its events go to a
// Debouncer. A source is backed up when
//   - it changed and then was quiet for [watch] quiet_period (at the latest 6 quiet periods
//     after its first unsaved change);
//   - its event queue overflowed (at once: events were lost);
//   - its `schedule` passed since its last backup started;
//   - [watch] rescan_interval passed since its last backup started (a full backup catches what
//     inotify missed; the parent snapshot makes it cheap);
//   - it was just added or the daemon just started (one quiet period later): changes made while
//     no one was watching;
//   - its last backup failed (again after a back-off: quiet_period doubling up to 10 minutes).
// A source is never backed up twice at the same time; changes seen while its backup runs make
// it due again afterwards. Backups go through the daemon's job manager (`start_backup`), which
// runs one backup at a time: while another backup runs, due sources wait and are started when it
// ends (least recently started first).
//
// Thread-safety: thread-safe. The hooks are called from the scheduling thread (or from Tick())
// with the scheduler's lock held: they must not call back into the scheduler.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/responses.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/debouncer.h"
#include "cairn/daemon/watcher.h"
#include "cairn/env/clock.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

struct SourceHooks {
  // Starts a backup job and returns its id; FAILED_PRECONDITION while another backup runs.
  std::function<absl::StatusOr<std::string>(const api::BackupRequest&)> start_backup;
  // nullopt while the job runs; afterwards its result JSON or its error.
  std::function<std::optional<absl::StatusOr<nlohmann::json>>(const std::string& job_id)>
      job_result;
};

struct SourceSchedulerOptions {
  env::Clock* clock = env::RealClock::Default();
  WatchConfig watch;
  bool use_inotify = true;  // false: no watchers (tests call NotifyChange/NotifyOverflow)
  bool background = true;   // false: nothing runs until Tick() is called (tests)
  // How often the background thread looks at the jobs and timers (ms); changes are debounced
  // anyway, so this only adds to the latency.
  std::chrono::milliseconds tick{200};
};

// What a source's backup asks for: its path, copies/ec, excludes and keep policy.
api::BackupRequest SourceBackupRequest(const SourceConfig& source);
// A POST /v1/sources request as a [[source]] (not yet validated: ValidateSource).
SourceConfig SourceFromRequest(const api::SourceRequest& request);
// The source's settings as the API shows them (api::SourceInfo without its state; POST and
// GET /v1/sources).
api::SourceInfo SourceInfoOf(const SourceConfig& source);

class SourceScheduler {
 public:
  SourceScheduler(SourceSchedulerOptions options, SourceHooks hooks);
  ~SourceScheduler();  // Stop()

  // Adds the sources and starts the background thread (with options.background).
  void Start(const std::vector<SourceConfig>& sources);
  // Stops the thread and the watchers; running backups are left to the job manager. Idempotent.
  void Stop();

  // ALREADY_EXISTS when the path is a source already. The new source is due one quiet period
  // later (its first backup). A watcher that cannot start is logged; schedule and rescans
  // still apply.
  absl::Status Add(const SourceConfig& source);
  // NOT_FOUND when the path is not a source. A backup of it that runs is not cancelled.
  absl::Status Remove(const std::string& path);

  // One scheduling pass: collects finished backups, fires due timers, starts the backup of at
  // most one due source. The background thread calls it every `tick`.
  void Tick();

  // What a watcher reports (tests call them directly). Unknown sources are ignored.
  void NotifyChange(const std::string& source);
  void NotifyOverflow(const std::string& source);

  // Every source with its state (GET /v1/sources: an array of api::SourceInfo).
  nlohmann::json StatusJson();

  // Whether the source's watcher watches its root (false: missing path, watch = false, ...).
  bool Watching(const std::string& source);

 private:
  struct Entry;
  void StartWatcher(Entry& entry);  // mu_ not held: walks the tree
  void Loop();

  SourceSchedulerOptions options_;
  SourceHooks hooks_;
  Debouncer debouncer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // by path
  std::thread thread_;
};

}  // namespace cairn::daemon
