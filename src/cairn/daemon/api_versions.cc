// GET /v1/versions, /v1/diff, /v1/find (docs/cli.md "Local HTTP API"): read-only, answered at
// once.
#include <string>

#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {

std::vector<ApiRoute> VersionRoutes(ApiHandler* h) {
  return {
      {"GET", "/v1/versions", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         CAIRN_RETURN_IF_ERROR(api::RequireAbsolute(path, "the path"));
         CAIRN_ASSIGN_OR_RETURN(bool all, ParseBool("all", req.get_param_value("all")));
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->GetVersions(path, all));
         return Reply{200, std::move(j)};
       })},
      {"GET", "/v1/diff", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string a = req.get_param_value("a"), b = req.get_param_value("b");
         if (a.empty() || b.empty()) {
           return absl::InvalidArgumentError("query parameters 'a' and 'b' are required");
         }
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->GetDiff(a, b));
         return Reply{200, std::move(j)};
       })},
      {"GET", "/v1/find", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string pattern, RawParam(req, "pattern"));
         if (pattern.empty()) {
           return absl::InvalidArgumentError("query parameter 'pattern' is required");
         }
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->FindEntries(pattern));
         return Reply{200, std::move(j)};
       })},
  };
}

}  // namespace cairn::daemon
