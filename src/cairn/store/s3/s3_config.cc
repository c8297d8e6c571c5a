#include "cairn/store/s3/s3_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"

namespace cairn::store::s3 {
namespace {

bool ValidBucket(std::string_view b, Addressing addressing) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok && addressing == Addressing::kPath) ok = (c >= 'A' && c <= 'Z') || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<S3Location> ParseS3Url(std::string_view url, std::string_view endpoint,
                                      std::string_view region,
                                      std::optional<Addressing> addressing) {
  constexpr std::string_view kScheme = "s3://";
  if (!url.starts_with(kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(url), "\" is not an s3://BUCKET/PREFIX URL"));
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) loc.prefix = std::string(rest.substr(slash + 1));
  while (loc.prefix.starts_with('/')) loc.prefix.erase(0, 1);
  if (!loc.prefix.empty() && !loc.prefix.ends_with('/')) loc.prefix += '/';
  if (!region.empty()) loc.region = std::string(region);
  if (endpoint.empty()) {
    loc.endpoint = absl::StrCat("https://s3.", loc.region, ".amazonaws.com");
    loc.addressing = addressing.value_or(Addressing::kVirtualHost);
  } else {
    if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) {
      return absl::InvalidArgumentError(absl::StrCat("S3 endpoint \"", std::string(endpoint),
                                                     "\" must start with http:// or https://"));
    }
    loc.endpoint = std::string(endpoint);
    while (loc.endpoint.ends_with('/')) loc.endpoint.pop_back();
    loc.addressing = addressing.value_or(Addressing::kPath);
  }
  if (!ValidBucket(loc.bucket, loc.addressing)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", loc.bucket, "\" in \"", std::string(url),
                     "\" is not a valid bucket name (3 to 63 of a-z 0-9 . -)"));
  }
  return loc;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile) {
  bool in_profile = false, found = false;
  Credentials c;
  const std::string all(text);
  for (absl::string_view raw : absl::StrSplit(all, '\n')) {
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string name(absl::StripAsciiWhitespace(line.substr(1, line.size() - 2)));
      in_profile = name == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no profile [", std::string(profile), "]"));
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "profile [", std::string(profile), "] lacks aws_access_key_id or aws_secret_access_key"));
  }
  return c;
}

namespace {

absl::StatusOr<Credentials> FromFile(const std::string& path, const std::string& profile) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = ParseCredentialsFile(ss.str(), profile);
  if (!c.ok()) return Annotate(c.status(), path);
  c->source = absl::StrCat(path, " [", profile, "]");
  return c;
}

}  // namespace

absl::StatusOr<Credentials> LoadCredentials(const std::string& explicit_file,
                                            const std::string& profile_arg, const EnvLookup& env) {
  std::string profile = profile_arg;
  if (profile.empty()) profile = env("AWS_PROFILE").value_or("default");
  if (!explicit_file.empty()) {
    auto c = FromFile(explicit_file, profile);
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("S3 credentials file: ", c.status().message()));
    }
    return c;
  }
  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret && !id->empty() && !secret->empty()) {
    Credentials c;
    c.access_key_id = *id;
    c.secret_access_key = *secret;
    c.session_token = env("AWS_SESSION_TOKEN").value_or("");
    c.source = "environment (AWS_ACCESS_KEY_ID)";
    return c;
  }
  std::string path = env("AWS_SHARED_CREDENTIALS_FILE").value_or("");
  if (path.empty()) {
    auto home = env("HOME");
    if (home && !home->empty()) path = *home + "/.aws/credentials";
  }
  if (!path.empty()) {
    auto c = FromFile(path, profile);
    if (c.ok()) return c;
    if (c.status().code() == absl::StatusCode::kInvalidArgument) return c.status();
  }
  return absl::NotFoundError(absl::StrCat(
      "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile [",
      profile, "] in ", path.empty() ? "~/.aws/credentials" : path,
      ", or name a credentials file"));
}

}  // namespace cairn::store::s3
