// The sources feature of the local API (docs/cli.md "Local HTTP API"): GET /v1/sources (every
// [[source]] and what the scheduler knows of it), POST /v1/sources (a new source) and DELETE
// /v1/sources?path_base64=B. Adding and removing rewrite the [[source]] tables of cairn.toml
// before they answer; this class keeps the current list (the config's is the one at start).
//
// Thread-safety: the methods are called concurrently from the server's handler threads; adds
// and removes are serialized.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/config.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

class SourcesApi {
 public:
  // The sources configured at start are ctx.config->sources (none without a config).
  explicit SourcesApi(ApiContext ctx);
  virtual ~SourcesApi() = default;

  // The routes above (201 with the new source for POST, 200 {"path","removed":true} for
  // DELETE); a malformed body or path is INVALID_ARGUMENT before a method below is called.
  // `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // Every source: SourceScheduler::StatusJson. FAILED_PRECONDITION before the scheduler runs.
  virtual absl::StatusOr<nlohmann::json> GetSources();
  // The added source's JSON (api::SourceInfo). INVALID_ARGUMENT for an invalid source,
  // NOT_FOUND when its path does not exist, ALREADY_EXISTS when it is a source already.
  virtual absl::StatusOr<nlohmann::json> AddSource(const api::SourceRequest& request);
  // NOT_FOUND when `path` (absolute, raw bytes) is not a source. Its snapshots stay.
  virtual absl::Status RemoveSource(const std::string& path);

 private:
  const ApiContext ctx_;
  std::mutex mu_;                         // serializes adds and removes
  std::vector<SourceConfig> configured_;  // guarded by mu_: as in cairn.toml
};

}  // namespace cairn::daemon
