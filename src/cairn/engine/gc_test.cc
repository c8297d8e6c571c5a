// Garbage collection through in-memory peers: after forgetting snapshots, exactly the blobs
// the remaining snapshots reference stay on the peers and they restore byte for byte; an
// offline peer keeps its queue; a dry run and an unreadable tree delete nothing; a backup
// racing a collection never loses a chunk it deduplicated against (the GC lock).
#include "cairn/engine/gc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <shared_mutex>
#include <thread>

#include "cairn/engine/backup.h"
#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

using namespace lifecycle_testing;  // NOLINT(build/namespaces)

class GcTest : public LifecycleTest {
 protected:
  // Three versions of a changing tree, each in its own directory root_/vN/src, sharing most
  // content (copied) so that their snapshots share chunks.
  void MakeVersions() {
    std::mt19937_64 rng(20240401);
    fs::path v1 = root_ / "v1/src";
    for (int i = 0; i < 6; ++i)
      WriteFile(v1 / ("f" + std::to_string(i)), RandomData(rng, 120'000 + i * 1000));
    WriteFile(v1 / "sub/small", "small file\n");
    WriteFile(v1 / "sub/deeper/x", RandomData(rng, 30'000));
    fs::create_symlink("f0", v1 / "link");

    fs::path v2 = root_ / "v2/src";
    fs::create_directories(v2.parent_path());
    fs::copy(v1, v2, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::string f1 = ReadAll(v2 / "f1");
    f1.replace(50'000, 20'000, RandomData(rng, 20'000));  // changed in the middle
    WriteFile(v2 / "f1", f1);
    fs::remove(v2 / "f2");
    WriteFile(v2 / "f6", RandomData(rng, 90'000));
    WriteFile(v2 / "sub2/new", RandomData(rng, 40'000));

    fs::path v3 = root_ / "v3/src";
    fs::create_directories(v3.parent_path());
    fs::copy(v2, v3, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::string f3 = ReadAll(v3 / "f3");
    f3 += RandomData(rng, 60'000);
    WriteFile(v3 / "f3", f3);
    fs::remove_all(v3 / "sub");
    WriteFile(v3 / "f7", RandomData(rng, 70'000));
  }

  fs::path Version(int v) { return root_ / ("v" + std::to_string(v)) / "src"; }

  GcReport MustCollect(bool dry_run = false) {
    GcOptions o;
    o.dry_run = dry_run;
    GcProgress progress;
    auto r = CollectGarbage(ctx_, o, &progress);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(progress.phase.load(), GcProgress::Phase::kDone);
    }
    return r.ok() ? *r : GcReport{};
  }

  DeliveryReport MustDeliver() {
    auto r = DeliverDeletions(ctx_);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      for (const auto& e : r->errors) ADD_FAILURE() << e;
    }
    return r.ok() ? *r : DeliveryReport{};
  }

  void Forget(const ports::SnapshotRecord& snap) {
    auto removed = catalog_->RemoveSnapshot(snap.id);
    ASSERT_TRUE(removed.ok()) << removed.status();
    EXPECT_TRUE(*removed);
  }

  // Every blob on the peers belongs to a chunk in `referenced`, and every chunk in it is held.
  void ExpectPeersHoldExactly(const ChunkSet& referenced) {
    auto held = HeldChunks();
    for (const auto& [chunk, n] : held) {
      EXPECT_TRUE(referenced.count(chunk))
          << "unreferenced chunk " << chunk.ShortHex() << " still on " << n << " peer(s)";
    }
    for (const auto& c : referenced) EXPECT_TRUE(held.count(c)) << "lost " << c.ShortHex();
    EXPECT_EQ(CatalogChunks(), referenced);
  }
};

// Three backups of a changing tree; two are forgotten (each choice of the one kept).
class GcKeepTest : public GcTest, public ::testing::WithParamInterface<int> {};

TEST_P(GcKeepTest, OnlyTheRemainingSnapshotsBlobsStay) {
  const int keep = GetParam();
  MakeVersions();
  std::vector<ports::SnapshotRecord> snaps;
  for (int v = 1; v <= 3; ++v) snaps.push_back(Backup(Version(v)));
  ASSERT_FALSE(HasFailure());
  const size_t blobs_before = HeldChunks().size();
  for (int v = 1; v <= 3; ++v)
    if (v != keep) Forget(snaps[v - 1]);

  const ChunkSet referenced = ReferencedChunks(ctx_, snaps[keep - 1]);
  GcReport gc = MustCollect();
  EXPECT_EQ(gc.snapshots, 1u);
  EXPECT_EQ(gc.referenced_chunks, referenced.size());
  EXPECT_GT(gc.unreferenced_chunks, 0u);
  EXPECT_EQ(gc.referenced_chunks + gc.unreferenced_chunks, blobs_before);
  EXPECT_EQ(gc.deletions_queued, gc.unreferenced_blobs);
  EXPECT_EQ(gc.unreferenced_blobs, 2 * gc.unreferenced_chunks);  // 2 copies each
  EXPECT_GT(gc.unreferenced_bytes, 0u);
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending_deletions, gc.deletions_queued);

  DeliveryReport d = MustDeliver();
  EXPECT_EQ(d.delivered, gc.deletions_queued);
  EXPECT_EQ(d.blobs_deleted, gc.deletions_queued);
  EXPECT_EQ(d.pending, 0u);
  EXPECT_EQ(d.peers_unreachable, 0u);
  ExpectPeersHoldExactly(referenced);
  EXPECT_EQ(RestoreAndCompare(snaps[keep - 1], Version(keep)), "");

  // Nothing left to collect or deliver.
  GcReport again = MustCollect();
  EXPECT_EQ(again.unreferenced_chunks, 0u);
  EXPECT_EQ(again.deletions_queued, 0u);
  EXPECT_EQ(MustDeliver().delivered, 0u);
}

INSTANTIATE_TEST_SUITE_P(Keep, GcKeepTest, ::testing::Values(1, 2, 3));

TEST_F(GcTest, DryRunDeletesNothing) {
  MakeVersions();
  auto s1 = Backup(Version(1));
  auto s2 = Backup(Version(2));
  Forget(s1);
  const auto held = HeldChunks();
  const auto in_catalog = CatalogChunks();
  GcReport dry = MustCollect(/*dry_run=*/true);
  EXPECT_GT(dry.unreferenced_chunks, 0u);
  EXPECT_GT(dry.unreferenced_bytes, 0u);
  EXPECT_EQ(dry.deletions_queued, 0u);
  EXPECT_EQ(HeldChunks(), held);
  EXPECT_EQ(CatalogChunks(), in_catalog);
  EXPECT_EQ(MustDeliver().delivered, 0u);
  EXPECT_EQ(HeldChunks(), held);
  // A real run finds the same garbage.
  GcReport real = MustCollect();
  EXPECT_EQ(real.unreferenced_chunks, dry.unreferenced_chunks);
  EXPECT_EQ(real.unreferenced_bytes, dry.unreferenced_bytes);
  EXPECT_EQ(real.deletions_queued, dry.unreferenced_blobs);
}

TEST_F(GcTest, OfflinePeersKeepTheirQueueUntilTheyAreBack) {
  MakeVersions();
  auto s1 = Backup(Version(1));
  auto s2 = Backup(Version(2));
  Forget(s1);
  GcReport gc = MustCollect();
  ASSERT_GT(gc.deletions_queued, 0u);
  // Peer 3 stops answering; peer 4 is known dead.
  peers_.SetReachable(3, false);
  peers_.SetAlive(4, false);
  auto queued3 = catalog_->ListPendingDeletions(3, 100000);
  auto queued4 = catalog_->ListPendingDeletions(4, 100000);
  ASSERT_TRUE(queued3.ok() && queued4.ok());
  ASSERT_FALSE(queued3->empty());
  ASSERT_FALSE(queued4->empty());

  DeliveryReport d = MustDeliver();
  EXPECT_EQ(d.peers_unreachable, 1u);
  EXPECT_EQ(d.peers_skipped, 1u);
  EXPECT_EQ(d.pending, queued3->size() + queued4->size());
  EXPECT_EQ(d.delivered, gc.deletions_queued - d.pending);
  auto still3 = catalog_->ListPendingDeletions(3, 100000);
  ASSERT_TRUE(still3.ok());
  EXPECT_EQ(*still3, *queued3);
  for (const auto& q : *queued3) {
    auto has = peers_.Store(3)->Has({kOwner, q.chunk, q.shard});
    ASSERT_TRUE(has.ok());
    EXPECT_TRUE(*has) << "peer 3 lost a blob while unreachable";
  }

  peers_.SetReachable(3, true);
  peers_.SetAlive(4, true);
  DeliveryReport later = MustDeliver();
  EXPECT_EQ(later.delivered, queued3->size() + queued4->size());
  EXPECT_EQ(later.pending, 0u);
  ExpectPeersHoldExactly(ReferencedChunks(ctx_, s2));
  EXPECT_EQ(RestoreAndCompare(s2, Version(2)), "");
}

TEST_F(GcTest, AnUnreadableTreeAbortsBeforeAnythingIsDeleted) {
  MakeVersions();
  auto s1 = Backup(Version(1));
  auto s2 = Backup(Version(2));
  Forget(s1);
  // Make tree "sub2" of the remaining snapshot unreadable: a damaged cache entry and every
  // stored copy rotten.
  auto listed = ListSnapshot(ctx_, s2.snapshot, "src/sub2", false);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_TRUE(listed->front().entry.subtree.has_value());
  const ChunkId tree = *listed->front().entry.subtree;
  ASSERT_TRUE(catalog_->PutTree(tree, Bytes{0xff, 0x00}).ok());
  auto record = catalog_->FindChunk(tree);
  ASSERT_TRUE(record.ok() && *record);
  ASSERT_FALSE((*record)->holders.empty());
  for (PeerId p : (*record)->holders) {
    ASSERT_TRUE(store::MutateMemBlobForTesting(peers_.Store(p), {kOwner, tree, 0}, [](Bytes& b) {
                  b[b.size() / 2] ^= 0x10;
                }).ok());
  }
  const auto held = HeldChunks();
  const auto in_catalog = CatalogChunks();

  auto r = CollectGarbage(ctx_, {}, nullptr);
  ASSERT_FALSE(r.ok());
  const std::string message(r.status().message());
  EXPECT_NE(message.find(tree.Hex()), std::string::npos) << message;
  EXPECT_NE(message.find(s2.id.ShortHex()), std::string::npos) << message;
  EXPECT_EQ(CatalogChunks(), in_catalog);
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending_deletions, 0u);
  EXPECT_EQ(MustDeliver().delivered, 0u);
  // The rotten tree blobs may have been quarantined by their peers when read; nothing else
  // may be gone.
  auto after = HeldChunks();
  after.erase(tree);
  auto want = held;
  want.erase(tree);
  EXPECT_EQ(after, want);
}

TEST_F(GcTest, CancelledCollectionDeletesNothing) {
  MakeVersions();
  auto s1 = Backup(Version(1));
  Backup(Version(2));
  Forget(s1);
  const auto in_catalog = CatalogChunks();
  std::atomic<bool> cancel{true};
  auto r = CollectGarbage(ctx_, {}, nullptr, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(CatalogChunks(), in_catalog);
}

// A PeerSet over the fake peers whose clients call `hook` before putting a snapshot blob:
// the point where a backup has made every deduplication decision and not yet recorded its
// snapshot.
class HookedPeerSet : public PeerSet {
 public:
  explicit HookedPeerSet(PeerSet* inner) : inner_(inner) {}
  std::function<void()> hook;  // set while no backup runs

  std::vector<StoragePeer> Peers() override { return inner_->Peers(); }
  std::shared_ptr<ports::PeerClient> Client(PeerId id) override {
    auto c = inner_->Client(id);
    return c ? std::make_shared<Client_>(std::move(c), this) : nullptr;
  }
  void ReportFailure(PeerId id) override { inner_->ReportFailure(id); }

 private:
  class Client_ : public ports::PeerClient {
   public:
    Client_(std::shared_ptr<ports::PeerClient> inner, HookedPeerSet* set)
        : inner_(std::move(inner)), set_(set) {}
    absl::StatusOr<ports::PingReply> Ping(const cluster::PeerInfo& self,
                                          const std::vector<cluster::PeerInfo>& known) override {
      return inner_->Ping(self, known);
    }
    using ports::PeerClient::PutBlob;
    absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                              const ports::PutOptions& options) override {
      auto header = format::ParseBlobHeader(blob);
      if (header.ok() && header->kind == BlobKind::kSnapshot && set_->hook) set_->hook();
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
      return inner_->ListBlobs(owner, after, limit);
    }
    absl::Status BlobMoved(std::span<const ports::MovedBlob> moves) override {
      return inner_->BlobMoved(moves);
    }

   private:
    std::shared_ptr<ports::PeerClient> inner_;
    HookedPeerSet* set_;
  };
  PeerSet* inner_;
};

// Waits until `done()` or 60 s passed.
template <typename F>
bool WaitFor(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Backups and collections run concurrently, on data that overlaps with the snapshot forgotten
// just before: a backup that deduplicated against a chunk no snapshot references any more
// must find it still there once it has recorded its snapshot. Each round one of three orders:
//  0. a collection starts while a backup is between its deduplication and its snapshot (the
//     backup waits until the collection either waits for the lock or is done: without the
//     lock, the collection sweeps what the backup deduplicated against);
//  1. a backup starts while a collection waits for the lock (held shared by the test, as by
//     another backup);
//  2. both start at once.
// After each round the new snapshot restores identically; at the end, every kept one.
TEST_F(GcTest, BackupsRacingCollectionsLoseNothing) {
  std::shared_mutex gc_lock;
  ctx_.gc_lock = &gc_lock;
  HookedPeerSet hooked(&peers_);
  ctx_.peers = &hooked;
  const uint64_t seed = 0x5eed0 + static_cast<uint64_t>(::getpid() % 1000);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::string> pool;
  for (int i = 0; i < 10; ++i) pool.push_back(RandomData(rng, 60'000 + 5'000 * i));
  auto make_round = [&](int round) {
    fs::path dir = root_ / ("r" + std::to_string(round)) / "src";
    for (int j = 0; j < 5; ++j) {
      WriteFile(dir / ("p" + std::to_string(j)),
                pool[static_cast<size_t>(round + j) % pool.size()]);
    }
    WriteFile(dir / "unique", RandomData(rng, 30'000));
    WriteFile(dir / "d/shared", pool[static_cast<size_t>(round) % pool.size()]);
    return dir;
  };

  constexpr int kRounds = 7;
  std::vector<fs::path> dirs;
  std::vector<ports::SnapshotRecord> snaps;
  dirs.push_back(make_round(0));
  snaps.push_back(Backup(dirs[0]));  // kept to the end
  for (int round = 1; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Forget the previous round's snapshot: its chunks are garbage unless shared with round 0
    // or this round's backup.
    if (round >= 2) Forget(snaps.back());
    dirs.push_back(make_round(round));
    absl::StatusOr<BackupResult> backup = absl::UnknownError("not run");
    absl::StatusOr<GcReport> gc = absl::UnknownError("not run");
    GcProgress progress;
    std::atomic<bool> at_snapshot{false}, backup_done{false};
    auto run_backup = [&] {
      BackupOptions opts;
      opts.paths = {dirs.back().string()};
      opts.hostname = "laptop";
      opts.upload_threads = 2;
      backup = BackupEngine(ctx_).Run(opts, nullptr);
      backup_done = true;
    };
    auto run_gc = [&] { gc = CollectGarbage(ctx_, {}, &progress); };
    switch (round % 3) {
      case 0: {
        hooked.hook = [&] {
          at_snapshot = true;
          EXPECT_TRUE(WaitFor([&] {
            auto p = progress.phase.load();
            return p == GcProgress::Phase::kWaitingForLock || p == GcProgress::Phase::kDone;
          }));
        };
        std::thread backuper(run_backup);
        EXPECT_TRUE(WaitFor([&] { return at_snapshot.load() || backup_done.load(); }));
        std::thread collector(run_gc);
        backuper.join();
        collector.join();
        hooked.hook = nullptr;
        break;
      }
      case 1: {
        std::shared_lock<std::shared_mutex> other_backup(gc_lock);
        std::thread collector(run_gc);
        EXPECT_TRUE(
            WaitFor([&] { return progress.phase.load() == GcProgress::Phase::kWaitingForLock; }));
        std::thread backuper(run_backup);
        other_backup.unlock();
        backuper.join();
        collector.join();
        break;
      }
      default: {
        std::thread backuper(run_backup);
        std::thread collector(run_gc);
        backuper.join();
        collector.join();
      }
    }
    ASSERT_TRUE(backup.ok()) << backup.status();
    ASSERT_TRUE(gc.ok()) << gc.status();
    snaps.push_back({backup->snapshot_id, backup->snapshot});
    auto delivered = DeliverDeletions(ctx_);
    ASSERT_TRUE(delivered.ok()) << delivered.status();
    EXPECT_EQ(delivered->pending, 0u);
    EXPECT_EQ(RestoreAndCompare(snaps.back(), dirs.back()), "");
  }
  ASSERT_TRUE(CollectGarbage(ctx_, {}, nullptr).ok());
  ASSERT_TRUE(DeliverDeletions(ctx_).ok());
  ChunkSet referenced;
  for (size_t i : {size_t{0}, snaps.size() - 1}) {
    auto refs = ReferencedChunks(ctx_, snaps[i]);
    referenced.insert(refs.begin(), refs.end());
    EXPECT_EQ(RestoreAndCompare(snaps[i], dirs[i]), "") << "round " << i;
  }
  ExpectPeersHoldExactly(referenced);
}

}  // namespace
}  // namespace cairn::engine
