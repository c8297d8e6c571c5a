#include "cairn/daemon/bucket_status.h"

#include "cairn/api/json_paths.h"

namespace cairn::daemon {

std::optional<store::s3::S3Counters> BucketCounters(const store::s3::ObjectStore* bucket) {
  // The daemon holds its bucket as the ObjectStore that SegmentBlobStore takes; the counters
  // are the S3 client's own.
  const auto* s3 = dynamic_cast<const store::s3::S3ObjectStore*>(bucket);
  if (s3 == nullptr) return std::nullopt;
  return s3->counters();
}

nlohmann::json BucketStatusJson(const std::string& url, const store::s3::ObjectStore* bucket) {
  namespace s3 = store::s3;
  if (bucket == nullptr) return nullptr;
  nlohmann::json j;
  j["url"] = api::SanitizeUtf8(url);
  const auto* client = dynamic_cast<const s3::S3ObjectStore*>(bucket);
  if (client != nullptr) {
    j["endpoint"] = api::SanitizeUtf8(client->location().endpoint);
    j["region"] = api::SanitizeUtf8(client->location().region);
  }
  const std::optional<s3::S3Counters> c = BucketCounters(bucket);
  if (!c) return j;
  nlohmann::json requests = nlohmann::json::object(), errors = nlohmann::json::object();
  for (int i = 0; i < s3::kRequestKinds; ++i) {
    requests[s3::RequestKindName(static_cast<s3::RequestKind>(i))] = c->requests[i];
  }
  for (int i = 0; i < s3::kErrorClasses; ++i) {
    errors[s3::ErrorClassName(static_cast<s3::ErrorClass>(i))] = c->errors[i];
  }
  j["requests"] = std::move(requests);
  j["requests_total"] = c->total_requests();
  j["retries"] = c->retries;
  j["failures"] = c->failures;
  j["errors"] = std::move(errors);
  j["errors_total"] = c->total_errors();
  j["bytes_sent"] = c->bytes_sent;
  j["bytes_received"] = c->bytes_received;
  return j;
}

}  // namespace cairn::daemon
