// The catalog on SQLite: the index module's implementation of the catalog port
// (ports/catalog.h).
#pragma once

#include <memory>

#include "cairn/ports/catalog.h"

namespace cairn::index {

class Database;

// The port's types, under the names the index has always used for them.
using ports::Catalog;
using ports::CatalogStats;
using ports::ChunkRecord;
using ports::ChunkShard;
using ports::ChunkTarget;
using ports::MoveOutcome;
using ports::NewMemCatalog;
using ports::ShardHolder;
using ports::SnapshotRecord;

// Catalog on SQLite tables in `db` (which must outlive it).
std::unique_ptr<Catalog> NewSqliteCatalog(Database* db);

}  // namespace cairn::index
