// BlobRegistry (store/blob_store.h) on the `blobs` table of the peer database. Add replaces
// an existing record and stamps it with the wall-clock time; Remove of an unknown key is OK
// (idempotent); Totals is one SUM/COUNT query (quota stays 0: the store owns it); ForEach
// visits records in key order, reading pages of rows and calling `fn` without holding the
// database lock, so `fn` may call back into the registry. List returns one such page: keys
// after a given key in (owner, chunk id bytes, shard) order, one indexed range query (scrub
// walks the registry with it and resumes after a restart). A row whose stored ids are
// malformed makes Find/ForEach/List return DATA_LOSS.
//
// Extra copies (column `blobs.extra`, migration 0003): Add stores record.extra;
// SetExtra flips it (NOT_FOUND for an unknown key) and keeps stored_ns; ListExtras walks the
// extra records in eviction order, ORDER BY stored_ns then key (index blobs_extra; Add makes
// stored_ns strictly increasing within a process); ListOwner pages one owner's records in
// (chunk id bytes, shard) order after (after->chunk, after->shard) — after's owner is ignored;
// UsageByOwner is one GROUP BY query, returned ascending by (unsigned) owner.
// Thread-safety: thread-safe (the Database serializes access).
#pragma once

#include <memory>

#include "cairn/index/database.h"
#include "cairn/store/blob_store.h"

namespace cairn::index {

// `db` must outlive the registry.
std::unique_ptr<store::BlobRegistry> NewSqliteBlobRegistry(Database* db);

}  // namespace cairn::index
