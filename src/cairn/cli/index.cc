// `cairn index rebuild`: rebuilds this peer's catalog (snapshots, chunks, placements) from the
// blobs the other peers hold, with this peer's own keys, as `cairn recover` does on a new
// machine (POST /v1/index/rebuild; docs/operations.md "When the index is damaged"). The peer
// starts one by itself when it finds index.db missing, empty or damaged at start; this command
// then follows the running one. Adds to what the catalog knows, never removes.
//
// Exit codes: 0 rebuilt; 1 error (no peer answered, ...); 3 rebuilt but incomplete (a snapshot
// blob that did not open, chunks no live peer holds).
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_join.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"

namespace cairn::cli {
namespace {

int RunIndexRebuild(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> started =
      (*api)->Post("/v1/index/rebuild", nlohmann::json::object());
  if (!started.ok()) return PrintError(started.status());
  absl::StatusOr<api::JobStarted> job_started = api::Decode<api::JobStarted>(*started);
  if (!job_started.ok()) return PrintError(job_started.status());
  const std::string job_id = job_started->job_id;
  if (!global.json) {
    std::cerr << "rebuilding the index from the peers (job " << job_id << ")" << std::endl;
  }
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, nullptr);
  if (!job.ok()) return PrintError(Annotate(job.status(), "index rebuild failed"));
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::IndexRebuildAnswer> answer = api::Decode<api::IndexRebuildAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "index rebuild result"));
  const api::IndexRebuildAnswer& r = *answer;
  if (global.json) {
    PrintJson(result);
    return r.complete ? kExitOk : kExitDegraded;
  }
  if (r.note && !r.note->empty()) {
    std::cout << "nothing to rebuild: " << *r.note << std::endl;
    return kExitOk;
  }
  std::cout << "rebuilt the index from peer(s) " << absl::StrJoin(r.peers_listed, ", ") << ": "
            << r.snapshots.size() << " snapshot(s), " << r.chunks << " chunk(s) (" << r.data_chunks
            << " data, " << r.tree_chunks << " tree, " << r.erasure_chunks
            << " erasure-coded) from " << r.blobs << " blob(s)\n";
  if (r.chunks_below_target > 0) {
    std::cout << r.chunks_below_target
              << " chunk(s) are below their target redundancy: the peer repairs them\n";
  }
  if (r.snapshots_unreadable > 0) {
    std::cout << r.snapshots_unreadable << " snapshot blob(s) could not be opened\n";
  }
  if (r.missing_chunks > 0) {
    std::cout << r.missing_chunks
              << " chunk(s) that the snapshots reference are on no live peer: the files that "
                 "need them cannot be restored unless a peer holding them comes back\n";
  }
  for (const std::string& e : r.errors) std::cout << "  " << e << "\n";
  std::cout << std::flush;
  return r.complete ? kExitOk : kExitDegraded;
}

}  // namespace

Action RegisterIndex(CLI::App& app, GlobalOptions& global) {
  CLI::App* cmd = app.add_subcommand("index", "Look after this peer's index (index.db)");
  cmd->require_subcommand(1);
  CLI::App* rebuild = cmd->add_subcommand(
      "rebuild", "Rebuild this peer's catalog of snapshots from the blobs the peers hold");
  return [&global, rebuild] {
    if (rebuild->parsed()) return RunIndexRebuild(global);
    return PrintUsageError("cairn index: a subcommand is required (rebuild)");
  };
}

}  // namespace cairn::cli
