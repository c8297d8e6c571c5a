// The space and lifecycle feature of the local API (api_lifecycle.h; docs/cli.md "Local HTTP
// API"): its routes and the forget and delete jobs.
#include "cairn/daemon/api_lifecycle.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/daemon/jobs.h"
#include "cairn/engine/gc.h"
#include "cairn/engine/retention.h"
#include "cairn/engine/rewrite.h"
#include "cairn/engine/snapshot_read.h"
#include "cairn/engine/versions.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

// Forget and delete need the engine, the job manager and the garbage collector.
absl::Status Available(const ApiContext& ctx, const std::string& what) {
  CAIRN_RETURN_IF_ERROR(ctx.Available(what));
  if (!ctx.collect_garbage) return absl::UnimplementedError(what + " is not available");
  return absl::OkStatus();
}

}  // namespace

api::ForgetDecision ForgetDecisionOf(const engine::RetentionDecision& decision) {
  return api::ForgetDecision{api::SnapshotInfoOf(decision.snapshot), decision.reasons};
}

std::vector<ApiRoute> LifecycleApi::Routes() {
  return {
      {"POST", "/v1/forget",
       JobRoute<api::ForgetRequest>([this](const auto& r) { return StartForget(r); })},
      {"POST", "/v1/delete",
       JobRoute<api::DeleteRequest>([this](const auto& r) { return StartDelete(r); })},
      {"POST", "/v1/reclaim",
       JobRoute<api::ReclaimRequest>([this](const auto& r) { return StartReclaim(r); })},
      // No body to decode: any (even none) is accepted.
      {"POST", "/v1/index/rebuild", Wrap([this](const ApiRequest&) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string id, StartIndexRebuild());
         return Reply{202, api::ToJson(api::JobStarted{id})};
       })},
  };
}

absl::StatusOr<std::string> LifecycleApi::StartForget(const api::ForgetRequest& request) {
  CAIRN_RETURN_IF_ERROR(Available(ctx_, "forget"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("forget"));
  ports::Catalog* catalog = ctx_.engine->catalog;
  // Resolve named snapshots now, so that a typo is an error of the request, not of the job.
  std::vector<ports::SnapshotRecord> named;
  for (const std::string& spec : request.snapshots) {
    CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord r, engine::ResolveSnapshot(catalog, spec));
    named.push_back(std::move(r));
  }
  engine::RetentionPolicy policy;
  if (named.empty()) policy = request.policy;
  auto phase = std::make_shared<std::atomic<int>>(0);  // 0 choose, 1 collect, 2 deliver
  JobFunctions fns;
  fns.progress = [phase] {
    static const char* kPhases[] = {"forget", "garbage collection", "delete blobs"};
    return Json{{"phase", kPhases[std::clamp(phase->load(), 0, 2)]}};
  };
  fns.run = [engine = ctx_.engine, collect = ctx_.collect_garbage, catalog, request, named, policy,
             phase](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    std::vector<engine::RetentionDecision> decisions;
    CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> all, catalog->ListSnapshots());
    if (!named.empty()) {
      std::set<ChunkId> ids;
      for (const auto& r : named) ids.insert(r.id);
      for (const auto& r : all) {
        engine::RetentionDecision d;
        d.snapshot = r;
        d.keep = ids.count(r.id) == 0;
        d.reasons.push_back(d.keep ? "not named" : "named on the command line");
        decisions.push_back(std::move(d));
      }
    } else {
      decisions = engine::ApplyRetention(all, policy);
    }
    api::ForgetAnswer out;
    out.dry_run = request.dry_run;
    for (const auto& d : decisions)
      (d.keep ? out.kept : out.removed).push_back(ForgetDecisionOf(d));
    if (request.dry_run) return api::ToJson(out);
    for (const auto& d : decisions) {
      if (d.keep) continue;
      CAIRN_RETURN_IF_ERROR(catalog->RemoveSnapshot(d.snapshot.id).status());
    }
    spdlog::info("forget: {} snapshots removed, {} kept", out.removed.size(), out.kept.size());
    if (request.prune && !out.removed.empty()) {
      *phase = 1;
      CAIRN_ASSIGN_OR_RETURN(api::GarbageCollected collected, collect(cancel));
      out.gc = collected.gc;
      out.deletions = collected.deletions;
    } else if (!out.removed.empty()) {
      // No collection, but the chunks' targets are now those of the snapshots that remain
      // (docs/operations.md "Redundancy targets").
      *phase = 1;
      engine::GcProgress progress;
      CAIRN_ASSIGN_OR_RETURN(engine::GcReport targets,
                             engine::RecomputeTargets(*engine, &progress, &cancel));
      spdlog::info("forget: {} chunk targets lowered, {} raised", targets.targets_lowered,
                   targets.targets_raised);
      api::GcInfo& t = out.targets.emplace();
      t.targets_lowered = targets.targets_lowered;
      t.targets_raised = targets.targets_raised;
    }
    return api::ToJson(out);
  };
  return ctx_.jobs->Start(JobKind::kForget, /*exclusive=*/true, std::move(fns));
}

absl::StatusOr<std::string> LifecycleApi::StartDelete(const api::DeleteRequest& request) {
  CAIRN_RETURN_IF_ERROR(Available(ctx_, "delete"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("delete"));
  ports::Catalog* catalog = ctx_.engine->catalog;
  std::vector<ports::SnapshotRecord> targets;
  if (!request.snapshot.empty()) {
    CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord r,
                           engine::ResolveSnapshot(catalog, request.snapshot));
    targets.push_back(std::move(r));
  } else {
    CAIRN_ASSIGN_OR_RETURN(targets, catalog->ListSnapshots());
  }
  std::string abs = request.path;
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  auto done = std::make_shared<std::atomic<uint64_t>>(0);
  const uint64_t total = targets.size();
  JobFunctions fns;
  fns.progress = [done, total] {
    return Json{{"snapshots_total", total}, {"snapshots_done", done->load()}};
  };
  fns.run = [engine = ctx_.engine, collect = ctx_.collect_garbage, targets, abs,
             done](const std::atomic<bool>& cancel) -> absl::StatusOr<Json> {
    api::DeleteAnswer out;
    out.path = abs;
    for (const ports::SnapshotRecord& record : targets) {
      if (cancel) return absl::CancelledError("delete cancelled");
      std::optional<std::string> inner = engine::SnapshotPathFor(record.snapshot, abs);
      engine::RewriteResult result;
      result.changed = false;
      if (inner) {
        CAIRN_ASSIGN_OR_RETURN(result,
                               engine::RemovePath(*engine, record, *inner,
                                                  engine::SnapshotRedundancy(record.snapshot)));
      }
      ++*done;
      if (!result.changed) {
        ++out.unchanged;
        continue;
      }
      spdlog::info("delete: snapshot {} rewritten as {} without {}", record.id.ShortHex(),
                   result.snapshot.id.ShortHex(), api::SanitizeUtf8(abs));
      out.rewritten.push_back({record.id.Hex(), record.id.ShortHex(), result.snapshot.id.Hex(),
                               result.snapshot.id.ShortHex(), result.removed_files,
                               result.removed_bytes});
    }
    if (out.rewritten.empty()) {
      return absl::NotFoundError(absl::StrCat("'", api::SanitizeUtf8(abs), "' is in none of the ",
                                              targets.size(),
                                              " snapshot(s) searched; nothing was changed"));
    }
    CAIRN_ASSIGN_OR_RETURN(api::GarbageCollected collected, collect(cancel));
    out.gc = collected.gc;
    out.deletions = collected.deletions;
    return api::ToJson(out);
  };
  return ctx_.jobs->Start(JobKind::kDelete, /*exclusive=*/true, std::move(fns));
}

absl::StatusOr<std::string> LifecycleApi::StartReclaim(const api::ReclaimRequest& request) {
  if (!ctx_.start_reclaim) return absl::UnimplementedError("reclaim is not available");
  return ctx_.start_reclaim(request);
}

absl::StatusOr<std::string> LifecycleApi::StartIndexRebuild() {
  if (!ctx_.start_index_rebuild) {
    return absl::UnimplementedError("index rebuild is not available");
  }
  return ctx_.start_index_rebuild();
}

}  // namespace cairn::daemon
