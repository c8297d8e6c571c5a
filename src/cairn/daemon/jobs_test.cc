#include "cairn/daemon/jobs.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

JobFunctions Immediate(absl::StatusOr<json> result) {
  JobFunctions f;
  f.run = [result](const std::atomic<bool>&) { return result; };
  f.progress = [] { return json{{"files_done", 1}}; };
  return f;
}

// A job that runs until cancelled (or released) and reports how it ended.
JobFunctions UntilCancelled(std::atomic<bool>* started, std::atomic<bool>* release) {
  JobFunctions f;
  f.run = [started, release](const std::atomic<bool>& cancel) -> absl::StatusOr<json> {
    *started = true;
    while (!cancel && !*release) std::this_thread::sleep_for(1ms);
    if (cancel) return absl::CancelledError("cancelled");
    return json{{"ok", true}};
  };
  return f;
}

TEST(JobsTest, DoneJobKeepsItsResult) {
  JobManager jobs;
  auto id = jobs.Start(JobKind::kBackup, true, Immediate(json{{"snapshot_id", "ab"}}));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(jobs.Wait(*id, 30s));
  auto j = jobs.Get(*id);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["id"], *id);
  EXPECT_EQ((*j)["kind"], "backup");
  EXPECT_EQ((*j)["state"], "done");
  EXPECT_EQ((*j)["result"]["snapshot_id"], "ab");
  EXPECT_EQ((*j)["progress"]["files_done"], 1);
}

TEST(JobsTest, FailedJobReportsItsError) {
  JobManager jobs;
  auto id = jobs.Start(JobKind::kRestore, false, Immediate(absl::NotFoundError("no such path")));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(jobs.Wait(*id, 30s));
  auto j = jobs.Get(*id);
  EXPECT_EQ((*j)["state"], "failed");
  EXPECT_EQ((*j)["kind"], "restore");
  EXPECT_EQ((*j)["error"]["code"], "NOT_FOUND");
  EXPECT_EQ((*j)["error"]["message"], "no such path");
}

TEST(JobsTest, OneExclusiveJobOfAKindAtATime) {
  JobManager jobs;
  std::atomic<bool> started{false}, release{false};
  auto first = jobs.Start(JobKind::kBackup, true, UntilCancelled(&started, &release));
  ASSERT_TRUE(first.ok());
  auto second = jobs.Start(JobKind::kBackup, true, Immediate(json::object()));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr(*first));
  // Other kinds are not blocked.
  EXPECT_TRUE(jobs.Start(JobKind::kRestore, false, Immediate(json::object())).ok());
  EXPECT_EQ((*jobs.Get(*first))["state"], "running");
  release = true;
  ASSERT_TRUE(jobs.Wait(*first, 30s));
  EXPECT_TRUE(jobs.Start(JobKind::kBackup, true, Immediate(json::object())).ok());
}

TEST(JobsTest, CancelStopsARunningJob) {
  JobManager jobs;
  std::atomic<bool> started{false}, release{false};
  auto id = jobs.Start(JobKind::kBackup, true, UntilCancelled(&started, &release));
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(jobs.Cancel(*id).ok());
  ASSERT_TRUE(jobs.Wait(*id, 30s));
  auto j = jobs.Get(*id);
  EXPECT_EQ((*j)["state"], "failed");
  EXPECT_EQ((*j)["error"]["code"], "CANCELLED");
  EXPECT_TRUE(jobs.Cancel(*id).ok());  // finished: still fine
  EXPECT_EQ(jobs.Cancel("nope").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(jobs.Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(JobsTest, ShutdownCancelsAndRefusesNewJobs) {
  JobManager jobs;
  std::atomic<bool> started{false}, release{false};
  auto id = jobs.Start(JobKind::kRestore, false, UntilCancelled(&started, &release));
  ASSERT_TRUE(id.ok());
  jobs.Shutdown();  // returns only once the job thread has ended
  EXPECT_EQ((*jobs.Get(*id))["state"], "failed");
  EXPECT_EQ(jobs.Start(JobKind::kRestore, false, Immediate(json::object())).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JobsTest, KeepsOnlyTheLastFinishedJobs) {
  JobManager jobs(/*keep_finished=*/3);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto id = jobs.Start(JobKind::kRestore, false, Immediate(json{{"i", i}}));
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(jobs.Wait(*id, 30s));
    ids.push_back(*id);
  }
  // Pruning happens when a job starts: after the 6th start, jobs 0..1 are gone.
  EXPECT_EQ(jobs.Get(ids[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(jobs.Get(ids[5]).ok());
  EXPECT_TRUE(jobs.Get(ids[3]).ok());
}

TEST(JobsTest, AThrowingJobFailsCleanly) {
  JobManager jobs;
  JobFunctions f;
  f.run = [](const std::atomic<bool>&) -> absl::StatusOr<json> {
    throw std::runtime_error("boom");
  };
  auto id = jobs.Start(JobKind::kBackup, true, f);
  ASSERT_TRUE(jobs.Wait(*id, 30s));
  EXPECT_EQ((*jobs.Get(*id))["error"]["code"], "INTERNAL");
}

}  // namespace
}  // namespace cairn::daemon
