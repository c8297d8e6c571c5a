// `cairn peer`: runs the daemon in the foreground until SIGTERM/SIGINT (design.md §9).
#include <malloc.h>
#include <signal.h>
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "cairn/cli/commands.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/daemon.h"

namespace cairn::cli {
namespace {

// Log lines on stderr: "2024-01-02T03:04:05.123 [peer 3] info: ...". SPDLOG_LEVEL=debug
// turns on debug logs.
void SetUpLogging(PeerId id) {
  auto logger = spdlog::get("cairn");
  if (!logger) logger = spdlog::stderr_color_mt("cairn");
  logger->set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e [peer ", id, "] %^%l%$: %v"));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  spdlog::cfg::load_env_levels();
}

int RunPeer(const GlobalOptions& global) {
  // Load the config first to name the peer in log lines and report config errors plainly.
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  SetUpLogging(config->peer_id);
  // A peer runs dozens of threads (upload workers, gRPC, batching senders); glibc would give
  // each its own malloc arena, and every arena keeps freed chunk buffers: memory would grow
  // with the thread count, not with the work (docs/architecture.md "Data path").
  mallopt(M_ARENA_MAX, 4);

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
  int sig = 0;
  while (true) {
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP ignored (restart the peer to reload cairn.toml)");
      continue;
    }
    break;
  }
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
