#include "cairn/store/segment.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace cairn::store {
namespace {

uint64_t Checksum64(ByteSpan data) {
  codec::Checksum c = codec::BlobChecksum(data);
  return GetU64(c.data());
}

constexpr size_t kPrefixSize = 12;
constexpr size_t kFixedBodySize = kRecordHeaderSize - kPrefixSize;  // 64

// The checksum of the record header at `header` (kRecordHeaderSize bytes): over the length
// field and the fixed body, skipping the checksum field itself.
uint64_t HeaderChecksum(const uint8_t* header) {
  uint8_t covered[4 + kFixedBodySize];
  std::memcpy(covered, header, 4);
  std::memcpy(covered + 4, header + kPrefixSize, kFixedBodySize);
  return Checksum64(ByteSpan(covered, sizeof covered));
}

}  // namespace

Bytes EncodeSegmentHeader(const SegmentHeader& header) {
  Bytes out(kSegmentMagic, kSegmentMagic + sizeof kSegmentMagic);
  PutU32(out, kSegmentVersion);
  PutU32(out, header.flags);
  PutU64(out, header.id);
  PutU64(out, Checksum64(out));
  return out;
}

absl::StatusOr<SegmentHeader> DecodeSegmentHeader(ByteSpan data) {
  if (data.size() < kSegmentHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("segment header: ", data.size(), " of ", kSegmentHeaderSize, " bytes"));
  }
  if (std::memcmp(data.data(), kSegmentMagic, sizeof kSegmentMagic) != 0) {
    return absl::DataLossError("segment header: bad magic");
  }
  if (GetU64(data.data() + 24) != Checksum64(data.subspan(0, 24))) {
    return absl::DataLossError("segment header: checksum mismatch");
  }
  uint32_t version = GetU32(data.data() + 8);
  if (version != kSegmentVersion) {
    return absl::DataLossError(absl::StrCat("segment header: unknown version ", version));
  }
  SegmentHeader h;
  h.flags = GetU32(data.data() + 12);
  h.id = GetU64(data.data() + 16);
  return h;
}

void AppendRecordHeader(Bytes& out, const RecordInfo& info) {
  const size_t start = out.size();
  PutU32(out, static_cast<uint32_t>(kFixedBodySize + info.blob_size));
  PutU64(out, 0);  // checksum, filled in below
  out.push_back(kRecordTypeBlob);
  out.push_back(info.kind);
  out.push_back(info.extra ? kRecordFlagExtra : 0);
  out.push_back(0);
  PutU64(out, info.key.owner);
  out.insert(out.end(), info.key.chunk.bytes.begin(), info.key.chunk.bytes.end());
  PutU32(out, info.key.shard);
  out.insert(out.end(), info.checksum.begin(), info.checksum.end());
  uint64_t sum = HeaderChecksum(out.data() + start);
  for (int i = 0; i < 8; ++i) out[start + 4 + i] = static_cast<uint8_t>(sum >> (8 * i));
}

void AppendRecord(Bytes& out, const RecordInfo& info, ByteSpan blob) {
  AppendRecordHeader(out, info);
  out.insert(out.end(), blob.begin(), blob.end());
}

absl::StatusOr<RecordInfo> DecodeRecordHeader(ByteSpan header) {
  if (header.size() < kRecordHeaderSize) {
    return absl::DataLossError(absl::StrCat("record header: ", header.size(), " bytes"));
  }
  const uint8_t* p = header.data();
  uint32_t length = GetU32(p);
  if (GetU64(p + 4) != HeaderChecksum(p)) {
    return absl::DataLossError("record header: checksum mismatch");
  }
  if (length < kFixedBodySize || length - kFixedBodySize > kMaxRecordBlobSize) {
    return absl::DataLossError(absl::StrCat("record header: length ", length, " out of range"));
  }
  if (p[12] != kRecordTypeBlob) {
    return absl::DataLossError(absl::StrCat("record header: unknown type ", p[12]));
  }
  RecordInfo info;
  info.kind = p[13];
  info.extra = (p[14] & kRecordFlagExtra) != 0;
  info.key.owner = GetU64(p + 16);
  std::memcpy(info.key.chunk.bytes.data(), p + 24, ChunkId::kSize);
  info.key.shard = GetU32(p + 56);
  std::memcpy(info.checksum.data(), p + 60, info.checksum.size());
  info.blob_size = length - kFixedBodySize;
  return info;
}

absl::StatusOr<std::optional<SegmentReader::Record>> SegmentReader::Next(bool with_blob) {
  auto stop = [&](std::string reason) -> std::optional<Record> {
    torn_ = true;
    tail_reason_ = std::move(reason);
    return std::nullopt;
  };
  uint8_t header[kRecordHeaderSize];
  auto n = file_->ReadAt(pos_, header);
  if (!n.ok()) {
    if (n.status().code() == absl::StatusCode::kDataLoss) return stop(n.status().ToString());
    return n.status();
  }
  if (*n == 0) return std::optional<Record>();  // clean end
  if (*n < kRecordHeaderSize) {
    return stop(absl::StrCat("incomplete record header at ", pos_, " (", *n, " bytes)"));
  }
  auto info = DecodeRecordHeader(ByteSpan(header, kRecordHeaderSize));
  if (!info.ok()) return stop(absl::StrCat("at ", pos_, ": ", info.status().message()));
  // A length field that checksums but runs past the end of the file (a torn tail, or damage
  // that kept the header checksum) ends the walk before a buffer of up to kMaxRecordBlobSize
  // is allocated for it.
  auto file_size = file_->Size();
  if (!file_size.ok()) return file_size.status();
  if (*file_size < pos_ + info->RecordSize()) {
    uint64_t have = *file_size - std::min(*file_size, pos_ + kRecordHeaderSize);
    return stop(absl::StrCat("incomplete record at ", pos_, " (", have, " of ", info->blob_size,
                             " blob bytes)"));
  }
  Record record;
  record.offset = pos_;
  record.info = *info;
  record.blob.resize(info->blob_size);
  auto got = file_->ReadAt(pos_ + kRecordHeaderSize, record.blob);
  if (!got.ok()) {
    if (got.status().code() == absl::StatusCode::kDataLoss) return stop(got.status().ToString());
    return got.status();
  }
  if (*got < info->blob_size) {
    return stop(absl::StrCat("incomplete record at ", pos_, " (", *got, " of ", info->blob_size,
                             " blob bytes)"));
  }
  if (codec::BlobChecksum(record.blob) != info->checksum) {
    return stop(absl::StrCat("record at ", pos_, ": blob checksum mismatch"));
  }
  pos_ += info->RecordSize();
  if (!with_blob) Bytes().swap(record.blob);
  return std::optional<Record>(std::move(record));
}

std::string SegmentFileName(uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08llu.seg", static_cast<unsigned long long>(id));
  return buf;
}

std::optional<uint64_t> ParseSegmentFileName(const std::string& name) {
  constexpr std::string_view kSuffix = ".seg";
  if (name.size() < 8 + kSuffix.size() || name.size() > 20 + kSuffix.size()) return std::nullopt;
  if (name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  uint64_t id = 0;
  for (size_t i = 0; i + kSuffix.size() < name.size(); ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (id > (UINT64_MAX - 9) / 10) return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  if (SegmentFileName(id) != name) return std::nullopt;  // one spelling per id
  return id;
}

}  // namespace cairn::store
