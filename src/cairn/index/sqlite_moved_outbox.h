// MovedOutbox (store/blob_store.h) on the `moved_outbox` table of the peer database
// (migration 0003): BlobMoved notices a storage peer still owes to the blobs' owners after a
// reclaim handed blobs to other peers. One row per blob key (owner, chunk id, shard): Add
// replaces an earlier notice for the key and stamps it with the wall-clock time (strictly
// increasing within a process); List returns one owner's notices oldest first (queued_ns, then
// chunk id bytes and shard); Ack deletes a delivered notice only while it still names the
// delivered `to` (a key re-queued meanwhile with another peer stays queued); Owners is
// ascending by (unsigned) owner. A row whose stored chunk id is malformed makes List return
// DATA_LOSS.
// Thread-safety: thread-safe (the Database serializes access).
#pragma once

#include <memory>

#include "cairn/index/database.h"
#include "cairn/store/blob_store.h"

namespace cairn::index {

// `db` must outlive the outbox.
std::unique_ptr<store::MovedOutbox> NewSqliteMovedOutbox(Database* db);

}  // namespace cairn::index
