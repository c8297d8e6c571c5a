#include "cairn/engine/gc.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/engine/rewrite.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {
namespace {

constexpr size_t kBatch = 1000;

using ChunkSet = std::unordered_set<ChunkId, ChunkIdHash>;

bool Cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(); }

std::unique_lock<std::shared_mutex> LockExclusive(const EngineContext& ctx) {
  if (!ctx.gc_lock) return {};
  return std::unique_lock(*ctx.gc_lock);
}

// Chunk id -> the copies target the snapshots that reference it ask for (the largest).
using TargetMap = std::unordered_map<ChunkId, uint32_t, ChunkIdHash>;

// Copies a copies chunk of `snapshot` wants: its copies, or m+1 for an erasure-coded snapshot
// (whose small chunks are stored as copies; chunk_io.h Redundancy::CopiesForCopiesChunk).
uint32_t CopiesTarget(const format::Snapshot& snapshot) {
  return SnapshotRedundancy(snapshot).CopiesForCopiesChunk();
}

// Adds every chunk `snap` references to `marked` with at least `target`. Trees already walked
// (shared with another snapshot) are not walked again: a tree's id is the hash of its content,
// and snapshots are marked in descending target order, so the first walk of a tree carried
// the largest target any snapshot gives it.
absl::Status Mark(const EngineContext& ctx, const ports::SnapshotRecord& snap, uint32_t target,
                  TargetMap& marked, ChunkSet& walked, GcProgress* progress,
                  const std::atomic<bool>* cancel) {
  auto mark = [&](const ChunkId& id) {
    auto [it, inserted] = marked.try_emplace(id, target);
    if (!inserted) it->second = std::max(it->second, target);
  };
  mark(snap.id);
  std::vector<ChunkId> trees = {snap.snapshot.root};
  while (!trees.empty()) {
    if (Cancelled(cancel)) return absl::CancelledError("garbage collection cancelled");
    ChunkId id = trees.back();
    trees.pop_back();
    if (!walked.insert(id).second) continue;
    mark(id);
    auto tree = LoadTree(ctx, id);
    if (!tree.ok()) {
      return Annotate(tree.status(),
                      absl::StrCat("garbage collection: snapshot ", snap.id.ShortHex(), ": tree ",
                                   id.Hex(), " cannot be read, nothing was deleted"));
    }
    if (progress) progress->trees++;
    for (const auto& e : tree->entries) {
      for (const ChunkId& c : e.chunks) mark(c);
      if (e.subtree) trees.push_back(*e.subtree);
    }
  }
  return absl::OkStatus();
}

// Mark and sweep; with `collect` false only the targets are set (RecomputeTargets).
absl::StatusOr<GcReport> MarkAndSweep(const EngineContext& ctx, const GcOptions& options,
                                      bool collect, GcProgress* progress,
                                      const std::atomic<bool>* cancel) {
  if (!ctx.catalog) return absl::FailedPreconditionError("garbage collection: no catalog");
  std::unique_lock<std::shared_mutex> lock;
  if (ctx.gc_lock) {
    lock = std::unique_lock(*ctx.gc_lock, std::try_to_lock);
    if (!lock.owns_lock()) {
      if (progress) progress->phase = GcProgress::Phase::kWaitingForLock;
      lock.lock();  // until running backups, checks, repairs and rewrites are done
    }
  }
  GcReport report;

  // Mark, largest target first (see Mark).
  if (progress) progress->phase = GcProgress::Phase::kMarking;
  CAIRN_ASSIGN_OR_RETURN(auto snapshots, ctx.catalog->ListSnapshots());
  std::stable_sort(snapshots.begin(), snapshots.end(), [](const auto& a, const auto& b) {
    return CopiesTarget(a.snapshot) > CopiesTarget(b.snapshot);
  });
  if (progress) progress->snapshots_total = snapshots.size();
  TargetMap marked;
  ChunkSet walked;
  for (const auto& snap : snapshots) {
    CAIRN_RETURN_IF_ERROR(
        Mark(ctx, snap, CopiesTarget(snap.snapshot), marked, walked, progress, cancel));
    report.snapshots++;
    if (progress) progress->snapshots_done++;
  }
  walked.clear();
  report.referenced_chunks = marked.size();

  // Sweep: first list what is unreferenced and which targets change (paging by id is then
  // undisturbed by deletions).
  if (progress) progress->phase = GcProgress::Phase::kSweeping;
  std::vector<ChunkId> garbage;
  std::vector<ports::ChunkTarget> retarget;
  std::optional<ChunkId> after;
  while (true) {
    if (Cancelled(cancel)) return absl::CancelledError("garbage collection cancelled");
    CAIRN_ASSIGN_OR_RETURN(auto page, ctx.catalog->ListChunks(after, kBatch));
    for (const auto& c : page) {
      if (progress) progress->chunks_scanned++;
      auto it = marked.find(c.id);
      if (it != marked.end()) {
        // Erasure-coded chunks keep k+m: their scheme fixes it (Catalog::SetChunkTargets).
        if (!c.erasure() && c.target != it->second) {
          (c.target > it->second ? report.targets_lowered : report.targets_raised)++;
          retarget.push_back({c.id, it->second});
        }
        continue;
      }
      if (!collect) continue;
      const uint64_t blobs = c.holders.size() + c.shards.size() + c.extras.size();
      report.unreferenced_chunks++;
      report.unreferenced_blobs += blobs;
      report.unreferenced_bytes += c.blob_size * blobs;
      garbage.push_back(c.id);
    }
    if (page.size() < kBatch) break;
    after = page.back().id;
  }
  if (!options.dry_run) {
    for (size_t i = 0; i < retarget.size(); i += kBatch) {
      if (Cancelled(cancel)) return absl::CancelledError("garbage collection cancelled");
      std::span<const ports::ChunkTarget> batch(retarget.data() + i,
                                                std::min(kBatch, retarget.size() - i));
      CAIRN_RETURN_IF_ERROR(ctx.catalog->SetChunkTargets(batch).status());
    }
    for (size_t i = 0; i < garbage.size(); i += kBatch) {
      if (Cancelled(cancel)) return absl::CancelledError("garbage collection cancelled");
      std::vector<ChunkId> batch(
          garbage.begin() + static_cast<std::ptrdiff_t>(i),
          garbage.begin() + static_cast<std::ptrdiff_t>(std::min(garbage.size(), i + kBatch)));
      CAIRN_ASSIGN_OR_RETURN(uint64_t queued, ctx.catalog->DeleteChunks(batch));
      report.deletions_queued += queued;
    }
  }
  if (progress) progress->phase = GcProgress::Phase::kDone;
  return report;
}

}  // namespace

absl::StatusOr<GcReport> CollectGarbage(const EngineContext& ctx, const GcOptions& options,
                                        GcProgress* progress, const std::atomic<bool>* cancel) {
  return MarkAndSweep(ctx, options, /*collect=*/true, progress, cancel);
}

absl::StatusOr<GcReport> RecomputeTargets(const EngineContext& ctx, GcProgress* progress,
                                          const std::atomic<bool>* cancel) {
  return MarkAndSweep(ctx, GcOptions{}, /*collect=*/false, progress, cancel);
}

absl::StatusOr<DeliveryReport> DeliverDeletions(const EngineContext& ctx,
                                                const std::atomic<bool>* cancel) {
  if (!ctx.catalog || !ctx.peers) {
    return absl::FailedPreconditionError("deliver deletions: no catalog or peers");
  }
  DeliveryReport report;
  CAIRN_ASSIGN_OR_RETURN(auto pending_peers, ctx.catalog->PeersWithPendingDeletions());
  std::map<PeerId, bool> alive;
  for (const auto& p : ctx.peers->Peers()) alive[p.id] = p.alive;
  for (PeerId peer : pending_peers) {
    auto it = alive.find(peer);
    auto client = it != alive.end() && it->second ? ctx.peers->Client(peer) : nullptr;
    if (!client) {
      report.peers_skipped++;  // dead or gone: its queue waits for it
      continue;
    }
    while (true) {
      if (Cancelled(cancel)) return absl::CancelledError("deletion delivery cancelled");
      // One batch under the exclusive lock: no placement of these blobs can be recorded (and
      // their deletion cancelled) between reading the queue and acknowledging it.
      auto lock = LockExclusive(ctx);
      CAIRN_ASSIGN_OR_RETURN(auto batch, ctx.catalog->ListPendingDeletions(peer, kBatch));
      if (batch.empty()) {
        report.peers_done++;
        break;
      }
      std::vector<BlobKey> keys;
      keys.reserve(batch.size());
      for (const auto& b : batch) keys.push_back({ctx.owner, b.chunk, b.shard});
      auto deleted = client->DeleteBlobs(keys);
      if (!deleted.ok()) {
        const auto code = deleted.status().code();
        if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded) {
          report.peers_unreachable++;
          ctx.peers->ReportFailure(peer);
        } else {
          report.errors.push_back(
              absl::StrCat("peer ", peer, ": delete blobs: ", deleted.status().ToString()));
        }
        break;  // the batch stays queued
      }
      CAIRN_RETURN_IF_ERROR(ctx.catalog->AckDeletions(peer, batch));
      report.delivered += batch.size();
      report.blobs_deleted += *deleted;
    }
  }
  CAIRN_ASSIGN_OR_RETURN(auto stats, ctx.catalog->Stats());
  report.pending = stats.pending_deletions;
  return report;
}

}  // namespace cairn::engine
