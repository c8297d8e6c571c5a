// Daemon::RecoverIndex (daemon/recover.h): wait for the cluster, then rebuild the index.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"

namespace cairn::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(100);

}  // namespace

api::IndexRebuildAnswer IndexRebuildAnswerOf(const engine::RecoverReport& r) {
  api::IndexRebuildAnswer a;
  a.complete = r.complete();
  a.peers_listed.assign(r.peers_listed.begin(), r.peers_listed.end());
  a.peers_not_listed.assign(r.peers_not_listed.begin(), r.peers_not_listed.end());
  a.blobs = r.blobs;
  a.chunks = r.chunks;
  a.data_chunks = r.data_chunks;
  a.tree_chunks = r.tree_chunks;
  a.snapshot_chunks = r.snapshot_chunks;
  a.erasure_chunks = r.erasure_chunks;
  a.headers_read = r.headers_read;
  a.trees = r.trees;
  for (const index::SnapshotRecord& s : r.snapshots) a.snapshots.push_back(api::SnapshotInfoOf(s));
  a.snapshots_unreadable = r.snapshots_unreadable;
  a.missing_chunks = r.missing_chunks;
  a.chunks_below_target = r.chunks_below_target;
  a.plain_sizes_unknown = r.plain_sizes_unknown;
  a.errors = r.errors;
  return a;
}

absl::StatusOr<engine::RecoverReport> Daemon::RecoverIndex(const RecoveryOptions& options,
                                                           engine::RecoverProgress* progress,
                                                           const std::atomic<bool>* cancel) {
  auto status = [&](const std::string& line) {
    spdlog::info("recover: {}", line);
    if (options.on_status) options.on_status(line);
  };
  const auto settle =
      options.settle.count() > 0
          ? options.settle
          : std::max<std::chrono::milliseconds>(3 * config_.ping_interval, std::chrono::seconds(2));
  const auto start = Clock::now();
  const auto deadline = start + options.wait_for_peers;
  status(absl::StrCat(
      "waiting for peers (seeds: ",
      config_.seeds.empty() ? "none, multicast only" : absl::StrJoin(config_.seeds, ", "), ")"));
  std::set<PeerId> alive;
  auto last_change = start;
  while (true) {
    if (cancel != nullptr && cancel->load()) return absl::CancelledError("recovery cancelled");
    CAIRN_RETURN_IF_ERROR(fatal_status());
    std::set<PeerId> now_alive;
    size_t known = 0;
    for (const cluster::PeerView& v : membership_->Peers()) {
      if (v.self || v.info.id == config_.peer_id) continue;
      ++known;
      if (v.state == cluster::PeerState::kAlive) now_alive.insert(v.info.id);
    }
    const auto now = Clock::now();
    if (now_alive != alive) {
      if (!now_alive.empty()) {
        status(absl::StrCat(now_alive.size(), " of ", known,
                            " known peer(s) alive: ", absl::StrJoin(now_alive, ", ")));
      }
      alive = std::move(now_alive);
      last_change = now;
    }
    if (!alive.empty() && (alive.size() == known || now - last_change >= settle)) break;
    if (alive.empty()) {
      std::vector<std::string> refused;
      std::vector<std::string> cert_reasons;
      {
        std::lock_guard<std::mutex> lock(ping_mu_);
        refused.assign(unauthenticated_targets_.begin(), unauthenticated_targets_.end());
        for (const auto& [target, why] : refused_certs_) {
          refused.push_back(target);
          cert_reasons.push_back(absl::StrCat(target, ": ", why));
        }
      }
      // Every address we ping refuses us: a key of another cluster. No need to wait longer.
      std::vector<std::string> targets = membership_->PingTargets();
      bool all_refused = !targets.empty() && now - start >= settle &&
                         std::all_of(targets.begin(), targets.end(), [&](const std::string& t) {
                           return std::find(refused.begin(), refused.end(), t) != refused.end();
                         });
      if (all_refused || now >= deadline) {
        std::string why;
        if (!cert_reasons.empty()) {
          // A recovery key whose owner key is not this peer's makes another TLS certificate
          // than the one members pinned (docs/security.md "TLS between peers").
          why = absl::StrCat("TLS certificate refused (is the recovery key this peer's?): ",
                             absl::StrJoin(cert_reasons, "; "));
        } else if (!refused.empty()) {
          why = absl::StrCat(
              "the peer(s) at ", absl::StrJoin(refused, ", "),
              " refused this peer's cluster key: is the recovery key from this cluster? (or the "
              "clocks are more than 5 minutes apart)");
        } else if (targets.empty()) {
          why = "no peer is known: pass --seed HOST:PORT of a running member";
        } else {
          why = absl::StrCat("none of ", absl::StrJoin(targets, ", "),
                             " answered: are the peers running, and is --seed right?");
        }
        return absl::UnavailableError(absl::StrCat(
            "no peer answered within ",
            std::chrono::duration_cast<std::chrono::seconds>(now - start).count(), " s: ", why));
      }
    } else if (now >= deadline + settle) {
      break;  // peers keep changing: go with what answers
    }
    std::this_thread::sleep_for(kPoll);
  }

  status(absl::StrCat("listing the blobs of peer ", config_.peer_id, " on ", alive.size(),
                      " peer(s)"));
  absl::StatusOr<engine::RecoverReport> report =
      engine::RecoverIndex(ctx_, options.engine, progress, cancel);
  if (!report.ok()) {
    spdlog::info("recover: {}", api::SanitizeUtf8(report.status().ToString()));
    return report.status();
  }
  spdlog::info("recover: {} snapshot(s), {} chunk(s) from {} blob(s) on {} peer(s){}",
               report->snapshots.size(), report->chunks, report->blobs, report->peers_listed.size(),
               report->complete() ? "" : " (incomplete)");
  return report;
}

}  // namespace cairn::daemon
