// Sealed segments kept in an S3-compatible bucket (docs/formats.md "Segments in a bucket",
// docs/operations.md "An off-site copy in S3-compatible storage").
//
// A sealed segment NNNNNNNN.seg is uploaded whole as the object `segments/NNNNNNNN.seg`, then a
// small *index object* `segments/NNNNNNNN.idx` listing every intact record of it (offset, blob
// key, size, XXH3-128, kind, extra flag). The index is put last: its presence says the segment
// object is complete, and the index objects alone are enough to rebuild the registry. Keys are
// relative to the ObjectStore's root (the `s3://BUCKET/PREFIX` prefix is the store's).
//
// Index object (all integers little-endian): magic "CAIRNIDX", u32 version (1), u32 segment
// flags (as in the segment header), u64 segment id, u64 segment size (bytes of the segment
// object), u32 record count N, N entries of 80 bytes — u64 record offset, u64 blob size, u8 kind,
// u8 flags (bit 0: extra), u16 zero, u64 owner, 32-byte chunk id, u32 shard, 16-byte XXH3-128 of
// the blob — then u64 checksum: the first 8 bytes of the XXH3-128 of everything before it.
//
// Thread-safety: the functions are stateless; a RemoteSegmentFile is thread-safe (its
// ObjectStore is).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/env/file_system.h"
#include "cairn/store/s3/object_store.h"
#include "cairn/store/segment.h"

namespace cairn::store {

inline constexpr char kSegmentIndexMagic[8] = {'C', 'A', 'I', 'R', 'N', 'I', 'D', 'X'};
inline constexpr uint32_t kSegmentIndexVersion = 1;
inline constexpr size_t kSegmentIndexHeaderSize = 36;
inline constexpr size_t kSegmentIndexEntrySize = 80;

// "segments/NNNNNNNN.seg" and "segments/NNNNNNNN.idx" of segment `id`.
std::string SegmentObjectKey(uint64_t id);
std::string SegmentIndexKey(uint64_t id);
// The prefix every segment and index object key starts with ("segments/").
inline constexpr char kSegmentObjectPrefix[] = "segments/";
// The segment id of an object key, and whether it is an index; nullopt for any other key.
struct SegmentObjectName {
  uint64_t id = 0;
  bool index = false;
};
std::optional<SegmentObjectName> ParseSegmentObjectKey(const std::string& key);

struct SegmentIndexEntry {
  uint64_t offset = 0;  // of the record's first byte in the segment
  RecordInfo info;
};
struct SegmentIndex {
  uint64_t id = 0;
  uint32_t flags = 0;                      // segment header flags
  uint64_t segment_size = 0;               // bytes
  std::vector<SegmentIndexEntry> entries;  // ascending by offset
};

Bytes EncodeSegmentIndex(const SegmentIndex& index);
// DATA_LOSS when `data` is not a well-formed index object: short, bad magic, unknown version,
// checksum mismatch, a count that does not match the length, or records that overlap, are out of
// order or reach past the segment size.
absl::StatusOr<SegmentIndex> DecodeSegmentIndex(ByteSpan data);

// The index of the local segment file `file` of segment `id`: its header flags, its size and every
// intact record that ends by `end` (the registered end of the sealed segment), up to the first
// damaged one (what follows a damaged record is unregistered, docs/formats.md "Segments").
// DATA_LOSS when the header is damaged or names another id; I/O errors of the file.
absl::StatusOr<SegmentIndex> IndexSegmentFile(env::File* file, uint64_t id, uint64_t end);

// A read-only env::File over a segment object: ReadAt is a ranged GET. Append and Truncate return
// FAILED_PRECONDITION; Sync does nothing. NOT_FOUND from the store (the object is gone) is returned
// as is. An answer that is not what was asked (fewer bytes, or DATA_LOSS from the store) is asked
// again, kRemoteReadAttempts in all, then returned as UNAVAILABLE: it says nothing about the
// object, and a DATA_LOSS read would make the segment store quarantine a good blob.
inline constexpr int kRemoteReadAttempts = 3;
class RemoteSegmentFile : public env::File {
 public:
  // `size` is the object's size (from its index); `store` must outlive the file.
  RemoteSegmentFile(s3::ObjectStore* store, std::string key, uint64_t size)
      : store_(store), key_(std::move(key)), size_(size) {}
  absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override;
  absl::Status Append(ByteSpan data) override;
  absl::Status Sync() override;
  absl::Status Truncate(uint64_t size) override;
  absl::StatusOr<uint64_t> Size() override { return size_; }

 private:
  s3::ObjectStore* const store_;
  const std::string key_;
  const uint64_t size_;
};

}  // namespace cairn::store
