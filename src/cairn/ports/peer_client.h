// The peer port (docs/architecture.md "Modules"). PeerClient: calls to another peer's peer service
// (docs/protocol.md), in domain types. gRPC types stay inside net/, which implements this port
// (net/peer_client.h); engine tests use in-memory peers. Every call has a deadline and all calls
// are idempotent.
//
// Status codes: UNAVAILABLE peer unreachable; DEADLINE_EXCEEDED too slow; RESOURCE_EXHAUSTED
// no space (PutBlob); NOT_FOUND no such blob (GetBlob); DATA_LOSS checksum mismatch;
// INVALID_ARGUMENT malformed request; UNAUTHENTICATED one side is not a cluster member (other
// cluster key, clocks more than 5 minutes apart); ALREADY_EXISTS this peer's id belongs to
// another node (the callee pinned it; only ever taken from an authenticated answer).
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/cluster/membership.h"
#include "cairn/ports/blob_store.h"

namespace cairn::ports {

// Largest number of keys in one HasBlobs, DeleteBlobs or BlobMoved request, and in one
// ListBlobs page (peer.proto).
constexpr size_t kMaxKeysPerCall = 10000;

// One page of ListBlobs.
struct BlobListPage {
  std::vector<BlobRecord> blobs;  // key, size, checksum, extra, kind; in key order
  bool more = false;              // true: ask again with `after` = the last key of this page
};

// One blob of a PutBlobs batch. `blob` must stay valid until the call returns.
struct BlobPut {
  BlobKey key;
  ByteSpan blob;
  PutOptions options;
};

// Bytes of blobs in one PutBlobs request / one GetBlobs response message, at most, unless the
// batch is a single blob (a blob may be larger; net/limits.h bounds the message).
constexpr size_t kMaxBatchBytes = 16u << 20;
// Blobs in one PutBlobs or GetBlobs request, at most.
constexpr size_t kMaxBlobsPerBatch = 4096;

struct PingReply {
  cluster::PeerInfo self;                // the callee
  std::vector<cluster::PeerInfo> known;  // peers the callee knows (excluding itself)
  // The callee's clock minus the caller's, in ms, NTP-style: the callee's time in its answer
  // minus the midpoint of the call's send and receive times on the caller's wall clock (error at
  // most half the round trip). nullopt when the callee does not send its time (an older cairn).
  std::optional<int64_t> clock_offset_ms;
};

class PeerClient {
 public:
  virtual ~PeerClient() = default;
  // Tells the callee who we are and whom we know; learns the same back.
  virtual absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                         const std::vector<cluster::PeerInfo>& known) = 0;
  // Sends a blob with its XXH3-128 checksum (computed here). options.extra: keep it as an
  // extra copy (ports/blob_store.h PutOptions).
  virtual absl::StatusOr<PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                             const PutOptions& options) = 0;
  absl::StatusOr<PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob) {
    return PutBlob(key, blob, PutOptions{});
  }
  // Fetches a blob and verifies the checksum the callee sent (DATA_LOSS on mismatch).
  virtual absl::StatusOr<Bytes> GetBlob(const BlobKey& key) = 0;

  // PutBlob / GetBlob whose answers come back as futures, so that one thread can have several
  // calls in flight without a thread per call (a chunk's copies and shards go out at once,
  // docs/architecture.md "Data path"). `blob` must stay valid until the future is ready. The
  // defaults run the call on the calling thread and return a ready future; BatchingPeerClient
  // queues the call into its next batch and returns at once.
  virtual std::future<absl::StatusOr<PutOutcome>> StartPutBlob(const BlobKey& key, ByteSpan blob,
                                                               const PutOptions& options) {
    std::promise<absl::StatusOr<PutOutcome>> done;
    done.set_value(PutBlob(key, blob, options));
    return done.get_future();
  }
  virtual std::future<absl::StatusOr<Bytes>> StartGetBlob(const BlobKey& key) {
    std::promise<absl::StatusOr<Bytes>> done;
    done.set_value(GetBlob(key));
    return done.get_future();
  }

  // Batched transfers (docs/protocol.md "Batches"). The outer status is the call's (UNAVAILABLE,
  // DEADLINE_EXCEEDED, UNAUTHENTICATED, INVALID_ARGUMENT for a malformed or oversized batch);
  // when it is OK, one answer per item in the order of `puts`/`keys`, each what PutBlob/GetBlob
  // would have answered for it. Idempotent like the single calls. The defaults loop over the
  // single calls (fakes); the gRPC client sends one request (PutBlobs: at most
  // kMaxBlobsPerBatch blobs and kMaxBatchBytes bytes; GetBlobs: at most kMaxBlobsPerBatch keys,
  // answers streamed).
  virtual absl::StatusOr<std::vector<absl::StatusOr<PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) {
    std::vector<absl::StatusOr<PutOutcome>> out;
    out.reserve(puts.size());
    for (const BlobPut& p : puts) out.push_back(PutBlob(p.key, p.blob, p.options));
    return out;
  }
  virtual absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> GetBlobs(
      std::span<const BlobKey> keys) {
    std::vector<absl::StatusOr<Bytes>> out;
    out.reserve(keys.size());
    for (const BlobKey& k : keys) out.push_back(GetBlob(k));
    return out;
  }
  // GetBlobs, answer by answer as they arrive, so that a caller need not hold them all: calls
  // `on_blob(i, answer)` for keys[i], in order, on the calling thread, before it returns. When
  // the returned status is not OK, a prefix keys[0..n) was answered and the rest was not (the
  // gRPC client streams; RetryingPeerClient then asks again for the rest only). The default
  // runs GetBlobs and hands its answers out.
  using BlobSink = std::function<void(size_t index, absl::StatusOr<Bytes> answer)>;
  virtual absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) {
    auto all = GetBlobs(keys);
    if (!all.ok()) return all.status();
    for (size_t i = 0; i < all->size() && i < keys.size(); ++i) on_blob(i, std::move((*all)[i]));
    return absl::OkStatus();
  }
  // For each key, whether the callee holds it intact. Same length and order as `keys`.
  virtual absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) = 0;
  // Asks the callee to drop these blobs of ours (every key's owner must be the caller:
  // PERMISSION_DENIED otherwise, nothing deleted). Keys not held are fine (idempotent).
  // Returns how many were held and are now deleted. At most kMaxKeysPerCall keys.
  virtual absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) = 0;
  // Lists the blobs the callee holds for `owner` (must be the caller: PERMISSION_DENIED
  // otherwise), after `after`, at most `limit` (1..kMaxKeysPerCall) per page.
  virtual absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                                 size_t limit) = 0;
  // Tells the callee (the owner of every key: INVALID_ARGUMENT otherwise) that the caller
  // handed these blobs to other peers. At most kMaxKeysPerCall.
  virtual absl::Status BlobMoved(std::span<const MovedBlob> moves) = 0;
};

}  // namespace cairn::ports
