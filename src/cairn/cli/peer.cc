// `cairn peer`: runs the daemon in the foreground until SIGTERM/SIGINT (docs/cli.md "Commands").
#include <grpc/support/log.h>
#include <signal.h>
#include <spdlog/cfg/env.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/allocator.h"
#include "cairn/cli/commands.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/daemon.h"
#include "cairn/env/dir_lock.h"

namespace cairn::cli {
namespace {

// True when stderr is connected to the journal: systemd sets JOURNAL_STREAM=DEV:INO (decimal)
// to the device and inode of the stream it gave the service (docs/operations.md "Running under
// systemd"). A redirected stderr (a file, a pipe of a wrapper) no longer matches.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  std::vector<std::string> parts = absl::StrSplit(env, ':');
  uint64_t dev = 0, ino = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &dev) || !absl::SimpleAtoi(parts[1], &ino)) {
    return false;
  }
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

// %* in the log pattern: the syslog priority prefix "<N>" (sd-daemon.h SD_ERR etc.) that journald
// strips from a line and records as its PRIORITY, so `journalctl -p warning` works.
class JournalPriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char* prefix = SD_INFO;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        prefix = SD_DEBUG;
        break;
      case spdlog::level::info:
        prefix = SD_INFO;
        break;
      case spdlog::level::warn:
        prefix = SD_WARNING;
        break;
      case spdlog::level::err:
        prefix = SD_ERR;
        break;
      case spdlog::level::critical:
        prefix = SD_CRIT;
        break;
      default:
        break;
    }
    dest.append(prefix, prefix + std::char_traits<char>::length(prefix));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriorityFlag>();
  }
};

// gRPC's own log lines (a TLS handshake that timed out, ...) would reach the journal without a
// priority; under the journal they go through spdlog instead. Kept alive past spdlog::shutdown()
// for gRPC threads that log late.
std::shared_ptr<spdlog::logger>& GrpcLogger() {
  static auto* logger = new std::shared_ptr<spdlog::logger>();
  return *logger;
}

void LogGrpc(gpr_log_func_args* args) {
  const std::shared_ptr<spdlog::logger>& logger = GrpcLogger();
  if (!logger) return;
  spdlog::level::level_enum level = spdlog::level::info;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = spdlog::level::debug;
  logger->log(level, "grpc {}:{}: {}", args->file ? args->file : "?", args->line,
              args->message ? args->message : "");
}

// Log lines on stderr: "2024-01-02T03:04:05.123 [peer 3] info: ...", with the prefix "<6>" (the
// syslog priority) when stderr is the journal; then gRPC's own lines go through spdlog too.
// SPDLOG_LEVEL=debug turns on debug logs.
void SetUpLogging(PeerId id) {
  auto logger = spdlog::get("cairn");
  if (!logger) logger = spdlog::stderr_color_mt("cairn");
  const bool journal = StderrIsJournal();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JournalPriorityFlag>('*');
  formatter->set_pattern(
      absl::StrCat(journal ? "%*" : "", "%Y-%m-%dT%H:%M:%S.%e [peer ", id, "] %^%l%$: %v"));
  logger->set_formatter(std::move(formatter));
  if (journal) {
    GrpcLogger() = logger;
    gpr_set_log_function(LogGrpc);
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  spdlog::cfg::load_env_levels();
}

// The service manager's notification socket (sd_notify(3); docs/operations.md "Running under
// systemd"): without NOTIFY_SOCKET every call is a no-op.
void Notify(const std::string& state) { sd_notify(0, state.c_str()); }

// "serving, N of M peers alive" from the daemon's health (the STATUS= line systemctl shows).
std::string ServiceStatus(daemon::Daemon& d) {
  const api::Health h = d.GetHealth();
  return absl::StrCat("serving, ", h.peers_alive, " of ", h.peers_known, " peers alive");
}

int RunPeer(const GlobalOptions& global) {
  // Bounded arenas, no per-batch page faults (docs/architecture.md "Memory and the allocator"),
  // before any thread (the logger's included) allocates: a thread that allocated earlier would
  // keep an arena of its own beyond the limit.
  TuneAllocator();
  // Load the config first to name the peer in log lines and report config errors plainly.
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  SetUpLogging(config->peer_id);
  // One peer per directory, decided before anything in it is opened: a second peer would
  // "recover" the segments and index.db the first is writing (docs/cli.md "cairn peer").
  // Held until this function returns; the kernel drops it if the process dies.
  absl::StatusOr<env::DirLock> lock = env::DirLock::Acquire(global.dir);
  if (!lock.ok()) {
    spdlog::error("cannot start: {}", std::string(lock.status().message()));
    return PrintError(lock.status());
  }
  // Block the shutdown signals in every thread (threads inherit the mask) and take them with
  // sigwait below; a peer that closes a connection must not kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  daemon::DaemonOptions options;
  // Another node holds this peer's id: stop (the main thread below takes the signal) and exit 1
  // rather than run as a duplicate.
  options.on_fatal = [](const absl::Status&) { ::kill(::getpid(), SIGTERM); };
  absl::StatusOr<std::unique_ptr<daemon::Daemon>> d = daemon::Daemon::Start(global.dir, options);
  if (!d.ok()) {
    spdlog::error("cannot start: {}", std::string(d.status().message()));
    return PrintError(d.status());
  }
  // The peer service and the API listen from here on (Daemon::Start returns after both bound).
  Notify(absl::StrCat("READY=1\nSTATUS=", ServiceStatus(**d)));
  // WATCHDOG=1 every half WatchdogSec when the unit sets it; STATUS= every 10 s (or as often).
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  const uint64_t tick_usec =
      watchdog ? std::min<uint64_t>(watchdog_usec / 2, 10'000'000) : 10'000'000;
  const struct timespec tick {
    .tv_sec = static_cast<time_t>(tick_usec / 1'000'000),
    .tv_nsec = static_cast<long>(tick_usec % 1'000'000) * 1000,
  };
  int sig = 0;
  while (true) {
    sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig < 0) {
      // Timed out (or EINTR): the main thread is alive and the daemon answers its health.
      std::string status = ServiceStatus(**d);
      Notify(absl::StrCat(watchdog ? "WATCHDOG=1\n" : "", "STATUS=", status));
      continue;
    }
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP ignored (restart the peer to reload cairn.toml)");
      continue;
    }
    break;
  }
  Notify("STOPPING=1\nSTATUS=stopping");
  absl::Status fatal = (*d)->fatal_status();
  if (!fatal.ok()) {
    spdlog::error("stopping: {}", std::string(fatal.message()));
    (*d)->Shutdown();
    d->reset();
    spdlog::shutdown();
    return PrintError(fatal);
  }
  spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*d)->Shutdown();
  d->reset();
  spdlog::info("peer {} stopped", config->peer_id);
  spdlog::shutdown();
  return kExitOk;
}

}  // namespace

Action RegisterPeer(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("peer", "Run this peer (foreground) until SIGTERM/SIGINT");
  return [&global] { return RunPeer(global); };
}

}  // namespace cairn::cli
