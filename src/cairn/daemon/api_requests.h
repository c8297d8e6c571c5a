// Parsing and validation of the local API's JSON request bodies (docs/cli.md; the routes are in
// api_server.cc). Split from the server so that these decoders of bytes from the network can be
// unit-tested and fuzzed (tests/fuzz/api_json_fuzzer.cc) without an HTTP server or a daemon.
//
// Every function returns INVALID_ARGUMENT naming the field for anything malformed (wrong JSON
// type, out-of-range number, relative path, bad base64, bad time or duration) and never throws.
//
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/config.h"
#include "cairn/engine/retention.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

using Json = nlohmann::json;

// A request body: JSON text (RFC 8259) holding an object. INVALID_ARGUMENT "malformed JSON: ..."
// or "request body must be a JSON object".
absl::StatusOr<Json> ParseRequestBody(std::string_view text);

// OK when `path` starts with '/'; INVALID_ARGUMENT "<what> must be an absolute path" otherwise.
absl::Status RequireAbsolute(const std::string& path, const char* what);

// A keep policy's JSON: "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
// "keep_yearly" (-1..1000000; -1 = unlimited), "keep_within" (restic's form, "7d") and
// "keep_tags" ([...]). The encoder writes only the rules that are set (a source's "keep" in
// GET /v1/sources); the decoder reads them from a forget or source request, where an absent or
// null field (or an empty "keep_within") leaves the rule unset.
Json RetentionPolicyJson(const engine::RetentionPolicy& policy);
absl::Status ParseRetentionPolicy(const Json& body, engine::RetentionPolicy* policy);

// POST /v1/backup: {"paths" (or "paths_base64"): [absolute...], "copies": 1..64 | "ec": "K+M",
// "offsite": 0..64, "tags": [...], "excludes": [...], "rehash": bool}.
absl::StatusOr<BackupRequest> ParseBackupRequest(const Json& body);
// POST /v1/restore: {"snapshot", "path", "target" (absolute), "at": RFC 3339 | Unix ns}.
absl::StatusOr<RestoreRequest> ParseRestoreRequest(const Json& body);
// POST /v1/check and /v1/repair: {"read_data": bool, "read_subset_percent": (0, 100]}.
absl::StatusOr<CheckRequest> ParseCheckRequest(const Json& body);
// POST /v1/forget: {"snapshots": [...]} or a policy {"keep_last": -1..1000000, ...,
// "keep_within": "7d", "keep_tags": [...]}, with "dry_run" and "prune" booleans.
absl::StatusOr<ForgetRequest> ParseForgetRequest(const Json& body);
// POST /v1/delete: {"path" (absolute), "snapshot"}.
absl::StatusOr<DeleteRequest> ParseDeleteRequest(const Json& body);
// POST /v1/reclaim: {"quota": unsigned bytes}.
absl::StatusOr<ReclaimRequest> ParseReclaimRequest(const Json& body);
// POST /v1/sources: {"path" (absolute), "copies": N | "ec": "K+M", "excludes", "schedule": "1h",
// "watch": bool, keep_* fields}; validated with ValidateSource.
absl::StatusOr<SourceConfig> ParseSourceRequest(const Json& body);

}  // namespace cairn::daemon
