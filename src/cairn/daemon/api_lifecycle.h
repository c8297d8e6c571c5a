// The space and lifecycle feature of the local API (docs/cli.md "Local HTTP API";
// docs/architecture.md "Space and lifecycle"): POST /v1/forget (forget snapshots, then collect
// garbage), /v1/delete (remove a path from snapshots), /v1/reclaim (lower the quota, moving blobs
// out) and /v1/index/rebuild (rebuild this peer's catalog from the peers), each answered 202
// {"job_id"}. Forgets and deletes are made here; reclaims and index rebuilds, which the peer also
// starts by itself (used > quota, an index found damaged at start), through ApiContext.
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// class keeps no state of its own (JobManager and the catalog are thread-safe).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/engine/retention.h"

namespace cairn::daemon {

// A snapshot forget kept or removed, with restic's reasons (docs/cli.md "Commands": forget).
api::ForgetDecision ForgetDecisionOf(const engine::RetentionDecision& decision);

class LifecycleApi {
 public:
  explicit LifecycleApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
  virtual ~LifecycleApi() = default;

  // The routes above; a malformed body is INVALID_ARGUMENT before a method below is called.
  // `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // Each returns the new job's id. Forget, delete and reclaim are exclusive jobs
  // (FAILED_PRECONDITION while another exclusive job runs); forget and delete are UNAVAILABLE
  // while the index is being rebuilt, and NOT_FOUND for a snapshot named that does not exist.
  virtual absl::StatusOr<std::string> StartForget(const api::ForgetRequest& request);
  virtual absl::StatusOr<std::string> StartDelete(const api::DeleteRequest& request);
  // ApiContext::start_reclaim; UNIMPLEMENTED without it.
  virtual absl::StatusOr<std::string> StartReclaim(const api::ReclaimRequest& request);
  // ApiContext::start_index_rebuild (the running rebuild's id when one runs); UNIMPLEMENTED
  // without it.
  virtual absl::StatusOr<std::string> StartIndexRebuild();

 private:
  const ApiContext ctx_;
};

}  // namespace cairn::daemon
