#include "cairn/cli/main.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cairn/cli/commands.h"
#include "cairn/daemon/json_paths.h"

namespace cairn::cli {

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

int PrintError(const absl::Status& status) {
  std::cerr << "cairn: " << status.message() << std::endl;
  return kExitError;
}

int PrintUsageError(const std::string& message) {
  std::cerr << "cairn: " << message << "\nRun with --help for more information." << std::endl;
  return kExitUsage;
}

int Main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on: every
  // lock (gRPC takes several per call) then updates a global lock graph. cairn's own locks are
  // std::mutex; gRPC's are tested upstream. perf on a peer during a backup: ~2% of its CPU.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app("cairn: peer-to-peer backup on your LAN's spare disk space", "cairn");
  GlobalOptions global;
  app.add_option("--dir", global.dir, "Peer directory (default ~/.cairn)")->envname("CAIRN_DIR");
  app.add_flag("--json", global.json, "Print JSON instead of text");
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
      {"watch", RegisterWatch}};
  std::vector<std::pair<CLI::App*, Action>> commands;
  for (const auto& [name, reg] : kCommands) {
    Action action = reg(app, global);
    commands.emplace_back(app.get_subcommand(name), std::move(action));
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
