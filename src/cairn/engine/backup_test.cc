// Backup and restore through in-memory peers: what a user depends on — restored bytes,
// modes, mtimes, symlinks and hard links equal the source; unchanged files are not re-read;
// a dead peer loses nothing; too few peers is reported, not hidden.
#include "cairn/engine/backup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cairn/codec/checksum.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/peer_failures.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/engine/write_behind_catalog.h"
#include "cairn/env/clock.h"
#include "cairn/ports/catalog.h"

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
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = it->path().lexically_relative(a).string();
    std::string pa = it->path().string(), pb = b + "/" + rel;
    struct stat sa, sb;
    if (::lstat(pa.c_str(), &sa) != 0) return "lstat " + pa;
    if (::lstat(pb.c_str(), &sb) != 0) return "missing in restore: " + rel;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return "type differs: " + rel;
    if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
      return "mode differs: " + rel;
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
    if (S_ISLNK(sa.st_mode) && fs::read_symlink(pa) != fs::read_symlink(pb))
      return "symlink differs: " + rel;
  }
  size_t count_a = 0, count_b = 0;
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator();
       ++it)
    ++count_a;
  for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator();
       ++it)
    ++count_b;
  if (count_a != count_b)
    return "entry counts differ: " + std::to_string(count_a) + " vs " + std::to_string(count_b);
  return "";
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("cairn-engine-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    catalog_ = ports::NewMemCatalog();
    for (PeerId id = 2; id <= 5; ++id) peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
    codec::Key master{};
    master[0] = 42;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {4096, 16384, 65536};  // small chunks: many of them in little data
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
    // Unreachable holders are retried for this long: shorter than in production (5 s) so that
    // tests of lost chunks stay quick, longer than the reconnects the fault tests simulate.
    ctx_.fetch_retry.budget = std::chrono::milliseconds(1500);
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
    for (int i = 0; i < 50; ++i)
      WriteFile(s + "/a/small" + std::to_string(i), RandomData(rng, i * 37));
    fs::create_symlink("a/script.sh", s + "/rel-link");
    fs::create_symlink("/nonexistent/target", s + "/dangling");
    fs::create_hard_link(s + "/big.bin", s + "/a/big-hardlink.bin");
    struct timespec ts[2] = {{1'600'000'000, 123456789}, {1'600'000'000, 123456789}};
    ::utimensat(AT_FDCWD, (s + "/a/script.sh").c_str(), ts, 0);
    ::utimensat(AT_FDCWD, (s + "/rel-link").c_str(), ts, AT_SYMLINK_NOFOLLOW);
    ::utimensat(AT_FDCWD, (s + "/a").c_str(), ts, 0);
  }

  BackupResult Backup(uint32_t copies = 2, std::optional<codec::ErasureScheme> ec = std::nullopt) {
    BackupOptions opts;
    opts.paths = {(root_ / "src").string()};
    opts.copies = copies;
    opts.ec = ec;
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
  std::unique_ptr<ports::Catalog> catalog_;
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
  catalog_ = ports::NewMemCatalog();
  ctx_.catalog = catalog_.get();
  ASSERT_TRUE(catalog_->AddSnapshot({r.snapshot_id, r.snapshot}).ok());
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  EXPECT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  EXPECT_EQ(rr.hardlinks, 1u);
}

// A restore over an earlier restore (or a damaged copy) replaces what it finds: a longer file,
// a symlink where a file goes (never written through), a file where a symlink goes.
TEST_F(EngineTest, RestoreReplacesWhatIsAlreadyThere) {
  MakeTree();
  Backup(2);
  std::string target = (root_ / "restore").string();
  RestoreResult first = RestoreTo(target);
  ASSERT_TRUE(first.errors.empty()) << first.errors.front();
  const std::string t = target + "/src";
  const std::string outside = (root_ / "outside").string();
  WriteFile(outside, "outside");
  fs::remove(t + "/a/script.sh");
  fs::create_symlink(outside, t + "/a/script.sh");  // a file's name is now a symlink
  fs::remove(t + "/rel-link");
  WriteFile(t + "/rel-link", "a file");                  // a symlink's name is now a file
  WriteFile(t + "/a/small3", std::string(100000, 'x'));  // longer than the snapshot's
  fs::remove(t + "/a/small0");                           // (small0 is empty in the snapshot)
  fs::create_symlink(outside, t + "/a/small0");

  RestoreResult second = RestoreTo(target);
  EXPECT_TRUE(second.errors.empty()) << second.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), t), "");
  EXPECT_EQ(ReadAll(outside), "outside");  // the symlinks' target is untouched
}

// A restored file is created with its permission bits and by the restoring user, and its mode
// and owner are set afterwards only when that is not already the snapshot's: modes the umask
// strips, setuid/setgid/sticky bits, other owners, and groups of setgid directories still come
// out as backed up.
TEST_F(EngineTest, RestoreSetsModesTheUmaskStripsAndOwners) {
  const mode_t old_umask = ::umask(022);
  struct RestoreUmask {
    mode_t mask;
    ~RestoreUmask() { ::umask(mask); }
  } restore_umask{old_umask};
  const std::string s = (root_ / "src").string();
  const bool root = ::geteuid() == 0;
  struct Want {
    std::string rel;
    mode_t mode;
    uid_t uid;
    gid_t gid;
  };
  std::vector<Want> want = {{"plain", 0644, ::geteuid(), ::getegid()},
                            {"group-writable", 0664, ::geteuid(), ::getegid()},
                            {"everyone", 0777, ::geteuid(), ::getegid()},
                            {"setuid", 04755, ::geteuid(), ::getegid()},
                            {"sticky", 01644, ::geteuid(), ::getegid()},
                            {"none", 0000, ::geteuid(), ::getegid()},
                            {"empty-777", 0777, ::geteuid(), ::getegid()}};
  if (root) {
    want.push_back({"other-owner", 0640, 1234, 5678});
    want.push_back({"setgid-other", 02755, 1234, 5678});
    fs::create_directories(s + "/shared");
    want.push_back({"shared/root-file", 0644, 0, 0});  // in a setgid directory of group 5678
  }
  for (const Want& w : want) {
    const std::string p = s + "/" + w.rel;
    WriteFile(p, w.rel.rfind("empty", 0) == 0 ? "" : "data of " + w.rel, 0600);
    if (root) {
      ASSERT_EQ(::chown(p.c_str(), w.uid, w.gid), 0) << p;
    }
    ASSERT_EQ(::chmod(p.c_str(), w.mode), 0) << p;
  }
  if (root) {
    ASSERT_EQ(::chown((s + "/shared").c_str(), 0, 5678), 0);
    ASSERT_EQ(::chmod((s + "/shared").c_str(), 02775), 0);
  }
  BackupResult b = Backup(2);
  ASSERT_TRUE(b.errors.empty()) << b.errors.front();
  const std::string target = (root_ / "restore").string();
  // Twice into the same place: the second restore finds `shared` setgid and of group 5678
  // already, so a file created in it is of group 5678 until chown'ed back.
  for (int round = 0; round < 2; ++round) {
    RestoreResult r = RestoreTo(target);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    for (const Want& w : want) {
      struct stat st;
      const std::string p = target + "/src/" + w.rel;
      ASSERT_EQ(::lstat(p.c_str(), &st), 0) << p;
      EXPECT_EQ(st.st_mode & 07777, w.mode) << w.rel << " round " << round;
      EXPECT_EQ(st.st_uid, w.uid) << w.rel << " round " << round;
      EXPECT_EQ(st.st_gid, w.gid) << w.rel << " round " << round;
    }
    EXPECT_EQ(CompareTrees(s, target + "/src"), "");
  }
}

// The backup's write-behind catalog answers lookups from its buffer too, one at a time or many
// at once alike: a buffered chunk, a stored one with buffered placements merged, an unknown one.
TEST(WriteBehindCatalogTest, FindChunksSeesBufferedRecords) {
  auto inner = ports::NewMemCatalog();
  auto rec = [](uint8_t n, std::vector<PeerId> holders) {
    ports::ChunkRecord r;
    r.id.bytes.fill(n);
    r.kind = BlobKind::kData;
    r.plain_size = 100u * n;
    r.blob_size = 110u * n;
    r.target = 2;
    r.holders = std::move(holders);
    return r;
  };
  ASSERT_TRUE(inner->AddChunk(rec(1, {3})).ok());
  WriteBehindCatalog wb(inner.get(), 100);
  ASSERT_TRUE(wb.AddChunk(rec(1, {2})).ok());     // buffered: a placement more for a stored chunk
  ASSERT_TRUE(wb.AddChunk(rec(2, {4, 5})).ok());  // buffered: a new chunk
  std::vector<ChunkId> ids = {rec(2, {}).id, rec(9, {}).id, rec(1, {}).id};
  auto found = wb.FindChunks(ids);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 3u);
  ASSERT_TRUE((*found)[0].has_value());
  EXPECT_EQ((*found)[0]->holders, (std::vector<PeerId>{4, 5}));
  EXPECT_FALSE((*found)[1].has_value());
  ASSERT_TRUE((*found)[2].has_value());
  std::vector<PeerId> merged = (*found)[2]->holders;
  std::sort(merged.begin(), merged.end());
  EXPECT_EQ(merged, (std::vector<PeerId>{2, 3}));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto one = wb.FindChunk(ids[i]);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(one->has_value(), (*found)[i].has_value()) << i;
    if (one->has_value()) {
      std::vector<PeerId> a = (*one)->holders, b = (*found)[i]->holders;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      EXPECT_EQ(a, b) << i;
    }
  }
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
  EXPECT_EQ(ResolveSnapshot(catalog_.get(), "ffffffffff").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveSnapshot(catalog_.get(), "xyz!").status().code(),
            absl::StatusCode::kInvalidArgument);
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

// The fault every holder-failover test below injects on the first call for each blob: the
// codes a holder can fail with (unreachable, slow, lost the blob, corrupt blob).
absl::Status FirstCallFault(size_t n) {
  switch (n % 4) {
    case 0:
      return absl::UnavailableError("injected: holder unreachable");
    case 1:
      return absl::DeadlineExceededError("injected: holder too slow");
    case 2:
      return absl::NotFoundError("injected: holder lost the blob");
    default:
      return absl::DataLossError("injected: holder's blob is corrupt");
  }
}

TEST_F(EngineTest, RestoreTriesTheOtherHolderWhenTheFirstFailsForEveryChunk) {
  MakeTree();
  Backup(2);
  // The first GetBlob for every blob fails (whichever peer it goes to), with a rotating code;
  // the calls each blob got are recorded to check they went to its recorded holders.
  std::mutex mu;
  std::map<BlobKey, std::vector<PeerId>> calls;
  size_t faults = 0;
  peers_.SetGetFault([&](PeerId peer, const BlobKey& key) {
    std::lock_guard lock(mu);
    auto& seen = calls[key];
    seen.push_back(peer);
    if (seen.size() > 1) return absl::OkStatus();
    return FirstCallFault(faults++);
  });
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  ASSERT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  peers_.SetGetFault(nullptr);
  ASSERT_GT(calls.size(), 20u);
  EXPECT_EQ(faults, calls.size());  // every chunk's first holder failed
  for (const auto& [key, asked] : calls) {
    auto rec = catalog_->FindChunk(key.chunk);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    // A chunk in several files is fetched once per file: two calls or more.
    ASSERT_GE(asked.size(), 2u) << key.DebugString();
    // Every call went to a recorded holder: the second holder, not a peer that never held it.
    for (PeerId p : asked) {
      EXPECT_NE(std::find((*rec)->holders.begin(), (*rec)->holders.end(), p), (*rec)->holders.end())
          << key.DebugString() << " asked peer " << p;
    }
    // The fetch that failed moved on to the other holder. (Another file's concurrent fetch of
    // the same chunk may have asked the first holder again in between, so look at all calls.)
    EXPECT_EQ(std::set<PeerId>(asked.begin(), asked.end()).size(), 2u) << key.DebugString();
  }
}

// A holder killed mid-restore, and the chunk's other holder just restarted: its client cannot
// reach it until the channel reconnects (simulated: every other peer answers UNAVAILABLE for
// the first 700 ms). The fetch must keep retrying the recorded holders for longer than that.
TEST_F(EngineTest, RestoreWaitsForAHolderThatIsReconnecting) {
  MakeTree();
  Backup(2);
  peers_.SetReachable(3, false);
  const auto reconnected = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
  std::atomic<uint64_t> refused{0};
  peers_.SetGetFault([&](PeerId, const BlobKey&) {
    if (std::chrono::steady_clock::now() >= reconnected) return absl::OkStatus();
    ++refused;
    return absl::UnavailableError("injected: reconnecting");
  });
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  ASSERT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  EXPECT_GT(refused.load(), 0u);
  peers_.SetGetFault(nullptr);
}

// Once a holder has failed, later chunks ask their other holder first: a dead peer costs a few
// calls, not one per chunk it held.
TEST_F(EngineTest, DeadHolderIsAskedAfterTheOthersOnceItFailed) {
  MakeTree();
  Backup(2);
  const uint64_t held = peers_.BlobCount(3);
  ASSERT_GT(held, 40u);
  peers_.SetReachable(3, false);
  const uint64_t before = peers_.GetCalls(3);
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  ASSERT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  // At most one call per worker, and the walker's read-ahead, can be on its way to peer 3 before
  // its first failure is known (read-ahead notes an answer already there when it starts it).
  const auto workers = static_cast<uint64_t>(RestoreOptions{}.threads);
  EXPECT_LE(peers_.GetCalls(3) - before, workers + 1) << "of " << held << " blobs peer 3 held";
}

// A client whose StartGetBlob answers later, from another thread, as BatchingPeerClient does;
// counts the fetches started and not yet answered.
class LateAnsweringClient : public ports::PeerClient {
 public:
  LateAnsweringClient(std::shared_ptr<ports::PeerClient> inner, std::atomic<int>* in_flight,
                      std::atomic<int>* peak)
      : inner_(std::move(inner)), in_flight_(in_flight), peak_(peak) {}
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
  std::future<absl::StatusOr<Bytes>> StartGetBlob(const BlobKey& key) override {
    const int now = ++*in_flight_;
    int peak = peak_->load();
    while (now > peak && !peak_->compare_exchange_weak(peak, now)) {
    }
    // The task keeps what it uses: the client may be gone before it answers.
    return std::async(std::launch::async, [inner = inner_, in_flight = in_flight_, key] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto blob = inner->GetBlob(key);
      --*in_flight;
      return blob;
    });
  }
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
  std::atomic<int>* in_flight_;
  std::atomic<int>* peak_;
};

class LateAnsweringPeers : public PeerSet {
 public:
  explicit LateAnsweringPeers(PeerSet* inner) : inner_(inner) {}
  std::vector<StoragePeer> Peers() override { return inner_->Peers(); }
  std::shared_ptr<ports::PeerClient> Client(PeerId id) override {
    auto client = inner_->Client(id);
    if (!client) return nullptr;
    return std::make_shared<LateAnsweringClient>(std::move(client), &in_flight, &peak);
  }
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};

 private:
  PeerSet* inner_;
};

// Read-ahead: the walker starts the fetches of the chunks it queues without waiting for them,
// so many more chunks are on their way than there are workers (each of which waits for one).
TEST_F(EngineTest, RestoreKeepsMoreChunksInFlightThanWorkers) {
  MakeTree();
  Backup(2);
  LateAnsweringPeers late(&peers_);
  ctx_.peers = &late;
  std::string target = (root_ / "restore").string();
  RestoreResult rr = RestoreTo(target);
  ctx_.peers = &peers_;
  ASSERT_TRUE(rr.errors.empty()) << rr.errors.front();
  EXPECT_EQ(CompareTrees((root_ / "src").string(), target + "/src"), "");
  EXPECT_EQ(late.in_flight.load(), 0);
  EXPECT_GT(late.peak.load(), 4 * RestoreOptions{}.threads)
      << "fetches in flight at once: " << late.peak.load();
}

TEST(OrderHoldersTest, AliveThenSuspectThenOthersAndFailingPeersLast) {
  EngineContext ctx;
  ctx.owner = 1;
  ctx.clock = env::RealClock::Default();
  PeerFailures failures(ctx.clock);
  ctx.peer_failures = &failures;
  std::vector<StoragePeer> peers;
  for (PeerId id = 2; id <= 7; ++id) {
    StoragePeer peer;
    peer.id = id;
    peer.host = "h" + std::to_string(id);
    peer.quota = 100;
    peers.push_back(peer);
  }
  peers[1].alive = false;  // 3: suspect
  peers[1].suspect = true;
  peers[2].alive = false;  // 4: dead
  peers[4].alive = false;  // 6: suspect
  peers[4].suspect = true;
  failures.Failed(5);
  ChunkId id{};
  struct Case {
    std::vector<PeerId> holders;
    std::vector<PeerId> want;
  } cases[] = {
      {{2, 5}, {2, 5}},          // 5 is alive but failing: after 2
      {{5, 2}, {2, 5}},          // recorded order does not matter
      {{4, 3}, {3, 4}},          // suspect before dead
      {{4, 5}, {5, 4}},          // alive (failing) before dead
      {{99, 4, 7}, {7, 4, 99}},  // unknown peers last
  };
  for (const Case& c : cases) {
    EXPECT_EQ(OrderHolders(ctx, id, peers, c.holders), c.want)
        << "holders " << ::testing::PrintToString(c.holders);
  }
  // Between peers in the same state, the placement order decides.
  std::vector<PeerId> suspects = OrderHolders(ctx, id, peers, {3, 6});
  std::vector<placement::Candidate> all;
  for (const auto& p : peers) all.push_back({p.id, p.host, 100.0, p.site});
  std::vector<PeerId> order = placement::PlacementOrder(id, all, ctx.spread);
  auto pos = [&](PeerId p) { return std::find(order.begin(), order.end(), p) - order.begin(); };
  EXPECT_EQ(suspects.front(), pos(3) < pos(6) ? 3u : 6u);
}

// ---- Erasure coding: 8 peers on 8 hosts, chunks of 64 KiB .. 1 MiB. ----

class ErasureTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    for (PeerId id = 6; id <= 9; ++id) peers_.AddPeer(id, "host" + std::to_string(id), 1ull << 30);
    ctx_.chunker = {64 << 10, 256 << 10, 1 << 20};
  }

  // MakeTree plus files large enough for many erasure-coded chunks, including a compressible
  // one and one whose size is not a multiple of anything.
  void MakeEcTree() {
    MakeTree();
    std::mt19937_64 rng(77);
    std::string s = (root_ / "src").string();
    WriteFile(s + "/random.bin", RandomData(rng, 3'000'017));
    std::string text;
    while (text.size() < 2'000'000)
      text += "erasure coded text, compressible " + std::to_string(text.size());
    WriteFile(s + "/a/text.txt", text);
  }

  static constexpr codec::ErasureScheme kFourTwo{4, 2};

  std::vector<PeerId> AllPeers() const { return {2, 3, 4, 5, 6, 7, 8, 9}; }

  // Every blob key held by `peer`.
  std::vector<BlobKey> HeldKeys(PeerId peer) {
    auto held = peers_.Store(peer)->ListHeld(std::nullopt, 1'000'000);
    EXPECT_TRUE(held.ok()) << held.status();
    std::vector<BlobKey> out;
    if (held.ok())
      for (const auto& r : *held) out.push_back(r.key);
    return out;
  }

  // Replaces a held blob by a corrupt but well-formed one (a flipped payload byte, a fresh
  // checksum): what a peer with bad RAM or a bug would serve. Only the owner's GCM tag sees it.
  void CorruptBlob(PeerId peer, const BlobKey& key) {
    ports::BlobStore* st = peers_.Store(peer);
    auto blob = st->Get(key);
    ASSERT_TRUE(blob.ok()) << blob.status();
    Bytes bad = *blob;
    bad[bad.size() - 20] ^= 0x5a;
    ASSERT_TRUE(format::ParseBlobHeader(bad).ok());
    ASSERT_TRUE(st->Delete(key).ok());
    ASSERT_TRUE(st->Put(key, bad, codec::BlobChecksum(bad)).ok());
  }

  std::string RestoreAndCompare(const std::string& name) {
    std::string target = (root_ / name).string();
    RestoreResult rr = RestoreTo(target);
    if (!rr.errors.empty()) return "restore error: " + rr.errors.front();
    return CompareTrees((root_ / "src").string(), target + "/src");
  }

  // Erasure-coded chunks in the catalog.
  std::vector<ports::ChunkRecord> EcChunks(const BackupResult& r) {
    std::vector<ports::ChunkRecord> out;
    auto all = ListSnapshot(ctx_, r.snapshot, "", true);
    EXPECT_TRUE(all.ok());
    std::set<ChunkId> seen;
    for (const auto& e : *all) {
      for (const auto& id : e.entry.chunks) {
        if (!seen.insert(id).second) continue;
        auto rec = catalog_->FindChunk(id);
        if (rec.ok() && rec->has_value() && (*rec)->erasure()) out.push_back(**rec);
      }
    }
    return out;
  }
};

TEST_F(ErasureTest, ShardsOnDistinctPeersAndRestoreWithAnyTwoPeersGone) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  EXPECT_EQ(r.chunks_below_target, 0u);
  EXPECT_FALSE(r.degraded());
  EXPECT_EQ(r.snapshot.ec_k, 4u);
  EXPECT_EQ(r.snapshot.ec_m, 2u);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_GT(ec.size(), 5u);
  for (const auto& rec : ec) {
    EXPECT_EQ(rec.ec_k, 4);
    EXPECT_EQ(rec.ec_m, 2);
    EXPECT_EQ(rec.target, 6u);
    ASSERT_EQ(rec.shards.size(), 6u);
    std::set<PeerId> peers;
    for (uint32_t i = 0; i < 6; ++i) {
      EXPECT_EQ(rec.shards[i].shard, i);
      peers.insert(rec.shards[i].peer);
      // Shard i is on the peer the record names, as an erasure-coded shard blob.
      auto blob = peers_.Store(rec.shards[i].peer)->Get({ctx_.owner, rec.id, i});
      ASSERT_TRUE(blob.ok()) << blob.status();
      auto h = format::ParseBlobHeader(*blob);
      ASSERT_TRUE(h.ok());
      EXPECT_EQ(h->scheme, format::Scheme::kErasure);
      EXPECT_EQ(h->shard, i);
    }
    EXPECT_EQ(peers.size(), 6u) << "shards of one chunk on distinct peers";
    EXPECT_TRUE(rec.AtTarget());
  }
  auto stats = catalog_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks_below_target, 0u);

  // Every pair of the 8 peers unreachable: the restore is identical.
  const std::vector<PeerId> all = AllPeers();
  for (size_t a = 0; a < all.size(); ++a) {
    for (size_t b = a + 1; b < all.size(); ++b) {
      SCOPED_TRACE("peers " + std::to_string(all[a]) + " and " + std::to_string(all[b]) + " gone");
      peers_.SetReachable(all[a], false);
      peers_.SetReachable(all[b], false);
      EXPECT_EQ(RestoreAndCompare("r" + std::to_string(a) + std::to_string(b)), "");
      peers_.SetReachable(all[a], true);
      peers_.SetReachable(all[b], true);
    }
  }
}

// Without the index (a fresh catalog knowing only the snapshot) shards are found by the
// placement order and a HasBlobs census, also when the holder of shard 0 is gone.
TEST_F(ErasureTest, RestoreWithoutIndexWithTwoPeersGone) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_FALSE(ec.empty());
  // The holders of shard 0 and shard 4 of the first erasure-coded chunk.
  PeerId a = ec[0].shards[0].peer, b = ec[0].shards[4].peer;
  peers_.SetReachable(a, false);
  peers_.SetReachable(b, false);
  catalog_ = ports::NewMemCatalog();
  ctx_.catalog = catalog_.get();
  ASSERT_TRUE(catalog_->AddSnapshot({r.snapshot_id, r.snapshot}).ok());
  EXPECT_EQ(RestoreAndCompare("restore"), "");
}

// Up to m shards of every chunk corrupt (well-formed, fresh checksums), or one corrupt and
// one on an unreachable peer: the GCM tag rejects the bad subsets and others are tried.
TEST_F(ErasureTest, RestoreSurvivesCorruptShards) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_FALSE(ec.empty());
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const auto& rec : ec) {
    // Two distinct shards, data shards more often (they are read first).
    uint32_t x = static_cast<uint32_t>(rng() % 4), y = static_cast<uint32_t>(rng() % 6);
    if (y == x) y = (x + 1) % 6;
    CorruptBlob(rec.shards[x].peer, {ctx_.owner, rec.id, x});
    CorruptBlob(rec.shards[y].peer, {ctx_.owner, rec.id, y});
  }
  EXPECT_EQ(RestoreAndCompare("corrupt2"), "");
}

TEST_F(ErasureTest, RestoreSurvivesOneCorruptShardAndOnePeerGone) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_FALSE(ec.empty());
  PeerId gone = 4;
  for (const auto& rec : ec) {
    for (const auto& s : rec.shards) {
      if (s.peer != gone) {
        CorruptBlob(s.peer, {ctx_.owner, rec.id, s.shard});
        break;
      }
    }
  }
  peers_.SetReachable(gone, false);
  EXPECT_EQ(RestoreAndCompare("mixed"), "");
}

// More than m shards of a chunk lost: the restore reports it as lost, it does not return
// wrong bytes.
TEST_F(ErasureTest, MoreThanMLostIsReported) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_FALSE(ec.empty());
  const auto& rec = ec[0];
  for (uint32_t i = 0; i < 3; ++i) CorruptBlob(rec.shards[i].peer, {ctx_.owner, rec.id, i});
  auto fetched = FetchChunk(ctx_, rec.id);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss) << fetched.status();
  for (PeerId p : AllPeers()) peers_.SetReachable(p, false);
  fetched = FetchChunk(ctx_, rec.id);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
}

TEST_F(ErasureTest, SmallChunksAreMPlusOneCopies) {
  MakeEcTree();
  BackupResult r = Backup(2, kFourTwo);
  EXPECT_EQ(r.snapshot.copies, 3u);
  // Trees and small files are below 64 KiB: 3 copies (survive 2 losses, as 4+2 does).
  auto all = ListSnapshot(ctx_, r.snapshot, "", true);
  ASSERT_TRUE(all.ok());
  int small = 0;
  for (const auto& e : *all) {
    if (e.entry.type != format::EntryType::kFile || e.entry.size == 0 ||
        e.entry.size >= (64 << 10)) {
      continue;
    }
    for (const auto& id : e.entry.chunks) {
      auto rec = catalog_->FindChunk(id);
      ASSERT_TRUE(rec.ok() && rec->has_value());
      EXPECT_FALSE((*rec)->erasure()) << e.path;
      EXPECT_EQ((*rec)->holders.size(), 3u) << e.path;
      for (PeerId p : (*rec)->holders) {
        auto blob = peers_.Store(p)->Get({ctx_.owner, id, 0});
        ASSERT_TRUE(blob.ok());
        EXPECT_EQ(format::ParseBlobHeader(*blob)->scheme, format::Scheme::kCopies);
      }
      ++small;
    }
  }
  EXPECT_GT(small, 10);
  auto root = catalog_->FindChunk(r.snapshot.root);
  ASSERT_TRUE(root.ok() && root->has_value());
  EXPECT_EQ((*root)->holders.size(), 3u);
}

// Five live peers for 4+2: shards still all stored (one peer holds two), reported below
// target, restorable, also with one of the five gone.
TEST_F(ErasureTest, FewerPeersThanShardsIsDegradedButRestorable) {
  MakeEcTree();
  for (PeerId p : {7, 8, 9}) peers_.SetAlive(p, false);
  BackupResult r = Backup(2, kFourTwo);
  EXPECT_GT(r.chunks_below_target, 0u);
  EXPECT_TRUE(r.degraded());
  for (PeerId p : {7, 8, 9}) EXPECT_EQ(peers_.BlobCount(p), 0u);
  std::vector<ports::ChunkRecord> ec = EcChunks(r);
  ASSERT_FALSE(ec.empty());
  for (const auto& rec : ec) {
    EXPECT_EQ(rec.PlacedCount(), 6u);
    EXPECT_FALSE(rec.AtTarget());
  }
  EXPECT_EQ(RestoreAndCompare("degraded"), "");
  peers_.SetReachable(3, false);
  EXPECT_EQ(RestoreAndCompare("degraded-minus-one"), "");
}

// A backup that meets a stored chunk with a shard missing rebuilds exactly that shard (same
// seal, byte-identical) from k others; with fewer than k left it seals the chunk anew.
TEST_F(ErasureTest, TopUpRebuildsMissingShards) {
  std::mt19937_64 rng(9);
  std::string data = RandomData(rng, 500'000);
  Bytes plain(data.begin(), data.end());
  ChunkId id = codec::ComputeChunkId(ctx_.keys.id_key, plain);
  Redundancy red;
  red.ec = kFourTwo;
  auto first = PutChunk(ctx_, BlobKind::kData, id, plain, red, std::nullopt);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->at_target);
  ASSERT_EQ(first->shards.size(), 6u);
  EXPECT_EQ(first->new_copies, 6u);

  // Shard 5 disappears from its peer and from the record.
  PeerId holder5 = first->shards[5].peer;
  auto original5 = peers_.Store(holder5)->Get({ctx_.owner, id, 5});
  ASSERT_TRUE(original5.ok());
  ASSERT_TRUE(peers_.Store(holder5)->Delete({ctx_.owner, id, 5}).ok());
  ports::ChunkRecord known = **catalog_->FindChunk(id);
  known.shards.pop_back();
  catalog_ = ports::NewMemCatalog();
  ctx_.catalog = catalog_.get();
  ASSERT_TRUE(catalog_->AddChunk(known).ok());
  EXPECT_FALSE(SatisfiesRedundancy(known, red));
  auto topped = PutChunk(ctx_, BlobKind::kData, id, plain, red, known);
  ASSERT_TRUE(topped.ok()) << topped.status();
  EXPECT_TRUE(topped->at_target);
  EXPECT_EQ(topped->new_copies, 1u);
  PeerId new5 = 0;
  for (const auto& s : topped->shards)
    if (s.shard == 5) new5 = s.peer;
  ASSERT_NE(new5, 0u);
  auto rebuilt5 = peers_.Store(new5)->Get({ctx_.owner, id, 5});
  ASSERT_TRUE(rebuilt5.ok());
  EXPECT_EQ(*rebuilt5, *original5);

  // Three shards lost (fewer than k = 4 left): sealed and stored anew; old shard keys that
  // are still held are not mistaken for the new seal's.
  ports::ChunkRecord now = **catalog_->FindChunk(id);
  ports::ChunkRecord partial = now;
  partial.shards.clear();
  for (const auto& s : now.shards) {
    if (s.shard < 3) {
      ASSERT_TRUE(peers_.Store(s.peer)->Delete({ctx_.owner, id, s.shard}).ok());
    } else {
      partial.shards.push_back(s);
    }
  }
  catalog_ = ports::NewMemCatalog();
  ctx_.catalog = catalog_.get();
  ASSERT_TRUE(catalog_->AddChunk(partial).ok());
  auto resealed = PutChunk(ctx_, BlobKind::kData, id, plain, red, partial);
  ASSERT_TRUE(resealed.ok()) << resealed.status();
  auto fetched = FetchChunk(ctx_, id);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(*fetched, plain);
}

TEST_F(ErasureTest, BadSchemeIsInvalidArgument) {
  MakeTree();
  BackupOptions opts;
  opts.paths = {(root_ / "src").string()};
  opts.ec = codec::ErasureScheme{17, 2};
  BackupEngine engine(ctx_);
  EXPECT_EQ(engine.Run(opts, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

// Shards: with one shard holder dead and every other peer unreachable for the first 700 ms
// (its client reconnecting), a restore still reads k shards of every chunk.
TEST_F(ErasureTest, RestoreRetriesShardHoldersThatAreReconnecting) {
  MakeEcTree();
  Backup(2, kFourTwo);
  peers_.SetReachable(3, false);
  const auto reconnected = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
  peers_.SetGetFault([&](PeerId, const BlobKey&) {
    if (std::chrono::steady_clock::now() >= reconnected) return absl::OkStatus();
    return absl::UnavailableError("injected: reconnecting");
  });
  EXPECT_EQ(RestoreAndCompare("restore"), "");
  peers_.SetGetFault(nullptr);
}

// Shards: for every chunk the first m calls fail (whichever shards or copies they ask for); the
// fetch takes the other holders and still reads k shards (or the one copy left).
TEST_F(ErasureTest, RestoreTakesOtherHoldersWhenTheFirstOnesFailForEveryChunk) {
  MakeEcTree();
  Backup(2, kFourTwo);
  std::mutex mu;
  std::map<ChunkId, int> calls;
  size_t faults = 0;
  peers_.SetGetFault([&](PeerId, const BlobKey& key) {
    std::lock_guard lock(mu);
    if (++calls[key.chunk] > kFourTwo.m) return absl::OkStatus();
    return FirstCallFault(faults++);
  });
  EXPECT_EQ(RestoreAndCompare("restore"), "");
  peers_.SetGetFault(nullptr);
  EXPECT_EQ(faults, calls.size() * kFourTwo.m);
  EXPECT_GT(calls.size(), 10u);
}

}  // namespace
}  // namespace cairn::engine
