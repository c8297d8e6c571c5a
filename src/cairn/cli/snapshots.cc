// `cairn snapshots`: lists this peer's snapshots (GET /v1/snapshots).
#include <iostream>
#include <vector>

#include "absl/strings/str_join.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

int RunSnapshots(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> list = (*api)->Get("/v1/snapshots");
  if (!list.ok()) return PrintError(list.status());
  if (global.json) {
    PrintJson(*list);
    return kExitOk;
  }
  absl::StatusOr<std::vector<api::SnapshotInfo>> snapshots =
      api::Decode<std::vector<api::SnapshotInfo>>(*list);
  if (!snapshots.ok()) return PrintError(snapshots.status());
  if (snapshots->empty()) {
    std::cout << "no snapshots" << std::endl;
    return kExitOk;
  }
  // Backups first; versions of archives apart, after them (docs/operations.md "Archives").
  Table table({"ID", "TIME", "HOST", "PATHS", "TAGS", "FILES", "SIZE"},
              {false, false, false, false, false, true, true});
  Table archives({"ID", "TIME", "ARCHIVE", "FILES", "SIZE"}, {false, false, false, true, true});
  size_t backups = 0;
  for (const api::SnapshotInfo& s : *snapshots) {
    if (s.archive) {
      archives.AddRow({s.short_id, FormatLocalTime(s.time_ns), *s.archive, std::to_string(s.files),
                       FormatSize(s.bytes)});
      continue;
    }
    ++backups;
    table.AddRow({s.short_id, FormatLocalTime(s.time_ns), s.hostname, absl::StrJoin(s.paths, ","),
                  absl::StrJoin(s.tags, ","), std::to_string(s.files), FormatSize(s.bytes)});
  }
  if (backups > 0) {
    table.Print(std::cout);
    std::cout << backups << (backups == 1 ? " snapshot" : " snapshots") << std::endl;
  }
  if (size_t versions = snapshots->size() - backups; versions > 0) {
    if (backups > 0) std::cout << std::endl;
    archives.Print(std::cout);
    std::cout << versions << (versions == 1 ? " archive version" : " archive versions")
              << std::endl;
  }
  return kExitOk;
}

}  // namespace

Action RegisterSnapshots(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("snapshots", "List this peer's snapshots");
  return [&global] { return RunSnapshots(global); };
}

}  // namespace cairn::cli
