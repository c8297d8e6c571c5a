#include "cairn/index/sqlite_moved_outbox.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/env/clock.h"
#include "cairn/index/database_impl.h"

namespace cairn::index {
namespace {

class SqliteMovedOutbox : public store::MovedOutbox {
 public:
  explicit SqliteMovedOutbox(Database* db) : impl_(db->impl()) {}

  absl::Status Add(const store::MovedBlob& move) override {
    int64_t now_ns = env::RealClock::Default()->NowNanos();
    std::lock_guard<std::mutex> lock(impl_->mu);
    now_ns = std::max(now_ns, last_queued_ns_ + 1);
    last_queued_ns_ = now_ns;
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("INSERT OR REPLACE INTO moved_outbox "
                       "(owner, chunk_id, shard, to_peer, queued_ns) VALUES (?, ?, ?, ?, ?)"));
    stmt.BindUint(1, move.key.owner);
    stmt.BindBlob(2, move.key.chunk.bytes);
    stmt.BindInt(3, move.key.shard);
    stmt.BindUint(4, move.to);
    stmt.BindInt(5, now_ns);
    return Annotate(stmt.Run(), absl::StrCat("queue BlobMoved notice for ", move.key.DebugString(),
                                             " (to peer ", move.to, ")"));
  }

  absl::StatusOr<std::vector<PeerId>> Owners() override {
    std::vector<PeerId> out;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                             impl_->Prepare("SELECT DISTINCT owner FROM moved_outbox"));
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back(stmt.ColumnUint(0));
      }
    }
    std::sort(out.begin(), out.end());  // SQLite would order the stored (signed) integers
    return out;
  }

  absl::StatusOr<std::vector<store::MovedBlob>> List(PeerId owner, size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list limit must be at least 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("SELECT chunk_id, shard, to_peer FROM moved_outbox WHERE owner = ? "
                       "ORDER BY queued_ns, chunk_id, shard LIMIT ?"));
    stmt.BindUint(1, owner);
    stmt.BindInt(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    std::vector<store::MovedBlob> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ByteSpan chunk = stmt.ColumnBlob(0);
      auto id = ChunkId::FromBytes(chunk);
      if (!id.ok()) {
        return absl::DataLossError(
            absl::StrCat("moved outbox: corrupt chunk id (", chunk.size(), " bytes)"));
      }
      store::MovedBlob move;
      move.key.owner = owner;
      move.key.chunk = *id;
      move.key.shard = static_cast<uint32_t>(stmt.ColumnInt(1));
      move.to = stmt.ColumnUint(2);
      out.push_back(move);
    }
    return out;
  }

  absl::Status Ack(const std::vector<store::MovedBlob>& delivered) override {
    if (delivered.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(impl_));
    for (const store::MovedBlob& move : delivered) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("DELETE FROM moved_outbox "
                         "WHERE owner = ? AND chunk_id = ? AND shard = ? AND to_peer = ?"));
      stmt.BindUint(1, move.key.owner);
      stmt.BindBlob(2, move.key.chunk.bytes);
      stmt.BindInt(3, move.key.shard);
      stmt.BindUint(4, move.to);
      CAIRN_RETURN_IF_ERROR(Annotate(
          stmt.Run(), absl::StrCat("acknowledge BlobMoved notice for ", move.key.DebugString())));
    }
    return tx.Commit();
  }

  absl::StatusOr<uint64_t> Count() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("SELECT count(*) FROM moved_outbox"));
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("moved outbox: count query returned no row");
    return stmt.ColumnUint(0);
  }

 private:
  Database::Impl* impl_;
  int64_t last_queued_ns_ = 0;  // guarded by impl_->mu
};

}  // namespace

std::unique_ptr<store::MovedOutbox> NewSqliteMovedOutbox(Database* db) {
  return std::make_unique<SqliteMovedOutbox>(db);
}

}  // namespace cairn::index
