#include "cairn/daemon/daemon.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/cluster/discovery.h"
#include "cairn/daemon/bucket_status.h"
#include "cairn/daemon/peer_dir.h"
#include "cairn/daemon/version.h"
#include "cairn/engine/check.h"
#include "cairn/engine/reclaim.h"
#include "cairn/engine/snapshot_health.h"
#include "cairn/index/sqlite_blob_registry.h"
#include "cairn/index/sqlite_moved_outbox.h"
#include "cairn/index/sqlite_segment_registry.h"
#include "cairn/net/batching_peer_client.h"
#include "cairn/store/s3/s3_object_store.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

std::chrono::seconds CeilSeconds(std::chrono::milliseconds ms) {
  return std::chrono::seconds((ms.count() + 999) / 1000);
}

// Asks the kernel for a free TCP port on `host` (bind to port 0, read it back, close).
// Used when `listen` has port 0: the peer's advertised address must be known before the peer
// service starts (Membership takes it at construction).
absl::StatusOr<int> PickFreePort(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), "0", &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve listen host '", host, "': ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError(absl::StrCat("cannot bind to ", host));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus(errno, absl::StrCat("bind ", host));
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int port = -1;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (ss.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      if (ss.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
    ::close(fd);
    if (port > 0) {
      ::freeaddrinfo(res);
      return port;
    }
  }
  ::freeaddrinfo(res);
  return absl::UnavailableError(last.message());
}

std::string LocalHostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

Json BackupProgressJson(const engine::BackupProgress& p) {
  api::BackupProgressInfo r;
  r.transfer = {p.files_total.load(), p.bytes_total.load(), p.scan_done.load(), p.files_done.load(),
                p.bytes_done.load()};
  r.bytes_read = p.bytes_read.load();
  r.new_bytes = p.new_bytes.load();
  r.sent_bytes = p.sent_bytes.load();
  r.chunks = p.chunks.load();
  r.new_chunks = p.new_chunks.load();
  r.files_read = p.files_read.load();
  r.files_unchanged = p.files_unchanged.load();
  r.files_changed_during_read = p.files_changed_during_read.load();
  return api::ToJson(r);
}

api::BackupAnswer BackupAnswerOf(const engine::BackupResult& r) {
  const format::SnapshotStats& st = r.snapshot.stats;
  api::BackupAnswer a;
  a.snapshot_id = r.snapshot_id.Hex();
  a.short_id = r.snapshot_id.ShortHex();
  a.files = st.files;
  a.files_read = r.files_read;
  a.files_unchanged = r.files_unchanged;
  a.rehash = r.rehash;
  a.files_changed_same_metadata = r.files_changed_same_metadata;
  a.files_reread = r.files_reread;
  a.files_changed_during_read = r.files_changed_during_read;
  a.directories = st.directories;
  a.bytes = st.bytes;
  a.bytes_read = r.bytes_read;
  a.new_bytes = st.new_bytes;
  a.sent_bytes = st.sent_bytes;
  a.chunks = st.chunks;
  a.new_chunks = st.new_chunks;
  a.duration_seconds = r.seconds;
  a.copies = r.snapshot.copies;
  if (r.snapshot.ec_k > 0) a.ec = absl::StrCat(r.snapshot.ec_k, "+", r.snapshot.ec_m);
  a.offsite = r.offsite;
  a.warnings = r.warnings;
  a.errors = r.errors;
  a.chunks_below_target = r.chunks_below_target;
  if (!r.redundancy_warning.empty()) a.redundancy_warning = r.redundancy_warning;
  a.degraded = r.degraded();
  return a;
}

// Each connection to the peer port takes a file descriptor, idle or not; the soft limit is
// often 1024. Raise it to the hard limit, so that a thousand held connections do not run the
// peer out of descriptors (docs/security.md "What an unauthenticated client can do").
void RaiseOpenFileLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t was = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    spdlog::debug("open file limit raised from {} to {}", was, limit.rlim_cur);
  }
}

}  // namespace

Json SnapshotJson(const index::SnapshotRecord& r) { return api::ToJson(api::SnapshotInfoOf(r)); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const std::string& dir,
                                                      DaemonOptions options) {
  std::unique_ptr<Daemon> d(new Daemon());
  absl::Status st = d->Init(dir, std::move(options));
  if (!st.ok()) {
    d->Shutdown();
    return st;
  }
  return d;
}

absl::Status Daemon::OpenStore(const std::string& dir) {
  auto observer = [](const BlobKey& key, store::ScrubOutcome outcome, const std::string& reason) {
    spdlog::warn("blob {} {}: {}", key.DebugString(),
                 outcome == store::ScrubOutcome::kQuarantined
                     ? "is corrupt and was quarantined"
                     : "is lost (its file or segment is missing), record dropped",
                 api::SanitizeUtf8(reason));
  };
  if (config_.storage_layout == "files") {
    CAIRN_ASSIGN_OR_RETURN(file_store_, store::DiskBlobStore::Open(BlobsDir(dir), config_.quota,
                                                                   registry_.get(), observer));
    store_ = file_store_.get();
    spdlog::info("storage: one file per blob in {} ([storage] layout = \"files\")", BlobsDir(dir));
    return absl::OkStatus();
  }
  // Segments; a directory that still holds blobs as files (made before segments) is migrated
  // in the background while both layouts serve (store/layout_migration.h).
  CAIRN_ASSIGN_OR_RETURN(bool migrate, store::NeedsLayoutMigration(BlobsDir(dir), registry_.get()));
  segment_registry_ = index::NewSqliteSegmentRegistry(db_.get());
  store::SegmentStoreOptions options;
  options.segment_target_bytes = config_.segment_size;
  options.compact_below_live_fraction = config_.compact_below;
  options.compact_bytes_per_second = config_.compact_rate;
  options.disk_reserve_bytes = config_.disk_reserve;
  options.observer = observer;
  if (!config_.storage_bucket.empty()) {
    // docs/operations.md "An off-site copy in S3-compatible storage".
    store::s3::S3Options so;
    CAIRN_ASSIGN_OR_RETURN(
        so.location,
        store::s3::ParseS3Url(config_.storage_bucket, config_.s3_endpoint, config_.s3_region));
    CAIRN_ASSIGN_OR_RETURN(
        so.credentials,
        Annotate(store::s3::LoadCredentials(config_.s3_credentials_file, config_.s3_profile,
                                            store::s3::ProcessEnv()),
                 "[storage] bucket " + config_.storage_bucket));
    so.max_parallel_requests = config_.s3_max_requests;
    if (config_.s3_rate > 0) {
      // A burst of one part: a part's body waits for the bucket as a whole.
      bucket_limiter_ = std::make_unique<env::RateLimiter>(
          config_.s3_rate, std::max<uint64_t>(config_.s3_rate, so.part_size), options_.clock);
      so.upload_limiter = bucket_limiter_.get();
    }
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<store::s3::S3ObjectStore> s3,
                           store::s3::S3ObjectStore::Create(std::move(so)));
    bucket_ = std::move(s3);
    options.bucket = bucket_.get();
    options.keep_local_segments = config_.storage_keep_local;
  }
  CAIRN_ASSIGN_OR_RETURN(segment_store_,
                         store::SegmentBlobStore::Open(dir, config_.quota, segment_registry_.get(),
                                                       options, env::PosixFileSystem()));
  segments_ = segment_store_.get();
  const store::SegmentRecovery r = segment_store_->recovery();
  if (r.registry_rebuilt) {
    const store::StoreStats st = segment_store_->Stats();
    spdlog::warn(
        "storage: the registry of held blobs was empty while {} segment files and {} segments "
        "in the bucket exist: rebuilt it from the segments: {} blobs held ({}) from {} intact "
        "records, {} bytes of torn tail cut, {} bytes after damaged records and {} segments "
        "with a damaged header (or index object) left in place",
        r.segments, r.bucket_segments, st.blobs, FormatSize(st.live_bytes), r.replayed_records,
        r.torn_tail_bytes, r.unregistered_tail_bytes, r.unreadable_segments);
  } else if (r.replayed_records > 0 || r.torn_tail_bytes > 0 || r.removed_segments > 0) {
    spdlog::warn(
        "storage: recovered {} segments: {} records registered again, {} bytes of torn tail cut, "
        "{} unfinished or retired segment files removed",
        r.segments, r.replayed_records, r.torn_tail_bytes, r.removed_segments);
  }
  spdlog::info("storage: {} segments in {}/segments", r.segments, dir);
  if (bucket_ != nullptr) {
    spdlog::info(
        "storage: sealed segments go to {} ({} found there, {} read from it, {} stale objects "
        "deleted{})",
        config_.storage_bucket, r.bucket_segments, r.remote_segments, r.stale_objects,
        r.upload_error.empty() ? "" : "; upload failed: " + r.upload_error);
  }
  if (!migrate) {
    store_ = segment_store_.get();
    return absl::OkStatus();
  }
  CAIRN_ASSIGN_OR_RETURN(file_store_, store::DiskBlobStore::Open(BlobsDir(dir), config_.quota,
                                                                 registry_.get(), observer));
  CAIRN_ASSIGN_OR_RETURN(
      migrating_store_,
      store::MigratingBlobStore::Create(segment_store_.get(), file_store_.get(), config_.quota));
  store::LayoutMigrationOptions mo;
  mo.bytes_per_second = config_.compact_rate > 0 ? config_.compact_rate : 0;
  CAIRN_ASSIGN_OR_RETURN(
      migrator_, store::FileLayoutMigrator::Create(BlobsDir(dir), migrating_store_.get(), mo));
  store_ = migrating_store_.get();
  const store::LayoutMigrationProgress p = migrator_->Progress();
  spdlog::info("storage: moving {} blobs ({}) from {} into segments in the background",
               p.remaining_blobs, FormatSize(p.remaining_bytes), BlobsDir(dir));
  return absl::OkStatus();
}

absl::Status Daemon::Init(const std::string& dir, DaemonOptions options) {
  options_ = std::move(options);
  if (options_.clock == nullptr) options_.clock = env::RealClock::Default();
  CAIRN_ASSIGN_OR_RETURN(config_, LoadConfig(dir));
  metrics_ = std::make_unique<Metrics>(CairnVersion(), GitCommit());
  CAIRN_ASSIGN_OR_RETURN(owner_key_, LoadOwnerKey(dir));
  CAIRN_ASSIGN_OR_RETURN(api_token_, LoadApiToken(dir));
  CAIRN_ASSIGN_OR_RETURN(cluster_key_, LoadClusterKey(dir));
  CAIRN_ASSIGN_OR_RETURN(node_id_, LoadOrCreateNodeId(dir));
  // Made on first start for directories from before TLS (docs/security.md "TLS between peers").
  CAIRN_ASSIGN_OR_RETURN(
      tls_identity_, cluster::LoadOrCreateTlsIdentity(TlsKeyPath(dir), TlsCertPath(dir), owner_key_,
                                                      config_.peer_id));

  // A missing, empty or damaged index.db is replaced by a new one (the damaged file kept
  // aside); the storage registry is then rebuilt from the segments (OpenStore) and the catalog
  // from the peers (IndexLoop). docs/operations.md "When the index is damaged".
  CAIRN_ASSIGN_OR_RETURN(db_, OpenIndex(dir, &index_open_));
  if (!index_open_.problem.empty()) {
    spdlog::error("index: {}{}; started with a new, empty {}",
                  api::SanitizeUtf8(index_open_.problem),
                  index_open_.kept_aside.empty()
                      ? ""
                      : absl::StrCat("; the damaged file is kept as ", index_open_.kept_aside),
                  IndexPath(dir));
  }
  registry_ = index::NewSqliteBlobRegistry(db_.get());
  CAIRN_RETURN_IF_ERROR(OpenStore(dir));
  catalog_ = index::NewSqliteCatalog(db_.get());
  outbox_ = index::NewSqliteMovedOutbox(db_.get());
  CAIRN_RETURN_IF_ERROR(CheckChunkerParams());
  CAIRN_ASSIGN_OR_RETURN(std::vector<index::SnapshotRecord> known, catalog_->ListSnapshots());
  const bool check_index = options_.check_index && (!index_open_.problem.empty() || known.empty());
  if (check_index && !index_open_.problem.empty()) {
    std::lock_guard<std::mutex> lock(index_mu_);
    index_state_ = "rebuilding";
    index_problem_ = index_open_.problem;
  }
  // What the owner side needs before the peer service can take a BlobMoved; peers come later.
  ctx_.owner = config_.peer_id;
  ctx_.keys = codec::DeriveOwnerKeys(owner_key_);
  ctx_.chunker = config_.chunker;
  ctx_.catalog = catalog_.get();
  ctx_.clock = options_.clock;
  ctx_.spread = placement::Spread::kHost;
  ctx_.site = config_.site;
  ctx_.gc_lock = &gc_lock_;
  ScrubberOptions scrub_options = ScrubberOptionsFrom(config_);
  scrub_options.on_checked = [this](const store::ScrubCounts& d) { metrics_->RecordScrub(d); };
  scrub_options.on_pass_done = [this] { metrics_->RecordScrubPassDone(); };
  CAIRN_ASSIGN_OR_RETURN(scrubber_, Scrubber::Create(store_, catalog_.get(), scrub_options));

  // The advertised address must be known before the membership exists: resolve port 0 first.
  CAIRN_ASSIGN_OR_RETURN(auto listen_hp, SplitHostPort(config_.listen));
  const std::string& listen_host = listen_hp.first;
  int listen_port = listen_hp.second;
  bool resolve_port = listen_port == 0;
  store::StoreStats stats = store_->Stats();
  // Peer id -> node id pins (first contact), kept in the index so that they survive restarts.
  pins_ = std::make_unique<cluster::NodePins>([this](const std::map<PeerId, std::string>& all) {
    return catalog_->SetMeta(kMetaNodePins, cluster::NodePins::Serialize(all));
  });
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> saved_pins, catalog_->GetMeta(kMetaNodePins));
  if (saved_pins) pins_->Load(cluster::NodePins::Parse(*saved_pins));
  // Peer id -> TLS certificate pins, likewise (docs/security.md "TLS between peers").
  cert_pins_ =
      std::make_unique<cluster::CertPins>([this](const std::map<PeerId, std::string>& all) {
        return catalog_->SetMeta(kMetaCertPins, cluster::CertPins::Serialize(all));
      });
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> saved_cert_pins,
                         catalog_->GetMeta(kMetaCertPins));
  if (saved_cert_pins) cert_pins_->Load(cluster::CertPins::Parse(*saved_cert_pins));
  // TLS for every peer connection: the server checks callers' certificates against cert_pins_
  // (net/peer_server.h); clients check the server's against the pin of the peer at the address
  // they dial (CheckServerCert).
  auto tls = std::make_shared<net::TlsOptions>();
  tls->cert_pem = tls_identity_.cert_pem;
  tls->key_pem = tls_identity_.key_pem;
  tls->check_server = [this](const std::string& address, const std::string& fingerprint) {
    return CheckServerCert(address, fingerprint);
  };
  rpc_auth_ = std::make_shared<cluster::RpcAuth>(
      cluster_key_, cluster::NodeIdentity{config_.peer_id, node_id_}, options_.clock);
  cluster::MembershipOptions mopts;
  mopts.suspect_after = CeilSeconds(config_.suspect_after);
  mopts.dead_after = CeilSeconds(config_.dead_after);
  mopts.pins = pins_.get();
  mopts.cert_pins = cert_pins_.get();
  RaiseOpenFileLimit();
  absl::Status bind_error;
  for (int attempt = 0; attempt < (resolve_port ? 5 : 1); ++attempt) {
    if (resolve_port) {
      CAIRN_ASSIGN_OR_RETURN(listen_port, PickFreePort(listen_host));
    }
    listen_address_ = JoinHostPort(listen_host, listen_port);
    cluster::PeerInfo self;
    self.id = config_.peer_id;
    self.host_id = config_.host_id;
    self.site = config_.site;
    self.address = listen_address_;
    self.quota = stats.quota;
    self.used = stats.used;
    self.version = CairnVersion();
    self.incarnation = static_cast<uint64_t>(options_.clock->NowNanos());
    self.node_id = node_id_;
    self.cert_fingerprint = tls_identity_.fingerprint;
    membership_ = std::make_unique<cluster::Membership>(self, mopts, options_.clock);
    net::PeerServerSecurity security;
    security.auth = rpc_auth_;
    security.tls = tls;
    security.on_conflict = [this](const absl::Status& s) { Fatal(s); };
    security.on_call = [this](const char* method, int code, std::chrono::nanoseconds elapsed) {
      metrics_->RecordRpc(method, code, std::chrono::duration<double>(elapsed).count());
    };
    security.on_blobs_moved = [this](PeerId from, const std::vector<net::MovedBlob>& moves) {
      absl::Status applied = engine::ApplyBlobMoves(ctx_, from, moves);
      if (applied.ok()) {
        spdlog::info("peer {} moved {} of this peer's blobs to other peers (reclaim)", from,
                     moves.size());
      }
      return applied;
    };
    auto server =
        net::PeerServer::Start(listen_address_, store_, membership_.get(), std::move(security));
    if (server.ok()) {
      peer_server_ = *std::move(server);
      bind_error = absl::OkStatus();
      break;
    }
    bind_error =
        Annotate(server.status(), absl::StrCat("start the peer service on ", listen_address_));
    membership_.reset();
  }
  CAIRN_RETURN_IF_ERROR(bind_error);
  for (const std::string& seed : config_.seeds) {
    if (seed != listen_address_) membership_->AddSeed(seed);
  }

  ClientFactory engine_factory = options_.client_factory;
  ClientFactory ping_factory = options_.client_factory;
  if (!engine_factory) {
    net::ClientOptions engine_options;
    engine_options.auth = rpc_auth_;
    engine_options.tls = tls;
    // The engines' concurrent single-blob calls to one peer travel in PutBlobs/GetBlobs
    // batches (docs/architecture.md "Data path").
    // Batches of at most 2 MiB, 16 MiB of puts in flight per peer: a batch is serialized once
    // into the buffer gRPC sends (net/put_blobs_wire.h), so this bounds the home peer's memory.
    net::BatchingOptions batching;
    batching.max_batch_bytes = size_t{2} << 20;
    batching.max_bytes_in_flight = size_t{16} << 20;
    engine_factory = [engine_options, batching](const std::string& address) {
      return std::make_shared<net::BatchingPeerClient>(
          net::NewGrpcPeerClient(address, engine_options), batching);
    };
  }
  if (!ping_factory) {
    net::ClientOptions ping_options;
    ping_options.auth = rpc_auth_;
    ping_options.tls = tls;
    auto deadline = std::clamp(config_.ping_interval, std::chrono::milliseconds(500),
                               std::chrono::milliseconds(3000));
    ping_options.ping_deadline = deadline;
    ping_options.max_attempts = 1;
    ping_factory = [ping_options](const std::string& address) {
      return net::NewGrpcPeerClient(address, ping_options);
    };
  }
  peer_set_ = std::make_unique<ClusterPeerSet>(membership_.get(), engine_factory);
  ping_set_ = std::make_unique<ClusterPeerSet>(membership_.get(), ping_factory);

  ctx_.peers = peer_set_.get();
  jobs_ = std::make_unique<JobManager>(/*keep_finished=*/100, [this](const Json& e) {
    // A job that moves data stops a snapshot health computation under way (it starts again
    // after the job: SnapshotHealthLoop), so that the two do not share the CPU and memory.
    const std::string kind = e.value("kind", "");
    if (e.value("state", "") == "running" &&
        (kind == "backup" || kind == "restore" || kind == "repair" || kind == "forget" ||
         kind == "delete" || kind == "reclaim")) {
      snapshot_health_cancel_ = true;
      extras_cancel_ = true;
    }
    last_job_event_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
    events_.Publish("job", e);
  });
  RepairScheduleOptions repair_schedule;
  repair_schedule.interval = config_.repair_interval;
  repair_schedule.clock = ctx_.clock != nullptr ? ctx_.clock : env::RealClock::Default();
  repair_schedule_ = std::make_unique<RepairSchedule>(repair_schedule);

  StartSources();  // before the API, which serves /v1/sources
  api_context_.engine = &ctx_;
  api_context_.jobs = jobs_.get();
  api_context_.config = &config_;
  api_context_.sources = sources_.get();
  api_context_.index_ready = [this](const std::string& what) { return IndexReady(what); };
  api_context_.membership = membership_.get();
  api_context_.store = store_;
  api_context_.status = [this] { return GetStatus(); };
  api_context_.start_backup = [this](const api::BackupRequest& r) { return StartBackup(r); };
  api_context_.start_repair = [this](const api::CheckRequest& r) { return StartRepair(r); };
  api_context_.request_repair = [this] { repair_requested_ = true; };
  api_context_.start_reclaim = [this](const api::ReclaimRequest& r) { return StartReclaim(r); };
  api_context_.start_index_rebuild = [this] { return StartIndexRebuild(); };
  api_context_.collect_garbage = [this](const std::atomic<bool>& cancel) {
    return CollectAndDeliver(cancel);
  };
  status_api_ = std::make_unique<StatusApi>(api_context_);
  snapshots_api_ = std::make_unique<SnapshotsApi>(api_context_);
  versions_api_ = std::make_unique<VersionsApi>(api_context_);
  jobs_api_ = std::make_unique<JobsApi>(api_context_);
  lifecycle_api_ = std::make_unique<LifecycleApi>(api_context_);
  sources_api_ = std::make_unique<SourcesApi>(api_context_);
  {
    ArchiveMounts::Options mount_options;
    mount_options.spool_root = config_.dir + "/archives";
    mount_options.hostname = LocalHostname();
    archive_mounts_ = std::make_unique<ArchiveMounts>(&ctx_, mount_options);
    engine::Redundancy archive_default;
    archive_default.copies = config_.copies;
    if (!config_.ec.empty()) {
      CAIRN_ASSIGN_OR_RETURN(archive_default.ec,
                             Annotate(codec::ParseErasureScheme(config_.ec), "config [backup] ec"));
    }
    archives_api_ = std::make_unique<ArchivesApi>(api_context_, archive_mounts_.get(),
                                                  archive_default, LocalHostname());
  }
  CAIRN_ASSIGN_OR_RETURN(api_, ApiServer::Start(config_.api, api_token_, this));
  // [[archive]] tables: mounted now, unmounted at shutdown (docs/operations.md "Archives").
  for (const ArchiveConfig& a : config_.archives) {
    absl::Status mounted = IndexReady("mount an archive");
    if (mounted.ok()) {
      mounted = archive_mounts_->Mount(a.name, a.mountpoint, a.allow_other, a.spool);
    }
    if (!mounted.ok()) {
      spdlog::error("[[archive]] {} at {} not mounted: {}", a.name, a.mountpoint,
                    mounted.ToString());
    }
  }
  if (!config_.metrics_listen.empty()) {
    CAIRN_ASSIGN_OR_RETURN(metrics_api_,
                           Annotate(ApiServer::StartMetrics(config_.metrics_listen, this),
                                    "start the [metrics] listener"));
    spdlog::info("metrics on http://{}/metrics (no token)", metrics_api_->address());
  }

  // Record ports that were picked at this first start.
  auto api_hp = SplitHostPort(config_.api);
  std::string api_address = config_.api;
  if (api_hp.ok() && api_hp->second == 0) api_address = api_->address();
  std::string listen_config = resolve_port ? listen_address_ : config_.listen;
  if (listen_config != config_.listen || api_address != config_.api) {
    CAIRN_RETURN_IF_ERROR(Annotate(WriteBackAddresses(dir, listen_config, api_address),
                                   "write the resolved ports back to cairn.toml"));
    config_.listen = listen_config;
    config_.api = api_address;
  }

  ping_thread_ = std::thread([this] { PingLoop(); });
  if (config_.repair_enabled) repair_thread_ = std::thread([this] { RepairLoop(); });
  snapshot_health_thread_ = std::thread([this] { SnapshotHealthLoop(); });
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
  if (migrator_) {
    migration_thread_ = std::thread([this] {
      absl::Status st = migrator_->Run();
      const store::LayoutMigrationProgress p = migrator_->Progress();
      if (st.ok()) {
        spdlog::info(
            "storage: migration into segments done: {} blobs moved ({}), {} damaged and {} "
            "missing blobs not moved",
            p.moved_blobs, FormatSize(p.moved_bytes), p.damaged_blobs, p.missing_blobs);
      } else if (!absl::IsCancelled(st)) {
        spdlog::error("storage: migration into segments stopped ({} blobs left): {}",
                      p.remaining_blobs, st.ToString());
      }
    });
  }
  if (check_index) index_thread_ = std::thread([this] { IndexLoop(); });
  StartDiscovery(listen_host);
  scrubber_->Start();
  spdlog::info("peer {} listening on {} (api {})", config_.peer_id, listen_address_,
               api_->address());
  return absl::OkStatus();
}

void Daemon::StartDiscovery(const std::string& listen_host) {
  if (!config_.discovery.multicast) return;
  cluster::DiscoveryOptions options;
  options.group = config_.discovery.group;
  options.port = config_.discovery.port;
  options.interval = config_.discovery.interval;
  options.interface = config_.discovery.interface;
  // A loopback listen address is no use to other hosts: announce it on loopback only (this is
  // also what keeps local test clusters off the LAN).
  if (options.interface.empty() && IsLoopbackHost(listen_host)) options.interface = "127.0.0.1";
  auto discovery =
      cluster::MulticastDiscovery::Start(options, cluster_key_, membership_.get(), options_.clock,
                                         [this](const absl::Status& s) { Fatal(s); });
  if (!discovery.ok()) {
    // Seeds still work; a LAN without multicast is not a reason to refuse to run.
    spdlog::warn("multicast discovery is off: {}", discovery.status().ToString());
    return;
  }
  discovery_ = *std::move(discovery);
}

void Daemon::Fatal(const absl::Status& status) {
  {
    std::lock_guard<std::mutex> lock(fatal_mu_);
    if (!fatal_.ok()) return;
    fatal_ = status;
  }
  spdlog::error("{}", std::string(status.message()));
  if (options_.on_fatal) options_.on_fatal(status);
}

absl::Status Daemon::fatal_status() const {
  std::lock_guard<std::mutex> lock(fatal_mu_);
  return fatal_;
}

absl::Status Daemon::CheckChunkerParams() {
  struct Want {
    const char* key;
    uint32_t value;
  } wants[] = {{kMetaChunkerMin, config_.chunker.min_size},
               {kMetaChunkerAvg, config_.chunker.avg_size},
               {kMetaChunkerMax, config_.chunker.max_size}};
  for (const Want& w : wants) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> recorded, catalog_->GetMeta(w.key));
    if (!recorded) {
      // A directory made before the params were recorded: record them now.
      CAIRN_RETURN_IF_ERROR(catalog_->SetMeta(w.key, std::to_string(w.value)));
      continue;
    }
    uint64_t v = 0;
    if (!absl::SimpleAtoi(*recorded, &v) || v != w.value) {
      return absl::FailedPreconditionError(
          absl::StrCat(ConfigPath(config_.dir), ": [chunker] ", w.key, " = ", w.value,
                       " differs from ", *recorded, " recorded in ", IndexPath(config_.dir),
                       " at init; chunker parameters never change under existing data"));
    }
  }
  return absl::OkStatus();
}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    events_.Close();  // ends the GET /v1/events streams
    if (metrics_api_) metrics_api_->Stop();
    if (api_) api_->Stop();
    if (sources_) sources_->Stop();                      // no new backups from here on
    if (archive_mounts_) archive_mounts_->UnmountAll();  // commits what the mounts hold
    maintenance_cancel_ = true;
    extras_cancel_ = true;
    snapshot_health_closing_ = true;  // before the cancel: SnapshotHealthLoop re-checks it
    snapshot_health_cancel_ = true;
    if (jobs_) jobs_->Shutdown();
    {
      std::lock_guard<std::mutex> lock(ping_mu_);
      stopping_ = true;
    }
    ping_cv_.notify_all();
    if (ping_thread_.joinable()) ping_thread_.join();
    if (index_thread_.joinable()) index_thread_.join();
    if (repair_thread_.joinable()) repair_thread_.join();
    if (snapshot_health_thread_.joinable()) snapshot_health_thread_.join();
    if (maintenance_thread_.joinable()) maintenance_thread_.join();
    if (migrator_) migrator_->Stop();
    if (migration_thread_.joinable()) migration_thread_.join();
    if (discovery_) discovery_->Stop();
    if (scrubber_) scrubber_->Stop();
    if (peer_server_) peer_server_->Shutdown();
    // Release in reverse order of construction; the database closes last.
    metrics_api_.reset();
    api_.reset();
    sources_.reset();
    jobs_.reset();
    peer_server_.reset();
    discovery_.reset();
    ping_set_.reset();
    peer_set_.reset();
    membership_.reset();
    pins_.reset();
    scrubber_.reset();
    outbox_.reset();
    catalog_.reset();
    store_ = nullptr;
    segments_ = nullptr;
    migrator_.reset();
    migrating_store_.reset();
    segment_store_.reset();
    file_store_.reset();
    segment_registry_.reset();
    registry_.reset();
    db_.reset();
  });
}

std::string Daemon::api_address() const { return api_ ? api_->address() : config_.api; }

std::string Daemon::metrics_address() const { return metrics_api_ ? metrics_api_->address() : ""; }

void Daemon::LogPeerStateChanges() {
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (v.self) continue;
    auto it = logged_peer_states_.find(v.info.id);
    const std::string who =
        absl::StrCat("peer ", v.info.id, " (", api::SanitizeUtf8(v.info.host_id), ", ",
                     api::SanitizeUtf8(v.info.address), ")");
    Json event{{"peer_id", v.info.id},
               {"host_id", api::SanitizeUtf8(v.info.host_id)},
               {"address", api::SanitizeUtf8(v.info.address)},
               {"state", cluster::PeerStateName(v.state)},
               {"was", nullptr}};
    if (it == logged_peer_states_.end()) {
      logged_peer_states_.emplace(v.info.id, v.state);
      events_.Publish("peer", std::move(event));
      spdlog::info("{} joined: {}", who, cluster::PeerStateName(v.state));
      continue;
    }
    if (it->second == v.state) continue;
    const cluster::PeerState was = it->second;
    it->second = v.state;
    event["was"] = cluster::PeerStateName(was);
    events_.Publish("peer", std::move(event));
    const int64_t now = options_.clock->NowNanos();
    const std::string seen =
        v.last_seen_ns > 0
            ? absl::StrCat("last seen ", (now - v.last_seen_ns) / 1'000'000'000, " s ago")
            : std::string("never seen");
    if (v.state == cluster::PeerState::kAlive) {
      spdlog::info("{} is alive again (was {})", who, cluster::PeerStateName(was));
    } else {
      spdlog::warn("{} is now {} (was {}; {})", who, cluster::PeerStateName(v.state),
                   cluster::PeerStateName(was), seen);
    }
  }
}

void Daemon::PingLoop() {
  std::unique_lock<std::mutex> lock(ping_mu_);
  while (!stopping_) {
    lock.unlock();
    PingOnce();
    LogPeerStateChanges();
    lock.lock();
    ping_cv_.wait_for(lock, config_.ping_interval, [this] { return stopping_; });
  }
}

void Daemon::WatchDisk(const store::StoreStats& stats) {
  std::optional<DiskWatch::Change> change;
  {
    std::lock_guard<std::mutex> lock(ping_mu_);
    change = disk_watch_.Observe(stats);
  }
  if (!change) return;
  const uint64_t free = stats.disk_free.value_or(0);
  if (*change == DiskWatch::Change::kBecameFull) {
    spdlog::warn(
        "storage: the disk holding {}/segments is full: {} free, {} kept in reserve; this peer "
        "now offers {} of room instead of the {} its quota leaves, and puts that do not fit are "
        "refused (owners place those blobs on other peers)",
        config_.dir, FormatSize(free), FormatSize(stats.disk_reserve),
        FormatSize(store::Room(stats)),
        FormatSize(stats.quota - std::min(stats.quota, stats.used)));
  } else {
    spdlog::info(
        "storage: the disk holding {}/segments has room again: {} free; this peer offers {}",
        config_.dir, FormatSize(free), FormatSize(store::Room(stats)));
  }
}

void Daemon::PingOnce() {
  store::StoreStats stats = store_->Stats();
  WatchDisk(stats);
  membership_->UpdateSelf(stats.quota, stats.used, stats.extra_bytes, store::DiskRoom(stats));
  cluster::PeerInfo self = membership_->Self();
  std::vector<cluster::PeerInfo> known;
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (!v.self && v.info.id != self.id) known.push_back(v.info);
  }
  std::vector<std::future<void>> pings;
  for (const std::string& target : membership_->PingTargets()) {
    if (target == listen_address_) continue;
    std::shared_ptr<net::PeerClient> client = ping_set_->ClientForAddress(target);
    if (!client) continue;
    pings.push_back(std::async(std::launch::async, [this, client, self, known, target] {
      absl::StatusOr<net::PingReply> reply = client->Ping(self, known);
      if (absl::IsAlreadyExists(reply.status())) {
        // A member (the answer is authenticated) has our peer id pinned to another node.
        Fatal(reply.status());
        return;
      }
      if (absl::IsUnauthenticated(reply.status())) {
        std::optional<int64_t> skew =
            cluster::ParseClockSkew(std::string(reply.status().message()));
        std::optional<cluster::NodeIdentity> refused_by = cluster::SignedBy(reply.status());
        if (skew && refused_by) {
          // A member refused us because of the clocks: its clock minus ours is minus the
          // caller-minus-callee offset it names (docs/operations.md "When a peer's clock is off").
          membership_->ObserveClockRefusal(refused_by->peer_id, refused_by->node_id, target,
                                           -*skew * 1000);
        }
        // Another cluster key, or clocks far apart: say so once per address and reason, not
        // every ping. A member's signed refusal over the clocks is said even when the address
        // refused us before for a reason that was not clear yet (e.g. while starting).
        const bool signed_skew = skew && refused_by;
        bool first;
        {
          std::lock_guard<std::mutex> lock(ping_mu_);
          first = unauthenticated_targets_.insert(target).second;
          if (signed_skew) first = skew_warned_targets_.insert(target).second;
        }
        if (first && signed_skew) {
          // A member said so in a signed answer (docs/protocol.md "Authentication").
          spdlog::warn("the peer at {} refuses this peer's calls: {}", target,
                       std::string(reply.status().message()));
        } else if (first) {
          spdlog::warn(
              "the peer at {} does not accept this peer's cluster key (or the clocks "
              "are more than 5 minutes apart): {}",
              target, std::string(reply.status().message()));
        }
        return;
      }
      if (absl::IsPermissionDenied(reply.status())) {
        // A TLS certificate that does not match its pin, on either side (docs/security.md
        // "TLS between peers"): say so once per address and reason, not every ping.
        bool first;
        {
          std::lock_guard<std::mutex> lock(ping_mu_);
          std::string& last = refused_certs_[target];
          first = last != reply.status().message();
          last = std::string(reply.status().message());
        }
        if (first) {
          spdlog::warn("the peer at {} and this peer refuse each other: {}", target,
                       std::string(reply.status().message()));
        }
        return;
      }
      if (!reply.ok()) {
        spdlog::debug("ping {}: {}", target, reply.status().ToString());
        return;
      }
      {
        std::lock_guard<std::mutex> lock(ping_mu_);
        refused_certs_.erase(target);
      }
      if (reply->self.id == self.id && reply->self.node_id != self.node_id &&
          reply->self.incarnation < self.incarnation) {
        Fatal(absl::AlreadyExistsError(
            absl::StrCat("peer id ", self.id, " belongs to another node: the peer at ", target,
                         " has been running with this id since before this process started")));
        return;
      }
      if (reply->self.id != self.id) {
        membership_->ObserveDirect(reply->self);
        if (reply->clock_offset_ms) {
          membership_->ObserveClockOffset(reply->self.id, *reply->clock_offset_ms);
        }
      }
      for (const cluster::PeerInfo& p : reply->known) {
        if (p.id != self.id) membership_->ObserveIndirect(p);
      }
    }));
  }
  for (auto& f : pings) f.wait();
}

absl::StatusOr<Json> Daemon::GetStatus() {
  store::StoreStats stats = store_->Stats();
  CAIRN_ASSIGN_OR_RETURN(index::CatalogStats cs, catalog_->Stats());
  CAIRN_ASSIGN_OR_RETURN(std::vector<index::SnapshotRecord> snapshots, catalog_->ListSnapshots());
  api::PeerStatus r;
  r.peer_id = config_.peer_id;
  r.host_id = config_.host_id;
  r.site = config_.site;
  r.address = listen_address_;
  r.api = api_address();
  // The [metrics] listener as bound (docs/operations.md "Monitoring"); null when off.
  if (metrics_api_) r.metrics_address = metrics_api_->address();
  r.quota = stats.quota;
  r.used = stats.used;
  r.room = store::Room(stats);
  r.disk_free = stats.disk_free;
  r.disk_reserve = stats.disk_reserve;
  r.blobs = stats.blobs;
  r.snapshots = snapshots.size();
  r.chunks = cs.chunks;
  r.chunks_at_target = cs.chunks_at_target;
  r.chunks_below_target = cs.chunks_below_target;
  r.plain_bytes = cs.plain_bytes;
  r.stored_bytes = cs.stored_bytes;
  r.scrub = scrubber_->Status();
  r.index = GetIndexStatus();
  api::StorageStatus& storage = r.storage;
  storage.layout = segments_ != nullptr ? "segments" : "files";
  if (segments_ != nullptr) {
    storage.live_bytes = stats.live_bytes;
    storage.dead_bytes = stats.dead_bytes;
    storage.segments = stats.segments;
    storage.compactions = stats.compactions;
    storage.compaction_copied_bytes = stats.compaction_copied_bytes;
    storage.compaction_reclaimed_bytes = stats.compaction_reclaimed_bytes;
    if (stats.compacting_segment != 0) {
      storage.compacting = api::CompactionProgress{
          stats.compacting_segment, stats.compaction_done_bytes, stats.compaction_total_bytes};
    }
  } else {
    storage.live_bytes = stats.used;
    storage.dead_bytes = 0;
  }
  if (migrator_) {
    const store::LayoutMigrationProgress p = migrator_->Progress();
    storage.migration = api::LayoutMigrationStatus{
        p.done,          p.moved_blobs,  p.moved_bytes, p.remaining_blobs, p.remaining_bytes,
        p.damaged_blobs, p.missing_blobs};
  }
  r.bucket = BucketStatusOf(config_.storage_bucket, bucket_.get());
  FillLifecycleStatus(&r);
  // Chunks placed on fewer peers of another site than their off-site target, by the recorded
  // placements on the peers known now (docs/operations.md "Sites and off-site copies").
  std::vector<PeerId> offsite_peers;
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (!v.self && v.info.site != config_.site) offsite_peers.push_back(v.info.id);
  }
  std::sort(offsite_peers.begin(), offsite_peers.end());
  auto without_offsite = catalog_->CountWithoutOffsite(offsite_peers);
  if (without_offsite.ok()) r.chunks_without_offsite = *without_offsite;
  if (r.home) r.home->chunks_without_offsite = r.chunks_without_offsite;
  return api::ToJson(r);
}

absl::StatusOr<std::string> Daemon::GetMetrics() {
  MetricsState state;
  store::StoreStats stats = store_->Stats();
  state.store_used_bytes = stats.used;
  state.store_quota_bytes = stats.quota;
  state.store_blobs = stats.blobs;
  for (const cluster::PeerView& v : membership_->Peers()) {
    MetricsState::Peer p;
    p.id = v.info.id;
    p.state = cluster::PeerStateName(v.state);
    state.peers.push_back(std::move(p));
  }
  // The catalog's numbers: left out (not shown as 0) when it cannot be read.
  if (absl::StatusOr<index::CatalogStats> cs = catalog_->Stats(); cs.ok()) {
    state.have_chunks = true;
    state.chunks_at_target = cs->chunks_at_target;
    state.chunks_below_target = cs->chunks_below_target;
  }
  if (auto snapshots = catalog_->ListSnapshots(); snapshots.ok()) {
    state.snapshots = snapshots->size();
    for (const index::SnapshotRecord& r : *snapshots) {
      const double t = static_cast<double>(r.snapshot.time_ns) / 1e9;
      for (const std::string& path : r.snapshot.paths) {
        double& newest = state.last_backup_seconds[path];
        newest = std::max(newest, t);
      }
    }
  }
  state.scrub_quarantined_blobs = scrubber_->Status().quarantined;
  state.s3 = BucketCounters(bucket_.get());
  return metrics_->Render(state);
}

namespace {
int64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

api::Health Daemon::GetHealth() {
  // Not ready: when this peer must stop, or while requests on the catalog are refused
  // (IndexReady). A failed rebuild is listed, but the peer serves as it is.
  api::Health h;
  if (absl::Status fatal = fatal_status(); !fatal.ok()) {
    h.problems.push_back(api::SanitizeUtf8(std::string(fatal.message())));
    h.ready = false;
  }
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    h.index = index_state_;
    if (index_state_ == "rebuilding") {
      h.problems.push_back(absl::StrCat("the index is being rebuilt from the peers (",
                                        api::SanitizeUtf8(index_problem_), ")"));
      h.ready = false;
    } else if (index_state_ == "failed") {
      h.problems.push_back(
          absl::StrCat("the last index rebuild failed: ", api::SanitizeUtf8(index_error_)));
    }
  }
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (v.self) continue;
    ++h.peers_known;
    if (v.state == cluster::PeerState::kAlive) ++h.peers_alive;
  }
  // What each snapshot survives now: the background loop's last result, with the rebuild time
  // at the rate measured now (docs/cli.md "Local HTTP API").
  const auto [rate, rate_source] = RebuildRate();
  api::SnapshotHealthSummary& summary = h.snapshot_health;
  {
    std::lock_guard<std::mutex> lock(snapshot_health_mu_);
    if (snapshot_health_.is_array()) h.snapshots = snapshot_health_;
    if (snapshot_health_at_ns_ > 0) {
      summary.computed_at = api::FormatRfc3339(snapshot_health_at_ns_);
      summary.age_seconds =
          std::max<int64_t>(0, UnixNowNs() - snapshot_health_at_ns_) / 1'000'000'000;
      summary.compute_seconds = snapshot_health_seconds_;
    }
    if (!snapshot_health_error_.empty()) summary.error = snapshot_health_error_;
  }
  if (rate) {
    summary.rebuild_rate_bytes_per_second = *rate;
    summary.rebuild_rate_source = rate_source;
  }
  for (Json& s : h.snapshots) {
    const uint64_t bytes = s.value("rebuild_bytes", uint64_t{0});
    s["rebuild_seconds"] =
        rate ? Json(std::ceil(static_cast<double>(bytes) / *rate)) : Json(nullptr);
  }
  return h;
}

std::pair<std::optional<double>, std::string> Daemon::RebuildRate() {
  std::lock_guard<std::mutex> lock(snapshot_health_mu_);
  if (repair_rate_bytes_ > 0 && repair_rate_ns_ > 0) {
    return {static_cast<double>(repair_rate_bytes_) * 1e9 / static_cast<double>(repair_rate_ns_),
            "repair"};
  }
  if (fallback_rate_ > 0) return {fallback_rate_, fallback_rate_source_};
  return {std::nullopt, ""};
}

void Daemon::RefreshSnapshotHealth() {
  const int64_t started_ns = UnixNowNs();
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<engine::SnapshotSurvivalReport> report =
      engine::ComputeSnapshotSurvival(ctx_, &snapshot_health_cancel_);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (absl::IsCancelled(report.status())) return;
  // The fallback rate: of the kept finished backups (bytes sent to peers) and restores (bytes
  // written), the one that moved the most bytes (a small transfer measures mostly its scan).
  double fallback = 0, most = 0;
  std::string fallback_source;
  for (const Json& job : jobs_->List()) {
    const std::string kind = job.value("kind", "");
    if (job.value("state", "") != "done" || (kind != "backup" && kind != "restore")) continue;
    const auto result = job.find("result");
    if (result == job.end() || !result->is_object()) continue;
    const Json& r = *result;
    const double moved = r.value(kind == "backup" ? "sent_bytes" : "bytes", 0.0);
    const double took = r.value("duration_seconds", 0.0);
    if (moved > most && took > 0) {
      most = moved;
      fallback = moved / took;
      fallback_source = kind;
    }
  }
  Json snapshots = Json::array();
  if (report.ok()) {
    const std::string at = api::FormatRfc3339(started_ns);
    for (const engine::SnapshotSurvival& s : report->snapshots) {
      Json j;
      j["id"] = s.id.Hex();
      j["short_id"] = s.id.ShortHex();
      j["time"] = api::FormatRfc3339(s.time_ns);
      j["time_ns"] = s.time_ns;
      api::SetPathArray(j, "paths", s.paths);
      j["chunks"] = s.chunks;
      j["survives_peers"] = s.survives_peers;
      Json hosts = Json::array();
      for (const std::string& h : s.single_point_hosts) hosts.push_back(api::SanitizeUtf8(h));
      j["single_point_hosts"] = std::move(hosts);
      j["lost_chunks"] = s.lost_chunks;
      j["rebuild_bytes"] = s.rebuild_bytes;
      j["rebuild_peer"] = s.rebuild_peer ? Json(s.rebuild_peer) : Json(nullptr);
      j["error"] = s.error.empty() ? Json(nullptr) : Json(api::SanitizeUtf8(s.error));
      j["computed_at"] = at;
      snapshots.push_back(std::move(j));
    }
  }
  std::lock_guard<std::mutex> lock(snapshot_health_mu_);
  fallback_rate_ = fallback;
  fallback_rate_source_ = fallback_source;
  if (!report.ok()) {
    // The last good result stays, with its age; the error says why it is not newer.
    snapshot_health_error_ = api::SanitizeUtf8(std::string(report.status().message()));
    return;
  }
  snapshot_health_ = std::move(snapshots);
  snapshot_health_at_ns_ = started_ns;
  snapshot_health_seconds_ = seconds;
  snapshot_health_error_.clear();
}

// Busy with a job that moves data: a backup or restore is CPU-bound, and the catalog a
// backup, repair, forget, delete or reclaim is changing is worth reading only once it ends
// (its end is an event, which brings the next computation).
bool Daemon::DataJobRunning() {
  for (JobKind kind : {JobKind::kBackup, JobKind::kRestore, JobKind::kRepair, JobKind::kForget,
                       JobKind::kDelete, JobKind::kReclaim}) {
    if (jobs_->Running(kind)) return true;
  }
  return false;
}

void Daemon::SnapshotHealthLoop() {
  // A computation reads every snapshot's trees and chunk placements (1.4 s of CPU for 73k
  // files): after a change, and otherwise every 5 minutes (placements also change without a
  // job: the repair loop, extra copies, scrub).
  constexpr auto kEvery = std::chrono::minutes(5);
  constexpr auto kSoonest = std::chrono::seconds(5);
  bool first = true;
  std::chrono::steady_clock::time_point last;
  uint64_t seen_events = 0;
  std::set<PeerId> seen_alive;
  std::unique_lock<std::mutex> lock(ping_mu_);
  while (!stopping_) {
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    const uint64_t events = events_.last_id();
    std::set<PeerId> alive = AliveStoragePeers();
    const bool changed = events != seen_events || alive != seen_alive;
    const bool due = first || now - last >= kEvery || (changed && now - last >= kSoonest);
    if (due) {
      // Cleared before the check for running jobs, so that a data job starting after it
      // (whose start sets it) still stops this computation; set again if the peer is closing.
      snapshot_health_cancel_ = false;
      if (snapshot_health_closing_) snapshot_health_cancel_ = true;
    }
    if (due && !DataJobRunning() && IndexReady("compute what the snapshots survive").ok()) {
      RefreshSnapshotHealth();
      first = false;
      last = now;
      seen_events = events;
      seen_alive = std::move(alive);
    }
    lock.lock();
    ping_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

absl::Status Daemon::CheckServerCert(const std::string& address,
                                     const std::string& fingerprint) const {
  if (membership_ == nullptr || cert_pins_ == nullptr) return absl::OkStatus();
  std::optional<absl::Status> mismatch;
  for (const cluster::PeerView& v : membership_->Peers()) {
    if (v.self || v.info.address != address) continue;
    std::optional<std::string> pinned = cert_pins_->Pinned(v.info.id);
    // A peer known at this address and not pinned yet: this is its first contact (a seed, or
    // one only heard of); the certificate is pinned once it is authenticated.
    if (!pinned.has_value() || *pinned == fingerprint) return absl::OkStatus();
    mismatch = cluster::CertMismatch(v.info.id, fingerprint, *pinned);
  }
  return mismatch.value_or(absl::OkStatus());
}

absl::StatusOr<std::string> Daemon::StartBackup(const api::BackupRequest& request) {
  CAIRN_RETURN_IF_ERROR(IndexReady("back up"));
  backup_requested_ = true;
  engine::BackupOptions options;
  options.paths = request.paths;
  options.copies = request.copies.value_or(config_.copies);
  // An explicit --copies or --ec wins; otherwise the config's ec, if any, else its copies.
  options.ec = request.ec;
  if (!request.ec && !request.copies && !config_.ec.empty()) {
    CAIRN_ASSIGN_OR_RETURN(options.ec,
                           Annotate(codec::ParseErasureScheme(config_.ec), "config [backup] ec"));
  }
  // Off-site copies (docs/operations.md "Sites and off-site copies"): at most the copies, or the
  // k+m shards, there are.
  options.offsite = request.offsite.value_or(config_.offsite);
  const uint32_t blobs = options.ec ? static_cast<uint32_t>(options.ec->total()) : options.copies;
  if (options.offsite > blobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("offsite ", options.offsite, " exceeds the ",
                     options.ec ? absl::StrCat(blobs, " shards of ", options.ec->ToString())
                                : absl::StrCat(blobs, blobs == 1 ? " copy" : " copies"),
                     " of each chunk"));
  }
  options.tags = request.tags;
  options.excludes = request.excludes;
  options.rehash = request.rehash;
  options.hostname = LocalHostname();
  options.upload_threads = config_.upload_threads;
  auto progress = std::make_shared<engine::BackupProgress>();
  // A source's own keep policy, else [retention].
  engine::RetentionPolicy retention = request.retention.value_or(config_.retention);
  JobFunctions fns;
  fns.progress = [progress] { return BackupProgressJson(*progress); };
  fns.run = [this, options, progress,
             retention](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    spdlog::info("backup of {} path(s) started ({})", options.paths.size(),
                 (options.ec ? options.ec->ToString() + " erasure coded"
                             : std::to_string(options.copies) + " copies") +
                     (options.offsite > 0 ? ", " + std::to_string(options.offsite) + " off-site"
                                          : std::string()));
    engine::BackupEngine engine(ctx_);
    absl::StatusOr<engine::BackupResult> result = engine.Run(options, progress.get(), &cancel);
    if (!result.ok()) {
      spdlog::warn("backup failed: {}", api::SanitizeUtf8(result.status().ToString()));
      metrics_->RecordBackup(false, 0, 0, 0);
      return result.status();
    }
    metrics_->RecordBackup(true, result->snapshot.stats.bytes, result->snapshot.stats.sent_bytes,
                           result->seconds);
    if (!result->redundancy_warning.empty()) spdlog::warn("backup: {}", result->redundancy_warning);
    spdlog::info("backup saved snapshot {}{}", result->snapshot_id.ShortHex(),
                 result->degraded() ? " (degraded)" : "");
    api::BackupAnswer out = BackupAnswerOf(*result);
    extras_requested_ = true;
    ping_cv_.notify_all();
    if (!retention.empty()) {
      // The per-source policy; a failure here does not undo the backup.
      auto forgot = ApplyRetentionAfterBackup(
          index::SnapshotRecord{result->snapshot_id, result->snapshot}, retention, cancel);
      if (forgot.ok()) {
        out.retention = api::ToJson(*forgot);
      } else {
        spdlog::warn("retention after backup: {}", api::SanitizeUtf8(forgot.status().ToString()));
        out.retention = Json{{"error", api::SanitizeUtf8(forgot.status().ToString())}};
      }
    }
    return api::ToJson(out);
  };
  return jobs_->Start(JobKind::kBackup, /*exclusive=*/true, std::move(fns));
}

std::vector<ApiRoute> Daemon::Routes() {
  std::vector<ApiRoute> routes;
  for (std::vector<ApiRoute> table :
       {status_api_->Routes(), snapshots_api_->Routes(), versions_api_->Routes(),
        jobs_api_->Routes(), lifecycle_api_->Routes(), sources_api_->Routes(),
        archives_api_->Routes()}) {
    for (ApiRoute& route : table) routes.push_back(std::move(route));
  }
  return routes;
}

absl::StatusOr<std::string> Daemon::StartRepair(const api::CheckRequest& request) {
  CAIRN_RETURN_IF_ERROR(IndexReady("repair"));
  engine::CheckOptions options{request.read_data, request.read_subset, config_.repair_rate};
  auto progress = std::make_shared<engine::CheckProgress>();
  JobFunctions fns;
  fns.progress = [progress] { return CheckProgressJson(*progress); };
  fns.run = [this, options, progress](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    const std::set<PeerId> alive = AliveStoragePeers();
    const auto repair_started = std::chrono::steady_clock::now();
    auto report = engine::Repair(ctx_, options, progress.get(), &cancel);
    if (!report.ok()) {
      metrics_->RecordRepair(false, 0, 0, 0);
      return report.status();
    }
    metrics_->RecordRepair(true, report->repaired, report->blobs_written, report->bytes_sent);
    if (report->bytes_sent > 0) {  // the measured repair rate of GET /v1/health
      std::lock_guard<std::mutex> lock(snapshot_health_mu_);
      repair_rate_bytes_ += report->bytes_sent;
      repair_rate_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - repair_started)
                             .count();
    }
    RepairOutcome outcome;
    outcome.settled =
        report->still_below_target == 0 && report->lost == 0 && report->errors.empty();
    outcome.progressed = report->blobs_written > 0;
    repair_schedule_->Finished(alive, outcome);
    if (report->repaired || report->still_below_target || report->lost) {
      spdlog::info(
          "repair: {} chunks repaired ({} blobs, {} bytes), {} still below target ({} that no "
          "repair can improve with the alive peers), {} lost",
          report->repaired, report->blobs_written, report->bytes_sent, report->still_below_target,
          report->unimprovable, report->lost);
    }
    for (const std::string& m :
         engine::DescribeShortfalls(report->short_of_peers, report->storage_peers)) {
      spdlog::warn("repair: {} (more peers must join)", m);
    }
    for (const std::string& m : engine::DescribeTolerance(report->survives)) {
      spdlog::warn("repair: {}", m);
    }
    if (auto backoff = repair_schedule_->backoff(); backoff.count() > 0) {
      spdlog::info(
          "repair: nothing more to do with these peers; the next automatic repair waits {} s "
          "unless the alive peers change",
          std::chrono::duration_cast<std::chrono::seconds>(backoff).count());
    }
    return api::ToJson(RepairAnswerOf(*report));
  };
  auto id = jobs_->Start(JobKind::kRepair, /*exclusive=*/true, std::move(fns));
  // One repair at a time: a request while one runs (say the automatic one) follows that job.
  if (absl::IsFailedPrecondition(id.status())) {
    if (auto running = jobs_->Running(JobKind::kRepair)) return *running;
  }
  return id;
}

std::set<PeerId> Daemon::AliveStoragePeers() {
  std::set<PeerId> alive;
  for (const auto& p : membership_->Peers()) {
    if (!p.self && p.state == cluster::PeerState::kAlive) alive.insert(p.info.id);
  }
  return alive;
}

void Daemon::RepairLoop() {
  std::set<PeerId> dead;
  std::unique_lock<std::mutex> lock(ping_mu_);
  while (!stopping_) {
    ping_cv_.wait_for(
        lock, std::min<std::chrono::milliseconds>(config_.ping_interval, std::chrono::seconds(1)),
        [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    std::set<PeerId> now_dead;
    for (const auto& p : membership_->Peers()) {
      if (!p.self && p.state == cluster::PeerState::kDead) now_dead.insert(p.info.id);
    }
    bool newly_dead =
        std::any_of(now_dead.begin(), now_dead.end(), [&](PeerId id) { return !dead.count(id); });
    dead = std::move(now_dead);
    bool requested = repair_requested_.exchange(false);
    // Backs off while repairs can do nothing for what they leave below target
    // (docs/operations.md "When the cluster is too small").
    if (repair_schedule_->Due(AliveStoragePeers(), newly_dead, requested)) {
      if (newly_dead) spdlog::info("a peer became dead: repairing own backups");
      if (requested) spdlog::info("a check found chunks below target: repairing own backups");
      auto id = StartRepair(api::CheckRequest{});
      if (id.ok()) {
        // One at a time; a repair that is cut short by shutdown is resumed next start.
        while (!jobs_->Wait(*id, std::chrono::milliseconds(500))) {
          std::lock_guard<std::mutex> l(ping_mu_);
          if (stopping_) break;
        }
      }
    }
    lock.lock();
  }
}

}  // namespace cairn::daemon
