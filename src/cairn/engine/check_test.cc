// Check and repair through in-memory peers: check sees every lost, dead or corrupt blob;
// repair brings every chunk back to its target on live peers; what was restorable stays so.
#include "cairn/engine/check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "cairn/engine/backup.h"
#include "cairn/engine/gc.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;

class CheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("cairn-check-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src/sub");
    std::mt19937_64 rng(99);
    for (int i = 0; i < 6; ++i) {
      std::string data(200'000 + i * 1000, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      std::ofstream(root_ / "src" / ("f" + std::to_string(i)), std::ios::binary) << data;
    }
    std::ofstream(root_ / "src/sub/small") << "small file";
    catalog_ = ports::NewMemCatalog();
    for (PeerId id = 2; id <= 9; ++id) peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
    codec::Key master{};
    master[0] = 7;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {16 << 10, 64 << 10, 256 << 10};
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
  }
  void TearDown() override { fs::remove_all(root_); }

  void Backup(std::optional<codec::ErasureScheme> ec, uint32_t copies = 2) {
    BackupOptions opts;
    opts.paths = {(root_ / "src").string()};
    opts.copies = copies;
    opts.ec = ec;
    auto r = BackupEngine(ctx_).Run(opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->chunks_below_target, 0u);
  }

  CheckReport MustCheck(bool read_data = false) {
    CheckOptions o;
    o.read_data = read_data;
    auto r = Check(ctx_, o, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CheckReport{};
  }

  RepairReport MustRepair() {
    auto r = Repair(ctx_, {}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RepairReport{};
  }

  void ExpectRestorable() {
    auto snap = ResolveSnapshot(catalog_.get(), "latest");
    ASSERT_TRUE(snap.ok());
    RestoreOptions opts;
    opts.target = (root_ / "restore").string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->errors.empty()) << r->errors.front();
    for (int i = 0; i < 6; ++i) {
      std::string name = "f" + std::to_string(i);
      std::ifstream a(root_ / "src" / name, std::ios::binary),
          b(root_ / "restore/src" / name, std::ios::binary);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}),
                std::string(std::istreambuf_iterator<char>(b), {}))
          << name;
    }
  }

  fs::path root_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

TEST_F(CheckTest, HealthyBackupChecksClean) {
  Backup(std::nullopt, 2);
  CheckReport r = MustCheck(/*read_data=*/true);
  EXPECT_TRUE(r.healthy());
  EXPECT_GT(r.chunks, 10u);
  EXPECT_EQ(r.at_target, r.chunks);
  EXPECT_EQ(r.blobs_read, 2 * r.chunks);
  ASSERT_EQ(r.snapshots.size(), 1u);
  EXPECT_EQ(r.snapshots[0].chunks, r.chunks);
}

TEST_F(CheckTest, DeadPeerIsRepairedFromTheSurvivingCopy) {
  Backup(std::nullopt, 2);
  peers_.SetReachable(3, false);
  peers_.SetAlive(3, false);
  CheckReport before = MustCheck();
  EXPECT_GT(before.below_target, 0u);
  EXPECT_EQ(before.lost, 0u);
  EXPECT_FALSE(before.healthy());
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.repaired, before.below_target);
  EXPECT_EQ(rep.still_below_target, 0u);
  CheckReport after = MustCheck();
  EXPECT_TRUE(after.healthy()) << after.below_target << " below, " << after.lost << " lost";
  // A second repair has nothing to do (idempotent).
  EXPECT_EQ(MustRepair().repaired, 0u);
  ExpectRestorable();
}

TEST_F(CheckTest, RepairQueuesDeletionOfCopiesOnThePeerItReplaced) {
  // The blobs of a peer that was down when repair replaced them must not outlive the index's
  // knowledge of them: repair queues their deletion, delivered when the peer is back.
  Backup(std::nullopt, 2);
  const uint64_t held = peers_.BlobCount(3);
  ASSERT_GT(held, 0u);
  peers_.SetReachable(3, false);
  peers_.SetAlive(3, false);
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.still_below_target, 0u);
  auto queued = catalog_->ListPendingDeletions(3, 100000);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->size(), held);
  for (PeerId p : {2, 4, 5}) {
    auto other = catalog_->ListPendingDeletions(p, 10);
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(other->empty()) << "peer " << p;
  }
  // Peer 3 comes back: its stale copies are deleted; everything is still at target.
  peers_.SetReachable(3, true);
  peers_.SetAlive(3, true);
  auto delivered = DeliverDeletions(ctx_);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->delivered, held);
  EXPECT_EQ(peers_.BlobCount(3), 0u);
  EXPECT_TRUE(MustCheck().healthy());
  ExpectRestorable();
}

TEST_F(CheckTest, ErasureCodedChunksGetTheirMissingShardsRebuilt) {
  Backup(codec::ErasureScheme{4, 2});
  for (PeerId dead : {4, 7}) {
    peers_.SetReachable(dead, false);
    peers_.SetAlive(dead, false);
  }
  CheckReport before = MustCheck();
  EXPECT_GT(before.below_target, 0u);
  EXPECT_EQ(before.lost, 0u);
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.still_below_target, 0u) << (rep.errors.empty() ? "" : rep.errors[0]);
  CheckReport after = MustCheck(/*read_data=*/true);
  EXPECT_TRUE(after.healthy()) << after.below_target << " below, " << after.lost << " lost";
  // Every erasure-coded chunk: 6 shards on 6 distinct live peers.
  for (const auto& [id, missing] : after.below_detail)
    ADD_FAILURE() << id.ShortHex() << " missing " << missing;
  ExpectRestorable();
}

TEST_F(CheckTest, ReadDataFindsCorruptBlobsAndRepairReplacesThem) {
  Backup(std::nullopt, 2);
  // Flip a byte in 3 blobs on peer 2 (bit rot: the peer's recorded checksum no longer matches).
  auto held = peers_.Store(2)->ListHeld(std::nullopt, 1000);
  ASSERT_TRUE(held.ok());
  ASSERT_GE(held->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(store::MutateMemBlobForTesting(peers_.Store(2), (*held)[i].key, [](Bytes& b) {
                  b[b.size() / 2] ^= 0x40;
                }).ok());
  }
  EXPECT_TRUE(MustCheck(/*read_data=*/false).healthy());  // presence alone cannot see rot
  CheckReport found = MustCheck(/*read_data=*/true);
  EXPECT_EQ(found.corrupt, 3u);
  EXPECT_EQ(found.damaged.size(), 3u);
  EXPECT_EQ(found.below_target, 3u);
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.repaired, 3u);
  EXPECT_TRUE(MustCheck(/*read_data=*/true).healthy());
  ExpectRestorable();
}

TEST_F(CheckTest, ChunksWithNoSurvivorAreLost) {
  Backup(std::nullopt, 1);
  for (PeerId id = 2; id <= 9; ++id) peers_.SetAlive(id, false);
  CheckReport r = MustCheck();
  EXPECT_EQ(r.lost, r.chunks);
  EXPECT_FALSE(r.healthy());
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.lost, r.chunks);
  EXPECT_EQ(rep.repaired, 0u);
}

}  // namespace
}  // namespace cairn::engine
