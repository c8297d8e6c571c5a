// Reading snapshots and trees (docs/architecture.md "Restore data flow"): resolving a snapshot by
// id or "latest", loading a tree (the catalog's cache, else from the peers) and listing a
// snapshot's entries. Restore, check, GC, versions and backup (its parent) all read snapshots
// through these.
//
// Thread-safety: stateless apart from the context; concurrent calls are fine.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/engine/context.h"
#include "cairn/format/tree.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

// Resolves "latest", a full hex id or a unique hex prefix (>= 4 characters) to a snapshot.
// NOT_FOUND when none matches; INVALID_ARGUMENT when the prefix is ambiguous or not hex.
absl::StatusOr<ports::SnapshotRecord> ResolveSnapshot(ports::Catalog* catalog,
                                                      const std::string& spec);

// Loads a tree by id: the catalog cache, else from any peer holding it (then cached).
absl::StatusOr<format::Tree> LoadTree(const EngineContext& ctx, const ChunkId& id);

struct ListedEntry {
  std::string path;  // relative to the snapshot root, '/'-separated, raw bytes
  format::TreeEntry entry;
};

// Lists the entry at `path` (""/"/" = root) and, for a directory, everything below it
// (recursive) or its direct children. NOT_FOUND for a path not in the snapshot.
absl::StatusOr<std::vector<ListedEntry>> ListSnapshot(const EngineContext& ctx,
                                                      const format::Snapshot& snapshot,
                                                      const std::string& path, bool recursive);

// What a restore of `path` starts from: the root's entries when `path` is ""/"/", else the one
// entry at `path`. NOT_FOUND for a path not in the snapshot.
absl::StatusOr<std::vector<format::TreeEntry>> EntriesAt(const EngineContext& ctx,
                                                         const format::Snapshot& snapshot,
                                                         const std::string& path);

}  // namespace cairn::engine
