// When the index is damaged (docs/operations.md "When the index is damaged"): the home side.
// OpenIndex (daemon/index_open.h) replaced a missing, empty or damaged index.db by a new one and
// the segment store rebuilt its registry from the segments; here the catalog is rebuilt from
// the peers with this peer's own keys, by the same recovery `cairn recover` runs
// (Daemon::RecoverIndex -> engine::RecoverIndex), as a job of the local API.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"
#include "cairn/net/peer_client.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// How long a rebuild waits for the first peer to answer (RecoveryOptions::wait_for_peers), and
// how long the start-up check waits for peers before giving up asking.
constexpr auto kRebuildWaitForPeers = std::chrono::minutes(5);
constexpr auto kCheckWaitForPeers = std::chrono::minutes(10);

Json RecoverProgressJson(const engine::RecoverProgress& p) {
  return Json{
      {"peers_listed", p.peers_listed.load()}, {"blobs_listed", p.blobs_listed.load()},
      {"headers_read", p.headers_read.load()}, {"snapshots_opened", p.snapshots_opened.load()},
      {"trees_read", p.trees_read.load()},     {"chunks_recorded", p.chunks_recorded.load()}};
}

}  // namespace

absl::Status Daemon::IndexReady(const std::string& what) const {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (index_state_ != "rebuilding") return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("cannot ", what, " now: this peer's index is being rebuilt from the peers (",
                   api::SanitizeUtf8(index_problem_),
                   "); `cairn status` shows when it is done (job ", index_job_, ")"));
}

api::IndexStatus Daemon::GetIndexStatus() const {
  std::lock_guard<std::mutex> lock(index_mu_);
  api::IndexStatus r;
  r.state = index_state_;
  if (!index_problem_.empty()) r.problem = index_problem_;
  if (!index_open_.kept_aside.empty()) r.kept_aside = index_open_.kept_aside;
  if (!index_job_.empty()) r.job_id = index_job_;
  if (!index_error_.empty()) r.error = index_error_;
  r.rebuilt = index_result_;
  return r;
}

absl::StatusOr<std::string> Daemon::StartIndexRebuild() {
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    if (index_state_ == "rebuilding" && !index_job_.empty()) return index_job_;
  }
  spdlog::info("index: rebuilding this peer's catalog from the peers (requested)");
  return StartIndexRebuildJob("");
}

absl::StatusOr<std::string> Daemon::StartIndexRebuildJob(const std::string& why) {
  auto progress = std::make_shared<engine::RecoverProgress>();
  JobFunctions fns;
  fns.progress = [progress] { return RecoverProgressJson(*progress); };
  fns.run = [this, progress](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    RecoveryOptions ro;
    ro.wait_for_peers = kRebuildWaitForPeers;
    absl::StatusOr<engine::RecoverReport> report = RecoverIndex(ro, progress.get(), &cancel);
    std::lock_guard<std::mutex> lock(index_mu_);
    if (absl::IsNotFound(report.status())) {
      // The peers hold no snapshot of this owner: nothing to rebuild (no backup finished yet).
      spdlog::warn("index: nothing to rebuild: {}", api::SanitizeUtf8(report.status().ToString()));
      index_state_ = "rebuilt";
      index_error_.clear();
      api::IndexRebuildSummary& summary = index_result_.emplace();
      summary.complete = true;
      summary.note = std::string(report.status().message());
      api::IndexRebuildAnswer nothing;
      nothing.complete = true;
      nothing.note = std::string(report.status().message());
      return api::ToJson(nothing);
    }
    if (!report.ok()) {
      index_state_ = "failed";
      index_error_ = report.status().ToString();
      if (absl::IsCancelled(report.status())) {
        spdlog::info("index: rebuild cancelled; run `cairn index rebuild` to go on");
        return report.status();
      }
      spdlog::error(
          "index: rebuilding the catalog from the peers failed: {}; run `cairn index rebuild` "
          "to try again",
          api::SanitizeUtf8(index_error_));
      return report.status();
    }
    Json j = api::ToJson(IndexRebuildAnswerOf(*report));
    index_state_ = "rebuilt";
    index_error_.clear();
    api::IndexRebuildSummary& summary = index_result_.emplace();
    summary.complete = report->complete();
    summary.snapshots = report->snapshots.size();
    summary.chunks = report->chunks;
    summary.peers_listed.assign(report->peers_listed.begin(), report->peers_listed.end());
    summary.missing_chunks = report->missing_chunks;
    summary.chunks_below_target = report->chunks_below_target;
    spdlog::log(
        report->complete() ? spdlog::level::warn : spdlog::level::err,
        "index: rebuilt from peer(s) {}: {} snapshot(s), {} chunk(s) from {} blob(s){}",
        absl::StrJoin(report->peers_listed, ", "), report->snapshots.size(), report->chunks,
        report->blobs,
        report->complete()
            ? ""
            : absl::StrCat("; incomplete: ", report->snapshots_unreadable,
                           " snapshot blob(s) unreadable, ", report->missing_chunks,
                           " chunk(s) on no live peer, ", report->errors.size(), " error(s)"));
    return j;
  };
  std::string before_state, before_problem;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    before_state = index_state_;
    before_problem = index_problem_;
    index_state_ = "rebuilding";
    if (!why.empty()) index_problem_ = why;
    if (index_problem_.empty()) index_problem_ = "rebuild requested";
  }
  absl::StatusOr<std::string> id = jobs_->Start(JobKind::kIndexRebuild, /*exclusive=*/true, fns);
  std::lock_guard<std::mutex> lock(index_mu_);
  if (!id.ok()) {
    if (index_state_ == "rebuilding") {
      index_state_ = before_state;
      index_problem_ = before_problem;
    }
    return id.status();
  }
  index_job_ = *id;
  return id;
}

void Daemon::IndexLoop() {
  // Sleeps up to `d`; false once the daemon is stopping.
  auto wait = [this](std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(ping_mu_);
    return !ping_cv_.wait_for(lock, d, [this] { return stopping_; });
  };
  if (!index_open_.problem.empty()) {
    spdlog::warn(
        "index: rebuilding this peer's catalog from the peers in the background "
        "(`cairn status` shows progress)");
    absl::StatusOr<std::string> id = StartIndexRebuildJob(index_open_.problem);
    if (!id.ok()) {
      std::lock_guard<std::mutex> lock(index_mu_);
      index_state_ = "failed";
      index_error_ = id.status().ToString();
      spdlog::error("index: cannot start the rebuild: {}", api::SanitizeUtf8(index_error_));
    }
    return;
  }
  // A catalog without snapshots: a new peer, or one whose index.db was replaced (restored
  // from an old copy, made anew by hand). If a peer holds blobs of this owner, backups were
  // made that this catalog does not know about.
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    if (index_state_ != "ok") return;
    index_state_ = "checking";
  }
  auto settle_ok = [this] {
    std::lock_guard<std::mutex> lock(index_mu_);
    if (index_state_ == "checking") index_state_ = "ok";
  };
  const auto settle =
      std::max<std::chrono::milliseconds>(3 * config_.ping_interval, std::chrono::seconds(2));
  const auto deadline = Clock::now() + kCheckWaitForPeers;
  std::vector<PeerId> alive;
  auto first_alive = Clock::time_point::max();
  while (true) {
    alive.clear();
    size_t known = 0;
    for (const engine::StoragePeer& p : peer_set_->Peers()) {
      ++known;
      if (p.alive) alive.push_back(p.id);
    }
    const auto now = Clock::now();
    if (!alive.empty() && first_alive == Clock::time_point::max()) first_alive = now;
    if (!alive.empty() && (alive.size() == known || now - first_alive >= settle)) break;
    if (now >= deadline) {
      spdlog::info("index: no peer answered; not checking whether peers hold blobs of this peer");
      settle_ok();
      return;
    }
    if (!wait(std::chrono::milliseconds(200))) return;
  }
  for (PeerId id : alive) {
    if (backup_requested_) break;  // a backup of our own puts blobs on the peers now
    std::shared_ptr<net::PeerClient> client = peer_set_->Client(id);
    if (!client) continue;
    absl::StatusOr<net::BlobListPage> page = client->ListBlobs(config_.peer_id, std::nullopt, 1);
    if (!page.ok() || page->blobs.empty()) continue;
    absl::StatusOr<index::CatalogStats> cs = catalog_->Stats();
    absl::StatusOr<std::vector<index::SnapshotRecord>> snaps = catalog_->ListSnapshots();
    if (backup_requested_ || !cs.ok() || cs->chunks > 0 || !snaps.ok() || !snaps->empty()) break;
    const std::string why =
        absl::StrCat("index.db knows no snapshot, but peer ", id,
                     " holds blobs of this peer: the index was lost or replaced by an empty one");
    spdlog::error(
        "index: {}; rebuilding it from the peers in the background (`cairn status` "
        "shows progress)",
        why);
    absl::StatusOr<std::string> job = StartIndexRebuildJob(why);
    if (!job.ok()) {
      spdlog::error("index: cannot start the rebuild: {}",
                    api::SanitizeUtf8(job.status().ToString()));
      settle_ok();
    }
    return;
  }
  settle_ok();
}

}  // namespace cairn::daemon
