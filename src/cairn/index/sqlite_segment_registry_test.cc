// SegmentRegistry conformance (SQLite and the store's in-memory registry), and a
// SegmentBlobStore on SQLite surviving reopen.
#include "cairn/index/sqlite_segment_registry.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "cairn/format/blob.h"
#include "cairn/index/test_temp_dir.h"
#include "cairn/store/segment.h"
#include "cairn/store/segment_blob_store.h"

namespace cairn::index {
namespace {

using store::RegistryBatch;
using store::SegmentRegistry;
using store::SegmentState;
using store::Slot;
using store::SlotState;

BlobKey Key(PeerId owner, uint8_t chunk, uint32_t shard) {
  BlobKey key;
  key.owner = owner;
  key.chunk.bytes.fill(chunk);
  key.shard = shard;
  return key;
}

Slot MakeSlot(const BlobKey& key, uint64_t segment, uint64_t offset, uint64_t size,
              bool extra = false, int64_t stored_ns = 1) {
  Slot s;
  s.record.key = key;
  s.record.size = size;
  s.record.extra = extra;
  s.record.kind = 2;
  for (size_t i = 0; i < s.record.checksum.size(); ++i) {
    s.record.checksum[i] = static_cast<uint8_t>(size + i);
  }
  s.location = {segment, offset};
  s.stored_ns = stored_ns;
  return s;
}

struct RegistryKind {
  std::string name;
  std::function<std::unique_ptr<SegmentRegistry>(TestTempDir&, std::unique_ptr<Database>&)> make;
};

class SegmentRegistryConformanceTest : public ::testing::TestWithParam<RegistryKind> {
 protected:
  void SetUp() override { reg_ = GetParam().make(dir_, db_); }
  TestTempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<SegmentRegistry> reg_;
};

TEST_P(SegmentRegistryConformanceTest, FindLiveManyAnswersEachKeyInOrder) {
  RegistryBatch b;
  b.add = {MakeSlot(Key(1, 1, 0), 1, 32, 100), MakeSlot(Key(1, 2, 0), 1, 208, 50)};
  b.put_segments = {{1, SegmentState::kSealed, 334}};
  ASSERT_TRUE(reg_->Apply(b, false).ok());
  const std::vector<BlobKey> keys = {Key(1, 2, 0), Key(9, 9, 0), Key(1, 1, 0), Key(1, 2, 0)};
  auto found = reg_->FindLiveMany(keys);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 4u);
  ASSERT_TRUE((*found)[0].has_value());
  EXPECT_EQ((*found)[0]->location.offset, 208u);
  EXPECT_FALSE((*found)[1].has_value());
  ASSERT_TRUE((*found)[2].has_value());
  EXPECT_EQ((*found)[2]->location.offset, 32u);
  ASSERT_TRUE((*found)[3].has_value());
  EXPECT_EQ((*found)[3]->record.key, Key(1, 2, 0));
  // The read ended: a write goes through.
  RegistryBatch more;
  more.add = {MakeSlot(Key(1, 3, 0), 1, 300, 10)};
  ASSERT_TRUE(reg_->Apply(more, false).ok());
  auto again = reg_->FindLiveMany(std::vector<BlobKey>{Key(1, 3, 0)});
  ASSERT_TRUE(again.ok() && (*again)[0].has_value());
}

TEST_P(SegmentRegistryConformanceTest, SlotsStatesAndSegments) {
  RegistryBatch b;
  b.add = {MakeSlot(Key(1, 1, 0), 1, 32, 100), MakeSlot(Key(1, 2, 0), 1, 208, 50, true, 5),
           MakeSlot(Key(2, 1, 3), 2, 32, 70, true, 3)};
  b.put_segments = {{1, SegmentState::kSealed, 334}, {2, SegmentState::kOpen, 178}};
  ASSERT_TRUE(reg_->Apply(b, false).ok());
  auto found = reg_->FindLive(Key(1, 2, 0));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->location.offset, 208u);
  EXPECT_EQ((*found)->record.size, 50u);
  EXPECT_EQ((*found)->record.kind, 2);
  EXPECT_TRUE((*found)->record.extra);
  EXPECT_EQ((*found)->record.checksum, MakeSlot(Key(1, 2, 0), 1, 208, 50).record.checksum);
  auto rows = reg_->Segments();
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].id, 1u);
  EXPECT_EQ((*rows)[0].state, SegmentState::kSealed);
  EXPECT_EQ((*rows)[0].registered_end, 334u);
  EXPECT_EQ((*rows)[1].state, SegmentState::kOpen);
  // A second live slot for a key is refused and changes nothing.
  RegistryBatch dup;
  dup.add = {MakeSlot(Key(1, 1, 0), 2, 500, 100)};
  dup.put_segments = {{3, SegmentState::kOpen, 32}};
  EXPECT_FALSE(reg_->Apply(dup, false).ok());
  EXPECT_EQ(reg_->Segments()->size(), 2u);
  // Dead, then a new live slot of the same key.
  RegistryBatch del;
  del.set_state = {{{1, 32}, SlotState::kDead}};
  ASSERT_TRUE(reg_->Apply(del, true).ok());
  EXPECT_FALSE(reg_->FindLive(Key(1, 1, 0))->has_value());
  ASSERT_TRUE(reg_->Apply(dup, false).ok());
  EXPECT_EQ((*reg_->FindLive(Key(1, 1, 0)))->location.segment, 2u);
  auto usage = reg_->Usage();
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].dead_bytes, 100u);
  EXPECT_EQ((*usage)[0].live_bytes, 50u);
  EXPECT_EQ((*usage)[0].extra_bytes, 50u);
  EXPECT_EQ((*usage)[1].live_bytes, 170u);
  EXPECT_EQ((*usage)[1].record_bytes, 170u + 2 * store::kRecordHeaderSize);
  // Extras oldest first; promotion.
  auto extras = reg_->ListExtras(10);
  ASSERT_EQ(extras->size(), 2u);
  EXPECT_EQ((*extras)[0].record.key, Key(2, 1, 3));
  RegistryBatch promote;
  promote.set_extra = {{{2, 32}, false}};
  ASSERT_TRUE(reg_->Apply(promote, true).ok());
  EXPECT_EQ(reg_->ListExtras(10)->size(), 1u);
  // Listing live slots in key order, paged; per owner.
  auto page = reg_->ListLive(std::nullopt, 2);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].record.key, Key(1, 1, 0));
  auto rest = reg_->ListLive((*page)[1].record.key, 10);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].record.key, Key(2, 1, 3));
  EXPECT_EQ(reg_->ListLiveOfOwner(1, std::nullopt, 10)->size(), 2u);
  EXPECT_EQ(reg_->ListLiveOfOwner(1, Key(9, 1, 0), 10)->size(), 1u);
  auto owners = reg_->UsageByOwner();
  ASSERT_EQ(owners->size(), 2u);
  EXPECT_EQ((*owners)[0].bytes, 150u);
  EXPECT_EQ((*owners)[1].bytes, 70u);
  // Compaction-style switch: move, retire, drop.
  RegistryBatch sw;
  sw.remove = {{1, 32}, {1, 208}};
  sw.add = {MakeSlot(Key(1, 2, 0), 4, 32, 50, true, 5)};
  sw.put_segments = {{4, SegmentState::kSealed, 158}, {1, SegmentState::kRetired, 0}};
  ASSERT_TRUE(reg_->Apply(sw, true).ok());
  EXPECT_EQ((*reg_->FindLive(Key(1, 2, 0)))->location.segment, 4u);
  EXPECT_EQ((*reg_->FindLive(Key(1, 2, 0)))->stored_ns, 5);
  EXPECT_TRUE(reg_->SlotsOf(1)->empty());
  RegistryBatch drop;
  drop.remove_segments = {1};
  ASSERT_TRUE(reg_->Apply(drop, false).ok());
  EXPECT_EQ(reg_->Segments()->size(), 3u);
  EXPECT_EQ(reg_->ListLive(std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    Registries, SegmentRegistryConformanceTest,
    ::testing::Values(RegistryKind{"Mem",
                                   [](TestTempDir&, std::unique_ptr<Database>&) {
                                     return store::NewMemSegmentRegistry();
                                   }},
                      RegistryKind{"Sqlite",
                                   [](TestTempDir& dir, std::unique_ptr<Database>& db) {
                                     auto opened = Database::Open(dir.File("index.db"));
                                     EXPECT_TRUE(opened.ok()) << opened.status();
                                     db = std::move(*opened);
                                     return NewSqliteSegmentRegistry(db.get());
                                   }}),
    [](const auto& info) { return info.param.name; });

// The real thing end to end: POSIX files, SQLite registry, reopen after puts, deletes and
// compaction.
TEST(SqliteSegmentStoreTest, BlobsSurviveReopenAndCompaction) {
  TestTempDir dir;
  codec::OwnerKeys keys;
  keys.id_key.fill(1);
  keys.encryption_key.fill(2);
  keys.chunker_seed.fill(3);
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i) {
    Bytes plain(1000 + rng() % 1000);
    for (auto& b : plain) b = static_cast<uint8_t>(rng());
    auto sealed = format::SealChunk(keys, 4, BlobKind::kData, plain);
    ASSERT_TRUE(sealed.ok());
    blobs.push_back({BlobKey{4, sealed->id, 0}, sealed->blob});
  }
  store::SegmentStoreOptions options;
  options.segment_target_bytes = 16 << 10;
  options.compact_bytes_per_second = 0;
  uint64_t live = 0;
  {
    auto db = Database::Open(dir.File("index.db"));
    ASSERT_TRUE(db.ok());
    auto reg = NewSqliteSegmentRegistry(db->get());
    auto s = store::SegmentBlobStore::Open(dir.File("peer"), 1 << 30, reg.get(), options,
                                           env::PosixFileSystem());
    ASSERT_TRUE(s.ok()) << s.status();
    std::vector<store::PutItem> items;
    for (const auto& [key, data] : blobs)
      items.push_back({key, data, codec::BlobChecksum(data), {}});
    for (const auto& r : (*s)->PutBatch(items)) ASSERT_TRUE(r.ok()) << r.status();
    for (size_t i = 0; i < blobs.size(); i += 2) ASSERT_TRUE((*s)->Delete(blobs[i].first).ok());
    for (size_t i = 1; i < blobs.size(); i += 2) live += blobs[i].second.size();
    auto n = (*s)->Compact();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_GT(*n, 0u);
  }
  auto db = Database::Open(dir.File("index.db"));
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->SchemaVersion(), Database::LatestSchemaVersion());
  auto reg = NewSqliteSegmentRegistry(db->get());
  auto s = store::SegmentBlobStore::Open(dir.File("peer"), 1 << 30, reg.get(), options,
                                         env::PosixFileSystem());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->recovery().replayed_records, 0u);
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(*(*s)->Has(blobs[i].first), false);
    } else {
      EXPECT_EQ(*(*s)->Get(blobs[i].first), blobs[i].second);
    }
  }
  EXPECT_EQ((*s)->Stats().live_bytes, live);
  ASSERT_TRUE((*s)->CompactAll().ok());
  EXPECT_EQ((*s)->Stats().used, live);
}

}  // namespace
}  // namespace cairn::index
