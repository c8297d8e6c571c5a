// Extra copies through in-memory peers: they fill spare space (trees and snapshots first, then
// the least spread data), are never counted by check, give way to regular puts, and are read
// when the regular holders are gone.
#include "cairn/engine/extras.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "cairn/engine/backup.h"
#include "cairn/engine/check.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGiB = 1ull << 30;

class ExtrasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("cairn-extras-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    WriteFiles("src", 6, /*seed=*/99);
    catalog_ = ports::NewMemCatalog();
    codec::Key master{};
    master[0] = 7;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {16 << 10, 64 << 10, 256 << 10};
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
    ctx_.gc_lock = &gc_lock_;
  }
  void TearDown() override { fs::remove_all(root_); }

  void WriteFiles(const std::string& dir, int n, uint64_t seed) {
    fs::create_directories(root_ / dir / "sub");
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
      std::string data(200'000 + i * 1000, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      std::ofstream(root_ / dir / ("f" + std::to_string(i)), std::ios::binary) << data;
    }
    std::ofstream(root_ / dir / "sub/small") << "small file " << dir;
  }

  void AddPeers(PeerId first, PeerId last, uint64_t quota) {
    for (PeerId id = first; id <= last; ++id) {
      peers_.AddPeer(id, "host" + std::to_string(id), quota);
    }
  }

  void Backup(const std::string& dir, uint32_t copies) {
    BackupOptions opts;
    opts.paths = {(root_ / dir).string()};
    opts.copies = copies;
    auto r = BackupEngine(ctx_).Run(opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->chunks_below_target, 0u);
  }

  ExtraReport MustPlace(const ExtraOptions& options) {
    auto r = PlaceExtraCopies(ctx_, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ExtraReport{};
  }

  std::vector<ports::ChunkRecord> AllChunks() {
    auto page = catalog_->ListChunks(std::nullopt, 1'000'000);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : std::vector<ports::ChunkRecord>{};
  }

  CheckReport MustCheck() {
    auto r = Check(ctx_, {}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CheckReport{};
  }

  // The peer holds `chunk` (shard 0) as an extra copy.
  bool HoldsExtra(PeerId peer, const ChunkId& chunk) {
    BlobKey key{ctx_.owner, chunk, 0};
    auto records = peers_.Store(peer)->ListOwner(ctx_.owner, std::nullopt, 1'000'000);
    if (!records.ok()) return false;
    for (const auto& r : *records) {
      if (r.key == key) return r.extra;
    }
    return false;
  }

  uint64_t TotalExtraBlobs() {
    uint64_t n = 0;
    for (const auto& p : peers_.Peers()) n += peers_.Store(p.id)->Stats().extra_blobs;
    return n;
  }

  void ExpectRestorable(const std::string& dir) {
    auto snap = ResolveSnapshot(catalog_.get(), "latest");
    ASSERT_TRUE(snap.ok()) << snap.status();
    RestoreOptions opts;
    opts.target = (root_ / "restore").string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->errors.empty()) << r->errors.front();
    for (const auto& e : fs::recursive_directory_iterator(root_ / dir)) {
      if (!e.is_regular_file()) continue;
      fs::path rel = fs::relative(e.path(), root_ / dir);
      std::ifstream a(e.path(), std::ios::binary),
          b(root_ / "restore" / dir / rel, std::ios::binary);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}),
                std::string(std::istreambuf_iterator<char>(b), {}))
          << rel;
    }
  }

  fs::path root_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  std::shared_mutex gc_lock_;
  EngineContext ctx_;
};

TEST_F(ExtrasTest, MetadataGetsExtraCopiesByDefaultAndDataWhenAsked) {
  AddPeers(2, 7, kGiB);
  Backup("src", 2);
  ExtraReport r = MustPlace({});
  uint64_t metadata = 0;
  for (const auto& c : AllChunks()) {
    if (c.kind == BlobKind::kData) {
      EXPECT_TRUE(c.extras.empty()) << c.id.ShortHex();
      continue;
    }
    ++metadata;
    ASSERT_EQ(c.extras.size(), 1u) << c.id.ShortHex();
    PeerId extra = c.extras[0];
    EXPECT_EQ(std::count(c.holders.begin(), c.holders.end(), extra), 0);
    EXPECT_TRUE(HoldsExtra(extra, c.id)) << "peer " << extra;
  }
  EXPECT_GE(metadata, 3u);  // root tree, sub tree, snapshot
  EXPECT_EQ(r.placed, metadata);
  EXPECT_GT(r.bytes, 0u);
  EXPECT_EQ(r.peers_full, 0u);
  EXPECT_EQ(TotalExtraBlobs(), metadata);
  // Again: nothing to do.
  EXPECT_EQ(MustPlace({}).placed, 0u);

  ExtraOptions all;
  all.data = true;
  all.copies = 2;
  r = MustPlace(all);
  auto chunks = AllChunks();
  EXPECT_EQ(r.placed, chunks.size() * 2 - metadata);
  for (const auto& c : chunks) {
    ASSERT_EQ(c.extras.size(), 2u) << c.id.ShortHex();
    for (PeerId p : c.extras) {
      EXPECT_EQ(std::count(c.holders.begin(), c.holders.end(), p), 0);
      EXPECT_TRUE(HoldsExtra(p, c.id));
    }
  }
  // Check counts regular copies only: still exactly at target, none "above".
  CheckReport check = MustCheck();
  EXPECT_TRUE(check.healthy());
  EXPECT_EQ(check.at_target, check.chunks);
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->extra_blobs, chunks.size() * 2);
}

// Peers 2 and 3 hold everything; peer 4 joins with room for the metadata plus one byte less
// than the smallest data blob: metadata must go first, then nothing else fits.
TEST_F(ExtrasTest, TreesAndSnapshotsGoBeforeData) {
  AddPeers(2, 3, kGiB);
  Backup("src", 2);
  uint64_t metadata_bytes = 0, smallest_data = UINT64_MAX;
  for (const auto& c : AllChunks()) {
    if (c.kind == BlobKind::kData) {
      smallest_data = std::min(smallest_data, c.blob_size);
    } else {
      metadata_bytes += c.blob_size;
    }
  }
  AddPeers(4, 4, metadata_bytes + smallest_data - 1);
  ExtraOptions o;
  o.data = true;
  o.max_fill = 1.0;
  ExtraReport r = MustPlace(o);
  for (const auto& c : AllChunks()) {
    if (c.kind == BlobKind::kData) {
      EXPECT_TRUE(c.extras.empty()) << c.id.ShortHex();
    } else {
      EXPECT_EQ(c.extras, std::vector<PeerId>{4}) << c.id.ShortHex();
    }
  }
  EXPECT_EQ(r.bytes, metadata_bytes);
}

// Data chunks whose copies share a host get extras before those already on two hosts: peers 2
// and 3 share host A, 4 is on host B (placement ignores hosts here, so some chunks end up on
// A only); 2..4 are then full, and peer 5 has room for exactly the chunks on one host.
TEST_F(ExtrasTest, LeastSpreadDataChunksGoFirst) {
  peers_.AddPeer(2, "hostA", kGiB);
  peers_.AddPeer(3, "hostA", kGiB);
  peers_.AddPeer(4, "hostB", kGiB);
  ctx_.spread = placement::Spread::kPeer;
  Backup("src", 2);
  for (PeerId p : {2, 3, 4}) peers_.SetQuota(p, peers_.Store(p)->Stats().used);
  auto one_host = [](const ports::ChunkRecord& c) {
    return c.holders == std::vector<PeerId>{2, 3};
  };
  uint64_t room = 0, on_one_host = 0, on_two_hosts = 0;
  for (const auto& c : AllChunks()) {
    if (c.kind != BlobKind::kData) continue;
    if (one_host(c)) {
      room += c.blob_size;
      ++on_one_host;
    } else {
      ++on_two_hosts;
    }
  }
  ASSERT_GT(on_one_host, 0u);
  ASSERT_GT(on_two_hosts, 0u);
  peers_.AddPeer(5, "hostC", room);
  ExtraOptions o;
  o.metadata = false;
  o.data = true;
  o.max_fill = 1.0;
  ExtraReport r = MustPlace(o);
  for (const auto& c : AllChunks()) {
    if (c.kind == BlobKind::kData && one_host(c)) {
      EXPECT_EQ(c.extras, std::vector<PeerId>{5}) << c.id.ShortHex();
    } else {
      EXPECT_TRUE(c.extras.empty()) << c.id.ShortHex();
    }
  }
  EXPECT_EQ(r.placed, on_one_host);
  EXPECT_EQ(r.bytes, room);
  EXPECT_EQ(r.peers_full, 4u);  // every peer: stopped early
}

// A chunk with one regular copy and one extra, at target 2, is below target: check never counts
// extras. Repair brings it back with a regular copy.
TEST_F(ExtrasTest, CheckDoesNotCountExtras) {
  AddPeers(2, 7, kGiB);
  Backup("src", 2);
  ExtraOptions o;
  o.data = true;
  MustPlace(o);
  std::optional<ports::ChunkRecord> victim;
  for (const auto& c : AllChunks()) {
    if (c.kind == BlobKind::kData) victim = c;
  }
  ASSERT_TRUE(victim);
  ASSERT_EQ(victim->holders.size(), 2u);
  ASSERT_EQ(victim->extras.size(), 1u);
  ASSERT_TRUE(peers_.Store(victim->holders[0])->Delete({ctx_.owner, victim->id, 0}).ok());

  CheckReport before = MustCheck();
  EXPECT_EQ(before.below_target, 1u);
  EXPECT_EQ(before.lost, 0u);
  ASSERT_EQ(before.below_detail.size(), 1u);
  EXPECT_EQ(before.below_detail[0].first, victim->id);

  auto repaired = Repair(ctx_, {}, nullptr);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->repaired, 1u);
  EXPECT_TRUE(MustCheck().healthy());
  auto after = catalog_->FindChunk(victim->id);
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_TRUE((*after)->AtTarget());
}

// Every regular copy gone: restore reads the extras.
TEST_F(ExtrasTest, RestoreReadsExtrasWhenRegularHoldersAreGone) {
  AddPeers(2, 7, kGiB);
  Backup("src", 1);
  ExtraOptions o;
  o.data = true;
  MustPlace(o);
  auto chunks = AllChunks();
  for (const auto& c : chunks) {
    ASSERT_EQ(c.extras.size(), 1u);
    for (PeerId p : c.holders) {
      ASSERT_TRUE(peers_.Store(p)->Delete({ctx_.owner, c.id, 0}).ok());
    }
  }
  for (const auto& c : chunks) {
    auto plain = FetchChunk(ctx_, c.id);
    ASSERT_TRUE(plain.ok()) << c.id.ShortHex() << ": " << plain.status();
    EXPECT_EQ(plain->size(), c.plain_size);
  }
  ExpectRestorable("src");
  // ... and check reports them lost all the same (extras are not placements that count).
  EXPECT_EQ(MustCheck().lost, chunks.size());
}

// The holder of the only regular copy is dead, and the peer keeping the extra is suspect (not
// alive, so outside the placement order) but still answers: FetchChunk reads the recorded extra.
TEST_F(ExtrasTest, FetchChunkUsesARecordedExtraWhenTheRegularHolderIsGone) {
  AddPeers(2, 7, kGiB);
  Backup("src", 1);
  ExtraOptions o;
  o.data = true;
  MustPlace(o);
  auto chunks = AllChunks();
  ASSERT_FALSE(chunks.empty());
  const ports::ChunkRecord& c = chunks[0];
  ASSERT_EQ(c.holders.size(), 1u);
  ASSERT_EQ(c.extras.size(), 1u);
  peers_.SetReachable(c.holders[0], false);
  peers_.SetAlive(c.holders[0], false);
  peers_.SetAlive(c.extras[0], false);
  auto plain = FetchChunk(ctx_, c.id);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->size(), c.plain_size);
}

// Extras give way: a storage peer filled with extras still takes regular blobs (it evicts
// extras, oldest first); the owner's PruneExtras then forgets the evicted ones, and what stays
// recorded is really there.
TEST_F(ExtrasTest, RegularPutsEvictExtrasAndPruneForgetsThem) {
  AddPeers(2, 7, kGiB);
  Backup("src", 2);
  // Shrink every peer to what it holds plus 300 KB, then fill that with extras.
  for (const auto& p : peers_.Peers()) {
    peers_.SetQuota(p.id, peers_.Store(p.id)->Stats().used + 300'000);
  }
  ExtraOptions o;
  o.data = true;
  o.copies = 4;
  o.max_fill = 1.0;
  ExtraReport placed = MustPlace(o);
  ASSERT_GT(placed.placed, 6u);
  const uint64_t extras_before = TotalExtraBlobs();
  ASSERT_EQ(extras_before, placed.placed);

  // Another owner stores regular blobs on every peer: they fit only by evicting extras.
  codec::Key other_master{};
  other_master[0] = 8;
  codec::OwnerKeys other = codec::DeriveOwnerKeys(other_master);
  std::mt19937_64 rng(5);
  uint64_t regular_puts = 0;
  for (const auto& p : peers_.Peers()) {
    ports::StoreStats s = peers_.Store(p.id)->Stats();
    ASSERT_GT(s.extra_bytes, 0u) << "peer " << p.id;
    std::string plain(200'000, '\0');
    for (auto& ch : plain) ch = static_cast<char>(rng());
    auto sealed =
        format::SealChunk(other, 50, BlobKind::kData,
                          ByteSpan(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()));
    ASSERT_TRUE(sealed.ok());
    ASSERT_GT(s.used + sealed->blob.size(), s.quota);  // needs the extras' space
    auto put = peers_.ClientAs(p.id, 50)->PutBlob({50, sealed->id, 0}, sealed->blob);
    ASSERT_TRUE(put.ok()) << "peer " << p.id << ": " << put.status();
    ++regular_puts;
    ports::StoreStats after = peers_.Store(p.id)->Stats();
    EXPECT_LT(after.extra_blobs, s.extra_blobs);
    EXPECT_EQ(after.blobs - after.extra_blobs, s.blobs - s.extra_blobs + 1);
  }
  EXPECT_EQ(regular_puts, 6u);
  const uint64_t evicted = extras_before - TotalExtraBlobs();
  ASSERT_GT(evicted, 0u);

  auto pruned = PruneExtras(ctx_);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, evicted);
  uint64_t recorded = 0;
  for (const auto& c : AllChunks()) {
    for (PeerId p : c.extras) {
      ++recorded;
      EXPECT_TRUE(HoldsExtra(p, c.id)) << "peer " << p << " chunk " << c.id.ShortHex();
    }
  }
  EXPECT_EQ(recorded, TotalExtraBlobs());
  // The owner's regular copies were never touched.
  CheckReport check = MustCheck();
  EXPECT_TRUE(check.healthy());
  ExpectRestorable("src");
}

TEST_F(ExtrasTest, ErasureCodedChunksGetNoExtras) {
  AddPeers(2, 7, kGiB);
  BackupOptions opts;
  opts.paths = {(root_ / "src").string()};
  opts.ec = codec::ErasureScheme{2, 1};
  auto b = BackupEngine(ctx_).Run(opts, nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  ExtraOptions o;
  o.data = true;
  MustPlace(o);
  uint64_t erasure = 0;
  for (const auto& c : AllChunks()) {
    if (c.erasure()) {
      ++erasure;
      EXPECT_TRUE(c.extras.empty());
    } else {
      EXPECT_EQ(c.extras.size(), 1u);  // small chunks and metadata stored as copies
    }
  }
  EXPECT_GT(erasure, 0u);
}

TEST_F(ExtrasTest, CancelStopsPlacement) {
  AddPeers(2, 7, kGiB);
  Backup("src", 2);
  std::atomic<bool> cancel{true};
  auto r = PlaceExtraCopies(ctx_, {}, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(TotalExtraBlobs(), 0u);
}

}  // namespace
}  // namespace cairn::engine
