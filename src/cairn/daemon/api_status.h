// The status feature of the local API (docs/cli.md "Local HTTP API"): GET /v1/version (this
// binary's versions), GET /v1/status (this peer as storage and home peer) and GET /v1/peers (the
// cluster as this peer sees it, with clock offsets).
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// class keeps no state of its own.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

class StatusApi {
 public:
  explicit StatusApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
  virtual ~StatusApi() = default;

  // The routes above. `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // The daemon's status object (ApiContext::status; UNIMPLEMENTED without it).
  virtual absl::StatusOr<nlohmann::json> GetStatus();
  // Every peer known, this one included ("self"), as api::PeerInfo.
  virtual absl::StatusOr<nlohmann::json> GetPeers();

 private:
  const ApiContext ctx_;
};

}  // namespace cairn::daemon
