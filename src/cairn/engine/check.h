// Check and repair (docs/architecture.md "Check, scrub and repair").
//
// Check: the home peer asks every holder of every chunk its snapshots reference whether it
// still holds the blob intact (HasBlobs, batched per peer); with read_data it fetches the blobs
// and verifies them (the storage peer's checksum — a mismatch there quarantines the blob — and,
// for copies, the owner's GCM tag and chunk id). A placement counts only when the blob is
// present and its peer is alive. A chunk is at target with `target` copies on distinct peers,
// or with all k+m shards on distinct peers; lost when no copy, or fewer than k shards, remain.
//
// Repair: for each chunk below target, forgets the placements that check found gone, fetches
// the chunk from the survivors and puts the missing copies or rebuilt shards on new peers in
// placement order (PutChunk; shards: FetchShards and StoreShards). Safe to interrupt and run
// again: every step is idempotent.
//
// Too few peers (docs/operations.md "When the cluster is too small"): with fewer alive storage
// peers than a chunk's target, repair restores as much tolerance as they allow: copies on every
// one of them; every missing shard rebuilt, on a peer holding none of the chunk (on a host
// holding none first), else doubled up on the least loaded holder. When peers join again, a
// shard doubled up on one peer is moved to a peer holding none (the rebuilt shard is put there,
// the surplus placement forgotten and its deletion queued). A chunk that no put could improve
// (every alive storage peer holds a blob of it, and every shard index is placed) is not
// fetched, and is counted in RepairReport::unimprovable.
//
// Thread-safety: stateless functions over a thread-safe context.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"

namespace cairn::engine {

struct CheckOptions {
  bool read_data = false;
  double read_subset = 1.0;  // fraction of chunks whose blobs are read (by chunk id), 0..1
  // Repair only: average bytes per second sent to peers (token bucket), so that repair does
  // not starve backups. 0 = unlimited.
  uint64_t repair_rate = 0;
};

struct SnapshotHealth {
  ChunkId id;
  uint64_t chunks = 0;
  uint64_t at_target = 0;
  uint64_t below_target = 0;
  uint64_t lost = 0;
};

struct DamagedBlob {
  ChunkId chunk;
  uint32_t shard = 0;
  PeerId peer = 0;
  std::string reason;
};

// Chunks below target because the cluster has fewer alive storage peers (other than this
// one) than their target: `target` copies, or k+m shards on distinct peers. No repair can close
// this until more peers join, so it is reported once per target, not once per chunk.
struct PeerShortfall {
  uint32_t target = 0;
  uint64_t chunks = 0;
  bool operator==(const PeerShortfall&) const = default;
};

// "N chunks below target: only P storage peers for a target of T" for each shortfall.
std::vector<std::string> DescribeShortfalls(const std::vector<PeerShortfall>& shortfalls,
                                            uint64_t storage_peers);

// How many storage peers a chunk can lose, whichever they are, and still be read: copies, the
// distinct peers holding one minus 1; erasure coded, the largest f such that losing any f of
// the peers holding its shards leaves at least k distinct shard indices. 0 for a chunk that
// one more lost peer makes unreadable (or that is lost already). Counts the placements given.
uint32_t PeerLossesSurvived(const ports::ChunkRecord& placed);

// Chunks below target by the peer losses they survive (PeerLossesSurvived of their intact
// placements): `chunks` chunks survive the loss of any `peers` storage peers and no more.
struct Tolerance {
  uint32_t peers = 0;
  uint64_t chunks = 0;
  bool operator==(const Tolerance&) const = default;
};

// "N chunks below target survive any P lost peers" (P > 0) or "N chunks below target survive 0
// lost peers: one more lost peer loses them", one line per entry.
std::vector<std::string> DescribeTolerance(const std::vector<Tolerance>& tolerance);

struct CheckProgress {
  std::atomic<uint64_t> chunks_total{0};
  std::atomic<uint64_t> chunks_done{0};
  std::atomic<uint64_t> bytes_read{0};
};

struct CheckReport {
  uint64_t chunks = 0;  // distinct chunks referenced by any snapshot (data, trees, snapshots)
  uint64_t at_target = 0;
  uint64_t below_target = 0;
  uint64_t lost = 0;
  // Of below_target: chunks with fewer intact placements on alive peers of another site than
  // their off-site target (docs/operations.md "Sites and off-site copies").
  uint64_t without_offsite = 0;
  uint64_t corrupt = 0;  // blobs that failed verification (read_data)
  uint64_t blobs_read = 0;
  uint64_t bytes_read = 0;
  std::vector<SnapshotHealth> snapshots;
  std::vector<std::pair<ChunkId, uint32_t>> below_detail;  // (chunk, blobs missing), <= 100
  std::vector<DamagedBlob> damaged;                        // corrupt blobs, <= 1000
  std::vector<std::string> errors;  // snapshots whose trees could not be read
  uint64_t storage_peers = 0;       // alive storage peers other than this one
  // Of below_target: chunks whose target exceeds storage_peers, by target ascending.
  std::vector<PeerShortfall> short_of_peers;
  // Of below_target: chunks by the peer losses they survive, ascending by `peers`.
  std::vector<Tolerance> survives;
  bool healthy() const { return below_target == 0 && lost == 0 && errors.empty(); }
};

// Checks every snapshot in the catalog. Returns the report (also when unhealthy); CANCELLED
// on cancel; INTERNAL for catalog errors.
absl::StatusOr<CheckReport> Check(const EngineContext& ctx, const CheckOptions& options,
                                  CheckProgress* progress,
                                  const std::atomic<bool>* cancel = nullptr);

struct RepairReport {
  uint64_t chunks = 0;    // chunks examined
  uint64_t repaired = 0;  // chunks brought back to target
  uint64_t blobs_written = 0;
  uint64_t bytes_sent = 0;
  uint64_t still_below_target = 0;
  uint64_t lost = 0;
  uint64_t storage_peers = 0;  // alive storage peers other than this one
  // Of still_below_target: chunks whose target exceeds storage_peers, by target ascending.
  // They get no line in `errors` (the summary says it once).
  std::vector<PeerShortfall> short_of_peers;
  // Of still_below_target: chunks no put could improve (every alive storage peer already holds
  // a blob of it and every shard index is placed); they were not fetched. Until the alive
  // storage peers change, another repair has nothing to do for them.
  uint64_t unimprovable = 0;
  // Of still_below_target: chunks by the peer losses they survive after this repair,
  // ascending by `peers`.
  std::vector<Tolerance> survives;
  std::vector<std::string> errors;  // per chunk, the first 10 (then errors_omitted)
  uint64_t errors_omitted = 0;      // chunks that failed for another reason beyond those 10
};

// Runs a check (with `options`) and repairs what is below target. A chunk whose target exceeds
// the alive storage peers is still spread onto every one of them (shards doubled up, see the
// file comment), but is not fetched when no put could improve it (RepairReport::unimprovable).
// Returns the report (also when chunks stay below target or are lost); CANCELLED on cancel;
// INTERNAL for catalog errors.
absl::StatusOr<RepairReport> Repair(const EngineContext& ctx, const CheckOptions& options,
                                    CheckProgress* progress,
                                    const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
