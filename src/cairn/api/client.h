// Client of the local HTTP API (docs/cli.md "Local HTTP API"): the one HTTP client of cairn,
// used by the CLI (through cli/connect.h, which finds the peer and its token from DIR) and by
// the daemon's tests. cpp-httplib underneath, confined to client.cc.
//
// Errors: UNAVAILABLE "cannot reach the cairn peer at HOST:PORT<hint>" when nothing answers;
// for an answer outside 2xx, the status its JSON body names ({"error":{"code","message"}};
// 400 INVALID_ARGUMENT, 404 NOT_FOUND, 409 FAILED_PRECONDITION, ...), UNKNOWN when the body is
// not such an error; INTERNAL for a 2xx answer that is not the JSON expected.
//
// Thread-safety: one client serves one request at a time (a pool of clients for concurrent
// requests, as `cairn mount` does).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Client;
}

namespace cairn::api {

// An HTTP answer as received: status code, Content-Type and body bytes.
struct HttpAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ApiClient {
 public:
  struct Options {
    std::chrono::seconds connect_timeout{5};
    std::chrono::seconds read_timeout{600};  // a route may wait for the engine
    std::chrono::seconds write_timeout{60};
    // Appended to the UNAVAILABLE message when nothing answers, e.g. ": is `cairn peer --dir
    // DIR` running?".
    std::string unreachable_hint;
  };

  // A client of the API at `address` ("host:port" or "[v6]:port") that sends `token` as its
  // bearer token ("" sends none). INVALID_ARGUMENT for a malformed address. Connects lazily
  // (keep-alive).
  static absl::StatusOr<std::unique_ptr<ApiClient>> Connect(const std::string& address,
                                                            const std::string& token,
                                                            Options options);
  static absl::StatusOr<std::unique_ptr<ApiClient>> Connect(const std::string& address,
                                                            const std::string& token) {
    return Connect(address, token, Options());
  }
  ~ApiClient();

  // One request, whatever the answer's status: `method` "GET", "POST" (body sent as
  // application/json) or "DELETE"; `target` the path with query, e.g. "/v1/ls?snapshot=latest".
  // UNAVAILABLE when nothing answers.
  absl::StatusOr<HttpAnswer> Send(const std::string& method, const std::string& target,
                                  const std::string& body = "");

  // The JSON body of a 2xx answer; errors as in the file comment.
  absl::StatusOr<Json> Get(const std::string& target);
  absl::StatusOr<Json> Post(const std::string& target, const Json& body);
  absl::StatusOr<Json> Delete(const std::string& target);
  // The raw body of a 2xx answer (GET /v1/read).
  absl::StatusOr<std::string> GetBytes(const std::string& target);

  // GET decoded as a response type of api/responses.h.
  template <typename T>
  absl::StatusOr<T> GetAs(const std::string& target) {
    CAIRN_ASSIGN_OR_RETURN(Json j, Get(target));
    return Decoded<T>(target, j);
  }
  // POST of a job-starting request (api/requests.h) to `path`: the new job's id.
  template <typename Request>
  absl::StatusOr<std::string> StartJob(const std::string& path, const Request& request) {
    CAIRN_ASSIGN_OR_RETURN(Json j, Post(path, ToJson(request)));
    CAIRN_ASSIGN_OR_RETURN(JobStarted started, Decoded<JobStarted>(path, j));
    return started.job_id;
  }

  // Long-polls GET /v1/jobs/ID?wait_ms=200 (the peer answers once the job ends, or after
  // 200 ms with its progress) until the job is done: returns the job object then; its error
  // when it failed. A peer that answers at once (one without `wait_ms`) is asked again 200 ms
  // after the previous question, not in a busy loop. `on_progress` (optional) gets each answer's
  // "progress" object. `interrupted` (optional) is asked after each answer and every 10 ms
  // between: true cancels the job (DELETE /v1/jobs/ID) and returns CANCELLED.
  struct WaitOptions {
    std::function<void(const Json& progress)> on_progress;
    std::function<bool()> interrupted;
  };
  absl::StatusOr<Json> WaitForJob(const std::string& id, const WaitOptions& options);

  // host:port as given to Connect.
  const std::string& address() const { return address_; }

 private:
  ApiClient() = default;
  absl::StatusOr<Json> JsonOf(const std::string& method, const std::string& target,
                              absl::StatusOr<HttpAnswer> answer);
  template <typename T>
  static absl::StatusOr<T> Decoded(const std::string& target, const Json& j) {
    absl::StatusOr<T> value = Decode<T>(j);
    if (!value.ok()) {
      return absl::InternalError(
          absl::StrCat(target, ": unexpected answer from the peer: ", value.status().message()));
    }
    return value;
  }

  std::string address_;
  Options options_;
  std::unique_ptr<httplib::Client> client_;
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string UrlEncode(const std::string& value);

}  // namespace cairn::api
