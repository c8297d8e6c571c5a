// `cairn peers`: the cluster as this peer sees it (GET /v1/peers).
#include <chrono>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

std::string RoomText(const api::PeerInfo& p) {
  const uint64_t quota_room = p.quota > p.used ? p.quota - p.used : 0;
  return FormatSize(p.room) + (p.room < quota_room ? " (disk)" : "");
}

// CLOCK: the peer's clock minus this peer's ("+600.0 s"), "!" when beyond the window calls are
// accepted in; "-" for this peer and for peers not measured yet (or older daemons).
std::string ClockText(const api::PeerInfo& p) {
  if (p.self || !p.clock_offset_seconds) return "-";
  return absl::StrFormat("%+.1f s%s", *p.clock_offset_seconds, p.clock_skewed ? " !" : "");
}

int RunPeers(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> list = (*api)->Get("/v1/peers");
  if (!list.ok()) return PrintError(list.status());
  if (global.json) {
    PrintJson(*list);
    return kExitOk;
  }
  absl::StatusOr<std::vector<api::PeerInfo>> peers = api::Decode<std::vector<api::PeerInfo>>(*list);
  if (!peers.ok()) return PrintError(peers.status());
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  // ROOM: what the peer can take now, quota - used or less when its disk is short of room
  // ("disk" marks that).
  // SITE: "-" is the LAN site (docs/operations.md "Sites and off-site copies").
  Table table(
      {"ID", "HOST", "SITE", "ADDRESS", "STATE", "QUOTA", "USED", "ROOM", "LAST SEEN", "CLOCK"},
      {false, false, false, false, false, true, true, true, false, true});
  bool others_skewed = false, self_skewed = false;
  int64_t window = 0;
  for (const api::PeerInfo& p : *peers) {
    if (p.clock_window_seconds != 0) window = p.clock_window_seconds;
    if (p.clock_skewed) (p.self ? self_skewed : others_skewed) = true;
    table.AddRow({absl::StrCat(p.peer_id, p.self ? "*" : ""), p.host_id,
                  p.site.empty() ? "-" : p.site, p.address, p.state, FormatSize(p.quota),
                  FormatSize(p.used), RoomText(p),
                  p.self               ? "-"
                  : p.last_seen_ns > 0 ? FormatAge(now - p.last_seen_ns)
                                       : "never",
                  ClockText(p)});
  }
  table.Print(std::cout);
  // docs/operations.md "When a peer's clock is off".
  if (self_skewed) {
    std::cout << "clock: this peer's clock is more than " << window
              << " s off from most peers' clocks: they refuse its calls; synchronize its clock "
                 "(NTP)\n";
  } else if (others_skewed) {
    std::cout << "clock: ! = that peer's clock is more than " << window
              << " s off from this peer's: calls between them are refused; synchronize the "
                 "clocks (NTP)\n";
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace

Action RegisterPeers(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("peers", "List the peers this peer knows (* = this peer)");
  return [&global] { return RunPeers(global); };
}

}  // namespace cairn::cli
