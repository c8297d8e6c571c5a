#include "cairn/api/responses.h"

#include "absl/strings/str_cat.h"
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

}  // namespace cairn::api
