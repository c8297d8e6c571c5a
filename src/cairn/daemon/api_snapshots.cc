// GET /v1/snapshots, /v1/ls, /v1/read (docs/cli.md "Local HTTP API").
#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {
namespace {

// GET /v1/read?snapshot=ID&path_base64=B (or path=P)&offset=N&length=N.
absl::StatusOr<api::ReadRequest> ParseReadRequest(const ApiRequest& req) {
  api::ReadRequest r;
  r.snapshot = req.get_param_value("snapshot");
  if (r.snapshot.empty()) {
    return absl::InvalidArgumentError("query parameter 'snapshot' is required");
  }
  if (req.has_param("path_base64")) {
    auto decoded = api::FromBase64(req.get_param_value("path_base64"));
    if (!decoded.ok()) {
      return absl::InvalidArgumentError("query parameter 'path_base64' is not base64");
    }
    r.path = *std::move(decoded);
  } else {
    r.path = req.get_param_value("path");
  }
  if (r.path.empty()) return absl::InvalidArgumentError("query parameter 'path' is required");
  CAIRN_ASSIGN_OR_RETURN(r.offset, ParseByteCount(req, "offset"));
  CAIRN_ASSIGN_OR_RETURN(r.length, ParseByteCount(req, "length"));
  return r;
}

}  // namespace

std::vector<ApiRoute> SnapshotRoutes(ApiHandler* h) {
  return {
      {"GET", "/v1/snapshots", JsonRoute([h] { return h->GetSnapshots(); })},
      {"GET", "/v1/ls", Wrap([h](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string snapshot = req.get_param_value("snapshot");
         if (snapshot.empty()) {
           return absl::InvalidArgumentError("query parameter 'snapshot' is required");
         }
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         CAIRN_ASSIGN_OR_RETURN(bool recursive,
                                ParseBool("recursive", req.get_param_value("recursive")));
         CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, h->List(snapshot, path, recursive));
         return Reply{200, std::move(j)};
       })},
      // File bytes (`cairn mount`): the body is the raw bytes, not JSON; errors are JSON.
      {"GET", "/v1/read",
       [h](const ApiRequest& req, ApiResponse& res) {
         try {
           absl::StatusOr<api::ReadRequest> r = ParseReadRequest(req);
           absl::StatusOr<std::string> data = r.ok() ? h->ReadFile(*r) : r.status();
           if (!data.ok()) {
             WriteError(res, data.status());
             return;
           }
           res.status = 200;
           res.set_content(*data, "application/octet-stream");
         } catch (const std::exception& e) {
           WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
         } catch (...) {
           WriteError(res, absl::InternalError("internal error"));
         }
       }},
  };
}

}  // namespace cairn::daemon
