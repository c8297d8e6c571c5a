// Versions through in-memory peers: a file changed between three backups has three versions
// with distinct content hashes; SnapshotAt picks the snapshot whose content a restore "as of"
// any time inside each interval gives back; Diff lists exactly the changes made between two
// backups; Find matches names and paths over all snapshots; time points parse as documented.
#include "cairn/engine/versions.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <tuple>

#include "cairn/engine/lifecycle_test_util.h"
#include "cairn/engine/restore.h"

namespace cairn::engine {
namespace {

using namespace lifecycle_testing;  // NOLINT(build/namespaces)
using std::chrono::hours;

constexpr int64_t kStart = 1'800'000'000'000'000'000;  // 2027-01-15, ns
constexpr int64_t kHour = 3'600'000'000'000;

class VersionsTest : public LifecycleTest {
 protected:
  void SetUp() override {
    LifecycleTest::SetUp();
    ctx_.clock = &clock_;
    src_ = root_ / "src";
  }

  // Backs up src_ at the fake clock's time, then advances it by an hour.
  ports::SnapshotRecord BackupNow() {
    ports::SnapshotRecord r = Backup(src_);
    clock_.Advance(hours(1));
    return r;
  }

  std::string Abs(const std::string& rel) const { return (src_ / rel).string(); }

  env::FakeClock clock_{kStart};
  fs::path src_;
};

TEST_F(VersionsTest, ThreeVersionsOfAFileWithDistinctHashes) {
  std::mt19937_64 rng(4242);
  std::vector<std::string> contents = {RandomData(rng, 70'000), RandomData(rng, 90'000),
                                       "third version\n"};
  WriteFile(src_ / "other.bin", RandomData(rng, 20'000));
  std::vector<ports::SnapshotRecord> snaps;
  for (const std::string& c : contents) {
    WriteFile(src_ / "docs/report.txt", c);
    snaps.push_back(BackupNow());
  }
  snaps.push_back(BackupNow());  // unchanged: the third version again

  auto versions = ListVersions(ctx_, Abs("docs/report.txt"));
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 3u);
  std::set<std::string> hashes;
  for (size_t i = 0; i < 3; ++i) {
    const FileVersion& v = (*versions)[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(v.snapshot_id, snaps[i].id);
    EXPECT_EQ(v.time_ns, kStart + static_cast<int64_t>(i) * kHour);
    EXPECT_EQ(v.size, contents[i].size());
    EXPECT_EQ(v.type, format::EntryType::kFile);
    EXPECT_EQ(v.snapshot_path, "src/docs/report.txt");
    EXPECT_EQ(v.content_hash.size(), 64u);
    hashes.insert(v.content_hash);
  }
  EXPECT_EQ(hashes.size(), 3u);
  // The last version was seen in two snapshots (collapsed, first seen).
  EXPECT_EQ((*versions)[2].snapshots, 2u);
  EXPECT_EQ((*versions)[2].last_snapshot_id, snaps[3].id);
  EXPECT_EQ((*versions)[0].snapshots, 1u);

  // Not collapsed: one per snapshot, the last two with equal hashes.
  auto all = ListVersions(ctx_, Abs("docs/report.txt"), VersionsOptions{.collapse = false});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[2].content_hash, (*all)[3].content_hash);
  EXPECT_EQ((*all)[3].snapshot_id, snaps[3].id);

  // The unchanged file: one version in four snapshots; a directory has versions too.
  auto other = ListVersions(ctx_, Abs("other.bin") + "/");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ(other->front().snapshots, 4u);
  auto dir = ListVersions(ctx_, Abs("docs"));
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(dir->size(), 3u);
  EXPECT_EQ(dir->front().type, format::EntryType::kDirectory);

  EXPECT_EQ(ListVersions(ctx_, Abs("nope.txt")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ListVersions(ctx_, "/elsewhere/x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ListVersions(ctx_, "relative/x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VersionsTest, EqualContentHasEqualHash) {
  std::mt19937_64 rng(99);
  std::string data = RandomData(rng, 50'000);
  WriteFile(src_ / "a.bin", data);
  WriteFile(src_ / "b.bin", data);
  WriteFile(src_ / "c.bin", data + "x");
  BackupNow();
  auto a = ListVersions(ctx_, Abs("a.bin"));
  auto b = ListVersions(ctx_, Abs("b.bin"));
  auto c = ListVersions(ctx_, Abs("c.bin"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->front().content_hash, b->front().content_hash);
  EXPECT_NE(a->front().content_hash, c->front().content_hash);
}

TEST_F(VersionsTest, RestoreAtPicksTheVersionOfEachInterval) {
  std::mt19937_64 rng(7);
  std::vector<std::string> contents = {RandomData(rng, 60'000), RandomData(rng, 1000),
                                       RandomData(rng, 120'000)};
  WriteFile(src_ / "keep.txt", "stays\n");
  std::vector<ports::SnapshotRecord> snaps;
  for (const std::string& c : contents) {
    WriteFile(src_ / "f.bin", c);
    snaps.push_back(BackupNow());
  }
  fs::remove(src_ / "f.bin");
  ports::SnapshotRecord gone = BackupNow();  // f.bin deleted in the fourth snapshot

  // Times: each snapshot's own time, a minute into its interval, just before the next one.
  for (size_t i = 0; i < contents.size(); ++i) {
    const int64_t t0 = snaps[i].snapshot.time_ns;
    for (int64_t t : {t0, t0 + 60'000'000'000, t0 + kHour - 1}) {
      SCOPED_TRACE(::testing::Message() << "version " << i << " at " << t);
      auto at = SnapshotAt(ctx_, t, Abs("f.bin"));
      ASSERT_TRUE(at.ok()) << at.status();
      EXPECT_EQ(at->record.id, snaps[i].id);
      EXPECT_EQ(at->snapshot_path, "src/f.bin");
      RestoreOptions opts;
      opts.path = at->snapshot_path;
      opts.target = (root_ / "restore").string();
      fs::remove_all(opts.target);
      auto r = Restore(ctx_, at->record.snapshot, opts, nullptr);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(r->errors.empty());
      EXPECT_EQ(ReadAll(root_ / "restore" / "f.bin"), contents[i]);
    }
  }
  // After the deletion: the last snapshot that had it.
  auto later = SnapshotAt(ctx_, gone.snapshot.time_ns + 5, Abs("f.bin"));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->record.id, snaps[2].id);
  // keep.txt at the last snapshot's time: the last snapshot.
  auto keep = SnapshotAt(ctx_, gone.snapshot.time_ns, Abs("keep.txt"));
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_EQ(keep->record.id, gone.id);

  auto before = SnapshotAt(ctx_, kStart - 1, Abs("f.bin"));
  EXPECT_EQ(before.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(
      before.status().message().find("earliest version is in snapshot " + snaps[0].id.ShortHex()),
      std::string::npos)
      << before.status();
  EXPECT_EQ(SnapshotAt(ctx_, kStart + 10 * kHour, Abs("never.txt")).status().code(),
            absl::StatusCode::kNotFound);
}

std::set<std::tuple<ChangeKind, std::string>> Kinds(const DiffResult& d) {
  std::set<std::tuple<ChangeKind, std::string>> out;
  for (const Change& c : d.changes) out.insert({c.kind, c.path});
  return out;
}

TEST_F(VersionsTest, DiffListsExactlyTheChangesMade) {
  std::mt19937_64 rng(31337);
  WriteFile(src_ / "modified.bin", RandomData(rng, 40'000));
  WriteFile(src_ / "removed.txt", "bye\n");
  WriteFile(src_ / "chmod.sh", "#!/bin/sh\n");
  WriteFile(src_ / "same.txt", "unchanged\n");
  WriteFile(src_ / "olddir/x", "x\n");
  WriteFile(src_ / "olddir/y/z", "z\n");
  fs::create_symlink("same.txt", src_ / "link");
  for (int d = 0; d < 20; ++d) {  // a big unchanged subtree
    for (int f = 0; f < 5; ++f) {
      WriteFile(src_ / "big" / ("d" + std::to_string(d)) / ("f" + std::to_string(f)),
                RandomData(rng, 100));
    }
  }
  ::chmod((src_ / "chmod.sh").c_str(), 0644);
  ports::SnapshotRecord a = BackupNow();

  WriteFile(src_ / "modified.bin", RandomData(rng, 45'000));
  fs::remove(src_ / "removed.txt");
  ::chmod((src_ / "chmod.sh").c_str(), 0755);
  WriteFile(src_ / "added.txt", "new\n");
  WriteFile(src_ / "newdir/a", "a\n");
  WriteFile(src_ / "newdir/sub/b", "bb\n");
  fs::remove_all(src_ / "olddir");
  fs::remove(src_ / "link");
  fs::create_symlink("modified.bin", src_ / "link");
  ports::SnapshotRecord b = BackupNow();

  auto d = Diff(ctx_, a.snapshot, b.snapshot);
  ASSERT_TRUE(d.ok()) << d.status();
  using K = ChangeKind;
  std::set<std::tuple<ChangeKind, std::string>> want = {
      {K::kModified, "src/modified.bin"}, {K::kRemoved, "src/removed.txt"},
      {K::kModified, "src/chmod.sh"},     {K::kAdded, "src/added.txt"},
      {K::kAdded, "src/newdir"},          {K::kAdded, "src/newdir/a"},
      {K::kAdded, "src/newdir/sub"},      {K::kAdded, "src/newdir/sub/b"},
      {K::kRemoved, "src/olddir"},        {K::kRemoved, "src/olddir/x"},
      {K::kRemoved, "src/olddir/y"},      {K::kRemoved, "src/olddir/y/z"},
      {K::kModified, "src/link"}};
  EXPECT_EQ(Kinds(*d), want);
  EXPECT_EQ(d->changes.size(), want.size());  // each once
  EXPECT_EQ(d->added, 5u);
  EXPECT_EQ(d->removed, 5u);
  EXPECT_EQ(d->modified, 3u);
  EXPECT_EQ(d->added_bytes, 4u + 2u + 3u);
  EXPECT_EQ(d->removed_bytes, 4u + 2u + 2u);
  EXPECT_GE(d->identical_subtrees, 1u);  // "big" was skipped unread
  for (const Change& c : d->changes) {
    if (c.path == "src/modified.bin") {
      EXPECT_TRUE(c.content_changed);
      EXPECT_FALSE(c.mode_changed);
      EXPECT_EQ(c.size_before, 40'000u);
      EXPECT_EQ(c.size_after, 45'000u);
    } else if (c.path == "src/chmod.sh") {
      EXPECT_TRUE(c.mode_changed);
      EXPECT_FALSE(c.content_changed);
      EXPECT_EQ(c.mode_before, 0644u);
      EXPECT_EQ(c.mode_after, 0755u);
    } else if (c.path == "src/link") {
      EXPECT_TRUE(c.content_changed);  // another target
    }
  }
  // Parents come before their children.
  for (size_t i = 0; i + 1 < d->changes.size(); ++i) {
    if (d->changes[i + 1].path == "src/newdir/a") {
      EXPECT_EQ(d->changes[i].path, "src/newdir");
    }
  }

  // The reverse diff swaps added and removed; a snapshot against itself has no change.
  auto back = Diff(ctx_, b.snapshot, a.snapshot);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->added, 5u);
  EXPECT_EQ(back->removed, 5u);
  EXPECT_EQ(back->modified, 3u);
  auto same = Diff(ctx_, a.snapshot, a.snapshot);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->changes.empty());
  EXPECT_EQ(same->identical_subtrees, 1u);
}

TEST_F(VersionsTest, DiffTypeChange) {
  WriteFile(src_ / "thing/inner", "i\n");
  ports::SnapshotRecord a = BackupNow();
  fs::remove_all(src_ / "thing");
  WriteFile(src_ / "thing", "now a file\n");
  ports::SnapshotRecord b = BackupNow();
  auto d = Diff(ctx_, a.snapshot, b.snapshot);
  ASSERT_TRUE(d.ok()) << d.status();
  using K = ChangeKind;
  EXPECT_EQ(Kinds(*d), (std::set<std::tuple<ChangeKind, std::string>>{
                           {K::kModified, "src/thing"}, {K::kRemoved, "src/thing/inner"}}));
  EXPECT_TRUE(d->changes.front().type_changed);
}

TEST_F(VersionsTest, FindMatchesNamesAndPaths) {
  WriteFile(src_ / "notes.txt", "n1\n");
  WriteFile(src_ / "docs/a.txt", "a\n");
  WriteFile(src_ / "docs/b.pdf", "b\n");
  ports::SnapshotRecord s1 = BackupNow();
  WriteFile(src_ / "docs/c.txt", "c\n");
  ports::SnapshotRecord s2 = BackupNow();

  auto txt = Find(ctx_, "*.txt");
  ASSERT_TRUE(txt.ok()) << txt.status();
  std::vector<std::pair<ChunkId, std::string>> got;
  for (const FoundEntry& f : *txt) got.push_back({f.snapshot_id, f.path});
  std::vector<std::pair<ChunkId, std::string>> want = {{s1.id, Abs("docs/a.txt")},
                                                       {s1.id, Abs("notes.txt")},
                                                       {s2.id, Abs("docs/a.txt")},
                                                       {s2.id, Abs("docs/c.txt")},
                                                       {s2.id, Abs("notes.txt")}};
  EXPECT_EQ(got, want);
  const FoundEntry& first = txt->front();
  EXPECT_EQ(first.snapshot_path, "src/docs/a.txt");
  EXPECT_EQ(first.type, format::EntryType::kFile);
  EXPECT_EQ(first.size, 2u);
  EXPECT_EQ(first.time_ns, s1.snapshot.time_ns);

  // A pattern with '/' also matches the whole source path.
  auto in_docs = Find(ctx_, "*/docs/*");
  ASSERT_TRUE(in_docs.ok()) << in_docs.status();
  EXPECT_EQ(in_docs->size(), 2u + 3u);
  auto dirs = Find(ctx_, "doc?");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_EQ(dirs->size(), 2u);
  EXPECT_EQ(dirs->front().type, format::EntryType::kDirectory);
  auto none = Find(ctx_, "*.doc");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(Find(ctx_, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SnapshotPathsTest, MapsSourcePathsBothWays) {
  format::Snapshot s;
  s.paths = {"/home/u/docs", "/etc"};
  struct Case {
    std::string abs;
    std::optional<std::string> inner;
  };
  for (const Case& c : std::vector<Case>{{"/home/u/docs", "docs"},
                                         {"/home/u/docs/a/b.txt", "docs/a/b.txt"},
                                         {"/etc/hosts", "etc/hosts"},
                                         {"/home/u/docsx", std::nullopt},
                                         {"/home/u", std::nullopt}}) {
    EXPECT_EQ(SnapshotPathFor(s, c.abs), c.inner) << c.abs;
    if (c.inner) {
      EXPECT_EQ(SourcePathFor(s, *c.inner), c.abs) << *c.inner;
    }
  }
  format::Snapshot root;
  root.paths = {"/"};
  EXPECT_EQ(SnapshotPathFor(root, "/var/log"), "root/var/log");
  EXPECT_EQ(SourcePathFor(root, "root/var/log"), "/var/log");
  EXPECT_EQ(SourcePathFor(root, "root"), "/");
  EXPECT_EQ(RootEntryName("/a/b"), "b");
}

TEST(ParseTimePointTest, AcceptedForms) {
  struct Case {
    std::string text;
    int64_t want;
  };
  constexpr int64_t kS = 1'000'000'000;
  for (const Case& c : std::vector<Case>{
           {"@1700000000", 1'700'000'000 * kS},
           {"@1700000000.25", 1'700'000'000 * kS + 250'000'000},
           {"2023-11-14T22:13:20Z", 1'700'000'000 * kS},
           {"2023-11-14t22:13:20z", 1'700'000'000 * kS},
           {"2023-11-14 22:13:20Z", 1'700'000'000 * kS},
           {"2023-11-14T23:13:20+01:00", 1'700'000'000 * kS},
           {"2023-11-14T21:13:20.5-01:00", 1'700'000'000 * kS + 500'000'000},
           {"2023-11-14T22:13:20.123456789Z", 1'700'000'000 * kS + 123'456'789},
           {"1700000000000000001", 1'700'000'000 * kS + 1},
       }) {
    auto t = ParseTimePoint(c.text, /*allow_local=*/true, /*allow_unix_ns=*/true);
    ASSERT_TRUE(t.ok()) << c.text << ": " << t.status();
    EXPECT_EQ(*t, c.want) << c.text;
  }
  // Local time: whatever the zone, it is mktime's reading of those fields.
  struct tm tm {};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = 22;
  tm.tm_hour = 10;
  tm.tm_isdst = -1;
  const int64_t local = static_cast<int64_t>(mktime(&tm)) * kS;
  EXPECT_EQ(*ParseTimePoint("2026-11-22 10:00:00", true, false), local);
  EXPECT_EQ(*ParseTimePoint("2026-11-22 10:00", true, false), local);
  EXPECT_EQ(*ParseTimePoint("2026-11-22", true, false), local - 10 * 3600 * kS);

  for (const char* bad :
       {"", "yesterday", "2026-13-01", "2026-02-30 10:00:00", "2026-11-22T10:00:00+1", "@", "@12x",
        "2026-11-22T25:00Z", "2026-11-22Z", "@9999999999", "9999-01-01T00:00:00Z"}) {
    EXPECT_EQ(ParseTimePoint(bad, true, true).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  // Forms that are not allowed by the flags.
  EXPECT_FALSE(ParseTimePoint("2026-11-22 10:00:00", false, true).ok());
  EXPECT_FALSE(ParseTimePoint("1700000000", true, false).ok());
}

}  // namespace
}  // namespace cairn::engine
