// Extra copies in spare space (docs/operations.md "Extra copies in spare space"): the owner asks
// peers with room to keep copies of its chunks beyond their target. An extra copy is a blob
// like any other on the wire (the same envelope bytes as the regular copies, no re-encryption)
// but is stored marked extra (ports::PutOptions::extra): the storage peer evicts extras first,
// oldest first, whenever a regular put, a quota change or a reclaim needs the space, and the
// owner's catalog records extras apart (ports::ChunkRecord::extras), so check never counts
// them toward the target. Restore may read them after the regular holders (FetchChunk).
//
// Only copies-scheme chunks (shard 0) get extras: a spare shard would not add a whole chunk's
// worth of safety. Metadata (trees, snapshots) first, since without a tree no file below it
// can be restored; then, when asked, data chunks least spread across hosts first.
//
// Thread-safety: stateless functions over a thread-safe context. Run one placement at a time
// per owner (the daemon's maintenance loop does); concurrent runs only waste puts.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"

namespace cairn::engine {

struct ExtraOptions {
  bool metadata = true;  // trees and snapshots
  bool data = false;     // data chunks too (after the metadata), least spread first
  uint32_t copies = 1;   // extra copies wanted per chunk
  // A peer is used only while (its used + the blob) <= max_fill x its quota (bytes), so that
  // extras never fill a peer to the brim (regular puts would then have to evict first).
  double max_fill = 0.9;
};

struct ExtraReport {
  uint64_t placed = 0;              // extra copies newly recorded
  uint64_t bytes = 0;               // blob bytes sent for them
  uint64_t chunks_considered = 0;   // copies chunks of the selected kinds examined
  uint64_t peers_full = 0;          // live peers without room at the end (max_fill or refused)
  std::vector<std::string> errors;  // chunks that could not be read or placed, <= 100
};

// Places up to `options.copies` extra copies of every copies-scheme chunk of the selected kinds
// on live peers in placement order (docs/formats.md "Placement hash") that hold neither a regular
// nor an extra copy and have room by `max_fill` (tracked locally as blobs are put; a peer that
// answers RESOURCE_EXHAUSTED is full for the rest of the run, one that is unreachable is
// skipped). The blob is fetched from a regular holder (then an extra) and put with
// PutOptions{extra = true}; each one stored is recorded with Catalog::AddExtraPlacement. Order:
// trees and snapshots, then data chunks by ascending number of distinct hosts among their
// regular holders (passes over Catalog::ListChunks pages: memory stays flat). Stops early when
// every live peer is full. Holds ctx.gc_lock shared while it reads a page of the catalog and
// places its extras (so a collected chunk never gets an extra). Returns the report (chunks that
// could not be read are listed in `errors`, not fatal); CANCELLED when `cancel` becomes true;
// catalog errors as they are.
absl::StatusOr<ExtraReport> PlaceExtraCopies(const EngineContext& ctx, const ExtraOptions& options,
                                             const std::atomic<bool>* cancel = nullptr);

// Asks every live peer recorded as holding extra copies whether it still does (HasBlobs,
// batched) and forgets the ones it evicted (Catalog::RemoveExtraPlacements), so that status
// stays honest. Unreachable peers are left as recorded. Returns how many extras were
// forgotten; CANCELLED on cancel; catalog errors as they are.
absl::StatusOr<uint64_t> PruneExtras(const EngineContext& ctx,
                                     const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
