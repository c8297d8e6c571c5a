// Field readers for the JSON answers of the local HTTP API (api/responses.cc, api/archives.cc):
// each returns INVALID_ARGUMENT naming the field for the wrong JSON type, never throws, and
// leaves the output as it is for an absent or null optional field. Internal to api/.
//
// Thread-safety: stateless functions.
#pragma once

#include <optional>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "nlohmann/json.hpp"

namespace cairn::api::fields {

using Json = nlohmann::json;

// A required string field; INVALID_ARGUMENT naming it when absent, not a string or empty.
inline absl::Status RequiredString(const Json& j, const char* name, std::string* out) {
  auto it = j.is_object() ? j.find(name) : j.end();
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", name, "' (a non-empty string) is missing from the answer"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// A field of the answer, by name; nullptr when absent or null.
inline const Json* Field(const Json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline absl::Status WrongType(const char* name, const char* what) {
  return absl::InvalidArgumentError(
      absl::StrCat("field '", name, "' of the answer must be ", what));
}

// Optional fields: absent or null leaves `out` as it is; the wrong type is INVALID_ARGUMENT.
inline absl::Status GetString(const Json& j, const char* name, std::string* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_string()) return WrongType(name, "a string");
  *out = f->get<std::string>();
  return absl::OkStatus();
}

inline absl::Status GetString(const Json& j, const char* name, std::optional<std::string>* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_string()) return WrongType(name, "a string or null");
  *out = f->get<std::string>();
  return absl::OkStatus();
}

// Parsed JSON holds a non-negative number as unsigned; JSON built in the process may hold it as
// signed.
inline bool IsNonNegativeInteger(const Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

template <typename T>
absl::Status GetInt(const Json& j, const char* name, T* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_number_integer()) return WrongType(name, "an integer");
  if constexpr (std::is_unsigned_v<T>) {
    if (!IsNonNegativeInteger(*f)) {
      return WrongType(name, "a non-negative integer");
    }
    *out = static_cast<T>(f->get<uint64_t>());
  } else {
    *out = static_cast<T>(f->get<int64_t>());
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status GetInt(const Json& j, const char* name, std::optional<T>* out) {
  if (Field(j, name) == nullptr) return absl::OkStatus();
  T v{};
  CAIRN_RETURN_IF_ERROR(GetInt(j, name, &v));
  *out = v;
  return absl::OkStatus();
}

inline absl::Status GetBool(const Json& j, const char* name, bool* out) {
  const Json* f = Field(j, name);
  if (f == nullptr) return absl::OkStatus();
  if (!f->is_boolean()) return WrongType(name, "true or false");
  *out = f->get<bool>();
  return absl::OkStatus();
}

}  // namespace cairn::api::fields
