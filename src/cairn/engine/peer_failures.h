// PeerFailures: which peers could not be reached lately (a call ended in UNAVAILABLE or
// DEADLINE_EXCEEDED after the client's retries) and since when. Chunk fetches use it to try
// the holders that answer first, so that one dead peer does not make every chunk wait on its
// timeouts, and to stop retrying a peer that has been unreachable for longer than their retry
// budget (docs/architecture.md "Holders and retries").
//
// A peer is failing from its first failure until a call to it succeeds. Times are monotonic
// (env::Clock::MonotonicNanos).
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "cairn/base/ids.h"
#include "cairn/env/clock.h"

namespace cairn::engine {

class PeerFailures {
 public:
  // `clock` must outlive this object.
  explicit PeerFailures(env::Clock* clock) : clock_(clock) {}

  // A call to `id` failed because the peer could not be reached.
  void Failed(PeerId id);
  // A call to `id` was answered: it is no longer failing.
  void Succeeded(PeerId id);
  // True while `id` is failing.
  bool Failing(PeerId id);
  // Nanoseconds since `id` began failing; nullopt when it is not failing.
  std::optional<int64_t> FailingForNanos(PeerId id);

 private:
  env::Clock* const clock_;
  std::mutex mu_;
  std::map<PeerId, int64_t> since_;  // failing peer -> monotonic ns of its first failure
};

}  // namespace cairn::engine
