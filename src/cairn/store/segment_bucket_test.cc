// Sealed segments kept in a bucket (segment_bucket.h, SegmentBlobStore with options.bucket):
// the index object format, upload and ranged reads, recovery from a crash before an upload,
// rebuilding the registry from the bucket, deleting the objects of compacted segments.
#include "cairn/store/segment_bucket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "cairn/base/status.h"
#include "cairn/format/blob.h"
#include "cairn/store/s3/memory_object_store.h"
#include "cairn/store/segment_blob_store.h"

namespace cairn::store {
namespace {

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

TestBlob MakeBlob(uint64_t seed, size_t plain_size) {
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

// A MemoryObjectStore that counts ranged reads and can be made unreachable.
class TestBucket : public s3::MemoryObjectStore {
 public:
  absl::Status Put(std::string_view key, ByteSpan data) override {
    if (down) return absl::UnavailableError("bucket down");
    return MemoryObjectStore::Put(key, data);
  }
  absl::Status PutFile(std::string_view key, env::FileSystem* fs,
                       const std::string& path) override {
    if (down) return absl::UnavailableError("bucket down");
    return MemoryObjectStore::PutFile(key, fs, path);
  }
  absl::StatusOr<Bytes> GetRange(std::string_view key, uint64_t offset, uint64_t length) override {
    ++range_gets;
    if (down) return absl::UnavailableError("bucket down");
    if (bad_answers > 0) {
      // What a broken connection or proxy may hand back: the store's DATA_LOSS for an answer
      // that cannot be what was asked, or fewer bytes than asked.
      --bad_answers;
      if (bad_answers % 2 == 0) return absl::DataLossError("answer holds 3 bytes");
      auto got = MemoryObjectStore::GetRange(key, offset, length);
      if (got.ok() && !got->empty()) got->pop_back();
      return got;
    }
    return MemoryObjectStore::GetRange(key, offset, length);
  }
  absl::Status Delete(std::string_view key) override {
    if (down) return absl::UnavailableError("bucket down");
    return MemoryObjectStore::Delete(key);
  }
  bool Exists(const std::string& key) { return MemoryObjectStore::Head(key).ok(); }
  // Flips one byte of an object in place (damage behind the store's back).
  void Flip(const std::string& key, uint64_t at) {
    auto data = MemoryObjectStore::GetRange(key, 0, MemoryObjectStore::Head(key)->size);
    ASSERT_TRUE(data.ok()) << data.status();
    (*data)[at] ^= 0x5a;
    ASSERT_TRUE(MemoryObjectStore::Put(key, *data).ok());
  }
  std::atomic<bool> down{false};
  std::atomic<uint64_t> range_gets{0};
  // The next this many ranged reads get a wrong answer (alternately DATA_LOSS and short).
  std::atomic<int> bad_answers{0};
};

TEST(SegmentIndexTest, RoundTripsAndRejectsDamage) {
  SegmentIndex index;
  index.id = 42;
  index.flags = kSegmentFlagCompaction;
  uint64_t offset = kSegmentHeaderSize;
  for (int i = 0; i < 3; ++i) {
    TestBlob b = MakeBlob(i, 100 + i);
    SegmentIndexEntry e;
    e.offset = offset;
    e.info.key = b.key;
    e.info.kind = static_cast<uint8_t>(BlobKind::kData);
    e.info.extra = i == 1;
    e.info.checksum = b.checksum;
    e.info.blob_size = b.data.size();
    offset += e.info.RecordSize();
    index.entries.push_back(e);
  }
  index.segment_size = offset;
  Bytes data = EncodeSegmentIndex(index);
  EXPECT_EQ(data.size(), kSegmentIndexHeaderSize + 3 * kSegmentIndexEntrySize + 8);
  auto back = DecodeSegmentIndex(data);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->flags, kSegmentFlagCompaction);
  EXPECT_EQ(back->segment_size, offset);
  ASSERT_EQ(back->entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->entries[i].offset, index.entries[i].offset);
    EXPECT_EQ(back->entries[i].info.key, index.entries[i].info.key);
    EXPECT_EQ(back->entries[i].info.checksum, index.entries[i].info.checksum);
    EXPECT_EQ(back->entries[i].info.blob_size, index.entries[i].info.blob_size);
    EXPECT_EQ(back->entries[i].info.extra, index.entries[i].info.extra);
    EXPECT_EQ(back->entries[i].info.kind, index.entries[i].info.kind);
  }
  for (size_t at : {size_t{0}, size_t{20}, kSegmentIndexHeaderSize + 5, data.size() - 1}) {
    Bytes bad = data;
    bad[at] ^= 1;
    EXPECT_EQ(DecodeSegmentIndex(bad).status().code(), absl::StatusCode::kDataLoss) << at;
  }
  EXPECT_EQ(DecodeSegmentIndex(ByteSpan(data).subspan(0, data.size() - 9)).status().code(),
            absl::StatusCode::kDataLoss);
  // A record reaching past the segment: refused even with a valid checksum.
  SegmentIndex past = index;
  past.segment_size = offset - 1;
  EXPECT_EQ(DecodeSegmentIndex(EncodeSegmentIndex(past)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(SegmentObjectKey(7), "segments/00000007.seg");
  EXPECT_EQ(SegmentIndexKey(7), "segments/00000007.idx");
  EXPECT_EQ(ParseSegmentObjectKey("segments/00000007.idx")->id, 7u);
  EXPECT_TRUE(ParseSegmentObjectKey("segments/00000007.idx")->index);
  EXPECT_FALSE(ParseSegmentObjectKey("segments/00000007.seg")->index);
  EXPECT_FALSE(ParseSegmentObjectKey("segments/x.seg").has_value());
  EXPECT_FALSE(ParseSegmentObjectKey("other/00000007.seg").has_value());
}

class BucketStoreTest : public ::testing::Test {
 protected:
  BucketStoreTest() : fs_(env::NewMemFileSystem()), registry_(NewMemSegmentRegistry()) {
    EXPECT_TRUE(fs_->CreateDir("/peer").ok());
    options_.segment_target_bytes = 16 << 10;
    options_.compact_bytes_per_second = 0;
    options_.bucket = &bucket_;
  }

  std::unique_ptr<SegmentBlobStore> Open() {
    auto s = SegmentBlobStore::Open("/peer/blobs", 1 << 30, registry_.get(), options_, fs_.get());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  void PutBlobs(SegmentBlobStore* s, int from, int to) {
    for (int i = from; i < to; ++i) {
      blobs_.push_back(MakeBlob(1000 + i, 700 + 31 * i));
      ASSERT_EQ(*s->Put(blobs_.back().key, blobs_.back().data, blobs_.back().checksum),
                PutOutcome::kStored);
    }
  }

  bool LocalFile(SegmentBlobStore* s, uint64_t id) { return *fs_->Exists(s->SegmentPath(id)); }

  // Every blob in blobs_ (except `gone`) reads back byte for byte.
  void ExpectAllReadable(SegmentBlobStore* s, const std::set<size_t>& gone = {}) {
    for (size_t i = 0; i < blobs_.size(); ++i) {
      auto got = s->Get(blobs_[i].key);
      if (gone.count(i)) {
        EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << i;
        continue;
      }
      ASSERT_TRUE(got.ok()) << i << ": " << got.status();
      EXPECT_EQ(*got, blobs_[i].data) << i;
      EXPECT_EQ(*s->ScrubBlob(blobs_[i].key), ScrubOutcome::kIntact) << i;
    }
  }

  std::unique_ptr<env::FileSystem> fs_;
  std::unique_ptr<SegmentRegistry> registry_;
  TestBucket bucket_;
  SegmentStoreOptions options_;
  std::vector<TestBlob> blobs_;
};

TEST_F(BucketStoreTest, SealedSegmentsAreUploadedAndReadWithRangedGets) {
  auto s = Open();
  PutBlobs(s.get(), 0, 60);
  auto sealed = registry_->Segments();
  ASSERT_TRUE(sealed.ok());
  std::set<uint64_t> sealed_ids;
  uint64_t open_id = 0;
  for (const SegmentRow& r : *sealed) {
    if (r.state == SegmentState::kSealed) sealed_ids.insert(r.id);
    if (r.state == SegmentState::kOpen) open_id = r.id;
  }
  ASSERT_GE(sealed_ids.size(), 2u);
  ASSERT_NE(open_id, 0u);
  auto n = s->UploadSealed();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, sealed_ids.size());
  EXPECT_EQ(s->UploadedSegments(), sealed_ids);
  EXPECT_EQ(s->RemoteSegments(), sealed_ids);
  for (uint64_t id : sealed_ids) {
    EXPECT_FALSE(LocalFile(s.get(), id)) << id;
    EXPECT_TRUE(bucket_.Exists(SegmentObjectKey(id))) << id;
    EXPECT_TRUE(bucket_.Exists(SegmentIndexKey(id))) << id;
  }
  // The open segment stays local and is not uploaded.
  EXPECT_TRUE(LocalFile(s.get(), open_id));
  EXPECT_FALSE(bucket_.Exists(SegmentObjectKey(open_id)));
  // A second pass has nothing to do.
  EXPECT_EQ(*s->UploadSealed(), 0u);
  bucket_.range_gets = 0;
  ExpectAllReadable(s.get());
  EXPECT_GT(bucket_.range_gets, 0u);
  // An unreachable bucket: reads of remote segments fail with its code, not as corruption.
  bucket_.down = true;
  auto where = s->LocationOf(blobs_[0].key);
  ASSERT_TRUE(where.ok());
  ASSERT_TRUE(sealed_ids.count(where->segment));
  EXPECT_EQ(s->Get(blobs_[0].key).status().code(), absl::StatusCode::kUnavailable);
  bucket_.down = false;
  EXPECT_EQ(*s->Get(blobs_[0].key), blobs_[0].data);
  EXPECT_EQ(s->Stats().quarantined_bytes, 0u);
}

// Has answers for blobs whose segment is only in the bucket (HasBlobs, and so `cairn check`,
// must count them), without reading the object.
TEST_F(BucketStoreTest, HasFindsBlobsOfRemoteSegments) {
  auto s = Open();
  PutBlobs(s.get(), 0, 40);
  ASSERT_GT(*s->UploadSealed(), 0u);
  const std::set<uint64_t> remote = s->RemoteSegments();
  ASSERT_FALSE(remote.empty());
  bucket_.range_gets = 0;
  size_t in_remote = 0;
  for (const TestBlob& b : blobs_) {
    EXPECT_TRUE(*s->Has(b.key)) << b.key.DebugString();
    if (remote.count(s->LocationOf(b.key)->segment)) ++in_remote;
  }
  EXPECT_GT(in_remote, 0u);
  EXPECT_EQ(bucket_.range_gets, 0u);
  EXPECT_FALSE(*s->Has(MakeBlob(1, 100).key));
}

// A read the bucket answers wrongly (a short body, a Content-Range that does not match) or not
// at all is not damage: Get and ScrubBlob fail with UNAVAILABLE and nothing is quarantined. A
// wrong answer is asked again. Bytes really changed in the object are quarantined.
TEST_F(BucketStoreTest, WrongOrFailedRangedReadsDoNotQuarantine) {
  auto s = Open();
  PutBlobs(s.get(), 0, 40);
  ASSERT_GT(*s->UploadSealed(), 0u);
  const std::set<uint64_t> remote = s->RemoteSegments();
  size_t i = 0;
  while (i < blobs_.size() && !remote.count(s->LocationOf(blobs_[i].key)->segment)) ++i;
  ASSERT_LT(i, blobs_.size());
  const BlobKey key = blobs_[i].key;

  // One or two wrong answers: asked again, the read succeeds.
  bucket_.bad_answers = kRemoteReadAttempts - 1;
  auto got = s->Get(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blobs_[i].data);
  bucket_.bad_answers = kRemoteReadAttempts - 1;
  EXPECT_EQ(*s->ScrubBlob(key), ScrubOutcome::kIntact);

  // Only wrong answers: UNAVAILABLE, not DATA_LOSS, and the blob stays held.
  bucket_.bad_answers = 1000;
  EXPECT_EQ(s->Get(key).status().code(), absl::StatusCode::kUnavailable);
  auto scrub = s->ScrubBlob(key);
  EXPECT_EQ(scrub.status().code(), absl::StatusCode::kUnavailable) << scrub.status();
  // Unreachable (the S3 store's retries exhausted): the same.
  bucket_.bad_answers = 0;
  bucket_.down = true;
  EXPECT_EQ(s->Get(key).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s->ScrubBlob(key).status().code(), absl::StatusCode::kUnavailable);
  bucket_.down = false;
  EXPECT_EQ(s->Stats().quarantined, 0u);
  EXPECT_TRUE(*s->Has(key));
  ExpectAllReadable(s.get());

  // A byte of the blob changed inside the object: quarantined.
  const SlotLocation at = *s->LocationOf(key);
  bucket_.Flip(SegmentObjectKey(at.segment), at.offset + kRecordHeaderSize + 5);
  EXPECT_EQ(*s->ScrubBlob(key), ScrubOutcome::kQuarantined);
  EXPECT_EQ(s->Stats().quarantined, 1u);
  EXPECT_FALSE(*s->Has(key));
  EXPECT_EQ(s->Get(key).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BucketStoreTest, KeepLocalSegmentsReadsLocally) {
  options_.keep_local_segments = true;
  auto s = Open();
  PutBlobs(s.get(), 0, 40);
  ASSERT_GT(*s->UploadSealed(), 0u);
  for (uint64_t id : s->UploadedSegments()) EXPECT_TRUE(LocalFile(s.get(), id)) << id;
  EXPECT_TRUE(s->RemoteSegments().empty());
  bucket_.range_gets = 0;
  ExpectAllReadable(s.get());
  EXPECT_EQ(bucket_.range_gets, 0u);
}

// A crash after an upload was confirmed but before the local file was removed (or a peer that
// stops keeping a local cache): the next open removes the local copies, reads go to the bucket.
TEST_F(BucketStoreTest, UploadedSegmentsLeftOnDiskAreDroppedOnReopen) {
  options_.keep_local_segments = true;
  std::set<uint64_t> uploaded;
  {
    auto s = Open();
    PutBlobs(s.get(), 0, 50);
    ASSERT_GT(*s->UploadSealed(), 0u);
    uploaded = s->UploadedSegments();
    for (uint64_t id : uploaded) ASSERT_TRUE(LocalFile(s.get(), id)) << id;
  }
  options_.keep_local_segments = false;
  auto s = Open();
  EXPECT_EQ(s->UploadedSegments(), uploaded);
  EXPECT_EQ(s->RemoteSegments(), uploaded);
  for (uint64_t id : uploaded) EXPECT_FALSE(LocalFile(s.get(), id)) << id;
  bucket_.range_gets = 0;
  ExpectAllReadable(s.get());
  EXPECT_GT(bucket_.range_gets, 0u);
}

TEST_F(BucketStoreTest, SegmentsSealedBeforeACrashAreUploadedOnReopen) {
  bucket_.down = true;
  {
    auto s = Open();
    PutBlobs(s.get(), 0, 60);
    EXPECT_EQ(s->UploadSealed().status().code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(s->UploadedSegments().empty());
  }  // the process ends before any upload
  bucket_.down = false;
  auto s = Open();
  EXPECT_EQ(s->recovery().upload_error, "");
  EXPECT_GE(s->UploadedSegments().size(), 2u);
  for (uint64_t id : s->UploadedSegments()) {
    EXPECT_FALSE(LocalFile(s.get(), id)) << id;
    EXPECT_TRUE(bucket_.Exists(SegmentIndexKey(id))) << id;
  }
  ExpectAllReadable(s.get());
  // Puts go on into the open segment and later segments upload too.
  PutBlobs(s.get(), 60, 100);
  ASSERT_GT(*s->UploadSealed(), 0u);
  ExpectAllReadable(s.get());
}

TEST_F(BucketStoreTest, UploadFailureAtOpenIsReportedAndRetried) {
  {
    options_.keep_local_segments = false;
    auto s = Open();
    PutBlobs(s.get(), 0, 40);
  }
  bucket_.down = true;
  // Listing still works (TestBucket only fails writes and reads): Open succeeds.
  auto s = Open();
  EXPECT_NE(s->recovery().upload_error, "");
  EXPECT_TRUE(s->UploadedSegments().empty());
  bucket_.down = false;
  ASSERT_GT(*s->UploadSealed(), 0u);
  ExpectAllReadable(s.get());
}

TEST_F(BucketStoreTest, RegistryIsRebuiltFromTheBucket) {
  StoreStats before;
  {
    auto s = Open();
    PutBlobs(s.get(), 0, 80);
    // Seal the open segment too, so that every blob is in the bucket.
    ASSERT_TRUE(s->CompactAll().ok());
    ASSERT_TRUE(s->UploadSealed().ok());
    before = s->Stats();
  }
  // The peer's directory is lost: registry and every local segment.
  registry_ = NewMemSegmentRegistry();
  auto names = fs_->ListDir("/peer/blobs/segments");
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) {
    ASSERT_TRUE(fs_->Remove("/peer/blobs/segments/" + name).ok());
  }
  auto s = Open();
  ASSERT_TRUE(s->recovery().registry_rebuilt);
  EXPECT_EQ(s->recovery().replayed_records, blobs_.size());
  EXPECT_EQ(s->recovery().unreadable_segments, 0u);
  EXPECT_EQ(s->recovery().remote_segments, s->recovery().bucket_segments);
  StoreStats after = s->Stats();
  EXPECT_EQ(after.blobs, before.blobs);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  ExpectAllReadable(s.get());
  // New puts take fresh segment ids (none collides with an object in the bucket).
  PutBlobs(s.get(), 80, 120);
  ASSERT_TRUE(s->CompactAll().ok());
  ASSERT_GT(*s->UploadSealed(), 0u);
  ExpectAllReadable(s.get());
}

TEST_F(BucketStoreTest, DamagedIndexObjectLeavesItsSegmentUnregistered) {
  {
    auto s = Open();
    PutBlobs(s.get(), 0, 60);
    ASSERT_TRUE(s->CompactAll().ok());
    ASSERT_TRUE(s->UploadSealed().ok());
  }
  registry_ = NewMemSegmentRegistry();
  // Overwrite the first segment's index with garbage.
  ASSERT_TRUE(bucket_.MemoryObjectStore::Put(SegmentIndexKey(1), Bytes(50, 7)).ok());
  auto s = Open();
  EXPECT_TRUE(s->recovery().registry_rebuilt);
  EXPECT_EQ(s->recovery().unreadable_segments, 1u);
  // Left for a person to look at, not deleted.
  EXPECT_TRUE(bucket_.Exists(SegmentObjectKey(1)));
  // The blobs of the other segments are readable.
  uint64_t readable = 0;
  for (const TestBlob& b : blobs_) {
    auto got = s->Get(b.key);
    if (got.ok()) {
      EXPECT_EQ(*got, b.data);
      ++readable;
    } else {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
    }
  }
  EXPECT_GT(readable, 0u);
  EXPECT_LT(readable, blobs_.size());
}

TEST_F(BucketStoreTest, CompactionDeletesTheObjectsOfRetiredSegments) {
  auto s = Open();
  PutBlobs(s.get(), 0, 80);
  ASSERT_TRUE(s->UploadSealed().ok());
  const std::set<uint64_t> first = s->UploadedSegments();
  std::set<size_t> deleted;
  for (size_t i = 0; i < blobs_.size(); i += 2) {
    ASSERT_TRUE(s->Delete(blobs_[i].key).ok());
    deleted.insert(i);
  }
  ASSERT_TRUE(s->CompactAll().ok());
  for (uint64_t id : first) {
    EXPECT_FALSE(bucket_.Exists(SegmentObjectKey(id))) << id;
    EXPECT_FALSE(bucket_.Exists(SegmentIndexKey(id))) << id;
  }
  ASSERT_GT(*s->UploadSealed(), 0u);
  ExpectAllReadable(s.get(), deleted);
  // The bucket holds exactly the objects of the registry's sealed segments.
  auto objects = s3::ListAll(&bucket_, kSegmentObjectPrefix);
  ASSERT_TRUE(objects.ok());
  std::set<uint64_t> in_bucket;
  for (const auto& o : *objects) in_bucket.insert(ParseSegmentObjectKey(o.key)->id);
  std::set<uint64_t> sealed;
  auto rows = registry_->Segments();
  ASSERT_TRUE(rows.ok());
  for (const SegmentRow& r : *rows) {
    if (r.state == SegmentState::kSealed) sealed.insert(r.id);
  }
  EXPECT_EQ(in_bucket, sealed);
  EXPECT_EQ(objects->size(), 2 * sealed.size());

  // A failed delete is retried: objects of a segment the registry does not know go at Open.
  ASSERT_TRUE(bucket_.MemoryObjectStore::Put(SegmentObjectKey(999), Bytes(10, 1)).ok());
  ASSERT_TRUE(bucket_.MemoryObjectStore::Put(SegmentIndexKey(999), Bytes(10, 1)).ok());
  s.reset();
  s = Open();
  EXPECT_EQ(s->recovery().stale_objects, 1u);
  EXPECT_FALSE(bucket_.Exists(SegmentObjectKey(999)));
  EXPECT_FALSE(bucket_.Exists(SegmentIndexKey(999)));
  ExpectAllReadable(s.get(), deleted);
}

}  // namespace
}  // namespace cairn::store
