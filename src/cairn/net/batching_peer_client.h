// BatchingPeerClient: a PeerClient that coalesces concurrent single PutBlob and GetBlob calls
// from many threads into PutBlobs / GetBlobs calls on an inner client (docs/protocol.md
// "Batches") — a group commit on the client side, so that many small blobs cost few round
// trips and, at the storage peer, few syncs.
//
// Callers enqueue and wait. `max_batches_in_flight` sender threads (owned by this object) each
// take everything pending, up to the batch limits (blobs and bytes), send it as one call and
// answer each waiter from its own item's result; what arrives meanwhile waits for the next free
// sender. No timer: a lone call goes out at once, and batches grow by themselves as calls arrive
// faster than the peer answers. Puts and gets go in separate batches, oldest first.
//
// Bytes in flight: the blob bytes of puts admitted and not yet answered are bounded by
// `max_bytes_in_flight` (per BatchingPeerClient, i.e. per peer). A put waits before it is
// admitted while the window is full; a blob larger than the whole window is admitted when
// nothing else is in flight. Gets are bounded by the batch limits and the number of batches.
//
// PutBlobs / GetBlobs / GetBlobsStreamed called directly go straight to the inner client from the
// calling thread, split into batches within the limits (their puts count in the window too);
// an outer error of one batch ends the call with that error. Every other call passes through.
//
// Errors: each waiter gets what the inner client answered for its item, or the outer status of
// its batch (e.g. UNAVAILABLE after the inner client's retries). FAILED_PRECONDITION for a call
// made while the client is being destroyed.
//
// Thread-safety: thread-safe. The destructor stops taking calls, lets the senders send
// everything already queued (every waiter and future is answered; the inner client's deadlines
// bound how long that takes) and joins them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "cairn/net/peer_client.h"

namespace cairn::net {

struct BatchingOptions {
  // Batches sent at the same time (sender threads); at least 1.
  size_t max_batches_in_flight = 2;
  // Blob bytes of puts admitted and not yet answered, at most (see the file comment).
  size_t max_bytes_in_flight = size_t{32} << 20;
  // Per batch: blobs (1..kMaxBlobsPerBatch) and blob bytes (at most kMaxBatchBytes; a single
  // larger blob goes alone). Values outside those ranges are clamped.
  size_t max_batch_blobs = kMaxBlobsPerBatch;
  size_t max_batch_bytes = kMaxBatchBytes;
};

// What the client is doing now and has done (for tests and metrics).
struct BatchingCounters {
  size_t queued_puts = 0;  // admitted, not yet taken by a sender
  size_t queued_gets = 0;
  size_t batches_in_flight = 0;  // being sent by a sender
  size_t bytes_in_flight = 0;    // blob bytes of admitted, unanswered puts
  size_t peak_bytes_in_flight = 0;
  uint64_t put_batches = 0;  // PutBlobs calls made on the inner client by the senders
  uint64_t get_batches = 0;
};

class BatchingPeerClient final : public PeerClient {
 public:
  // `inner` is usually a gRPC client with its retries (NewGrpcPeerClient); it must support
  // concurrent calls (every PeerClient does).
  explicit BatchingPeerClient(std::shared_ptr<PeerClient> inner, BatchingOptions options = {});
  ~BatchingPeerClient() override;
  BatchingPeerClient(const BatchingPeerClient&) = delete;
  BatchingPeerClient& operator=(const BatchingPeerClient&) = delete;

  // Queued and sent in a PutBlobs batch; blocks until answered. `blob` is not copied: the call
  // returns only once the batch that carries it is answered.
  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const ports::PutOptions& options) override;
  // Queued and sent in a GetBlobs batch; blocks until answered.
  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override;

  // PutBlob without a thread per request. The client takes `blob` (move it in to avoid a copy)
  // and keeps it until the answer, so the caller need not keep anything alive. Blocks only while
  // the bytes-in-flight window is full (back-pressure: memory stays bounded however fast the
  // caller produces); the future is ready once the batch is answered (at the latest when this
  // client is destroyed).
  std::future<absl::StatusOr<ports::PutOutcome>> PutBlobAsync(
      const BlobKey& key, Bytes blob, const ports::PutOptions& options = {});
  // Queued like PutBlob, answered through the future; `blob` is not copied and must stay valid
  // until the future is ready. Blocks only while the window is full.
  std::future<absl::StatusOr<ports::PutOutcome>> StartPutBlob(
      const BlobKey& key, ByteSpan blob, const ports::PutOptions& options) override;
  std::future<absl::StatusOr<Bytes>> StartGetBlob(const BlobKey& key) override {
    return GetBlobAsync(key);
  }
  // GetBlob without a thread per request; never blocks. The future holds the blob once
  // answered (the caller bounds how many it leaves outstanding).
  std::future<absl::StatusOr<Bytes>> GetBlobAsync(const BlobKey& key);

  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override;
  absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> GetBlobs(
      std::span<const BlobKey> keys) override;
  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override;

  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                 const std::vector<cluster::PeerInfo>& known) override;
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override;
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override;
  absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                         size_t limit) override;
  absl::Status BlobMoved(std::span<const MovedBlob> moves) override;

  BatchingCounters Counters() const;

 private:
  struct PendingPut {
    BlobKey key;
    ByteSpan blob;  // into `owned` (async) or the caller's bytes (sync)
    Bytes owned;
    ports::PutOptions options;
    std::promise<absl::StatusOr<ports::PutOutcome>> answer;
    uint64_t order = 0;  // arrival, to serve puts and gets oldest first
  };
  struct PendingGet {
    BlobKey key;
    std::promise<absl::StatusOr<Bytes>> answer;
    uint64_t order = 0;
  };

  // Admits `bytes` into the window (waits while it is full). FAILED_PRECONDITION once stopping.
  absl::Status Admit(size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  std::future<absl::StatusOr<ports::PutOutcome>> EnqueuePut(std::unique_ptr<PendingPut> put)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A sender's wait condition: something is queued, or the client is stopping.
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SenderLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // A batch is done: its put bytes leave the window and it is no longer in flight.
  void FinishBatch(size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  void SendPuts(std::vector<std::unique_ptr<PendingPut>> batch) ABSL_LOCKS_EXCLUDED(mu_);
  void SendGets(std::vector<std::unique_ptr<PendingGet>> batch) ABSL_LOCKS_EXCLUDED(mu_);
  // Splits `puts` into batches within the limits: [begin, end) index pairs.
  std::vector<std::pair<size_t, size_t>> PutBatches(std::span<const BlobPut> puts) const;

  const std::shared_ptr<PeerClient> inner_;
  const BatchingOptions options_;

  // std::mutex rather than absl::Mutex: ThreadSanitizer sees its lock and unlock (Debian's Abseil
  // is not instrumented; docs/operations.md "Testing with ThreadSanitizer").
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // senders wait on it for HasWork()
  std::condition_variable room_cv_;  // Admit waits on it for room in the byte window
  std::deque<std::unique_ptr<PendingPut>> puts_ ABSL_GUARDED_BY(mu_);
  std::deque<std::unique_ptr<PendingGet>> gets_ ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t bytes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t peak_bytes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t batches_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t put_batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t get_batches_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<std::thread> senders_;  // started in the constructor, joined in the destructor
};

}  // namespace cairn::net
