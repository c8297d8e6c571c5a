// Snapshot rewrite (`cairn delete PATH`) through in-memory peers: the removed file, symlink or
// directory is gone from the new snapshot, everything else restores identically, the old
// snapshot is forgotten, and after garbage collection the removed content is on no peer.
#include "cairn/engine/rewrite.h"

#include <gtest/gtest.h>

#include "cairn/engine/gc.h"
#include "cairn/engine/lifecycle_test_util.h"

namespace cairn::engine {
namespace {

using namespace lifecycle_testing;  // NOLINT(build/namespaces)

// Parameter: erasure coding 2+1 (trees and snapshot blobs as 2 copies) or 2 copies.
class RewriteTest : public LifecycleTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    LifecycleTest::SetUp();
    std::mt19937_64 rng(777);
    src_ = root_ / "src";
    WriteFile(src_ / "keep", RandomData(rng, 80'000));
    secret_ = RandomData(rng, 150'000);
    WriteFile(src_ / "secret.bin", secret_);
    WriteFile(src_ / "a/x", RandomData(rng, 50'000));
    WriteFile(src_ / "a/y", "y\n");
    WriteFile(src_ / "a/b/z", RandomData(rng, 40'000));
    WriteFile(src_ / "a/b/deep/w", RandomData(rng, 20'000));
    WriteFile(src_ / "other/q", RandomData(rng, 10'000));
    fs::create_symlink("keep", src_ / "link");
    std::optional<codec::ErasureScheme> ec;
    if (GetParam()) ec = codec::ErasureScheme{2, 1};
    snap_ = Backup(src_, 2, ec);
  }

  RewriteResult MustRemove(const ports::SnapshotRecord& snap, const std::string& path) {
    auto r = RemovePath(ctx_, snap, path, SnapshotRedundancy(snap.snapshot));
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    if (!r.ok()) return {};
    EXPECT_EQ(r->chunks_below_target, 0u);
    return *r;
  }

  std::set<std::string> Listed(const ports::SnapshotRecord& snap) {
    std::set<std::string> out;
    auto listed = ListSnapshot(ctx_, snap.snapshot, "", true);
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (listed.ok())
      for (const auto& e : *listed) out.insert(e.path);
    return out;
  }

  std::vector<ChunkId> FileChunks(const ports::SnapshotRecord& snap, const std::string& path) {
    auto listed = ListSnapshot(ctx_, snap.snapshot, path, false);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? listed->front().entry.chunks : std::vector<ChunkId>{};
  }

  std::vector<ports::SnapshotRecord> Snapshots() {
    auto s = catalog_->ListSnapshots();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<ports::SnapshotRecord>{};
  }

  fs::path src_;
  std::string secret_;
  ports::SnapshotRecord snap_;
};

TEST_P(RewriteTest, RemovesAFileAndADirectory) {
  const auto before = Listed(snap_);
  ASSERT_TRUE(before.count("src/secret.bin"));
  ASSERT_TRUE(before.count("src/a/b/deep/w"));

  RewriteResult r1 = MustRemove(snap_, "src/secret.bin");
  EXPECT_TRUE(r1.changed);
  EXPECT_EQ(r1.removed_files, 1u);
  EXPECT_EQ(r1.removed_bytes, secret_.size());
  EXPECT_NE(r1.snapshot.id, snap_.id);
  // Same time, host, paths, tags and parent; stats reduced.
  const format::Snapshot& s1 = r1.snapshot.snapshot;
  EXPECT_EQ(s1.time_ns, snap_.snapshot.time_ns);
  EXPECT_EQ(s1.hostname, snap_.snapshot.hostname);
  EXPECT_EQ(s1.paths, snap_.snapshot.paths);
  EXPECT_EQ(s1.tags, snap_.snapshot.tags);
  EXPECT_EQ(s1.parent, snap_.snapshot.parent);
  EXPECT_EQ(s1.copies, snap_.snapshot.copies);
  EXPECT_EQ(s1.ec_k, snap_.snapshot.ec_k);
  EXPECT_EQ(s1.stats.files, snap_.snapshot.stats.files - 1);
  EXPECT_EQ(s1.stats.bytes, snap_.snapshot.stats.bytes - secret_.size());
  auto snaps = Snapshots();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].id, r1.snapshot.id);
  EXPECT_EQ(snaps[0].snapshot, s1);

  // A whole directory, two levels of trees rewritten below the root entry.
  RewriteResult r2 = MustRemove(r1.snapshot, "/src/a/b/");
  EXPECT_TRUE(r2.changed);
  EXPECT_EQ(r2.removed_files, 2u);
  EXPECT_EQ(r2.removed_bytes, 60'000u);
  EXPECT_EQ(r2.snapshot.snapshot.stats.directories, s1.stats.directories - 2);
  snaps = Snapshots();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].id, r2.snapshot.id);

  // A symlink.
  RewriteResult r3 = MustRemove(r2.snapshot, "src/link");
  EXPECT_TRUE(r3.changed);
  EXPECT_EQ(r3.removed_files, 0u);

  auto after = Listed(r3.snapshot);
  std::set<std::string> want;
  for (const auto& p : before) {
    if (!Ignored(p, {"src/secret.bin", "src/a/b", "src/link"})) want.insert(p);
  }
  EXPECT_EQ(after, want);
  EXPECT_EQ(RestoreAndCompare(r3.snapshot, src_, {"secret.bin", "a/b", "link"}), "");
}

TEST_P(RewriteTest, APathNotInTheSnapshotChangesNothing) {
  const auto chunks = CatalogChunks();
  for (const std::string path : {"src/nope", "src/a/nope", "src/keep/below-a-file", "nope"}) {
    RewriteResult r = MustRemove(snap_, path);
    EXPECT_FALSE(r.changed) << path;
    EXPECT_EQ(r.snapshot.id, snap_.id) << path;
  }
  EXPECT_EQ(CatalogChunks(), chunks);
  auto snaps = Snapshots();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].id, snap_.id);
  EXPECT_EQ(RemovePath(ctx_, snap_, "/", SnapshotRedundancy(snap_.snapshot)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(RewriteTest, RemovedContentIsCollectedFromEveryPeer) {
  const auto secret_chunks = FileChunks(snap_, "src/secret.bin");
  ASSERT_GT(secret_chunks.size(), 3u);
  auto held = HeldChunks();
  for (const auto& c : secret_chunks) ASSERT_TRUE(held.count(c));

  RewriteResult r = MustRemove(snap_, "src/secret.bin");
  ASSERT_TRUE(r.changed);
  // Still on the peers until garbage collection.
  held = HeldChunks();
  for (const auto& c : secret_chunks) EXPECT_TRUE(held.count(c));

  auto gc = CollectGarbage(ctx_, {}, nullptr);
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_GE(gc->unreferenced_chunks, secret_chunks.size() + 2);  // + old root tree, snapshot
  auto delivered = DeliverDeletions(ctx_);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->pending, 0u);

  held = HeldChunks();
  for (const auto& c : secret_chunks) EXPECT_FALSE(held.count(c)) << c.ShortHex();
  EXPECT_FALSE(held.count(snap_.id));
  for (const auto& c : ReferencedChunks(ctx_, r.snapshot)) EXPECT_TRUE(held.count(c));
  EXPECT_EQ(RestoreAndCompare(r.snapshot, src_, {"secret.bin"}), "");
}

INSTANTIATE_TEST_SUITE_P(Redundancy, RewriteTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Erasure" : "Copies"; });

}  // namespace
}  // namespace cairn::engine
