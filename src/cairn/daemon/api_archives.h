// The archives feature of the local HTTP API (docs/cli.md "Local HTTP API"): GET /v1/archives
// (every archive, with its mount), POST /v1/archives (create one), POST /v1/archives/mount and
// POST /v1/archives/unmount, over engine/archive.h and daemon/archive_mount.h. Answered on the
// API's handler thread: creating stores one empty version, unmounting commits.
//
// Thread-safety: the methods are called concurrently from the server's handler threads; the
// parts they use are thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/archives.h"
#include "cairn/daemon/api_context.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/archive_mount.h"
#include "cairn/engine/chunk_io.h"

namespace cairn::daemon {

class ArchivesApi {
 public:
  // `mounts` must outlive the server; `default_redundancy` applies to a create that names
  // neither copies nor ec.
  ArchivesApi(ApiContext ctx, ArchiveMounts* mounts, engine::Redundancy default_redundancy,
              std::string hostname)
      : ctx_(std::move(ctx)),
        mounts_(mounts),
        default_(default_redundancy),
        hostname_(std::move(hostname)) {}

  std::vector<ApiRoute> Routes();

  // Every archive, by name. Errors: the catalog's.
  absl::StatusOr<std::vector<api::ArchiveInfo>> List();
  // Creates an archive (an empty first version). ALREADY_EXISTS, INVALID_ARGUMENT, UNAVAILABLE
  // (no peer took it).
  absl::StatusOr<api::ArchiveInfo> Create(const api::ArchiveCreateRequest& request);

 private:
  const ApiContext ctx_;
  ArchiveMounts* mounts_;
  const engine::Redundancy default_;
  const std::string hostname_;
};

}  // namespace cairn::daemon
