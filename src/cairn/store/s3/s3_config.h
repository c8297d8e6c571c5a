// Where an S3 object store lives and how it signs its requests: the bucket and key prefix from an
// `s3://BUCKET/PREFIX` URL, the endpoint, region and addressing style, and the credentials
// (docs/operations.md "An off-site copy in S3-compatible storage").
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cairn::store::s3 {

enum class Addressing {
  kPath,         // http(s)://endpoint/BUCKET/KEY (MinIO, s3rver, most self-hosted services)
  kVirtualHost,  // http(s)://BUCKET.endpoint/KEY (AWS's default)
};

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials (sent as x-amz-security-token)
  std::string source;         // where they came from, for error messages ("environment", a path)
};

struct S3Location {
  std::string bucket;
  std::string prefix;  // "" or ending in '/'; prepended to every key
  // Scheme, host and optional port, no trailing '/': "https://s3.eu-west-1.amazonaws.com",
  // "http://127.0.0.1:9000".
  std::string endpoint;
  std::string region = "us-east-1";
  Addressing addressing = Addressing::kVirtualHost;
};

// Parses `s3://BUCKET[/PREFIX]` with the given endpoint and region. An empty `endpoint` means
// AWS: "https://s3.REGION.amazonaws.com" with virtual-host addressing; a given endpoint uses
// path-style addressing unless `addressing` says otherwise. A non-empty prefix gets a trailing
// '/' if it has none. INVALID_ARGUMENT for another scheme, an empty or invalid bucket name
// (3..63 of a-z 0-9 . -; path style also accepts upper case and '_'), or an endpoint without
// http:// or https://.
absl::StatusOr<S3Location> ParseS3Url(std::string_view url, std::string_view endpoint,
                                      std::string_view region,
                                      std::optional<Addressing> addressing = std::nullopt);

// Looks up an environment variable; tests pass a map instead of the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

// Finds credentials, first match wins:
//   1. `explicit_file` if non-empty: an AWS shared credentials file (INI; `profile`, or
//      AWS_PROFILE, or "default");
//   2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from the environment;
//   3. AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials, same profile rule.
// NOT_FOUND (saying where it looked) when none has both keys; INVALID_ARGUMENT when the explicit
// file or the profile in it is missing or lacks a key.
absl::StatusOr<Credentials> LoadCredentials(const std::string& explicit_file,
                                            const std::string& profile, const EnvLookup& env);

// Parses an AWS shared credentials file's text and returns `profile`'s keys (aws_access_key_id,
// aws_secret_access_key, aws_session_token). NOT_FOUND when the profile is absent,
// INVALID_ARGUMENT when it lacks one of the two keys.
absl::StatusOr<Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile);

}  // namespace cairn::store::s3
