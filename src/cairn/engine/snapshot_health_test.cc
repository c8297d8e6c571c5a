// What each snapshot survives now, from the catalog's placements and the peers' states: copies,
// k+m shards, two peers on one host (a single point), a lost chunk, trees shared by snapshots
// looked up once.
#include "cairn/engine/snapshot_health.h"

#include <gtest/gtest.h>

#include "cairn/engine/testing/fake_peers.h"
#include "cairn/format/tree.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

ChunkId Id(uint8_t n) {
  ChunkId id;
  id.bytes[0] = n;
  id.bytes[31] = 0xc5;
  return id;
}

class SnapshotHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = ports::NewMemCatalog();
    // Peers 4 and 5 share host hC; peer 7 is dead.
    peers_.AddPeer(2, "hA", 1ull << 30);
    peers_.AddPeer(3, "hB", 1ull << 30);
    peers_.AddPeer(4, "hC", 1ull << 30);
    peers_.AddPeer(5, "hC", 1ull << 30);
    peers_.AddPeer(6, "hD", 1ull << 30);
    peers_.AddPeer(7, "hE", 1ull << 30);
    peers_.SetAlive(7, false);
    ctx_.owner = 1;
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
  }

  void Copies(const ChunkId& id, uint64_t blob_size, std::vector<PeerId> holders,
              BlobKind kind = BlobKind::kData) {
    ports::ChunkRecord r;
    r.id = id;
    r.kind = kind;
    r.plain_size = blob_size;
    r.blob_size = blob_size;
    r.target = 2;
    r.holders = std::move(holders);
    ASSERT_TRUE(catalog_->AddChunk(r).ok());
  }
  void Shards(const ChunkId& id, uint64_t blob_size, uint8_t k, uint8_t m,
              std::vector<ports::ShardHolder> shards) {
    ports::ChunkRecord r;
    r.id = id;
    r.plain_size = blob_size * k;
    r.blob_size = blob_size;
    r.target = k + m;
    r.ec_k = k;
    r.ec_m = m;
    r.shards = std::move(shards);
    ASSERT_TRUE(catalog_->AddChunk(r).ok());
  }
  // A tree (cached in the catalog) of files with these chunks and these subtrees.
  void Tree(const ChunkId& id, std::vector<ChunkId> files, std::vector<ChunkId> subtrees) {
    format::Tree t;
    int n = 0;
    for (const ChunkId& c : files) {
      format::TreeEntry e;
      e.name = "f" + std::to_string(n++);
      e.chunks = {c};
      t.entries.push_back(e);
    }
    for (const ChunkId& s : subtrees) {
      format::TreeEntry e;
      e.name = "s" + std::to_string(n++);
      e.type = format::EntryType::kDirectory;
      e.subtree = s;
      t.entries.push_back(e);
    }
    std::sort(t.entries.begin(), t.entries.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    ASSERT_TRUE(catalog_->PutTree(id, format::EncodeTree(t)).ok());
  }
  void Snapshot(const ChunkId& id, int64_t time_ns, const ChunkId& root) {
    ports::SnapshotRecord r;
    r.id = id;
    r.snapshot.time_ns = time_ns;
    r.snapshot.owner = 1;
    r.snapshot.paths = {"/src" + std::to_string(time_ns)};
    r.snapshot.root = root;
    ASSERT_TRUE(catalog_->AddSnapshot(r).ok());
  }

  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

TEST_F(SnapshotHealthTest, CopiesShardsHostsAndLostChunks) {
  // s1: copies and 2+1 shards, every holder on its own host: any 1 peer.
  Copies(Id(10), 100, {2, 3, 4, 6}, BlobKind::kSnapshot);
  Copies(Id(11), 50, {2, 3, 6}, BlobKind::kTree);
  Copies(Id(12), 1000, {2, 3, 4});
  Shards(Id(13), 400, 2, 1, {{0, 2}, {1, 3}, {2, 6}});
  Tree(Id(11), {Id(12), Id(13)}, {});
  Snapshot(Id(10), 1000, Id(11));
  // s2: the tree of s1 below its root, and a chunk whose two copies are on peers 4 and 5, both
  // on host hC: any 1 peer, but hC is a single point. 2+2 shards with two on hC survive it.
  Copies(Id(20), 100, {2, 3}, BlobKind::kSnapshot);
  Copies(Id(21), 50, {2, 3}, BlobKind::kTree);
  Copies(Id(22), 10, {4, 5});
  Shards(Id(23), 7, 2, 2, {{0, 4}, {1, 5}, {2, 2}, {3, 3}});
  Tree(Id(21), {Id(22), Id(23)}, {Id(11)});
  Snapshot(Id(20), 2000, Id(21));
  // s3: a chunk held only by the dead peer 7, and a chunk the catalog does not know.
  Copies(Id(30), 100, {2, 3}, BlobKind::kSnapshot);
  Copies(Id(31), 50, {2, 3}, BlobKind::kTree);
  Copies(Id(32), 10, {7});
  Tree(Id(31), {Id(32), Id(33)}, {});
  Snapshot(Id(30), 3000, Id(31));
  // s4: 2+1 shards of which two are on host hC: survives any 1 peer, not host hC.
  Copies(Id(40), 100, {2, 3, 6}, BlobKind::kSnapshot);
  Copies(Id(41), 50, {2, 6}, BlobKind::kTree);
  Shards(Id(42), 30, 2, 1, {{0, 4}, {1, 5}, {2, 2}});
  Tree(Id(41), {Id(42)}, {});
  Snapshot(Id(40), 4000, Id(41));

  auto r = ComputeSnapshotSurvival(ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->alive_storage_peers, 5u);
  ASSERT_EQ(r->snapshots.size(), 4u);

  const SnapshotSurvival& s1 = r->snapshots[0];
  EXPECT_EQ(s1.id, Id(10));
  EXPECT_EQ(s1.time_ns, 1000);
  EXPECT_EQ(s1.paths, std::vector<std::string>{"/src1000"});
  EXPECT_EQ(s1.chunks, 4u);
  EXPECT_EQ(s1.survives_peers, 1u);
  EXPECT_TRUE(s1.single_point_hosts.empty());
  EXPECT_EQ(s1.lost_chunks, 0u);
  // Peers 2 and 3 hold 100 + 50 + 1000 + 400 each; the first of them is named.
  EXPECT_EQ(s1.rebuild_bytes, 1550u);
  EXPECT_EQ(s1.rebuild_peer, 2u);
  EXPECT_TRUE(s1.error.empty());

  const SnapshotSurvival& s2 = r->snapshots[1];
  EXPECT_EQ(s2.chunks, 7u);  // its own 4 and s1's tree's 3
  EXPECT_EQ(s2.survives_peers, 1u);
  EXPECT_EQ(s2.single_point_hosts, std::vector<std::string>{"hC"});
  EXPECT_EQ(s2.lost_chunks, 0u);
  EXPECT_EQ(s2.rebuild_bytes, 100u + 50 + 7 + 50 + 1000 + 400);
  EXPECT_EQ(s2.rebuild_peer, 2u);

  const SnapshotSurvival& s3 = r->snapshots[2];
  EXPECT_EQ(s3.chunks, 4u);
  EXPECT_EQ(s3.lost_chunks, 2u);
  EXPECT_EQ(s3.survives_peers, 0u);
  EXPECT_TRUE(s3.single_point_hosts.empty());  // hosts of readable chunks only
  EXPECT_EQ(s3.rebuild_bytes, 150u);

  const SnapshotSurvival& s4 = r->snapshots[3];
  EXPECT_EQ(s4.survives_peers, 1u);
  EXPECT_EQ(s4.single_point_hosts, std::vector<std::string>{"hC"});
  EXPECT_EQ(s4.lost_chunks, 0u);
  EXPECT_EQ(s4.rebuild_bytes, 100u + 50 + 30);  // peer 2

  // s1's tree was looked up once, for both snapshots: 4 + 4 + 4 + 3 chunks.
  EXPECT_EQ(r->chunk_lookups, 15u);

  // Peer 3 goes: s1's copies on 2, 4, 6 and shards on 2 and 6 still read, each now one peer
  // loss from lost; hosts hA and hD are single points of its 2+1 chunk (two shards left).
  peers_.SetAlive(3, false);
  r = ComputeSnapshotSurvival(ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->snapshots[0].survives_peers, 0u);
  EXPECT_EQ(r->snapshots[0].single_point_hosts, (std::vector<std::string>{"hA", "hD"}));
  EXPECT_EQ(r->snapshots[0].lost_chunks, 0u);
  // s3's own chunks were on 2 and 3: on 2 only now.
  EXPECT_EQ(r->snapshots[2].single_point_hosts, std::vector<std::string>{"hA"});
}

TEST_F(SnapshotHealthTest, UnreadableTreeIsReported) {
  Copies(Id(10), 100, {2, 3}, BlobKind::kSnapshot);
  Copies(Id(11), 50, {2, 3}, BlobKind::kTree);  // placed, but on no peer's store, not cached
  Snapshot(Id(10), 1000, Id(11));
  ctx_.fetch_retry.budget = std::chrono::milliseconds(0);
  auto r = ComputeSnapshotSurvival(ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->snapshots.size(), 1u);
  EXPECT_EQ(r->snapshots[0].chunks, 2u);
  EXPECT_EQ(r->snapshots[0].survives_peers, 1u);
  EXPECT_NE(r->snapshots[0].error.find(Id(11).ShortHex()), std::string::npos)
      << r->snapshots[0].error;
}

TEST_F(SnapshotHealthTest, Cancelled) {
  Copies(Id(10), 100, {2, 3}, BlobKind::kSnapshot);
  Snapshot(Id(10), 1000, Id(11));
  std::atomic<bool> cancel{true};
  EXPECT_TRUE(absl::IsCancelled(ComputeSnapshotSurvival(ctx_, &cancel).status()));
}

}  // namespace
}  // namespace cairn::engine
