// The peer's SQLite database DIR/index.db (docs/formats.md "Peer database `DIR/index.db`"): WAL
// mode, numbered migrations from index/migrations/NNNN_name.sql applied in order inside
// transactions and recorded in PRAGMA user_version. SQLite types never leave index/.
//
// Thread-safety: one connection guarded by a mutex; every method is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace cairn::index {

class Database {
 public:
  // Opens or creates the database and applies pending migrations. DATA_LOSS with SQLite's
  // message if the file is not a database or is damaged where opening reads it ("file is not
  // a database", "database disk image is malformed"); INTERNAL if it cannot be opened for
  // other reasons (permissions, I/O); FAILED_PRECONDITION if its schema is newer than this
  // binary knows. Queries on a database damaged elsewhere fail later with DATA_LOSS.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path);
  ~Database();

  // SQLite's `PRAGMA quick_check` (sqlite.org/pragma.html#pragma_quick_check): reads every page
  // of the file and checks the b-tree structure (not index contents against tables), in time
  // linear in the file's size. OK when intact; DATA_LOSS naming up to 10 problems otherwise.
  absl::Status QuickCheck();

  // Schema version after migrations (number of the last applied migration).
  int SchemaVersion() const;
  // Schema version the file had when Open read it, before migrating: 0 for a file Open
  // created (or found empty), which never held anything.
  int OpenedSchemaVersion() const;
  // Number of the newest migration this binary carries.
  static int LatestSchemaVersion();

  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::index
