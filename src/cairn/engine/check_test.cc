// Check and repair through in-memory peers: check sees every lost, dead or corrupt blob;
// repair brings every chunk back to its target on live peers; what was restorable stays so.
#include "cairn/engine/check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "cairn/engine/backup.h"
#include "cairn/engine/gc.h"
#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;
using lifecycle_testing::ReferencedChunks;

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

  // Every chunk the catalog records, with its placements.
  std::map<ChunkId, ports::ChunkRecord> Records() {
    std::map<ChunkId, ports::ChunkRecord> out;
    auto snaps = catalog_->ListSnapshots();
    EXPECT_TRUE(snaps.ok());
    if (!snaps.ok()) return out;
    for (const auto& snap : *snaps) {
      for (const ChunkId& id : ReferencedChunks(ctx_, {snap.id, snap.snapshot})) {
        auto found = catalog_->FindChunk(id);
        EXPECT_TRUE(found.ok() && found->has_value()) << id.ShortHex();
        if (found.ok() && found->has_value()) out[id] = **found;
      }
    }
    return out;
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

// docs/operations.md "Sites and off-site copies".
TEST_F(CheckTest, OffsiteCopiesArePlacedCheckedAndRepaired) {
  peers_.SetSite(9, "offsite");
  BackupOptions opts;
  opts.paths = {(root_ / "src").string()};
  opts.copies = 2;
  opts.offsite = 1;
  auto b = BackupEngine(ctx_).Run(opts, nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->chunks_below_target, 0u);
  std::map<ChunkId, ports::ChunkRecord> records = Records();
  ASSERT_GT(records.size(), 10u);
  for (const auto& [id, r] : records) {
    EXPECT_EQ(r.offsite, 1u) << id.ShortHex();
    EXPECT_EQ(r.holders.size(), 2u) << id.ShortHex();
    EXPECT_TRUE(std::count(r.holders.begin(), r.holders.end(), PeerId{9})) << id.ShortHex();
  }
  CheckReport r = MustCheck();
  EXPECT_TRUE(r.healthy());
  EXPECT_EQ(r.without_offsite, 0u);

  // The off-site peer dies: every chunk is below target and without its off-site copy; repair
  // restores the copies on the LAN but cannot place the off-site one.
  peers_.SetReachable(9, false);
  peers_.SetAlive(9, false);
  r = MustCheck();
  EXPECT_EQ(r.without_offsite, r.chunks);
  EXPECT_EQ(r.below_target, r.chunks);
  RepairReport rep = MustRepair();
  EXPECT_EQ(rep.repaired, 0u);
  r = MustCheck();
  EXPECT_EQ(r.without_offsite, r.chunks);

  // A new off-site peer: repair adds the off-site copy beyond the two held on the LAN.
  peers_.AddPeer(10, "bucket", 1ull << 30);
  peers_.SetSite(10, "offsite");
  rep = MustRepair();
  EXPECT_EQ(rep.repaired, r.chunks);
  r = MustCheck();
  EXPECT_TRUE(r.healthy()) << r.below_target << " below, " << r.without_offsite << " no off-site";
  for (const auto& [id, rec] : Records()) {
    EXPECT_TRUE(std::count(rec.holders.begin(), rec.holders.end(), PeerId{10})) << id.ShortHex();
  }
  ExpectRestorable();
}

TEST_F(CheckTest, OffsiteShardsGoToAnotherSiteAndNoOffsitePeerIsDegradedNotFailed) {
  peers_.SetSite(9, "offsite");
  BackupOptions opts;
  opts.paths = {(root_ / "src").string()};
  opts.ec = codec::ErasureScheme{2, 1};
  opts.offsite = 1;
  auto b = BackupEngine(ctx_).Run(opts, nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->chunks_below_target, 0u);
  for (const auto& [id, r] : Records()) {
    std::set<PeerId> holders(r.holders.begin(), r.holders.end());
    for (const auto& s : r.shards) holders.insert(s.peer);
    EXPECT_TRUE(holders.count(9)) << id.ShortHex() << (r.erasure() ? " shards" : " copies");
  }
  EXPECT_EQ(MustCheck().without_offsite, 0u);

  // Without a live off-site peer the backup still stores everything, below target.
  peers_.SetAlive(9, false);
  peers_.SetReachable(9, false);
  std::ofstream(root_ / "src/new", std::ios::binary) << std::string(300'000, 'n');
  b = BackupEngine(ctx_).Run(opts, nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT(b->chunks_below_target, 0u);
  EXPECT_NE(b->redundancy_warning.find("off-site"), std::string::npos) << b->redundancy_warning;
  ExpectRestorable();
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
  // Every erasure-coded chunk: 6 shards on 6 distinct live peers, so that any 2 of them can
  // be lost.
  for (const auto& [id, missing] : after.below_detail)
    ADD_FAILURE() << id.ShortHex() << " missing " << missing;
  size_t ec_chunks = 0;
  for (const auto& [id, record] : Records()) {
    if (!record.erasure()) continue;
    ++ec_chunks;
    EXPECT_TRUE(record.AtTarget()) << id.ShortHex();
    EXPECT_EQ(PeerLossesSurvived(record), 2u) << id.ShortHex();
    for (const auto& sh : record.shards) EXPECT_TRUE(sh.peer != 4 && sh.peer != 7);
  }
  EXPECT_GT(ec_chunks, 5u);
  // A second repair has nothing to do and nothing it could improve.
  RepairReport again = MustRepair();
  EXPECT_EQ(again.blobs_written, 0u);
  EXPECT_EQ(again.still_below_target, 0u);
  EXPECT_EQ(again.unimprovable, 0u);
  EXPECT_TRUE(again.survives.empty());
  ExpectRestorable();
}

// docs/operations.md "When the cluster is too small": 7 storage peers hold 4+2 chunks, 2 die.
// Repair rebuilds every missing shard on the 5 survivors (one of them holds two), so that any 1
// more lost peer still leaves k shards; a second repair fetches nothing; when a sixth peer is
// back, the doubled-up shard moves to it and every chunk is at target again.
TEST_F(CheckTest, TooFewPeersForKPlusMGetAsMuchToleranceAsTheyAllow) {
  peers_.SetReachable(9, false);
  peers_.SetAlive(9, false);
  Backup(codec::ErasureScheme{4, 2});
  for (PeerId dead : {4, 7}) {
    peers_.SetReachable(dead, false);
    peers_.SetAlive(dead, false);
  }
  size_t ec_chunks = 0;
  for (const auto& [id, record] : Records()) ec_chunks += record.erasure();
  ASSERT_GT(ec_chunks, 5u);

  CheckReport before = MustCheck();
  EXPECT_EQ(before.lost, 0u);
  EXPECT_EQ(before.storage_peers, 5u);
  // Each chunk was on 6 of the 7 peers: it lost 1 shard (survives 1 more loss) or 2 (none).
  uint64_t survive_counted = 0;
  for (const Tolerance& t : before.survives) {
    EXPECT_LE(t.peers, 1u);
    survive_counted += t.chunks;
  }
  EXPECT_EQ(survive_counted, before.below_target);
  ASSERT_FALSE(before.survives.empty());
  EXPECT_EQ(before.survives[0].peers, 0u) << "no chunk lost two shards: pick other victims";

  RepairReport rep = MustRepair();
  EXPECT_TRUE(rep.errors.empty()) << rep.errors.front();
  EXPECT_EQ(rep.lost, 0u);
  EXPECT_GT(rep.blobs_written, 0u);
  EXPECT_EQ(rep.still_below_target, ec_chunks);
  ASSERT_EQ(rep.short_of_peers.size(), 1u);
  EXPECT_EQ(rep.short_of_peers[0], (PeerShortfall{6, ec_chunks}));
  EXPECT_EQ(rep.survives, (std::vector<Tolerance>{{1, ec_chunks}}));
  EXPECT_EQ(DescribeTolerance(rep.survives),
            std::vector<std::string>{std::to_string(ec_chunks) +
                                     " chunks below target survive any 1 lost peer"});
  for (const auto& [id, record] : Records()) {
    if (!record.erasure()) {
      EXPECT_TRUE(record.AtTarget()) << id.ShortHex();  // 3 copies fit on 5 peers
      continue;
    }
    EXPECT_EQ(record.PlacedCount(), 6u) << id.ShortHex();
    std::set<PeerId> holders;
    for (const auto& sh : record.shards) holders.insert(sh.peer);
    EXPECT_EQ(holders, (std::set<PeerId>{2, 3, 5, 6, 8})) << id.ShortHex();
    EXPECT_EQ(PeerLossesSurvived(record), 1u) << id.ShortHex();
  }
  CheckReport after = MustCheck(/*read_data=*/true);
  EXPECT_EQ(after.corrupt, 0u);
  EXPECT_EQ(after.lost, 0u);
  EXPECT_EQ(after.below_target, ec_chunks);
  EXPECT_EQ(after.survives, (std::vector<Tolerance>{{1, ec_chunks}}));
  ExpectRestorable();

  // Nothing more can be done with 5 peers: no blob is fetched, nothing is put.
  uint64_t gets = 0;
  for (PeerId p = 2; p <= 9; ++p) gets += peers_.GetCalls(p);
  RepairReport again = MustRepair();
  uint64_t gets_after = 0;
  for (PeerId p = 2; p <= 9; ++p) gets_after += peers_.GetCalls(p);
  EXPECT_EQ(gets_after, gets);
  EXPECT_EQ(again.blobs_written, 0u);
  EXPECT_EQ(again.unimprovable, ec_chunks);
  EXPECT_EQ(again.still_below_target, ec_chunks);
  EXPECT_TRUE(again.errors.empty());
  EXPECT_EQ(again.survives, rep.survives);

  // A sixth peer is back: each doubled-up shard moves to it; the surplus copy is queued for
  // deletion on the peer that held two.
  peers_.SetReachable(9, true);
  peers_.SetAlive(9, true);
  RepairReport grown = MustRepair();
  EXPECT_TRUE(grown.errors.empty()) << grown.errors.front();
  EXPECT_EQ(grown.repaired, ec_chunks);
  EXPECT_EQ(grown.still_below_target, 0u);
  EXPECT_EQ(grown.blobs_written, ec_chunks);
  for (const auto& [id, record] : Records()) {
    if (!record.erasure()) continue;
    EXPECT_TRUE(record.AtTarget()) << id.ShortHex();
    EXPECT_EQ(PeerLossesSurvived(record), 2u) << id.ShortHex();
    EXPECT_EQ(record.shards.size(), 6u) << id.ShortHex();
  }
  uint64_t queued = 0;
  for (PeerId p : {2, 3, 5, 6, 8}) {
    auto list = catalog_->ListPendingDeletions(p, 100000);
    ASSERT_TRUE(list.ok());
    queued += list->size();
  }
  EXPECT_EQ(queued, ec_chunks);
  auto delivered = DeliverDeletions(ctx_);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  CheckReport healthy = MustCheck(/*read_data=*/true);
  EXPECT_TRUE(healthy.healthy()) << healthy.below_target << " below, " << healthy.lost << " lost";
  EXPECT_EQ(healthy.corrupt, 0u);
  ExpectRestorable();
}

TEST(PeerLossesSurvivedTest, CopiesAndShards) {
  ports::ChunkRecord copies;
  copies.target = 3;
  EXPECT_EQ(PeerLossesSurvived(copies), 0u);
  copies.holders = {5};
  EXPECT_EQ(PeerLossesSurvived(copies), 0u);
  copies.holders = {2, 3, 5};
  EXPECT_EQ(PeerLossesSurvived(copies), 2u);

  auto ec = [](std::vector<ports::ShardHolder> shards) {
    ports::ChunkRecord r;
    r.target = 6;
    r.ec_k = 4;
    r.ec_m = 2;
    r.shards = std::move(shards);
    return PeerLossesSurvived(r);
  };
  EXPECT_EQ(ec({{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}), 2u);
  EXPECT_EQ(ec({{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 5}}), 1u);  // peer 5 holds two
  EXPECT_EQ(ec({{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 4}}), 1u);  // 2+2+1+1
  EXPECT_EQ(ec({{0, 1}, {1, 1}, {2, 1}, {3, 2}, {4, 3}, {5, 4}}), 0u);  // 3+1+1+1
  EXPECT_EQ(ec({{0, 1}, {1, 2}, {2, 3}, {3, 4}}), 0u);                  // exactly k
  EXPECT_EQ(ec({{0, 1}, {1, 2}, {2, 3}}), 0u);                          // lost
  // An index held twice: losing peer 1 or 2 alone keeps index 0; losing 3 leaves 3 indices.
  EXPECT_EQ(ec({{0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}}), 0u);
  // Indices 0 and 1 each on peers 1 and 2: any 2 lost peers leave 4 indices, 3 may not.
  EXPECT_EQ(ec({{0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}), 2u);
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
