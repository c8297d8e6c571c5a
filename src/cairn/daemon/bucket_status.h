// What a bucket peer reports about its bucket (docs/operations.md "Requests and costs"): the
// "bucket" object of GET /v1/status and the counters behind the cairn_s3_* metrics.
//
// Thread-safety: the functions only read the store's atomic counters; call them from any thread.
#pragma once

#include <optional>
#include <string>

#include "cairn/api/responses.h"
#include "cairn/store/s3/object_store.h"
#include "cairn/store/s3/s3_object_store.h"

namespace cairn::daemon {

// The request counters of `bucket` when it is an S3ObjectStore; nullopt for no bucket (null) or
// another ObjectStore (the in-memory one of tests keeps none).
std::optional<store::s3::S3Counters> BucketCounters(const store::s3::ObjectStore* bucket);

// The status of a bucket peer's bucket: `url` ([storage] bucket, "s3://BUCKET/PREFIX"), the
// endpoint and region, and the counters of HTTP attempts since the peer started (by request
// kind and by error class, s3::RequestKindName / ErrorClassName). nullopt when `bucket` is null.
std::optional<api::BucketStatus> BucketStatusOf(const std::string& url,
                                                const store::s3::ObjectStore* bucket);

}  // namespace cairn::daemon
