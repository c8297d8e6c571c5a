// `cairn restore SNAPSHOT[:PATH] --target DIR`: restores a snapshot or a path in it
// (POST /v1/restore) and follows the job. `cairn restore --at TIME PATH --target DIR`
// restores PATH as it was at TIME: from the newest snapshot at or before TIME that holds it.
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"
#include "cairn/engine/versions.h"

namespace cairn::cli {
namespace {

struct RestoreFlags {
  std::string spec;  // SNAPSHOT[:PATH], or PATH with --at
  std::string target;
  std::string at;  // TIME (engine::ParseTimePoint, local times allowed)
};

int RunRestore(const GlobalOptions& global, const RestoreFlags& f) {
  // Snapshot ids are hex and never contain ':', so the first ':' ends the id.
  std::string snapshot = f.spec, path;
  std::optional<int64_t> at_ns;
  if (!f.at.empty()) {
    // --at TIME PATH: PATH is a path on this machine, absolute or relative to the cwd.
    if (f.spec.empty()) return PrintUsageError("--at needs the PATH to restore");
    absl::StatusOr<int64_t> t =
        engine::ParseTimePoint(f.at, /*allow_local=*/true, /*allow_unix_ns=*/false);
    if (!t.ok()) return PrintUsageError(std::string(t.status().message()));
    at_ns = *t;
    path = VersionedPath(f.spec);
  } else {
    if (f.spec.empty()) return PrintUsageError("a snapshot is required (or --at TIME PATH)");
    size_t colon = f.spec.find(':');
    if (colon != std::string::npos) {
      snapshot = f.spec.substr(0, colon);
      path = f.spec.substr(colon + 1);
    }
    if (snapshot.empty()) return PrintUsageError("missing snapshot id before ':'");
  }
  if (f.target.empty()) return PrintUsageError("--target must not be empty");
  std::string target = AbsolutePath(f.target);

  api::RestoreRequest request;
  request.snapshot = snapshot;
  request.at_ns = at_ns;
  request.path = path;
  request.target = target;

  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::string> started = (*api)->StartJob("/v1/restore", request);
  if (!started.ok()) return PrintError(started.status());
  const std::string job_id = *started;

  ProgressBar bar(!global.json && ProgressBar::StderrIsTerminal());
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, &bar);
  if (!job.ok()) return PrintError(Annotate(job.status(), "restore failed"));
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::RestoreAnswer> answer = api::Decode<api::RestoreAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "restore result"));
  const api::RestoreAnswer& r = *answer;
  if (global.json) {
    PrintJson(result);
  } else {
    std::cout << "restored " << r.files << " files, " << r.directories << " dirs, " << r.symlinks
              << " symlinks, " << r.hardlinks << " hard links, " << FormatSize(r.bytes) << " in "
              << FormatSeconds(r.duration_seconds) << " ("
              << FormatRate(r.bytes, r.duration_seconds) << ") to " << target << std::endl;
    if (at_ns) {
      std::cout << "from snapshot " << r.short_id << ", the newest at or before "
                << FormatLocalTime(*at_ns) << " holding " << path << std::endl;
    }
  }
  if (r.errors.empty()) return kExitOk;
  for (const std::string& e : r.errors) std::cerr << "error: " << e << "\n";
  std::cerr << "degraded: " << r.errors.size() << (r.errors.size() == 1 ? " path" : " paths")
            << " could not be restored" << std::endl;
  return kExitDegraded;
}

}  // namespace

Action RegisterRestore(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<RestoreFlags>();
  CLI::App* cmd = app.add_subcommand("restore", "Restore a snapshot, or a path in it");
  cmd->add_option("snapshot", flags->spec,
                  "SNAPSHOT[:PATH]: id, unique id prefix or 'latest', optionally with a path; "
                  "with --at: the PATH (absolute or relative to the working directory)");
  cmd->add_option("--at", flags->at,
                  "Restore PATH as it was at this time: '2026-11-22 10:00:00' (local), RFC 3339 "
                  "or '@UNIX_SECONDS'");
  cmd->add_option("--target", flags->target, "Directory to restore into (created if missing)")
      ->required();
  return [&global, flags] { return RunRestore(global, *flags); };
}

}  // namespace cairn::cli
