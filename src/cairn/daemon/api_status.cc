// The status feature of the local API (api_status.h; docs/cli.md "Local HTTP API"): its routes
// and the peer list, from the membership and this peer's store.
#include "cairn/daemon/api_status.h"

#include <vector>

#include "cairn/api/responses.h"
#include "cairn/cluster/membership.h"
#include "cairn/cluster/rpc_auth.h"
#include "cairn/daemon/version.h"
#include "cairn/store/blob_store.h"

namespace cairn::daemon {

using Json = nlohmann::json;

std::vector<ApiRoute> StatusApi::Routes() {
  return {
      {"GET", "/v1/version", JsonRoute([]() -> absl::StatusOr<Json> { return VersionJson(); })},
      {"GET", "/v1/status", JsonRoute([this] { return GetStatus(); })},
      {"GET", "/v1/peers", JsonRoute([this] { return GetPeers(); })},
  };
}

absl::StatusOr<Json> StatusApi::GetStatus() {
  if (!ctx_.status) return absl::UnimplementedError("the status is not available");
  return ctx_.status();
}

absl::StatusOr<Json> StatusApi::GetPeers() {
  if (ctx_.membership == nullptr || ctx_.store == nullptr) {
    return absl::UnimplementedError("the peer list is not available");
  }
  // This peer's own usage as it is now, not as of the last ping round.
  store::StoreStats stats = ctx_.store->Stats();
  ctx_.membership->UpdateSelf(stats.quota, stats.used, stats.extra_bytes, store::DiskRoom(stats));
  // Clock offsets against the window calls are accepted in (docs/operations.md "When a peer's
  // clock is off"). This peer's own clock is flagged when most of the peers measured are off.
  const std::vector<cluster::PeerView> peers = ctx_.membership->Peers();
  const int64_t window_ms = int64_t{1000} * cluster::RpcAuthOptions{}.max_skew.count();
  auto beyond = [window_ms](int64_t offset_ms) {
    return offset_ms > window_ms || offset_ms < -window_ms;
  };
  size_t measured = 0, off = 0;
  for (const cluster::PeerView& v : peers) {
    if (v.self || !v.clock_offset_ms) continue;
    ++measured;
    if (beyond(*v.clock_offset_ms)) ++off;
  }
  std::vector<api::PeerInfo> out;
  for (const cluster::PeerView& v : peers) {
    api::PeerInfo p;
    p.peer_id = v.info.id;
    p.host_id = v.info.host_id;
    p.site = v.info.site;
    p.address = v.info.address;
    p.quota = v.info.quota;
    p.used = v.info.used;
    // What it can take now: quota - used, or less when its disk is short of room.
    p.room = cluster::Room(v.info);
    p.disk_room = v.info.disk_room;
    p.state = cluster::PeerStateName(v.state);
    p.node_id = v.info.node_id;
    p.cert_fingerprint = v.info.cert_fingerprint;
    p.last_seen_ns = v.last_seen_ns;
    p.self = v.self;
    if (v.self) {
      p.clock_offset_seconds = 0.0;
      p.clock_skewed = measured > 0 && 2 * off > measured;
    } else if (v.clock_offset_ms) {
      p.clock_offset_seconds = static_cast<double>(*v.clock_offset_ms) / 1000.0;
      p.clock_skewed = beyond(*v.clock_offset_ms);
    }
    p.clock_window_seconds = window_ms / 1000;
    out.push_back(std::move(p));
  }
  return api::ToJson(out);
}

}  // namespace cairn::daemon
