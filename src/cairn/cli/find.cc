// `cairn find PATTERN`: entries whose name (or, for a pattern with '/', whose path) matches a
// glob, over all snapshots (GET /v1/find).
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

struct FindFlags {
  std::string pattern;
};

int RunFind(const GlobalOptions& global, const FindFlags& f) {
  if (f.pattern.empty()) return PrintUsageError("empty pattern");
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  const std::string target =
      absl::StrCat("/v1/find?pattern_base64=", api::UrlEncode(api::ToBase64(f.pattern)));
  absl::StatusOr<nlohmann::json> r = (*api)->Get(target);
  if (!r.ok()) return PrintError(r.status());
  if (global.json) {
    PrintJson(*r);
    return kExitOk;
  }
  absl::StatusOr<std::vector<api::FindMatch>> found = api::Decode<std::vector<api::FindMatch>>(*r);
  if (!found.ok()) {
    return PrintError(absl::InternalError(
        absl::StrCat("malformed answer to GET ", target, ": ", found.status().message())));
  }
  if (found->empty()) {
    std::cout << "nothing matches " << f.pattern << std::endl;
    return kExitOk;
  }
  Table table({"SNAPSHOT", "TIME", "MODE", "SIZE", "MODIFIED", "PATH"},
              {false, false, false, true, false, false});
  std::set<std::string> snapshots;
  for (const api::FindMatch& e : *found) {
    snapshots.insert(e.snapshot_id);
    table.AddRow({e.snapshot_id.substr(0, 8), FormatLocalTime(e.snapshot_time_ns),
                  ModeString(e.type, e.mode), e.type == "file" ? FormatSize(e.size) : "",
                  FormatLocalTime(e.mtime_ns), e.path});
  }
  table.Print(std::cout);
  std::cout << found->size() << (found->size() == 1 ? " match" : " matches") << " in "
            << snapshots.size() << (snapshots.size() == 1 ? " snapshot" : " snapshots")
            << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterFind(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<FindFlags>();
  CLI::App* cmd = app.add_subcommand("find", "Find files by name in all snapshots");
  cmd->add_option("pattern", f->pattern,
                  "Glob (fnmatch) for the name, e.g. '*.pdf'; with '/' also the whole path")
      ->required();
  return [&global, f] { return RunFind(global, *f); };
}

}  // namespace cairn::cli
