// RetryingPeerClient: wraps a PeerClient and retries calls that failed with UNAVAILABLE or
// DEADLINE_EXCEEDED (all peer calls are idempotent: docs/protocol.md "cairn peer protocol (v1)"),
// up to ClientOptions::max_attempts attempts in total. Before retry number r (0-based) it
// sleeps a uniformly random time in [0, min(max_backoff, initial_backoff * 2^r)]: exponential
// backoff with "full jitter" (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture
// Blog, 2015). Other codes are returned at once. A final error keeps its code and is prefixed
// with "peer <label>: " (when a label is set) and the number of attempts made.
//
// Internal to net/ (exposed for tests; others use NewRetryingPeerClient).
// Thread-safety: thread-safe when the inner client is.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/net/peer_client.h"

namespace cairn::net {

class RetryingPeerClient final : public PeerClient {
 public:
  using SleepFn = std::function<void(std::chrono::milliseconds)>;

  // `label` names the peer in errors (usually its address; may be empty). `sleep` defaults to
  // std::this_thread::sleep_for; tests pass a recorder.
  RetryingPeerClient(std::shared_ptr<PeerClient> inner, const ClientOptions& options,
                     std::string label, SleepFn sleep = nullptr);

  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                 const std::vector<cluster::PeerInfo>& known) override;
  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const ports::PutOptions& options) override;
  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override;
  // The whole batch again on UNAVAILABLE / DEADLINE_EXCEEDED; a blob's own error is returned
  // (prefixed with the label), not retried.
  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override;
  absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> GetBlobs(
      std::span<const BlobKey> keys) override;
  // On UNAVAILABLE / DEADLINE_EXCEEDED asks again for the keys not answered yet only. An attempt
  // that answered some keys made progress and does not count toward max_attempts (a batch too
  // long for one deadline still completes); max_attempts attempts in a row that answer nothing
  // end the call.
  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override;
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override;
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override;
  absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                         size_t limit) override;
  absl::Status BlobMoved(std::span<const MovedBlob> moves) override;

  // The upper bound of the sleep before retry number `retry` (0-based), in milliseconds:
  // min(max_backoff, initial_backoff * 2^retry).
  static std::chrono::milliseconds BackoffCap(const ClientOptions& options, int retry);

  // Whether a status code is worth another attempt (UNAVAILABLE, DEADLINE_EXCEEDED).
  static bool IsRetryable(const absl::Status& status);

 private:
  template <typename T>
  absl::StatusOr<T> Run(const std::function<absl::StatusOr<T>()>& call);
  absl::Status Finish(const absl::Status& status, int attempts) const;
  // `status` prefixed with "peer <label>: " (when there is a label).
  absl::Status Label(const absl::Status& status) const;
  std::chrono::milliseconds Jitter(std::chrono::milliseconds cap);

  std::shared_ptr<PeerClient> inner_;
  ClientOptions options_;
  std::string label_;
  SleepFn sleep_;
};

}  // namespace cairn::net
