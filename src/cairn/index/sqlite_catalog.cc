// Catalog on the SQLite tables of migrations/0001_initial.sql, 0002_erasure_coding.sql and
// 0003_lifecycle.sql (extra_placements, pending_deletions).
//
// Every method holds Database::Impl::mu for its whole run; methods that write more than one
// row do so in one transaction (Transaction: BEGIN IMMEDIATE ... COMMIT), so another process
// sharing the file sees all of a change or none of it.
#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/env/clock.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database_impl.h"

namespace cairn::index {
namespace {

// Replica holders (and extra copies) are the placements with shard 0 (ChunkRecord::holders).
constexpr int64_t kReplicaShard = 0;

// The columns ReadChunkRow reads, in order.
constexpr char kChunkColumns[] = "id, kind, plain_size, blob_size, target, ec_k, ec_m, offsite";

absl::StatusOr<ChunkId> ReadChunkId(ByteSpan bytes, const char* table) {
  auto id = ChunkId::FromBytes(bytes);
  if (!id.ok()) {
    return absl::DataLossError(
        absl::StrCat("index: corrupt chunk id (", bytes.size(), " bytes) in table ", table));
  }
  return *id;
}

// A chunks row laid out as kChunkColumns (placements not read).
absl::StatusOr<ChunkRecord> ReadChunkRow(Statement& stmt) {
  ChunkRecord record;
  CAIRN_ASSIGN_OR_RETURN(record.id, ReadChunkId(stmt.ColumnBlob(0), "chunks"));
  record.kind = static_cast<BlobKind>(static_cast<uint8_t>(stmt.ColumnInt(1)));
  record.plain_size = stmt.ColumnUint(2);
  record.blob_size = stmt.ColumnUint(3);
  record.target = static_cast<uint32_t>(stmt.ColumnInt(4));
  record.ec_k = static_cast<uint8_t>(stmt.ColumnInt(5));
  record.ec_m = static_cast<uint8_t>(stmt.ColumnInt(6));
  record.offsite = static_cast<uint8_t>(std::clamp<int64_t>(stmt.ColumnInt(7), 0, 255));
  return record;
}

// queued_ns for a new batch of pending deletions: wall-clock time, but strictly increasing
// within the process (shared by every SqliteCatalog), so that batches queued one after the
// other list in that order even when the clock is coarse or steps back. Rows of one batch
// share a time and list by key.
int64_t NextQueuedNs() {
  static std::atomic<int64_t> last{0};
  int64_t now = env::RealClock::Default()->NowNanos();
  int64_t prev = last.load();
  int64_t next;
  do {
    next = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

int64_t ClampLimit(size_t limit) {
  return static_cast<int64_t>(
      std::min<size_t>(limit, static_cast<size_t>(std::numeric_limits<int64_t>::max())));
}

// One read transaction around several statements, so that SQLite takes its locks (fcntl calls
// on the database and the WAL index) once, not once per statement. Errors of BEGIN leave the
// statements to run in autocommit mode as before; COMMIT of a read transaction cannot lose
// anything. Caller holds impl->mu and is not inside another transaction.
class ReadTransaction {
 public:
  explicit ReadTransaction(Database::Impl* impl) : impl_(impl), open_(impl->Exec("BEGIN").ok()) {}
  ~ReadTransaction() {
    if (open_) (void)impl_->Exec("COMMIT");
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Database::Impl* impl_;
  bool open_;
};

// What SqliteCatalog::PlaceRegularLocked must clean up after: false when that table has no rows.
struct PlaceContext {
  bool extras = true;
  bool deletions = true;
};

class SqliteCatalog : public Catalog {
 public:
  explicit SqliteCatalog(Database* db) : impl_(db->impl()) {}

  absl::StatusOr<std::optional<ChunkRecord>> FindChunk(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ReadTransaction read(impl_);
    return FindChunkLocked(id);
  }

  absl::StatusOr<std::vector<std::optional<ChunkRecord>>> FindChunks(
      std::span<const ChunkId> ids) override {
    std::vector<std::optional<ChunkRecord>> found;
    found.reserve(ids.size());
    std::lock_guard<std::mutex> lock(impl_->mu);
    ReadTransaction read(impl_);
    for (const ChunkId& id : ids) {
      CAIRN_ASSIGN_OR_RETURN(std::optional<ChunkRecord> r, FindChunkLocked(id));
      found.push_back(std::move(r));
    }
    return found;
  }

  absl::StatusOr<std::optional<ChunkRecord>> FindChunkLocked(const ChunkId& id) {
    ChunkRecord record;
    {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare(absl::StrCat("SELECT ", kChunkColumns, " FROM chunks WHERE id = ?")));
      stmt.BindBlob(1, id.bytes);
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return std::optional<ChunkRecord>();
      CAIRN_ASSIGN_OR_RETURN(record, ReadChunkRow(stmt));
    }
    CAIRN_RETURN_IF_ERROR(ReadPlacementsLocked(&record));
    return std::optional<ChunkRecord>(std::move(record));
  }

  absl::Status AddChunk(const ChunkRecord& record) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    CAIRN_RETURN_IF_ERROR(AddChunkLocked(record));
    return Annotate(txn.Commit(), absl::StrCat("add chunk ", record.id.ShortHex()));
  }

  absl::Status AddChunks(std::span<const ChunkRecord> records) override {
    if (records.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    // A new placement drops the peer's extra copy and cancels a queued deletion of the blob;
    // both tables are empty in most backups, and two statements per placement were most of
    // what recording a chunk cost: look once per transaction (nothing here adds rows to them).
    PlaceContext place;
    CAIRN_ASSIGN_OR_RETURN(place.extras, HasRowsLocked("extra_placements"));
    CAIRN_ASSIGN_OR_RETURN(place.deletions, HasRowsLocked("pending_deletions"));
    for (const ChunkRecord& record : records) {
      CAIRN_RETURN_IF_ERROR(AddChunkLocked(record, place));
    }
    return Annotate(txn.Commit(), absl::StrCat("add ", records.size(), " chunks"));
  }

  absl::StatusOr<bool> HasRowsLocked(const char* table) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt, impl_->Prepare(absl::StrCat("SELECT EXISTS (SELECT 1 FROM ", table, ")")));
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row && stmt.ColumnInt(0) != 0;
  }

  absl::Status AddChunkLocked(const ChunkRecord& record, const PlaceContext& place = {}) {
    {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("INSERT INTO chunks (id, kind, plain_size, blob_size, target, ec_k, "
                         "ec_m, offsite) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET target = max(target, excluded.target), "
                         "offsite = max(offsite, excluded.offsite), "
                         "plain_size = CASE plain_size WHEN 0 THEN excluded.plain_size "
                         "ELSE plain_size END"));
      stmt.BindBlob(1, record.id.bytes);
      stmt.BindInt(2, static_cast<int64_t>(record.kind));
      stmt.BindUint(3, record.plain_size);
      stmt.BindUint(4, record.blob_size);
      stmt.BindInt(5, record.target);
      stmt.BindInt(6, record.ec_k);
      stmt.BindInt(7, record.ec_m);
      stmt.BindInt(8, record.offsite);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    for (PeerId holder : record.holders) {
      CAIRN_RETURN_IF_ERROR(PlaceRegularLocked(record.id, kReplicaShard, holder, place));
    }
    for (const ShardHolder& s : record.shards) {
      CAIRN_RETURN_IF_ERROR(PlaceRegularLocked(record.id, s.shard, s.peer, place));
    }
    return absl::OkStatus();
  }

  absl::Status AddExtraPlacement(const ChunkId& id, PeerId peer) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    CAIRN_ASSIGN_OR_RETURN(std::optional<int64_t> ec_k, EcKLocked(id));
    if (!ec_k.has_value()) {
      return absl::NotFoundError(absl::StrCat("add extra copy: unknown chunk ", id.ShortHex()));
    }
    if (*ec_k != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("add extra copy: chunk ", id.ShortHex(), " is erasure-coded"));
    }
    CAIRN_ASSIGN_OR_RETURN(bool regular, HasRegularLocked(id, kReplicaShard, peer));
    if (!regular) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare(
              "INSERT OR IGNORE INTO extra_placements (chunk_id, peer_id) VALUES (?, ?)"));
      stmt.BindBlob(1, id.bytes);
      stmt.BindUint(2, peer);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    // Also when `peer` holds a regular copy: a queued deletion of a blob we count on is wrong.
    CAIRN_RETURN_IF_ERROR(CancelDeletionLocked(peer, id, kReplicaShard));
    return Annotate(txn.Commit(), absl::StrCat("add extra copy of chunk ", id.ShortHex()));
  }

  absl::Status RemoveExtraPlacements(const ChunkId& id, const std::vector<PeerId>& peers) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    for (PeerId peer : peers) CAIRN_RETURN_IF_ERROR(DropExtraLocked(id, peer));
    return Annotate(txn.Commit(), absl::StrCat("remove extra copies of chunk ", id.ShortHex()));
  }

  absl::StatusOr<std::vector<ChunkRecord>> ListChunks(const std::optional<ChunkId>& after,
                                                      size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list chunks: limit must be >= 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    ReadTransaction read(impl_);
    std::vector<ChunkRecord> out;
    {
      // An empty blob sorts before every chunk id (SQLite compares blobs with memcmp, then
      // by length), which is what "from the first" needs.
      CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                             impl_->Prepare(absl::StrCat("SELECT ", kChunkColumns,
                                                         " FROM chunks WHERE id > ? "
                                                         "ORDER BY id LIMIT ?")));
      if (after.has_value()) {
        stmt.BindBlob(1, after->bytes);
      } else {
        stmt.BindBlob(1, ByteSpan());
      }
      stmt.BindInt(2, ClampLimit(limit));
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        CAIRN_ASSIGN_OR_RETURN(ChunkRecord record, ReadChunkRow(stmt));
        out.push_back(std::move(record));
      }
    }
    for (ChunkRecord& record : out) CAIRN_RETURN_IF_ERROR(ReadPlacementsLocked(&record));
    return out;
  }

  absl::StatusOr<uint64_t> DeleteChunks(const std::vector<ChunkId>& ids) override {
    const int64_t queued_ns = NextQueuedNs();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    uint64_t queued = 0;
    for (const ChunkId& id : ids) {
      // Queue a deletion of every placed blob, regular and extra (unknown ids have none).
      {
        CAIRN_ASSIGN_OR_RETURN(
            Statement stmt,
            impl_->Prepare(
                "INSERT OR IGNORE INTO pending_deletions "
                "(peer_id, chunk_id, shard, queued_ns) "
                "SELECT peer_id, chunk_id, shard, ? FROM placements WHERE chunk_id = ?"));
        stmt.BindInt(1, queued_ns);
        stmt.BindBlob(2, id.bytes);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
        queued += static_cast<uint64_t>(sqlite3_changes(impl_->db));
      }
      {
        CAIRN_ASSIGN_OR_RETURN(
            Statement stmt, impl_->Prepare("INSERT OR IGNORE INTO pending_deletions "
                                           "(peer_id, chunk_id, shard, queued_ns) "
                                           "SELECT peer_id, chunk_id, 0, ? FROM extra_placements "
                                           "WHERE chunk_id = ?"));
        stmt.BindInt(1, queued_ns);
        stmt.BindBlob(2, id.bytes);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
        queued += static_cast<uint64_t>(sqlite3_changes(impl_->db));
      }
      // Explicit deletes (rather than relying on ON DELETE CASCADE alone) keep this correct
      // even on a connection without foreign_keys.
      for (const char* sql : {"DELETE FROM placements WHERE chunk_id = ?",
                              "DELETE FROM extra_placements WHERE chunk_id = ?"}) {
        CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(sql));
        stmt.BindBlob(1, id.bytes);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
      }
      bool known;
      {
        CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("DELETE FROM chunks WHERE id = ?"));
        stmt.BindBlob(1, id.bytes);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
        known = sqlite3_changes(impl_->db) > 0;
      }
      if (known) {
        CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("DELETE FROM trees WHERE id = ?"));
        stmt.BindBlob(1, id.bytes);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
      }
    }
    CAIRN_RETURN_IF_ERROR(Annotate(txn.Commit(), absl::StrCat("delete ", ids.size(), " chunks")));
    return queued;
  }

  absl::StatusOr<uint64_t> SetChunkTargets(std::span<const ChunkTarget> targets) override {
    for (const ChunkTarget& t : targets) {
      if (t.target == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("set chunk targets: target 0 for chunk ", t.id.ShortHex()));
      }
    }
    if (targets.empty()) return 0;
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    uint64_t changed = 0;
    for (const ChunkTarget& t : targets) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("UPDATE chunks SET target = ? WHERE id = ? AND ec_k = 0 AND target != ?"));
      stmt.BindInt(1, t.target);
      stmt.BindBlob(2, t.id.bytes);
      stmt.BindInt(3, t.target);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
      changed += static_cast<uint64_t>(sqlite3_changes(impl_->db));
    }
    CAIRN_RETURN_IF_ERROR(
        Annotate(txn.Commit(), absl::StrCat("set the targets of ", targets.size(), " chunks")));
    return changed;
  }

  absl::StatusOr<std::vector<PeerId>> PeersWithPendingDeletions() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                           impl_->Prepare("SELECT DISTINCT peer_id FROM pending_deletions"));
    std::vector<PeerId> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(stmt.ColumnUint(0));
    }
    // Peer ids are unsigned; SQLite orders them as signed, so sort here.
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::StatusOr<std::vector<ChunkShard>> ListPendingDeletions(PeerId peer, size_t limit) override {
    if (limit == 0) return absl::InvalidArgumentError("list pending deletions: limit must be >= 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("SELECT chunk_id, shard FROM pending_deletions WHERE peer_id = ? "
                       "ORDER BY queued_ns, chunk_id, shard LIMIT ?"));
    stmt.BindUint(1, peer);
    stmt.BindInt(2, ClampLimit(limit));
    std::vector<ChunkShard> out;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ChunkShard blob;
      CAIRN_ASSIGN_OR_RETURN(blob.chunk, ReadChunkId(stmt.ColumnBlob(0), "pending_deletions"));
      blob.shard = static_cast<uint32_t>(stmt.ColumnInt(1));
      out.push_back(blob);
    }
    return out;
  }

  absl::Status AckDeletions(PeerId peer, const std::vector<ChunkShard>& done) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    for (const ChunkShard& blob : done) {
      CAIRN_RETURN_IF_ERROR(CancelDeletionLocked(peer, blob.chunk, blob.shard));
    }
    return Annotate(txn.Commit(), absl::StrCat("acknowledge deletions on peer ", peer));
  }

  absl::Status QueueDeletions(PeerId peer, const std::vector<ChunkShard>& blobs) override {
    const int64_t queued_ns = NextQueuedNs();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    for (const ChunkShard& blob : blobs) {
      CAIRN_RETURN_IF_ERROR(QueueDeletionLocked(peer, blob.chunk, blob.shard, queued_ns));
    }
    return Annotate(txn.Commit(), absl::StrCat("queue deletions on peer ", peer));
  }

  absl::StatusOr<MoveOutcome> MovePlacement(const ChunkId& id, uint32_t shard, PeerId from,
                                            PeerId to) override {
    const int64_t queued_ns = NextQueuedNs();
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    const std::string what =
        absl::StrCat("move blob ", id.ShortHex(), "/", shard, " from peer ", from, " to ", to);
    std::optional<int64_t> ec_k;
    std::optional<int64_t> ec_m;
    {
      CAIRN_ASSIGN_OR_RETURN(Statement stmt,
                             impl_->Prepare("SELECT ec_k, ec_m FROM chunks WHERE id = ?"));
      stmt.BindBlob(1, id.bytes);
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (row) {
        ec_k = stmt.ColumnInt(0);
        ec_m = stmt.ColumnInt(1);
      }
    }
    if (!ec_k.has_value()) {
      CAIRN_RETURN_IF_ERROR(QueueDeletionLocked(to, id, shard, queued_ns));
      CAIRN_RETURN_IF_ERROR(Annotate(txn.Commit(), what));
      return MoveOutcome::kUnknownChunk;
    }
    const bool copies = *ec_k == 0;
    const int64_t shard_count = copies ? 1 : *ec_k + *ec_m;
    if (static_cast<int64_t>(shard) >= shard_count) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": chunk has ", shard_count, " shard indices"));
    }
    CAIRN_ASSIGN_OR_RETURN(bool from_regular, HasRegularLocked(id, shard, from));
    bool from_extra = false;
    bool to_regular = false;
    bool to_extra = false;
    if (copies) {
      CAIRN_ASSIGN_OR_RETURN(from_extra, HasExtraLocked(id, from));
      CAIRN_ASSIGN_OR_RETURN(to_extra, HasExtraLocked(id, to));
    }
    CAIRN_ASSIGN_OR_RETURN(to_regular, HasRegularLocked(id, shard, to));
    if (from_regular) {
      CAIRN_RETURN_IF_ERROR(DropRegularLocked(id, shard, from));
    }
    if (from_extra) {
      CAIRN_RETURN_IF_ERROR(DropExtraLocked(id, from));
    }
    // The moved blob keeps its sort; a notice about a blob we had not recorded on `from`
    // records a regular one on `to` unless `to` already holds it (repeated notice).
    if (from_regular || (!from_extra && !to_regular && !to_extra)) {
      CAIRN_RETURN_IF_ERROR(PlaceRegularLocked(id, shard, to));  // cancels the deletion too
    } else {
      if (from_extra && !to_regular) {
        CAIRN_ASSIGN_OR_RETURN(
            Statement stmt,
            impl_->Prepare(
                "INSERT OR IGNORE INTO extra_placements (chunk_id, peer_id) VALUES (?, ?)"));
        stmt.BindBlob(1, id.bytes);
        stmt.BindUint(2, to);
        CAIRN_RETURN_IF_ERROR(stmt.Run());
      }
      CAIRN_RETURN_IF_ERROR(CancelDeletionLocked(to, id, shard));
    }
    CAIRN_RETURN_IF_ERROR(Annotate(txn.Commit(), what));
    return MoveOutcome::kMoved;
  }

  absl::Status RemovePlacements(const ChunkId& id, const std::vector<PeerId>& holders,
                                const std::vector<ShardHolder>& shards) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(impl_));
    for (PeerId holder : holders)
      CAIRN_RETURN_IF_ERROR(DropRegularLocked(id, kReplicaShard, holder));
    for (const ShardHolder& s : shards)
      CAIRN_RETURN_IF_ERROR(DropRegularLocked(id, s.shard, s.peer));
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

  absl::StatusOr<bool> RemoveSnapshot(const ChunkId& id) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("DELETE FROM snapshots WHERE id = ?"));
    stmt.BindBlob(1, id.bytes);
    CAIRN_RETURN_IF_ERROR(Annotate(stmt.Run(), absl::StrCat("remove snapshot ", id.ShortHex())));
    return sqlite3_changes(impl_->db) > 0;
  }

  absl::StatusOr<uint64_t> CountWithoutOffsite(std::span<const PeerId> offsite_peers) override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Few peers: their ids go into the statement as an IN list of parameters.
    std::string in;
    for (size_t i = 0; i < offsite_peers.size(); ++i) in += i ? ", ?" : "?";
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            offsite_peers.empty()
                ? std::string("SELECT count(*) FROM chunks WHERE offsite > 0")
                : absl::StrCat("SELECT count(*) FROM chunks c WHERE c.offsite > 0 AND c.offsite > "
                               "(SELECT count(DISTINCT p.peer_id) FROM placements p "
                               "WHERE p.chunk_id = c.id AND p.peer_id IN (",
                               in, "))")));
    for (size_t i = 0; i < offsite_peers.size(); ++i) {
      stmt.BindUint(static_cast<int>(i + 1), offsite_peers[i]);
    }
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return uint64_t{0};
    return stmt.ColumnUint(0);
  }

  absl::StatusOr<CatalogStats> Stats() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // One statement (one consistent read), aggregates only: one pass over chunks, each
    // chunk's placements counted on the placements primary key (chunk_id, shard, peer_id), so
    // no table is loaded into memory. At target: copies when `target` peers hold shard 0;
    // shards when every index is placed on distinct peers (ChunkRecord::AtTarget). Extra
    // copies and queued deletions are counted separately (uncorrelated subqueries, run once).
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            "SELECT count(*), "
            "       coalesce(sum(CASE WHEN ec_k = 0 THEN replicas >= target "
            "                    ELSE shards >= target AND peers >= target END), 0), "
            "       coalesce(sum(plain_size), 0), "
            "       coalesce(sum(blob_size * blobs), 0), "
            "       coalesce(sum(blob_size * max(1, ec_k)), 0), "
            "       (SELECT count(*) FROM extra_placements), "
            "       (SELECT coalesce(sum(c.blob_size), 0) FROM extra_placements e "
            "        JOIN chunks c ON c.id = e.chunk_id), "
            "       (SELECT count(*) FROM pending_deletions) "
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
    stats.one_copy_bytes = stmt.ColumnUint(4);
    stats.extra_blobs = stmt.ColumnUint(5);
    stats.extra_bytes = stmt.ColumnUint(6);
    stats.pending_deletions = stmt.ColumnUint(7);
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
  // Helpers named *Locked run with impl_->mu held (inside the caller's transaction when they
  // write as part of a larger change).

  // Fills `record`'s holders or shards, and extras, from the placement tables.
  absl::Status ReadPlacementsLocked(ChunkRecord* record) {
    if (!record->erasure()) {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT peer_id FROM placements WHERE chunk_id = ? AND shard = ?"));
      stmt.BindBlob(1, record->id.bytes);
      stmt.BindInt(2, kReplicaShard);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        record->holders.push_back(stmt.ColumnUint(0));
      }
      // Peer ids are unsigned; SQLite orders them as signed, so sort here.
      std::sort(record->holders.begin(), record->holders.end());
    } else {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare("SELECT shard, peer_id FROM placements WHERE chunk_id = ?"));
      stmt.BindBlob(1, record->id.bytes);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        record->shards.push_back(
            {static_cast<uint32_t>(stmt.ColumnInt(0)), static_cast<PeerId>(stmt.ColumnUint(1))});
      }
      std::sort(record->shards.begin(), record->shards.end());
    }
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt, impl_->Prepare("SELECT peer_id FROM extra_placements WHERE chunk_id = ?"));
    stmt.BindBlob(1, record->id.bytes);
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      record->extras.push_back(stmt.ColumnUint(0));
    }
    std::sort(record->extras.begin(), record->extras.end());
    return absl::OkStatus();
  }

  // ec_k of chunk `id`; nullopt when unknown.
  absl::StatusOr<std::optional<int64_t>> EcKLocked(const ChunkId& id) {
    CAIRN_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare("SELECT ec_k FROM chunks WHERE id = ?"));
    stmt.BindBlob(1, id.bytes);
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<int64_t>();
    return std::optional<int64_t>(stmt.ColumnInt(0));
  }

  absl::StatusOr<bool> HasRegularLocked(const ChunkId& id, int64_t shard, PeerId peer) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            "SELECT 1 FROM placements WHERE chunk_id = ? AND shard = ? AND peer_id = ?"));
    stmt.BindBlob(1, id.bytes);
    stmt.BindInt(2, shard);
    stmt.BindUint(3, peer);
    return stmt.Step();
  }

  absl::StatusOr<bool> HasExtraLocked(const ChunkId& id, PeerId peer) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("SELECT 1 FROM extra_placements WHERE chunk_id = ? AND peer_id = ?"));
    stmt.BindBlob(1, id.bytes);
    stmt.BindUint(2, peer);
    return stmt.Step();
  }

  // Records a regular placement: replaces an extra copy of the same peer (shard 0) and
  // cancels a queued deletion of the blob.
  absl::Status PlaceRegularLocked(const ChunkId& id, int64_t shard, PeerId peer,
                                  const PlaceContext& place = {}) {
    {
      CAIRN_ASSIGN_OR_RETURN(
          Statement stmt,
          impl_->Prepare(
              "INSERT OR IGNORE INTO placements (chunk_id, peer_id, shard) VALUES (?, ?, ?)"));
      stmt.BindBlob(1, id.bytes);
      stmt.BindUint(2, peer);
      stmt.BindInt(3, shard);
      CAIRN_RETURN_IF_ERROR(stmt.Run());
    }
    if (shard == kReplicaShard && place.extras) CAIRN_RETURN_IF_ERROR(DropExtraLocked(id, peer));
    if (!place.deletions) return absl::OkStatus();
    return CancelDeletionLocked(peer, id, shard);
  }

  absl::Status DropRegularLocked(const ChunkId& id, int64_t shard, PeerId peer) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("DELETE FROM placements WHERE chunk_id = ? AND peer_id = ? AND shard = ?"));
    stmt.BindBlob(1, id.bytes);
    stmt.BindUint(2, peer);
    stmt.BindInt(3, shard);
    return stmt.Run();
  }

  absl::Status DropExtraLocked(const ChunkId& id, PeerId peer) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("DELETE FROM extra_placements WHERE chunk_id = ? AND peer_id = ?"));
    stmt.BindBlob(1, id.bytes);
    stmt.BindUint(2, peer);
    return stmt.Run();
  }

  absl::Status QueueDeletionLocked(PeerId peer, const ChunkId& id, int64_t shard,
                                   int64_t queued_ns) {
    // OR IGNORE: a blob already queued keeps its place in the queue.
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare("INSERT OR IGNORE INTO pending_deletions "
                       "(peer_id, chunk_id, shard, queued_ns) VALUES (?, ?, ?, ?)"));
    stmt.BindUint(1, peer);
    stmt.BindBlob(2, id.bytes);
    stmt.BindInt(3, shard);
    stmt.BindInt(4, queued_ns);
    return stmt.Run();
  }

  absl::Status CancelDeletionLocked(PeerId peer, const ChunkId& id, int64_t shard) {
    CAIRN_ASSIGN_OR_RETURN(
        Statement stmt,
        impl_->Prepare(
            "DELETE FROM pending_deletions WHERE peer_id = ? AND chunk_id = ? AND shard = ?"));
    stmt.BindUint(1, peer);
    stmt.BindBlob(2, id.bytes);
    stmt.BindInt(3, shard);
    return stmt.Run();
  }

  Database::Impl* impl_;
};

}  // namespace

std::unique_ptr<Catalog> NewSqliteCatalog(Database* db) {
  return std::make_unique<SqliteCatalog>(db);
}

}  // namespace cairn::index
