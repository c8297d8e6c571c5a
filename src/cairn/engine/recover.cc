#include "cairn/engine/recover.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/format/blob.h"
#include "cairn/format/tree.h"
#include "cairn/ports/peer_client.h"

namespace cairn::engine {
namespace {

// At most this many problems are listed one by one in the report; the rest are counted.
constexpr size_t kMaxListedErrors = 20;

// What the peers told us about one chunk.
struct Found {
  uint8_t kind = 0;        // BlobKind value; 0 until a peer or the header says
  uint64_t blob_size = 0;  // bytes of one of its blobs
  std::map<uint32_t, std::vector<PeerId>> regular;  // shard -> peers holding it
  std::vector<PeerId> extras;                       // extra copies (shard 0)
  bool header_read = false;
  bool erasure = false;  // from the header
  uint8_t ec_k = 0, ec_m = 0;
  uint32_t wanted = 0;      // copies the snapshots referencing it asked for (copies chunks)
  uint64_t plain_size = 0;  // 0 = unknown
  bool unusable = false;    // its header could not be read from any holder

  uint32_t MaxShard() const { return regular.empty() ? 0 : regular.rbegin()->first; }
  bool LooksErasure() const { return header_read ? erasure : MaxShard() > 0; }
};

using FoundMap = std::map<ChunkId, Found>;

// Runs fn(i) for i in [0, n) on up to `threads` threads (the caller's included).
template <typename Fn>
void ParallelFor(size_t n, int threads, Fn fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  size_t extra = std::min<size_t>(n, static_cast<size_t>(std::max(threads, 1))) - (n > 0 ? 1 : 0);
  for (size_t t = 0; t < extra; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

bool Cancelled(const std::atomic<bool>* cancel) { return cancel != nullptr && cancel->load(); }

class Recovery {
 public:
  Recovery(const EngineContext& ctx, const RecoverOptions& options, RecoverProgress* progress,
           const std::atomic<bool>* cancel)
      : ctx_(ctx),
        options_(options),
        progress_(progress ? progress : &own_progress_),
        cancel_(cancel) {}

  absl::StatusOr<RecoverReport> Run() {
    CAIRN_RETURN_IF_ERROR(ListAll());
    CAIRN_RETURN_IF_ERROR(ReadHeaders());
    CAIRN_RETURN_IF_ERROR(OpenSnapshots());
    CAIRN_RETURN_IF_ERROR(WalkTrees());
    CAIRN_RETURN_IF_ERROR(Record());
    return std::move(report_);
  }

 private:
  void Error(std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (report_.errors.size() < kMaxListedErrors) {
      report_.errors.push_back(std::move(message));
    } else {
      ++errors_not_listed_;
    }
  }

  absl::Status CheckCancel() const {
    if (Cancelled(cancel_)) return absl::CancelledError("recovery cancelled");
    return absl::OkStatus();
  }

  // 1. ListBlobs on every live peer.
  absl::Status ListAll() {
    std::vector<StoragePeer> peers = ctx_.peers->Peers();
    std::vector<PeerId> alive;
    for (const StoragePeer& p : peers) {
      if (p.id == ctx_.owner) continue;
      if (p.alive) {
        alive.push_back(p.id);
      } else {
        report_.peers_not_listed.push_back(p.id);
      }
    }
    if (alive.empty()) {
      return absl::UnavailableError(absl::StrCat(
          "no live peer to recover from (known peers: ", peers.size(),
          "): start the other peers, or check the seed address and the recovery key's cluster"));
    }
    struct Listing {
      absl::Status status;
      std::vector<ports::BlobRecord> blobs;
    };
    std::vector<Listing> listings(alive.size());
    const size_t page_size = std::clamp<size_t>(options_.list_page, 1, ports::kMaxKeysPerCall);
    ParallelFor(alive.size(), options_.threads, [&](size_t i) {
      Listing& l = listings[i];
      std::shared_ptr<ports::PeerClient> client = ctx_.peers->Client(alive[i]);
      if (!client) {
        l.status = absl::UnavailableError("no address known");
        return;
      }
      std::optional<BlobKey> after;
      while (!Cancelled(cancel_)) {
        absl::StatusOr<ports::BlobListPage> page = client->ListBlobs(ctx_.owner, after, page_size);
        if (!page.ok()) {
          l.status = page.status();
          return;
        }
        for (ports::BlobRecord& r : page->blobs) l.blobs.push_back(std::move(r));
        progress_->blobs_listed += page->blobs.size();
        if (!page->more || page->blobs.empty()) break;
        after = l.blobs.back().key;
      }
      progress_->peers_listed++;
    });
    CAIRN_RETURN_IF_ERROR(CheckCancel());
    std::vector<std::string> failures;
    for (size_t i = 0; i < alive.size(); ++i) {
      const Listing& l = listings[i];
      if (!l.status.ok()) {
        // What it listed before failing is still true: keep it.
        failures.push_back(absl::StrCat("peer ", alive[i], ": ", l.status.message()));
        report_.peers_not_listed.push_back(alive[i]);
        if (absl::IsUnavailable(l.status) || absl::IsDeadlineExceeded(l.status)) {
          ctx_.peers->ReportFailure(alive[i]);
        }
      } else {
        report_.peers_listed.push_back(alive[i]);
      }
      for (const ports::BlobRecord& r : l.blobs) {
        if (r.key.owner != ctx_.owner) continue;
        ++report_.blobs;
        Found& f = found_[r.key.chunk];
        if (f.kind == 0) f.kind = r.kind;
        f.blob_size = std::max(f.blob_size, r.size);
        if (r.extra && r.key.shard == 0) {
          f.extras.push_back(alive[i]);
        } else {
          f.regular[r.key.shard].push_back(alive[i]);
        }
      }
    }
    for (const std::string& f : failures) Error("could not list the blobs on " + f);
    std::sort(report_.peers_listed.begin(), report_.peers_listed.end());
    std::sort(report_.peers_not_listed.begin(), report_.peers_not_listed.end());
    if (report_.peers_listed.empty() && found_.empty()) {
      return absl::UnavailableError(absl::StrCat("no live peer could list this peer's blobs: ",
                                                 absl::StrJoin(failures, "; ")));
    }
    if (found_.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "the live peers (", absl::StrJoin(report_.peers_listed, ", "), ") hold no blob of peer ",
          ctx_.owner,
          ": nothing to recover (is this the right peer id, and are the peers that hold its "
          "backups running?)"));
    }
    return absl::OkStatus();
  }

  // 2. Envelope headers where the listing does not say enough.
  absl::Status ReadHeaders() {
    std::vector<std::pair<const ChunkId, Found>*> need;
    for (auto& entry : found_) {
      Found& f = entry.second;
      if (f.kind == 0 || f.MaxShard() > 0) need.push_back(&entry);
    }
    ParallelFor(need.size(), options_.threads, [&](size_t i) {
      if (Cancelled(cancel_)) return;
      const ChunkId& id = need[i]->first;
      Found& f = need[i]->second;
      // Regular holders first, then extra copies (shard 0).
      std::vector<std::pair<PeerId, uint32_t>> candidates;
      for (const auto& [shard, peers] : f.regular) {
        for (PeerId peer : peers) candidates.emplace_back(peer, shard);
      }
      for (PeerId peer : f.extras) candidates.emplace_back(peer, 0);
      std::string last_error = "no holder";
      for (const auto& [peer, shard] : candidates) {
        absl::StatusOr<format::BlobHeader> header =
            ReadHeader(peer, BlobKey{ctx_.owner, id, shard});
        if (!header.ok()) {
          last_error = absl::StrCat("peer ", peer, ": ", header.status().message());
          continue;
        }
        std::lock_guard<std::mutex> lock(mu_);
        f.header_read = true;
        f.kind = static_cast<uint8_t>(header->kind);
        f.erasure = header->scheme == format::Scheme::kErasure;
        f.ec_k = f.erasure ? header->k : 0;
        f.ec_m = f.erasure ? header->m : 0;
        ++report_.headers_read;
        progress_->headers_read++;
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        f.unusable = true;
      }
      Error(absl::StrCat("chunk ", id.ShortHex(), ": cannot read the header of any of its blobs (",
                         last_error, "); not recorded"));
    });
    return CheckCancel();
  }

  absl::StatusOr<format::BlobHeader> ReadHeader(PeerId peer, const BlobKey& key) {
    std::shared_ptr<ports::PeerClient> client = ctx_.peers->Client(peer);
    if (!client) return absl::UnavailableError("no address known");
    CAIRN_ASSIGN_OR_RETURN(Bytes blob, client->GetBlob(key));
    CAIRN_ASSIGN_OR_RETURN(format::BlobHeader header, format::ParseBlobHeader(blob));
    if (header.owner != key.owner || header.chunk != key.chunk || header.shard != key.shard) {
      return absl::DataLossError("the blob's envelope names another key");
    }
    return header;
  }

  // The catalog record of a chunk as found (placements, scheme); nullopt when unusable.
  std::optional<ports::ChunkRecord> RecordOf(const ChunkId& id, const Found& f) const {
    if (f.unusable || f.kind < 1 || f.kind > 3) return std::nullopt;
    ports::ChunkRecord r;
    r.id = id;
    r.kind = static_cast<BlobKind>(f.kind);
    r.plain_size = f.plain_size;
    r.blob_size = f.blob_size;
    if (f.LooksErasure() && f.ec_k > 0) {
      r.ec_k = f.ec_k;
      r.ec_m = f.ec_m;
      r.target = static_cast<uint32_t>(f.ec_k) + f.ec_m;
      for (const auto& [shard, peers] : f.regular) {
        if (shard >= r.target) continue;  // not a shard of this scheme
        for (PeerId p : peers) r.shards.push_back({shard, p});
      }
      std::sort(r.shards.begin(), r.shards.end());
      r.shards.erase(std::unique(r.shards.begin(), r.shards.end()), r.shards.end());
      if (r.shards.empty()) return std::nullopt;
      return r;
    }
    auto it = f.regular.find(0);
    if (it != f.regular.end()) r.holders = it->second;
    std::sort(r.holders.begin(), r.holders.end());
    r.holders.erase(std::unique(r.holders.begin(), r.holders.end()), r.holders.end());
    r.extras = f.extras;
    std::sort(r.extras.begin(), r.extras.end());
    r.extras.erase(std::unique(r.extras.begin(), r.extras.end()), r.extras.end());
    if (r.holders.empty() && r.extras.empty()) return std::nullopt;
    r.target = std::max<uint32_t>({static_cast<uint32_t>(r.holders.size()), f.wanted, 1});
    return r;
  }

  // 3. Fetch and open every snapshot blob, through a staging catalog that knows where the
  // metadata chunks (snapshots and trees) are, so that nothing is written to ctx_.catalog
  // before the key has proven right.
  absl::Status OpenSnapshots() {
    staging_ = ports::NewMemCatalog();
    staging_ctx_ = ctx_;
    staging_ctx_.catalog = staging_.get();
    staging_ctx_.gc_lock = nullptr;
    std::vector<ChunkId> snapshot_ids;
    for (const auto& [id, f] : found_) {
      if (f.kind != static_cast<uint8_t>(BlobKind::kSnapshot) &&
          f.kind != static_cast<uint8_t>(BlobKind::kTree)) {
        continue;
      }
      std::optional<ports::ChunkRecord> r = RecordOf(id, f);
      if (!r) continue;
      if (!r->erasure()) {  // any copy will do for reading
        r->holders.insert(r->holders.end(), r->extras.begin(), r->extras.end());
        std::sort(r->holders.begin(), r->holders.end());
        r->holders.erase(std::unique(r->holders.begin(), r->holders.end()), r->holders.end());
      }
      r->extras.clear();
      CAIRN_RETURN_IF_ERROR(staging_->AddChunk(*r));
      if (f.kind == static_cast<uint8_t>(BlobKind::kSnapshot)) snapshot_ids.push_back(id);
    }
    report_.snapshot_chunks = snapshot_ids.size();
    if (snapshot_ids.empty()) {
      return absl::NotFoundError(
          absl::StrCat("the live peers hold ", report_.blobs, " blobs of peer ", ctx_.owner,
                       " but no readable snapshot blob: nothing to recover"));
    }
    std::vector<absl::StatusOr<format::Snapshot>> opened(snapshot_ids.size(),
                                                         absl::UnknownError("not fetched"));
    ParallelFor(snapshot_ids.size(), options_.threads, [&](size_t i) {
      if (Cancelled(cancel_)) return;
      absl::StatusOr<Bytes> plain = FetchChunk(staging_ctx_, snapshot_ids[i]);
      if (!plain.ok()) {
        opened[i] = plain.status();
        return;
      }
      absl::StatusOr<format::Snapshot> snap = format::DecodeSnapshot(*plain);
      if (snap.ok() && snap->owner != ctx_.owner) {
        snap = absl::DataLossError(absl::StrCat("snapshot of owner ", snap->owner));
      }
      if (snap.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        found_[snapshot_ids[i]].plain_size = plain->size();
        progress_->snapshots_opened++;
      }
      opened[i] = std::move(snap);
    });
    CAIRN_RETURN_IF_ERROR(CheckCancel());
    size_t data_loss = 0;
    absl::Status first_error;
    for (size_t i = 0; i < snapshot_ids.size(); ++i) {
      if (opened[i].ok()) {
        report_.snapshots.push_back(ports::SnapshotRecord{snapshot_ids[i], *opened[i]});
        continue;
      }
      ++report_.snapshots_unreadable;
      if (absl::IsDataLoss(opened[i].status())) ++data_loss;
      if (first_error.ok() && !absl::IsDataLoss(opened[i].status())) {
        first_error = opened[i].status();
      }
    }
    if (report_.snapshots.empty()) {
      if (data_loss == snapshot_ids.size()) {
        return absl::FailedPreconditionError(
            absl::StrCat("this recovery key does not decrypt any snapshot: wrong key? (",
                         snapshot_ids.size(), " snapshot blob(s) of peer ", ctx_.owner,
                         " found, every one failed authentication; nothing was recorded)"));
      }
      return Annotate(first_error,
                      absl::StrCat("no snapshot of peer ", ctx_.owner, " could be fetched (",
                                   snapshot_ids.size(), " found)"));
    }
    for (size_t i = 0; i < snapshot_ids.size(); ++i) {
      if (!opened[i].ok()) {
        Error(absl::StrCat("snapshot ", snapshot_ids[i].ShortHex(),
                           " could not be opened: ", opened[i].status().message()));
      }
    }
    std::sort(report_.snapshots.begin(), report_.snapshots.end(),
              [](const ports::SnapshotRecord& a, const ports::SnapshotRecord& b) {
                return std::tie(a.snapshot.time_ns, a.id) < std::tie(b.snapshot.time_ns, b.id);
              });
    return absl::OkStatus();
  }

  // Raises what a chunk's snapshots ask for; counts references to chunks nobody holds.
  // Caller holds mu_.
  void WantLocked(const ChunkId& id, uint32_t copies) {
    auto it = found_.find(id);
    if (it == found_.end() || it->second.unusable) {
      if (missing_.insert(id).second) ++report_.missing_chunks;
      return;
    }
    it->second.wanted = std::max(it->second.wanted, copies);
  }

  // 4. Walk every recovered snapshot's trees, level by level, several trees at a time.
  absl::Status WalkTrees() {
    std::set<ChunkId> seen;
    // Tree -> the largest copies it was walked with. Everything below a tree is the same
    // whichever snapshot reaches it (content addressing), so a tree is walked again only for a
    // snapshot that asks for more copies.
    std::map<ChunkId, uint32_t> walked;
    for (const ports::SnapshotRecord& s : report_.snapshots) {
      Redundancy redundancy;
      redundancy.copies = std::max<uint32_t>(s.snapshot.copies, 1);
      if (s.snapshot.ec_k > 0) {
        redundancy.ec = codec::ErasureScheme{static_cast<int>(s.snapshot.ec_k),
                                             static_cast<int>(s.snapshot.ec_m)};
      }
      const uint32_t copies = redundancy.CopiesForCopiesChunk();
      {
        std::lock_guard<std::mutex> lock(mu_);
        WantLocked(s.id, copies);
      }
      std::vector<ChunkId> level;
      if (auto [it, added] = walked.emplace(s.snapshot.root, copies);
          added || it->second < copies) {
        it->second = copies;
        level.push_back(s.snapshot.root);
      }
      while (!level.empty()) {
        CAIRN_RETURN_IF_ERROR(CheckCancel());
        std::vector<std::vector<ChunkId>> children(level.size());
        ParallelFor(level.size(), options_.threads, [&](size_t i) {
          if (Cancelled(cancel_)) return;
          const ChunkId& id = level[i];
          {
            std::lock_guard<std::mutex> lock(mu_);
            WantLocked(id, copies);
            if (missing_.count(id)) {
              Error(absl::StrCat("snapshot ", s.id.ShortHex(), ": tree ", id.ShortHex(),
                                 " is held by no live peer: what is below it cannot be restored"));
              return;
            }
          }
          absl::StatusOr<format::Tree> tree = LoadStagedTree(id, seen);
          if (!tree.ok()) {
            Error(absl::StrCat("snapshot ", s.id.ShortHex(), ": tree ", id.ShortHex(), ": ",
                               tree.status().message()));
            return;
          }
          std::lock_guard<std::mutex> lock(mu_);
          for (const format::TreeEntry& e : tree->entries) {
            for (const ChunkId& c : e.chunks) WantLocked(c, copies);
            if (e.chunks.size() == 1) {
              auto it = found_.find(e.chunks[0]);
              if (it != found_.end()) it->second.plain_size = e.size;
            }
            if (e.subtree) children[i].push_back(*e.subtree);
          }
        });
        std::vector<ChunkId> next;
        for (auto& c : children) {
          for (const ChunkId& id : c) {
            auto [it, added] = walked.emplace(id, copies);
            if (added || it->second < copies) {
              it->second = copies;
              next.push_back(id);
            }
          }
        }
        level = std::move(next);
      }
    }
    report_.trees = seen.size();
    return CheckCancel();
  }

  // A tree from the catalog's cache, else from the peers through the staging catalog (then
  // cached in ctx_.catalog: the key has proven right). `seen` collects distinct trees.
  absl::StatusOr<format::Tree> LoadStagedTree(const ChunkId& id, std::set<ChunkId>& seen) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<Bytes> cached, ctx_.catalog->GetTree(id));
    Bytes encoded;
    if (cached) {
      encoded = std::move(*cached);
    } else {
      CAIRN_ASSIGN_OR_RETURN(encoded, FetchChunk(staging_ctx_, id));
    }
    CAIRN_ASSIGN_OR_RETURN(format::Tree tree, format::DecodeTree(encoded));
    if (!cached) CAIRN_RETURN_IF_ERROR(ctx_.catalog->PutTree(id, encoded));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = found_.find(id);
    if (it != found_.end()) it->second.plain_size = encoded.size();
    if (seen.insert(id).second) progress_->trees_read++;
    return tree;
  }

  // 5. Chunk records with their placements, then the snapshots.
  absl::Status Record() {
    std::shared_lock<std::shared_mutex> gc_lock;
    if (ctx_.gc_lock) gc_lock = std::shared_lock(*ctx_.gc_lock);
    for (const auto& [id, f] : found_) {
      CAIRN_RETURN_IF_ERROR(CheckCancel());
      std::optional<ports::ChunkRecord> r = RecordOf(id, f);
      if (!r) continue;
      CAIRN_RETURN_IF_ERROR(Annotate(ctx_.catalog->AddChunk(*r), "recover"));
      if (!r->erasure()) {
        for (PeerId p : r->extras) {
          absl::Status st = ctx_.catalog->AddExtraPlacement(id, p);
          // A chunk the catalog already knew as erasure-coded keeps its scheme.
          if (!st.ok() && !absl::IsFailedPrecondition(st)) return Annotate(st, "recover");
        }
      }
      ++report_.chunks;
      progress_->chunks_recorded++;
      switch (r->kind) {
        case BlobKind::kData:
          ++report_.data_chunks;
          if (r->plain_size == 0) ++report_.plain_sizes_unknown;
          break;
        case BlobKind::kTree:
          ++report_.tree_chunks;
          break;
        case BlobKind::kSnapshot:
          break;
      }
      if (r->erasure()) ++report_.erasure_chunks;
      CAIRN_ASSIGN_OR_RETURN(std::optional<ports::ChunkRecord> stored, ctx_.catalog->FindChunk(id));
      if (stored && !stored->AtTarget()) ++report_.chunks_below_target;
    }
    for (const ports::SnapshotRecord& s : report_.snapshots) {
      CAIRN_RETURN_IF_ERROR(Annotate(ctx_.catalog->AddSnapshot(s), "recover"));
    }
    if (errors_not_listed_ > 0) {
      report_.errors.push_back(absl::StrCat("... and ", errors_not_listed_, " more problems"));
    }
    return absl::OkStatus();
  }

  const EngineContext& ctx_;
  const RecoverOptions& options_;
  RecoverProgress own_progress_;
  RecoverProgress* progress_;
  const std::atomic<bool>* cancel_;

  std::mutex mu_;  // guards found_ (after listing), missing_, report_ while workers run
  FoundMap found_;
  std::set<ChunkId> missing_;
  RecoverReport report_;
  size_t errors_not_listed_ = 0;
  std::unique_ptr<ports::Catalog> staging_;
  EngineContext staging_ctx_;
};

}  // namespace

absl::StatusOr<RecoverReport> RecoverIndex(const EngineContext& ctx, const RecoverOptions& options,
                                           RecoverProgress* progress,
                                           const std::atomic<bool>* cancel) {
  if (ctx.catalog == nullptr || ctx.peers == nullptr) {
    return absl::FailedPreconditionError("recover: no catalog or no peers");
  }
  return Recovery(ctx, options, progress, cancel).Run();
}

}  // namespace cairn::engine
