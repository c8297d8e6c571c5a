// Opening the peer database DIR/index.db at start, and noticing when it was lost or damaged
// (docs/operations.md "When the index is damaged"). The index is a cache: the home catalog can
// be rebuilt from the peers (engine/recover.h) and the storage registry from the segments
// (store/segment_blob_store.h), so a damaged file is moved aside and a new one made rather than
// refusing to start.
//
//  - missing: an initialized peer directory always has one (`cairn init` makes it);
//  - empty: 0 bytes, or a file without any schema (SQLite reads both as a new database);
//  - damaged: SQLite refuses it ("file is not a database", "database disk image is
//    malformed") or `PRAGMA quick_check` finds problems.
//
// A damaged or empty file is renamed to index.db.damaged-YYYYMMDDTHHMMSSZ (its -wal beside it
// with the same name plus "-wal"; the -shm, which only caches the WAL index, is removed). Other
// failures to open (permissions, I/O errors, a schema newer than this cairn) are returned as
// they are: nothing is moved.
//
// Thread-safety: stateless.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/index/database.h"

namespace cairn::daemon {

struct IndexOpenReport {
  // Empty when index.db opened intact with a schema; otherwise what was wrong, e.g.
  // "index.db is missing", "index.db is empty (0 bytes)", "index.db is damaged: ...".
  std::string problem;
  // Where the damaged or empty file was moved; empty when nothing was moved.
  std::string kept_aside;
};

// Opens DIR/index.db as described above; fills `report` (not null). Errors: those of
// index::Database::Open for a new file, and of renaming the damaged one; FAILED_PRECONDITION and
// INTERNAL from opening an existing file (other than damage) unchanged.
absl::StatusOr<std::unique_ptr<index::Database>> OpenIndex(const std::string& dir,
                                                           IndexOpenReport* report);

}  // namespace cairn::daemon
