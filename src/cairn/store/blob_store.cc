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

uint8_t BlobKindOf(ByteSpan blob) {
  auto header = format::ParseBlobHeader(blob);
  return header.ok() ? static_cast<uint8_t>(header->kind) : 0;
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
    // Like the SQLite registry, a replaced record counts as stored now.
    records_[record.key] = Entry{record, ++seq_};
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
    return std::optional<BlobRecord>(it->second.record);
  }
  absl::StatusOr<StoreStats> Totals() override {
    std::lock_guard<std::mutex> lock(mu_);
    StoreStats s;
    for (const auto& [key, e] : records_) {
      s.used += e.record.size;
      ++s.blobs;
      if (e.record.extra) {
        s.extra_bytes += e.record.size;
        ++s.extra_blobs;
      }
    }
    return s;
  }
  absl::Status SetExtra(const BlobKey& key, bool extra) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(key);
    if (it == records_.end()) return NotHeld(key);
    it->second.record.extra = extra;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<OwnerUsage> out;
    for (const auto& [key, e] : records_) {  // key order: owners ascending
      if (out.empty() || out.back().owner != key.owner) out.push_back(OwnerUsage{key.owner});
      OwnerUsage& u = out.back();
      ++u.blobs;
      u.bytes += e.record.size;
      if (e.record.extra) {
        ++u.extra_blobs;
        u.extra_bytes += e.record.size;
      }
    }
    return out;
  }
  absl::StatusOr<std::vector<BlobRecord>> ListExtras(size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<uint64_t, const BlobRecord*>> extras;
    for (const auto& [key, e] : records_) {
      if (e.record.extra) extras.push_back({e.seq, &e.record});
    }
    std::sort(extras.begin(), extras.end());
    std::vector<BlobRecord> out;
    for (size_t i = 0; i < extras.size() && i < limit; ++i) out.push_back(*extras[i].second);
    return out;
  }
  absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<BlobRecord> out;
    auto it = records_.lower_bound(BlobKey{owner, ChunkId{}, 0});
    if (after) it = records_.upper_bound(BlobKey{owner, after->chunk, after->shard});
    for (; it != records_.end() && it->first.owner == owner && out.size() < limit; ++it) {
      out.push_back(it->second.record);
    }
    return out;
  }
  absl::Status ForEach(const std::function<absl::Status(const BlobRecord&)>& fn) override {
    // Copy first so that `fn` may call back into the registry.
    std::vector<BlobRecord> records;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, e] : records_) records.push_back(e.record);
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
    for (; it != records_.end() && out.size() < limit; ++it) out.push_back(it->second.record);
    return out;
  }

 private:
  struct Entry {
    BlobRecord record;
    uint64_t seq = 0;  // order of Add (the "stored" time)
  };
  std::mutex mu_;
  std::map<BlobKey, Entry> records_;
  uint64_t seq_ = 0;
};

std::unique_ptr<BlobRegistry> NewMemBlobRegistry() { return std::make_unique<MemBlobRegistry>(); }

namespace {

class MemMovedOutbox : public MovedOutbox {
 public:
  absl::Status Add(const MovedBlob& move) override {
    std::lock_guard<std::mutex> lock(mu_);
    queued_[move.key] = Queued{move.to, ++seq_};
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PeerId>> Owners() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<PeerId> out;
    for (const auto& [key, q] : queued_) {  // key order: owners ascending
      if (out.empty() || out.back() != key.owner) out.push_back(key.owner);
    }
    return out;
  }
  absl::StatusOr<std::vector<MovedBlob>> List(PeerId owner, size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<uint64_t, MovedBlob>> found;
    for (auto it = queued_.lower_bound(BlobKey{owner, ChunkId{}, 0});
         it != queued_.end() && it->first.owner == owner; ++it) {
      found.push_back({it->second.seq, MovedBlob{it->first, it->second.to}});
    }
    std::sort(found.begin(), found.end());
    std::vector<MovedBlob> out;
    for (size_t i = 0; i < found.size() && i < limit; ++i) out.push_back(found[i].second);
    return out;
  }
  absl::Status Ack(const std::vector<MovedBlob>& delivered) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const MovedBlob& m : delivered) {
      auto it = queued_.find(m.key);
      if (it != queued_.end() && it->second.to == m.to) queued_.erase(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> Count() override {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_.size();
  }

 private:
  struct Queued {
    PeerId to = 0;
    uint64_t seq = 0;
  };
  std::mutex mu_;
  std::map<BlobKey, Queued> queued_;
  uint64_t seq_ = 0;
};

}  // namespace

std::unique_ptr<MovedOutbox> NewMemMovedOutbox() { return std::make_unique<MemMovedOutbox>(); }

namespace {

class MemBlobStore : public BlobStore {
 public:
  explicit MemBlobStore(uint64_t quota) : quota_(quota) {}

  using BlobStore::Put;
  absl::StatusOr<PutOutcome> Put(const BlobKey& key, ByteSpan blob, const codec::Checksum& checksum,
                                 const PutOptions& options) override {
    CAIRN_RETURN_IF_ERROR(ValidateBlobForKey(key, blob, checksum));
    std::lock_guard<std::mutex> lock(mu_);
    auto held = blobs_.find(key);
    if (held != blobs_.end()) {
      if (held->second.extra && !options.extra) {  // promote
        held->second.extra = false;
        extra_bytes_ -= held->second.size;
        --extra_blobs_;
      }
      return PutOutcome::kAlreadyStored;
    }
    const uint64_t size = blob.size();
    if (!FitsLocked(used_, size)) {
      const uint64_t regular = used_ - extra_bytes_;
      if (options.extra || !FitsLocked(regular, size)) {
        return absl::ResourceExhaustedError(
            "no space for " + std::string(options.extra ? "extra " : "") + "blob " +
            key.DebugString() + " (" + std::to_string(size) + " bytes; used " +
            std::to_string(used_) + " of " + std::to_string(quota_) + ", " +
            std::to_string(extra_bytes_) + " in extra copies)");
      }
      // Evicting every extra copy makes it fit: evict oldest first until it does.
      EvictLocked([&] { return FitsLocked(used_, size); });
    }
    blobs_[key] = Held{
        Bytes(blob.begin(), blob.end()), checksum, size, options.extra, ++seq_, BlobKindOf(blob)};
    used_ += size;
    if (options.extra) {
      extra_bytes_ += size;
      ++extra_blobs_;
    }
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
    DropLocked(it);
    return absl::OkStatus();
  }

  StoreStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    StoreStats s;
    s.quota = quota_;
    s.used = used_;
    s.blobs = blobs_.size();
    s.extra_blobs = extra_blobs_;
    s.extra_bytes = extra_bytes_;
    s.quarantined = quarantined_.size();
    s.quarantined_bytes = quarantined_bytes_;
    return s;
  }

  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<OwnerUsage> out;
    for (const auto& [key, h] : blobs_) {  // key order: owners ascending
      if (out.empty() || out.back().owner != key.owner) out.push_back(OwnerUsage{key.owner});
      OwnerUsage& u = out.back();
      ++u.blobs;
      u.bytes += h.size;
      if (h.extra) {
        ++u.extra_blobs;
        u.extra_bytes += h.size;
      }
    }
    return out;
  }

  absl::Status SetQuota(uint64_t quota) override {
    std::lock_guard<std::mutex> lock(mu_);
    quota_ = quota;
    return absl::OkStatus();
  }

  absl::StatusOr<EvictResult> EvictExtras(uint64_t target_used) override {
    std::lock_guard<std::mutex> lock(mu_);
    return EvictLocked([&] { return used_ <= target_used; });
  }

  absl::StatusOr<std::vector<BlobRecord>> ListOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<BlobRecord> out;
    auto it = after ? blobs_.upper_bound(BlobKey{owner, after->chunk, after->shard})
                    : blobs_.lower_bound(BlobKey{owner, ChunkId{}, 0});
    for (; it != blobs_.end() && it->first.owner == owner && out.size() < limit; ++it) {
      out.push_back(RecordOf(*it));
    }
    return out;
  }

  absl::StatusOr<std::vector<BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                   size_t limit) override {
    CAIRN_RETURN_IF_ERROR(CheckLimit(limit));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<BlobRecord> out;
    auto it = after ? blobs_.upper_bound(*after) : blobs_.begin();
    for (; it != blobs_.end() && out.size() < limit; ++it) out.push_back(RecordOf(*it));
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
    bool extra = false;
    uint64_t seq = 0;  // order stored (eviction order of extras)
    uint8_t kind = 0;  // BlobRecord::kind
  };
  using Iterator = std::map<BlobKey, Held>::iterator;

  static BlobRecord RecordOf(const std::pair<const BlobKey, Held>& e) {
    return BlobRecord{e.first, e.second.size, e.second.checksum, e.second.extra, e.second.kind};
  }

  // Whether `size` more bytes fit beside `used` bytes.
  bool FitsLocked(uint64_t used, uint64_t size) const {
    return used <= quota_ && size <= quota_ - used;
  }

  // Forgets a held blob and its space.
  void DropLocked(Iterator it) {
    used_ -= std::min(used_, it->second.size);
    if (it->second.extra) {
      extra_bytes_ -= std::min(extra_bytes_, it->second.size);
      if (extra_blobs_ > 0) --extra_blobs_;
    }
    blobs_.erase(it);
  }

  // Evicts extra blobs, oldest stored first, until `enough()` or none is left.
  template <typename Pred>
  EvictResult EvictLocked(Pred enough) {
    EvictResult result;
    if (enough() || extra_blobs_ == 0) return result;
    std::vector<std::pair<uint64_t, BlobKey>> extras;
    for (const auto& [key, h] : blobs_) {
      if (h.extra) extras.push_back({h.seq, key});
    }
    std::sort(extras.begin(), extras.end());
    for (const auto& [seq, key] : extras) {
      if (enough()) break;
      auto it = blobs_.find(key);
      ++result.blobs;
      result.bytes += it->second.size;
      DropLocked(it);
    }
    return result;
  }

  // Moves a held blob aside: no longer held, no longer counted in used_.
  void QuarantineLocked(Iterator it) {
    quarantined_bytes_ += it->second.data.size();
    Held h = it->second;
    DropLocked(it);
    quarantined_.push_back(std::move(h));
  }

  std::mutex mu_;
  uint64_t quota_;
  uint64_t used_ = 0;
  uint64_t extra_blobs_ = 0;
  uint64_t extra_bytes_ = 0;
  uint64_t seq_ = 0;
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
