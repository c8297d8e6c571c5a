// The CLI's way to the local peer's HTTP API: an api::ApiClient (api/client.h) for the peer of
// DIR, found through DIR/cairn.toml and authenticated with DIR/secrets/api.token, and waiting
// for a job with a progress bar and Ctrl-C.
//
// Errors: those of LoadConfig / LoadApiToken (NOT_FOUND for a directory that is not a peer
// directory); then the client's (UNAVAILABLE "cannot reach the cairn peer at 127.0.0.1:PORT:
// is `cairn peer --dir DIR` running?" when nothing answers).
//
// Thread-safety: one CLI command at a time (the Ctrl-C flag is process-wide).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/api/client.h"
#include "nlohmann/json.hpp"

namespace cairn::cli {

class ProgressBar;

// A client of the API of the peer of `dir`.
absl::StatusOr<std::unique_ptr<api::ApiClient>> ConnectToPeer(const std::string& dir);

// api::ApiClient::WaitForJob drawing progress on `bar` (may be null); Ctrl-C (SIGINT) while
// it waits cancels the job (DELETE /v1/jobs/ID) and returns CANCELLED.
absl::StatusOr<nlohmann::json> WaitForJob(api::ApiClient& client, const std::string& id,
                                          ProgressBar* bar);

// Whether Ctrl-C (SIGINT) arrived while a command waited for a job (WaitForJob); PrintError
// then exits 130 (docs/cli.md "Commands": exit codes). `cairn watch` stops cleanly instead
// (exit 0).
bool InterruptedByUser();

}  // namespace cairn::cli
