#include "cairn/index/sqlite_blob_registry.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/env/clock.h"
#include "cairn/index/database_impl.h"

namespace cairn::index {
namespace {

// ForEach reads this many rows per query (List) and calls `fn` without holding the database
// lock, so memory stays bounded and `fn` may itself use the registry (e.g. Remove a stale
// record).
constexpr int kForEachPage = 512;

constexpr char kColumns[] = "owner, chunk_id, shard, size, checksum, extra, kind";

// Reads a row laid out as kColumns. DATA_LOSS when the stored ids are malformed.
absl::StatusOr<store::BlobRecord> ReadRecord(Statement& stmt) {
  store::BlobRecord record;
  record.key.owner = stmt.ColumnUint(0);
  ByteSpan chunk = stmt.ColumnBlob(1);
  auto id = ChunkId::FromBytes(chunk);
  if (!id.ok()) {
    return absl::DataLossError(
        absl::StrCat("blob registry: corrupt chunk id (", chunk.size(), " bytes)"));
  }
  record.key.chunk = *id;
  record.key.shard = static_cast<uint32_t>(stmt.ColumnInt(2));
  record.size = stmt.ColumnUint(3);
  ByteSpan checksum = stmt.ColumnBlob(4);
  if (checksum.size() != record.checksum.size()) {
    return absl::DataLossError(absl::StrCat("blob registry: corrupt checksum for ",
                                            record.key.DebugString(), " (", checksum.size(),
                                            " bytes)"));
  }
  std::memcpy(record.checksum.data(), checksum.data(), checksum.size());
  record.extra = stmt.ColumnInt(5) != 0;
  int64_t kind = stmt.ColumnInt(6);
  record.kind = kind >= 0 && kind <= 255 ? static_cast<uint8_t>(kind) : 0;
  return record;
}

// Runs a query whose rows are laid out as kColumns and collects them.
absl::StatusOr<std::vector<store::BlobRecord>> ReadRecords(Statement& stmt) {
  std::vector<store::BlobRecord> out;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    CAIRN_ASSIGN_OR_RETURN(store::BlobRecord record, ReadRecord(stmt));
    out.push_back(std::move(record));
  }
}

int64_t LimitParam(size_t limit) {
  return static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX));
}

class SqliteBlobRegistry : public store::BlobRegistry {
 public:
  explicit SqliteBlobRegistry(Database* db) : impl_(db->impl()) {}

  absl::Status Add(const store::BlobRecord& record) override {
    int64_t now_ns = env::RealClock::Default()->NowNanos();
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Strictly increasing within this process, so that the eviction order of extra copies is
    // the order they were stored in even when the clock's resolution is coarse.
    now_ns = std::max(now_ns, last_stored_ns_ + 1);
    last_stored_ns_ = now_ns;
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt, impl_->Prepare("INSERT OR REPLACE INTO blobs "
                                       "(owner, chunk_id, shard, size, checksum, stored_ns, extra, "
                                       "kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    stmt.BindUint(1, record.key.owner);
    stmt.BindBlob(2, record.key.chunk.bytes);
    stmt.BindInt(3, record.key.shard);
    stmt.BindUint(4, record.size);
    stmt.BindBlob(5, record.checksum);
    stmt.BindInt(6, now_ns);
    stmt.BindInt(7, record.extra ? 1 : 0);
    stmt.BindInt(8, record.kind);
    return Annotate(stmt.Run(), absl::StrCat("register blob ", record.key.DebugString()));
  }

  absl::Status Remove(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("DELETE FROM blobs WHERE owner = ? AND chunk_id = ? AND shard = ?"));
    stmt.BindUint(1, key.owner);
    stmt.BindBlob(2, key.chunk.bytes);
    stmt.BindInt(3, key.shard);
    return Annotate(stmt.Run(), absl::StrCat("unregister blob ", key.DebugString()));
  }

  absl::StatusOr<std::optional<store::BlobRecord>> Find(const BlobKey& key) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM blobs WHERE owner = ? AND chunk_id = ? AND shard = ?")));
    stmt.BindUint(1, key.owner);
    stmt.BindBlob(2, key.chunk.bytes);
    stmt.BindInt(3, key.shard);
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<store::BlobRecord>();
    CAIRN_ASSIGN_OR_RETURN(store::BlobRecord record, ReadRecord(stmt));
    return std::optional<store::BlobRecord>(std::move(record));
  }

  absl::StatusOr<store::StoreStats> Totals() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("SELECT coalesce(sum(size), 0), count(*), "
                       "coalesce(sum(CASE WHEN extra <> 0 THEN size ELSE 0 END), 0), "
                       "coalesce(sum(extra <> 0), 0) FROM blobs"));
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("blob registry: totals query returned no row");
    store::StoreStats stats;
    stats.used = stmt.ColumnUint(0);
    stats.blobs = stmt.ColumnUint(1);
    stats.extra_bytes = stmt.ColumnUint(2);
    stats.extra_blobs = stmt.ColumnUint(3);
    return stats;
  }

  absl::Status SetExtra(const BlobKey& key, bool extra) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            "UPDATE blobs SET extra = ? WHERE owner = ? AND chunk_id = ? AND shard = ?"));
    stmt.BindInt(1, extra ? 1 : 0);
    stmt.BindUint(2, key.owner);
    stmt.BindBlob(3, key.chunk.bytes);
    stmt.BindInt(4, key.shard);
    const std::string what =
        absl::StrCat("mark blob ", key.DebugString(), extra ? " extra" : " regular");
    CAIRN_RETURN_IF_ERROR(Annotate(stmt.Run(), what));
    if (sqlite3_changes(impl_->db) == 0) {
      return absl::NotFoundError(absl::StrCat(what, ": not registered"));
    }
    return absl::OkStatus();
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
                         "FROM blobs GROUP BY owner"));
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
    // SQLite orders the stored (signed) integers; owners are unsigned.
    std::sort(out.begin(), out.end(), [](const store::OwnerUsage& a, const store::OwnerUsage& b) {
      return a.owner < b.owner;
    });
    return out;
  }

  absl::StatusOr<std::vector<store::BlobRecord>> ListExtras(size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(absl::StrCat("SELECT ", kColumns,
                                    " FROM blobs WHERE extra <> 0 "
                                    "ORDER BY stored_ns, owner, chunk_id, shard LIMIT ?")));
    stmt.BindInt(1, LimitParam(limit));
    return Annotate(ReadRecords(stmt), "list extra blobs");
  }

  absl::StatusOr<std::vector<store::BlobRecord>> ListOwner(PeerId owner,
                                                           const std::optional<BlobKey>& after,
                                                           size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    std::string sql =
        !after ? absl::StrCat("SELECT ", kColumns,
                              " FROM blobs WHERE owner = ? ORDER BY chunk_id, shard LIMIT ?")
               : absl::StrCat("SELECT ", kColumns,
                              " FROM blobs WHERE owner = ? AND (chunk_id, shard) > (?, ?) "
                              "ORDER BY chunk_id, shard LIMIT ?");
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(sql));
    stmt.BindUint(1, owner);
    int limit_index = 2;
    if (after) {
      stmt.BindBlob(2, after->chunk.bytes);
      stmt.BindInt(3, after->shard);
      limit_index = 4;
    }
    stmt.BindInt(limit_index, LimitParam(limit));
    return Annotate(ReadRecords(stmt), absl::StrCat("list blobs of owner ", owner));
  }

  absl::Status ForEach(const std::function<absl::Status(const store::BlobRecord&)>& fn) override {
    std::optional<BlobKey> after;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<store::BlobRecord> page, List(after, kForEachPage));
      for (const store::BlobRecord& record : page) CAIRN_RETURN_IF_ERROR(fn(record));
      if (page.size() < static_cast<size_t>(kForEachPage)) return absl::OkStatus();
      after = page.back().key;
    }
  }

  absl::StatusOr<std::vector<store::BlobRecord>> List(const std::optional<BlobKey>& after,
                                                      size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    // Keyset pagination on the primary key (owner, chunk_id, shard): each page starts after the
    // last key of the previous one, so rows added or removed meanwhile never derail a walk.
    std::lock_guard<std::mutex> lock(impl_->mu);
    std::string sql = !after
                          ? absl::StrCat("SELECT ", kColumns,
                                         " FROM blobs ORDER BY owner, chunk_id, shard LIMIT ?")
                          : absl::StrCat("SELECT ", kColumns,
                                         " FROM blobs WHERE (owner, chunk_id, shard) > (?, ?, ?) "
                                         "ORDER BY owner, chunk_id, shard LIMIT ?");
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(sql));
    int limit_index = 1;
    if (after) {
      // Bound exactly as Add stores them, so SQL compares like with like.
      stmt.BindUint(1, after->owner);
      stmt.BindBlob(2, after->chunk.bytes);
      stmt.BindInt(3, after->shard);
      limit_index = 4;
    }
    stmt.BindInt(limit_index, LimitParam(limit));
    return ReadRecords(stmt);
  }

 private:
  Database::Impl* impl_;
  int64_t last_stored_ns_ = 0;  // guarded by impl_->mu
};

}  // namespace

std::unique_ptr<store::BlobRegistry> NewSqliteBlobRegistry(Database* db) {
  return std::make_unique<SqliteBlobRegistry>(db);
}

}  // namespace cairn::index
