// Disaster recovery of a home peer, daemon side (docs/operations.md "Disaster recovery of a
// home peer"): `cairn recover` makes a peer directory from the recovery key, starts a Daemon on
// it in-process and calls Daemon::RecoverIndex, which waits until the cluster answers and then
// rebuilds the index from the peers (engine/recover.h).
//
// Thread-safety: value types.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "cairn/api/responses.h"
#include "cairn/engine/recover.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

struct RecoveryOptions {
  // How long to wait for the first live peer before giving up (UNAVAILABLE).
  std::chrono::milliseconds wait_for_peers{std::chrono::seconds(60)};
  // Once a peer is alive, how long the set of live peers must stay the same before listing
  // starts (peers learnt from the first one need a ping or two to be contacted); listing
  // starts at once when every known peer is alive. 0: three ping intervals, at least 2 s.
  std::chrono::milliseconds settle{0};
  engine::RecoverOptions engine;
  // Called with a line of progress ("waiting for peers", "3 peers alive", ...); may be null.
  std::function<void(const std::string&)> on_status;
};

// What a recovery did (`cairn recover --json`, the result of an index rebuild job): counts,
// complete, the peers listed and not, the snapshots and the errors that did not stop it.
api::IndexRebuildAnswer IndexRebuildAnswerOf(const engine::RecoverReport& report);

}  // namespace cairn::daemon
