// SegmentRegistry (store/segment_registry.h) on the `segments` and `segment_blobs` tables of
// the peer database (migration 0005, docs/formats.md "Segments"). Apply runs one transaction
// (BEGIN IMMEDIATE ... COMMIT); with `durable` the commit runs under PRAGMA synchronous=FULL, so
// that the WAL is synced before Apply returns (the connection otherwise runs at NORMAL, where
// the last commits may be lost by a power cut but never half-applied). Lookups of live slots use
// the partial unique index on (owner, chunk_id, shard) WHERE state = 0; listings page by key
// like the `blobs` registry (owner, chunk id bytes, shard; owners compare as stored signed
// integers, UsageByOwner is re-sorted unsigned). A row whose stored ids are malformed makes the
// reading call return DATA_LOSS.
// Thread-safety: thread-safe (the Database serializes access).
#pragma once

#include <memory>

#include "cairn/index/database.h"
#include "cairn/store/segment_registry.h"

namespace cairn::index {

// `db` must outlive the registry.
std::unique_ptr<store::SegmentRegistry> NewSqliteSegmentRegistry(Database* db);

}  // namespace cairn::index
