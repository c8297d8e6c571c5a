// MovedOutbox conformance (SQLite and the store's in-memory outbox) and SQLite persistence.
#include "cairn/index/sqlite_moved_outbox.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "cairn/index/database_impl.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::index {
namespace {

using store::MovedBlob;
using store::MovedOutbox;

BlobKey Key(PeerId owner, uint8_t chunk, uint32_t shard) {
  BlobKey key;
  key.owner = owner;
  key.chunk.bytes.fill(chunk);
  key.shard = shard;
  return key;
}

struct Harness {
  virtual ~Harness() = default;
  std::unique_ptr<MovedOutbox> outbox;
};

struct MemHarness : Harness {
  MemHarness() { outbox = store::NewMemMovedOutbox(); }
};

struct SqliteHarness : Harness {
  SqliteHarness() { Reopen(); }
  void Reopen() {
    outbox.reset();
    db.reset();
    auto opened = Database::Open(dir.File("index.db"));
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return;
    db = std::move(*opened);
    outbox = NewSqliteMovedOutbox(db.get());
  }
  TestTempDir dir;
  std::unique_ptr<Database> db;
};

struct Impl {
  const char* name;
  std::function<std::unique_ptr<Harness>()> make;
};

class MovedOutboxConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_->outbox, nullptr);
    outbox_ = harness_->outbox.get();
  }
  std::vector<MovedBlob> List(PeerId owner, size_t limit = 100) {
    auto listed = outbox_->List(owner, limit);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? *listed : std::vector<MovedBlob>{};
  }
  uint64_t Count() {
    auto count = outbox_->Count();
    EXPECT_TRUE(count.ok()) << count.status();
    return count.ok() ? *count : ~0ull;
  }
  std::unique_ptr<Harness> harness_;
  MovedOutbox* outbox_ = nullptr;
};

TEST_P(MovedOutboxConformance, EmptyOutbox) {
  EXPECT_EQ(Count(), 0u);
  auto owners = outbox_->Owners();
  ASSERT_TRUE(owners.ok()) << owners.status();
  EXPECT_TRUE(owners->empty());
  EXPECT_TRUE(List(1).empty());
  EXPECT_TRUE(outbox_->Ack({}).ok());
  EXPECT_TRUE(outbox_->Ack({{Key(1, 1, 0), 2}}).ok());  // nothing queued: fine
  EXPECT_EQ(outbox_->List(1, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(MovedOutboxConformance, ListsOldestFirstPerOwner) {
  // Queued in an order unlike the key order, for two owners.
  const std::vector<MovedBlob> owner1 = {
      {Key(1, 9, 0), 20}, {Key(1, 2, 1), 21}, {Key(1, 5, 0), 22}, {Key(1, 2, 0), 23}};
  const std::vector<MovedBlob> owner4 = {{Key(4, 1, 0), 30}, {Key(4, 0, 3), 31}};
  for (size_t i = 0; i < owner1.size(); ++i) {
    ASSERT_TRUE(outbox_->Add(owner1[i]).ok());
    if (i < owner4.size()) {
      ASSERT_TRUE(outbox_->Add(owner4[i]).ok());
    }
  }
  EXPECT_EQ(Count(), 6u);
  EXPECT_EQ(List(1), owner1);
  EXPECT_EQ(List(4), owner4);
  EXPECT_EQ(List(1, 2), std::vector<MovedBlob>(owner1.begin(), owner1.begin() + 2));
  EXPECT_TRUE(List(2).empty());
}

TEST_P(MovedOutboxConformance, AddReplacesTheNoticeForAKey) {
  ASSERT_TRUE(outbox_->Add({Key(1, 1, 0), 20}).ok());
  ASSERT_TRUE(outbox_->Add({Key(1, 2, 0), 21}).ok());
  ASSERT_TRUE(outbox_->Add({Key(1, 1, 0), 25}).ok());  // moved on again: now held by 25
  EXPECT_EQ(Count(), 2u);
  EXPECT_EQ(List(1), (std::vector<MovedBlob>{{Key(1, 2, 0), 21}, {Key(1, 1, 0), 25}}));
}

TEST_P(MovedOutboxConformance, OwnersAscendingAndUnique) {
  const PeerId big = (1ull << 63) + 3;  // stored as a negative integer by SQLite
  ASSERT_TRUE(outbox_->Add({Key(big, 1, 0), 2}).ok());
  ASSERT_TRUE(outbox_->Add({Key(7, 1, 0), 2}).ok());
  ASSERT_TRUE(outbox_->Add({Key(7, 2, 0), 2}).ok());
  ASSERT_TRUE(outbox_->Add({Key(3, 1, 0), 2}).ok());
  auto owners = outbox_->Owners();
  ASSERT_TRUE(owners.ok()) << owners.status();
  EXPECT_EQ(*owners, (std::vector<PeerId>{3, 7, big}));
  EXPECT_EQ(List(big), (std::vector<MovedBlob>{{Key(big, 1, 0), 2}}));
}

TEST_P(MovedOutboxConformance, AckDropsOnlyWhatWasDelivered) {
  ASSERT_TRUE(outbox_->Add({Key(1, 1, 0), 20}).ok());
  ASSERT_TRUE(outbox_->Add({Key(1, 2, 0), 21}).ok());
  ASSERT_TRUE(outbox_->Add({Key(1, 3, 0), 22}).ok());
  const std::vector<MovedBlob> delivered = List(1, 2);
  ASSERT_EQ(delivered.size(), 2u);
  // Meanwhile the second key moved on again (to 29): that newer notice is still owed.
  ASSERT_TRUE(outbox_->Add({Key(1, 2, 0), 29}).ok());
  ASSERT_TRUE(outbox_->Ack(delivered).ok());
  EXPECT_EQ(List(1), (std::vector<MovedBlob>{{Key(1, 3, 0), 22}, {Key(1, 2, 0), 29}}));
  EXPECT_EQ(Count(), 2u);
  ASSERT_TRUE(outbox_->Ack(delivered).ok());  // again: idempotent
  EXPECT_EQ(Count(), 2u);
  ASSERT_TRUE(outbox_->Ack(List(1)).ok());
  EXPECT_EQ(Count(), 0u);
  EXPECT_TRUE(outbox_->Owners()->empty());
}

INSTANTIATE_TEST_SUITE_P(
    All, MovedOutboxConformance,
    ::testing::Values(Impl{"Mem", [] { return std::unique_ptr<Harness>(new MemHarness()); }},
                      Impl{"Sqlite", [] { return std::unique_ptr<Harness>(new SqliteHarness()); }}),
    [](const ::testing::TestParamInfo<Impl>& info) { return std::string(info.param.name); });

TEST(SqliteMovedOutboxTest, SurvivesReopen) {
  SqliteHarness h;
  ASSERT_TRUE(h.outbox->Add({Key(2, 5, 0), 8}).ok());
  ASSERT_TRUE(h.outbox->Add({Key(2, 1, 1), 9}).ok());
  ASSERT_TRUE(h.outbox->Add({Key(3, 1, 0), 9}).ok());
  ASSERT_TRUE(h.outbox->Ack({{Key(3, 1, 0), 9}}).ok());
  h.Reopen();
  ASSERT_NE(h.outbox, nullptr);
  EXPECT_EQ(*h.outbox->Count(), 2u);
  EXPECT_EQ(*h.outbox->Owners(), std::vector<PeerId>{2});
  EXPECT_EQ(*h.outbox->List(2, 10), (std::vector<MovedBlob>{{Key(2, 5, 0), 8}, {Key(2, 1, 1), 9}}));
  // Queued after the reopen: after the older ones.
  ASSERT_TRUE(h.outbox->Add({Key(2, 0, 0), 7}).ok());
  EXPECT_EQ(h.outbox->List(2, 10)->back(), (MovedBlob{Key(2, 0, 0), 7}));
}

TEST(SqliteMovedOutboxTest, DamagedRowIsDataLossNotACrash) {
  SqliteHarness h;
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO moved_outbox (owner, chunk_id, shard, to_peer, queued_ns) "
                           "VALUES (1, x'0102', 0, 5, 0)")
                    .ok());
  }
  EXPECT_EQ(h.outbox->List(1, 10).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*h.outbox->Count(), 1u);
}

}  // namespace
}  // namespace cairn::index
