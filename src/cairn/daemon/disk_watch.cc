#include "cairn/daemon/disk_watch.h"

#include <algorithm>

namespace cairn::daemon {

std::optional<DiskWatch::Change> DiskWatch::Observe(const store::StoreStats& stats) {
  const std::optional<uint64_t> disk = store::DiskRoom(stats);
  if (!disk) return std::nullopt;
  const uint64_t quota_room = stats.quota - std::min(stats.quota, stats.used);
  if (!full_ && *disk < kFullBelowBytes && *disk < quota_room) {
    full_ = true;
    return Change::kBecameFull;
  }
  if (full_ && (*disk >= kClearAtBytes || *disk >= quota_room)) {
    full_ = false;
    return Change::kNoLongerFull;
  }
  return std::nullopt;
}

}  // namespace cairn::daemon
