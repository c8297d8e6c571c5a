// The XML bodies of the S3 REST API that the object store reads and writes (Amazon S3 API
// Reference: ListObjectsV2, Error responses, CreateMultipartUpload, CompleteMultipartUpload),
// parsed with libxml2 (no network access, no entity expansion, no DTD loading).
//
// Thread-safety: pure functions; libxml2 is initialised once per process.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/store/s3/object_store.h"

namespace cairn::store::s3 {

// The <Error> body S3 sends with a 4xx/5xx answer (and, for CompleteMultipartUpload, sometimes
// with a 200). Fields absent from the body are empty.
struct S3ErrorBody {
  std::string code;  // "NoSuchKey", "SlowDown", "SignatureDoesNotMatch", ...
  std::string message;
  std::string resource;
  std::string request_id;
  std::string bucket_name;  // <BucketName>, sent with NoSuchBucket
};

// A ListObjectsV2 result. Keys are the full keys in the bucket (prefix included).
// `next_token` is <NextContinuationToken> when <IsTruncated> is true, else "". DATA_LOSS when the
// body is not a ListBucketResult, a <Size> is not a number, or a truncated listing has no token.
absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml);

// The <Error> element of `xml`; NOT_FOUND when the body is not XML or has no <Error> root (an
// empty body, as HEAD answers have, or an HTML page from a proxy).
absl::StatusOr<S3ErrorBody> ParseError(std::string_view xml);

// <UploadId> of an InitiateMultipartUploadResult; DATA_LOSS when absent.
absl::StatusOr<std::string> ParseInitiateMultipartUpload(std::string_view xml);

// <ETag> of a CompleteMultipartUploadResult, quotes removed; DATA_LOSS when the body is not one
// (the caller first checks ParseError: S3 may answer 200 with an <Error> body).
absl::StatusOr<std::string> ParseCompleteMultipartUpload(std::string_view xml);

struct CompletedPart {
  int number = 0;    // 1..10000
  std::string etag;  // as returned by UploadPart, quotes included or not
};
// The <CompleteMultipartUpload> request body listing `parts` in the given (ascending) order.
std::string BuildCompleteMultipartUpload(const std::vector<CompletedPart>& parts);

}  // namespace cairn::store::s3
