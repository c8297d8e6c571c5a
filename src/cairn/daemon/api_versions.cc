// The versions feature of the local API (api_versions.h; docs/cli.md "Local HTTP API"): its
// routes and their answers, over engine/versions.h.
#include "cairn/daemon/api_versions.h"

#include <optional>
#include <string>
#include <vector>

#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/engine/snapshot_read.h"
#include "cairn/engine/versions.h"

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

api::FileVersionInfo VersionInfo(const engine::FileVersion& v) {
  api::FileVersionInfo r;
  r.snapshot_id = v.snapshot_id.Hex();
  r.snapshot_time_ns = v.time_ns;
  r.last_snapshot_id = v.last_snapshot_id.Hex();
  r.last_snapshot_time_ns = v.last_time_ns;
  r.snapshots = v.snapshots;
  r.snapshot_path = v.snapshot_path;
  r.type = format::EntryTypeName(v.type);
  r.size = v.size;
  r.mode = v.mode;
  r.mtime_ns = v.mtime_ns;
  r.content_hash = v.content_hash;
  if (v.type == format::EntryType::kSymlink) r.target = v.symlink_target;
  return r;
}

// `a`, `b`: the snapshots compared (the source path is looked up in the newer one first).
api::DiffChange ChangeInfo(const engine::Change& c, const format::Snapshot& a,
                           const format::Snapshot& b) {
  api::DiffChange r;
  r.change = ChangeName(c.kind);
  r.path = c.path;
  r.source_path = engine::SourcePathFor(b, c.path);
  if (!r.source_path) r.source_path = engine::SourcePathFor(a, c.path);
  const bool before = c.kind != engine::ChangeKind::kAdded;
  const bool after = c.kind != engine::ChangeKind::kRemoved;
  r.type = format::EntryTypeName(after ? c.type_after : c.type_before);
  if (before)
    r.before = api::DiffSide{format::EntryTypeName(c.type_before), c.size_before, c.mode_before};
  if (after)
    r.after = api::DiffSide{format::EntryTypeName(c.type_after), c.size_after, c.mode_after};
  if (c.kind == engine::ChangeKind::kModified) {
    r.content_changed = c.content_changed;
    r.type_changed = c.type_changed;
    r.mode_changed = c.mode_changed;
  }
  return r;
}

api::FindMatch MatchInfo(const engine::FoundEntry& f) {
  api::FindMatch r;
  r.snapshot_id = f.snapshot_id.Hex();
  r.snapshot_time_ns = f.time_ns;
  r.path = f.path;
  r.snapshot_path = f.snapshot_path;
  r.type = format::EntryTypeName(f.type);
  r.size = f.size;
  r.mode = f.mode;
  r.mtime_ns = f.mtime_ns;
  return r;
}

}  // namespace

std::vector<ApiRoute> VersionsApi::Routes() {
  return {
      {"GET", "/v1/versions", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         if (!format::ParseArchivePath(path)) {  // else NAME:/path in an archive
           CAIRN_RETURN_IF_ERROR(api::RequireAbsolute(path, "the path"));
         }
         CAIRN_ASSIGN_OR_RETURN(bool all, ParseBool("all", req.get_param_value("all")));
         CAIRN_ASSIGN_OR_RETURN(Json j, GetVersions(path, all));
         return Reply{200, std::move(j)};
       })},
      {"GET", "/v1/diff", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string a = req.get_param_value("a"), b = req.get_param_value("b");
         if (a.empty() || b.empty()) {
           return absl::InvalidArgumentError("query parameters 'a' and 'b' are required");
         }
         CAIRN_ASSIGN_OR_RETURN(Json j, GetDiff(a, b));
         return Reply{200, std::move(j)};
       })},
      {"GET", "/v1/find", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string pattern, RawParam(req, "pattern"));
         if (pattern.empty()) {
           return absl::InvalidArgumentError("query parameter 'pattern' is required");
         }
         CAIRN_ASSIGN_OR_RETURN(Json j, FindEntries(pattern));
         return Reply{200, std::move(j)};
       })},
  };
}

absl::StatusOr<Json> VersionsApi::GetVersions(const std::string& path, bool all) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("versions"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("list versions"));
  engine::VersionsOptions options;
  options.collapse = !all;
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::FileVersion> versions,
                         engine::ListVersions(*ctx_.engine, path, options));
  api::VersionList out{path, options.collapse, {}};
  for (const engine::FileVersion& v : versions) out.versions.push_back(VersionInfo(v));
  return api::ToJson(out);
}

absl::StatusOr<Json> VersionsApi::GetDiff(const std::string& a, const std::string& b) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("diff"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("diff"));
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord ra,
                         engine::ResolveSnapshot(ctx_.engine->catalog, a));
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord rb,
                         engine::ResolveSnapshot(ctx_.engine->catalog, b));
  CAIRN_ASSIGN_OR_RETURN(engine::DiffResult d,
                         engine::Diff(*ctx_.engine, ra.snapshot, rb.snapshot));
  api::DiffAnswer out;
  out.a = {ra.id.Hex(), ra.snapshot.time_ns};
  out.b = {rb.id.Hex(), rb.snapshot.time_ns};
  for (const engine::Change& c : d.changes) {
    out.changes.push_back(ChangeInfo(c, ra.snapshot, rb.snapshot));
  }
  out.added = d.added;
  out.removed = d.removed;
  out.modified = d.modified;
  out.added_bytes = d.added_bytes;
  out.removed_bytes = d.removed_bytes;
  out.identical_subtrees = d.identical_subtrees;
  return api::ToJson(out);
}

absl::StatusOr<Json> VersionsApi::FindEntries(const std::string& pattern) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("find"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("find"));
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::FoundEntry> found,
                         engine::Find(*ctx_.engine, pattern));
  std::vector<api::FindMatch> out;
  for (const engine::FoundEntry& f : found) out.push_back(MatchInfo(f));
  return api::ToJson(out);
}

}  // namespace cairn::daemon
