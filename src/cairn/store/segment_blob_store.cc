// SegmentBlobStore: blobs appended to segment files with group commit (segment_blob_store.h).
#include "cairn/store/segment_blob_store.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/store/segment.h"
#include "cairn/store/segment_bucket.h"

namespace cairn::store {
namespace {

constexpr char kSegmentsDirName[] = "segments";
// Extra slots read per registry query while evicting.
constexpr size_t kEvictPage = 256;
// Write groups and compaction hand records to the file in pieces of about this size.
constexpr size_t kCopyBuffer = 1 << 20;

// Holds `key` exclusively (against other puts, deletes and quarantines of it) while alive.
class KeyGuard {
 public:
  KeyGuard(std::mutex& mu, std::condition_variable& cv, std::set<BlobKey>& busy, const BlobKey& key,
           bool wait = true)
      : mu_(mu), cv_(cv), busy_(busy), key_(key) {
    std::unique_lock<std::mutex> lock(mu_);
    if (wait) {
      cv_.wait(lock, [&] { return busy_.count(key_) == 0; });
    }
    owns_ = busy_.insert(key_).second;
  }
  ~KeyGuard() {
    if (!owns_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(key_);
    }
    cv_.notify_all();
  }
  KeyGuard(const KeyGuard&) = delete;
  KeyGuard& operator=(const KeyGuard&) = delete;
  bool owns() const { return owns_; }

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  std::set<BlobKey>& busy_;
  BlobKey key_;
  bool owns_ = false;
};

BlobRecord RecordOf(const Slot& slot) { return slot.record; }

std::vector<BlobRecord> RecordsOf(const std::vector<Slot>& slots) {
  std::vector<BlobRecord> out;
  out.reserve(slots.size());
  for (const Slot& s : slots) out.push_back(RecordOf(s));
  return out;
}

// What reading a slot's record back found.
struct RecordCheck {
  enum Verdict { kIntact, kMissing, kCorrupt } verdict = kIntact;
  std::string reason;
  Bytes record;  // header + blob, when intact
};

// The blob of an intact record, moved out of it: the header is cut off in place, so a read
// holds one buffer of the blob's size, not two.
Bytes TakeBlob(RecordCheck& check) {
  Bytes blob = std::move(check.record);
  blob.erase(blob.begin(), blob.begin() + static_cast<std::ptrdiff_t>(kRecordHeaderSize));
  return blob;
}

}  // namespace

class SegmentBlobStore::Impl {
 public:
  env::FileSystem* fs = nullptr;
  std::string root, dir;
  SegmentRegistry* registry = nullptr;
  SegmentStoreOptions options;
  std::unique_ptr<env::InterruptibleSleeper> own_sleeper;
  std::unique_ptr<env::RateLimiter> limiter;  // nullptr: unthrottled
  SegmentRecovery recovered;

  // ---- guarded by mu ----
  std::mutex mu;
  std::condition_variable key_released;
  std::set<BlobKey> busy;
  uint64_t quota = 0;
  uint64_t reserved = 0;                   // bytes of puts between admission and commit
  std::optional<uint64_t> last_disk_free;  // FreeSpace(dir) when last asked
  std::map<uint64_t, SegmentUsage> usage;  // per segment with slots
  std::set<uint64_t> segment_files;        // segments whose files exist (not retired)
  std::map<uint64_t, std::shared_ptr<env::File>> handles;  // open for reading
  uint64_t next_id = 1;
  absl::Status broken;  // not OK: writes refused until reopened
  uint64_t compactions = 0, copied_total = 0, reclaimed = 0;
  uint64_t compacting = 0, compact_done = 0, compact_total = 0;
  // With a bucket (docs/formats.md "Segments in a bucket"): segments whose segment and index
  // objects are confirmed; of those, the ones without a local file (id -> object size); ids
  // whose objects are to be deleted (retired segments).
  std::set<uint64_t> uploaded;
  std::map<uint64_t, uint64_t> remote;
  std::map<uint64_t, uint64_t> remote_size;  // object size of every uploaded segment
  std::set<uint64_t> stale;

  struct Writer;
  std::deque<Writer*> writers;

  // ---- the open segment: guarded by write_mu ----
  std::mutex write_mu;
  std::shared_ptr<env::File> wfile;  // nullptr: none open (the next group creates one)
  uint64_t wid = 0;
  uint64_t wsize = 0;

  // Serializes slot state changes (delete, evict, promote, quarantine) with compaction's
  // switch. Order: key guards, compact_mu, write_mu, meta_mu, mu.
  std::mutex meta_mu;
  std::mutex compact_mu;

  std::string PathOf(uint64_t id) const { return dir + "/" + SegmentFileName(id); }

  // ---- counters (caller holds mu) ----
  void CountLocked(uint64_t segment, SlotState state, uint64_t size, bool extra, int sign) {
    SegmentUsage& u = usage[segment];
    u.segment = segment;
    auto add = [sign](uint64_t& v, uint64_t d) { v = sign > 0 ? v + d : v - std::min(v, d); };
    add(u.record_bytes, kRecordHeaderSize + size);
    switch (state) {
      case SlotState::kLive:
        add(u.live_blobs, 1);
        add(u.live_bytes, size);
        if (extra) {
          add(u.extra_blobs, 1);
          add(u.extra_bytes, size);
        }
        break;
      case SlotState::kDead:
        add(u.dead_blobs, 1);
        add(u.dead_bytes, size);
        break;
      case SlotState::kQuarantined:
        add(u.quarantined_blobs, 1);
        add(u.quarantined_bytes, size);
        break;
    }
  }
  SegmentUsage TotalsLocked() const {
    SegmentUsage t;
    for (const auto& [id, u] : usage) {
      t.live_blobs += u.live_blobs;
      t.live_bytes += u.live_bytes;
      t.dead_blobs += u.dead_blobs;
      t.dead_bytes += u.dead_bytes;
      t.quarantined_blobs += u.quarantined_blobs;
      t.quarantined_bytes += u.quarantined_bytes;
      t.extra_blobs += u.extra_blobs;
      t.extra_bytes += u.extra_bytes;
    }
    return t;
  }
  uint64_t UsedLocked() const {
    SegmentUsage t = TotalsLocked();
    return t.live_bytes + t.dead_bytes;
  }

  absl::Status WritableLocked() const {
    if (broken.ok()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("segment store refuses writes until reopened after: ", broken.message()));
  }

  // ---- reading ----
  absl::StatusOr<std::shared_ptr<env::File>> Handle(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = handles.find(id);
      if (it != handles.end()) return it->second;
      auto r = remote.find(id);
      if (r != remote.end() && options.bucket != nullptr) {
        auto file =
            std::make_shared<RemoteSegmentFile>(options.bucket, SegmentObjectKey(id), r->second);
        if (segment_files.count(id)) handles[id] = file;
        return file;
      }
    }
    auto f = fs->Open(PathOf(id), env::OpenMode::kRead);
    if (!f.ok() && f.status().code() == absl::StatusCode::kNotFound) {
      // Uploaded and removed meanwhile (UploadSealed): read it from the bucket.
      std::lock_guard<std::mutex> lock(mu);
      auto r = remote.find(id);
      if (r != remote.end() && options.bucket != nullptr) {
        return std::make_shared<RemoteSegmentFile>(options.bucket, SegmentObjectKey(id), r->second);
      }
    }
    if (!f.ok()) return f.status();
    std::shared_ptr<env::File> shared = std::move(*f);
    std::lock_guard<std::mutex> lock(mu);
    if (!segment_files.count(id)) return shared;  // retired meanwhile: do not cache
    return handles.emplace(id, shared).first->second;
  }

  // Bytes of segment `id`: its local file, or its object when it is read from the bucket
  // (the size its index object gives; docs/formats.md "Segments in a bucket"). nullopt when it
  // has neither.
  absl::StatusOr<std::optional<uint64_t>> SegmentSize(uint64_t id) {
    auto in_bucket = [&]() -> std::optional<uint64_t> {
      std::lock_guard<std::mutex> lock(mu);
      auto r = remote.find(id);
      if (r == remote.end() || options.bucket == nullptr) return std::nullopt;
      return r->second;
    };
    if (auto size = in_bucket()) return size;
    auto size = fs->FileSize(PathOf(id));
    if (size.ok()) return std::optional<uint64_t>(*size);
    if (size.status().code() != absl::StatusCode::kNotFound) return size.status();
    return in_bucket();  // uploaded and removed meanwhile (UploadSealed)
  }

  // Reads `slot`'s record and checks it against the slot: header intact, same key and size,
  // blob XXH3-128 equal to the registered checksum. Unreadable data is corruption.
  absl::StatusOr<RecordCheck> CheckSlot(const Slot& slot, bool from_media) {
    RecordCheck out;
    const std::string where =
        absl::StrCat("segment ", slot.location.segment, " offset ", slot.location.offset);
    auto file = Handle(slot.location.segment);
    if (!file.ok()) {
      if (file.status().code() == absl::StatusCode::kNotFound) {
        out.verdict = RecordCheck::kMissing;
        out.reason = absl::StrCat("segment ", slot.location.segment, " is missing");
        return out;
      }
      return file.status();
    }
    if (from_media) (*file)->DropCache();
    out.record.resize(kRecordHeaderSize + slot.record.size);
    auto n = (*file)->ReadAt(slot.location.offset, out.record);
    if (!n.ok()) {
      if (n.status().code() != absl::StatusCode::kDataLoss) return n.status();
      out.verdict = RecordCheck::kCorrupt;
      out.reason = absl::StrCat(where, ": ", n.status().message());
      return out;
    }
    auto corrupt = [&](std::string why) {
      out.verdict = RecordCheck::kCorrupt;
      out.reason = absl::StrCat(where, ": ", why);
      out.record.clear();
      return out;
    };
    if (*n < out.record.size()) {
      return corrupt(absl::StrCat("record truncated (", *n, " of ", out.record.size(), " bytes)"));
    }
    auto info = DecodeRecordHeader(out.record);
    if (!info.ok()) return corrupt(std::string(info.status().message()));
    if (info->key != slot.record.key) {
      return corrupt("record holds " + info->key.DebugString() + ", not " +
                     slot.record.key.DebugString());
    }
    if (info->blob_size != slot.record.size) {
      return corrupt(
          absl::StrCat("record says ", info->blob_size, " bytes, registered ", slot.record.size));
    }
    if (codec::BlobChecksum(ByteSpan(out.record).subspan(kRecordHeaderSize)) !=
        slot.record.checksum) {
      return corrupt("blob does not match its checksum");
    }
    return out;
  }

  // ---- registry changes mirrored in the counters ----

  // Applies a durable change of one slot's state (delete, evict, quarantine) or drops it
  // (`drop`). Caller holds meta_mu.
  absl::Status ChangeSlot(const Slot& slot, SlotState to, bool drop) {
    RegistryBatch batch;
    if (drop) {
      batch.remove.push_back(slot.location);
    } else {
      batch.set_state.push_back({slot.location, to});
    }
    CAIRN_RETURN_IF_ERROR(registry->Apply(batch, /*durable=*/true));
    std::lock_guard<std::mutex> lock(mu);
    CountLocked(slot.location.segment, slot.state, slot.record.size, slot.record.extra, -1);
    if (!drop) CountLocked(slot.location.segment, to, slot.record.size, false, +1);
    return absl::OkStatus();
  }

  absl::StatusOr<ScrubOutcome> Settle(const BlobKey& key, bool from_media, Bytes* intact,
                                      std::string* reason);
  absl::StatusOr<EvictResult> EvictUntil(const std::function<bool()>& enough);
  // `disk_free`: QueryFreeSpace() as the caller asked it, once for a whole batch (a statfs per
  // blob was 1.6% of a storage peer's CPU); asked again after a compaction made room.
  absl::Status Reserve(const BlobKey& key, uint64_t size, bool extra,
                       std::optional<uint64_t> disk_free);
  // Free bytes of the file system holding the segments, remembered for Stats; nullopt when
  // the query failed (then only the quota limits puts).
  std::optional<uint64_t> QueryFreeSpace() {
    auto free = fs->FreeSpace(dir);
    std::lock_guard<std::mutex> lock(mu);
    last_disk_free = free.ok() ? std::optional<uint64_t>(*free) : std::nullopt;
    return last_disk_free;
  }
  absl::Status CommitGroup(std::vector<Writer*>& group, std::vector<Slot>* added);
  absl::Status Commit(Writer* w);
  absl::StatusOr<std::shared_ptr<env::File>> CreateSegment(uint64_t id, uint32_t flags);
  absl::Status SealOpenSegment();
  absl::Status CompactSegment(uint64_t id, bool throttled);
  absl::StatusOr<std::optional<uint64_t>> PickSegment(bool all);
  absl::Status Recover();
  absl::StatusOr<uint64_t> UploadSealed();
  absl::Status UploadSegment(const SegmentRow& row);
  // Deletes the objects of the segments in `stale` (index first: a segment object without its
  // index is not taken for an uploaded segment). The first error is returned; what failed stays
  // in `stale`.
  absl::Status DeleteStale();
};

// One caller's puts waiting in the write queue.
struct SegmentBlobStore::Impl::Writer {
  struct Item {
    const PutItem* put;
    uint8_t kind;
    bool extra;
  };
  std::vector<Item> items;
  uint64_t bytes = 0;
  bool done = false;
  absl::Status status;
  std::condition_variable cv;
};

// ---- segments ----

absl::StatusOr<std::shared_ptr<env::File>> SegmentBlobStore::Impl::CreateSegment(uint64_t id,
                                                                                 uint32_t flags) {
  const std::string path = PathOf(id);
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<env::File> f, fs->Open(path, env::OpenMode::kCreate));
  absl::Status st = f->Append(EncodeSegmentHeader({.id = id, .flags = flags}));
  if (st.ok()) st = f->Sync();
  // The name must be durable before any record in the file is acknowledged.
  if (st.ok()) st = fs->SyncDir(dir);
  if (!st.ok()) {
    (void)fs->Remove(path);
    return Annotate(st, "create segment " + path);
  }
  std::shared_ptr<env::File> shared = std::move(f);
  std::lock_guard<std::mutex> lock(mu);
  segment_files.insert(id);
  handles[id] = shared;
  return shared;
}

// Leader: appends every item of `group`, one sync, one registry transaction. Holds write_mu.
absl::Status SegmentBlobStore::Impl::CommitGroup(std::vector<Writer*>& group,
                                                 std::vector<Slot>* added) {
  std::lock_guard<std::mutex> wlock(write_mu);
  {
    std::lock_guard<std::mutex> lock(mu);
    CAIRN_RETURN_IF_ERROR(WritableLocked());
  }
  RegistryBatch batch;
  std::vector<std::shared_ptr<env::File>> to_sync;  // sealed during this group
  // What goes to the file next: each record's header (in `headers`) and its blob, straight
  // from the request. `headers` is sized for the whole group up front, so the spans into it
  // stay valid.
  size_t items = 0;
  for (Writer* w : group) items += w->items.size();
  Bytes headers;
  headers.reserve(items * kRecordHeaderSize);
  std::vector<ByteSpan> parts;
  size_t staged = 0;                                    // bytes in `parts`
  const std::shared_ptr<env::File> group_file = wfile;  // nullptr: none was open
  const uint64_t group_start = wsize;
  const uint64_t group_segment = wid;
  std::vector<uint64_t> created;  // segments this group created
  const int64_t now_ns = (options.clock ? options.clock : env::RealClock::Default())->NowNanos();

  auto fail = [&](const absl::Status& st, bool can_roll_back) -> absl::Status {
    // Roll back to the state before the group: cut what it appended to the segment that was
    // open and remove the segments it created, so that the next group does not follow a torn
    // record (a full disk leaves one) and puts work again once there is space. Nothing of the
    // group is registered yet. When that is impossible, refuse further writes until Open has
    // recovered from the disk.
    bool rolled_back = can_roll_back;
    if (rolled_back && group_file != nullptr) rolled_back = group_file->Truncate(group_start).ok();
    for (uint64_t id : created) {
      if (!rolled_back) break;
      absl::Status removed = fs->Remove(PathOf(id));
      rolled_back = removed.ok() || removed.code() == absl::StatusCode::kNotFound;
      if (rolled_back) {
        std::lock_guard<std::mutex> lock(mu);
        segment_files.erase(id);
        handles.erase(id);
      }
    }
    if (rolled_back) {
      wfile = group_file;
      wid = group_segment;
      wsize = group_start;
    } else {
      std::lock_guard<std::mutex> lock(mu);
      if (broken.ok()) broken = st;
    }
    if (st.code() == absl::StatusCode::kResourceExhausted) {
      return Annotate(st, "no space on disk for this write group");
    }
    return st;
  };

  auto flush = [&]() -> absl::Status {
    if (parts.empty()) return absl::OkStatus();
    absl::Status st = wfile->AppendV(parts);
    parts.clear();
    staged = 0;
    return st;
  };

  for (Writer* w : group) {
    for (const Writer::Item& item : w->items) {
      const PutItem& put = *item.put;
      if (wfile == nullptr || wsize >= options.segment_target_bytes) {
        if (wfile != nullptr) {
          if (absl::Status st = flush(); !st.ok()) return fail(st, true);
          to_sync.push_back(wfile);
          batch.put_segments.push_back({wid, SegmentState::kSealed, wsize});
        }
        uint64_t id;
        {
          std::lock_guard<std::mutex> lock(mu);
          id = next_id++;
        }
        auto file = CreateSegment(id, 0);
        if (!file.ok()) return fail(file.status(), true);
        created.push_back(id);
        wfile = *file;
        wid = id;
        wsize = kSegmentHeaderSize;
      }
      RecordInfo info;
      info.key = put.key;
      info.kind = item.kind;
      info.extra = item.extra;
      info.checksum = put.checksum;
      info.blob_size = put.blob.size();
      Slot slot;
      slot.record = BlobRecord{put.key, put.blob.size(), put.checksum, item.extra, item.kind};
      slot.location = {wid, wsize};
      slot.state = SlotState::kLive;
      slot.stored_ns = now_ns;
      batch.add.push_back(slot);
      const size_t at = headers.size();
      AppendRecordHeader(headers, info);
      parts.push_back(ByteSpan(headers.data() + at, kRecordHeaderSize));
      if (!put.blob.empty()) parts.push_back(put.blob);
      staged += info.RecordSize();
      wsize += info.RecordSize();
      if (staged >= kCopyBuffer) {
        if (absl::Status st = flush(); !st.ok()) return fail(st, true);
      }
    }
  }
  if (absl::Status st = flush(); !st.ok()) return fail(st, true);
  to_sync.push_back(wfile);
  for (auto& f : to_sync) {
    if (absl::Status st = f->Sync(); !st.ok()) return fail(st, false);
  }
  batch.put_segments.push_back({wid, SegmentState::kOpen, wsize});
  if (absl::Status st = registry->Apply(batch, /*durable=*/false); !st.ok()) {
    return fail(st, false);
  }
  *added = std::move(batch.add);
  return absl::OkStatus();
}

// Queues `w` and waits until a leader (perhaps this caller) committed it.
absl::Status SegmentBlobStore::Impl::Commit(Writer* w) {
  std::unique_lock<std::mutex> lock(mu);
  writers.push_back(w);
  w->cv.wait(lock, [&] { return w->done || writers.front() == w; });
  if (w->done) return w->status;
  // Leader: take queued writers up to max_group_bytes.
  std::vector<Writer*> group;
  uint64_t bytes = 0;
  for (Writer* q : writers) {
    if (!group.empty() && bytes + q->bytes > options.max_group_bytes) break;
    group.push_back(q);
    bytes += q->bytes;
  }
  lock.unlock();
  std::vector<Slot> added;
  absl::Status st = CommitGroup(group, &added);
  lock.lock();
  // Counted and unreserved under one lock, so that no one sees the bytes twice.
  for (const Slot& s : added) {
    CountLocked(s.location.segment, SlotState::kLive, s.record.size, s.record.extra, +1);
  }
  for (Writer* q : group) {
    // Reservations end with the group: committed bytes are now counted in `usage`.
    reserved -= std::min(reserved, q->bytes);
    writers.pop_front();
    if (q != w) {
      q->status = st;
      q->done = true;
      q->cv.notify_one();
    }
  }
  if (!writers.empty()) writers.front()->cv.notify_one();
  return st;
}

// ---- quota ----

absl::Status SegmentBlobStore::Impl::Reserve(const BlobKey& key, uint64_t size, bool extra,
                                             std::optional<uint64_t> disk_free) {
  bool compacted = false;
  while (true) {
    if (compacted) disk_free = QueryFreeSpace();  // outside the lock
    uint64_t live, dead, extra_bytes;
    {
      std::lock_guard<std::mutex> lock(mu);
      SegmentUsage t = TotalsLocked();
      live = t.live_bytes;
      dead = t.dead_bytes;
      extra_bytes = t.extra_bytes;
      const uint64_t committed = live + dead + reserved;
      if (committed <= quota && size <= quota - committed) {
        // The disk: bytes admitted but not yet committed may not be on it yet.
        if (disk_free) {
          const uint64_t room = *disk_free - std::min(*disk_free, options.disk_reserve_bytes);
          const uint64_t need = reserved + size + kRecordHeaderSize;
          if (need > room) {
            return absl::ResourceExhaustedError(absl::StrCat(
                "no space on disk for ", extra ? "extra " : "", "blob ", key.DebugString(), " (",
                size, " bytes; ", *disk_free, " bytes free on the file system of ", dir, ", ",
                options.disk_reserve_bytes, " kept in reserve, ", reserved, " being written)"));
          }
        }
        reserved += size;
        return absl::OkStatus();
      }
    }
    auto no_space = [&] {
      return absl::ResourceExhaustedError(
          absl::StrCat("no space for ", extra ? "extra " : "", "blob ", key.DebugString(), " (",
                       size, " bytes; used ", live + dead, " of ", quota, ", ", dead,
                       " awaiting compaction, ", extra_bytes, " in extra copies)"));
    };
    // Room that compaction (and, for a regular put, evicting every extra copy) could make.
    uint64_t floor = live + reserved;
    if (!extra) floor -= std::min(floor, extra_bytes);
    if (floor > quota || size > quota - floor || compacted) return no_space();
    if (!extra) {
      CAIRN_RETURN_IF_ERROR(EvictUntil([&] {  // caller holds mu
                              SegmentUsage t = TotalsLocked();
                              uint64_t c = t.live_bytes + reserved;
                              return c <= quota && size <= quota - c;
                            })
                                .status());
    }
    {
      std::lock_guard<std::mutex> compact_lock(compact_mu);
      const std::string what = "make room for blob " + key.DebugString();
      CAIRN_RETURN_IF_ERROR(Annotate(SealOpenSegment(), what));
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(std::optional<uint64_t> id, PickSegment(/*all=*/true));
        if (!id) break;
        CAIRN_RETURN_IF_ERROR(Annotate(CompactSegment(*id, /*throttled=*/false), what));
      }
    }
    compacted = true;
  }
}

absl::StatusOr<EvictResult> SegmentBlobStore::Impl::EvictUntil(
    const std::function<bool()>& enough) {
  EvictResult result;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (enough() || TotalsLocked().extra_blobs == 0) return result;
    }
    CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> extras,
                           Annotate(registry->ListExtras(kEvictPage), "evict extra blobs"));
    bool evicted_any = false;
    for (const Slot& listed : extras) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (enough()) return result;
      }
      KeyGuard guard(mu, key_released, busy, listed.record.key, /*wait=*/false);
      if (!guard.owns()) continue;
      std::lock_guard<std::mutex> meta(meta_mu);
      CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, registry->FindLive(listed.record.key));
      if (!slot || !slot->record.extra) continue;
      CAIRN_RETURN_IF_ERROR(Annotate(ChangeSlot(*slot, SlotState::kDead, false),
                                     "evict extra blob " + slot->record.key.DebugString()));
      ++result.blobs;
      result.bytes += slot->record.size;
      evicted_any = true;
    }
    if (!evicted_any) return result;
  }
}

// ---- quarantine ----

absl::StatusOr<ScrubOutcome> SegmentBlobStore::Impl::Settle(const BlobKey& key, bool from_media,
                                                            Bytes* intact, std::string* reason) {
  ScrubOutcome outcome;
  std::string why;
  {
    KeyGuard guard(mu, key_released, busy, key);
    std::lock_guard<std::mutex> meta(meta_mu);  // no compaction moves the slot meanwhile
    CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, registry->FindLive(key));
    if (!slot) return ScrubOutcome::kNotHeld;
    CAIRN_ASSIGN_OR_RETURN(RecordCheck check, CheckSlot(*slot, from_media));
    if (check.verdict == RecordCheck::kIntact) {
      if (intact != nullptr)
        intact->assign(check.record.begin() + kRecordHeaderSize, check.record.end());
      return ScrubOutcome::kIntact;
    }
    why = check.reason;
    const bool missing = check.verdict == RecordCheck::kMissing;
    CAIRN_RETURN_IF_ERROR(Annotate(ChangeSlot(*slot, SlotState::kQuarantined, missing),
                                   "quarantine blob " + key.DebugString()));
    outcome = missing ? ScrubOutcome::kMissing : ScrubOutcome::kQuarantined;
  }
  if (options.observer) options.observer(key, outcome, why);
  if (reason != nullptr) *reason = std::move(why);
  return outcome;
}

// ---- compaction ----

absl::Status SegmentBlobStore::Impl::SealOpenSegment() {
  std::lock_guard<std::mutex> wlock(write_mu);
  if (wfile == nullptr) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu);
    CAIRN_RETURN_IF_ERROR(WritableLocked());
  }
  RegistryBatch batch;
  batch.put_segments.push_back({wid, SegmentState::kSealed, wsize});
  CAIRN_RETURN_IF_ERROR(registry->Apply(batch, /*durable=*/true));
  wfile = nullptr;
  return absl::OkStatus();
}

// A sealed segment to rewrite: with `all`, any holding dead or quarantined bytes; else the one
// with the lowest live fraction below the threshold.
absl::StatusOr<std::optional<uint64_t>> SegmentBlobStore::Impl::PickSegment(bool all) {
  std::scoped_lock locks(write_mu, mu);
  std::optional<uint64_t> best;
  double best_fraction = 2;
  for (const auto& [id, u] : usage) {
    if (wfile != nullptr && id == wid) continue;  // open: not yet
    const uint64_t waste = u.dead_bytes + u.quarantined_bytes;
    if (waste == 0) continue;
    const double fraction =
        static_cast<double>(u.live_bytes) / static_cast<double>(u.live_bytes + waste);
    if (!all && fraction >= options.compact_below_live_fraction) continue;
    if (fraction < best_fraction) {
      best_fraction = fraction;
      best = id;
    }
  }
  return best;
}

absl::Status SegmentBlobStore::Impl::CompactSegment(uint64_t id, bool throttled) {
  {
    std::lock_guard<std::mutex> lock(mu);
    CAIRN_RETURN_IF_ERROR(WritableLocked());
  }
  const std::string what = absl::StrCat("compact segment ", id);
  CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> slots, Annotate(registry->SlotsOf(id), what));
  std::vector<Slot> live;
  uint64_t total = 0;
  for (const Slot& s : slots) {
    if (s.state == SlotState::kLive) {
      live.push_back(s);
      total += s.record.size;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    compacting = id;
    compact_done = 0;
    compact_total = total;
  }
  struct ProgressReset {
    Impl* impl;
    ~ProgressReset() {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->compacting = impl->compact_done = impl->compact_total = 0;
    }
  } progress_reset{this};

  // 1. Copy the live records, verbatim, into a new segment flagged as compaction output; make
  //    it durable. A crash until the switch commits leaves an unregistered compaction output,
  //    which Open removes.
  uint64_t new_id = 0;
  std::shared_ptr<env::File> out;
  std::map<SlotLocation, uint64_t> copied;  // old location -> new offset
  std::vector<Slot> corrupt;
  if (!live.empty()) {
    {
      std::lock_guard<std::mutex> lock(mu);
      new_id = next_id++;
    }
    CAIRN_ASSIGN_OR_RETURN(out, Annotate(CreateSegment(new_id, kSegmentFlagCompaction), what));
    uint64_t size = kSegmentHeaderSize;
    Bytes buf;
    auto abandon = [&](const absl::Status& st) {
      {
        std::lock_guard<std::mutex> lock(mu);
        segment_files.erase(new_id);
        handles.erase(new_id);
      }
      (void)fs->Remove(PathOf(new_id));
      return Annotate(st, what);
    };
    for (const Slot& s : live) {
      if (throttled && limiter != nullptr) {
        env::Sleeper* sleeper = options.sleeper ? options.sleeper : own_sleeper.get();
        if (!limiter->Acquire(kRecordHeaderSize + s.record.size, sleeper)) {
          return abandon(absl::CancelledError("interrupted"));
        }
      }
      auto check = CheckSlot(s, /*from_media=*/false);
      if (!check.ok()) return abandon(check.status());
      if (check->verdict != RecordCheck::kIntact) {
        corrupt.push_back(s);
        continue;
      }
      copied[s.location] = size;
      size += check->record.size();
      buf.insert(buf.end(), check->record.begin(), check->record.end());
      if (buf.size() >= kCopyBuffer) {
        if (absl::Status st = out->Append(buf); !st.ok()) return abandon(st);
        buf.clear();
      }
      std::lock_guard<std::mutex> lock(mu);
      compact_done += s.record.size;
    }
    if (absl::Status st = out->Append(buf); !st.ok()) return abandon(st);
    if (absl::Status st = out->Sync(); !st.ok()) return abandon(st);
    if (!corrupt.empty()) {
      // Quarantine what failed its check and try again later, with those left out.
      (void)abandon(absl::OkStatus());
      std::lock_guard<std::mutex> meta(meta_mu);
      for (const Slot& s : corrupt) {
        CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> now, registry->FindAt(s.location));
        if (now && now->state == SlotState::kLive) {
          CAIRN_RETURN_IF_ERROR(ChangeSlot(*now, SlotState::kQuarantined, false));
        }
      }
      return absl::OkStatus();
    }
  }

  // 2. Switch in one durable transaction: every slot of the old segment goes; the copies of
  //    those still live become live in the new one (deleted meanwhile: dead there).
  uint64_t reclaimed_bytes = 0;
  {
    std::lock_guard<std::mutex> meta(meta_mu);
    CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> now, Annotate(registry->SlotsOf(id), what));
    RegistryBatch batch;
    std::vector<Slot> added;
    for (const Slot& s : now) {
      batch.remove.push_back(s.location);
      auto c = copied.find(s.location);
      if (c != copied.end()) {
        Slot moved = s;
        moved.location = {new_id, c->second};
        if (s.state != SlotState::kLive) moved.state = SlotState::kDead;
        batch.add.push_back(moved);
        added.push_back(moved);
      } else if (s.state == SlotState::kLive) {
        // Stored after the copy was taken cannot happen (sealed), but be safe: keep the
        // segment.
        return absl::InternalError(what + ": a live record was not copied");
      }
    }
    if (out != nullptr) {
      CAIRN_ASSIGN_OR_RETURN(uint64_t out_size, out->Size());
      batch.put_segments.push_back({new_id, SegmentState::kSealed, out_size});
    }
    batch.put_segments.push_back({id, SegmentState::kRetired, 0});
    CAIRN_RETURN_IF_ERROR(Annotate(registry->Apply(batch, /*durable=*/true), what));
    std::lock_guard<std::mutex> lock(mu);
    auto u = usage.find(id);
    if (u != usage.end()) {
      reclaimed_bytes = u->second.dead_bytes + u->second.quarantined_bytes;
      usage.erase(u);
    }
    for (const Slot& s : added) {
      CountLocked(new_id, s.state, s.record.size, s.record.extra, +1);
    }
    ++compactions;
    for (const Slot& s : added) copied_total += s.record.size;
    reclaimed += reclaimed_bytes;
    segment_files.erase(id);
    handles.erase(id);
  }
  // 3. Remove the old file, then its row (a crash in between: Open finishes the job), then its
  //    objects in the bucket (a crash or an error before: a later UploadSealed or Open
  //    deletes them, as objects of a segment the registry does not know).
  {
    std::lock_guard<std::mutex> lock(mu);
    if (uploaded.erase(id) > 0) stale.insert(id);
    remote.erase(id);
    remote_size.erase(id);
  }
  absl::Status st = fs->Remove(PathOf(id));
  if (!st.ok() && st.code() != absl::StatusCode::kNotFound) return Annotate(st, what);
  CAIRN_RETURN_IF_ERROR(Annotate(fs->SyncDir(dir), what));
  RegistryBatch drop;
  drop.remove_segments.push_back(id);
  CAIRN_RETURN_IF_ERROR(Annotate(registry->Apply(drop, /*durable=*/false), what));
  // A failed delete stays queued in `stale` for the next upload pass.
  (void)DeleteStale();
  return absl::OkStatus();
}

// ---- recovery ----

absl::Status SegmentBlobStore::Impl::Recover() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(dir));
  std::map<uint64_t, std::string> files;
  for (const std::string& name : names) {
    if (auto id = ParseSegmentFileName(name)) files[*id] = name;
  }
  recovered.segments = files.size();
  CAIRN_ASSIGN_OR_RETURN(std::vector<SegmentRow> rows, registry->Segments());
  std::map<uint64_t, SegmentRow> row_of;
  for (const SegmentRow& r : rows) row_of[r.id] = r;
  for (const auto& [id, name] : files) next_id = std::max(next_id, id + 1);
  for (const auto& [id, row] : row_of) next_id = std::max(next_id, id + 1);

  // The bucket (docs/formats.md "Segments in a bucket"): a segment is there once its index
  // object is (it is put after the segment object).
  struct InBucket {
    std::optional<uint64_t> segment_size, index_size;
  };
  std::map<uint64_t, InBucket> bucket;
  if (options.bucket != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<s3::ObjectInfo> objects,
                           Annotate(s3::ListAll(options.bucket, kSegmentObjectPrefix),
                                    "list the segments in the bucket"));
    for (const s3::ObjectInfo& o : objects) {
      auto name = ParseSegmentObjectKey(o.key);
      if (!name) continue;  // not ours
      (name->index ? bucket[name->id].index_size : bucket[name->id].segment_size) = o.size;
      next_id = std::max(next_id, name->id + 1);
    }
  }
  std::set<uint64_t> in_bucket;  // segment and index object present
  for (const auto& [id, b] : bucket) {
    if (b.segment_size && b.index_size) in_bucket.insert(id);
  }
  recovered.bucket_segments = in_bucket.size();

  // No segment row at all while segment files exist: the registry was lost (index.db deleted,
  // emptied or replaced after damage), not a crash between two of our commits (the first
  // segment's row is committed before any of its puts is answered, and compaction needs the
  // rows of the segments it rewrites). Rebuild it from the files: every intact record of every
  // segment, compaction outputs included — after the switch they hold the only copy of what
  // they copied (docs/formats.md "Segments", "Rebuilding the registry").
  const bool rebuild = rows.empty() && (!files.empty() || !in_bucket.empty());
  recovered.registry_rebuilt = rebuild;
  // While rebuilding, the newest write segment (not compaction output) is treated as after a
  // crash: appended to again, its torn tail cut. Every other one is sealed and nothing in it
  // is cut: a damaged record there is not a torn tail, and the records after it stay on disk.
  std::optional<uint64_t> newest_write;
  if (rebuild) {
    for (auto it = files.rbegin(); it != files.rend() && !newest_write; ++it) {
      CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<env::File> f,
                             fs->Open(PathOf(it->first), env::OpenMode::kRead));
      Bytes hb(kSegmentHeaderSize);
      CAIRN_ASSIGN_OR_RETURN(size_t n, f->ReadAt(0, hb));
      hb.resize(n);
      auto header = DecodeSegmentHeader(hb);
      if (header.ok() && header->id == it->first && (header->flags & kSegmentFlagCompaction) == 0) {
        newest_write = it->first;
      }
    }
  }
  RegistryBatch batch;
  std::set<BlobKey> replayed_live;
  std::optional<uint64_t> open_candidate;
  bool removed_any = false;
  for (const auto& [id, row] : row_of) {
    if (row.state == SegmentState::kRetired) {
      // Compacted away; the crash came before its file or row was removed.
      if (files.count(id)) {
        CAIRN_RETURN_IF_ERROR(fs->Remove(PathOf(id)));
        removed_any = true;
        ++recovered.removed_segments;
        files.erase(id);
      }
      CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> left, registry->SlotsOf(id));
      for (const Slot& s : left) batch.remove.push_back(s.location);
      batch.remove_segments.push_back(id);
      if (bucket.count(id)) stale.insert(id);
    }
  }
  // Every segment, local or in the bucket, in id order (while rebuilding, the first record of
  // a key found is the live one).
  std::set<uint64_t> all_ids;
  for (const auto& [id, name] : files) all_ids.insert(id);
  for (const auto& [id, b] : bucket) {
    auto row = row_of.find(id);
    if (row != row_of.end() && row->second.state == SegmentState::kRetired) continue;
    if (files.count(id)) {
      if (in_bucket.count(id)) {
        uploaded.insert(id);
        remote_size[id] = *b.segment_size;
      }
      continue;
    }
    if (in_bucket.count(id) && (row != row_of.end() || rebuild)) {
      all_ids.insert(id);
    } else if (row == row_of.end()) {
      // Objects of a segment the registry does not know (retired by compaction, or an upload
      // of it that never finished) and that is not here: deleted.
      stale.insert(id);
    }
    // A row without its file or a complete upload: its slots read as missing.
  }
  for (uint64_t id : all_ids) {
    if (!files.count(id)) {
      // Only in the bucket.
      const uint64_t object_size = *bucket[id].segment_size;
      if (!row_of.count(id)) {
        // Rebuilding the registry: from the segment's index object.
        auto data = options.bucket->GetRange(SegmentIndexKey(id), 0, *bucket[id].index_size);
        if (!data.ok() && data.status().code() != absl::StatusCode::kNotFound &&
            data.status().code() != absl::StatusCode::kOutOfRange) {
          return Annotate(data.status(), "read " + SegmentIndexKey(id));
        }
        absl::StatusOr<SegmentIndex> index =
            data.ok() ? DecodeSegmentIndex(*data) : absl::StatusOr<SegmentIndex>(data.status());
        if (!index.ok() || index->id != id || index->segment_size != object_size) {
          // Left in the bucket unregistered for a person to look at.
          ++recovered.unreadable_segments;
          continue;
        }
        const int64_t now_ns =
            (options.clock ? options.clock : env::RealClock::Default())->NowNanos();
        for (const SegmentIndexEntry& e : index->entries) {
          Slot s;
          s.record =
              BlobRecord{e.info.key, e.info.blob_size, e.info.checksum, e.info.extra, e.info.kind};
          s.location = {id, e.offset};
          s.stored_ns = now_ns;
          const bool live = replayed_live.insert(e.info.key).second;
          s.state = live ? SlotState::kLive : SlotState::kDead;
          batch.add.push_back(s);
          ++recovered.replayed_records;
        }
        SegmentRow r{id, SegmentState::kSealed, index->segment_size};
        row_of[id] = r;
        batch.put_segments.push_back(r);
      }
      uploaded.insert(id);
      remote[id] = object_size;
      remote_size[id] = object_size;
      segment_files.insert(id);
      ++recovered.remote_segments;
      continue;
    }
    const std::string path = PathOf(id);
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<env::File> f, fs->Open(path, env::OpenMode::kReadWrite));
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, f->Size());
    auto row = row_of.find(id);
    Bytes hb(kSegmentHeaderSize);
    CAIRN_ASSIGN_OR_RETURN(size_t n, f->ReadAt(0, hb));
    hb.resize(n);
    auto header = DecodeSegmentHeader(hb);
    if (row == row_of.end() && rebuild) {
      if (!header.ok() || header->id != id) {
        if (size > kSegmentHeaderSize) {
          // Records behind a damaged header: leave the file for a person to look at.
          ++recovered.unreadable_segments;
          continue;
        }
        CAIRN_RETURN_IF_ERROR(fs->Remove(path));  // created, never written
        removed_any = true;
        ++recovered.removed_segments;
        continue;
      }
    } else if (row == row_of.end()) {
      // Unknown to the registry: a compaction output whose switch never committed, or a
      // segment whose creation never got a header (nothing in either was acknowledged), or a
      // write segment whose registry rows were lost (replayed below).
      if (!header.ok() || header->id != id || (header->flags & kSegmentFlagCompaction) != 0) {
        CAIRN_RETURN_IF_ERROR(fs->Remove(path));
        removed_any = true;
        ++recovered.removed_segments;
        continue;
      }
    } else if (!header.ok()) {
      return Annotate(header.status(), "open segment " + path);
    }
    const bool keep_tail = rebuild && id != newest_write;
    SegmentRow r = row != row_of.end()
                       ? row->second
                       : SegmentRow{id, keep_tail ? SegmentState::kSealed : SegmentState::kOpen,
                                    kSegmentHeaderSize};
    r.registered_end = std::max<uint64_t>(r.registered_end, kSegmentHeaderSize);
    if (size > r.registered_end) {
      // Records past what the registry knows: re-register the intact ones, cut the rest
      // (except while rebuilding, below).
      SegmentReader reader(f.get(), r.registered_end);
      const int64_t now_ns =
          (options.clock ? options.clock : env::RealClock::Default())->NowNanos();
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(std::optional<SegmentReader::Record> rec,
                               reader.Next(/*with_blob=*/false));
        if (!rec) break;
        Slot s;
        s.record = BlobRecord{rec->info.key, rec->info.blob_size, rec->info.checksum,
                              rec->info.extra, rec->info.kind};
        s.location = {id, rec->offset};
        s.stored_ns = now_ns;
        CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> held, registry->FindLive(rec->info.key));
        const bool live = !held && replayed_live.insert(rec->info.key).second;
        s.state = live ? SlotState::kLive : SlotState::kDead;
        batch.add.push_back(s);
        ++recovered.replayed_records;
      }
      if (reader.valid_end() < size && keep_tail) {
        // A damaged record and all after it (the reader cannot step over it) stay in the
        // sealed segment, unregistered, until compaction rewrites the segment;
        // registered_end covers them so that no later open cuts them.
        recovered.unregistered_tail_bytes += size - reader.valid_end();
        r.registered_end = size;
      } else {
        if (reader.valid_end() < size) {
          CAIRN_RETURN_IF_ERROR(f->Truncate(reader.valid_end()));
          CAIRN_RETURN_IF_ERROR(f->Sync());
          recovered.torn_tail_bytes += size - reader.valid_end();
        }
        r.registered_end = reader.valid_end();
      }
      size = r.registered_end;
    }
    if (r.state == SegmentState::kOpen) {
      // Only the newest open segment is appended to again; older ones are sealed.
      if (open_candidate) {
        batch.put_segments.push_back(
            {*open_candidate, SegmentState::kSealed, row_of[*open_candidate].registered_end});
      }
      open_candidate = id;
    }
    row_of[id] = r;
    batch.put_segments.push_back(r);
    segment_files.insert(id);
  }
  if (removed_any) CAIRN_RETURN_IF_ERROR(fs->SyncDir(dir));
  // Rows of open segments whose files are gone are sealed (their slots read as missing).
  if (!batch.empty()) CAIRN_RETURN_IF_ERROR(registry->Apply(batch, /*durable=*/true));
  if (open_candidate && row_of[*open_candidate].registered_end < options.segment_target_bytes) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<env::File> f,
                           fs->Open(PathOf(*open_candidate), env::OpenMode::kReadWrite));
    wfile = std::move(f);
    wid = *open_candidate;
    wsize = row_of[*open_candidate].registered_end;
    handles[wid] = wfile;
  } else if (open_candidate) {
    RegistryBatch seal;
    seal.put_segments.push_back(
        {*open_candidate, SegmentState::kSealed, row_of[*open_candidate].registered_end});
    CAIRN_RETURN_IF_ERROR(registry->Apply(seal, /*durable=*/true));
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<SegmentUsage> per_segment, registry->Usage());
  for (const SegmentUsage& u : per_segment) usage[u.segment] = u;
  recovered.stale_objects = stale.size();
  return absl::OkStatus();
}

// ---- the bucket (docs/formats.md "Segments in a bucket") ----

absl::Status SegmentBlobStore::Impl::DeleteStale() {
  std::set<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    ids = stale;
  }
  absl::Status first;
  for (uint64_t id : ids) {
    absl::Status st = options.bucket->Delete(SegmentIndexKey(id));
    if (st.ok()) st = options.bucket->Delete(SegmentObjectKey(id));
    if (!st.ok()) {
      if (first.ok()) first = Annotate(st, absl::StrCat("delete the objects of segment ", id));
      continue;
    }
    std::lock_guard<std::mutex> lock(mu);
    stale.erase(id);
  }
  return first;
}

absl::Status SegmentBlobStore::Impl::UploadSegment(const SegmentRow& row) {
  const std::string path = PathOf(row.id);
  const std::string what = absl::StrCat("upload segment ", row.id);
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<env::File> f,
                         Annotate(fs->Open(path, env::OpenMode::kRead), what));
  CAIRN_ASSIGN_OR_RETURN(SegmentIndex index,
                         Annotate(IndexSegmentFile(f.get(), row.id, row.registered_end), what));
  CAIRN_RETURN_IF_ERROR(
      Annotate(options.bucket->PutFile(SegmentObjectKey(row.id), fs, path), what));
  // The file must not have changed meanwhile (sealed segments never do; this catches damage).
  CAIRN_ASSIGN_OR_RETURN(s3::ObjectInfo put,
                         Annotate(options.bucket->Head(SegmentObjectKey(row.id)), what));
  if (put.size != index.segment_size) {
    return absl::DataLossError(absl::StrCat(what, ": the object has ", put.size,
                                            " bytes, the file had ", index.segment_size));
  }
  CAIRN_RETURN_IF_ERROR(
      Annotate(options.bucket->Put(SegmentIndexKey(row.id), EncodeSegmentIndex(index)), what));
  std::lock_guard<std::mutex> lock(mu);
  uploaded.insert(row.id);
  remote_size[row.id] = index.segment_size;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SegmentBlobStore::Impl::UploadSealed() {
  if (options.bucket == nullptr) return 0;
  // Compaction retires segments; not while one of them is being uploaded.
  std::lock_guard<std::mutex> compact_lock(compact_mu);
  CAIRN_ASSIGN_OR_RETURN(std::vector<SegmentRow> rows, registry->Segments());
  uint64_t n = 0;
  for (const SegmentRow& row : rows) {
    if (row.state != SegmentState::kSealed) continue;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (uploaded.count(row.id) || !segment_files.count(row.id)) continue;
    }
    CAIRN_RETURN_IF_ERROR(UploadSegment(row));
    ++n;
  }
  if (!options.keep_local_segments) {
    // Uploaded: read from the bucket from now on, the local file goes. A reader holding the
    // file open still reads it (an unlinked file lives while open).
    std::vector<uint64_t> drop;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (uint64_t id : uploaded) {
        if (remote.count(id) || !segment_files.count(id)) continue;
        auto size = remote_size.find(id);
        if (size == remote_size.end()) continue;
        remote[id] = size->second;
        handles.erase(id);
        drop.push_back(id);
      }
    }
    for (uint64_t id : drop) {
      absl::Status st = fs->Remove(PathOf(id));
      if (!st.ok() && st.code() != absl::StatusCode::kNotFound) {
        return Annotate(st, absl::StrCat("remove uploaded segment ", id));
      }
    }
    if (!drop.empty()) CAIRN_RETURN_IF_ERROR(fs->SyncDir(dir));
  }
  CAIRN_RETURN_IF_ERROR(DeleteStale());
  return n;
}

// ---- public ----

SegmentBlobStore::SegmentBlobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SegmentBlobStore::~SegmentBlobStore() = default;

absl::StatusOr<std::unique_ptr<SegmentBlobStore>> SegmentBlobStore::Open(
    const std::string& root, uint64_t quota, SegmentRegistry* registry,
    const SegmentStoreOptions& options, env::FileSystem* fs) {
  if (root.empty()) return absl::InvalidArgumentError("segment store root is empty");
  if (registry == nullptr || fs == nullptr) {
    return absl::InvalidArgumentError("segment store needs a registry and a file system");
  }
  auto impl = std::make_unique<Impl>();
  impl->fs = fs;
  impl->root = root;
  while (impl->root.size() > 1 && impl->root.back() == '/') impl->root.pop_back();
  impl->dir = impl->root + "/" + kSegmentsDirName;
  impl->registry = registry;
  impl->options = options;
  impl->quota = quota;
  if (options.compact_bytes_per_second > 0) {
    impl->limiter = std::make_unique<env::RateLimiter>(
        options.compact_bytes_per_second, options.compact_bytes_per_second,
        options.clock ? options.clock : env::RealClock::Default());
  }
  impl->own_sleeper = std::make_unique<env::InterruptibleSleeper>();
  const std::string what = "open segment store " + impl->root;
  CAIRN_ASSIGN_OR_RETURN(bool root_exists, Annotate(fs->Exists(impl->root), what));
  if (!root_exists) {
    CAIRN_RETURN_IF_ERROR(Annotate(fs->CreateDir(impl->root), what));
    CAIRN_RETURN_IF_ERROR(Annotate(fs->SyncDir(env::DirName(impl->root)), what));
  }
  CAIRN_ASSIGN_OR_RETURN(bool dir_exists, Annotate(fs->Exists(impl->dir), what));
  if (!dir_exists) {
    CAIRN_RETURN_IF_ERROR(Annotate(fs->CreateDir(impl->dir), what));
    CAIRN_RETURN_IF_ERROR(Annotate(fs->SyncDir(impl->root), what));
  }
  CAIRN_RETURN_IF_ERROR(Annotate(impl->Recover(), what));
  // Segments sealed before a crash (or before the bucket was reachable) go up now; a failure
  // here does not stop the store (the next UploadSealed retries).
  if (auto up = impl->UploadSealed(); !up.ok()) {
    impl->recovered.upload_error = std::string(up.status().message());
  }
  return std::unique_ptr<SegmentBlobStore>(new SegmentBlobStore(std::move(impl)));
}

absl::StatusOr<PutOutcome> SegmentBlobStore::Put(const BlobKey& key, ByteSpan blob,
                                                 const codec::Checksum& checksum,
                                                 const PutOptions& options) {
  PutItem item{key, blob, checksum, options};
  return std::move(PutBatch(std::span<const PutItem>(&item, 1))[0]);
}

std::vector<absl::StatusOr<PutOutcome>> SegmentBlobStore::PutBatch(std::span<const PutItem> items) {
  Impl& s = *impl_;
  std::vector<absl::StatusOr<PutOutcome>> out(items.size(),
                                              absl::InternalError("put not processed"));
  // First valid occurrence of each key; later ones answer as a repeated put would.
  std::map<BlobKey, size_t> first;
  std::vector<size_t> todo;
  std::vector<bool> invalid(items.size(), false);
  for (size_t i = 0; i < items.size(); ++i) {
    absl::Status st = ValidateBlobForKey(items[i].key, items[i].blob, items[i].checksum);
    if (!st.ok()) {
      out[i] = st;
      invalid[i] = true;
      continue;
    }
    if (first.emplace(items[i].key, i).second) todo.push_back(i);
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (absl::Status st = s.WritableLocked(); !st.ok()) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (!invalid[i]) out[i] = st;
      }
      todo.clear();
      first.clear();
    }
  }
  // Key guards in key order, so that overlapping batches cannot deadlock.
  std::vector<std::unique_ptr<KeyGuard>> guards;
  for (const auto& [key, index] : first) {
    guards.push_back(std::make_unique<KeyGuard>(s.mu, s.key_released, s.busy, key));
  }
  Impl::Writer writer;
  std::vector<size_t> pending;
  // Bytes admitted but not committed count against it (Reserve), so one query serves the batch.
  const std::optional<uint64_t> disk_free = todo.empty() ? std::nullopt : s.QueryFreeSpace();
  std::vector<BlobKey> keys;
  keys.reserve(todo.size());
  for (size_t i : todo) keys.push_back(items[i].key);
  // Looked up together, under the key guards: no other put, delete or eviction of these keys
  // runs until we are done (a compaction may move a slot, never drop it).
  absl::StatusOr<std::vector<std::optional<Slot>>> found =
      keys.empty() ? std::vector<std::optional<Slot>>() : s.registry->FindLiveMany(keys);
  for (size_t j = 0; j < todo.size(); ++j) {
    const size_t i = todo[j];
    const PutItem& item = items[i];
    const std::string what = "store blob " + item.key.DebugString();
    if (!found.ok()) {
      out[i] = Annotate(found.status(), what);
      continue;
    }
    const std::optional<Slot>* existing = &(*found)[j];
    if (*existing) {
      if ((*existing)->record.extra && !item.options.extra) {
        // A regular put of a key held as extra: no longer evictable, durably.
        std::lock_guard<std::mutex> meta(s.meta_mu);
        auto now = s.registry->FindLive(item.key);
        if (now.ok() && *now && (*now)->record.extra) {
          RegistryBatch batch;
          batch.set_extra.push_back({(*now)->location, false});
          absl::Status st = s.registry->Apply(batch, /*durable=*/true);
          if (!st.ok()) {
            out[i] = Annotate(st, "promote extra blob " + item.key.DebugString());
            continue;
          }
          std::lock_guard<std::mutex> lock(s.mu);
          const Slot& slot = **now;
          s.CountLocked(slot.location.segment, SlotState::kLive, slot.record.size, true, -1);
          s.CountLocked(slot.location.segment, SlotState::kLive, slot.record.size, false, +1);
        } else if (!now.ok()) {
          out[i] = Annotate(now.status(), what);
          continue;
        }
      }
      out[i] = PutOutcome::kAlreadyStored;
      continue;
    }
    absl::Status st = s.Reserve(item.key, item.blob.size(), item.options.extra, disk_free);
    if (!st.ok()) {
      out[i] = st;
      continue;
    }
    writer.items.push_back({&item, BlobKindOf(item.blob), item.options.extra});
    writer.bytes += item.blob.size();
    pending.push_back(i);
  }
  if (!pending.empty()) {
    absl::Status st = s.Commit(&writer);
    for (size_t i : pending) {
      if (st.ok()) {
        out[i] = PutOutcome::kStored;
      } else {
        out[i] = Annotate(st, "store blob " + items[i].key.DebugString());
      }
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (invalid[i]) continue;
    auto f = first.find(items[i].key);
    if (f == first.end()) continue;  // refused above with the store's state
    if (f->second == i) continue;
    out[i] = out[f->second].ok() ? absl::StatusOr<PutOutcome>(PutOutcome::kAlreadyStored)
                                 : out[f->second];
  }
  return out;
}

absl::Status SegmentBlobStore::GetEach(std::span<const BlobKey> keys, const GetEachFn& fn) {
  Impl& s = *impl_;
  constexpr size_t kLookup = 256;
  for (size_t start = 0; start < keys.size(); start += kLookup) {
    const std::span<const BlobKey> block =
        keys.subspan(start, std::min(kLookup, keys.size() - start));
    absl::StatusOr<std::vector<std::optional<Slot>>> found = s.registry->FindLiveMany(block);
    for (size_t j = 0; j < block.size(); ++j) {
      const BlobKey& key = block[j];
      absl::StatusOr<Bytes> answer;
      if (!found.ok()) {
        answer = Get(key);
      } else if (!(*found)[j]) {
        answer = absl::NotFoundError("blob " + key.DebugString() + " is not held");
      } else {
        absl::StatusOr<RecordCheck> check = s.CheckSlot(*(*found)[j], /*from_media=*/false);
        if (check.ok() && check->verdict == RecordCheck::kIntact) {
          answer = TakeBlob(*check);
        } else {
          answer = Get(key);
        }
      }
      if (absl::Status st = fn(start + j, std::move(answer)); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Bytes> SegmentBlobStore::Get(const BlobKey& key) {
  Impl& s = *impl_;
  const std::string what = "read blob " + key.DebugString();
  // A compaction may move the record between the lookup and the read: look again then.
  for (int attempt = 0;; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, Annotate(s.registry->FindLive(key), what));
    if (!slot) return absl::NotFoundError("blob " + key.DebugString() + " is not held");
    CAIRN_ASSIGN_OR_RETURN(RecordCheck check,
                           Annotate(s.CheckSlot(*slot, /*from_media=*/false), what));
    if (check.verdict == RecordCheck::kIntact) return TakeBlob(check);
    CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> again, Annotate(s.registry->FindLive(key), what));
    if (attempt < 2 && again && again->location != slot->location) continue;
    Bytes data;
    std::string reason;
    auto settled = s.Settle(key, /*from_media=*/false, &data, &reason);
    if (!settled.ok()) {
      return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + check.reason +
                                 " (quarantine failed: " + std::string(settled.status().message()) +
                                 ")");
    }
    switch (*settled) {
      case ScrubOutcome::kIntact:
        return data;
      case ScrubOutcome::kQuarantined:
        return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + reason +
                                   "; quarantined");
      case ScrubOutcome::kMissing:
      case ScrubOutcome::kNotHeld:
        return absl::NotFoundError("blob " + key.DebugString() + " is not held");
    }
  }
}

absl::StatusOr<bool> SegmentBlobStore::Has(const BlobKey& key) {
  Impl& s = *impl_;
  CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, s.registry->FindLive(key));
  if (!slot) return false;
  CAIRN_ASSIGN_OR_RETURN(std::optional<uint64_t> size, s.SegmentSize(slot->location.segment));
  if (!size) {
    // Moved by a compaction meanwhile, or really gone.
    CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> again, s.registry->FindLive(key));
    if (!again || again->location == slot->location) return false;
    slot = again;
    CAIRN_ASSIGN_OR_RETURN(size, s.SegmentSize(slot->location.segment));
    if (!size) return false;
  }
  return *size >= slot->location.offset + kRecordHeaderSize + slot->record.size;
}

absl::Status SegmentBlobStore::Delete(const BlobKey& key) {
  Impl& s = *impl_;
  const std::string what = "delete blob " + key.DebugString();
  KeyGuard guard(s.mu, s.key_released, s.busy, key);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    CAIRN_RETURN_IF_ERROR(Annotate(s.WritableLocked(), what));
  }
  std::lock_guard<std::mutex> meta(s.meta_mu);
  CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, Annotate(s.registry->FindLive(key), what));
  if (!slot) return absl::OkStatus();
  return Annotate(s.ChangeSlot(*slot, SlotState::kDead, false), what);
}

StoreStats SegmentBlobStore::Stats() {
  Impl& s = *impl_;
  // Asked every time: a peer refusing puts for a full disk learns here that space came back.
  s.QueryFreeSpace();
  std::lock_guard<std::mutex> lock(s.mu);
  SegmentUsage t = s.TotalsLocked();
  StoreStats st;
  st.quota = s.quota;
  st.used = t.live_bytes + t.dead_bytes;
  st.blobs = t.live_blobs;
  st.extra_blobs = t.extra_blobs;
  st.extra_bytes = t.extra_bytes;
  st.quarantined = t.quarantined_blobs;
  st.quarantined_bytes = t.quarantined_bytes;
  st.live_bytes = t.live_bytes;
  st.dead_bytes = t.dead_bytes;
  st.segments = s.segment_files.size();
  st.compactions = s.compactions;
  st.compaction_copied_bytes = s.copied_total;
  st.compaction_reclaimed_bytes = s.reclaimed;
  st.compacting_segment = s.compacting;
  st.compaction_done_bytes = s.compact_done;
  st.compaction_total_bytes = s.compact_total;
  st.disk_free = s.last_disk_free;
  st.disk_reserve = s.options.disk_reserve_bytes;
  return st;
}

absl::StatusOr<std::vector<OwnerUsage>> SegmentBlobStore::UsageByOwner() {
  return Annotate(impl_->registry->UsageByOwner(), "usage by owner");
}

absl::Status SegmentBlobStore::SetQuota(uint64_t quota) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->quota = quota;
  return absl::OkStatus();
}

absl::StatusOr<EvictResult> SegmentBlobStore::EvictExtras(uint64_t target_used) {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.UsedLocked() <= target_used) return EvictResult{};
  }
  CAIRN_ASSIGN_OR_RETURN(EvictResult result, s.EvictUntil([&] {  // caller holds mu
    return s.TotalsLocked().live_bytes <= target_used;
  }));
  CAIRN_RETURN_IF_ERROR(CompactAll());
  return result;
}

absl::StatusOr<std::vector<BlobRecord>> SegmentBlobStore::ListOwner(
    PeerId owner, const std::optional<BlobKey>& after, size_t limit) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> slots,
                         Annotate(impl_->registry->ListLiveOfOwner(owner, after, limit),
                                  "list blobs of owner " + std::to_string(owner)));
  return RecordsOf(slots);
}

absl::StatusOr<std::vector<BlobRecord>> SegmentBlobStore::ListHeld(
    const std::optional<BlobKey>& after, size_t limit) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> slots,
                         Annotate(impl_->registry->ListLive(after, limit), "list held blobs"));
  return RecordsOf(slots);
}

absl::StatusOr<ScrubOutcome> SegmentBlobStore::ScrubBlob(const BlobKey& key) {
  Impl& s = *impl_;
  const std::string what = "scrub blob " + key.DebugString();
  CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, Annotate(s.registry->FindLive(key), what));
  if (!slot) return ScrubOutcome::kNotHeld;
  CAIRN_ASSIGN_OR_RETURN(RecordCheck check,
                         Annotate(s.CheckSlot(*slot, /*from_media=*/true), what));
  if (check.verdict == RecordCheck::kIntact) return ScrubOutcome::kIntact;
  return Annotate(s.Settle(key, /*from_media=*/true, nullptr, nullptr), what);
}

absl::StatusOr<bool> SegmentBlobStore::CompactOnce() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.compact_mu);
  CAIRN_ASSIGN_OR_RETURN(std::optional<uint64_t> id, s.PickSegment(/*all=*/false));
  if (!id) return false;
  CAIRN_RETURN_IF_ERROR(s.CompactSegment(*id, /*throttled=*/true));
  return true;
}

absl::StatusOr<uint64_t> SegmentBlobStore::Compact() {
  uint64_t n = 0;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool did, CompactOnce());
    if (!did) return n;
    ++n;
  }
}

absl::Status SegmentBlobStore::CompactAll() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.compact_mu);
  CAIRN_RETURN_IF_ERROR(s.SealOpenSegment());
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<uint64_t> id, s.PickSegment(/*all=*/true));
    if (!id) return absl::OkStatus();
    CAIRN_RETURN_IF_ERROR(s.CompactSegment(*id, /*throttled=*/false));
  }
}

absl::StatusOr<uint64_t> SegmentBlobStore::UploadSealed() { return impl_->UploadSealed(); }

std::set<uint64_t> SegmentBlobStore::UploadedSegments() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->uploaded;
}

std::set<uint64_t> SegmentBlobStore::RemoteSegments() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::set<uint64_t> out;
  for (const auto& [id, size] : impl_->remote) out.insert(id);
  return out;
}

SegmentRecovery SegmentBlobStore::recovery() const { return impl_->recovered; }

size_t SegmentBlobStore::QueuedWriters() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->writers.size();
}

std::string SegmentBlobStore::SegmentPath(uint64_t id) const { return impl_->PathOf(id); }

absl::StatusOr<SlotLocation> SegmentBlobStore::LocationOf(const BlobKey& key) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<Slot> slot, impl_->registry->FindLive(key));
  if (!slot) return absl::NotFoundError("blob " + key.DebugString() + " is not held");
  return slot->location;
}

}  // namespace cairn::store
