#include "cairn/store/s3/s3_request.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cairn::store::s3 {

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CanonicalQuery(QueryParams params) {
  for (auto& [k, v] : params) {
    k = UriEncode(k, false);
    v = UriEncode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    absl::StrAppend(&out, k, "=", v);
  }
  return out;
}

std::string RequestBuilder::Base() const {
  if (loc_.addressing == Addressing::kPath) return absl::StrCat(loc_.endpoint, "/", loc_.bucket);
  size_t scheme_end = loc_.endpoint.find("://") + 3;
  return absl::StrCat(loc_.endpoint.substr(0, scheme_end), loc_.bucket, ".",
                      loc_.endpoint.substr(scheme_end));
}

std::string RequestBuilder::ObjectUrl(std::string_view key, QueryParams query) const {
  std::string url = absl::StrCat(Base(), "/", UriEncode(FullKey(key), true));
  if (!query.empty()) absl::StrAppend(&url, "?", CanonicalQuery(std::move(query)));
  return url;
}

std::string RequestBuilder::BucketUrl(QueryParams query) const {
  std::string url = absl::StrCat(Base(), "/");
  if (!query.empty()) absl::StrAppend(&url, "?", CanonicalQuery(std::move(query)));
  return url;
}

std::string RequestBuilder::ListUrl(std::string_view prefix, std::string_view token,
                                    int max_keys) const {
  QueryParams q = {
      {"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"prefix", FullKey(prefix)}};
  if (!token.empty()) q.emplace_back("continuation-token", std::string(token));
  return BucketUrl(std::move(q));
}

std::string RangeHeader(uint64_t offset, uint64_t length) {
  return absl::StrCat("Range: bytes=", offset, "-", offset + length - 1);
}

const char* RequestKindName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kPut:
      return "put";
    case RequestKind::kUploadPart:
      return "upload_part";
    case RequestKind::kInitiateMultipart:
      return "initiate_multipart";
    case RequestKind::kCompleteMultipart:
      return "complete_multipart";
    case RequestKind::kAbortMultipart:
      return "abort_multipart";
    case RequestKind::kGet:
      return "get";
    case RequestKind::kHead:
      return "head";
    case RequestKind::kDelete:
      return "delete";
    case RequestKind::kList:
      return "list";
  }
  return "unknown";
}

const char* ErrorClassName(ErrorClass c) {
  switch (c) {
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kTransport:
      return "transport";
    case ErrorClass::kThrottled:
      return "throttled";
    case ErrorClass::kServer:
      return "server";
    case ErrorClass::kClient:
      return "client";
    case ErrorClass::kBadAnswer:
      return "bad_answer";
  }
  return "unknown";
}

ErrorClass ClassifyError(const HttpResult& r, const S3ErrorBody* error) {
  if (r.oversized) return ErrorClass::kBadAnswer;
  if (r.transport_error != 0) return r.timed_out ? ErrorClass::kTimeout : ErrorClass::kTransport;
  const std::string code = error != nullptr ? error->code : "";
  if (r.http_status == 429 || code == "SlowDown") return ErrorClass::kThrottled;
  if (r.http_status >= 500 || IsRetryable(r, error)) return ErrorClass::kServer;
  if (r.http_status >= 300) return ErrorClass::kClient;
  return ErrorClass::kBadAnswer;
}

bool IsRetryable(const HttpResult& r, const S3ErrorBody* error) {
  if (r.transport_error != 0) return true;
  if (r.http_status >= 500 || r.http_status == 429) return true;
  if (error != nullptr) {
    const std::string& c = error->code;
    return c == "SlowDown" || c == "RequestTimeout" || c == "InternalError" ||
           c == "ServiceUnavailable";
  }
  return false;
}

absl::Status StatusFor(const HttpResult& r, const S3ErrorBody* error, const S3Location& loc,
                       std::string_view what_sv, int attempts,
                       std::string_view credentials_source_sv) {
  const std::string what(what_sv), credentials_source(credentials_source_sv);
  std::string tries = attempts > 1 ? absl::StrCat(" (after ", attempts, " attempts)") : "";
  std::string detail;
  if (error != nullptr) {
    detail = absl::StrCat(error->code, ": ", error->message);
    if (!error->request_id.empty())
      absl::StrAppend(&detail, " [request id ", error->request_id, "]");
  }
  if (r.transport_error != 0) {
    return absl::UnavailableError(absl::StrCat(what, ": S3 endpoint ", loc.endpoint, " unreachable",
                                               tries, ": ", r.transport_message));
  }
  if (error != nullptr && IsRetryable(r, error) && r.http_status < 500) {
    return absl::UnavailableError(
        absl::StrCat(what, ": S3 endpoint ", loc.endpoint, " kept refusing", tries, ": ", detail));
  }
  if (r.http_status >= 500 || r.http_status == 429) {
    return absl::UnavailableError(absl::StrCat(what, ": S3 endpoint ", loc.endpoint,
                                               " answered HTTP ", r.http_status, tries,
                                               detail.empty() ? "" : ": ", detail));
  }
  const std::string code = error != nullptr ? error->code : "";
  switch (r.http_status) {
    case 403:
      return absl::PermissionDeniedError(absl::StrCat(
          what, ": S3 refused the request (HTTP 403", detail.empty() ? "" : ", ", detail,
          "): check the credentials (from ", credentials_source,
          ") and that they may use bucket \"", loc.bucket, "\" in region ", loc.region));
    case 404:
      if (code == "NoSuchBucket") {
        return absl::NotFoundError(
            absl::StrCat(what, ": bucket \"", loc.bucket, "\" does not exist at ", loc.endpoint));
      }
      if (code == "NoSuchUpload") {
        return absl::NotFoundError(
            absl::StrCat(what, ": the multipart upload is gone (", detail, ")"));
      }
      return absl::NotFoundError(absl::StrCat(what, ": no such object"));
    case 416:
      return absl::OutOfRangeError(
          absl::StrCat(what, ": the range starts past the end of the object"));
    case 301:
    case 307:
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": bucket \"", loc.bucket, "\" is not served by ", loc.endpoint,
                       " in region ", loc.region, " (HTTP ", r.http_status,
                       detail.empty() ? "" : ", ", detail, "): check the region and endpoint"));
    case 409:
      return absl::FailedPreconditionError(absl::StrCat(what, ": ", detail));
    default:
      break;
  }
  if (code == "AuthorizationHeaderMalformed") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", detail, " (is the region ", loc.region, " right?)"));
  }
  if (r.http_status >= 400) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": S3 answered HTTP ", r.http_status,
                                                   detail.empty() ? "" : ": ", detail));
  }
  return absl::InternalError(absl::StrCat(what, ": unexpected answer HTTP ", r.http_status,
                                          detail.empty() ? "" : ": ", detail));
}

std::chrono::nanoseconds BackoffDelay(const RetryPolicy& policy, int retry, double u) {
  using std::chrono::nanoseconds;
  double cap = static_cast<double>(nanoseconds(policy.max_backoff).count());
  double base = static_cast<double>(nanoseconds(policy.initial_backoff).count());
  double ceiling = std::min(cap, base * std::ldexp(1.0, std::clamp(retry - 1, 0, 62)));
  u = std::clamp(u, 0.0, 1.0);
  return nanoseconds(static_cast<int64_t>(ceiling * u));
}

}  // namespace cairn::store::s3
