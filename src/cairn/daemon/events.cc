#include "cairn/daemon/events.h"

#include <utility>

namespace cairn::daemon {

void EventBus::Publish(const std::string& type, nlohmann::json data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Event e;
    e.id = next_id_++;
    e.type = type;
    e.data = std::move(data);
    ring_.push_back(std::move(e));
    while (ring_.size() > kKeep) ring_.pop_front();
  }
  cv_.notify_all();
}

uint64_t EventBus::last_id() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_id_ - 1;
}

EventBus::Batch EventBus::WaitAfter(uint64_t after, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || next_id_ - 1 > after; });
  Batch b;
  b.closed = closed_;
  for (const Event& e : ring_) {
    if (e.id > after) b.events.push_back(e);
  }
  const uint64_t first = b.events.empty() ? next_id_ : b.events.front().id;
  if (first > after + 1 && next_id_ - 1 > after) b.missed = first - after - 1;
  return b;
}

void EventBus::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace cairn::daemon
