// The jobs feature of the local API (api_jobs.h; docs/cli.md "Local HTTP API"): its routes, the
// restore and check jobs, and the job list.
#include "cairn/daemon/api_jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/daemon/jobs.h"
#include "cairn/engine/check.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/snapshot_read.h"
#include "cairn/engine/versions.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

Json RestoreProgressJson(const engine::RestoreProgress& p) {
  const uint64_t files_total = p.files_total.load(), bytes_total = p.bytes_total.load();
  return api::ToJson(api::TransferProgress{files_total, bytes_total,
                                           files_total > 0 || bytes_total > 0, p.files_done.load(),
                                           p.bytes_done.load()});
}

api::RestoreAnswer RestoreAnswerOf(const engine::RestoreResult& r,
                                   const ports::SnapshotRecord& snapshot,
                                   const std::string& target) {
  api::RestoreAnswer a;
  a.snapshot_id = snapshot.id.Hex();
  a.short_id = snapshot.id.ShortHex();
  a.target = target;
  a.files = r.files;
  a.directories = r.directories;
  a.symlinks = r.symlinks;
  a.hardlinks = r.hardlinks;
  a.bytes = r.bytes;
  a.duration_seconds = r.seconds;
  a.errors = r.errors;
  return a;
}

// Chunks below target for want of storage peers, with the sentence that says so.
std::vector<api::ShortfallInfo> Shortfalls(const std::vector<engine::PeerShortfall>& shortfalls,
                                           uint64_t storage_peers) {
  std::vector<std::string> messages = engine::DescribeShortfalls(shortfalls, storage_peers);
  std::vector<api::ShortfallInfo> out;
  for (size_t i = 0; i < shortfalls.size(); ++i) {
    out.push_back({shortfalls[i].target, shortfalls[i].chunks, messages[i]});
  }
  return out;
}

std::vector<api::ToleranceInfo> Tolerances(const std::vector<engine::Tolerance>& tolerance) {
  std::vector<std::string> messages = engine::DescribeTolerance(tolerance);
  std::vector<api::ToleranceInfo> out;
  for (size_t i = 0; i < tolerance.size(); ++i) {
    out.push_back({tolerance[i].peers, tolerance[i].chunks, messages[i]});
  }
  return out;
}

api::CheckAnswer CheckAnswerOf(const engine::CheckReport& r) {
  api::CheckAnswer a;
  a.healthy = r.healthy();
  a.chunks = r.chunks;
  a.at_target = r.at_target;
  a.below_target = r.below_target;
  a.without_offsite = r.without_offsite;
  a.lost = r.lost;
  a.corrupt = r.corrupt;
  a.blobs_read = r.blobs_read;
  a.bytes_read = r.bytes_read;
  for (const auto& s : r.snapshots) {
    a.snapshots.push_back(
        {s.id.Hex(), s.id.ShortHex(), s.chunks, s.at_target, s.below_target, s.lost});
  }
  for (const auto& [id, missing] : r.below_detail)
    a.below_target_detail.push_back({id.Hex(), missing});
  a.storage_peers = r.storage_peers;
  a.short_of_peers = Shortfalls(r.short_of_peers, r.storage_peers);
  a.survives = Tolerances(r.survives);
  for (const auto& d : r.damaged)
    a.corrupt_blobs.push_back({d.chunk.Hex(), d.shard, d.peer, d.reason});
  a.errors = r.errors;
  return a;
}

}  // namespace

Json CheckProgressJson(const engine::CheckProgress& p) {
  return api::ToJson(
      api::ChunkProgress{p.chunks_total.load(), p.chunks_done.load(), p.bytes_read.load()});
}

api::RepairAnswer RepairAnswerOf(const engine::RepairReport& r) {
  api::RepairAnswer a;
  a.chunks = r.chunks;
  a.repaired = r.repaired;
  a.blobs_written = r.blobs_written;
  a.bytes_sent = r.bytes_sent;
  a.still_below_target = r.still_below_target;
  a.lost = r.lost;
  a.storage_peers = r.storage_peers;
  a.short_of_peers = Shortfalls(r.short_of_peers, r.storage_peers);
  a.unimprovable = r.unimprovable;
  a.survives = Tolerances(r.survives);
  a.errors = r.errors;
  a.errors_omitted = r.errors_omitted;
  return a;
}

std::vector<ApiRoute> JobsApi::Routes() {
  return {
      {"POST", "/v1/backup",
       JobRoute<api::BackupRequest>([this](const auto& r) { return StartBackup(r); })},
      {"POST", "/v1/restore", JobRoute<api::RestoreRequest>([this](const auto& r) {
         return r.at_ns ? StartRestoreAt(r) : StartRestore(r);
       })},
      {"POST", "/v1/check",
       JobRoute<api::CheckRequest>([this](const auto& r) { return StartCheck(r); })},
      {"POST", "/v1/repair",
       JobRoute<api::CheckRequest>([this](const auto& r) { return StartRepair(r); })},
      {"GET", "/v1/jobs", JsonRoute([this] { return GetJobs(); })},
      {"GET", "/v1/jobs/([0-9A-Za-z_-]+)",
       Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_RETURN_IF_ERROR(WaitForJob(req.matches[1], req.get_param_value("wait_ms")));
         CAIRN_ASSIGN_OR_RETURN(Json j, GetJob(req.matches[1]));
         return Reply{200, std::move(j)};
       })},
      {"DELETE", "/v1/jobs/([0-9A-Za-z_-]+)",
       Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string id = req.matches[1];
         CAIRN_RETURN_IF_ERROR(CancelJob(id));
         return Reply{200, api::ToJson(api::JobCancelled{id})};
       })},
  };
}

absl::StatusOr<std::string> JobsApi::StartBackup(const api::BackupRequest& request) {
  if (!ctx_.start_backup) return absl::UnimplementedError("backup is not available");
  return ctx_.start_backup(request);
}

absl::StatusOr<std::string> JobsApi::StartRepair(const api::CheckRequest& request) {
  if (!ctx_.start_repair) return absl::UnimplementedError("repair is not available");
  return ctx_.start_repair(request);
}

absl::StatusOr<std::string> JobsApi::StartRestore(const api::RestoreRequest& request) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("restore"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("restore"));
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord record,
                         engine::ResolveSnapshot(ctx_.engine->catalog, request.snapshot));
  engine::RestoreOptions options;
  options.path = request.path;
  options.target = request.target;
  auto progress = std::make_shared<engine::RestoreProgress>();
  JobFunctions fns;
  fns.progress = [progress] { return RestoreProgressJson(*progress); };
  const engine::EngineContext* engine = ctx_.engine;
  fns.run = [engine, options, record,
             progress](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    spdlog::info("restore of snapshot {} started", record.id.ShortHex());
    absl::StatusOr<engine::RestoreResult> result =
        engine::Restore(*engine, record.snapshot, options, progress.get(), &cancel);
    if (!result.ok()) {
      spdlog::warn("restore failed: {}", api::SanitizeUtf8(result.status().ToString()));
      return result.status();
    }
    spdlog::info("restore of snapshot {} done ({} files, {} errors)", record.id.ShortHex(),
                 result->files, result->errors.size());
    return api::ToJson(RestoreAnswerOf(*result, record, options.target));
  };
  return ctx_.jobs->Start(JobKind::kRestore, /*exclusive=*/false, std::move(fns));
}

absl::StatusOr<std::string> JobsApi::StartRestoreAt(const api::RestoreRequest& request) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("restore --at"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("restore"));
  if (!request.at_ns) return absl::InvalidArgumentError("restore: no time ('at') given");
  CAIRN_ASSIGN_OR_RETURN(engine::SnapshotForPath found,
                         engine::SnapshotAt(*ctx_.engine, *request.at_ns, request.path));
  spdlog::info("restore of {} as of {}: snapshot {} of {}", api::SanitizeUtf8(request.path),
               api::FormatRfc3339(*request.at_ns), found.record.id.ShortHex(),
               api::FormatRfc3339(found.record.snapshot.time_ns));
  api::RestoreRequest r;
  r.snapshot = found.record.id.Hex();
  r.path = found.snapshot_path;
  r.target = request.target;
  return StartRestore(r);
}

absl::StatusOr<std::string> JobsApi::StartCheck(const api::CheckRequest& request) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("check"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("check"));
  engine::CheckOptions options{request.read_data, request.read_subset};
  auto progress = std::make_shared<engine::CheckProgress>();
  JobFunctions fns;
  fns.progress = [progress] { return CheckProgressJson(*progress); };
  const engine::EngineContext* engine = ctx_.engine;
  std::function<void()> request_repair = ctx_.request_repair;
  fns.run = [engine, options, progress,
             request_repair](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    auto report = engine::Check(*engine, options, progress.get(), &cancel);
    if (!report.ok()) return report.status();
    spdlog::info("check: {} chunks, {} at target, {} below, {} lost, {} corrupt", report->chunks,
                 report->at_target, report->below_target, report->lost, report->corrupt);
    for (const std::string& m :
         engine::DescribeShortfalls(report->short_of_peers, report->storage_peers)) {
      spdlog::warn("check: {} (more peers must join)", m);
    }
    for (const std::string& m : engine::DescribeTolerance(report->survives)) {
      spdlog::warn("check: {}", m);
    }
    if (report->below_target > 0 && request_repair) request_repair();
    return api::ToJson(CheckAnswerOf(*report));
  };
  return ctx_.jobs->Start(JobKind::kCheck, /*exclusive=*/false, std::move(fns));
}

absl::Status JobsApi::WaitForJob(const std::string& id, const std::string& wait_ms) {
  if (wait_ms.empty()) return absl::OkStatus();
  uint32_t ms = 0;
  if (!absl::SimpleAtoi(wait_ms, &ms)) {
    return absl::InvalidArgumentError("wait_ms must be a whole number of milliseconds, not '" +
                                      wait_ms + "'");
  }
  if (ms > 0 && ctx_.jobs != nullptr) {
    ctx_.jobs->Wait(id, std::min(std::chrono::milliseconds(ms), kMaxJobWait));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> JobsApi::GetJob(const std::string& id) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("the job list"));
  return ctx_.jobs->Get(id);
}

absl::StatusOr<Json> JobsApi::GetJobs() {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("the job list"));
  return ctx_.jobs->List();
}

absl::Status JobsApi::CancelJob(const std::string& id) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("the job list"));
  return ctx_.jobs->Cancel(id);
}

}  // namespace cairn::daemon
