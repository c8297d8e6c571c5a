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
  std::string job_id = Str(*started, "job_id");
  if (job_id.empty()) return PrintError(absl::InternalError("the peer returned no job id"));
  if (!global.json) {
    std::cerr << "rebuilding the index from the peers (job " << job_id << ")" << std::endl;
  }
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, nullptr);
  if (!job.ok()) return PrintError(Annotate(job.status(), "index rebuild failed"));
  const nlohmann::json& r = (*job)["result"];
  const bool complete = Bool(r, "complete");
  if (global.json) {
    PrintJson(r);
    return complete ? kExitOk : kExitDegraded;
  }
  if (!Str(r, "note").empty()) {
    std::cout << "nothing to rebuild: " << Str(r, "note") << std::endl;
    return kExitOk;
  }
  std::vector<std::string> listed;
  if (r.contains("peers_listed") && r["peers_listed"].is_array()) {
    for (const auto& p : r["peers_listed"]) listed.push_back(p.dump());
  }
  const size_t snapshots =
      r.contains("snapshots") && r["snapshots"].is_array() ? r["snapshots"].size() : 0;
  std::cout << "rebuilt the index from peer(s) " << absl::StrJoin(listed, ", ") << ": " << snapshots
            << " snapshot(s), " << U64(r, "chunks") << " chunk(s) (" << U64(r, "data_chunks")
            << " data, " << U64(r, "tree_chunks") << " tree, " << U64(r, "erasure_chunks")
            << " erasure-coded) from " << U64(r, "blobs") << " blob(s)\n";
  if (U64(r, "chunks_below_target") > 0) {
    std::cout << U64(r, "chunks_below_target")
              << " chunk(s) are below their target redundancy: the peer repairs them\n";
  }
  if (U64(r, "snapshots_unreadable") > 0) {
    std::cout << U64(r, "snapshots_unreadable") << " snapshot blob(s) could not be opened\n";
  }
  if (U64(r, "missing_chunks") > 0) {
    std::cout << U64(r, "missing_chunks")
              << " chunk(s) that the snapshots reference are on no live peer: the files that "
                 "need them cannot be restored unless a peer holding them comes back\n";
  }
  if (r.contains("errors") && r["errors"].is_array()) {
    for (const auto& e : r["errors"]) {
      if (e.is_string()) std::cout << "  " << e.get<std::string>() << "\n";
    }
  }
  std::cout << std::flush;
  return complete ? kExitOk : kExitDegraded;
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
