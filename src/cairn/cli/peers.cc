// `cairn peers`: the cluster as this peer sees it (GET /v1/peers).
#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

std::string RoomText(const nlohmann::json& p) {
  const uint64_t quota = U64(p, "quota"), used = U64(p, "used");
  const uint64_t quota_room = quota > used ? quota - used : 0;
  // Older daemons do not report "room": the quota's.
  const uint64_t room = p.contains("room") ? U64(p, "room") : quota_room;
  return FormatSize(room) + (room < quota_room ? " (disk)" : "");
}

// CLOCK: the peer's clock minus this peer's ("+600.0 s"), "!" when beyond the window calls are
// accepted in; "-" for this peer and for peers not measured yet (or older daemons).
std::string ClockText(const nlohmann::json& p) {
  if (Bool(p, "self") || !p.contains("clock_offset_seconds") ||
      !p["clock_offset_seconds"].is_number()) {
    return "-";
  }
  return absl::StrFormat("%+.1f s%s", Double(p, "clock_offset_seconds"),
                         Bool(p, "clock_skewed") ? " !" : "");
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
  if (list->is_array()) {
    for (const nlohmann::json& p : *list) {
      bool self = Bool(p, "self");
      int64_t seen = I64(p, "last_seen_ns");
      if (p.contains("clock_window_seconds")) window = I64(p, "clock_window_seconds");
      if (Bool(p, "clock_skewed")) (self ? self_skewed : others_skewed) = true;
      table.AddRow({absl::StrCat(U64(p, "peer_id"), self ? "*" : ""), Str(p, "host_id"),
                    Str(p, "site").empty() ? "-" : Str(p, "site"), Str(p, "address"),
                    Str(p, "state"), FormatSize(U64(p, "quota")), FormatSize(U64(p, "used")),
                    RoomText(p),
                    self       ? "-"
                    : seen > 0 ? FormatAge(now - seen)
                               : "never",
                    ClockText(p)});
    }
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
