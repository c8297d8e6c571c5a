// Storing one chunk on peers and fetching it back: the primitives every engine (backup,
// restore, later check and repair) is built on. Two redundancy schemes (docs/operations.md
// "Choosing copies or k+m"):
//
//  - N copies: walk the placement order (docs/architecture.md "Placement") over live peers,
//    skipping peers that already hold the chunk, look full, or fail, until N peers hold it.
//  - Erasure coding k+m: the chunk is sealed once and split into k+m shards
//    (format::SealShards); shard i goes to the i-th peer of the placement order (host spread
//    puts distinct hosts first), a failed or full peer is replaced by the next unused one
//    (one on a host holding no shard of the chunk first), and when there are fewer than k+m
//    usable peers the remaining shards are put on the least loaded peers that already hold one
//    (below target, but more shards still survive more losses). Small chunks
//    (sealed payload < format::kMinErasurePayload) get m+1 copies instead.
//
// Fetch: every recorded holder first (alive, then suspect, then the others; within each, peers
// that have not failed lately before those that have, then placement order: OrderHolders), then
// (copies) the recorded extra copies, then the placement order over the other live peers (and,
// for shards, a HasBlobs census), so blobs are found without the index. Copies are tried one
// after another; shards are fetched in parallel, k at a time (data shards first: no decoding), a
// failed fetch replaced by another holder or shard, and opened from the first k that arrive
// intact (checksum at the peer); when those do not authenticate (a corrupt shard that still
// passed the checksum), every other shard is fetched and other k-subsets are tried. Holders that
// could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED) are asked again after a backoff while
// EngineContext::fetch_retry.budget lasts, so that a holder that just restarted is read once
// gRPC has reconnected to it (docs/architecture.md "Holders and retries").
//
// Thread-safety: stateless functions over a thread-safe context.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/codec/erasure.h"
#include "cairn/engine/context.h"
#include "cairn/format/blob.h"

namespace cairn::engine {

// How a new chunk is to be stored: N copies, or k+m shards (small chunks: m+1 copies).
struct Redundancy {
  uint32_t copies = 2;
  std::optional<codec::ErasureScheme> ec;
  // Of the copies (or of the k+m shards), how many go to peers of another site than ctx.site,
  // when such peers are alive (docs/operations.md "Sites and off-site copies").
  uint32_t offsite = 0;

  // Copies wanted for a chunk stored as copies under this redundancy: N, or m+1 (the same
  // number of peer losses survived as k+m).
  uint32_t CopiesForCopiesChunk() const { return ec ? static_cast<uint32_t>(ec->m) + 1 : copies; }
};

struct StoreOutcome {
  std::vector<PeerId> holders;             // peers holding a copy or a shard, ascending
  std::vector<ports::ShardHolder> shards;  // erasure coding: (shard, peer) placements
  uint64_t sent_bytes = 0;                 // blob bytes sent by this call
  uint32_t new_copies = 0;                 // blobs newly stored by this call
  bool at_target = false;  // ports::ChunkRecord::AtTarget afterwards, and the off-site target met
};

// Distinct peers among `holders` whose site (as `peers` lists them) differs from `home_site`;
// peers not listed count as the home site.
uint32_t OffsiteHolders(const std::vector<StoragePeer>& peers, const std::string& home_site,
                        const std::vector<PeerId>& holders);

// Places `sealed` on peers until `copies` distinct peers hold it (counting `existing_holders`),
// `offsite` of them on another site when alive peers of another site can take it (which may
// add copies beyond `copies` to a chunk that lacks its off-site copy), and records the holders
// and both targets in the catalog. Returns the outcome also when fewer than `copies`
// peers could take it (the caller counts it below target); UNAVAILABLE, with every peer's
// error, when no peer holds it at all.
absl::StatusOr<StoreOutcome> StoreChunk(const EngineContext& ctx, BlobKind kind,
                                        const format::SealedChunk& sealed, uint32_t copies,
                                        const std::vector<PeerId>& existing_holders,
                                        uint32_t offsite = 0);

// Places the shards of `sealed` that `existing` does not already hold (shard i on the i-th
// placement target, see the file comment) and records every placement in the catalog (scheme
// k+m, target k+m; the first missing shards go to peers of another site until `offsite` distinct
// peers of another site hold one, when such peers are alive). Returns the outcome also when below
// target; UNAVAILABLE when fewer than k shards are held afterwards (the chunk could not be
// rebuilt).
absl::StatusOr<StoreOutcome> StoreShards(const EngineContext& ctx, BlobKind kind,
                                         const format::SealedShards& sealed,
                                         const std::vector<ports::ShardHolder>& existing,
                                         uint32_t offsite = 0);

// Seals and stores chunk `id` (`plaintext`, whose HMAC it is) as backup does:
//  - unknown chunk (`known` empty): under `redundancy` (small erasure chunks as m+1 copies);
//  - known chunk: topped up within the scheme it was first stored with: copies up to
//    redundancy.CopiesForCopiesChunk(), shards up to k+m (missing shards are rebuilt from k
//    fetched shards so that they belong to the stored seal; when fewer than k can be read the
//    chunk is sealed and stored anew).
absl::StatusOr<StoreOutcome> PutChunk(const EngineContext& ctx, BlobKind kind, const ChunkId& id,
                                      ByteSpan plaintext, const Redundancy& redundancy,
                                      const std::optional<ports::ChunkRecord>& known);

// A new chunk's copies on their way (backup's pipeline, docs/architecture.md "Data path"):
// sealed, and sent to the first `copies` peers of its placement order, answers pending.
struct CopiesInFlight {
  BlobKind kind = BlobKind::kData;
  format::SealedChunk sealed;
  uint32_t copies = 0;
  uint32_t offsite = 0;       // Redundancy::offsite
  std::vector<PeerId> peers;  // the peers sent to, in placement order
  std::vector<std::future<absl::StatusOr<ports::PutOutcome>>> answers;  // one per peer
};

// The first half of PutChunk for an unknown chunk stored as copies, without waiting: seals it
// and starts its puts (PeerClient::StartPutBlob), so that the caller can seal the next chunk
// while these travel. Under erasure coding: nullopt when `for_shards` is null (use PutChunk);
// else a chunk whose compressed body is under format::kMinErasurePayload is started as m+1
// copies, and a larger one returns nullopt with its compressed form in `*for_shards` (store it
// with StoreNewShards). Errors: sealing's (INVALID_ARGUMENT for an oversized chunk).
absl::StatusOr<std::optional<CopiesInFlight>> StartNewCopies(
    const EngineContext& ctx, BlobKind kind, const ChunkId& id, ByteSpan plaintext,
    const Redundancy& redundancy, format::PreparedChunk* for_shards = nullptr);

// Seals `prepared` (an unknown chunk) into k+m shards of `scheme`, places them and records them,
// waiting for the peers: PutChunk's erasure-coding path.
absl::StatusOr<StoreOutcome> StoreNewShards(const EngineContext& ctx, BlobKind kind,
                                            const format::PreparedChunk& prepared,
                                            const codec::ErasureScheme& scheme,
                                            uint32_t offsite = 0);

// The second half: waits for the answers; when fewer than `copies` peers took the chunk, goes on
// down the placement order as StoreChunk does; records the holders in the catalog. Returns what
// StoreChunk returns.
absl::StatusOr<StoreOutcome> FinishCopies(const EngineContext& ctx, CopiesInFlight& in_flight);

// True when a known chunk needs no upload for `redundancy`: copies chunks hold at least
// CopiesForCopiesChunk() copies and were recorded with at least redundancy.offsite off-site
// copies wanted; erasure-coded chunks are at their own target.
bool SatisfiesRedundancy(const ports::ChunkRecord& known, const Redundancy& redundancy);

// Fetches, verifies and decrypts chunk `id`, stored as copies or as shards (the catalog says
// which; without a record the blobs found say it). Blocks up to about
// ctx.fetch_retry.budget (plus the last calls' own deadlines) while holders cannot be reached.
// UNAVAILABLE when no peer could serve it (or fewer than k shards); DATA_LOSS when what was
// found was corrupt. The message names each peer tried; logged at error level, each holder that
// failed before another was tried at warn level.
absl::StatusOr<Bytes> FetchChunk(const EngineContext& ctx, const ChunkId& id);

// A chunk fetch started without waiting (restore's read-ahead, docs/architecture.md "Restore
// data flow"): for a chunk recorded as copies, its first holder's blob is asked for at once
// (PeerClient::StartGetBlob; BatchingPeerClient sends the requests of many chunks to one peer in
// GetBlobs batches), so that one thread can keep many chunks in flight.
struct ChunkFetchInFlight {
  ChunkId id;
  std::optional<ports::ChunkRecord> record;  // as the catalog had it; nullopt: unknown chunk
  PeerId peer = 0;                           // the holder asked, when `answer` is set
  std::optional<std::future<absl::StatusOr<Bytes>>> answer;
  bool noted = false;  // the answer was already reported to the failure memory
};

// Starts fetching chunk `id`, whose catalog record is `record` (nullopt when it has none). Never
// blocks on a peer. Erasure-coded and unknown chunks start nothing: FinishFetchChunk fetches
// them as FetchChunk does.
ChunkFetchInFlight StartFetchChunk(const EngineContext& ctx, const ChunkId& id,
                                   std::optional<ports::ChunkRecord> record);

// Waits for a started fetch and returns the chunk's plaintext, verified and decrypted. When the
// first holder's answer is missing, fails or does not open, the chunk is fetched as FetchChunk
// does (every holder, retries, the placement order), so the result and status codes are
// FetchChunk's.
absl::StatusOr<Bytes> FinishFetchChunk(const EngineContext& ctx, ChunkFetchInFlight& fetch);

// The order in which a fetch asks the recorded `holders` of chunk `id`: alive, then suspect, then
// dead or unknown peers (as `peers` lists them); within each, peers not failing in
// ctx.peer_failures first, then the placement order over all of `peers`.
std::vector<PeerId> OrderHolders(const EngineContext& ctx, const ChunkId& id,
                                 const std::vector<StoragePeer>& peers,
                                 std::vector<PeerId> holders);

// Fetches enough shards of erasure-coded chunk `id` to open it and returns the plaintext and
// all k+m shard blobs rebuilt (format::OpenChunkShards with rebuild). Used to top up and
// repair shards. Status codes as FetchChunk.
absl::StatusOr<format::OpenedShards> FetchShards(const EngineContext& ctx, const ChunkId& id,
                                                 const ports::ChunkRecord& record);

}  // namespace cairn::engine
