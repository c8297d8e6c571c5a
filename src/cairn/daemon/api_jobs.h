// The jobs feature of the local API (docs/cli.md "Local HTTP API"): the jobs that move or check
// data — POST /v1/backup, /v1/restore (also with "at"), /v1/check, /v1/repair, each answered 202
// {"job_id"} — and the job list: GET /v1/jobs, GET /v1/jobs/ID, DELETE /v1/jobs/ID (cancel).
// Restores and checks are made here; backups and repairs, which the peer also starts by itself
// (sources, the repair loop), through ApiContext.
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// class keeps no state of its own (JobManager is thread-safe).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "nlohmann/json.hpp"

namespace cairn::engine {
struct CheckProgress;
struct RepairReport;
}  // namespace cairn::engine

namespace cairn::daemon {

// The progress of a check or repair job (as GET /v1/jobs/ID shows it) and a repair's result
// (the daemon's repairs, api_context.h start_repair, report with these too).
nlohmann::json CheckProgressJson(const engine::CheckProgress& progress);
api::RepairAnswer RepairAnswerOf(const engine::RepairReport& report);

class JobsApi {
 public:
  explicit JobsApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
  virtual ~JobsApi() = default;

  // The routes above; a malformed body or id is INVALID_ARGUMENT before a method below is
  // called. `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // Each returns the new job's id. A backup while one runs is FAILED_PRECONDITION; a repair
  // while one runs returns that job's id.
  virtual absl::StatusOr<std::string> StartBackup(const api::BackupRequest& request);
  virtual absl::StatusOr<std::string> StartRestore(const api::RestoreRequest& request);
  // A restore with "at" (request.at_ns): of the newest snapshot at or before that time holding
  // the absolute source path request.path (engine::SnapshotAt); NOT_FOUND when none does.
  virtual absl::StatusOr<std::string> StartRestoreAt(const api::RestoreRequest& request);
  virtual absl::StatusOr<std::string> StartCheck(const api::CheckRequest& request);
  virtual absl::StatusOr<std::string> StartRepair(const api::CheckRequest& request);
  // GET /v1/jobs/ID?wait_ms=N, a long poll: waits until job `id` is no longer running, or N ms
  // (at most kMaxJobWait) pass, before GetJob answers. Nothing when `wait_ms` is empty or 0 or
  // the id unknown; INVALID_ARGUMENT when it is not a whole number.
  static constexpr std::chrono::milliseconds kMaxJobWait{1000};
  absl::Status WaitForJob(const std::string& id, const std::string& wait_ms);
  // A job as api::JobInfo shows it; NOT_FOUND for an unknown (or forgotten) id.
  virtual absl::StatusOr<nlohmann::json> GetJob(const std::string& id);
  // Every job kept, newest first.
  virtual absl::StatusOr<nlohmann::json> GetJobs();
  // Cancels a running job; NOT_FOUND for an unknown id.
  virtual absl::Status CancelJob(const std::string& id);

 private:
  const ApiContext ctx_;
};

}  // namespace cairn::daemon
