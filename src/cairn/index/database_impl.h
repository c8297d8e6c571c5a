// Internal to index/: the SQLite connection behind Database and small helpers for prepared
// statements and transactions. SQLite types appear only in index/ .cc files and this header.
//
// Thread-safety: Database::Impl::mu guards the connection, the statement cache and every
// Statement/Transaction; callers hold it (std::lock_guard) around each whole operation.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/index/database.h"

namespace cairn::index {

// Status for SQLite result code `rc` on `db`, with SQLite's message: RESOURCE_EXHAUSTED for a
// full disk (SQLITE_FULL), DATA_LOSS for a damaged file (SQLITE_CORRUPT "database disk image is
// malformed", SQLITE_NOTADB "file is not a database"), INTERNAL otherwise. `context` says what
// was being done.
absl::Status SqliteError(sqlite3* db, int rc, const std::string& context);
// The same mapping for result code `rc`, with the whole message `text`.
absl::Status SqliteStatus(int rc, const std::string& text);

// A prepared statement borrowed from the connection's cache (or owned, when the cached one is
// already in use by an enclosing operation). Destruction resets it and clears its bindings.
// Bind errors are remembered and returned by the next Step()/Run().
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  void BindInt(int index, int64_t value);
  void BindUint(int index, uint64_t value) { BindInt(index, static_cast<int64_t>(value)); }
  // Binds bytes (copied); an empty span binds an empty blob, not NULL.
  void BindBlob(int index, ByteSpan value);
  void BindText(int index, const std::string& value);

  // Steps once: true when a row is ready to read, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Steps to completion, ignoring rows (INSERT/UPDATE/DELETE).
  absl::Status Run();

  // Columns are 0-based, as in SQLite; valid after Step() returned true.
  int64_t ColumnInt(int column);
  uint64_t ColumnUint(int column) { return static_cast<uint64_t>(ColumnInt(column)); }
  // Valid until the next Step() or destruction.
  ByteSpan ColumnBlob(int column);
  std::string ColumnString(int column);
  bool ColumnIsNull(int column);

 private:
  friend struct Database::Impl;
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;  // cache slot flag; nullptr when this statement is owned (finalized on exit)
  int bind_rc_ = SQLITE_OK;
};

struct Database::Impl {
  ~Impl();

  // Prepares `sql` (one statement) or borrows its cached copy. Caller holds `mu`.
  absl::StatusOr<Statement> Prepare(const std::string& sql);
  // Runs one or more statements without parameters, ignoring rows. Caller holds `mu`.
  absl::Status Exec(const std::string& sql);

  std::mutex mu;
  sqlite3* db = nullptr;
  std::string path;
  int schema_version = 0;
  int opened_schema_version = 0;  // user_version found before migrating (0: a new file)

 private:
  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  std::map<std::string, CachedStatement> cache_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed. Caller holds `mu`
// for the transaction's whole life.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database::Impl* impl);
  Transaction(Transaction&& other) noexcept : impl_(other.impl_) { other.impl_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Database::Impl* impl) : impl_(impl) {}
  Database::Impl* impl_;  // nullptr once committed or rolled back
};

}  // namespace cairn::index
