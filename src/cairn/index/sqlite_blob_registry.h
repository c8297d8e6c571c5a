// BlobRegistry (store/blob_store.h) on the `blobs` table of the peer database.
// Thread-safety: thread-safe (the Database serializes access).
#pragma once

#include <memory>

#include "cairn/index/database.h"
#include "cairn/store/blob_store.h"

namespace cairn::index {

// `db` must outlive the registry.
std::unique_ptr<store::BlobRegistry> NewSqliteBlobRegistry(Database* db);

}  // namespace cairn::index
