// ApiContext: what the local API's feature handlers (api_*.h, docs/architecture.md "Modules and
// their dependencies") need of the running peer. The Daemon fills it in once its parts exist and
// before the API server starts; a test fills in only what its handler uses (or nothing, when it
// overrides the handler's methods). Pointers are not owned and outlive the server.
//
// Thread-safety: read-only after the server starts; the parts named are thread-safe themselves
// (catalog, JobManager) and the functions may be called from any handler thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/engine/context.h"
#include "nlohmann/json.hpp"

namespace cairn::cluster {
class Membership;
}  // namespace cairn::cluster
namespace cairn::ports {
class BlobStore;
}  // namespace cairn::ports

namespace cairn::daemon {

class JobManager;
class SourceScheduler;
struct Config;

struct ApiContext {
  // The home peer's catalog, owner keys and peers, as the engines see them (engine->catalog is
  // the catalog).
  const engine::EngineContext* engine = nullptr;
  // Background jobs (jobs.h): started, listed, cancelled.
  JobManager* jobs = nullptr;
  // The peer's configuration as loaded (its directory, the sources at start).
  const Config* config = nullptr;
  // The sources kept backed up (sources.h).
  SourceScheduler* sources = nullptr;
  // The peers known and their states; this peer's blob store (its usage in the peer list).
  cluster::Membership* membership = nullptr;
  ports::BlobStore* store = nullptr;
  // The daemon's status object (GET /v1/status; docs/cli.md "Commands": status).
  std::function<absl::StatusOr<nlohmann::json>()> status;
  // OK, or UNAVAILABLE while the catalog is being rebuilt from the peers (what it says is
  // incomplete until then; docs/operations.md "When the index is damaged"); `what` names the
  // refused request ("list versions"). Unset: always OK.
  std::function<absl::Status(const std::string& what)> index_ready;

  // The daemon's own job starters, which it also runs without a request (a source's backups,
  // the repair loop): each returns the job's id. Unset: UNIMPLEMENTED.
  std::function<absl::StatusOr<std::string>(const api::BackupRequest&)> start_backup;
  std::function<absl::StatusOr<std::string>(const api::CheckRequest&)> start_repair;
  // A check found chunks below target: the repair loop repairs soon. Unset: nothing.
  std::function<void()> request_repair;
  // Likewise the lifecycle jobs the peer starts by itself (docs/architecture.md "Space and
  // lifecycle"): a reclaim to a quota in bytes (when used > quota), and a rebuild of the
  // catalog from the peers (an index found damaged at start), which returns the running
  // rebuild's id when one runs. Unset: UNIMPLEMENTED.
  std::function<absl::StatusOr<std::string>(const api::ReclaimRequest&)> start_reclaim;
  std::function<absl::StatusOr<std::string>()> start_index_rebuild;
  // Collects garbage and delivers the queued deletions (engine/gc.h; the daemon's metrics count
  // it), as forget and delete do after changing the catalog (docs/cli.md "Local HTTP API").
  // Stops with CANCELLED once `cancel` is set. Unset: UNIMPLEMENTED.
  std::function<absl::StatusOr<api::GarbageCollected>(const std::atomic<bool>& cancel)>
      collect_garbage;

  // UNIMPLEMENTED "<what> is not available" when the engine context or the job manager is not
  // given (a test's handler that fakes the methods it uses).
  absl::Status Available(const std::string& what) const {
    if (engine == nullptr || jobs == nullptr) {
      return absl::UnimplementedError(what + " is not available");
    }
    return absl::OkStatus();
  }
  absl::Status IndexReady(const std::string& what) const {
    return index_ready ? index_ready(what) : absl::OkStatus();
  }
};

}  // namespace cairn::daemon
