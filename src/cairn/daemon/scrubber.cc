#include "cairn/daemon/scrubber.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"

namespace cairn::daemon {
namespace {

using Json = nlohmann::json;
using std::chrono::nanoseconds;

// Version of the JSON kept under kMetaScrubState.
constexpr int kStateVersion = 1;

// After a failed pass (e.g. the registry could not be read), retry this much later (or after
// `interval` if shorter).
constexpr std::chrono::minutes kRetryAfterError{1};

Json CountsJson(const store::ScrubCounts& c) {
  return Json{{"checked", c.checked},
              {"bytes", c.bytes},
              {"corrupt", c.corrupt},
              {"missing", c.missing},
              {"errors", c.errors}};
}

store::ScrubCounts CountsFromJson(const Json& j) {
  store::ScrubCounts c;
  c.checked = j.at("checked").get<uint64_t>();
  c.bytes = j.at("bytes").get<uint64_t>();
  c.corrupt = j.at("corrupt").get<uint64_t>();
  c.missing = j.at("missing").get<uint64_t>();
  c.errors = j.at("errors").get<uint64_t>();
  return c;
}

Json SummaryJson(const ScrubPassSummary& s) {
  Json j = CountsJson(s.counts);
  j["started_ns"] = s.started_ns;
  j["finished_ns"] = s.finished_ns;
  return j;
}

ScrubPassSummary SummaryFromJson(const Json& j) {
  ScrubPassSummary s;
  s.counts = CountsFromJson(j);
  s.started_ns = j.at("started_ns").get<int64_t>();
  s.finished_ns = j.at("finished_ns").get<int64_t>();
  return s;
}

Json KeyJson(const BlobKey& key) {
  return Json{{"owner", key.owner}, {"chunk", key.chunk.Hex()}, {"shard", key.shard}};
}

absl::StatusOr<BlobKey> KeyFromJson(const Json& j) {
  BlobKey key;
  key.owner = j.at("owner").get<PeerId>();
  CAIRN_ASSIGN_OR_RETURN(key.chunk, ChunkId::FromHex(j.at("chunk").get<std::string>()));
  key.shard = j.at("shard").get<uint32_t>();
  return key;
}

std::string CountsText(const store::ScrubCounts& c) {
  return absl::StrCat(c.checked, " blobs (", FormatSize(c.bytes), ") checked, ", c.corrupt,
                      " corrupt (quarantined), ", c.missing, " missing, ", c.errors, " errors");
}

}  // namespace

ScrubberOptions ScrubberOptionsFrom(const Config& config) {
  ScrubberOptions o;
  o.enabled = config.scrub_enabled;
  o.interval = config.scrub_interval;
  o.rate = config.scrub_rate;
  return o;
}

Scrubber::Scrubber(store::BlobStore* store, index::Catalog* catalog, ScrubberOptions options)
    : store_(store),
      catalog_(catalog),
      options_(options),
      own_sleeper_(options.sleeper ? nullptr : std::make_unique<env::InterruptibleSleeper>()),
      sleeper_(options.sleeper ? options.sleeper : own_sleeper_.get()),
      limiter_(options.rate, options.rate, options.clock) {}

absl::StatusOr<std::unique_ptr<Scrubber>> Scrubber::Create(store::BlobStore* store,
                                                           index::Catalog* catalog,
                                                           ScrubberOptions options) {
  if (options.clock == nullptr) options.clock = env::RealClock::Default();
  options.batch = std::max<size_t>(options.batch, 1);
  std::unique_ptr<Scrubber> s(new Scrubber(store, catalog, options));
  CAIRN_RETURN_IF_ERROR(Annotate(s->Load(), "scrub: load state"));
  return s;
}

Scrubber::~Scrubber() { Stop(); }

absl::Status Scrubber::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State{};
  std::optional<std::string> saved;
  if (catalog_ != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(saved, catalog_->GetMeta(kMetaScrubState));
  }
  if (saved) {
    try {
      Json j = Json::parse(*saved);
      if (j.at("version").get<int>() != kStateVersion) throw std::runtime_error("unknown version");
      State st;
      st.since_ns = j.at("since_ns").get<int64_t>();
      if (!j.at("current").is_null()) st.current = SummaryFromJson(j.at("current"));
      if (!j.at("cursor").is_null()) {
        auto key = KeyFromJson(j.at("cursor"));
        if (!key.ok()) throw std::runtime_error(std::string(key.status().message()));
        st.cursor = *key;
      }
      if (!j.at("last").is_null()) st.last = SummaryFromJson(j.at("last"));
      state_ = st;
      return absl::OkStatus();
    } catch (const std::exception& e) {
      spdlog::warn("scrub: ignoring unreadable saved state ({}); starting afresh", e.what());
      state_ = State{};
    }
  }
  state_.since_ns = options_.clock->NowNanos();
  return SaveLocked();
}

absl::Status Scrubber::SaveLocked() {
  if (catalog_ == nullptr) return absl::OkStatus();
  Json j;
  j["version"] = kStateVersion;
  j["since_ns"] = state_.since_ns;
  j["current"] = state_.current ? SummaryJson(*state_.current) : Json(nullptr);
  j["cursor"] = state_.cursor ? KeyJson(*state_.cursor) : Json(nullptr);
  j["last"] = state_.last ? SummaryJson(*state_.last) : Json(nullptr);
  return catalog_->SetMeta(kMetaScrubState, j.dump());
}

void Scrubber::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!options_.enabled || started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void Scrubber::Stop() {
  std::call_once(stop_once_, [this] {
    stopping_ = true;
    sleeper_->Interrupt();
    if (thread_.joinable()) thread_.join();
    // A pass run by another thread (RunPass) sees stopping_ between blobs; wait for it.
    std::lock_guard<std::mutex> pass_lock(pass_mu_);
  });
}

nanoseconds Scrubber::TimeUntilNextPass() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.current) return nanoseconds(0);
  const int64_t interval = nanoseconds(options_.interval).count();
  const int64_t base = state_.last ? state_.last->finished_ns : state_.since_ns;
  // Clamped to one interval in case the wall clock went backwards.
  return nanoseconds(
      std::clamp<int64_t>(base + interval - options_.clock->NowNanos(), 0, interval));
}

void Scrubber::Loop() {
  while (!stopping_) {
    nanoseconds wait = TimeUntilNextPass();
    if (wait.count() > 0) {
      // Re-evaluated after the sleep: the wall clock may have moved differently.
      if (!sleeper_->SleepFor(wait)) return;
      continue;
    }
    absl::StatusOr<ScrubPassSummary> pass = RunPass();
    if (!pass.ok()) {
      if (absl::IsCancelled(pass.status())) return;
      spdlog::warn("scrub pass failed: {}", api::SanitizeUtf8(pass.status().ToString()));
      auto retry = std::min<nanoseconds>(options_.interval, kRetryAfterError);
      if (!sleeper_->SleepFor(retry)) return;
    }
  }
}

absl::StatusOr<ScrubPassSummary> Scrubber::RunPass() {
  std::unique_lock<std::mutex> pass_lock(pass_mu_, std::try_to_lock);
  if (!pass_lock.owns_lock()) {
    return absl::FailedPreconditionError("a scrub pass is already running");
  }
  if (stopping_) return absl::CancelledError("scrubber stopped");

  store::ScrubPassOptions o;
  bool resumed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.current) {
      state_.current = ScrubPassSummary{options_.clock->NowNanos(), 0, {}};
      state_.cursor.reset();
    } else {
      resumed = true;
    }
    o.resume_after = state_.cursor;
    o.start = state_.current->counts;
    running_ = true;
    absl::Status saved = SaveLocked();
    if (!saved.ok()) spdlog::warn("scrub: cannot save state: {}", saved.ToString());
  }
  store::StoreStats held = store_->Stats();
  if (resumed) {
    spdlog::info("scrub pass resumed after {} blobs", o.start.checked);
  } else {
    spdlog::info("scrub pass started: {} blobs ({}) held, at most {}/s", held.blobs,
                 FormatSize(held.used), FormatSize(options_.rate));
  }

  o.batch = options_.batch;
  o.limiter = &limiter_;
  o.sleeper = sleeper_;
  o.cancel = &stopping_;
  o.on_blob = [this](const BlobKey& key, store::ScrubOutcome, const store::ScrubCounts& counts) {
    std::lock_guard<std::mutex> lock(mu_);
    if (options_.on_checked) {
      const store::ScrubCounts& was = state_.current->counts;
      options_.on_checked(store::ScrubCounts{
          counts.checked - was.checked, counts.bytes - was.bytes, counts.corrupt - was.corrupt,
          counts.missing - was.missing, counts.errors - was.errors});
    }
    state_.current->counts = counts;
    state_.cursor = key;
  };
  o.on_error = [](const BlobKey& key, const absl::Status& error) {
    spdlog::warn("scrub: cannot check blob {}: {}", key.DebugString(),
                 api::SanitizeUtf8(error.ToString()));
  };
  o.on_batch = [this](const BlobKey&, const store::ScrubCounts&) {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status saved = SaveLocked();
    // Losing the position only costs re-checking on a restart: keep scrubbing.
    if (!saved.ok()) spdlog::warn("scrub: cannot save state: {}", saved.ToString());
    return absl::OkStatus();
  };
  absl::StatusOr<store::ScrubPassResult> result = store::RunScrubPass(store_, o);

  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
  if (result.ok()) {
    state_.current->counts = result->counts;
    state_.cursor = result->cursor;
  }
  ScrubPassSummary summary = *state_.current;
  if (result.ok() && result->complete) {
    summary.finished_ns = options_.clock->NowNanos();
    state_.last = summary;
    state_.current.reset();
    state_.cursor.reset();
  }
  absl::Status saved = SaveLocked();
  if (!saved.ok()) spdlog::warn("scrub: cannot save state: {}", saved.ToString());
  if (!result.ok()) return result.status();
  if (!result->complete) {
    spdlog::info("scrub pass paused: {} so far", CountsText(summary.counts));
    return summary;
  }
  if (options_.on_pass_done) options_.on_pass_done();
  double seconds = static_cast<double>(summary.finished_ns - summary.started_ns) / 1e9;
  if (summary.counts.corrupt + summary.counts.missing > 0) {
    spdlog::warn("scrub pass done in {:.1f}s: {}", seconds, CountsText(summary.counts));
  } else {
    spdlog::info("scrub pass done in {:.1f}s: {}", seconds, CountsText(summary.counts));
  }
  return summary;
}

namespace {
api::ScrubPassInfo PassInfo(const store::ScrubCounts& c, int64_t started_ns) {
  api::ScrubPassInfo p;
  p.checked = c.checked;
  p.bytes = c.bytes;
  p.corrupt = c.corrupt;
  p.missing = c.missing;
  p.errors = c.errors;
  p.started = api::FormatRfc3339(started_ns);
  return p;
}
}  // namespace

api::ScrubStatus Scrubber::Status() {
  store::StoreStats stats = store_->Stats();
  nanoseconds wait = TimeUntilNextPass();
  std::lock_guard<std::mutex> lock(mu_);
  api::ScrubStatus r;
  r.enabled = options_.enabled;
  r.interval = FormatDuration(options_.interval);
  r.rate = options_.rate;
  r.running = running_;
  if (state_.last) {
    const ScrubPassSummary& s = *state_.last;
    api::ScrubPassInfo& last = r.last_pass.emplace(PassInfo(s.counts, s.started_ns));
    last.finished = api::FormatRfc3339(s.finished_ns);
    last.finished_ns = s.finished_ns;
    last.seconds = static_cast<double>(s.finished_ns - s.started_ns) / 1e9;
  }
  if (state_.current) r.current_pass = PassInfo(state_.current->counts, state_.current->started_ns);
  if (options_.enabled && !running_) {
    const int64_t next_ns = options_.clock->NowNanos() + wait.count();
    r.next_pass = api::FormatRfc3339(next_ns);
    r.next_pass_ns = next_ns;
  }
  r.quarantined = stats.quarantined;
  r.quarantined_bytes = stats.quarantined_bytes;
  return r;
}

}  // namespace cairn::daemon
