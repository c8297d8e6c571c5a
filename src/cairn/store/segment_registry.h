// SegmentRegistry: where each blob of a SegmentBlobStore lives (docs/formats.md "Segments"). One
// *slot* per record of a segment: the blob's key, size, checksum, kind and extra flag, its place
// (segment id, record offset) and its state — live (held), dead (deleted or evicted; its bytes stay
// until compaction rewrites the segment) or quarantined (found corrupt; kept in the segment, no
// longer held). At most one slot per key is live. One row per segment: its state and
// `registered_end`, the length of the file prefix whose records all have slots (records after it
// are re-registered from the segment on open: the segment is the log, the registry a materialized
// view of it).
//
// Changes come in batches applied atomically (one SQLite transaction); a batch applied with
// `durable` survives a power cut once Apply returned (SQLite synchronous=FULL for that commit,
// which also makes every earlier commit durable), one without may be lost by a power cut (but
// never half-applied).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/store/blob_store.h"

namespace cairn::store {

enum class SlotState : uint8_t { kLive = 0, kDead = 1, kQuarantined = 2 };

// (segment id, offset of the record's first byte).
struct SlotLocation {
  uint64_t segment = 0;
  uint64_t offset = 0;
  auto operator<=>(const SlotLocation&) const = default;
  bool operator==(const SlotLocation&) const = default;
};

struct Slot {
  BlobRecord record;  // key, size (blob bytes), checksum, extra, kind
  SlotLocation location;
  SlotState state = SlotState::kLive;
  int64_t stored_ns = 0;  // when first stored (eviction order of extra copies); kept by moves
};

enum class SegmentState : uint8_t {
  kOpen = 0,     // being appended to
  kSealed = 1,   // immutable
  kRetired = 2,  // compacted away: its slots moved, its file to be removed
};

struct SegmentRow {
  uint64_t id = 0;
  SegmentState state = SegmentState::kOpen;
  uint64_t registered_end = 0;  // bytes
};

// Per-segment sums over its slots.
struct SegmentUsage {
  uint64_t segment = 0;
  uint64_t live_blobs = 0, live_bytes = 0;
  uint64_t dead_blobs = 0, dead_bytes = 0;
  uint64_t quarantined_blobs = 0, quarantined_bytes = 0;
  uint64_t extra_blobs = 0, extra_bytes = 0;  // live extra ones (part of live)
  uint64_t record_bytes = 0;                  // sum of record sizes (header + blob) of every slot
};

struct RegistryBatch {
  std::vector<Slot> add;             // new slots (location must be free)
  std::vector<SlotLocation> remove;  // slots dropped
  std::vector<std::pair<SlotLocation, SlotState>> set_state;
  std::vector<std::pair<SlotLocation, bool>> set_extra;
  std::vector<SegmentRow> put_segments;   // inserted or replaced
  std::vector<uint64_t> remove_segments;  // rows dropped (their slots must be gone)
  bool empty() const {
    return add.empty() && remove.empty() && set_state.empty() && set_extra.empty() &&
           put_segments.empty() && remove_segments.empty();
  }
};

class SegmentRegistry {
 public:
  virtual ~SegmentRegistry() = default;

  // Applies every change of `batch` or none (removes and state changes first, then adds, then
  // segment rows). FAILED_PRECONDITION/INTERNAL when a change conflicts (a second live slot for
  // a key, a taken location); the registry is then unchanged.
  virtual absl::Status Apply(const RegistryBatch& batch, bool durable) = 0;

  // The live slot of `key`, nullopt when the key is not held.
  virtual absl::StatusOr<std::optional<Slot>> FindLive(const BlobKey& key) = 0;
  // FindLive of each key, in order (one answer per key), as one read: a put batch looks up
  // all its keys at once. This default asks FindLive for each.
  virtual absl::StatusOr<std::vector<std::optional<Slot>>> FindLiveMany(
      std::span<const BlobKey> keys) {
    std::vector<std::optional<Slot>> out;
    out.reserve(keys.size());
    for (const BlobKey& key : keys) {
      absl::StatusOr<std::optional<Slot>> slot = FindLive(key);
      if (!slot.ok()) return slot.status();
      out.push_back(*std::move(slot));
    }
    return out;
  }
  // The slot at `location` (any state), nullopt if none.
  virtual absl::StatusOr<std::optional<Slot>> FindAt(const SlotLocation& location) = 0;
  // Every slot of segment `id`, ascending by offset.
  virtual absl::StatusOr<std::vector<Slot>> SlotsOf(uint64_t segment) = 0;
  // Every segment row, ascending by id.
  virtual absl::StatusOr<std::vector<SegmentRow>> Segments() = 0;
  // Sums per segment, ascending by segment (segments without slots are absent).
  virtual absl::StatusOr<std::vector<SegmentUsage>> Usage() = 0;

  // Live slots only, as BlobRegistry's calls of the same names (key order; owner order).
  virtual absl::StatusOr<std::vector<Slot>> ListLive(const std::optional<BlobKey>& after,
                                                     size_t limit) = 0;
  virtual absl::StatusOr<std::vector<Slot>> ListLiveOfOwner(PeerId owner,
                                                            const std::optional<BlobKey>& after,
                                                            size_t limit) = 0;
  // Up to `limit` live extra slots, oldest stored first (then by key).
  virtual absl::StatusOr<std::vector<Slot>> ListExtras(size_t limit) = 0;
  virtual absl::StatusOr<std::vector<OwnerUsage>> UsageByOwner() = 0;
};

// In-memory SegmentRegistry for tests (`durable` is meaningless: nothing survives the process).
std::unique_ptr<SegmentRegistry> NewMemSegmentRegistry();

}  // namespace cairn::store
