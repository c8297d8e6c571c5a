// Scrubber: the storage peer's background scrub (docs/architecture.md "Check, scrub and repair").
// A pass re-hashes every blob the peer holds (store::RunScrubPass) at most `rate` bytes per
// second; the store quarantines a damaged blob (not served, not counted) so that its owner's
// next check or repair sees it missing. Passes run one at a time, `interval` apart (from the end
// of one to the start of the next; the first one `interval` after the scrubber first ran in this
// peer directory).
//
// The state — the unfinished pass (where it stopped, its counts so far) and the last finished
// pass — is kept in the catalog's meta table under kMetaScrubState (JSON), saved after each
// batch, when a pass stops and when it ends. A restart therefore resumes an unfinished pass
// after the last batch it saved (at most one batch is checked twice) instead of starting over,
// and does not start a new pass before `interval` has passed since the last one ended.
//
// Thread-safety: thread-safe. Stop() is final.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "cairn/api/responses.h"
#include "cairn/daemon/config.h"
#include "cairn/env/clock.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/index/catalog.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/scrub.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

inline constexpr char kMetaScrubState[] = "scrub.state";

struct ScrubberOptions {
  bool enabled = true;                             // run passes on the schedule (Start)
  std::chrono::milliseconds interval{86'400'000};  // from the end of a pass to the next
  uint64_t rate = 20ull << 20;                     // bytes per second (also the burst)
  size_t batch = 256;                              // blobs per listing and per state save
  env::Clock* clock = env::RealClock::Default();
  env::Sleeper* sleeper = nullptr;  // nullptr: a real InterruptibleSleeper
  // Metrics (docs/operations.md "Monitoring"), called on the pass's thread: after each blob
  // with what it added to the pass's counts, and when a pass finishes. Null: not called.
  std::function<void(const store::ScrubCounts& delta)> on_checked;
  std::function<void()> on_pass_done;
};

// The [scrub] settings of a peer's config.
ScrubberOptions ScrubberOptionsFrom(const Config& config);

struct ScrubPassSummary {
  int64_t started_ns = 0;   // wall clock, ns since the Unix epoch
  int64_t finished_ns = 0;  // 0 while the pass is unfinished
  store::ScrubCounts counts;
};

class Scrubber {
 public:
  // `store` and `catalog` must outlive the scrubber; `catalog` may be null (state not kept).
  // Loads the saved state; a garbled one is logged and replaced. Errors: the catalog's.
  static absl::StatusOr<std::unique_ptr<Scrubber>> Create(store::BlobStore* store,
                                                          index::Catalog* catalog,
                                                          ScrubberOptions options);
  ~Scrubber();

  // Starts the background loop when enabled (else does nothing). Once.
  void Start();
  // Stops the loop and any pass in progress (between two blobs), saves where it stopped and
  // joins. Idempotent; afterwards RunPass answers CANCELLED.
  void Stop();

  // Runs one pass now on the calling thread, resuming the unfinished one if any. Returns its
  // summary (finished_ns == 0 if Stop() interrupted it). FAILED_PRECONDITION while another pass
  // runs; CANCELLED after Stop(); ListHeld errors (the pass stays unfinished).
  absl::StatusOr<ScrubPassSummary> RunPass();

  // For GET /v1/status ("scrub", api::ScrubStatus): next_pass is null when disabled or
  // running; last_pass carries finished, finished_ns and seconds.
  api::ScrubStatus Status();

  // How long until the next pass is due (0: now).
  std::chrono::nanoseconds TimeUntilNextPass();

 private:
  struct State {
    int64_t since_ns = 0;                     // first run in this peer directory
    std::optional<ScrubPassSummary> current;  // unfinished pass
    std::optional<BlobKey> cursor;            // last key the unfinished pass reached
    std::optional<ScrubPassSummary> last;     // last finished pass
  };

  Scrubber(store::BlobStore* store, index::Catalog* catalog, ScrubberOptions options);
  absl::Status Load();
  absl::Status SaveLocked();  // mu_ held
  void Loop();

  store::BlobStore* const store_;
  index::Catalog* const catalog_;
  const ScrubberOptions options_;
  std::unique_ptr<env::InterruptibleSleeper> own_sleeper_;
  env::Sleeper* sleeper_;
  env::RateLimiter limiter_;

  std::mutex pass_mu_;  // held by the running pass
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards state_, running_, started_
  State state_;
  bool running_ = false;
  bool started_ = false;
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace cairn::daemon
