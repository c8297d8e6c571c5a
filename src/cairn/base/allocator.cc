#include "cairn/base/allocator.h"

#include <malloc.h>

#include <climits>
#include <cstdlib>

namespace cairn {

void TuneAllocator(const AllocatorTuning& tuning) {
  // An operator's own glibc settings win (and let the settings be compared without a rebuild).
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  mallopt(M_ARENA_MAX, tuning.max_arenas);
  const auto clamp = [](size_t v) { return static_cast<int>(v > INT_MAX ? INT_MAX : v); };
  mallopt(M_MMAP_THRESHOLD, clamp(tuning.mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, clamp(tuning.trim_threshold));
}

}  // namespace cairn
