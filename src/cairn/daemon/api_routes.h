// The route tables of the local HTTP API (docs/cli.md "Local HTTP API"; docs/architecture.md
// "Modules and their dependencies"): what a route sees of a request, what it answers, and the
// helpers every feature's table is written with. ApiServer (api_server.h) owns the HTTP side
// and concatenates the tables; each feature (api_status.cc, api_snapshots.cc, api_versions.cc,
// api_jobs.cc, api_lifecycle.cc, api_sources.cc) implements its routes in its own file,
// decoding requests and encoding answers with the types of api/.
//
// Thread-safety: a route function is called concurrently from the server's handler threads; the
// helpers below keep no state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

class EventBus;

// A complete request as a route sees it.
struct ApiRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string path;                                          // percent-decoded, without the query
  std::multimap<std::string, std::string> params;            // query parameters, decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  // The route pattern's capture groups ([0] is the whole path); set when a route matches.
  mutable std::vector<std::string> matches;

  bool has_param(const std::string& name) const { return params.count(name) > 0; }
  // The first value of a query parameter, "" if absent.
  std::string get_param_value(const std::string& name) const;
  // A header's value (name in any case), nullptr if absent.
  const std::string* FindHeader(std::string name) const;
  bool has_header(const std::string& name) const { return FindHeader(name) != nullptr; }
  std::string get_header_value(const std::string& name) const;
};

// A route's answer: status, headers and body, or an event stream.
struct ApiResponse {
  int status = -1;  // -1: no route answered
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // GET /v1/events: the answer is the stream of `bus`'s events after `stream_after`.
  bool stream = false;
  EventBus* bus = nullptr;
  uint64_t stream_after = 0;

  void set_content(std::string text, std::string type) {
    body = std::move(text);
    content_type = std::move(type);
  }
  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

using RouteHandler = std::function<void(const ApiRequest&, ApiResponse&)>;

// One row of a route table. A pattern is a literal path, or a literal prefix and one final
// segment of allowed characters, written "PREFIX([CHARS]+)" with CHARS as in a regex bracket
// (ranges like a-z, a trailing '-' literal); that segment is matches[1].
struct ApiRoute {
  const char* method;
  const char* pattern;
  RouteHandler fn;
};

// A route's outcome: HTTP status and JSON body.
using Reply = std::pair<int, nlohmann::json>;

// The JSON answer (one line, then "\n") and the error answer
// {"error":{"code","message"}} with the HTTP status of its code (HttpStatusFor).
void WriteJson(ApiResponse& res, int status, const nlohmann::json& body);
void WriteError(ApiResponse& res, const absl::Status& status);

// Runs a route, turning statuses and any exception into an error response.
RouteHandler Wrap(std::function<absl::StatusOr<Reply>(const ApiRequest&)> fn);

// A route answering 200 with the bytes `get` returns as `content_type` (file bytes, the
// Prometheus text); errors are JSON as for Wrap.
RouteHandler BytesRoute(std::function<absl::StatusOr<std::string>(const ApiRequest&)> get,
                        std::string content_type);

// A route answering 200 with the JSON `get` returns.
template <typename Get>
RouteHandler JsonRoute(Get get) {
  return Wrap([get](const ApiRequest&) -> absl::StatusOr<Reply> {
    CAIRN_ASSIGN_OR_RETURN(nlohmann::json j, get());
    return Reply{200, std::move(j)};
  });
}

// The one shape of every job-starting route: the body decoded as a `Request`
// (api/requests.h; 400 when malformed), `start` called with it, 202 {"job_id"}.
template <typename Request, typename Start>
RouteHandler JobRoute(Start start) {
  return Wrap([start](const ApiRequest& req) -> absl::StatusOr<Reply> {
    CAIRN_ASSIGN_OR_RETURN(nlohmann::json body, api::ParseRequestBody(req.body));
    CAIRN_ASSIGN_OR_RETURN(Request request, api::Decode<Request>(body));
    CAIRN_ASSIGN_OR_RETURN(std::string id, start(request));
    return Reply{202, api::ToJson(api::JobStarted{id})};
  });
}

// Query parameters. A raw-byte one: NAME_base64 when present (INVALID_ARGUMENT when not
// base64), else NAME as text.
absl::StatusOr<std::string> RawParam(const ApiRequest& req, const std::string& name);
// A flag: "1"/"true"/"yes" or ""/"0"/"false"/"no"; INVALID_ARGUMENT otherwise.
absl::StatusOr<bool> ParseBool(const std::string& name, const std::string& value);
// A required non-negative decimal integer (bytes); INVALID_ARGUMENT when absent or malformed.
absl::StatusOr<uint64_t> ParseByteCount(const ApiRequest& req, const char* name);

}  // namespace cairn::daemon
