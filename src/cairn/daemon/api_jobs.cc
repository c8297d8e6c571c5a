// The jobs that move data and the job list (docs/cli.md "Local HTTP API"): POST /v1/backup,
// /v1/restore, /v1/check, /v1/repair; GET /v1/jobs, /v1/jobs/ID; DELETE /v1/jobs/ID.
#include <string>

#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {

std::vector<ApiRoute> JobRoutes(ApiHandler* h) {
  return {
      {"POST", "/v1/backup",
       JobRoute<api::BackupRequest>([h](const auto& r) { return h->StartBackup(r); })},
      {"POST", "/v1/restore", JobRoute<api::RestoreRequest>([h](const auto& r) {
         return r.at_ns ? h->StartRestoreAt(r) : h->StartRestore(r);
       })},
      {"POST", "/v1/check",
       JobRoute<api::CheckRequest>([h](const auto& r) { return h->StartCheck(r); })},
      {"POST", "/v1/repair",
       JobRoute<api::CheckRequest>([h](const auto& r) { return h->StartRepair(r); })},
      {"GET", "/v1/jobs", JsonRoute([h] { return h->GetJobs(); })},
      {"GET", "/v1/jobs/([0-9A-Za-z_-]+)",
       Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->GetJob(req.matches[1]));
         return Reply{200, std::move(j)};
       })},
      {"DELETE", "/v1/jobs/([0-9A-Za-z_-]+)",
       Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string id = req.matches[1];
         CAIRN_RETURN_IF_ERROR(h->CancelJob(id));
         return Reply{200, api::ToJson(api::JobCancelled{id})};
       })},
  };
}

}  // namespace cairn::daemon
