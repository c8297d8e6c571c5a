// `cairn delete PATH [--snapshot S]`: removes a file or directory from every snapshot (or one)
// by rewriting them (POST /v1/delete), then deletes the blobs nothing references any more, so
// that the data leaves the backup system entirely.
#include <iostream>
#include <memory>
#include <string>

#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"

namespace cairn::cli {
namespace {

struct DeleteFlags {
  std::string path;
  std::string snapshot;
};

int RunDelete(const GlobalOptions& global, const DeleteFlags& f) {
  if (f.path.empty()) return PrintUsageError("empty path");
  api::DeleteRequest request{.path = AbsolutePath(f.path), .snapshot = f.snapshot};
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::string> started = (*api)->StartJob("/v1/delete", request);
  if (!started.ok()) return PrintError(started.status());
  const std::string job_id = *started;
  ProgressBar bar(false);
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, &bar);
  if (!job.ok()) return PrintError(Annotate(job.status(), "delete failed"));
  const nlohmann::json& r = (*job)["result"];
  if (global.json) {
    PrintJson(r);
    return kExitOk;
  }
  for (const nlohmann::json& w : r["rewritten"]) {
    std::cout << "snapshot " << Str(w, "old_short_id") << " -> " << Str(w, "new_short_id") << ": "
              << U64(w, "removed_files") << " files (" << FormatSize(U64(w, "removed_bytes"))
              << ") removed\n";
  }
  std::cout << r["rewritten"].size() << " snapshots rewritten, " << U64(r, "unchanged")
            << " did not contain " << RawField(r, "path") << std::endl;
  if (r.contains("deletions") && U64(r["deletions"], "pending") > 0) {
    std::cerr << "note: " << U64(r["deletions"], "pending")
              << " blob deletions are queued for peers that are offline" << std::endl;
  }
  return kExitOk;
}

}  // namespace

Action RegisterDelete(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<DeleteFlags>();
  CLI::App* cmd = app.add_subcommand(
      "delete", "Remove a file or directory from the snapshots and delete its data on the peers");
  cmd->add_option("path", f->path, "The file or directory, as it was backed up")->required();
  cmd->add_option("--snapshot", f->snapshot, "Only this snapshot (id or prefix; default: all)");
  return [&global, f] { return RunDelete(global, *f); };
}

}  // namespace cairn::cli
