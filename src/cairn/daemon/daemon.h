// Daemon: one running peer (`cairn peer`, design.md §1, §9), wiring the concrete parts
// together — the only place that names them (conventions.md "Dependency rules"):
//
//   index.db -> Database -> SqliteBlobRegistry -> DiskBlobStore(DIR/blobs, quota)
//                        -> SqliteCatalog
//   Membership(self) <- seeds, ping loop (every ping_interval)
//   PeerServer (gRPC) over the store and membership
//   ClusterPeerSet (gRPC clients) + catalog + owner keys -> engine::EngineContext
//   JobManager (backup/restore threads) + ApiServer (local HTTP API)
//
// Start() brings everything up in that order and writes ports resolved from port 0 back to
// cairn.toml before it returns; Shutdown() stops the API, cancels and joins jobs, stops the
// ping loop and the peer server, then closes the database.
//
// Thread-safety: the ApiHandler methods are called concurrently by the API server; Shutdown()
// may be called from any thread, once or more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "cairn/cluster/membership.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/cluster_peer_set.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/jobs.h"
#include "cairn/engine/backup.h"
#include "cairn/env/clock.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database.h"
#include "cairn/net/peer_server.h"
#include "cairn/store/blob_store.h"

namespace cairn::daemon {

struct DaemonOptions {
  // Clients for other peers (engine calls and pings); default: gRPC (net::NewGrpcPeerClient).
  ClientFactory client_factory;
  env::Clock* clock = env::RealClock::Default();
};

class Daemon : public ApiHandler {
 public:
  // Loads DIR/cairn.toml and the secrets, opens the index and the blob store, starts the
  // peer service, the API and the ping loop. Errors: NOT_FOUND/INVALID_ARGUMENT for the config,
  // FAILED_PRECONDITION for missing/garbled secrets or chunker params that differ from those
  // recorded at init, UNAVAILABLE when a port cannot be bound, INTERNAL for a broken index.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const std::string& dir,
                                                       DaemonOptions options = {});
  ~Daemon() override;

  // Clean shutdown (see file comment). Idempotent.
  void Shutdown();

  const Config& config() const { return config_; }
  // host:port of the peer service and of the API, as bound.
  const std::string& listen_address() const { return listen_address_; }
  std::string api_address() const;

  // ApiHandler.
  absl::StatusOr<nlohmann::json> GetStatus() override;
  absl::StatusOr<nlohmann::json> GetPeers() override;
  absl::StatusOr<nlohmann::json> GetSnapshots() override;
  absl::StatusOr<nlohmann::json> List(const std::string& snapshot, const std::string& path,
                                      bool recursive) override;
  absl::StatusOr<std::string> StartBackup(const BackupRequest& request) override;
  absl::StatusOr<std::string> StartRestore(const RestoreRequest& request) override;
  absl::StatusOr<nlohmann::json> GetJob(const std::string& id) override;
  absl::Status CancelJob(const std::string& id) override;

 private:
  Daemon() = default;
  absl::Status Init(const std::string& dir, DaemonOptions options);
  absl::Status CheckChunkerParams();
  void PingLoop();
  void PingOnce();

  Config config_;
  DaemonOptions options_;
  codec::Key owner_key_{};
  std::string api_token_;
  std::string listen_address_;

  // Declaration order is construction order; members are destroyed in reverse.
  std::unique_ptr<index::Database> db_;
  std::unique_ptr<store::BlobRegistry> registry_;
  std::unique_ptr<store::DiskBlobStore> store_;
  std::unique_ptr<index::Catalog> catalog_;
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<ClusterPeerSet> peer_set_;  // engine calls (retrying clients)
  std::unique_ptr<ClusterPeerSet> ping_set_;  // pings (one attempt, short deadline)
  std::unique_ptr<net::PeerServer> peer_server_;
  engine::EngineContext ctx_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<ApiServer> api_;

  std::mutex ping_mu_;
  std::condition_variable ping_cv_;
  bool stopping_ = false;
  std::thread ping_thread_;
  std::once_flag shutdown_once_;
};

}  // namespace cairn::daemon
