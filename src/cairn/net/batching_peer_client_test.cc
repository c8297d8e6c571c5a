#include "cairn/net/batching_peer_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;

constexpr absl::Duration kDeadline = absl::Seconds(20);

// The blob a test puts for key number `i` (its bytes say which key it is).
BlobKey KeyNumber(uint32_t i, uint32_t shard = 0) {
  BlobKey key;
  key.owner = 1;
  key.chunk.bytes.fill(0);
  key.chunk.bytes[0] = static_cast<uint8_t>(i);
  key.chunk.bytes[1] = static_cast<uint8_t>(i >> 8);
  key.shard = shard;
  return key;
}

Bytes BlobOf(const BlobKey& key, size_t size) {
  Bytes blob(size, key.chunk.bytes[0]);
  blob[0] = key.chunk.bytes[1];
  return blob;
}

bool IsBlobOf(const BlobKey& key, ByteSpan blob) {
  if (blob.empty() || blob[0] != key.chunk.bytes[1]) return false;
  for (size_t i = 1; i < blob.size(); ++i) {
    if (blob[i] != key.chunk.bytes[0]) return false;
  }
  return true;
}

// A PeerClient whose batch calls wait at a gate (closed until Open) and are counted. Answers by
// key: PutBlobs: shard 1 RESOURCE_EXHAUSTED, shard 2 ALREADY_STORED, else STORED. GetBlobs:
// shard 3 NOT_FOUND, else BlobOf(key, 100). `fail` makes every batch call fail with it.
class GatedClient final : public PeerClient {
 public:
  explicit GatedClient(bool open = false) : open_(open) {}

  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Fail(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  // Waits (up to kDeadline) until `calls` batch calls are waiting at the gate.
  bool AwaitWaiting(int calls) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(kDeadline),
                        [&] { return waiting_ >= calls; });
  }

  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override {
    size_t bytes = 0;
    for (const BlobPut& put : puts) bytes += put.blob.size();
    absl::Status fail;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++put_calls_;
      put_items_ += puts.size();
      bytes_inside_ += bytes;
      max_bytes_inside_ = std::max(max_bytes_inside_, bytes_inside_);
      max_batch_ = std::max(max_batch_, puts.size());
      Gate(lock);
      bytes_inside_ -= bytes;
      fail = fail_;
    }
    if (!fail.ok()) return fail;
    std::vector<absl::StatusOr<ports::PutOutcome>> out;
    for (const BlobPut& put : puts) {
      if (!IsBlobOf(put.key, put.blob)) {
        out.push_back(absl::DataLossError("not the blob of this key"));
      } else if (put.key.shard == 1) {
        out.push_back(absl::ResourceExhaustedError("full"));
      } else {
        out.push_back(put.key.shard == 2 ? ports::PutOutcome::kAlreadyStored
                                         : ports::PutOutcome::kStored);
      }
    }
    return out;
  }

  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override {
    absl::Status fail;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++get_calls_;
      get_items_ += keys.size();
      max_batch_ = std::max(max_batch_, keys.size());
      Gate(lock);
      fail = fail_;
    }
    if (!fail.ok()) return fail;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i].shard == 3) {
        on_blob(i, absl::NotFoundError("no such blob"));
      } else {
        on_blob(i, BlobOf(keys[i], 100));
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> GetBlobs(
      std::span<const BlobKey> keys) override {
    std::vector<absl::StatusOr<Bytes>> out;
    absl::Status status =
        GetBlobsStreamed(keys, [&](size_t, absl::StatusOr<Bytes> a) { out.push_back(a); });
    if (!status.ok()) return status;
    return out;
  }

  // Single calls: the batching client must not use them.
  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey&, ByteSpan,
                                            const ports::PutOptions&) override {
    ADD_FAILURE() << "single PutBlob reached the inner client";
    return absl::InternalError("single PutBlob");
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey&) override {
    ADD_FAILURE() << "single GetBlob reached the inner client";
    return absl::InternalError("single GetBlob");
  }
  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo&,
                                 const std::vector<cluster::PeerInfo>&) override {
    PingReply reply;
    reply.self.id = 77;
    return reply;
  }
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
    return std::vector<bool>(keys.size(), true);
  }
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
    return keys.size();
  }
  absl::StatusOr<BlobListPage> ListBlobs(PeerId, const std::optional<BlobKey>&, size_t) override {
    return BlobListPage{};
  }
  absl::Status BlobMoved(std::span<const MovedBlob>) override { return absl::OkStatus(); }

  int put_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return put_calls_;
  }
  size_t put_items() {
    std::lock_guard<std::mutex> lock(mu_);
    return put_items_;
  }
  int get_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return get_calls_;
  }
  size_t get_items() {
    std::lock_guard<std::mutex> lock(mu_);
    return get_items_;
  }
  size_t max_bytes_inside() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_bytes_inside_;
  }
  size_t max_batch() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_batch_;
  }

 private:
  // Waits (holding mu_ in between, through `lock`) until the gate is open. std::mutex rather than
  // absl::Mutex so that ThreadSanitizer sees the locking (docs/operations.md "Testing with
  // ThreadSanitizer").
  void Gate(std::unique_lock<std::mutex>& lock) {
    ++waiting_;
    cv_.notify_all();  // AwaitWaiting
    cv_.wait(lock, [&] { return open_; });
    --waiting_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int put_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t put_items_ ABSL_GUARDED_BY(mu_) = 0;
  int get_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t get_items_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_inside_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_bytes_inside_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_batch_ ABSL_GUARDED_BY(mu_) = 0;
};

// Polls `condition` until it holds or kDeadline passes (the condition lives in another object's
// lock, so there is nothing to wait on directly).
template <typename Fn>
bool Eventually(Fn&& condition) {
  const absl::Time deadline = absl::Now() + kDeadline;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(BatchingPeerClientTest, ConcurrentPutsAreCoalescedAndEachGetsItsOwnAnswer) {
  auto inner = std::make_shared<GatedClient>();
  BatchingPeerClient client(inner);
  constexpr int kThreads = 64;
  constexpr size_t kSize = 1000;
  std::vector<BlobKey> keys;
  std::vector<Bytes> blobs;
  for (int i = 0; i < kThreads; ++i) {
    keys.push_back(KeyNumber(i, /*shard=*/i % 3));
    blobs.push_back(BlobOf(keys.back(), kSize));
  }
  std::vector<absl::StatusOr<ports::PutOutcome>> answers(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { answers[t] = client.PutBlob(keys[t], blobs[t]); });
  }
  // Every put is admitted and queued (a put is admitted, then queued: both, or one late thread
  // makes a batch of its own) while the first batches wait at the gate; then let them through.
  ASSERT_TRUE(Eventually([&] {
    const BatchingCounters c = client.Counters();
    return c.bytes_in_flight == kThreads * kSize &&
           c.queued_puts + inner->put_items() == static_cast<size_t>(kThreads);
  }));
  inner->Open();
  for (auto& thread : threads) thread.join();

  for (int t = 0; t < kThreads; ++t) {
    switch (t % 3) {
      case 0:
        ASSERT_TRUE(answers[t].ok()) << t << ": " << answers[t].status();
        EXPECT_EQ(*answers[t], ports::PutOutcome::kStored) << t;
        break;
      case 1:
        EXPECT_EQ(answers[t].status().code(), absl::StatusCode::kResourceExhausted) << t;
        break;
      case 2:
        ASSERT_TRUE(answers[t].ok()) << t << ": " << answers[t].status();
        EXPECT_EQ(*answers[t], ports::PutOutcome::kAlreadyStored) << t;
        break;
    }
  }
  // At most the 2 batches that went out before the queue filled, then what was queued.
  EXPECT_EQ(inner->put_items(), static_cast<size_t>(kThreads));
  EXPECT_LE(inner->put_calls(), 4) << "64 puts should travel in a handful of batches";
  const BatchingCounters counters = client.Counters();
  EXPECT_EQ(counters.put_batches, static_cast<uint64_t>(inner->put_calls()));
  EXPECT_EQ(counters.bytes_in_flight, 0u);
  EXPECT_EQ(counters.batches_in_flight, 0u);
}

TEST(BatchingPeerClientTest, ConcurrentGetsAreCoalesced) {
  auto inner = std::make_shared<GatedClient>();
  BatchingPeerClient client(inner);
  constexpr int kThreads = 64;
  std::vector<absl::StatusOr<Bytes>> answers(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { answers[t] = client.GetBlob(KeyNumber(t, t % 4)); });
  }
  // Every get is queued or in a batch waiting at the gate; then let them through.
  ASSERT_TRUE(Eventually(
      [&] { return client.Counters().queued_gets + inner->get_items() == size_t{kThreads}; }));
  inner->Open();
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    if (t % 4 == 3) {
      EXPECT_EQ(answers[t].status().code(), absl::StatusCode::kNotFound) << t;
    } else {
      ASSERT_TRUE(answers[t].ok()) << t << ": " << answers[t].status();
      EXPECT_EQ(*answers[t], BlobOf(KeyNumber(t), 100)) << t;
    }
  }
  EXPECT_LE(inner->get_calls(), 4) << "64 gets should travel in a handful of batches";
}

TEST(BatchingPeerClientTest, BatchLimitsAreRespected) {
  auto inner = std::make_shared<GatedClient>();
  BatchingOptions options;
  options.max_batch_blobs = 5;
  options.max_batch_bytes = 3500;  // three blobs of 1000 bytes
  BatchingPeerClient client(inner, options);
  constexpr int kPuts = 30;
  std::vector<std::future<absl::StatusOr<ports::PutOutcome>>> futures;
  for (int i = 0; i < kPuts; ++i) {
    futures.push_back(client.PutBlobAsync(KeyNumber(i), BlobOf(KeyNumber(i), 1000)));
  }
  inner->Open();
  for (auto& future : futures) {
    auto answer = future.get();
    ASSERT_TRUE(answer.ok()) << answer.status();
  }
  EXPECT_LE(inner->max_batch(), 3u);
  // A blob larger than the byte limit goes alone.
  auto big = client.PutBlob(KeyNumber(99), BlobOf(KeyNumber(99), 10000));
  ASSERT_TRUE(big.ok()) << big.status();
}

TEST(BatchingPeerClientTest, BytesInFlightStayWithinTheWindow) {
  auto inner = std::make_shared<GatedClient>();
  BatchingOptions options;
  options.max_bytes_in_flight = 4000;
  BatchingPeerClient client(inner, options);
  constexpr int kThreads = 32;
  constexpr size_t kSize = 1000;
  std::vector<absl::StatusOr<ports::PutOutcome>> answers(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(
        [&, t] { answers[t] = client.PutBlob(KeyNumber(t), BlobOf(KeyNumber(t), kSize)); });
  }
  // The window fills up and stays full while the batches wait at the gate: the other puts wait
  // to be admitted.
  ASSERT_TRUE(Eventually([&] { return client.Counters().bytes_in_flight == 4000; }));
  ASSERT_TRUE(inner->AwaitWaiting(1));
  BatchingCounters counters = client.Counters();
  EXPECT_EQ(counters.bytes_in_flight, 4000u);
  EXPECT_LE(counters.queued_puts, 4u);
  EXPECT_LE(inner->put_items(), 4u);
  inner->Open();
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) ASSERT_TRUE(answers[t].ok()) << t << answers[t].status();
  counters = client.Counters();
  EXPECT_LE(counters.peak_bytes_in_flight, 4000u);
  EXPECT_LE(inner->max_bytes_inside(), 4000u);
  EXPECT_EQ(counters.bytes_in_flight, 0u);
  EXPECT_EQ(inner->put_items(), static_cast<size_t>(kThreads));

  // A blob larger than the whole window is admitted alone.
  auto huge = client.PutBlob(KeyNumber(500), BlobOf(KeyNumber(500), 10000));
  ASSERT_TRUE(huge.ok()) << huge.status();
}

TEST(BatchingPeerClientTest, DestructorAnswersEverythingPending) {
  for (bool fail : {false, true}) {
    SCOPED_TRACE(fail ? "inner fails" : "inner answers");
    auto inner = std::make_shared<GatedClient>();
    if (fail) inner->Fail(absl::UnavailableError("peer gone"));
    auto client = std::make_unique<BatchingPeerClient>(inner);
    std::vector<std::future<absl::StatusOr<ports::PutOutcome>>> puts;
    std::vector<std::future<absl::StatusOr<Bytes>>> gets;
    // One batch of each waits at the gate; the rest is queued when the client goes away.
    puts.push_back(client->PutBlobAsync(KeyNumber(0), BlobOf(KeyNumber(0), 500)));
    gets.push_back(client->GetBlobAsync(KeyNumber(0)));
    ASSERT_TRUE(inner->AwaitWaiting(2));
    for (int i = 1; i < 20; ++i) {
      puts.push_back(client->PutBlobAsync(KeyNumber(i), BlobOf(KeyNumber(i), 500)));
      if (i % 4 == 0) gets.push_back(client->GetBlobAsync(KeyNumber(i)));
    }
    EXPECT_GT(client->Counters().queued_puts + client->Counters().queued_gets, 0u);
    auto destroyed = std::async(std::launch::async, [&] { client.reset(); });
    inner->Open();
    ASSERT_EQ(destroyed.wait_for(std::chrono::seconds(20)), std::future_status::ready)
        << "the destructor hangs";
    for (auto& future : puts) {
      ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
      auto answer = future.get();
      if (fail) {
        EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
      } else {
        EXPECT_TRUE(answer.ok()) << answer.status();
      }
    }
    for (auto& future : gets) {
      ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
      EXPECT_EQ(future.get().ok(), !fail);
    }
  }
}

TEST(BatchingPeerClientTest, DirectBatchesAndOtherCallsPassThrough) {
  auto inner = std::make_shared<GatedClient>(/*open=*/true);
  BatchingOptions options;
  options.max_batch_blobs = 10;
  BatchingPeerClient client(inner, options);
  std::vector<Bytes> blobs;
  std::vector<BlobPut> puts;
  for (int i = 0; i < 35; ++i) blobs.push_back(BlobOf(KeyNumber(i, i == 7 ? 1 : 0), 100));
  for (int i = 0; i < 35; ++i) puts.push_back(BlobPut{KeyNumber(i, i == 7 ? 1 : 0), blobs[i], {}});
  auto put = client.PutBlobs(puts);
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->size(), 35u);
  EXPECT_EQ(inner->put_calls(), 4);  // 10 + 10 + 10 + 5
  for (int i = 0; i < 35; ++i) EXPECT_EQ((*put)[i].ok(), i != 7) << i;

  std::vector<BlobKey> keys;
  for (int i = 0; i < 25; ++i) keys.push_back(KeyNumber(i, i == 3 ? 3 : 0));
  auto got = client.GetBlobs(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 25u);
  EXPECT_EQ(inner->get_calls(), 3);  // 10 + 10 + 5
  for (int i = 0; i < 25; ++i) {
    if (i == 3) {
      EXPECT_EQ((*got)[i].status().code(), absl::StatusCode::kNotFound);
    } else {
      EXPECT_EQ(*(*got)[i], BlobOf(KeyNumber(i), 100)) << i;
    }
  }
  EXPECT_EQ(client.Ping({}, {})->self.id, 77u);
  EXPECT_EQ(*client.DeleteBlobs(keys), 25u);
  EXPECT_EQ(client.HasBlobs(keys)->size(), 25u);
  EXPECT_TRUE(client.BlobMoved({}).ok());
  EXPECT_EQ(client.Counters().bytes_in_flight, 0u);

  // An outer failure of a direct batch is the call's.
  inner->Fail(absl::UnavailableError("down"));
  EXPECT_EQ(client.PutBlobs(puts).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.GetBlobs(keys).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.Counters().bytes_in_flight, 0u);
}

}  // namespace
}  // namespace cairn::net
