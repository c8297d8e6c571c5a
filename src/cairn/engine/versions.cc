#include "cairn/engine/versions.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// "2024-01-02T03:04:05Z" for messages.
std::string FormatUtc(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / kNanosPerSecond);
  if (unix_ns % kNanosPerSecond < 0) --secs;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NormalPath(const std::string& abs) {
  std::string s = std::filesystem::path(abs).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// `abs` lexically normalized without a trailing '/' (an archive path: its part inside the
// archive); INVALID_ARGUMENT unless absolute or an archive path.
absl::StatusOr<std::string> NormalizeAbsolute(const std::string& abs) {
  if (auto archive = format::ParseArchivePath(abs)) {
    return archive->first + ":" + NormalPath(archive->second);
  }
  if (abs.empty() || abs[0] != '/') {
    return absl::InvalidArgumentError("'" + abs +
                                      "' is not an absolute path (nor an archive path NAME:/...)");
  }
  return NormalPath(abs);
}

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> parts;
  for (auto p : absl::StrSplit(path, '/', absl::SkipEmpty())) parts.emplace_back(p);
  return parts;
}

const format::TreeEntry* FindName(const format::Tree& tree, const std::string& name) {
  auto it =
      std::lower_bound(tree.entries.begin(), tree.entries.end(), name,
                       [](const format::TreeEntry& e, const std::string& n) { return e.name < n; });
  if (it == tree.entries.end() || it->name != name) return nullptr;
  return &*it;
}

// Finds entries by path inside snapshots. Consecutive snapshots mostly share subtrees: a
// lookup below a tree already searched for the same rest of the path is answered from memory,
// so listing the versions of a path over many snapshots reads each distinct tree once.
class PathLookup {
 public:
  explicit PathLookup(const EngineContext& ctx) : ctx_(ctx) {}

  // The entry at `path` (inside a snapshot, non-empty) below root tree `root`; nullopt when
  // the snapshot does not hold it. Errors of LoadTree.
  absl::StatusOr<std::optional<format::TreeEntry>> Find(const ChunkId& root,
                                                        const std::string& path) {
    std::vector<std::string> parts = Components(path);
    if (parts.empty()) return std::nullopt;
    std::vector<Key> visited;
    std::optional<format::TreeEntry> found;
    ChunkId tree_id = root;
    for (size_t i = 0; i < parts.size(); ++i) {
      Key key{tree_id, Rest(parts, i)};
      if (auto it = memo_.find(key); it != memo_.end()) {
        found = it->second;
        break;
      }
      visited.push_back(key);
      CAIRN_ASSIGN_OR_RETURN(format::Tree tree, LoadTree(ctx_, tree_id));
      const format::TreeEntry* e = FindName(tree, parts[i]);
      if (e == nullptr) break;
      if (i + 1 == parts.size()) {
        found = *e;
        break;
      }
      if (e->type != format::EntryType::kDirectory || !e->subtree) break;
      tree_id = *e->subtree;
    }
    for (Key& k : visited) memo_.emplace(std::move(k), found);
    return found;
  }

 private:
  using Key = std::pair<ChunkId, std::string>;  // tree, the rest of the path below it

  static std::string Rest(const std::vector<std::string>& parts, size_t from) {
    std::string out;
    for (size_t i = from; i < parts.size(); ++i) out += (i == from ? "" : "/") + parts[i];
    return out;
  }

  const EngineContext& ctx_;
  std::map<Key, std::optional<format::TreeEntry>> memo_;
};

bool SameContent(const format::TreeEntry& a, const format::TreeEntry& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case format::EntryType::kFile:
      return a.chunks == b.chunks;
    case format::EntryType::kDirectory:
      return a.subtree == b.subtree;
    case format::EntryType::kSymlink:
      return a.symlink_target == b.symlink_target;
  }
  return false;
}

std::string Join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  if (prefix.back() == '/') return prefix + name;
  return prefix + "/" + name;
}

// --- Diff ---------------------------------------------------------------------------------

class Differ {
 public:
  explicit Differ(const EngineContext& ctx) : ctx_(ctx) {}

  absl::Status Trees(const ChunkId& a, const ChunkId& b, const std::string& prefix) {
    if (a == b) {
      ++result_.identical_subtrees;
      return absl::OkStatus();
    }
    CAIRN_ASSIGN_OR_RETURN(format::Tree ta, LoadTree(ctx_, a));
    CAIRN_ASSIGN_OR_RETURN(format::Tree tb, LoadTree(ctx_, b));
    size_t i = 0, j = 0;
    while (i < ta.entries.size() || j < tb.entries.size()) {
      if (j == tb.entries.size() ||
          (i < ta.entries.size() && ta.entries[i].name < tb.entries[j].name)) {
        CAIRN_RETURN_IF_ERROR(Whole(ChangeKind::kRemoved, ta.entries[i], prefix));
        ++i;
      } else if (i == ta.entries.size() || tb.entries[j].name < ta.entries[i].name) {
        CAIRN_RETURN_IF_ERROR(Whole(ChangeKind::kAdded, tb.entries[j], prefix));
        ++j;
      } else {
        CAIRN_RETURN_IF_ERROR(Both(ta.entries[i], tb.entries[j], prefix));
        ++i;
        ++j;
      }
    }
    return absl::OkStatus();
  }

  DiffResult& result() { return result_; }

 private:
  // An entry (and, for a directory, everything below it) only on one side.
  absl::Status Whole(ChangeKind kind, const format::TreeEntry& e, const std::string& prefix) {
    std::string path = Join(prefix, e.name);
    Change c;
    c.kind = kind;
    c.path = path;
    if (kind == ChangeKind::kAdded) {
      c.type_after = e.type;
      c.size_after = e.size;
      c.mode_after = e.mode;
      ++result_.added;
      if (e.type == format::EntryType::kFile) result_.added_bytes += e.size;
    } else {
      c.type_before = e.type;
      c.size_before = e.size;
      c.mode_before = e.mode;
      ++result_.removed;
      if (e.type == format::EntryType::kFile) result_.removed_bytes += e.size;
    }
    result_.changes.push_back(std::move(c));
    return Below(kind, e, path);
  }

  absl::Status Below(ChangeKind kind, const format::TreeEntry& e, const std::string& path) {
    if (e.type != format::EntryType::kDirectory || !e.subtree) return absl::OkStatus();
    CAIRN_ASSIGN_OR_RETURN(format::Tree t, LoadTree(ctx_, *e.subtree));
    for (const format::TreeEntry& child : t.entries) {
      CAIRN_RETURN_IF_ERROR(Whole(kind, child, path));
    }
    return absl::OkStatus();
  }

  absl::Status Both(const format::TreeEntry& a, const format::TreeEntry& b,
                    const std::string& prefix) {
    std::string path = Join(prefix, a.name);
    Change c;
    c.kind = ChangeKind::kModified;
    c.path = path;
    c.type_before = a.type;
    c.type_after = b.type;
    c.size_before = a.size;
    c.size_after = b.size;
    c.mode_before = a.mode;
    c.mode_after = b.mode;
    c.type_changed = a.type != b.type;
    c.mode_changed = a.mode != b.mode;
    const bool dirs =
        a.type == format::EntryType::kDirectory && b.type == format::EntryType::kDirectory;
    if (!c.type_changed && !dirs) c.content_changed = !SameContent(a, b);
    if (c.type_changed || c.mode_changed || c.content_changed) {
      ++result_.modified;
      result_.changes.push_back(std::move(c));
    }
    if (dirs) {
      if (a.subtree && b.subtree) return Trees(*a.subtree, *b.subtree, path);
      return absl::OkStatus();
    }
    if (a.type != b.type) {
      // A directory that became something else (or the reverse): its contents went (came).
      CAIRN_RETURN_IF_ERROR(Below(ChangeKind::kRemoved, a, path));
      CAIRN_RETURN_IF_ERROR(Below(ChangeKind::kAdded, b, path));
    }
    return absl::OkStatus();
  }

  const EngineContext& ctx_;
  DiffResult result_;
};

// --- Find ---------------------------------------------------------------------------------

struct Match {
  std::string path;           // absolute source path
  std::string snapshot_path;  // inside the snapshot
  format::EntryType type;
  uint64_t size;
  int64_t mtime_ns;
  uint32_t mode;
};

class Finder {
 public:
  Finder(const EngineContext& ctx, const std::string& pattern)
      : ctx_(ctx), pattern_(pattern), full_path_(pattern.find('/') != std::string::npos) {}

  bool Matches(const std::string& name, const std::string& abs) const {
    if (::fnmatch(pattern_.c_str(), name.c_str(), 0) == 0) return true;
    return full_path_ && ::fnmatch(pattern_.c_str(), abs.c_str(), 0) == 0;
  }

  void Entry(const format::TreeEntry& e, const std::string& abs, const std::string& inner,
             std::vector<Match>& out) const {
    if (Matches(e.name, abs)) out.push_back({abs, inner, e.type, e.size, e.mtime_ns, e.mode});
  }

  // Matches below tree `id`, whose directory is `abs` (source) and `inner` (in the snapshot).
  absl::StatusOr<std::shared_ptr<const std::vector<Match>>> Tree(const ChunkId& id,
                                                                 const std::string& abs,
                                                                 const std::string& inner) {
    auto key = std::make_tuple(id, abs, inner);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    CAIRN_ASSIGN_OR_RETURN(format::Tree tree, LoadTree(ctx_, id));
    auto out = std::make_shared<std::vector<Match>>();
    for (const format::TreeEntry& e : tree.entries) {
      std::string child_abs = Join(abs, e.name), child_inner = Join(inner, e.name);
      Entry(e, child_abs, child_inner, *out);
      if (e.type == format::EntryType::kDirectory && e.subtree) {
        CAIRN_ASSIGN_OR_RETURN(auto below, Tree(*e.subtree, child_abs, child_inner));
        out->insert(out->end(), below->begin(), below->end());
      }
    }
    memo_.emplace(key, out);
    return std::shared_ptr<const std::vector<Match>>(out);
  }

 private:
  const EngineContext& ctx_;
  const std::string pattern_;
  const bool full_path_;
  std::map<std::tuple<ChunkId, std::string, std::string>, std::shared_ptr<const std::vector<Match>>>
      memo_;
};

}  // namespace

std::string RootEntryName(const std::string& abs) {
  if (abs == "/") return "root";
  return abs.substr(abs.find_last_of('/') + 1);
}

std::optional<std::string> SnapshotPathFor(const format::Snapshot& snapshot,
                                           const std::string& abs) {
  if (!snapshot.archive.empty()) {
    auto archive = format::ParseArchivePath(abs);
    if (!archive || archive->first != snapshot.archive) return std::nullopt;
    std::string inner = archive->second;
    while (!inner.empty() && inner.front() == '/') inner.erase(inner.begin());
    return inner;
  }
  for (const std::string& p : snapshot.paths) {
    std::string base = RootEntryName(p);
    if (abs == p) return base;
    std::string prefix = p == "/" ? p : p + "/";
    if (abs.size() > prefix.size() && abs.compare(0, prefix.size(), prefix) == 0) {
      return base + "/" + abs.substr(prefix.size());
    }
  }
  return std::nullopt;
}

std::optional<std::string> SourcePathFor(const format::Snapshot& snapshot,
                                         const std::string& path) {
  std::string inner = path;
  while (!inner.empty() && inner.front() == '/') inner.erase(inner.begin());
  size_t slash = inner.find('/');
  std::string first = inner.substr(0, slash);
  for (const std::string& p : snapshot.paths) {
    if (RootEntryName(p) != first) continue;
    if (slash == std::string::npos) return p;
    return Join(p, inner.substr(slash + 1));
  }
  return std::nullopt;
}

std::string ContentHash(const format::TreeEntry& entry) {
  codec::Sha256Hasher h;
  switch (entry.type) {
    case format::EntryType::kFile:
      for (const ChunkId& id : entry.chunks) h.Update(id.bytes);
      break;
    case format::EntryType::kDirectory:
      if (entry.subtree) h.Update(entry.subtree->bytes);
      break;
    case format::EntryType::kSymlink:
      h.Update(AsBytes(entry.symlink_target));
      break;
  }
  return ToHex(h.Finish());
}

absl::StatusOr<std::vector<FileVersion>> ListVersions(const EngineContext& ctx,
                                                      const std::string& abs_path,
                                                      const VersionsOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(std::string abs, NormalizeAbsolute(abs_path));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> snaps, ctx.catalog->ListSnapshots());
  PathLookup lookup(ctx);
  std::vector<FileVersion> out;
  std::optional<format::TreeEntry> previous;  // the entry of the current run
  size_t covering = 0;
  for (const ports::SnapshotRecord& r : snaps) {
    std::optional<std::string> inner = SnapshotPathFor(r.snapshot, abs);
    if (!inner) continue;
    ++covering;
    CAIRN_ASSIGN_OR_RETURN(
        std::optional<format::TreeEntry> entry,
        Annotate(lookup.Find(r.snapshot.root, *inner), "snapshot " + r.id.ShortHex()));
    if (!entry) {
      previous.reset();  // missing here: a later equal version is a new one
      continue;
    }
    if (options.collapse && previous && SameContent(*previous, *entry)) {
      FileVersion& v = out.back();
      v.last_snapshot_id = r.id;
      v.last_time_ns = r.snapshot.time_ns;
      ++v.snapshots;
      continue;
    }
    FileVersion v;
    v.snapshot_id = v.last_snapshot_id = r.id;
    v.time_ns = v.last_time_ns = r.snapshot.time_ns;
    v.snapshot_path = *inner;
    v.type = entry->type;
    v.size = entry->size;
    v.mtime_ns = entry->mtime_ns;
    v.mode = entry->mode;
    v.content_hash = ContentHash(*entry);
    v.symlink_target = entry->symlink_target;
    out.push_back(std::move(v));
    previous = std::move(entry);
  }
  if (out.empty() && covering == 0) {
    return absl::NotFoundError(absl::StrCat("'", abs, "' is not below any backed-up path (",
                                            snaps.size(), " snapshot(s) searched)"));
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("'", abs, "' is in none of the ", covering, " snapshot(s) of its source"));
  }
  return out;
}

absl::StatusOr<SnapshotForPath> SnapshotAt(const EngineContext& ctx, int64_t time_ns,
                                           const std::string& abs_path) {
  CAIRN_ASSIGN_OR_RETURN(std::string abs, NormalizeAbsolute(abs_path));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> snaps, ctx.catalog->ListSnapshots());
  PathLookup lookup(ctx);
  // Oldest first: search backwards from the newest snapshot at or before time_ns.
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (it->snapshot.time_ns > time_ns) continue;
    std::optional<std::string> inner = SnapshotPathFor(it->snapshot, abs);
    if (!inner) continue;
    CAIRN_ASSIGN_OR_RETURN(
        std::optional<format::TreeEntry> entry,
        Annotate(lookup.Find(it->snapshot.root, *inner), "snapshot " + it->id.ShortHex()));
    if (entry) return SnapshotForPath{*it, *inner, *std::move(entry)};
  }
  std::string message =
      absl::StrCat("no snapshot taken at or before ", FormatUtc(time_ns), " holds '", abs, "'");
  // Name the earliest version, if any, so that the user knows which times work.
  for (const ports::SnapshotRecord& r : snaps) {
    if (r.snapshot.time_ns <= time_ns) continue;
    std::optional<std::string> inner = SnapshotPathFor(r.snapshot, abs);
    if (!inner) continue;
    auto entry = lookup.Find(r.snapshot.root, *inner);
    if (entry.ok() && *entry) {
      absl::StrAppend(&message, "; its earliest version is in snapshot ", r.id.ShortHex(), " of ",
                      FormatUtc(r.snapshot.time_ns));
      break;
    }
  }
  return absl::NotFoundError(message);
}

absl::StatusOr<DiffResult> Diff(const EngineContext& ctx, const format::Snapshot& a,
                                const format::Snapshot& b) {
  Differ differ(ctx);
  CAIRN_RETURN_IF_ERROR(differ.Trees(a.root, b.root, ""));
  return std::move(differ.result());
}

absl::StatusOr<std::vector<FoundEntry>> Find(const EngineContext& ctx, const std::string& pattern) {
  if (pattern.empty()) return absl::InvalidArgumentError("find: the pattern is empty");
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> snaps, ctx.catalog->ListSnapshots());
  Finder finder(ctx, pattern);
  std::vector<FoundEntry> out;
  for (const ports::SnapshotRecord& r : snaps) {
    CAIRN_ASSIGN_OR_RETURN(format::Tree root,
                           Annotate(LoadTree(ctx, r.snapshot.root), "snapshot " + r.id.ShortHex()));
    std::vector<Match> matches;
    for (const format::TreeEntry& e : root.entries) {
      std::optional<std::string> abs = SourcePathFor(r.snapshot, e.name);
      std::string source = abs ? *abs : "/" + e.name;
      finder.Entry(e, source, e.name, matches);
      if (e.type == format::EntryType::kDirectory && e.subtree) {
        CAIRN_ASSIGN_OR_RETURN(auto below, Annotate(finder.Tree(*e.subtree, source, e.name),
                                                    "snapshot " + r.id.ShortHex()));
        matches.insert(matches.end(), below->begin(), below->end());
      }
    }
    std::sort(matches.begin(), matches.end(),
              [](const Match& x, const Match& y) { return x.path < y.path; });
    for (Match& m : matches) {
      FoundEntry f;
      f.snapshot_id = r.id;
      f.time_ns = r.snapshot.time_ns;
      f.path = std::move(m.path);
      f.snapshot_path = std::move(m.snapshot_path);
      f.type = m.type;
      f.size = m.size;
      f.mtime_ns = m.mtime_ns;
      f.mode = m.mode;
      out.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace cairn::engine
