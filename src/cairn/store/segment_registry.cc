#include "cairn/store/segment_registry.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "cairn/store/segment.h"

namespace cairn::store {
namespace {

class MemSegmentRegistry : public SegmentRegistry {
 public:
  absl::Status Apply(const RegistryBatch& batch, bool /*durable*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Work on copies so that a conflict leaves the registry unchanged.
    auto slots = slots_;
    auto live = live_;
    auto segments = segments_;
    auto drop_live = [&](const Slot& s) {
      auto it = live.find(s.record.key);
      if (it != live.end() && it->second == s.location) live.erase(it);
    };
    for (const SlotLocation& loc : batch.remove) {
      auto it = slots.find(loc);
      if (it == slots.end()) continue;
      drop_live(it->second);
      slots.erase(it);
    }
    for (const auto& [loc, state] : batch.set_state) {
      auto it = slots.find(loc);
      if (it == slots.end()) {
        return absl::NotFoundError(absl::StrCat("no slot at ", loc.segment, ":", loc.offset));
      }
      if (it->second.state == SlotState::kLive && state != SlotState::kLive) {
        drop_live(it->second);
      }
      if (state == SlotState::kLive && it->second.state != SlotState::kLive) {
        if (!live.emplace(it->second.record.key, loc).second) {
          return absl::FailedPreconditionError("second live slot for a key");
        }
      }
      it->second.state = state;
    }
    for (const auto& [loc, extra] : batch.set_extra) {
      auto it = slots.find(loc);
      if (it == slots.end()) {
        return absl::NotFoundError(absl::StrCat("no slot at ", loc.segment, ":", loc.offset));
      }
      it->second.record.extra = extra;
    }
    for (const Slot& s : batch.add) {
      if (!slots.emplace(s.location, s).second) {
        return absl::FailedPreconditionError(
            absl::StrCat("slot ", s.location.segment, ":", s.location.offset, " is taken"));
      }
      if (s.state == SlotState::kLive && !live.emplace(s.record.key, s.location).second) {
        return absl::FailedPreconditionError("second live slot for key " +
                                             s.record.key.DebugString());
      }
    }
    for (const SegmentRow& row : batch.put_segments) segments[row.id] = row;
    for (uint64_t id : batch.remove_segments) segments.erase(id);
    slots_ = std::move(slots);
    live_ = std::move(live);
    segments_ = std::move(segments);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Slot>> FindLive(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(key);
    if (it == live_.end()) return std::optional<Slot>();
    return std::optional<Slot>(slots_.at(it->second));
  }

  absl::StatusOr<std::optional<Slot>> FindAt(const SlotLocation& location) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(location);
    if (it == slots_.end()) return std::optional<Slot>();
    return std::optional<Slot>(it->second);
  }

  absl::StatusOr<std::vector<Slot>> SlotsOf(uint64_t segment) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Slot> out;
    for (auto it = slots_.lower_bound({segment, 0});
         it != slots_.end() && it->first.segment == segment; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<std::vector<SegmentRow>> Segments() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SegmentRow> out;
    for (const auto& [id, row] : segments_) out.push_back(row);
    return out;
  }

  absl::StatusOr<std::vector<SegmentUsage>> Usage() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<uint64_t, SegmentUsage> by;
    for (const auto& [loc, s] : slots_) {
      SegmentUsage& u = by[loc.segment];
      u.segment = loc.segment;
      const uint64_t size = s.record.size;
      u.record_bytes += kRecordHeaderSize + size;
      switch (s.state) {
        case SlotState::kLive:
          ++u.live_blobs;
          u.live_bytes += size;
          if (s.record.extra) {
            ++u.extra_blobs;
            u.extra_bytes += size;
          }
          break;
        case SlotState::kDead:
          ++u.dead_blobs;
          u.dead_bytes += size;
          break;
        case SlotState::kQuarantined:
          ++u.quarantined_blobs;
          u.quarantined_bytes += size;
          break;
      }
    }
    std::vector<SegmentUsage> out;
    for (const auto& [id, u] : by) out.push_back(u);
    return out;
  }

  absl::StatusOr<std::vector<Slot>> ListLive(const std::optional<BlobKey>& after,
                                             size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Slot> out;
    auto it = after ? live_.upper_bound(*after) : live_.begin();
    for (; it != live_.end() && out.size() < limit; ++it) out.push_back(slots_.at(it->second));
    return out;
  }

  absl::StatusOr<std::vector<Slot>> ListLiveOfOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Slot> out;
    BlobKey from{owner, ChunkId{}, 0};
    auto it = live_.lower_bound(from);
    if (after) {
      BlobKey a{owner, after->chunk, after->shard};
      it = live_.upper_bound(a);
    }
    for (; it != live_.end() && it->first.owner == owner && out.size() < limit; ++it) {
      out.push_back(slots_.at(it->second));
    }
    return out;
  }

  absl::StatusOr<std::vector<Slot>> ListExtras(size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Slot> out;
    for (const auto& [key, loc] : live_) {
      const Slot& s = slots_.at(loc);
      if (s.record.extra) out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const Slot& a, const Slot& b) {
      return std::tie(a.stored_ns, a.record.key) < std::tie(b.stored_ns, b.record.key);
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<PeerId, OwnerUsage> by;
    for (const auto& [key, loc] : live_) {
      const Slot& s = slots_.at(loc);
      OwnerUsage& u = by[key.owner];
      u.owner = key.owner;
      ++u.blobs;
      u.bytes += s.record.size;
      if (s.record.extra) {
        ++u.extra_blobs;
        u.extra_bytes += s.record.size;
      }
    }
    std::vector<OwnerUsage> out;
    for (const auto& [owner, u] : by) out.push_back(u);
    return out;
  }

 private:
  std::mutex mu_;
  std::map<SlotLocation, Slot> slots_;
  std::map<BlobKey, SlotLocation> live_;
  std::map<uint64_t, SegmentRow> segments_;
};

}  // namespace

std::unique_ptr<SegmentRegistry> NewMemSegmentRegistry() {
  return std::make_unique<MemSegmentRegistry>();
}

}  // namespace cairn::store
