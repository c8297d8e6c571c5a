// How a peer process sets up glibc's allocator (docs/architecture.md "Memory and the
// allocator").
#pragma once

#include <cstddef>

namespace cairn {

// Settings for glibc malloc (mallopt(3)); the defaults are the peer's.
struct AllocatorTuning {
  // Arenas at most (M_ARENA_MAX). A peer runs dozens of threads (upload workers, gRPC,
  // batching senders); glibc would give each its own arena, and every arena keeps freed
  // buffers: memory would grow with the thread count, not with the work. With 2 rather than 4,
  // a restore of 2.4 GB peaked at 99 MiB instead of 126-135 on the home peer and 71-77 instead
  // of 83-95 on storage peers, at the same speed.
  int max_arenas = 2;
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
