// `cairn watch PATH`: continuous backup in the foreground for a path that is not a configured
// source. The CLI process watches PATH itself (daemon::Watcher, inotify, recursive), debounces
// the changes (daemon::Debouncer, --quiet or the peer's [watch] quiet_period) and asks the
// local peer for a backup (POST /v1/backup) when they are due, printing each snapshot. A first
// backup is made at start. SIGINT or SIGTERM stops it cleanly (a backup that runs is
// cancelled) with exit code 0.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/codec/erasure.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/debouncer.h"
#include "cairn/daemon/watcher.h"
#include "cairn/env/clock.h"

namespace cairn::cli {
namespace {

using namespace std::chrono_literals;

volatile sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }

struct WatchFlags {
  std::string path;
  std::string quiet;  // "" = the peer's [watch] quiet_period
  uint32_t copies = 0;
  std::string ec;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
};

constexpr char kSource[] = "watch";
constexpr auto kMaxRetryDelay = 5min;

// SIGINT/SIGTERM set g_stop for the lifetime of the object (no SA_RESTART).
class StopSignals {
 public:
  StopSignals() {
    g_stop = 0;
    struct sigaction sa {};
    sa.sa_handler = OnStop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string Now() { return FormatLocalTime(env::RealClock::Default()->NowNanos()); }

void PrintSnapshot(const GlobalOptions& global, const nlohmann::json& result) {
  if (global.json) {
    std::cout << api::DumpJson(result) << std::endl;  // one object per line
    return;
  }
  absl::StatusOr<api::BackupAnswer> answer = api::Decode<api::BackupAnswer>(result);
  if (!answer.ok()) {
    std::cerr << Now() << "  backup result: " << answer.status().message() << std::endl;
    return;
  }
  const api::BackupAnswer& r = *answer;
  std::cout << Now() << "  snapshot " << r.short_id << " saved: " << r.files << " files ("
            << r.files_read << " read), " << FormatSize(r.new_bytes) << " new, "
            << FormatSeconds(r.duration_seconds) << std::endl;
  for (const std::string& e : r.errors) std::cerr << "error: " << e << "\n";
  if (r.degraded) {
    std::cerr << "degraded: " << r.chunks_below_target << " chunks below their target redundancy"
              << std::endl;
  }
}

int RunWatch(const GlobalOptions& global, const WatchFlags& f) {
  if (f.path.empty()) return PrintUsageError("a path is required");
  const std::string path = AbsolutePath(f.path);
  api::BackupRequest request;
  request.paths = {path};
  if (f.copies > 0) request.copies = f.copies;
  if (!f.ec.empty()) {
    absl::StatusOr<codec::ErasureScheme> scheme = codec::ParseErasureScheme(f.ec);
    if (!scheme.ok()) return PrintUsageError("--ec: " + std::string(scheme.status().message()));
    request.ec = *scheme;
  }
  request.tags = f.tags;
  request.excludes = f.excludes;

  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  std::chrono::milliseconds quiet = config->watch.quiet_period;
  if (!f.quiet.empty()) {
    auto d = daemon::ParseDuration(f.quiet);
    if (!d.ok()) return PrintUsageError("--quiet: " + std::string(d.status().message()));
    quiet = *d;
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return PrintError(ErrnoStatus(errno, absl::StrCat("cannot watch ", path)));
  }
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  // The peer must answer now (not at the first change), and must not watch PATH already.
  absl::StatusOr<nlohmann::json> sources = (*api)->Get("/v1/sources");
  if (!sources.ok() && !absl::IsUnimplemented(sources.status())) {
    return PrintError(sources.status());
  }
  if (sources.ok()) {
    absl::StatusOr<std::vector<api::SourceInfo>> list =
        api::Decode<std::vector<api::SourceInfo>>(*sources);
    if (!list.ok()) return PrintError(Annotate(list.status(), "GET /v1/sources"));
    for (const api::SourceInfo& s : *list) {
      if (s.path == path) {
        return PrintError(absl::FailedPreconditionError(
            absl::StrCat(path,
                         " is a configured source: the peer already watches it (see "
                         "`cairn source list`)")));
      }
    }
  }

  StopSignals signals;
  daemon::Debouncer debouncer(env::RealClock::Default(), quiet);
  daemon::WatcherOptions wo;
  wo.root = path;
  wo.excludes = f.excludes;
  wo.on_change = [&](const std::string&) { debouncer.Change(kSource); };
  wo.on_overflow = [&] {
    std::cerr << Now() << "  events were lost (inotify queue overflow): backing up now"
              << std::endl;
    debouncer.Overflow(kSource);
  };
  wo.on_error = [](const std::string& message) {
    std::cerr << "cairn: warning: " << message << std::endl;
  };
  absl::StatusOr<std::unique_ptr<daemon::Watcher>> watcher = daemon::Watcher::Start(wo);
  if (!watcher.ok()) return PrintError(watcher.status());
  std::cerr << "watching " << path << " (" << (*watcher)->watch_count()
            << " directories, quiet period " << daemon::FormatDuration(quiet) << "); Ctrl-C to stop"
            << std::endl;

  debouncer.Requeue(daemon::DueSource{kSource, false});  // a first backup at once
  auto retry_at = std::chrono::steady_clock::time_point::min();
  int failures = 0;
  while (!g_stop) {
    if (std::chrono::steady_clock::now() < retry_at) {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    std::vector<daemon::DueSource> due = debouncer.TakeDue();
    if (due.empty()) {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    absl::StatusOr<std::string> started = (*api)->StartJob("/v1/backup", request);
    absl::StatusOr<nlohmann::json> job = started.ok()
                                             ? WaitForJob(**api, *started, nullptr)
                                             : absl::StatusOr<nlohmann::json>(started.status());
    // Ctrl-C while it ran: it was cancelled.
    if (started.ok() && absl::IsCancelled(job.status())) break;
    if (!job.ok()) {
      debouncer.Requeue(due[0]);
      if (absl::IsFailedPrecondition(job.status())) {
        retry_at = std::chrono::steady_clock::now() + 1s;  // another backup runs: wait for it
        continue;
      }
      ++failures;
      auto delay = std::min<std::chrono::milliseconds>(quiet * (1 << std::min(failures - 1, 16)),
                                                       kMaxRetryDelay);
      std::cerr << Now() << "  backup failed: " << job.status().message() << " (again in "
                << daemon::FormatDuration(delay) << ")" << std::endl;
      retry_at = std::chrono::steady_clock::now() + delay;
      continue;
    }
    failures = 0;
    PrintSnapshot(global, (*job)["result"]);
  }
  (*watcher)->Stop();
  std::cerr << "stopped watching " << path << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterWatch(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<WatchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "watch", "Back up PATH whenever it changes, in the foreground, until Ctrl-C");
  cmd->add_option("path", f->path, "File or directory to watch")->required();
  cmd->add_option("--quiet", f->quiet,
                  "Back up once nothing changed for this long, e.g. 10s (default: the peer's "
                  "[watch] quiet_period)");
  cmd->add_option("--copies", f->copies, "Copies of each chunk (default: the peer's config)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--ec", f->ec, "Erasure coding K+M instead of copies, e.g. 4+2")
      ->excludes("--copies");
  cmd->add_option("--tag", f->tags, "Tag for the snapshots (repeatable)")->allow_extra_args(false);
  cmd->add_option("--exclude", f->excludes, "Skip names or paths matching this glob (repeatable)")
      ->allow_extra_args(false);
  return [&global, f] { return RunWatch(global, *f); };
}

}  // namespace cairn::cli
