// Sources kept backed up (docs/cli.md "Local HTTP API"): GET, POST and DELETE /v1/sources.
#include <string>

#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {

std::vector<ApiRoute> SourceRoutes(ApiHandler* h) {
  return {
      {"GET", "/v1/sources", JsonRoute([h] { return h->GetSources(); })},
      {"POST", "/v1/sources", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json body, api::ParseRequestBody(req.body));
         CAIRN_ASSIGN_OR_RETURN(api::SourceRequest source, api::Decode<api::SourceRequest>(body));
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->AddSource(source));
         return Reply{201, std::move(j)};
       })},
      {"DELETE", "/v1/sources", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         CAIRN_RETURN_IF_ERROR(api::RequireAbsolute(path, "a source path"));
         CAIRN_RETURN_IF_ERROR(h->RemoveSource(path));
         nlohmann::json j{{"removed", true}};
         api::SetPathField(j, "path", path);
         return Reply{200, std::move(j)};
       })},
  };
}

}  // namespace cairn::daemon
