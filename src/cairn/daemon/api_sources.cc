// The sources feature of the local API (api_sources.h; docs/cli.md "Local HTTP API"): its
// routes and their answers, over SourceScheduler (sources.h) and cairn.toml (config.h).
#include "cairn/daemon/api_sources.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/daemon/sources.h"

namespace cairn::daemon {

using Json = nlohmann::json;

SourcesApi::SourcesApi(ApiContext ctx) : ctx_(std::move(ctx)) {
  if (ctx_.config != nullptr) configured_ = ctx_.config->sources;
}

std::vector<ApiRoute> SourcesApi::Routes() {
  return {
      {"GET", "/v1/sources", JsonRoute([this] { return GetSources(); })},
      {"POST", "/v1/sources", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(Json body, api::ParseRequestBody(req.body));
         CAIRN_ASSIGN_OR_RETURN(api::SourceRequest source, api::Decode<api::SourceRequest>(body));
         CAIRN_ASSIGN_OR_RETURN(Json j, AddSource(source));
         return Reply{201, std::move(j)};
       })},
      {"DELETE", "/v1/sources", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(std::string path, RawParam(req, "path"));
         CAIRN_RETURN_IF_ERROR(api::RequireAbsolute(path, "a source path"));
         CAIRN_RETURN_IF_ERROR(RemoveSource(path));
         Json j{{"removed", true}};
         api::SetPathField(j, "path", path);
         return Reply{200, std::move(j)};
       })},
  };
}

absl::StatusOr<Json> SourcesApi::GetSources() {
  if (ctx_.sources == nullptr) return absl::FailedPreconditionError("the peer is starting");
  return ctx_.sources->StatusJson();
}

absl::StatusOr<Json> SourcesApi::AddSource(const api::SourceRequest& request) {
  SourceConfig source = SourceFromRequest(request);
  CAIRN_RETURN_IF_ERROR(ValidateSource(source));  // as sent, before it is normalized
  if (ctx_.sources == nullptr || ctx_.config == nullptr) {
    return absl::FailedPreconditionError("the peer is starting");
  }
  source.path = NormalSourcePath(source.path);
  CAIRN_RETURN_IF_ERROR(ValidateSource(source));
  struct stat st;
  if (::lstat(source.path.c_str(), &st) != 0) {
    return Annotate(ErrnoStatus(errno, api::SanitizeUtf8(source.path)), "cannot add the source");
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const SourceConfig& s : configured_) {
    if (s.path == source.path) {
      return absl::AlreadyExistsError(
          absl::StrCat("'", api::SanitizeUtf8(source.path),
                       "' is already a source (remove it first to change its settings)"));
    }
  }
  std::vector<SourceConfig> sources = configured_;
  sources.push_back(source);
  CAIRN_RETURN_IF_ERROR(
      Annotate(WriteBackSources(ctx_.config->dir, sources), "write the sources to cairn.toml"));
  configured_ = std::move(sources);
  CAIRN_RETURN_IF_ERROR(ctx_.sources->Add(source));
  spdlog::info("source {} added", api::SanitizeUtf8(source.path));
  return api::ToJson(SourceInfoOf(source));
}

absl::Status SourcesApi::RemoveSource(const std::string& path) {
  if (ctx_.sources == nullptr || ctx_.config == nullptr) {
    return absl::FailedPreconditionError("the peer is starting");
  }
  std::string normal = NormalSourcePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SourceConfig> sources = configured_;
  auto it = std::find_if(sources.begin(), sources.end(),
                         [&](const SourceConfig& s) { return s.path == normal; });
  if (it == sources.end()) {
    return absl::NotFoundError(absl::StrCat("'", api::SanitizeUtf8(normal), "' is not a source"));
  }
  sources.erase(it);
  CAIRN_RETURN_IF_ERROR(
      Annotate(WriteBackSources(ctx_.config->dir, sources), "write the sources to cairn.toml"));
  configured_ = std::move(sources);
  absl::Status removed = ctx_.sources->Remove(normal);
  if (!removed.ok() && !absl::IsNotFound(removed)) return removed;
  spdlog::info("source {} removed (its snapshots stay)", api::SanitizeUtf8(normal));
  return absl::OkStatus();
}

}  // namespace cairn::daemon
