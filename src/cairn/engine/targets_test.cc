// Redundancy targets through in-memory peers (docs/operations.md "Redundancy targets"): a
// chunk's target is the largest one a remaining snapshot asks for, so forgetting a `--copies 5`
// snapshot that the cluster could never hold leaves check and repair healthy; a backup says up
// front when the cluster has too few storage peers; check and repair report such a shortfall
// once per target instead of once per chunk.
#include <gtest/gtest.h>

#include <set>

#include "cairn/engine/backup.h"
#include "cairn/engine/check.h"
#include "cairn/engine/gc.h"
#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/engine/restore.h"

namespace cairn::engine {
namespace {

using namespace lifecycle_testing;  // NOLINT(build/namespaces)

// An owner (peer 1), a MemCatalog and `npeers` storage peers 2.. on distinct hosts.
class TargetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    root_ =
        fs::temp_directory_path() / ("cairn-targets-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(root_);
    std::mt19937_64 rng(20240917);
    for (int i = 0; i < 5; ++i)
      WriteFile(Source() / ("f" + std::to_string(i)), RandomData(rng, 60'000 + i * 7000));
    WriteFile(Source() / "sub/small", "small file\n");
    WriteFile(Source() / "sub/deeper/x", RandomData(rng, 30'000));
    catalog_ = ports::NewMemCatalog();
    codec::Key master{};
    master[0] = 51;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {4096, 16384, 65536};  // small chunks: many of them in little data
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
    peers_.SetCaller(1);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  fs::path Source() { return root_ / "src"; }

  void AddPeers(int n) {
    for (PeerId id = 2; id < static_cast<PeerId>(2 + n); ++id)
      peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
  }

  BackupResult MustBackup(uint32_t copies, std::optional<codec::ErasureScheme> ec = std::nullopt,
                          bool use_parent = true) {
    BackupOptions opts;
    opts.use_parent = use_parent;
    opts.paths = {Source().string()};
    opts.copies = copies;
    opts.ec = ec;
    opts.hostname = "laptop";
    opts.upload_threads = 2;
    auto r = BackupEngine(ctx_).Run(opts, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : BackupResult{};
  }

  CheckReport MustCheck() {
    auto r = Check(ctx_, CheckOptions{}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CheckReport{};
  }

  RepairReport MustRepair() {
    auto r = Repair(ctx_, CheckOptions{}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RepairReport{};
  }

  GcReport MustCollect() {
    auto r = CollectGarbage(ctx_, GcOptions{}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : GcReport{};
  }

  void Forget(const ChunkId& id) {
    auto removed = catalog_->RemoveSnapshot(id);
    ASSERT_TRUE(removed.ok()) << removed.status();
    ASSERT_TRUE(*removed);
  }

  uint32_t TargetOf(const ChunkId& id) {
    auto found = catalog_->FindChunk(id);
    EXPECT_TRUE(found.ok() && found->has_value()) << id.ShortHex();
    return found.ok() && found->has_value() ? (*found)->target : 0;
  }

  std::string RestoreAndCompare(const BackupResult& b) {
    RestoreOptions opts;
    opts.target = (root_ / ("restore-" + b.snapshot_id.ShortHex())).string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx_, b.snapshot, opts, nullptr);
    if (!r.ok()) return "restore failed: " + r.status().ToString();
    if (!r->errors.empty()) return "restore errors: " + r->errors.front();
    std::string diff = CompareTrees(Source(), fs::path(opts.target) / "src");
    fs::remove_all(opts.target);
    return diff;
  }

  fs::path root_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

TEST(RedundancyWarningTest, SaysWhatTheClusterCannotHold) {
  auto peers = [](int known, int alive) {
    std::vector<StoragePeer> out;
    for (int i = 0; i < known; ++i) {
      StoragePeer p;
      p.id = static_cast<PeerId>(2 + i);
      p.host = "host" + std::to_string(i);
      p.alive = i < alive;
      out.push_back(p);
    }
    return out;
  };
  struct Case {
    uint32_t copies;
    std::optional<codec::ErasureScheme> ec;
    int known, alive;
    std::string want;
  };
  const std::vector<Case> cases = {
      {5, std::nullopt, 2, 2,
       "--copies 5 asks for 5 copies but only 2 other storage peers are known; chunks will stay "
       "below target until more peers join"},
      {2, std::nullopt, 1, 1,
       "--copies 2 asks for 2 copies but only 1 other storage peer is known; chunks will stay "
       "below target until more peers join"},
      {2, codec::ErasureScheme{4, 2}, 3, 3,
       "--ec 4+2 asks for 6 shards on distinct peers but only 3 other storage peers are known; "
       "chunks will stay below target until more peers join"},
      {3, std::nullopt, 4, 2,
       "--copies 3 asks for 3 copies but only 2 of the 4 other storage peers are alive; chunks "
       "will stay below target until enough of them are back"},
      {2, std::nullopt, 2, 2, ""},
      {5, codec::ErasureScheme{2, 1}, 3, 3, ""},  // k+m, not --copies, counts
      {1, std::nullopt, 5, 1, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RedundancyWarning(c.copies, c.ec, peers(c.known, c.alive)), c.want)
        << "copies " << c.copies << " ec " << (c.ec ? c.ec->ToString() : "-") << " known "
        << c.known << " alive " << c.alive;
  }
}

// The reported defect: `backup --copies 5` with 2 storage peers, a later copies-2 backup of the
// same data, then `forget` of the copies-5 snapshot. Its chunks must not stay "below target".
TEST_F(TargetsTest, ForgettingTheSnapshotThatAskedTooMuchLowersTargets) {
  AddPeers(2);
  BackupResult five = MustBackup(5);
  EXPECT_TRUE(five.degraded());
  EXPECT_GT(five.chunks_below_target, 0u);
  EXPECT_EQ(five.redundancy_warning,
            "--copies 5 asks for 5 copies but only 2 other storage peers are known; chunks will "
            "stay below target until more peers join");
  BackupResult two = MustBackup(2);
  EXPECT_FALSE(two.degraded());
  EXPECT_EQ(two.redundancy_warning, "");

  // Before the forget: every chunk of the copies-5 snapshot is short of peers, said once.
  CheckReport before = MustCheck();
  EXPECT_EQ(before.lost, 0u);
  EXPECT_GT(before.below_target, 0u);
  EXPECT_EQ(before.storage_peers, 2u);
  ASSERT_EQ(before.short_of_peers.size(), 1u);
  EXPECT_EQ(before.short_of_peers[0], (PeerShortfall{5, before.below_target}));
  EXPECT_EQ(
      DescribeShortfalls(before.short_of_peers, before.storage_peers),
      std::vector<std::string>{std::to_string(before.below_target) +
                               " chunks below target: only 2 storage peers for a target of 5"});
  RepairReport repair = MustRepair();
  EXPECT_TRUE(repair.errors.empty()) << repair.errors.front();
  EXPECT_EQ(repair.errors_omitted, 0u);
  EXPECT_EQ(repair.still_below_target, before.below_target);
  EXPECT_EQ(repair.short_of_peers, before.short_of_peers);
  EXPECT_EQ(repair.blobs_written, 0u);  // both peers hold every chunk already

  // Forget it: the chunks it shared with the copies-2 snapshot now want 2 copies.
  Forget(five.snapshot_id);
  GcReport gc = MustCollect();
  EXPECT_EQ(gc.unreferenced_chunks, 1u);  // the copies-5 snapshot's own blob
  EXPECT_EQ(gc.targets_lowered, before.below_target - 1);
  EXPECT_EQ(gc.targets_raised, 0u);

  CheckReport after = MustCheck();
  EXPECT_TRUE(after.healthy()) << after.below_target << " below target";
  EXPECT_EQ(after.at_target, after.chunks);
  EXPECT_TRUE(after.short_of_peers.empty());
  RepairReport again = MustRepair();
  EXPECT_EQ(again.still_below_target, 0u);
  EXPECT_TRUE(again.errors.empty());
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks_below_target, 0u);
  EXPECT_EQ(RestoreAndCompare(two), "");
  // A second collection has nothing left to change.
  GcReport idle = MustCollect();
  EXPECT_EQ(idle.targets_lowered + idle.targets_raised + idle.unreferenced_chunks, 0u);
}

// `forget --no-prune`: RecomputeTargets sets the targets without collecting anything.
TEST_F(TargetsTest, RecomputeTargetsWithoutCollecting) {
  AddPeers(2);
  BackupResult five = MustBackup(5);
  BackupResult two = MustBackup(2);
  Forget(five.snapshot_id);
  auto r = RecomputeTargets(ctx_, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->targets_lowered, 0u);
  EXPECT_EQ(r->unreferenced_chunks, 0u);
  EXPECT_EQ(r->deletions_queued, 0u);
  EXPECT_TRUE(TargetOf(five.snapshot_id) == 5u);  // garbage, left to a collection
  CheckReport after = MustCheck();
  EXPECT_TRUE(after.healthy()) << after.below_target << " below target";
  EXPECT_EQ(RestoreAndCompare(two), "");
}

// A chunk shared by a copies-5 and a copies-2 snapshot keeps target 5 until the copies-5
// snapshot is forgotten, whatever order the snapshots were taken and forgotten in.
TEST_F(TargetsTest, SharedChunkKeepsTheLargestTargetOfTheSnapshotsThatRemain) {
  AddPeers(6);
  // Without a parent every file is read, so the copies-5 backup tops every shared chunk up.
  BackupResult two = MustBackup(2, std::nullopt, false);  // oldest: walked first by time
  BackupResult five = MustBackup(5, std::nullopt, false);
  BackupResult two_b = MustBackup(2, std::nullopt, false);  // deduplicates against them
  for (const auto* b : {&two, &five, &two_b}) EXPECT_FALSE(b->degraded());
  const ChunkSet shared = ReferencedChunks(ctx_, {five.snapshot_id, five.snapshot});
  ASSERT_GT(shared.size(), 10u);

  GcReport gc = MustCollect();
  EXPECT_EQ(gc.targets_lowered + gc.targets_raised, 0u);
  for (const ChunkId& id : shared) EXPECT_EQ(TargetOf(id), 5u) << id.ShortHex();

  // Forgetting a copies-2 snapshot changes nothing: the copies-5 one still asks for 5.
  Forget(two.snapshot_id);
  gc = MustCollect();
  EXPECT_EQ(gc.targets_lowered, 0u);
  for (const ChunkId& id : shared) EXPECT_EQ(TargetOf(id), 5u) << id.ShortHex();

  // Forgetting the copies-5 snapshot: what remains asks for 2.
  Forget(five.snapshot_id);
  gc = MustCollect();
  EXPECT_EQ(gc.unreferenced_chunks, 1u);  // its snapshot blob
  EXPECT_EQ(gc.targets_lowered, shared.size() - 1);
  for (const ChunkId& id : shared) {
    if (id == five.snapshot_id) continue;
    EXPECT_EQ(TargetOf(id), 2u) << id.ShortHex();
  }
  CheckReport check = MustCheck();
  EXPECT_TRUE(check.healthy()) << check.below_target << " below target";
  RepairReport repair = MustRepair();
  EXPECT_EQ(repair.blobs_written, 0u);
  EXPECT_EQ(RestoreAndCompare(two_b), "");
}

// A backup reuses the chunk lists of files unchanged since its parent without topping them up,
// so a copies-5 backup over a copies-2 parent leaves them at 2 copies. A collection gives them
// the target the copies-5 snapshot asks for, and repair then tops them up.
TEST_F(TargetsTest, CollectionRaisesTargetsThatABackupFromItsParentLeftLow) {
  AddPeers(6);
  MustBackup(2);
  BackupResult five = MustBackup(5);
  EXPECT_GT(five.files_unchanged, 0u);
  GcReport gc = MustCollect();
  EXPECT_GT(gc.targets_raised, 0u);
  EXPECT_EQ(gc.targets_lowered, 0u);
  CheckReport check = MustCheck();
  EXPECT_EQ(check.below_target, gc.targets_raised);
  EXPECT_TRUE(check.short_of_peers.empty());
  RepairReport repair = MustRepair();
  EXPECT_EQ(repair.repaired, gc.targets_raised);
  EXPECT_TRUE(repair.errors.empty());
  for (const ChunkId& id : ReferencedChunks(ctx_, {five.snapshot_id, five.snapshot})) {
    auto found = catalog_->FindChunk(id);
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ((*found)->target, 5u) << id.ShortHex();
    EXPECT_GE((*found)->holders.size(), 5u) << id.ShortHex();
  }
  EXPECT_TRUE(MustCheck().healthy());
}

// Repair reports the chunks it cannot bring to target for want of peers once, spreads them
// onto every alive peer all the same, and keeps its per-chunk error lines to a few.
TEST_F(TargetsTest, RepairSpreadsWhatItCanAndSummarizesTheShortfall) {
  AddPeers(3);
  BackupResult five = MustBackup(5);
  EXPECT_EQ(five.redundancy_warning,
            "--copies 5 asks for 5 copies but only 3 other storage peers are known; chunks will "
            "stay below target until more peers join");
  // Lose every blob on peer 4: repair must put them back there (3 peers, target 5).
  const uint64_t lost_blobs = peers_.BlobCount(4);
  ASSERT_GT(lost_blobs, 0u);
  for (const ChunkId& id : ReferencedChunks(ctx_, {five.snapshot_id, five.snapshot})) {
    ASSERT_TRUE(peers_.Store(4)->Delete({1, id, 0}).ok());
  }
  ASSERT_EQ(peers_.BlobCount(4), 0u);
  RepairReport repair = MustRepair();
  EXPECT_TRUE(repair.errors.empty()) << repair.errors.front();
  EXPECT_EQ(repair.blobs_written, lost_blobs);
  EXPECT_EQ(peers_.BlobCount(4), lost_blobs);
  EXPECT_EQ(repair.storage_peers, 3u);
  ASSERT_EQ(repair.short_of_peers.size(), 1u);
  EXPECT_EQ(repair.short_of_peers[0].target, 5u);
  EXPECT_EQ(repair.short_of_peers[0].chunks, repair.still_below_target);
  EXPECT_EQ(repair.lost, 0u);
  // A peer dies: 2 alive peers, and repair has nothing to fetch or put.
  peers_.SetAlive(4, false);
  RepairReport again = MustRepair();
  EXPECT_EQ(again.storage_peers, 2u);
  EXPECT_EQ(again.blobs_written, 0u);
  EXPECT_TRUE(again.errors.empty());
  ASSERT_EQ(again.short_of_peers.size(), 1u);
  EXPECT_EQ(again.short_of_peers[0].chunks, again.still_below_target);
  EXPECT_EQ(RestoreAndCompare(five), "");
}

}  // namespace
}  // namespace cairn::engine
