// One scrub pass over a BlobStore (docs/architecture.md "Check, scrub and repair"): walk the held
// blobs in key order, in batches (BlobStore::ListHeld), re-hash each one (BlobStore::ScrubBlob,
// which quarantines a damaged blob so that it is no longer served or counted), at most `rate`
// bytes per second. A pass can stop between blobs (cancel flag, interrupted sleeper) and resume
// later after the last key it reached.
//
// Thread-safety: RunScrubPass may run concurrently with any other use of the store; callers run
// one pass at a time per store (two would only waste I/O).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/store/blob_store.h"

namespace cairn::store {

struct ScrubCounts {
  uint64_t checked = 0;  // blobs re-hashed (intact, quarantined or missing)
  uint64_t bytes = 0;    // recorded bytes of the blobs re-hashed
  uint64_t corrupt = 0;  // quarantined: bytes differed from the record
  uint64_t missing = 0;  // registered without a file: record dropped
  uint64_t errors = 0;   // could not be checked (I/O error); left as they were
};

struct ScrubPassOptions {
  size_t batch = 256;                   // blobs listed per ListHeld call (>= 1)
  std::optional<BlobKey> resume_after;  // continue a pass after this key; nullopt: from the start
  ScrubCounts start;                    // counts of the pass so far (when resuming)
  env::RateLimiter* limiter = nullptr;  // nullptr: not throttled
  env::Sleeper* sleeper = nullptr;      // required with `limiter`
  const std::atomic<bool>* cancel = nullptr;  // checked before each blob
  // After each blob (outcome kNotHeld included), with the counts so far. Runs on the pass's
  // thread; keep it cheap.
  std::function<void(const BlobKey& key, ScrubOutcome outcome, const ScrubCounts& counts)> on_blob;
  // When ScrubBlob fails, with its error (the pass goes on).
  std::function<void(const BlobKey& key, const absl::Status& error)> on_error;
  // After each batch, with the last key reached (to persist it); an error stops the pass.
  std::function<absl::Status(const BlobKey& cursor, const ScrubCounts& counts)> on_batch;
};

struct ScrubPassResult {
  ScrubCounts counts;
  bool complete = false;          // reached the end; false: stopped by cancel or the sleeper
  std::optional<BlobKey> cursor;  // last key reached (resume after it); nullopt: none yet
};

// Runs (or resumes) one pass. Errors: ListHeld's (the pass stops; resume from the options'
// position or the last on_batch cursor) and on_batch's. INVALID_ARGUMENT for batch 0 or a
// limiter without a sleeper.
absl::StatusOr<ScrubPassResult> RunScrubPass(BlobStore* store, const ScrubPassOptions& options);

}  // namespace cairn::store
