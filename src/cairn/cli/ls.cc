// `cairn ls SNAPSHOT [PATH] [-r]`: lists a snapshot's entries (GET /v1/ls).
#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

struct LsFlags {
  std::string snapshot;
  std::string path;
  bool recursive = false;
};

int RunLs(const GlobalOptions& global, const LsFlags& f) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  std::string target = absl::StrCat("/v1/ls?snapshot=", api::UrlEncode(f.snapshot),
                                    "&path_base64=", api::UrlEncode(api::ToBase64(f.path)),
                                    "&recursive=", f.recursive ? "1" : "0");
  absl::StatusOr<std::vector<api::LsEntry>> list = (*api)->GetAs<std::vector<api::LsEntry>>(target);
  if (!list.ok()) return PrintError(list.status());
  if (global.json) {
    PrintJson(api::ToJson(*list));
    return kExitOk;
  }
  size_t size_width = 0;
  for (const api::LsEntry& e : *list) {
    size_width = std::max(size_width, std::to_string(e.size).size());
  }
  for (const api::LsEntry& e : *list) {
    std::string size = std::to_string(e.size);
    std::string line =
        absl::StrCat(ModeString(e.type, e.mode), "  ", std::string(size_width - size.size(), ' '),
                     size, "  ", FormatLocalTime(e.mtime_ns), "  ", e.path);
    if (e.type == "symlink") absl::StrAppend(&line, " -> ", e.target.value_or(""));
    std::cout << line << "\n";
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace

Action RegisterLs(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<LsFlags>();
  CLI::App* cmd = app.add_subcommand("ls", "List files in a snapshot");
  cmd->add_option("snapshot", flags->snapshot, "Snapshot id, unique id prefix, or 'latest'")
      ->required();
  cmd->add_option("path", flags->path, "Path inside the snapshot (default: its root)");
  cmd->add_flag("-r,--recursive", flags->recursive, "List everything below PATH");
  return [&global, flags] { return RunLs(global, *flags); };
}

}  // namespace cairn::cli
