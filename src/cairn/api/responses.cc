#include "cairn/api/responses.h"

#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_fields.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"

namespace cairn::api {
namespace {

using namespace fields;  // NOLINT(build/namespaces): the field readers

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

Json ToJson(const LoginCode& r) {
  return Json{{"code", r.code}, {"expires_seconds", r.expires_seconds}};
}

absl::Status FromJson(const Json& j, LoginCode* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "code", &r->code));
  return GetInt(j, "expires_seconds", &r->expires_seconds);
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
  if (!s.archive.empty()) r.archive = s.archive;
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
  j["archive"] = OrNull(r.archive);
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
  return GetString(j, "archive", &r->archive);
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

namespace {

Json OrNull(const std::optional<uint64_t>& v) { return v ? Json(*v) : Json(nullptr); }
Json OrNull(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

absl::Status GetDouble(const Json& j, const char* name, double* out) {
  std::optional<double> v;
  CAIRN_RETURN_IF_ERROR(GetDouble(j, name, &v));
  if (v) *out = *v;
  return absl::OkStatus();
}

// An optional object field decoded with FromJson; absent or null leaves `out` unset.
template <typename T>
absl::Status GetObject(const Json& j, const char* name, std::optional<T>* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_object()) return WrongType(name, "an object or null");
  T value;
  CAIRN_RETURN_IF_ERROR(FromJson(*f, &value));
  *out = std::move(value);
  return absl::OkStatus();
}

// A required object field decoded with FromJson.
template <typename T>
absl::Status RequiredObject(const Json& j, const char* name, T* out) {
  const Json* f = Field(j, name);
  if (f == nullptr || !f->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", name, "' (an object) is missing from the answer"));
  }
  return FromJson(*f, out);
}

// {"name": n, ...} as a list in the object's order; values non-negative integers.
absl::Status GetCounts(const Json& j, const char* name,
                       std::vector<std::pair<std::string, uint64_t>>* out) {
  out->clear();
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_object()) return WrongType(name, "an object of counts");
  for (const auto& [key, n] : f->items()) {
    if (!IsNonNegativeInteger(n)) return WrongType(name, "an object of counts");
    out->emplace_back(key, n.get<uint64_t>());
  }
  return absl::OkStatus();
}

Json CountsJson(const std::vector<std::pair<std::string, uint64_t>>& counts) {
  Json out = Json::object();
  for (const auto& [name, n] : counts) out[name] = n;
  return out;
}

}  // namespace

Json ToJson(const TransferProgress& r) {
  return Json{{"files_total", r.files_total},
              {"bytes_total", r.bytes_total},
              {"scan_done", r.scan_done},
              {"files_done", r.files_done},
              {"bytes_done", r.bytes_done}};
}

absl::Status FromJson(const Json& j, TransferProgress* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the progress is not a JSON object");
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_total", &r->files_total));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_total", &r->bytes_total));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "scan_done", &r->scan_done));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_done", &r->files_done));
  return GetInt(j, "bytes_done", &r->bytes_done);
}

Json ToJson(const BackupProgressInfo& r) {
  Json j = ToJson(r.transfer);
  j["bytes_read"] = r.bytes_read;
  j["new_bytes"] = r.new_bytes;
  j["sent_bytes"] = r.sent_bytes;
  j["chunks"] = r.chunks;
  j["new_chunks"] = r.new_chunks;
  j["files_read"] = r.files_read;
  j["files_unchanged"] = r.files_unchanged;
  j["files_changed_during_read"] = r.files_changed_during_read;
  return j;
}

absl::Status FromJson(const Json& j, BackupProgressInfo* r) {
  CAIRN_RETURN_IF_ERROR(FromJson(j, &r->transfer));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_read", &r->bytes_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "new_bytes", &r->new_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "sent_bytes", &r->sent_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "new_chunks", &r->new_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_read", &r->files_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_unchanged", &r->files_unchanged));
  return GetInt(j, "files_changed_during_read", &r->files_changed_during_read);
}

Json ToJson(const ChunkProgress& r) {
  return Json{{"chunks_total", r.chunks_total},
              {"chunks_done", r.chunks_done},
              {"bytes_done", r.bytes_done}};
}

absl::Status FromJson(const Json& j, ChunkProgress* r) {
  if (!j.is_object() || Field(j, "chunks_total") == nullptr) {
    return absl::InvalidArgumentError("field 'chunks_total' is missing from the progress");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_total", &r->chunks_total));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_done", &r->chunks_done));
  return GetInt(j, "bytes_done", &r->bytes_done);
}

Json ToJson(const BackupAnswer& r) {
  Json j;
  j["snapshot_id"] = r.snapshot_id;
  j["short_id"] = r.short_id;
  j["files"] = r.files;
  j["files_read"] = r.files_read;
  j["files_unchanged"] = r.files_unchanged;
  j["rehash"] = r.rehash;
  j["files_changed_same_metadata"] = r.files_changed_same_metadata;
  j["files_reread"] = r.files_reread;
  j["files_changed_during_read"] = r.files_changed_during_read;
  j["directories"] = r.directories;
  j["bytes"] = r.bytes;
  j["bytes_read"] = r.bytes_read;
  j["new_bytes"] = r.new_bytes;
  j["sent_bytes"] = r.sent_bytes;
  j["chunks"] = r.chunks;
  j["new_chunks"] = r.new_chunks;
  j["duration_seconds"] = r.duration_seconds;
  j["copies"] = r.copies;
  j["ec"] = OrNull(r.ec);
  j["offsite"] = r.offsite;
  SetPathArray(j, "warnings", r.warnings);
  SetPathArray(j, "errors", r.errors);
  j["chunks_below_target"] = r.chunks_below_target;
  j["redundancy_warning"] =
      r.redundancy_warning ? Json(SanitizeUtf8(*r.redundancy_warning)) : Json(nullptr);
  j["degraded"] = r.degraded;
  if (!r.retention.is_null()) j["retention"] = r.retention;
  return j;
}

absl::Status FromJson(const Json& j, BackupAnswer* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "snapshot_id", &r->snapshot_id));
  r->short_id = ShortId(r->snapshot_id);
  CAIRN_RETURN_IF_ERROR(GetString(j, "short_id", &r->short_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files", &r->files));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_read", &r->files_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_unchanged", &r->files_unchanged));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "rehash", &r->rehash));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_changed_same_metadata", &r->files_changed_same_metadata));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_reread", &r->files_reread));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files_changed_during_read", &r->files_changed_during_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "directories", &r->directories));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_read", &r->bytes_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "new_bytes", &r->new_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "sent_bytes", &r->sent_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "new_chunks", &r->new_chunks));
  CAIRN_RETURN_IF_ERROR(GetDouble(j, "duration_seconds", &r->duration_seconds));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "copies", &r->copies));
  CAIRN_RETURN_IF_ERROR(GetString(j, "ec", &r->ec));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "offsite", &r->offsite));
  CAIRN_ASSIGN_OR_RETURN(r->warnings, GetPathArray(j, "warnings"));
  CAIRN_ASSIGN_OR_RETURN(r->errors, GetPathArray(j, "errors"));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_below_target", &r->chunks_below_target));
  CAIRN_RETURN_IF_ERROR(GetString(j, "redundancy_warning", &r->redundancy_warning));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "degraded", &r->degraded));
  r->retention = nullptr;
  if (const Json* f = Field(j, "retention")) r->retention = *f;
  return absl::OkStatus();
}

Json ToJson(const RestoreAnswer& r) {
  Json j;
  j["snapshot_id"] = r.snapshot_id;
  j["short_id"] = r.short_id;
  SetPathField(j, "target", r.target);
  j["files"] = r.files;
  j["directories"] = r.directories;
  j["symlinks"] = r.symlinks;
  j["hardlinks"] = r.hardlinks;
  j["bytes"] = r.bytes;
  j["duration_seconds"] = r.duration_seconds;
  SetPathArray(j, "errors", r.errors);
  return j;
}

absl::Status FromJson(const Json& j, RestoreAnswer* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "snapshot_id", &r->snapshot_id));
  r->short_id = ShortId(r->snapshot_id);
  CAIRN_RETURN_IF_ERROR(GetString(j, "short_id", &r->short_id));
  CAIRN_RETURN_IF_ERROR(GetPath(j, "target", &r->target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files", &r->files));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "directories", &r->directories));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "symlinks", &r->symlinks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "hardlinks", &r->hardlinks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  CAIRN_RETURN_IF_ERROR(GetDouble(j, "duration_seconds", &r->duration_seconds));
  CAIRN_ASSIGN_OR_RETURN(r->errors, GetPathArray(j, "errors"));
  return absl::OkStatus();
}

namespace {

Json StringArray(const std::vector<std::string>& list) {
  Json out = Json::array();
  for (const std::string& e : list) out.push_back(SanitizeUtf8(e));
  return out;
}

absl::Status GetStringArray(const Json& j, const char* name, std::vector<std::string>* out) {
  out->clear();
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_array()) return WrongType(name, "an array of strings");
  for (const Json& e : *f) {
    if (!e.is_string()) return WrongType(name, "an array of strings");
    out->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

// An optional array field of objects decoded with FromJson; absent or null: empty.
template <typename T>
absl::Status GetArray(const Json& j, const char* name, std::vector<T>* out) {
  out->clear();
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_array()) return WrongType(name, "an array");
  return FromJson(*f, out);
}

}  // namespace

Json ToJson(const GcInfo& r) {
  return Json{{"snapshots", r.snapshots},
              {"referenced_chunks", r.referenced_chunks},
              {"unreferenced_chunks", r.unreferenced_chunks},
              {"unreferenced_bytes", r.unreferenced_bytes},
              {"deletions_queued", r.deletions_queued},
              {"targets_lowered", r.targets_lowered},
              {"targets_raised", r.targets_raised}};
}

absl::Status FromJson(const Json& j, GcInfo* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "referenced_chunks", &r->referenced_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "unreferenced_chunks", &r->unreferenced_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "unreferenced_bytes", &r->unreferenced_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "deletions_queued", &r->deletions_queued));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "targets_lowered", &r->targets_lowered));
  return GetInt(j, "targets_raised", &r->targets_raised);
}

Json ToJson(const DeliveryInfo& r) {
  return Json{{"delivered", r.delivered},
              {"peers_done", r.peers_done},
              {"peers_unreachable", r.peers_unreachable},
              {"pending", r.pending}};
}

absl::Status FromJson(const Json& j, DeliveryInfo* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "delivered", &r->delivered));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peers_done", &r->peers_done));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peers_unreachable", &r->peers_unreachable));
  return GetInt(j, "pending", &r->pending);
}

Json ToJson(const ForgetDecision& r) {
  Json j = ToJson(r.snapshot);
  j["reasons"] = StringArray(r.reasons);
  return j;
}

absl::Status FromJson(const Json& j, ForgetDecision* r) {
  CAIRN_RETURN_IF_ERROR(FromJson(j, &r->snapshot));
  return GetStringArray(j, "reasons", &r->reasons);
}

Json ToJson(const ForgetAnswer& r) {
  Json j{{"dry_run", r.dry_run}, {"kept", ToJson(r.kept)}, {"removed", ToJson(r.removed)}};
  if (r.gc) j["gc"] = ToJson(*r.gc);
  if (r.deletions) j["deletions"] = ToJson(*r.deletions);
  if (r.targets) {
    j["targets"] = Json{{"targets_lowered", r.targets->targets_lowered},
                        {"targets_raised", r.targets->targets_raised}};
  }
  return j;
}

absl::Status FromJson(const Json& j, ForgetAnswer* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the answer is not a JSON object");
  CAIRN_RETURN_IF_ERROR(GetBool(j, "dry_run", &r->dry_run));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "kept", &r->kept));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "removed", &r->removed));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "gc", &r->gc));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "deletions", &r->deletions));
  return GetObject(j, "targets", &r->targets);
}

Json ToJson(const RewrittenSnapshot& r) {
  return Json{{"old_id", r.old_id},
              {"old_short_id", r.old_short_id},
              {"new_id", r.new_id},
              {"new_short_id", r.new_short_id},
              {"removed_files", r.removed_files},
              {"removed_bytes", r.removed_bytes}};
}

absl::Status FromJson(const Json& j, RewrittenSnapshot* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "old_id", &r->old_id));
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "new_id", &r->new_id));
  r->old_short_id = ShortId(r->old_id);
  r->new_short_id = ShortId(r->new_id);
  CAIRN_RETURN_IF_ERROR(GetString(j, "old_short_id", &r->old_short_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "new_short_id", &r->new_short_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "removed_files", &r->removed_files));
  return GetInt(j, "removed_bytes", &r->removed_bytes);
}

Json ToJson(const DeleteAnswer& r) {
  Json j{{"rewritten", ToJson(r.rewritten)}, {"unchanged", r.unchanged}};
  SetPathField(j, "path", r.path);
  if (r.gc) j["gc"] = ToJson(*r.gc);
  if (r.deletions) j["deletions"] = ToJson(*r.deletions);
  return j;
}

absl::Status FromJson(const Json& j, DeleteAnswer* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the answer is not a JSON object");
  CAIRN_RETURN_IF_ERROR(GetPath(j, "path", &r->path));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "rewritten", &r->rewritten));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "unchanged", &r->unchanged));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "gc", &r->gc));
  return GetObject(j, "deletions", &r->deletions);
}

Json ToJson(const ReclaimAnswer& r) {
  return Json{{"quota", r.quota},
              {"old_quota", r.old_quota},
              {"used", r.used},
              {"moved_blobs", r.moved_blobs},
              {"moved_bytes", r.moved_bytes},
              {"evicted_blobs", r.evicted_blobs},
              {"evicted_bytes", r.evicted_bytes},
              {"notices_delivered", r.notices_delivered}};
}

absl::Status FromJson(const Json& j, ReclaimAnswer* r) {
  if (!j.is_object() || Field(j, "quota") == nullptr) {
    return absl::InvalidArgumentError("field 'quota' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "quota", &r->quota));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "old_quota", &r->old_quota));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "used", &r->used));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "moved_blobs", &r->moved_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "moved_bytes", &r->moved_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "evicted_blobs", &r->evicted_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "evicted_bytes", &r->evicted_bytes));
  return GetInt(j, "notices_delivered", &r->notices_delivered);
}

namespace {

absl::Status GetIdArray(const Json& j, const char* name, std::vector<uint64_t>* out) {
  out->clear();
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_array()) return WrongType(name, "an array of peer ids");
  for (const Json& e : *f) {
    if (!IsNonNegativeInteger(e)) return WrongType(name, "an array of peer ids");
    out->push_back(e.get<uint64_t>());
  }
  return absl::OkStatus();
}

}  // namespace

Json ToJson(const IndexRebuildAnswer& r) {
  Json j;
  j["complete"] = r.complete;
  if (r.note) j["note"] = SanitizeUtf8(*r.note);
  j["peers_listed"] = r.peers_listed;
  j["peers_not_listed"] = r.peers_not_listed;
  j["blobs"] = r.blobs;
  j["chunks"] = r.chunks;
  j["data_chunks"] = r.data_chunks;
  j["tree_chunks"] = r.tree_chunks;
  j["snapshot_chunks"] = r.snapshot_chunks;
  j["erasure_chunks"] = r.erasure_chunks;
  j["headers_read"] = r.headers_read;
  j["trees"] = r.trees;
  j["snapshots"] = ToJson(r.snapshots);
  j["snapshots_unreadable"] = r.snapshots_unreadable;
  j["missing_chunks"] = r.missing_chunks;
  j["chunks_below_target"] = r.chunks_below_target;
  j["plain_sizes_unknown"] = r.plain_sizes_unknown;
  j["errors"] = StringArray(r.errors);
  return j;
}

absl::Status FromJson(const Json& j, IndexRebuildAnswer* r) {
  if (!j.is_object() || Field(j, "complete") == nullptr) {
    return absl::InvalidArgumentError("field 'complete' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetBool(j, "complete", &r->complete));
  CAIRN_RETURN_IF_ERROR(GetString(j, "note", &r->note));
  CAIRN_RETURN_IF_ERROR(GetIdArray(j, "peers_listed", &r->peers_listed));
  CAIRN_RETURN_IF_ERROR(GetIdArray(j, "peers_not_listed", &r->peers_not_listed));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "blobs", &r->blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "data_chunks", &r->data_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "tree_chunks", &r->tree_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshot_chunks", &r->snapshot_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "erasure_chunks", &r->erasure_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "headers_read", &r->headers_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "trees", &r->trees));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots_unreadable", &r->snapshots_unreadable));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "missing_chunks", &r->missing_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_below_target", &r->chunks_below_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "plain_sizes_unknown", &r->plain_sizes_unknown));
  return GetStringArray(j, "errors", &r->errors);
}

Json ToJson(const ShortfallInfo& r) {
  return Json{{"target", r.target}, {"chunks", r.chunks}, {"message", r.message}};
}

absl::Status FromJson(const Json& j, ShortfallInfo* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "target", &r->target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  return GetString(j, "message", &r->message);
}

Json ToJson(const ToleranceInfo& r) {
  return Json{{"peers", r.peers}, {"chunks", r.chunks}, {"message", r.message}};
}

absl::Status FromJson(const Json& j, ToleranceInfo* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peers", &r->peers));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  return GetString(j, "message", &r->message);
}

Json ToJson(const SnapshotCheck& r) {
  return Json{{"id", r.id},
              {"short_id", r.short_id},
              {"chunks", r.chunks},
              {"at_target", r.at_target},
              {"below_target", r.below_target},
              {"lost", r.lost}};
}

absl::Status FromJson(const Json& j, SnapshotCheck* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "id", &r->id));
  r->short_id = ShortId(r->id);
  CAIRN_RETURN_IF_ERROR(GetString(j, "short_id", &r->short_id));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "at_target", &r->at_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "below_target", &r->below_target));
  return GetInt(j, "lost", &r->lost);
}

Json ToJson(const BelowTargetChunk& r) { return Json{{"chunk", r.chunk}, {"missing", r.missing}}; }

absl::Status FromJson(const Json& j, BelowTargetChunk* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "chunk", &r->chunk));
  return GetInt(j, "missing", &r->missing);
}

Json ToJson(const CorruptBlobInfo& r) {
  return Json{
      {"chunk", r.chunk}, {"shard", r.shard}, {"peer", r.peer}, {"reason", SanitizeUtf8(r.reason)}};
}

absl::Status FromJson(const Json& j, CorruptBlobInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "chunk", &r->chunk));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "shard", &r->shard));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peer", &r->peer));
  return GetString(j, "reason", &r->reason);
}

Json ToJson(const CheckAnswer& r) {
  return Json{{"healthy", r.healthy},
              {"chunks", r.chunks},
              {"at_target", r.at_target},
              {"below_target", r.below_target},
              {"without_offsite", r.without_offsite},
              {"lost", r.lost},
              {"corrupt", r.corrupt},
              {"blobs_read", r.blobs_read},
              {"bytes_read", r.bytes_read},
              {"snapshots", ToJson(r.snapshots)},
              {"below_target_detail", ToJson(r.below_target_detail)},
              {"storage_peers", r.storage_peers},
              {"short_of_peers", ToJson(r.short_of_peers)},
              {"survives", ToJson(r.survives)},
              {"corrupt_blobs", ToJson(r.corrupt_blobs)},
              {"errors", StringArray(r.errors)}};
}

absl::Status FromJson(const Json& j, CheckAnswer* r) {
  if (!j.is_object() || Field(j, "chunks") == nullptr) {
    return absl::InvalidArgumentError("field 'chunks' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetBool(j, "healthy", &r->healthy));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "at_target", &r->at_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "below_target", &r->below_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "without_offsite", &r->without_offsite));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "lost", &r->lost));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "corrupt", &r->corrupt));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "blobs_read", &r->blobs_read));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_read", &r->bytes_read));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "below_target_detail", &r->below_target_detail));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "storage_peers", &r->storage_peers));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "short_of_peers", &r->short_of_peers));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "survives", &r->survives));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "corrupt_blobs", &r->corrupt_blobs));
  return GetStringArray(j, "errors", &r->errors);
}

Json ToJson(const RepairAnswer& r) {
  return Json{{"chunks", r.chunks},
              {"repaired", r.repaired},
              {"blobs_written", r.blobs_written},
              {"bytes_sent", r.bytes_sent},
              {"still_below_target", r.still_below_target},
              {"lost", r.lost},
              {"storage_peers", r.storage_peers},
              {"short_of_peers", ToJson(r.short_of_peers)},
              {"unimprovable", r.unimprovable},
              {"survives", ToJson(r.survives)},
              {"errors", StringArray(r.errors)},
              {"errors_omitted", r.errors_omitted}};
}

absl::Status FromJson(const Json& j, RepairAnswer* r) {
  if (!j.is_object() || Field(j, "chunks") == nullptr) {
    return absl::InvalidArgumentError("field 'chunks' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "repaired", &r->repaired));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "blobs_written", &r->blobs_written));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_sent", &r->bytes_sent));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "still_below_target", &r->still_below_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "lost", &r->lost));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "storage_peers", &r->storage_peers));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "short_of_peers", &r->short_of_peers));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "unimprovable", &r->unimprovable));
  CAIRN_RETURN_IF_ERROR(GetArray(j, "survives", &r->survives));
  CAIRN_RETURN_IF_ERROR(GetStringArray(j, "errors", &r->errors));
  return GetInt(j, "errors_omitted", &r->errors_omitted);
}

Json ToJson(const ScrubPassInfo& r) {
  Json j{{"checked", r.checked}, {"bytes", r.bytes},   {"corrupt", r.corrupt},
         {"missing", r.missing}, {"errors", r.errors}, {"started", r.started}};
  if (r.finished) j["finished"] = *r.finished;
  if (r.finished_ns) j["finished_ns"] = *r.finished_ns;
  if (r.seconds) j["seconds"] = *r.seconds;
  return j;
}

absl::Status FromJson(const Json& j, ScrubPassInfo* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "checked", &r->checked));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "corrupt", &r->corrupt));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "missing", &r->missing));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "errors", &r->errors));
  CAIRN_RETURN_IF_ERROR(GetString(j, "started", &r->started));
  CAIRN_RETURN_IF_ERROR(GetString(j, "finished", &r->finished));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "finished_ns", &r->finished_ns));
  return GetDouble(j, "seconds", &r->seconds);
}

Json ToJson(const CompactionProgress& r) {
  return Json{{"segment", r.segment}, {"done_bytes", r.done_bytes}, {"total_bytes", r.total_bytes}};
}

absl::Status FromJson(const Json& j, CompactionProgress* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "segment", &r->segment));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "done_bytes", &r->done_bytes));
  return GetInt(j, "total_bytes", &r->total_bytes);
}

Json ToJson(const LayoutMigrationStatus& r) {
  return Json{{"done", r.done},
              {"moved_blobs", r.moved_blobs},
              {"moved_bytes", r.moved_bytes},
              {"remaining_blobs", r.remaining_blobs},
              {"remaining_bytes", r.remaining_bytes},
              {"damaged_blobs", r.damaged_blobs},
              {"missing_blobs", r.missing_blobs}};
}

absl::Status FromJson(const Json& j, LayoutMigrationStatus* r) {
  CAIRN_RETURN_IF_ERROR(GetBool(j, "done", &r->done));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "moved_blobs", &r->moved_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "moved_bytes", &r->moved_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "remaining_blobs", &r->remaining_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "remaining_bytes", &r->remaining_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "damaged_blobs", &r->damaged_blobs));
  return GetInt(j, "missing_blobs", &r->missing_blobs);
}

Json ToJson(const OwnerUsageInfo& r) {
  return Json{{"owner", r.owner},
              {"blobs", r.blobs},
              {"bytes", r.bytes},
              {"extra_blobs", r.extra_blobs},
              {"extra_bytes", r.extra_bytes}};
}

absl::Status FromJson(const Json& j, OwnerUsageInfo* r) {
  if (Field(j, "owner") == nullptr) {
    return absl::InvalidArgumentError("field 'owner' is missing from an owner of the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "owner", &r->owner));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "blobs", &r->blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "extra_blobs", &r->extra_blobs));
  return GetInt(j, "extra_bytes", &r->extra_bytes);
}

Json ToJson(const HomeStatus& r) {
  return Json{{"snapshots", r.snapshots},
              {"logical_bytes", r.logical_bytes},
              {"unique_bytes", r.unique_bytes},
              {"stored_bytes", r.stored_bytes},
              {"one_copy_bytes", r.one_copy_bytes},
              {"dedup_ratio", r.dedup_ratio},
              {"redundancy_overhead", r.redundancy_overhead},
              {"chunks", r.chunks},
              {"chunks_at_target", r.chunks_at_target},
              {"chunks_below_target", r.chunks_below_target},
              {"extra_blobs", r.extra_blobs},
              {"extra_bytes", r.extra_bytes},
              {"pending_deletions", r.pending_deletions},
              {"chunks_without_offsite", OrNull(r.chunks_without_offsite)}};
}

absl::Status FromJson(const Json& j, HomeStatus* r) {
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "logical_bytes", &r->logical_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "unique_bytes", &r->unique_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "stored_bytes", &r->stored_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "one_copy_bytes", &r->one_copy_bytes));
  CAIRN_RETURN_IF_ERROR(GetDouble(j, "dedup_ratio", &r->dedup_ratio));
  CAIRN_RETURN_IF_ERROR(GetDouble(j, "redundancy_overhead", &r->redundancy_overhead));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_at_target", &r->chunks_at_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_below_target", &r->chunks_below_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "extra_blobs", &r->extra_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "extra_bytes", &r->extra_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "pending_deletions", &r->pending_deletions));
  return GetInt(j, "chunks_without_offsite", &r->chunks_without_offsite);
}

Json ToJson(const ScrubStatus& r) {
  Json j;
  j["enabled"] = r.enabled;
  j["interval"] = r.interval;
  j["rate"] = r.rate;
  j["running"] = r.running;
  j["last_pass"] = r.last_pass ? ToJson(*r.last_pass) : Json(nullptr);
  j["current_pass"] = r.current_pass ? ToJson(*r.current_pass) : Json(nullptr);
  j["next_pass"] = OrNull(r.next_pass);
  j["next_pass_ns"] = OrNull(r.next_pass_ns);
  j["quarantined"] = r.quarantined;
  j["quarantined_bytes"] = r.quarantined_bytes;
  return j;
}

absl::Status FromJson(const Json& j, ScrubStatus* r) {
  CAIRN_RETURN_IF_ERROR(GetBool(j, "enabled", &r->enabled));
  CAIRN_RETURN_IF_ERROR(GetString(j, "interval", &r->interval));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "rate", &r->rate));
  CAIRN_RETURN_IF_ERROR(GetBool(j, "running", &r->running));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "last_pass", &r->last_pass));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "current_pass", &r->current_pass));
  CAIRN_RETURN_IF_ERROR(GetString(j, "next_pass", &r->next_pass));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "next_pass_ns", &r->next_pass_ns));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "quarantined", &r->quarantined));
  return GetInt(j, "quarantined_bytes", &r->quarantined_bytes);
}

Json ToJson(const IndexRebuildSummary& r) {
  Json j{{"complete", r.complete}, {"snapshots", r.snapshots}};
  if (r.note) {
    j["note"] = SanitizeUtf8(*r.note);
    return j;
  }
  j["chunks"] = r.chunks;
  j["peers_listed"] = r.peers_listed;
  j["missing_chunks"] = r.missing_chunks;
  j["chunks_below_target"] = r.chunks_below_target;
  return j;
}

absl::Status FromJson(const Json& j, IndexRebuildSummary* r) {
  CAIRN_RETURN_IF_ERROR(GetBool(j, "complete", &r->complete));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetIdArray(j, "peers_listed", &r->peers_listed));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "missing_chunks", &r->missing_chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_below_target", &r->chunks_below_target));
  return GetString(j, "note", &r->note);
}

Json ToJson(const IndexStatus& r) {
  Json j;
  j["state"] = r.state;
  j["problem"] = r.problem ? Json(SanitizeUtf8(*r.problem)) : Json(nullptr);
  j["kept_aside"] = r.kept_aside ? Json(SanitizeUtf8(*r.kept_aside)) : Json(nullptr);
  j["job_id"] = OrNull(r.job_id);
  j["error"] = r.error ? Json(SanitizeUtf8(*r.error)) : Json(nullptr);
  j["rebuilt"] = r.rebuilt ? ToJson(*r.rebuilt) : Json(nullptr);
  return j;
}

absl::Status FromJson(const Json& j, IndexStatus* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "state", &r->state));
  CAIRN_RETURN_IF_ERROR(GetString(j, "problem", &r->problem));
  CAIRN_RETURN_IF_ERROR(GetString(j, "kept_aside", &r->kept_aside));
  CAIRN_RETURN_IF_ERROR(GetString(j, "job_id", &r->job_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "error", &r->error));
  return GetObject(j, "rebuilt", &r->rebuilt);
}

Json ToJson(const StorageStatus& r) {
  Json j;
  j["layout"] = r.layout;
  j["live_bytes"] = r.live_bytes;
  j["dead_bytes"] = r.dead_bytes;
  if (r.segments) j["segments"] = *r.segments;
  if (r.compactions) j["compactions"] = *r.compactions;
  if (r.compaction_copied_bytes) j["compaction_copied_bytes"] = *r.compaction_copied_bytes;
  if (r.compaction_reclaimed_bytes) j["compaction_reclaimed_bytes"] = *r.compaction_reclaimed_bytes;
  if (r.compacting) j["compacting"] = ToJson(*r.compacting);
  if (r.migration) j["migration"] = ToJson(*r.migration);
  return j;
}

absl::Status FromJson(const Json& j, StorageStatus* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "layout", &r->layout));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "live_bytes", &r->live_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "dead_bytes", &r->dead_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "segments", &r->segments));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "compactions", &r->compactions));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "compaction_copied_bytes", &r->compaction_copied_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "compaction_reclaimed_bytes", &r->compaction_reclaimed_bytes));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "compacting", &r->compacting));
  return GetObject(j, "migration", &r->migration);
}

Json ToJson(const BucketStatus& r) {
  Json j;
  j["url"] = SanitizeUtf8(r.url);
  if (r.endpoint) j["endpoint"] = SanitizeUtf8(*r.endpoint);
  if (r.region) j["region"] = SanitizeUtf8(*r.region);
  if (!r.counted) return j;
  j["requests"] = CountsJson(r.requests);
  j["requests_total"] = r.requests_total;
  j["retries"] = r.retries;
  j["failures"] = r.failures;
  j["errors"] = CountsJson(r.errors);
  j["errors_total"] = r.errors_total;
  j["bytes_sent"] = r.bytes_sent;
  j["bytes_received"] = r.bytes_received;
  return j;
}

absl::Status FromJson(const Json& j, BucketStatus* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "url", &r->url));
  CAIRN_RETURN_IF_ERROR(GetString(j, "endpoint", &r->endpoint));
  CAIRN_RETURN_IF_ERROR(GetString(j, "region", &r->region));
  r->counted = Field(j, "requests") != nullptr;
  CAIRN_RETURN_IF_ERROR(GetCounts(j, "requests", &r->requests));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "requests_total", &r->requests_total));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "retries", &r->retries));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "failures", &r->failures));
  CAIRN_RETURN_IF_ERROR(GetCounts(j, "errors", &r->errors));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "errors_total", &r->errors_total));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes_sent", &r->bytes_sent));
  return GetInt(j, "bytes_received", &r->bytes_received);
}

Json ToJson(const PeerStatus& r) {
  Json j;
  j["peer_id"] = r.peer_id;
  j["host_id"] = SanitizeUtf8(r.host_id);
  j["site"] = SanitizeUtf8(r.site);
  j["address"] = r.address;
  j["api"] = r.api;
  j["metrics_address"] = OrNull(r.metrics_address);
  j["quota"] = r.quota;
  j["used"] = r.used;
  j["room"] = r.room;
  j["disk_free"] = OrNull(r.disk_free);
  j["disk_reserve"] = r.disk_reserve;
  j["blobs"] = r.blobs;
  j["extra_blobs"] = r.extra_blobs;
  j["extra_bytes"] = r.extra_bytes;
  j["owners"] = ToJson(r.owners);
  j["moved_notices_pending"] = r.moved_notices_pending;
  j["snapshots"] = r.snapshots;
  j["chunks"] = r.chunks;
  j["chunks_at_target"] = r.chunks_at_target;
  j["chunks_below_target"] = r.chunks_below_target;
  j["plain_bytes"] = r.plain_bytes;
  j["stored_bytes"] = r.stored_bytes;
  j["chunks_without_offsite"] = OrNull(r.chunks_without_offsite);
  j["scrub"] = ToJson(r.scrub);
  j["index"] = ToJson(r.index);
  j["storage"] = ToJson(r.storage);
  j["bucket"] = r.bucket ? ToJson(*r.bucket) : Json(nullptr);
  if (r.home) j["home"] = ToJson(*r.home);
  return j;
}

absl::Status FromJson(const Json& j, PeerStatus* r) {
  if (!j.is_object() || Field(j, "peer_id") == nullptr) {
    return absl::InvalidArgumentError("field 'peer_id' is missing from the answer");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "peer_id", &r->peer_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "host_id", &r->host_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "site", &r->site));
  CAIRN_RETURN_IF_ERROR(GetString(j, "address", &r->address));
  CAIRN_RETURN_IF_ERROR(GetString(j, "api", &r->api));
  CAIRN_RETURN_IF_ERROR(GetString(j, "metrics_address", &r->metrics_address));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "quota", &r->quota));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "used", &r->used));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "room", &r->room));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "disk_free", &r->disk_free));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "disk_reserve", &r->disk_reserve));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "blobs", &r->blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "extra_blobs", &r->extra_blobs));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "extra_bytes", &r->extra_bytes));
  r->owners.clear();
  if (const Json* f = Field(j, "owners")) CAIRN_RETURN_IF_ERROR(FromJson(*f, &r->owners));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "moved_notices_pending", &r->moved_notices_pending));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "snapshots", &r->snapshots));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks", &r->chunks));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_at_target", &r->chunks_at_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_below_target", &r->chunks_below_target));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "plain_bytes", &r->plain_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "stored_bytes", &r->stored_bytes));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "chunks_without_offsite", &r->chunks_without_offsite));
  CAIRN_RETURN_IF_ERROR(RequiredObject(j, "scrub", &r->scrub));
  CAIRN_RETURN_IF_ERROR(RequiredObject(j, "index", &r->index));
  CAIRN_RETURN_IF_ERROR(RequiredObject(j, "storage", &r->storage));
  CAIRN_RETURN_IF_ERROR(GetObject(j, "bucket", &r->bucket));
  return GetObject(j, "home", &r->home);
}

Json ToJson(const LastBackup& r) {
  Json j;
  if (r.job_id) j["job_id"] = *r.job_id;
  j["state"] = r.state;
  j["time"] = r.time;
  if (r.snapshot_id) j["snapshot_id"] = *r.snapshot_id;
  if (r.short_id) j["short_id"] = *r.short_id;
  if (r.error) j["error"] = SanitizeUtf8(*r.error);
  return j;
}

absl::Status FromJson(const Json& j, LastBackup* r) {
  CAIRN_RETURN_IF_ERROR(GetString(j, "job_id", &r->job_id));
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "state", &r->state));
  CAIRN_RETURN_IF_ERROR(GetString(j, "time", &r->time));
  CAIRN_RETURN_IF_ERROR(GetString(j, "snapshot_id", &r->snapshot_id));
  CAIRN_RETURN_IF_ERROR(GetString(j, "short_id", &r->short_id));
  return GetString(j, "error", &r->error);
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
    j["last_backup"] = s.last_backup ? ToJson(*s.last_backup) : Json(nullptr);
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
    CAIRN_RETURN_IF_ERROR(GetObject(j, "last_backup", &s.last_backup));
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
