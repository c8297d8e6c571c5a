#include "cairn/store/blob_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cairn/env/file.h"
#include "cairn/format/blob.h"
#include "cairn/store/scrub.h"
#include "cairn/store/segment.h"
#include "cairn/store/segment_blob_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::store {
namespace {

using ::testing::HasSubstr;

constexpr PeerId kOwner = 5;

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

// A valid sealed blob of `plain_size` random (incompressible) bytes: blobs of equal
// plain_size have equal sizes.
TestBlob MakeBlob(uint64_t seed, size_t plain_size = 1000, PeerId owner = kOwner) {
  std::mt19937_64 rng(seed);
  Bytes plain(plain_size);
  for (auto& b : plain) b = static_cast<uint8_t>(rng());
  auto sealed = format::SealChunk(TestKeys(), owner, BlobKind::kData, plain);
  EXPECT_TRUE(sealed.ok()) << sealed.status();
  TestBlob t;
  t.key = BlobKey{owner, sealed->id, 0};
  t.data = std::move(sealed->blob);
  t.checksum = codec::BlobChecksum(t.data);
  return t;
}

// Shard `shard` of a k+m erasure-coded chunk (the payload is arbitrary: the store cannot
// check it).
TestBlob MakeShard(const ChunkId& chunk, uint32_t shard, size_t payload = 300) {
  format::BlobHeader h;
  h.scheme = format::Scheme::kErasure;
  h.k = 4;
  h.m = 2;
  h.shard = shard;
  h.owner = kOwner;
  h.chunk = chunk;
  h.payload_size = payload;
  TestBlob t;
  t.key = BlobKey{kOwner, chunk, shard};
  t.data = format::EncodeBlobHeader(h);
  t.data.resize(t.data.size() + payload + codec::kTagSize, static_cast<uint8_t>(shard));
  t.checksum = codec::BlobChecksum(t.data);
  return t;
}

// Ways a held blob gets damaged behind the store's back.
enum class Damage { kFlipFirst, kFlipMiddle, kFlipLast, kTruncate, kExtend, kRemove };

std::string DamageName(Damage d) {
  switch (d) {
    case Damage::kFlipFirst:
      return "flip first byte";
    case Damage::kFlipMiddle:
      return "flip middle byte";
    case Damage::kFlipLast:
      return "flip last byte";
    case Damage::kTruncate:
      return "truncate";
    case Damage::kExtend:
      return "extend";
    case Damage::kRemove:
      return "remove";
  }
  return "?";
}

// Offset of the byte a flip damages in a blob of `size` bytes.
size_t FlipOffset(Damage d, size_t size) {
  return d == Damage::kFlipFirst ? 0 : d == Damage::kFlipMiddle ? size / 2 : size - 1;
}

// A store under test and whatever it needs to live.
class Harness {
 public:
  virtual ~Harness() = default;
  virtual BlobStore* store() = 0;
  // Damages the bytes held for `key`; false when this kind of store cannot suffer `d`.
  virtual bool Inflict(const BlobKey& key, Damage d) = 0;
  // Returns the space of deleted and evicted blobs: a segment store keeps their bytes (counted
  // in `used`) until compaction rewrites their segment; the others free it at once.
  virtual void ReturnDeadSpace() {}
};

class MemHarness : public Harness {
 public:
  explicit MemHarness(uint64_t quota) : store_(NewMemBlobStore(quota)) {}
  BlobStore* store() override { return store_.get(); }
  bool Inflict(const BlobKey& key, Damage d) override {
    if (d == Damage::kRemove) return false;  // memory does not lose files
    absl::Status st = MutateMemBlobForTesting(store_.get(), key, [d](Bytes& data) {
      switch (d) {
        case Damage::kTruncate:
          data.pop_back();
          break;
        case Damage::kExtend:
          data.push_back(0);
          break;
        default:
          data[FlipOffset(d, data.size())] ^= 0x04;
      }
    });
    EXPECT_TRUE(st.ok()) << st;
    return st.ok();
  }

 private:
  std::unique_ptr<BlobStore> store_;
};

void FlipByte(const std::string& path, size_t offset);

std::string MakeTempDir() {
  const char* base = getenv("TMPDIR");
  std::string templ = std::string(base ? base : "/tmp") + "/cairn_store_test.XXXXXX";
  char* dir = mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return templ;
}

class DiskHarness : public Harness {
 public:
  explicit DiskHarness(uint64_t quota)
      : dir_(MakeTempDir()), root_(dir_ + "/blobs"), registry_(NewMemBlobRegistry()) {
    Reopen(quota);
  }
  ~DiskHarness() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  BlobStore* store() override { return store_.get(); }
  DiskBlobStore* disk() { return store_.get(); }
  BlobRegistry* registry() { return registry_.get(); }
  const std::string& root() const { return root_; }

  void Reopen(uint64_t quota) {
    store_.reset();
    auto s = DiskBlobStore::Open(
        root_, quota, registry_.get(),
        [this](const BlobKey& key, ScrubOutcome outcome, const std::string& reason) {
          std::lock_guard<std::mutex> lock(mu_);
          damaged_.push_back({key, outcome, reason});
        });
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  bool Inflict(const BlobKey& key, Damage d) override {
    const std::string path = store_->PathFor(key);
    std::error_code ec;
    switch (d) {
      case Damage::kTruncate:
        std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1, ec);
        break;
      case Damage::kExtend: {
        std::ofstream f(path, std::ios::binary | std::ios::app);
        f.put('\0');
        break;
      }
      case Damage::kRemove:
        std::filesystem::remove(path, ec);
        break;
      default:
        FlipByte(path, FlipOffset(d, std::filesystem::file_size(path)));
    }
    EXPECT_FALSE(ec) << ec.message();
    return true;
  }

  struct Damaged {
    BlobKey key;
    ScrubOutcome outcome;
    std::string reason;
  };
  // What the store's DamageObserver reported.
  std::vector<Damaged> damaged() {
    std::lock_guard<std::mutex> lock(mu_);
    return damaged_;
  }

 private:
  std::mutex mu_;
  std::vector<Damaged> damaged_;
  std::string dir_;
  std::string root_;
  std::unique_ptr<BlobRegistry> registry_;
  std::unique_ptr<DiskBlobStore> store_;
};

// SegmentBlobStore on the real file system with small segments (so that puts seal segments),
// compaction unthrottled.
class SegmentHarness : public Harness {
 public:
  explicit SegmentHarness(uint64_t quota)
      : dir_(MakeTempDir()), root_(dir_ + "/peer"), registry_(NewMemSegmentRegistry()) {
    SegmentStoreOptions options;
    options.segment_target_bytes = 8 << 10;
    options.compact_bytes_per_second = 0;
    auto s = SegmentBlobStore::Open(root_, quota, registry_.get(), options, env::PosixFileSystem());
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) store_ = std::move(*s);
  }
  ~SegmentHarness() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  BlobStore* store() override { return store_.get(); }
  void ReturnDeadSpace() override {
    absl::Status st = store_->CompactAll();
    EXPECT_TRUE(st.ok()) << st;
  }
  // Damages the record in place: a flipped blob byte, or a length field one byte short or long
  // (the framing's checksum then fails). A segment does not lose one blob's file.
  bool Inflict(const BlobKey& key, Damage d) override {
    if (d == Damage::kRemove) return false;
    auto loc = store_->LocationOf(key);
    EXPECT_TRUE(loc.ok()) << loc.status();
    const std::string path = store_->SegmentPath(loc->segment);
    auto data = env::ReadFile(path);
    EXPECT_TRUE(data.ok()) << data.status();
    auto info = DecodeRecordHeader(ByteSpan(*data).subspan(loc->offset));
    EXPECT_TRUE(info.ok()) << info.status();
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    if (d == Damage::kTruncate || d == Damage::kExtend) {
      uint32_t len = GetU32(data->data() + loc->offset) + (d == Damage::kExtend ? 1 : -1);
      f.seekp(static_cast<std::streamoff>(loc->offset));
      for (int i = 0; i < 4; ++i) f.put(static_cast<char>(len >> (8 * i)));
    } else {
      size_t at = loc->offset + kRecordHeaderSize + FlipOffset(d, info->blob_size);
      f.seekp(static_cast<std::streamoff>(at));
      f.put(static_cast<char>((*data)[at] ^ 0x04));
    }
    return true;
  }

 private:
  std::string dir_;
  std::string root_;
  std::unique_ptr<SegmentRegistry> registry_;
  std::unique_ptr<SegmentBlobStore> store_;
};

using HarnessFactory = std::function<std::unique_ptr<Harness>(uint64_t quota)>;

struct StoreKind {
  std::string name;
  HarnessFactory make;
};

class BlobStoreConformanceTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  std::unique_ptr<Harness> Make(uint64_t quota = 1 << 30) { return GetParam().make(quota); }
};

TEST_P(BlobStoreConformanceTest, PutGetRoundTrip) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(1);
  auto put = s->Put(b.key, b.data, b.checksum);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, PutOutcome::kStored);
  auto got = s->Get(b.key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, b.data);
  EXPECT_EQ(*s->Has(b.key), true);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, b.data.size());
  EXPECT_EQ(st.blobs, 1u);
  EXPECT_EQ(st.quota, 1u << 30);
  // The owner can open what comes back.
  auto plain = format::OpenChunk(TestKeys(), kOwner, b.key.chunk, *got);
  EXPECT_TRUE(plain.ok()) << plain.status();
}

TEST_P(BlobStoreConformanceTest, PutIsIdempotent) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(2);
  ASSERT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  uint64_t used = s->Stats().used;
  auto again = s->Put(b.key, b.data, b.checksum);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, PutOutcome::kAlreadyStored);
  EXPECT_EQ(s->Stats().used, used);
  EXPECT_EQ(s->Stats().blobs, 1u);
  EXPECT_EQ(*s->Get(b.key), b.data);
}

TEST_P(BlobStoreConformanceTest, ChecksumMismatchIsDataLossAndStoresNothing) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(3);
  codec::Checksum wrong = b.checksum;
  wrong[15] ^= 1;
  EXPECT_EQ(s->Put(b.key, b.data, wrong).status().code(), absl::StatusCode::kDataLoss);
  Bytes damaged = b.data;
  damaged[damaged.size() / 2] ^= 0x10;  // damaged in transfer, sender's checksum
  EXPECT_EQ(s->Put(b.key, damaged, b.checksum).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*s->Has(b.key), false);
  EXPECT_EQ(s->Get(b.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s->Stats().used, 0u);
  EXPECT_EQ(s->Stats().blobs, 0u);
}

TEST_P(BlobStoreConformanceTest, EnvelopeKeyMismatchIsInvalidArgument) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(4);
  BlobKey other_owner = b.key;
  other_owner.owner += 1;
  BlobKey other_chunk = b.key;
  other_chunk.chunk.bytes[3] ^= 1;
  BlobKey other_shard = b.key;
  other_shard.shard = 1;
  for (const BlobKey& k : {other_owner, other_chunk, other_shard}) {
    SCOPED_TRACE(k.DebugString());
    auto put = s->Put(k, b.data, b.checksum);
    EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument) << put.status();
    EXPECT_EQ(*s->Has(k), false);
  }
  Bytes garbage = {'n', 'o', 't', ' ', 'a', ' ', 'b', 'l', 'o', 'b'};
  EXPECT_EQ(s->Put(b.key, garbage, codec::BlobChecksum(garbage)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Stats().used, 0u);
}

TEST_P(BlobStoreConformanceTest, QuotaIsEnforced) {
  TestBlob a = MakeBlob(5), b = MakeBlob(6), c = MakeBlob(7);
  ASSERT_EQ(a.data.size(), b.data.size());
  auto h = Make(a.data.size() + b.data.size() - 1);
  BlobStore* s = h->store();
  ASSERT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kStored);
  auto put = s->Put(b.key, b.data, b.checksum);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted) << put.status();
  EXPECT_EQ(s->Stats().used, a.data.size());
  EXPECT_EQ(*s->Has(b.key), false);
  // A repeated put of a held blob is answered even when full.
  EXPECT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kAlreadyStored);

  // Exactly full is allowed.
  ASSERT_TRUE(s->SetQuota(a.data.size() + b.data.size()).ok());
  EXPECT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(s->Stats().used, a.data.size() + b.data.size());

  // Shrinking below used keeps what is held and refuses new puts.
  ASSERT_TRUE(s->SetQuota(10).ok());
  EXPECT_EQ(s->Stats().quota, 10u);
  EXPECT_EQ(s->Put(c.key, c.data, c.checksum).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*s->Get(a.key), a.data);
  EXPECT_EQ(*s->Get(b.key), b.data);
  EXPECT_EQ(s->Stats().used, a.data.size() + b.data.size());
}

TEST_P(BlobStoreConformanceTest, MissingBlobIsNotFound) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(8);
  EXPECT_EQ(s->Get(b.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*s->Has(b.key), false);
}

TEST_P(BlobStoreConformanceTest, ShardsOfOneChunkAreDistinctBlobs) {
  auto h = Make();
  BlobStore* s = h->store();
  ChunkId chunk = MakeBlob(9).key.chunk;
  uint64_t total = 0;
  for (uint32_t i = 0; i < 6; ++i) {
    TestBlob t = MakeShard(chunk, i);
    auto put = s->Put(t.key, t.data, t.checksum);
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(*put, PutOutcome::kStored);
    total += t.data.size();
  }
  for (uint32_t i = 0; i < 6; ++i) {
    TestBlob t = MakeShard(chunk, i);
    EXPECT_EQ(*s->Get(t.key), t.data);
  }
  EXPECT_EQ(s->Stats().used, total);
  EXPECT_EQ(s->Stats().blobs, 6u);
}

TEST_P(BlobStoreConformanceTest, DeleteFreesSpaceAndIsIdempotent) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob a = MakeBlob(10), b = MakeBlob(11);
  ASSERT_TRUE(s->Put(a.key, a.data, a.checksum).ok());
  ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
  ASSERT_TRUE(s->Delete(a.key).ok());
  EXPECT_EQ(*s->Has(a.key), false);
  EXPECT_EQ(s->Get(a.key).status().code(), absl::StatusCode::kNotFound);
  h->ReturnDeadSpace();
  EXPECT_EQ(s->Stats().used, b.data.size());
  EXPECT_EQ(s->Stats().blobs, 1u);
  EXPECT_TRUE(s->Delete(a.key).ok());             // again
  EXPECT_TRUE(s->Delete(MakeBlob(12).key).ok());  // never held
  EXPECT_EQ(s->Stats().used, b.data.size());
  EXPECT_EQ(*s->Get(b.key), b.data);
  EXPECT_EQ(*s->Put(a.key, a.data, a.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Get(a.key), a.data);
}

TEST_P(BlobStoreConformanceTest, ConcurrentPutsCountEachBlobOnce) {
  auto h = Make();
  BlobStore* s = h->store();
  constexpr int kThreads = 4;
  std::vector<TestBlob> shared, own;
  for (int i = 0; i < 8; ++i) shared.push_back(MakeBlob(100 + i, 500 + 100 * i));
  for (int i = 0; i < kThreads * 3; ++i) own.push_back(MakeBlob(200 + i, 700 + 10 * i));
  uint64_t want = 0;
  for (const auto& b : shared) want += b.data.size();
  for (const auto& b : own) want += b.data.size();

  std::atomic<int> stored{0}, already{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<const TestBlob*> todo;
      for (const auto& b : shared) todo.push_back(&b);
      for (int i = 0; i < 3; ++i) todo.push_back(&own[t * 3 + i]);
      std::mt19937 rng(t);
      std::shuffle(todo.begin(), todo.end(), rng);
      for (const TestBlob* b : todo) {
        auto put = s->Put(b->key, b->data, b->checksum);
        if (!put.ok()) {
          ++failed;
        } else if (*put == PutOutcome::kStored) {
          ++stored;
        } else {
          ++already;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stored.load(), static_cast<int>(shared.size() + own.size()));
  EXPECT_EQ(already.load(), static_cast<int>(shared.size()) * (kThreads - 1));
  EXPECT_EQ(s->Stats().used, want);
  EXPECT_EQ(s->Stats().blobs, shared.size() + own.size());
  for (const auto& b : shared) EXPECT_EQ(*s->Get(b.key), b.data);
  for (const auto& b : own) EXPECT_EQ(*s->Get(b.key), b.data);
}

TEST_P(BlobStoreConformanceTest, ConcurrentPutsNeverExceedQuota) {
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 12; ++i) blobs.push_back(MakeBlob(300 + i));
  const uint64_t size = blobs[0].data.size();
  auto h = Make(3 * size + size / 2);  // room for exactly three
  BlobStore* s = h->store();
  std::atomic<int> stored{0}, full{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 12; i += 4) {
        auto put = s->Put(blobs[i].key, blobs[i].data, blobs[i].checksum);
        if (put.ok()) {
          ++stored;
        } else {
          EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted);
          ++full;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(stored.load(), 3);
  EXPECT_EQ(full.load(), 9);
  EXPECT_EQ(s->Stats().used, 3 * size);
}

TEST_P(BlobStoreConformanceTest, ListHeldWalksEveryBlobOnceInBatches) {
  auto h = Make();
  BlobStore* s = h->store();
  std::set<BlobKey> want;
  std::map<BlobKey, uint64_t> sizes;
  for (int i = 0; i < 11; ++i) {
    TestBlob b = MakeBlob(400 + i, 100 + i);
    ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
    want.insert(b.key);
    sizes[b.key] = b.data.size();
  }
  for (size_t limit : {size_t{1}, size_t{3}, size_t{11}, size_t{100}}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<BlobKey> seen;
    std::optional<BlobKey> after;
    while (true) {
      auto page = s->ListHeld(after, limit);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->size(), limit);
      for (const BlobRecord& r : *page) {
        seen.push_back(r.key);
        EXPECT_EQ(r.size, sizes[r.key]) << r.key.DebugString();
      }
      if (page->size() < limit) break;
      after = page->back().key;
    }
    EXPECT_EQ(std::set<BlobKey>(seen.begin(), seen.end()), want);
    EXPECT_EQ(seen.size(), want.size());  // nothing twice
  }
  // A blob deleted and one added behind the cursor do not derail a walk.
  auto first = s->ListHeld(std::nullopt, 4);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(s->Delete((*first)[3].key).ok());
  auto rest = s->ListHeld((*first)[3].key, 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(first->size() + rest->size(), want.size());
  EXPECT_EQ(s->ListHeld(std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// Every kind of damage is found by scrub and quarantines the blob: not served, not counted, and
// a fresh Put of the key (repair) stores it again.
TEST_P(BlobStoreConformanceTest, ScrubQuarantinesEveryKindOfDamage) {
  for (Damage d : {Damage::kFlipFirst, Damage::kFlipMiddle, Damage::kFlipLast, Damage::kTruncate,
                   Damage::kExtend, Damage::kRemove}) {
    SCOPED_TRACE(DamageName(d));
    auto h = Make();
    BlobStore* s = h->store();
    TestBlob victim = MakeBlob(500), bystander = MakeBlob(501);
    ASSERT_TRUE(s->Put(victim.key, victim.data, victim.checksum).ok());
    ASSERT_TRUE(s->Put(bystander.key, bystander.data, bystander.checksum).ok());
    EXPECT_EQ(*s->ScrubBlob(victim.key), ScrubOutcome::kIntact);
    if (!h->Inflict(victim.key, d)) continue;

    auto outcome = s->ScrubBlob(victim.key);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    const bool removed = d == Damage::kRemove;
    EXPECT_EQ(*outcome, removed ? ScrubOutcome::kMissing : ScrubOutcome::kQuarantined);
    EXPECT_EQ(*s->Has(victim.key), false);
    EXPECT_EQ(s->Get(victim.key).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(*s->ScrubBlob(victim.key), ScrubOutcome::kNotHeld);
    StoreStats st = s->Stats();
    EXPECT_EQ(st.used, bystander.data.size());
    EXPECT_EQ(st.blobs, 1u);
    EXPECT_EQ(st.quarantined, removed ? 0u : 1u);
    EXPECT_EQ(*s->Get(bystander.key), bystander.data);
    EXPECT_EQ(*s->ScrubBlob(bystander.key), ScrubOutcome::kIntact);

    EXPECT_EQ(*s->Put(victim.key, victim.data, victim.checksum), PutOutcome::kStored);
    EXPECT_EQ(*s->Get(victim.key), victim.data);
    EXPECT_EQ(*s->ScrubBlob(victim.key), ScrubOutcome::kIntact);
    EXPECT_EQ(s->Stats().used, victim.data.size() + bystander.data.size());
    EXPECT_EQ(s->Stats().blobs, 2u);
  }
}

// N of M blobs damaged: one pass reports exactly those N and quarantines them; the rest are
// untouched; a second pass finds nothing; re-putting the N repairs them.
TEST_P(BlobStoreConformanceTest, ScrubPassFindsExactlyTheDamagedBlobs) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto h = Make();
  BlobStore* s = h->store();
  constexpr int kBlobs = 40, kDamaged = 7;
  std::vector<TestBlob> blobs;
  for (int i = 0; i < kBlobs; ++i) {
    blobs.push_back(MakeBlob(rng(), 50 + rng() % 2000));
    ASSERT_TRUE(s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum).ok());
  }
  std::vector<int> order(kBlobs);
  for (int i = 0; i < kBlobs; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::set<BlobKey> damaged;
  uint64_t intact_bytes = 0, all_bytes = 0;
  for (int i = 0; i < kBlobs; ++i) {
    all_bytes += blobs[order[i]].data.size();
    if (i < kDamaged) {
      Damage d = static_cast<Damage>(rng() % 5);  // any kind but kRemove
      ASSERT_TRUE(h->Inflict(blobs[order[i]].key, d));
      damaged.insert(blobs[order[i]].key);
    } else {
      intact_bytes += blobs[order[i]].data.size();
    }
  }

  ScrubPassOptions options;
  options.batch = 6;
  std::set<BlobKey> reported;
  options.on_blob = [&](const BlobKey& key, ScrubOutcome outcome, const ScrubCounts&) {
    if (outcome == ScrubOutcome::kQuarantined) reported.insert(key);
  };
  auto pass = RunScrubPass(s, options);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->complete);
  EXPECT_EQ(pass->counts.checked, static_cast<uint64_t>(kBlobs));
  EXPECT_EQ(pass->counts.bytes, all_bytes);
  EXPECT_EQ(pass->counts.corrupt, static_cast<uint64_t>(kDamaged));
  EXPECT_EQ(pass->counts.missing, 0u);
  EXPECT_EQ(pass->counts.errors, 0u);
  EXPECT_EQ(reported, damaged);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, intact_bytes);
  EXPECT_EQ(st.blobs, static_cast<uint64_t>(kBlobs - kDamaged));
  EXPECT_EQ(st.quarantined, static_cast<uint64_t>(kDamaged));
  for (const TestBlob& b : blobs) {
    if (damaged.count(b.key)) {
      EXPECT_EQ(*s->Has(b.key), false);
      EXPECT_EQ(s->Get(b.key).status().code(), absl::StatusCode::kNotFound);
    } else {
      EXPECT_EQ(*s->Get(b.key), b.data);
    }
  }

  auto again = RunScrubPass(s, ScrubPassOptions{});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->counts.checked, static_cast<uint64_t>(kBlobs - kDamaged));
  EXPECT_EQ(again->counts.corrupt, 0u);

  for (const TestBlob& b : blobs) {
    if (damaged.count(b.key)) {
      EXPECT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
    }
  }
  EXPECT_EQ(s->Stats().used, all_bytes);
  for (const TestBlob& b : blobs) EXPECT_EQ(*s->Get(b.key), b.data);
}

// GetEach answers every key in order as Get would: held blobs, keys not held, a damaged blob
// (DATA_LOSS, then quarantined), across more keys than one registry lookup (256) takes.
TEST_P(BlobStoreConformanceTest, GetEachAnswersInOrderAsGetDoes) {
  auto h = Make();
  BlobStore* s = h->store();
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 300; ++i) {
    blobs.push_back(MakeBlob(700 + i));
    ASSERT_TRUE(s->Put(blobs.back().key, blobs.back().data, blobs.back().checksum).ok());
  }
  ASSERT_TRUE(h->Inflict(blobs[257].key, Damage::kFlipMiddle));
  std::vector<BlobKey> keys;
  for (int i = 0; i < 300; ++i) {
    keys.push_back(blobs[i].key);
    if (i % 100 == 0) keys.push_back(MakeBlob(5000 + i).key);  // not held
  }
  std::vector<absl::StatusOr<Bytes>> answers;
  std::vector<size_t> order;
  ASSERT_TRUE(s->GetEach(keys, [&](size_t i, absl::StatusOr<Bytes> blob) {
                 order.push_back(i);
                 answers.push_back(std::move(blob));
                 return absl::OkStatus();
               }).ok());
  ASSERT_EQ(answers.size(), keys.size());
  for (size_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i);
  size_t k = 0;
  for (int i = 0; i < 300; ++i) {
    if (i == 257) {
      EXPECT_EQ(answers[k].status().code(), absl::StatusCode::kDataLoss);
    } else {
      ASSERT_TRUE(answers[k].ok()) << i << ": " << answers[k].status();
      EXPECT_EQ(*answers[k], blobs[i].data) << i;
    }
    ++k;
    if (i % 100 == 0) {
      EXPECT_EQ(answers[k++].status().code(), absl::StatusCode::kNotFound);
    }
  }
  EXPECT_EQ(s->Get(blobs[257].key).status().code(), absl::StatusCode::kNotFound);  // quarantined
  // fn's first error stops it and is returned.
  size_t calls = 0;
  absl::Status stopped = s->GetEach(keys, [&](size_t, absl::StatusOr<Bytes>) {
    return ++calls == 3 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(stopped.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 3u);
}

// Get notices damage too: it answers DATA_LOSS once and quarantines the blob at once.
TEST_P(BlobStoreConformanceTest, GetQuarantinesADamagedBlob) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob b = MakeBlob(600), other = MakeBlob(601);
  ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
  ASSERT_TRUE(s->Put(other.key, other.data, other.checksum).ok());
  ASSERT_TRUE(h->Inflict(b.key, Damage::kFlipMiddle));
  auto got = s->Get(b.key);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("is corrupt"));
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("quarantined"));
  EXPECT_EQ(s->Get(b.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*s->Has(b.key), false);
  EXPECT_EQ(s->Stats().used, other.data.size());
  EXPECT_EQ(s->Stats().blobs, 1u);
  EXPECT_EQ(s->Stats().quarantined, 1u);
  EXPECT_EQ(*s->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Get(b.key), b.data);
}

// ---- Extra copies ----

constexpr PutOptions kExtra{.extra = true};

// Whether `key` is listed for its owner as extra (nullopt: not listed).
std::optional<bool> ListedExtra(BlobStore* s, const BlobKey& key) {
  auto page = s->ListOwner(key.owner, std::nullopt, 1000);
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return std::nullopt;
  for (const BlobRecord& r : *page) {
    if (r.key == key) return r.extra;
  }
  return std::nullopt;
}

// Blobs of one size, sorted by key descending (so that storing them in this order makes the
// store order the opposite of the key order).
std::vector<TestBlob> DescendingBlobs(uint64_t first_seed, int n) {
  std::vector<TestBlob> out;
  for (int i = 0; i < n; ++i) out.push_back(MakeBlob(first_seed + i));
  std::sort(out.begin(), out.end(),
            [](const TestBlob& a, const TestBlob& b) { return a.key > b.key; });
  return out;
}

TEST_P(BlobStoreConformanceTest, ExtraPutNeverEvictsAndLeavesHeldKeysAlone) {
  TestBlob regular = MakeBlob(800), extra = MakeBlob(801), more = MakeBlob(802);
  const uint64_t size = regular.data.size();
  auto h = Make(2 * size + size / 2);
  BlobStore* s = h->store();
  ASSERT_EQ(*s->Put(regular.key, regular.data, regular.checksum), PutOutcome::kStored);
  auto put = s->Put(extra.key, extra.data, extra.checksum, kExtra);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, PutOutcome::kStored);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, 2 * size);
  EXPECT_EQ(st.blobs, 2u);
  EXPECT_EQ(st.extra_blobs, 1u);
  EXPECT_EQ(st.extra_bytes, size);

  // Full: another extra put is refused and evicts nothing.
  auto full = s->Put(more.key, more.data, more.checksum, kExtra);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();
  EXPECT_EQ(*s->Has(extra.key), true);
  EXPECT_EQ(*s->Has(more.key), false);

  // Extra puts of held keys change nothing: a regular blob stays regular.
  EXPECT_EQ(*s->Put(regular.key, regular.data, regular.checksum, kExtra),
            PutOutcome::kAlreadyStored);
  EXPECT_EQ(*s->Put(extra.key, extra.data, extra.checksum, kExtra), PutOutcome::kAlreadyStored);
  EXPECT_EQ(ListedExtra(s, regular.key), false);
  EXPECT_EQ(ListedExtra(s, extra.key), true);
  st = s->Stats();
  EXPECT_EQ(st.used, 2 * size);
  EXPECT_EQ(st.extra_blobs, 1u);
  EXPECT_EQ(st.extra_bytes, size);
  EXPECT_EQ(*s->Get(extra.key), extra.data);
}

TEST_P(BlobStoreConformanceTest, RegularPutEvictsExtrasOldestStoredFirst) {
  std::vector<TestBlob> extras = DescendingBlobs(810, 3);
  TestBlob r1 = MakeBlob(820), r2 = MakeBlob(821);
  const uint64_t size = r1.data.size();
  auto h = Make(3 * size);
  BlobStore* s = h->store();
  for (const TestBlob& e : extras) {
    ASSERT_EQ(*s->Put(e.key, e.data, e.checksum, kExtra), PutOutcome::kStored);
  }
  ASSERT_EQ(s->Stats().extra_blobs, 3u);

  // Each regular put evicts exactly one extra: the oldest stored (not the smallest key).
  ASSERT_EQ(*s->Put(r1.key, r1.data, r1.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Has(extras[0].key), false);
  EXPECT_EQ(*s->Has(extras[1].key), true);
  EXPECT_EQ(*s->Has(extras[2].key), true);
  ASSERT_EQ(*s->Put(r2.key, r2.data, r2.checksum), PutOutcome::kStored);
  EXPECT_EQ(*s->Has(extras[1].key), false);
  EXPECT_EQ(*s->Has(extras[2].key), true);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, 3 * size);
  EXPECT_EQ(st.blobs, 3u);
  EXPECT_EQ(st.extra_blobs, 1u);
  EXPECT_EQ(st.extra_bytes, size);
  EXPECT_EQ(*s->Get(r1.key), r1.data);
  EXPECT_EQ(*s->Get(r2.key), r2.data);
  EXPECT_EQ(*s->Get(extras[2].key), extras[2].data);
}

// A regular put that would not fit even with every extra copy evicted evicts none of them.
TEST_P(BlobStoreConformanceTest, RegularPutThatCannotFitEvictsNothing) {
  TestBlob regular = MakeBlob(830), e1 = MakeBlob(831), e2 = MakeBlob(832);
  TestBlob big = MakeBlob(833, 3500);
  const uint64_t size = regular.data.size();
  const uint64_t quota = 3 * size + 100;
  ASSERT_GT(size + big.data.size(), quota);  // too big beside the regular blob
  auto h = Make(quota);
  BlobStore* s = h->store();
  ASSERT_TRUE(s->Put(regular.key, regular.data, regular.checksum).ok());
  ASSERT_TRUE(s->Put(e1.key, e1.data, e1.checksum, kExtra).ok());
  ASSERT_TRUE(s->Put(e2.key, e2.data, e2.checksum, kExtra).ok());
  auto put = s->Put(big.key, big.data, big.checksum);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted) << put.status();
  EXPECT_EQ(*s->Has(big.key), false);
  EXPECT_EQ(*s->Has(e1.key), true);
  EXPECT_EQ(*s->Has(e2.key), true);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, 3 * size);
  EXPECT_EQ(st.extra_blobs, 2u);

  // Also when the quota shrank below what the regular blobs use.
  ASSERT_TRUE(s->SetQuota(size - 1).ok());
  TestBlob small = MakeBlob(834, 10);
  EXPECT_EQ(s->Put(small.key, small.data, small.checksum).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s->Stats().extra_blobs, 2u);
}

TEST_P(BlobStoreConformanceTest, RegularPutOfAnExtraKeyPromotesIt) {
  TestBlob a = MakeBlob(840), b = MakeBlob(841);
  const uint64_t size = a.data.size();
  auto h = Make(size + size / 2);
  BlobStore* s = h->store();
  ASSERT_EQ(*s->Put(a.key, a.data, a.checksum, kExtra), PutOutcome::kStored);
  EXPECT_EQ(s->Stats().extra_blobs, 1u);
  auto put = s->Put(a.key, a.data, a.checksum);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, PutOutcome::kAlreadyStored);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, size);
  EXPECT_EQ(st.blobs, 1u);
  EXPECT_EQ(st.extra_blobs, 0u);
  EXPECT_EQ(st.extra_bytes, 0u);
  EXPECT_EQ(ListedExtra(s, a.key), false);
  // No longer evictable: neither a regular put nor EvictExtras removes it.
  EXPECT_EQ(s->Put(b.key, b.data, b.checksum).status().code(),
            absl::StatusCode::kResourceExhausted);
  auto evicted = s->EvictExtras(0);
  ASSERT_TRUE(evicted.ok()) << evicted.status();
  EXPECT_EQ(evicted->blobs, 0u);
  EXPECT_EQ(*s->Get(a.key), a.data);
}

TEST_P(BlobStoreConformanceTest, EvictExtrasOldestFirstDownToTarget) {
  std::vector<TestBlob> extras = DescendingBlobs(850, 4);
  TestBlob r1 = MakeBlob(860), r2 = MakeBlob(861);
  const uint64_t size = r1.data.size();
  auto h = Make();
  BlobStore* s = h->store();
  ASSERT_TRUE(s->Put(r1.key, r1.data, r1.checksum).ok());
  for (const TestBlob& e : extras) ASSERT_TRUE(s->Put(e.key, e.data, e.checksum, kExtra).ok());
  ASSERT_TRUE(s->Put(r2.key, r2.data, r2.checksum).ok());
  ASSERT_EQ(s->Stats().used, 6 * size);

  auto none = s->EvictExtras(6 * size);  // already there
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->blobs, 0u);
  EXPECT_EQ(none->bytes, 0u);

  auto one = s->EvictExtras(6 * size - 1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->blobs, 1u);
  EXPECT_EQ(one->bytes, size);
  EXPECT_EQ(*s->Has(extras[0].key), false);
  EXPECT_EQ(*s->Has(extras[1].key), true);

  auto two = s->EvictExtras(3 * size);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->blobs, 2u);
  EXPECT_EQ(*s->Has(extras[2].key), false);
  EXPECT_EQ(*s->Has(extras[3].key), true);

  // Below what the regular blobs use: every extra goes, nothing else.
  auto rest = s->EvictExtras(0);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->blobs, 1u);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, 2 * size);
  EXPECT_EQ(st.blobs, 2u);
  EXPECT_EQ(st.extra_blobs, 0u);
  EXPECT_EQ(st.extra_bytes, 0u);
  EXPECT_EQ(*s->Get(r1.key), r1.data);
  EXPECT_EQ(*s->Get(r2.key), r2.data);
}

TEST_P(BlobStoreConformanceTest, UsageByOwnerCountsEachOwnersBlobs) {
  auto h = Make();
  BlobStore* s = h->store();
  auto empty = s->UsageByOwner();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  TestBlob a1 = MakeBlob(870, 1000, 7), a2 = MakeBlob(871, 500, 7), a3 = MakeBlob(872, 300, 7);
  TestBlob b1 = MakeBlob(873, 200, 3);
  ASSERT_TRUE(s->Put(a1.key, a1.data, a1.checksum).ok());
  ASSERT_TRUE(s->Put(a2.key, a2.data, a2.checksum, kExtra).ok());
  ASSERT_TRUE(s->Put(a3.key, a3.data, a3.checksum, kExtra).ok());
  ASSERT_TRUE(s->Put(b1.key, b1.data, b1.checksum).ok());
  auto usage = s->UsageByOwner();
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->size(), 2u);
  const OwnerUsage& three = (*usage)[0];
  const OwnerUsage& seven = (*usage)[1];
  EXPECT_EQ(three.owner, 3u);
  EXPECT_EQ(three.blobs, 1u);
  EXPECT_EQ(three.bytes, b1.data.size());
  EXPECT_EQ(three.extra_blobs, 0u);
  EXPECT_EQ(three.extra_bytes, 0u);
  EXPECT_EQ(seven.owner, 7u);
  EXPECT_EQ(seven.blobs, 3u);
  EXPECT_EQ(seven.bytes, a1.data.size() + a2.data.size() + a3.data.size());
  EXPECT_EQ(seven.extra_blobs, 2u);
  EXPECT_EQ(seven.extra_bytes, a2.data.size() + a3.data.size());
  ASSERT_TRUE(s->Delete(b1.key).ok());
  usage = s->UsageByOwner();
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ((*usage)[0].owner, 7u);
}

TEST_P(BlobStoreConformanceTest, ListOwnerPagesThroughOneOwnersBlobs) {
  auto h = Make();
  BlobStore* s = h->store();
  std::map<BlobKey, TestBlob> mine;
  std::map<BlobKey, bool> extra_of;
  for (int i = 0; i < 11; ++i) {
    TestBlob b = MakeBlob(880 + i, 100 + i, 6);
    ASSERT_TRUE(s->Put(b.key, b.data, b.checksum, PutOptions{.extra = i % 3 == 0}).ok());
    mine[b.key] = b;
    extra_of[b.key] = i % 3 == 0;
  }
  for (PeerId other : {PeerId{5}, PeerId{7}}) {
    for (int i = 0; i < 3; ++i) {
      TestBlob b = MakeBlob(900 + 10 * other + i, 100, other);
      ASSERT_TRUE(s->Put(b.key, b.data, b.checksum).ok());
    }
  }
  for (size_t limit : {size_t{1}, size_t{4}, size_t{11}, size_t{50}}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<BlobKey> seen;
    std::optional<BlobKey> after;
    while (true) {
      auto page = s->ListOwner(6, after, limit);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->size(), limit);
      for (const BlobRecord& r : *page) {
        seen.push_back(r.key);
        ASSERT_EQ(mine.count(r.key), 1u) << r.key.DebugString();
        const TestBlob& b = mine[r.key];
        EXPECT_EQ(r.size, b.data.size());
        EXPECT_EQ(r.checksum, b.checksum);
        EXPECT_EQ(r.extra, extra_of[r.key]);
      }
      if (page->size() < limit) break;
      after = page->back().key;
    }
    std::vector<BlobKey> want;
    for (const auto& [key, b] : mine) want.push_back(key);
    EXPECT_EQ(seen, want);  // in key order, each once
  }
  size_t extras = 0;
  auto all = s->ListOwner(6, std::nullopt, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  for (const BlobRecord& r : *all) extras += r.extra ? 1 : 0;
  EXPECT_EQ(extras, 4u);  // i = 0, 3, 6, 9
  EXPECT_TRUE(s->ListOwner(4, std::nullopt, 10)->empty());
  EXPECT_EQ(s->ListOwner(6, std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// The kind of each blob is read from its envelope at Put and listed (ListBlobs, recovery).
TEST_P(BlobStoreConformanceTest, ListOwnerReportsTheKindOfEachBlob) {
  auto h = Make();
  BlobStore* s = h->store();
  std::map<BlobKey, uint8_t> want;
  int seed = 0;
  for (BlobKind kind : {BlobKind::kData, BlobKind::kTree, BlobKind::kSnapshot}) {
    Bytes plain(200 + seed, static_cast<uint8_t>(seed));
    auto sealed = format::SealChunk(TestKeys(), kOwner, kind, plain);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    BlobKey key{kOwner, sealed->id, 0};
    ASSERT_TRUE(s->Put(key, sealed->blob, codec::BlobChecksum(sealed->blob)).ok());
    want[key] = static_cast<uint8_t>(kind);
    ++seed;
  }
  TestBlob shard = MakeShard(MakeBlob(970).key.chunk, 3);  // a data shard (default kind)
  ASSERT_TRUE(s->Put(shard.key, shard.data, shard.checksum).ok());
  want[shard.key] = static_cast<uint8_t>(BlobKind::kData);
  auto listed = s->ListOwner(kOwner, std::nullopt, 100);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::map<BlobKey, uint8_t> got;
  for (const BlobRecord& r : *listed) got[r.key] = r.kind;
  EXPECT_EQ(got, want);
  EXPECT_EQ(BlobKindOf(shard.data), static_cast<uint8_t>(BlobKind::kData));
  EXPECT_EQ(BlobKindOf(Bytes(10, 0)), 0);
}

// Damage to an extra blob takes it out of the extra counters too.
TEST_P(BlobStoreConformanceTest, QuarantinedExtraBlobLeavesTheExtraCounters) {
  auto h = Make();
  BlobStore* s = h->store();
  TestBlob e = MakeBlob(950), r = MakeBlob(951);
  ASSERT_TRUE(s->Put(e.key, e.data, e.checksum, kExtra).ok());
  ASSERT_TRUE(s->Put(r.key, r.data, r.checksum).ok());
  ASSERT_TRUE(h->Inflict(e.key, Damage::kFlipMiddle));
  EXPECT_EQ(*s->ScrubBlob(e.key), ScrubOutcome::kQuarantined);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.used, r.data.size());
  EXPECT_EQ(st.blobs, 1u);
  EXPECT_EQ(st.extra_blobs, 0u);
  EXPECT_EQ(st.extra_bytes, 0u);
  // Repaired by a regular put: stored again as regular.
  EXPECT_EQ(*s->Put(e.key, e.data, e.checksum), PutOutcome::kStored);
  EXPECT_EQ(s->Stats().extra_blobs, 0u);
  EXPECT_EQ(ListedExtra(s, e.key), false);
}

// Regular puts racing to evict the same extra copies: the quota holds and the counters stay
// consistent with what is held.
TEST_P(BlobStoreConformanceTest, ConcurrentEvictingPutsKeepCountersConsistent) {
  std::vector<TestBlob> extras, regular;
  for (int i = 0; i < 8; ++i) extras.push_back(MakeBlob(960 + i));
  for (int i = 0; i < 8; ++i) regular.push_back(MakeBlob(980 + i));
  const uint64_t size = extras[0].data.size();
  auto h = Make(8 * size);
  BlobStore* s = h->store();
  for (const TestBlob& e : extras) ASSERT_TRUE(s->Put(e.key, e.data, e.checksum, kExtra).ok());
  std::vector<std::thread> threads;
  std::atomic<int> unexpected{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 8; i += 4) {
        auto put = s->Put(regular[i].key, regular[i].data, regular[i].checksum);
        if (!put.ok() && put.status().code() != absl::StatusCode::kResourceExhausted) ++unexpected;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  uint64_t used = 0, blobs = 0, extra_blobs = 0;
  for (const TestBlob& b : extras) {
    if (*s->Has(b.key)) {
      used += size;
      ++blobs;
      ++extra_blobs;
    }
  }
  for (const TestBlob& b : regular) {
    if (*s->Has(b.key)) {
      used += size;
      ++blobs;
    }
  }
  StoreStats st = s->Stats();
  EXPECT_LE(st.used, st.quota);
  EXPECT_EQ(st.used, used);
  EXPECT_EQ(st.blobs, blobs);
  EXPECT_EQ(st.extra_blobs, extra_blobs);
  EXPECT_EQ(st.extra_bytes, extra_blobs * size);
  EXPECT_GE(blobs - extra_blobs, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, BlobStoreConformanceTest,
    ::testing::Values(StoreKind{"Mem",
                                [](uint64_t quota) -> std::unique_ptr<Harness> {
                                  return std::make_unique<MemHarness>(quota);
                                }},
                      StoreKind{"Disk",
                                [](uint64_t quota) -> std::unique_ptr<Harness> {
                                  return std::make_unique<DiskHarness>(quota);
                                }},
                      StoreKind{"Segment",
                                [](uint64_t quota) -> std::unique_ptr<Harness> {
                                  return std::make_unique<SegmentHarness>(quota);
                                }}),
    [](const auto& info) { return info.param.name; });

// ---- DiskBlobStore only ----

std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

void FlipByte(const std::string& path, size_t offset) {
  auto data = env::ReadFile(path);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_LT(offset, data->size());
  (*data)[offset] ^= 0x04;
  // Overwrite in place, as bit rot would (no rename).
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>((*data)[offset]));
}

TEST(DiskBlobStoreTest, FilesAreLaidOutByChunkId) {
  DiskHarness h(1 << 30);
  TestBlob b = MakeBlob(20);
  b.key.shard = 0;
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  std::string hex = b.key.chunk.Hex();
  std::string want = h.root() + "/" + hex.substr(0, 2) + "/" + hex.substr(2, 2) + "/" +
                     std::to_string(kOwner) + "-" + hex + "-0";
  EXPECT_EQ(h.disk()->PathFor(b.key), want);
  EXPECT_EQ(FilesUnder(h.root()), std::vector<std::string>{want});
  auto on_disk = env::ReadFile(want);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, b.data);
  struct stat st;
  ASSERT_EQ(stat(want.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(DiskBlobStoreTest, FlippedByteOnDiskIsDataLossAndTheFileIsQuarantined) {
  for (Damage d : {Damage::kFlipFirst, Damage::kFlipMiddle, Damage::kFlipLast}) {
    SCOPED_TRACE(DamageName(d));
    DiskHarness h(1 << 30);
    TestBlob b = MakeBlob(21);
    ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
    const std::string path = h.disk()->PathFor(b.key);
    h.Inflict(b.key, d);
    Bytes damaged = b.data;
    damaged[FlipOffset(d, damaged.size())] ^= 0x04;
    auto got = h.store()->Get(b.key);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("is corrupt"));
    EXPECT_FALSE(std::filesystem::exists(path));
    // The damaged bytes are kept for inspection, named after the key.
    std::vector<std::string> kept = FilesUnder(h.disk()->QuarantineDir());
    ASSERT_EQ(kept.size(), 1u);
    EXPECT_THAT(kept[0], HasSubstr(path.substr(path.rfind('/') + 1) + "."));
    EXPECT_EQ(*env::ReadFile(kept[0]), damaged);
    ASSERT_EQ(h.damaged().size(), 1u);
    EXPECT_EQ(h.damaged()[0].key, b.key);
    EXPECT_EQ(h.damaged()[0].outcome, ScrubOutcome::kQuarantined);
    EXPECT_THAT(h.damaged()[0].reason, HasSubstr("checksum"));
    EXPECT_EQ(h.store()->Stats().quarantined_bytes, b.data.size());
  }
}

TEST(DiskBlobStoreTest, QuarantineSurvivesReopenAndRepairDoesNotClash) {
  DiskHarness h(1 << 30);
  TestBlob b = MakeBlob(23);
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  for (int round = 0; round < 2; ++round) {
    h.Inflict(b.key, Damage::kTruncate);
    EXPECT_EQ(*h.store()->ScrubBlob(b.key), ScrubOutcome::kQuarantined);
    EXPECT_EQ(*h.store()->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  }
  EXPECT_EQ(FilesUnder(h.disk()->QuarantineDir()).size(), 2u);
  h.Reopen(1 << 30);
  StoreStats st = h.store()->Stats();
  EXPECT_EQ(st.quarantined, 2u);
  EXPECT_EQ(st.quarantined_bytes, 2 * (b.data.size() - 1));
  EXPECT_EQ(st.used, b.data.size());
  EXPECT_EQ(st.blobs, 1u);
  EXPECT_EQ(*h.store()->Get(b.key), b.data);
  auto totals = h.registry()->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->used, b.data.size());
}

TEST(DiskBlobStoreTest, ScrubDropsTheRecordOfAMissingFile) {
  DiskHarness h(1 << 30);
  TestBlob a = MakeBlob(24), b = MakeBlob(25);
  ASSERT_TRUE(h.store()->Put(a.key, a.data, a.checksum).ok());
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  h.Inflict(a.key, Damage::kRemove);
  auto pass = RunScrubPass(h.store(), ScrubPassOptions{});
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->counts.checked, 2u);
  EXPECT_EQ(pass->counts.missing, 1u);
  EXPECT_EQ(pass->counts.corrupt, 0u);
  EXPECT_FALSE(h.registry()->Find(a.key)->has_value());
  EXPECT_EQ(h.store()->Stats().used, b.data.size());
  EXPECT_EQ(h.store()->Stats().quarantined, 0u);
  ASSERT_EQ(h.damaged().size(), 1u);
  EXPECT_EQ(h.damaged()[0].outcome, ScrubOutcome::kMissing);
}

// Scrub runs beside puts, gets and deletes of the same keys without losing a healthy blob.
TEST(DiskBlobStoreTest, ScrubIsSafeBesideConcurrentPutsAndDeletes) {
  DiskHarness h(1 << 30);
  std::vector<TestBlob> blobs;
  for (int i = 0; i < 30; ++i) blobs.push_back(MakeBlob(700 + i, 300));
  for (int i = 0; i < 15; ++i) {
    ASSERT_TRUE(h.store()->Put(blobs[i].key, blobs[i].data, blobs[i].checksum).ok());
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 30; ++i) {
        if ((i + round) % 3 == 0) {
          EXPECT_TRUE(h.store()->Delete(blobs[i].key).ok());
        } else {
          EXPECT_TRUE(h.store()->Put(blobs[i].key, blobs[i].data, blobs[i].checksum).ok());
        }
      }
    }
    done = true;
  });
  uint64_t corrupt = 0;
  ScrubPassOptions options;
  options.batch = 4;
  while (!done) {
    auto pass = RunScrubPass(h.store(), options);
    ASSERT_TRUE(pass.ok()) << pass.status();
    corrupt += pass->counts.corrupt + pass->counts.missing;
  }
  writer.join();
  EXPECT_EQ(corrupt, 0u);
  EXPECT_EQ(h.store()->Stats().quarantined, 0u);
  uint64_t used = 0, held = 0;
  for (const TestBlob& b : blobs) {
    if (*h.store()->Has(b.key)) {
      EXPECT_EQ(*h.store()->Get(b.key), b.data);
      used += b.data.size();
      ++held;
    }
  }
  EXPECT_EQ(h.store()->Stats().used, used);
  EXPECT_EQ(h.store()->Stats().blobs, held);
}

TEST(DiskBlobStoreTest, TruncatedOrMissingFileIsNotHeldAndPutRestoresIt) {
  DiskHarness h(1 << 30);
  TestBlob b = MakeBlob(22);
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  const uint64_t used = h.store()->Stats().used;
  const std::string path = h.disk()->PathFor(b.key);

  std::filesystem::resize_file(path, b.data.size() - 1);
  EXPECT_EQ(*h.store()->Has(b.key), false);
  EXPECT_EQ(h.store()->Get(b.key).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(h.store()->Stats().used, 0u);  // quarantined by that Get
  EXPECT_EQ(*h.store()->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(*h.store()->Get(b.key), b.data);
  EXPECT_EQ(h.store()->Stats().used, used);

  std::filesystem::remove(path);
  EXPECT_EQ(*h.store()->Has(b.key), false);
  EXPECT_EQ(h.store()->Get(b.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*h.store()->Put(b.key, b.data, b.checksum), PutOutcome::kStored);
  EXPECT_EQ(*h.store()->Get(b.key), b.data);
  EXPECT_EQ(h.store()->Stats().used, used);
  EXPECT_EQ(h.store()->Stats().blobs, 1u);
}

TEST(DiskBlobStoreTest, ReopenKeepsUsageAndBlobs) {
  DiskHarness h(1 << 30);
  std::vector<TestBlob> blobs;
  uint64_t total = 0;
  for (int i = 0; i < 5; ++i) {
    blobs.push_back(MakeBlob(30 + i, 100 * (i + 1)));
    ASSERT_TRUE(h.store()->Put(blobs.back().key, blobs.back().data, blobs.back().checksum).ok());
    total += blobs.back().data.size();
  }
  ASSERT_TRUE(h.store()->Delete(blobs[0].key).ok());
  total -= blobs[0].data.size();

  h.Reopen(12345);
  StoreStats st = h.store()->Stats();
  EXPECT_EQ(st.used, total);
  EXPECT_EQ(st.blobs, 4u);
  EXPECT_EQ(st.quota, 12345u);
  EXPECT_EQ(h.store()->Get(blobs[0].key).status().code(), absl::StatusCode::kNotFound);
  for (size_t i = 1; i < blobs.size(); ++i) EXPECT_EQ(*h.store()->Get(blobs[i].key), blobs[i].data);
  EXPECT_EQ(*h.store()->Put(blobs[1].key, blobs[1].data, blobs[1].checksum),
            PutOutcome::kAlreadyStored);
  auto totals = h.registry()->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->used, total);
}

TEST(DiskBlobStoreTest, ExtraFlagAndCountersSurviveReopen) {
  DiskHarness h(1 << 30);
  std::vector<TestBlob> extras = DescendingBlobs(990, 3);
  TestBlob regular = MakeBlob(995);
  const uint64_t size = regular.data.size();
  ASSERT_TRUE(h.store()->Put(regular.key, regular.data, regular.checksum).ok());
  for (const TestBlob& e : extras) {
    ASSERT_TRUE(h.store()->Put(e.key, e.data, e.checksum, kExtra).ok());
  }
  h.Reopen(4 * size);
  StoreStats st = h.store()->Stats();
  EXPECT_EQ(st.used, 4 * size);
  EXPECT_EQ(st.blobs, 4u);
  EXPECT_EQ(st.extra_blobs, 3u);
  EXPECT_EQ(st.extra_bytes, 3 * size);
  EXPECT_EQ(ListedExtra(h.store(), regular.key), false);
  for (const TestBlob& e : extras) EXPECT_EQ(ListedExtra(h.store(), e.key), true);
  auto totals = h.registry()->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->extra_blobs, 3u);
  EXPECT_EQ(totals->extra_bytes, 3 * size);

  // Promotion is durable, and eviction keeps the stored order across the restart.
  EXPECT_EQ(*h.store()->Put(extras[2].key, extras[2].data, extras[2].checksum),
            PutOutcome::kAlreadyStored);
  h.Reopen(4 * size);
  EXPECT_EQ(h.store()->Stats().extra_blobs, 2u);
  EXPECT_EQ(ListedExtra(h.store(), extras[2].key), false);
  TestBlob next = MakeBlob(996);
  ASSERT_EQ(*h.store()->Put(next.key, next.data, next.checksum), PutOutcome::kStored);
  EXPECT_EQ(*h.store()->Has(extras[0].key), false);
  EXPECT_EQ(*h.store()->Has(extras[1].key), true);
  EXPECT_FALSE(std::filesystem::exists(h.disk()->PathFor(extras[0].key)));
  st = h.store()->Stats();
  EXPECT_EQ(st.used, 4 * size);
  EXPECT_EQ(st.extra_blobs, 1u);
  EXPECT_EQ(st.extra_bytes, size);
  h.Reopen(4 * size);
  EXPECT_EQ(h.store()->Stats().extra_blobs, 1u);
  EXPECT_EQ(h.store()->Stats().used, 4 * size);
}

TEST(DiskBlobStoreTest, OpenRemovesLeftoverTempFiles) {
  DiskHarness h(1 << 30);
  TestBlob b = MakeBlob(40);
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  const std::string path = h.disk()->PathFor(b.key);
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string leftover1 = dir + "/.5-abc-0.tmp-0123456789abcdef";
  const std::string leftover2 = h.root() + "/.x.tmp-00";
  const std::string keep = h.root() + "/not-a-temp-file";
  for (const auto& p : {leftover1, leftover2, keep}) {
    ASSERT_TRUE(env::WriteFileAtomic(p, AsBytes("partial")).ok());
  }
  h.Reopen(1 << 30);
  EXPECT_FALSE(std::filesystem::exists(leftover1));
  EXPECT_FALSE(std::filesystem::exists(leftover2));
  EXPECT_TRUE(std::filesystem::exists(keep));
  EXPECT_EQ(*h.store()->Get(b.key), b.data);
}

TEST(DiskBlobStoreTest, NoTempFilesRemainAfterPuts) {
  DiskHarness h(1 << 30);
  std::set<std::string> want;
  for (int i = 0; i < 20; ++i) {
    TestBlob b = MakeBlob(50 + i, 64);
    ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
    want.insert(h.disk()->PathFor(b.key));
  }
  TestBlob bad = MakeBlob(99);
  bad.checksum[0] ^= 1;
  EXPECT_FALSE(h.store()->Put(bad.key, bad.data, bad.checksum).ok());
  std::vector<std::string> files = FilesUnder(h.root());
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()), want);
}

TEST(DiskBlobStoreTest, OpenCreatesRootAndRejectsBadArguments) {
  std::string dir = MakeTempDir();
  auto registry = NewMemBlobRegistry();
  auto s = DiskBlobStore::Open(dir + "/a/b/c/", 100, registry.get());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/a/b/c"));
  EXPECT_FALSE(DiskBlobStore::Open("", 100, registry.get()).ok());
  EXPECT_FALSE(DiskBlobStore::Open(dir + "/x", 100, nullptr).ok());
  ASSERT_TRUE(env::WriteFileAtomic(dir + "/file", AsBytes("x")).ok());
  EXPECT_FALSE(DiskBlobStore::Open(dir + "/file/sub", 100, registry.get()).ok());
  s->reset();
  std::filesystem::remove_all(dir);
}

TEST(MemBlobRegistryTest, AddFindRemoveTotalsForEach) {
  auto r = NewMemBlobRegistry();
  TestBlob a = MakeBlob(60), b = MakeBlob(61, 10);
  ASSERT_TRUE(r->Add({a.key, a.data.size(), a.checksum}).ok());
  ASSERT_TRUE(r->Add({b.key, b.data.size(), b.checksum}).ok());
  ASSERT_TRUE(r->Add({b.key, b.data.size(), b.checksum}).ok());  // replace
  auto found = r->Find(a.key);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->size, a.data.size());
  EXPECT_EQ((*found)->checksum, a.checksum);
  auto totals = r->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->used, a.data.size() + b.data.size());
  EXPECT_EQ(totals->blobs, 2u);
  int seen = 0;
  EXPECT_TRUE(r->ForEach([&](const BlobRecord&) {
                 ++seen;
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(r->ForEach([](const BlobRecord&) { return absl::InternalError("stop"); }).code(),
            absl::StatusCode::kInternal);
  auto all = r->List(std::nullopt, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].key, (*all)[1].key);
  auto after = r->List((*all)[0].key, 10);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].key, (*all)[1].key);
  EXPECT_EQ(r->List(std::nullopt, 1)->size(), 1u);
  EXPECT_TRUE(r->List((*all)[1].key, 10)->empty());
  EXPECT_EQ(r->List(std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(r->Remove(a.key).ok());
  ASSERT_TRUE(r->Remove(a.key).ok());
  EXPECT_FALSE(r->Find(a.key)->has_value());
  EXPECT_EQ(r->Totals()->blobs, 1u);
}

TEST(MemBlobRegistryTest, ExtrasUsageAndOwnerListing) {
  auto r = NewMemBlobRegistry();
  std::vector<TestBlob> blobs = DescendingBlobs(70, 4);
  for (size_t i = 0; i < blobs.size(); ++i) {
    BlobRecord rec{blobs[i].key, blobs[i].data.size(), blobs[i].checksum, i != 1};
    ASSERT_TRUE(r->Add(rec).ok());
  }
  TestBlob other = MakeBlob(80, 100, 9);
  ASSERT_TRUE(r->Add({other.key, other.data.size(), other.checksum, true}).ok());
  auto extras = r->ListExtras(10);
  ASSERT_TRUE(extras.ok());
  ASSERT_EQ(extras->size(), 4u);  // oldest added first
  EXPECT_EQ((*extras)[0].key, blobs[0].key);
  EXPECT_EQ((*extras)[1].key, blobs[2].key);
  EXPECT_EQ((*extras)[2].key, blobs[3].key);
  EXPECT_EQ((*extras)[3].key, other.key);
  EXPECT_EQ(r->ListExtras(2)->size(), 2u);
  ASSERT_TRUE(r->SetExtra(blobs[0].key, false).ok());
  EXPECT_EQ(r->ListExtras(10)->front().key, blobs[2].key);
  EXPECT_EQ(r->SetExtra(MakeBlob(81).key, true).code(), absl::StatusCode::kNotFound);
  auto totals = r->Totals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->blobs, 5u);
  EXPECT_EQ(totals->extra_blobs, 3u);
  auto usage = r->UsageByOwner();
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].owner, kOwner);
  EXPECT_EQ((*usage)[0].blobs, 4u);
  EXPECT_EQ((*usage)[0].extra_blobs, 2u);
  EXPECT_EQ((*usage)[1].owner, 9u);
  EXPECT_EQ((*usage)[1].extra_bytes, other.data.size());
  auto mine = r->ListOwner(kOwner, std::nullopt, 10);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 4u);
  EXPECT_EQ((*mine)[0].key, blobs[3].key);  // key order
  auto after = r->ListOwner(kOwner, (*mine)[1].key, 10);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].key, (*mine)[2].key);
}

TEST(MemMovedOutboxTest, QueueListAck) {
  auto o = NewMemMovedOutbox();
  BlobKey a = MakeBlob(90).key, b = MakeBlob(91).key, c = MakeBlob(92, 100, 3).key;
  ASSERT_TRUE(o->Add({b, 20}).ok());
  ASSERT_TRUE(o->Add({a, 21}).ok());
  ASSERT_TRUE(o->Add({c, 22}).ok());
  ASSERT_TRUE(o->Add({b, 23}).ok());  // replaces (and is now the newest)
  EXPECT_EQ(*o->Count(), 3u);
  EXPECT_EQ(*o->Owners(), (std::vector<PeerId>{3, kOwner}));
  EXPECT_EQ(*o->List(kOwner, 10), (std::vector<MovedBlob>{{a, 21}, {b, 23}}));
  EXPECT_EQ(*o->List(kOwner, 1), (std::vector<MovedBlob>{{a, 21}}));
  ASSERT_TRUE(o->Ack({{a, 21}, {b, 20}}).ok());  // b was re-queued with another peer: stays
  EXPECT_EQ(*o->List(kOwner, 10), (std::vector<MovedBlob>{{b, 23}}));
  ASSERT_TRUE(o->Ack({{b, 23}, {c, 22}}).ok());
  EXPECT_EQ(*o->Count(), 0u);
  EXPECT_TRUE(o->Owners()->empty());
}

}  // namespace
}  // namespace cairn::store
