// The versions feature of the local API (docs/cli.md "Local HTTP API"): GET /v1/versions (every
// stored version of a path), GET /v1/diff (what changed between two snapshots) and GET /v1/find
// (entries matching a glob in every snapshot), over engine/versions.h. Read-only: answered on
// the API's handler thread, not as jobs.
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// class keeps no state of its own.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

class VersionsApi {
 public:
  explicit VersionsApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
  virtual ~VersionsApi() = default;

  // GET /v1/versions?path_base64=B&all=0|1 (or path=P; absolute), GET /v1/diff?a=SNAP&b=SNAP,
  // GET /v1/find?pattern_base64=B (or pattern=P). A missing or malformed parameter is
  // INVALID_ARGUMENT before a method below is called. `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // Every stored version of absolute `path` (raw bytes), oldest first; with `all` one per
  // snapshot instead of one per run of equal content. NOT_FOUND when no snapshot holds it.
  virtual absl::StatusOr<nlohmann::json> GetVersions(const std::string& path, bool all);
  // The changes from snapshot `a` to `b` (ids, prefixes or "latest"); NOT_FOUND for an unknown
  // snapshot.
  virtual absl::StatusOr<nlohmann::json> GetDiff(const std::string& a, const std::string& b);
  // The entries of every snapshot whose name (or, with a '/', source path) matches the fnmatch
  // glob `pattern`.
  virtual absl::StatusOr<nlohmann::json> FindEntries(const std::string& pattern);

 private:
  const ApiContext ctx_;
};

}  // namespace cairn::daemon
