// Background jobs of the local HTTP API (docs/cli.md "Local HTTP API": POST /v1/backup,
// POST /v1/restore, GET/DELETE /v1/jobs/ID): each job runs on its own thread, exposes live
// progress as JSON, can be cancelled (a flag the engine polls), and is kept in memory after it
// finishes (the last `keep_finished` jobs).
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

enum class JobKind {
  kBackup,
  kRestore,
  kCheck,
  kRepair,
  kForget,
  kDelete,
  kReclaim,
  kIndexRebuild,
};
const char* JobKindName(JobKind kind);

struct JobFunctions {
  // Does the work; returns the result JSON. Must return soon (CANCELLED) once `cancel` is true.
  std::function<absl::StatusOr<nlohmann::json>(const std::atomic<bool>& cancel)> run;
  // Current progress as JSON; called from any thread while and after the job runs.
  std::function<nlohmann::json()> progress;
};

class JobManager {
 public:
  // `on_event`, when set, is called with {"id","kind","state":"running"} as a job starts and
  // with {"id","kind","state":"done"} or {"id","kind","state":"failed","error":{"code",
  // "message"}} as it ends (GET /v1/events, "job"), under the manager's lock, in that order:
  // it must not call back into the manager.
  explicit JobManager(size_t keep_finished = 100,
                      std::function<void(const nlohmann::json&)> on_event = {});
  // Cancels and joins every job.
  ~JobManager();

  // Starts a job and returns its id. With `exclusive`, FAILED_PRECONDITION when a job of the
  // same kind is running ("a backup is already running (job ID)"). FAILED_PRECONDITION after
  // Shutdown().
  absl::StatusOr<std::string> Start(JobKind kind, bool exclusive, JobFunctions fns);

  // {"id","kind","state":"running|done|failed","started_ns" (Unix ns),"progress":{...}} plus
  // "result" (done) or "error":{"code","message"} (failed). NOT_FOUND for an unknown or
  // forgotten id.
  absl::StatusOr<nlohmann::json> Get(const std::string& id);

  // GET /v1/jobs (docs/cli.md): every job still kept (the running ones and the last
  // `keep_finished` finished ones) as Get shows it, newest first.
  nlohmann::json List();

  // Asks a running job to stop (it ends as failed/CANCELLED). OK for a finished job;
  // NOT_FOUND for an unknown id.
  absl::Status Cancel(const std::string& id);

  // The id of a running job of `kind`, if any.
  std::optional<std::string> Running(JobKind kind);

  // Waits until job `id` is no longer running or `timeout` passes; false on timeout or unknown.
  bool Wait(const std::string& id, std::chrono::milliseconds timeout);

  // Refuses new jobs, cancels the running ones and joins every thread. Idempotent.
  void Shutdown();

 private:
  struct Job;
  void Prune();  // mu_ held

  const size_t keep_finished_;
  const std::function<void(const nlohmann::json&)> on_event_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool shut_down_ = false;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::string> finished_;  // ids, oldest first
  uint64_t next_seq_ = 0;             // start order, for List
};

}  // namespace cairn::daemon
