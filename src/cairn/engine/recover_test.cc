// Rebuilding a lost index from in-memory peers: back up, throw the catalog away, recover into
// an empty one with only the owner key, and every snapshot restores byte for byte; the chunk
// records match what backup recorded. A wrong key learns nothing and writes nothing; blobs
// whose kind the peers did not record are read through their headers; a peer that cannot be
// listed leaves the recovery degraded but restorable.
#include "cairn/engine/recover.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/engine/restore.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

using namespace lifecycle_testing;  // NOLINT(build/namespaces)

// A PeerSet that hides the kind the storage peers recorded (blobs stored before index
// migration 0004), delegating everything else.
class KindlessPeers : public PeerSet {
 public:
  explicit KindlessPeers(PeerSet* inner) : inner_(inner) {}
  std::vector<StoragePeer> Peers() override { return inner_->Peers(); }
  std::shared_ptr<ports::PeerClient> Client(PeerId id) override {
    auto inner = inner_->Client(id);
    if (!inner) return nullptr;
    return std::make_shared<Client_>(std::move(inner));
  }

 private:
  class Client_ : public ports::PeerClient {
   public:
    explicit Client_(std::shared_ptr<ports::PeerClient> inner) : inner_(std::move(inner)) {}
    absl::StatusOr<ports::PingReply> Ping(const cluster::PeerInfo& self,
                                          const std::vector<cluster::PeerInfo>& known) override {
      return inner_->Ping(self, known);
    }
    using ports::PeerClient::PutBlob;
    absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                              const ports::PutOptions& options) override {
      return inner_->PutBlob(key, blob, options);
    }
    absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override { return inner_->GetBlob(key); }
    absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
      return inner_->HasBlobs(keys);
    }
    absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
      return inner_->DeleteBlobs(keys);
    }
    absl::StatusOr<ports::BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                                  size_t limit) override {
      auto page = inner_->ListBlobs(owner, after, limit);
      if (page.ok()) {
        for (auto& b : page->blobs) b.kind = 0;
      }
      return page;
    }
    absl::Status BlobMoved(std::span<const ports::MovedBlob> moves) override {
      return inner_->BlobMoved(moves);
    }

   private:
    std::shared_ptr<ports::PeerClient> inner_;
  };
  PeerSet* inner_;
};

struct Scheme {
  std::string name;
  uint32_t copies;
  std::optional<codec::ErasureScheme> ec;
};

class RecoverTest : public LifecycleTest, public ::testing::WithParamInterface<Scheme> {
 protected:
  void SetUp() override {
    LifecycleTest::SetUp();
    // Chunks large enough that most of them are erasure-coded under an EC scheme.
    ctx_.chunker = {64 << 10, 128 << 10, 256 << 10};
  }

  // Two versions of a tree, each in its own directory root_/vN/src, sharing content.
  void MakeVersions() {
    std::mt19937_64 rng(20240501);
    fs::path v1 = Version(1);
    WriteFile(v1 / "big", RandomData(rng, 900'000));  // several chunks
    WriteFile(v1 / "one", RandomData(rng, 100'000));  // one chunk
    WriteFile(v1 / "text", std::string(300'000, 'x'));
    WriteFile(v1 / "sub/small", "small file\n");
    WriteFile(v1 / "sub/deeper/x", RandomData(rng, 30'000));
    WriteFile(v1 / "empty", "");
    fs::create_symlink("big", v1 / "link");
    fs::path v2 = Version(2);
    fs::create_directories(v2.parent_path());
    fs::copy(v1, v2, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::string big = ReadAll(v2 / "big");
    big.replace(400'000, 50'000, RandomData(rng, 50'000));
    WriteFile(v2 / "big", big);
    WriteFile(v2 / "sub2/new", RandomData(rng, 200'000));
  }

  fs::path Version(int v) { return root_ / ("v" + std::to_string(v)) / "src"; }

  std::vector<ports::SnapshotRecord> BackupVersions() {
    MakeVersions();
    std::vector<ports::SnapshotRecord> snaps;
    for (int v : {1, 2}) snaps.push_back(Backup(Version(v), GetParam().copies, GetParam().ec));
    return snaps;
  }

  // Restores through `ctx` and compares with the version it was taken of.
  std::string RestoreWith(const EngineContext& ctx, const ports::SnapshotRecord& snap, int v) {
    RestoreOptions opts;
    opts.target = (root_ / ("restore-" + snap.id.ShortHex())).string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx, snap.snapshot, opts, nullptr);
    if (!r.ok()) return "restore failed: " + r.status().ToString();
    if (!r->errors.empty()) return "restore errors: " + r->errors.front();
    std::string diff = CompareTrees(Version(v), fs::path(opts.target) / "src");
    fs::remove_all(opts.target);
    return diff;
  }

  static std::map<ChunkId, ports::ChunkRecord> AllChunks(ports::Catalog* catalog) {
    std::map<ChunkId, ports::ChunkRecord> out;
    std::optional<ChunkId> after;
    while (true) {
      auto page = catalog->ListChunks(after, 500);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) break;
      for (auto& c : *page) out[c.id] = c;
      after = page->back().id;
    }
    return out;
  }

  // A context like ctx_ over `catalog`, optionally with another master key and peer set.
  EngineContext Fresh(ports::Catalog* catalog, PeerSet* peers = nullptr) {
    EngineContext c = ctx_;
    c.catalog = catalog;
    if (peers) c.peers = peers;
    return c;
  }

  RecoverReport MustRecover(const EngineContext& ctx) {
    RecoverProgress progress;
    auto r = RecoverIndex(ctx, RecoverOptions{}, &progress);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_EQ(progress.chunks_recorded.load(), r->chunks);
    return *r;
  }
};

TEST_P(RecoverTest, EmptyCatalogIsRebuiltAndEverySnapshotRestoresIdentically) {
  std::vector<ports::SnapshotRecord> snaps = BackupVersions();
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = Fresh(fresh.get());
  RecoverReport report = MustRecover(ctx);
  EXPECT_TRUE(report.complete()) << (report.errors.empty() ? "" : report.errors.front());
  EXPECT_EQ(report.peers_listed, (std::vector<PeerId>{2, 3, 4, 5, 6}));
  EXPECT_EQ(report.snapshot_chunks, 2u);
  EXPECT_EQ(report.chunks_below_target, 0u);
  EXPECT_EQ(report.missing_chunks, 0u);

  // The snapshots, oldest first, exactly as backup recorded them.
  auto listed = fresh->ListSnapshots();
  ASSERT_TRUE(listed.ok()) << listed.status();
  auto original = catalog_->ListSnapshots();
  ASSERT_TRUE(original.ok()) << original.status();
  ASSERT_EQ(listed->size(), 2u);
  ASSERT_EQ(original->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*listed)[i].id, snaps[i].id);
    EXPECT_EQ((*listed)[i].id, (*original)[i].id);
    EXPECT_EQ((*listed)[i].snapshot, (*original)[i].snapshot);
  }
  // Every chunk as backup recorded it: kind, scheme, target, placements (sizes where known).
  auto want = AllChunks(catalog_.get());
  auto got = AllChunks(fresh.get());
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(report.chunks, want.size());
  size_t erasure = 0;
  for (const auto& [id, w] : want) {
    SCOPED_TRACE(id.ShortHex());
    ASSERT_EQ(got.count(id), 1u);
    const ports::ChunkRecord& g = got[id];
    EXPECT_EQ(g.kind, w.kind);
    EXPECT_EQ(g.ec_k, w.ec_k);
    EXPECT_EQ(g.ec_m, w.ec_m);
    EXPECT_EQ(g.target, w.target);
    EXPECT_EQ(g.holders, w.holders);
    EXPECT_EQ(g.shards, w.shards);
    EXPECT_EQ(g.blob_size, w.blob_size);
    EXPECT_TRUE(g.plain_size == w.plain_size || (g.plain_size == 0 && w.kind == BlobKind::kData));
    EXPECT_TRUE(g.AtTarget());
    erasure += w.erasure();
  }
  EXPECT_EQ(report.erasure_chunks, erasure);
  if (GetParam().ec) {
    EXPECT_GT(erasure, 0u);
  }
  // The trees are cached.
  auto root = fresh->GetTree(snaps[0].snapshot.root);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->has_value());

  // Restore works as before.
  for (int v : {1, 2}) EXPECT_EQ(RestoreWith(ctx, snaps[v - 1], v), "");

  // Running it again changes nothing.
  RecoverReport again = MustRecover(ctx);
  EXPECT_EQ(again.chunks, report.chunks);
  EXPECT_EQ(AllChunks(fresh.get()).size(), want.size());
  EXPECT_EQ(fresh->ListSnapshots()->size(), 2u);
}

TEST_P(RecoverTest, WrongKeyLearnsNothingAndRecordsNothing) {
  BackupVersions();
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = Fresh(fresh.get());
  codec::Key other{};
  other[0] = 78;  // the fixture's key has 77
  ctx.keys = codec::DeriveOwnerKeys(other);
  auto r = RecoverIndex(ctx, RecoverOptions{}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("does not decrypt any snapshot: wrong key?"),
            std::string::npos)
      << r.status();
  EXPECT_TRUE(fresh->ListSnapshots()->empty());
  EXPECT_TRUE(AllChunks(fresh.get()).empty());
  auto stats = fresh->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks, 0u);
}

// Blobs stored before the peers recorded kinds: every chunk's header is read instead.
TEST_P(RecoverTest, UnknownKindsAreReadFromTheHeaders) {
  std::vector<ports::SnapshotRecord> snaps = BackupVersions();
  KindlessPeers kindless(&peers_);
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = Fresh(fresh.get(), &kindless);
  RecoverReport report = MustRecover(ctx);
  EXPECT_TRUE(report.complete());
  auto want = AllChunks(catalog_.get());
  EXPECT_EQ(report.headers_read, want.size());
  auto got = AllChunks(fresh.get());
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [id, w] : want) {
    EXPECT_EQ(got[id].kind, w.kind) << id.ShortHex();
    EXPECT_EQ(got[id].ec_k, w.ec_k) << id.ShortHex();
  }
  for (int v : {1, 2}) EXPECT_EQ(RestoreWith(Fresh(fresh.get()), snaps[v - 1], v), "");
}

// A peer that cannot be listed: its blobs are not recorded, chunks look below target, and every
// snapshot still restores (each chunk has a copy or k shards elsewhere); repair would top up.
TEST_P(RecoverTest, AnUnreachablePeerLeavesChunksBelowTargetButRestorable) {
  std::vector<ports::SnapshotRecord> snaps = BackupVersions();
  peers_.SetReachable(3, false);
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = Fresh(fresh.get());
  RecoverReport report = MustRecover(ctx);
  EXPECT_FALSE(report.complete());
  EXPECT_EQ(report.peers_not_listed, (std::vector<PeerId>{3}));
  ASSERT_FALSE(report.errors.empty());
  EXPECT_NE(report.errors.front().find("peer 3"), std::string::npos) << report.errors.front();
  EXPECT_GT(report.chunks_below_target, 0u);
  EXPECT_EQ(fresh->ListSnapshots()->size(), 2u);
  for (int v : {1, 2}) EXPECT_EQ(RestoreWith(ctx, snaps[v - 1], v), "");
}

TEST_P(RecoverTest, NothingToRecoverIsAClearError) {
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = Fresh(fresh.get());
  // No blobs of this owner anywhere.
  auto r = RecoverIndex(ctx, RecoverOptions{}, nullptr);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  // No live peer.
  for (PeerId id = kFirstPeer; id <= kLastPeer; ++id) peers_.SetAlive(id, false);
  r = RecoverIndex(ctx, RecoverOptions{}, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_TRUE(AllChunks(fresh.get()).empty());
}

INSTANTIATE_TEST_SUITE_P(Schemes, RecoverTest,
                         ::testing::Values(Scheme{"Copies", 2, std::nullopt},
                                           Scheme{"Erasure", 2, codec::ErasureScheme{3, 2}}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cairn::engine
