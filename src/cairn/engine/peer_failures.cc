#include "cairn/engine/peer_failures.h"

namespace cairn::engine {

void PeerFailures::Failed(PeerId id) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard lock(mu_);
  since_.emplace(id, now);  // keeps the first failure's time
}

void PeerFailures::Succeeded(PeerId id) {
  std::lock_guard lock(mu_);
  since_.erase(id);
}

bool PeerFailures::Failing(PeerId id) {
  std::lock_guard lock(mu_);
  return since_.count(id) != 0;
}

std::optional<int64_t> PeerFailures::FailingForNanos(PeerId id) {
  std::lock_guard lock(mu_);
  auto it = since_.find(id);
  if (it == since_.end()) return std::nullopt;
  return clock_->MonotonicNanos() - it->second;
}

}  // namespace cairn::engine
