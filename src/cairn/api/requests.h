// The request bodies of the local HTTP API (docs/cli.md "Local HTTP API") and their JSON codec:
// one ToJson/FromJson pair per type, so each field's JSON name is written once, here. The
// daemon's server decodes with FromJson; the CLI encodes with ToJson. Paths are raw bytes and
// go on the wire through api/json_paths.h (a string, plus `<field>_base64` when not UTF-8).
//
// FromJson never throws: it returns INVALID_ARGUMENT naming the field for anything malformed
// (wrong JSON type, out-of-range number, relative path, bad base64, bad time or duration). A
// field absent or null keeps the struct's default. Split from the server so that these
// decoders of bytes from the network can be unit-tested and fuzzed
// (tests/fuzz/api_json_fuzzer.cc) without an HTTP server or a daemon.
//
// Thread-safety: plain structs and stateless functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/status.h"
#include "cairn/codec/erasure.h"
#include "cairn/engine/retention.h"
#include "nlohmann/json.hpp"

namespace cairn::api {

using Json = nlohmann::json;

// POST /v1/backup: {"paths" (or "paths_base64"): [absolute...] (at least one), "copies":
// 1..64 | "ec": "K+M" (not both), "offsite": 0..64, "tags": [...], "excludes": [...],
// "rehash": bool}.
struct BackupRequest {
  std::vector<std::string> paths;  // absolute, raw bytes
  std::optional<uint32_t> copies;  // unset: the config default
  // Erasure coding "K+M" instead of copies (field "ec"; not together with "copies"). With
  // neither set the config's [backup] ec, else its copies, applies.
  std::optional<codec::ErasureScheme> ec;
  // Field "offsite": of the copies (or k+m shards), how many go to peers of another site;
  // unset: the config's [backup] offsite (docs/operations.md "Sites and off-site copies").
  std::optional<uint32_t> offsite;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  // The keep policy applied after the backup (a source's keep_*; not an API field, neither
  // encoded nor decoded); unset: the config's [retention].
  std::optional<engine::RetentionPolicy> retention;
  // Field "rehash": compare file content with the parent snapshot instead of size, mtime, ctime
  // and inode (engine::BackupOptions::rehash).
  bool rehash = false;
};

// POST /v1/restore: {"snapshot", "path" (or "path_base64"), "target" (or "target_base64";
// absolute), "at": RFC 3339 text | Unix ns (integer or digits)}.
struct RestoreRequest {
  std::string snapshot = "latest";  // id, unique prefix or "latest"
  std::string path;                 // inside the snapshot, raw bytes; "" = everything
  std::string target;               // absolute directory, raw bytes
  // Field "at" (docs/cli.md "Commands": restore --at): then "path" is an absolute source path,
  // "snapshot" must be absent, and the snapshot is the newest at or before that time holding
  // the path (engine::SnapshotAt). Unix nanoseconds.
  std::optional<int64_t> at_ns;
};

// POST /v1/check and POST /v1/repair (a repair runs a check first): {"read_data": bool,
// "read_subset_percent": (0, 100]} (a subset implies read_data).
struct CheckRequest {
  bool read_data = false;
  double read_subset = 1.0;  // fraction (0, 1]
};

// POST /v1/forget: {"snapshots": ["id or prefix", ...]} or a policy (the keep_* fields of
// engine::RetentionPolicy, below), plus "dry_run": bool and "prune": bool (default true:
// collect garbage afterwards). Snapshots and a policy exclude each other; one is required.
struct ForgetRequest {
  std::vector<std::string> snapshots;
  engine::RetentionPolicy policy;
  bool dry_run = false;
  bool prune = true;
};

// POST /v1/delete: {"path" (or "path_base64"; absolute), "snapshot": "id" (optional: every
// snapshot)}: removes the path from the snapshots by rewriting them, then collects garbage.
struct DeleteRequest {
  std::string path;      // absolute, raw bytes
  std::string snapshot;  // "" = every snapshot
};

// POST /v1/reclaim: {"quota": bytes (unsigned, required)}: lowers (or raises) what this peer
// lends; blobs over the new quota are handed to other peers first.
struct ReclaimRequest {
  uint64_t quota = 0;
};

// GET /v1/read?snapshot=ID&path_base64=B&offset=N&length=N (`cairn mount`): bytes of a file in
// a snapshot, answered as application/octet-stream. offset and length are required
// non-negative integers (bytes); a longer length is capped (4 MiB); fewer bytes only at the end
// of the file. Query parameters, not JSON: the server parses them.
struct ReadRequest {
  std::string snapshot;  // id, unique prefix or "latest"
  std::string path;      // inside the snapshot, raw bytes
  uint64_t offset = 0;
  uint64_t length = 0;
};

// POST /v1/sources: {"path" (or "path_base64"; absolute), "copies": 1..64 | "ec": "K+M",
// "excludes": [...], "schedule": "1h" ("" = none), "watch": bool (default true), keep_*
// fields}; only the path is required. The daemon turns it into a [[source]]
// (daemon/config.h SourceConfig) and validates it as one.
struct SourceRequest {
  std::string path;                       // absolute, raw bytes
  uint32_t copies = 0;                    // 0 = unset
  std::string ec;                         // "K+M" (normalized); "" = unset
  std::vector<std::string> excludes;      // fnmatch(3) globs
  std::chrono::milliseconds schedule{0};  // 0 = no schedule
  bool watch = true;
  engine::RetentionPolicy keep;  // empty: [retention] applies
};

// A request body: JSON text (RFC 8259) holding an object. INVALID_ARGUMENT "malformed JSON: ..."
// or "request body must be a JSON object".
absl::StatusOr<Json> ParseRequestBody(std::string_view text);

// OK when `path` starts with '/'; INVALID_ARGUMENT "<what> must be an absolute path" otherwise.
absl::Status RequireAbsolute(const std::string& path, const char* what);

// A keep policy: "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
// "keep_yearly" (-1..1000000; -1 = unlimited), "keep_within" (restic's form, "7d") and
// "keep_tags" ([...]). The encoder writes only the rules that are set (a source's "keep" in
// GET /v1/sources; the policy fields of a forget or source request). The decoder reads them
// from an object holding other fields too; an absent or null field (or an empty
// "keep_within") leaves the rule as it is.
Json ToJson(const engine::RetentionPolicy& policy);
absl::Status FromJson(const Json& j, engine::RetentionPolicy* policy);

Json ToJson(const BackupRequest& r);
absl::Status FromJson(const Json& j, BackupRequest* r);
Json ToJson(const RestoreRequest& r);
absl::Status FromJson(const Json& j, RestoreRequest* r);
Json ToJson(const CheckRequest& r);
absl::Status FromJson(const Json& j, CheckRequest* r);
Json ToJson(const ForgetRequest& r);
absl::Status FromJson(const Json& j, ForgetRequest* r);
Json ToJson(const DeleteRequest& r);
absl::Status FromJson(const Json& j, DeleteRequest* r);
Json ToJson(const ReclaimRequest& r);
absl::Status FromJson(const Json& j, ReclaimRequest* r);
Json ToJson(const SourceRequest& r);
absl::Status FromJson(const Json& j, SourceRequest* r);

// FromJson into a fresh T: `Decode<BackupRequest>(body)`.
template <typename T>
absl::StatusOr<T> Decode(const Json& j) {
  T value;
  CAIRN_RETURN_IF_ERROR(FromJson(j, &value));
  return value;
}

}  // namespace cairn::api
