// Migration from the file layout into segments (layout_migration.h), on directories built by
// the real old code: DiskBlobStore + SqliteBlobRegistry on a real index.db, migrated into a
// SegmentBlobStore on SqliteSegmentRegistry in the same database.
#include "cairn/store/layout_migration.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cairn/base/status.h"
#include "cairn/format/blob.h"
#include "cairn/index/database.h"
#include "cairn/index/sqlite_blob_registry.h"
#include "cairn/index/sqlite_segment_registry.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::store {
namespace {

using Op = env::FaultInjectionFileSystem::Op;

codec::OwnerKeys TestKeys() {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) {
    keys.id_key[i] = static_cast<uint8_t>(i);
    keys.encryption_key[i] = static_cast<uint8_t>(100 + i);
    keys.chunker_seed[i] = static_cast<uint8_t>(200 + i);
  }
  return keys;
}

struct TestBlob {
  BlobKey key;
  Bytes data;
  codec::Checksum checksum;
  bool extra = false;
  bool damaged = false;  // its file was damaged before the migration: must never be served
  bool missing = false;  // its file was removed before the migration
};

TestBlob MakeBlob(uint64_t seed, size_t plain_size, PeerId owner) {
  std::mt19937_64 rng(seed);
  Bytes plain(plain_size);
  for (auto& b : plain) b = static_cast<uint8_t>(rng());
  auto sealed = format::SealChunk(TestKeys(), owner, BlobKind::kData, plain);
  EXPECT_TRUE(sealed.ok()) << sealed.status();
  TestBlob t;
  t.key = BlobKey{owner, sealed->id, 0};
  t.data = std::move(sealed->blob);
  t.checksum = codec::BlobChecksum(t.data);
  return t;
}

uint64_t NewSeed() {
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

class LayoutMigrationTest : public ::testing::Test {
 protected:
  LayoutMigrationTest() : fs_(env::PosixFileSystem()) {
    seg_options_.segment_target_bytes = 256 << 10;
    seg_options_.compact_bytes_per_second = 0;
    options_.bytes_per_second = 0;
    options_.batch_blobs = 16;
  }
  ~LayoutMigrationTest() override { CloseAll(); }

  std::string BlobsDir() const { return tmp_.File("blobs"); }

  // Opens what a daemon opens at start: the database, both registries, both stores, the
  // wrapper and the migrator.
  void OpenAll() {
    auto db = index::Database::Open(tmp_.File("index.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    old_registry_ = index::NewSqliteBlobRegistry(db_.get());
    seg_registry_ = index::NewSqliteSegmentRegistry(db_.get());
    OpenFiles();
    auto segments =
        SegmentBlobStore::Open(tmp_.path(), quota_, seg_registry_.get(), seg_options_, &fs_);
    ASSERT_TRUE(segments.ok()) << segments.status();
    segments_ = std::move(*segments);
    auto wrapper = MigratingBlobStore::Create(segments_.get(), files_.get(), quota_);
    ASSERT_TRUE(wrapper.ok()) << wrapper.status();
    store_ = std::move(*wrapper);
    auto migrator = FileLayoutMigrator::Create(BlobsDir(), store_.get(), options_);
    ASSERT_TRUE(migrator.ok()) << migrator.status();
    migrator_ = std::move(*migrator);
  }
  void OpenFiles() {
    auto files = DiskBlobStore::Open(BlobsDir(), quota_, old_registry_.get());
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = std::move(*files);
  }
  void CloseAll() {
    migrator_.reset();
    store_.reset();
    segments_.reset();
    files_.reset();
    seg_registry_.reset();
    old_registry_.reset();
    db_.reset();
  }

  // Fills the file layout with the old code: `n` blobs of 3 owners and sizes from a few bytes
  // to 40 KB, every 5th extra; damages one file and removes another.
  void BuildOldLayout(uint64_t seed, int n) {
    std::mt19937_64 rng(seed);
    auto db = index::Database::Open(tmp_.File("index.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    old_registry_ = index::NewSqliteBlobRegistry(db_.get());
    OpenFiles();
    const PeerId owners[] = {3, 5, 1ull << 63 | 7};  // one owner above INT64_MAX
    for (int i = 0; i < n; ++i) {
      const size_t size = rng() % 4 == 0 ? 20000 + rng() % 20000 : rng() % 3000;
      TestBlob b = MakeBlob(seed * 1000 + i, size, owners[rng() % 3]);
      b.extra = i % 5 == 0;
      auto put = files_->Put(b.key, b.data, b.checksum, PutOptions{.extra = b.extra});
      ASSERT_TRUE(put.ok()) << put.status();
      ASSERT_EQ(*put, PutOutcome::kStored);
      blobs_.push_back(std::move(b));
    }
    // One flipped byte, one missing file.
    TestBlob& bad = blobs_[rng() % blobs_.size()];
    bad.damaged = true;
    {
      std::fstream f(files_->PathFor(bad.key), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(bad.data.size() / 2));
      f.put(static_cast<char>(bad.data[bad.data.size() / 2] ^ 0x40));
    }
    for (TestBlob& b : blobs_) {
      if (!b.damaged) {
        b.missing = true;
        std::filesystem::remove(files_->PathFor(b.key));
        break;
      }
    }
    CloseAll();
  }

  std::vector<const TestBlob*> Good() const {
    std::vector<const TestBlob*> out;
    for (const TestBlob& b : blobs_) {
      if (!b.damaged && !b.missing) out.push_back(&b);
    }
    return out;
  }

  // What a user of the store depends on, at any moment of the migration: every good blob reads
  // back byte-identical through the wrapper; the damaged one is never served; listings hold
  // every good key once, in key order; Stats agrees with the listing.
  void ExpectServedFromEitherLayout(bool probe_damaged = true) {
    for (const TestBlob* b : Good()) {
      auto got = store_->Get(b->key);
      ASSERT_TRUE(got.ok()) << b->key.DebugString() << ": " << got.status();
      ASSERT_EQ(*got, b->data) << b->key.DebugString();
      ASSERT_TRUE(*store_->Has(b->key)) << b->key.DebugString();
    }
    // (A read finds the damage and quarantines the file, as scrub would.)
    for (const TestBlob& b : blobs_) {
      if (probe_damaged && (b.damaged || b.missing)) {
        EXPECT_FALSE(store_->Get(b.key).ok()) << b.key.DebugString();
      }
    }
    // Paged listing, small pages to exercise the merge.
    std::vector<BlobRecord> listed;
    std::optional<BlobKey> after;
    while (true) {
      auto page = store_->ListHeld(after, 7);
      ASSERT_TRUE(page.ok()) << page.status();
      if (page->empty()) break;
      listed.insert(listed.end(), page->begin(), page->end());
      after = page->back().key;
    }
    std::set<BlobKey> keys;
    uint64_t bytes = 0, extra = 0;
    for (size_t i = 0; i < listed.size(); ++i) {
      ASSERT_TRUE(keys.insert(listed[i].key).second)
          << "listed twice " << listed[i].key.DebugString();
      if (i > 0) {
        const int64_t a = static_cast<int64_t>(listed[i - 1].key.owner);
        const int64_t b = static_cast<int64_t>(listed[i].key.owner);
        ASSERT_TRUE(a < b || (a == b && listed[i - 1].key < listed[i].key)) << "out of order";
      }
      bytes += listed[i].size;
      if (listed[i].extra) ++extra;
    }
    for (const TestBlob* b : Good()) {
      ASSERT_TRUE(keys.count(b->key)) << b->key.DebugString();
    }
    EXPECT_LE(keys.size(), Good().size() + 2);  // the damaged and missing ones until found
    const StoreStats st = store_->Stats();
    EXPECT_EQ(st.blobs, listed.size());
    EXPECT_EQ(st.live_bytes, bytes);
    EXPECT_EQ(st.extra_blobs, extra);
    EXPECT_LE(st.used, quota_);
    // One owner's listing.
    auto owner3 = store_->ListOwner(3, std::nullopt, 1 << 20);
    ASSERT_TRUE(owner3.ok());
    size_t want3 = 0;
    for (const BlobRecord& r : listed) want3 += r.key.owner == 3;
    EXPECT_EQ(owner3->size(), want3);
  }

  // The end state: everything good in the segments alone with its extra flag, nothing left of
  // the file layout but the quarantined file, counters consistent.
  void ExpectMigrated() {
    ASSERT_TRUE(store_->migrated());
    std::map<BlobKey, BlobRecord> held;
    auto all = segments_->ListHeld(std::nullopt, 1 << 20);
    ASSERT_TRUE(all.ok());
    for (const BlobRecord& r : *all) held[r.key] = r;
    uint64_t bytes = 0, extra = 0;
    for (const TestBlob* b : Good()) {
      auto got = segments_->Get(b->key);
      ASSERT_TRUE(got.ok()) << b->key.DebugString() << ": " << got.status();
      EXPECT_EQ(*got, b->data);
      ASSERT_TRUE(held.count(b->key));
      EXPECT_EQ(held[b->key].extra, b->extra) << b->key.DebugString();
      EXPECT_EQ(held[b->key].kind, static_cast<uint8_t>(BlobKind::kData));
      bytes += b->data.size();
      extra += b->extra;
    }
    EXPECT_EQ(held.size(), Good().size());
    const StoreStats st = store_->Stats();
    EXPECT_EQ(st.blobs, Good().size());
    EXPECT_EQ(st.live_bytes, bytes);
    EXPECT_EQ(st.extra_blobs, extra);
    EXPECT_EQ(st.quota, quota_);
    for (const TestBlob& b : blobs_) {
      if (b.damaged || b.missing) {
        EXPECT_FALSE(*store_->Has(b.key));
        EXPECT_EQ(store_->Get(b.key).status().code(), absl::StatusCode::kNotFound);
      }
    }
    auto totals = old_registry_->Totals();
    ASSERT_TRUE(totals.ok());
    EXPECT_EQ(totals->blobs, 0u);
    // Only the quarantine directory with the damaged file is left of DIR/blobs.
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::recursive_directory_iterator(BlobsDir())) {
      left.push_back(e.path().lexically_relative(BlobsDir()).string());
    }
    ASSERT_EQ(left.size(), 2u) << (left.empty() ? "" : left[0]);
    EXPECT_EQ(left[0].rfind("quarantine", 0), 0u);
    auto needs = NeedsLayoutMigration(BlobsDir(), old_registry_.get());
    ASSERT_TRUE(needs.ok());
    EXPECT_FALSE(*needs);
  }

  index::TestTempDir tmp_;
  env::FaultInjectionFileSystem fs_;
  SegmentStoreOptions seg_options_;
  LayoutMigrationOptions options_;
  uint64_t quota_ = 1ull << 30;
  std::vector<TestBlob> blobs_;

  std::unique_ptr<index::Database> db_;
  std::unique_ptr<BlobRegistry> old_registry_;
  std::unique_ptr<SegmentRegistry> seg_registry_;
  std::unique_ptr<DiskBlobStore> files_;
  std::unique_ptr<SegmentBlobStore> segments_;
  std::unique_ptr<MigratingBlobStore> store_;
  std::unique_ptr<FileLayoutMigrator> migrator_;
};

TEST_F(LayoutMigrationTest, MovesEveryGoodBlobAndRemovesTheFileLayout) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuildOldLayout(seed, 300);
  OpenAll();
  auto needs = NeedsLayoutMigration(BlobsDir(), old_registry_.get());
  ASSERT_TRUE(needs.ok());
  EXPECT_TRUE(*needs);
  const LayoutMigrationProgress before = migrator_->Progress();
  EXPECT_EQ(before.remaining_blobs, 300u);  // the missing file's record too; the damage unseen
  int batches = 0;
  while (true) {
    auto done = migrator_->MigrateBatch();
    ASSERT_TRUE(done.ok()) << done.status();
    if (*done) break;
    ++batches;
    if (batches % 4 == 0) ExpectServedFromEitherLayout(/*probe_damaged=*/false);
  }
  EXPECT_GE(batches, 300 / 16);
  const LayoutMigrationProgress p = migrator_->Progress();
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.moved_blobs, Good().size());
  EXPECT_EQ(p.damaged_blobs, 1u);
  EXPECT_EQ(p.missing_blobs, 1u);
  EXPECT_EQ(p.remaining_blobs, 0u);
  uint64_t bytes = 0;
  for (const TestBlob* b : Good()) bytes += b->data.size();
  EXPECT_EQ(p.moved_bytes, bytes);
  ExpectMigrated();
  // Restart: nothing to do any more; the segments alone serve.
  CloseAll();
  OpenAll();
  needs = NeedsLayoutMigration(BlobsDir(), old_registry_.get());
  EXPECT_FALSE(*needs);
  ASSERT_TRUE(*migrator_->MigrateBatch());
  ExpectMigrated();
}

// A fault below the segment store (the N-th append, sync, create or directory sync fails), then
// a power cut and a restart, at many points: every good blob stays readable from one layout or
// the other after each restart, and the resumed migration reaches the same end state.
TEST_F(LayoutMigrationTest, ResumesAfterFaultsAndCrashesAtManyPoints) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  BuildOldLayout(seed, 200);
  options_.batch_blobs = 8;
  seg_options_.segment_target_bytes = 64 << 10;  // segment creation inside batches
  fs_.KeepRandomUnsyncedPrefixes(seed);
  OpenAll();
  int crashes = 0;
  for (int round = 0; round < 200; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const Op ops[] = {Op::kAppend, Op::kSync, Op::kCreate, Op::kSyncDir};
    fs_.FailAfter(ops[rng() % 4], 1 + rng() % 3);
    absl::StatusOr<bool> done = false;
    const int steps = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < steps && done.ok() && !*done; ++i) done = migrator_->MigrateBatch();
    fs_.ClearFailures();
    if (done.ok() && *done) break;
    // Crash (after an error, or just stop after a few batches) and restart.
    CloseAll();
    ASSERT_TRUE(fs_.SimulateCrash().ok());
    ++crashes;
    OpenAll();
    ExpectServedFromEitherLayout();
  }
  ASSERT_GT(crashes, 3);
  ASSERT_TRUE(migrator_->Run().ok());
  ExpectMigrated();
  std::printf("%d crashes\n", crashes);
}

// States an interrupted run leaves: a blob copied but its old record and file still there (the
// segment copy wins; here it is extra while the old record is regular: it is promoted), and a
// blob copied whose old file is gone but whose record is not.
TEST_F(LayoutMigrationTest, BlobsInBothLayoutsKeepTheSegmentCopy) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuildOldLayout(seed, 40);
  auto db = index::Database::Open(tmp_.File("index.db"));
  ASSERT_TRUE(db.ok());
  db_ = std::move(*db);
  seg_registry_ = index::NewSqliteSegmentRegistry(db_.get());
  {
    auto segments =
        SegmentBlobStore::Open(tmp_.path(), quota_, seg_registry_.get(), seg_options_, &fs_);
    ASSERT_TRUE(segments.ok());
    std::vector<PutItem> items;
    std::vector<const TestBlob*> good = Good();
    for (size_t i = 0; i < 10; ++i) {
      // Blob 1 (regular: every 5th is extra) copied as extra, as if promoted after the copy.
      const bool extra = i == 1 ? true : good[i]->extra;
      items.push_back({good[i]->key, good[i]->data, good[i]->checksum, {.extra = extra}});
    }
    for (const auto& r : (*segments)->PutBatch(items)) {
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }
  seg_registry_.reset();
  db_.reset();
  // Copied and its file removed, record left.
  OpenAll();
  std::filesystem::remove(files_->PathFor(Good()[2]->key));
  ExpectServedFromEitherLayout();
  ASSERT_TRUE(migrator_->Run().ok());
  const LayoutMigrationProgress p = migrator_->Progress();
  EXPECT_EQ(p.already_blobs, 1u);  // the one without its file
  EXPECT_EQ(p.moved_blobs, Good().size() - 1);
  ExpectMigrated();
  EXPECT_EQ(segments_->Stats().dead_bytes, 0u);  // no second copy was written
}

// Reads from another thread while the migration runs in this one: each good blob is served on
// every read, whichever layout holds it at that moment.
TEST_F(LayoutMigrationTest, ReadsDuringMigrationAreServedFromEitherLayout) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuildOldLayout(seed, 150);
  options_.batch_blobs = 4;
  OpenAll();
  std::atomic<bool> finished{false};
  std::atomic<int> reads{0}, failures{0};
  std::vector<const TestBlob*> good = Good();
  std::thread reader([&] {
    std::mt19937_64 rng(seed);
    while (!finished.load()) {
      const TestBlob* b = good[rng() % good.size()];
      auto got = store_->Get(b->key);
      auto has = store_->Has(b->key);
      if (!got.ok() || *got != b->data || !has.ok() || !*has) ++failures;
      ++reads;
    }
  });
  absl::Status st = migrator_->Run();
  finished = true;
  reader.join();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(failures.load(), 0) << "of " << reads.load() << " reads";
  ExpectMigrated();
}

// Puts, promotions and deletes through the wrapper during the migration; the quota covers both
// layouts throughout.
TEST_F(LayoutMigrationTest, PutsAndDeletesDuringMigrationWithinOneQuota) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuildOldLayout(seed, 60);
  OpenAll();
  uint64_t old_used = files_->Stats().used;
  CloseAll();
  quota_ = old_used + 6000;
  options_.batch_blobs = 5;
  OpenAll();
  // A repeated put of an old blob is a repeat; a regular put of an extra one promotes it.
  const TestBlob* extra = nullptr;
  for (const TestBlob* b : Good()) {
    if (b->extra) extra = b;
  }
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(*store_->Put(extra->key, extra->data, extra->checksum), PutOutcome::kAlreadyStored);
  blobs_[extra - blobs_.data()].extra = false;
  // New blobs go to the segments, within what is left of the quota.
  TestBlob fresh = MakeBlob(seed + 1, 4000, 3);
  EXPECT_EQ(*store_->Put(fresh.key, fresh.data, fresh.checksum), PutOutcome::kStored);
  EXPECT_TRUE(*segments_->Has(fresh.key));
  blobs_.push_back(fresh);
  // An extra put (which never evicts) is refused exactly while the sum of both layouts plus it
  // would exceed the quota. Records dropped by the migration (the missing file's) free room.
  TestBlob big = MakeBlob(seed + 2, 4000, 5);
  big.extra = true;
  bool big_stored = false;
  auto try_big = [&] {
    if (big_stored) return;
    const StoreStats st = store_->Stats();
    EXPECT_LE(st.used, quota_);
    auto put = store_->Put(big.key, big.data, big.checksum, PutOptions{.extra = true});
    if (st.used + big.data.size() <= quota_) {
      ASSERT_TRUE(put.ok()) << put.status();
      EXPECT_EQ(*put, PutOutcome::kStored);
      big_stored = true;
      blobs_.push_back(big);
    } else {
      EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted) << put.status();
    }
  };
  try_big();
  EXPECT_FALSE(big_stored);
  // Delete an old one: gone from both.
  const BlobKey gone = Good()[2]->key;
  ASSERT_TRUE(store_->Delete(gone).ok());
  EXPECT_FALSE(*store_->Has(gone));
  blobs_.erase(blobs_.begin() + (Good()[2] - blobs_.data()));
  while (true) {
    auto done = migrator_->MigrateBatch();
    ASSERT_TRUE(done.ok()) << done.status();
    ExpectServedFromEitherLayout();
    try_big();
    if (*done) break;
  }
  ExpectMigrated();
  EXPECT_FALSE(*store_->Has(gone));
}

TEST_F(LayoutMigrationTest, ReadingIsRateLimited) {
  const uint64_t seed = NewSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuildOldLayout(seed, 50);
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  options_.clock = &clock;
  options_.sleeper = &sleeper;
  options_.bytes_per_second = 20000;
  OpenAll();
  ASSERT_TRUE(migrator_->Run().ok());
  const LayoutMigrationProgress p = migrator_->Progress();
  ASSERT_GT(p.moved_bytes, 20000u);
  // Waited about (bytes read - burst) / rate seconds.
  EXPECT_GE(sleeper.total(), std::chrono::milliseconds((p.moved_bytes - 20000) * 1000 / 20000));
  ExpectMigrated();
}

TEST_F(LayoutMigrationTest, StopEndsARateLimitedRun) {
  const uint64_t seed = NewSeed();
  BuildOldLayout(seed, 20);
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  options_.clock = &clock;
  options_.sleeper = &sleeper;
  options_.bytes_per_second = 1;
  OpenAll();
  migrator_->Stop();
  EXPECT_EQ(migrator_->Run().code(), absl::StatusCode::kCancelled);
  // Nothing lost: a new migrator finishes the job.
  CloseAll();
  options_.bytes_per_second = 0;
  OpenAll();
  ASSERT_TRUE(migrator_->Run().ok());
  ExpectMigrated();
}

TEST_F(LayoutMigrationTest, NeedsMigrationOnlyWithTheFileLayout) {
  auto db = index::Database::Open(tmp_.File("index.db"));
  ASSERT_TRUE(db.ok());
  auto registry = index::NewSqliteBlobRegistry(db->get());
  EXPECT_FALSE(*NeedsLayoutMigration(BlobsDir(), registry.get()));  // no DIR/blobs
  std::filesystem::create_directories(BlobsDir() + "/quarantine");
  std::ofstream(BlobsDir() + "/quarantine/x.1") << "kept";
  EXPECT_FALSE(*NeedsLayoutMigration(BlobsDir(), registry.get()));
  std::filesystem::create_directories(BlobsDir() + "/ab/cd");
  EXPECT_TRUE(*NeedsLayoutMigration(BlobsDir(), registry.get()));  // left to clean up
  std::filesystem::remove_all(BlobsDir() + "/ab");
  TestBlob b = MakeBlob(1, 100, 3);
  ASSERT_TRUE(registry->Add(BlobRecord{b.key, b.data.size(), b.checksum}).ok());
  EXPECT_TRUE(*NeedsLayoutMigration(BlobsDir(), registry.get()));
}

}  // namespace
}  // namespace cairn::store
