// SegmentBlobStore: a BlobStore that appends blobs to segment (pack) files with group commit
// (format and durability argument in docs/formats.md "Segments").
//
// Layout: ROOT/segments/NNNNNNNN.seg, each a header and framed records (store/segment.h). Puts
// append to the open segment; at `segment_target_bytes` it is sealed and never written again.
// Where each blob lives is recorded in a SegmentRegistry (SQLite in production).
//
// Group commit (leveldb's write groups): concurrent Put and PutBatch calls queue up; the caller
// at the head of the queue (the leader) appends the records of every queued put, issues ONE
// fdatasync and ONE registry transaction for all of them, then wakes the others. A put is
// answered kStored only after its record was synced and its slot committed. The registry commit
// of a group is not itself synced (SQLite synchronous=NORMAL): the segment is the log, and Open
// re-registers every intact record past a segment's `registered_end` and cuts a torn tail. Every
// other registry change (delete, eviction, promotion, quarantine, compaction switch) is
// committed durably before it is answered.
//
// Same semantics as DiskBlobStore (blob_store.h) for checks, idempotency, quota with eviction of
// extra copies, promotion, quarantine, listing and scrub, except that space is returned by
// compaction: a deleted or evicted blob becomes *dead*; its bytes stay in its segment, counted
// in `used` (the quota counts bytes on disk), until its segment is rewritten. A put (or
// EvictExtras) that does not fit otherwise compacts first, at full speed, every segment holding
// dead bytes (sealing the open one). Compaction temporarily needs room for the live bytes of
// one segment beyond the quota. `used` counts blob bytes; the record framing (76 bytes per
// blob) and segment headers are not counted.
//
// Quarantine is a registry state: the record stays in its segment, no longer held (not in
// `used`), counted in `quarantined`, until compaction drops it with the segment.
//
// A full disk (docs/operations.md "A full disk"): besides the quota, a put must fit in the free
// space of the file system holding the segments minus `disk_reserve_bytes` (left for the index
// and compaction); otherwise it is answered RESOURCE_EXHAUSTED, like a full quota, before
// anything is written. Stats reports the free space, so the peer advertises the smaller room.
//
// Failures: an I/O error while appending a group (ENOSPC included: RESOURCE_EXHAUSTED) fails
// that group's puts; the store then rolls the open segment back to where the group started and
// removes any segment the group created, so no torn record stays behind a later put and the
// store keeps taking puts once space returns. If that fails, or a sync or a group's registry
// commit fails, the store stops accepting writes (FAILED_PRECONDITION) until it is reopened:
// after a failed fsync the page cache cannot be trusted (what reached the disk is unknown), and
// Open recovers from what is on disk.
//
// Segments in a bucket (docs/formats.md "Segments in a bucket", docs/operations.md "An off-site
// copy in S3-compatible storage"): with `options.bucket`, UploadSealed puts every sealed segment
// not yet there as one object plus its index object (store/segment_bucket.h); Open runs it once.
// Once both are confirmed, the local file is removed (unless `keep_local_segments`) and reads of
// that segment are ranged GETs. The open segment stays local: it is the write-ahead log, so an
// acknowledged put survives a crash before its segment is uploaded (Open uploads it). When
// compaction retires an uploaded segment its objects are deleted. Open lists the bucket: a
// registry lost with index.db is rebuilt from the index objects (and the local segments);
// objects of segments the registry no longer knows are deleted. Open fails with the store's
// code when the bucket cannot be listed.
//
// Thread-safety: thread-safe. Compaction, scrub, uploads and puts run concurrently; reads never
// wait for a write group's sync.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "cairn/env/clock.h"
#include "cairn/env/file_system.h"
#include "cairn/env/rate_limiter.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/s3/object_store.h"
#include "cairn/store/segment_registry.h"

namespace cairn::store {

struct SegmentStoreOptions {
  // A segment is sealed once it reaches this many bytes (a segment exceeds it by at most one
  // record).
  uint64_t segment_target_bytes = 64ull << 20;
  // CompactOnce rewrites a sealed segment whose live bytes are below this fraction of its
  // blob bytes (live + dead + quarantined).
  double compact_below_live_fraction = 0.5;
  // Background compaction (CompactOnce/Compact) copies at most this many bytes per second;
  // 0 = unlimited. Compaction a put needs for room is never throttled.
  uint64_t compact_bytes_per_second = 32ull << 20;
  // A write group takes queued puts until it holds this many blob bytes (at least one put).
  uint64_t max_group_bytes = 16ull << 20;
  // Bytes a put must leave free on the file system holding the segments (see above).
  uint64_t disk_reserve_bytes = kDefaultDiskReserveBytes;
  static constexpr uint64_t kDefaultDiskReserveBytes = 64ull << 20;
  // Time and waiting for the compaction rate limit; nullptr = real ones owned by the store.
  env::Clock* clock = nullptr;
  env::Sleeper* sleeper = nullptr;
  // Where sealed segments are kept off-site (see above); nullptr = local only. Not owned; must
  // outlive the store.
  s3::ObjectStore* bucket = nullptr;
  // With a bucket: keep the local file of an uploaded segment as a read cache.
  bool keep_local_segments = false;
  // Told about quarantined blobs and records dropped because their segment is missing.
  DiskBlobStore::DamageObserver observer;
};

// What Open found and repaired (logged by the daemon).
struct SegmentRecovery {
  uint64_t segments = 0;          // segment files found
  uint64_t replayed_records = 0;  // intact records past registered_end, registered again
  uint64_t torn_tail_bytes = 0;   // bytes cut off torn tails
  uint64_t removed_segments = 0;  // unfinished compaction outputs and retired segments
  // The registry had no segment row while segment files existed (it was lost with index.db):
  // it was rebuilt from every intact record of every segment (docs/formats.md "Segments",
  // "Rebuilding the registry"); replayed_records counts them.
  bool registry_rebuilt = false;
  // Segment files whose header is damaged, left untouched and unregistered while rebuilding.
  uint64_t unreadable_segments = 0;
  // While rebuilding: bytes after the last intact record of a segment other than the newest
  // write segment (a damaged record and what follows it), left in place unregistered
  // (compaction drops them). The newest write segment's torn tail is cut (torn_tail_bytes).
  uint64_t unregistered_tail_bytes = 0;
  // With a bucket: segments found there (index object present), and those of them whose local
  // file is absent (read from the bucket).
  uint64_t bucket_segments = 0;
  uint64_t remote_segments = 0;
  // Objects of segments the registry does not know (retired by compaction, their deletion
  // interrupted), deleted.
  uint64_t stale_objects = 0;
  // The upload pass Open runs failed: why (the store works; UploadSealed retries). Empty if not.
  std::string upload_error;
};

class SegmentBlobStore : public BlobStore {
 public:
  // Opens or creates the store in `root` (creates root and root/segments), on `fs` (e.g.
  // env::PosixFileSystem()); recovers as described above. `registry` and `fs` must outlive the
  // store. INVALID_ARGUMENT for an empty root or null registry/fs; I/O and registry errors.
  static absl::StatusOr<std::unique_ptr<SegmentBlobStore>> Open(const std::string& root,
                                                                uint64_t quota,
                                                                SegmentRegistry* registry,
                                                                const SegmentStoreOptions& options,
                                                                env::FileSystem* fs);
  ~SegmentBlobStore() override;

  using BlobStore::Put;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum,
                                 const PutOptions& options) override;
  std::vector<absl::StatusOr<PutOutcome>> PutBatch(std::span<const PutItem> items) override;
  absl::StatusOr<Bytes> Get(const BlobKey& key) override;
  // Looks up to 256 keys at a time in one registry read (SegmentRegistry::FindLiveMany); a
  // record that does not read back intact goes the whole way of Get (again after a compaction
  // moved it; quarantined when damaged).
  absl::Status GetEach(std::span<const BlobKey> keys, const GetEachFn& fn) override;
  absl::StatusOr<bool> Has(const BlobKey& key) override;
  absl::Status Delete(const BlobKey& key) override;
  StoreStats Stats() override;
  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override;
  absl::Status SetQuota(uint64_t quota) override;
  absl::StatusOr<EvictResult> EvictExtras(uint64_t target_used) override;
  absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override;
  absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                   size_t limit) override;
  absl::StatusOr<ScrubOutcome> ScrubBlob(const BlobKey& key) override;

  // Rewrites one sealed segment whose live fraction is below the threshold (the lowest first),
  // rate-limited. True when it rewrote one, false when none qualifies. Crash-safe at every step
  // (docs/formats.md "Segments"). For the daemon's maintenance loop.
  absl::StatusOr<bool> CompactOnce();
  // CompactOnce until it finds nothing to do; returns how many segments it rewrote.
  absl::StatusOr<uint64_t> Compact();
  // Seals the open segment and rewrites every segment holding dead or quarantined bytes, at
  // full speed: afterwards `used` = live bytes (what a put short of room does).
  absl::Status CompactAll();

  // With a bucket: uploads every sealed segment not yet there (the segment object, then its
  // index object), then removes the local files of uploaded segments unless
  // `keep_local_segments`, and retries deleting objects of retired segments. Returns how many
  // segments it uploaded; 0 without a bucket. Errors: the ObjectStore's codes (UNAVAILABLE,
  // PERMISSION_DENIED, NOT_FOUND for a missing bucket), I/O errors reading a segment; what was
  // uploaded before the error stays uploaded. For the daemon's maintenance loop; serialized with
  // compaction.
  absl::StatusOr<uint64_t> UploadSealed();
  // Segments whose objects are confirmed in the bucket, and those read from it (no local file).
  std::set<uint64_t> UploadedSegments();
  std::set<uint64_t> RemoteSegments();

  // What Open recovered.
  SegmentRecovery recovery() const;
  // ROOT/segments/NNNNNNNN.seg of segment `id` (tests damage it).
  std::string SegmentPath(uint64_t id) const;
  // Puts waiting in the write queue, the group being committed included (tests of group
  // commit wait for it).
  size_t QueuedWriters();
  // Where `key`'s live record is (tests damage it). NOT_FOUND if not held.
  absl::StatusOr<SlotLocation> LocationOf(const BlobKey& key);

  class Impl;

 private:
  explicit SegmentBlobStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::store
