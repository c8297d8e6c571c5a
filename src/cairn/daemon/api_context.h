// ApiContext: what the local API's feature handlers (api_*.h, docs/architecture.md "Modules and
// their dependencies") need of the running peer. The Daemon fills it in once its parts exist and
// before the API server starts; a test fills in only what its handler uses (or nothing, when it
// overrides the handler's methods). Pointers are not owned and outlive the server.
//
// Thread-safety: read-only after the server starts; the parts named are thread-safe themselves
// (catalog, JobManager) and the functions may be called from any handler thread.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "cairn/engine/context.h"

namespace cairn::daemon {

class JobManager;

struct ApiContext {
  // The home peer's catalog, owner keys and peers, as the engines see them (engine->catalog is
  // the catalog).
  const engine::EngineContext* engine = nullptr;
  // Background jobs (jobs.h): started, listed, cancelled.
  JobManager* jobs = nullptr;
  // OK, or UNAVAILABLE while the catalog is being rebuilt from the peers (what it says is
  // incomplete until then; docs/operations.md "When the index is damaged"); `what` names the
  // refused request ("list versions"). Unset: always OK.
  std::function<absl::Status(const std::string& what)> index_ready;

  absl::Status IndexReady(const std::string& what) const {
    return index_ready ? index_ready(what) : absl::OkStatus();
  }
};

}  // namespace cairn::daemon
