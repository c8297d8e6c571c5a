// Versions of files across snapshots: every stored version of one path,
// the snapshot to restore a path from as of a point in time, the difference between two
// snapshots, and a search by name over all snapshots.
//
// Everything here reads snapshots and trees only (the catalog's tree cache, else the peers):
// no data chunk is fetched and nothing is written apart from tree-cache entries, so no
// garbage-collection lock is taken (docs/operations.md "The rule that keeps referenced blobs
// safe"). A snapshot forgotten while one of these runs may give NOT_FOUND for its trees.
//
// Paths: a snapshot's root tree has one entry per backed-up source path, named by the last
// component of that path ("root" for "/"); `SnapshotPathFor` maps an absolute path on the
// backed-up machine to the path inside a snapshot and `SourcePathFor` maps it back. Paths are
// raw bytes, '/'-separated.
//
// Thread-safety: stateless functions over a thread-safe context.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"
#include "cairn/engine/time_point.h"
#include "cairn/format/tree.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

// The name of the root-tree entry of backed-up absolute path `abs` (normalized, no trailing
// '/'): its last component, "root" for "/" (engine/backup.cc).
std::string RootEntryName(const std::string& abs);

// The path inside `snapshot` of absolute path `abs` (normalized, no trailing '/'), e.g.
// "/home/u/docs/a.txt" in a backup of "/home/u/docs" is "docs/a.txt". nullopt when `abs` is not
// at or under any of the snapshot's source paths (it says nothing about whether the entry
// exists in the snapshot). For a version of an archive, `abs` is an archive path of that
// archive ("NAME:/a/b" is "a/b" inside it); nullopt for any other path.
std::optional<std::string> SnapshotPathFor(const format::Snapshot& snapshot,
                                           const std::string& abs);

// The inverse: the absolute source path of `path` inside `snapshot` ("docs/a.txt" ->
// "/home/u/docs/a.txt"); nullopt when its first component names no source path.
std::optional<std::string> SourcePathFor(const format::Snapshot& snapshot, const std::string& path);

// Content hash of an entry, 64 hex characters: SHA-256 (FIPS 180-4) over the entry's chunk
// ids concatenated (files), over its subtree id (directories) or over its target
// (symlinks). Equal content gives an equal hash within one owner — chunk and tree ids are
// keyed hashes of the content — without reading any data; the hash reveals nothing about the
// content to anyone without the owner key.
std::string ContentHash(const format::TreeEntry& entry);

// One version of a path: the entry as stored in one snapshot, or — collapsed — in a run of
// consecutive snapshots holding the same content.
struct FileVersion {
  ChunkId snapshot_id;        // first snapshot with this version
  int64_t time_ns = 0;        // its time (ns since the Unix epoch)
  ChunkId last_snapshot_id;   // last consecutive snapshot with the same content (= first when
  int64_t last_time_ns = 0;   // not collapsed)
  uint64_t snapshots = 1;     // how many snapshots hold this version
  std::string snapshot_path;  // the path inside the snapshot
  format::EntryType type = format::EntryType::kFile;
  uint64_t size = 0;  // bytes (files)
  int64_t mtime_ns = 0;
  uint32_t mode = 0;
  std::string content_hash;  // ContentHash()
  std::string symlink_target;
};

struct VersionsOptions {
  // Collapse consecutive snapshots whose entry has the same type and content hash into one
  // version (first seen: the metadata shown is that of the first snapshot; last seen and
  // the count are kept). A snapshot of the path's source in which the path is missing ends
  // a run; snapshots of other sources do not. false: one version per snapshot.
  bool collapse = true;
};

// Every stored version of absolute path `abs_path` (a file, directory or symlink) over all
// snapshots, oldest first. An archive path "NAME:/path" (format::ParseArchivePath) is looked up
// in that archive's versions instead of in backups; so is SnapshotAt's. INVALID_ARGUMENT for a path
// that is not absolute; NOT_FOUND when no snapshot holds it; errors of LoadTree (UNAVAILABLE,
// DATA_LOSS) when a tree cannot be read.
absl::StatusOr<std::vector<FileVersion>> ListVersions(const EngineContext& ctx,
                                                      const std::string& abs_path,
                                                      const VersionsOptions& options = {});

struct SnapshotForPath {
  ports::SnapshotRecord record;
  std::string snapshot_path;  // abs_path inside the snapshot
  format::TreeEntry entry;    // as stored there
};

// The newest snapshot taken at or before `time_ns` (ns since the Unix epoch) that holds
// absolute path `abs_path` — the state of the path as of that time (a path deleted before
// `time_ns` is found in the last snapshot that had it). INVALID_ARGUMENT for a path that is
// not absolute; NOT_FOUND, naming the earliest version when there is one, when no such
// snapshot exists. The brief's `SnapshotAt(catalog, ...)` takes the context: whether a
// snapshot holds the path is only known from its trees.
absl::StatusOr<SnapshotForPath> SnapshotAt(const EngineContext& ctx, int64_t time_ns,
                                           const std::string& abs_path);

enum class ChangeKind { kAdded, kRemoved, kModified };

struct Change {
  ChangeKind kind = ChangeKind::kModified;
  std::string path;  // inside the snapshots, e.g. "docs/a.txt"
  // Before (removed, modified) and after (added, modified); the other side stays default.
  format::EntryType type_before = format::EntryType::kFile;
  format::EntryType type_after = format::EntryType::kFile;
  uint64_t size_before = 0;
  uint64_t size_after = 0;
  uint32_t mode_before = 0;
  uint32_t mode_after = 0;
  // Modified: what changed (content: chunks, symlink target; a directory's content is its
  // children, which are listed themselves, so a directory is modified only by mode or type).
  bool content_changed = false;
  bool type_changed = false;
  bool mode_changed = false;
};

struct DiffResult {
  std::vector<Change> changes;  // sorted by path (byte order, parents before children)
  uint64_t added = 0, removed = 0, modified = 0;
  uint64_t added_bytes = 0;    // file bytes of added files
  uint64_t removed_bytes = 0;  // file bytes of removed files
  // Directories present in both with the same tree id: compared without loading them.
  uint64_t identical_subtrees = 0;
};

// The changes from snapshot `a` to snapshot `b` (restic `diff` semantics without metadata-only
// changes: mtime, owner and ctime are ignored): entries only in b are added, only in a removed
// (a directory with everything below it, each listed), in both with a different type, content
// or mode modified. Walks both trees together; a subtree with the same id on both sides is
// identical and skipped unread. Errors of LoadTree.
absl::StatusOr<DiffResult> Diff(const EngineContext& ctx, const format::Snapshot& a,
                                const format::Snapshot& b);

struct FoundEntry {
  ChunkId snapshot_id;
  int64_t time_ns = 0;        // the snapshot's time
  std::string path;           // absolute source path
  std::string snapshot_path;  // inside the snapshot
  format::EntryType type = format::EntryType::kFile;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;
};

// Entries whose base name matches fnmatch(3) `pattern` (flags 0, as backup excludes) — and,
// when the pattern contains '/', whose absolute source path matches — over all snapshots,
// oldest snapshot first, then by path. Subtrees that appear unchanged in several snapshots
// are searched once. INVALID_ARGUMENT for an empty pattern; errors of LoadTree.
absl::StatusOr<std::vector<FoundEntry>> Find(const EngineContext& ctx, const std::string& pattern);

}  // namespace cairn::engine
