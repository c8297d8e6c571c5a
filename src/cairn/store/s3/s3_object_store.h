// S3ObjectStore: ObjectStore over the S3 REST API on libcurl, for Amazon S3 and S3-compatible
// services (docs/architecture.md "Object store client").
//
// - Requests are signed by libcurl (CURLOPT_AWS_SIGV4, AWS Signature Version 4) with the
//   x-amz-content-sha256 of the body; bodies are sent from memory, so a PutFile reads the file
//   one part at a time (at most part_size x max_parallel_requests bytes held for uploads).
// - Objects larger than `multipart_threshold` go up as a multipart upload of `part_size` parts
//   (CreateMultipartUpload, UploadPart in parallel, CompleteMultipartUpload; aborted on failure).
// - Each request is retried up to RetryPolicy::max_attempts times with full-jitter exponential
//   backoff on transport failures, 5xx, 429 and SlowDown/RequestTimeout/InternalError
//   (s3_request.h), then fails with UNAVAILABLE naming the endpoint and the attempts.
// - At most `max_parallel_requests` requests are in flight at once (over all callers); request
//   bodies pass through the optional upload RateLimiter (env/rate_limiter.h).
// - Counters of attempts per request kind, retries, failures, failed attempts by error class
//   and bytes sent and received are readable at any time (counters(), S3Counters).
//
// Thread-safety: thread-safe. libcurl is initialised once per process (curl_global_init).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "cairn/env/rate_limiter.h"
#include "cairn/store/s3/object_store.h"
#include "cairn/store/s3/s3_config.h"
#include "cairn/store/s3/s3_request.h"

namespace cairn::store::s3 {

struct S3Options {
  S3Location location;
  Credentials credentials;
  RetryPolicy retry;
  // Put/PutFile of more than this many bytes use a multipart upload.
  uint64_t multipart_threshold = 64ull << 20;
  // Bytes per part (the last may be smaller). S3 needs 5 MiB..5 GiB and at most 10000 parts;
  // Create raises it for objects that would need more parts.
  uint64_t part_size = 8ull << 20;
  int max_parallel_requests = 8;  // at least 1
  std::chrono::milliseconds connect_timeout{5000};
  // An attempt that moves no byte for this long is abandoned (and retried).
  std::chrono::milliseconds stall_timeout{30000};
  // Optional: request bodies (bytes sent) are paced through it. Not owned.
  env::RateLimiter* upload_limiter = nullptr;
  // Waits for backoff and the rate limiter; null means real sleeping. Not owned.
  env::Sleeper* sleeper = nullptr;
  uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
};

// What the store has sent and received since it was created (docs/operations.md "An off-site
// copy in S3-compatible storage", "Requests and costs"): what S3 bills by (requests by kind,
// bytes) and how often the service had to be asked again. Every count is of HTTP attempts, so a
// retried request counts once per attempt in `requests`, and once per failed attempt in
// `errors`.
struct S3Counters {
  std::array<uint64_t, kRequestKinds> requests{};  // attempts, by RequestKind (RequestKindName)
  uint64_t retries = 0;   // attempts that were retries (requests minus first attempts)
  uint64_t failures = 0;  // requests that failed after their last attempt (an error returned)
  std::array<uint64_t, kErrorClasses> errors{};  // failed attempts, by ErrorClass (ErrorClassName)
  uint64_t bytes_sent = 0;      // request bodies as sent, retries included (libcurl's count)
  uint64_t bytes_received = 0;  // response bodies as received, error answers included

  uint64_t total_requests() const;
  uint64_t total_errors() const;
};

class S3ObjectStore : public ObjectStore {
 public:
  // INVALID_ARGUMENT for part_size < 5 MiB, max_parallel_requests < 1, retry.max_attempts < 1,
  // or empty credentials.
  static absl::StatusOr<std::unique_ptr<S3ObjectStore>> Create(S3Options options);
  ~S3ObjectStore() override;

  absl::Status Put(std::string_view key, ByteSpan data) override;
  absl::Status PutFile(std::string_view key, env::FileSystem* fs, const std::string& path) override;
  absl::StatusOr<Bytes> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  absl::StatusOr<ObjectInfo> Head(std::string_view key) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view token,
                                int max_keys) override;

  // A snapshot of the counters (each read atomically; the set is not one instant). Cheap: reads
  // a few atomics; safe from any thread while requests run.
  S3Counters counters() const;
  const S3Location& location() const { return builder_.location(); }

 private:
  struct Request;
  // Reads part `index` (0-based) of an upload into `out`.
  using PartReader = std::function<absl::Status(uint64_t index, Bytes* out)>;

  explicit S3ObjectStore(S3Options options);
  // One attempt, holding a parallelism slot.
  HttpResult Attempt(const Request& request);
  // Attempts with retries; OK and the last result on success.
  absl::StatusOr<HttpResult> Run(const Request& request);
  absl::Status Multipart(std::string_view key, uint64_t size, const PartReader& read_part);
  std::string What(std::string_view verb, std::string_view key) const;
  void AcquireSlot();
  void ReleaseSlot();
  void* TakeHandle();
  void ReturnHandle(void* handle);

  S3Options options_;
  RequestBuilder builder_;
  std::unique_ptr<env::InterruptibleSleeper> own_sleeper_;
  env::Sleeper* sleeper_;

  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  int slots_free_;

  std::mutex handles_mu_;
  std::vector<void*> handles_;  // idle CURL easy handles (keep their connections alive)

  std::mutex rng_mu_;
  std::mt19937_64 rng_;

  std::array<std::atomic<uint64_t>, kRequestKinds> requests_{};
  std::array<std::atomic<uint64_t>, kErrorClasses> errors_{};
  std::atomic<uint64_t> retries_{0}, failures_{0}, bytes_sent_{0}, bytes_received_{0};
};

}  // namespace cairn::store::s3
