// Change detection in incremental backups: a second backup reads exactly the files
// whose size, mtime, ctime or inode changed since the parent snapshot (asserted from the run's
// statistics on a 100k-file tree), a parent without ctime/inode (an older tree) does not force
// a re-read, `rehash` compares content instead, and a file that changes while it is read is
// read again, or flagged when it keeps changing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "cairn/engine/backup.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/snapshot_io.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/env/clock.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;

// Writes `data` to `path` (created or truncated) with plain syscalls: fast enough for 100k files.
void WriteFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size())) << path;
  ::close(fd);
}

void AppendFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size())) << path;
  ::close(fd);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string RandomData(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void SetMtime(const std::string& path, int64_t ns) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = ns / 1'000'000'000;
  ts[0].tv_nsec = ts[1].tv_nsec = ns % 1'000'000'000;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Compares a tree of directories and regular files with its restored copy: the same names,
// contents, modes and mtimes. Returns the first difference, or "" when identical.
std::string CompareFileTrees(const std::string& a, const std::string& b) {
  size_t count_a = 0, count_b = 0;
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator();
       ++it) {
    ++count_a;
    std::string rel = it->path().lexically_relative(a).string();
    std::string pa = it->path().string(), pb = b + "/" + rel;
    struct stat sa, sb;
    if (::lstat(pa.c_str(), &sa) != 0) return "lstat " + pa;
    if (::lstat(pb.c_str(), &sb) != 0) return "missing in restore: " + rel;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return "type differs: " + rel;
    if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) return "mode differs: " + rel;
    if (S_ISREG(sa.st_mode)) {
      if (MtimeNs(sa) != MtimeNs(sb)) return "mtime differs: " + rel;
      if (ReadAll(pa) != ReadAll(pb)) return "content differs: " + rel;
    }
  }
  for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator();
       ++it)
    ++count_b;
  if (count_a != count_b)
    return "entry counts differ: " + std::to_string(count_a) + " vs " + std::to_string(count_b);
  return "";
}

class IncrementalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeRoot(fs::temp_directory_path());
    catalog_ = ports::NewMemCatalog();
    for (PeerId id = 2; id <= 4; ++id) peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 32);
    codec::Key master{};
    master[0] = 7;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {4096, 16384, 65536};
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  void MakeRoot(const fs::path& parent) {
    root_ = parent / ("cairn-incremental-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    src_ = (root_ / "src").string();
  }

  // Moves the test's directory to /dev/shm when it is a tmpfs with room for `files` small
  // files twice (source and restore): creating and deleting 200k files on a disk filesystem
  // can take minutes on a busy machine, in RAM seconds. The behaviour tested is the same.
  void UseRamDiskIfRoomy(uint64_t files) {
    struct statvfs vfs;
    if (::statvfs("/dev/shm", &vfs) != 0 || ::access("/dev/shm", W_OK) != 0) return;
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    // Every small file takes a page on tmpfs; leave a wide margin.
    if (free_bytes < 4 * files * 4096 || vfs.f_favail < 4 * files) return;
    fs::remove_all(root_);
    MakeRoot("/dev/shm");
  }

  BackupOptions Options() const {
    BackupOptions opts;
    opts.paths = {src_};
    opts.copies = 2;
    opts.hostname = "test";
    return opts;
  }

  BackupResult Backup(const BackupOptions& opts, BackupProgress* progress = nullptr) {
    BackupEngine engine(ctx_);
    auto r = engine.Run(opts, progress);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : BackupResult{};
  }
  BackupResult Backup() { return Backup(Options()); }

  // Restores the latest snapshot to root_/name and compares it with the source.
  std::string RestoreAndCompare(const std::string& name) {
    auto snap = ResolveSnapshot(catalog_.get(), "latest");
    if (!snap.ok()) return snap.status().ToString();
    RestoreOptions opts;
    opts.target = (root_ / name).string();
    auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
    if (!r.ok()) return r.status().ToString();
    if (!r->errors.empty()) return "restore error: " + r->errors.front();
    return CompareFileTrees(src_, opts.target + "/src");
  }

  // Rewrites the tree `id` (recursively) as a tree written before ctime and inode were
  // recorded: both 0 in every entry. Returns the new tree's id.
  ChunkId StripCtimeAndInode(const ChunkId& id) {
    auto tree = LoadTree(ctx_, id);
    EXPECT_TRUE(tree.ok()) << tree.status();
    if (!tree.ok()) return id;
    for (auto& e : tree->entries) {
      e.ctime_ns = 0;
      e.inode = 0;
      if (e.subtree) e.subtree = StripCtimeAndInode(*e.subtree);
    }
    Redundancy red;
    red.copies = 2;
    auto stored = StoreTree(ctx_, *tree, red);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? stored->id : id;
  }

  fs::path root_;
  std::string src_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  EngineContext ctx_;
};

// The incremental test: 100k small files, 1% changed (content and mtime); the second
// backup reads exactly those, and its snapshot restores identically.
TEST_F(IncrementalTest, OnePercentOfHundredThousandFilesChangedReadsOnlyThose) {
  constexpr int kDirs = 100, kPerDir = 1000, kFiles = kDirs * kPerDir, kChanged = kFiles / 100;
  UseRamDiskIfRoomy(kFiles);
  std::cerr << "tree of " << kFiles << " files in " << src_ << "\n";
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto file_path = [&](int i) {
    char name[64];
    std::snprintf(name, sizeof(name), "/d%03d/f%05d", i / kPerDir, i);
    return src_ + name;
  };
  for (int d = 0; d < kDirs; ++d) {
    char name[16];
    std::snprintf(name, sizeof(name), "/d%03d", d);
    fs::create_directory(src_ + name);
  }
  uint64_t total_bytes = 0;
  for (int i = 0; i < kFiles; ++i) {
    // A unique prefix: no two files share content (every file is its own chunk).
    std::string data = std::to_string(i) + ":" + RandomData(rng, rng() % 200);
    total_bytes += data.size();
    WriteFile(file_path(i), data);
  }

  BackupResult first = Backup();
  EXPECT_EQ(first.files_read, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(first.files_unchanged, 0u);
  EXPECT_EQ(first.bytes_read, total_bytes);
  EXPECT_EQ(first.snapshot.stats.files, static_cast<uint64_t>(kFiles));
  EXPECT_TRUE(first.errors.empty());

  // Change 1% of the files, picked at random: new content (possibly of the same size) and a
  // new mtime.
  std::vector<int> all(kFiles);
  for (int i = 0; i < kFiles; ++i) all[i] = i;
  std::shuffle(all.begin(), all.end(), rng);
  std::set<int> changed(all.begin(), all.begin() + kChanged);
  uint64_t changed_bytes = 0;
  for (int i : changed) {
    std::string data = "changed " + std::to_string(i) + ":" + RandomData(rng, rng() % 200);
    changed_bytes += data.size();
    WriteFile(file_path(i), data);
    SetMtime(file_path(i), 1'700'000'000'000'000'000 + i);
  }

  BackupProgress progress;
  BackupResult second = Backup(Options(), &progress);
  EXPECT_EQ(second.files_read, static_cast<uint64_t>(kChanged));
  EXPECT_EQ(second.bytes_read, changed_bytes);
  EXPECT_EQ(second.files_unchanged, static_cast<uint64_t>(kFiles - kChanged));
  EXPECT_EQ(second.files_reread, 0u);
  EXPECT_EQ(second.files_changed_during_read, 0u);
  EXPECT_EQ(second.snapshot.stats.files, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(second.snapshot.stats.new_chunks, static_cast<uint64_t>(kChanged));
  EXPECT_EQ(*second.snapshot.parent, first.snapshot_id);
  EXPECT_EQ(progress.files_read.load(), static_cast<uint64_t>(kChanged));
  EXPECT_EQ(progress.files_unchanged.load(), static_cast<uint64_t>(kFiles - kChanged));
  EXPECT_EQ(progress.bytes_read.load(), changed_bytes);
  EXPECT_TRUE(second.errors.empty());
  EXPECT_TRUE(second.warnings.empty());

  EXPECT_EQ(RestoreAndCompare("restore"), "");
}

// A file whose size and mtime are what the parent recorded, but whose ctime or inode is not,
// is read again.
TEST_F(IncrementalTest, SameSizeAndMtimeButNewCtimeOrInodeIsRead) {
  struct Case {
    const char* name;
    std::function<void(const std::string& path)> change;
    std::string expected;  // content afterwards
  };
  const std::vector<Case> cases = {
      // A new file renamed over the old one, its mtime set to the old one's: a new inode.
      {"replaced by rename",
       [this](const std::string& path) {
         int64_t mtime = MtimeNs(Lstat(path));
         WriteFile(src_ + "/tmp", "NEW CONTENT 1");
         SetMtime(src_ + "/tmp", mtime);
         ASSERT_EQ(::rename((src_ + "/tmp").c_str(), path.c_str()), 0);
       },
       "NEW CONTENT 1"},
      // Rewritten in place with the same size, mtime put back: only ctime tells.
      {"rewritten in place",
       [](const std::string& path) {
         int64_t mtime = MtimeNs(Lstat(path));
         WriteFile(path, "NEW CONTENT 2");
         SetMtime(path, mtime);
       },
       "NEW CONTENT 2"},
      // Content unchanged, only the mode: read again (ctime), the new mode is in the snapshot.
      {"chmod", [](const std::string& path) { ASSERT_EQ(::chmod(path.c_str(), 0600), 0); },
       "old content 3"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    WriteFile(src_ + "/f" + std::to_string(i + 1), "old content " + std::to_string(i + 1));
  }
  WriteFile(src_ + "/untouched", "untouched");
  Backup();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const std::string path = src_ + "/f" + std::to_string(i + 1);
    struct stat before = Lstat(path);
    cases[i].change(path);
    struct stat after = Lstat(path);
    ASSERT_EQ(before.st_size, after.st_size);
    ASSERT_EQ(MtimeNs(before), MtimeNs(after));
    BackupResult r = Backup();
    EXPECT_EQ(r.files_read, 1u);
    EXPECT_EQ(r.bytes_read, static_cast<uint64_t>(after.st_size));
    EXPECT_EQ(r.files_unchanged, cases.size());  // the other files
    EXPECT_EQ(ReadAll(path), cases[i].expected);
    EXPECT_EQ(RestoreAndCompare("restore" + std::to_string(i)), "");
  }
}

// A parent written before ctime and inode were recorded (0: unknown) compares size and mtime
// only: nothing is re-read for it. A change that kept size and mtime then goes unnoticed —
// `rehash` finds it by reading everything and comparing chunk ids.
TEST_F(IncrementalTest, ParentWithoutCtimeAndRehash) {
  constexpr int kFiles = 20;
  std::mt19937_64 rng(5);
  for (int i = 0; i < kFiles; ++i) {
    WriteFile(src_ + "/f" + std::to_string(i), RandomData(rng, 1000 + 3000 * i));
  }
  BackupResult first = Backup();
  ASSERT_EQ(first.files_read, static_cast<uint64_t>(kFiles));

  // The latest snapshot becomes one whose trees have no ctime or inode.
  format::Snapshot legacy = first.snapshot;
  legacy.root = StripCtimeAndInode(first.snapshot.root);
  legacy.time_ns += 1;
  legacy.parent = first.snapshot_id;
  Redundancy red;
  red.copies = 2;
  auto stored = StoreSnapshot(ctx_, legacy, red);
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto latest = ResolveSnapshot(catalog_.get(), "latest");
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->id, stored->id);

  // Same size, new content, mtime put back (ctime moves, but the parent does not know it).
  const std::string changed = src_ + "/f7";
  struct stat before = Lstat(changed);
  std::string new_content = RandomData(rng, static_cast<size_t>(before.st_size));
  WriteFile(changed, new_content);
  SetMtime(changed, MtimeNs(before));

  BackupResult by_metadata = Backup();
  EXPECT_EQ(by_metadata.files_read, 0u);
  EXPECT_EQ(by_metadata.files_unchanged, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(*by_metadata.snapshot.parent, stored->id);
  EXPECT_FALSE(by_metadata.rehash);

  // With rehash every file is read; only f7's chunk ids differ from the parent's.
  BackupOptions opts = Options();
  opts.rehash = true;
  BackupResult rehashed = Backup(opts);
  EXPECT_TRUE(rehashed.rehash);
  EXPECT_EQ(rehashed.files_read, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(rehashed.files_unchanged, static_cast<uint64_t>(kFiles - 1));
  EXPECT_EQ(rehashed.files_changed_same_metadata, 1u);
  EXPECT_EQ(rehashed.bytes_read, first.bytes_read);
  EXPECT_EQ(RestoreAndCompare("restore"), "");
  EXPECT_EQ(ReadAll((root_ / "restore/src/f7").string()), new_content);

  // Rehash with nothing changed: everything read, everything unchanged, same root tree.
  BackupResult again = Backup(opts);
  EXPECT_EQ(again.files_read, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(again.files_unchanged, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(again.files_changed_same_metadata, 0u);
  EXPECT_EQ(again.snapshot.stats.new_chunks, 0u);
}

// A file that changes while it is read is read again; if it changes during the second read
// too it is stored as read, flagged, and read again by the next backup.
TEST_F(IncrementalTest, FileChangingWhileReadIsReadAgainOrFlagged) {
  struct Case {
    const char* name;
    int appends;  // how many read passes append to the file
    uint64_t flagged;
  };
  const std::vector<Case> cases = {
      {"changes once", 1, 0},
      {"keeps changing", 2, 1},
  };
  WriteFile(src_ + "/quiet", "quiet file");
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    const std::string growing = src_ + "/growing";
    WriteFile(growing, std::string(100'000, 'g'));
    BackupOptions opts = Options();
    int passes = 0;
    opts.after_file_read = [&](const std::string& path, int attempt) {
      if (path != growing) return;
      ++passes;
      if (attempt <= c.appends)
        AppendFile(growing, "appended during pass " + std::to_string(attempt));
    };
    BackupProgress progress;
    BackupResult r = Backup(opts, &progress);
    EXPECT_EQ(passes, 2);
    EXPECT_EQ(r.files_read, i == 0 ? 2u : 1u);  // "quiet" too the first time; each file once
    EXPECT_EQ(r.files_reread, 1u);
    EXPECT_EQ(r.files_changed_during_read, c.flagged);
    EXPECT_EQ(progress.files_changed_during_read.load(), c.flagged);
    EXPECT_FALSE(r.degraded());
    bool warned = false;
    for (const auto& w : r.warnings) warned |= w.find(growing) != std::string::npos;
    EXPECT_EQ(warned, c.flagged > 0);
    auto listed = ListSnapshot(ctx_, r.snapshot, "src/growing", false);
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->size(), 1u);
    const format::TreeEntry& entry = (*listed)[0].entry;
    // The abandoned first pass leaves no trace in the snapshot's statistics.
    EXPECT_EQ(r.snapshot.stats.files, 2u);
    EXPECT_EQ(r.snapshot.stats.bytes, entry.size + std::string("quiet file").size());
    EXPECT_EQ(r.snapshot.stats.chunks, entry.chunks.size() + 1);

    if (c.flagged == 0) {
      // The second pass saw the file as it is now: stored whole, and not read next time.
      EXPECT_EQ(entry.size, static_cast<uint64_t>(Lstat(growing).st_size));
      EXPECT_EQ(RestoreAndCompare(std::string("restore-") + std::to_string(c.appends)), "");
      BackupResult next = Backup();
      EXPECT_EQ(next.files_read, 0u);
    } else {
      // Stored as read in the second pass (without the second append); the next backup
      // reads it again and then has it whole.
      EXPECT_EQ(entry.size, static_cast<uint64_t>(Lstat(growing).st_size) -
                                std::string("appended during pass 2").size());
      BackupResult next = Backup();
      EXPECT_EQ(next.files_read, 1u);
      EXPECT_EQ(next.files_changed_during_read, 0u);
      EXPECT_EQ(RestoreAndCompare(std::string("restore-") + std::to_string(c.appends)), "");
    }
  }
}

}  // namespace
}  // namespace cairn::engine
