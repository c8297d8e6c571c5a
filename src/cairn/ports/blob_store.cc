#include "cairn/ports/blob_store.h"

namespace cairn::ports {

const char* ScrubOutcomeName(ScrubOutcome outcome) {
  switch (outcome) {
    case ScrubOutcome::kIntact:
      return "intact";
    case ScrubOutcome::kQuarantined:
      return "quarantined";
    case ScrubOutcome::kMissing:
      return "missing";
    case ScrubOutcome::kNotHeld:
      return "not held";
  }
  return "unknown";
}

}  // namespace cairn::ports
