#include "cairn/api/archives.h"

#include "cairn/api/json_fields.h"
#include "cairn/base/status.h"
#include "cairn/format/tree.h"

namespace cairn::api {

using fields::GetBool;
using fields::GetInt;
using fields::GetString;
using fields::RequiredString;
using fields::WrongType;

namespace {

absl::Status GetScheme(const Json& j, std::optional<codec::ErasureScheme>* out) {
  std::optional<std::string> text;
  CAIRN_RETURN_IF_ERROR(GetString(j, "ec", &text));
  if (!text) return absl::OkStatus();
  absl::StatusOr<codec::ErasureScheme> ec = codec::ParseErasureScheme(*text);
  if (!ec.ok()) return WrongType("ec", "\"K+M\" (for example \"4+2\")");
  *out = *ec;
  return absl::OkStatus();
}

}  // namespace

Json ToJson(const ArchiveCreateRequest& r) {
  Json j{{"name", r.name}};
  if (r.copies) j["copies"] = *r.copies;
  if (r.ec) j["ec"] = r.ec->ToString();
  return j;
}

absl::Status FromJson(const Json& j, ArchiveCreateRequest* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the request must be a JSON object");
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "name", &r->name));
  if (!format::IsArchiveName(r->name)) {
    return absl::InvalidArgumentError(
        "field 'name' must be 1 to 64 of the characters A-Z a-z 0-9 . _ -");
  }
  CAIRN_RETURN_IF_ERROR(GetInt(j, "copies", &r->copies));
  if (r->copies && (*r->copies < 1 || *r->copies > 64)) {
    return WrongType("copies", "an integer between 1 and 64");
  }
  CAIRN_RETURN_IF_ERROR(GetScheme(j, &r->ec));
  if (r->copies && r->ec) {
    return absl::InvalidArgumentError("fields 'copies' and 'ec' exclude each other");
  }
  return absl::OkStatus();
}

Json ToJson(const ArchiveMountRequest& r) {
  Json j{{"name", r.name}};
  if (!r.mountpoint.empty()) j["mountpoint"] = r.mountpoint;
  if (r.allow_other) j["allow_other"] = true;
  if (r.spool_bytes) j["spool_bytes"] = *r.spool_bytes;
  return j;
}

absl::Status FromJson(const Json& j, ArchiveMountRequest* r) {
  if (!j.is_object()) return absl::InvalidArgumentError("the request must be a JSON object");
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "name", &r->name));
  CAIRN_RETURN_IF_ERROR(GetString(j, "mountpoint", &r->mountpoint));
  if (!r->mountpoint.empty() && r->mountpoint[0] != '/') {
    return WrongType("mountpoint", "an absolute path");
  }
  CAIRN_RETURN_IF_ERROR(GetBool(j, "allow_other", &r->allow_other));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "spool_bytes", &r->spool_bytes));
  if (r->spool_bytes && *r->spool_bytes < (1u << 20)) {
    return WrongType("spool_bytes", "at least 1048576");
  }
  return absl::OkStatus();
}

Json ToJson(const ArchiveInfo& r) {
  return Json{{"name", r.name},
              {"versions", r.versions},
              {"latest", r.latest},
              {"time_ns", r.time_ns},
              {"copies", r.copies},
              {"ec", r.ec ? Json(*r.ec) : Json(nullptr)},
              {"files", r.files},
              {"bytes", r.bytes},
              {"mountpoint", r.mountpoint ? Json(*r.mountpoint) : Json(nullptr)},
              {"spooled_bytes", r.spooled_bytes}};
}

absl::Status FromJson(const Json& j, ArchiveInfo* r) {
  CAIRN_RETURN_IF_ERROR(RequiredString(j, "name", &r->name));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "versions", &r->versions));
  CAIRN_RETURN_IF_ERROR(GetString(j, "latest", &r->latest));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "time_ns", &r->time_ns));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "copies", &r->copies));
  CAIRN_RETURN_IF_ERROR(GetString(j, "ec", &r->ec));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "files", &r->files));
  CAIRN_RETURN_IF_ERROR(GetInt(j, "bytes", &r->bytes));
  CAIRN_RETURN_IF_ERROR(GetString(j, "mountpoint", &r->mountpoint));
  return GetInt(j, "spooled_bytes", &r->spooled_bytes);
}

Json ToJson(const std::vector<ArchiveInfo>& r) {
  Json j = Json::array();
  for (const ArchiveInfo& a : r) j.push_back(ToJson(a));
  return j;
}

absl::Status FromJson(const Json& j, std::vector<ArchiveInfo>* r) {
  if (!j.is_array()) return absl::InvalidArgumentError("the answer must be a JSON array");
  r->clear();
  for (const Json& e : j) {
    ArchiveInfo a;
    CAIRN_RETURN_IF_ERROR(FromJson(e, &a));
    r->push_back(std::move(a));
  }
  return absl::OkStatus();
}

}  // namespace cairn::api
