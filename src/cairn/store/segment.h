// Segment files: the append-only pack files a storage peer keeps its blobs in
// (DIR/segments/NNNNNNNN.seg; byte layout in docs/formats.md
// "Segments"). A segment is a 32-byte file header followed by records; each record frames one
// blob with its length, a header checksum, the blob key, kind, extra flag and the blob's
// XXH3-128, so that a segment alone says what it holds and where a torn or corrupt tail starts.
//
// Thread-safety: the encoding functions are stateless; a SegmentReader is used by one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/codec/checksum.h"
#include "cairn/env/file_system.h"

namespace cairn::store {

// File header: magic "CAIRNSEG", u32 version, u32 flags, u64 segment id, u64 checksum (first 8
// bytes of the XXH3-128 canonical form of bytes 0..23). All integers little-endian.
inline constexpr char kSegmentMagic[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'E', 'G'};
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 32;
// Flag: the segment was written by compaction (its records are copies of records of older
// segments; it counts only once its registry switch committed, docs/formats.md "Segments").
inline constexpr uint32_t kSegmentFlagCompaction = 1;

// Record: u32 body length L (bytes after the 12-byte prefix: 64 + blob size), u64 checksum
// (first 8 bytes of the XXH3-128 of the length field and the 64 fixed body bytes), then the
// fixed body: u8 type (1 = blob), u8 kind, u8 flags (bit 0: extra), u8 zero, u64 owner,
// 32-byte chunk id, u32 shard, 16-byte XXH3-128 of the blob; then the blob.
inline constexpr size_t kRecordHeaderSize = 76;  // prefix 12 + fixed body 64
inline constexpr uint8_t kRecordTypeBlob = 1;
inline constexpr uint8_t kRecordFlagExtra = 1;
// Largest blob a record may frame (a chunk of at most 8 MiB plus envelope overhead, with
// room to spare); a longer length field is corruption.
inline constexpr uint64_t kMaxRecordBlobSize = 64ull << 20;

struct SegmentHeader {
  uint64_t id = 0;
  uint32_t flags = 0;
};

Bytes EncodeSegmentHeader(const SegmentHeader& header);
// DATA_LOSS if `data` is shorter than kSegmentHeaderSize, has another magic, a bad checksum,
// or an unknown version.
absl::StatusOr<SegmentHeader> DecodeSegmentHeader(ByteSpan data);

// What a record says about its blob.
struct RecordInfo {
  BlobKey key;
  uint8_t kind = 0;
  bool extra = false;
  codec::Checksum checksum{};  // of the blob
  uint64_t blob_size = 0;      // bytes
  uint64_t RecordSize() const { return kRecordHeaderSize + blob_size; }
};

// Appends the record framing `blob` (info.blob_size and info.checksum must describe it).
void AppendRecord(Bytes& out, const RecordInfo& info, ByteSpan blob);
// Appends only the kRecordHeaderSize header bytes of that record: the blob's info.blob_size
// bytes must follow it in the file (the segment store writes them from the request, with
// env::File::AppendV, instead of copying them behind the header).
void AppendRecordHeader(Bytes& out, const RecordInfo& info);

// Decodes the kRecordHeaderSize bytes of a record header. DATA_LOSS when the checksum does not
// match, the type is unknown or the length is out of range.
absl::StatusOr<RecordInfo> DecodeRecordHeader(ByteSpan header);

// Walks the records of a segment file in order, from `start` (a record boundary, at least
// kSegmentHeaderSize) to the end of the file. Next() returns each intact record; at the first
// record that is incomplete or fails a check it stops and reports where the valid data ends
// and why (a torn or corrupt tail).
class SegmentReader {
 public:
  SegmentReader(env::File* file, uint64_t start) : file_(file), pos_(start) {}

  struct Record {
    uint64_t offset = 0;  // of the record's first byte in the file
    RecordInfo info;
    Bytes blob;  // when read with blobs
  };

  // The next intact record, or nullopt at the end of the valid data (see tail()). With
  // `with_blob` false the blob is still read and checked but not returned. Errors: I/O
  // failures of the file (other than unreadable data, which ends the walk as corruption).
  absl::StatusOr<std::optional<Record>> Next(bool with_blob = true);

  // After Next returned nullopt: the offset where the valid records end, and whether bytes
  // follow it (a torn or corrupt tail), with the reason.
  uint64_t valid_end() const { return pos_; }
  bool torn() const { return torn_; }
  const std::string& tail_reason() const { return tail_reason_; }

 private:
  env::File* const file_;
  uint64_t pos_;
  bool torn_ = false;
  std::string tail_reason_;
};

// "NNNNNNNN.seg" for segment `id` (8 digits at least, zero-padded decimal).
std::string SegmentFileName(uint64_t id);
// The id in a segment file name; nullopt for any other name.
std::optional<uint64_t> ParseSegmentFileName(const std::string& name);

}  // namespace cairn::store
