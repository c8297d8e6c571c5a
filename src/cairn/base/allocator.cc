#include "cairn/base/allocator.h"

#include <malloc.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <thread>

namespace cairn {

void TuneAllocator(const AllocatorTuning& tuning) {
  // An operator's own glibc settings win (and let the settings be compared without a rebuild).
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  int arenas = tuning.max_arenas;
  if (arenas <= 0) arenas = static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 4));
  mallopt(M_ARENA_MAX, arenas);
  const auto clamp = [](size_t v) { return static_cast<int>(v > INT_MAX ? INT_MAX : v); };
  mallopt(M_MMAP_THRESHOLD, clamp(tuning.mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, clamp(tuning.trim_threshold));
}

}  // namespace cairn
