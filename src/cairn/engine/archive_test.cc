#include "cairn/engine/archive.h"

#include <fcntl.h>
#include <linux/fs.h>

#include <random>

#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/engine/recover.h"
#include "cairn/engine/snapshot_read.h"
#include "gtest/gtest.h"

namespace cairn::engine {
namespace {

using lifecycle_testing::LifecycleTest;
using lifecycle_testing::RandomData;
using lifecycle_testing::ReadAll;
using lifecycle_testing::WriteFile;
namespace fs = std::filesystem;

class ArchiveTest : public LifecycleTest {
 protected:
  void SetUp() override {
    LifecycleTest::SetUp();
    Redundancy r;
    r.copies = 2;
    auto created = CreateArchive(ctx_, "attic", r, "laptop");
    ASSERT_TRUE(created.ok()) << created.status();
  }

  ArchiveOptions Options(uint64_t spool_bytes = 64ull << 20) {
    ArchiveOptions o;
    o.spool_dir = (root_ / "spool").string();
    o.spool_bytes = spool_bytes;
    o.cache_bytes = 1 << 20;
    o.hostname = "laptop";
    return o;
  }

  std::unique_ptr<Archive> OpenArchive(uint64_t spool_bytes = 64ull << 20) {
    auto a = Archive::Open(ctx_, "attic", Options(spool_bytes));
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  // Writes `data` as the whole of `path` (created or truncated), in pieces of `piece` bytes,
  // and closes it.
  static void Put(Archive& a, const std::string& path, const std::string& data,
                  size_t piece = 100000) {
    uint64_t h = 0;
    ASSERT_EQ(a.Create(path, 0640, 1000, 1000, O_WRONLY | O_CREAT | O_TRUNC, &h), 0) << path;
    for (size_t off = 0; off < data.size(); off += piece) {
      size_t n = std::min(piece, data.size() - off);
      ASSERT_EQ(a.Write(h, data.data() + off, n, off), static_cast<long>(n)) << path;
    }
    ASSERT_EQ(a.Flush(h), 0) << path;
    ASSERT_EQ(a.Release(h), 0) << path;
  }

  static std::string Get(Archive& a, const std::string& path) {
    uint64_t h = 0;
    EXPECT_EQ(a.Open(path, O_RDONLY, &h), 0) << path;
    ArchiveAttr attr;
    EXPECT_EQ(a.GetAttr(path, &attr), 0);
    std::string out(attr.size, '\0');
    size_t done = 0;
    while (done < out.size()) {
      long n = a.Read(h, out.data() + done, std::min<size_t>(70000, out.size() - done), done);
      EXPECT_GT(n, 0) << path << " at " << done;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    EXPECT_EQ(a.Release(h), 0);
    return out;
  }

  std::vector<ports::SnapshotRecord> Versions() {
    std::vector<ports::SnapshotRecord> out;
    auto all = catalog_->ListSnapshots();
    EXPECT_TRUE(all.ok());
    for (auto& s : *all)
      if (s.snapshot.archive == "attic") out.push_back(s);
    return out;
  }
};

TEST_F(ArchiveTest, CreateRefusesBadAndDuplicateNames) {
  Redundancy r;
  EXPECT_EQ(CreateArchive(ctx_, "attic", r, "h").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CreateArchive(ctx_, "a/b", r, "h").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Archive::Open(ctx_, "nope", Options()).status().code(), absl::StatusCode::kNotFound);
  auto list = ListArchives(catalog_.get());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "attic");
  EXPECT_EQ((*list)[0].versions, 1u);
}

TEST_F(ArchiveTest, ClosedFilesAreVersionsThatReopenAndRestoreIdentical) {
  std::mt19937_64 rng(1);
  std::string big = RandomData(rng, 700000), small = "hello archive\n";
  {
    auto a = OpenArchive();
    ASSERT_TRUE(a);
    ASSERT_EQ(a->Mkdir("/photos", 0750, 1000, 1000), 0);
    Put(*a, "/photos/big.raw", big);
    Put(*a, "/notes.txt", small);
    ASSERT_EQ(a->Symlink("photos/big.raw", "/link", 1000, 1000), 0);
    ASSERT_TRUE(a->Commit().ok());
    EXPECT_EQ(Get(*a, "/photos/big.raw"), big);
    EXPECT_GE(a->stats().versions_committed, 2u);
    EXPECT_EQ(a->stats().spooled_bytes, 0u);  // stored: the spool is empty
  }
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  EXPECT_EQ(Get(*a, "/photos/big.raw"), big);
  EXPECT_EQ(Get(*a, "/notes.txt"), small);
  std::string target;
  ASSERT_EQ(a->ReadLink("/link", &target), 0);
  EXPECT_EQ(target, "photos/big.raw");
  ArchiveAttr attr;
  ASSERT_EQ(a->GetAttr("/photos", &attr), 0);
  EXPECT_EQ(attr.mode, 0750u);
  EXPECT_EQ(attr.uid, 1000u);

  // The latest version restores like a backup.
  auto versions = Versions();
  ASSERT_FALSE(versions.empty());
  EXPECT_EQ(versions.back().id, a->latest_version());
  EXPECT_TRUE(versions.back().snapshot.paths.empty());
  EXPECT_EQ(versions.back().snapshot.stats.files, 2u);
  RestoreOptions ro;
  ro.target = (root_ / "restored").string();
  auto r = Restore(ctx_, versions.back().snapshot, ro, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->errors.empty());
  EXPECT_EQ(ReadAll(root_ / "restored" / "photos" / "big.raw"), big);
  EXPECT_EQ(ReadAll(root_ / "restored" / "notes.txt"), small);
}

TEST_F(ArchiveTest, RandomWriteIntoALargeFileStoresOnlyTheChunksItTouches) {
  std::mt19937_64 rng(2);
  std::string data = RandomData(rng, 2 << 20);  // ~100 chunks of the fixture's 16 KiB average
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  Put(*a, "/disk.img", data);
  uint64_t first = a->stats().chunks_stored;
  EXPECT_GT(first, 50u);

  uint64_t h = 0;
  ASSERT_EQ(a->Open("/disk.img", O_RDWR, &h), 0);
  std::string patch = "PATCHED";
  ASSERT_EQ(a->Write(h, patch.data(), patch.size(), 1000000), 7);
  data.replace(1000000, patch.size(), patch);
  ASSERT_EQ(a->Flush(h), 0);
  ASSERT_EQ(a->Release(h), 0);
  uint64_t second = a->stats().chunks_stored - first;
  EXPECT_GE(second, 1u);
  EXPECT_LE(second, 3u) << "a 7-byte write re-stored " << second << " chunks";
  EXPECT_EQ(Get(*a, "/disk.img"), data);

  // Truncate, then extend with a hole: zeros past the cut.
  ASSERT_EQ(a->Truncate("/disk.img", 500000, std::nullopt), 0);
  ASSERT_EQ(a->Truncate("/disk.img", 600000, std::nullopt), 0);
  ASSERT_TRUE(a->Commit().ok());
  data.resize(500000);
  data.resize(600000, '\0');
  a.reset();
  a = OpenArchive();
  ASSERT_TRUE(a);
  EXPECT_EQ(Get(*a, "/disk.img"), data);
}

TEST_F(ArchiveTest, ArchivedFileDeduplicatesAgainstABackupOfIt) {
  std::mt19937_64 rng(3);
  std::string data = RandomData(rng, 400000);
  WriteFile(root_ / "src" / "f.bin", data);
  Backup(root_ / "src");
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  Put(*a, "/f.bin", data, 65536);
  EXPECT_EQ(a->stats().chunks_stored, 0u);
  EXPECT_GT(a->stats().chunks_deduplicated, 10u);
}

TEST_F(ArchiveTest, SpoolBoundStoresLargeSequentialWritesAsTheyArrive) {
  std::mt19937_64 rng(4);
  std::string data = RandomData(rng, 1 << 20);
  auto a = OpenArchive(/*spool_bytes=*/128 << 10);
  ASSERT_TRUE(a);
  uint64_t h = 0;
  ASSERT_EQ(a->Create("/big", 0644, 0, 0, O_WRONLY | O_CREAT, &h), 0);
  uint64_t peak = 0;
  for (size_t off = 0; off < data.size(); off += 32768) {
    ASSERT_EQ(a->Write(h, data.data() + off, 32768, off), 32768);
    peak = std::max(peak, a->stats().spooled_bytes);
  }
  EXPECT_LE(peak, 128u << 10);
  EXPECT_GE(a->stats().spool_flushes, 4u);
  // Not closed yet: the version does not have it.
  ASSERT_TRUE(a->Commit().ok());
  ArchiveAttr attr;
  auto v = Versions().back();
  auto listed = ListSnapshot(ctx_, v.snapshot, "/", true);
  ASSERT_TRUE(listed.ok());
  for (const auto& e : *listed) EXPECT_NE(e.path, "big");
  ASSERT_EQ(a->Flush(h), 0);
  ASSERT_EQ(a->Release(h), 0);
  ASSERT_EQ(a->GetAttr("/big", &attr), 0);
  EXPECT_EQ(attr.size, data.size());
  a.reset();
  a = OpenArchive();
  ASSERT_TRUE(a);
  EXPECT_EQ(Get(*a, "/big"), data);
}

TEST_F(ArchiveTest, CrashWhileWritingKeepsClosedFilesAndDropsTheUnclosedSpool) {
  std::mt19937_64 rng(5);
  std::string kept = RandomData(rng, 200000);
  {
    auto a = OpenArchive();
    ASSERT_TRUE(a);
    Put(*a, "/kept", kept);
    uint64_t h = 0;
    ASSERT_EQ(a->Open("/kept", O_WRONLY, &h), 0);
    std::string junk(50000, 'x');
    ASSERT_EQ(a->Write(h, junk.data(), junk.size(), 0), 50000);
    ASSERT_EQ(a->Create("/unclosed", 0644, 0, 0, O_WRONLY | O_CREAT, &h), 0);
    ASSERT_EQ(a->Write(h, junk.data(), junk.size(), 0), 50000);
    ASSERT_TRUE(a->Commit().ok());  // a commit while both are open: neither is in it
    // A crash: the spool files stay behind (copied aside before the destructor drops them).
    fs::create_directories(root_ / "saved");
    for (const auto& e : fs::directory_iterator(root_ / "spool")) {
      if (e.path().extension() == ".spool") {
        fs::copy(e.path(), root_ / "saved" / e.path().filename());
      }
    }
  }
  for (const auto& e : fs::directory_iterator(root_ / "saved"))
    fs::copy(e.path(), root_ / "spool" / e.path().filename());
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->stats().dropped_spool_files, 2u);
  EXPECT_EQ(Get(*a, "/kept"), kept);
  ArchiveAttr attr;
  EXPECT_EQ(a->GetAttr("/unclosed", &attr), -ENOENT);
}

TEST_F(ArchiveTest, ASecondOpenIsRefused) {
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  auto b = Archive::Open(ctx_, "attic", Options());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("already mounted"), std::string::npos);
}

TEST_F(ArchiveTest, RenameUnlinkAndDirectoryRulesFollowPosix) {
  auto a = OpenArchive();
  ASSERT_TRUE(a);
  ASSERT_EQ(a->Mkdir("/d", 0755, 0, 0), 0);
  ASSERT_EQ(a->Mkdir("/d/e", 0755, 0, 0), 0);
  Put(*a, "/d/f", "f");
  Put(*a, "/g", "g");
  EXPECT_EQ(a->Mkdir("/d", 0755, 0, 0), -EEXIST);
  EXPECT_EQ(a->Rmdir("/d"), -ENOTEMPTY);
  EXPECT_EQ(a->Rename("/d", "/d/e/x", 0), -EINVAL);
  EXPECT_EQ(a->Rename("/g", "/d/e", 0), -EISDIR);
  EXPECT_EQ(a->Rename("/d/e", "/g", 0), -ENOTDIR);
  EXPECT_EQ(a->Rename("/g", "/d/f", RENAME_NOREPLACE), -EEXIST);
  EXPECT_EQ(a->Rename("/g", "/d/f", 0), 0);
  EXPECT_EQ(Get(*a, "/d/f"), "g");
  EXPECT_EQ(a->Unlink("/d/e"), -EISDIR);
  EXPECT_EQ(a->Rmdir("/d/f"), -ENOTDIR);
  EXPECT_EQ(a->Rename("/d", "/moved", 0), 0);
  ASSERT_TRUE(a->Commit().ok());
  a.reset();
  a = OpenArchive();
  ASSERT_TRUE(a);
  EXPECT_EQ(Get(*a, "/moved/f"), "g");
  ArchiveAttr attr;
  EXPECT_EQ(a->GetAttr("/g", &attr), -ENOENT);
  EXPECT_EQ(a->GetAttr("/moved/e", &attr), 0);
}

TEST_F(ArchiveTest, AHomePeerRecoveredFromThePeersGetsItsArchivesBack) {
  std::mt19937_64 rng(6);
  std::string data = RandomData(rng, 300000);
  ChunkId latest;
  {
    auto a = OpenArchive();
    ASSERT_TRUE(a);
    ASSERT_EQ(a->Mkdir("/keep", 0700, 0, 0), 0);
    Put(*a, "/keep/only-here.bin", data);
    latest = a->latest_version();
  }
  // The home peer's catalog is lost: rebuild it from what the storage peers hold.
  auto fresh = ports::NewMemCatalog();
  EngineContext ctx = ctx_;
  ctx.catalog = fresh.get();
  RecoverProgress progress;
  auto report = RecoverIndex(ctx, RecoverOptions{}, &progress);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->complete());
  auto archives = ListArchives(fresh.get());
  ASSERT_TRUE(archives.ok());
  ASSERT_EQ(archives->size(), 1u);
  EXPECT_EQ((*archives)[0].name, "attic");
  EXPECT_EQ((*archives)[0].latest.id, latest);
  ArchiveOptions o = Options();
  o.spool_dir = (root_ / "spool-recovered").string();
  auto a = Archive::Open(ctx, "attic", o);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Get(**a, "/keep/only-here.bin"), data);
}

// Random operations against the archive and a plain directory, compared after every step.
TEST_F(ArchiveTest, ModelBasedAgainstAPlainDirectory) {
  uint64_t seed = std::random_device()();
  if (const char* s = std::getenv("CAIRN_ARCHIVE_SEED")) seed = std::stoull(s);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (CAIRN_ARCHIVE_SEED reruns it)");
  std::mt19937_64 rng(seed);
  fs::path model = root_ / "model";
  fs::create_directories(model);
  auto a = OpenArchive(/*spool_bytes=*/256 << 10);
  ASSERT_TRUE(a);
  const std::vector<std::string> names = {"a", "b", "c", "d/x", "d/y", "e"};
  ASSERT_EQ(a->Mkdir("/d", 0755, 0, 0), 0);
  fs::create_directories(model / "d");
  for (int step = 0; step < 120; ++step) {
    const std::string& name = names[rng() % names.size()];
    const std::string path = "/" + name;
    fs::path m = model / name;
    int op = static_cast<int>(rng() % 5);
    SCOPED_TRACE("step " + std::to_string(step) + " op " + std::to_string(op) + " " + path);
    if (op == 0 || op == 1) {  // write at an offset (creating the file)
      uint64_t off = rng() % 300000, len = 1 + rng() % 100000;
      std::string data = RandomData(rng, len);
      uint64_t h = 0;
      ASSERT_EQ(a->Create(path, 0644, 0, 0, O_RDWR | O_CREAT, &h), 0);
      ASSERT_EQ(a->Write(h, data.data(), len, off), static_cast<long>(len));
      ASSERT_EQ(a->Flush(h), 0);
      ASSERT_EQ(a->Release(h), 0);
      int fd = ::open(m.c_str(), O_RDWR | O_CREAT, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::pwrite(fd, data.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
      ::close(fd);
    } else if (op == 2) {  // truncate
      uint64_t size = rng() % 400000;
      int expect = fs::exists(m) ? 0 : -ENOENT;
      ASSERT_EQ(a->Truncate(path, size, std::nullopt), expect);
      if (expect == 0) fs::resize_file(m, size);
    } else if (op == 3) {  // rename
      const std::string& to = names[rng() % names.size()];
      int expect = fs::exists(m) ? 0 : -ENOENT;
      ASSERT_EQ(a->Rename(path, "/" + to, 0), expect) << "to " << to;
      if (expect == 0) fs::rename(m, model / to);
    } else {  // unlink
      int expect = fs::exists(m) ? 0 : -ENOENT;
      ASSERT_EQ(a->Unlink(path), expect);
      if (expect == 0) fs::remove(m);
    }
    if (rng() % 10 == 0) {  // sometimes reopen from the latest version
      ASSERT_TRUE(a->Commit().ok());
      a.reset();
      a = OpenArchive(256 << 10);
      ASSERT_TRUE(a);
    }
    for (const std::string& n : names) {
      ArchiveAttr attr;
      int got = a->GetAttr("/" + n, &attr);
      ASSERT_EQ(got == 0, fs::exists(model / n)) << n;
      if (got == 0) {
        ASSERT_EQ(Get(*a, "/" + n), ReadAll(model / n)) << n;
      }
    }
  }
}

}  // namespace
}  // namespace cairn::engine
