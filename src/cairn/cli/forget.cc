// `cairn forget SNAPSHOT... | --keep-* [--dry-run]`: drops snapshots by id or by a retention
// policy with restic's semantics (POST /v1/forget), then deletes the blobs no snapshot
// references any more on every peer (queued for peers that are offline).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/keep_flags.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"
#include "cairn/engine/retention.h"

namespace cairn::cli {
namespace {

struct ForgetFlags {
  std::vector<std::string> snapshots;
  KeepFlags keep;
  bool dry_run = false;
  bool no_prune = false;
};

void PrintDecisions(const char* verb, const std::vector<api::ForgetDecision>& list) {
  if (list.empty()) return;
  std::cout << verb << " " << list.size() << (list.size() == 1 ? " snapshot" : " snapshots")
            << ":\n";
  Table table({"ID", "TIME", "HOST", "PATHS", "TAGS", "REASONS"});
  for (const api::ForgetDecision& d : list) {
    const api::SnapshotInfo& s = d.snapshot;
    table.AddRow({s.short_id, FormatLocalTime(s.time_ns), s.hostname, absl::StrJoin(s.paths, ","),
                  absl::StrJoin(s.tags, ","), absl::StrJoin(d.reasons, ", ")});
  }
  table.Print(std::cout);
  std::cout << "\n";
}

int RunForget(const GlobalOptions& global, const ForgetFlags& f) {
  bool policy = f.keep.any();
  if (f.snapshots.empty() && !policy) {
    return PrintUsageError(
        "name snapshots to forget, or give a policy (--keep-last, --keep-daily, ...); "
        "see `cairn forget --help`");
  }
  if (!f.snapshots.empty() && policy) {
    return PrintUsageError("give either snapshot ids or a --keep-* policy, not both");
  }
  absl::StatusOr<engine::RetentionPolicy> keep = KeepPolicyFromFlags(f.keep);
  if (!keep.ok()) return PrintUsageError(std::string(keep.status().message()));
  api::ForgetRequest request;
  request.snapshots = f.snapshots;
  request.policy = *keep;
  request.dry_run = f.dry_run;
  request.prune = !f.no_prune;

  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::string> started = (*api)->StartJob("/v1/forget", request);
  if (!started.ok()) return PrintError(started.status());
  const std::string job_id = *started;
  ProgressBar bar(false);
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, &bar);
  if (!job.ok()) return PrintError(Annotate(job.status(), "forget failed"));
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::ForgetAnswer> answer = api::Decode<api::ForgetAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "forget result"));
  if (global.json) {
    PrintJson(result);
    return kExitOk;
  }
  const api::ForgetAnswer& r = *answer;
  PrintDecisions("keep", r.kept);
  PrintDecisions(f.dry_run ? "would remove" : "remove", r.removed);
  if (f.dry_run) {
    std::cout << "dry run: nothing was removed" << std::endl;
    return kExitOk;
  }
  if (r.gc) {
    const api::GcInfo& gc = *r.gc;
    const api::DeliveryInfo del = r.deletions.value_or(api::DeliveryInfo{});
    std::cout << "garbage collection: " << gc.referenced_chunks << " chunks still used, "
              << gc.unreferenced_chunks << " unused chunks dropped ("
              << FormatSize(gc.unreferenced_bytes) << " on peers); " << del.delivered
              << " blob deletions delivered" << std::endl;
    if (const uint64_t lowered = gc.targets_lowered; lowered > 0) {
      std::cout << "targets: " << lowered << (lowered == 1 ? " chunk" : " chunks")
                << " now want fewer copies (the snapshots that asked for more are gone)"
                << std::endl;
    }
    if (del.pending > 0) {
      std::cerr << "note: " << del.pending
                << " blob deletions are queued for peers that are offline; they are delivered "
                   "when those peers return"
                << std::endl;
    }
  }
  if (r.targets) {
    if (const uint64_t lowered = r.targets->targets_lowered; lowered > 0) {
      std::cout << "targets: " << lowered << (lowered == 1 ? " chunk" : " chunks")
                << " now want fewer copies (the snapshots that asked for more are gone)"
                << std::endl;
    }
  }
  return kExitOk;
}

}  // namespace

Action RegisterForget(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<ForgetFlags>();
  CLI::App* cmd = app.add_subcommand(
      "forget",
      "Forget snapshots (by id or by a --keep-* policy, as restic) and delete unused blobs");
  cmd->add_option("snapshots", f->snapshots, "Snapshot ids or unique prefixes");
  AddKeepFlags(cmd, f->keep);
  cmd->add_flag("--dry-run,-n", f->dry_run, "Only print what would be removed and why");
  cmd->add_flag("--no-prune", f->no_prune,
                "Only forget the snapshots; leave unused blobs until the next forget");
  return [&global, f] { return RunForget(global, *f); };
}

}  // namespace cairn::cli
