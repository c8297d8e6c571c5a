#include "cairn/env/file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <random>
#include <string>

namespace cairn::env {
namespace {

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string ReadAll(File* f) {
  auto size = f->Size();
  EXPECT_TRUE(size.ok()) << size.status();
  Bytes out(*size);
  auto n = f->ReadAt(0, out);
  EXPECT_TRUE(n.ok()) << n.status();
  out.resize(*n);
  return std::string(out.begin(), out.end());
}

std::string ReadPath(FileSystem* fs, const std::string& path) {
  auto f = fs->Open(path, OpenMode::kRead);
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return "";
  return ReadAll(f->get());
}

// A file system under test, rooted in a fresh directory.
struct FsFixture {
  std::unique_ptr<FileSystem> owned;
  FileSystem* fs = nullptr;
  std::string root;
  std::function<void()> cleanup;
};

struct FsKind {
  std::string name;
  std::function<FsFixture()> make;
};

class FileSystemConformanceTest : public ::testing::TestWithParam<FsKind> {
 protected:
  void SetUp() override { f_ = GetParam().make(); }
  void TearDown() override {
    if (f_.cleanup) f_.cleanup();
  }
  FileSystem* fs() { return f_.fs; }
  std::string P(const std::string& name) { return f_.root + "/" + name; }
  FsFixture f_;
};

TEST_P(FileSystemConformanceTest, CreateAppendReadSyncTruncate) {
  auto f = fs()->Open(P("a"), OpenMode::kCreate);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*(*f)->Size(), 0u);
  ASSERT_TRUE((*f)->Append(B("hello ")).ok());
  ASSERT_TRUE((*f)->Append(B("world")).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(*(*f)->Size(), 11u);
  EXPECT_EQ(ReadAll(f->get()), "hello world");
  Bytes part(5);
  auto n = (*f)->ReadAt(6, part);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(std::string(part.begin(), part.end()), "world");
  // Short read at the end, zero past it.
  Bytes more(10);
  EXPECT_EQ(*(*f)->ReadAt(8, more), 3u);
  EXPECT_EQ(*(*f)->ReadAt(100, more), 0u);
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ(ReadAll(f->get()), "hello");
  EXPECT_EQ((*f)->Truncate(6).code(), absl::StatusCode::kInvalidArgument);
  // Appends go to the (new) end.
  ASSERT_TRUE((*f)->Append(B("!")).ok());
  EXPECT_EQ(ReadPath(fs(), P("a")), "hello!");
  EXPECT_EQ(*fs()->FileSize(P("a")), 6u);
}

// Appends (single and gathered) of every size across block and staging-buffer boundaries (the POSIX
// file writes whole 4 KiB blocks with O_DIRECT and keeps the last partial block aside:
// docs/architecture.md "Segment writes bypass the page cache"), interleaved with reads at the end,
// syncs, truncations, reads through a second handle and reopening: the file always holds exactly
// what was appended.
TEST_P(FileSystemConformanceTest, RandomAppendsReadsTruncatesMatchAModel) {
  std::mt19937_64 rng(20261203);
  std::string model;
  auto f = fs()->Open(P("m"), OpenMode::kCreate);
  ASSERT_TRUE(f.ok()) << f.status();
  auto random_bytes = [&](size_t n) {
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(rng());
    return out;
  };
  const size_t sizes[] = {
      0,       1, 7, 4095, 4096, 4097, 8191, 65536, (1u << 20) - 3, 1u << 20, (1u << 20) + 4096 + 5,
      3u << 20};
  for (int step = 0; step < 160; ++step) {
    switch (rng() % 8) {
      case 0:
      case 1: {
        std::string data = random_bytes(sizes[rng() % std::size(sizes)]);
        ASSERT_TRUE((*f)->Append(Bytes(data.begin(), data.end())).ok());
        model += data;
        break;
      }
      case 2: {
        // A gathered append (AppendV) of 1 to 6 parts of those sizes, empty ones included,
        // splitting records across the staging buffer as the segment store's write groups do.
        std::vector<Bytes> parts(1 + rng() % 6);
        for (Bytes& part : parts) {
          std::string data = random_bytes(sizes[rng() % std::size(sizes)] / (1 + rng() % 3));
          part.assign(data.begin(), data.end());
          model += data;
        }
        std::vector<ByteSpan> spans(parts.begin(), parts.end());
        ASSERT_TRUE((*f)->AppendV(spans).ok());
        break;
      }
      case 3:
        ASSERT_TRUE((*f)->Sync().ok());
        // A second handle sees every synced byte.
        EXPECT_EQ(ReadPath(fs(), P("m")), model) << "step " << step;
        break;
      case 4: {
        // The last bytes, through the writing handle, before any sync.
        size_t n = std::min<size_t>(model.size(), 1 + rng() % 9000);
        Bytes out(n + 10);
        auto got = (*f)->ReadAt(model.size() - n, out);
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(*got, n);
        EXPECT_EQ(std::string(out.begin(), out.begin() + static_cast<long>(n)),
                  model.substr(model.size() - n))
            << "step " << step;
        break;
      }
      case 5: {
        size_t cut =
            model.empty() ? 0 : model.size() - rng() % std::min<size_t>(model.size(), 6000);
        ASSERT_TRUE((*f)->Truncate(cut).ok());
        model.resize(cut);
        break;
      }
      case 6: {
        ASSERT_TRUE((*f)->Sync().ok());
        f = fs()->Open(P("m"), OpenMode::kReadWrite);
        ASSERT_TRUE(f.ok()) << f.status();
        break;
      }
      default:
        EXPECT_EQ(*(*f)->Size(), model.size()) << "step " << step;
    }
  }
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(ReadAll(f->get()), model);
  EXPECT_EQ(*fs()->FileSize(P("m")), model.size());
  // Closing without a sync keeps what was appended (the handle flushes its last block).
  std::string extra = random_bytes(5000);
  ASSERT_TRUE((*f)->Append(Bytes(extra.begin(), extra.end())).ok());
  f->reset();
  EXPECT_EQ(ReadPath(fs(), P("m")), model + extra);
}

TEST_P(FileSystemConformanceTest, OpenModes) {
  EXPECT_EQ(fs()->Open(P("missing"), OpenMode::kRead).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs()->Open(P("missing"), OpenMode::kReadWrite).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(fs()->Open(P("nodir/x"), OpenMode::kCreate).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs()->Open(P("a"), OpenMode::kCreate).ok());
  EXPECT_EQ(fs()->Open(P("a"), OpenMode::kCreate).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto rw = fs()->Open(P("a"), OpenMode::kReadWrite);
  ASSERT_TRUE(rw.ok());
  ASSERT_TRUE((*rw)->Append(B("x")).ok());
  EXPECT_EQ(ReadPath(fs(), P("a")), "x");
  EXPECT_EQ(fs()->FileSize(P("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(FileSystemConformanceTest, DirectoriesRenameRemove) {
  ASSERT_TRUE(fs()->CreateDir(P("d")).ok());
  ASSERT_TRUE(fs()->CreateDir(P("d")).ok());  // exists: OK
  EXPECT_EQ(*fs()->Exists(P("d")), true);
  {
    auto f = fs()->Open(P("d/one"), OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(B("1")).ok());
  }
  ASSERT_TRUE(fs()->Open(P("d/two"), OpenMode::kCreate).ok());
  ASSERT_TRUE(fs()->CreateDir(P("d/sub")).ok());
  ASSERT_TRUE(fs()->SyncDir(P("d")).ok());
  EXPECT_EQ(*fs()->ListDir(P("d")), (std::vector<std::string>{"one", "sub", "two"}));
  ASSERT_TRUE(fs()->Rename(P("d/one"), P("d/two")).ok());  // replaces
  EXPECT_EQ(*fs()->ListDir(P("d")), (std::vector<std::string>{"sub", "two"}));
  EXPECT_EQ(ReadPath(fs(), P("d/two")), "1");
  EXPECT_EQ(fs()->Rename(P("d/one"), P("d/three")).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs()->Remove(P("d/two")).ok());
  EXPECT_EQ(fs()->Remove(P("d/two")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*fs()->Exists(P("d/two")), false);
  EXPECT_EQ(fs()->ListDir(P("nodir")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(FileSystemConformanceTest, RemovedFileStaysReadableThroughItsHandle) {
  auto w = fs()->Open(P("a"), OpenMode::kCreate);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(B("still here")).ok());
  auto r = fs()->Open(P("a"), OpenMode::kRead);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(fs()->Remove(P("a")).ok());
  EXPECT_EQ(ReadAll(r->get()), "still here");
}

FsFixture MakePosix() {
  FsFixture f;
  f.fs = PosixFileSystem();
  std::string templ = (std::filesystem::temp_directory_path() / "cairn_fs_test.XXXXXX").string();
  EXPECT_NE(::mkdtemp(templ.data()), nullptr);
  f.root = templ;
  f.cleanup = [root = templ] {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  };
  return f;
}

FsFixture MakeMem() {
  FsFixture f;
  f.owned = NewMemFileSystem();
  f.fs = f.owned.get();
  f.root = "/t";
  EXPECT_TRUE(f.fs->CreateDir(f.root).ok());
  return f;
}

TEST_P(FileSystemConformanceTest, FreeSpaceOfAnExistingPath) {
  auto before = fs()->FreeSpace(f_.root);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(*before, 0u);
  EXPECT_EQ(fs()->FreeSpace(P("missing")).status().code(), absl::StatusCode::kNotFound);
}

// The POSIX file system without direct I/O (what it falls back to where O_DIRECT is refused).
FsFixture MakePosixBuffered() {
  FsFixture f = MakePosix();
  f.fs = PosixFileSystemBuffered();
  return f;
}

INSTANTIATE_TEST_SUITE_P(FileSystems, FileSystemConformanceTest,
                         ::testing::Values(FsKind{"Posix", MakePosix},
                                           FsKind{"PosixBuffered", MakePosixBuffered},
                                           FsKind{"Mem", MakeMem}),
                         [](const auto& info) { return info.param.name; });

// ---- Fault injection ----

class FaultInjectionTest : public ::testing::Test {
 protected:
  FaultInjectionTest() : base_(NewMemFileSystem()), fs_(base_.get()) {
    EXPECT_TRUE(base_->CreateDir("/d").ok());
  }
  std::unique_ptr<FileSystem> base_;
  FaultInjectionFileSystem fs_;
};

TEST_F(FaultInjectionTest, CrashDropsUnsyncedBytesAndCreates) {
  {
    auto f = fs_.Open("/d/kept", OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(B("durable")).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE(fs_.SyncDir("/d").ok());
    ASSERT_TRUE((*f)->Append(B(" lost")).ok());
  }
  {
    auto f = fs_.Open("/d/synced-not-dir", OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(B("x")).ok());
    ASSERT_TRUE((*f)->Sync().ok());  // bytes synced, but the name is not
  }
  EXPECT_EQ(ReadPath(&fs_, "/d/kept"), "durable lost");
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  EXPECT_EQ(ReadPath(&fs_, "/d/kept"), "durable");
  EXPECT_EQ(*fs_.Exists("/d/synced-not-dir"), false);
  // Appends after the crash are tracked afresh.
  auto f = fs_.Open("/d/kept", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(B("+")).ok());
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  EXPECT_EQ(ReadPath(&fs_, "/d/kept"), "durable");
}

TEST_F(FaultInjectionTest, CrashUndoesUnsyncedRenames) {
  {
    auto f = fs_.Open("/d/tmp", OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(B("v")).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.Rename("/d/tmp", "/d/final").ok());
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  EXPECT_EQ(*fs_.Exists("/d/final"), false);
  EXPECT_EQ(ReadPath(&fs_, "/d/tmp"), "v");
  ASSERT_TRUE(fs_.Rename("/d/tmp", "/d/final").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  EXPECT_EQ(ReadPath(&fs_, "/d/final"), "v");
}

TEST_F(FaultInjectionTest, FailsTheNthCallOnceAndCounts) {
  auto f = fs_.Open("/d/a", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  fs_.FailAfter(FaultInjectionFileSystem::Op::kAppend, 2);
  EXPECT_TRUE((*f)->Append(B("1")).ok());
  absl::Status st = (*f)->Append(B("2"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE((*f)->Append(B("3")).ok());
  EXPECT_EQ(ReadAll(f->get()), "13");  // the failed append wrote nothing
  fs_.FailAfter(FaultInjectionFileSystem::Op::kSync, 1);
  EXPECT_FALSE((*f)->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  EXPECT_EQ(ReadPath(&fs_, "/d/a"), "");  // the failed sync made nothing durable
  EXPECT_EQ(fs_.Count(FaultInjectionFileSystem::Op::kAppend), 3u);
  EXPECT_EQ(fs_.Count(FaultInjectionFileSystem::Op::kSync), 1u);
  fs_.FailAfter(FaultInjectionFileSystem::Op::kSyncDir, 1);
  fs_.ClearFailures();
  EXPECT_TRUE(fs_.SyncDir("/d").ok());
}

TEST(MemFileSystemTest, SmallDiskFillsUpAndFreesOnTruncateAndRemove) {
  auto fs = NewMemFileSystem(/*capacity=*/10);
  EXPECT_EQ(*fs->FreeSpace("/"), 10u);
  auto f = fs->Open("/a", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(B("123456")).ok());
  EXPECT_EQ(*fs->FreeSpace("/a"), 4u);
  // A full disk: the prefix that fits lands, the append fails as ENOSPC does.
  absl::Status st = (*f)->Append(B("789abc"));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(*(*f)->Size(), 10u);
  EXPECT_EQ(*fs->FreeSpace("/"), 0u);
  ASSERT_TRUE((*f)->Truncate(6).ok());
  EXPECT_EQ(*fs->FreeSpace("/"), 4u);
  f->reset();
  ASSERT_TRUE(fs->Remove("/a").ok());
  EXPECT_EQ(*fs->FreeSpace("/"), 10u);
}

TEST_F(FaultInjectionTest, SimulatedFreeSpaceRunsOutAndComesBack) {
  fs_.SimulateFreeSpace(8);
  EXPECT_EQ(*fs_.FreeSpace("/d"), 8u);
  auto f = fs_.Open("/d/a", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(B("12345")).ok());
  EXPECT_EQ(*fs_.FreeSpace("/d"), 3u);
  absl::Status st = (*f)->Append(B("67890"));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(ReadPath(&fs_, "/d/a"), "12345678");  // the prefix that fitted
  EXPECT_EQ(*fs_.FreeSpace("/d"), 0u);
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ(*fs_.FreeSpace("/d"), 3u);
  ASSERT_TRUE(fs_.Remove("/d/a").ok());
  EXPECT_EQ(*fs_.FreeSpace("/d"), 8u);
  fs_.SimulateFreeSpace(std::nullopt);
  EXPECT_EQ(*fs_.FreeSpace("/d"), *base_->FreeSpace("/d"));
}

}  // namespace
}  // namespace cairn::env
