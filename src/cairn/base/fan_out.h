// FanOut: runs the n calls of one parallel step on a fixed, process-wide pool of threads (the
// data path's "no thread per chunk", docs/architecture.md "Data path"). The calling thread takes
// part: it runs calls that no pool thread has picked up yet, so a step finishes even when every
// pool thread is busy (no deadlock when steps nest or the pool is saturated) and a step of
// n = 1 never leaves the caller's thread.
//
// Thread-safety: Run may be called from any number of threads at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace cairn {

class FanOut {
 public:
  // The shared pool (kThreads threads, started on first use, never stopped: they sleep when
  // idle and die with the process).
  static FanOut& Shared();

  // Runs fn(i) for every i in [0, n) and returns their results in order once all are done.
  // Calls run concurrently on the pool and on the calling thread.
  template <typename T, typename Fn>
  std::vector<T> Map(size_t n, Fn fn) {
    std::vector<std::optional<T>> slots(n);
    Run(n, [&](size_t i) { slots[i].emplace(fn(i)); });
    std::vector<T> out;
    out.reserve(n);
    for (auto& s : slots) out.push_back(std::move(*s));
    return out;
  }

  // Runs fn(i) for every i in [0, n); returns when all calls returned.
  void Run(size_t n, const std::function<void(size_t)>& fn);

  static constexpr int kThreads = 16;

 private:
  struct Step;
  FanOut();
  void WorkerLoop();
  static void Drain(Step& step);

  std::mutex mu_;
  std::condition_variable has_work_;
  std::deque<std::shared_ptr<Step>> queue_;  // one entry per call a pool thread may take
  std::vector<std::thread> threads_;
};

}  // namespace cairn
