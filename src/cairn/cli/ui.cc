// `cairn ui`: a one-time login link to the dashboard this peer serves on its API address
// (docs/dashboard.md "Logging in"): POST /v1/ui/code, then prints
// http://API/#code=CODE and, on a desktop, opens it with xdg-open.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "cairn/api/responses.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

extern char** environ;

namespace cairn::cli {
namespace {

// Whether an executable `name` is on PATH.
bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string dirs = path;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Starts `xdg-open URL` with its output discarded and does not wait for it (a browser may
// keep it). False when it could not be started.
bool OpenInBrowser(const std::string& url) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::string prog = "xdg-open";
  char* argv[] = {prog.data(), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "xdg-open", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0;
}

int RunUi(const GlobalOptions& global, bool no_open) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> answer = (*api)->Post("/v1/ui/code", nlohmann::json::object());
  if (!answer.ok()) return PrintError(answer.status());
  absl::StatusOr<api::LoginCode> code = api::Decode<api::LoginCode>(*answer);
  if (!code.ok()) return PrintError(code.status());
  const std::string url = "http://" + (*api)->address() + "/#code=" + code->code;
  const int64_t expires = code->expires_seconds;
  // Only on a desktop session: elsewhere xdg-open would start a text browser in this terminal.
  const bool desktop =
      std::getenv("DISPLAY") != nullptr || std::getenv("WAYLAND_DISPLAY") != nullptr;
  const bool opened = !no_open && desktop && OnPath("xdg-open") && OpenInBrowser(url);
  if (global.json) {
    PrintJson(nlohmann::json{{"url", url},
                             {"dashboard", "http://" + (*api)->address() + "/"},
                             {"expires_seconds", expires},
                             {"opened", opened}});
    return kExitOk;
  }
  std::cout << "dashboard: " << url << "\n"
            << "(a one-time login link, valid for " << expires / 60
            << " minutes; without it, paste the token in DIR/secrets/api.token)\n";
  if (opened) std::cout << "opened it with xdg-open\n";
  std::cout.flush();
  return kExitOk;
}

}  // namespace

Action RegisterUi(CLI::App& app, GlobalOptions& global) {
  CLI::App* cmd = app.add_subcommand(
      "ui", "Print a one-time login link to this peer's web dashboard (and open it)");
  auto no_open = std::make_shared<bool>(false);
  cmd->add_flag("--no-open", *no_open, "Only print the link; do not run xdg-open");
  return [&global, no_open] { return RunUi(global, *no_open); };
}

}  // namespace cairn::cli
