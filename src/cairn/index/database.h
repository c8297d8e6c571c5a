// The peer's SQLite database DIR/index.db (design.md §10): WAL mode, numbered migrations from
// index/migrations/NNNN_name.sql applied in order inside transactions and recorded in
// PRAGMA user_version. SQLite types never leave index/.
//
// Thread-safety: one connection guarded by a mutex; every method is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace cairn::index {

class Database {
 public:
  // Opens or creates the database and applies pending migrations. INTERNAL with SQLite's
  // message if the file cannot be opened or is not a database; FAILED_PRECONDITION if its
  // schema is newer than this binary knows.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path);
  ~Database();

  // Schema version after migrations (number of the last applied migration).
  int SchemaVersion() const;
  // Number of the newest migration this binary carries.
  static int LatestSchemaVersion();

  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::index
