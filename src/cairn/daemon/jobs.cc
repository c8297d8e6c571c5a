#include "cairn/daemon/jobs.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/env/file.h"

namespace cairn::daemon {

const char* JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kBackup:
      return "backup";
    case JobKind::kRestore:
      return "restore";
    case JobKind::kCheck:
      return "check";
    case JobKind::kRepair:
      return "repair";
    case JobKind::kForget:
      return "forget";
    case JobKind::kDelete:
      return "delete";
    case JobKind::kReclaim:
      return "reclaim";
    case JobKind::kIndexRebuild:
      return "index rebuild";
  }
  return "job";
}

struct JobManager::Job {
  std::string id;
  JobKind kind;
  JobFunctions fns;
  std::atomic<bool> cancel{false};
  uint64_t seq = 0;        // start order
  int64_t started_ns = 0;  // Unix ns
  // Guarded by JobManager::mu_.
  bool running = true;
  absl::Status error;
  nlohmann::json result;
  std::thread thread;
};

JobManager::JobManager(size_t keep_finished, std::function<void(const nlohmann::json&)> on_event)
    : keep_finished_(keep_finished), on_event_(std::move(on_event)) {}

JobManager::~JobManager() { Shutdown(); }

std::optional<std::string> JobManager::Running(JobKind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, job] : jobs_) {
    if (job->kind == kind && job->running) return id;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> JobManager::Start(JobKind kind, bool exclusive, JobFunctions fns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return absl::FailedPreconditionError("the peer is shutting down");
  Prune();
  if (exclusive) {
    for (const auto& [id, job] : jobs_) {
      if (job->kind == kind && job->running) {
        return absl::FailedPreconditionError(
            absl::StrCat("a ", JobKindName(kind), " is already running (job ", id, ")"));
      }
    }
  }
  auto job = std::make_shared<Job>();
  uint8_t rnd[8];
  env::RandomFill(rnd, sizeof rnd);
  job->id = ToHex(rnd);
  job->kind = kind;
  job->seq = next_seq_++;
  job->started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  job->fns = std::move(fns);
  jobs_[job->id] = job;
  if (on_event_) {
    on_event_(nlohmann::json{{"id", job->id}, {"kind", JobKindName(kind)}, {"state", "running"}});
  }
  job->thread = std::thread([this, job] {
    absl::StatusOr<nlohmann::json> result;
    try {
      result = job->fns.run(job->cancel);
    } catch (const std::exception& e) {
      result = absl::InternalError(absl::StrCat("job failed: ", e.what()));
    } catch (...) {
      result = absl::InternalError("job failed");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (result.ok()) {
      job->result = *std::move(result);
    } else {
      job->error = result.status();
    }
    job->running = false;
    if (on_event_) {
      nlohmann::json e{{"id", job->id},
                       {"kind", JobKindName(job->kind)},
                       {"state", job->error.ok() ? "done" : "failed"}};
      if (!job->error.ok()) e["error"] = api::StatusToJson(job->error);
      on_event_(e);
    }
    finished_.push_back(job->id);
    done_cv_.notify_all();
  });
  return job->id;
}

void JobManager::Prune() {
  while (finished_.size() > keep_finished_) {
    auto it = jobs_.find(finished_.front());
    finished_.pop_front();
    if (it == jobs_.end()) continue;
    std::shared_ptr<Job> job = it->second;
    jobs_.erase(it);
    // The thread marked the job finished under mu_ (which we hold now), so it no longer
    // needs the lock and is about to return: joining here cannot deadlock.
    if (job->thread.joinable()) job->thread.join();
  }
}

absl::StatusOr<nlohmann::json> JobManager::Get(const std::string& id) {
  std::shared_ptr<Job> job;
  bool running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
    job = it->second;
    running = job->running;
  }
  api::JobInfo out;
  out.id = job->id;
  out.kind = JobKindName(job->kind);
  out.started_ns = job->started_ns;
  if (job->fns.progress) out.progress = job->fns.progress();
  if (running) {
    out.state = "running";
    return api::ToJson(out);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (job->error.ok()) {
    out.state = "done";
    out.result = job->result;
  } else {
    out.state = "failed";
    out.error = job->error;
  }
  return api::ToJson(out);
}

nlohmann::json JobManager::List() {
  std::vector<std::pair<uint64_t, std::string>> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, job] : jobs_) ids.emplace_back(job->seq, id);
  }
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [seq, id] : ids) {
    absl::StatusOr<nlohmann::json> j = Get(id);
    if (j.ok()) out.push_back(*std::move(j));  // else pruned meanwhile
  }
  return out;
}

absl::Status JobManager::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
  it->second->cancel = true;
  return absl::OkStatus();
}

bool JobManager::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return done_cv_.wait_for(lock, timeout, [&] {
    auto it = jobs_.find(id);
    return it == jobs_.end() || !it->second->running;
  }) && jobs_.count(id) > 0;
}

void JobManager::Shutdown() {
  std::vector<std::shared_ptr<Job>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    for (auto& [id, job] : jobs_) {
      job->cancel = true;
      all.push_back(job);
    }
  }
  for (auto& job : all) {
    if (job->thread.joinable()) job->thread.join();
  }
}

}  // namespace cairn::daemon
