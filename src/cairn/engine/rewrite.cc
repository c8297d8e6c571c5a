#include "cairn/engine/rewrite.h"

#include <algorithm>
#include <optional>
#include <shared_mutex>

#include "absl/strings/str_split.h"
#include "cairn/base/status.h"
#include "cairn/engine/snapshot_io.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  for (auto p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    parts.emplace_back(p);
  }
  return parts;
}

// Index of the entry named `name` in a tree (entries sorted by name), or -1.
ptrdiff_t FindEntry(const format::Tree& tree, const std::string& name) {
  auto it =
      std::lower_bound(tree.entries.begin(), tree.entries.end(), name,
                       [](const format::TreeEntry& e, const std::string& n) { return e.name < n; });
  if (it == tree.entries.end() || it->name != name) return -1;
  return it - tree.entries.begin();
}

uint64_t SaturatingSub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// What removing `entry` takes out of a snapshot's stats (as backup counts them: every regular
// file name with its size and chunk references; every directory below the root tree).
absl::Status CountRemoved(const EngineContext& ctx, const format::TreeEntry& entry,
                          format::SnapshotStats& removed) {
  std::vector<ChunkId> subtrees;
  auto count = [&](const format::TreeEntry& e) {
    switch (e.type) {
      case format::EntryType::kFile:
        removed.files++;
        removed.bytes += e.size;
        removed.chunks += e.chunks.size();
        break;
      case format::EntryType::kDirectory:
        removed.directories++;
        if (e.subtree) subtrees.push_back(*e.subtree);
        break;
      case format::EntryType::kSymlink:
        break;
    }
  };
  count(entry);
  while (!subtrees.empty()) {
    ChunkId id = subtrees.back();
    subtrees.pop_back();
    CAIRN_ASSIGN_OR_RETURN(format::Tree tree, LoadTree(ctx, id));
    for (const auto& e : tree.entries) count(e);
  }
  return absl::OkStatus();
}

}  // namespace

Redundancy SnapshotRedundancy(const format::Snapshot& snapshot) {
  Redundancy r;
  if (snapshot.ec_k > 0) {
    r.ec = codec::ErasureScheme{static_cast<int>(snapshot.ec_k), static_cast<int>(snapshot.ec_m)};
    r.copies = r.CopiesForCopiesChunk();
  } else {
    r.copies = snapshot.copies > 0 ? snapshot.copies : 1;
  }
  return r;
}

absl::StatusOr<RewriteResult> RemovePath(const EngineContext& ctx,
                                         const ports::SnapshotRecord& snapshot,
                                         const std::string& path, const Redundancy& redundancy) {
  if (!ctx.catalog || !ctx.peers) {
    return absl::FailedPreconditionError("rewrite snapshot: no catalog or peers");
  }
  const std::vector<std::string> parts = SplitPath(path);
  if (parts.empty()) {
    return absl::InvalidArgumentError(
        "rewrite snapshot: cannot remove the snapshot root; forget "
        "the snapshot instead");
  }
  // Shared (engine/gc.h): the trees stored here are referenced by no snapshot until the new one
  // is recorded, and the removed content must stay until the old snapshot is gone.
  std::shared_lock<std::shared_mutex> gc_lock;
  if (ctx.gc_lock) gc_lock = std::shared_lock(*ctx.gc_lock);

  RewriteResult result;
  result.snapshot = snapshot;
  // trees[i] is the directory holding parts[i]; index[i] the entry's position in it.
  std::vector<format::Tree> trees;
  std::vector<size_t> index;
  CAIRN_ASSIGN_OR_RETURN(format::Tree root, LoadTree(ctx, snapshot.snapshot.root));
  trees.push_back(std::move(root));
  for (size_t i = 0; i < parts.size(); ++i) {
    ptrdiff_t at = FindEntry(trees.back(), parts[i]);
    if (at < 0) return result;  // not in this snapshot
    index.push_back(static_cast<size_t>(at));
    if (i + 1 == parts.size()) break;
    const format::TreeEntry& e = trees.back().entries[static_cast<size_t>(at)];
    if (e.type != format::EntryType::kDirectory || !e.subtree) return result;
    CAIRN_ASSIGN_OR_RETURN(format::Tree sub, LoadTree(ctx, *e.subtree));
    trees.push_back(std::move(sub));
  }

  format::SnapshotStats removed;
  CAIRN_RETURN_IF_ERROR(CountRemoved(ctx, trees.back().entries[index.back()], removed));
  trees.back().entries.erase(trees.back().entries.begin() + static_cast<ptrdiff_t>(index.back()));

  // Store the rewritten trees bottom up, each parent pointing at its new child.
  std::optional<ChunkId> child;
  for (size_t depth = trees.size(); depth-- > 0;) {
    if (child) trees[depth].entries[index[depth]].subtree = *child;
    CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreTree(ctx, trees[depth], redundancy));
    if (!stored.outcome.at_target) result.chunks_below_target++;
    child = stored.id;
  }

  format::Snapshot snap = snapshot.snapshot;
  snap.root = *child;
  snap.stats.files = SaturatingSub(snap.stats.files, removed.files);
  snap.stats.bytes = SaturatingSub(snap.stats.bytes, removed.bytes);
  snap.stats.directories = SaturatingSub(snap.stats.directories, removed.directories);
  snap.stats.chunks = SaturatingSub(snap.stats.chunks, removed.chunks);
  CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreSnapshot(ctx, snap, redundancy));
  if (!stored.outcome.at_target) result.chunks_below_target++;
  if (stored.id != snapshot.id) {
    CAIRN_RETURN_IF_ERROR(ctx.catalog->RemoveSnapshot(snapshot.id).status());
  }
  result.changed = true;
  result.snapshot = {stored.id, snap};
  result.removed_files = removed.files;
  result.removed_bytes = removed.bytes;
  return result;
}

}  // namespace cairn::engine
