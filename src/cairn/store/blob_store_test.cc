#include "cairn/store/blob_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cairn/env/file.h"
#include "cairn/format/blob.h"
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

// A store under test and whatever it needs to live.
class Harness {
 public:
  virtual ~Harness() = default;
  virtual BlobStore* store() = 0;
};

class MemHarness : public Harness {
 public:
  explicit MemHarness(uint64_t quota) : store_(NewMemBlobStore(quota)) {}
  BlobStore* store() override { return store_.get(); }

 private:
  std::unique_ptr<BlobStore> store_;
};

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
    auto s = DiskBlobStore::Open(root_, quota, registry_.get());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

 private:
  std::string dir_;
  std::string root_;
  std::unique_ptr<BlobRegistry> registry_;
  std::unique_ptr<DiskBlobStore> store_;
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

INSTANTIATE_TEST_SUITE_P(
    Stores, BlobStoreConformanceTest,
    ::testing::Values(StoreKind{"Mem",
                                [](uint64_t quota) -> std::unique_ptr<Harness> {
                                  return std::make_unique<MemHarness>(quota);
                                }},
                      StoreKind{"Disk",
                                [](uint64_t quota) -> std::unique_ptr<Harness> {
                                  return std::make_unique<DiskHarness>(quota);
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

TEST(DiskBlobStoreTest, FlippedByteOnDiskIsDataLoss) {
  DiskHarness h(1 << 30);
  TestBlob b = MakeBlob(21);
  ASSERT_TRUE(h.store()->Put(b.key, b.data, b.checksum).ok());
  for (size_t offset : {size_t{0}, b.data.size() / 2, b.data.size() - 1}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    FlipByte(h.disk()->PathFor(b.key), offset);
    auto got = h.store()->Get(b.key);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("is corrupt"));
    FlipByte(h.disk()->PathFor(b.key), offset);  // restore
    EXPECT_EQ(*h.store()->Get(b.key), b.data);
  }
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
  ASSERT_TRUE(r->Remove(a.key).ok());
  ASSERT_TRUE(r->Remove(a.key).ok());
  EXPECT_FALSE(r->Find(a.key)->has_value());
  EXPECT_EQ(r->Totals()->blobs, 1u);
}

}  // namespace
}  // namespace cairn::store
