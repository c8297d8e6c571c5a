// `cairn status`: this peer as a storage peer and as a home peer (GET /v1/status).
#include <iostream>

#include "cairn/base/bytes.h"
#include "cairn/cli/api_client.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

int RunStatus(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<ApiClient>> api = ApiClient::Open(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> s = (*api)->Get("/v1/status");
  if (!s.ok()) return PrintError(s.status());
  uint64_t below = U64(*s, "chunks_below_target");
  if (global.json) {
    PrintJson(*s);
  } else {
    std::cout << "peer " << U64(*s, "peer_id") << " on host " << Str(*s, "host_id") << "\n"
              << "address:    " << Str(*s, "address") << " (api " << Str(*s, "api") << ")\n"
              << "storage:    " << FormatSize(U64(*s, "used")) << " used of "
              << FormatSize(U64(*s, "quota")) << " quota, " << U64(*s, "blobs") << " blobs\n"
              << "snapshots:  " << U64(*s, "snapshots") << "\n"
              << "chunks:     " << U64(*s, "chunks") << " (" << U64(*s, "chunks_at_target")
              << " at target, " << below << " below target)\n"
              << "data:       " << FormatSize(U64(*s, "plain_bytes")) << " logical, "
              << FormatSize(U64(*s, "stored_bytes")) << " stored on peers" << std::endl;
  }
  if (below > 0) {
    std::cerr << "degraded: " << below << (below == 1 ? " chunk" : " chunks") << " below target"
              << std::endl;
    return kExitDegraded;
  }
  return kExitOk;
}

}  // namespace

Action RegisterStatus(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("status", "Show this peer's storage and backup health");
  return [&global] { return RunStatus(global); };
}

}  // namespace cairn::cli
