// The snapshots feature of the local API (docs/cli.md "Local HTTP API"): GET /v1/snapshots (the
// home peer's snapshots), GET /v1/ls (entries of a snapshot) and GET /v1/read (bytes of a file
// in a snapshot, for `cairn mount`).
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// file reader (made on first use) is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/engine/file_reader.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

class SnapshotsApi {
 public:
  explicit SnapshotsApi(ApiContext ctx);
  virtual ~SnapshotsApi();

  // GET /v1/snapshots; GET /v1/ls?snapshot=S&path_base64=B (or path=P)&recursive=0|1; GET
  // /v1/read?snapshot=S&path_base64=B (or path=P)&offset=N&length=N (the body is the bytes,
  // application/octet-stream). A missing or malformed parameter is INVALID_ARGUMENT before a
  // method below is called. `this` must outlive the server.
  std::vector<ApiRoute> Routes();

  // Every snapshot of the catalog, oldest first (api::SnapshotInfo each).
  virtual absl::StatusOr<nlohmann::json> GetSnapshots();
  // What is in `path` of `snapshot` (id, unique prefix or "latest"): its children, or with
  // `recursive` everything below it; a file lists itself. NOT_FOUND for an unknown snapshot or
  // path.
  virtual absl::StatusOr<nlohmann::json> List(const std::string& snapshot, const std::string& path,
                                              bool recursive);
  // Up to request.length bytes (capped at 4 MiB) of a regular file from request.offset.
  virtual absl::StatusOr<std::string> ReadFile(const api::ReadRequest& request);

 private:
  const ApiContext ctx_;
  std::once_flag file_reader_once_;
  std::unique_ptr<engine::FileReader> file_reader_;  // made on the first read
};

}  // namespace cairn::daemon
