// The daemon's space and lifecycle work (docs/architecture.md "Space and lifecycle"): garbage
// collection (after forget and delete, api_lifecycle.cc, and retention after a backup), reclaim
// (evacuation), and the maintenance loop that delivers queued deletions and BlobMoved notices,
// places extra copies and evacuates when used > quota.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"
#include "cairn/engine/extras.h"
#include "cairn/engine/gc.h"
#include "cairn/engine/reclaim.h"
#include "cairn/engine/retention.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

// How often queued deletions and notices are retried while any are queued.
constexpr std::chrono::seconds kDeliveryInterval{10};
// How often the maintenance loop looks for segments to compact.
constexpr std::chrono::seconds kCompactionInterval{30};
// Extra copies wait until the peer has had no job start or end for this long.
constexpr std::chrono::seconds kExtrasIdle{5};
// How often an evacuation is retried while used > quota.
constexpr std::chrono::seconds kReclaimRetry{60};

api::GcInfo GcInfoOf(const engine::GcReport& r) {
  return api::GcInfo{r.snapshots,          r.referenced_chunks, r.unreferenced_chunks,
                     r.unreferenced_bytes, r.deletions_queued,  r.targets_lowered,
                     r.targets_raised};
}

api::DeliveryInfo DeliveryInfoOf(const engine::DeliveryReport& r) {
  return api::DeliveryInfo{r.delivered, r.peers_done, r.peers_unreachable, r.pending};
}

bool SameGroup(const format::Snapshot& a, const format::Snapshot& b) {
  std::vector<std::string> pa = a.paths, pb = b.paths;
  std::sort(pa.begin(), pa.end());
  std::sort(pb.begin(), pb.end());
  return a.hostname == b.hostname && a.archive == b.archive && pa == pb;
}

}  // namespace

absl::StatusOr<api::GarbageCollected> Daemon::CollectAndDeliver(const std::atomic<bool>& cancel) {
  engine::GcProgress progress;
  CAIRN_ASSIGN_OR_RETURN(engine::GcReport gc,
                         engine::CollectGarbage(ctx_, engine::GcOptions{}, &progress, &cancel));
  metrics_->RecordGc(gc.unreferenced_chunks, gc.unreferenced_bytes, gc.deletions_queued);
  CAIRN_ASSIGN_OR_RETURN(engine::DeliveryReport delivery, engine::DeliverDeletions(ctx_, &cancel));
  spdlog::info(
      "garbage collection: {} chunks referenced, {} unreferenced dropped, {} targets lowered, {} "
      "raised; {} blob deletions delivered, {} pending",
      gc.referenced_chunks, gc.unreferenced_chunks, gc.targets_lowered, gc.targets_raised,
      delivery.delivered, delivery.pending);
  return api::GarbageCollected{GcInfoOf(gc), DeliveryInfoOf(delivery)};
}

absl::StatusOr<api::ForgetAnswer> Daemon::ApplyRetentionAfterBackup(
    const index::SnapshotRecord& latest, const engine::RetentionPolicy& policy,
    const std::atomic<bool>& cancel) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<index::SnapshotRecord> all, catalog_->ListSnapshots());
  std::vector<index::SnapshotRecord> group;
  for (auto& r : all) {
    if (SameGroup(r.snapshot, latest.snapshot)) group.push_back(std::move(r));
  }
  api::ForgetAnswer out;
  for (const engine::RetentionDecision& d : engine::ApplyRetention(group, policy)) {
    if (d.keep) continue;
    CAIRN_RETURN_IF_ERROR(catalog_->RemoveSnapshot(d.snapshot.id).status());
    spdlog::info("retention: forgot snapshot {}", d.snapshot.id.ShortHex());
    out.removed.push_back(ForgetDecisionOf(d));
  }
  if (!out.removed.empty()) {
    CAIRN_ASSIGN_OR_RETURN(api::GarbageCollected collected, CollectAndDeliver(cancel));
    out.gc = collected.gc;
    out.deletions = collected.deletions;
  }
  return out;
}

absl::StatusOr<std::string> Daemon::StartReclaim(const api::ReclaimRequest& request) {
  auto progress = std::make_shared<engine::EvacuateProgress>();
  const uint64_t quota = request.quota;
  JobFunctions fns;
  fns.progress = [progress] {
    return Json{{"bytes_total", progress->bytes_total.load()},
                {"bytes_done", progress->bytes_moved.load()},
                {"blobs_moved", progress->blobs_moved.load()},
                {"blobs_evicted", progress->blobs_evicted.load()}};
  };
  fns.run = [this, quota, progress](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    const uint64_t old_quota = store_->Stats().quota;
    // Lower the quota first so that no new blob arrives while the old ones move out.
    CAIRN_RETURN_IF_ERROR(store_->SetQuota(quota));
    // Decide on fresh numbers: the peers' used bytes as the last ping round saw them may be
    // older than a backup that just filled them.
    PingOnce();
    engine::EvacuateContext ectx;
    ectx.self = config_.peer_id;
    ectx.store = store_;
    ectx.outbox = outbox_.get();
    ectx.peers = peer_set_.get();
    ectx.spread = ctx_.spread;
    ectx.rate = config_.repair_rate;
    absl::StatusOr<engine::EvacuateReport> report =
        engine::Evacuate(ectx, quota, progress.get(), &cancel);
    // Tell the owners at once where their blobs went (queued ones go later).
    auto notices = engine::DeliverMovedNotices(outbox_.get(), peer_set_.get());
    if (!notices.ok()) spdlog::debug("BlobMoved notices: {}", notices.status().ToString());
    if (!report.ok()) {
      // The quota stays as it was: what moved stays moved; run it again when there is room.
      (void)store_->SetQuota(old_quota);
      store::StoreStats now = store_->Stats();
      membership_->UpdateSelf(old_quota, now.used, now.extra_bytes, store::DiskRoom(now));
      return Annotate(report.status(),
                      absl::StrCat("reclaim to ", FormatSize(quota), " stopped; the quota stays ",
                                   FormatSize(old_quota)));
    }
    // Evacuated blobs are dead until their segments are rewritten: return the space now.
    if (segments_ != nullptr) {
      CAIRN_RETURN_IF_ERROR(Annotate(segments_->CompactAll(), "reclaim: compact segments"));
    }
    CAIRN_RETURN_IF_ERROR(
        Annotate(WriteBackQuota(config_.dir, quota), "write the new quota to cairn.toml"));
    config_.quota = quota;
    store::StoreStats stats = store_->Stats();
    membership_->UpdateSelf(stats.quota, stats.used, stats.extra_bytes, store::DiskRoom(stats));
    spdlog::info("reclaim: quota {} ; {} blobs moved ({}), {} extra copies evicted; used {}",
                 FormatSize(quota), report->moved_blobs, FormatSize(report->moved_bytes),
                 report->evicted_blobs, FormatSize(stats.used));
    return api::ToJson(api::ReclaimAnswer{quota, old_quota, stats.used, report->moved_blobs,
                                          report->moved_bytes, report->evicted_blobs,
                                          report->evicted_bytes, notices.ok() ? *notices : 0});
  };
  auto id = jobs_->Start(JobKind::kReclaim, /*exclusive=*/true, std::move(fns));
  return id;
}

void Daemon::FillLifecycleStatus(api::PeerStatus* status) {
  store::StoreStats stats = store_->Stats();
  status->extra_blobs = stats.extra_blobs;
  status->extra_bytes = stats.extra_bytes;
  status->owners.clear();
  if (auto usage = store_->UsageByOwner(); usage.ok()) {
    for (const store::OwnerUsage& u : *usage) {
      status->owners.push_back(
          api::OwnerUsageInfo{u.owner, u.blobs, u.bytes, u.extra_blobs, u.extra_bytes});
    }
  }
  auto notices = outbox_->Count();
  status->moved_notices_pending = notices.ok() ? *notices : 0;

  // As a home peer.
  auto cs = catalog_->Stats();
  auto snapshots = catalog_->ListSnapshots();
  if (cs.ok() && snapshots.ok()) {
    uint64_t logical = 0;
    for (const auto& s : *snapshots) logical += s.snapshot.stats.bytes;
    api::HomeStatus& home = status->home.emplace();
    home.snapshots = snapshots->size();
    home.logical_bytes = logical;  // file bytes over all snapshots
    home.unique_bytes = cs->plain_bytes;
    home.stored_bytes = cs->stored_bytes;
    home.one_copy_bytes = cs->one_copy_bytes;
    home.dedup_ratio = cs->plain_bytes ? static_cast<double>(logical) / cs->plain_bytes : 0.0;
    home.redundancy_overhead =
        cs->one_copy_bytes ? static_cast<double>(cs->stored_bytes) / cs->one_copy_bytes : 0.0;
    home.chunks = cs->chunks;
    home.chunks_at_target = cs->chunks_at_target;
    home.chunks_below_target = cs->chunks_below_target;
    home.extra_blobs = cs->extra_blobs;
    home.extra_bytes = cs->extra_bytes;
    home.pending_deletions = cs->pending_deletions;
  }
}

void Daemon::MaintenanceLoop() {
  // "Long ago" without overflowing `now - last` (time_point::min() would: UBSan).
  const auto long_ago = std::chrono::steady_clock::now() - std::chrono::hours(24);
  auto last_delivery = long_ago;
  auto last_reclaim = long_ago;
  auto last_compaction = long_ago;
  std::map<PeerId, cluster::PeerState> states;
  std::unique_lock<std::mutex> lock(ping_mu_);
  while (!stopping_) {
    ping_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();

    // A peer that comes back (or is new) gets what was queued for it at once.
    bool came_back = false;
    for (const auto& p : membership_->Peers()) {
      if (p.self) continue;
      auto it = states.find(p.info.id);
      if (p.state == cluster::PeerState::kAlive &&
          (it == states.end() || it->second != cluster::PeerState::kAlive)) {
        came_back = true;
      }
      states[p.info.id] = p.state;
    }
    bool deliver = delivery_requested_.exchange(false) || came_back ||
                   now - last_delivery >= kDeliveryInterval;
    if (deliver) {
      last_delivery = now;
      auto owners = outbox_->Owners();
      if (owners.ok() && !owners->empty()) {
        auto n = engine::DeliverMovedNotices(outbox_.get(), peer_set_.get());
        if (n.ok() && *n > 0) spdlog::info("delivered {} BlobMoved notices", *n);
      }
      auto peers = catalog_->PeersWithPendingDeletions();
      if (peers.ok() && !peers->empty()) {
        auto r = engine::DeliverDeletions(ctx_, &maintenance_cancel_);
        if (r.ok() && r->delivered > 0) {
          spdlog::info("delivered {} queued blob deletions ({} pending)", r->delivered, r->pending);
        }
      }
    }

    // Sealed segments to the bucket (docs/operations.md "An off-site copy in S3-compatible
    // storage"): every tick, so that a segment leaves the disk soon after it is sealed.
    if (segments_ != nullptr && bucket_ != nullptr) {
      absl::StatusOr<uint64_t> up = segments_->UploadSealed();
      std::string error = up.ok() ? "" : up.status().ToString();
      if (error != last_upload_error_ && !error.empty()) {
        spdlog::warn("storage: upload to {}: {}", config_.storage_bucket, error);
      } else if (error != last_upload_error_) {
        spdlog::info("storage: uploads to {} work again", config_.storage_bucket);
      }
      last_upload_error_ = error;
      if (up.ok() && *up > 0) spdlog::info("storage: uploaded {} sealed segments", *up);
    }

    // Compaction (docs/operations.md "Storage"): rewrite segments that deletes left mostly
    // dead, a segment at a time (rate-limited by [storage] compact_rate).
    if (segments_ != nullptr && now - last_compaction >= kCompactionInterval) {
      last_compaction = now;
      while (!stopping_) {
        absl::StatusOr<bool> compacted = segments_->CompactOnce();
        if (!compacted.ok()) {
          spdlog::warn("compaction: {}", compacted.status().ToString());
          break;
        }
        if (!*compacted) break;
        const store::StoreStats st = store_->Stats();
        spdlog::info("compaction: rewrote a segment; {} live, {} dead bytes in {} segments",
                     st.live_bytes, st.dead_bytes, st.segments);
      }
    }

    // Extra copies (docs/operations.md "Extra copies in spare space") are spare-time work: placed
    // once no job has started or ended for kExtrasIdle, and stopped by a data job that starts (it
    // asks again when it ends), so that a backup run right after another does not share the CPU.
    const auto since_job =
        now.time_since_epoch() - std::chrono::steady_clock::duration(last_job_event_ns_.load());
    if ((config_.extra.metadata || config_.extra.data) && extras_requested_ &&
        since_job >= kExtrasIdle) {
      // Cleared before the check for running jobs, so that a data job starting after it (whose
      // start sets it) still stops the placement; set again if the peer is closing.
      extras_cancel_ = false;
      if (maintenance_cancel_) extras_cancel_ = true;
    }
    if ((config_.extra.metadata || config_.extra.data) && extras_requested_ &&
        since_job >= kExtrasIdle && !DataJobRunning()) {
      extras_requested_ = false;
      engine::ExtraOptions eo;
      eo.metadata = config_.extra.metadata;
      eo.data = config_.extra.data;
      eo.copies = config_.extra.copies;
      eo.max_fill = config_.extra.max_fill;
      auto r = engine::PlaceExtraCopies(ctx_, eo, &extras_cancel_);
      if (!r.ok()) {
        if (absl::IsCancelled(r.status()) && !maintenance_cancel_) extras_requested_ = true;
        spdlog::debug("extra copies: {}", r.status().ToString());
      } else if (r->placed > 0) {
        spdlog::info("placed {} extra copies ({})", r->placed, FormatSize(r->bytes));
      }
    }

    store::StoreStats stats = store_->Stats();
    if (stats.used > stats.quota && now - last_reclaim >= kReclaimRetry &&
        !jobs_->Running(JobKind::kReclaim)) {
      last_reclaim = now;
      spdlog::info("{} used is over the quota of {}: moving blobs to other peers",
                   FormatSize(stats.used), FormatSize(stats.quota));
      auto id = StartReclaim(api::ReclaimRequest{stats.quota});
      if (!id.ok()) spdlog::debug("reclaim: {}", id.status().ToString());
    }
    lock.lock();
  }
}

}  // namespace cairn::daemon
