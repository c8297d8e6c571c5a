// `cairn snapshots`: lists this peer's snapshots (GET /v1/snapshots).
#include <iostream>

#include "absl/strings/str_join.h"
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
  if (!list->is_array() || list->empty()) {
    std::cout << "no snapshots" << std::endl;
    return kExitOk;
  }
  Table table({"ID", "TIME", "HOST", "PATHS", "TAGS", "FILES", "SIZE"},
              {false, false, false, false, false, true, true});
  for (const nlohmann::json& s : *list) {
    table.AddRow({Str(s, "short_id"), FormatLocalTime(I64(s, "time_ns")), RawField(s, "hostname"),
                  absl::StrJoin(RawArray(s, "paths"), ","), absl::StrJoin(RawArray(s, "tags"), ","),
                  std::to_string(U64(s, "files")), FormatSize(U64(s, "bytes"))});
  }
  table.Print(std::cout);
  std::cout << list->size() << (list->size() == 1 ? " snapshot" : " snapshots") << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterSnapshots(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("snapshots", "List this peer's snapshots");
  return [&global] { return RunSnapshots(global); };
}

}  // namespace cairn::cli
