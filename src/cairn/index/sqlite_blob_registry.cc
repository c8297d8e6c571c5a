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

constexpr char kColumns[] = "owner, chunk_id, shard, size, checksum";

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
  return record;
}

class SqliteBlobRegistry : public store::BlobRegistry {
 public:
  explicit SqliteBlobRegistry(Database* db) : impl_(db->impl()) {}

  absl::Status Add(const store::BlobRecord& record) override {
    int64_t now_ns = env::RealClock::Default()->NowNanos();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->Prepare("INSERT OR REPLACE INTO blobs "
                                          "(owner, chunk_id, shard, size, checksum, stored_ns) "
                                          "VALUES (?, ?, ?, ?, ?, ?)"));
    stmt.BindUint(1, record.key.owner);
    stmt.BindBlob(2, record.key.chunk.bytes);
    stmt.BindInt(3, record.key.shard);
    stmt.BindUint(4, record.size);
    stmt.BindBlob(5, record.checksum);
    stmt.BindInt(6, now_ns);
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
    CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->Prepare("SELECT coalesce(sum(size), 0), count(*) FROM blobs"));
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("blob registry: totals query returned no row");
    store::StoreStats stats;
    stats.used = stmt.ColumnUint(0);
    stats.blobs = stmt.ColumnUint(1);
    return stats;
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
    std::vector<store::BlobRecord> page;
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
    stmt.BindInt(limit_index, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      CAIRN_ASSIGN_OR_RETURN(store::BlobRecord record, ReadRecord(stmt));
      page.push_back(std::move(record));
    }
    return page;
  }

 private:
  Database::Impl* impl_;
};

}  // namespace

std::unique_ptr<store::BlobRegistry> NewSqliteBlobRegistry(Database* db) {
  return std::make_unique<SqliteBlobRegistry>(db);
}

}  // namespace cairn::index
