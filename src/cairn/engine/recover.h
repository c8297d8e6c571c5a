// Rebuilding a lost home peer's index from the peers (docs/operations.md "Disaster recovery
// of a home peer"). Given only this owner's keys (from its recovery key, cluster/recovery_key.h)
// and a cluster to talk to, RecoverIndex:
//
//  1. lists this owner's blobs on every live peer (ListBlobs, paged): chunk ids, shards, sizes,
//     regular or extra, and the kind each storage peer recorded from the envelope at PutBlob;
//  2. reads the envelope header (GetBlob of one blob) of every chunk whose kind the peers did
//     not record (blobs stored before index migration 0004) and of every erasure-coded chunk
//     (shard indices above 0), whose k+m only the header carries;
//  3. fetches and opens every snapshot blob (AES-256-GCM with this owner's key: a wrong key
//     fails every tag) — when none opens, it stops with nothing written to the catalog;
//  4. walks the trees of every snapshot it opened, caching them in the catalog, to learn each
//     chunk's target (a copies chunk: the most copies any snapshot referencing it asked for,
//     N or m+1 — as backup records it) and the plaintext size of tree chunks and of the chunks
//     of single-chunk files, and to count chunks that a snapshot references but no live peer
//     holds;
//  5. records every chunk listed (also chunks no snapshot references: garbage collection then
//     deletes them as usual) with its placements — copies: target = max(regular holders found,
//     what the snapshots asked for), extra copies as extra placements; erasure: k+m from the
//     header and the (shard, peer) placements found — and finally the snapshots, under
//     ctx.gc_lock shared.
//
// Plaintext sizes of the chunks of multi-chunk files are unknown from the peers (the envelope
// stores the compressed length) and are recorded as 0, "unknown": the first restore (or mount
// read) of such a file then learns its chunk offsets by fetching its chunks in order, one at a
// time, and the catalog keeps each size learned (Catalog::AddChunk fills in a size of 0), so
// later restores of it are parallel again. Blobs on peers that are not alive during the recovery
// are not recorded; such chunks may look below target, and repair then adds copies elsewhere.
//
// Idempotent: running it again (or on a catalog that already knows some of it) only adds.
//
// Thread-safety: stateless apart from the context; uses options.threads worker threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

struct RecoverOptions {
  size_t list_page = 1000;  // blobs per ListBlobs call (1..ports::kMaxKeysPerCall)
  int threads = 8;          // concurrent header, snapshot and tree fetches
};

// Live counters, updated while a recovery runs.
struct RecoverProgress {
  std::atomic<uint64_t> peers_listed{0};
  std::atomic<uint64_t> blobs_listed{0};
  std::atomic<uint64_t> headers_read{0};
  std::atomic<uint64_t> snapshots_opened{0};
  std::atomic<uint64_t> trees_read{0};
  std::atomic<uint64_t> chunks_recorded{0};
};

struct RecoverReport {
  std::vector<PeerId> peers_listed;      // live peers whose blobs were listed, ascending
  std::vector<PeerId> peers_not_listed;  // known peers that were not alive, or failed
  uint64_t blobs = 0;                    // blobs of this owner listed (regular and extra)
  uint64_t chunks = 0;                   // distinct chunks recorded
  uint64_t data_chunks = 0;
  uint64_t tree_chunks = 0;
  uint64_t snapshot_chunks = 0;                  // snapshot blobs found (opened or not)
  uint64_t erasure_chunks = 0;                   // of `chunks`, erasure-coded
  uint64_t headers_read = 0;                     // blobs fetched to read their envelope header
  uint64_t trees = 0;                            // distinct trees walked and cached
  std::vector<ports::SnapshotRecord> snapshots;  // recovered, oldest first
  uint64_t snapshots_unreadable = 0;             // snapshot blobs that could not be opened
  // Chunks that a recovered snapshot references but no live peer listed (those files cannot
  // be restored unless a peer that holds them comes back).
  uint64_t missing_chunks = 0;
  uint64_t chunks_below_target = 0;  // recorded below their target (repair tops them up)
  uint64_t plain_sizes_unknown = 0;  // data chunks recorded with plain_size 0 (see file comment)
  std::vector<std::string> errors;   // problems that did not stop the recovery

  // Every snapshot blob opened, every tree read and every referenced chunk found.
  bool complete() const {
    return snapshots_unreadable == 0 && missing_chunks == 0 && errors.empty();
  }
};

// Rebuilds the catalog of owner ctx.owner from the live peers of ctx.peers (see file comment).
// `progress` and `cancel` may be null. Errors (the catalog is then untouched):
//  - UNAVAILABLE when no peer is alive, or no live peer could be listed;
//  - NOT_FOUND when the live peers hold no blob of this owner, or no snapshot blob;
//  - FAILED_PRECONDITION "this recovery key does not decrypt any snapshot: wrong key?" when
//    snapshot blobs were found and every one failed authentication (DATA_LOSS);
//  - UNAVAILABLE/DATA_LOSS when no snapshot could be fetched for other reasons;
//  - CANCELLED when `cancel` became true (what was recorded so far stays: run it again).
// Catalog errors are returned as they are.
absl::StatusOr<RecoverReport> RecoverIndex(const EngineContext& ctx, const RecoverOptions& options,
                                           RecoverProgress* progress,
                                           const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
