// Test helpers for the lifecycle engines (gc_test, rewrite_test): source trees on disk, a
// fixture with an owner, a catalog and in-memory peers, and what the peers hold.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>

#include "cairn/engine/backup.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/env/clock.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine::lifecycle_testing {

namespace fs = std::filesystem;

inline void WriteFile(const fs::path& path, const std::string& data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

inline std::string RandomData(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

inline std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// True when `rel` is one of `ignored` or below one of them.
inline bool Ignored(const std::string& rel, const std::set<std::string>& ignored) {
  for (const auto& i : ignored) {
    if (rel == i || rel.rfind(i + "/", 0) == 0) return true;
  }
  return false;
}

// Compares source tree `a` with restored tree `b`: types, modes, mtimes (ns), contents and
// symlink targets of every entry, except the relative paths in `ignored` (and below), which
// must be absent from `b`. Returns the first difference, or "" when identical.
inline std::string CompareTrees(const fs::path& a, const fs::path& b,
                                const std::set<std::string>& ignored = {}) {
  size_t count_a = 0, count_b = 0;
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = it->path().lexically_relative(a).string();
    fs::path pb = b / rel;
    struct stat sa, sb;
    if (Ignored(rel, ignored)) {
      if (::lstat(pb.c_str(), &sb) == 0) return "removed entry restored: " + rel;
      continue;
    }
    ++count_a;
    if (::lstat(it->path().c_str(), &sa) != 0) return "lstat " + it->path().string();
    if (::lstat(pb.c_str(), &sb) != 0) return "missing in restore: " + rel;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return "type differs: " + rel;
    if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
      return "mode differs: " + rel;
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
      return "mtime differs: " + rel;
    if (S_ISREG(sa.st_mode) && ReadAll(it->path()) != ReadAll(pb)) return "content differs: " + rel;
    if (S_ISLNK(sa.st_mode) && fs::read_symlink(it->path()) != fs::read_symlink(pb))
      return "symlink differs: " + rel;
  }
  for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator();
       ++it)
    ++count_b;
  if (count_a != count_b)
    return "entry counts differ: " + std::to_string(count_a) + " vs " + std::to_string(count_b);
  return "";
}

using ChunkSet = std::set<ChunkId>;

// Every chunk `snap` references: its own blob, its trees, its files' chunks.
inline ChunkSet ReferencedChunks(const EngineContext& ctx, const ports::SnapshotRecord& snap) {
  ChunkSet out = {snap.id};
  std::vector<ChunkId> trees = {snap.snapshot.root};
  while (!trees.empty()) {
    ChunkId id = trees.back();
    trees.pop_back();
    out.insert(id);
    auto tree = LoadTree(ctx, id);
    EXPECT_TRUE(tree.ok()) << tree.status();
    if (!tree.ok()) continue;
    for (const auto& e : tree->entries) {
      out.insert(e.chunks.begin(), e.chunks.end());
      if (e.subtree) trees.push_back(*e.subtree);
    }
  }
  return out;
}

// An owner (peer 1) with a MemCatalog and storage peers 2..1+npeers on distinct hosts; calls
// to them are made as peer 1 (DeleteBlobs checks the owner).
class LifecycleTest : public ::testing::Test {
 protected:
  static constexpr PeerId kOwner = 1;
  static constexpr PeerId kFirstPeer = 2;
  static constexpr PeerId kLastPeer = 6;

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name)
      if (c == '/') c = '_';  // parameterized tests are named "Name/0"
    root_ =
        fs::temp_directory_path() / ("cairn-lifecycle-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(root_);
    fs::create_directories(root_);
    catalog_ = ports::NewMemCatalog();
    for (PeerId id = kFirstPeer; id <= kLastPeer; ++id)
      peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
    peers_.SetCaller(kOwner);
    codec::Key master{};
    master[0] = 77;
    ctx_.owner = kOwner;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {4096, 16384, 65536};  // small chunks: many of them in little data
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  // Backs up `dir` (its last component names the root entry).
  ports::SnapshotRecord Backup(const fs::path& dir, uint32_t copies = 2,
                               std::optional<codec::ErasureScheme> ec = std::nullopt) {
    BackupOptions opts;
    opts.paths = {dir.string()};
    opts.copies = copies;
    opts.ec = ec;
    opts.hostname = "laptop";
    opts.upload_threads = 2;
    auto r = BackupEngine(ctx_).Run(opts, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_FALSE(r->degraded());
    return {r->snapshot_id, r->snapshot};
  }

  // Restores `snap` into a fresh directory and compares its root entry `name` with `source`.
  std::string RestoreAndCompare(const ports::SnapshotRecord& snap, const fs::path& source,
                                const std::set<std::string>& ignored = {}) {
    RestoreOptions opts;
    opts.target = (root_ / ("restore-" + snap.id.ShortHex())).string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx_, snap.snapshot, opts, nullptr);
    if (!r.ok()) return "restore failed: " + r.status().ToString();
    if (!r->errors.empty()) return "restore errors: " + r->errors.front();
    std::string diff = CompareTrees(source, fs::path(opts.target) / source.filename(), ignored);
    fs::remove_all(opts.target);
    return diff;
  }

  // Chunk id -> number of blobs of it on the storage peers (regular and extra).
  std::map<ChunkId, size_t> HeldChunks() {
    std::map<ChunkId, size_t> out;
    for (PeerId id = kFirstPeer; id <= kLastPeer; ++id) {
      std::optional<BlobKey> after;
      while (true) {
        auto page = peers_.Store(id)->ListHeld(after, 1000);
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok() || page->empty()) break;
        for (const auto& r : *page) {
          EXPECT_EQ(r.key.owner, kOwner);
          out[r.key.chunk]++;
        }
        after = page->back().key;
      }
    }
    return out;
  }

  // Every chunk id in the catalog.
  ChunkSet CatalogChunks() {
    ChunkSet out;
    std::optional<ChunkId> after;
    while (true) {
      auto page = catalog_->ListChunks(after, 500);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) break;
      for (const auto& c : *page) out.insert(c.id);
      after = page->back().id;
    }
    return out;
  }

  fs::path root_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

}  // namespace cairn::engine::lifecycle_testing
