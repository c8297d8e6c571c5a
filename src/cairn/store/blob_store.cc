// Put validation shared by every BlobStore, the in-memory registry and the in-memory store.
#include "cairn/store/blob_store.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "cairn/base/status.h"
#include "cairn/format/blob.h"

namespace cairn::store {

absl::Status ValidateBlobForKey(const BlobKey& key, ByteSpan blob,
                                const codec::Checksum& checksum) {
  if (codec::BlobChecksum(blob) != checksum) {
    return absl::DataLossError("blob " + key.DebugString() +
                               " does not match its checksum (damaged in transfer?)");
  }
  auto header = format::ParseBlobHeader(blob);
  if (!header.ok()) return Annotate(header.status(), "blob " + key.DebugString());
  if (header->owner != key.owner || header->chunk != key.chunk || header->shard != key.shard) {
    BlobKey named{header->owner, header->chunk, header->shard};
    return absl::InvalidArgumentError("blob envelope names " + named.DebugString() +
                                      ", not its key " + key.DebugString());
  }
  return absl::OkStatus();
}

const char* ScrubOutcomeName(ScrubOutcome outcome) {
  switch (outcome) {
    case ScrubOutcome::kIntact:
      return "intact";
    case ScrubOutcome::kQuarantined:
      return "quarantined";
    case ScrubOutcome::kMissing:
      return "missing";
    case ScrubOutcome::kNotHeld:
      return "not held";
  }
  return "unknown";
}

namespace {

absl::Status NotHeld(const BlobKey& key) {
  return absl::NotFoundError("blob " + key.DebugString() + " is not held");
}

absl::Status CheckLimit(size_t limit) {
  if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
  return absl::OkStatus();
}

}  // namespace

class MemBlobRegistry : public BlobRegistry {
 public:
  absl::Status Add(const BlobRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_[record.key] = record;
    return absl::OkStatus();
  }
  absl::Status Remove(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.erase(key);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<BlobRecord>> Find(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(key);
    if (it == records_.end()) return std::optional<BlobRecord>();
    return std::optional<BlobRecord>(it->second);
  }
  absl::StatusOr<StoreStats> Totals() override {
    std::lock_guard<std::mutex> lock(mu_);
    StoreStats s;
    for (const auto& [key, record] : records_) {
      s.used += record.size;
      ++s.blobs;
    }
    return s;
  }
  absl::Status ForEach(const std::function<absl::Status(const BlobRecord&)>& fn) override {
    // Copy first so that `fn` may call back into the registry.
    std::vector<BlobRecord> records;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, record] : records_) records.push_back(record);
    }
    for (const BlobRecord& r : records) CAIRN_RETURN_IF_ERROR(fn(r));
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<BlobRecord>> List(const std::optional<BlobKey>& after,
                                               size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<BlobRecord> out;
    auto it = after ? records_.upper_bound(*after) : records_.begin();
    for (; it != records_.end() && out.size() < limit; ++it) out.push_back(it->second);
    return out;
  }

 private:
  std::mutex mu_;
  std::map<BlobKey, BlobRecord> records_;
};

std::unique_ptr<BlobRegistry> NewMemBlobRegistry() { return std::make_unique<MemBlobRegistry>(); }

namespace {

class MemBlobStore : public BlobStore {
 public:
  explicit MemBlobStore(uint64_t quota) : quota_(quota) {}

  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob,
                                 const codec::Checksum& checksum) override {
    CAIRN_RETURN_IF_ERROR(ValidateBlobForKey(key, blob, checksum));
    std::lock_guard<std::mutex> lock(mu_);
    if (blobs_.count(key)) return PutOutcome::kAlreadyStored;
    if (used_ > quota_ || blob.size() > quota_ - used_) {
      return absl::ResourceExhaustedError(
          "no space for blob " + key.DebugString() + " (" + std::to_string(blob.size()) +
          " bytes; used " + std::to_string(used_) + " of " + std::to_string(quota_) + ")");
    }
    blobs_[key] = Held{Bytes(blob.begin(), blob.end()), checksum, blob.size()};
    used_ += blob.size();
    return PutOutcome::kStored;
  }

  absl::StatusOr<Bytes> Get(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(key);
    if (it == blobs_.end()) return NotHeld(key);
    if (codec::BlobChecksum(it->second.data) != it->second.checksum) {
      QuarantineLocked(it);
      return absl::DataLossError("blob " + key.DebugString() +
                                 " is corrupt: does not match its checksum; quarantined");
    }
    return it->second.data;
  }

  absl::StatusOr<bool> Has(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    return blobs_.count(key) > 0;
  }

  absl::Status Delete(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(key);
    if (it == blobs_.end()) return absl::OkStatus();
    used_ -= it->second.size;
    blobs_.erase(it);
    return absl::OkStatus();
  }

  StoreStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return StoreStats{quota_, used_, blobs_.size(), quarantined_.size(), quarantined_bytes_};
  }

  absl::Status SetQuota(uint64_t quota) override {
    std::lock_guard<std::mutex> lock(mu_);
    quota_ = quota;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                   size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<BlobRecord> out;
    auto it = after ? blobs_.upper_bound(*after) : blobs_.begin();
    for (; it != blobs_.end() && out.size() < limit; ++it) {
      out.push_back(BlobRecord{it->first, it->second.size, it->second.checksum});
    }
    return out;
  }

  absl::StatusOr<ScrubOutcome> ScrubBlob(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(key);
    if (it == blobs_.end()) return ScrubOutcome::kNotHeld;
    const Held& h = it->second;
    if (h.data.size() == h.size && codec::BlobChecksum(h.data) == h.checksum) {
      return ScrubOutcome::kIntact;
    }
    QuarantineLocked(it);
    return ScrubOutcome::kQuarantined;
  }

  absl::Status Mutate(const BlobKey& key, const std::function<void(Bytes&)>& mutate) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(key);
    if (it == blobs_.end()) return NotHeld(key);
    mutate(it->second.data);
    return absl::OkStatus();
  }

 private:
  struct Held {
    Bytes data;
    codec::Checksum checksum;
    uint64_t size = 0;  // as stored (and counted in used_)
  };

  // Moves a held blob aside: no longer held, no longer counted in used_.
  void QuarantineLocked(std::map<BlobKey, Held>::iterator it) {
    used_ -= std::min(used_, it->second.size);
    quarantined_bytes_ += it->second.data.size();
    quarantined_.push_back(std::move(it->second));
    blobs_.erase(it);
  }

  std::mutex mu_;
  uint64_t quota_;
  uint64_t used_ = 0;
  std::map<BlobKey, Held> blobs_;
  std::vector<Held> quarantined_;  // kept for inspection, like DiskBlobStore's quarantine dir
  uint64_t quarantined_bytes_ = 0;
};

}  // namespace

std::unique_ptr<BlobStore> NewMemBlobStore(uint64_t quota) {
  return std::make_unique<MemBlobStore>(quota);
}

absl::Status MutateMemBlobForTesting(BlobStore* store, const BlobKey& key,
                                     const std::function<void(Bytes&)>& mutate) {
  auto* mem = dynamic_cast<MemBlobStore*>(store);
  if (mem == nullptr) return absl::InvalidArgumentError("not a MemBlobStore");
  return mem->Mutate(key, mutate);
}

}  // namespace cairn::store
