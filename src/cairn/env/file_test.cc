#include "cairn/env/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "cairn/env/clock.h"

namespace cairn::env {
namespace {

TEST(FileTest, AtomicWriteReplacesAndLeavesNoTemp) {
  auto dir = std::filesystem::temp_directory_path() / ("cairn-env-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(MakeDirs(dir.string()).ok());
  std::string path = (dir / "f").string();
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes("first"), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes("second"), 0600).ok());
  EXPECT_EQ(*ReadFileString(path), "second");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // the temp file was renamed, not left behind
  EXPECT_EQ(ReadFile((dir / "missing").string()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomic((dir / "no/such/dir").string(), AsBytes("x")).code(),
            absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(ClockTest, FakeClockAdvances) {
  FakeClock clock(1000);
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(clock.NowNanos(), 1000 + 2'000'000'000);
}

}  // namespace
}  // namespace cairn::env
