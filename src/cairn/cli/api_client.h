// Client of the local peer's HTTP API (daemon/api_server.h): finds it through DIR/cairn.toml
// and authenticates with DIR/secrets/api.token.
//
// Errors: UNAVAILABLE "cannot reach the cairn peer at 127.0.0.1:PORT: is `cairn peer --dir
// DIR` running?" when nothing answers; otherwise the status the API returned
// ({"error":{"code","message"}}).
//
// Thread-safety: not thread-safe (one CLI command uses one client).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Client;
}

namespace cairn::cli {

class ProgressBar;

// Whether Ctrl-C (SIGINT) arrived while a command waited for a job (ApiClient::WaitForJob,
// which then cancels the job and returns CANCELLED); PrintError then exits 130 (docs/cli.md
// "Commands": exit codes). `cairn watch` stops cleanly instead (exit 0).
bool InterruptedByUser();

class ApiClient {
 public:
  // Reads the config (for the api address) and the token. Errors from LoadConfig /
  // LoadApiToken (NOT_FOUND for a directory that is not a peer directory).
  static absl::StatusOr<std::unique_ptr<ApiClient>> Open(const std::string& dir);
  ~ApiClient();

  // `target` is the path with query, e.g. "/v1/ls?snapshot=latest".
  absl::StatusOr<nlohmann::json> Get(const std::string& target);
  absl::StatusOr<nlohmann::json> Post(const std::string& target, const nlohmann::json& body);
  absl::StatusOr<nlohmann::json> Delete(const std::string& target);

  // Polls GET /v1/jobs/ID every 200 ms until it is done, drawing progress on `bar`.
  // Returns the final job object when it is done; its error when it failed. Ctrl-C (SIGINT)
  // cancels the job (DELETE /v1/jobs/ID) and returns CANCELLED.
  absl::StatusOr<nlohmann::json> WaitForJob(const std::string& id, ProgressBar* bar);

  const std::string& address() const { return address_; }

 private:
  ApiClient() = default;
  absl::StatusOr<nlohmann::json> Finish(const std::string& method, const std::string& target,
                                        const void* result);

  std::string dir_;
  std::string address_;
  std::string token_;
  std::unique_ptr<httplib::Client> client_;
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string UrlEncode(const std::string& value);

}  // namespace cairn::cli
