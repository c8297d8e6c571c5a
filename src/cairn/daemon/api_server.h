// The local HTTP API (cli-api-spec.md "Local HTTP API", design.md §8): cpp-httplib on a
// loopback address, JSON in and out, bearer-token authentication. The CLI is its client.
//
// ApiServer owns the HTTP side — authentication, routing, request parsing and validation,
// mapping absl codes to HTTP statuses — and calls an ApiHandler (the Daemon; a fake in tests)
// with typed requests. Whatever arrives (malformed JSON, wrong types, garbage bytes, unknown
// routes, a handler that throws) gets an error response and the server keeps serving.
//
// Errors: body {"error":{"code":"NOT_FOUND","message":"..."}}; HTTP status 400
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 404 NOT_FOUND, 409 FAILED_PRECONDITION/ALREADY_EXISTS,
// 503 UNAVAILABLE, 507 RESOURCE_EXHAUSTED, 500 others.
//
// Thread-safety: the handler is called concurrently from httplib's worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/codec/erasure.h"
#include "cairn/daemon/config.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Server;
}

namespace cairn::daemon {

struct BackupRequest {
  std::vector<std::string> paths;  // absolute, raw bytes
  std::optional<uint32_t> copies;  // unset: the config default
  // Erasure coding "K+M" instead of copies (field "ec"; not together with "copies"). With
  // neither set the config's [backup] ec, else its copies, applies.
  std::optional<codec::ErasureScheme> ec;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  // The keep policy applied after the backup (a source's keep_*; not an API field); unset:
  // the config's [retention].
  std::optional<RetentionConfig> retention;
  // Field "rehash": compare file content with the parent snapshot instead of size, mtime, ctime
  // and inode (engine::BackupOptions::rehash).
  bool rehash = false;
};

struct RestoreRequest {
  std::string snapshot = "latest";  // id, unique prefix or "latest"
  std::string path;                 // inside the snapshot, raw bytes; "" = everything
  std::string target;               // absolute directory, raw bytes
  // Field "at" (issue 5 versions): RFC 3339 text, or Unix nanoseconds (integer or digits).
  // Then "path" is an absolute source path, "snapshot" must be absent, and the snapshot is the
  // newest at or before that time holding the path (engine::SnapshotAt; StartRestoreAt).
  std::optional<int64_t> at_ns;
};

// POST /v1/check body: {"read_data": bool, "read_subset_percent": 0..100}; POST /v1/repair body:
// the same (a repair runs a check first).
struct CheckRequest {
  bool read_data = false;
  double read_subset = 1.0;  // fraction 0..1
};

// POST /v1/forget body: {"snapshots": ["id or prefix", ...]} or a policy {"keep_last": N,
// "keep_hourly": N, "keep_daily": N, "keep_weekly": N, "keep_monthly": N, "keep_yearly": N
// (-1 = unlimited), "keep_within": "7d", "keep_tags": ["t"]}, plus "dry_run": bool and
// "prune": bool (default true: collect garbage afterwards). Snapshots and a policy exclude
// each other; one of them is required.
struct ForgetRequest {
  std::vector<std::string> snapshots;
  RetentionConfig policy;
  bool dry_run = false;
  bool prune = true;
};

// POST /v1/delete body: {"path": "/abs/path" (or "path_base64"), "snapshot": "id" (optional:
// every snapshot)}: removes the path from the snapshots by rewriting them, then collects garbage.
struct DeleteRequest {
  std::string path;      // absolute, raw bytes
  std::string snapshot;  // "" = every snapshot
};

// POST /v1/reclaim body: {"quota": bytes}: lowers (or raises) what this peer lends; blobs over
// the new quota are handed to other peers first.
struct ReclaimRequest {
  uint64_t quota = 0;
};

// GET /v1/read?snapshot=ID&path_base64=B&offset=N&length=N (`cairn mount`): bytes of a file in
// a snapshot, answered as application/octet-stream. offset and length are required
// non-negative integers (bytes); a longer length is capped (4 MiB); fewer bytes only at the end
// of the file.
struct ReadRequest {
  std::string snapshot;  // id, unique prefix or "latest"
  std::string path;      // inside the snapshot, raw bytes
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What the API serves; each method returns the JSON body of its route (cli-api-spec.md).
class ApiHandler {
 public:
  virtual ~ApiHandler() = default;
  virtual absl::StatusOr<nlohmann::json> GetStatus() = 0;
  virtual absl::StatusOr<nlohmann::json> GetPeers() = 0;
  virtual absl::StatusOr<nlohmann::json> GetSnapshots() = 0;
  virtual absl::StatusOr<nlohmann::json> List(const std::string& snapshot, const std::string& path,
                                              bool recursive) = 0;
  // Both return the new job's id.
  virtual absl::StatusOr<std::string> StartBackup(const BackupRequest& request) = 0;
  virtual absl::StatusOr<std::string> StartRestore(const RestoreRequest& request) = 0;
  // Check and repair jobs (issue 3); UNIMPLEMENTED unless overridden.
  virtual absl::StatusOr<std::string> StartCheck(const CheckRequest& /*request*/) {
    return absl::UnimplementedError("check is not available");
  }
  virtual absl::StatusOr<std::string> StartRepair(const CheckRequest& /*request*/) {
    return absl::UnimplementedError("repair is not available");
  }
  // Lifecycle jobs (issue 4); UNIMPLEMENTED unless overridden.
  virtual absl::StatusOr<std::string> StartForget(const ForgetRequest& /*request*/) {
    return absl::UnimplementedError("forget is not available");
  }
  virtual absl::StatusOr<std::string> StartDelete(const DeleteRequest& /*request*/) {
    return absl::UnimplementedError("delete is not available");
  }
  virtual absl::StatusOr<std::string> StartReclaim(const ReclaimRequest& /*request*/) {
    return absl::UnimplementedError("reclaim is not available");
  }
  // POST /v1/index/rebuild: rebuilds this peer's catalog from the peers (a job).
  virtual absl::StatusOr<std::string> StartIndexRebuild() {
    return absl::UnimplementedError("index rebuild is not available");
  }
  // Bytes of a file in a snapshot (issue 5, `cairn mount`); UNIMPLEMENTED unless overridden.
  virtual absl::StatusOr<std::string> ReadFile(const ReadRequest& /*request*/) {
    return absl::UnimplementedError("read is not available");
  }
  // Sources ([[source]], issue 5 watch): GET /v1/sources (an array, daemon/sources.h
  // StatusJson), POST /v1/sources (the added source's JSON), DELETE /v1/sources?path_base64=B.
  // UNIMPLEMENTED unless overridden.
  virtual absl::StatusOr<nlohmann::json> GetSources() {
    return absl::UnimplementedError("sources are not available");
  }
  virtual absl::StatusOr<nlohmann::json> AddSource(const SourceConfig& /*source*/) {
    return absl::UnimplementedError("sources are not available");
  }
  virtual absl::Status RemoveSource(const std::string& /*path*/) {
    return absl::UnimplementedError("sources are not available");
  }
  // Versions (issue 5, daemon/versions.cc); UNIMPLEMENTED unless overridden.
  // GET /v1/versions?path_base64=B&all=0|1: every stored version of absolute path B.
  virtual absl::StatusOr<nlohmann::json> GetVersions(const std::string& /*path*/, bool /*all*/) {
    return absl::UnimplementedError("versions are not available");
  }
  // GET /v1/diff?a=SNAP&b=SNAP: the changes from snapshot a to snapshot b.
  virtual absl::StatusOr<nlohmann::json> GetDiff(const std::string& /*a*/,
                                                 const std::string& /*b*/) {
    return absl::UnimplementedError("diff is not available");
  }
  // GET /v1/find?pattern_base64=B (or pattern=P): entries matching a glob over all snapshots.
  virtual absl::StatusOr<nlohmann::json> FindEntries(const std::string& /*pattern*/) {
    return absl::UnimplementedError("find is not available");
  }
  // POST /v1/restore with "at" (RestoreRequest::at_ns): returns the restore job's id.
  virtual absl::StatusOr<std::string> StartRestoreAt(const RestoreRequest& /*request*/) {
    return absl::UnimplementedError("restore --at is not available");
  }
  virtual absl::StatusOr<nlohmann::json> GetJob(const std::string& id) = 0;
  virtual absl::Status CancelJob(const std::string& id) = 0;
};

// HTTP status for an absl code (see file comment).
int HttpStatusFor(absl::StatusCode code);

class ApiServer {
 public:
  // Binds `address` (host:port, loopback only; port 0 picks a free port) and serves on a
  // background thread. `token` is the bearer token (hex); `handler` must outlive the server.
  // INVALID_ARGUMENT for a malformed or non-loopback address; UNAVAILABLE if it cannot bind.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(const std::string& address,
                                                          const std::string& token,
                                                          ApiHandler* handler);
  ~ApiServer();

  int port() const { return port_; }
  // host:port actually bound.
  std::string address() const;

  // Stops accepting requests and waits for the serving thread. Idempotent.
  void Stop();

 private:
  ApiServer() = default;
  void Route();

  std::string host_;
  int port_ = 0;
  std::string token_;
  ApiHandler* handler_ = nullptr;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace cairn::daemon
