#include "cairn/cli/main.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "cairn/api/json_paths.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/daemon/version.h"
#include "cairn/format/tree.h"
#include "nlohmann/json.hpp"

namespace cairn::cli {
namespace {

// --json anywhere on the command line: errors are printed as JSON too (PrintError).
bool g_json_errors = false;

void PrintErrorLine(int code, const std::string& message) {
  if (g_json_errors) {
    // restic's shape, in its order (docs/cli.md "Commands").
    nlohmann::ordered_json j{
        {"message_type", "exit_error"}, {"code", code}, {"message", api::SanitizeUtf8(message)}};
    std::cerr << j.dump() << std::endl;
  } else {
    std::cerr << "cairn: " << message << std::endl;
  }
}

// Levenshtein distance (insertions, deletions, substitutions), for "did you mean".
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The first argument that is not a global option (or --dir's value): the command's name;
// "" when there is none.
std::string CommandWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--dir") {
      ++i;
      continue;
    }
    if (a == "--") return i + 1 < argc ? argv[i + 1] : "";
    if (!a.empty() && a[0] == '-') continue;
    return std::string(a);
  }
  return "";
}

}  // namespace

std::string UnknownCommandMessage(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& name : known) {
    size_t d = EditDistance(word, name);
    // A prefix ("snap" for snapshots) counts as close.
    if (name.rfind(word, 0) == 0 && !word.empty()) d = std::min<size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  std::string message = absl::StrCat("unknown command '", api::SanitizeUtf8(word), "'");
  if (!best.empty() && best_distance <= std::max<size_t>(2, word.size() / 3)) {
    return absl::StrCat(message, "; did you mean ", best, "?");
  }
  return absl::StrCat(message, "; the commands are: ", absl::StrJoin(known, ", "));
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string VersionedPath(const std::string& path) {
  if (auto archive = format::ParseArchivePath(path)) {
    return archive->first + ":" +
           std::filesystem::path(archive->second).lexically_normal().string();
  }
  return AbsolutePath(path);
}

int PrintError(const absl::Status& status) {
  // Ctrl-C while waiting for a job: the job was cancelled; exit as a shell reports SIGINT.
  const int code = absl::IsCancelled(status) && InterruptedByUser() ? kExitInterrupted : kExitError;
  PrintErrorLine(code, std::string(status.message()));
  return code;
}

int PrintUsageError(const std::string& message) {
  if (g_json_errors) {
    PrintErrorLine(kExitUsage, message);
  } else {
    std::cerr << "cairn: " << message << "\nRun with --help for more information." << std::endl;
  }
  return kExitUsage;
}

int RunVersion(bool json) {
  if (json) {
    std::cout << api::DumpJson(daemon::VersionJson()) << std::endl;
    return kExitOk;
  }
  const nlohmann::json v = daemon::VersionJson();
  std::cout << "cairn " << daemon::CairnVersion();
  if (*daemon::GitCommit()) std::cout << " (commit " << daemon::GitCommit() << ")";
  std::cout << "\nprotocol " << v["protocol"].get<std::string>() << "; formats:";
  for (const auto& [name, version] : v["formats"].items()) {
    std::cout << " " << name << " " << version.dump();
  }
  std::cout << std::endl;
  return kExitOk;
}

int Main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on: every
  // lock (gRPC takes several per call) then updates a global lock graph. cairn's own locks are
  // std::mutex; gRPC's are tested upstream. perf on a peer during a backup: ~2% of its CPU.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  g_json_errors = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--json") g_json_errors = true;
  }
  CLI::App app("cairn: peer-to-peer backup on your LAN's spare disk space", "cairn");
  GlobalOptions global;
  app.add_option("--dir", global.dir, "Peer directory (default ~/.cairn)")->envname("CAIRN_DIR");
  app.add_flag("--json", global.json, "Print JSON instead of text");
  app.set_version_flag(
      "--version",
      absl::StrCat("cairn ", daemon::CairnVersion(), *daemon::GitCommit() ? " (commit " : "",
                   daemon::GitCommit(), *daemon::GitCommit() ? ")" : ""));
  app.fallthrough();  // global options are accepted after the subcommand too
  app.require_subcommand(1);

  const std::pair<const char*, Action (*)(CLI::App&, GlobalOptions&)> kCommands[] = {
      {"init", RegisterInit},       {"peer", RegisterPeer},
      {"backup", RegisterBackup},   {"snapshots", RegisterSnapshots},
      {"ls", RegisterLs},           {"restore", RegisterRestore},
      {"peers", RegisterPeers},     {"status", RegisterStatus},
      {"cluster", RegisterCluster}, {"check", RegisterCheck},
      {"repair", RegisterRepair},   {"forget", RegisterForget},
      {"delete", RegisterDelete},   {"reclaim", RegisterReclaim},
      {"key", RegisterKey},         {"recover", RegisterRecover},
      {"index", RegisterIndex},     {"versions", RegisterVersions},
      {"diff", RegisterDiff},       {"find", RegisterFind},
      {"mount", RegisterMount},     {"source", RegisterSource},
      {"watch", RegisterWatch},     {"ui", RegisterUi},
      {"archive", RegisterArchive}};
  std::vector<std::pair<CLI::App*, Action>> commands;
  std::vector<std::string> names;
  for (const auto& [name, reg] : kCommands) {
    Action action = reg(app, global);
    commands.emplace_back(app.get_subcommand(name), std::move(action));
    names.push_back(name);
  }
  CLI::App* version = app.add_subcommand("version",
                                         "Print this binary's version, git commit and "
                                         "protocol and format versions");
  commands.emplace_back(version, [&global] { return RunVersion(global.json); });
  names.push_back("version");

  // `cairn help [COMMAND [SUBCOMMAND]]` is `cairn [COMMAND [SUBCOMMAND]] --help`, as in git and
  // restic (docs/cli.md "Commands").
  std::vector<char*> help_argv;
  std::string help_flag = "--help";
  if (CommandWord(argc, argv) == "help") {
    bool dropped = false;
    for (int i = 0; i < argc; ++i) {
      if (!dropped && i > 0 && std::string_view(argv[i]) == "help") {
        dropped = true;
        continue;
      }
      help_argv.push_back(argv[i]);
    }
    help_argv.push_back(help_flag.data());
    argc = static_cast<int>(help_argv.size());
    argv = help_argv.data();
  }

  // An unknown command gets a suggestion instead of CLI11's "arguments were not expected".
  const std::string word = CommandWord(argc, argv);
  if (!word.empty() && std::find(names.begin(), names.end(), word) == names.end()) {
    return PrintUsageError(UnknownCommandMessage(word, names));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return PrintUsageError(e.what());
  }
  if (global.dir.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return PrintUsageError("no peer directory: pass --dir DIR or set CAIRN_DIR (HOME is unset)");
    }
    global.dir = std::string(home) + "/.cairn";
  }
  while (global.dir.size() > 1 && global.dir.back() == '/') global.dir.pop_back();
  for (auto& [sub, action] : commands) {
    if (sub->parsed()) {
      try {
        return action();
      } catch (const std::exception& e) {
        return PrintError(absl::InternalError(e.what()));
      }
    }
  }
  return PrintUsageError("a command is required");
}

}  // namespace cairn::cli
