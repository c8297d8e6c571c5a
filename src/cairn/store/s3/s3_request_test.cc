#include "cairn/store/s3/s3_request.h"

#include <gtest/gtest.h>

#include <set>

namespace cairn::store::s3 {
namespace {

S3Location PathStyle() {
  S3Location loc;
  loc.bucket = "cairn-test";
  loc.prefix = "peer7/";
  loc.endpoint = "http://127.0.0.1:4568";
  loc.region = "us-east-1";
  loc.addressing = Addressing::kPath;
  return loc;
}

TEST(UriEncode, UnreservedKeptEverythingElseEncoded) {
  EXPECT_EQ(UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(UriEncode("a b/c+d=é", false), "a%20b%2Fc%2Bd%3D%C3%A9");
  EXPECT_EQ(UriEncode("a b/c+d=é", true), "a%20b/c%2Bd%3D%C3%A9");
}

TEST(CanonicalQuery, SortedEncodedAndEmptyValuesKeepTheirEquals) {
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQuery({{"uploadId", "x/y+z"}, {"partNumber", "10"}}),
            "partNumber=10&uploadId=x%2Fy%2Bz");
}

TEST(RequestBuilder, PathStyleObjectUrls) {
  RequestBuilder b(PathStyle());
  EXPECT_EQ(b.ObjectUrl("seg/00000001"), "http://127.0.0.1:4568/cairn-test/peer7/seg/00000001");
  EXPECT_EQ(b.ObjectUrl("a b+c"), "http://127.0.0.1:4568/cairn-test/peer7/a%20b%2Bc");
  EXPECT_EQ(b.ObjectUrl("k", {{"uploads", ""}}),
            "http://127.0.0.1:4568/cairn-test/peer7/k?uploads=");
  EXPECT_EQ(b.ObjectUrl("k", {{"uploadId", "U/1"}, {"partNumber", "3"}}),
            "http://127.0.0.1:4568/cairn-test/peer7/k?partNumber=3&uploadId=U%2F1");
}

TEST(RequestBuilder, VirtualHostObjectUrls) {
  S3Location loc = PathStyle();
  loc.endpoint = "https://s3.eu-west-1.amazonaws.com";
  loc.addressing = Addressing::kVirtualHost;
  loc.prefix = "";
  RequestBuilder b(loc);
  EXPECT_EQ(b.ObjectUrl("seg/1"), "https://cairn-test.s3.eu-west-1.amazonaws.com/seg/1");
  EXPECT_EQ(b.BucketUrl({{"list-type", "2"}}),
            "https://cairn-test.s3.eu-west-1.amazonaws.com/?list-type=2");
}

TEST(RequestBuilder, ListQueryCarriesPrefixMaxKeysAndToken) {
  RequestBuilder b(PathStyle());
  EXPECT_EQ(b.ListUrl("seg/", "", 1000),
            "http://127.0.0.1:4568/cairn-test/?list-type=2&max-keys=1000&prefix=peer7%2Fseg%2F");
  // Tokens are opaque base64: '+', '/' and '=' must be encoded.
  EXPECT_EQ(b.ListUrl("", "1ueGcx+LPR/x1T=", 5),
            "http://127.0.0.1:4568/cairn-test/"
            "?continuation-token=1ueGcx%2BLPR%2Fx1T%3D&list-type=2&max-keys=5&prefix=peer7%2F");
}

TEST(RangeHeader, InclusiveLastByte) {
  EXPECT_EQ(RangeHeader(0, 1), "Range: bytes=0-0");
  EXPECT_EQ(RangeHeader(4096, 1000), "Range: bytes=4096-5095");
  EXPECT_EQ(RangeHeader(uint64_t{1} << 33, 10), "Range: bytes=8589934592-8589934601");
}

HttpResult Http(long status) {
  HttpResult r;
  r.http_status = status;
  return r;
}
S3ErrorBody Err(std::string code) {
  S3ErrorBody e;
  e.code = std::move(code);
  e.message = "msg";
  return e;
}

TEST(IsRetryable, Table) {
  HttpResult refused;
  refused.transport_error = 7;  // CURLE_COULDNT_CONNECT
  HttpResult timeout;
  timeout.transport_error = 28;  // CURLE_OPERATION_TIMEDOUT
  S3ErrorBody slow = Err("SlowDown"), internal = Err("InternalError"), rt = Err("RequestTimeout"),
              nokey = Err("NoSuchKey"), denied = Err("AccessDenied");
  struct Case {
    HttpResult r;
    const S3ErrorBody* e;
    bool retry;
  } cases[] = {
      {refused, nullptr, true},    {timeout, nullptr, true},    {Http(500), nullptr, true},
      {Http(502), nullptr, true},  {Http(503), &slow, true},    {Http(504), nullptr, true},
      {Http(429), nullptr, true},  {Http(400), &rt, true},      {Http(200), &internal, true},
      {Http(404), &nokey, false},  {Http(403), &denied, false}, {Http(400), nullptr, false},
      {Http(416), nullptr, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(IsRetryable(c.r, c.e), c.retry)
        << "HTTP " << c.r.http_status << " transport " << c.r.transport_error << " "
        << (c.e ? c.e->code : "");
  }
}

TEST(ClassifyError, Table) {
  HttpResult refused;
  refused.transport_error = 7;  // CURLE_COULDNT_CONNECT
  HttpResult timeout;
  timeout.transport_error = 28;  // CURLE_OPERATION_TIMEDOUT
  timeout.timed_out = true;
  HttpResult oversized = Http(206);
  oversized.oversized = true;
  S3ErrorBody slow = Err("SlowDown"), internal = Err("InternalError"), rt = Err("RequestTimeout"),
              nokey = Err("NoSuchKey"), denied = Err("AccessDenied");
  struct Case {
    HttpResult r;
    const S3ErrorBody* e;
    ErrorClass want;
  } cases[] = {
      {refused, nullptr, ErrorClass::kTransport},   {timeout, nullptr, ErrorClass::kTimeout},
      {Http(503), &slow, ErrorClass::kThrottled},   {Http(429), nullptr, ErrorClass::kThrottled},
      {Http(200), &slow, ErrorClass::kThrottled},   {Http(500), nullptr, ErrorClass::kServer},
      {Http(503), nullptr, ErrorClass::kServer},    {Http(200), &internal, ErrorClass::kServer},
      {Http(400), &rt, ErrorClass::kServer},        {Http(404), &nokey, ErrorClass::kClient},
      {Http(403), &denied, ErrorClass::kClient},    {Http(301), nullptr, ErrorClass::kClient},
      {Http(416), nullptr, ErrorClass::kClient},    {oversized, nullptr, ErrorClass::kBadAnswer},
      {Http(204), nullptr, ErrorClass::kBadAnswer},
  };
  for (const auto& c : cases) {
    EXPECT_STREQ(ErrorClassName(ClassifyError(c.r, c.e)), ErrorClassName(c.want))
        << "HTTP " << c.r.http_status << " transport " << c.r.transport_error << " "
        << (c.e ? c.e->code : "");
  }
}

TEST(StatusFor, MapsToTheDocumentedCodes) {
  S3Location loc = PathStyle();
  auto status = [&](const HttpResult& r, const S3ErrorBody* e, int attempts = 1) {
    return StatusFor(r, e, loc, "get s3://cairn-test/peer7/k", attempts, "env (AWS_ACCESS_KEY_ID)");
  };
  S3ErrorBody sig = Err("SignatureDoesNotMatch");
  absl::Status denied = status(Http(403), &sig);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.message().find("credentials"), std::string::npos) << denied;
  EXPECT_NE(denied.message().find("env (AWS_ACCESS_KEY_ID)"), std::string::npos) << denied;
  EXPECT_NE(denied.message().find("SignatureDoesNotMatch"), std::string::npos) << denied;
  EXPECT_EQ(status(Http(403), nullptr).code(), absl::StatusCode::kPermissionDenied);  // HEAD

  S3ErrorBody nobucket = Err("NoSuchBucket");
  absl::Status nb = status(Http(404), &nobucket);
  EXPECT_EQ(nb.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(nb.message().find("bucket \"cairn-test\""), std::string::npos) << nb;

  S3ErrorBody nokey = Err("NoSuchKey");
  EXPECT_EQ(status(Http(404), &nokey).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status(Http(404), nullptr).code(), absl::StatusCode::kNotFound);

  S3ErrorBody slow = Err("SlowDown");
  absl::Status unavailable = status(Http(503), &slow, 5);
  EXPECT_EQ(unavailable.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(unavailable.message().find("after 5 attempts"), std::string::npos) << unavailable;
  EXPECT_NE(unavailable.message().find("SlowDown"), std::string::npos) << unavailable;

  HttpResult refused;
  refused.transport_error = 7;
  refused.transport_message = "Failed to connect to 127.0.0.1 port 4568: Connection refused";
  absl::Status down = status(refused, nullptr, 5);
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(down.message().find("http://127.0.0.1:4568 unreachable"), std::string::npos) << down;
  EXPECT_NE(down.message().find("Connection refused"), std::string::npos) << down;

  S3ErrorBody range = Err("InvalidRange");
  EXPECT_EQ(status(Http(416), &range).code(), absl::StatusCode::kOutOfRange);
  S3ErrorBody redirect = Err("PermanentRedirect");
  EXPECT_EQ(status(Http(301), &redirect).code(), absl::StatusCode::kFailedPrecondition);
  S3ErrorBody badregion = Err("AuthorizationHeaderMalformed");
  EXPECT_EQ(status(Http(400), &badregion).code(), absl::StatusCode::kInvalidArgument);
  S3ErrorBody internal = Err("InternalError");
  EXPECT_EQ(status(Http(200), &internal, 3).code(), absl::StatusCode::kUnavailable);
}

TEST(BackoffDelay, FullJitterUnderAnExponentialCap) {
  RetryPolicy p;
  p.initial_backoff = std::chrono::milliseconds(100);
  p.max_backoff = std::chrono::milliseconds(1000);
  using std::chrono::milliseconds;
  EXPECT_EQ(BackoffDelay(p, 1, 0.0), milliseconds(0));
  EXPECT_EQ(BackoffDelay(p, 1, 0.5), milliseconds(50));
  EXPECT_EQ(BackoffDelay(p, 2, 0.5), milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 3, 0.5), milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 4, 0.5), milliseconds(400));
  EXPECT_EQ(BackoffDelay(p, 5, 0.5), milliseconds(500));     // capped at 1000
  EXPECT_EQ(BackoffDelay(p, 60, 0.5), milliseconds(500));    // no overflow
  EXPECT_EQ(BackoffDelay(p, 1000, 0.5), milliseconds(500));  // no overflow
  EXPECT_LT(BackoffDelay(p, 4, 0.999999), milliseconds(800));
  // Different draws give different waits (the point of jitter: retries of many clients spread).
  std::set<int64_t> waits;
  for (double u : {0.1, 0.3, 0.7, 0.9}) waits.insert(BackoffDelay(p, 3, u).count());
  EXPECT_EQ(waits.size(), 4u);
}

}  // namespace
}  // namespace cairn::store::s3
