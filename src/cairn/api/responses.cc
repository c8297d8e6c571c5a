#include "cairn/api/responses.h"

#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"

namespace cairn::api {
namespace {

// A required string field; INVALID_ARGUMENT naming it when absent, not a string or empty.
absl::Status RequiredString(const Json& j, const char* name, std::string* out) {
  auto it = j.is_object() ? j.find(name) : j.end();
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", name, "' (a non-empty string) is missing from the answer"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// A field of the answer, by name; nullptr when absent or null.
const Json* Field(const Json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

absl::Status WrongType(const char* name, const char* what) {
  return absl::InvalidArgumentError(
      absl::StrCat("field '", name, "' of the answer must be ", what));
}

// Optional fields: absent or null leaves `out` as it is; the wrong type is INVALID_ARGUMENT.
absl::Status GetString(const Json& j, const char* name, std::string* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_string()) return WrongType(name, "a string");
  *out = f->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetString(const Json& j, const char* name, std::optional<std::string>* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_string()) return WrongType(name, "a string or null");
  *out = f->get<std::string>();
  return absl::OkStatus();
}

template <typename T>
absl::Status GetInt(const Json& j, const char* name, T* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_number_integer()) return WrongType(name, "an integer");
  if constexpr (std::is_unsigned_v<T>) {
    if (!f->is_number_unsigned()) return WrongType(name, "a non-negative integer");
    *out = static_cast<T>(f->get<uint64_t>());
  } else {
    *out = static_cast<T>(f->get<int64_t>());
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status GetInt(const Json& j, const char* name, std::optional<T>* out) {
  if (Field(j, name) == nullptr) return absl::OkStatus();
  T v{};
  CAIRN_RETURN_IF_ERROR(GetInt(j, name, &v));
  *out = v;
  return absl::OkStatus();
}

absl::Status GetBool(const Json& j, const char* name, bool* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_boolean()) return WrongType(name, "true or false");
  *out = f->get<bool>();
  return absl::OkStatus();
}

absl::Status GetDouble(const Json& j, const char* name, std::optional<double>* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_number()) return WrongType(name, "a number or null");
  *out = f->get<double>();
  return absl::OkStatus();
}

absl::Status GetPath(const Json& j, const char* name, std::string* out) {
  CAIRN_ASSIGN_OR_RETURN(*out, GetPathField(j, name));
  return absl::OkStatus();
}

// Whether the answer carries path field `name`, as text or as `<name>_base64`.
bool HasPath(const Json& j, const std::string& name) {
  return Field(j, name.c_str()) != nullptr || Field(j, (name + "_base64").c_str()) != nullptr;
}

// An optional path field: absent leaves `out` unset.
absl::Status GetPath(const Json& j, const char* name, std::optional<std::string>* out) {
  if (!HasPath(j, name)) return absl::OkStatus();
  std::string value;
  CAIRN_RETURN_IF_ERROR(GetPath(j, name, &value));
  *out = std::move(value);
  return absl::OkStatus();
}

// A required path field; INVALID_ARGUMENT naming it when absent.
absl::Status RequiredPath(const Json& j, const char* name, std::string* out) {
  if (!HasPath(j, name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", name, "' is missing from the answer"));
  }
  return GetPath(j, name, out);
}

Json OrNull(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }

std::string ShortId(const std::string& id) { return id.substr(0, 8); }

}  // namespace

Json ToJson(const JobStarted& r) { return Json{{"job_id", r.job_id}}; }

absl::Status FromJson(const Json& j, JobStarted* r) {
  return RequiredString(j, "job_id", &r->job_id);
}

Json ToJson(const JobCancelled& r) {
  return Json{{"job_id", r.job_id}, {"cancelled", r.cancelled}};
}

absl::Status FromJson(const Json& j, JobCancelled* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "job_id", &r->job_id));
  auto it = j.find("cancelled");
  r->cancelled = it != j.end() && it->is_boolean() && it->get<bool>();
  return absl::OkStatus();
}

SnapshotInfo SnapshotInfoOf(const ports::SnapshotRecord& record) {
  const format::Snapshot& s = record.snapshot;
  SnapshotInfo r;
  r.id = record.id.Hex();
  r.short_id = record.id.ShortHex();
  r.time_ns = s.time_ns;
  r.hostname = s.hostname;
  r.paths = s.paths;
  r.tags = s.tags;
  if (s.parent) r.parent = s.parent->Hex();
  r.copies = s.copies;
  if (s.ec_k > 0) r.ec = absl::StrCat(s.ec_k, "+", s.ec_m);
  r.files = s.stats.files;
  r.directories = s.stats.directories;
  r.bytes = s.stats.bytes;
  return r;
}

Json ToJson(const SnapshotInfo& r) {
  Json j;
  j["id"] = r.id;
  j["short_id"] = r.short_id;
  j["time"] = FormatRfc3339(r.time_ns);
  j["time_ns"] = r.time_ns;
  SetPathField(j, "hostname", r.hostname);
  SetPathArray(j, "paths", r.paths);
  SetPathArray(j, "tags", r.tags);
  j["parent"] = OrNull(r.parent);
  j["copies"] = r.copies;
  j["ec"] = OrNull(r.ec);
  j["files"] = r.files;
  j["directories"] = r.directories;
  j["bytes"] = r.bytes;
  return j;
}

absl::Status FromJson(const Json& j, SnapshotInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "id", &r->id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "short_id", &r->short_id));
  if (r->short_id.empty()) r->short_id = ShortId(r->id);
  CAIRN_RETURN_IF_ERROR(GetInt(j, "time_ns", &r->time_ns));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "hostname", &r->hostname));
  CAIRN_ASSIGN_OR_RETURN(r->paths, GetPathArray(j, "paths"));
  CAIRN_ASSIGN_OR_RETURN(r->tags, GetPathArray(j, "tags"));
  CAIRN_RETURN_IF_ERROR(GetString(j, "parent", &r->parent));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "copies", &r->copies));
  CAIRN_RETURN_IF_ERROR(GetString(j, "ec", &r->ec));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files", &r->files));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "directories", &r->directories));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  return absl::OkStatus();
}

Json ToJson(const PeerInfo& r) {
  Json j;
  j["peer_id"] = r.peer_id;
  j["host_id"] = SanitizeUtf8(r.host_id);
  j["site"] = SanitizeUtf8(r.site);
  j["address"] = SanitizeUtf8(r.address);
  j["quota"] = r.quota;
  j["used"] = r.used;
  j["room"] = r.room;
  j["disk_room"] = r.disk_room ? Json(*r.disk_room) : Json(nullptr);
  j["state"] = r.state;
  j["node_id"] = r.node_id;
  j["cert_fingerprint"] = r.cert_fingerprint;
  j["last_seen"] = r.last_seen_ns > 0 ? Json(FormatRfc3339(r.last_seen_ns)) : Json(nullptr);
  j["last_seen_ns"] = r.last_seen_ns;
  j["self"] = r.self;
  j["clock_offset_seconds"] =
      r.clock_offset_seconds ? Json(*r.clock_offset_seconds) : Json(nullptr);
  j["clock_skewed"] = r.clock_skewed;
  j["clock_window_seconds"] = r.clock_window_seconds;
  return j;
}

absl::Status FromJson(const Json& j, PeerInfo* r) {
  if (!j.is_object() || Field(j, "peer_id") == nullptr) {
    return absl::InvalidArgumentError("field 'peer_id' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peer_id", &r->peer_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "host_id", &r->host_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "site", &r->site));
  CAIRN_RETURN_IF_ERROR(GetString(j, "address", &r->address));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "quota", &r->quota));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "used", &r->used));
  // Older daemons do not report "room": the quota's.
  r->room = r->quota > r->used ? r->quota - r->used : 0;
  CAIRN_RETURN_IF_ERROR(GetInt(j, "room", &r->room));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "disk_room", &r->disk_room));
  CAIRN_RETURN_IF_ERROR(GetString(j, "state", &r->state));
  CAIRN_RETURN_IF_ERROR(GetString(j, "node_id", &r->node_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "cert_fingerprint", &r->cert_fingerprint));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "last_seen_ns", &r->last_seen_ns));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "self", &r->self));
  CAIRN_RETURN_IF_ERROR(GetDouble(j, "clock_offset_seconds", &r->clock_offset_seconds));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "clock_skewed", &r->clock_skewed));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "clock_window_seconds", &r->clock_window_seconds));
  return absl::OkStatus();
}

Json ToJson(const JobInfo& r) {
  Json j;
  j["id"] = r.id;
  j["kind"] = r.kind;
  j["state"] = r.state;
  j["started_ns"] = r.started_ns;
  j["progress"] = r.progress;
  if (r.result) j["result"] = *r.result;
  if (r.error) j["error"] = StatusToJson(*r.error);
  return j;
}

absl::Status FromJson(const Json& j, JobInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "id", &r->id));
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "state", &r->state));
  CAIRN_RETURN_IF_ERROR(GetString(j, "kind", &r->kind));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "started_ns", &r->started_ns));
  if (const Json* p = Field(j, "progress")) r->progress = *p;
  if (const Json* res = Field(j, "result")) r->result = *res;
  if (const Json* e = Field(j, "error")) r->error = StatusFromJson(*e);
  return absl::OkStatus();
}

Json ToJson(const FileVersionInfo& r) {
  Json j;
  j["snapshot_id"] = r.snapshot_id;
  j["snapshot_short_id"] = ShortId(r.snapshot_id);
  j["snapshot_time"] = FormatRfc3339(r.snapshot_time_ns);
  j["snapshot_time_ns"] = r.snapshot_time_ns;
  j["last_snapshot_id"] = r.last_snapshot_id;
  j["last_snapshot_short_id"] = ShortId(r.last_snapshot_id);
  j["last_snapshot_time"] = FormatRfc3339(r.last_snapshot_time_ns);
  j["last_snapshot_time_ns"] = r.last_snapshot_time_ns;
  j["snapshots"] = r.snapshots;
  SetPathField(j, "snapshot_path", r.snapshot_path);
  j["type"] = r.type;
  j["size"] = r.size;
  j["mode"] = r.mode;
  j["mtime"] = FormatRfc3339(r.mtime_ns, /*nanoseconds=*/true);
  j["mtime_ns"] = r.mtime_ns;
  j["content_hash"] = r.content_hash;
  if (r.target) SetPathField(j, "target", *r.target);
  return j;
}

absl::Status FromJson(const Json& j, FileVersionInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "snapshot_id", &r->snapshot_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshot_time_ns", &r->snapshot_time_ns));
  CAIRN_RETURN_IF_ERROR(GetString(j, "last_snapshot_id", &r->last_snapshot_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "last_snapshot_time_ns", &r->last_snapshot_time_ns));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "snapshot_path", &r->snapshot_path));
  CAIRN_RETURN_IF_ERROR(GetString(j, "type", &r->type));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "size", &r->size));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "mode", &r->mode));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "mtime_ns", &r->mtime_ns));
  CAIRN_RETURN_IF_ERROR(GetString(j, "content_hash", &r->content_hash));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "target", &r->target));
  return absl::OkStatus();
}

Json ToJson(const VersionList& r) {
  Json j;
  SetPathField(j, "path", r.path);
  j["collapsed"] = r.collapsed;
  j["versions"] = ToJson(r.versions);
  return j;
}

absl::Status FromJson(const Json& j, VersionList* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the answer is not a JSON object");
  CAIRN_RETURN_IF_ERROR(GetPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "collapsed", &r->collapsed));
  const Json* versions = Field(j, "versions");
  if (versions == nullptr) return absl::InvalidArgumentError("field 'versions' is missing");
  return FromJson(*versions, &r->versions);
}

Json ToJson(const Health& r) {
  Json problems = Json::array();
  for (const std::string& p : r.problems) problems.push_back(SanitizeUtf8(p));
  const SnapshotHealthSummary& s = r.snapshot_health;
  Json summary;
  summary["computed_at"] = OrNull(s.computed_at);
  summary["age_seconds"] = s.age_seconds ? Json(*s.age_seconds) : Json(nullptr);
  summary["compute_seconds"] = s.compute_seconds ? Json(*s.compute_seconds) : Json(nullptr);
  summary["error"] = s.error ? Json(SanitizeUtf8(*s.error)) : Json(nullptr);
  summary["rebuild_rate_bytes_per_second"] =
      s.rebuild_rate_bytes_per_second ? Json(*s.rebuild_rate_bytes_per_second) : Json(nullptr);
  summary["rebuild_rate_source"] = OrNull(s.rebuild_rate_source);
  Json j;
  j["live"] = r.live;
  j["ready"] = r.ready;
  j["problems"] = std::move(problems);
  j["index"] = r.index;
  j["peers_known"] = r.peers_known;
  j["peers_alive"] = r.peers_alive;
  j["snapshots"] = r.snapshots.is_array() ? r.snapshots : Json::array();
  j["snapshot_health"] = std::move(summary);
  return j;
}

absl::Status FromJson(const Json& j, Health* r) {
  if (!j.is_object() || Field(j, "ready") == nullptr) {
    return absl::InvalidArgumentError("field 'ready' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetBool(j, "live", &r->live));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "ready", &r->ready));
  r->problems.clear();
  if (const Json* p = Field(j, "problems")) {
    if (!p->is_array()) return WrongType("problems", "an array of strings");
    for (const Json& e : *p) {
      if (!e.is_string()) return WrongType("problems", "an array of strings");
      r->problems.push_back(e.get<std::string>());
    }
  }
  CAIRN_RETURN_IF_ERROR(GetString(j, "index", &r->index));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peers_known", &r->peers_known));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peers_alive", &r->peers_alive));
  if (const Json* s = Field(j, "snapshots")) {
    if (!s->is_array()) return WrongType("snapshots", "an array");
    r->snapshots = *s;
  }
  if (const Json* s = Field(j, "snapshot_health")) {
    if (!s->is_object()) return WrongType("snapshot_health", "an object");
    SnapshotHealthSummary& out = r->snapshot_health;
    CAIRN_RETURN_IF_ERROR(GetString(*s, "computed_at", &out.computed_at));
    CAIRN_RETURN_IF_ERROR(GetInt(*s, "age_seconds", &out.age_seconds));
    CAIRN_RETURN_IF_ERROR(GetDouble(*s, "compute_seconds", &out.compute_seconds));
    CAIRN_RETURN_IF_ERROR(GetString(*s, "error", &out.error));
    CAIRN_RETURN_IF_ERROR(
        GetDouble(*s, "rebuild_rate_bytes_per_second", &out.rebuild_rate_bytes_per_second));
    CAIRN_RETURN_IF_ERROR(GetString(*s, "rebuild_rate_source", &out.rebuild_rate_source));
  }
  return absl::OkStatus();
}

Json ToJson(const SourceInfo& r) {
  Json j;
  SetPathField(j, "path", r.path);
  j["copies"] = r.copies ? Json(*r.copies) : Json(nullptr);
  j["ec"] = OrNull(r.ec);
  SetPathArray(j, "excludes", r.excludes);
  j["schedule"] = r.schedule;
  j["watch"] = r.watch;
  j["keep"] = ToJson(r.keep);
  if (r.state) {
    const SourceState& s = *r.state;
    j["watching"] = s.watching;
    j["watches"] = s.watches;
    j["pending"] = s.pending;
    j["running_job"] = OrNull(s.running_job);
    j["backups"] = s.backups;
    j["last_backup"] = s.last_backup;
  }
  return j;
}

absl::Status FromJson(const Json& j, SourceInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "copies", &r->copies));
  CAIRN_RETURN_IF_ERROR(GetString(j, "ec", &r->ec));
  CAIRN_ASSIGN_OR_RETURN(r->excludes, GetPathArray(j, "excludes"));
  CAIRN_RETURN_IF_ERROR(GetString(j, "schedule", &r->schedule));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "watch", &r->watch));
  if (const Json* keep = Field(j, "keep")) {
    if (!keep->is_object()) return WrongType("keep", "an object");
    CAIRN_RETURN_IF_ERROR(FromJson(*keep, &r->keep));
  }
  // The state fields come together (GET /v1/sources).
  if (Field(j, "backups") != nullptr) {
    SourceState s;
    CAIRN_RETURN_IF_ERROR(GetBool(j, "watching", &s.watching));
    CAIRN_RETURN_IF_ERROR(GetInt(j, "watches", &s.watches));
    CAIRN_RETURN_IF_ERROR(GetBool(j, "pending", &s.pending));
    CAIRN_RETURN_IF_ERROR(GetString(j, "running_job", &s.running_job));
    CAIRN_RETURN_IF_ERROR(GetInt(j, "backups", &s.backups));
    if (const Json* b = Field(j, "last_backup")) {
      if (!b->is_object()) return WrongType("last_backup", "an object or null");
      s.last_backup = *b;
    }
    r->state = std::move(s);
  }
  return absl::OkStatus();
}

Json ToJson(const LsEntry& r) {
  Json j;
  SetPathField(j, "path", r.path);
  j["type"] = r.type;
  j["size"] = r.size;
  j["mode"] = r.mode;
  j["mtime"] = FormatRfc3339(r.mtime_ns, /*nanoseconds=*/true);
  j["mtime_ns"] = r.mtime_ns;
  j["uid"] = r.uid;
  j["gid"] = r.gid;
  if (r.target) SetPathField(j, "target", *r.target);
  return j;
}

absl::Status FromJson(const Json& j, LsEntry* r) {
  CAIRN_RETURN_IF_ERROR(RequiredPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "type", &r->type));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "size", &r->size));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "mode", &r->mode));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "mtime_ns", &r->mtime_ns));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "uid", &r->uid));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "gid", &r->gid));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "target", &r->target));
  return absl::OkStatus();
}

namespace {

Json DiffSnapshotJson(const DiffSnapshot& r) {
  return Json{{"id", r.id},
              {"short_id", ShortId(r.id)},
              {"time", FormatRfc3339(r.time_ns)},
              {"time_ns", r.time_ns}};
}

absl::Status FromJson(const Json& j, DiffSnapshot* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "id", &r->id));
  return GetInt(j, "time_ns", &r->time_ns);
}

}  // namespace

Json ToJson(const DiffChange& r) {
  Json j;
  j["change"] = r.change;
  SetPathField(j, "path", r.path);
  if (r.source_path) SetPathField(j, "source_path", *r.source_path);
  j["type"] = r.type;
  if (r.before) {
    j["type_before"] = r.before->type;
    j["size_before"] = r.before->size;
    j["mode_before"] = r.before->mode;
  }
  if (r.after) {
    j["type_after"] = r.after->type;
    j["size_after"] = r.after->size;
    j["mode_after"] = r.after->mode;
  }
  if (r.change == "modified") {
    j["content_changed"] = r.content_changed;
    j["type_changed"] = r.type_changed;
    j["mode_changed"] = r.mode_changed;
  }
  return j;
}

absl::Status FromJson(const Json& j, DiffChange* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("a change of the answer is not an object");
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "change", &r->change));
  if (r->change != "added" && r->change != "removed" && r->change != "modified") {
    return WrongType("change", "\"added\", \"removed\" or \"modified\"");
  }
  CAIRN_RETURN_IF_ERROR(GetPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "source_path", &r->source_path));
  CAIRN_RETURN_IF_ERROR(GetString(j, "type", &r->type));
  auto side = [&](const char* which, std::optional<DiffSide>* out) -> absl::Status {
    const std::string type = absl::StrCat("type_", which), size = absl::StrCat("size_", which),
                      mode = absl::StrCat("mode_", which);
    if (Field(j, type.c_str()) == nullptr) return absl::OkStatus();
    DiffSide d;
    CAIRN_RETURN_IF_ERROR(RequiredString(j, type.c_str(), &d.type));
    CAIRN_RETURN_IF_ERROR(GetInt(j, size.c_str(), &d.size));
    CAIRN_RETURN_IF_ERROR(GetInt(j, mode.c_str(), &d.mode));
    *out = std::move(d);
    return absl::OkStatus();
  };
  CAIRN_RETURN_IF_ERROR(side("before", &r->before));
  CAIRN_RETURN_IF_ERROR(side("after", &r->after));
  if ((r->change != "added" && !r->before) || (r->change != "removed" && !r->after)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a change '", r->change, "' of the answer lacks its before or after side"));
  }
  CAIRN_RETURN_IF_ERROR(GetBool(j, "content_changed", &r->content_changed));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "type_changed", &r->type_changed));
  return GetBool(j, "mode_changed", &r->mode_changed);
}

Json ToJson(const DiffAnswer& r) {
  Json j;
  j["a"] = DiffSnapshotJson(r.a);
  j["b"] = DiffSnapshotJson(r.b);
  j["changes"] = ToJson(r.changes);
  j["added"] = r.added;
  j["removed"] = r.removed;
  j["modified"] = r.modified;
  j["added_bytes"] = r.added_bytes;
  j["removed_bytes"] = r.removed_bytes;
  j["identical_subtrees"] = r.identical_subtrees;
  return j;
}

absl::Status FromJson(const Json& j, DiffAnswer* r) {
  const Json* a = Field(j, "a");
  const Json* b = Field(j, "b");
  if (a == nullptr || b == nullptr || !a->is_object() || !b->is_object()) {
    return absl::InvalidArgumentError("fields 'a' and 'b' (objects) are missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(FromJson(*a, &r->a));
  CAIRN_RETURN_IF_ERROR(FromJson(*b, &r->b));
  if (const Json* changes = Field(j, "changes")) {
    CAIRN_RETURN_IF_ERROR(FromJson(*changes, &r->changes));
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "added", &r->added));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "removed", &r->removed));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "modified", &r->modified));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "added_bytes", &r->added_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "removed_bytes", &r->removed_bytes));
  return GetInt(j, "identical_subtrees", &r->identical_subtrees);
}

Json ToJson(const FindMatch& r) {
  Json j;
  j["snapshot_id"] = r.snapshot_id;
  j["snapshot_short_id"] = ShortId(r.snapshot_id);
  j["snapshot_time"] = FormatRfc3339(r.snapshot_time_ns);
  j["snapshot_time_ns"] = r.snapshot_time_ns;
  SetPathField(j, "path", r.path);
  SetPathField(j, "snapshot_path", r.snapshot_path);
  j["type"] = r.type;
  j["size"] = r.size;
  j["mode"] = r.mode;
  j["mtime"] = FormatRfc3339(r.mtime_ns, /*nanoseconds=*/true);
  j["mtime_ns"] = r.mtime_ns;
  return j;
}

absl::Status FromJson(const Json& j, FindMatch* r) {
  CAIRN_RETURN_IF_ERROR(RequiredPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "snapshot_id", &r->snapshot_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshot_time_ns", &r->snapshot_time_ns));
  if (HasPath(j, "snapshot_path")) {
    CAIRN_RETURN_IF_ERROR(GetPath(j, "snapshot_path", &r->snapshot_path));
  }
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "type", &r->type));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "size", &r->size));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "mode", &r->mode));
  return GetInt(j, "mtime_ns", &r->mtime_ns);
}

}  // namespace cairn::api
