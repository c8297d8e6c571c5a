// What each snapshot survives now (docs/dashboard.md "Pages", Health; docs/cli.md "Local HTTP
// API", GET /v1/health): from the catalog's *current* placements and the peers' states, without
// asking any peer (unlike check, engine/check.h, which asks every holder). For every snapshot,
// over the chunks it references (the snapshot blob, its trees and their files' chunks):
//  - survives_peers: how many storage peers, whichever they are, can be lost with every chunk
//    still readable: the minimum over its chunks of PeerLossesSurvived (copies: alive holders
//    - 1; k+m: the worst loss of f alive shard holders still leaving k shard indices);
//  - single-point hosts: hosts whose loss (every alive peer with that host id) would leave some
//    chunk unreadable;
//  - lost chunks: no copy, or fewer than k shard indices, on alive peers (or unknown to the
//    catalog);
//  - rebuild bytes: the blob bytes the most loaded alive peer holds for the snapshot, i.e. what
//    a repair would have to rebuild if that peer died.
// A placement counts only when its peer is alive (suspect and dead peers are left out, as check
// does); the home peer never holds its own blobs.
//
// Cost: one FindChunk per chunk reference, and memory flat in the chunks per snapshot: each
// tree's totals (its own chunks and everything below it) are computed once and kept, keyed by
// tree id, in O(alive peers + hosts) each, so the subtrees that snapshots share (every
// directory that did not change) are walked once for all of them. Chunks are counted once per
// tree that references them: a chunk referenced from two directories (identical files) counts
// twice in lost_chunks and rebuild_bytes, an upper bound. The daemon runs this in the
// background, not per request.
//
// Thread-safety: a stateless function over a thread-safe context.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"

namespace cairn::engine {

struct SnapshotSurvival {
  ChunkId id;
  int64_t time_ns = 0;
  std::vector<std::string> paths;  // the snapshot's source paths, raw bytes
  uint64_t chunks = 0;             // chunk references evaluated (see the file comment)
  // Peer losses every readable chunk survives (0 when one more lost peer loses some chunk, and
  // whenever a chunk is lost already).
  uint32_t survives_peers = 0;
  std::vector<std::string> single_point_hosts;  // host ids, sorted
  uint64_t lost_chunks = 0;
  uint64_t rebuild_bytes = 0;  // blob bytes of the most loaded alive peer (0: none holds any)
  PeerId rebuild_peer = 0;     // that peer (0 when rebuild_bytes is 0)
  std::string error;           // a tree that could not be read: the numbers cover the rest
};

struct SnapshotSurvivalReport {
  std::vector<SnapshotSurvival> snapshots;  // as ListSnapshots: oldest first
  uint64_t alive_storage_peers = 0;
  uint64_t chunk_lookups = 0;  // FindChunk calls made (trees shared by snapshots: once)
};

// Computes the report for every snapshot in the catalog. Takes ctx.gc_lock shared for one
// snapshot at a time. CANCELLED when *cancel turns true; the catalog's errors otherwise (a tree
// that cannot be loaded is reported in SnapshotSurvival::error instead).
absl::StatusOr<SnapshotSurvivalReport> ComputeSnapshotSurvival(
    const EngineContext& ctx, const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
