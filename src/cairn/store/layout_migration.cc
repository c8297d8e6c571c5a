// Migration from the file layout into segments (layout_migration.h; docs/formats.md "Upgrade
// from the file layout").
#include "cairn/store/layout_migration.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/env/file.h"

namespace cairn::store {
namespace {

// DiskBlobStore's quarantine directory under its root (blob_store.h).
constexpr char kQuarantineDirName[] = "quarantine";

// The key order of the SQLite registries (owner as a signed integer, chunk id bytes, shard).
bool KeyLess(const BlobKey& a, const BlobKey& b) {
  const int64_t ao = static_cast<int64_t>(a.owner), bo = static_cast<int64_t>(b.owner);
  if (ao != bo) return ao < bo;
  if (a.chunk != b.chunk) return a.chunk < b.chunk;
  return a.shard < b.shard;
}

// Merges two key-ordered lists into the first `limit` keys of their union; a key in both is
// taken from `first`.
std::vector<BlobRecord> MergeRecords(std::vector<BlobRecord> first, std::vector<BlobRecord> second,
                                     size_t limit) {
  std::vector<BlobRecord> out;
  out.reserve(std::min(limit, first.size() + second.size()));
  size_t i = 0, j = 0;
  while (out.size() < limit && (i < first.size() || j < second.size())) {
    if (j == second.size() || (i < first.size() && KeyLess(first[i].key, second[j].key))) {
      out.push_back(std::move(first[i++]));
    } else if (i == first.size() || KeyLess(second[j].key, first[i].key)) {
      out.push_back(std::move(second[j++]));
    } else {
      out.push_back(std::move(first[i++]));
      ++j;
    }
  }
  return out;
}

// Old records Create checks for copies already in the segments.
constexpr size_t kInBothScan = 1024;

uint64_t SaturatingSub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

// ---- NeedsLayoutMigration ----

absl::StatusOr<bool> NeedsLayoutMigration(const std::string& blobs_root, BlobRegistry* registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("layout check needs a registry");
  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> some,
                         Annotate(registry->List(std::nullopt, 1), "check for file layout"));
  if (!some.empty()) return true;
  std::error_code ec;
  std::filesystem::directory_iterator it(blobs_root, ec), end;
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return false;
    return ErrnoStatus(ec.value(), "check for file layout: list " + blobs_root);
  }
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), "check for file layout: list " + blobs_root);
    if (it->path().filename() != kQuarantineDirName) return true;
  }
  if (ec) return ErrnoStatus(ec.value(), "check for file layout: list " + blobs_root);
  return false;
}

// ---- MigratingBlobStore ----

MigratingBlobStore::MigratingBlobStore(SegmentBlobStore* segments, BlobStore* files, uint64_t quota)
    : segments_(segments), files_(files), quota_(quota) {}

absl::StatusOr<std::unique_ptr<MigratingBlobStore>> MigratingBlobStore::Create(
    SegmentBlobStore* segments, BlobStore* files, uint64_t quota) {
  if (segments == nullptr || files == nullptr) {
    return absl::InvalidArgumentError("migrating blob store needs both stores");
  }
  std::unique_ptr<MigratingBlobStore> store(new MigratingBlobStore(segments, files, quota));
  // Blobs an interrupted run copied without dropping the old copy yet: the migrator works in
  // key order, so they are among the first records of the file layout.
  std::optional<BlobKey> after;
  for (size_t scanned = 0; scanned < kInBothScan;) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> page,
                           Annotate(files->ListHeld(after, 256), "open migrating blob store"));
    if (page.empty()) break;
    for (const BlobRecord& r : page) {
      CAIRN_ASSIGN_OR_RETURN(bool copied,
                             Annotate(segments->Has(r.key), "open migrating blob store"));
      if (copied) store->in_both_[r.key] = r;
    }
    scanned += page.size();
    after = page.back().key;
  }
  CAIRN_RETURN_IF_ERROR(store->Rebalance());
  return store;
}

void MigratingBlobStore::InBothTotals(uint64_t* blobs, uint64_t* bytes, uint64_t* extra_blobs,
                                      uint64_t* extra_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  *blobs = in_both_.size();
  *bytes = *extra_blobs = *extra_bytes = 0;
  for (const auto& [key, record] : in_both_) {
    *bytes += record.size;
    if (record.extra) {
      ++*extra_blobs;
      *extra_bytes += record.size;
    }
  }
}

void MigratingBlobStore::ForgetInBoth(const BlobKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  in_both_.erase(key);
}

absl::Status MigratingBlobStore::Rebalance(uint64_t headroom) {
  if (migrated()) {
    std::lock_guard<std::mutex> lock(mu_);
    return segments_->SetQuota(quota_ + headroom);
  }
  // Read the file layout's usage before the in-both bytes: a blob the migrator drops in
  // between is then subtracted at most once too few (a lower quota), never once too often.
  const uint64_t files_used = files_->Stats().used;
  uint64_t in_blobs, in_bytes, in_extra_blobs, in_extra_bytes;
  InBothTotals(&in_blobs, &in_bytes, &in_extra_blobs, &in_extra_bytes);
  const uint64_t files_only = SaturatingSub(files_used, in_bytes);
  uint64_t quota;
  {
    std::lock_guard<std::mutex> lock(mu_);
    quota = SaturatingSub(quota_, files_only);
  }
  if (headroom > 0) quota = std::max(quota, segments_->Stats().used) + headroom;
  return segments_->SetQuota(quota);
}

absl::StatusOr<PutOutcome> MigratingBlobStore::Put(const BlobKey& key, ByteSpan blob,
                                                   const codec::Checksum& checksum,
                                                   const PutOptions& options) {
  PutItem item{key, blob, checksum, options};
  return std::move(PutBatch(std::span<const PutItem>(&item, 1))[0]);
}

std::vector<absl::StatusOr<PutOutcome>> MigratingBlobStore::PutBatch(
    std::span<const PutItem> items) {
  if (migrated()) return segments_->PutBatch(items);
  std::shared_lock<std::shared_mutex> move_lock(move_mu_);
  std::vector<absl::StatusOr<PutOutcome>> out(items.size(),
                                              absl::InternalError("put not processed"));
  std::vector<PutItem> to_segments;
  std::vector<size_t> index;
  for (size_t i = 0; i < items.size(); ++i) {
    const PutItem& item = items[i];
    if (absl::Status st = ValidateBlobForKey(item.key, item.blob, item.checksum); !st.ok()) {
      out[i] = st;
      continue;
    }
    auto in_files = files_->Has(item.key);
    if (!in_files.ok()) {
      out[i] = Annotate(in_files.status(), "store blob " + item.key.DebugString());
      continue;
    }
    if (!*in_files) {
      to_segments.push_back(item);
      index.push_back(i);
      continue;
    }
    // Held in the file layout: the put is a repeat. The file store promotes an extra copy on a
    // regular put (without writing); the segment store does the same when the migrator copied
    // the blob already, so that the promotion survives the old copy being dropped.
    absl::StatusOr<PutOutcome> st = PutOutcome::kAlreadyStored;
    if (!item.options.extra) {
      st = files_->Put(item.key, item.blob, item.checksum, item.options);
      bool copied;
      {
        std::lock_guard<std::mutex> lock(mu_);
        copied = in_both_.count(item.key) > 0;
      }
      if (st.ok() && copied) st = segments_->Put(item.key, item.blob, item.checksum, item.options);
      if (st.ok()) st = PutOutcome::kAlreadyStored;
    }
    out[i] = std::move(st);
  }
  if (!to_segments.empty()) {
    std::vector<absl::StatusOr<PutOutcome>> done = segments_->PutBatch(to_segments);
    for (size_t k = 0; k < done.size(); ++k) out[index[k]] = std::move(done[k]);
  }
  return out;
}

absl::StatusOr<Bytes> MigratingBlobStore::Get(const BlobKey& key) {
  absl::StatusOr<Bytes> data = segments_->Get(key);
  if (migrated() || data.ok()) return data;
  const bool seg_corrupt = data.status().code() == absl::StatusCode::kDataLoss;
  if (!seg_corrupt && !absl::IsNotFound(data.status())) return data;
  absl::StatusOr<Bytes> old = files_->Get(key);
  if (old.ok()) return old;
  if (!absl::IsNotFound(old.status())) {
    ForgetInBoth(key);
    (void)Rebalance();  // a quarantine freed room in the file layout
    return seg_corrupt ? data : old;
  }
  if (seg_corrupt) return data;
  // Moved into the segments between the two lookups?
  return segments_->Get(key);
}

absl::StatusOr<bool> MigratingBlobStore::Has(const BlobKey& key) {
  CAIRN_ASSIGN_OR_RETURN(bool in_segments, segments_->Has(key));
  if (in_segments || migrated()) return in_segments;
  CAIRN_ASSIGN_OR_RETURN(bool in_files, files_->Has(key));
  if (in_files) return true;
  return segments_->Has(key);
}

absl::Status MigratingBlobStore::Delete(const BlobKey& key) {
  if (migrated()) return segments_->Delete(key);
  std::shared_lock<std::shared_mutex> move_lock(move_mu_);
  CAIRN_RETURN_IF_ERROR(segments_->Delete(key));
  CAIRN_RETURN_IF_ERROR(files_->Delete(key));
  ForgetInBoth(key);
  return Annotate(Rebalance(), "delete blob " + key.DebugString());
}

StoreStats MigratingBlobStore::Stats() {
  StoreStats st = segments_->Stats();
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.quota = quota_;
  }
  if (migrated()) return st;
  const StoreStats f = files_->Stats();
  uint64_t in_blobs, in_bytes, in_extra_blobs, in_extra_bytes;
  InBothTotals(&in_blobs, &in_bytes, &in_extra_blobs, &in_extra_bytes);
  st.used += SaturatingSub(f.used, in_bytes);
  st.live_bytes += SaturatingSub(f.used, in_bytes);
  st.blobs += SaturatingSub(f.blobs, in_blobs);
  st.extra_blobs += SaturatingSub(f.extra_blobs, in_extra_blobs);
  st.extra_bytes += SaturatingSub(f.extra_bytes, in_extra_bytes);
  st.quarantined += f.quarantined;
  st.quarantined_bytes += f.quarantined_bytes;
  return st;
}

absl::StatusOr<std::vector<OwnerUsage>> MigratingBlobStore::UsageByOwner() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<OwnerUsage> seg, segments_->UsageByOwner());
  if (migrated()) return seg;
  CAIRN_ASSIGN_OR_RETURN(std::vector<OwnerUsage> old, files_->UsageByOwner());
  std::map<PeerId, OwnerUsage> sum;
  auto add = [&](const OwnerUsage& u, int sign) {
    OwnerUsage& s = sum[u.owner];
    s.owner = u.owner;
    auto apply = [sign](uint64_t& v, uint64_t d) { v = sign > 0 ? v + d : SaturatingSub(v, d); };
    apply(s.blobs, u.blobs);
    apply(s.bytes, u.bytes);
    apply(s.extra_blobs, u.extra_blobs);
    apply(s.extra_bytes, u.extra_bytes);
  };
  for (const OwnerUsage& u : seg) add(u, +1);
  for (const OwnerUsage& u : old) add(u, +1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, r] : in_both_) {
      add(OwnerUsage{key.owner, 1, r.size, r.extra ? 1u : 0u, r.extra ? r.size : 0}, -1);
    }
  }
  std::vector<OwnerUsage> out;
  out.reserve(sum.size());
  for (auto& [owner, u] : sum) {
    if (u.blobs > 0) out.push_back(u);
  }
  return out;  // std::map orders by unsigned owner, as UsageByOwner promises
}

absl::Status MigratingBlobStore::SetQuota(uint64_t quota) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quota_ = quota;
  }
  return Rebalance();
}

absl::StatusOr<EvictResult> MigratingBlobStore::EvictExtras(uint64_t target_used) {
  if (migrated()) return segments_->EvictExtras(target_used);
  EvictResult total;
  {
    std::shared_lock<std::shared_mutex> move_lock(move_mu_);
    const uint64_t seg_used = segments_->Stats().used;
    CAIRN_ASSIGN_OR_RETURN(EvictResult old,
                           files_->EvictExtras(SaturatingSub(target_used, seg_used)));
    total.blobs += old.blobs;
    total.bytes += old.bytes;
    const uint64_t files_used = files_->Stats().used;
    CAIRN_ASSIGN_OR_RETURN(EvictResult seg,
                           segments_->EvictExtras(SaturatingSub(target_used, files_used)));
    total.blobs += seg.blobs;
    total.bytes += seg.bytes;
  }
  // Old copies of blobs in both layouts may have been evicted.
  std::vector<BlobKey> in_both;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, record] : in_both_) in_both.push_back(key);
  }
  for (const BlobKey& key : in_both) {
    CAIRN_ASSIGN_OR_RETURN(bool held, files_->Has(key));
    if (!held) ForgetInBoth(key);
  }
  CAIRN_RETURN_IF_ERROR(Rebalance());
  return total;
}

absl::StatusOr<std::vector<BlobRecord>> MigratingBlobStore::ListOwner(
    PeerId owner, const std::optional<BlobKey>& after, size_t limit) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> seg, segments_->ListOwner(owner, after, limit));
  if (migrated()) return seg;
  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> old, files_->ListOwner(owner, after, limit));
  return MergeRecords(std::move(seg), std::move(old), limit);
}

absl::StatusOr<std::vector<BlobRecord>> MigratingBlobStore::ListHeld(
    const std::optional<BlobKey>& after, size_t limit) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> seg, segments_->ListHeld(after, limit));
  if (migrated()) return seg;
  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> old, files_->ListHeld(after, limit));
  return MergeRecords(std::move(seg), std::move(old), limit);
}

absl::StatusOr<ScrubOutcome> MigratingBlobStore::ScrubBlob(const BlobKey& key) {
  CAIRN_ASSIGN_OR_RETURN(ScrubOutcome seg, segments_->ScrubBlob(key));
  if (seg != ScrubOutcome::kNotHeld || migrated()) return seg;
  CAIRN_ASSIGN_OR_RETURN(ScrubOutcome old, files_->ScrubBlob(key));
  if (old != ScrubOutcome::kIntact && old != ScrubOutcome::kNotHeld) (void)Rebalance();
  return old;
}

// ---- FileLayoutMigrator ----

FileLayoutMigrator::FileLayoutMigrator(std::string blobs_root, MigratingBlobStore* store,
                                       const LayoutMigrationOptions& options)
    : blobs_root_(std::move(blobs_root)), store_(store), options_(options) {}

absl::StatusOr<std::unique_ptr<FileLayoutMigrator>> FileLayoutMigrator::Create(
    const std::string& blobs_root, MigratingBlobStore* store,
    const LayoutMigrationOptions& options) {
  if (store == nullptr || blobs_root.empty() || options.batch_blobs == 0) {
    return absl::InvalidArgumentError(
        "layout migration needs a store, the blobs directory and batch_blobs >= 1");
  }
  std::string root = blobs_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::unique_ptr<FileLayoutMigrator> m(new FileLayoutMigrator(root, store, options));
  m->sleeper_ = options.sleeper;
  if (m->sleeper_ == nullptr) {
    m->own_sleeper_ = std::make_unique<env::InterruptibleSleeper>();
    m->sleeper_ = m->own_sleeper_.get();
  }
  if (options.bytes_per_second > 0) {
    m->limiter_ = std::make_unique<env::RateLimiter>(
        options.bytes_per_second, options.bytes_per_second,
        options.clock != nullptr ? options.clock : env::RealClock::Default());
  }
  return m;
}

void FileLayoutMigrator::Stop() {
  stopped_ = true;
  sleeper_->Interrupt();
}

LayoutMigrationProgress FileLayoutMigrator::Progress() {
  LayoutMigrationProgress p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    p = progress_;
  }
  if (!p.done) {
    const StoreStats f = store_->files()->Stats();
    uint64_t in_blobs, in_bytes, in_extra_blobs, in_extra_bytes;
    store_->InBothTotals(&in_blobs, &in_bytes, &in_extra_blobs, &in_extra_bytes);
    p.remaining_blobs = SaturatingSub(f.blobs, in_blobs);
    p.remaining_bytes = SaturatingSub(f.used, in_bytes);
  }
  return p;
}

absl::Status FileLayoutMigrator::Run() {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool done, MigrateBatch());
    if (done) return absl::OkStatus();
  }
}

absl::StatusOr<bool> FileLayoutMigrator::MigrateBatch() {
  auto cancelled = [] { return absl::CancelledError("layout migration stopped"); };
  if (stopped_) return cancelled();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (progress_.done) return true;
  }
  BlobStore* files = store_->files();
  SegmentBlobStore* segments = store_->segments();

  CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> records,
                         Annotate(files->ListHeld(cursor_, options_.batch_blobs),
                                  "migrate blobs: list the file layout"));
  if (records.empty() && cursor_) {
    // End of a pass: start another for what an error made us skip.
    cursor_.reset();
    CAIRN_ASSIGN_OR_RETURN(records, Annotate(files->ListHeld(std::nullopt, options_.batch_blobs),
                                             "migrate blobs: list the file layout"));
  }
  if (records.empty()) {
    CAIRN_RETURN_IF_ERROR(Finish());
    return true;
  }
  uint64_t batch_bytes = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (i > 0 && batch_bytes + records[i].size > options_.batch_bytes) {
      records.resize(i);
      break;
    }
    batch_bytes += records[i].size;
  }
  cursor_ = records.back().key;

  absl::Status first_error;
  auto keep_error = [&](const absl::Status& st, const BlobKey& key) {
    if (first_error.ok()) first_error = Annotate(st, "migrate blob " + key.DebugString());
  };
  // 1. Read and verify (DiskBlobStore::Get checks size and XXH3-128 against the record, and
  //    quarantines a damaged file the way scrub does).
  std::vector<BlobRecord> good;
  std::vector<Bytes> data;
  uint64_t damaged = 0, missing = 0, already = 0;
  for (const BlobRecord& r : records) {
    if (limiter_ != nullptr && !limiter_->Acquire(r.size, sleeper_)) return cancelled();
    if (stopped_) return cancelled();
    absl::StatusOr<Bytes> got = files->Get(r.key);
    if (got.ok()) {
      good.push_back(r);
      data.push_back(std::move(*got));
      continue;
    }
    const bool corrupt = got.status().code() == absl::StatusCode::kDataLoss;
    if (!corrupt && !absl::IsNotFound(got.status())) {
      keep_error(got.status(), r.key);
      continue;
    }
    // Damaged (now quarantined) or missing: a copy an earlier run moved into the segments
    // still serves it.
    auto in_segments = segments->Has(r.key);
    if (!in_segments.ok()) {
      keep_error(in_segments.status(), r.key);
      continue;
    }
    if (corrupt) {
      store_->ForgetInBoth(r.key);
      *in_segments ? ++already : ++damaged;
      continue;
    }
    if (*in_segments) {
      absl::Status st = files->Delete(r.key);
      store_->ForgetInBoth(r.key);
      if (!st.ok()) {
        keep_error(st, r.key);
        continue;
      }
      ++already;
      continue;
    }
    // Registered without its file (or with a file of the wrong size that vanished meanwhile):
    // lost before the migration; drop the record as scrub would.
    auto scrubbed = files->ScrubBlob(r.key);
    if (!scrubbed.ok()) {
      keep_error(scrubbed.status(), r.key);
      continue;
    }
    if (*scrubbed == ScrubOutcome::kMissing) ++missing;
    if (*scrubbed == ScrubOutcome::kQuarantined) ++damaged;
  }

  // 2. Copy: one group commit, with no put or delete of the file layout in between (a blob
  //    deleted while we read it must not come back through the segments).
  std::vector<BlobRecord> copied;
  if (!good.empty()) {
    std::unique_lock<std::shared_mutex> move_lock(store_->move_mu_);
    std::vector<PutItem> items;
    std::vector<size_t> which;
    uint64_t headroom = 0;
    for (size_t i = 0; i < good.size(); ++i) {
      auto still = files->Has(good[i].key);
      if (!still.ok()) {
        keep_error(still.status(), good[i].key);
        continue;
      }
      if (!*still) continue;  // deleted meanwhile
      items.push_back(PutItem{good[i].key, data[i], good[i].checksum, {.extra = good[i].extra}});
      which.push_back(i);
      headroom += good[i].size;
    }
    if (!items.empty()) {
      absl::Status st = store_->Rebalance(headroom);
      std::vector<absl::StatusOr<PutOutcome>> out;
      if (st.ok()) out = segments->PutBatch(items);
      {
        std::lock_guard<std::mutex> lock(store_->mu_);
        for (size_t k = 0; k < out.size(); ++k) {
          if (out[k].ok()) store_->in_both_[good[which[k]].key] = good[which[k]];
        }
      }
      absl::Status rebalanced = store_->Rebalance();
      for (size_t k = 0; k < items.size(); ++k) {
        const BlobRecord& r = good[which[k]];
        if (!st.ok()) {
          keep_error(st, r.key);
        } else if (!out[k].ok()) {
          keep_error(out[k].status(), r.key);
        } else {
          copied.push_back(r);
        }
      }
      if (!rebalanced.ok()) keep_error(rebalanced, items.front().key);
    }
  }

  // 3. Drop the old copies: PutBatch answered, so the segment records are synced (a lost
  //    registry commit is replayed from the segment on open; docs/formats.md "Segments").
  uint64_t moved = 0, moved_bytes = 0;
  for (const BlobRecord& r : copied) {
    absl::Status st = files->Delete(r.key);
    store_->ForgetInBoth(r.key);
    if (!st.ok()) {
      keep_error(st, r.key);
      continue;
    }
    ++moved;
    moved_bytes += r.size;
  }
  if (absl::Status st = store_->Rebalance(); !st.ok()) keep_error(st, records.front().key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    progress_.moved_blobs += moved;
    progress_.moved_bytes += moved_bytes;
    progress_.already_blobs += already;
    progress_.damaged_blobs += damaged;
    progress_.missing_blobs += missing;
  }
  if (!first_error.ok()) return first_error;
  return false;
}

absl::Status FileLayoutMigrator::Finish() {
  // The registry is empty: files left in the fan-out are temp files of interrupted writes, old
  // copies whose record an earlier run dropped before removing them, or puts that crashed
  // before registering (never acknowledged). None holds a blob that is not in the segments.
  namespace fs = std::filesystem;
  const std::string what = "finish layout migration in " + blobs_root_;
  std::error_code ec;
  if (!fs::exists(blobs_root_, ec)) {
    if (ec) return ErrnoStatus(ec.value(), what);
  } else {
    std::vector<fs::path> files, dirs;
    fs::recursive_directory_iterator it(blobs_root_, ec), end;
    if (ec) return ErrnoStatus(ec.value(), what + ": scan");
    for (; it != end; it.increment(ec)) {
      if (ec) return ErrnoStatus(ec.value(), what + ": scan");
      if (it.depth() == 0 && it->path().filename() == kQuarantineDirName) {
        it.disable_recursion_pending();
        continue;
      }
      std::error_code ec2;
      if (it->is_directory(ec2) && !it->is_symlink(ec2)) {
        dirs.push_back(it->path());
      } else {
        files.push_back(it->path());
      }
    }
    if (ec) return ErrnoStatus(ec.value(), what + ": scan");
    for (const fs::path& p : files) {
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, what + ": remove " + p.string());
      }
    }
    // Deepest first, so that each directory is empty when its turn comes.
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    for (const fs::path& d : dirs) {
      if (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, what + ": remove directory " + d.string());
      }
    }
    if (!files.empty() || !dirs.empty()) {
      CAIRN_RETURN_IF_ERROR(Annotate(env::FsyncDir(blobs_root_), what));
    }
    // The root goes too unless quarantined files are kept in it.
    if (::rmdir(blobs_root_.c_str()) == 0) {
      const std::string parent = fs::path(blobs_root_).parent_path().string();
      CAIRN_RETURN_IF_ERROR(Annotate(env::FsyncDir(parent.empty() ? "." : parent), what));
    } else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
      return ErrnoStatus(errno, what + ": remove " + blobs_root_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    progress_.leftover_files += files.size();
  }
  store_->migrated_ = true;
  CAIRN_RETURN_IF_ERROR(Annotate(store_->Rebalance(), what));
  std::lock_guard<std::mutex> lock(mu_);
  progress_.done = true;
  progress_.remaining_blobs = progress_.remaining_bytes = 0;
  return absl::OkStatus();
}

}  // namespace cairn::store
