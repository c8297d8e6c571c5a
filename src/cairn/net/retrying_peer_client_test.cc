#include "cairn/net/retrying_peer_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/status.h"

namespace cairn::net {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A PeerClient that answers each call with the next scripted status (OK once the script runs
// out) and counts calls.
class ScriptedPeerClient : public PeerClient {
 public:
  explicit ScriptedPeerClient(std::vector<absl::Status> script)
      : script_(script.begin(), script.end()) {}

  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo&,
                                 const std::vector<cluster::PeerInfo>&) override {
    CAIRN_RETURN_IF_ERROR(Next());
    PingReply reply;
    reply.self.id = 42;
    return reply;
  }
  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey&, ByteSpan,
                                            const ports::PutOptions& options) override {
    CAIRN_RETURN_IF_ERROR(Next());
    last_extra_ = options.extra;
    return ports::PutOutcome::kStored;
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey&) override {
    CAIRN_RETURN_IF_ERROR(Next());
    return Bytes{1, 2, 3};
  }
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
    CAIRN_RETURN_IF_ERROR(Next());
    return std::vector<bool>(keys.size(), true);
  }
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
    CAIRN_RETURN_IF_ERROR(Next());
    return keys.size();
  }
  absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>&,
                                         size_t) override {
    CAIRN_RETURN_IF_ERROR(Next());
    BlobListPage page;
    page.blobs.push_back(ports::BlobRecord{BlobKey{owner, ChunkId{}, 0}, 10, {}, true});
    return page;
  }
  absl::Status BlobMoved(std::span<const MovedBlob>) override { return Next(); }

  bool last_extra() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_extra_;
  }

  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  absl::Status Next() {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (script_.empty()) return absl::OkStatus();
    absl::Status s = script_.front();
    script_.pop_front();
    return s;
  }

  std::mutex mu_;
  std::deque<absl::Status> script_;
  int calls_ = 0;
  bool last_extra_ = false;
};

ClientOptions FastOptions() {
  ClientOptions options;
  options.max_attempts = 4;
  options.initial_backoff = 10ms;
  options.max_backoff = 50ms;
  return options;
}

struct Recorder {
  std::vector<std::chrono::milliseconds> sleeps;
  RetryingPeerClient::SleepFn Fn() {
    return [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
  }
};

TEST(RetryingPeerClientTest, RetriesUnavailableThenSucceeds) {
  auto inner = std::make_shared<ScriptedPeerClient>(std::vector<absl::Status>{
      absl::UnavailableError("down"), absl::UnavailableError("still down")});
  Recorder recorder;
  RetryingPeerClient client(inner, FastOptions(), "127.0.0.1:7001", recorder.Fn());
  auto got = client.GetBlob(BlobKey{});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (Bytes{1, 2, 3}));
  EXPECT_EQ(inner->calls(), 3);
  ASSERT_EQ(recorder.sleeps.size(), 2u);
  for (size_t i = 0; i < recorder.sleeps.size(); ++i) {
    EXPECT_GE(recorder.sleeps[i].count(), 0);
    EXPECT_LE(recorder.sleeps[i], RetryingPeerClient::BackoffCap(FastOptions(), i));
  }
}

TEST(RetryingPeerClientTest, PublicFactoryRetries) {
  auto inner = std::make_shared<ScriptedPeerClient>(std::vector<absl::Status>{
      absl::UnavailableError("down"), absl::UnavailableError("still down")});
  ClientOptions options = FastOptions();
  options.initial_backoff = 1ms;
  options.max_backoff = 2ms;
  auto client = NewRetryingPeerClient(inner, options);
  auto got = client->PutBlob(BlobKey{}, Bytes{9});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, ports::PutOutcome::kStored);
  EXPECT_EQ(inner->calls(), 3);
}

// The lifecycle calls retry like the others, and PutBlob passes its options through.
TEST(RetryingPeerClientTest, LifecycleCallsAreRetried) {
  const std::vector<absl::Status> flaky = {absl::UnavailableError("down"),
                                           absl::DeadlineExceededError("slow")};
  struct Case {
    std::string name;
    std::function<absl::Status(PeerClient&)> call;
  };
  const std::vector<BlobKey> keys(3);
  const std::vector<MovedBlob> moves = {{BlobKey{}, 7}};
  const Case cases[] = {
      {"DeleteBlobs",
       [&](PeerClient& c) {
         auto got = c.DeleteBlobs(keys);
         if (got.ok()) {
           EXPECT_EQ(*got, 3u);
         }
         return got.status();
       }},
      {"ListBlobs",
       [&](PeerClient& c) {
         auto got = c.ListBlobs(9, std::nullopt, 10);
         if (got.ok()) {
           EXPECT_EQ(got->blobs.size(), 1u);
           EXPECT_EQ(got->blobs[0].key.owner, 9u);
         }
         return got.status();
       }},
      {"BlobMoved", [&](PeerClient& c) { return c.BlobMoved(moves); }},
      {"PutBlob extra",
       [&](PeerClient& c) {
         return c.PutBlob(BlobKey{}, Bytes{1}, ports::PutOptions{.extra = true}).status();
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto inner = std::make_shared<ScriptedPeerClient>(flaky);
    Recorder recorder;
    RetryingPeerClient client(inner, FastOptions(), "p", recorder.Fn());
    absl::Status status = c.call(client);
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_EQ(inner->calls(), 3);
    EXPECT_EQ(recorder.sleeps.size(), 2u);
    if (c.name == "PutBlob extra") {
      EXPECT_TRUE(inner->last_extra());
    }

    // Not retried: PERMISSION_DENIED (another owner's blobs) and INVALID_ARGUMENT.
    for (const absl::Status& final_status :
         {absl::PermissionDeniedError("not yours"), absl::InvalidArgumentError("bad")}) {
      auto refusing = std::make_shared<ScriptedPeerClient>(std::vector<absl::Status>{final_status});
      RetryingPeerClient once(refusing, FastOptions(), "p", recorder.Fn());
      EXPECT_EQ(c.call(once).code(), final_status.code());
      EXPECT_EQ(refusing->calls(), 1);
    }
  }
}

TEST(RetryingPeerClientTest, DeadlineExceededIsRetried) {
  auto inner = std::make_shared<ScriptedPeerClient>(
      std::vector<absl::Status>{absl::DeadlineExceededError("slow")});
  Recorder recorder;
  RetryingPeerClient client(inner, FastOptions(), "p", recorder.Fn());
  auto got = client.Ping(cluster::PeerInfo{}, {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->self.id, 42u);
  EXPECT_EQ(inner->calls(), 2);
}

TEST(RetryingPeerClientTest, OtherCodesAreNotRetried) {
  const absl::Status codes[] = {
      absl::InvalidArgumentError("bad"), absl::NotFoundError("nope"),
      absl::DataLossError("flipped"),    absl::ResourceExhaustedError("full"),
      absl::InternalError("bug"),        absl::FailedPreconditionError("state"),
  };
  for (const absl::Status& code : codes) {
    auto inner = std::make_shared<ScriptedPeerClient>(std::vector<absl::Status>{code});
    Recorder recorder;
    RetryingPeerClient client(inner, FastOptions(), "127.0.0.1:7001", recorder.Fn());
    std::vector<BlobKey> keys(3);
    auto got = client.HasBlobs(keys);
    EXPECT_EQ(got.status().code(), code.code());
    EXPECT_EQ(inner->calls(), 1) << code;
    EXPECT_TRUE(recorder.sleeps.empty());
    EXPECT_THAT(got.status().message(), HasSubstr("peer 127.0.0.1:7001: "));
    EXPECT_THAT(got.status().message(), HasSubstr(std::string(code.message())));
  }
}

TEST(RetryingPeerClientTest, GivesUpAfterMaxAttemptsWithLastStatus) {
  std::vector<absl::Status> script;
  for (int i = 1; i <= 10; ++i)
    script.push_back(absl::UnavailableError("fail " + std::to_string(i)));
  auto inner = std::make_shared<ScriptedPeerClient>(script);
  Recorder recorder;
  RetryingPeerClient client(inner, FastOptions(), "127.0.0.1:7001", recorder.Fn());
  auto got = client.PutBlob(BlobKey{}, Bytes{1});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(inner->calls(), 4);
  EXPECT_EQ(recorder.sleeps.size(), 3u);
  EXPECT_THAT(got.status().message(), HasSubstr("peer 127.0.0.1:7001: fail 4"));
  EXPECT_THAT(got.status().message(), HasSubstr("4 attempts"));
}

TEST(RetryingPeerClientTest, ZeroAttemptsMeansOne) {
  auto inner = std::make_shared<ScriptedPeerClient>(
      std::vector<absl::Status>{absl::UnavailableError("down")});
  ClientOptions options = FastOptions();
  options.max_attempts = 0;
  Recorder recorder;
  RetryingPeerClient client(inner, options, "", recorder.Fn());
  EXPECT_EQ(client.GetBlob(BlobKey{}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(inner->calls(), 1);
}

TEST(RetryingPeerClientTest, BackoffCapDoublesUpToMax) {
  ClientOptions options;
  options.initial_backoff = 100ms;
  options.max_backoff = 2000ms;
  struct Case {
    int retry;
    std::chrono::milliseconds cap;
  };
  const Case cases[] = {{0, 100ms},  {1, 200ms},  {2, 400ms},  {3, 800ms},
                        {4, 1600ms}, {5, 2000ms}, {6, 2000ms}, {1000, 2000ms}};
  for (const Case& c : cases) {
    EXPECT_EQ(RetryingPeerClient::BackoffCap(options, c.retry), c.cap) << "retry " << c.retry;
  }
  options.initial_backoff = 0ms;
  EXPECT_EQ(RetryingPeerClient::BackoffCap(options, 3), 0ms);
}

TEST(RetryingPeerClientTest, JitterStaysWithinCap) {
  std::vector<absl::Status> script(200, absl::UnavailableError("down"));
  auto inner = std::make_shared<ScriptedPeerClient>(script);
  ClientOptions options = FastOptions();
  options.max_attempts = 200;
  Recorder recorder;
  RetryingPeerClient client(inner, options, "", recorder.Fn());
  (void)client.GetBlob(BlobKey{});
  ASSERT_EQ(recorder.sleeps.size(), 199u);
  bool varied = false;
  for (size_t i = 0; i < recorder.sleeps.size(); ++i) {
    EXPECT_GE(recorder.sleeps[i].count(), 0);
    EXPECT_LE(recorder.sleeps[i], RetryingPeerClient::BackoffCap(options, i));
    if (recorder.sleeps[i] != recorder.sleeps[0]) varied = true;
  }
  EXPECT_TRUE(varied) << "full jitter should not sleep a constant time";
}

// Answers `per_attempt` keys of each GetBlobsStreamed, then breaks (UNAVAILABLE) unless every
// key was answered. PutBlobs fails (UNAVAILABLE) its first `lost_puts` calls as a whole.
class BreakingPeerClient final : public ScriptedPeerClient {
 public:
  BreakingPeerClient(size_t per_attempt, int lost_puts)
      : ScriptedPeerClient({}), per_attempt_(per_attempt), lost_puts_(lost_puts) {}
  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override {
    asked.push_back(keys.size());
    for (size_t i = 0; i < keys.size() && i < per_attempt_; ++i) {
      on_blob(i, Bytes{static_cast<uint8_t>(keys[i].shard)});
    }
    if (keys.size() <= per_attempt_) return absl::OkStatus();
    return absl::UnavailableError("broken stream");
  }
  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override {
    ++put_calls;
    if (put_calls <= lost_puts_) return absl::UnavailableError("answer lost");
    std::vector<absl::StatusOr<ports::PutOutcome>> out;
    for (const BlobPut& put : puts) {
      if (put.key.shard == 1) {
        out.push_back(absl::ResourceExhaustedError("full"));
      } else {
        out.push_back(ports::PutOutcome::kAlreadyStored);
      }
    }
    return out;
  }
  std::vector<size_t> asked;
  int put_calls = 0;

 private:
  const size_t per_attempt_;
  const int lost_puts_;
};

// A GetBlobs stream that breaks is asked again for the keys not answered yet; attempts that
// answered something do not count toward max_attempts.
TEST(RetryingPeerClientTest, GetBlobsStreamedResumesWithTheKeysNotAnswered) {
  auto inner = std::make_shared<BreakingPeerClient>(/*per_attempt=*/2, /*lost_puts=*/0);
  Recorder recorder;
  ClientOptions options = FastOptions();
  options.max_attempts = 2;
  RetryingPeerClient client(inner, options, "p", recorder.Fn());
  std::vector<BlobKey> keys(9);
  for (size_t i = 0; i < keys.size(); ++i) keys[i].shard = static_cast<uint32_t>(i);
  auto got = client.GetBlobs(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(*(*got)[i], Bytes{static_cast<uint8_t>(i)});
  EXPECT_EQ(inner->asked, (std::vector<size_t>{9, 7, 5, 3, 1}));

  // Attempts that answer nothing count: UNAVAILABLE after max_attempts of them in a row.
  auto dead = std::make_shared<BreakingPeerClient>(/*per_attempt=*/0, /*lost_puts=*/0);
  RetryingPeerClient gives_up(dead, options, "p", recorder.Fn());
  absl::Status status = gives_up.GetBlobsStreamed(
      keys, [](size_t, absl::StatusOr<Bytes>) { ADD_FAILURE() << "nothing to answer"; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(dead->asked.size(), 2u);
}

TEST(RetryingPeerClientTest, PutBlobsIsRetriedWholeAndItemErrorsAreAnswers) {
  auto inner = std::make_shared<BreakingPeerClient>(/*per_attempt=*/0, /*lost_puts=*/2);
  Recorder recorder;
  RetryingPeerClient client(inner, FastOptions(), "127.0.0.1:7001", recorder.Fn());
  const Bytes blob = {1};
  BlobKey full;
  full.shard = 1;
  std::vector<BlobPut> puts = {BlobPut{BlobKey{}, blob, {}}, BlobPut{full, blob, {}}};
  auto got = client.PutBlobs(puts);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(inner->put_calls, 3);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(*(*got)[0], ports::PutOutcome::kAlreadyStored);
  // A blob's own error is its answer (not retried), labelled with the peer.
  EXPECT_EQ((*got)[1].status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT((*got)[1].status().message(), HasSubstr("peer 127.0.0.1:7001: full"));
}

}  // namespace
}  // namespace cairn::net
