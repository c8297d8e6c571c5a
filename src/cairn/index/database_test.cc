#include "cairn/index/database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "cairn/index/catalog.h"
#include "cairn/index/database_impl.h"
#include "cairn/index/migrations.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::index {
namespace {

std::set<std::string> TableNames(Database* db) {
  std::set<std::string> names;
  std::lock_guard<std::mutex> lock(db->impl()->mu);
  auto stmt = db->impl()->Prepare("SELECT name FROM sqlite_master WHERE type = 'table'");
  EXPECT_TRUE(stmt.ok()) << stmt.status();
  if (!stmt.ok()) return names;
  while (*stmt->Step()) names.insert(stmt->ColumnString(0));
  return names;
}

std::string Pragma(Database* db, const std::string& pragma) {
  std::lock_guard<std::mutex> lock(db->impl()->mu);
  auto stmt = db->impl()->Prepare("PRAGMA " + pragma);
  if (!stmt.ok() || !*stmt->Step()) return "<error>";
  return stmt->ColumnString(0);
}

TEST(MigrationsTest, NumberedConsecutivelyFromOne) {
  auto all = internal::Migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i + 1));
    char prefix[8];
    std::snprintf(prefix, sizeof prefix, "%04d_", all[i].version);
    EXPECT_EQ(std::string(all[i].name).substr(0, 5), prefix) << all[i].name;
    const std::string sql = all[i].sql;
    EXPECT_TRUE(sql.find("CREATE") != std::string::npos || sql.find("ALTER") != std::string::npos)
        << all[i].name;
  }
  EXPECT_EQ(Database::LatestSchemaVersion(), all.back().version);
}

TEST(DatabaseTest, NewDatabaseGetsSchemaAndSettings) {
  TestTempDir dir;
  auto db = Database::Open(dir.File("index.db"));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->SchemaVersion(), Database::LatestSchemaVersion());
  EXPECT_EQ(Pragma(db->get(), "user_version"), std::to_string(Database::LatestSchemaVersion()));
  std::set<std::string> tables = TableNames(db->get());
  for (const char* table : {"meta", "chunks", "placements", "trees", "snapshots", "blobs"}) {
    EXPECT_TRUE(tables.count(table)) << "missing table " << table;
  }
  EXPECT_EQ(Pragma(db->get(), "journal_mode"), "wal");
  EXPECT_EQ(Pragma(db->get(), "synchronous"), "1");  // NORMAL
  EXPECT_EQ(Pragma(db->get(), "foreign_keys"), "1");
}

TEST(DatabaseTest, ReopenIsIdempotentAndKeepsData) {
  TestTempDir dir;
  std::string path = dir.File("index.db");
  {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(NewSqliteCatalog(db->get())->SetMeta("k", "v").ok());
  }
  for (int i = 0; i < 2; ++i) {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->SchemaVersion(), Database::LatestSchemaVersion());
    auto value = NewSqliteCatalog(db->get())->GetMeta("k");
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(*value, std::optional<std::string>("v"));
  }
}

// A database written by the walking skeleton (schema 1) is upgraded in place: its chunks read
// back as copies with their holders.
TEST(DatabaseTest, SchemaOneIsUpgradedKeepingChunks) {
  TestTempDir dir;
  std::string path = dir.File("index.db");
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::string sql = std::string(internal::Migrations()[0].sql) +
                      "INSERT INTO chunks VALUES (zeroblob(32), 1, 100, 150, 2);"
                      "INSERT INTO placements VALUES (zeroblob(32), 7, 0);"
                      "INSERT INTO placements VALUES (zeroblob(32), 9, 0);"
                      "PRAGMA user_version = 1;";
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(raw);
  }
  auto db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->SchemaVersion(), Database::LatestSchemaVersion());
  auto chunk = NewSqliteCatalog(db->get())->FindChunk(ChunkId{});
  ASSERT_TRUE(chunk.ok() && chunk->has_value()) << chunk.status();
  EXPECT_FALSE((*chunk)->erasure());
  EXPECT_EQ((*chunk)->target, 2u);
  EXPECT_EQ((*chunk)->holders, (std::vector<PeerId>{7, 9}));
  EXPECT_TRUE((*chunk)->AtTarget());
}

TEST(DatabaseTest, NewerSchemaIsRefused) {
  TestTempDir dir;
  std::string path = dir.File("index.db");
  {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    std::lock_guard<std::mutex> lock((*db)->impl()->mu);
    ASSERT_TRUE((*db)->impl()->Exec("PRAGMA user_version = 999").ok());
  }
  auto db = Database::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
  EXPECT_NE(db.status().message().find("999"), std::string::npos) << db.status();
}

// Files that are not SQLite databases (or are damaged ones) give a clear DATA_LOSS error.
TEST(DatabaseTest, GarbageFileIsAnErrorNotACrash) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  struct Case {
    const char* name;
    std::string content;
  };
  std::string bad_header = std::string("SQLite format 3", 16) + random_bytes(8192 - 16);
  const Case cases[] = {
      {"text", "this is not a database\n"},
      {"random 4 KiB", random_bytes(4096)},
      {"random 64 KiB", random_bytes(65536)},
      {"sqlite magic then garbage", bad_header},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TestTempDir dir;
    std::string path = dir.File("index.db");
    std::ofstream(path, std::ios::binary) << c.content;
    auto db = Database::Open(path);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.status().code(), absl::StatusCode::kDataLoss) << db.status();
    EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status();
  }
}

// A page of garbage in the middle of an otherwise intact file: Open may still succeed (it reads
// only the header and the schema), but QuickCheck finds the damage (DATA_LOSS), which is what
// the daemon relies on to notice a damaged index at start (docs/operations.md "When the index
// is damaged"). An intact file passes; OpenedSchemaVersion tells a new file from an old one.
TEST(DatabaseTest, QuickCheckFindsAGarbagePage) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TestTempDir dir;
  const std::string path = dir.File("index.db");
  {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->OpenedSchemaVersion(), 0);
    EXPECT_TRUE((*db)->QuickCheck().ok());
    std::lock_guard<std::mutex> lock((*db)->impl()->mu);
    ASSERT_TRUE((*db)->impl()->Exec("CREATE TABLE filler (k INTEGER PRIMARY KEY, v BLOB)").ok());
    ASSERT_TRUE((*db)->impl()->Exec("CREATE INDEX filler_v ON filler (v)").ok());
    ASSERT_TRUE((*db)
                    ->impl()
                    ->Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                           "WHERE i < 2000) INSERT INTO filler SELECT i, randomblob(300) FROM n")
                    .ok());
  }
  {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->OpenedSchemaVersion(), Database::LatestSchemaVersion());
    EXPECT_TRUE((*db)->QuickCheck().ok());
  }
  // The connection closed cleanly: the WAL was checkpointed into the file.
  const uint64_t size = std::filesystem::file_size(path);
  const uint64_t page = 4096;
  ASSERT_GT(size, 40 * page);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(page, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    f.seekp(static_cast<std::streamoff>((size / page / 2) * page));
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto db = Database::Open(path);
  absl::Status st = db.ok() ? (*db)->QuickCheck() : db.status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find(path), std::string::npos) << st;
}

TEST(DatabaseTest, UnopenablePathIsAnError) {
  TestTempDir dir;
  auto db = Database::Open(dir.File("no/such/dir/index.db"));
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kInternal) << db.status();
}

}  // namespace
}  // namespace cairn::index
