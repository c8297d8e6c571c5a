// Catalog on the SQLite tables of migrations/0001_initial.sql and 0002_erasure_coding.sql.
#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database_impl.h"

namespace cairn::index {
namespace {

// Replica holders are the placements with shard 0 (ChunkRecord::holders).
constexpr int64_t kReplicaShard = 0;

absl::StatusOr<ChunkId> ReadChunkId(ByteSpan bytes, const char* table) {
  auto id = ChunkId::FromBytes(bytes);
  if (!id.ok()) {
    return absl::DataLossError(
        absl::StrCat("index: corrupt chunk id (", bytes.size(), " bytes) in table ", table));
  }
  return *id;
}

class SqliteCatalog : public Catalog {
 public:
  explicit SqliteCatalog(Database* db) : impl_(db->impl()) {}

  absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ChunkRecord record;
    record.id = id;
    {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT kind, plain_size, blob_size, target, ec_k, ec_m FROM chunks "
                         "WHERE id = ?"));
      stmt.BindBlob(1, id.bytes);
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return std::optional<ChunkRecord>();
      record.kind = static_cast<BlobKind>(static_cast<uint8_t>(stmt.ColumnInt(0)));
      record.plain_size = stmt.ColumnUint(1);
      record.blob_size = stmt.ColumnUint(2);
      record.target = static_cast<uint32_t>(stmt.ColumnInt(3));
      record.ec_k = static_cast<uint8_t>(stmt.ColumnInt(4));
      record.ec_m = static_cast<uint8_t>(stmt.ColumnInt(5));
    }
    if (!record.erasure()) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT peer_id FROM placements WHERE chunk_id = ? AND shard = ?"));
      stmt.BindBlob(1, id.bytes);
      stmt.BindInt(2, kReplicaShard);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        record.holders.push_back(stmt.ColumnUint(0));
      }
      // Peer ids are unsigned; SQLite orders them as signed, so sort here.
      std::sort(record.holders.begin(), record.holders.end());
    } else {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT shard, peer_id FROM placements WHERE chunk_id = ?"));
      stmt.BindBlob(1, id.bytes);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        record.shards.push_back(
            {static_cast<uint32_t>(stmt.ColumnInt(0)), static_cast<PeerId>(stmt.ColumnUint(1))});
      }
      std::sort(record.shards.begin(), record.shards.end());
    }
    return std::optional<ChunkRecord>(std::move(record));
  }

  absl::Status AddChunk(const ChunkRecord& record) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("INSERT INTO chunks (id, kind, plain_size, blob_size, target, ec_k, "
                         "ec_m) VALUES (?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET target = max(target, excluded.target)"));
      stmt.BindBlob(1, record.id.bytes);
      stmt.BindInt(2, static_cast<int64_t>(record.kind));
      stmt.BindUint(3, record.plain_size);
      stmt.BindUint(4, record.blob_size);
      stmt.BindInt(5, record.target);
      stmt.BindInt(6, record.ec_k);
      stmt.BindInt(7, record.ec_m);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    auto place = [&](int64_t shard, PeerId peer) -> absl::Status {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare(
              "INSERT OR IGNORE INTO placements (chunk_id, peer_id, shard) VALUES (?, ?, ?)"));
      stmt.BindBlob(1, record.id.bytes);
      stmt.BindUint(2, peer);
      stmt.BindInt(3, shard);
      return stmt.Run();
    };
    for (PeerId holder : record.holders) CAIRN_RETURN_IF_ERROR(place(kReplicaShard, holder));
    for (const ShardHolder& s : record.shards) CAIRN_RETURN_IF_ERROR(place(s.shard, s.peer));
    return Annotate(txn.Commit(), absl::StrCat("add chunk ", record.id.ShortHex()));
  }

  absl::Status RemovePlacements(const ChunkId& id, const std::vector<PeerId>& holders,
                                const std::vector<ShardHolder>& shards) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    auto drop = [&](int64_t shard, PeerId peer) -> absl::Status {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare(
              "DELETE FROM placements WHERE chunk_id = ? AND peer_id = ? AND shard = ?"));
      stmt.BindBlob(1, id.bytes);
      stmt.BindUint(2, peer);
      stmt.BindInt(3, shard);
      return stmt.Run();
    };
    for (PeerId holder : holders) CAIRN_RETURN_IF_ERROR(drop(kReplicaShard, holder));
    for (const ShardHolder& s : shards) CAIRN_RETURN_IF_ERROR(drop(s.shard, s.peer));
    return Annotate(txn.Commit(), absl::StrCat("remove placements of chunk ", id.ShortHex()));
  }

  absl::Status PutTree(const ChunkId& id, ByteSpan encoded) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->Prepare("INSERT OR REPLACE INTO trees (id, data) VALUES (?, ?)"));
    stmt.BindBlob(1, id.bytes);
    stmt.BindBlob(2, encoded);
    return stmt.Run();
  }

  absl::StatusOr<std::optional<Bytes>> GetTree(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("SELECT data FROM trees WHERE id = ?"));
    stmt.BindBlob(1, id.bytes);
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<Bytes>();
    ByteSpan data = stmt.ColumnBlob(0);
    return std::optional<Bytes>(Bytes(data.begin(), data.end()));
  }

  absl::Status AddSnapshot(const SnapshotRecord& record) override {
    Bytes encoded = format::EncodeSnapshot(record.snapshot);
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("INSERT OR IGNORE INTO snapshots (id, time_ns, data) VALUES (?, ?, ?)"));
    stmt.BindBlob(1, record.id.bytes);
    stmt.BindInt(2, record.snapshot.time_ns);
    stmt.BindBlob(3, encoded);
    return Annotate(stmt.Run(), absl::StrCat("add snapshot ", record.id.ShortHex()));
  }

  absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->Prepare("SELECT id, data FROM snapshots ORDER BY time_ns, id"));
    std::vector<SnapshotRecord> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      SnapshotRecord record;
      CAIRN_ASSIGN_OR_RETURN(record.id, ReadChunkId(stmt.ColumnBlob(0), "snapshots"));
      CAIRN_ASSIGN_OR_RETURN(record.snapshot,
                             Annotate(format::DecodeSnapshot(stmt.ColumnBlob(1)),
                                      absl::StrCat("index: snapshot ", record.id.ShortHex())));
      out.push_back(std::move(record));
    }
    return out;
  }

  absl::StatusOr<CatalogStats> Stats() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // One pass over chunks; each chunk's placements are counted on the placements primary key
    // (chunk_id, shard, peer_id), so no table is loaded into memory. At target: copies when
    // `target` peers hold shard 0; shards when every index is placed on distinct peers
    // (ChunkRecord::AtTarget).
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            "SELECT count(*), "
            "       coalesce(sum(CASE WHEN ec_k = 0 THEN replicas >= target "
            "                    ELSE shards >= target AND peers >= target END), 0), "
            "       coalesce(sum(plain_size), 0), "
            "       coalesce(sum(blob_size * blobs), 0) "
            "FROM (SELECT c.target, c.ec_k, c.plain_size, c.blob_size, "
            "             (SELECT count(*) FROM placements p "
            "              WHERE p.chunk_id = c.id AND p.shard = 0) AS replicas, "
            "             (SELECT count(DISTINCT shard) FROM placements p "
            "              WHERE p.chunk_id = c.id) AS shards, "
            "             (SELECT count(DISTINCT peer_id) FROM placements p "
            "              WHERE p.chunk_id = c.id) AS peers, "
            "             (SELECT count(*) FROM placements p WHERE p.chunk_id = c.id) AS blobs "
            "      FROM chunks c)"));
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("index: stats query returned no row");
    CatalogStats stats;
    stats.chunks = stmt.ColumnUint(0);
    stats.chunks_at_target = stmt.ColumnUint(1);
    stats.chunks_below_target = stats.chunks - stats.chunks_at_target;
    stats.plain_bytes = stmt.ColumnUint(2);
    stats.stored_bytes = stmt.ColumnUint(3);
    return stats;
  }

  absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("SELECT value FROM meta WHERE key = ?"));
    stmt.BindText(1, key);
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt.ColumnString(0));
  }

  absl::Status SetMeta(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt, impl_->Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"));
    stmt.BindText(1, key);
    stmt.BindBlob(2, AsBytes(value));
    return stmt.Run();
  }

 private:
  Database::Impl* impl_;
};

}  // namespace

std::unique_ptr<Catalog> NewSqliteCatalog(Database* db) {
  return std::make_unique<SqliteCatalog>(db);
}

}  // namespace cairn::index
