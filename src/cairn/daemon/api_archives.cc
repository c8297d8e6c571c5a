#include "cairn/daemon/api_archives.h"

#include <map>

#include "cairn/api/requests.h"
#include "cairn/engine/archive.h"

namespace cairn::daemon {

using Json = nlohmann::json;

namespace {

api::ArchiveInfo InfoOf(const engine::ArchiveInfo& a) {
  api::ArchiveInfo r;
  r.name = a.name;
  r.versions = a.versions;
  r.latest = a.latest.id.Hex();
  r.time_ns = a.latest.snapshot.time_ns;
  r.copies = a.latest.snapshot.copies;
  if (a.latest.snapshot.ec_k > 0) {
    r.ec = std::to_string(a.latest.snapshot.ec_k) + "+" + std::to_string(a.latest.snapshot.ec_m);
  }
  r.files = a.latest.snapshot.stats.files;
  r.bytes = a.latest.snapshot.stats.bytes;
  return r;
}

}  // namespace

std::vector<ApiRoute> ArchivesApi::Routes() {
  return {
      {"GET", "/v1/archives", JsonRoute([this]() -> absl::StatusOr<Json> {
         CAIRN_ASSIGN_OR_RETURN(std::vector<api::ArchiveInfo> list, List());
         return api::ToJson(list);
       })},
      {"POST", "/v1/archives", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(Json body, api::ParseRequestBody(req.body));
         CAIRN_ASSIGN_OR_RETURN(auto request, api::Decode<api::ArchiveCreateRequest>(body));
         CAIRN_ASSIGN_OR_RETURN(api::ArchiveInfo created, Create(request));
         return Reply{201, api::ToJson(created)};
       })},
      {"POST", "/v1/archives/mount", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(Json body, api::ParseRequestBody(req.body));
         CAIRN_ASSIGN_OR_RETURN(auto request, api::Decode<api::ArchiveMountRequest>(body));
         if (request.mountpoint.empty()) {
           return absl::InvalidArgumentError("field 'mountpoint' is missing");
         }
         CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("mount an archive"));
         CAIRN_RETURN_IF_ERROR(mounts_->Mount(request.name, request.mountpoint, request.allow_other,
                                              request.spool_bytes.value_or(0)));
         return Reply{200, Json{{"name", request.name}, {"mountpoint", request.mountpoint}}};
       })},
      {"POST", "/v1/archives/unmount", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(Json body, api::ParseRequestBody(req.body));
         CAIRN_ASSIGN_OR_RETURN(auto request, api::Decode<api::ArchiveMountRequest>(body));
         CAIRN_RETURN_IF_ERROR(mounts_->Unmount(request.name));
         return Reply{200, Json{{"name", request.name}, {"unmounted", true}}};
       })},
  };
}

absl::StatusOr<std::vector<api::ArchiveInfo>> ArchivesApi::List() {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("archives"));
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::ArchiveInfo> archives,
                         engine::ListArchives(ctx_.engine->catalog));
  std::map<std::string, ArchiveMounts::Mounted> mounted;
  for (ArchiveMounts::Mounted& m : mounts_->List()) mounted.emplace(m.name, std::move(m));
  std::vector<api::ArchiveInfo> out;
  for (const engine::ArchiveInfo& a : archives) {
    api::ArchiveInfo r = InfoOf(a);
    if (auto it = mounted.find(a.name); it != mounted.end()) {
      r.mountpoint = it->second.mountpoint;
      r.spooled_bytes = it->second.stats.spooled_bytes;
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<api::ArchiveInfo> ArchivesApi::Create(const api::ArchiveCreateRequest& request) {
  CAIRN_RETURN_IF_ERROR(ctx_.Available("archives"));
  CAIRN_RETURN_IF_ERROR(ctx_.IndexReady("create an archive"));
  engine::Redundancy r = default_;
  if (request.copies) {
    r.copies = *request.copies;
    r.ec.reset();
  } else if (request.ec) {
    r.ec = request.ec;
  }
  CAIRN_ASSIGN_OR_RETURN(ports::SnapshotRecord created,
                         engine::CreateArchive(*ctx_.engine, request.name, r, hostname_));
  return InfoOf(engine::ArchiveInfo{request.name, created, 1});
}

}  // namespace cairn::daemon
