#include "cairn/store/scrub.h"

#include <vector>

#include "cairn/base/status.h"

namespace cairn::store {

absl::StatusOr<ScrubPassResult> RunScrubPass(BlobStore* store, const ScrubPassOptions& options) {
  if (options.batch == 0) return absl::InvalidArgumentError("scrub batch must be at least 1");
  if (options.limiter != nullptr && options.sleeper == nullptr) {
    return absl::InvalidArgumentError("scrub: a rate limiter needs a sleeper");
  }
  ScrubPassResult result;
  result.counts = options.start;
  result.cursor = options.resume_after;
  auto stopped = [&] {
    return options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed);
  };
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> batch,
                           Annotate(store->ListHeld(result.cursor, options.batch), "scrub"));
    for (const BlobRecord& record : batch) {
      if (stopped()) return result;
      if (options.limiter != nullptr && !options.limiter->Acquire(record.size, options.sleeper)) {
        return result;
      }
      absl::StatusOr<ScrubOutcome> outcome = store->ScrubBlob(record.key);
      ScrubCounts& c = result.counts;
      if (!outcome.ok()) {
        ++c.errors;
        if (options.on_error) options.on_error(record.key, outcome.status());
      } else {
        switch (*outcome) {
          case ScrubOutcome::kIntact:
            break;
          case ScrubOutcome::kQuarantined:
            ++c.corrupt;
            break;
          case ScrubOutcome::kMissing:
            ++c.missing;
            break;
          case ScrubOutcome::kNotHeld:
            break;
        }
        if (*outcome != ScrubOutcome::kNotHeld) {
          ++c.checked;
          c.bytes += record.size;
        }
      }
      result.cursor = record.key;
      if (outcome.ok() && options.on_blob) options.on_blob(record.key, *outcome, c);
    }
    if (!batch.empty() && options.on_batch) {
      CAIRN_RETURN_IF_ERROR(options.on_batch(*result.cursor, result.counts));
    }
    if (batch.size() < options.batch) {
      result.complete = true;
      return result;
    }
  }
}

}  // namespace cairn::store
