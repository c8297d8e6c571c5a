#include "cairn/store/scrub.h"

#include <chrono>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cairn/env/rate_limiter.h"
#include "cairn/format/blob.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::store {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// ---- RunScrubPass ----

codec::OwnerKeys TestKeys() {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) keys.id_key[i] = static_cast<uint8_t>(i);
  return keys;
}

struct Stored {
  BlobKey key;
  Bytes data;
};

// `n` blobs of random sizes in `store`, in key order.
std::vector<Stored> Fill(BlobStore* store, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<BlobKey, Bytes> blobs;
  for (int i = 0; i < n; ++i) {
    Bytes plain(100 + rng() % 5000);
    for (auto& b : plain) b = static_cast<uint8_t>(rng());
    auto sealed = format::SealChunk(TestKeys(), 9, BlobKind::kData, plain);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    BlobKey key{9, sealed->id, 0};
    auto put = store->Put(key, sealed->blob, codec::BlobChecksum(sealed->blob));
    EXPECT_TRUE(put.ok()) << put.status();
    blobs[key] = std::move(sealed->blob);
  }
  std::vector<Stored> out;
  for (auto& [k, v] : blobs) out.push_back({k, std::move(v)});
  return out;
}

uint64_t TotalBytes(const std::vector<Stored>& blobs) {
  uint64_t total = 0;
  for (const Stored& b : blobs) total += b.data.size();
  return total;
}

TEST(ScrubPassTest, IsRateLimited) {
  auto store = NewMemBlobStore(1ull << 30);
  std::vector<Stored> blobs = Fill(store.get(), 25, 1);
  const uint64_t total = TotalBytes(blobs);
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  constexpr uint64_t kRate = 10'000, kBurst = 4'000;
  env::RateLimiter limiter(kRate, kBurst, &clock);
  ScrubPassOptions options;
  options.limiter = &limiter;
  options.sleeper = &sleeper;
  options.batch = 4;
  auto pass = RunScrubPass(store.get(), options);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->complete);
  EXPECT_EQ(pass->counts.checked, blobs.size());
  EXPECT_EQ(pass->counts.bytes, total);
  // Every byte past the first bucket cost 1/rate seconds (each wait rounded up by < 1 ns).
  const double want = static_cast<double>(total - kBurst) * 1e9 / kRate;
  const double slept = static_cast<double>(sleeper.total().count());
  EXPECT_GE(slept, want - 1);
  EXPECT_LE(slept, want + static_cast<double>(blobs.size()));
}

TEST(ScrubPassTest, StopsWhenCancelledAndResumesWhereItStopped) {
  auto store = NewMemBlobStore(1ull << 30);
  std::vector<Stored> blobs = Fill(store.get(), 23, 2);
  ASSERT_TRUE(MutateMemBlobForTesting(store.get(), blobs[3].key, [](Bytes& b) { b[7] ^= 1; }).ok());
  ASSERT_TRUE(
      MutateMemBlobForTesting(store.get(), blobs[15].key, [](Bytes& b) { b.pop_back(); }).ok());

  std::map<BlobKey, int> seen;
  std::atomic<bool> cancel{false};
  std::vector<BlobKey> batch_cursors;
  ScrubPassOptions options;
  options.batch = 5;
  options.cancel = &cancel;
  options.on_blob = [&](const BlobKey& key, ScrubOutcome, const ScrubCounts& counts) {
    ++seen[key];
    if (counts.checked == 7) cancel = true;
  };
  options.on_batch = [&](const BlobKey& cursor, const ScrubCounts&) {
    batch_cursors.push_back(cursor);
    return absl::OkStatus();
  };
  auto first = RunScrubPass(store.get(), options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->complete);
  EXPECT_EQ(first->counts.checked, 7u);
  EXPECT_EQ(first->counts.corrupt, 1u);
  ASSERT_TRUE(first->cursor.has_value());
  EXPECT_EQ(*first->cursor, blobs[6].key);
  EXPECT_EQ(batch_cursors, std::vector<BlobKey>{blobs[4].key});

  cancel = false;
  batch_cursors.clear();
  options.resume_after = first->cursor;
  options.start = first->counts;
  auto second = RunScrubPass(store.get(), options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->complete);
  EXPECT_EQ(second->counts.checked, blobs.size());
  EXPECT_EQ(second->counts.corrupt, 2u);
  EXPECT_EQ(seen.size(), blobs.size());
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key.DebugString();
  // Batches of 5 from blob 7: cursors after blobs 11, 16, 21, and 22 (the last, short batch).
  EXPECT_EQ(batch_cursors,
            (std::vector<BlobKey>{blobs[11].key, blobs[16].key, blobs[21].key, blobs[22].key}));
  EXPECT_EQ(*second->cursor, blobs.back().key);
}

TEST(ScrubPassTest, StopsWhenTheSleeperIsInterrupted) {
  auto store = NewMemBlobStore(1ull << 30);
  Fill(store.get(), 5, 3);
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  sleeper.Interrupt();
  env::RateLimiter limiter(1000, 1, &clock);
  ScrubPassOptions options;
  options.limiter = &limiter;
  options.sleeper = &sleeper;
  auto pass = RunScrubPass(store.get(), options);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_FALSE(pass->complete);
  EXPECT_EQ(pass->counts.checked, 0u);
  EXPECT_FALSE(pass->cursor.has_value());
}

TEST(ScrubPassTest, OnBatchErrorStopsThePass) {
  auto store = NewMemBlobStore(1ull << 30);
  Fill(store.get(), 10, 4);
  ScrubPassOptions options;
  options.batch = 3;
  int batches = 0;
  options.on_batch = [&](const BlobKey&, const ScrubCounts&) {
    return ++batches == 2 ? absl::InternalError("disk full") : absl::OkStatus();
  };
  auto pass = RunScrubPass(store.get(), options);
  EXPECT_EQ(pass.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(batches, 2);
}

TEST(ScrubPassTest, EmptyStoreCompletesAndBadOptionsAreRejected) {
  auto store = NewMemBlobStore(1ull << 30);
  auto pass = RunScrubPass(store.get(), ScrubPassOptions{});
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->complete);
  EXPECT_EQ(pass->counts.checked, 0u);
  ScrubPassOptions no_batch;
  no_batch.batch = 0;
  EXPECT_EQ(RunScrubPass(store.get(), no_batch).status().code(),
            absl::StatusCode::kInvalidArgument);
  env::FakeClock clock;
  env::RateLimiter limiter(1, 1, &clock);
  ScrubPassOptions no_sleeper;
  no_sleeper.limiter = &limiter;
  EXPECT_EQ(RunScrubPass(store.get(), no_sleeper).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A store whose ScrubBlob fails for one key: the pass counts the error and goes on.
class FailingScrubStore : public BlobStore {
 public:
  FailingScrubStore(BlobStore* inner, BlobKey bad) : inner_(inner), bad_(bad) {}
  using BlobStore::Put;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum,
                                 const PutOptions& options) override {
    return inner_->Put(key, blob, checksum, options);
  }
  absl::StatusOr<Bytes> Get(const BlobKey& key) override { return inner_->Get(key); }
  absl::StatusOr<bool> Has(const BlobKey& key) override { return inner_->Has(key); }
  absl::Status Delete(const BlobKey& key) override { return inner_->Delete(key); }
  StoreStats Stats() override { return inner_->Stats(); }
  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override { return inner_->UsageByOwner(); }
  absl::Status SetQuota(uint64_t quota) override { return inner_->SetQuota(quota); }
  absl::StatusOr<EvictResult> EvictExtras(uint64_t target_used) override {
    return inner_->EvictExtras(target_used);
  }
  absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    return inner_->ListOwner(owner, after, limit);
  }
  absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                   size_t limit) override {
    return inner_->ListHeld(after, limit);
  }
  absl::StatusOr<ScrubOutcome> ScrubBlob(const BlobKey& key) override {
    if (key == bad_) return absl::InternalError("read: Too many open files");
    return inner_->ScrubBlob(key);
  }

 private:
  BlobStore* inner_;
  BlobKey bad_;
};

TEST(ScrubPassTest, ErrorsAreCountedAndThePassGoesOn) {
  auto inner = NewMemBlobStore(1ull << 30);
  std::vector<Stored> blobs = Fill(inner.get(), 6, 5);
  FailingScrubStore store(inner.get(), blobs[2].key);
  std::vector<BlobKey> failed;
  ScrubPassOptions options;
  options.on_error = [&](const BlobKey& key, const absl::Status& error) {
    failed.push_back(key);
    EXPECT_EQ(error.code(), absl::StatusCode::kInternal);
  };
  auto pass = RunScrubPass(&store, options);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->complete);
  EXPECT_EQ(pass->counts.checked, 5u);
  EXPECT_EQ(pass->counts.errors, 1u);
  EXPECT_EQ(failed, std::vector<BlobKey>{blobs[2].key});
  EXPECT_EQ(*inner->Has(blobs[2].key), true);  // left as it was
}

}  // namespace
}  // namespace cairn::store
