// Garbage collection (docs/operations.md "Forgetting snapshots and garbage collection"): after
// snapshots are forgotten (Catalog::RemoveSnapshot), the chunks no remaining snapshot
// references are dropped from the catalog and their blobs deleted from the peers that hold them.
//
// Two steps, so that an offline peer never blocks a collection:
//  1. CollectGarbage — mark: walk every snapshot in the catalog (its own chunk, every tree,
//     every file's content chunks) into a set; sweep: page through the catalog's chunks and
//     Catalog::DeleteChunks the unreferenced ones, which drops their records and queues, in the
//     same transaction, a deletion of every blob they had placed (regular and extra copies).
//     The queue is durable (the SQLite catalog), so it survives restarts.
//     The same pass sets every referenced copies chunk's target to the largest one the
//     remaining snapshots ask for (docs/operations.md "Redundancy targets"): the mark carries
//     each snapshot's copies (m+1 for an erasure-coded snapshot's small chunks), snapshots
//     walked in descending target order so that a shared tree is walked once with its largest
//     target, and the sweep batches the changed targets into Catalog::SetChunkTargets. So a
//     forgotten `--copies 5` snapshot no longer keeps its chunks "below target" for ever.
//  2. DeliverDeletions — sends each peer its queued deletions (DeleteBlobs) and drops them
//     from the queue once the peer confirmed them. A peer that is unreachable or dead keeps its
//     queue until a later delivery reaches it.
//
// The safety rule (docs/operations.md "Garbage collection"), on EngineContext::gc_lock:
//  - Backup (its whole run), repair, check, extra-copy placement, snapshot rewrite and applying
//    BlobMoved hold the lock shared. Mark+sweep holds it exclusive; delivery holds it exclusive
//    per batch (one ListPendingDeletions + DeleteBlobs call + AckDeletions).
//  - Catalog::AddChunk, by which a backup or repair records every placement, cancels pending
//    deletions of the blobs it records, in the same transaction.
// Why: a running backup deduplicates against chunks already in the catalog, and no snapshot
// references them until the backup records its own at the very end; so a chunk may only be
// swept when no snapshot references it AND no backup is running — the exclusive lock gives the
// second. And a blob placed again after its chunk was swept (a later backup storing the same
// content, which the storage peer may answer "already stored" while the old blob is still
// there) must not be deleted by the stale queued deletion: recording the placement cancels the
// deletion under the shared lock, which cannot interleave with a delivery batch in flight.
// Finally, never delete on an incomplete mark: when any tree cannot be read, nothing is swept.
//
// Thread-safety: stateless functions over a thread-safe context; concurrent calls are
// serialized by ctx.gc_lock (with a null gc_lock the caller must not run anything else at the
// same time).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"

namespace cairn::engine {

struct GcOptions {
  bool dry_run = false;  // mark and count, delete nothing
};

struct GcProgress {
  // kWaitingForLock only while another holder (a running backup...) keeps ctx.gc_lock.
  enum class Phase { kIdle, kWaitingForLock, kMarking, kSweeping, kDone };
  std::atomic<Phase> phase{Phase::kIdle};
  std::atomic<uint64_t> snapshots_total{0};
  std::atomic<uint64_t> snapshots_done{0};
  std::atomic<uint64_t> trees{0};           // trees walked
  std::atomic<uint64_t> chunks_scanned{0};  // catalog chunks swept over
};

struct GcReport {
  uint64_t snapshots = 0;            // snapshots walked
  uint64_t referenced_chunks = 0;    // distinct chunks they reference (snapshot blobs, trees, data)
  uint64_t unreferenced_chunks = 0;  // catalog chunks no snapshot references (dropped unless dry)
  // Blob bytes of the unreferenced chunks: sum of blob_size x placed blobs, extras included.
  uint64_t unreferenced_bytes = 0;
  uint64_t unreferenced_blobs = 0;  // their placed blobs, extras included
  uint64_t deletions_queued = 0;    // blob deletions queued (0 in a dry run)
  // Referenced copies chunks whose target changed to what the remaining snapshots ask for
  // (counted, not changed, in a dry run). Erasure-coded chunks keep k+m.
  uint64_t targets_lowered = 0;
  uint64_t targets_raised = 0;
};

// Marks and sweeps under ctx.gc_lock exclusive (when non-null). Sets targets and deletes in
// batches of at most 1000 chunks (one transaction each); a cancel between batches leaves a
// consistent, partly swept catalog.
// Errors: when a tree cannot be loaded, LoadTree's code (UNAVAILABLE, NOT_FOUND, DATA_LOSS...)
// with a message naming the snapshot and the tree, and nothing is deleted; CANCELLED on
// cancel; the catalog's errors. `progress` may be null.
absl::StatusOr<GcReport> CollectGarbage(const EngineContext& ctx, const GcOptions& options,
                                        GcProgress* progress,
                                        const std::atomic<bool>* cancel = nullptr);

// The mark and the target update of CollectGarbage without the sweep's deletions: after
// snapshots were forgotten without a collection (`forget --no-prune`). Same lock, errors and
// report (unreferenced counts stay 0).
absl::StatusOr<GcReport> RecomputeTargets(const EngineContext& ctx, GcProgress* progress,
                                          const std::atomic<bool>* cancel = nullptr);

struct DeliveryReport {
  uint64_t delivered = 0;           // queued deletions confirmed by their peer and dropped
  uint64_t blobs_deleted = 0;       // of those, blobs the peers still held (DeleteBlobs' count)
  uint64_t peers_done = 0;          // peers whose queue is now empty
  uint64_t peers_unreachable = 0;   // alive peers that did not answer (UNAVAILABLE/DEADLINE)
  uint64_t peers_skipped = 0;       // dead or unknown peers (queue kept)
  uint64_t pending = 0;             // deletions still queued afterwards (all peers)
  std::vector<std::string> errors;  // peers that refused (e.g. PERMISSION_DENIED), per peer
};

// Delivers queued deletions to every alive peer that has some, in batches of at most 1000
// blobs, each under ctx.gc_lock exclusive. A batch a peer did not confirm stays queued; an
// unreachable peer is counted and skipped, the others go on. Returns the report also when
// some peers failed; CANCELLED on cancel; the catalog's errors.
absl::StatusOr<DeliveryReport> DeliverDeletions(const EngineContext& ctx,
                                                const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
