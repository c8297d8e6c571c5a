#include "cairn/store/segment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>

namespace cairn::store {
namespace {

RecordInfo InfoFor(const BlobKey& key, ByteSpan blob, uint8_t kind = 1, bool extra = false) {
  RecordInfo info;
  info.key = key;
  info.kind = kind;
  info.extra = extra;
  info.checksum = codec::BlobChecksum(blob);
  info.blob_size = blob.size();
  return info;
}

BlobKey KeyOf(uint64_t n) {
  BlobKey key;
  key.owner = n * 7 + 1;
  for (size_t i = 0; i < ChunkId::kSize; ++i) key.chunk.bytes[i] = static_cast<uint8_t>(n + i);
  key.shard = static_cast<uint32_t>(n % 5);
  return key;
}

std::unique_ptr<env::File> WriteFile(env::FileSystem* fs, const std::string& path, ByteSpan data) {
  auto f = fs->Open(path, env::OpenMode::kCreate);
  EXPECT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->Append(data).ok());
  return std::move(*f);
}

TEST(SegmentTest, HeaderRoundTripAndRejectsDamage) {
  Bytes h = EncodeSegmentHeader({.id = 42, .flags = kSegmentFlagCompaction});
  ASSERT_EQ(h.size(), kSegmentHeaderSize);
  auto back = DecodeSegmentHeader(h);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->flags, kSegmentFlagCompaction);
  for (size_t i = 0; i < h.size(); ++i) {
    Bytes bad = h;
    bad[i] ^= 0x20;
    EXPECT_EQ(DecodeSegmentHeader(bad).status().code(), absl::StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ(DecodeSegmentHeader(ByteSpan(h.data(), 31)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SegmentTest, FileNames) {
  EXPECT_EQ(SegmentFileName(7), "00000007.seg");
  EXPECT_EQ(SegmentFileName(123456789), "123456789.seg");
  EXPECT_EQ(ParseSegmentFileName("00000007.seg"), 7u);
  EXPECT_EQ(ParseSegmentFileName("123456789.seg"), 123456789u);
  for (const char* bad : {"7.seg", "0000007.seg", "00000007.tmp", "0000000a.seg", ".seg",
                          "00000007.seg.x", "000000007.seg"}) {
    EXPECT_EQ(ParseSegmentFileName(bad), std::nullopt) << bad;
  }
}

// A segment of random records reads back exactly; cutting it at every byte of its last
// record yields every earlier record and reports a torn tail where the last one starts.
TEST(SegmentTest, ReaderWalksRecordsAndStopsAtATornTail) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto fs = env::NewMemFileSystem();
  ASSERT_TRUE(fs->CreateDir("/s").ok());
  Bytes seg = EncodeSegmentHeader({.id = 1, .flags = 0});
  std::vector<std::pair<RecordInfo, Bytes>> records;
  std::vector<uint64_t> offsets;
  for (int i = 0; i < 6; ++i) {
    Bytes blob(rng() % 300);
    for (auto& b : blob) b = static_cast<uint8_t>(rng());
    RecordInfo info = InfoFor(KeyOf(i), blob, 1 + i % 3, i % 2 == 0);
    offsets.push_back(seg.size());
    AppendRecord(seg, info, blob);
    records.push_back({info, blob});
  }
  auto check_prefix = [&](size_t cut, size_t want_records, bool want_torn) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    auto file = WriteFile(fs.get(), "/s/" + std::to_string(cut), ByteSpan(seg.data(), cut));
    SegmentReader reader(file.get(), kSegmentHeaderSize);
    size_t n = 0;
    while (true) {
      auto next = reader.Next();
      ASSERT_TRUE(next.ok()) << next.status();
      if (!*next) break;
      ASSERT_LT(n, records.size());
      EXPECT_EQ((*next)->offset, offsets[n]);
      EXPECT_EQ((*next)->info.key, records[n].first.key);
      EXPECT_EQ((*next)->info.kind, records[n].first.kind);
      EXPECT_EQ((*next)->info.extra, records[n].first.extra);
      EXPECT_EQ((*next)->blob, records[n].second);
      ++n;
    }
    EXPECT_EQ(n, want_records);
    EXPECT_EQ(reader.torn(), want_torn) << reader.tail_reason();
    EXPECT_EQ(reader.valid_end(), n < offsets.size() ? offsets[n] : seg.size());
  };
  check_prefix(seg.size(), records.size(), false);
  for (size_t cut = offsets.back(); cut < seg.size(); ++cut) {
    check_prefix(cut, records.size() - 1, cut != offsets.back());
  }
}

// A flipped bit anywhere in a record ends the walk there (corrupt, not returned).
TEST(SegmentTest, CorruptRecordEndsTheWalk) {
  auto fs = env::NewMemFileSystem();
  ASSERT_TRUE(fs->CreateDir("/s").ok());
  Bytes seg = EncodeSegmentHeader({.id = 1, .flags = 0});
  Bytes a(100, 1), b(50, 2);
  AppendRecord(seg, InfoFor(KeyOf(1), a), a);
  const size_t second = seg.size();
  AppendRecord(seg, InfoFor(KeyOf(2), b), b);
  for (size_t i = second; i < seg.size(); ++i) {
    Bytes bad = seg;
    bad[i] ^= 0x01;
    auto file = WriteFile(fs.get(), "/s/" + std::to_string(i), bad);
    SegmentReader reader(file.get(), kSegmentHeaderSize);
    auto first = reader.Next();
    ASSERT_TRUE(first.ok() && first->has_value());
    auto next = reader.Next();
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value()) << i;
    EXPECT_TRUE(reader.torn());
    EXPECT_EQ(reader.valid_end(), second);
  }
}

// Found by tests/fuzz/segment_fuzzer.cc: a record whose length field checksums but claims more
// blob bytes than the file holds is a torn tail, found without allocating or reading a buffer
// of that (up to 64 MiB) size.
TEST(SegmentTest, RecordLongerThanTheFileIsATornTailWithoutAHugeRead) {
  class SizeRecordingFile : public env::File {
   public:
    explicit SizeRecordingFile(std::unique_ptr<env::File> f) : f_(std::move(f)) {}
    absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
      largest_read = std::max(largest_read, out.size());
      return f_->ReadAt(offset, out);
    }
    absl::Status Append(ByteSpan data) override { return f_->Append(data); }
    absl::Status Sync() override { return f_->Sync(); }
    absl::Status Truncate(uint64_t size) override { return f_->Truncate(size); }
    absl::StatusOr<uint64_t> Size() override { return f_->Size(); }
    size_t largest_read = 0;

   private:
    std::unique_ptr<env::File> f_;
  };
  auto fs = env::NewMemFileSystem();
  ASSERT_TRUE(fs->CreateDir("/s").ok());
  Bytes seg = EncodeSegmentHeader({.id = 1, .flags = 0});
  Bytes a(100, 1);
  AppendRecord(seg, InfoFor(KeyOf(1), a), a);
  const size_t second = seg.size();
  // A record whose length field says 64 MiB (with a matching header checksum: damage that
  // rewrote both, or a hostile file), followed by only 10 blob bytes.
  Bytes b(10, 2);
  AppendRecord(seg, InfoFor(KeyOf(2), b), b);
  uint8_t* p = seg.data() + second;
  const uint32_t length = static_cast<uint32_t>(kRecordHeaderSize - 12 + kMaxRecordBlobSize);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(length >> (8 * i));
  Bytes covered(4 + kRecordHeaderSize - 12);  // the length field and the fixed body
  std::memcpy(covered.data(), p, 4);
  std::memcpy(covered.data() + 4, p + 12, kRecordHeaderSize - 12);
  codec::Checksum sum = codec::BlobChecksum(covered);
  std::copy(sum.begin(), sum.begin() + 8, p + 4);
  auto decoded = DecodeRecordHeader(ByteSpan(p, kRecordHeaderSize));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->blob_size, kMaxRecordBlobSize);
  SizeRecordingFile file(WriteFile(fs.get(), "/s/big", seg));
  SegmentReader reader(&file, kSegmentHeaderSize);
  auto first = reader.Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->blob, a);
  auto next = reader.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->has_value());
  EXPECT_TRUE(reader.torn());
  EXPECT_EQ(reader.valid_end(), second);
  EXPECT_NE(reader.tail_reason().find("incomplete record"), std::string::npos)
      << reader.tail_reason();
  // The largest read is the first record's 100-byte blob, not a buffer sized by the length field.
  EXPECT_LE(file.largest_read, a.size()) << "read a buffer sized by the length field";
}

}  // namespace
}  // namespace cairn::store
