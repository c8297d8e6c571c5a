// JSON helpers for values that are raw bytes (file names, paths, symlink targets) and for
// times: the wire encoding of the local HTTP API, shared by the daemon's server and the CLI
// through the api/ module (docs/cli.md "Paths that are not UTF-8"):
//
//  - a path field is a JSON string when the bytes are valid UTF-8 (RFC 3629);
//  - otherwise the string has each invalid byte replaced by U+FFFD and a sibling field
//    `<field>_base64` carries the exact bytes (RFC 4648 base64 with padding);
//  - arrays: `<field>_base64` (an array of base64 strings, one per element) is present when any
//    element is not UTF-8.
//
// nlohmann::json throws on invalid UTF-8 in dump(), so raw bytes never go into a JSON string
// except through these functions. The readers never throw: wrong JSON types give
// INVALID_ARGUMENT.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::api {

// Standard base64 (RFC 4648 §4) with '=' padding.
std::string ToBase64(std::string_view data);
// Decodes standard base64; padding is optional, whitespace and other characters are not.
// INVALID_ARGUMENT on malformed input.
absl::StatusOr<std::string> FromBase64(std::string_view text);

// `s` with every byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, <= U+10FFFF) replaced by U+FFFD. Valid input is returned unchanged.
std::string SanitizeUtf8(std::string_view s);

// obj[field] = raw as a string; adds obj[field + "_base64"] when raw is not valid UTF-8.
void SetPathField(nlohmann::json& obj, const std::string& field, std::string_view raw);
// obj[field] = array of strings; adds obj[field + "_base64"] (array) when any element is not
// valid UTF-8.
void SetPathArray(nlohmann::json& obj, const std::string& field,
                  const std::vector<std::string>& raw);

// The exact bytes of a path field written by SetPathField: `<field>_base64` when present, else
// `<field>`; "" when neither is present. INVALID_ARGUMENT when a field has the wrong type or
// the base64 is malformed.
absl::StatusOr<std::string> GetPathField(const nlohmann::json& obj, const std::string& field);
// The exact bytes of an array written by SetPathArray ([] when absent).
absl::StatusOr<std::vector<std::string>> GetPathArray(const nlohmann::json& obj,
                                                      const std::string& field);

// {"code":"NOT_FOUND","message":"..."} (message sanitized to UTF-8). OK gives code "OK".
nlohmann::json StatusToJson(const absl::Status& status);
// The inverse: a status from {"code","message"}; UNKNOWN for an unknown code name or shape.
absl::Status StatusFromJson(const nlohmann::json& error);

// Serializes without ever throwing: any invalid UTF-8 that slipped into a string is replaced.
std::string DumpJson(const nlohmann::json& value, int indent = -1);
// Parses without throwing; INVALID_ARGUMENT "malformed JSON: ..." on a syntax error.
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text);

// RFC 3339 in UTC: "2024-01-02T03:04:05Z" (whole seconds, rounded down) or, with
// `nanoseconds`, "2024-01-02T03:04:05.123456789Z". `unix_ns` is nanoseconds since the epoch
// (negative values are before 1970).
std::string FormatRfc3339(int64_t unix_ns, bool nanoseconds = false);

}  // namespace cairn::api
