// Sealed segments in a bucket: object keys, the index object, ranged reads
// (segment_bucket.h; docs/formats.md "Segments in a bucket").
#include "cairn/store/segment_bucket.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/codec/checksum.h"

namespace cairn::store {
namespace {

uint64_t Checksum64(ByteSpan data) {
  codec::Checksum c = codec::BlobChecksum(data);
  return GetU64(c.data());
}

constexpr char kSegSuffix[] = ".seg";
constexpr char kIdxSuffix[] = ".idx";

}  // namespace

std::string SegmentObjectKey(uint64_t id) {
  return absl::StrCat(kSegmentObjectPrefix, SegmentFileName(id));
}

std::string SegmentIndexKey(uint64_t id) {
  std::string name = SegmentFileName(id);
  name.replace(name.size() - 4, 4, kIdxSuffix);
  return absl::StrCat(kSegmentObjectPrefix, name);
}

std::optional<SegmentObjectName> ParseSegmentObjectKey(const std::string& key) {
  const std::string prefix = kSegmentObjectPrefix;
  if (key.size() <= prefix.size() + 4 || key.compare(0, prefix.size(), prefix) != 0) {
    return std::nullopt;
  }
  std::string name = key.substr(prefix.size());
  SegmentObjectName out;
  if (name.compare(name.size() - 4, 4, kIdxSuffix) == 0) {
    out.index = true;
    name.replace(name.size() - 4, 4, kSegSuffix);
  }
  auto id = ParseSegmentFileName(name);
  if (!id) return std::nullopt;
  out.id = *id;
  return out;
}

Bytes EncodeSegmentIndex(const SegmentIndex& index) {
  Bytes out(kSegmentIndexMagic, kSegmentIndexMagic + sizeof kSegmentIndexMagic);
  PutU32(out, kSegmentIndexVersion);
  PutU32(out, index.flags);
  PutU64(out, index.id);
  PutU64(out, index.segment_size);
  PutU32(out, static_cast<uint32_t>(index.entries.size()));
  for (const SegmentIndexEntry& e : index.entries) {
    PutU64(out, e.offset);
    PutU64(out, e.info.blob_size);
    out.push_back(e.info.kind);
    out.push_back(e.info.extra ? kRecordFlagExtra : 0);
    out.push_back(0);
    out.push_back(0);
    PutU64(out, e.info.key.owner);
    out.insert(out.end(), e.info.key.chunk.bytes.begin(), e.info.key.chunk.bytes.end());
    PutU32(out, e.info.key.shard);
    out.insert(out.end(), e.info.checksum.begin(), e.info.checksum.end());
  }
  PutU64(out, Checksum64(out));
  return out;
}

absl::StatusOr<SegmentIndex> DecodeSegmentIndex(ByteSpan data) {
  if (data.size() < kSegmentIndexHeaderSize + 8) {
    return absl::DataLossError(absl::StrCat("segment index: ", data.size(), " bytes"));
  }
  if (std::memcmp(data.data(), kSegmentIndexMagic, sizeof kSegmentIndexMagic) != 0) {
    return absl::DataLossError("segment index: bad magic");
  }
  const size_t body = data.size() - 8;
  if (GetU64(data.data() + body) != Checksum64(data.subspan(0, body))) {
    return absl::DataLossError("segment index: checksum mismatch");
  }
  const uint32_t version = GetU32(data.data() + 8);
  if (version != kSegmentIndexVersion) {
    return absl::DataLossError(absl::StrCat("segment index: unknown version ", version));
  }
  SegmentIndex index;
  index.flags = GetU32(data.data() + 12);
  index.id = GetU64(data.data() + 16);
  index.segment_size = GetU64(data.data() + 24);
  const uint64_t count = GetU32(data.data() + 32);
  if (body != kSegmentIndexHeaderSize + count * kSegmentIndexEntrySize) {
    return absl::DataLossError(
        absl::StrCat("segment index: ", count, " records do not fit ", data.size(), " bytes"));
  }
  uint64_t next = kSegmentHeaderSize;  // the first record starts after the segment header
  const uint8_t* p = data.data() + kSegmentIndexHeaderSize;
  for (uint64_t i = 0; i < count; ++i, p += kSegmentIndexEntrySize) {
    SegmentIndexEntry e;
    e.offset = GetU64(p);
    e.info.blob_size = GetU64(p + 8);
    e.info.kind = p[16];
    e.info.extra = (p[17] & kRecordFlagExtra) != 0;
    e.info.key.owner = GetU64(p + 20);
    std::memcpy(e.info.key.chunk.bytes.data(), p + 28, e.info.key.chunk.bytes.size());
    e.info.key.shard = GetU32(p + 60);
    std::memcpy(e.info.checksum.data(), p + 64, e.info.checksum.size());
    if (e.info.blob_size > kMaxRecordBlobSize || e.offset < next ||
        e.offset + e.info.RecordSize() > index.segment_size) {
      return absl::DataLossError(absl::StrCat("segment index: record ", i, " at offset ", e.offset,
                                              " (", e.info.blob_size,
                                              " bytes) overlaps another or leaves the segment"));
    }
    next = e.offset + e.info.RecordSize();
    index.entries.push_back(e);
  }
  return index;
}

absl::StatusOr<SegmentIndex> IndexSegmentFile(env::File* file, uint64_t id, uint64_t end) {
  Bytes hb(kSegmentHeaderSize);
  CAIRN_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, hb));
  hb.resize(n);
  CAIRN_ASSIGN_OR_RETURN(SegmentHeader header, DecodeSegmentHeader(hb));
  if (header.id != id) {
    return absl::DataLossError(absl::StrCat("segment ", id, " says it is segment ", header.id));
  }
  SegmentIndex index;
  index.id = id;
  index.flags = header.flags;
  SegmentReader reader(file, kSegmentHeaderSize);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<SegmentReader::Record> rec,
                           reader.Next(/*with_blob=*/false));
    if (!rec) break;
    if (rec->offset + rec->info.RecordSize() > end) break;
    index.entries.push_back({rec->offset, rec->info});
  }
  CAIRN_ASSIGN_OR_RETURN(index.segment_size, file->Size());
  return index;
}

absl::StatusOr<size_t> RemoteSegmentFile::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  if (out.empty() || offset >= size_) return 0;
  const uint64_t want = std::min<uint64_t>(out.size(), size_ - offset);
  // An answer that is not what was asked (short, or DATA_LOSS from the store: a wrong
  // Content-Range) says nothing about the object: asked again, then UNAVAILABLE, never
  // DATA_LOSS, so that no caller takes it for a damaged blob (docs/operations.md "An off-site
  // copy in S3-compatible storage"). Damage to the object's bytes fails the record's checksum.
  std::string last;
  for (int attempt = 0; attempt < kRemoteReadAttempts; ++attempt) {
    absl::StatusOr<Bytes> got = store_->GetRange(key_, offset, want);
    if (!got.ok()) {
      if (got.status().code() != absl::StatusCode::kDataLoss) return got.status();
      last = std::string(got.status().message());
      continue;
    }
    if (got->size() != want) {
      last = absl::StrCat("object ", key_, ": asked for ", want, " bytes at offset ", offset,
                          ", got ", got->size());
      continue;
    }
    std::memcpy(out.data(), got->data(), got->size());
    return got->size();
  }
  return absl::UnavailableError(absl::StrCat("the bucket did not answer the read as asked (",
                                             kRemoteReadAttempts, " attempts): ", last));
}

absl::Status RemoteSegmentFile::Append(ByteSpan) {
  return absl::FailedPreconditionError("object " + key_ + " is a sealed segment: read-only");
}
absl::Status RemoteSegmentFile::Sync() { return absl::OkStatus(); }
absl::Status RemoteSegmentFile::Truncate(uint64_t) {
  return absl::FailedPreconditionError("object " + key_ + " is a sealed segment: read-only");
}

}  // namespace cairn::store
