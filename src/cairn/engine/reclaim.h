// Reclaim, the storage side (docs/operations.md "Reclaiming space"; docs/architecture.md
// "Invariants and where they hold": a storage peer deletes a regular blob only when its owner
// asked, or after another peer has confirmed it stores the blob). A peer that takes space back
// hands what it holds to other peers: Evacuate evicts extra copies first (they are not counted
// toward any target), then moves regular blobs, each to the first peer in the placement order
// of its chunk (docs/architecture.md "Placement") that holds no blob of that chunk and has
// room, confirmed stored there before it is deleted here. Each move is queued in a
// MovedOutbox; DeliverMovedNotices tells the owners (BlobMoved), also later when an owner was
// offline. On the owner, ApplyBlobMoves updates the catalog (Catalog::MovePlacement).
//
// The caller lowers the store's quota to the target first (ports::BlobStore::SetQuota), so
// that new puts do not refill what is being emptied.
//
// Thread-safety: stateless functions over thread-safe stores and peer sets. Run one Evacuate
// at a time per store.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"
#include "cairn/engine/peer_set.h"
#include "cairn/env/clock.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/placement/placement.h"
#include "cairn/ports/blob_store.h"
#include "cairn/ports/peer_client.h"

namespace cairn::engine {

struct EvacuateContext {
  PeerId self = 0;                       // this storage peer
  ports::BlobStore* store = nullptr;     // what it holds
  ports::MovedOutbox* outbox = nullptr;  // BlobMoved notices not yet delivered
  PeerSet* peers = nullptr;              // the other peers; calls are made as `self`
  placement::Spread spread = placement::Spread::kHost;
  uint64_t rate = 0;            // bytes/s sent to other peers; 0 = unlimited
  env::Clock* clock = nullptr;  // for `rate`; null: the real clock
  // Waits for `rate` (env/rate_limiter.h); Interrupt() ends the evacuation (CANCELLED).
  // Null: sleeps in short slices and watches `cancel`.
  env::Sleeper* sleeper = nullptr;
};

// Live counters (bytes of blobs).
struct EvacuateProgress {
  std::atomic<uint64_t> bytes_total{0};  // regular bytes that must move (set at the start)
  std::atomic<uint64_t> bytes_moved{0};
  std::atomic<uint64_t> blobs_moved{0};
  std::atomic<uint64_t> bytes_evicted{0};  // extra copies dropped
  std::atomic<uint64_t> blobs_evicted{0};
};

struct EvacuateReport {
  uint64_t evicted_blobs = 0;  // extra copies dropped
  uint64_t evicted_bytes = 0;
  uint64_t moved_blobs = 0;  // regular blobs handed to other peers
  uint64_t moved_bytes = 0;
  uint64_t used_after = 0;  // the store's used bytes at the end
};

// Brings the store's used bytes down to `target_used` (0 empties it):
//  1. must_move = max(0, used - extra bytes - target_used). When the live other peers' free
//     space, sum of max(0, quota - used), is smaller, fails with RESOURCE_EXHAUSTED ("cannot
//     reclaim: N bytes must move but the other peers have only M bytes free; nothing was moved
//     or deleted") before touching anything.
//  2. Evicts extra copies (ports::BlobStore::EvictExtras) down to `target_used`.
//  3. Walks the regular blobs (ListHeld) in batches; for each batch one HasBlobs census per live
//     peer over every blob key of each chunk (shards 0..k+m-1 from the envelope header of an
//     erasure-coded shard, shard 0 of a copy) learns who holds any blob of the chunk. A blob
//     goes to the first peer of its chunk's placement order (live others, weight quota) that
//     is not its owner, holds no blob of the chunk and has room (quota - used >= size, tracked
//     here), on a host holding no blob of the chunk when one exists (kHost). PutBlob there;
//     only when that answers OK (stored or already stored) is the blob deleted here and the
//     move queued in `outbox`. A peer that refuses (full) or fails is skipped for the next.
// Returns the report when used <= target_used at the end; RESOURCE_EXHAUSTED naming how many
// blobs and bytes could not be placed otherwise (none of those was deleted); CANCELLED when
// `cancel` becomes true (what moved stays moved, and its notices are queued); store or outbox
// errors as they are. `progress` may be null.
absl::StatusOr<EvacuateReport> Evacuate(const EvacuateContext& ctx, uint64_t target_used,
                                        EvacuateProgress* progress,
                                        const std::atomic<bool>* cancel = nullptr);

// Delivers queued BlobMoved notices: for each owner in the outbox that is not known dead and
// has a client, sends its notices in batches (at most ports::kMaxKeysPerCall) and drops each
// batch the owner accepted. Notices for owners that are unreachable or refuse stay queued for a
// later call. Returns how many notices were delivered; outbox errors as they are.
absl::StatusOr<uint64_t> DeliverMovedNotices(ports::MovedOutbox* outbox, PeerSet* peers);

// The owner's side of BlobMoved: storage peer `from` handed these blobs to other peers. Under
// ctx.gc_lock (shared), records each move with Catalog::MovePlacement (a move of a chunk that
// was collected meanwhile queues the deletion of the moved blob instead). INVALID_ARGUMENT,
// nothing applied, when a key's owner is not ctx.owner or a move names `from` or the owner
// itself as the new holder; catalog errors as they are.
absl::Status ApplyBlobMoves(const EngineContext& ctx, PeerId from,
                            const std::vector<ports::MovedBlob>& moves);

}  // namespace cairn::engine
