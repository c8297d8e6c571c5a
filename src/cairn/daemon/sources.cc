// SourceScheduler (sources.h) and the Daemon's start of it; GET/POST/DELETE /v1/sources are
// api_sources.cc.
#include "cairn/daemon/sources.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

constexpr std::chrono::minutes kMaxRetryDelay{10};

int64_t Nanos(std::chrono::milliseconds d) { return std::chrono::nanoseconds(d).count(); }

}  // namespace

api::BackupRequest SourceBackupRequest(const SourceConfig& source) {
  api::BackupRequest r;
  r.paths = {source.path};
  if (source.copies != 0) r.copies = source.copies;
  if (!source.ec.empty()) {
    auto scheme = codec::ParseErasureScheme(source.ec);
    if (scheme.ok()) r.ec = *scheme;  // validated when the source was parsed
  }
  r.excludes = source.excludes;
  if (!source.keep.empty()) r.retention = source.keep;
  return r;
}

api::SourceInfo SourceInfoOf(const SourceConfig& s) {
  api::SourceInfo r;
  r.path = s.path;
  if (s.copies != 0) r.copies = s.copies;
  if (!s.ec.empty()) r.ec = s.ec;
  r.excludes = s.excludes;
  r.schedule = s.schedule.count() > 0 ? FormatDuration(s.schedule) : "";
  r.watch = s.watch;
  r.keep = s.keep;
  return r;
}

// One source's runtime state. Guarded by SourceScheduler::mu_ (the watcher only touches the
// debouncer, which has its own lock).
struct SourceScheduler::Entry {
  SourceConfig config;
  std::unique_ptr<Watcher> watcher;
  std::optional<std::string> job;  // the backup of this source that runs
  int64_t last_start_ns = 0;       // monotonic; 0 = none since the daemon started
  // Forced backups (monotonic ns; 0 = none): first one, schedule, rescan, retry after a failure.
  int64_t initial_at = 0;
  int64_t schedule_at = 0;
  int64_t rescan_at = 0;
  int64_t retry_at = 0;
  int failures = 0;  // consecutive
  uint64_t backups = 0;
  std::optional<api::LastBackup> last_backup;  // unset until a backup of it finished
};

SourceScheduler::SourceScheduler(SourceSchedulerOptions options, SourceHooks hooks)
    : options_(std::move(options)),
      hooks_(std::move(hooks)),
      debouncer_(options_.clock, options_.watch.quiet_period) {}

SourceScheduler::~SourceScheduler() { Stop(); }

void SourceScheduler::Start(const std::vector<SourceConfig>& sources) {
  for (const SourceConfig& s : sources) {
    absl::Status added = Add(s);
    if (!added.ok()) spdlog::warn("source {}: {}", api::SanitizeUtf8(s.path), added.ToString());
  }
  if (options_.background) thread_ = std::thread([this] { Loop(); });
}

void SourceScheduler::Stop() {
  std::map<std::string, std::unique_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    entries.swap(entries_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [path, entry] : entries) {
    if (entry->watcher) entry->watcher->Stop();
  }
}

void SourceScheduler::StartWatcher(Entry& entry) {  // not under mu_
  if (!options_.use_inotify || !entry.config.watch) return;
  WatcherOptions wo;
  wo.root = entry.config.path;
  wo.excludes = entry.config.excludes;
  const std::string source = entry.config.path;
  wo.on_change = [this, source](const std::string&) { debouncer_.Change(source); };
  wo.on_overflow = [this, source] {
    spdlog::warn("source {}: inotify lost events (queue overflow): backing it up now",
                 api::SanitizeUtf8(source));
    debouncer_.Overflow(source);
    cv_.notify_all();
  };
  wo.on_error = [source](const std::string& message) {
    spdlog::warn("source {}: {}", api::SanitizeUtf8(source), api::SanitizeUtf8(message));
  };
  auto watcher = Watcher::Start(std::move(wo));
  if (!watcher.ok()) {
    spdlog::warn("source {}: not watched ({}); it is backed up on its schedule and rescans",
                 api::SanitizeUtf8(source), watcher.status().ToString());
    return;
  }
  if (!(*watcher)->watching_root()) {
    spdlog::warn("source {}: does not exist (yet); watching for it", api::SanitizeUtf8(source));
  }
  entry.watcher = *std::move(watcher);
}

absl::Status SourceScheduler::Add(const SourceConfig& source) {
  auto exists = [&] {
    return absl::AlreadyExistsError(
        absl::StrCat("'", api::SanitizeUtf8(source.path), "' is already a source"));
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::FailedPreconditionError("the peer is shutting down");
    if (entries_.count(source.path)) return exists();
  }
  auto entry = std::make_unique<Entry>();
  entry->config = source;
  StartWatcher(*entry);  // walks the tree: not under mu_
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || entries_.count(source.path)) {
    if (entry->watcher) entry->watcher->Stop();
    if (stopping_) return absl::FailedPreconditionError("the peer is shutting down");
    return exists();
  }
  entry->initial_at = options_.clock->MonotonicNanos() + Nanos(options_.watch.quiet_period);
  if (entry->watcher) {
    spdlog::info("source {}: watching {} directories", api::SanitizeUtf8(source.path),
                 entry->watcher->watch_count());
  }
  entries_[source.path] = std::move(entry);
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status SourceScheduler::Remove(const std::string& path) {
  std::unique_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(path);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("'", api::SanitizeUtf8(path), "' is not a source"));
    }
    entry = std::move(it->second);
    entries_.erase(it);
    debouncer_.Forget(path);
  }
  if (entry->watcher) entry->watcher->Stop();
  return absl::OkStatus();
}

void SourceScheduler::NotifyChange(const std::string& source) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!entries_.count(source)) return;
  }
  debouncer_.Change(source);
}

void SourceScheduler::NotifyOverflow(const std::string& source) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!entries_.count(source)) return;
  }
  debouncer_.Overflow(source);
  cv_.notify_all();
}

bool SourceScheduler::Watching(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
  return it != entries_.end() && it->second->watcher && it->second->watcher->watching_root();
}

void SourceScheduler::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  const int64_t now = options_.clock->MonotonicNanos();
  const int64_t quiet = Nanos(options_.watch.quiet_period);

  for (auto& [path, e] : entries_) {
    // A backup of this source that finished.
    if (e->job) {
      std::optional<absl::StatusOr<Json>> result = hooks_.job_result(*e->job);
      if (!result) continue;  // still running
      api::LastBackup last;
      last.job_id = *e->job;
      last.time = api::FormatRfc3339(options_.clock->NowNanos());
      if (result->ok()) {
        last.state = "done";
        if (auto answer = api::Decode<api::BackupAnswer>(**result); answer.ok()) {
          last.snapshot_id = answer->snapshot_id;
          last.short_id = answer->short_id;
        }
        e->failures = 0;
      } else {
        last.state = "failed";
        last.error = result->status().ToString();
        ++e->failures;
        int64_t delay = quiet << std::min(e->failures - 1, 20);
        delay = std::min<int64_t>(delay, std::chrono::nanoseconds(kMaxRetryDelay).count());
        e->retry_at = now + delay;
        spdlog::warn("source {}: backup failed ({}); trying again in {} s", api::SanitizeUtf8(path),
                     api::SanitizeUtf8(result->status().ToString()), delay / 1'000'000'000);
      }
      e->last_backup = std::move(last);
      e->job.reset();
    }
    // Timers: each makes the source due now (the debouncer merges them with its changes).
    bool rescan = e->rescan_at != 0 && now >= e->rescan_at;
    bool forced = rescan || (e->initial_at != 0 && now >= e->initial_at) ||
                  (e->schedule_at != 0 && now >= e->schedule_at) ||
                  (e->retry_at != 0 && now >= e->retry_at);
    if (forced) {
      debouncer_.Requeue(DueSource{path, rescan});
      e->initial_at = e->retry_at = 0;
      if (rescan) e->rescan_at = 0;
      if (e->schedule_at != 0 && now >= e->schedule_at) e->schedule_at = 0;
    }
  }

  // Sources that are due and not being backed up; the least recently started goes first.
  std::vector<DueSource> due = debouncer_.TakeDue([this](const std::string& source) {
    auto it = entries_.find(source);
    return it == entries_.end() || !it->second->job;
  });
  std::sort(due.begin(), due.end(), [this](const DueSource& a, const DueSource& b) {
    auto ea = entries_.find(a.source), eb = entries_.find(b.source);
    int64_t sa = ea == entries_.end() ? 0 : ea->second->last_start_ns;
    int64_t sb = eb == entries_.end() ? 0 : eb->second->last_start_ns;
    return sa != sb ? sa < sb : a.source < b.source;
  });
  bool busy = false;
  for (const DueSource& d : due) {
    auto it = entries_.find(d.source);
    if (it == entries_.end()) continue;  // removed meanwhile (NotifyChange raced Remove)
    Entry& e = *it->second;
    if (busy) {
      debouncer_.Requeue(d);
      continue;
    }
    absl::StatusOr<std::string> id = hooks_.start_backup(SourceBackupRequest(e.config));
    if (absl::IsFailedPrecondition(id.status())) {
      // Another backup runs (one at a time): try again when it has ended.
      busy = true;
      debouncer_.Requeue(d);
      continue;
    }
    if (!id.ok()) {
      ++e.failures;
      e.retry_at = now + std::min<int64_t>(quiet << std::min(e.failures - 1, 20),
                                           std::chrono::nanoseconds(kMaxRetryDelay).count());
      api::LastBackup& last = e.last_backup.emplace();
      last.state = "failed";
      last.time = api::FormatRfc3339(options_.clock->NowNanos());
      last.error = id.status().ToString();
      spdlog::warn("source {}: cannot start a backup: {}", api::SanitizeUtf8(d.source),
                   api::SanitizeUtf8(id.status().ToString()));
      continue;
    }
    spdlog::info("source {}: backup started (job {}{})", api::SanitizeUtf8(d.source), *id,
                 d.rescan ? ", rescan after lost events" : "");
    e.job = *id;
    e.last_start_ns = now;
    ++e.backups;
    // Every backup walks the whole source: the schedule and the rescan count from here.
    if (e.config.schedule.count() > 0) e.schedule_at = now + Nanos(e.config.schedule);
    if (options_.watch.rescan_interval.count() > 0) {
      e.rescan_at = now + Nanos(options_.watch.rescan_interval);
    }
    busy = true;  // the job manager runs one backup at a time
  }
}

void SourceScheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick();
    lock.lock();
    cv_.wait_for(lock, options_.tick, [this] { return stopping_; });
  }
}

Json SourceScheduler::StatusJson() {
  std::lock_guard<std::mutex> lock(mu_);
  Json out = Json::array();
  for (const auto& [path, e] : entries_) {
    api::SourceInfo info = SourceInfoOf(e->config);
    api::SourceState& state = info.state.emplace();
    state.watching = e->watcher != nullptr && e->watcher->watching_root();
    state.watches = e->watcher ? e->watcher->watch_count() : 0;
    state.pending = debouncer_.Pending(path);
    state.running_job = e->job;
    state.backups = e->backups;
    state.last_backup = e->last_backup;
    out.push_back(api::ToJson(info));
  }
  return out;
}

// --- Daemon ---------------------------------------------------------------------------------

void Daemon::StartSources() {
  SourceSchedulerOptions options;
  options.clock = options_.clock;
  options.watch = config_.watch;
  SourceHooks hooks;
  hooks.start_backup = [this](const api::BackupRequest& r) { return StartBackup(r); };
  hooks.job_result = [this](const std::string& id) -> std::optional<absl::StatusOr<Json>> {
    absl::StatusOr<Json> job = jobs_->Get(id);
    if (!job.ok()) return absl::StatusOr<Json>(job.status());  // forgotten: finished
    std::string state = job->value("state", "");
    if (state == "running") return std::nullopt;
    if (state == "done") return absl::StatusOr<Json>((*job)["result"]);
    return absl::StatusOr<Json>(api::StatusFromJson(job->value("error", Json::object())));
  };
  sources_ = std::make_unique<SourceScheduler>(options, std::move(hooks));
  sources_->Start(config_.sources);
}

SourceConfig SourceFromRequest(const api::SourceRequest& r) {
  SourceConfig s;
  s.path = r.path;
  s.copies = r.copies;
  s.ec = r.ec;
  s.excludes = r.excludes;
  s.schedule = r.schedule;
  s.watch = r.watch;
  s.keep = r.keep;
  return s;
}

}  // namespace cairn::daemon
