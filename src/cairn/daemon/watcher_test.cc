#include "cairn/daemon/watcher.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cairn/daemon/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Polls `done` every 5 ms until it is true or `timeout` passes.
template <typename Fn>
bool WaitFor(Fn done, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// Records what a Watcher reports.
class Recorder {
 public:
  WatcherOptions Options(const std::string& root, std::vector<std::string> excludes = {}) {
    WatcherOptions o;
    o.root = root;
    o.excludes = std::move(excludes);
    o.on_change = [this](const std::string& p) {
      std::lock_guard<std::mutex> lock(mu_);
      changes_.insert(p);
    };
    o.on_overflow = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++overflows_;
    };
    o.on_error = [this](const std::string& m) {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back(m);
    };
    o.retry_interval = 20ms;
    return o;
  }
  bool Saw(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_.count(path) > 0;
  }
  bool SawUnder(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& p : changes_) {
      if (p == dir || p.rfind(dir + "/", 0) == 0) return true;
    }
    return false;
  }
  int overflows() {
    std::lock_guard<std::mutex> lock(mu_);
    return overflows_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  std::string Dump() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const std::string& p : changes_) out += p + "\n";
    return out;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    changes_.clear();
  }

 private:
  std::mutex mu_;
  std::set<std::string> changes_;
  int overflows_ = 0;
  std::vector<std::string> errors_;
};

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/tree";
    fs::create_directories(root_ + "/sub");
    WriteFile(root_ + "/sub/old.txt", "old");
  }
  std::unique_ptr<Watcher> Start(std::vector<std::string> excludes = {}) {
    auto w = Watcher::Start(rec_.Options(root_, std::move(excludes)));
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }

  testing::TempDir tmp_;
  std::string root_;
  Recorder rec_;
};

TEST_F(WatcherTest, ReportsCreateModifyRenameAndDelete) {
  auto w = Start();
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->watching_root());
  EXPECT_EQ(w->watch_count(), 2u);  // tree and tree/sub

  WriteFile(root_ + "/new.txt", "x");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/new.txt"); })) << rec_.Dump();

  rec_.Clear();
  {
    std::ofstream f(root_ + "/sub/old.txt", std::ios::app);
    f << "more";
  }
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/sub/old.txt"); })) << rec_.Dump();

  rec_.Clear();
  fs::rename(root_ + "/sub/old.txt", root_ + "/sub/renamed.txt");
  EXPECT_TRUE(WaitFor([&] {
    return rec_.Saw(root_ + "/sub/old.txt") && rec_.Saw(root_ + "/sub/renamed.txt");
  })) << rec_.Dump();

  rec_.Clear();
  fs::remove(root_ + "/new.txt");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/new.txt"); })) << rec_.Dump();
  EXPECT_EQ(rec_.overflows(), 0);
  EXPECT_THAT(rec_.errors(), ::testing::IsEmpty());
}

TEST_F(WatcherTest, NewDirectoriesAreWatchedIncludingWhatWasMadeInsideFirst) {
  auto w = Start();
  ASSERT_NE(w, nullptr);
  // mkdir -p a/b/c and a file inside at once: the watcher learns of "a" after b and c exist.
  fs::create_directories(root_ + "/a/b/c");
  WriteFile(root_ + "/a/b/c/early.txt", "1");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/a/b/c/early.txt"); })) << rec_.Dump();
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 5u; })) << w->watch_count();
  // And later changes deep inside are seen through the new watches.
  rec_.Clear();
  WriteFile(root_ + "/a/b/c/late.txt", "2");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/a/b/c/late.txt"); })) << rec_.Dump();
}

TEST_F(WatcherTest, DirectoriesMovedAndDeleted) {
  fs::create_directories(root_ + "/d/e");
  auto w = Start();
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->watch_count(), 4u);  // tree, sub, d, d/e
  // A directory renamed inside the tree: its watches follow the new name.
  fs::rename(root_ + "/d", root_ + "/moved");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/moved"); })) << rec_.Dump();
  rec_.Clear();
  WriteFile(root_ + "/moved/e/f.txt", "x");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/moved/e/f.txt"); })) << rec_.Dump();
  EXPECT_FALSE(rec_.SawUnder(root_ + "/d"));
  // Moved out of the tree: no longer watched (nor reported).
  fs::rename(root_ + "/moved", tmp_.path() + "/outside");
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 2u; })) << w->watch_count();
  // Deleted: the watches go away (IN_IGNORED).
  fs::create_directories(root_ + "/gone/deeper");
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 4u; })) << w->watch_count();
  fs::remove_all(root_ + "/gone");
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 2u; })) << w->watch_count();
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/gone"); })) << rec_.Dump();
  rec_.Clear();
  WriteFile(tmp_.path() + "/outside/e/g.txt", "y");
  WriteFile(root_ + "/sentinel", "z");  // events arrive in order: after this one, none is due
  ASSERT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/sentinel"); })) << rec_.Dump();
  EXPECT_FALSE(rec_.SawUnder(tmp_.path() + "/outside")) << rec_.Dump();
  EXPECT_FALSE(rec_.SawUnder(root_ + "/moved")) << rec_.Dump();
}

TEST_F(WatcherTest, ExcludedNamesAreNeitherWatchedNorReported) {
  fs::create_directories(root_ + "/cache/deep");
  auto w = Start({"cache", "*.tmp"});
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->watch_count(), 2u);  // tree and sub; not cache
  WriteFile(root_ + "/cache/deep/x", "x");
  WriteFile(root_ + "/sub/scratch.tmp", "x");
  fs::create_directories(root_ + "/sub/cache/new");
  WriteFile(root_ + "/sub/kept.txt", "x");  // sentinel
  ASSERT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/sub/kept.txt"); })) << rec_.Dump();
  EXPECT_EQ(rec_.Dump(), root_ + "/sub/kept.txt\n");
  EXPECT_EQ(w->watch_count(), 2u);
}

TEST_F(WatcherTest, OverflowIsReportedAndTheTreeRewalked) {
  auto w = Start();
  ASSERT_NE(w, nullptr);
  w->SimulateOverflowForTesting();
  EXPECT_TRUE(WaitFor([&] { return rec_.overflows() == 1; }));
  // Still watching afterwards, new directories included.
  fs::create_directories(root_ + "/after/x");
  WriteFile(root_ + "/after/x/f", "1");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/after/x/f"); })) << rec_.Dump();
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 4u; }));
}

// A real IN_Q_OVERFLOW: the change callback holds the watcher thread (it runs there) while more
// events than fs.inotify.max_queued_events are made; the kernel drops the rest and queues an
// overflow, which must reach on_overflow once the thread reads again.
TEST_F(WatcherTest, ARealKernelQueueOverflowIsReported) {
  uint64_t max_queued = 0;
  {
    std::ifstream f("/proc/sys/fs/inotify/max_queued_events");
    f >> max_queued;
  }
  if (max_queued == 0 || max_queued > 200000) {
    GTEST_SKIP() << "fs.inotify.max_queued_events is " << max_queued
                 << ": too many events to make here";
  }
  std::mutex mu;
  std::condition_variable cv;
  bool held = false, release = false;
  WatcherOptions o = rec_.Options(root_);
  auto record = o.on_change;
  o.on_change = [&](const std::string& p) {
    std::unique_lock<std::mutex> lock(mu);
    if (!held) {
      held = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    }
    lock.unlock();
    record(p);
  };
  auto w = Watcher::Start(o);
  ASSERT_TRUE(w.ok()) << w.status();
  WriteFile(root_ + "/first", "1");
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return held; }));
  }
  // In the watched root (a directory made now would not be watched yet): one IN_CREATE each,
  // plus IN_CLOSE_WRITE, well over the queue's limit.
  for (uint64_t i = 0; i < max_queued + 1000; ++i) {
    WriteFile(root_ + "/f" + std::to_string(i), "");
  }
  fs::create_directories(root_ + "/many");
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(WaitFor([&] { return rec_.overflows() >= 1; })) << "no overflow reported";
  // The tree is walked again after on_overflow (a full backup follows it anyway): the
  // directory made while events were dropped gets its watch, and what happens in it is seen.
  EXPECT_TRUE(WaitFor([&] { return (*w)->watch_count() == 3u; })) << (*w)->watch_count();
  WriteFile(root_ + "/many/after", "1");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/many/after"); })) << rec_.Dump().size();
  (*w)->Stop();
}

TEST_F(WatcherTest, AMissingRootIsWatchedOnceItAppears) {
  root_ = tmp_.path() + "/later";
  auto w = Start();
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->watching_root());
  fs::create_directories(root_ + "/in");
  EXPECT_TRUE(WaitFor([&] { return w->watching_root() && rec_.Saw(root_); })) << rec_.Dump();
  EXPECT_TRUE(WaitFor([&] { return w->watch_count() == 2u; }));
  WriteFile(root_ + "/in/f", "1");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_ + "/in/f"); })) << rec_.Dump();
  // Deleted again: reported, and looked for again.
  rec_.Clear();
  fs::remove_all(root_);
  EXPECT_TRUE(WaitFor([&] { return !w->watching_root() && rec_.Saw(root_); })) << rec_.Dump();
}

TEST_F(WatcherTest, AFileRoot) {
  root_ = root_ + "/sub/old.txt";
  auto w = Start();
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->watching_root());
  WriteFile(root_, "changed");
  EXPECT_TRUE(WaitFor([&] { return rec_.Saw(root_); })) << rec_.Dump();
}

TEST_F(WatcherTest, StopIsPromptAndIdempotent) {
  auto w = Start();
  ASSERT_NE(w, nullptr);
  w->Stop();
  w->Stop();
  WriteFile(root_ + "/after-stop", "x");
  EXPECT_FALSE(rec_.Saw(root_ + "/after-stop"));
}

TEST(WatcherStartTest, RejectsRelativeRootsAndMissingCallbacks) {
  WatcherOptions o;
  o.root = "relative/path";
  o.on_change = [](const std::string&) {};
  o.on_overflow = [] {};
  EXPECT_TRUE(absl::IsInvalidArgument(Watcher::Start(o).status()));
  o.root = "/tmp";
  o.on_overflow = nullptr;
  EXPECT_TRUE(absl::IsInvalidArgument(Watcher::Start(o).status()));
}

}  // namespace
}  // namespace cairn::daemon
