// DiskWatch: notices when the disk holding a peer's store is full — it, not the quota, keeps
// puts out — and when that ends, so that the daemon logs each once, not once per refused put
// (docs/operations.md "A full disk").
//
// Full: the disk's room (free space minus the store's reserve, store::DiskRoom) is below
// kFullBelowBytes and below the quota's room (quota - used): a peer whose quota is nearly used
// up is not "disk full". Over again once the room is at least kClearAtBytes or no longer below
// the quota's room (the gap keeps a room hovering at the threshold from logging on every
// check).
//
// Thread-safety: not thread-safe; one caller (the ping loop).
#pragma once

#include <cstdint>
#include <optional>

#include "cairn/store/blob_store.h"

namespace cairn::daemon {

class DiskWatch {
 public:
  // Twice the largest blob a put carries (an 8 MiB chunk and its envelope): below it, puts of
  // large chunks are refused.
  static constexpr uint64_t kFullBelowBytes = 16ull << 20;
  static constexpr uint64_t kClearAtBytes = 2 * kFullBelowBytes;

  enum class Change { kBecameFull, kNoLongerFull };

  // Takes the store's current stats; returns a change of state, nullopt when none. Stats
  // without a known free space change nothing.
  std::optional<Change> Observe(const store::StoreStats& stats);
  bool full() const { return full_; }

 private:
  bool full_ = false;
};

}  // namespace cairn::daemon
