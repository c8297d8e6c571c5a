#include "cairn/engine/snapshot_read.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"

namespace cairn::engine {

absl::StatusOr<ports::SnapshotRecord> ResolveSnapshot(ports::Catalog* catalog,
                                                      const std::string& spec) {
  CAIRN_ASSIGN_OR_RETURN(auto snaps, catalog->ListSnapshots());
  if (spec == "latest") {
    if (snaps.empty()) return absl::NotFoundError("no snapshots yet");
    return snaps.back();
  }
  if (spec.size() < 4 || !FromHex(spec.size() % 2 ? spec + "0" : spec).ok()) {
    return absl::InvalidArgumentError(
        "snapshot id '" + spec +
        "': expected 'latest' or a hex id prefix of at least 4 characters");
  }
  std::string want = spec;
  std::transform(want.begin(), want.end(), want.begin(), ::tolower);
  std::optional<ports::SnapshotRecord> found;
  for (auto& s : snaps) {
    if (s.id.Hex().compare(0, want.size(), want) == 0) {
      if (found)
        return absl::InvalidArgumentError("snapshot id prefix '" + spec + "' is ambiguous");
      found = s;
    }
  }
  if (!found) return absl::NotFoundError("no snapshot with id '" + spec + "'");
  return *found;
}

absl::StatusOr<format::Tree> LoadTree(const EngineContext& ctx, const ChunkId& id) {
  CAIRN_ASSIGN_OR_RETURN(auto cached, ctx.catalog->GetTree(id));
  if (cached) {
    auto tree = format::DecodeTree(*cached);
    if (tree.ok()) return tree;
    // A damaged cache entry: fall through and fetch the tree from the peers.
  }
  CAIRN_ASSIGN_OR_RETURN(Bytes encoded, Annotate(FetchChunk(ctx, id), "load tree"));
  CAIRN_ASSIGN_OR_RETURN(auto tree, Annotate(format::DecodeTree(encoded), "tree " + id.ShortHex()));
  CAIRN_RETURN_IF_ERROR(ctx.catalog->PutTree(id, encoded));
  return tree;
}

namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  for (auto p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    parts.emplace_back(p);
  }
  return parts;
}

// Finds the entry at `parts` under `root` (parts non-empty). NOT_FOUND if absent.
absl::StatusOr<format::TreeEntry> FindEntry(const EngineContext& ctx, const format::Tree& root,
                                            const std::vector<std::string>& parts,
                                            const std::string& path) {
  const format::Tree* tree = &root;
  format::Tree holder;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto it = std::find_if(tree->entries.begin(), tree->entries.end(),
                           [&](const format::TreeEntry& e) { return e.name == parts[i]; });
    if (it == tree->entries.end())
      return absl::NotFoundError("path '" + path + "' is not in the snapshot");
    if (i + 1 == parts.size()) return *it;
    if (it->type != format::EntryType::kDirectory || !it->subtree) {
      return absl::NotFoundError("path '" + path + "' is not in the snapshot");
    }
    CAIRN_ASSIGN_OR_RETURN(holder, LoadTree(ctx, *it->subtree));
    tree = &holder;
  }
  return absl::NotFoundError("path '" + path + "' is not in the snapshot");
}

absl::Status ListInto(const EngineContext& ctx, const ChunkId& tree_id, const std::string& prefix,
                      bool recursive, std::vector<ListedEntry>& out) {
  CAIRN_ASSIGN_OR_RETURN(auto tree, LoadTree(ctx, tree_id));
  for (auto& e : tree.entries) {
    std::string p = prefix.empty() ? e.name : prefix + "/" + e.name;
    out.push_back({p, e});
    if (recursive && e.type == format::EntryType::kDirectory && e.subtree) {
      CAIRN_RETURN_IF_ERROR(ListInto(ctx, *e.subtree, p, true, out));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ListedEntry>> ListSnapshot(const EngineContext& ctx,
                                                      const format::Snapshot& snapshot,
                                                      const std::string& path, bool recursive) {
  std::vector<ListedEntry> out;
  auto parts = SplitPath(path);
  if (parts.empty()) {
    CAIRN_RETURN_IF_ERROR(ListInto(ctx, snapshot.root, "", recursive, out));
    return out;
  }
  CAIRN_ASSIGN_OR_RETURN(auto root, LoadTree(ctx, snapshot.root));
  CAIRN_ASSIGN_OR_RETURN(auto entry, FindEntry(ctx, root, parts, path));
  std::string prefix;
  for (const auto& p : parts) prefix += (prefix.empty() ? "" : "/") + p;
  out.push_back({prefix, entry});
  if (entry.type == format::EntryType::kDirectory && entry.subtree) {
    CAIRN_RETURN_IF_ERROR(ListInto(ctx, *entry.subtree, prefix, recursive, out));
  }
  return out;
}

absl::StatusOr<std::vector<format::TreeEntry>> EntriesAt(const EngineContext& ctx,
                                                         const format::Snapshot& snapshot,
                                                         const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(auto root, LoadTree(ctx, snapshot.root));
  auto parts = SplitPath(path);
  if (parts.empty()) return root.entries;
  CAIRN_ASSIGN_OR_RETURN(auto entry, FindEntry(ctx, root, parts, path));
  return std::vector<format::TreeEntry>{entry};
}

}  // namespace cairn::engine
