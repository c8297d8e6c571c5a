#include "cairn/env/dir_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/env/file.h"

namespace cairn::env {
namespace {

std::string FreshDir(const std::string& name) {
  auto dir =
      std::filesystem::temp_directory_path() / absl::StrCat("cairn-lock-", name, "-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(DirLockTest, SecondLockSaysAlreadyRunningWithThePid) {
  const std::string dir = FreshDir("second");
  absl::StatusOr<DirLock> first = DirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*ReadFileString(DirLock::PathIn(dir)), absl::StrCat(::getpid(), "\n"));

  // flock is per open file description: a second open in this process conflicts like another
  // process would.
  absl::StatusOr<DirLock> second = DirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(absl::StrCat("already running (pid ", ::getpid(), ")")),
            std::string::npos)
      << second.status();
  // The failed attempt did not wipe the holder's pid.
  EXPECT_EQ(*ReadFileString(DirLock::PathIn(dir)), absl::StrCat(::getpid(), "\n"));

  // Released: the next one gets it.
  *first = DirLock();
  EXPECT_EQ(*ReadFileString(DirLock::PathIn(dir)), "");
  absl::StatusOr<DirLock> third = DirLock::Acquire(dir);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE(third->held());
  std::filesystem::remove_all(dir);
}

TEST(DirLockTest, StaleFileOfACrashedHolderDoesNotBlock) {
  const std::string dir = FreshDir("stale");
  const std::string path = DirLock::PathIn(dir);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe calls after fork: lock, write the pid, tell the parent, wait.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) ::_exit(1);
    char buf[24];
    int n = 0;
    for (long p = ::getpid(); p > 0; p /= 10) buf[n++] = static_cast<char>('0' + p % 10);
    for (int i = 0; i < n / 2; ++i) std::swap(buf[i], buf[n - 1 - i]);
    buf[n++] = '\n';
    if (::write(fd, buf, n) != n || ::write(ready[1], "x", 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);

  absl::StatusOr<DirLock> busy = DirLock::Acquire(dir);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.status().message().find(absl::StrCat("already running (pid ", child, ")")),
            std::string::npos)
      << busy.status();

  // The holder dies without cleaning up: its pid stays in the file, the lock goes with it.
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(*ReadFileString(path), absl::StrCat(child, "\n"));
  absl::StatusOr<DirLock> after = DirLock::Acquire(dir);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*ReadFileString(path), absl::StrCat(::getpid(), "\n"));
  std::filesystem::remove_all(dir);
}

TEST(DirLockTest, GarbageInAnUnlockedFileIsReplaced) {
  const std::string dir = FreshDir("garbage");
  ASSERT_TRUE(
      WriteFileAtomic(DirLock::PathIn(dir), AsBytes("not a pid, and longer than one\n")).ok());
  absl::StatusOr<DirLock> lock = DirLock::Acquire(dir);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(*ReadFileString(DirLock::PathIn(dir)), absl::StrCat(::getpid(), "\n"));
  std::filesystem::remove_all(dir);
}

TEST(DirLockTest, MissingDirectoryIsNotFound) {
  absl::StatusOr<DirLock> lock = DirLock::Acquire("/nonexistent/cairn-lock-test");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kNotFound) << lock.status();
}

}  // namespace
}  // namespace cairn::env
