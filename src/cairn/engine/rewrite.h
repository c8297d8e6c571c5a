// Snapshot rewrite (`cairn delete PATH`): removes one path from a snapshot by writing
// a new snapshot without it. Trees are content-addressed, so the trees from the removed entry's
// parent up to the root are rewritten and stored anew; everything else is shared with the old
// snapshot. The old snapshot is then forgotten; the removed content's chunks stay on the peers
// until garbage collection (engine/gc.h) finds them unreferenced.
//
// Thread-safety: stateless functions over a thread-safe context; hold ctx.gc_lock shared
// (taken inside).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/context.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

struct RewriteResult {
  bool changed = false;
  ports::SnapshotRecord snapshot;    // the new snapshot, or the old one when unchanged
  uint64_t removed_files = 0;        // regular files removed (each hard link name counts)
  uint64_t removed_bytes = 0;        // their logical size
  uint64_t chunks_below_target = 0;  // new trees / snapshot blob stored below `redundancy`
};

// The redundancy to rewrite `snapshot` with: the copies or ec_k+ec_m it was taken with.
Redundancy SnapshotRedundancy(const format::Snapshot& snapshot);

// Removes the entry at `path` — a file, a symlink or a whole directory — from `snapshot`.
// `path` is as ListSnapshot reports it: relative to the snapshot root, '/'-separated, raw
// bytes (empty components and "." are ignored). New trees are stored with PutChunk at
// `redundancy` (pass SnapshotRedundancy(snapshot)); the new snapshot keeps the old one's time,
// hostname, paths, tags and parent, its stats files/bytes/directories/chunks reduced by what
// was removed. It is recorded (Catalog::AddSnapshot) before the old one is removed
// (Catalog::RemoveSnapshot), so a crash in between leaves both, never neither.
// A path not in the snapshot: changed=false and nothing is stored.
// Errors: INVALID_ARGUMENT for the root itself (empty path); the errors of LoadTree (a tree
// on the way cannot be read) and PutChunk (UNAVAILABLE: no peer took a new tree); the
// catalog's.
absl::StatusOr<RewriteResult> RemovePath(const EngineContext& ctx,
                                         const ports::SnapshotRecord& snapshot,
                                         const std::string& path, const Redundancy& redundancy);

}  // namespace cairn::engine
