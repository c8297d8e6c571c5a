// One conformance suite for every Catalog (design: fakes pass the real thing's suite), plus
// SQLite-only tests for persistence and damaged rows.
#include "cairn/index/catalog.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <thread>

#include "cairn/index/database.h"
#include "cairn/index/database_impl.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::index {
namespace {

ChunkId Id(uint8_t n) {
  ChunkId id;
  id.bytes.fill(n);
  return id;
}

ChunkRecord Chunk(uint8_t n, uint32_t target, std::vector<PeerId> holders,
                  uint64_t plain_size = 1000, uint64_t blob_size = 1100,
                  BlobKind kind = BlobKind::kData) {
  ChunkRecord r;
  r.id = Id(n);
  r.kind = kind;
  r.plain_size = plain_size;
  r.blob_size = blob_size;
  r.target = target;
  r.holders = std::move(holders);
  return r;
}

SnapshotRecord Snap(uint8_t n, int64_t time_ns) {
  SnapshotRecord r;
  r.id = Id(n);
  r.snapshot.time_ns = time_ns;
  r.snapshot.owner = 7;
  r.snapshot.hostname = "laptop";
  r.snapshot.paths = {"/home/alice/Documents", std::string("/raw/\xff\xfe", 7)};
  r.snapshot.tags = {"daily"};
  r.snapshot.root = Id(static_cast<uint8_t>(n + 100));
  if (n % 2 == 0) r.snapshot.parent = Id(static_cast<uint8_t>(n + 1));
  r.snapshot.copies = 3;
  r.snapshot.stats.files = n;
  r.snapshot.stats.bytes = 12345;
  return r;
}

// Owns whatever backs a catalog (a temp dir and database for SQLite).
struct Harness {
  virtual ~Harness() = default;
  std::unique_ptr<Catalog> catalog;
};

struct MemHarness : Harness {
  MemHarness() { catalog = NewMemCatalog(); }
};

struct SqliteHarness : Harness {
  SqliteHarness() { Reopen(); }
  void Reopen() {
    catalog.reset();
    db.reset();
    auto opened = Database::Open(dir.File("index.db"));
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return;
    db = std::move(*opened);
    catalog = NewSqliteCatalog(db.get());
  }
  TestTempDir dir;
  std::unique_ptr<Database> db;
};

struct Impl {
  const char* name;
  std::function<std::unique_ptr<Harness>()> make;
};

class CatalogConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_->catalog, nullptr);
    catalog_ = harness_->catalog.get();
  }
  ChunkRecord MustFind(const ChunkId& id) {
    auto found = catalog_->FindChunk(id);
    EXPECT_TRUE(found.ok()) << found.status();
    if (!found.ok() || !found->has_value()) {
      ADD_FAILURE() << "chunk " << id.ShortHex() << " not found";
      return ChunkRecord();
    }
    return **found;
  }

  std::unique_ptr<Harness> harness_;
  Catalog* catalog_ = nullptr;
};

TEST_P(CatalogConformance, UnknownChunkIsNullopt) {
  auto found = catalog_->FindChunk(Id(1));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

TEST_P(CatalogConformance, AddedChunkRoundTrips) {
  ChunkRecord in = Chunk(1, 3, {9, 4, 6}, 4096, 4200, BlobKind::kTree);
  ASSERT_TRUE(catalog_->AddChunk(in).ok());
  ChunkRecord out = MustFind(in.id);
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.kind, BlobKind::kTree);
  EXPECT_EQ(out.plain_size, 4096u);
  EXPECT_EQ(out.blob_size, 4200u);
  EXPECT_EQ(out.target, 3u);
  EXPECT_EQ(out.holders, (std::vector<PeerId>{4, 6, 9}));  // ascending
}

TEST_P(CatalogConformance, AddChunkTwiceMergesHoldersAsASet) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {3, 1})).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {1, 2, 2})).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {3, 1})).ok());
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 2, 3}));
  // A record without holders registers the chunk and keeps the holders it has.
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {})).ok());
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 2, 3}));
  ASSERT_TRUE(catalog_->AddChunk(Chunk(2, 1, {})).ok());
  EXPECT_TRUE(MustFind(Id(2)).holders.empty());
}

TEST_P(CatalogConformance, RemovePlacementsForgetsOnlyThoseNamed) {
  ChunkRecord shards = Chunk(2, 6, {});
  shards.ec_k = 4;
  shards.ec_m = 2;
  for (uint32_t i = 0; i < 6; ++i) shards.shards.push_back({i, 10 + i});
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {1, 2, 3})).ok());
  ASSERT_TRUE(catalog_->AddChunk(shards).ok());
  ASSERT_TRUE(catalog_->RemovePlacements(Id(1), {2, 99}, {}).ok());
  ASSERT_TRUE(catalog_->RemovePlacements(Id(2), {}, {{1, 11}, {5, 99}}).ok());
  ASSERT_TRUE(catalog_->RemovePlacements(Id(7), {1}, {}).ok());  // unknown chunk: fine
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 3}));
  ChunkRecord out = MustFind(Id(2));
  EXPECT_EQ(out.shards.size(), 5u);
  EXPECT_FALSE(out.AtTarget());
  EXPECT_EQ(out.PlacedCount(), 5u);
}

TEST_P(CatalogConformance, HoldersSortedAsUnsignedIds) {
  const PeerId big = (1ull << 63) + 5;
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {big, 1, ~0ull})).ok());
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, big, ~0ull}));
}

TEST_P(CatalogConformance, TargetIsRaisedNeverLowered) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1}, 100, 110)).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {}, 999, 999, BlobKind::kSnapshot)).ok());
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.target, 3u);
  // Kind and sizes are those of the first add (a chunk id names one content).
  EXPECT_EQ(out.kind, BlobKind::kData);
  EXPECT_EQ(out.plain_size, 100u);
  EXPECT_EQ(out.blob_size, 110u);
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 1, {})).ok());
  EXPECT_EQ(MustFind(Id(1)).target, 3u);
}

TEST_P(CatalogConformance, TreeCacheRoundTrip) {
  auto missing = catalog_->GetTree(Id(5));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  format::Tree tree;
  format::TreeEntry file;
  file.name = "notes.txt";
  file.type = format::EntryType::kFile;
  file.mode = 0644;
  file.size = 3;
  file.chunks = {Id(9)};
  tree.entries.push_back(file);
  Bytes encoded = format::EncodeTree(tree);
  ASSERT_TRUE(catalog_->PutTree(Id(5), encoded).ok());
  ASSERT_TRUE(catalog_->PutTree(Id(6), Bytes{}).ok());  // empty stays empty, not "missing"

  auto got = catalog_->GetTree(Id(5));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, encoded);
  auto decoded = format::DecodeTree(**got);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, tree);
  auto empty = catalog_->GetTree(Id(6));
  ASSERT_TRUE(empty.ok()) << empty.status();
  ASSERT_TRUE(empty->has_value());
  EXPECT_TRUE((*empty)->empty());
}

TEST_P(CatalogConformance, SnapshotsAreIdempotentAndOrderedByTime) {
  auto none = catalog_->ListSnapshots();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  std::vector<SnapshotRecord> added = {Snap(3, 300), Snap(1, 100), Snap(2, 200), Snap(5, 200)};
  for (const auto& r : added) ASSERT_TRUE(catalog_->AddSnapshot(r).ok());
  // Adding a known id again changes nothing (even with other content).
  ASSERT_TRUE(catalog_->AddSnapshot(Snap(1, 100)).ok());
  SnapshotRecord changed = Snap(3, 50);
  ASSERT_TRUE(catalog_->AddSnapshot(changed).ok());

  auto list = catalog_->ListSnapshots();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 4u);
  // Oldest first; equal times by id.
  const std::vector<SnapshotRecord> want = {added[1], added[2], added[3], added[0]};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*list)[i].id, want[i].id) << i;
    EXPECT_EQ((*list)[i].snapshot, want[i].snapshot) << i;
  }
}

TEST_P(CatalogConformance, StatsCountAtAndBelowTarget) {
  auto empty = catalog_->Stats();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->chunks, 0u);
  EXPECT_EQ(empty->stored_bytes, 0u);

  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2}, 100, 120)).ok());  // at target
  ASSERT_TRUE(catalog_->AddChunk(Chunk(2, 3, {1}, 50, 60)).ok());       // below
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 1, {}, 10, 20)).ok());        // below
  ASSERT_TRUE(catalog_->AddChunk(Chunk(4, 1, {1, 2, 3}, 5, 7)).ok());   // above
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 4u);
  EXPECT_EQ(stats->chunks_at_target, 2u);
  EXPECT_EQ(stats->chunks_below_target, 2u);
  EXPECT_EQ(stats->plain_bytes, 165u);
  EXPECT_EQ(stats->stored_bytes, 2 * 120u + 60u + 0u + 3 * 7u);

  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 1, {4}, 10, 20)).ok());
  stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks_at_target, 3u);
  EXPECT_EQ(stats->chunks_below_target, 1u);
  EXPECT_EQ(stats->stored_bytes, 2 * 120u + 60u + 20u + 3 * 7u);
}

ChunkRecord EcChunk(uint8_t n, uint8_t k, uint8_t m, std::vector<ShardHolder> shards,
                    uint64_t blob_size = 300) {
  ChunkRecord r = Chunk(n, static_cast<uint32_t>(k + m), {}, 1000, blob_size);
  r.ec_k = k;
  r.ec_m = m;
  r.shards = std::move(shards);
  return r;
}

TEST_P(CatalogConformance, ErasureCodedChunksKeepSchemeAndShardPlacements) {
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(1, 4, 2, {{5, 15}, {0, 10}, {1, 11}})).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(1, 4, 2, {{2, 12}, {0, 10}, {3, 13}, {4, 14}})).ok());
  ChunkRecord out = MustFind(Id(1));
  EXPECT_TRUE(out.erasure());
  EXPECT_EQ(out.ec_k, 4);
  EXPECT_EQ(out.ec_m, 2);
  EXPECT_EQ(out.target, 6u);
  EXPECT_EQ(out.blob_size, 300u);
  EXPECT_TRUE(out.holders.empty());
  EXPECT_EQ(out.shards,
            (std::vector<ShardHolder>{{0, 10}, {1, 11}, {2, 12}, {3, 13}, {4, 14}, {5, 15}}));
  EXPECT_TRUE(out.AtTarget());
  // A shard on a second peer is another placement of the same index.
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(1, 4, 2, {{0, 16}})).ok());
  EXPECT_EQ(MustFind(Id(1)).shards.size(), 7u);
  // Copies chunks are unaffected.
  ASSERT_TRUE(catalog_->AddChunk(Chunk(2, 2, {1, 2})).ok());
  EXPECT_FALSE(MustFind(Id(2)).erasure());
  EXPECT_TRUE(MustFind(Id(2)).shards.empty());
}

TEST_P(CatalogConformance, StatsCountErasureCodedChunks) {
  // At target: all 6 indices on 6 distinct peers.
  ASSERT_TRUE(
      catalog_->AddChunk(EcChunk(1, 4, 2, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}})).ok());
  // Below: shard 5 missing.
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 4, 2, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}})).ok());
  // Below: all indices placed, but on 3 peers only (fewer than 6 distinct holders).
  ASSERT_TRUE(
      catalog_->AddChunk(EcChunk(3, 4, 2, {{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}})).ok());
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 3u);
  EXPECT_EQ(stats->chunks_at_target, 1u);
  EXPECT_EQ(stats->chunks_below_target, 2u);
  EXPECT_EQ(stats->stored_bytes, (6u + 5u + 6u) * 300u);
  EXPECT_TRUE(MustFind(Id(1)).AtTarget());
  EXPECT_FALSE(MustFind(Id(2)).AtTarget());
  EXPECT_FALSE(MustFind(Id(3)).AtTarget());
  EXPECT_EQ(MustFind(Id(2)).PlacedCount(), 5u);
}

TEST_P(CatalogConformance, MetaRoundTrip) {
  auto missing = catalog_->GetMeta("chunker");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(catalog_->SetMeta("chunker", "v1").ok());
  ASSERT_TRUE(catalog_->SetMeta("chunker", binary).ok());  // replaces
  ASSERT_TRUE(catalog_->SetMeta("empty", "").ok());
  auto got = catalog_->GetMeta("chunker");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::optional<std::string>(binary));
  auto empty = catalog_->GetMeta("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, std::optional<std::string>(""));
}

TEST_P(CatalogConformance, ConcurrentAddsKeepEveryHolder) {
  constexpr int kThreads = 4;
  constexpr int kChunks = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int c = 0; c < kChunks; ++c) {
        EXPECT_TRUE(
            catalog_->AddChunk(Chunk(static_cast<uint8_t>(c), 1, {static_cast<PeerId>(t + 1)}))
                .ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int c = 0; c < kChunks; ++c) {
    EXPECT_EQ(MustFind(Id(static_cast<uint8_t>(c))).holders, (std::vector<PeerId>{1, 2, 3, 4}));
  }
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, static_cast<uint64_t>(kChunks));
}

INSTANTIATE_TEST_SUITE_P(
    All, CatalogConformance,
    ::testing::Values(Impl{"Mem", [] { return std::unique_ptr<Harness>(new MemHarness()); }},
                      Impl{"Sqlite", [] { return std::unique_ptr<Harness>(new SqliteHarness()); }}),
    [](const ::testing::TestParamInfo<Impl>& info) { return std::string(info.param.name); });

TEST(SqliteCatalogTest, DataPersistsAcrossReopen) {
  SqliteHarness h;
  ASSERT_TRUE(h.catalog->AddChunk(Chunk(1, 2, {5, 6}, 10, 20)).ok());
  ASSERT_TRUE(h.catalog->PutTree(Id(2), Bytes{1, 2, 3}).ok());
  ASSERT_TRUE(h.catalog->AddSnapshot(Snap(3, 42)).ok());
  ASSERT_TRUE(h.catalog->SetMeta("k", "v").ok());
  h.Reopen();
  ASSERT_NE(h.catalog, nullptr);
  auto chunk = h.catalog->FindChunk(Id(1));
  ASSERT_TRUE(chunk.ok() && chunk->has_value());
  EXPECT_EQ((*chunk)->holders, (std::vector<PeerId>{5, 6}));
  EXPECT_EQ((*chunk)->target, 2u);
  EXPECT_FALSE((*chunk)->erasure());
  auto tree = h.catalog->GetTree(Id(2));
  ASSERT_TRUE(tree.ok() && tree->has_value());
  EXPECT_EQ(**tree, (Bytes{1, 2, 3}));
  auto snaps = h.catalog->ListSnapshots();
  ASSERT_TRUE(snaps.ok()) << snaps.status();
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].snapshot, Snap(3, 42).snapshot);
  auto meta = h.catalog->GetMeta("k");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(*meta, std::optional<std::string>("v"));
}

TEST(SqliteCatalogTest, DamagedSnapshotRowIsAnErrorNotACrash) {
  SqliteHarness h;
  ASSERT_TRUE(h.catalog->AddSnapshot(Snap(1, 1)).ok());
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO snapshots (id, time_ns, data) "
                           "VALUES (zeroblob(32), 2, x'01deadbeef')")
                    .ok());
  }
  auto list = h.catalog->ListSnapshots();
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().code(), absl::StatusCode::kOk);
  EXPECT_NE(list.status().message().find("snapshot"), std::string::npos) << list.status();
}

}  // namespace
}  // namespace cairn::index
