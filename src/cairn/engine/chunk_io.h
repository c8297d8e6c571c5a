// Storing one sealed chunk on N peers and fetching it back: the two primitives every engine
// (backup, restore, later check and repair) is built on.
//
// Store: walk the placement order (design.md §5) over live peers, skipping peers that already
// hold the chunk, look full, or fail, until `copies` peers hold it. Fetch: try the recorded
// holders, then the placement order over the other live peers (blobs can be found without
// the index), verifying every byte (format::OpenChunk).
//
// Thread-safety: stateless functions over a thread-safe context.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/backup.h"
#include "cairn/format/blob.h"

namespace cairn::engine {

struct StoreOutcome {
  std::vector<PeerId> holders;  // all peers known to hold the chunk afterwards
  uint64_t sent_bytes = 0;      // blob bytes sent by this call
  uint32_t new_copies = 0;
};

// Places `sealed` on peers until `copies` distinct peers hold it (counting `existing_holders`)
// and records the holders in the catalog. Returns the outcome also when fewer than `copies`
// peers could take it (the caller counts it below target); UNAVAILABLE, with every peer's
// error, when no peer holds it at all.
absl::StatusOr<StoreOutcome> StoreChunk(const EngineContext& ctx, BlobKind kind,
                                        const format::SealedChunk& sealed, uint32_t copies,
                                        const std::vector<PeerId>& existing_holders);

// Fetches, verifies and decrypts chunk `id`. NOT_FOUND/UNAVAILABLE when no peer could serve
// it; DATA_LOSS when every copy found was corrupt. The message names each peer tried.
absl::StatusOr<Bytes> FetchChunk(const EngineContext& ctx, const ChunkId& id);

}  // namespace cairn::engine
