// Restore engine and snapshot browsing (docs/architecture.md "Restore data flow"): snapshot ->
// trees -> chunk ids -> holders (catalog; else placement order over live peers) -> GetBlob from
// any copy -> verify (checksum at the peer; GCM tag and chunk id here) -> decrypt -> decompress
// -> write.
//
// The tree walker starts each chunk's fetch from its first holder as it queues the chunk
// (read-ahead: StartFetchChunk, so many chunks per peer travel in one GetBlobs batch, up to
// read_ahead_bytes of plaintext queued); a pool of workers waits for each answer, opens it (or
// falls back to every other holder: FinishFetchChunk) and writes it at its offset (pwrite), so
// one large file and many small ones both keep every worker busy. Chunks stored as shards go to
// a second pool (erasure_threads) whose workers fetch them whole. Memory is bounded by
// read_ahead_bytes plus (threads + erasure_threads) x max chunk size. Regular files are written
// first, then hard links, then directory modes and mtimes deepest first.
//
// Thread-safety: stateless apart from the context; concurrent restores are fine.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/context.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {

struct RestoreOptions {
  std::string path;    // inside the snapshot; "" = everything
  std::string target;  // directory; created if missing. Entry `a/b` is written to target/b
                       // when path is "a/b", and each root entry to target/<name> otherwise.
  // Workers that wait for, open and write the chunks read ahead (stored as copies): their
  // fetches are already on their way (GetBlobs batches, net/batching_peer_client.h), so a few
  // suffice; more only contend in the kernel for the directories they create files in.
  int threads = 4;
  // Workers for chunks stored as k+m shards, which are not read ahead: each fetches its chunk's
  // shards (k at a time, in parallel) and waits, so these workers are how many such chunks are
  // in flight.
  int erasure_threads = 12;
  // Plaintext bytes of chunks whose fetch has started and that are not written yet, at most
  // (a single larger chunk goes alone).
  size_t read_ahead_bytes = size_t{32} << 20;
  bool restore_owner = true;  // chown when running as root
};

struct RestoreProgress {
  std::atomic<uint64_t> files_total{0};
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};
};

struct RestoreResult {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<std::string> errors;  // paths that could not be restored (exit 3: partial)
};

// Restores a snapshot (or a path in it). Returns the result also when some files failed
// (listed in errors); NOT_FOUND when `path` is not in the snapshot; CANCELLED on cancel.
absl::StatusOr<RestoreResult> Restore(const EngineContext& ctx, const format::Snapshot& snapshot,
                                      const RestoreOptions& options, RestoreProgress* progress,
                                      const std::atomic<bool>* cancel = nullptr);

}  // namespace cairn::engine
