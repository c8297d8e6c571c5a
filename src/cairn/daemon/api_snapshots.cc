// The snapshots feature of the local API (api_snapshots.h; docs/cli.md "Local HTTP API"): its
// routes and their answers. Reads share one engine::FileReader, whose chunk cache (64 MiB) serves
// every reader of `cairn mount`.
#include "cairn/daemon/api_snapshots.h"

#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;

// GET /v1/read?snapshot=ID&path_base64=B (or path=P)&offset=N&length=N.
absl::StatusOr<api::ReadRequest> ParseReadRequest(const ApiRequest& req) {
  api::ReadRequest r;
  r.snapshot = req.get_param_value("snapshot");
  if (r.snapshot.empty()) {
    return absl::InvalidArgumentError("query parameter 'snapshot' is required");
  }
  if (req.has_param("path_base64")) {
    auto decoded = api::FromBase64(req.get_param_value("path_base64"));
    if (!decoded.ok()) {
      return absl::InvalidArgumentError("query parameter 'path_base64' is not base64");
    }
    r.path = *std::move(decoded);
  } else {
    r.path = req.get_param_value("path");
  }
  if (r.path.empty()) return absl::InvalidArgumentError("query parameter 'path' is required");
  CAIRN_ASSIGN_OR_RETURN(r.offset, ParseByteCount(req, "offset"));
  CAIRN_ASSIGN_OR_RETURN(r.length, ParseByteCount(req, "length"));
  return r;
}

}  // namespace

SnapshotsApi::SnapshotsApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
SnapshotsApi::~SnapshotsApi() = default;

std::vector<ApiRoute> SnapshotsApi::Routes() {
  return {
      {"GET", "/v1/snapshots", JsonRoute([this] { return GetSnapshots(); })},
      {"GET", "/v1/ls", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         std::string snapshot = req.get_param_value("snapshot");
         if (snapshot.empty()) {
           return absl::InvalidArgumentError("query parameter 'snapshot' is required");
         }
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         CAIRN_ASSIGN_OR_RETURN(bool recursive,
                                ParseBool("recursive", req.get_param_value("recursive")));
         CAIRN_ASSIGN_OR_RETURN(Json j, List(snapshot, path, recursive));
         return Reply{200, std::move(j)};
       })},
      // File bytes (`cairn mount`): the body is the raw bytes, not JSON; errors are JSON.
      {"GET", "/v1/read",
       BytesRoute(
           [this](const ApiRequest& req) -> absl::StatusOr<std::string> {
             CAIRN_ASSIGN_OR_RETURN(api::ReadRequest r, ParseReadRequest(req));
             return ReadFile(r);
           },
           "application/octet-stream")},
  };
}

absl::StatusOr<Json> SnapshotsApi::GetSnapshots() {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("the snapshot list"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("list snapshots"));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> snapshots,
                         ctx_.engine->catalog->ListSnapshots());
  Json out = Json::array();
  for (const ports::SnapshotRecord& r : snapshots) {
    out.push_back(api::ToJson(api::SnapshotInfoOf(r)));
  }
  return out;
}

absl::StatusOr<Json> SnapshotsApi::List(const std::string& snapshot, const std::string& path,
                                        bool recursive) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("ls"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("list a snapshot"));
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord record,
                         engine::ResolveSnapshot(ctx_.engine->catalog, snapshot));
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::ListedEntry> entries,
                         engine::ListSnapshot(*ctx_.engine, record.snapshot, path, recursive));
  // The spec lists what is *in* PATH (its children, or everything below it with -r), so a
  // directory's own entry is left out; a file PATH lists just the file.
  std::string own = path;
  while (!own.empty() && own.front() == '/') own.erase(own.begin());
  while (!own.empty() && own.back() == '/') own.pop_back();
  Json out = Json::array();
  for (const engine::ListedEntry& e : entries) {
    if (!own.empty() && e.path == own && e.entry.type == format::EntryType::kDirectory) continue;
    api::LsEntry entry;
    entry.path = e.path;
    entry.type = format::EntryTypeName(e.entry.type);
    entry.size = e.entry.size;
    entry.mode = e.entry.mode;
    entry.mtime_ns = e.entry.mtime_ns;
    entry.uid = e.entry.uid;
    entry.gid = e.entry.gid;
    if (e.entry.type == format::EntryType::kSymlink) entry.target = e.entry.symlink_target;
    out.push_back(api::ToJson(entry));
  }
  return out;
}

absl::StatusOr<std::string> SnapshotsApi::ReadFile(const api::ReadRequest& request) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("read"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("read a file"));
  std::call_once(file_reader_once_,
                 [this] { file_reader_ = std::make_unique<engine::FileReader>(*ctx_.engine); });
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord record,
                         engine::ResolveSnapshot(ctx_.engine->catalog, request.snapshot));
  CAIRN_ASSIGN_OR_RETURN(Bytes data, file_reader_->Read(record.snapshot, request.path,
                                                        request.offset, request.length));
  return std::string(data.begin(), data.end());
}

}  // namespace cairn::daemon
