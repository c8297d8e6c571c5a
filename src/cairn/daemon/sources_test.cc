#include "cairn/daemon/sources.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/daemon/daemon.h"
#include "cairn/daemon/peer_dir.h"
#include "cairn/daemon/test_util.h"
#include "cairn/env/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

template <typename Fn>
bool WaitFor(Fn done, std::chrono::milliseconds timeout = 60s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// A job manager that runs one backup at a time and finishes them when told to.
class FakeJobs {
 public:
  SourceHooks Hooks() {
    SourceHooks h;
    h.start_backup = [this](const api::BackupRequest& r) -> absl::StatusOr<std::string> {
      std::lock_guard<std::mutex> lock(mu_);
      if (external_ || !running_.empty()) {
        return absl::FailedPreconditionError("a backup is already running");
      }
      if (!start_error_.ok()) return start_error_;
      std::string id = "job" + std::to_string(++next_);
      running_[id] = r;
      started_.push_back(r);
      return id;
    };
    h.job_result = [this](const std::string& id) -> std::optional<absl::StatusOr<json>> {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = finished_.find(id);
      if (it == finished_.end()) return std::nullopt;
      return it->second;
    };
    return h;
  }
  // Finishes the running backup with `result`.
  void Finish(absl::StatusOr<json> result = json{{"snapshot_id", "ab12"}, {"short_id", "ab12"}}) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(running_.size(), 1u);
    finished_.emplace(running_.begin()->first, std::move(result));
    running_.clear();
  }
  std::vector<std::string> StartedPaths() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& r : started_) out.push_back(r.paths.at(0));
    return out;
  }
  std::vector<api::BackupRequest> Started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  bool Running() {
    std::lock_guard<std::mutex> lock(mu_);
    return !running_.empty();
  }
  void SetExternal(bool busy) {
    std::lock_guard<std::mutex> lock(mu_);
    external_ = busy;
  }
  void SetStartError(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    start_error_ = std::move(s);
  }

 private:
  std::mutex mu_;
  int next_ = 0;
  bool external_ = false;  // a backup that is not a source's (cairn backup) runs
  absl::Status start_error_;
  std::map<std::string, api::BackupRequest> running_;
  std::map<std::string, absl::StatusOr<json>> finished_;
  std::vector<api::BackupRequest> started_;
};

constexpr auto kQuiet = 10s;

SourceConfig Source(const std::string& path) {
  SourceConfig s;
  s.path = path;
  return s;
}

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() {
    SourceSchedulerOptions o;
    o.clock = &clock_;
    o.watch.quiet_period = kQuiet;
    o.watch.rescan_interval = 0ms;
    o.use_inotify = false;
    o.background = false;
    scheduler_ = std::make_unique<SourceScheduler>(o, jobs_.Hooks());
  }
  // Adds the sources and lets their first backups run and finish.
  void StartAndSettle(const std::vector<SourceConfig>& sources) {
    scheduler_->Start(sources);
    clock_.Advance(kQuiet);
    for (size_t i = 0; i < sources.size(); ++i) {
      scheduler_->Tick();
      ASSERT_TRUE(jobs_.Running());
      jobs_.Finish();
    }
    scheduler_->Tick();
    ASSERT_FALSE(jobs_.Running());
  }

  env::FakeClock clock_;
  FakeJobs jobs_;
  std::unique_ptr<SourceScheduler> scheduler_;
};

// A source's "keep" is the policy's one JSON encoding (api::ToJson), as a request sends it.
TEST(SourceInfoOfTest, KeepIsThePolicyEncoding) {
  engine::RetentionPolicy p;
  p.keep_last = 3;
  p.keep_within = engine::RetentionDuration{.days = 2};
  api::Json j = api::ToJson(p);
  j["path"] = "/data";
  auto added = api::Decode<api::SourceRequest>(j);
  ASSERT_TRUE(added.ok()) << added.status();
  SourceConfig s = SourceFromRequest(*added);
  EXPECT_EQ(s.keep, p);
  EXPECT_EQ(api::ToJson(SourceInfoOf(s))["keep"], api::ToJson(p));
}

TEST_F(SchedulerTest, FirstBackupOneQuietPeriodAfterAddWithTheSourceSettings) {
  SourceConfig s = Source("/data/docs");
  s.ec = "4+2";
  s.excludes = {"*.tmp"};
  s.keep.keep_last = 3;
  scheduler_->Start({s});
  scheduler_->Tick();
  EXPECT_FALSE(jobs_.Running());
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 1u);
  api::BackupRequest r = jobs_.Started()[0];
  EXPECT_EQ(r.paths, std::vector<std::string>{"/data/docs"});
  EXPECT_FALSE(r.copies.has_value());
  ASSERT_TRUE(r.ec.has_value());
  EXPECT_EQ(r.ec->ToString(), "4+2");
  EXPECT_EQ(r.excludes, std::vector<std::string>{"*.tmp"});
  ASSERT_TRUE(r.retention.has_value());
  EXPECT_EQ(r.retention->keep_last, 3);

  // Without a keep policy of its own, [retention] applies (no per-request policy).
  s = Source("/data/photos");
  s.copies = 3;
  EXPECT_EQ(SourceBackupRequest(s).copies, 3u);
  EXPECT_FALSE(SourceBackupRequest(s).retention.has_value());
}

TEST_F(SchedulerTest, ChangesAreDebounced) {
  StartAndSettle({Source("/a")});
  scheduler_->NotifyChange("/a");
  clock_.Advance(kQuiet / 2);
  scheduler_->NotifyChange("/a");
  clock_.Advance(kQuiet / 2);
  scheduler_->Tick();
  EXPECT_FALSE(jobs_.Running());
  clock_.Advance(kQuiet / 2);
  scheduler_->Tick();
  EXPECT_TRUE(jobs_.Running());
  EXPECT_THAT(jobs_.StartedPaths(), ElementsAre("/a", "/a"));
}

TEST_F(SchedulerTest, AChangeDuringABackupMakesItDueAgainAfterwardsNeverOverlapping) {
  StartAndSettle({Source("/a")});
  scheduler_->NotifyChange("/a");
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 2u);
  scheduler_->NotifyChange("/a");  // while it runs
  clock_.Advance(kQuiet * 10);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 2u);  // never a second one at the same time
  jobs_.Finish();
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 3u);  // due again
  jobs_.Finish();
  clock_.Advance(kQuiet * 10);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 3u);  // nothing changed since
}

TEST_F(SchedulerTest, OverflowBacksUpAtOnce) {
  StartAndSettle({Source("/a")});
  scheduler_->NotifyOverflow("/a");
  scheduler_->Tick();  // no time passes
  EXPECT_TRUE(jobs_.Running());
  EXPECT_EQ(jobs_.Started().size(), 2u);
}

TEST_F(SchedulerTest, OneBackupAtATimeAcrossSourcesAndWithOtherBackups) {
  StartAndSettle({Source("/a"), Source("/b")});
  jobs_.SetExternal(true);  // `cairn backup` runs
  scheduler_->NotifyChange("/a");
  scheduler_->NotifyChange("/b");
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 2u);  // only the first two
  jobs_.SetExternal(false);
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 3u);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 3u);  // the other waits for it
  jobs_.Finish();
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 4u);
  std::vector<std::string> paths = jobs_.StartedPaths();
  EXPECT_NE(paths[2], paths[3]);  // both, each once
}

TEST_F(SchedulerTest, ScheduleAndRescanRunWithoutChanges) {
  SourceSchedulerOptions o;
  o.clock = &clock_;
  o.watch.quiet_period = kQuiet;
  o.watch.rescan_interval = 24h;
  o.use_inotify = false;
  o.background = false;
  scheduler_ = std::make_unique<SourceScheduler>(o, jobs_.Hooks());
  SourceConfig hourly = Source("/hourly");
  hourly.schedule = 1h;
  StartAndSettle({hourly, Source("/daily")});
  clock_.Advance(1h);
  scheduler_->Tick();
  EXPECT_THAT(jobs_.StartedPaths().back(), "/hourly");
  jobs_.Finish();
  // The next scheduled backup is an hour after this one started.
  clock_.Advance(59min);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 3u);
  clock_.Advance(1min);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 4u);
  jobs_.Finish();
  // The rescan interval counts from each source's last backup start.
  clock_.Advance(24h);
  for (int i = 0; i < 2; ++i) {
    scheduler_->Tick();
    if (jobs_.Running()) jobs_.Finish();
  }
  std::vector<std::string> paths = jobs_.StartedPaths();
  ASSERT_EQ(paths.size(), 6u);
  EXPECT_THAT(std::vector<std::string>(paths.begin() + 4, paths.end()),
              ::testing::UnorderedElementsAre("/hourly", "/daily"));
}

TEST_F(SchedulerTest, AFailedBackupIsRetriedWithBackOff) {
  StartAndSettle({Source("/a")});
  scheduler_->NotifyChange("/a");
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  jobs_.Finish(absl::UnavailableError("no peers"));
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 2u);
  json status = scheduler_->StatusJson();
  EXPECT_EQ(status[0]["last_backup"]["state"], "failed");
  clock_.Advance(kQuiet);  // first retry: one quiet period later
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 3u);
  jobs_.Finish(absl::UnavailableError("no peers"));
  scheduler_->Tick();
  clock_.Advance(kQuiet);  // then two
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 3u);
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  ASSERT_EQ(jobs_.Started().size(), 4u);
  jobs_.Finish();
  scheduler_->Tick();
  status = scheduler_->StatusJson();
  EXPECT_EQ(status[0]["last_backup"]["state"], "done");
  EXPECT_EQ(status[0]["last_backup"]["short_id"], "ab12");
  EXPECT_EQ(status[0]["backups"], 4);

  // A backup that cannot even start (say the path is invalid) is retried the same way.
  jobs_.SetStartError(absl::InvalidArgumentError("bad"));
  scheduler_->NotifyChange("/a");
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  EXPECT_EQ(scheduler_->StatusJson()[0]["last_backup"]["state"], "failed");
  jobs_.SetStartError(absl::OkStatus());
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  EXPECT_EQ(jobs_.Started().size(), 5u);
}

TEST_F(SchedulerTest, AddRemoveAndStatus) {
  StartAndSettle({Source("/a")});
  EXPECT_TRUE(absl::IsAlreadyExists(scheduler_->Add(Source("/a"))));
  SourceConfig b = Source("/b");
  b.schedule = 2h;
  b.watch = false;
  ASSERT_TRUE(scheduler_->Add(b).ok());
  json status = scheduler_->StatusJson();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[1]["path"], "/b");
  EXPECT_EQ(status[1]["schedule"], "2h");
  EXPECT_EQ(status[1]["watch"], false);
  EXPECT_EQ(status[1]["watching"], false);
  EXPECT_EQ(status[1]["copies"], nullptr);
  EXPECT_EQ(status[1]["last_backup"], nullptr);
  EXPECT_EQ(status[0]["last_backup"]["state"], "done");

  ASSERT_TRUE(scheduler_->Remove("/a").ok());
  EXPECT_TRUE(absl::IsNotFound(scheduler_->Remove("/a")));
  scheduler_->NotifyChange("/a");  // ignored
  scheduler_->NotifyOverflow("/a");
  clock_.Advance(kQuiet);
  scheduler_->Tick();
  EXPECT_THAT(jobs_.StartedPaths(), ElementsAre("/a", "/b"));  // /b's first backup only
}

// The real thing: inotify -> debouncer -> a backup, on the background thread.
TEST(SchedulerWatchTest, AFileWrittenInAWatchedTreeStartsABackup) {
  testing::TempDir tmp;
  std::string root = tmp.File("tree");
  fs::create_directories(root + "/sub");
  FakeJobs jobs;
  SourceSchedulerOptions o;
  o.watch.quiet_period = 50ms;
  o.tick = 10ms;
  SourceScheduler scheduler(o, jobs.Hooks());
  SourceConfig s = Source(root);
  s.excludes = {"*.tmp"};
  scheduler.Start({s});
  EXPECT_TRUE(scheduler.Watching(root));
  ASSERT_TRUE(WaitFor([&] { return jobs.Running(); }));  // the first backup
  jobs.Finish();
  fs::create_directories(root + "/sub/new/deeper");
  WriteFile(root + "/sub/new/deeper/f.txt", "x");
  ASSERT_TRUE(WaitFor([&] { return jobs.Started().size() == 2u; }));
  jobs.Finish();
  // Later changes too; the watchers stop with the scheduler.
  WriteFile(root + "/sub/x.tmp", "x");
  WriteFile(root + "/sub/new/deeper/f.txt", "y");
  ASSERT_TRUE(WaitFor([&] { return jobs.Started().size() == 3u; }));
  jobs.Finish();
  scheduler.Stop();
  EXPECT_EQ(scheduler.StatusJson(), json::array());
}

// --- the daemon's sources --------------------------------------------------------------------

Config PeerConfig(const std::string& dir, PeerId id, std::vector<std::string> seeds = {}) {
  Config c;
  c.dir = dir;
  c.peer_id = id;
  c.host_id = "host-" + std::to_string(id);
  c.quota = 1ull << 30;
  c.seeds = std::move(seeds);
  c.ping_interval = 100ms;
  c.chunker.min_size = 16 * 1024;
  c.chunker.avg_size = 64 * 1024;
  c.chunker.max_size = 256 * 1024;
  c.discovery.multicast = false;
  c.repair_enabled = false;
  c.scrub_enabled = false;
  return c;
}

class DaemonSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }
};

// The POST /v1/sources request that asks for `s`.
api::SourceRequest AsRequest(const SourceConfig& s) {
  return api::SourceRequest{.path = s.path,
                            .copies = s.copies,
                            .ec = s.ec,
                            .excludes = s.excludes,
                            .schedule = s.schedule,
                            .watch = s.watch,
                            .keep = s.keep};
}

TEST_F(DaemonSourcesTest, AddListRemoveUpdateCairnToml) {
  testing::TempDir tmp;
  std::string dir = tmp.File("peer");
  ASSERT_TRUE(InitPeerDir(PeerConfig(dir, 1)).ok());
  std::string src = tmp.File("src");
  fs::create_directories(src);
  auto d = Daemon::Start(dir);
  ASSERT_TRUE(d.ok()) << d.status();
  Daemon& daemon = **d;
  EXPECT_EQ(*daemon.sources_api().GetSources(), json::array());

  SourceConfig s = Source(src + "/");  // normalized
  s.copies = 1;
  s.excludes = {"*.tmp"};
  s.schedule = 1h;
  s.keep.keep_daily = 7;
  auto added = daemon.sources_api().AddSource(AsRequest(s));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ((*added)["path"], src);
  EXPECT_TRUE(absl::IsAlreadyExists(daemon.sources_api().AddSource(AsRequest(s)).status()));
  EXPECT_TRUE(absl::IsNotFound(
      daemon.sources_api().AddSource(AsRequest(Source(tmp.File("missing")))).status()));
  SourceConfig both = Source(tmp.path());
  both.copies = 2;
  both.ec = "2+1";
  EXPECT_TRUE(absl::IsInvalidArgument(daemon.sources_api().AddSource(AsRequest(both)).status()));

  auto config = LoadConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->sources.size(), 1u);
  EXPECT_EQ(config->sources[0].path, src);
  EXPECT_EQ(config->sources[0].copies, 1u);
  EXPECT_EQ(config->sources[0].schedule, 1h);
  EXPECT_EQ(config->sources[0].keep.keep_daily, 7);
  // The rest of the file (and its comments) is as it was.
  std::string text = *env::ReadFileString(ConfigPath(dir), 1 << 20);
  EXPECT_THAT(text, ::testing::HasSubstr("# This peer's permanent id"));

  json list = *daemon.sources_api().GetSources();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["path"], src);
  EXPECT_EQ(list[0]["watching"], true);
  EXPECT_EQ(list[0]["keep"]["keep_daily"], 7);

  // Still there after a restart.
  daemon.Shutdown();
  d = Daemon::Start(dir);
  ASSERT_TRUE(d.ok()) << d.status();
  list = *(*d)->sources_api().GetSources();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["path"], src);

  ASSERT_TRUE((*d)->sources_api().RemoveSource(src).ok());
  EXPECT_TRUE(absl::IsNotFound((*d)->sources_api().RemoveSource(src)));
  EXPECT_EQ(*(*d)->sources_api().GetSources(), json::array());
  EXPECT_THAT(LoadConfig(dir)->sources, IsEmpty());
  (*d)->Shutdown();
}

// Three peers; peer 1 has a source with a quiet period of 100 ms and keep_last = 2: files
// written in it end up in snapshots by themselves, and only the two newest of them are kept.
TEST_F(DaemonSourcesTest, ChangesInASourceAreBackedUpAndItsKeepPolicyApplied) {
  testing::TempDir tmp;
  std::string src = tmp.File("src");
  fs::create_directories(src);
  WriteFile(src + "/first.txt", "1");
  std::vector<std::unique_ptr<Daemon>> peers;
  std::string first_address;
  std::optional<codec::Key> cluster_key;
  for (PeerId id = 1; id <= 3; ++id) {
    std::string dir = tmp.File("peer" + std::to_string(id));
    std::vector<std::string> seeds;
    if (!first_address.empty()) seeds.push_back(first_address);
    Config config = PeerConfig(dir, id, seeds);
    if (id == 1) {
      config.watch.quiet_period = 100ms;
      SourceConfig s = Source(src);
      s.keep.keep_last = 2;
      config.sources = {s};
    }
    ASSERT_TRUE(InitPeerDir(config, cluster_key).ok());
    if (!cluster_key) cluster_key = *LoadClusterKey(dir);
    auto d = Daemon::Start(dir);
    ASSERT_TRUE(d.ok()) << d.status();
    if (first_address.empty()) first_address = (*d)->listen_address();
    peers.push_back(*std::move(d));
  }
  Daemon& home = *peers[0];
  ASSERT_EQ(home.config().sources.size(), 1u);
  // Has a snapshot of `src` that lists `name` (relative to src).
  auto snapshot_has = [&](const std::string& name) {
    auto listing = home.snapshots_api().List("latest", "", /*recursive=*/true);
    if (!listing.ok()) return false;
    for (const json& e : *listing) {
      if (*api::GetPathField(e, "path") == "src/" + name) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return snapshot_has("first.txt"); }))
      << home.sources_api().GetSources()->dump();
  for (int i = 0; i < 3; ++i) {
    std::string name = "file" + std::to_string(i) + ".txt";
    WriteFile(src + "/" + name, name);
    ASSERT_TRUE(WaitFor([&] { return snapshot_has(name); }))
        << home.sources_api().GetSources()->dump();
  }
  // keep_last = 2 for this source's snapshots (applied after each of its backups).
  ASSERT_TRUE(WaitFor([&] {
    auto running = home.sources_api().GetSources();
    return running.ok() && (*running)[0]["running_job"].is_null() &&
           home.snapshots_api().GetSnapshots()->size() == 2u;
  })) << home.snapshots_api().GetSnapshots()->dump();
  for (auto& p : peers) p->Shutdown();
}

}  // namespace
}  // namespace cairn::daemon
