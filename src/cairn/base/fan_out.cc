#include "cairn/base/fan_out.h"

namespace cairn {

struct FanOut::Step {
  size_t n = 0;
  const std::function<void(size_t)>* fn = nullptr;
  std::atomic<size_t> next{0};  // the next call to start
  std::mutex mu;
  std::condition_variable all_done;
  size_t done = 0;  // guarded by mu
};

FanOut& FanOut::Shared() {
  static FanOut* pool = new FanOut();  // never destroyed: threads outlive static destructors
  return *pool;
}

FanOut::FanOut() {
  for (int i = 0; i < kThreads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  for (auto& t : threads_) t.detach();
}

void FanOut::Drain(Step& step) {
  size_t ran = 0;
  for (size_t i; (i = step.next.fetch_add(1)) < step.n;) {
    (*step.fn)(i);
    ++ran;
  }
  if (ran == 0) return;
  std::lock_guard lock(step.mu);
  step.done += ran;
  if (step.done == step.n) step.all_done.notify_all();
}

void FanOut::WorkerLoop() {
  while (true) {
    std::shared_ptr<Step> step;
    {
      std::unique_lock lock(mu_);
      has_work_.wait(lock, [&] { return !queue_.empty(); });
      step = std::move(queue_.front());
      queue_.pop_front();
    }
    Drain(*step);
  }
}

void FanOut::Run(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  auto step = std::make_shared<Step>();
  step->n = n;
  step->fn = &fn;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 1; i < n; ++i) queue_.push_back(step);
  }
  if (n == 2) {
    has_work_.notify_one();
  } else {
    has_work_.notify_all();
  }
  Drain(*step);
  std::unique_lock lock(step->mu);
  step->all_done.wait(lock, [&] { return step->done == step->n; });
  // Queue entries of this step that no thread took yet find nothing left to run; `fn` is not
  // touched after this point because every call has returned (next >= n for late takers).
}

}  // namespace cairn
