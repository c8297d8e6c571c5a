// Space and lifecycle jobs (docs/cli.md "Local HTTP API"): POST /v1/forget, /v1/delete,
// /v1/reclaim, /v1/index/rebuild.
#include <string>

#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {

std::vector<ApiRoute> LifecycleRoutes(ApiHandler* h) {
  return {
      {"POST", "/v1/forget",
       JobRoute<api::ForgetRequest>([h](const auto& r) { return h->StartForget(r); })},
      {"POST", "/v1/delete",
       JobRoute<api::DeleteRequest>([h](const auto& r) { return h->StartDelete(r); })},
      {"POST", "/v1/reclaim",
       JobRoute<api::ReclaimRequest>([h](const auto& r) { return h->StartReclaim(r); })},
      // No body to decode: any (even none) is accepted.
      {"POST", "/v1/index/rebuild", Wrap([h](const ApiRequest&) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string id, h->StartIndexRebuild());
         return Reply{202, api::ToJson(api::JobStarted{id})};
       })},
  };
}

}  // namespace cairn::daemon
