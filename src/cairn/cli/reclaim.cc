// `cairn reclaim SIZE`: sets what this peer lends to SIZE ("0" empties it). Blobs over the new
// quota are handed to other peers (placement) and deleted here only once stored there; their
// owners are told (BlobMoved). Refused, with nothing moved or deleted, when the other peers lack
// the room (POST /v1/reclaim).
#include <iostream>
#include <memory>
#include <string>

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

int RunReclaim(const GlobalOptions& global, const std::string& size) {
  absl::StatusOr<uint64_t> quota = ParseSize(size);
  if (!quota.ok()) return PrintUsageError("SIZE: " + std::string(quota.status().message()));
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::string> started =
      (*api)->StartJob("/v1/reclaim", api::ReclaimRequest{.quota = *quota});
  if (!started.ok()) return PrintError(started.status());
  const std::string job_id = *started;
  ProgressBar bar(!global.json && ProgressBar::StderrIsTerminal());
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, &bar);
  if (!job.ok()) return PrintError(Annotate(job.status(), "reclaim failed"));
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::ReclaimAnswer> answer = api::Decode<api::ReclaimAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "reclaim result"));
  if (global.json) {
    PrintJson(result);
    return kExitOk;
  }
  const api::ReclaimAnswer& r = *answer;
  std::cout << "quota:   " << FormatSize(r.old_quota) << " -> " << FormatSize(r.quota) << "\n"
            << "moved:   " << r.moved_blobs << " blobs (" << FormatSize(r.moved_bytes)
            << ") to other peers\n"
            << "evicted: " << r.evicted_blobs << " extra copies (" << FormatSize(r.evicted_bytes)
            << ")\n"
            << "used:    " << FormatSize(r.used) << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterReclaim(CLI::App& app, GlobalOptions& global) {
  auto size = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "reclaim", "Lend less space: move blobs over the new quota to other peers first");
  cmd->add_option("size", *size, "New quota, e.g. 20G, 500M, or 0 to empty this peer")->required();
  return [&global, size] { return RunReclaim(global, *size); };
}

}  // namespace cairn::cli
