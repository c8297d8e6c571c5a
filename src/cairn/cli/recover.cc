// `cairn recover`: rebuilds a lost home peer on a fresh machine from its recovery key and the
// other peers (docs/operations.md "Disaster recovery of a home peer"):
//
//   1. checks the recovery key (cluster/recovery_key.h) and that --peer-id is the key's;
//   2. makes the peer directory like `cairn init` (daemon/peer_dir.h) but with the key's owner
//      key, cluster key and node id (other members pinned that node id to this peer id), and
//      quota 0 while recovering, so that no peer stores anything here yet;
//   3. starts the peer in-process (daemon::Daemon), waits until peers answer, and rebuilds the
//      index from them (Daemon::RecoverIndex -> engine::RecoverIndex);
//   4. stops the peer, writes the --quota asked for to cairn.toml and prints a summary.
//
// On failure (a key that decrypts nothing, no peer answering, ...) what step 2 made is removed
// again, so the command can simply be run again. Exit codes: 0 recovered; 1 error; 2 usage (a
// mistyped key, a peer id that is not the key's); 3 recovered but incomplete (some snapshot,
// tree or chunk was not found on the live peers).
#include <signal.h>
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/init_flags.h"
#include "cairn/cli/output.h"
#include "cairn/cluster/recovery_key.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/daemon.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

struct RecoverFlags : InitFlags {
  std::string recovery_key;  // the key, or "-": read it from stdin
  std::string wait = "60s";
};

// Daemon log lines on stderr, warnings and errors only (SPDLOG_LEVEL overrides).
void SetUpLogging(PeerId id) {
  auto logger = spdlog::get("cairn");
  if (!logger) logger = spdlog::stderr_color_mt("cairn");
  logger->set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e [peer ", id, "] %^%l%$: %v"));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
  spdlog::cfg::load_env_levels();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Removes what InitPeerDir made (the whole directory when it did not exist before).
void RemoveMade(const std::string& dir, bool existed, const std::vector<std::string>& created) {
  std::error_code ec;
  if (!existed) {
    std::filesystem::remove_all(dir, ec);
    return;
  }
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    std::string path = *it;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    std::filesystem::remove_all(path, ec);
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::remove(daemon::IndexPath(dir) + suffix, ec);
  }
}

nlohmann::json ReportJson(const engine::RecoverReport& r, const std::string& dir, PeerId peer) {
  nlohmann::json j = api::ToJson(daemon::IndexRebuildAnswerOf(r));
  j["peer_id"] = peer;
  api::SetPathField(j, "dir", dir);
  return j;
}

void PrintReport(const engine::RecoverReport& r, const std::string& dir, PeerId peer) {
  std::cout << "recovered peer " << peer << " into " << dir << " from peer(s) "
            << absl::StrJoin(r.peers_listed, ", ") << ": " << r.snapshots.size() << " snapshot(s), "
            << r.chunks << " chunk(s) (" << r.data_chunks << " data, " << r.tree_chunks << " tree, "
            << r.erasure_chunks << " erasure-coded) from " << r.blobs << " blob(s)\n";
  Table table({"ID", "Time", "Host", "Paths", "Files"}, {false, false, false, false, true});
  for (const index::SnapshotRecord& s : r.snapshots) {
    table.AddRow({s.id.ShortHex(), FormatLocalTime(s.snapshot.time_ns),
                  api::SanitizeUtf8(s.snapshot.hostname),
                  api::SanitizeUtf8(absl::StrJoin(s.snapshot.paths, " ")),
                  std::to_string(s.snapshot.stats.files)});
  }
  table.Print(std::cout);
  if (!r.peers_not_listed.empty()) {
    std::cout << "not listed (not alive, or failed): peer(s) "
              << absl::StrJoin(r.peers_not_listed, ", ")
              << "; their copies are not recorded (run `cairn repair` once they are back, or "
                 "to add copies elsewhere)\n";
  }
  if (r.chunks_below_target > 0) {
    std::cout << r.chunks_below_target
              << " chunk(s) are below their target redundancy: the peer repairs them\n";
  }
  if (r.snapshots_unreadable > 0) {
    std::cout << r.snapshots_unreadable << " snapshot blob(s) could not be opened\n";
  }
  if (r.missing_chunks > 0) {
    std::cout << r.missing_chunks
              << " chunk(s) that the snapshots reference are on no live peer: the files that "
                 "need them cannot be restored unless a peer holding them comes back\n";
  }
  for (const std::string& e : r.errors) std::cout << "  " << api::SanitizeUtf8(e) << "\n";
  std::cout << "start the peer with: cairn peer --dir " << dir
            << "\nthen `cairn snapshots` and `cairn restore` work as before; add your sources "
               "again (`cairn source add`), cairn.toml was made anew"
            << std::endl;
}

int RunRecover(const GlobalOptions& global, const RecoverFlags& f) {
  std::string text = f.recovery_key;
  if (text == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  absl::StatusOr<cluster::RecoveryKey> key = cluster::ParseRecoveryKey(text);
  if (!key.ok()) return PrintUsageError(absl::StrCat("--recovery-key: ", key.status().message()));
  if (key->peer_id != f.peer_id) {
    return PrintUsageError(absl::StrCat("--peer-id ", f.peer_id,
                                        " is not the peer of this recovery key: it belongs to "
                                        "peer ",
                                        key->peer_id));
  }
  daemon::Config c;
  if (int rc = ConfigFromInitFlags(global, f, c); rc != kExitOk) return rc;
  absl::StatusOr<std::chrono::milliseconds> wait = daemon::ParseDuration(f.wait);
  if (!wait.ok()) return PrintUsageError(absl::StrCat("--wait: ", wait.status().message()));
  const uint64_t quota = c.quota;
  c.quota = 0;  // lend nothing while recovering: nobody may store a blob here yet

  const bool existed = Exists(c.dir);
  daemon::InitSecrets secrets;
  secrets.owner_key = key->owner_key;
  secrets.cluster_key = key->cluster_key;
  secrets.node_id = key->node_id;
  absl::StatusOr<daemon::InitReport> made = daemon::InitPeerDir(c, secrets);
  if (!made.ok()) {
    if (absl::IsInvalidArgument(made.status())) {
      return PrintUsageError(std::string(made.status().message()));
    }
    if (absl::IsAlreadyExists(made.status())) {
      return PrintError(absl::AlreadyExistsError(absl::StrCat(
          made.status().message(),
          " (cairn recover makes a new peer directory: give it an empty or new --dir)")));
    }
    return PrintError(made.status());
  }
  auto fail = [&](const absl::Status& status) {
    RemoveMade(c.dir, existed, made->created);
    int rc = PrintError(status);
    std::cerr << "cairn: nothing was recovered; removed what this command made in " << c.dir
              << std::endl;
    return rc;
  };

  SetUpLogging(c.peer_id);
  signal(SIGPIPE, SIG_IGN);
  g_interrupted = false;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  auto restore_signals = [&] {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  };

  daemon::DaemonOptions options;
  options.check_index = false;  // this command rebuilds the index itself
  // Another node holds this peer id (the old peer still runs, or its pin changed): stop.
  options.on_fatal = [](const absl::Status&) { g_interrupted = true; };
  absl::StatusOr<std::unique_ptr<daemon::Daemon>> d = daemon::Daemon::Start(c.dir, options);
  if (!d.ok()) {
    restore_signals();
    return fail(d.status());
  }
  std::cerr << "recovering peer " << c.peer_id << " (listening on " << (*d)->listen_address() << ")"
            << std::endl;
  daemon::RecoveryOptions ro;
  ro.wait_for_peers = *wait;
  ro.on_status = [](const std::string& line) { std::cerr << "  " << line << std::endl; };
  engine::RecoverProgress progress;
  absl::StatusOr<engine::RecoverReport> report = (*d)->RecoverIndex(ro, &progress, &g_interrupted);
  absl::Status fatal = (*d)->fatal_status();
  (*d)->Shutdown();
  d->reset();
  spdlog::shutdown();
  restore_signals();
  if (!fatal.ok()) return fail(fatal);
  if (!report.ok()) {
    if (absl::IsCancelled(report.status()) && g_interrupted) {
      return fail(absl::CancelledError("interrupted"));
    }
    return fail(report.status());
  }
  absl::Status st = daemon::WriteBackQuota(c.dir, quota);
  if (!st.ok()) {
    std::cerr << "cairn: " << st.message() << " (set quota in " << daemon::ConfigPath(c.dir)
              << " by hand)" << std::endl;
  }
  if (global.json) {
    PrintJson(ReportJson(*report, c.dir, c.peer_id));
  } else {
    PrintReport(*report, c.dir, c.peer_id);
  }
  return report->complete() ? kExitOk : kExitDegraded;
}

}  // namespace

Action RegisterRecover(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<RecoverFlags>();
  CLI::App* cmd = app.add_subcommand(
      "recover",
      "Rebuild a lost home peer on this machine from its recovery key and the other peers");
  cmd->add_option("--recovery-key", flags->recovery_key,
                  "The recovery key from `cairn key export` (\"-\": read it from stdin)")
      ->required()
      ->envname("CAIRN_RECOVERY_KEY");
  AddInitFlags(cmd, *flags);
  cmd->add_option("--wait", flags->wait, "How long to wait for the first peer to answer")
      ->capture_default_str();
  return [&global, flags] { return RunRecover(global, *flags); };
}

}  // namespace cairn::cli
