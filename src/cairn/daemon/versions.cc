// The daemon's versions routes (issue 5, engine/versions.h): GET /v1/versions, GET /v1/diff,
// GET /v1/find, and POST /v1/restore with "at" (the path as of a point in time). Reads only:
// they run on the API thread, not as jobs, except the restore.
#include "cairn/engine/versions.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"
#include "cairn/engine/restore.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

const char* ChangeName(engine::ChangeKind k) {
  switch (k) {
    case engine::ChangeKind::kAdded:
      return "added";
    case engine::ChangeKind::kRemoved:
      return "removed";
    case engine::ChangeKind::kModified:
      return "modified";
  }
  return "unknown";
}

// The identity of a snapshot in a versions reply: {"id","short_id","time","time_ns"}.
void SetSnapshot(Json& j, const std::string& prefix, const ChunkId& id, int64_t time_ns) {
  j[prefix + "id"] = id.Hex();
  j[prefix + "short_id"] = id.ShortHex();
  j[prefix + "time"] = api::FormatRfc3339(time_ns);
  j[prefix + "time_ns"] = time_ns;
}

Json VersionJson(const engine::FileVersion& v) {
  Json j;
  SetSnapshot(j, "snapshot_", v.snapshot_id, v.time_ns);
  SetSnapshot(j, "last_snapshot_", v.last_snapshot_id, v.last_time_ns);
  j["snapshots"] = v.snapshots;
  api::SetPathField(j, "snapshot_path", v.snapshot_path);
  j["type"] = format::EntryTypeName(v.type);
  j["size"] = v.size;
  j["mode"] = v.mode;
  j["mtime"] = api::FormatRfc3339(v.mtime_ns, /*nanoseconds=*/true);
  j["mtime_ns"] = v.mtime_ns;
  j["content_hash"] = v.content_hash;
  if (v.type == format::EntryType::kSymlink) api::SetPathField(j, "target", v.symlink_target);
  return j;
}

// `a`, `b`: the snapshots compared (the source path is looked up in the newer one first).
Json ChangeJson(const engine::Change& c, const format::Snapshot& a, const format::Snapshot& b) {
  Json j;
  j["change"] = ChangeName(c.kind);
  api::SetPathField(j, "path", c.path);
  std::optional<std::string> source = engine::SourcePathFor(b, c.path);
  if (!source) source = engine::SourcePathFor(a, c.path);
  if (source) api::SetPathField(j, "source_path", *source);
  const bool before = c.kind != engine::ChangeKind::kAdded;
  const bool after = c.kind != engine::ChangeKind::kRemoved;
  j["type"] = format::EntryTypeName(after ? c.type_after : c.type_before);
  if (before) {
    j["type_before"] = format::EntryTypeName(c.type_before);
    j["size_before"] = c.size_before;
    j["mode_before"] = c.mode_before;
  }
  if (after) {
    j["type_after"] = format::EntryTypeName(c.type_after);
    j["size_after"] = c.size_after;
    j["mode_after"] = c.mode_after;
  }
  if (c.kind == engine::ChangeKind::kModified) {
    j["content_changed"] = c.content_changed;
    j["type_changed"] = c.type_changed;
    j["mode_changed"] = c.mode_changed;
  }
  return j;
}

Json FoundJson(const engine::FoundEntry& f) {
  Json j;
  SetSnapshot(j, "snapshot_", f.snapshot_id, f.time_ns);
  api::SetPathField(j, "path", f.path);
  api::SetPathField(j, "snapshot_path", f.snapshot_path);
  j["type"] = format::EntryTypeName(f.type);
  j["size"] = f.size;
  j["mode"] = f.mode;
  j["mtime"] = api::FormatRfc3339(f.mtime_ns, /*nanoseconds=*/true);
  j["mtime_ns"] = f.mtime_ns;
  return j;
}

}  // namespace

absl::StatusOr<Json> Daemon::GetVersions(const std::string& path, bool all) {
  CAIRN_RETURN_IF_ERROR(IndexReady("list versions"));
  engine::VersionsOptions options;
  options.collapse = !all;
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::FileVersion> versions,
                         engine::ListVersions(ctx_, path, options));
  Json list = Json::array();
  for (const engine::FileVersion& v : versions) list.push_back(VersionJson(v));
  Json out;
  api::SetPathField(out, "path", path);
  out["collapsed"] = options.collapse;
  out["versions"] = std::move(list);
  return out;
}

absl::StatusOr<Json> Daemon::GetDiff(const std::string& a, const std::string& b) {
  CAIRN_RETURN_IF_ERROR(IndexReady("diff"));
  CAIRN_ASSIGN_OR_RETURN(index::SnapshotRecord ra, engine::ResolveSnapshot(catalog_.get(), a));
  CAIRN_ASSIGN_OR_RETURN(index::SnapshotRecord rb, engine::ResolveSnapshot(catalog_.get(), b));
  CAIRN_ASSIGN_OR_RETURN(engine::DiffResult d, engine::Diff(ctx_, ra.snapshot, rb.snapshot));
  Json changes = Json::array();
  for (const engine::Change& c : d.changes)
    changes.push_back(ChangeJson(c, ra.snapshot, rb.snapshot));
  Json out;
  Json ja, jb;
  SetSnapshot(ja, "", ra.id, ra.snapshot.time_ns);
  SetSnapshot(jb, "", rb.id, rb.snapshot.time_ns);
  out["a"] = std::move(ja);
  out["b"] = std::move(jb);
  out["changes"] = std::move(changes);
  out["added"] = d.added;
  out["removed"] = d.removed;
  out["modified"] = d.modified;
  out["added_bytes"] = d.added_bytes;
  out["removed_bytes"] = d.removed_bytes;
  out["identical_subtrees"] = d.identical_subtrees;
  return out;
}

absl::StatusOr<Json> Daemon::FindEntries(const std::string& pattern) {
  CAIRN_RETURN_IF_ERROR(IndexReady("find"));
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::FoundEntry> found, engine::Find(ctx_, pattern));
  Json out = Json::array();
  for (const engine::FoundEntry& f : found) out.push_back(FoundJson(f));
  return out;
}

absl::StatusOr<std::string> Daemon::StartRestoreAt(const api::RestoreRequest& request) {
  CAIRN_RETURN_IF_ERROR(IndexReady("restore"));
  if (!request.at_ns) return absl::InvalidArgumentError("restore: no time ('at') given");
  CAIRN_ASSIGN_OR_RETURN(engine::SnapshotForPath found,
                         engine::SnapshotAt(ctx_, *request.at_ns, request.path));
  spdlog::info("restore of {} as of {}: snapshot {} of {}", api::SanitizeUtf8(request.path),
               api::FormatRfc3339(*request.at_ns), found.record.id.ShortHex(),
               api::FormatRfc3339(found.record.snapshot.time_ns));
  api::RestoreRequest r;
  r.snapshot = found.record.id.Hex();
  r.path = found.snapshot_path;
  r.target = request.target;
  return StartRestore(r);
}

}  // namespace cairn::daemon
