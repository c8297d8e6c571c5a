#include "cairn/index/database.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/status.h"
#include "cairn/index/database_impl.h"
#include "cairn/index/migrations.h"

namespace cairn::index {

absl::Status SqliteError(sqlite3* db, int rc, const std::string& context) {
  // sqlite3_errmsg describes the most recent failure on `db`; fall back to the code's text.
  std::string message =
      db != nullptr && sqlite3_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return SqliteStatus(rc, absl::StrCat(context, ": ", message));
}

absl::Status SqliteStatus(int rc, const std::string& text) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    default:
      return absl::InternalError(text);
  }
}

// ---- Statement ----

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use)
    : db_(db), stmt_(stmt), in_use_(in_use) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), in_use_(other.in_use_), bind_rc_(other.bind_rc_) {
  other.stmt_ = nullptr;
  other.in_use_ = nullptr;
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

void Statement::BindInt(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindBlob(int index, ByteSpan value) {
  // A null pointer would bind SQL NULL; an empty blob needs zeroblob(0).
  int rc = value.empty()
               ? sqlite3_bind_zeroblob(stmt_, index, 0)
               : sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindText(int index, const std::string& value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) {
    return SqliteError(nullptr, bind_rc_, absl::StrCat("bind parameters of: ", sqlite3_sql(stmt_)));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, absl::StrCat("sqlite: ", sqlite3_sql(stmt_)));
}

absl::Status Statement::Run() {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

int64_t Statement::ColumnInt(int column) { return sqlite3_column_int64(stmt_, column); }

ByteSpan Statement::ColumnBlob(int column) {
  // Order matters: sqlite3_column_blob first, then _bytes (SQLite docs, "Result Values").
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return ByteSpan();
  return ByteSpan(static_cast<const uint8_t*>(data), static_cast<size_t>(size));
}

std::string Statement::ColumnString(int column) {
  return std::string(AsString(ColumnBlob(column)));
}

bool Statement::ColumnIsNull(int column) {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// ---- Database::Impl ----

Database::Impl::~Impl() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  if (db != nullptr) sqlite3_close_v2(db);
}

absl::StatusOr<Statement> Database::Impl::Prepare(const std::string& sql) {
  CachedStatement& slot = cache_[sql];
  if (slot.stmt != nullptr && !slot.in_use) {
    slot.in_use = true;
    return Statement(db, slot.stmt, &slot.in_use);
  }
  sqlite3_stmt* stmt = nullptr;
  bool cache_it = slot.stmt == nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1),
                              cache_it ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    if (cache_it) cache_.erase(sql);
    sqlite3_finalize(stmt);
    return SqliteError(db, rc, absl::StrCat("prepare: ", sql));
  }
  if (!cache_it) return Statement(db, stmt, nullptr);  // the cached one is busy (nested use)
  slot.stmt = stmt;
  slot.in_use = true;
  return Statement(db, stmt, &slot.in_use);
}

absl::Status Database::Impl::Exec(const std::string& sql) {
  // Transaction control (BEGIN, COMMIT, ROLLBACK), run around every read and write, goes
  // through the statement cache: sqlite3_exec parses the text on every call, which was a good
  // part of a chunk lookup during a backup. Scripts of several statements still use exec.
  if (sql.size() <= 32 && sql.find(';') == std::string::npos) {
    absl::StatusOr<Statement> stmt = Prepare(sql);
    if (stmt.ok()) return stmt->Run();
  }
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  // Name the statement (its first line) so errors say what was being done.
  std::string what = sql.substr(0, sql.find('\n'));
  if (what.size() > 60) what = what.substr(0, 60) + "...";
  return SqliteStatus(rc, absl::StrCat("sqlite: ", what, ": ", message));
}

// ---- Transaction ----

absl::StatusOr<Transaction> Transaction::Begin(Database::Impl* impl) {
  // IMMEDIATE takes the write lock up front, so a transaction never fails half-way with
  // SQLITE_BUSY on lock upgrade (busy_timeout handles the wait).
  CAIRN_RETURN_IF_ERROR(impl->Exec("BEGIN IMMEDIATE"));
  return Transaction(impl);
}

Transaction::~Transaction() {
  if (impl_ != nullptr) (void)impl_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  Database::Impl* impl = impl_;
  impl_ = nullptr;
  absl::Status status = impl->Exec("COMMIT");
  // A failed COMMIT may leave the transaction open; end it so the connection stays usable.
  if (!status.ok() && !sqlite3_get_autocommit(impl->db)) (void)impl->Exec("ROLLBACK");
  return status;
}

// ---- Database ----

namespace {

absl::StatusOr<int> ReadUserVersion(Database::Impl* impl) {
  CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl->Prepare("PRAGMA user_version"));
  CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("PRAGMA user_version returned no row");
  return static_cast<int>(stmt.ColumnInt(0));
}

absl::Status Migrate(Database::Impl* impl) {
  CAIRN_ASSIGN_OR_RETURN(int version, ReadUserVersion(impl));
  impl->opened_schema_version = version;
  const int latest = Database::LatestSchemaVersion();
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat("schema version ", version,
                                                      " but this cairn knows versions up to ",
                                                      latest, "; use a newer cairn"));
  }
  for (const internal::Migration& m : internal::Migrations()) {
    if (m.version <= version) continue;
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl));
    // Re-read under the write lock: another process may have migrated meanwhile.
    CAIRN_ASSIGN_OR_RETURN(int current, ReadUserVersion(impl));
    if (current < m.version) {
      CAIRN_RETURN_IF_ERROR(Annotate(impl->Exec(m.sql), absl::StrCat("migration ", m.name)));
      CAIRN_RETURN_IF_ERROR(impl->Exec(absl::StrCat("PRAGMA user_version = ", m.version)));
    }
    CAIRN_RETURN_IF_ERROR(txn.Commit());
    version = m.version;
  }
  impl->schema_version = version;
  return absl::OkStatus();
}

// How long a statement waits for another connection's lock (another cairn process, e.g. the
// CLI reading while the daemon writes) before failing with SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 5000;

// The page cache's bound in KiB (PRAGMA cache_size with a negative value is in KiB).
constexpr int kCacheKiB = 8 * 1024;

absl::Status Configure(Database::Impl* impl) {
  // The first statement reads the file header: a file that is not a database fails here
  // ("file is not a database").
  CAIRN_RETURN_IF_ERROR(impl->Exec("PRAGMA journal_mode = WAL"));
  // In WAL mode NORMAL is durable across process crashes (kill -9); only power loss can undo
  // the last transactions, never corrupt the database (sqlite.org/pragma.html#pragma_synchronous).
  CAIRN_RETURN_IF_ERROR(impl->Exec("PRAGMA synchronous = NORMAL"));
  CAIRN_RETURN_IF_ERROR(impl->Exec("PRAGMA foreign_keys = ON"));
  // SQLite's page cache, a bound (pages are allocated as they are used), not a reservation. With
  // the default 2 MiB a catalog transaction of a backup (thousands of chunk records, each in its
  // own B-tree pages: chunk ids are random) spilled dirty pages to the WAL before the commit and
  // read them back: a backup of 73k files made 226,000 pwrites and 198,000 preads on the home
  // peer; with 8 MiB (and 16,384 records per transaction) 84,000 and 32,000. 16 MiB saved a
  // little more (70,000 and 14,000) but took the home peer to 121 MiB restoring 4 GB
  // (docs/architecture.md "Memory and the allocator").
  CAIRN_RETURN_IF_ERROR(impl->Exec(absl::StrCat("PRAGMA cache_size = -", kCacheKiB)));
  return Migrate(impl);
}

}  // namespace

int Database::LatestSchemaVersion() {
  auto all = internal::Migrations();
  return all.empty() ? 0 : all.back().version;
}

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::~Database() = default;

int Database::SchemaVersion() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->schema_version;
}

int Database::OpenedSchemaVersion() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->opened_schema_version;
}

absl::Status Database::QuickCheck() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // quick_check answers one row "ok", or up to N rows naming problems; it fails outright
  // (SQLITE_CORRUPT) when it cannot even walk the file.
  absl::StatusOr<Statement> stmt = impl_->Prepare("PRAGMA quick_check(10)");
  if (!stmt.ok()) return Annotate(stmt.status(), "quick_check " + impl_->path);
  std::vector<std::string> problems;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return Annotate(row.status(), "quick_check " + impl_->path);
    if (!*row) break;
    std::string line = stmt->ColumnString(0);
    if (line != "ok") problems.push_back(std::move(line));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("quick_check ", impl_->path, ": ", absl::StrJoin(problems, "; ")));
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::lock_guard<std::mutex> lock(impl->mu);
  // NOMUTEX: Impl::mu already serializes every use of the connection.
  int rc =
      sqlite3_open_v2(path.c_str(), &impl->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(impl->db, rc, absl::StrCat("open index database ", path));
  }
  sqlite3_busy_timeout(impl->db, kBusyTimeoutMs);
  CAIRN_RETURN_IF_ERROR(
      Annotate(Configure(impl.get()), absl::StrCat("open index database ", path)));
  return std::unique_ptr<Database>(new Database(std::move(impl)));
}

}  // namespace cairn::index
