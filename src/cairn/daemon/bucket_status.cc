#include "cairn/daemon/bucket_status.h"

namespace cairn::daemon {

std::optional<store::s3::S3Counters> BucketCounters(const store::s3::ObjectStore* bucket) {
  // The daemon holds its bucket as the ObjectStore that SegmentBlobStore takes; the counters
  // are the S3 client's own.
  const auto* s3 = dynamic_cast<const store::s3::S3ObjectStore*>(bucket);
  if (s3 == nullptr) return std::nullopt;
  return s3->counters();
}

std::optional<api::BucketStatus> BucketStatusOf(const std::string& url,
                                                const store::s3::ObjectStore* bucket) {
  namespace s3 = store::s3;
  if (bucket == nullptr) return std::nullopt;
  api::BucketStatus r;
  r.url = url;
  const auto* client = dynamic_cast<const s3::S3ObjectStore*>(bucket);
  if (client != nullptr) {
    r.endpoint = client->location().endpoint;
    r.region = client->location().region;
  }
  const std::optional<s3::S3Counters> c = BucketCounters(bucket);
  if (!c) return r;
  r.counted = true;
  for (int i = 0; i < s3::kRequestKinds; ++i) {
    r.requests.emplace_back(s3::RequestKindName(static_cast<s3::RequestKind>(i)), c->requests[i]);
  }
  for (int i = 0; i < s3::kErrorClasses; ++i) {
    r.errors.emplace_back(s3::ErrorClassName(static_cast<s3::ErrorClass>(i)), c->errors[i]);
  }
  r.requests_total = c->total_requests();
  r.retries = c->retries;
  r.failures = c->failures;
  r.errors_total = c->total_errors();
  r.bytes_sent = c->bytes_sent;
  r.bytes_received = c->bytes_received;
  return r;
}

}  // namespace cairn::daemon
