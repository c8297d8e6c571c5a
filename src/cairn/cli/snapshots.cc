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
  Table table({"ID", "TIME", "HOST", "PATHS", "TAGS", "FILES", "SIZE"},
              {false, false, false, false, false, true, true});
  for (const api::SnapshotInfo& s : *snapshots) {
    table.AddRow({s.short_id, FormatLocalTime(s.time_ns), s.hostname, absl::StrJoin(s.paths, ","),
                  absl::StrJoin(s.tags, ","), std::to_string(s.files), FormatSize(s.bytes)});
  }
  table.Print(std::cout);
  std::cout << snapshots->size() << (snapshots->size() == 1 ? " snapshot" : " snapshots")
            << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterSnapshots(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("snapshots", "List this peer's snapshots");
  return [&global] { return RunSnapshots(global); };
}

}  // namespace cairn::cli
