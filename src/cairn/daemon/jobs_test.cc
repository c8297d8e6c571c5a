#include "cairn/daemon/jobs.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/daemon/api_jobs.h"
#include "cairn/engine/context.h"
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

// GET /v1/events "job" events: running at the start, done or failed (with the error) at the end.
TEST(JobsTest, EventsAtStartAndEnd) {
  std::mutex mu;
  std::vector<json> events;
  JobManager jobs(100, [&](const json& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  });
  auto ok = jobs.Start(JobKind::kCheck, false, Immediate(json{{"n", 1}}));
  ASSERT_TRUE(ok.ok());
  ASSERT_TRUE(jobs.Wait(*ok, 30s));
  auto bad = jobs.Start(JobKind::kRepair, false, Immediate(absl::UnavailableError("no peers")));
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(jobs.Wait(*bad, 30s));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0], (json{{"id", *ok}, {"kind", "check"}, {"state", "running"}}));
  EXPECT_EQ(events[1], (json{{"id", *ok}, {"kind", "check"}, {"state", "done"}}));
  EXPECT_EQ(events[2], (json{{"id", *bad}, {"kind", "repair"}, {"state", "running"}}));
  EXPECT_EQ(events[3]["state"], "failed");
  EXPECT_EQ(events[3]["error"]["code"], "UNAVAILABLE");
  EXPECT_EQ(events[3]["error"]["message"], "no peers");
}

TEST(JobsTest, ListHasEveryJobNewestFirst) {
  JobManager jobs;
  EXPECT_EQ(jobs.List(), json::array());
  std::atomic<bool> started{false}, release{false};
  auto first = jobs.Start(JobKind::kBackup, true, Immediate(json{{"n", 1}}));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(jobs.Wait(*first, 30s));
  auto second = jobs.Start(JobKind::kRestore, false, UntilCancelled(&started, &release));
  ASSERT_TRUE(second.ok());
  json list = jobs.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["id"], *second);
  EXPECT_EQ(list[0]["state"], "running");
  EXPECT_EQ(list[1]["id"], *first);
  EXPECT_EQ(list[1]["state"], "done");
  EXPECT_EQ(list[1]["result"]["n"], 1);
  EXPECT_GE(list[0]["started_ns"].get<int64_t>(), list[1]["started_ns"].get<int64_t>());
  EXPECT_GT(list[1]["started_ns"].get<int64_t>(), 1'600'000'000'000'000'000);
  release = true;
  ASSERT_TRUE(jobs.Wait(*second, 30s));
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

// GET /v1/jobs/ID?wait_ms=N, the long poll the CLI waits for jobs with.
Reply GetJobRoute(JobsApi& api, const std::string& id, const std::string& wait_ms) {
  for (const ApiRoute& route : api.Routes()) {
    if (std::string(route.method) != "GET" || std::string(route.pattern) == "/v1/jobs") continue;
    if (std::string(route.pattern).rfind("/v1/jobs/", 0) != 0) continue;
    ApiRequest req;
    req.method = "GET";
    req.path = "/v1/jobs/" + id;
    req.matches = {req.path, id};
    if (!wait_ms.empty()) req.params.emplace("wait_ms", wait_ms);
    ApiResponse res;
    route.fn(req, res);
    return {res.status, json::parse(res.body)};
  }
  ADD_FAILURE() << "no GET /v1/jobs/ID route";
  return {0, json()};
}

TEST(JobsTest, LongPollAnswersWhenTheJobEndsOrTheWaitPasses) {
  JobManager jobs;
  engine::EngineContext engine;
  ApiContext ctx;
  ctx.engine = &engine;
  ctx.jobs = &jobs;
  JobsApi api(ctx);
  std::atomic<bool> started{false}, release{false};
  auto id = jobs.Start(JobKind::kBackup, true, UntilCancelled(&started, &release));
  ASSERT_TRUE(id.ok());

  // Still running: the answer comes after the wait, not before.
  const auto t0 = std::chrono::steady_clock::now();
  auto [code, body] = GetJobRoute(api, *id, "50");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_EQ(code, 200);
  EXPECT_EQ(body["state"], "running");

  // Released while the request waits (or just before): the answer is the finished job.
  Reply answer;
  std::thread poll([&] { answer = GetJobRoute(api, *id, "1000"); });
  release = true;
  poll.join();
  EXPECT_EQ(answer.first, 200);
  EXPECT_EQ(answer.second["state"], "done");
  EXPECT_EQ(answer.second["result"]["ok"], true);

  // No wait, a zero wait, an unknown id: answered at once as before.
  EXPECT_EQ(GetJobRoute(api, *id, "").second["state"], "done");
  EXPECT_EQ(GetJobRoute(api, *id, "0").second["state"], "done");
  EXPECT_EQ(GetJobRoute(api, "nope", "1000").first, 404);
  // Not a whole number of milliseconds: 400, and the peer keeps answering.
  for (const char* bad : {"abc", "-5", "1.5", "99999999999999999999"}) {
    auto [bad_code, bad_body] = GetJobRoute(api, *id, bad);
    EXPECT_EQ(bad_code, 400) << bad;
    EXPECT_EQ(bad_body["error"]["code"], "INVALID_ARGUMENT") << bad;
  }
}

}  // namespace
}  // namespace cairn::daemon
