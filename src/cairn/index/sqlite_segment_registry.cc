#include "cairn/index/sqlite_segment_registry.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/index/database_impl.h"
#include "cairn/store/segment.h"

namespace cairn::index {
namespace {

using store::SegmentRow;
using store::SegmentUsage;
using store::Slot;
using store::SlotLocation;
using store::SlotState;

constexpr char kColumns[] =
    "segment, pos, owner, chunk_id, shard, size, checksum, kind, extra, state, stored_ns";

absl::StatusOr<Slot> ReadSlot(Statement& stmt) {
  Slot s;
  s.location.segment = stmt.ColumnUint(0);
  s.location.offset = stmt.ColumnUint(1);
  s.record.key.owner = stmt.ColumnUint(2);
  auto id = ChunkId::FromBytes(stmt.ColumnBlob(3));
  if (!id.ok()) return absl::DataLossError("segment registry: corrupt chunk id");
  s.record.key.chunk = *id;
  s.record.key.shard = static_cast<uint32_t>(stmt.ColumnInt(4));
  s.record.size = stmt.ColumnUint(5);
  ByteSpan checksum = stmt.ColumnBlob(6);
  if (checksum.size() != s.record.checksum.size()) {
    return absl::DataLossError("segment registry: corrupt checksum for " +
                               s.record.key.DebugString());
  }
  std::memcpy(s.record.checksum.data(), checksum.data(), checksum.size());
  int64_t kind = stmt.ColumnInt(7);
  s.record.kind = kind >= 0 && kind <= 255 ? static_cast<uint8_t>(kind) : 0;
  s.record.extra = stmt.ColumnInt(8) != 0;
  int64_t state = stmt.ColumnInt(9);
  if (state < 0 || state > 2) {
    return absl::DataLossError(absl::StrCat("segment registry: unknown state ", state));
  }
  s.state = static_cast<SlotState>(state);
  s.stored_ns = stmt.ColumnInt(10);
  return s;
}

absl::StatusOr<std::vector<Slot>> ReadSlots(Statement& stmt) {
  std::vector<Slot> out;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    CAIRN_ASSIGN_OR_RETURN(Slot s, ReadSlot(stmt));
    out.push_back(std::move(s));
  }
}

int64_t LimitParam(size_t limit) {
  return static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX));
}

class SqliteSegmentRegistry : public store::SegmentRegistry {
 public:
  explicit SqliteSegmentRegistry(Database* db) : impl_(db->impl()) {}

  absl::Status Apply(const store::RegistryBatch& batch, bool durable) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (durable) CAIRN_RETURN_IF_ERROR(impl_->Exec("PRAGMA synchronous = FULL"));
    absl::Status st = ApplyLocked(batch);
    if (durable) {
      absl::Status back = impl_->Exec("PRAGMA synchronous = NORMAL");
      if (st.ok()) st = back;
    }
    return Annotate(st, "segment registry");
  }

  absl::StatusOr<std::optional<Slot>> FindLive(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM segment_blobs WHERE owner = ? AND chunk_id = ? AND "
                                    "shard = ? AND state = 0")));
    stmt.BindUint(1, key.owner);
    stmt.BindBlob(2, key.chunk.bytes);
    stmt.BindInt(3, key.shard);
    CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> slots, ReadSlots(stmt));
    if (slots.empty()) return std::optional<Slot>();
    return std::optional<Slot>(slots[0]);
  }

  // One read transaction for every lookup: outside one, each SELECT begins and ends its own
  // (a lock of the WAL index, two fcntl calls, per key).
  absl::StatusOr<std::vector<std::optional<Slot>>> FindLiveMany(
      std::span<const BlobKey> keys) override {
    std::vector<std::optional<Slot>> out;
    out.reserve(keys.size());
    std::lock_guard<std::mutex> lock(impl_->mu);
    const bool own_txn = sqlite3_get_autocommit(impl_->db) != 0 && keys.size() > 1;
    if (own_txn) CAIRN_RETURN_IF_ERROR(Annotate(impl_->Exec("BEGIN"), "segment registry"));
    absl::Status st;
    for (const BlobKey& key : keys) {
      absl::StatusOr<Statement> stmt = impl_->Prepare(absl::StrCat(
          "SELECT ", kColumns,
          " FROM segment_blobs WHERE owner = ? AND chunk_id = ? AND shard = ? AND state = 0"));
      if (!stmt.ok()) {
        st = stmt.status();
        break;
      }
      stmt->BindUint(1, key.owner);
      stmt->BindBlob(2, key.chunk.bytes);
      stmt->BindInt(3, key.shard);
      absl::StatusOr<std::vector<Slot>> slots = ReadSlots(*stmt);
      if (!slots.ok()) {
        st = slots.status();
        break;
      }
      out.push_back(slots->empty() ? std::nullopt : std::optional<Slot>((*slots)[0]));
    }
    if (own_txn) {
      absl::Status end = impl_->Exec(st.ok() ? "COMMIT" : "ROLLBACK");
      if (st.ok()) st = end;
    }
    if (!st.ok()) return Annotate(st, "segment registry");
    return out;
  }

  absl::StatusOr<std::optional<Slot>> FindAt(const SlotLocation& location) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM segment_blobs WHERE segment = ? AND pos = ?")));
    stmt.BindUint(1, location.segment);
    stmt.BindUint(2, location.offset);
    CAIRN_ASSIGN_OR_RETURN(std::vector<Slot> slots, ReadSlots(stmt));
    if (slots.empty()) return std::optional<Slot>();
    return std::optional<Slot>(slots[0]);
  }

  absl::StatusOr<std::vector<Slot>> SlotsOf(uint64_t segment) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM segment_blobs WHERE segment = ? ORDER BY pos")));
    stmt.BindUint(1, segment);
    return ReadSlots(stmt);
  }

  absl::StatusOr<std::vector<SegmentRow>> Segments() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("SELECT id, state, registered_end FROM segments ORDER BY id"));
    std::vector<SegmentRow> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      int64_t state = stmt.ColumnInt(1);
      if (state < 0 || state > 2) {
        return absl::DataLossError(absl::StrCat("segment registry: unknown segment state ", state));
      }
      out.push_back(
          {stmt.ColumnUint(0), static_cast<store::SegmentState>(state), stmt.ColumnUint(2)});
    }
  }

  absl::StatusOr<std::vector<SegmentUsage>> Usage() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat(
            "SELECT segment, "
            "sum(state = 0), coalesce(sum(CASE WHEN state = 0 THEN size END), 0), "
            "sum(state = 1), coalesce(sum(CASE WHEN state = 1 THEN size END), 0), "
            "sum(state = 2), coalesce(sum(CASE WHEN state = 2 THEN size END), 0), "
            "sum(state = 0 AND extra <> 0), "
            "coalesce(sum(CASE WHEN state = 0 AND extra <> 0 THEN size END), 0), "
            "sum(size) + count(*) * ",
            store::kRecordHeaderSize, " FROM segment_blobs GROUP BY segment ORDER BY segment")));
    std::vector<SegmentUsage> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      SegmentUsage u;
      u.segment = stmt.ColumnUint(0);
      u.live_blobs = stmt.ColumnUint(1);
      u.live_bytes = stmt.ColumnUint(2);
      u.dead_blobs = stmt.ColumnUint(3);
      u.dead_bytes = stmt.ColumnUint(4);
      u.quarantined_blobs = stmt.ColumnUint(5);
      u.quarantined_bytes = stmt.ColumnUint(6);
      u.extra_blobs = stmt.ColumnUint(7);
      u.extra_bytes = stmt.ColumnUint(8);
      u.record_bytes = stmt.ColumnUint(9);
      out.push_back(u);
    }
  }

  absl::StatusOr<std::vector<Slot>> ListLive(const std::optional<BlobKey>& after,
                                             size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    std::string sql = !after ? absl::StrCat("SELECT ", kColumns,
                                            " FROM segment_blobs WHERE state = 0 "
                                            "ORDER BY owner, chunk_id, shard LIMIT ?")
                             : absl::StrCat("SELECT ", kColumns,
                                            " FROM segment_blobs WHERE state = 0 AND "
                                            "(owner, chunk_id, shard) > (?, ?, ?) "
                                            "ORDER BY owner, chunk_id, shard LIMIT ?");
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(sql));
    int limit_index = 1;
    if (after) {
      stmt.BindUint(1, after->owner);
      stmt.BindBlob(2, after->chunk.bytes);
      stmt.BindInt(3, after->shard);
      limit_index = 4;
    }
    stmt.BindInt(limit_index, LimitParam(limit));
    return ReadSlots(stmt);
  }

  absl::StatusOr<std::vector<Slot>> ListLiveOfOwner(PeerId owner,
                                                    const std::optional<BlobKey>& after,
                                                    size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    std::string sql =
        !after ? absl::StrCat("SELECT ", kColumns,
                              " FROM segment_blobs WHERE state = 0 AND owner = ? "
                              "ORDER BY chunk_id, shard LIMIT ?")
               : absl::StrCat("SELECT ", kColumns,
                              " FROM segment_blobs WHERE state = 0 AND owner = ? AND "
                              "(chunk_id, shard) > (?, ?) ORDER BY chunk_id, shard LIMIT ?");
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(sql));
    stmt.BindUint(1, owner);
    int limit_index = 2;
    if (after) {
      stmt.BindBlob(2, after->chunk.bytes);
      stmt.BindInt(3, after->shard);
      limit_index = 4;
    }
    stmt.BindInt(limit_index, LimitParam(limit));
    return ReadSlots(stmt);
  }

  absl::StatusOr<std::vector<Slot>> ListExtras(size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM segment_blobs WHERE state = 0 AND extra <> 0 "
                                    "ORDER BY stored_ns, owner, chunk_id, shard LIMIT ?")));
    stmt.BindInt(1, LimitParam(limit));
    return ReadSlots(stmt);
  }

  absl::StatusOr<std::vector<store::OwnerUsage>> UsageByOwner() override {
    std::vector<store::OwnerUsage> out;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT owner, count(*), coalesce(sum(size), 0), "
                         "coalesce(sum(extra <> 0), 0), "
                         "coalesce(sum(CASE WHEN extra <> 0 THEN size ELSE 0 END), 0) "
                         "FROM segment_blobs WHERE state = 0 GROUP BY owner"));
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        store::OwnerUsage u;
        u.owner = stmt.ColumnUint(0);
        u.blobs = stmt.ColumnUint(1);
        u.bytes = stmt.ColumnUint(2);
        u.extra_blobs = stmt.ColumnUint(3);
        u.extra_bytes = stmt.ColumnUint(4);
        out.push_back(u);
      }
    }
    std::sort(out.begin(), out.end(), [](const store::OwnerUsage& a, const store::OwnerUsage& b) {
      return a.owner < b.owner;
    });
    return out;
  }

 private:
  // Caller holds impl_->mu.
  absl::Status ApplyLocked(const store::RegistryBatch& batch) {
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    for (const SlotLocation& loc : batch.remove) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("DELETE FROM segment_blobs WHERE segment = ? AND pos = ?"));
      stmt.BindUint(1, loc.segment);
      stmt.BindUint(2, loc.offset);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    for (const auto& [loc, state] : batch.set_state) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("UPDATE segment_blobs SET state = ? WHERE segment = ? AND pos = ?"));
      stmt.BindInt(1, static_cast<int>(state));
      stmt.BindUint(2, loc.segment);
      stmt.BindUint(3, loc.offset);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
      if (sqlite3_changes(impl_->db) == 0) {
        return absl::NotFoundError(absl::StrCat("no slot at ", loc.segment, ":", loc.offset));
      }
    }
    for (const auto& [loc, extra] : batch.set_extra) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("UPDATE segment_blobs SET extra = ? WHERE segment = ? AND pos = ?"));
      stmt.BindInt(1, extra ? 1 : 0);
      stmt.BindUint(2, loc.segment);
      stmt.BindUint(3, loc.offset);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
      if (sqlite3_changes(impl_->db) == 0) {
        return absl::NotFoundError(absl::StrCat("no slot at ", loc.segment, ":", loc.offset));
      }
    }
    for (const Slot& s : batch.add) {
      CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(absl::StrCat(
                                                 "INSERT INTO segment_blobs (", kColumns,
                                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")));
      stmt.BindUint(1, s.location.segment);
      stmt.BindUint(2, s.location.offset);
      stmt.BindUint(3, s.record.key.owner);
      stmt.BindBlob(4, s.record.key.chunk.bytes);
      stmt.BindInt(5, s.record.key.shard);
      stmt.BindUint(6, s.record.size);
      stmt.BindBlob(7, s.record.checksum);
      stmt.BindInt(8, s.record.kind);
      stmt.BindInt(9, s.record.extra ? 1 : 0);
      stmt.BindInt(10, static_cast<int>(s.state));
      stmt.BindInt(11, s.stored_ns);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    for (const SegmentRow& row : batch.put_segments) {
      CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                             impl_->Prepare("INSERT OR REPLACE INTO segments (id, state, "
                                            "registered_end) VALUES (?, ?, ?)"));
      stmt.BindUint(1, row.id);
      stmt.BindInt(2, static_cast<int>(row.state));
      stmt.BindUint(3, row.registered_end);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    for (uint64_t id : batch.remove_segments) {
      CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("DELETE FROM segments WHERE id = ?"));
      stmt.BindUint(1, id);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    return txn.Commit();
  }

  Database::Impl* impl_;
};

}  // namespace

std::unique_ptr<store::SegmentRegistry> NewSqliteSegmentRegistry(Database* db) {
  return std::make_unique<SqliteSegmentRegistry>(db);
}

}  // namespace cairn::index
