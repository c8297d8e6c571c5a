// SegmentBlobStore beyond the BlobStore conformance suite (blob_store_test.cc): group commit,
// compaction, recovery of torn tails and lost registry commits, and crashes at random points.
#include "cairn/store/segment_blob_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "cairn/base/status.h"
#include "cairn/format/blob.h"
#include "cairn/store/segment.h"

namespace cairn::store {
namespace {

using Op = env::FaultInjectionFileSystem::Op;

codec::OwnerKeys TestKeys() {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) {
    keys.id_key[i] = static_cast<uint8_t>(i);
    keys.encryption_key[i] = static_cast<uint8_t>(100 + i);
    keys.chunker_seed[i] = static_cast<uint8_t>(200 + i);
  }
  return keys;
}

struct TestBlob {
  BlobKey key;
  Bytes data;
  codec::Checksum checksum;
};

TestBlob MakeBlob(uint64_t seed, size_t plain_size = 500) {
  std::mt19937_64 rng(seed);
  Bytes plain(plain_size);
  for (auto& b : plain) b = static_cast<uint8_t>(rng());
  auto sealed = format::SealChunk(TestKeys(), 9, BlobKind::kData, plain);
  EXPECT_TRUE(sealed.ok()) << sealed.status();
  TestBlob t;
  t.key = BlobKey{9, sealed->id, 0};
  t.data = std::move(sealed->blob);
  t.checksum = codec::BlobChecksum(t.data);
  return t;
}

// A MemSegmentRegistry that models SQLite's durability (synchronous=NORMAL in WAL mode): a
// batch applied without `durable` may be lost by a power cut, one with it makes itself and every
// earlier batch durable. Crash() keeps the durable batches and a random prefix of the others.
class CrashableRegistry : public SegmentRegistry {
 public:
  CrashableRegistry() : current_(NewMemSegmentRegistry()) {}
  absl::Status Apply(const RegistryBatch& batch, bool durable) override {
    std::lock_guard<std::mutex> lock(mu_);
    CAIRN_RETURN_IF_ERROR(current_->Apply(batch, durable));
    log_.push_back(batch);
    if (durable) durable_ = log_.size();
    return absl::OkStatus();
  }
  // Loses everything (a registry whose commits never reached the disk).
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = NewMemSegmentRegistry();
    log_.clear();
    durable_ = 0;
  }
  void Crash(std::mt19937_64& rng) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t keep = durable_ + (log_.size() > durable_ ? rng() % (log_.size() - durable_ + 1) : 0);
    log_.resize(keep);
    current_ = NewMemSegmentRegistry();
    for (const RegistryBatch& b : log_) EXPECT_TRUE(current_->Apply(b, true).ok());
    durable_ = log_.size();
  }
  absl::StatusOr<std::optional<Slot>> FindLive(const BlobKey& key) override {
    return cur()->FindLive(key);
  }
  absl::StatusOr<std::optional<Slot>> FindAt(const SlotLocation& l) override {
    return cur()->FindAt(l);
  }
  absl::StatusOr<std::vector<Slot>> SlotsOf(uint64_t segment) override {
    return cur()->SlotsOf(segment);
  }
  absl::StatusOr<std::vector<SegmentRow>> Segments() override { return cur()->Segments(); }
  absl::StatusOr<std::vector<SegmentUsage>> Usage() override { return cur()->Usage(); }
  absl::StatusOr<std::vector<Slot>> ListLive(const std::optional<BlobKey>& after,
                                             size_t limit) override {
    return cur()->ListLive(after, limit);
  }
  absl::StatusOr<std::vector<Slot>> ListLiveOfOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    return cur()->ListLiveOfOwner(owner, after, limit);
  }
  absl::StatusOr<std::vector<Slot>> ListExtras(size_t limit) override {
    return cur()->ListExtras(limit);
  }
  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override { return cur()->UsageByOwner(); }

 private:
  SegmentRegistry* cur() {
    std::lock_guard<std::mutex> lock(mu_);
    return current_.get();
  }
  std::mutex mu_;
  std::unique_ptr<SegmentRegistry> current_;
  std::vector<RegistryBatch> log_;
  size_t durable_ = 0;
};

class SegmentStoreTest : public ::testing::Test {
 protected:
  SegmentStoreTest() : base_(env::NewMemFileSystem()), fs_(base_.get()) {
    EXPECT_TRUE(base_->CreateDir("/peer").ok());
    options_.segment_target_bytes = 16 << 10;
    options_.compact_bytes_per_second = 0;
  }

  std::unique_ptr<SegmentBlobStore> Open(uint64_t quota = 1 << 30) {
    auto s = SegmentBlobStore::Open("/peer/blobs", quota, &registry_, options_, &fs_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Every held blob reads back intact and the counters agree with the registry.
  void ExpectConsistent(SegmentBlobStore* s) {
    auto held = s->ListHeld(std::nullopt, 1 << 20);
    ASSERT_TRUE(held.ok()) << held.status();
    uint64_t bytes = 0;
    for (const BlobRecord& r : *held) {
      EXPECT_EQ(*s->ScrubBlob(r.key), ScrubOutcome::kIntact) << r.key.DebugString();
      bytes += r.size;
    }
    StoreStats st = s->Stats();
    EXPECT_EQ(st.blobs, held->size());
    EXPECT_EQ(st.live_bytes, bytes);
    EXPECT_EQ(st.used, st.live_bytes + st.dead_bytes);
  }

  std::unique_ptr<env::FileSystem> base_;
  env::FaultInjectionFileSystem fs_;
  CrashableRegistry registry_;
  SegmentStoreOptions options_;
};

TEST_F(SegmentStoreTest, PutBatchIsOneSyncAndOneRegistryCommit) {
  auto s = Open();
  std::vector<TestBlob> blobs;
  std::vector<PutItem> items;
  for (int i = 0; i < 20; ++i) blobs.push_back(MakeBlob(i, 100));
  for (const TestBlob& b : blobs) items.push_back({b.key, b.data, b.checksum, {}});
  items.push_back(items[3]);  // repeated within the batch
  TestBlob bad = MakeBlob(99, 100);
  bad.data[10] ^= 1;
  items.push_back({bad.key, bad.data, bad.checksum, {}});
  const uint64_t syncs = fs_.Count(Op::kSync);
  auto out = s->PutBatch(items);
  ASSERT_EQ(out.size(), items.size());
  for (size_t i = 0; i < blobs.size(); ++i) EXPECT_EQ(*out[i], PutOutcome::kStored) << i;
  EXPECT_EQ(*out[20], PutOutcome::kAlreadyStored);
  EXPECT_EQ(out[21].status().code(), absl::StatusCode::kDataLoss);
  // One sync for the records plus one for the header of the segment the batch opened.
  EXPECT_EQ(fs_.Count(Op::kSync) - syncs, 2u);
  for (const TestBlob& b : blobs) EXPECT_EQ(*s->Get(b.key), b.data);
}

// Writers that arrive while a group is syncing are committed together by the next leader.
TEST_F(SegmentStoreTest, ConcurrentPutsShareSyncs) {
  auto s = Open();
  TestBlob first = MakeBlob(1000);
  ASSERT_TRUE(s->Put(first.key, first.data, first.checksum).ok());
  constexpr int kThreads = 8;
  std::vector<TestBlob> blobs;
  for (int i = 0; i < kThreads; ++i) blobs.push_back(MakeBlob(2000 + i));
  // Hold the first sync until every other writer queued behind it.
  std::atomic<bool> gate{true};
  fs_.SetSyncHook([&] {
    if (!gate.exchange(false)) return;
    while (s->QueuedWriters() < kThreads) std::this_thread::yield();
  });
  const uint64_t syncs = fs_.Count(Op::kSync);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto put = s->Put(blobs[i].key, blobs[i].data, blobs[i].checksum);
      EXPECT_TRUE(put.ok()) << put.status();
    });
  }
  for (auto& t : threads) t.join();
  fs_.SetSyncHook(nullptr);
  EXPECT_EQ(fs_.Count(Op::kSync) - syncs, 2u);  // the first writer's group, then all others
  for (const TestBlob& b : blobs) EXPECT_EQ(*s->Get(b.key), b.data);

  // Many threads, many puts, each sync as slow as it takes every busy thread to queue a put
  // behind it (a disk's latency, without timing): about one sync per round of threads.
  std::vector<TestBlob> many;
  for (int i = 0; i < 400; ++i) many.push_back(MakeBlob(3000 + i, 200));
  std::atomic<int> active{kThreads};
  fs_.SetSyncHook([&] {
    while (s->QueuedWriters() < static_cast<size_t>(active.load())) std::this_thread::yield();
  });
  const uint64_t before = fs_.Count(Op::kSync);
  const uint64_t segments_before = s->Stats().segments;
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < many.size(); i += kThreads) {
        auto put = s->Put(many[i].key, many[i].data, many[i].checksum);
        EXPECT_TRUE(put.ok()) << put.status();
      }
      --active;
    });
  }
  for (auto& t : threads) t.join();
  // Each new segment's header takes a sync of its own.
  const uint64_t used_syncs =
      fs_.Count(Op::kSync) - before - (s->Stats().segments - segments_before);
  std::printf("400 puts from %d threads: %llu syncs\n", kThreads,
              static_cast<unsigned long long>(used_syncs));
  fs_.SetSyncHook(nullptr);
  EXPECT_LE(used_syncs, many.size() / 3);
  for (const TestBlob& b : many) EXPECT_EQ(*s->Get(b.key), b.data);
  ExpectConsistent(s.get());
}

TEST_F(SegmentStoreTest, SegmentsAreSealedAtTheTargetSize) {
  auto s = Open();
  for (int i = 0; i < 100; ++i) {
    TestBlob b = MakeBlob(i, 1000);
    ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
  }
  StoreStats st = s->Stats();
  EXPECT_GE(st.segments, 100 * 1000 / (16 << 10));
  auto names = base_->ListDir("/peer/blobs/segments");
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) {
    auto id = ParseSegmentFileName(n);
    ASSERT_TRUE(id.has_value()) << n;
    auto size = base_->FileSize("/peer/blobs/segments/" + n);
    EXPECT_LT(*size, (16u << 10) + 1200) << n;  // at most one record past the target
  }
}

TEST_F(SegmentStoreTest, DeadBytesCountUntilCompactionReturnsThem) {
  options_.compact_below_live_fraction = 0.5;
  auto s = Open();
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 60; ++i) {
    blobs.push_back(MakeBlob(100 + i, 1000));
    ASSERT_TRUE(s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum).ok());
  }
  const uint64_t all = s->Stats().used;
  uint64_t deleted = 0;
  for (int i = 0; i < 60; ++i) {
    if (i % 4 == 3) continue;  // keep a quarter
    ASSERT_TRUE(s->Delete(blobs[i].key).ok());
    deleted += blobs[i].data.size();
  }
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, all);  // on disk until compaction
  EXPECT_EQ(st.dead_bytes, deleted);
  EXPECT_EQ(st.live_bytes, all - deleted);
  auto n = s->Compact();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0u);
  st = s->Stats();
  EXPECT_LT(st.dead_bytes, deleted);  // the open segment is left alone
  EXPECT_EQ(st.compactions, *n);
  EXPECT_GT(st.compaction_reclaimed_bytes, 0u);
  ASSERT_TRUE(s->CompactAll().ok());
  st = s->Stats();
  EXPECT_EQ(st.dead_bytes, 0u);
  EXPECT_EQ(st.used, all - deleted);
  for (int i = 0; i < 60; ++i) {
    if (i % 4 == 3) {
      EXPECT_EQ(*s->Get(blobs[i].key), blobs[i].data);
    } else {
      EXPECT_EQ(s->Get(blobs[i].key).status().code(), absl::StatusCode::kNotFound);
    }
  }
  // The files shrank accordingly.
  uint64_t on_disk = 0;
  auto names = base_->ListDir("/peer/blobs/segments");
  ASSERT_TRUE(names.ok()) << names.status();
  for (const std::string& name : *names) {
    on_disk += *base_->FileSize("/peer/blobs/segments/" + name);
  }
  EXPECT_LT(on_disk, all - deleted + 15 * (kRecordHeaderSize + kSegmentHeaderSize) + 2000);
  ExpectConsistent(s.get());
  s.reset();
  s = Open();
  EXPECT_EQ(s->Stats().used, all - deleted);
  ExpectConsistent(s.get());
}

TEST_F(SegmentStoreTest, CompactionIsRateLimited) {
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  options_.clock = &clock;
  options_.sleeper = &sleeper;
  options_.compact_bytes_per_second = 4000;
  auto s = Open();
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 40; ++i) {
    blobs.push_back(MakeBlob(500 + i, 1000));
    ASSERT_TRUE(s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum).ok());
  }
  for (int i = 0; i < 40; i += 3) ASSERT_TRUE(s->Delete(blobs[i].key).ok());
  for (int i = 1; i < 40; i += 3) ASSERT_TRUE(s->Delete(blobs[i].key).ok());
  auto n = s->Compact();
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_GT(*n, 0u);
  const uint64_t copied = s->Stats().compaction_copied_bytes;
  ASSERT_GT(copied, 4000u);
  // Waited about (copied - burst) / rate seconds.
  EXPECT_GE(sleeper.total(), std::chrono::milliseconds((copied - 4000) * 1000 / 4000));
  for (int i = 2; i < 40; i += 3) EXPECT_EQ(*s->Get(blobs[i].key), blobs[i].data);
}

// Registry commits of put groups are not synced: after a power cut that lost them, Open
// re-registers the records from the segments.
TEST_F(SegmentStoreTest, ReopenReplaysRecordsTheRegistryLost) {
  auto s = Open();
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 30; ++i) {
    blobs.push_back(MakeBlob(700 + i, 800));
    ASSERT_EQ(*s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum),
              PutOutcome::kStored);
  }
  s.reset();
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  // Lose every non-durable registry commit.
  registry_.Reset();
  s = Open();
  EXPECT_EQ(s->recovery().replayed_records, 30u);
  for (const TestBlob& b : blobs) EXPECT_EQ(*s->Get(b.key), b.data);
  EXPECT_EQ(s->Stats().blobs, 30u);
  ExpectConsistent(s.get());
}

// index.db lost (deleted, emptied, or replaced after damage): the registry comes back empty
// while the segments are on disk. Open rebuilds it from every intact record of every segment,
// compaction outputs included (they hold the only copy of what they copied), ignores a torn tail,
// and the store then holds, counts and serves exactly what it did (docs/formats.md "Segments",
// "Rebuilding the registry").
TEST_F(SegmentStoreTest, RegistryIsRebuiltFromSegmentsWhenLost) {
  std::vector<TestBlob> blobs;
  std::set<size_t> deleted;
  StoreStats before;
  std::vector<BlobRecord> held_before;
  std::vector<OwnerUsage> usage_before;
  {
    auto s = Open();
    for (int i = 0; i < 60; ++i) {
      blobs.push_back(MakeBlob(900 + i, 700 + 37 * i));
      PutOptions po;
      po.extra = i % 5 == 0;
      ASSERT_EQ(*s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum, po),
                PutOutcome::kStored);
    }
    for (size_t i = 1; i < 60; i += 3) {
      ASSERT_TRUE(s->Delete(blobs[i].key).ok());
      deleted.insert(i);
    }
    // Every segment holding deleted blobs is rewritten: compaction outputs hold the survivors.
    ASSERT_TRUE(s->CompactAll().ok());
    ASSERT_GT(s->Stats().compactions, 0u);
    for (int i = 60; i < 75; ++i) {
      blobs.push_back(MakeBlob(900 + i, 900));
      ASSERT_EQ(*s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum),
                PutOutcome::kStored);
    }
    before = s->Stats();
    held_before = *s->ListHeld(std::nullopt, 1 << 20);
    usage_before = *s->UsageByOwner();
    ASSERT_EQ(before.dead_bytes, 0u);
  }
  // A torn tail on the newest segment: the first bytes of one more record.
  auto names = base_->ListDir("/peer/blobs/segments");
  ASSERT_TRUE(names.ok());
  uint64_t newest = 0, compaction_outputs = 0;
  for (const std::string& name : *names) {
    auto id = ParseSegmentFileName(name);
    ASSERT_TRUE(id.has_value()) << name;
    newest = std::max(newest, *id);
    auto f = base_->Open("/peer/blobs/segments/" + name, env::OpenMode::kRead);
    Bytes hb(kSegmentHeaderSize);
    ASSERT_TRUE((*f)->ReadAt(0, hb).ok());
    if ((DecodeSegmentHeader(hb)->flags & kSegmentFlagCompaction) != 0) ++compaction_outputs;
  }
  ASSERT_GT(compaction_outputs, 0u);
  const TestBlob torn = MakeBlob(2000, 600);
  Bytes record;
  AppendRecord(record,
               RecordInfo{.key = torn.key,
                          .kind = 1,
                          .extra = false,
                          .checksum = torn.checksum,
                          .blob_size = torn.data.size()},
               torn.data);
  const std::string newest_path = "/peer/blobs/segments/" + SegmentFileName(newest);
  const uint64_t newest_size = *base_->FileSize(newest_path);
  {
    auto f = base_->Open(newest_path, env::OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(ByteSpan(record.data(), record.size() / 2)).ok());
  }

  registry_.Reset();  // index.db lost
  auto s = Open();
  ASSERT_NE(s, nullptr);
  const SegmentRecovery r = s->recovery();
  EXPECT_TRUE(r.registry_rebuilt);
  EXPECT_EQ(r.replayed_records, held_before.size());
  EXPECT_EQ(r.torn_tail_bytes, record.size() / 2);
  EXPECT_EQ(r.removed_segments, 0u);
  EXPECT_EQ(*base_->FileSize(newest_path), newest_size);
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (deleted.count(i)) {
      EXPECT_FALSE(*s->Has(blobs[i].key)) << i;
    } else {
      auto got = s->Get(blobs[i].key);
      ASSERT_TRUE(got.ok()) << i << ": " << got.status();
      EXPECT_EQ(*got, blobs[i].data) << i;
    }
  }
  EXPECT_FALSE(*s->Has(torn.key));
  const StoreStats after = s->Stats();
  EXPECT_EQ(after.blobs, before.blobs);
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(after.extra_blobs, before.extra_blobs);
  EXPECT_EQ(after.extra_bytes, before.extra_bytes);
  EXPECT_EQ(after.segments, before.segments);
  auto held_after = s->ListHeld(std::nullopt, 1 << 20);
  ASSERT_TRUE(held_after.ok());
  ASSERT_EQ(held_after->size(), held_before.size());
  for (size_t i = 0; i < held_before.size(); ++i) {
    EXPECT_EQ((*held_after)[i].key, held_before[i].key);
    EXPECT_EQ((*held_after)[i].size, held_before[i].size);
    EXPECT_EQ((*held_after)[i].checksum, held_before[i].checksum);
    EXPECT_EQ((*held_after)[i].extra, held_before[i].extra);
    EXPECT_EQ((*held_after)[i].kind, held_before[i].kind);
  }
  auto usage_after = s->UsageByOwner();
  ASSERT_TRUE(usage_after.ok());
  ASSERT_EQ(usage_after->size(), usage_before.size());
  for (size_t i = 0; i < usage_before.size(); ++i) {
    EXPECT_EQ((*usage_after)[i].owner, usage_before[i].owner);
    EXPECT_EQ((*usage_after)[i].blobs, usage_before[i].blobs);
    EXPECT_EQ((*usage_after)[i].bytes, usage_before[i].bytes);
    EXPECT_EQ((*usage_after)[i].extra_bytes, usage_before[i].extra_bytes);
  }
  ExpectConsistent(s.get());
  // The store goes on: new puts land, and the next open is an ordinary one.
  ASSERT_EQ(*s->Put(torn.key, torn.data, torn.checksum), PutOutcome::kStored);
  s.reset();
  s = Open();
  EXPECT_FALSE(s->recovery().registry_rebuilt);
  EXPECT_EQ(*s->Get(torn.key), torn.data);
  EXPECT_EQ(s->Stats().blobs, before.blobs + 1);
  ExpectConsistent(s.get());
}

// A torn last record (cut at every byte) is cut off on open; every earlier record survives.
TEST_F(SegmentStoreTest, TornTailIsCutOnOpen) {
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 4; ++i) blobs.push_back(MakeBlob(800 + i, 200));
  {
    auto s = Open();
    for (const TestBlob& b : blobs) ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
  }
  const std::string path = "/peer/blobs/segments/" + SegmentFileName(1);
  auto whole_file = base_->Open(path, env::OpenMode::kRead);
  ASSERT_TRUE(whole_file.ok());
  Bytes whole(*(*whole_file)->Size());
  ASSERT_TRUE((*whole_file)->ReadAt(0, whole).ok());
  const uint64_t last = whole.size() - (kRecordHeaderSize + blobs[3].data.size());
  for (uint64_t cut = last; cut < whole.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    // The file as a crash left it, and a registry that never heard of the last put.
    ASSERT_TRUE(base_->Remove(path).ok());
    auto f = base_->Open(path, env::OpenMode::kCreate);
    ASSERT_TRUE((*f)->Append(ByteSpan(whole.data(), cut)).ok());
    registry_.Reset();
    auto s = Open();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->recovery().torn_tail_bytes, cut - last);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(*s->Get(blobs[i].key), blobs[i].data);
    EXPECT_EQ(*s->Has(blobs[3].key), false);
    EXPECT_EQ(*base_->FileSize(path), last);
    // Appends continue after the cut.
    ASSERT_EQ(*s->Put(blobs[3].key, blobs[3].data, blobs[3].checksum), PutOutcome::kStored);
    EXPECT_EQ(*s->Get(blobs[3].key), blobs[3].data);
  }
}

TEST_F(SegmentStoreTest, FailedAppendFailsTheGroupAndTheStoreGoesOn) {
  auto s = Open();
  TestBlob a = MakeBlob(900), b = MakeBlob(901);
  ASSERT_TRUE(s->Put(a.key, a.data, a.checksum).ok());
  fs_.FailAfter(Op::kAppend, 1);
  EXPECT_EQ(s->Put(b.key, b.data, b.checksum).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(*s->Has(b.key), false);
  EXPECT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Get(a.key), a.data);
  EXPECT_EQ(*s->Get(b.key), b.data);
  // A failed sync: writes stop until reopened; nothing acknowledged is lost.
  TestBlob c = MakeBlob(902);
  fs_.FailAfter(Op::kSync, 1);
  EXPECT_FALSE(s->Put(c.key, c.data, c.checksum).ok());
  EXPECT_EQ(s->Put(c.key, c.data, c.checksum).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*s->Get(a.key), a.data);
  s.reset();
  ASSERT_TRUE(fs_.SimulateCrash().ok());
  s = Open();
  EXPECT_EQ(*s->Get(a.key), a.data);
  EXPECT_EQ(*s->Get(b.key), b.data);
  EXPECT_TRUE(s->Put(c.key, c.data, c.checksum).ok());
  ExpectConsistent(s.get());
}

// A full disk (docs/operations.md "A full disk"): a put that does not fit in the free space
// minus the reserve is refused before anything is written, Stats shows the disk's room, and
// puts work again once space returns.
TEST_F(SegmentStoreTest, PutsBeyondTheDiskAreRefusedUntilSpaceReturns) {
  options_.disk_reserve_bytes = 4096;
  auto s = Open(/*quota=*/1 << 20);
  TestBlob a = MakeBlob(950), b = MakeBlob(951);
  const uint64_t record = kRecordHeaderSize + a.data.size();
  // Room for the segment header and one record, not two.
  fs_.SimulateFreeSpace(4096 + kSegmentHeaderSize + record + record / 2);
  ASSERT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kStored);
  const uint64_t appends = fs_.Count(Op::kAppend);
  auto refused = s->Put(b.key, b.data, b.checksum);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("no space on disk"), std::string::npos)
      << refused.status();
  EXPECT_EQ(fs_.Count(Op::kAppend), appends);  // refused before writing
  StoreStats st = s->Stats();
  ASSERT_TRUE(st.disk_free.has_value());
  EXPECT_EQ(*st.disk_free, 4096 + record / 2);
  EXPECT_EQ(st.disk_reserve, 4096u);
  EXPECT_EQ(*DiskRoom(st), record / 2);
  EXPECT_EQ(Room(st), record / 2);  // the disk, not the quota, is the limit

  fs_.SimulateFreeSpace(64 << 20);  // space returns (files deleted elsewhere)
  st = s->Stats();
  EXPECT_EQ(Room(st), (1u << 20) - st.used);  // the quota is the limit again
  EXPECT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Get(a.key), a.data);
  EXPECT_EQ(*s->Get(b.key), b.data);
  ExpectConsistent(s.get());
}

// The free space the store saw does not hold the records (other writers took it, or the
// framing): the append hits ENOSPC part way. The group's puts are answered RESOURCE_EXHAUSTED,
// the torn record is cut at once, earlier blobs stay readable, later puts follow intact
// records, and a reopen finds no torn tail.
TEST_F(SegmentStoreTest, EnospcWhileAppendingRollsBackTheGroup) {
  options_.disk_reserve_bytes = 0;
  auto s = Open();
  TestBlob a = MakeBlob(960), b = MakeBlob(961), c = MakeBlob(962), d = MakeBlob(963);
  ASSERT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kStored);
  ASSERT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  auto loc = s->LocationOf(b.key);
  ASSERT_TRUE(loc.ok()) << loc.status();
  const std::string path = s->SegmentPath(loc->segment);
  const uint64_t good_end = *fs_.FileSize(path);
  // Admission counts each blob's bytes and one record header: two records need one more.
  fs_.SimulateFreeSpace(c.data.size() + d.data.size() + kRecordHeaderSize);
  std::vector<PutItem> items = {{c.key, c.data, c.checksum, {}}, {d.key, d.data, d.checksum, {}}};
  auto out = s->PutBatch(items);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  }
  EXPECT_EQ(*fs_.FileSize(path), good_end);  // no torn record left behind
  EXPECT_FALSE(*s->Has(c.key));
  EXPECT_FALSE(*s->Has(d.key));
  EXPECT_EQ(*s->Get(a.key), a.data);
  EXPECT_EQ(*s->Get(b.key), b.data);

  fs_.SimulateFreeSpace(std::nullopt);
  out = s->PutBatch(items);
  for (const auto& r : out) EXPECT_EQ(*r, PutOutcome::kStored);
  ExpectConsistent(s.get());
  s.reset();
  s = Open();
  EXPECT_EQ(s->recovery().torn_tail_bytes, 0u);
  for (const TestBlob* t : {&a, &b, &c, &d}) EXPECT_EQ(*s->Get(t->key), t->data);
  ExpectConsistent(s.get());
}

// ENOSPC in the segment a group opened (the previous one was full): the new segment is
// removed and the group's puts refused; the store goes on where it was.
TEST_F(SegmentStoreTest, EnospcInANewSegmentRemovesIt) {
  options_.disk_reserve_bytes = 0;
  options_.segment_target_bytes = 1024;
  auto s = Open();
  TestBlob a = MakeBlob(970), b = MakeBlob(971), c = MakeBlob(972);
  ASSERT_GT(a.data.size() + kRecordHeaderSize + kSegmentHeaderSize, 512u);
  ASSERT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kStored);
  ASSERT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);  // past the target
  const std::vector<std::string> before = *fs_.ListDir("/peer/blobs/segments");
  // Admission passes (the new segment's header is not counted); the record does not fit.
  fs_.SimulateFreeSpace(c.data.size() + kRecordHeaderSize);
  auto refused = s->Put(c.key, c.data, c.checksum);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(*fs_.ListDir("/peer/blobs/segments"), before);
  fs_.SimulateFreeSpace(std::nullopt);
  EXPECT_EQ(*s->Put(c.key, c.data, c.checksum), PutOutcome::kStored);
  for (const TestBlob* t : {&a, &b, &c}) EXPECT_EQ(*s->Get(t->key), t->data);
  ExpectConsistent(s.get());
  s.reset();
  s = Open();
  EXPECT_EQ(s->recovery().torn_tail_bytes, 0u);
  for (const TestBlob* t : {&a, &b, &c}) EXPECT_EQ(*s->Get(t->key), t->data);
}

// Random puts, deletes and compactions; at a random point a call fails or the power goes;
// after reopening, every acknowledged put is readable, every acknowledged delete stays
// deleted, and registry and segments agree. Repeated for many crash points.
TEST_F(SegmentStoreTest, CrashAtRandomPointsLosesNothingAcknowledged) {
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  options_.segment_target_bytes = 6 << 10;
  fs_.KeepRandomUnsyncedPrefixes(seed);
  std::vector<TestBlob> pool;
  for (int i = 0; i < 60; ++i) pool.push_back(MakeBlob(seed + i, 100 + rng() % 1500));
  std::map<BlobKey, const TestBlob*> acked;  // must be readable
  std::set<BlobKey> deleted;                 // must not be held
  constexpr int kRounds = 60;
  uint64_t replayed = 0, torn = 0, removed = 0, compactions = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto s = Open();
    ASSERT_NE(s, nullptr);
    for (const auto& [key, b] : acked) {
      auto got = s->Get(key);
      ASSERT_TRUE(got.ok()) << key.DebugString() << ": " << got.status();
      ASSERT_EQ(*got, b->data);
    }
    for (const BlobKey& key : deleted) ASSERT_EQ(*s->Has(key), false) << key.DebugString();
    ExpectConsistent(s.get());

    // Arm a failure somewhere in the next operations (or none: the crash alone).
    const Op ops[] = {Op::kAppend, Op::kSync, Op::kSyncDir, Op::kCreate, Op::kRemove};
    if (rng() % 4 != 0) fs_.FailAfter(ops[rng() % 5], 1 + rng() % 12);
    const int steps = 1 + static_cast<int>(rng() % 30);
    for (int step = 0; step < steps; ++step) {
      const int what = static_cast<int>(rng() % 10);
      if (what < 6) {
        // A batch of puts.
        std::vector<PutItem> items;
        std::vector<const TestBlob*> which;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) {
          const TestBlob& b = pool[rng() % pool.size()];
          items.push_back({b.key, b.data, b.checksum, {}});
          which.push_back(&b);
        }
        auto out = s->PutBatch(items);
        for (size_t i = 0; i < out.size(); ++i) {
          if (out[i].ok()) {
            acked[which[i]->key] = which[i];
            deleted.erase(which[i]->key);
          } else {
            // Unknown: may or may not be held after the crash.
            acked.erase(which[i]->key);
            deleted.erase(which[i]->key);
          }
        }
      } else if (what < 9) {
        const TestBlob& b = pool[rng() % pool.size()];
        absl::Status st = s->Delete(b.key);
        acked.erase(b.key);
        if (st.ok()) {
          deleted.insert(b.key);
        } else {
          deleted.erase(b.key);
        }
      } else {
        (void)(rng() % 2 ? s->Compact().status() : s->CompactAll());
      }
    }
    fs_.ClearFailures();
    replayed += s->recovery().replayed_records;
    torn += s->recovery().torn_tail_bytes;
    removed += s->recovery().removed_segments;
    compactions += s->Stats().compactions;
    s.reset();
    ASSERT_TRUE(fs_.SimulateCrash().ok());
    registry_.Crash(rng);
  }
  std::printf(
      "%d crashes: %zu blobs acknowledged at the end, %llu records replayed, %llu torn "
      "bytes cut, %llu segments removed on open, %llu compactions\n",
      kRounds, acked.size(), static_cast<unsigned long long>(replayed),
      static_cast<unsigned long long>(torn), static_cast<unsigned long long>(removed),
      static_cast<unsigned long long>(compactions));
}

}  // namespace
}  // namespace cairn::store
