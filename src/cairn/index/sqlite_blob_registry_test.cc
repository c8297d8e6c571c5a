// BlobRegistry conformance (SQLite and the store's in-memory registry) and SQLite persistence.
#include "cairn/index/sqlite_blob_registry.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "cairn/index/database_impl.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::index {
namespace {

using store::BlobRecord;
using store::BlobRegistry;

BlobKey Key(PeerId owner, uint8_t chunk, uint32_t shard) {
  BlobKey key;
  key.owner = owner;
  key.chunk.bytes.fill(chunk);
  key.shard = shard;
  return key;
}

BlobRecord Record(const BlobKey& key, uint64_t size) {
  BlobRecord r;
  r.key = key;
  r.size = size;
  for (size_t i = 0; i < r.checksum.size(); ++i) {
    r.checksum[i] = static_cast<uint8_t>(size + i + key.shard);
  }
  return r;
}

bool SameRecord(const BlobRecord& a, const BlobRecord& b) {
  return a.key == b.key && a.size == b.size && a.checksum == b.checksum;
}

struct Harness {
  virtual ~Harness() = default;
  std::unique_ptr<BlobRegistry> registry;
};

struct MemHarness : Harness {
  MemHarness() { registry = store::NewMemBlobRegistry(); }
};

struct SqliteHarness : Harness {
  SqliteHarness() { Reopen(); }
  void Reopen() {
    registry.reset();
    db.reset();
    auto opened = Database::Open(dir.File("index.db"));
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return;
    db = std::move(*opened);
    registry = NewSqliteBlobRegistry(db.get());
  }
  TestTempDir dir;
  std::unique_ptr<Database> db;
};

struct Impl {
  const char* name;
  std::function<std::unique_ptr<Harness>()> make;
};

class BlobRegistryConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_->registry, nullptr);
    registry_ = harness_->registry.get();
  }
  std::unique_ptr<Harness> harness_;
  BlobRegistry* registry_ = nullptr;
};

TEST_P(BlobRegistryConformance, AddFindRemove) {
  auto missing = registry_->Find(Key(1, 1, 0));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  const BlobRecord a = Record(Key(1, 1, 0), 100);
  const BlobRecord b = Record(Key(1, 1, 1), 200);  // other shard of the same chunk
  const BlobRecord c = Record(Key(2, 1, 0), 300);  // same chunk, other owner
  for (const auto& r : {a, b, c}) ASSERT_TRUE(registry_->Add(r).ok());
  for (const auto& r : {a, b, c}) {
    auto found = registry_->Find(r.key);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value()) << r.key.DebugString();
    EXPECT_TRUE(SameRecord(**found, r)) << r.key.DebugString();
  }

  ASSERT_TRUE(registry_->Remove(b.key).ok());
  ASSERT_TRUE(registry_->Remove(b.key).ok());         // idempotent
  ASSERT_TRUE(registry_->Remove(Key(9, 9, 9)).ok());  // unknown is fine
  auto gone = registry_->Find(b.key);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());
  auto kept = registry_->Find(a.key);
  ASSERT_TRUE(kept.ok() && kept->has_value());
}

TEST_P(BlobRegistryConformance, AddReplacesAndTotalsFollow) {
  auto empty = registry_->Totals();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->used, 0u);
  EXPECT_EQ(empty->blobs, 0u);

  ASSERT_TRUE(registry_->Add(Record(Key(1, 1, 0), 100)).ok());
  ASSERT_TRUE(registry_->Add(Record(Key(1, 2, 0), 250)).ok());
  ASSERT_TRUE(registry_->Add(Record(Key(1, 1, 0), 150)).ok());  // replaces
  auto totals = registry_->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->used, 400u);
  EXPECT_EQ(totals->blobs, 2u);
  auto found = registry_->Find(Key(1, 1, 0));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE(SameRecord(**found, Record(Key(1, 1, 0), 150)));

  ASSERT_TRUE(registry_->Remove(Key(1, 2, 0)).ok());
  totals = registry_->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->used, 150u);
  EXPECT_EQ(totals->blobs, 1u);
}

// Enough records to cross SQLite's ForEach page boundaries, with owners on both sides of 2^63.
TEST_P(BlobRegistryConformance, ForEachVisitsEveryRecordOnce) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::map<BlobKey, BlobRecord> want;
  const PeerId owners[] = {1, 2, (1ull << 63) + 1, ~0ull};
  while (want.size() < 1300) {
    BlobKey key;
    key.owner = owners[rng() % 4];
    for (auto& byte : key.chunk.bytes) byte = static_cast<uint8_t>(rng());
    key.shard = static_cast<uint32_t>(rng() % 6);
    BlobRecord r = Record(key, rng() % 100000);
    want[key] = r;
    ASSERT_TRUE(registry_->Add(r).ok());
  }
  std::map<BlobKey, BlobRecord> seen;
  ASSERT_TRUE(registry_
                  ->ForEach([&](const BlobRecord& r) {
                    EXPECT_TRUE(seen.emplace(r.key, r).second) << "twice: " << r.key.DebugString();
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), want.size());
  for (const auto& [key, r] : want) {
    auto it = seen.find(key);
    ASSERT_NE(it, seen.end()) << key.DebugString();
    EXPECT_TRUE(SameRecord(it->second, r)) << key.DebugString();
  }
  uint64_t used = 0;
  for (const auto& [key, r] : want) used += r.size;
  auto totals = registry_->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->used, used);
  EXPECT_EQ(totals->blobs, want.size());
}

TEST_P(BlobRegistryConformance, ForEachStopsAtFirstError) {
  for (uint8_t i = 0; i < 10; ++i) ASSERT_TRUE(registry_->Add(Record(Key(1, i, 0), 1)).ok());
  int calls = 0;
  absl::Status status = registry_->ForEach([&](const BlobRecord&) {
    return ++calls == 3 ? absl::AbortedError("stop") : absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls, 3);
}

// fn may call back into the registry (DiskBlobStore drops records whose file is gone).
TEST_P(BlobRegistryConformance, ForEachCallbackMayRemove) {
  for (uint8_t i = 0; i < 20; ++i) ASSERT_TRUE(registry_->Add(Record(Key(1, i, 0), 10)).ok());
  ASSERT_TRUE(registry_
                  ->ForEach([&](const BlobRecord& r) {
                    if (r.key.chunk.bytes[0] % 2 == 0) return registry_->Remove(r.key);
                    return absl::OkStatus();
                  })
                  .ok());
  auto totals = registry_->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->blobs, 10u);
  EXPECT_EQ(totals->used, 100u);
}

// List pages through the records in one stable order (the one ForEach uses), resuming after
// any key, also one that was removed meanwhile (scrub's resumable walk).
TEST_P(BlobRegistryConformance, ListWalksInPagesAndResumesAfterAnyKey) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::set<BlobKey> want;
  const PeerId owners[] = {1, 2, (1ull << 63) + 1, ~0ull};
  while (want.size() < 300) {
    BlobKey key;
    key.owner = owners[rng() % 4];
    for (auto& byte : key.chunk.bytes) byte = static_cast<uint8_t>(rng());
    key.shard = static_cast<uint32_t>(rng() % 6);
    if (want.insert(key).second) {
      ASSERT_TRUE(registry_->Add(Record(key, 5)).ok());
    }
  }
  std::vector<BlobKey> order;
  ASSERT_TRUE(registry_
                  ->ForEach([&](const BlobRecord& r) {
                    order.push_back(r.key);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(order.size(), want.size());

  std::vector<BlobKey> walked;
  std::optional<BlobKey> after;
  while (true) {
    auto page = registry_->List(after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->size(), 7u);
    for (const BlobRecord& r : *page) {
      walked.push_back(r.key);
      EXPECT_TRUE(SameRecord(r, Record(r.key, 5)));
    }
    if (page->size() < 7) break;
    after = page->back().key;
  }
  EXPECT_EQ(walked, order);

  // Resume after a key that is gone, with another record removed ahead of the cursor.
  ASSERT_TRUE(registry_->Remove(order[100]).ok());
  ASSERT_TRUE(registry_->Remove(order[150]).ok());
  auto rest = registry_->List(order[100], 1000);
  ASSERT_TRUE(rest.ok()) << rest.status();
  std::vector<BlobKey> want_rest(order.begin() + 101, order.end());
  want_rest.erase(want_rest.begin() + 49);  // order[150]
  std::vector<BlobKey> got_rest;
  for (const BlobRecord& r : *rest) got_rest.push_back(r.key);
  EXPECT_EQ(got_rest, want_rest);
  EXPECT_TRUE(registry_->List(order.back(), 5)->empty());
  EXPECT_EQ(registry_->List(std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

BlobRecord Extra(const BlobKey& key, uint64_t size) {
  BlobRecord r = Record(key, size);
  r.extra = true;
  return r;
}

std::vector<BlobKey> KeysOf(const std::vector<BlobRecord>& records) {
  std::vector<BlobKey> out;
  for (const BlobRecord& r : records) out.push_back(r.key);
  return out;
}

TEST_P(BlobRegistryConformance, ExtraFlagRoundTripsAndTotalsCountIt) {
  ASSERT_TRUE(registry_->Add(Record(Key(1, 1, 0), 100)).ok());
  ASSERT_TRUE(registry_->Add(Extra(Key(1, 2, 0), 30)).ok());
  ASSERT_TRUE(registry_->Add(Extra(Key(2, 3, 1), 7)).ok());
  auto found = registry_->Find(Key(1, 2, 0));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((*found)->extra);
  EXPECT_FALSE((*registry_->Find(Key(1, 1, 0)))->extra);
  auto totals = registry_->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->used, 137u);
  EXPECT_EQ(totals->blobs, 3u);
  EXPECT_EQ(totals->extra_bytes, 37u);
  EXPECT_EQ(totals->extra_blobs, 2u);

  // SetExtra both ways; NOT_FOUND for an unknown key.
  ASSERT_TRUE(registry_->SetExtra(Key(1, 2, 0), false).ok());
  ASSERT_TRUE(registry_->SetExtra(Key(1, 1, 0), true).ok());
  EXPECT_FALSE((*registry_->Find(Key(1, 2, 0)))->extra);
  EXPECT_TRUE((*registry_->Find(Key(1, 1, 0)))->extra);
  EXPECT_EQ(registry_->SetExtra(Key(9, 9, 9), true).code(), absl::StatusCode::kNotFound);
  totals = registry_->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->extra_bytes, 107u);
  EXPECT_EQ(totals->extra_blobs, 2u);

  // Add replaces the flag too; List and ForEach report it.
  ASSERT_TRUE(registry_->Add(Record(Key(2, 3, 1), 7)).ok());
  int extras = 0;
  ASSERT_TRUE(registry_
                  ->ForEach([&](const BlobRecord& r) {
                    extras += r.extra ? 1 : 0;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(extras, 1);
  auto listed = registry_->List(std::nullopt, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_TRUE((*listed)[0].extra);  // Key(1, 1, 0)
}

TEST_P(BlobRegistryConformance, ListExtrasOldestStoredFirst) {
  // Stored in an order unlike the key order; regular records in between.
  const BlobKey order[] = {Key(3, 9, 0), Key(1, 5, 2), Key(2, 1, 0), Key(1, 5, 0), Key(3, 2, 1)};
  for (size_t i = 0; i < std::size(order); ++i) {
    ASSERT_TRUE(registry_->Add(Extra(order[i], 10 + i)).ok());
    ASSERT_TRUE(registry_->Add(Record(Key(7, static_cast<uint8_t>(i), 0), 1)).ok());
  }
  auto all = registry_->ListExtras(100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(KeysOf(*all), std::vector<BlobKey>(std::begin(order), std::end(order)));
  for (const BlobRecord& r : *all) EXPECT_TRUE(r.extra);
  auto two = registry_->ListExtras(2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(KeysOf(*two), (std::vector<BlobKey>{order[0], order[1]}));
  // Promoted and removed records leave the list; re-adding one makes it the newest.
  ASSERT_TRUE(registry_->SetExtra(order[0], false).ok());
  ASSERT_TRUE(registry_->Remove(order[2]).ok());
  ASSERT_TRUE(registry_->Add(Extra(order[1], 11)).ok());
  all = registry_->ListExtras(100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(KeysOf(*all), (std::vector<BlobKey>{order[3], order[4], order[1]}));
  EXPECT_EQ(registry_->ListExtras(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BlobRegistryConformance, UsageByOwnerAscending) {
  auto empty = registry_->UsageByOwner();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  const PeerId big = (1ull << 63) + 5;  // stored as a negative integer by SQLite
  ASSERT_TRUE(registry_->Add(Record(Key(big, 1, 0), 1000)).ok());
  ASSERT_TRUE(registry_->Add(Extra(Key(4, 1, 0), 10)).ok());
  ASSERT_TRUE(registry_->Add(Record(Key(4, 2, 0), 20)).ok());
  ASSERT_TRUE(registry_->Add(Extra(Key(4, 2, 1), 40)).ok());
  ASSERT_TRUE(registry_->Add(Record(Key(2, 2, 0), 5)).ok());
  auto usage = registry_->UsageByOwner();
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->size(), 3u);
  EXPECT_EQ((*usage)[0].owner, 2u);
  EXPECT_EQ((*usage)[0].blobs, 1u);
  EXPECT_EQ((*usage)[0].bytes, 5u);
  EXPECT_EQ((*usage)[0].extra_blobs, 0u);
  EXPECT_EQ((*usage)[1].owner, 4u);
  EXPECT_EQ((*usage)[1].blobs, 3u);
  EXPECT_EQ((*usage)[1].bytes, 70u);
  EXPECT_EQ((*usage)[1].extra_blobs, 2u);
  EXPECT_EQ((*usage)[1].extra_bytes, 50u);
  EXPECT_EQ((*usage)[2].owner, big);
  EXPECT_EQ((*usage)[2].bytes, 1000u);
}

TEST_P(BlobRegistryConformance, ListOwnerPagesInChunkShardOrder) {
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::set<BlobKey> mine;
  while (mine.size() < 40) {
    BlobKey key;
    key.owner = 8;
    for (auto& byte : key.chunk.bytes) byte = static_cast<uint8_t>(rng());
    key.shard = static_cast<uint32_t>(rng() % 3);
    if (mine.insert(key).second) {
      ASSERT_TRUE(registry_->Add(Record(key, 3)).ok());
    }
    BlobKey other = key;
    other.owner = rng() % 2 ? 7 : 9;
    ASSERT_TRUE(registry_->Add(Record(other, 4)).ok());
  }
  const std::vector<BlobKey> want(mine.begin(), mine.end());  // (chunk, shard) order
  for (size_t limit : {size_t{1}, size_t{6}, size_t{40}, size_t{100}}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<BlobKey> walked;
    std::optional<BlobKey> after;
    while (true) {
      auto page = registry_->ListOwner(8, after, limit);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->size(), limit);
      for (const BlobRecord& r : *page) {
        EXPECT_TRUE(SameRecord(r, Record(r.key, 3)));
        walked.push_back(r.key);
      }
      if (page->size() < limit) break;
      after = page->back().key;
    }
    EXPECT_EQ(walked, want);
  }
  // Resumes after a key that is gone.
  ASSERT_TRUE(registry_->Remove(want[10]).ok());
  auto rest = registry_->ListOwner(8, want[10], 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(KeysOf(*rest), std::vector<BlobKey>(want.begin() + 11, want.end()));
  EXPECT_TRUE(registry_->ListOwner(5, std::nullopt, 10)->empty());
  EXPECT_EQ(registry_->ListOwner(8, std::nullopt, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(BlobRegistryConformance, KindRoundTrips) {
  for (uint8_t kind : {0, 1, 2, 3}) {
    BlobRecord r = Record(Key(4, kind, 0), 10 + kind);
    r.kind = kind;
    ASSERT_TRUE(registry_->Add(r).ok());
  }
  for (uint8_t kind : {0, 1, 2, 3}) {
    auto found = registry_->Find(Key(4, kind, 0));
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ((*found)->kind, kind);
  }
  auto listed = registry_->ListOwner(4, std::nullopt, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 4u);
  for (const BlobRecord& r : *listed) EXPECT_EQ(r.kind, r.key.chunk.bytes[0]);
}

INSTANTIATE_TEST_SUITE_P(
    All, BlobRegistryConformance,
    ::testing::Values(Impl{"Mem", [] { return std::unique_ptr<Harness>(new MemHarness()); }},
                      Impl{"Sqlite", [] { return std::unique_ptr<Harness>(new SqliteHarness()); }}),
    [](const ::testing::TestParamInfo<Impl>& info) { return std::string(info.param.name); });

TEST(SqliteBlobRegistryTest, RecordsPersistAcrossReopen) {
  SqliteHarness h;
  const BlobRecord a = Record(Key(3, 7, 2), 4096);
  ASSERT_TRUE(h.registry->Add(a).ok());
  ASSERT_TRUE(h.registry->Add(Record(Key(3, 8, 0), 10)).ok());
  ASSERT_TRUE(h.registry->Remove(Key(3, 8, 0)).ok());
  h.Reopen();
  ASSERT_NE(h.registry, nullptr);
  auto found = h.registry->Find(a.key);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE(SameRecord(**found, a));
  auto totals = h.registry->Totals();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->used, 4096u);
  EXPECT_EQ(totals->blobs, 1u);
}

TEST(SqliteBlobRegistryTest, ExtraFlagPersistsAcrossReopen) {
  SqliteHarness h;
  ASSERT_TRUE(h.registry->Add(Extra(Key(3, 1, 0), 10)).ok());
  ASSERT_TRUE(h.registry->Add(Extra(Key(3, 2, 0), 20)).ok());
  ASSERT_TRUE(h.registry->Add(Record(Key(3, 3, 0), 40)).ok());
  ASSERT_TRUE(h.registry->SetExtra(Key(3, 1, 0), false).ok());
  h.Reopen();
  ASSERT_NE(h.registry, nullptr);
  EXPECT_FALSE((*h.registry->Find(Key(3, 1, 0)))->extra);
  EXPECT_TRUE((*h.registry->Find(Key(3, 2, 0)))->extra);
  auto totals = h.registry->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->extra_blobs, 1u);
  EXPECT_EQ(totals->extra_bytes, 20u);
  // Added after the reopen: newer than those stored before.
  ASSERT_TRUE(h.registry->Add(Extra(Key(3, 0, 0), 1)).ok());
  auto extras = h.registry->ListExtras(10);
  ASSERT_TRUE(extras.ok());
  EXPECT_EQ(KeysOf(*extras), (std::vector<BlobKey>{Key(3, 2, 0), Key(3, 0, 0)}));
}

// Rows registered before migration 0004 (no kind written) read back as kind 0, unknown.
TEST(SqliteBlobRegistryTest, RowsWithoutAKindReadAsUnknown) {
  SqliteHarness h;
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO blobs (owner, chunk_id, shard, size, checksum, stored_ns, "
                           "extra) VALUES (2, zeroblob(32), 0, 5, zeroblob(16), 100, 0)")
                    .ok());
  }
  BlobRecord tree = Record(Key(2, 9, 0), 7);
  tree.kind = static_cast<uint8_t>(BlobKind::kTree);
  ASSERT_TRUE(h.registry->Add(tree).ok());
  h.Reopen();
  auto listed = h.registry->ListOwner(2, std::nullopt, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].kind, 0);
  EXPECT_EQ((*listed)[1].kind, static_cast<uint8_t>(BlobKind::kTree));
}

// Equal stored times (e.g. rows written by another process in the same nanosecond): key order.
TEST(SqliteBlobRegistryTest, ListExtrasBreaksTiesByKey) {
  SqliteHarness h;
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO blobs (owner, chunk_id, shard, size, checksum, stored_ns, "
                           "extra) VALUES "
                           "(2, zeroblob(32), 1, 5, zeroblob(16), 100, 1), "
                           "(1, zeroblob(32), 0, 5, zeroblob(16), 100, 1), "
                           "(2, zeroblob(32), 0, 5, zeroblob(16), 100, 1), "
                           "(9, zeroblob(32), 0, 5, zeroblob(16), 50, 1), "
                           "(0, zeroblob(32), 0, 5, zeroblob(16), 10, 0)")
                    .ok());
  }
  auto extras = h.registry->ListExtras(10);
  ASSERT_TRUE(extras.ok()) << extras.status();
  EXPECT_EQ(KeysOf(*extras),
            (std::vector<BlobKey>{Key(9, 0, 0), Key(1, 0, 0), Key(2, 0, 0), Key(2, 0, 1)}));
}

TEST(SqliteBlobRegistryTest, DamagedRowIsDataLossNotACrash) {
  SqliteHarness h;
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO blobs (owner, chunk_id, shard, size, checksum, stored_ns) "
                           "VALUES (1, zeroblob(32), 0, 5, x'0102', 0)")
                    .ok());
  }
  auto found = h.registry->Find(Key(1, 0, 0));
  EXPECT_EQ(found.status().code(), absl::StatusCode::kDataLoss) << found.status();
  absl::Status status = h.registry->ForEach([](const BlobRecord&) { return absl::OkStatus(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

}  // namespace
}  // namespace cairn::index
