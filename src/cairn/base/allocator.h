// How a peer process sets up glibc's allocator (docs/architecture.md "Memory and the
// allocator").
#pragma once

#include <cstddef>

namespace cairn {

// Settings for glibc malloc (mallopt(3)); the defaults are the peer's.
struct AllocatorTuning {
  // Arenas at most (M_ARENA_MAX); 0: one per 4 cores, at least 1. A peer runs dozens of
  // threads (upload workers, gRPC, batching senders); glibc would give each its own arena, and
  // every arena keeps freed buffers, fragmented between live ones: memory would grow with the
  // thread count, not with the work. Restoring 4 GB through 4 peers on 2 cores, a storage peer
  // held 25 MiB of heap at its peak (heaptrack) but 65-75 MiB of anonymous memory with 2
  // arenas; with 1 its peak RSS went from 96-105 to 85-90 MiB and the home peer's from
  // 133-140 to 107 MiB. More cores get more arenas so that their threads do not all queue for
  // one lock.
  int max_arenas = 0;
  // Allocations of at least this many bytes get their own mmap (M_MMAP_THRESHOLD, fixed: glibc's
  // dynamic threshold is turned off). Above every buffer of the data path (a chunk of at most
  // 8 MiB and its sealed form, a put batch, a request), so those come from the arenas.
  size_t mmap_threshold = size_t{16} << 20;
  // Free bytes an arena keeps at its top before it gives memory back (M_TRIM_THRESHOLD). With
  // glibc's default, buffers of a few MiB freed and allocated again for every batch were
  // returned and faulted in again page by page: most of the kernel time of a storage peer.
  size_t trim_threshold = size_t{32} << 20;
};

// Applies `tuning` (mallopt). Call once, at the start of main, before threads start. Does
// nothing when GLIBC_TUNABLES is set: the operator's glibc.malloc.* settings apply instead.
void TuneAllocator(const AllocatorTuning& tuning = {});

}  // namespace cairn
