// The response bodies of the local HTTP API (docs/cli.md "Local HTTP API") and their JSON codec,
// as api/requests.h for requests: one ToJson/FromJson pair per type. The daemon encodes with
// ToJson; the CLI and the tests decode with FromJson (api::Decode<T>).
//
// FromJson never throws: INVALID_ARGUMENT naming the field when a required field is missing or
// has the wrong JSON type (an answer from a peer of another version, or not a cairn peer).
//
// Thread-safety: plain structs and stateless functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "cairn/api/requests.h"
#include "nlohmann/json.hpp"

namespace cairn::api {

// 202 answer of every job-starting route (backup, restore, check, repair, forget, delete,
// reclaim, index rebuild): {"job_id": "..."} (non-empty).
struct JobStarted {
  std::string job_id;
};
Json ToJson(const JobStarted& r);
absl::Status FromJson(const Json& j, JobStarted* r);

// 200 answer of DELETE /v1/jobs/ID: {"job_id": "...", "cancelled": true}.
struct JobCancelled {
  std::string job_id;
  bool cancelled = true;
};
Json ToJson(const JobCancelled& r);
absl::Status FromJson(const Json& j, JobCancelled* r);

}  // namespace cairn::api
