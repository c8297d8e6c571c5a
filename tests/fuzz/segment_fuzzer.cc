// Fuzz target: segment files and their record framing (store/segment.h, docs/formats.md
// "Segments"), which a storage peer walks when it opens its store and when it scrubs.
//
// The input is a segment file. When the first byte is odd the harness first rewrites every
// checksum the walk will check (file header, record headers, blobs) to match the bytes, so that
// the fuzzer explores record lengths and layouts rather than checksum mismatches. Properties: the
// reader returns contiguous records inside the file whose blobs match their checksums, and it
// ends either exactly at the end of the file or with a torn tail before it.
#include <algorithm>
#include <cstring>

#include "cairn/codec/checksum.h"
#include "cairn/env/file_system.h"
#include "cairn/store/segment.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

class MemFile : public env::File {
 public:
  explicit MemFile(ByteSpan data) : data_(data) {}
  absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset >= data_.size()) return 0;
    size_t n = std::min<uint64_t>(out.size(), data_.size() - offset);
    if (n > 0) std::memcpy(out.data(), data_.data() + offset, n);
    return n;
  }
  absl::Status Append(ByteSpan) override { return absl::UnimplementedError("read-only"); }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Truncate(uint64_t) override { return absl::UnimplementedError("read-only"); }
  absl::StatusOr<uint64_t> Size() override { return data_.size(); }

 private:
  ByteSpan data_;
};

void PutChecksum64(uint8_t* at, ByteSpan covered) {
  codec::Checksum c = codec::BlobChecksum(covered);
  std::memcpy(at, c.data(), 8);
}

// Makes the file header's and each record's checksums match their bytes (see file comment).
void FixChecksums(Bytes& f) {
  if (f.size() < store::kSegmentHeaderSize) return;
  PutChecksum64(f.data() + 24, ByteSpan(f).first(24));
  uint64_t pos = store::kSegmentHeaderSize;
  while (pos + store::kRecordHeaderSize <= f.size()) {
    uint8_t* p = f.data() + pos;
    uint32_t length = GetU32(p);
    if (length < store::kRecordHeaderSize - 12) return;
    uint64_t blob_size = length - (store::kRecordHeaderSize - 12);
    uint64_t blob_at = pos + store::kRecordHeaderSize;
    if (blob_at + blob_size <= f.size()) {
      codec::Checksum c = codec::BlobChecksum(ByteSpan(f).subspan(blob_at, blob_size));
      std::memcpy(p + 60, c.data(), c.size());
    }
    Bytes covered(p, p + 4);
    covered.insert(covered.end(), p + 12, p + store::kRecordHeaderSize);
    PutChecksum64(p + 4, covered);
    pos = blob_at + blob_size;
  }
}

Seeds MakeSeeds() {
  Bytes seg = store::EncodeSegmentHeader({.id = 7, .flags = 0});
  for (int i = 0; i < 3; ++i) {
    Bytes blob(static_cast<size_t>(40 + i * 50), static_cast<uint8_t>('a' + i));
    store::RecordInfo info;
    info.key.owner = 42;
    info.key.chunk.bytes.fill(static_cast<uint8_t>(i));
    info.key.shard = static_cast<uint32_t>(i);
    info.kind = 1;
    info.extra = i == 1;
    info.blob_size = blob.size();
    info.checksum = codec::BlobChecksum(blob);
    store::AppendRecord(seg, info, blob);
  }
  Bytes torn = seg;
  torn.resize(torn.size() - 30);
  return {{"segment", Concat(0, seg)}, {"segment_fix", Concat(1, seg)}, {"torn", Concat(1, torn)}};
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  using namespace cairn::fuzz;
  if (size == 0) return 0;
  Bytes file(data + 1, data + size);
  if (data[0] & 1) FixChecksums(file);

  (void)store::DecodeRecordHeader(file);
  std::string name(file.begin(), file.begin() + std::min<size_t>(file.size(), 40));
  if (auto id = store::ParseSegmentFileName(name)) FUZZ_CHECK(store::SegmentFileName(*id) == name);

  auto header = store::DecodeSegmentHeader(file);
  if (header.ok())
    FUZZ_CHECK(store::EncodeSegmentHeader(*header) == Bytes(file.begin(), file.begin() + 32));
  if (file.size() < store::kSegmentHeaderSize) return 0;
  MemFile mem(file);
  store::SegmentReader reader(&mem, store::kSegmentHeaderSize);
  uint64_t expect = store::kSegmentHeaderSize;
  for (;;) {
    auto next = reader.Next(/*with_blob=*/true);
    FUZZ_CHECK(next.ok());  // a memory file has no I/O errors
    if (!next->has_value()) break;
    const store::SegmentReader::Record& r = **next;
    FUZZ_CHECK(r.offset == expect);
    FUZZ_CHECK(r.info.blob_size == r.blob.size());
    FUZZ_CHECK(r.offset + r.info.RecordSize() <= file.size());
    FUZZ_CHECK(codec::BlobChecksum(r.blob) == r.info.checksum);
    FUZZ_CHECK(
        std::equal(r.blob.begin(), r.blob.end(),
                   file.begin() + static_cast<ptrdiff_t>(r.offset + store::kRecordHeaderSize)));
    expect = r.offset + r.info.RecordSize();
  }
  FUZZ_CHECK(reader.valid_end() == expect);
  FUZZ_CHECK(reader.torn() == (expect != file.size()));
  return 0;
}
