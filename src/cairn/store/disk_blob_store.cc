// DiskBlobStore: one file per blob under a two-level fan-out, registered in a BlobRegistry.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <vector>

#include "cairn/base/status.h"
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

}  // namespace

struct DiskBlobStore::State {
  std::string root;
  BlobRegistry* registry = nullptr;

  std::mutex mu;
  std::condition_variable key_released;
  uint64_t quota = 0;
  uint64_t used = 0;      // bytes of registered blobs
  uint64_t reserved = 0;  // bytes of puts in progress (counted against the quota)
  uint64_t blobs = 0;
  std::set<BlobKey> busy;  // keys with a Put or Delete in progress

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

}  // namespace

DiskBlobStore::DiskBlobStore(std::unique_ptr<State> state) : state_(std::move(state)) {}
DiskBlobStore::~DiskBlobStore() = default;

absl::StatusOr<std::unique_ptr<DiskBlobStore>> DiskBlobStore::Open(const std::string& root,
                                                                   uint64_t quota,
                                                                   BlobRegistry* registry) {
  if (root.empty()) return absl::InvalidArgumentError("blob store root is empty");
  if (registry == nullptr) return absl::InvalidArgumentError("blob store needs a registry");
  auto state = std::make_unique<State>();
  state->root = root;
  while (state->root.size() > 1 && state->root.back() == '/') state->root.pop_back();
  state->registry = registry;
  state->quota = quota;
  CAIRN_RETURN_IF_ERROR(Annotate(env::MakeDirs(state->root, kDirMode), "open blob store"));
  CAIRN_RETURN_IF_ERROR(Annotate(RemoveTempFiles(state->root), "open blob store"));
  CAIRN_ASSIGN_OR_RETURN(StoreStats totals,
                         Annotate(registry->Totals(), "open blob store: read registry"));
  state->used = totals.used;
  state->blobs = totals.blobs;
  return std::unique_ptr<DiskBlobStore>(new DiskBlobStore(std::move(state)));
}

std::string DiskBlobStore::PathFor(const BlobKey& key) const { return state_->PathFor(key); }

absl::StatusOr<PutOutcome> DiskBlobStore::Put(const BlobKey& key, ByteSpan blob,
                                              const codec::Checksum& checksum) {
  State& s = *state_;
  CAIRN_RETURN_IF_ERROR(ValidateBlobForKey(key, blob, checksum));
  KeyGuard guard(s.mu, s.key_released, s.busy, key);

  const std::string path = s.PathFor(key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> existing, s.registry->Find(key));
  uint64_t old_size = 0;
  if (existing) {
    CAIRN_ASSIGN_OR_RETURN(bool present, FileHasSize(path, existing->size));
    if (present) return PutOutcome::kAlreadyStored;
    // Registered but its file is gone or truncated: this put restores it.
    old_size = existing->size;
  }

  const uint64_t size = blob.size();
  const uint64_t extra = size > old_size ? size - old_size : 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    uint64_t committed = s.used + s.reserved;
    if (committed > s.quota || extra > s.quota - committed) {
      return absl::ResourceExhaustedError(
          "no space for blob " + key.DebugString() + " (" + std::to_string(size) + " bytes; used " +
          std::to_string(committed) + " of " + std::to_string(s.quota) + ")");
    }
    s.reserved += extra;
  }

  absl::Status st = s.WriteBlobFile(path, blob);
  if (st.ok()) {
    st = s.registry->Add(BlobRecord{key, size, checksum});
    if (!st.ok()) ::unlink(path.c_str());
  }

  std::lock_guard<std::mutex> lock(s.mu);
  s.reserved -= extra;
  if (!st.ok()) return Annotate(st, "store blob " + key.DebugString());
  s.used = s.used - old_size + size;
  if (!existing) ++s.blobs;
  return PutOutcome::kStored;
}

absl::StatusOr<Bytes> DiskBlobStore::Get(const BlobKey& key) {
  State& s = *state_;
  CAIRN_ASSIGN_OR_RETURN(std::optional<BlobRecord> record, s.registry->Find(key));
  if (!record) return absl::NotFoundError("blob " + key.DebugString() + " is not held");
  const std::string path = s.PathFor(key);
  auto data = env::ReadFile(path, record->size);
  if (!data.ok()) {
    switch (data.status().code()) {
      case absl::StatusCode::kNotFound:
        return absl::NotFoundError("blob " + key.DebugString() + " is not held (file missing)");
      case absl::StatusCode::kResourceExhausted:  // larger than recorded
        return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + path +
                                   " is larger than recorded");
      default:
        return Annotate(data.status(), "read blob " + key.DebugString());
    }
  }
  if (data->size() != record->size || codec::BlobChecksum(*data) != record->checksum) {
    return absl::DataLossError("blob " + key.DebugString() + " is corrupt: " + path +
                               " does not match its checksum");
  }
  return std::move(*data);
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
  s.used -= std::min(s.used, record->size);
  if (s.blobs > 0) --s.blobs;
  return absl::OkStatus();
}

StoreStats DiskBlobStore::Stats() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return StoreStats{state_->quota, state_->used, state_->blobs};
}

absl::Status DiskBlobStore::SetQuota(uint64_t quota) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->quota = quota;
  return absl::OkStatus();
}

}  // namespace cairn::store
