// The pure parts of the S3 object store: request URLs and headers, the mapping of an HTTP answer
// (or a transport failure) to absl::Status, which failures are retried, and the backoff between
// attempts. Kept apart from the libcurl transport (s3_object_store.h) so that they are tested
// without a server. Signing is libcurl's (CURLOPT_AWS_SIGV4); what is built here is what that
// signature covers, so the query string is already in SigV4 canonical form (AWS Signature
// Version 4, "Create a canonical request": parameters sorted by name, names and values
// URI-encoded, "name=" for an empty value).
//
// Thread-safety: RequestBuilder is immutable after construction; the functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cairn/store/s3/s3_config.h"
#include "cairn/store/s3/s3_xml.h"

namespace cairn::store::s3 {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// SigV4 UriEncode: every byte but A-Z a-z 0-9 - . _ ~ as %XY (upper-case hex); '/' kept when
// `keep_slash` (object key paths).
std::string UriEncode(std::string_view s, bool keep_slash);
// "a=1&b=&c=x%2Fy": sorted by encoded name then value, each URI-encoded.
std::string CanonicalQuery(QueryParams params);

class RequestBuilder {
 public:
  explicit RequestBuilder(S3Location location) : loc_(std::move(location)) {}

  // The bucket's prefix + `key`.
  std::string FullKey(std::string_view key) const { return loc_.prefix + std::string(key); }
  // The URL of object `key` (relative to the prefix) with `query` (may be empty).
  std::string ObjectUrl(std::string_view key, QueryParams query = {}) const;
  // The URL of the bucket itself with `query`.
  std::string BucketUrl(QueryParams query) const;
  // ListObjectsV2 of keys starting with prefix + `prefix`, `max_keys` a page, after `token`.
  std::string ListUrl(std::string_view prefix, std::string_view token, int max_keys) const;

  const S3Location& location() const { return loc_; }

 private:
  std::string Base() const;  // scheme://host[:port][/bucket]
  S3Location loc_;
};

// The Range header for `length` (> 0) bytes from `offset`: "Range: bytes=offset-last".
std::string RangeHeader(uint64_t offset, uint64_t length);

// What one HTTP attempt produced.
struct HttpResult {
  // 0 when an HTTP answer arrived; else the libcurl CURLcode and its text (connection refused,
  // timeout, DNS, TLS...).
  int transport_error = 0;
  std::string transport_message;
  long http_status = 0;       // e.g. 200, 206, 404, 503
  std::string body;           // the answer's body (capped for error answers)
  std::string etag;           // the ETag header, quotes removed
  std::string content_range;  // the Content-Range header ("bytes 0-9/100") of a ranged get
  uint64_t content_length = 0;
  // The body outgrew what the request allows (a ranged get's length, 1 MiB for errors): the
  // transfer was cut; not retried (the service would answer the same), DATA_LOSS.
  bool oversized = false;
  // The transport failure was a timeout (connect timeout, or no byte moved for the stall
  // timeout).
  bool timed_out = false;
};

enum class RequestKind {
  kPut,
  kUploadPart,
  kInitiateMultipart,
  kCompleteMultipart,
  kAbortMultipart,
  kGet,
  kHead,
  kDelete,
  kList,
};
inline constexpr int kRequestKinds = 9;
const char* RequestKindName(RequestKind kind);  // "put", "upload_part", ... (metric labels)

// Why an attempt failed, for the error counters (docs/operations.md "An off-site copy in
// S3-compatible storage", "Requests and costs"):
// - kTimeout: no answer in time (connect or stall timeout);
// - kTransport: any other transport failure (refused, reset, DNS, TLS);
// - kThrottled: HTTP 429, or SlowDown (with 503 or any status);
// - kServer: any other 5xx, or InternalError/RequestTimeout/ServiceUnavailable with a 2xx-4xx;
// - kClient: any other 3xx/4xx (403 refused, 404 missing, 416 range, 301 wrong region);
// - kBadAnswer: an answer that cannot be what was asked (too large, a 2xx where another was
//   expected, a wrong Content-Range).
enum class ErrorClass { kTimeout, kTransport, kThrottled, kServer, kClient, kBadAnswer };
inline constexpr int kErrorClasses = 6;
const char* ErrorClassName(ErrorClass c);  // "timeout", "transport", ... (metric labels)
// The class of a failed attempt: `result` with its parsed error body `error` (may be null).
// An oversized answer or a success status without an error body is kBadAnswer.
ErrorClass ClassifyError(const HttpResult& result, const S3ErrorBody* error);

// Whether another attempt may succeed: transport failures (connect, timeouts, resets), HTTP 5xx,
// 429, and the error codes SlowDown, RequestTimeout, InternalError, ServiceUnavailable — also
// when they come with a 200 (CompleteMultipartUpload). `error` is the parsed body, if any.
bool IsRetryable(const HttpResult& result, const S3ErrorBody* error);

// What the caller sees for a failed final attempt (object_store.h lists the codes). `what` names
// the request ("get s3://bucket/prefix/key"); `attempts` is how many were made;
// `credentials_source` goes into PERMISSION_DENIED messages.
absl::Status StatusFor(const HttpResult& result, const S3ErrorBody* error, const S3Location& loc,
                       std::string_view what, int attempts, std::string_view credentials_source);

// Bounded retries with exponential backoff and "full jitter" (M. Brooker, "Exponential Backoff
// And Jitter", AWS Architecture Blog, 2015): before retry r (1-based) wait a uniformly random
// time in [0, min(max_backoff, initial_backoff x 2^(r-1))).
struct RetryPolicy {
  int max_attempts = 5;  // first try included; at least 1
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};
// The wait before retry `retry` (1-based) given a uniform random `u` in [0, 1).
std::chrono::nanoseconds BackoffDelay(const RetryPolicy& policy, int retry, double u);

}  // namespace cairn::store::s3
