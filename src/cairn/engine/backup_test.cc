// Backup and restore through in-memory peers: what a user depends on — restored bytes,
// modes, mtimes, symlinks and hard links equal the source; unchanged files are not re-read;
// a dead peer loses nothing; too few peers is reported, not hidden.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "cairn/engine/backup.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/env/clock.h"
#include "cairn/index/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

std::string RandomData(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Compares two trees: types, modes, mtimes (ns), contents, symlink targets and which names
// share an inode. Returns the first difference, or "" when identical.
std::string CompareTrees(const std::string& a, const std::string& b) {
  std::map<ino_t, std::string> links_a;
  std::map<std::string, std::string> group_of;  // path in a -> first path of its inode
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().lexically_relative(a).string();
    std::string pa = it->path().string(), pb = b + "/" + rel;
    struct stat sa, sb;
    if (::lstat(pa.c_str(), &sa) != 0) return "lstat " + pa;
    if (::lstat(pb.c_str(), &sb) != 0) return "missing in restore: " + rel;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return "type differs: " + rel;
    if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777)) return "mode differs: " + rel;
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
      return "mtime differs: " + rel;
    if (S_ISREG(sa.st_mode)) {
      if (ReadAll(pa) != ReadAll(pb)) return "content differs: " + rel;
      if (sa.st_nlink > 1) {
        auto [first, inserted] = links_a.emplace(sa.st_ino, rel);
        if (!inserted) {
          struct stat sf;
          ::lstat((b + "/" + first->second).c_str(), &sf);
          if (sf.st_ino != sb.st_ino) return "hard link not restored: " + rel;
        }
      }
    }
    if (S_ISLNK(sa.st_mode) && fs::read_symlink(pa) != fs::read_symlink(pb)) return "symlink differs: " + rel;
  }
  size_t count_a = 0, count_b = 0;
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator(); ++it) ++count_a;
  for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator(); ++it) ++count_b;
  if (count_a != count_b) return "entry counts differ: " + std::to_string(count_a) + " vs " + std::to_string(count_b);
  return "";
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cairn-engine-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    catalog_ = index::NewMemCatalog();
    for (PeerId id = 2; id <= 5; ++id) peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
    codec::Key master{};
    master[0] = 42;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {4096, 16384, 65536};  // small chunks: many of them in little data
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  // A tree with every kind of entry the issue names.
  void MakeTree() {
    std::mt19937_64 rng(1234);
    std::string s = (root_ / "src").string();
    fs::create_directories(s + "/a/b/c");
    fs::create_directories(s + "/empty dir");
    WriteFile(s + "/empty", "");
    // Same bytes as an empty directory's tree encoding: one chunk id for a file and a tree.
    WriteFile(s + "/one-byte", std::string(1, '\x01'));
    ASSERT_EQ(format::EncodeTree(format::Tree{}), Bytes{0x01});
    WriteFile(s + "/big.bin", RandomData(rng, 700'000) + std::string(300'000, 'x'), 0600);
    WriteFile(s + "/a/b/c/deep.txt", "deep\n", 0444);
    WriteFile(s + "/a/script.sh", "#!/bin/sh\necho hi\n", 0755);
    WriteFile(s + "/caf\xc3\xa9 \xe2\x98\x95.txt", "unicode name\n");
    WriteFile(s + "/caf\xe9", "latin-1 name, not UTF-8\n");
    for (int i = 0; i < 50; ++i) WriteFile(s + "/a/small" + std::to_string(i), RandomData(rng, i * 37));
    fs::create_symlink("a/script.sh", s + "/rel-link");
    fs::create_symlink("/nonexistent/target", s + "/dangling");
    fs::create_hard_link(s + "/big.bin", s + "/a/big-hardlink.bin");
    struct timespec ts[2] = {{1'600'000'000, 123456789}, {1'600'000'000, 123456789}};
    ::utimensat(AT_FDCWD, (s + "/a/script.sh").c_str(), ts, 0);
    ::utimensat(AT_FDCWD, (s + "/rel-link").c_str(), ts, AT_SYMLINK_NOFOLLOW);
    ::utimensat(AT_FDCWD, (s + "/a").c_str(), ts, 0);
  }

  BackupResult Backup(uint32_t copies = 2) {
    BackupOptions opts;
    opts.paths = {(root_ / "src").string()};
    opts.copies = copies;
    opts.hostname = "test";
    BackupEngine engine(ctx_);
    auto r = engine.Run(opts, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : BackupResult{};
  }

  RestoreResult RestoreTo(const std::string& target, const std::string& path = "") {
    auto snap = ResolveSnapshot(catalog_.get(), "latest");
    EXPECT_TRUE(snap.ok()) << snap.status();
    RestoreOptions opts;
    opts.target = target;
    opts.path = path;
    auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RestoreResult{};
  }

  fs::path root_;
  std::unique_ptr<index::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

TEST_F(EngineTest, RestoreEqualsSourceAfterAPeerDies) {
  MakeTree();
  BackupResult r = Backup(2);
  EXPECT_EQ(r.chunks_below_target, 0u);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_GT(r.snapshot.stats.new_chunks, 10u);
  // Every blob is on exactly two peers, never on the home peer.
  uint64_t blobs = 0;
  for (PeerId id = 2; id <= 5; ++id) blobs += peers_.BlobCount(id);
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(blobs, 2 * stats->chunks);
  EXPECT_EQ(stats->chunks_below_target, 0u);

  peers_.SetReachable(3, false);  // a storage peer dies after the backup
  // A fresh catalog that knows only the snapshot: trees, holders and chunk sizes must all be
  // found on the peers (placement order), so this also proves restore without the index.
  catalog_ = index::NewMemCatalog();
  ctx_.catalog = catalog_.get();
  ASSERT_TRUE(catalog_->AddSnapshot({r.snapshot_id, r.snapshot}).ok());
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  EXPECT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  EXPECT_EQ(rr.hardlinks, 1u);
}

TEST_F(EngineTest, SecondBackupOfUnchangedTreeReadsNothing) {
  MakeTree();
  BackupResult first = Backup(2);
  BackupResult second = Backup(2);
  EXPECT_EQ(second.files_read, 0u);
  EXPECT_EQ(second.bytes_read, 0u);
  EXPECT_EQ(second.snapshot.stats.new_chunks, 0u);
  EXPECT_EQ(second.snapshot.stats.new_bytes, 0u);
  EXPECT_EQ(second.files_unchanged, first.files_read);
  EXPECT_EQ(second.snapshot.root, first.snapshot.root);  // same content, same tree ids

  // Change one file: only it is read.
  WriteFile((root_ / "src/a/small7").string(), "changed content");
  BackupResult third = Backup(2);
  EXPECT_EQ(third.files_read, 1u);
  EXPECT_NE(third.snapshot.root, first.snapshot.root);
  std::string target = (root_ / "restore").string();
  RestoreTo(target);
  EXPECT_EQ(ReadAll(target + "/src/a/small7"), "changed content");
}

TEST_F(EngineTest, SubPathRestoreAndListing) {
  MakeTree();
  Backup(2);
  auto snap = ResolveSnapshot(catalog_.get(), "latest");
  ASSERT_TRUE(snap.ok());
  auto top = ListSnapshot(ctx_, snap->snapshot, "", false);
  ASSERT_TRUE(top.ok()) << top.status();
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].path, "src");
  auto all = ListSnapshot(ctx_, snap->snapshot, "src", true);
  ASSERT_TRUE(all.ok());
  bool found_latin1 = false;
  for (auto& e : *all) found_latin1 |= e.path == "src/caf\xe9";
  EXPECT_TRUE(found_latin1);
  EXPECT_EQ(ListSnapshot(ctx_, snap->snapshot, "src/nope", false).status().code(),
            absl::StatusCode::kNotFound);

  std::string target = (root_ / "sub").string();
  RestoreTo(target, "src/a/b");
  EXPECT_EQ(ReadAll(target + "/b/c/deep.txt"), "deep\n");
  EXPECT_EQ(CompareTrees((root_ / "src/a/b").string(), target + "/b"), "");

  auto prefix = ResolveSnapshot(catalog_.get(), snap->id.Hex().substr(0, 8));
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->id, snap->id);
  EXPECT_EQ(ResolveSnapshot(catalog_.get(), "ffffffffff").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveSnapshot(catalog_.get(), "xyz!").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, TooFewPeersIsDegradedNotHidden) {
  MakeTree();
  BackupResult r = Backup(5);  // only 4 peers exist
  EXPECT_GT(r.chunks_below_target, 0u);
  EXPECT_TRUE(r.degraded());
  auto stats = catalog_->Stats();
  EXPECT_EQ(stats->chunks_below_target, stats->chunks);
  std::string target = (root_ / "restore").string();
  RestoreTo(target);
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
}

TEST_F(EngineTest, UnreachablePeerIsSkippedForTheNextInOrder) {
  MakeTree();
  peers_.SetReachable(2, false);
  BackupResult r = Backup(2);
  EXPECT_EQ(r.chunks_below_target, 0u);
  EXPECT_EQ(peers_.BlobCount(2), 0u);
  EXPECT_GT(peers_.failures(), 0u);
}

TEST_F(EngineTest, NoPeersFailsWithoutASnapshot) {
  MakeTree();
  for (PeerId id = 2; id <= 5; ++id) peers_.SetReachable(id, false);
  BackupOptions opts;
  opts.paths = {(root_ / "src").string()};
  BackupEngine engine(ctx_);
  auto r = engine.Run(opts, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(catalog_->ListSnapshots()->empty());
}

TEST_F(EngineTest, MissingPathIsNotFound) {
  BackupOptions opts;
  opts.paths = {(root_ / "does-not-exist").string()};
  BackupEngine engine(ctx_);
  EXPECT_EQ(engine.Run(opts, nullptr).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, ExcludesAndSpecialFiles) {
  MakeTree();
  std::string s = (root_ / "src").string();
  WriteFile(s + "/skip.log", "x");
  ASSERT_EQ(::mkfifo((s + "/fifo").c_str(), 0644), 0);
  BackupOptions opts;
  opts.paths = {s};
  opts.excludes = {"*.log"};
  BackupEngine engine(ctx_);
  auto r = engine.Run(opts, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("fifo"), std::string::npos);
  auto all = ListSnapshot(ctx_, r->snapshot, "", true);
  for (auto& e : *all) {
    EXPECT_EQ(e.path.find("skip.log"), std::string::npos);
    EXPECT_EQ(e.path.find("fifo"), std::string::npos);
  }
}

TEST_F(EngineTest, UnreachableDataIsReportedPerFile) {
  MakeTree();
  Backup(1);
  for (PeerId id = 2; id <= 5; ++id) peers_.SetReachable(id, false);
  auto snap = ResolveSnapshot(catalog_.get(), "latest");
  RestoreOptions opts;
  opts.target = (root_ / "restore").string();
  auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();  // trees are cached; file contents are not reachable
  EXPECT_FALSE(r->errors.empty());
  EXPECT_NE(r->errors[0].find("no copy could be read"), std::string::npos) << r->errors[0];
}

}  // namespace
}  // namespace cairn::engine
