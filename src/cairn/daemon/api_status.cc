// GET /v1/version, /v1/status, /v1/peers (docs/cli.md "Local HTTP API").
#include "absl/status/statusor.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/version.h"

namespace cairn::daemon {

std::vector<ApiRoute> StatusRoutes(ApiHandler* h) {
  return {
      {"GET", "/v1/version",
       JsonRoute([]() -> absl::StatusOr<nlohmann::json> { return VersionJson(); })},
      {"GET", "/v1/status", JsonRoute([h] { return h->GetStatus(); })},
      {"GET", "/v1/peers", JsonRoute([h] { return h->GetPeers(); })},
  };
}

}  // namespace cairn::daemon
