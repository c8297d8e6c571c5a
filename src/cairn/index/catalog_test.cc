// One conformance suite for every Catalog (design: fakes pass the real thing's suite), plus
// SQLite-only tests for persistence and damaged rows.
#include "cairn/index/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <ostream>
#include <random>
#include <thread>

#include "cairn/index/database.h"
#include "cairn/index/database_impl.h"
#include "cairn/index/test_temp_dir.h"

namespace cairn::index {

// Readable failure messages (found by argument-dependent lookup, so outside the anonymous
// namespace).
void PrintTo(const ChunkShard& blob, std::ostream* os) {
  *os << "{" << blob.chunk.ShortHex() << ", shard " << blob.shard << "}";
}

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

// Restore looks many chunks up at once: each answer as FindChunk gives it, in the order asked,
// unknown ones and repeats included.
TEST_P(CatalogConformance, FindChunksAnswersEachIdInOrder) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {4, 6}, 100, 120)).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 3, {5, 7, 9}, 300, 320)).ok());
  const std::vector<ChunkId> ids = {Id(3), Id(2), Id(1), Id(3)};
  auto found = catalog_->FindChunks(ids);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), ids.size());
  EXPECT_FALSE((*found)[1].has_value());
  for (size_t i : {0u, 2u, 3u}) {
    ASSERT_TRUE((*found)[i].has_value()) << i;
    ChunkRecord one = MustFind(ids[i]);
    EXPECT_EQ((*found)[i]->id, ids[i]);
    EXPECT_EQ((*found)[i]->plain_size, one.plain_size);
    EXPECT_EQ((*found)[i]->holders, one.holders);
    EXPECT_EQ((*found)[i]->target, one.target);
  }
  EXPECT_EQ((*found)[0]->holders, (std::vector<PeerId>{5, 7, 9}));
  auto none = catalog_->FindChunks({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
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

// docs/operations.md "Sites and off-site copies".
TEST_P(CatalogConformance, OffsiteTargetIsRaisedNeverLoweredAndCounted) {
  ChunkRecord a = Chunk(1, 2, {2, 9});
  a.offsite = 1;
  ASSERT_TRUE(catalog_->AddChunk(a).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {})).ok());  // an older record: no off-site target
  EXPECT_EQ(MustFind(Id(1)).offsite, 1u);
  ChunkRecord b = Chunk(2, 2, {2, 3});
  b.offsite = 1;
  ASSERT_TRUE(catalog_->AddChunk(b).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 2, {2, 3})).ok());  // offsite 0: never counted
  ChunkRecord shards;
  shards.id = Id(4);
  shards.target = 3;
  shards.ec_k = 2;
  shards.ec_m = 1;
  shards.offsite = 1;
  shards.shards = {{0, 9}, {1, 2}, {2, 3}};
  ASSERT_TRUE(catalog_->AddChunk(shards).ok());
  const std::vector<PeerId> away = {9};
  auto n = catalog_->CountWithoutOffsite(away);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1u);  // chunk 2
  n = catalog_->CountWithoutOffsite({});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3u);  // no off-site peer known: every chunk with a target
}

TEST_P(CatalogConformance, UnknownPlainSizeIsLearnedOnce) {
  // `cairn recover` records chunks of multi-chunk files with plain_size 0 (unknown).
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2}, 0, 110)).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {}, 100, 110)).ok());
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.plain_size, 100u);
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 2}));
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {}, 999, 110)).ok());
  EXPECT_EQ(MustFind(Id(1)).plain_size, 100u);  // a known size never changes
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

TEST_P(CatalogConformance, SetChunkTargetsLowersAndRaisesCopiesChunksOnly) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 5, {1, 2})).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(2, 2, {1, 2})).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 2, {1})).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(4, 4, 2, {{0, 10}})).ok());
  EXPECT_FALSE(MustFind(Id(1)).AtTarget());
  const std::vector<ChunkTarget> targets = {
      {Id(1), 2}, {Id(2), 2}, {Id(3), 3}, {Id(4), 2}, {Id(9), 4}};
  auto changed = catalog_->SetChunkTargets(targets);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2u);  // chunk 1 lowered, chunk 3 raised; 2 unchanged; 4 EC; 9 unknown
  ChunkRecord one = MustFind(Id(1));
  EXPECT_EQ(one.target, 2u);
  EXPECT_TRUE(one.AtTarget());
  EXPECT_EQ(one.holders, (std::vector<PeerId>{1, 2}));  // placements untouched
  EXPECT_EQ(MustFind(Id(2)).target, 2u);
  EXPECT_EQ(MustFind(Id(3)).target, 3u);
  EXPECT_EQ(MustFind(Id(4)).target, 6u);  // k+m is the scheme's
  auto unknown = catalog_->FindChunk(Id(9));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());  // not created
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks_below_target, 2u);  // chunk 3 (1 of 3) and chunk 4 (1 of 6 shards)
  // A target of 0 is refused and changes nothing.
  const std::vector<ChunkTarget> bad = {{Id(2), 5}, {Id(1), 0}};
  EXPECT_TRUE(absl::IsInvalidArgument(catalog_->SetChunkTargets(bad).status()));
  EXPECT_EQ(MustFind(Id(2)).target, 2u);
  // Nothing to do is fine.
  auto none = catalog_->SetChunkTargets({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
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

// ---- Issue 4: extra copies, listing, garbage collection, BlobMoved ----

ChunkShard Blob(uint8_t n, uint32_t shard = 0) { return ChunkShard{Id(n), shard}; }

void ExpectSameRecord(const ChunkRecord& got, const ChunkRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.plain_size, want.plain_size);
  EXPECT_EQ(got.blob_size, want.blob_size);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.ec_k, want.ec_k);
  EXPECT_EQ(got.ec_m, want.ec_m);
  EXPECT_EQ(got.holders, want.holders);
  EXPECT_EQ(got.shards, want.shards);
  EXPECT_EQ(got.extras, want.extras);
}

TEST(ChunkRecordTest, ExtrasNeverCountTowardTarget) {
  ChunkRecord r = Chunk(1, 2, {1});
  r.extras = {2, 3, 4};
  EXPECT_EQ(r.PlacedCount(), 1u);
  EXPECT_FALSE(r.AtTarget());
  r.holders = {1, 5};
  EXPECT_TRUE(r.AtTarget());
  r.holders.clear();
  EXPECT_EQ(r.PlacedCount(), 0u);
  EXPECT_FALSE(r.AtTarget());
}

TEST_P(CatalogConformance, ExtraPlacementsAreListedButNotCounted) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1})).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 5).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 3).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 5).ok());  // a set
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 1).ok());  // regular holder: no-op
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1}));
  EXPECT_EQ(out.extras, (std::vector<PeerId>{3, 5}));
  EXPECT_EQ(out.PlacedCount(), 1u);
  EXPECT_FALSE(out.AtTarget());

  // Extras sort as unsigned ids, like holders.
  const PeerId big = (1ull << 63) + 5;
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), big).ok());
  EXPECT_EQ(MustFind(Id(1)).extras, (std::vector<PeerId>{3, 5, big}));

  // A record's own extras are ignored by AddChunk.
  ChunkRecord with_extras = Chunk(2, 1, {1});
  with_extras.extras = {7};
  ASSERT_TRUE(catalog_->AddChunk(with_extras).ok());
  EXPECT_TRUE(MustFind(Id(2)).extras.empty());
}

TEST_P(CatalogConformance, AddExtraPlacementRefusesUnknownAndErasureCodedChunks) {
  absl::Status unknown = catalog_->AddExtraPlacement(Id(9), 1);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{0, 1}, {1, 2}, {2, 3}})).ok());
  absl::Status erasure = catalog_->AddExtraPlacement(Id(2), 4);
  EXPECT_EQ(erasure.code(), absl::StatusCode::kFailedPrecondition) << erasure;
  EXPECT_TRUE(MustFind(Id(2)).extras.empty());
  auto found = catalog_->FindChunk(Id(9));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

TEST_P(CatalogConformance, RegularPlacementReplacesExtraOfSamePeer) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {1})).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 5).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 6).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 3, {5})).ok());
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 5}));
  EXPECT_EQ(out.extras, (std::vector<PeerId>{6}));
}

TEST_P(CatalogConformance, RemoveExtraPlacementsForgetsOnlyThoseNamed) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1})).ok());
  for (PeerId p : {4, 5, 6}) ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), p).ok());
  ASSERT_TRUE(catalog_->RemoveExtraPlacements(Id(1), {5, 99, 1}).ok());
  ASSERT_TRUE(catalog_->RemoveExtraPlacements(Id(7), {4}).ok());  // unknown chunk: fine
  ASSERT_TRUE(catalog_->RemoveExtraPlacements(Id(1), {}).ok());
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.extras, (std::vector<PeerId>{4, 6}));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1}));  // regular copies untouched
}

TEST_P(CatalogConformance, ListChunksPagesInIdOrder) {
  const unsigned seed = std::random_device()();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::vector<uint8_t> ns;
  for (uint8_t n = 2; n <= 60; n += 2) ns.push_back(n);  // even ids: odd ones fall between
  std::shuffle(ns.begin(), ns.end(), rng);
  for (uint8_t n : ns) {
    if (n % 3 == 0) {
      ASSERT_TRUE(catalog_->AddChunk(EcChunk(n, 2, 1, {{0, 1}, {2, n}})).ok());
    } else {
      ASSERT_TRUE(catalog_->AddChunk(Chunk(n, 2, {n, 1}, n, n + 10u)).ok());
      if (n % 4 == 0) {
        ASSERT_TRUE(catalog_->AddExtraPlacement(Id(n), 200).ok());
      }
    }
  }
  std::sort(ns.begin(), ns.end());

  for (size_t limit : {size_t{1}, size_t{7}, size_t{30}, size_t{1000}}) {
    SCOPED_TRACE(::testing::Message() << "limit " << limit);
    std::vector<ChunkRecord> all;
    std::optional<ChunkId> after;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = catalog_->ListChunks(after, limit);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->size(), limit);
      if (page->empty()) break;
      all.insert(all.end(), page->begin(), page->end());
      after = page->back().id;
    }
    ASSERT_EQ(all.size(), ns.size());
    for (size_t i = 0; i < ns.size(); ++i) {
      EXPECT_EQ(all[i].id, Id(ns[i])) << i;
      ExpectSameRecord(all[i], MustFind(Id(ns[i])));
    }
  }

  // Starting after an id that is not a chunk, and after the last one.
  auto from_odd = catalog_->ListChunks(Id(5), 2);
  ASSERT_TRUE(from_odd.ok()) << from_odd.status();
  ASSERT_EQ(from_odd->size(), 2u);
  EXPECT_EQ((*from_odd)[0].id, Id(6));
  EXPECT_EQ((*from_odd)[1].id, Id(8));
  auto past_end = catalog_->ListChunks(Id(60), 5);
  ASSERT_TRUE(past_end.ok()) << past_end.status();
  EXPECT_TRUE(past_end->empty());
  EXPECT_FALSE(catalog_->ListChunks(std::nullopt, 0).ok());
}

TEST_P(CatalogConformance, ListChunksOfEmptyCatalogIsEmpty) {
  auto page = catalog_->ListChunks(std::nullopt, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->empty());
}

TEST_P(CatalogConformance, RemoveSnapshotForgetsOnlyThatSnapshot) {
  ASSERT_TRUE(catalog_->AddSnapshot(Snap(1, 100)).ok());
  ASSERT_TRUE(catalog_->AddSnapshot(Snap(2, 200)).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 1, {1})).ok());  // the snapshot's blob: stays
  auto removed = catalog_->RemoveSnapshot(Id(1));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(*removed);
  auto again = catalog_->RemoveSnapshot(Id(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
  auto unknown = catalog_->RemoveSnapshot(Id(9));
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(*unknown);
  auto list = catalog_->ListSnapshots();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, Id(2));
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1}));
  // It can be added again (e.g. recovered from the peers).
  ASSERT_TRUE(catalog_->AddSnapshot(Snap(1, 100)).ok());
  list = catalog_->ListSnapshots();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, Id(1));
  EXPECT_EQ((*list)[0].snapshot, Snap(1, 100).snapshot);
}

TEST_P(CatalogConformance, DeleteChunksQueuesEveryPlacedBlob) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2}, 100, 120, BlobKind::kTree)).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 3).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{0, 1}, {1, 4}, {2, 5}})).ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 1, {1})).ok());
  ASSERT_TRUE(catalog_->PutTree(Id(1), Bytes{1}).ok());
  ASSERT_TRUE(catalog_->PutTree(Id(3), Bytes{3}).ok());

  // Unknown ids (and repeats) are skipped.
  auto queued = catalog_->DeleteChunks({Id(1), Id(2), Id(99), Id(1)});
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(*queued, 6u);  // copies on 1, 2; extra on 3; shards on 1, 4, 5

  for (uint8_t gone : {1, 2}) {
    auto found = catalog_->FindChunk(Id(gone));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_FALSE(found->has_value()) << int{gone};
  }
  EXPECT_EQ(MustFind(Id(3)).holders, (std::vector<PeerId>{1}));
  auto tree1 = catalog_->GetTree(Id(1));
  ASSERT_TRUE(tree1.ok()) << tree1.status();
  EXPECT_FALSE(tree1->has_value());
  auto tree3 = catalog_->GetTree(Id(3));
  ASSERT_TRUE(tree3.ok()) << tree3.status();
  EXPECT_TRUE(tree3->has_value());

  auto peers = catalog_->PeersWithPendingDeletions();
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(*peers, (std::vector<PeerId>{1, 2, 3, 4, 5}));
  auto on1 = catalog_->ListPendingDeletions(1, 100);
  ASSERT_TRUE(on1.ok()) << on1.status();
  EXPECT_EQ(*on1, (std::vector<ChunkShard>{Blob(1, 0), Blob(2, 0)}));
  auto on3 = catalog_->ListPendingDeletions(3, 100);
  ASSERT_TRUE(on3.ok()) << on3.status();
  EXPECT_EQ(*on3, (std::vector<ChunkShard>{Blob(1, 0)}));
  auto on4 = catalog_->ListPendingDeletions(4, 100);
  ASSERT_TRUE(on4.ok()) << on4.status();
  EXPECT_EQ(*on4, (std::vector<ChunkShard>{Blob(2, 1)}));

  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_EQ(stats->extra_blobs, 0u);
  EXPECT_EQ(stats->pending_deletions, 6u);
  auto listed = catalog_->ListChunks(std::nullopt, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, Id(3));

  // Nothing left to queue for them.
  auto none = catalog_->DeleteChunks({Id(1), Id(2)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, 0u);
  auto empty = catalog_->DeleteChunks({});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, 0u);

  // A chunk added again after collection starts afresh (no stale placements).
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {7})).ok());
  ChunkRecord again = MustFind(Id(1));
  EXPECT_EQ(again.holders, (std::vector<PeerId>{7}));
  EXPECT_TRUE(again.extras.empty());
}

TEST_P(CatalogConformance, PendingDeletionsListOldestFirstThenByKey) {
  auto none = catalog_->PeersWithPendingDeletions();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(catalog_->QueueDeletions(7, {Blob(9), Blob(3, 1), Blob(3, 0)}).ok());
  ASSERT_TRUE(catalog_->QueueDeletions(7, {Blob(1)}).ok());
  ASSERT_TRUE(catalog_->QueueDeletions(7, {Blob(9), Blob(1)}).ok());  // idempotent: keeps place
  ASSERT_TRUE(catalog_->QueueDeletions(8, {Blob(5)}).ok());
  ASSERT_TRUE(catalog_->QueueDeletions(8, {}).ok());

  auto all = catalog_->ListPendingDeletions(7, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, (std::vector<ChunkShard>{Blob(3, 0), Blob(3, 1), Blob(9), Blob(1)}));
  auto first = catalog_->ListPendingDeletions(7, 2);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, (std::vector<ChunkShard>{Blob(3, 0), Blob(3, 1)}));
  auto other = catalog_->ListPendingDeletions(6, 10);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->empty());
  EXPECT_FALSE(catalog_->ListPendingDeletions(7, 0).ok());
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending_deletions, 5u);

  // Acknowledged ones go; unknown ones and other peers' are fine.
  ASSERT_TRUE(catalog_->AckDeletions(7, {Blob(3, 0), Blob(3, 1), Blob(50), Blob(5)}).ok());
  auto rest = catalog_->ListPendingDeletions(7, 100);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, (std::vector<ChunkShard>{Blob(9), Blob(1)}));
  auto peers = catalog_->PeersWithPendingDeletions();
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(*peers, (std::vector<PeerId>{7, 8}));
  ASSERT_TRUE(catalog_->AckDeletions(7, *rest).ok());
  peers = catalog_->PeersWithPendingDeletions();
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(*peers, (std::vector<PeerId>{8}));
}

TEST_P(CatalogConformance, PeersWithPendingDeletionsSortedAsUnsignedIds) {
  const PeerId big = (1ull << 63) + 5;
  for (PeerId p : std::vector<PeerId>{~0ull, big, 2})
    ASSERT_TRUE(catalog_->QueueDeletions(p, {Blob(1)}).ok());
  auto peers = catalog_->PeersWithPendingDeletions();
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(*peers, (std::vector<PeerId>{2, big, ~0ull}));
  auto on_big = catalog_->ListPendingDeletions(big, 10);
  ASSERT_TRUE(on_big.ok()) << on_big.status();
  EXPECT_EQ(*on_big, (std::vector<ChunkShard>{Blob(1)}));
}

// AddChunks (the batched form a backup uses) cleans up as AddChunk does: a placement cancels
// the peer's queued deletion of that blob and replaces its extra copy.
TEST_P(CatalogConformance, AddChunksCancelsDeletionsAndReplacesExtras) {
  ASSERT_TRUE(
      catalog_->AddChunks(std::vector<ChunkRecord>{Chunk(1, 2, {1, 2}), Chunk(2, 2, {1, 2})}).ok());
  auto queued = catalog_->DeleteChunks({Id(1)});
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_EQ(*queued, 2u);
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(2), 3).ok());
  ASSERT_TRUE(catalog_
                  ->AddChunks(std::vector<ChunkRecord>{Chunk(1, 2, {2}), Chunk(2, 2, {3}),
                                                       Chunk(3, 2, {4})})
                  .ok());
  auto on1 = catalog_->ListPendingDeletions(1, 10);
  ASSERT_TRUE(on1.ok()) << on1.status();
  EXPECT_EQ(*on1, (std::vector<ChunkShard>{Blob(1, 0)}));
  auto on2 = catalog_->ListPendingDeletions(2, 10);
  ASSERT_TRUE(on2.ok()) << on2.status();
  EXPECT_TRUE(on2->empty());
  EXPECT_EQ(MustFind(Id(2)).holders, (std::vector<PeerId>{1, 2, 3}));
  EXPECT_TRUE(MustFind(Id(2)).extras.empty());
  EXPECT_EQ(MustFind(Id(3)).holders, (std::vector<PeerId>{4}));
}

TEST_P(CatalogConformance, PlacingABlobAgainCancelsItsPendingDeletion) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2})).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{0, 1}, {1, 2}, {2, 3}})).ok());
  auto queued = catalog_->DeleteChunks({Id(1), Id(2)});
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_EQ(*queued, 5u);

  // A backup records them again: only the blobs it records are spared.
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1})).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{1, 2}})).ok());
  auto on1 = catalog_->ListPendingDeletions(1, 10);
  ASSERT_TRUE(on1.ok()) << on1.status();
  EXPECT_EQ(*on1, (std::vector<ChunkShard>{Blob(2, 0)}));
  auto on2 = catalog_->ListPendingDeletions(2, 10);
  ASSERT_TRUE(on2.ok()) << on2.status();
  EXPECT_EQ(*on2, (std::vector<ChunkShard>{Blob(1, 0)}));
  auto on3 = catalog_->ListPendingDeletions(3, 10);
  ASSERT_TRUE(on3.ok()) << on3.status();
  EXPECT_EQ(*on3, (std::vector<ChunkShard>{Blob(2, 2)}));

  // So does an extra copy placed on a peer queued to delete that blob.
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 2).ok());
  on2 = catalog_->ListPendingDeletions(2, 10);
  ASSERT_TRUE(on2.ok()) << on2.status();
  EXPECT_TRUE(on2->empty());
  EXPECT_EQ(MustFind(Id(1)).extras, (std::vector<PeerId>{2}));
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending_deletions, 2u);
}

TEST_P(CatalogConformance, MovePlacementKeepsTheSortOfTheMovedBlob) {
  auto move = [&](uint8_t n, uint32_t shard, PeerId from, PeerId to) {
    auto outcome = catalog_->MovePlacement(Id(n), shard, from, to);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome.value_or(MoveOutcome::kUnknownChunk), MoveOutcome::kMoved);
  };
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2})).ok());
  // A regular copy moves as a regular copy; a repeated notice changes nothing.
  move(1, 0, 2, 3);
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 3}));
  move(1, 0, 2, 3);
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 3}));
  EXPECT_TRUE(MustFind(Id(1)).extras.empty());

  // An extra copy moves as an extra copy; repeated: still extra (not turned regular).
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 4).ok());
  move(1, 0, 4, 5);
  move(1, 0, 4, 5);
  ChunkRecord out = MustFind(Id(1));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 3}));
  EXPECT_EQ(out.extras, (std::vector<PeerId>{5}));

  // `from` held none: a regular copy on `to`.
  move(1, 0, 8, 6);
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 3, 6}));

  // An extra copy moved onto a regular holder is just gone.
  move(1, 0, 5, 1);
  out = MustFind(Id(1));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 3, 6}));
  EXPECT_TRUE(out.extras.empty());

  // A regular copy moved onto an extra holder replaces the extra.
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 7).ok());
  move(1, 0, 6, 7);
  out = MustFind(Id(1));
  EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 3, 7}));
  EXPECT_TRUE(out.extras.empty());

  // Erasure-coded shards.
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{0, 1}, {1, 2}, {2, 3}})).ok());
  move(2, 1, 2, 4);
  move(2, 1, 2, 4);
  EXPECT_EQ(MustFind(Id(2)).shards, (std::vector<ShardHolder>{{0, 1}, {1, 4}, {2, 3}}));
  EXPECT_TRUE(MustFind(Id(2)).AtTarget());
}

TEST_P(CatalogConformance, MovePlacementCancelsADeletionQueuedOnTheNewPeer) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 3})).ok());
  ASSERT_TRUE(catalog_->QueueDeletions(9, {Blob(1), Blob(1, 2)}).ok());
  auto outcome = catalog_->MovePlacement(Id(1), 0, 3, 9);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, MoveOutcome::kMoved);
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 9}));
  auto on9 = catalog_->ListPendingDeletions(9, 10);
  ASSERT_TRUE(on9.ok()) << on9.status();
  EXPECT_EQ(*on9, (std::vector<ChunkShard>{Blob(1, 2)}));
}

TEST_P(CatalogConformance, MovePlacementOfACollectedChunkQueuesItsDeletion) {
  for (int i = 0; i < 2; ++i) {  // idempotent
    auto outcome = catalog_->MovePlacement(Id(50), 2, 1, 8);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, MoveOutcome::kUnknownChunk);
  }
  auto on8 = catalog_->ListPendingDeletions(8, 10);
  ASSERT_TRUE(on8.ok()) << on8.status();
  EXPECT_EQ(*on8, (std::vector<ChunkShard>{Blob(50, 2)}));
  auto found = catalog_->FindChunk(Id(50));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  auto on1 = catalog_->ListPendingDeletions(1, 10);
  ASSERT_TRUE(on1.ok()) << on1.status();
  EXPECT_TRUE(on1->empty());
}

TEST_P(CatalogConformance, MovePlacementRejectsAShardOutsideTheScheme) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2})).ok());
  ASSERT_TRUE(catalog_->AddChunk(EcChunk(2, 2, 1, {{0, 1}, {1, 2}, {2, 3}})).ok());
  auto copies = catalog_->MovePlacement(Id(1), 1, 1, 5);
  EXPECT_EQ(copies.status().code(), absl::StatusCode::kInvalidArgument) << copies.status();
  auto erasure = catalog_->MovePlacement(Id(2), 3, 3, 5);
  EXPECT_EQ(erasure.status().code(), absl::StatusCode::kInvalidArgument) << erasure.status();
  EXPECT_EQ(MustFind(Id(1)).holders, (std::vector<PeerId>{1, 2}));
  EXPECT_EQ(MustFind(Id(2)).shards, (std::vector<ShardHolder>{{0, 1}, {1, 2}, {2, 3}}));
  auto on5 = catalog_->ListPendingDeletions(5, 10);
  ASSERT_TRUE(on5.ok()) << on5.status();
  EXPECT_TRUE(on5->empty());
}

TEST_P(CatalogConformance, StatsCountOneCopyExtrasAndPendingDeletions) {
  ASSERT_TRUE(catalog_->AddChunk(Chunk(1, 2, {1, 2}, 100, 120)).ok());  // at target
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 3).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(1), 4).ok());
  // Below target however many extras it has.
  ASSERT_TRUE(catalog_->AddChunk(Chunk(4, 3, {1}, 40, 50)).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(4), 2).ok());
  ASSERT_TRUE(catalog_->AddExtraPlacement(Id(4), 3).ok());
  ASSERT_TRUE(
      catalog_->AddChunk(EcChunk(2, 4, 2, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}, 300))
          .ok());
  ASSERT_TRUE(catalog_->AddChunk(Chunk(3, 1, {}, 10, 20)).ok());  // below: nothing placed
  ASSERT_TRUE(catalog_->QueueDeletions(9, {Blob(7), Blob(8), Blob(8, 1)}).ok());

  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 4u);
  EXPECT_EQ(stats->chunks_at_target, 2u);
  EXPECT_EQ(stats->chunks_below_target, 2u);
  EXPECT_EQ(stats->plain_bytes, 100u + 40u + 1000u + 10u);
  EXPECT_EQ(stats->stored_bytes, 2 * 120u + 50u + 6 * 300u);  // no extras
  EXPECT_EQ(stats->one_copy_bytes, 120u + 50u + 4 * 300u + 20u);
  EXPECT_EQ(stats->extra_blobs, 4u);
  EXPECT_EQ(stats->extra_bytes, 2 * 120u + 2 * 50u);
  EXPECT_EQ(stats->pending_deletions, 3u);

  ASSERT_TRUE(catalog_->RemoveExtraPlacements(Id(4), {2, 3}).ok());
  ASSERT_TRUE(catalog_->AckDeletions(9, {Blob(8, 1)}).ok());
  stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->extra_blobs, 2u);
  EXPECT_EQ(stats->extra_bytes, 2 * 120u);
  EXPECT_EQ(stats->pending_deletions, 2u);
}

TEST_P(CatalogConformance, ConcurrentLifecycleOperations) {
  constexpr int kChunks = 40;
  for (int c = 0; c < kChunks; ++c) {
    ASSERT_TRUE(catalog_->AddChunk(Chunk(static_cast<uint8_t>(c), 2, {9})).ok());
    ASSERT_TRUE(catalog_->AddChunk(Chunk(static_cast<uint8_t>(100 + c), 1, {5})).ok());
  }
  std::vector<std::thread> threads;
  threads.emplace_back([this] {  // extras on 1 and 2
    for (int c = 0; c < kChunks; ++c) {
      EXPECT_TRUE(catalog_->AddExtraPlacement(Id(static_cast<uint8_t>(c)), 1).ok());
      EXPECT_TRUE(catalog_->AddExtraPlacement(Id(static_cast<uint8_t>(c)), 2).ok());
    }
  });
  threads.emplace_back([this] {  // a regular copy on 1, racing the extra one
    for (int c = kChunks - 1; c >= 0; --c) {
      EXPECT_TRUE(catalog_->AddChunk(Chunk(static_cast<uint8_t>(c), 2, {1})).ok());
    }
  });
  threads.emplace_back([this] {  // garbage collection of other chunks
    for (int c = 0; c < kChunks; c += 4) {
      std::vector<ChunkId> ids;
      for (int i = c; i < c + 4; ++i) ids.push_back(Id(static_cast<uint8_t>(100 + i)));
      auto queued = catalog_->DeleteChunks(ids);
      EXPECT_TRUE(queued.ok()) << queued.status();
      EXPECT_EQ(queued.value_or(0), 4u);
    }
  });
  threads.emplace_back([this] {  // stats and listing meanwhile
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE(catalog_->Stats().ok());
      EXPECT_TRUE(catalog_->ListChunks(std::nullopt, 16).ok());
      EXPECT_TRUE(catalog_->ListPendingDeletions(5, 8).ok());
    }
  });
  for (auto& th : threads) th.join();
  for (int c = 0; c < kChunks; ++c) {
    ChunkRecord out = MustFind(Id(static_cast<uint8_t>(c)));
    EXPECT_EQ(out.holders, (std::vector<PeerId>{1, 9})) << c;
    EXPECT_EQ(out.extras, (std::vector<PeerId>{2})) << c;
  }
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, static_cast<uint64_t>(kChunks));
  EXPECT_EQ(stats->pending_deletions, static_cast<uint64_t>(kChunks));
  EXPECT_EQ(stats->extra_blobs, static_cast<uint64_t>(kChunks));
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

TEST(SqliteCatalogTest, LifecycleStatePersistsAcrossReopen) {
  SqliteHarness h;
  ASSERT_TRUE(h.catalog->AddChunk(Chunk(1, 2, {5})).ok());
  ASSERT_TRUE(h.catalog->AddExtraPlacement(Id(1), 6).ok());
  ASSERT_TRUE(h.catalog->AddChunk(Chunk(2, 1, {5})).ok());
  auto queued = h.catalog->DeleteChunks({Id(2)});
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_TRUE(h.catalog->QueueDeletions(5, {Blob(0)}).ok());
  ASSERT_TRUE(h.catalog->AddSnapshot(Snap(3, 1)).ok());
  ASSERT_TRUE(h.catalog->AddSnapshot(Snap(4, 2)).ok());
  auto removed = h.catalog->RemoveSnapshot(Id(3));
  ASSERT_TRUE(removed.ok() && *removed);
  h.Reopen();
  ASSERT_NE(h.catalog, nullptr);
  auto chunk = h.catalog->FindChunk(Id(1));
  ASSERT_TRUE(chunk.ok() && chunk->has_value());
  EXPECT_EQ((*chunk)->extras, (std::vector<PeerId>{6}));
  auto pending = h.catalog->ListPendingDeletions(5, 10);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, (std::vector<ChunkShard>{Blob(2), Blob(0)}));  // queue order kept
  auto snaps = h.catalog->ListSnapshots();
  ASSERT_TRUE(snaps.ok()) << snaps.status();
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].id, Id(4));
}

TEST(SqliteCatalogTest, DamagedPendingDeletionRowIsAnErrorNotACrash) {
  SqliteHarness h;
  {
    std::lock_guard<std::mutex> lock(h.db->impl()->mu);
    ASSERT_TRUE(h.db->impl()
                    ->Exec("INSERT INTO pending_deletions (peer_id, chunk_id, shard, queued_ns) "
                           "VALUES (3, x'0102', 0, 1)")
                    .ok());
  }
  auto list = h.catalog->ListPendingDeletions(3, 10);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kDataLoss) << list.status();
}

}  // namespace
}  // namespace cairn::index
