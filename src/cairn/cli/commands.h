// Registration of the `cairn` subcommands (one .cc file each) and what they share.
// Internal to cli/. Thread-safety: single-threaded use from Main().
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace cairn::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitDegraded = 3;
inline constexpr int kExitInterrupted = 130;  // Ctrl-C (128 + SIGINT), as a shell reports it

// Options every command understands (set on the top-level app; subcommands fall through).
struct GlobalOptions {
  std::string dir;  // --dir / $CAIRN_DIR; resolved to ~/.cairn when empty
  bool json = false;
};

// A command body, run after parsing; returns the exit code.
using Action = std::function<int()>;

// Each adds its subcommand to `app` and returns the body to run when it is selected.
Action RegisterInit(CLI::App& app, GlobalOptions& global);
Action RegisterPeer(CLI::App& app, GlobalOptions& global);
Action RegisterBackup(CLI::App& app, GlobalOptions& global);
Action RegisterSnapshots(CLI::App& app, GlobalOptions& global);
Action RegisterLs(CLI::App& app, GlobalOptions& global);
Action RegisterRestore(CLI::App& app, GlobalOptions& global);
Action RegisterPeers(CLI::App& app, GlobalOptions& global);
Action RegisterStatus(CLI::App& app, GlobalOptions& global);
Action RegisterCluster(CLI::App& app, GlobalOptions& global);
Action RegisterCheck(CLI::App& app, GlobalOptions& global);
Action RegisterRepair(CLI::App& app, GlobalOptions& global);
Action RegisterForget(CLI::App& app, GlobalOptions& global);
Action RegisterDelete(CLI::App& app, GlobalOptions& global);
Action RegisterReclaim(CLI::App& app, GlobalOptions& global);
Action RegisterKey(CLI::App& app, GlobalOptions& global);
Action RegisterRecover(CLI::App& app, GlobalOptions& global);
Action RegisterIndex(CLI::App& app, GlobalOptions& global);
// Versions: versions.cc, diff.cc, find.cc.
Action RegisterVersions(CLI::App& app, GlobalOptions& global);
Action RegisterDiff(CLI::App& app, GlobalOptions& global);
Action RegisterFind(CLI::App& app, GlobalOptions& global);
Action RegisterMount(CLI::App& app, GlobalOptions& global);
// Archives (create|list|unmount): archive.cc; `mount --archive`: mount.cc.
Action RegisterArchive(CLI::App& app, GlobalOptions& global);
// Continuous backup: source.cc (add|list|remove), watch.cc.
Action RegisterSource(CLI::App& app, GlobalOptions& global);
Action RegisterWatch(CLI::App& app, GlobalOptions& global);
// The dashboard's one-time login link (docs/dashboard.md): ui.cc.
Action RegisterUi(CLI::App& app, GlobalOptions& global);

// `path` made absolute against the working directory (the peer runs elsewhere) and lexically
// normal, without a trailing '/'. Symlinks are not resolved.
std::string AbsolutePath(const std::string& path);
// A path whose versions are asked for (versions, restore --at): an archive path "NAME:/a/b"
// (format/tree.h ParseArchivePath) as it is, anything else through AbsolutePath.
std::string VersionedPath(const std::string& path);

// "cairn: <message>" on stderr; returns kExitError, or kExitInterrupted for the CANCELLED
// status of a job Ctrl-C cancelled (WaitForJob, cli/connect.h). Under --json (anywhere on the
// command line) the line is {"message_type":"exit_error","code":N,"message":"..."} instead.
int PrintError(const absl::Status& status);
// "cairn: <message>" and a --help hint on stderr; returns kExitUsage. Under --json, as
// PrintError with code 2.
int PrintUsageError(const std::string& message);
// "unknown command 'bakup'; did you mean backup?" (the closest of `known` by edit distance,
// when it is close), else the message lists `known`.
std::string UnknownCommandMessage(const std::string& word, const std::vector<std::string>& known);

}  // namespace cairn::cli
