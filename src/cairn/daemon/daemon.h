// Daemon: one running peer (`cairn peer`), wiring the concrete parts together — the only place
// that names them (docs/architecture.md "Modules and their dependencies"):
//
//   index.db -> Database -> SqliteBlobRegistry -> DiskBlobStore(DIR/blobs, quota)
//                        -> SqliteCatalog
//   Scrubber(store, catalog meta) ([scrub] schedule and rate)
//   NodePins (catalog meta) + RpcAuth (DIR/secrets/cluster.key, node.id)
//   Membership(self) <- seeds, ping loop (every ping_interval), multicast announcements
//   PeerServer (gRPC, every call authenticated) over the store and membership
//   ClusterPeerSet (gRPC clients) + catalog + owner keys -> engine::EngineContext
//   JobManager (backup/restore threads)
//   SourceScheduler ([[source]]: inotify watchers -> debouncer -> backup jobs)
//   ApiContext -> the API's features (StatusApi, SnapshotsApi, VersionsApi, JobsApi,
//   LifecycleApi, SourcesApi: api_*.h) + ApiServer (local HTTP API; their routes, metrics,
//   health and the event bus through this class's ApiHandler methods)
//
// Start() brings everything up in that order and writes ports resolved from port 0 back to
// cairn.toml before it returns; Shutdown() stops the API, cancels and joins jobs, stops the
// ping loop and the peer server, then closes the database.
//
// Thread-safety: the ApiHandler methods and the features are called concurrently by the API
// server; Shutdown() may be called from any thread, once or more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "cairn/cluster/cert_pins.h"
#include "cairn/cluster/discovery.h"
#include "cairn/cluster/membership.h"
#include "cairn/cluster/node_pins.h"
#include "cairn/cluster/rpc_auth.h"
#include "cairn/cluster/tls_identity.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/api_archives.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_jobs.h"
#include "cairn/daemon/api_lifecycle.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/api_snapshots.h"
#include "cairn/daemon/api_sources.h"
#include "cairn/daemon/api_status.h"
#include "cairn/daemon/api_versions.h"
#include "cairn/daemon/archive_mount.h"
#include "cairn/daemon/cluster_peer_set.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/disk_watch.h"
#include "cairn/daemon/events.h"
#include "cairn/daemon/index_open.h"
#include "cairn/daemon/jobs.h"
#include "cairn/daemon/metrics.h"
#include "cairn/daemon/recover.h"
#include "cairn/daemon/repair_schedule.h"
#include "cairn/daemon/scrubber.h"
#include "cairn/daemon/sources.h"
#include "cairn/engine/backup.h"
#include "cairn/env/clock.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database.h"
#include "cairn/net/peer_server.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/layout_migration.h"
#include "cairn/store/segment_blob_store.h"

namespace cairn::daemon {

struct DaemonOptions {
  // Clients for other peers (engine calls and pings); default: gRPC (net::NewGrpcPeerClient).
  ClientFactory client_factory;
  env::Clock* clock = env::RealClock::Default();
  // Called once (from any thread) when this peer must stop because another node holds its peer
  // id (ALREADY_EXISTS, e.g. "peer id 3 belongs to another node"); `cairn peer` then exits 1.
  // The daemon itself keeps running until Shutdown(); fatal_status() reports the reason.
  std::function<void(const absl::Status&)> on_fatal;
  // Check the index at start and rebuild it from the peers when it was lost or damaged
  // (docs/operations.md "When the index is damaged"). `cairn recover` turns it off: it rebuilds
  // the index itself.
  bool check_index = true;
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
  // OK, or why this peer must stop (see DaemonOptions::on_fatal).
  absl::Status fatal_status() const;

  // ApiHandler.
  // GET /v1/status (ApiContext::status): quota, usage, the catalog's numbers, scrub, index,
  // storage layout, bucket and lifecycle state.
  absl::StatusOr<nlohmann::json> GetStatus();
  // The API's features (api_status.h, api_snapshots.h, api_versions.h, api_jobs.h,
  // api_lifecycle.h, api_sources.h), against api_context_.
  std::vector<ApiRoute> Routes() override;
  // Those features, for callers in the process (tests) that use them without HTTP.
  StatusApi& status_api() { return *status_api_; }
  SnapshotsApi& snapshots_api() { return *snapshots_api_; }
  JobsApi& jobs_api() { return *jobs_api_; }
  LifecycleApi& lifecycle_api() { return *lifecycle_api_; }
  SourcesApi& sources_api() { return *sources_api_; }
  // GET /metrics (daemon/metrics.h, docs/operations.md "Monitoring").
  absl::StatusOr<std::string> GetMetrics() override;
  // GET /v1/health (api::Health). Not ready while this peer must
  // stop (fatal_status) or its index is being rebuilt; a failed rebuild is listed in "problems"
  // only. "snapshots" (what each snapshot survives now, docs/cli.md "Local HTTP API") is the
  // last result of SnapshotHealthLoop, never computed per request.
  api::Health GetHealth() override;
  // GET /v1/events: "peer" events as LogPeerStateChanges sees changes ({"peer_id","host_id",
  // "address","state":"alive|suspect|dead","was": the previous state, null when first seen})
  // and "job" events as jobs start and end (JobManager).
  EventBus* Events() override { return &events_; }
  // host:port of the [metrics] listener as bound; "" when it is off.
  std::string metrics_address() const;

  // Disaster recovery (daemon/recover.cc; `cairn recover` runs it on a fresh directory made
  // from a recovery key): waits until peers answer (options.wait_for_peers, then until the set
  // of live peers settles), then rebuilds the index from them (engine::RecoverIndex). Errors:
  // UNAVAILABLE when no peer answered in time (the message says whether the peers refused the
  // cluster key), ALREADY_EXISTS when a member has this peer id pinned to another node, and
  // engine::RecoverIndex's (e.g. FAILED_PRECONDITION for a key that decrypts no snapshot).
  absl::StatusOr<engine::RecoverReport> RecoverIndex(const RecoveryOptions& options,
                                                     engine::RecoverProgress* progress,
                                                     const std::atomic<bool>* cancel = nullptr);

 private:
  Daemon() = default;
  absl::Status Init(const std::string& dir, DaemonOptions options);
  absl::Status CheckChunkerParams();
  // The jobs the peer also starts by itself (ApiContext::start_backup, start_repair): a
  // backup (sources) and a repair of own backups (RepairLoop). A repair while one runs returns
  // that job's id.
  absl::StatusOr<std::string> StartBackup(const api::BackupRequest& request);
  absl::StatusOr<std::string> StartRepair(const api::CheckRequest& request);
  // Likewise (ApiContext::start_reclaim; daemon/lifecycle.cc): lowers the quota to
  // request.quota bytes and moves the blobs over it to other peers (engine::Evacuate), then
  // writes the quota to cairn.toml; the maintenance loop starts one when used > quota.
  absl::StatusOr<std::string> StartReclaim(const api::ReclaimRequest& request);
  // When the index is damaged (ApiContext::start_index_rebuild; daemon/index_rebuild.cc,
  // docs/operations.md "When the index is damaged"): starts a job that rebuilds this peer's
  // catalog from the peers (RecoverIndex, waiting up to 5 minutes for them) and returns its id
  // — the running one's when a rebuild already runs. The peer starts one by itself when it
  // found index.db missing, empty or damaged at start, or found it without snapshots while a
  // peer holds blobs of this owner.
  absl::StatusOr<std::string> StartIndexRebuild();
  // The TLS check of the certificate a peer server at `address` presented (net/tls.h): OK when
  // it is the one pinned to a peer known at that address, or when no peer known there has a
  // pin yet (first contact); else PERMISSION_DENIED naming the peer id and both fingerprints.
  absl::Status CheckServerCert(const std::string& address, const std::string& fingerprint) const;
  void PingLoop();
  // Repairs own backups every repair_interval, whenever a peer becomes dead and after a check
  // that found chunks below target, as repair_schedule_ allows.
  void RepairLoop();
  // The alive storage peers other than this one (membership).
  std::set<PeerId> AliveStoragePeers();
  // ---- what each snapshot survives now (GET /v1/health "snapshots"; docs/dashboard.md
  // "Pages") ----
  // Runs engine::ComputeSnapshotSurvival at start, every 5 minutes, and 5 s after an event (a
  // job started or ended, a peer changed state) or a change of the alive peers; not while a
  // job that moves data runs (DataJobRunning) or the index is being rebuilt.
  void SnapshotHealthLoop();
  void RefreshSnapshotHealth();
  // True while a backup, restore, repair, forget, delete or reclaim job runs.
  bool DataJobRunning();
  // Bytes per second GET /v1/health divides rebuild bytes by, and where it was measured:
  // "repair" (repairs since start that sent bytes), else "backup"/"restore" (of the kept
  // finished jobs, the one that moved the most bytes), else nullopt.
  std::pair<std::optional<double>, std::string> RebuildRate();
  void PingOnce();
  // Logs each peer whose membership state changed since the last call (joined, suspect, dead,
  // alive again; docs/operations.md "Monitoring"). Ping thread only.
  void LogPeerStateChanges();
  // Logs once when the disk holding the store becomes full and once when it is not any more.
  void WatchDisk(const store::StoreStats& stats);
  // Delivers queued deletions and BlobMoved notices (every few seconds while any are queued,
  // and at once when a peer comes back), places extra copies after backups, and starts a
  // reclaim when used > quota (daemon/lifecycle.cc).
  void MaintenanceLoop();
  // Opens store_ in the layout [storage] asks for (docs/operations.md "Storage").
  absl::Status OpenStore(const std::string& dir);
  // Forgets the snapshots `policy` does not keep among those with this snapshot's host and
  // paths (config [retention], or the backup's source's keep_*), then collects garbage.
  // Returns what was done (dry_run false, nothing kept listed).
  absl::StatusOr<api::ForgetAnswer> ApplyRetentionAfterBackup(const index::SnapshotRecord& latest,
                                                              const engine::RetentionPolicy& policy,
                                                              const std::atomic<bool>& cancel);
  // Collects garbage and delivers the deletions (ApiContext::collect_garbage).
  absl::StatusOr<api::GarbageCollected> CollectAndDeliver(const std::atomic<bool>& cancel);
  // The lifecycle fields of GET /v1/status: extra copies and usage by owner on this storage
  // peer, notices waiting, and `home` (absent when the catalog cannot be read).
  void FillLifecycleStatus(api::PeerStatus* status);
  void StartDiscovery(const std::string& listen_host);
  // Makes sources_ and starts watching and scheduling config_.sources (daemon/sources.cc).
  void StartSources();
  void Fatal(const absl::Status& status);
  // ---- index health (daemon/index_rebuild.cc) ----
  // At start: logs what OpenIndex found; starts a rebuild when index.db was lost or damaged,
  // else (catalog without snapshots) asks the live peers whether they hold blobs of this owner.
  void IndexLoop();
  // Starts the rebuild job (caller logged why); its id.
  absl::StatusOr<std::string> StartIndexRebuildJob(const std::string& why);
  // UNAVAILABLE while the catalog is being rebuilt from the peers (what the catalog says is
  // incomplete until then), naming the problem; OK otherwise. `what` names the refused request.
  absl::Status IndexReady(const std::string& what) const;
  api::IndexStatus GetIndexStatus() const;  // GET /v1/status "index"

  Config config_;
  DaemonOptions options_;
  codec::Key owner_key_{};
  codec::Key cluster_key_{};
  std::string node_id_;
  std::string api_token_;
  std::string listen_address_;
  std::unique_ptr<Metrics> metrics_;  // made first, destroyed last: every part reports to it
  std::map<PeerId, cluster::PeerState> logged_peer_states_;  // LogPeerStateChanges

  // Declaration order is construction order; members are destroyed in reverse.
  std::unique_ptr<index::Database> db_;
  IndexOpenReport index_open_;  // what opening index.db found (daemon/index_open.h)
  std::unique_ptr<store::BlobRegistry> registry_;
  // Storage ([storage] layout, docs/operations.md "Storage"): a SegmentBlobStore, a
  // DiskBlobStore (one file per blob), or both behind a MigratingBlobStore while a directory made
  // with files is moved into segments by migrator_ on migration_thread_. store_ is the one that
  // serves.
  std::unique_ptr<store::SegmentRegistry> segment_registry_;
  // [s3] rate: paces the bucket's uploads (before bucket_, which uses it); null = unlimited.
  std::unique_ptr<env::RateLimiter> bucket_limiter_;
  // [storage] bucket: where sealed segments go (before segment_store_, which uses it).
  std::unique_ptr<store::s3::ObjectStore> bucket_;
  std::string last_upload_error_;  // maintenance loop: logged once until it changes
  std::unique_ptr<store::DiskBlobStore> file_store_;
  std::unique_ptr<store::SegmentBlobStore> segment_store_;
  std::unique_ptr<store::MigratingBlobStore> migrating_store_;
  std::unique_ptr<store::FileLayoutMigrator> migrator_;
  store::BlobStore* store_ = nullptr;
  store::SegmentBlobStore* segments_ = nullptr;  // segment_store_.get(): null with files only
  std::unique_ptr<index::Catalog> catalog_;
  std::unique_ptr<store::MovedOutbox> outbox_;    // BlobMoved notices not yet delivered
  std::shared_mutex gc_lock_;                     // engine/gc.h: the GC safety rule
  std::unique_ptr<Scrubber> scrubber_;            // [scrub]: re-hashes store_'s blobs
  std::unique_ptr<cluster::NodePins> pins_;       // used by membership_; saved in catalog_ meta
  std::unique_ptr<cluster::CertPins> cert_pins_;  // likewise, peer id -> TLS certificate
  std::shared_ptr<cluster::RpcAuth> rpc_auth_;
  cluster::TlsIdentity tls_identity_;  // DIR/secrets/tls.key, tls.crt
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<ClusterPeerSet> peer_set_;  // engine calls (retrying clients)
  std::unique_ptr<ClusterPeerSet> ping_set_;  // pings (one attempt, short deadline)
  std::unique_ptr<net::PeerServer> peer_server_;
  std::unique_ptr<cluster::MulticastDiscovery> discovery_;  // [discovery] multicast
  engine::EngineContext ctx_;
  EventBus events_;  // before jobs_ and api_, which use it
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<SourceScheduler> sources_;  // [[source]]: watch, debounce, schedule backups
  ApiContext api_context_;  // what the API's features are given (filled before api_ starts)
  std::unique_ptr<StatusApi> status_api_;
  std::unique_ptr<SnapshotsApi> snapshots_api_;
  std::unique_ptr<VersionsApi> versions_api_;
  std::unique_ptr<JobsApi> jobs_api_;
  std::unique_ptr<LifecycleApi> lifecycle_api_;
  std::unique_ptr<ArchiveMounts> archive_mounts_;  // archives served as FUSE file systems
  std::unique_ptr<ArchivesApi> archives_api_;
  std::unique_ptr<SourcesApi> sources_api_;  // keeps the sources as added and removed since
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<ApiServer> metrics_api_;  // [metrics] listen; null when off

  std::mutex ping_mu_;
  std::condition_variable ping_cv_;
  bool stopping_ = false;
  std::set<std::string> unauthenticated_targets_;  // warned about once; guarded by ping_mu_
  std::set<std::string> skew_warned_targets_;  // signed clock refusals said; guarded by ping_mu_
  // Addresses whose last Ping failed on a TLS certificate pin, and why; guarded by ping_mu_.
  std::map<std::string, std::string> refused_certs_;
  DiskWatch disk_watch_;  // guarded by ping_mu_
  std::thread ping_thread_;
  std::thread repair_thread_;
  std::thread maintenance_thread_;
  std::thread migration_thread_;               // runs migrator_ (file layout -> segments)
  std::thread index_thread_;                   // IndexLoop
  std::atomic<bool> backup_requested_{false};  // a backup was asked for since start
  // The catalog's health as `cairn status` shows it: "ok", "checking" (asking the peers
  // whether they hold blobs of an owner whose catalog is empty), "rebuilding", "rebuilt",
  // "failed" (the last rebuild failed: index_error_ says why).
  mutable std::mutex index_mu_;
  std::string index_state_ = "ok";                        // guarded by index_mu_
  std::string index_problem_;                             // guarded by index_mu_
  std::string index_job_;                                 // guarded by index_mu_
  std::string index_error_;                               // guarded by index_mu_
  std::optional<api::IndexRebuildSummary> index_result_;  // guarded by index_mu_
  std::atomic<bool> maintenance_cancel_{false};
  std::atomic<bool> extras_requested_{true};          // place extra copies soon (after a backup)
  std::atomic<bool> extras_cancel_{false};            // a data job started: placement yields
  std::atomic<int64_t> last_job_event_ns_{0};         // steady clock, the last job start or end
  std::atomic<bool> delivery_requested_{false};       // deliver deletions/notices soon
  std::atomic<bool> repair_requested_{false};         // a check found damage: repair soon
  std::unique_ptr<RepairSchedule> repair_schedule_;   // when RepairLoop starts a repair
  std::atomic<bool> snapshot_health_cancel_{false};   // stops a computation under way
  std::atomic<bool> snapshot_health_closing_{false};  // Shutdown began
  std::thread snapshot_health_thread_;                // SnapshotHealthLoop
  mutable std::mutex snapshot_health_mu_;
  // The measured repair rate (guarded): bytes repairs sent since start and the time those
  // repairs took (repairs that sent nothing are not counted).
  uint64_t repair_rate_bytes_ = 0;
  uint64_t repair_rate_ns_ = 0;
  nlohmann::json snapshot_health_;      // guarded: the last "snapshots" (no rebuild_seconds)
  int64_t snapshot_health_at_ns_ = 0;   // guarded: when it was computed (Unix ns); 0 = never
  double snapshot_health_seconds_ = 0;  // guarded: how long that took
  std::string snapshot_health_error_;   // guarded: why the last computation failed
  double fallback_rate_ = 0;            // guarded: backup/restore bytes per second; 0 = none
  std::string fallback_rate_source_;    // guarded: "backup" or "restore"
  std::once_flag shutdown_once_;
  mutable std::mutex fatal_mu_;
  absl::Status fatal_;
};

// A snapshot as the API shows it (GET /v1/snapshots); shared by the daemon's sources.
nlohmann::json SnapshotJson(const index::SnapshotRecord& record);

}  // namespace cairn::daemon
