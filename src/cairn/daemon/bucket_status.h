// What a bucket peer reports about its bucket (docs/operations.md "Requests and costs"): the
// "bucket" object of GET /v1/status and the counters behind the cairn_s3_* metrics.
//
// Thread-safety: the functions only read the store's atomic counters; call them from any thread.
#pragma once

#include <optional>
#include <string>

#include "cairn/store/s3/object_store.h"
#include "cairn/store/s3/s3_object_store.h"
#include "nlohmann/json.hpp"

namespace cairn::daemon {

// The request counters of `bucket` when it is an S3ObjectStore; nullopt for no bucket (null) or
// another ObjectStore (the in-memory one of tests keeps none).
std::optional<store::s3::S3Counters> BucketCounters(const store::s3::ObjectStore* bucket);

// The status object of a bucket peer: `url` ([storage] bucket, "s3://BUCKET/PREFIX"), the
// endpoint and region, and the counters ({"requests":{"put":N,...},"requests_total","retries",
// "failures","errors":{"throttled":N,...},"errors_total","bytes_sent","bytes_received"}; counts of
// HTTP attempts since the peer started). JSON null when `bucket` is null.
nlohmann::json BucketStatusJson(const std::string& url, const store::s3::ObjectStore* bucket);

}  // namespace cairn::daemon
