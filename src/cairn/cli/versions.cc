// `cairn versions PATH [--all]`: every stored version of a file (GET /v1/versions): the
// snapshot it was first seen in, its time, size, mtime and content hash, oldest first.
#include <iostream>
#include <memory>
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

struct VersionsFlags {
  std::string path;
  bool all = false;
};

int RunVersions(const GlobalOptions& global, const VersionsFlags& f) {
  if (f.path.empty()) return PrintUsageError("empty path");
  const std::string path = VersionedPath(f.path);
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> r =
      (*api)->Get(absl::StrCat("/v1/versions?path_base64=", api::UrlEncode(api::ToBase64(path)),
                               "&all=", f.all ? "1" : "0"));
  if (!r.ok()) return PrintError(r.status());
  if (global.json) {
    PrintJson(*r);
    return kExitOk;
  }
  absl::StatusOr<api::VersionList> list = api::Decode<api::VersionList>(*r);
  if (!list.ok()) return PrintError(list.status());
  const std::vector<api::FileVersionInfo>& versions = list->versions;
  Table table({"SNAPSHOT", "TIME", "SIZE", "MODIFIED", "HASH", "SEEN IN"},
              {false, false, true, false, false, false});
  for (const api::FileVersionInfo& v : versions) {
    std::string size = v.type == "file" ? FormatSize(v.size) : v.type;
    std::string seen = v.snapshots == 1 ? "1 snapshot"
                                        : absl::StrCat(v.snapshots, " snapshots, until ",
                                                       v.last_snapshot_id.substr(0, 8));
    table.AddRow({v.snapshot_id.substr(0, 8), FormatLocalTime(v.snapshot_time_ns), size,
                  FormatLocalTime(v.mtime_ns), v.content_hash.substr(0, 16), seen});
  }
  table.Print(std::cout);
  std::cout << versions.size() << (versions.size() == 1 ? " version" : " versions") << " of "
            << path << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterVersions(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<VersionsFlags>();
  CLI::App* cmd = app.add_subcommand("versions", "List every stored version of a file");
  cmd->add_option("path", f->path, "The file (or directory) as it was backed up")->required();
  cmd->add_flag("--all", f->all,
                "One line per snapshot (default: snapshots in a row with the same content are "
                "one version)");
  return [&global, f] { return RunVersions(global, *f); };
}

}  // namespace cairn::cli
