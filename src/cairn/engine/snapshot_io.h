// Storing the metadata of a snapshot — tree chunks and the snapshot blob — the way backup does,
// for the engines that write snapshots outside a backup run (engine/rewrite.h). Internal to
// engine/.
//
// Thread-safety: stateless functions over a thread-safe context. Callers that record chunks
// hold ctx.gc_lock shared (engine/gc.h).
#pragma once

#include "absl/status/statusor.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/context.h"
#include "cairn/format/tree.h"

namespace cairn::engine {

struct StoredChunk {
  ChunkId id;
  StoreOutcome outcome;  // sent_bytes 0 and new_copies 0 when nothing had to be stored
};

// Encodes `tree`, caches it in the catalog and stores it as a tree chunk under `redundancy`
// unless the catalog already holds it at that redundancy (deduplication, as backup does).
// Status codes as PutChunk (UNAVAILABLE when no peer took it).
absl::StatusOr<StoredChunk> StoreTree(const EngineContext& ctx, const format::Tree& tree,
                                      const Redundancy& redundancy);

// Encodes `snapshot`, stores the snapshot blob under `redundancy` (topping it up when it is
// already known) and records it in the catalog (Catalog::AddSnapshot). Status codes as
// PutChunk, or the catalog's.
absl::StatusOr<StoredChunk> StoreSnapshot(const EngineContext& ctx,
                                          const format::Snapshot& snapshot,
                                          const Redundancy& redundancy);

}  // namespace cairn::engine
