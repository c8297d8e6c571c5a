// OpenIndex (daemon/index_open.h): an intact index.db opens as it is; a missing, empty or
// damaged one is reported, the damaged file kept aside byte for byte, and a new one made; other
// failures move nothing.
#include "cairn/daemon/index_open.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "cairn/daemon/peer_dir.h"
#include "cairn/daemon/test_util.h"
#include "cairn/index/catalog.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Makes DIR/index.db with a meta row and enough rows to span many pages; closes it.
void MakeIndex(const std::string& dir) {
  auto db = index::Database::Open(IndexPath(dir));
  ASSERT_TRUE(db.ok()) << db.status();
  auto catalog = index::NewSqliteCatalog(db->get());
  ASSERT_TRUE(catalog->SetMeta("test.marker", "kept").ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(
        catalog->SetMeta("filler." + std::to_string(i), std::string(400, 'a' + i % 26)).ok());
  }
}

std::optional<std::string> Marker(index::Database* db) {
  auto catalog = index::NewSqliteCatalog(db);
  auto v = catalog->GetMeta("test.marker");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::nullopt;
}

TEST(OpenIndexTest, IntactIndexOpensAsItIs) {
  testing::TempDir tmp;
  MakeIndex(tmp.path());
  IndexOpenReport report;
  auto db = OpenIndex(tmp.path(), &report);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(report.problem, "");
  EXPECT_EQ(report.kept_aside, "");
  EXPECT_EQ(Marker(db->get()), "kept");
}

TEST(OpenIndexTest, MissingEmptyAndDamagedAreReportedAndKeptAside) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  struct Case {
    const char* name;
    const char* problem;
    bool kept;
  };
  const Case cases[] = {{"missing", "index.db is missing", false},
                        {"empty", "index.db is empty (0 bytes)", true},
                        {"garbage page", "index.db is damaged", true},
                        {"not a database", "index.db is damaged", true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testing::TempDir tmp;
    MakeIndex(tmp.path());
    const std::string path = IndexPath(tmp.path());
    const std::string name = c.name;
    if (name == "missing") {
      std::filesystem::remove(path);
    } else if (name == "empty") {
      std::filesystem::resize_file(path, 0);
    } else if (name == "not a database") {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << "not a database\n";
    } else {
      // Garbage over every page but the first: whatever quick_check reads is damaged.
      const uint64_t size = std::filesystem::file_size(path);
      ASSERT_GT(size, 16u * 4096);
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      std::string garbage(size - 4096, '\0');
      for (char& ch : garbage) ch = static_cast<char>(rng());
      f.seekp(4096);
      f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    const std::string damaged = std::filesystem::exists(path) ? ReadAll(path) : "";
    IndexOpenReport report;
    auto db = OpenIndex(tmp.path(), &report);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_NE(report.problem.find(c.problem), std::string::npos) << report.problem;
    EXPECT_EQ(Marker(db->get()), std::nullopt);  // a new, empty index
    EXPECT_EQ((*db)->SchemaVersion(), index::Database::LatestSchemaVersion());
    EXPECT_TRUE((*db)->QuickCheck().ok());
    if (c.kept) {
      ASSERT_NE(report.kept_aside, "");
      EXPECT_EQ(report.kept_aside.rfind(path + ".damaged-", 0), 0u) << report.kept_aside;
      EXPECT_EQ(ReadAll(report.kept_aside), damaged);
    } else {
      EXPECT_EQ(report.kept_aside, "");
    }
    // The new index is used from now on: the next open finds nothing wrong.
    db->reset();
    IndexOpenReport again;
    ASSERT_TRUE(OpenIndex(tmp.path(), &again).ok());
    EXPECT_EQ(again.problem, "");
  }
}

// A failure that is not damage (here: a schema from a newer cairn) moves nothing.
TEST(OpenIndexTest, OtherFailuresMoveNothing) {
  testing::TempDir tmp;
  MakeIndex(tmp.path());
  const std::string path = IndexPath(tmp.path());
  {
    // The user version, big-endian at offset 60 of the file header (sqlite.org/fileformat.html).
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const char v999[4] = {0, 0, 3, static_cast<char>(0xe7)};
    f.seekp(60);
    f.write(v999, 4);
  }
  const std::string before = ReadAll(path);
  IndexOpenReport report;
  auto db = OpenIndex(tmp.path(), &report);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
  EXPECT_EQ(report.kept_aside, "");
  EXPECT_EQ(ReadAll(path), before);
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    EXPECT_EQ(e.path().string().find(".damaged-"), std::string::npos) << e.path();
  }
}

}  // namespace
}  // namespace cairn::daemon
