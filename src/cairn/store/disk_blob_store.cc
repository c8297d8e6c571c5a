// DiskBlobStore: one file per blob under a two-level fan-out, registered in a BlobRegistry.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include "cairn/base/status.h"
#include "cairn/env/clock.h"
#include "cairn/env/file.h"
#include "cairn/store/blob_store.h"

namespace cairn::store {
namespace {

constexpr uint32_t kDirMode = 0700;
constexpr uint32_t kFileMode = 0600;

// True for the temp files env::WriteFileAtomic leaves behind when interrupted:
// ".<name>.tmp-<hex>".
bool IsTempFileName(const std::string& name) {
  return name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos;
}

absl::Status RemoveTempFiles(const std::string& root) {
  std::error_code ec;
  std::vector<std::filesystem::path> leftovers;
  std::filesystem::recursive_directory_iterator it(root, ec), end;
  if (ec) return ErrnoStatus(ec.value(), "scan " + root);
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), "scan " + root);
    if (it->is_regular_file(ec) && IsTempFileName(it->path().filename().string())) {
      leftovers.push_back(it->path());
    }
  }
  if (ec) return ErrnoStatus(ec.value(), "scan " + root);
  for (const auto& p : leftovers) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "remove leftover temp file " + p.string());
    }
  }
  return absl::OkStatus();
}

// Whether `path` is a regular file of exactly `size` bytes.
absl::StatusOr<bool> FileHasSize(const std::string& path, uint64_t size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus(errno, "stat " + path);
  }
  return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size;
}

std::string DirOf(const std::string& path) { return path.substr(0, path.rfind('/')); }
std::string BaseOf(const std::string& path) { return path.substr(path.rfind('/') + 1); }

constexpr char kQuarantineDirName[] = "quarantine";

// What reading a blob file back found.
struct FileCheck {
  enum Verdict { kIntact, kMissing, kCorrupt } verdict = kIntact;
  std::string reason;      // kCorrupt: what is wrong, for logs and errors
  uint64_t file_size = 0;  // bytes on disk (kIntact, kCorrupt)
  Bytes data;              // kIntact, when asked for
};

// Reads `path` back and compares it with `record`: a regular file of exactly record.size bytes
// whose XXH3-128 equals record.checksum. Never reads more than record.size bytes. With
// `from_media`, asks the kernel to drop the file's cached pages before and after reading
// (posix_fadvise DONTNEED), so that scrub reads what is on the disk and does not evict hotter
// data. A read failing with EIO (an unreadable sector) is corruption; other I/O errors are
// returned as errors.
absl::StatusOr<FileCheck> CheckBlobFile(const std::string& path, const BlobRecord& record,
                                        bool from_media, bool keep_data) {
  FileCheck out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      out.verdict = FileCheck::kMissing;
      return out;
    }
    if (errno == ELOOP) {
      out.verdict = FileCheck::kCorrupt;
      out.reason = path + " is a symbolic link";
      return out;
    }
    return ErrnoStatus(errno, "open " + path);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat " + path);
  out.file_size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode)) {
    out.verdict = FileCheck::kCorrupt;
    out.reason = path + " is not a regular file";
    return out;
  }
  if (out.file_size != record.size) {
    out.verdict = FileCheck::kCorrupt;
    out.reason = path + " is " + std::to_string(out.file_size) + " bytes, recorded " +
                 std::to_string(record.size);
    return out;
  }
  if (from_media) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  Bytes data(record.size);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::read(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EIO) {
        out.verdict = FileCheck::kCorrupt;
        out.reason = "read " + path + ": " + std::strerror(EIO);
        return out;
      }
      return ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  if (from_media) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (off != data.size()) {
    out.verdict = FileCheck::kCorrupt;
    out.reason = path + " is truncated (" + std::to_string(off) + " of " +
                 std::to_string(record.size) + " bytes)";
    return out;
  }
  if (codec::BlobChecksum(data) != record.checksum) {
    out.verdict = FileCheck::kCorrupt;
    out.reason = path + " does not match its checksum";
    return out;
  }
  if (keep_data) out.data = std::move(data);
  return out;
}

// Count and total size of the regular files in `dir` (0, 0 when it does not exist).
absl::Status CountFiles(const std::string& dir, uint64_t* files, uint64_t* bytes) {
  *files = *bytes = 0;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return absl::OkStatus();
    return ErrnoStatus(ec.value(), "scan " + dir);
  }
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), "scan " + dir);
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    uint64_t size = it->file_size(ec2);
    if (ec2) continue;  // removed meanwhile
    ++*files;
    *bytes += size;
  }
  if (ec) return ErrnoStatus(ec.value(), "scan " + dir);
  return absl::OkStatus();
}

}  // namespace

struct DiskBlobStore::State {
  std::string root;
  BlobRegistry* registry = nullptr;
  DamageObserver observer;

  std::mutex mu;
  std::condition_variable key_released;
  uint64_t quota = 0;
  uint64_t used = 0;      // bytes of registered blobs
  uint64_t reserved = 0;  // bytes of puts in progress (counted against the quota)
  uint64_t blobs = 0;
  uint64_t extra_blobs = 0;        // of which held as extra copies
  uint64_t extra_bytes = 0;        // their bytes (part of used)
  uint64_t quarantined = 0;        // files in QuarantineDir()
  uint64_t quarantined_bytes = 0;  // their total size
  std::set<BlobKey> busy;          // keys with a Put, Delete or quarantine in progress

  // Serializes fan-out directory creation so that no put writes into a directory whose
  // creation another put has not made durable yet.
  std::mutex dir_mu;

  std::string PathFor(const BlobKey& key) const {
    std::string hex = key.chunk.Hex();
    return root + "/" + hex.substr(0, 2) + "/" + hex.substr(2, 2) + "/" +
           std::to_string(key.owner) + "-" + hex + "-" + std::to_string(key.shard);
  }

  // mkdir `dir` (whose parent exists); fsync the parent when it was created.
  absl::Status EnsureDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), kDirMode) == 0) return env::FsyncDir(DirOf(dir));
    if (errno == EEXIST) return absl::OkStatus();
    return ErrnoStatus(errno, "create directory " + dir);
  }

  std::string QuarantineDir() const { return root + "/" + kQuarantineDirName; }

  // Re-checks blob `key` while holding its key guard and settles what it finds: an intact blob
  // is left alone (a concurrent Put may have just restored it; its bytes go to `intact_data`
  // when given); a damaged one is quarantined; a registered blob without a file loses its
  // record. `reason` receives what was wrong. Calls the observer after releasing the guard.
  absl::StatusOr<ScrubOutcome> Settle(const BlobKey& key, bool from_media, Bytes* intact_data,
                                      std::string* reason);

  // Takes a registered record out of the counters. Caller holds `mu`.
  void ForgetLocked(const BlobRecord& record) {
    used -= std::min(used, record.size);
    if (blobs > 0) --blobs;
    if (record.extra) {
      extra_bytes -= std::min(extra_bytes, record.size);
      if (extra_blobs > 0) --extra_blobs;
    }
  }

  // Evicts extra blobs, oldest stored first, until `enough()` (evaluated with `mu` held) or no
  // extra blob is left that is not busy: a key with a Put, Delete or quarantine in progress is
  // skipped rather than waited for, so that puts evicting for each other cannot deadlock.
  absl::StatusOr<EvictResult> EvictUntil(const std::function<bool()>& enough);

  absl::Status WriteBlobFile(const std::string& path, ByteSpan blob) {
    std::string level2 = DirOf(path);
    {
      std::lock_guard<std::mutex> lock(dir_mu);
      CAIRN_RETURN_IF_ERROR(EnsureDir(DirOf(level2)));
      CAIRN_RETURN_IF_ERROR(EnsureDir(level2));
    }
    return env::WriteFileAtomic(path, blob, kFileMode);
  }
};

namespace {

// Holds `key` exclusively (against other Puts and Deletes of the same key) while alive.
class KeyGuard {
 public:
  KeyGuard(std::mutex& mu, std::condition_variable& cv, std::set<BlobKey>& busy, const BlobKey& key)
      : mu_(mu), cv_(cv), busy_(busy), key_(key) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return busy_.count(key_) == 0; });
    busy_.insert(key_);
  }
  ~KeyGuard() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(key_);
    }
    cv_.notify_all();
  }
  KeyGuard(const KeyGuard&) = delete;
  KeyGuard& operator=(const KeyGuard&) = delete;

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  std::set<BlobKey>& busy_;
  BlobKey key_;
};

// Holds `key` exclusively if no one else does; owns() tells whether it got it.
class TryKeyGuard {
 public:
  TryKeyGuard(std::mutex& mu, std::condition_variable& cv, std::set<BlobKey>& busy,
              const BlobKey& key)
      : mu_(mu), cv_(cv), busy_(busy), key_(key) {
    std::lock_guard<std::mutex> lock(mu_);
    owns_ = busy_.insert(key_).second;
  }
  ~TryKeyGuard() {
    if (!owns_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(key_);
    }
    cv_.notify_all();
  }
  TryKeyGuard(const TryKeyGuard&) = delete;
  TryKeyGuard& operator=(const TryKeyGuard&) = delete;
  bool owns() const { return owns_; }

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  std::set<BlobKey>& busy_;
  BlobKey key_;
  bool owns_ = false;
};

// Extra records read per registry query while evicting.
constexpr size_t kEvictPage = 256;

}  // namespace

absl::StatusOr<EvictResult> DiskBlobStore::State::EvictUntil(const std::function<bool()>& enough) {
  EvictResult result;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (enough() || extra_blobs == 0) return result;
    }
    CAIRN_ASSIGN_OR_RETURN(std::vector<BlobRecord> extras,
                           Annotate(registry->ListExtras(kEvictPage), "evict extra blobs"));
    bool evicted_any = false;
    for (const BlobRecord& listed : extras) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (enough()) return result;
      }
      TryKeyGuard guard(mu, key_released, busy, listed.key);
      if (!guard.owns()) continue;
      // Re-read under the guard: it may have been deleted or promoted meanwhile.
      CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record,
                             Annotate(registry->Find(listed.key), "evict extra blobs"));
      if (!record || !record->extra) continue;
      const std::string path = PathFor(record->key);
      const std::string what = "evict extra blob " + record->key.DebugString();
      if (::unlink(path.c_str()) == 0) {
        CAIRN_RETURN_IF_ERROR(Annotate(env::FsyncDir(DirOf(path)), what));
      } else if (errno != ENOENT && errno != ENOTDIR) {
        return ErrnoStatus(errno, what + ": remove " + path);
      }
      CAIRN_RETURN_IF_ERROR(Annotate(registry->Remove(record->key), what));
      std::lock_guard<std::mutex> lock(mu);
      ForgetLocked(*record);
      ++result.blobs;
      result.bytes += record->size;
      evicted_any = true;
    }
    // A page of busy keys only (or none at all): stop rather than spin on them.
    if (!evicted_any) return result;
  }
}

absl::StatusOr<ScrubOutcome> DiskBlobStore::State::Settle(const BlobKey& key, bool from_media,
                                                          Bytes* intact_data, std::string* reason) {
  ScrubOutcome outcome = ScrubOutcome::kNotHeld;
  std::string why;
  {
    KeyGuard guard(mu, key_released, busy, key);
    CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record, registry->Find(key));
    if (!record) return ScrubOutcome::kNotHeld;
    const std::string path = PathFor(key);
    CAIRN_ASSIGN_OR_RETURN(FileCheck check,
                           CheckBlobFile(path, *record, from_media, intact_data != nullptr));
    if (check.verdict == FileCheck::kIntact) {
      if (intact_data != nullptr) *intact_data = std::move(check.data);
      return ScrubOutcome::kIntact;
    }
    bool moved = false;
    if (check.verdict == FileCheck::kCorrupt) {
      const std::string qdir = QuarantineDir();
      {
        std::lock_guard<std::mutex> lock(dir_mu);
        CAIRN_RETURN_IF_ERROR(EnsureDir(qdir));
      }
      const std::string target =
          qdir + "/" + BaseOf(path) + "." + std::to_string(env::RealClock::Default()->NowNanos());
      if (::rename(path.c_str(), target.c_str()) == 0) {
        CAIRN_RETURN_IF_ERROR(env::FsyncDir(qdir));
        CAIRN_RETURN_IF_ERROR(env::FsyncDir(DirOf(path)));
        moved = true;
        why = check.reason;
      } else if (errno != ENOENT) {
        return ErrnoStatus(
            errno, "quarantine blob " + key.DebugString() + ": rename " + path + " to " + target);
      }
    }
    if (!moved) why = path + " is missing";
    CAIRN_RETURN_IF_ERROR(Annotate(registry->Remove(key), "quarantine blob " + key.DebugString()));
    std::lock_guard<std::mutex> lock(mu);
    ForgetLocked(*record);
    if (moved) {
      ++quarantined;
      quarantined_bytes += check.file_size;
    }
    outcome = moved ? ScrubOutcome::kQuarantined : ScrubOutcome::kMissing;
  }
  if (observer) observer(key, outcome, why);
  if (reason != nullptr) *reason = std::move(why);
  return outcome;
}

DiskBlobStore::DiskBlobStore(std::unique_ptr<State> state) : state_(std::move(state)) {}
DiskBlobStore::~DiskBlobStore() = default;

absl::StatusOr<std::unique_ptr<DiskBlobStore>> DiskBlobStore::Open(const std::string& root,
                                                                   uint64_t quota,
                                                                   BlobRegistry* registry,
                                                                   DamageObserver observer) {
  if (root.empty()) return absl::InvalidArgumentError("blob store root is empty");
  if (registry == nullptr) return absl::InvalidArgumentError("blob store needs a registry");
  auto state = std::make_unique<State>();
  state->root = root;
  while (state->root.size() > 1 && state->root.back() == '/') state->root.pop_back();
  state->registry = registry;
  state->observer = std::move(observer);
  state->quota = quota;
  CAIRN_RETURN_IF_ERROR(Annotate(env::MakeDirs(state->root, kDirMode), "open blob store"));
  CAIRN_RETURN_IF_ERROR(Annotate(RemoveTempFiles(state->root), "open blob store"));
  CAIRN_ASSIGN_OR_RETURN(StoreStats totals,
                         Annotate(registry->Totals(), "open blob store: read registry"));
  state->used = totals.used;
  state->blobs = totals.blobs;
  state->extra_blobs = totals.extra_blobs;
  state->extra_bytes = totals.extra_bytes;
  CAIRN_RETURN_IF_ERROR(
      Annotate(CountFiles(state->QuarantineDir(), &state->quarantined, &state->quarantined_bytes),
               "open blob store"));
  return std::unique_ptr<DiskBlobStore>(new DiskBlobStore(std::move(state)));
}

std::string DiskBlobStore::PathFor(const BlobKey& key) const { return state_->PathFor(key); }
std::string DiskBlobStore::QuarantineDir() const { return state_->QuarantineDir(); }

absl::StatusOr<PutOutcome> DiskBlobStore::Put(const BlobKey& key, ByteSpan blob,
                                              const codec::Checksum& checksum,
                                              const PutOptions& options) {
  State& s = *state_;
  CAIRN_RETURN_IF_ERROR(ValidateBlobForKey(key, blob, checksum));
  KeyGuard guard(s.mu, s.key_released, s.busy, key);

  const std::string path = s.PathFor(key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> existing, s.registry->Find(key));
  uint64_t old_size = 0;
  if (existing) {
    CAIRN_ASSIGN_OR_RETURN(bool present, FileHasSize(path, existing->size));
    if (present) {
      if (existing->extra && !options.extra) {
        // A regular put of a key held as extra: it is now counted toward the owner's target,
        // so it must no longer be evictable.
        CAIRN_RETURN_IF_ERROR(
            Annotate(s.registry->SetExtra(key, false), "promote extra blob " + key.DebugString()));
        std::lock_guard<std::mutex> lock(s.mu);
        s.extra_bytes -= std::min(s.extra_bytes, existing->size);
        if (s.extra_blobs > 0) --s.extra_blobs;
      }
      return PutOutcome::kAlreadyStored;
    }
    // Registered but its file is gone or truncated: this put restores it.
    old_size = existing->size;
  }
  // A restored record never turns from regular into extra.
  const bool extra = options.extra && (!existing || existing->extra);

  const uint64_t size = blob.size();
  const uint64_t needed = size > old_size ? size - old_size : 0;
  auto fits = [&] {  // caller holds s.mu
    uint64_t committed = s.used + s.reserved;
    return committed <= s.quota && needed <= s.quota - committed;
  };
  auto no_space = [&] {  // caller holds s.mu
    return absl::ResourceExhaustedError(
        "no space for " + std::string(extra ? "extra " : "") + "blob " + key.DebugString() + " (" +
        std::to_string(size) + " bytes; used " + std::to_string(s.used + s.reserved) + " of " +
        std::to_string(s.quota) + ", " + std::to_string(s.extra_bytes) + " in extra copies)");
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (fits()) {
        s.reserved += needed;
        break;
      }
      if (extra) return no_space();
      // Evict only when evicting every extra blob (but this one, if its record is extra) would
      // make room; otherwise leave them all.
      uint64_t evictable = s.extra_bytes;
      if (existing && existing->extra) evictable -= std::min(evictable, old_size);
      uint64_t regular = s.used + s.reserved - std::min(s.used + s.reserved, evictable);
      if (regular > s.quota || needed > s.quota - regular) return no_space();
    }
    CAIRN_ASSIGN_OR_RETURN(EvictResult evicted, s.EvictUntil(fits));
    if (evicted.blobs == 0) {
      std::lock_guard<std::mutex> lock(s.mu);
      if (fits()) {
        s.reserved += needed;
        break;
      }
      return no_space();  // what is left is busy
    }
  }

  absl::Status st = s.WriteBlobFile(path, blob);
  if (st.ok()) {
    st = s.registry->Add(BlobRecord{key, size, checksum, extra, BlobKindOf(blob)});
    if (!st.ok()) ::unlink(path.c_str());
  }

  std::lock_guard<std::mutex> lock(s.mu);
  s.reserved -= needed;
  if (!st.ok()) return Annotate(st, "store blob " + key.DebugString());
  if (existing) s.ForgetLocked(*existing);
  s.used += size;
  ++s.blobs;
  if (extra) {
    s.extra_bytes += size;
    ++s.extra_blobs;
  }
  return PutOutcome::kStored;
}

absl::StatusOr<Bytes> DiskBlobStore::Get(const BlobKey& key) {
  State& s = *state_;
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record, s.registry->Find(key));
  if (!record) return absl::NotFoundError("blob " + key.DebugString() + " is not held");
  const std::string path = s.PathFor(key);
  CAIRN_ASSIGN_OR_RETURN(
      FileCheck check,
      Annotate(CheckBlobFile(path, *record, /*from_media=*/false, /*keep_data=*/true),
               "read blob " + key.DebugString()));
  switch (check.verdict) {
    case FileCheck::kIntact:
      return std::move(check.data);
    case FileCheck::kMissing:
      return absl::NotFoundError("blob " + key.DebugString() + " is not held (file missing)");
    case FileCheck::kCorrupt:
      break;
  }
  // Damaged: quarantine it now rather than at the next scrub, so that Has and the owner's next
  // check see it missing at once.
  Bytes data;
  std::string reason;
  auto settled = s.Settle(key, /*from_media=*/false, &data, &reason);
  if (!settled.ok()) {
    return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + check.reason +
                               " (quarantine failed: " + std::string(settled.status().message()) +
                               ")");
  }
  switch (*settled) {
    case ScrubOutcome::kIntact:  // restored by a concurrent Put meanwhile
      return data;
    case ScrubOutcome::kQuarantined:
      return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + reason +
                                 "; quarantined");
    case ScrubOutcome::kMissing:
    case ScrubOutcome::kNotHeld:
      break;
  }
  return absl::NotFoundError("blob " + key.DebugString() + " is not held");
}

absl::StatusOr<bool> DiskBlobStore::Has(const BlobKey& key) {
  State& s = *state_;
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record, s.registry->Find(key));
  if (!record) return false;
  return FileHasSize(s.PathFor(key), record->size);
}

absl::Status DiskBlobStore::Delete(const BlobKey& key) {
  State& s = *state_;
  KeyGuard guard(s.mu, s.key_released, s.busy, key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record, s.registry->Find(key));
  const std::string path = s.PathFor(key);
  // Also removes an unregistered file a crashed put may have left at this path.
  if (::unlink(path.c_str()) == 0) {
    CAIRN_RETURN_IF_ERROR(Annotate(env::FsyncDir(DirOf(path)), "delete blob " + key.DebugString()));
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return ErrnoStatus(errno, "delete blob " + key.DebugString() + ": remove " + path);
  }
  if (!record) return absl::OkStatus();
  CAIRN_RETURN_IF_ERROR(Annotate(s.registry->Remove(key), "delete blob " + key.DebugString()));
  std::lock_guard<std::mutex> lock(s.mu);
  s.ForgetLocked(*record);
  return absl::OkStatus();
}

StoreStats DiskBlobStore::Stats() {
  std::lock_guard<std::mutex> lock(state_->mu);
  StoreStats stats;
  stats.quota = state_->quota;
  stats.used = state_->used;
  stats.blobs = state_->blobs;
  stats.extra_blobs = state_->extra_blobs;
  stats.extra_bytes = state_->extra_bytes;
  stats.quarantined = state_->quarantined;
  stats.quarantined_bytes = state_->quarantined_bytes;
  return stats;
}

absl::StatusOr<std::vector<OwnerUsage>> DiskBlobStore::UsageByOwner() {
  return Annotate(state_->registry->UsageByOwner(), "usage by owner");
}

absl::StatusOr<EvictResult> DiskBlobStore::EvictExtras(uint64_t target_used) {
  State& s = *state_;
  return s.EvictUntil([&] { return s.used <= target_used; });
}

absl::StatusOr<std::vector<BlobRecord>> DiskBlobStore::ListOwner(
    PeerId owner, const std::optional<BlobKey>& after, size_t limit) {
  return Annotate(state_->registry->ListOwner(owner, after, limit),
                  "list blobs of owner " + std::to_string(owner));
}

absl::Status DiskBlobStore::SetQuota(uint64_t quota) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->quota = quota;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlobRecord>> DiskBlobStore::ListHeld(const std::optional<BlobKey>& after,
                                                                size_t limit) {
  return Annotate(state_->registry->List(after, limit), "list held blobs");
}

absl::StatusOr<ScrubOutcome> DiskBlobStore::ScrubBlob(const BlobKey& key) {
  State& s = *state_;
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record,
                         Annotate(s.registry->Find(key), "scrub blob " + key.DebugString()));
  if (!record) return ScrubOutcome::kNotHeld;
  // The common case reads without the key guard, so scrub never stalls puts and deletes; a
  // damaged blob is re-checked under the guard before anything is moved.
  CAIRN_ASSIGN_OR_RETURN(
      FileCheck check,
      Annotate(CheckBlobFile(s.PathFor(key), *record, /*from_media=*/true, /*keep_data=*/false),
               "scrub blob " + key.DebugString()));
  if (check.verdict == FileCheck::kIntact) return ScrubOutcome::kIntact;
  return Annotate(s.Settle(key, /*from_media=*/true, nullptr, nullptr),
                  "scrub blob " + key.DebugString());
}

}  // namespace cairn::store
