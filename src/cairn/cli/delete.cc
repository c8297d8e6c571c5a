// `cairn delete PATH [--snapshot S]`: removes a file or directory from every snapshot (or one)
// by rewriting them (POST /v1/delete), then deletes the blobs nothing references any more, so
// that the data leaves the backup system entirely.
#include <iostream>
#include <memory>
#include <string>

#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
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
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::DeleteAnswer> answer = api::Decode<api::DeleteAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "delete result"));
  if (global.json) {
    PrintJson(result);
    return kExitOk;
  }
  const api::DeleteAnswer& r = *answer;
  for (const api::RewrittenSnapshot& w : r.rewritten) {
    std::cout << "snapshot " << w.old_short_id << " -> " << w.new_short_id << ": "
              << w.removed_files << " files (" << FormatSize(w.removed_bytes) << ") removed\n";
  }
  std::cout << r.rewritten.size() << " snapshots rewritten, " << r.unchanged << " did not contain "
            << r.path << std::endl;
  if (r.deletions && r.deletions->pending > 0) {
    std::cerr << "note: " << r.deletions->pending
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
