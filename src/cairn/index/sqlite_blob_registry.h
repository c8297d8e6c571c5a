// BlobRegistry (store/blob_store.h) on the `blobs` table of the peer database. Add replaces
// an existing record and stamps it with the wall-clock time; Remove of an unknown key is OK
// (idempotent); Totals is one SUM/COUNT query (quota stays 0: the store owns it); ForEach
// visits records in key order, reading pages of rows and calling `fn` without holding the
// database lock, so `fn` may call back into the registry. List returns one such page: keys
// after a given key in (owner, chunk id bytes, shard) order, one indexed range query (scrub
// walks the registry with it and resumes after a restart). A row whose stored ids are
// malformed makes Find/ForEach/List return DATA_LOSS.
// Thread-safety: thread-safe (the Database serializes access).
#pragma once

#include <memory>

#include "cairn/index/database.h"
#include "cairn/store/blob_store.h"

namespace cairn::index {

// `db` must outlive the registry.
std::unique_ptr<store::BlobRegistry> NewSqliteBlobRegistry(Database* db);

}  // namespace cairn::index
