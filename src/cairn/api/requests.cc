#include "cairn/api/requests.h"

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/duration.h"
#include "cairn/base/status.h"
#include "cairn/engine/time_point.h"
#include "cairn/format/tree.h"

namespace cairn::api {
namespace {

// Field "at" of POST /v1/restore (RestoreRequest::at_ns): RFC 3339 text, or Unix nanoseconds
// as an integer or digits. With it, "path" is an absolute source path and "snapshot" is absent.
absl::Status ParseRestoreAt(const Json& body, RestoreRequest& r) {
  auto at = body.find("at");
  if (at == body.end() || at->is_null()) return absl::OkStatus();
  if (at->is_number_integer()) {
    r.at_ns = at->get<int64_t>();
  } else if (at->is_string()) {
    CAIRN_ASSIGN_OR_RETURN(r.at_ns, engine::ParseTimePoint(at->get<std::string>(),
                                                           /*allow_local=*/false,
                                                           /*allow_unix_ns=*/true));
  } else {
    return absl::InvalidArgumentError(
        "field 'at' must be RFC 3339 text or Unix nanoseconds (an integer)");
  }
  auto snapshot = body.find("snapshot");
  if (snapshot != body.end() && !snapshot->is_null()) {
    return absl::InvalidArgumentError("fields 'at' and 'snapshot' exclude each other");
  }
  if (format::ParseArchivePath(r.path)) return absl::OkStatus();  // NAME:/path in an archive
  return RequireAbsolute(r.path, "with 'at', the path");
}

// An optional field: absent or null leaves `out` as it is.
absl::Status OptionalInt(const Json& body, const char* name, int64_t min, int64_t max, int* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", name, "' must be an integer between ", min, " and ", max));
  }
  *out = static_cast<int>(it->get<int64_t>());
  return absl::OkStatus();
}

absl::Status OptionalBool(const Json& body, const char* name, bool* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be true or false"));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StringArray(const Json& body, const char* name) {
  std::vector<std::string> out;
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be an array"));
  }
  for (const Json& e : *it) {
    if (!e.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must hold strings"));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

Json ToJson(const engine::RetentionPolicy& p) {
  Json j = Json::object();
  const std::pair<const char*, int> counts[] = {
      {"keep_last", p.keep_last},       {"keep_hourly", p.keep_hourly},
      {"keep_daily", p.keep_daily},     {"keep_weekly", p.keep_weekly},
      {"keep_monthly", p.keep_monthly}, {"keep_yearly", p.keep_yearly}};
  for (const auto& [name, v] : counts) {
    if (v != 0) j[name] = v;
  }
  if (!p.keep_within.zero()) j["keep_within"] = p.keep_within.ToString();
  if (!p.keep_tags.empty()) SetPathArray(j, "keep_tags", p.keep_tags);
  return j;
}

absl::Status FromJson(const Json& body, engine::RetentionPolicy* p) {
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_last", -1, 1000000, &p->keep_last));
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_hourly", -1, 1000000, &p->keep_hourly));
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_daily", -1, 1000000, &p->keep_daily));
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_weekly", -1, 1000000, &p->keep_weekly));
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_monthly", -1, 1000000, &p->keep_monthly));
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "keep_yearly", -1, 1000000, &p->keep_yearly));
  auto within = body.find("keep_within");
  if (within != body.end() && !within->is_null()) {
    if (!within->is_string()) {
      return absl::InvalidArgumentError("field 'keep_within' must be a string like \"7d\"");
    }
    std::string text = within->get<std::string>();
    p->keep_within = {};
    if (!text.empty()) {
      CAIRN_ASSIGN_OR_RETURN(p->keep_within, engine::ParseRetentionDuration(text));
    }
  }
  CAIRN_ASSIGN_OR_RETURN(p->keep_tags, StringArray(body, "keep_tags"));
  return absl::OkStatus();
}

absl::StatusOr<Json> ParseRequestBody(std::string_view text) {
  CAIRN_ASSIGN_OR_RETURN(Json body, ParseJson(text));
  if (!body.is_object()) return absl::InvalidArgumentError("request body must be a JSON object");
  return body;
}

absl::Status RequireAbsolute(const std::string& path, const char* what) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an absolute path, got '", SanitizeUtf8(path), "'"));
  }
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, BackupRequest* out) {
  BackupRequest& r = *out;
  r = BackupRequest();
  CAIRN_ASSIGN_OR_RETURN(r.paths, GetPathArray(body, "paths"));
  if (r.paths.empty()) return absl::InvalidArgumentError("no paths to back up");
  for (const std::string& p : r.paths) CAIRN_RETURN_IF_ERROR(RequireAbsolute(p, "a backup path"));
  auto copies = body.find("copies");
  if (copies != body.end() && !copies->is_null()) {
    if (!copies->is_number_integer() || copies->get<int64_t>() < 1 || copies->get<int64_t>() > 64) {
      return absl::InvalidArgumentError("field 'copies' must be an integer between 1 and 64");
    }
    r.copies = static_cast<uint32_t>(copies->get<int64_t>());
  }
  auto ec = body.find("ec");
  if (ec != body.end() && !ec->is_null()) {
    if (!ec->is_string()) return absl::InvalidArgumentError("field 'ec' must be a string \"K+M\"");
    CAIRN_ASSIGN_OR_RETURN(r.ec, codec::ParseErasureScheme(ec->get<std::string>()));
    if (r.copies) return absl::InvalidArgumentError("fields 'copies' and 'ec' exclude each other");
  }
  auto offsite = body.find("offsite");
  if (offsite != body.end() && !offsite->is_null()) {
    if (!offsite->is_number_integer() || offsite->get<int64_t>() < 0 ||
        offsite->get<int64_t>() > 64) {
      return absl::InvalidArgumentError("field 'offsite' must be an integer between 0 and 64");
    }
    r.offsite = static_cast<uint32_t>(offsite->get<int64_t>());
  }
  CAIRN_ASSIGN_OR_RETURN(r.tags, GetPathArray(body, "tags"));
  CAIRN_ASSIGN_OR_RETURN(r.excludes, GetPathArray(body, "excludes"));
  auto rehash = body.find("rehash");
  if (rehash != body.end() && !rehash->is_null()) {
    if (!rehash->is_boolean())
      return absl::InvalidArgumentError("field 'rehash' must be a boolean");
    r.rehash = rehash->get<bool>();
  }
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, RestoreRequest* out) {
  RestoreRequest& r = *out;
  r = RestoreRequest();
  auto snapshot = body.find("snapshot");
  if (snapshot != body.end() && !snapshot->is_null()) {
    if (!snapshot->is_string())
      return absl::InvalidArgumentError("field 'snapshot' must be a string");
    r.snapshot = snapshot->get<std::string>();
  }
  if (r.snapshot.empty()) return absl::InvalidArgumentError("field 'snapshot' must not be empty");
  CAIRN_ASSIGN_OR_RETURN(r.path, GetPathField(body, "path"));
  CAIRN_ASSIGN_OR_RETURN(r.target, GetPathField(body, "target"));
  CAIRN_RETURN_IF_ERROR(RequireAbsolute(r.target, "the restore target"));
  CAIRN_RETURN_IF_ERROR(ParseRestoreAt(body, r));
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, ForgetRequest* out) {
  ForgetRequest& r = *out;
  r = ForgetRequest();
  CAIRN_ASSIGN_OR_RETURN(r.snapshots, StringArray(body, "snapshots"));
  engine::RetentionPolicy& p = r.policy;
  CAIRN_RETURN_IF_ERROR(FromJson(body, &p));
  CAIRN_RETURN_IF_ERROR(OptionalBool(body, "dry_run", &r.dry_run));
  CAIRN_RETURN_IF_ERROR(OptionalBool(body, "prune", &r.prune));
  if (r.snapshots.empty() && p.empty()) {
    return absl::InvalidArgumentError(
        "nothing to forget: name snapshots or give a policy (keep_last, keep_daily, ...)");
  }
  if (!r.snapshots.empty() && !p.empty()) {
    return absl::InvalidArgumentError("give either snapshots or a policy, not both");
  }
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, DeleteRequest* out) {
  DeleteRequest& r = *out;
  r = DeleteRequest();
  CAIRN_ASSIGN_OR_RETURN(r.path, GetPathField(body, "path"));
  CAIRN_RETURN_IF_ERROR(RequireAbsolute(r.path, "the path to delete"));
  auto snapshot = body.find("snapshot");
  if (snapshot != body.end() && !snapshot->is_null()) {
    if (!snapshot->is_string()) {
      return absl::InvalidArgumentError("field 'snapshot' must be a string");
    }
    r.snapshot = snapshot->get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, ReclaimRequest* out) {
  auto quota = body.find("quota");
  if (quota == body.end() || !quota->is_number_unsigned()) {
    return absl::InvalidArgumentError("field 'quota' (bytes, an unsigned integer) is required");
  }
  out->quota = quota->get<uint64_t>();
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, CheckRequest* out) {
  CheckRequest& r = *out;
  r = CheckRequest();
  try {
    if (body.contains("read_data")) r.read_data = body.at("read_data").get<bool>();
    if (body.contains("read_subset_percent")) {
      double p = body.at("read_subset_percent").get<double>();
      if (!(p > 0 && p <= 100)) {
        return absl::InvalidArgumentError("read_subset_percent must be in (0, 100]");
      }
      r.read_data = true;
      r.read_subset = p / 100;
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("bad check request: ") + e.what());
  }
  return absl::OkStatus();
}

absl::Status FromJson(const Json& body, SourceRequest* out) {
  SourceRequest& s = *out;
  s = SourceRequest();
  CAIRN_ASSIGN_OR_RETURN(s.path, GetPathField(body, "path"));
  CAIRN_RETURN_IF_ERROR(RequireAbsolute(s.path, "a source path"));
  int copies = 0;
  CAIRN_RETURN_IF_ERROR(OptionalInt(body, "copies", 1, 64, &copies));
  s.copies = static_cast<uint32_t>(copies);
  auto ec = body.find("ec");
  if (ec != body.end() && !ec->is_null()) {
    if (!ec->is_string()) return absl::InvalidArgumentError("field 'ec' must be a string \"K+M\"");
    CAIRN_ASSIGN_OR_RETURN(codec::ErasureScheme scheme,
                           codec::ParseErasureScheme(ec->get<std::string>()));
    s.ec = scheme.ToString();
    if (s.copies != 0) {
      return absl::InvalidArgumentError("fields 'copies' and 'ec' exclude each other");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(s.excludes, GetPathArray(body, "excludes"));
  auto schedule = body.find("schedule");
  if (schedule != body.end() && !schedule->is_null()) {
    if (!schedule->is_string()) {
      return absl::InvalidArgumentError("field 'schedule' must be a duration string like \"1h\"");
    }
    std::string text = schedule->get<std::string>();
    if (!text.empty()) {
      CAIRN_ASSIGN_OR_RETURN(s.schedule, ParseDuration(text));
    }
  }
  CAIRN_RETURN_IF_ERROR(OptionalBool(body, "watch", &s.watch));
  return FromJson(body, &s.keep);
}

// The encoders write what the decoders above read. Paths go as base64 only (`<field>_base64`;
// docs/cli.md "Paths that are not UTF-8"), so nothing is lost; tags and excludes as
// SetPathArray writes them.
namespace {

void SetBase64(Json& j, const std::string& field, const std::string& raw) {
  j[field + "_base64"] = ToBase64(raw);
}

}  // namespace

Json ToJson(const BackupRequest& r) {
  Json j = Json::object();
  Json& paths = j["paths_base64"] = Json::array();
  for (const std::string& p : r.paths) paths.push_back(ToBase64(p));
  if (r.copies) j["copies"] = *r.copies;
  if (r.ec) j["ec"] = r.ec->ToString();
  if (r.offsite) j["offsite"] = *r.offsite;
  SetPathArray(j, "tags", r.tags);
  SetPathArray(j, "excludes", r.excludes);
  if (r.rehash) j["rehash"] = true;
  return j;
}

Json ToJson(const RestoreRequest& r) {
  Json j = Json::object();
  if (r.at_ns) {
    j["at"] = *r.at_ns;
  } else {
    j["snapshot"] = SanitizeUtf8(r.snapshot);
  }
  SetBase64(j, "path", r.path);
  SetBase64(j, "target", r.target);
  return j;
}

Json ToJson(const CheckRequest& r) {
  Json j{{"read_data", r.read_data}};
  if (r.read_subset < 1.0) j["read_subset_percent"] = r.read_subset * 100;
  return j;
}

Json ToJson(const ForgetRequest& r) {
  Json j = ToJson(r.policy);
  j["snapshots"] = Json::array();
  for (const std::string& id : r.snapshots) j["snapshots"].push_back(SanitizeUtf8(id));
  j["dry_run"] = r.dry_run;
  j["prune"] = r.prune;
  return j;
}

Json ToJson(const DeleteRequest& r) {
  Json j = Json::object();
  SetBase64(j, "path", r.path);
  if (!r.snapshot.empty()) j["snapshot"] = SanitizeUtf8(r.snapshot);
  return j;
}

Json ToJson(const ReclaimRequest& r) { return Json{{"quota", r.quota}}; }

Json ToJson(const SourceRequest& r) {
  Json j = ToJson(r.keep);
  SetBase64(j, "path", r.path);
  if (r.copies > 0) j["copies"] = r.copies;
  if (!r.ec.empty()) j["ec"] = r.ec;
  SetPathArray(j, "excludes", r.excludes);
  if (r.schedule.count() > 0) j["schedule"] = FormatDuration(r.schedule);
  j["watch"] = r.watch;
  return j;
}

}  // namespace cairn::api
