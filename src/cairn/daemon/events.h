// The peer's event stream, GET /v1/events (docs/cli.md "Local HTTP API"): membership changes
// and job starts and ends, each numbered, kept in a ring of the last kKeep for clients that
// reconnect with Last-Event-ID.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace cairn::daemon {

struct Event {
  uint64_t id = 0;   // 1, 2, ... in publication order (the SSE "id:" field)
  std::string type;  // "peer" or "job" (the SSE "event:" field)
  nlohmann::json data;
};

class EventBus {
 public:
  static constexpr size_t kKeep = 256;

  // Numbers the event, keeps it (dropping the oldest beyond kKeep) and wakes the waiters.
  void Publish(const std::string& type, nlohmann::json data);

  // The id of the newest event published (0 before any).
  uint64_t last_id();

  struct Batch {
    std::vector<Event> events;  // ids above `after`, oldest first
    // Events after `after` that were dropped from the ring before they were read (the
    // reader fell more than kKeep events behind).
    uint64_t missed = 0;
    bool closed = false;  // Close() was called
  };
  // The kept events with ids above `after`; waits until there is one, Close() is called or
  // `timeout` passes (then an empty batch).
  Batch WaitAfter(uint64_t after, std::chrono::milliseconds timeout);

  // Wakes every waiter; WaitAfter answers at once from now on. Idempotent.
  void Close();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> ring_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
};

}  // namespace cairn::daemon
