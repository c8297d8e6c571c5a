#include "cairn/api/json_paths.h"

#include <ctime>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"

namespace cairn::api {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629 §4 table), or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < s.size() && at(k) >= lo && at(k) <= hi;
  };
  unsigned char c = at(i);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0, 0xBF) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

absl::Status WrongType(const std::string& field, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat("field '", field, "' must be ", want));
}

}  // namespace

std::string ToBase64(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = b(i) << 16 | b(i + 1) << 8 | b(i + 2);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = b(i) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = b(i) << 16 | b(i + 1) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

absl::StatusOr<std::string> FromBase64(std::string_view text) {
  size_t n = text.size();
  // Padding: at most two '=' at the end, and only to complete a group of four.
  size_t pad = 0;
  while (pad < 2 && n > 0 && text[n - 1] == '=') {
    --n;
    ++pad;
  }
  if (pad > 0 && (n + pad) % 4 != 0) return absl::InvalidArgumentError("malformed base64");
  if (n % 4 == 1) return absl::InvalidArgumentError("malformed base64");
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    int v = Base64Value(text[i]);
    if (v < 0) return absl::InvalidArgumentError("malformed base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits of the last group must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("malformed base64");
  }
  return out;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

void SetPathField(nlohmann::json& obj, const std::string& field, std::string_view raw) {
  if (IsValidUtf8(raw)) {
    obj[field] = std::string(raw);
    return;
  }
  obj[field] = SanitizeUtf8(raw);
  obj[field + "_base64"] = ToBase64(raw);
}

void SetPathArray(nlohmann::json& obj, const std::string& field,
                  const std::vector<std::string>& raw) {
  nlohmann::json strings = nlohmann::json::array();
  bool all_valid = true;
  for (const std::string& s : raw) {
    bool valid = IsValidUtf8(s);
    all_valid = all_valid && valid;
    strings.push_back(valid ? s : SanitizeUtf8(s));
  }
  obj[field] = std::move(strings);
  if (!all_valid) {
    nlohmann::json b64 = nlohmann::json::array();
    for (const std::string& s : raw) b64.push_back(ToBase64(s));
    obj[field + "_base64"] = std::move(b64);
  }
}

absl::StatusOr<std::string> GetPathField(const nlohmann::json& obj, const std::string& field) {
  if (!obj.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  auto b64 = obj.find(field + "_base64");
  if (b64 != obj.end() && !b64->is_null()) {
    if (!b64->is_string()) return WrongType(field + "_base64", "a base64 string");
    auto decoded = FromBase64(b64->get_ref<const std::string&>());
    if (!decoded.ok()) return WrongType(field + "_base64", "a base64 string");
    return decoded;
  }
  auto plain = obj.find(field);
  if (plain == obj.end() || plain->is_null()) return std::string();
  if (!plain->is_string()) return WrongType(field, "a string");
  return plain->get<std::string>();
}

absl::StatusOr<std::vector<std::string>> GetPathArray(const nlohmann::json& obj,
                                                      const std::string& field) {
  if (!obj.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  std::vector<std::string> out;
  auto b64 = obj.find(field + "_base64");
  if (b64 != obj.end() && !b64->is_null()) {
    if (!b64->is_array()) return WrongType(field + "_base64", "an array of base64 strings");
    for (const auto& e : *b64) {
      if (!e.is_string()) return WrongType(field + "_base64", "an array of base64 strings");
      auto decoded = FromBase64(e.get_ref<const std::string&>());
      if (!decoded.ok()) return WrongType(field + "_base64", "an array of base64 strings");
      out.push_back(*std::move(decoded));
    }
    return out;
  }
  auto plain = obj.find(field);
  if (plain == obj.end() || plain->is_null()) return out;
  if (!plain->is_array()) return WrongType(field, "an array of strings");
  for (const auto& e : *plain) {
    if (!e.is_string()) return WrongType(field, "an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

nlohmann::json StatusToJson(const absl::Status& status) {
  return nlohmann::json{{"code", absl::StatusCodeToString(status.code())},
                        {"message", SanitizeUtf8(std::string(status.message()))}};
}

absl::Status StatusFromJson(const nlohmann::json& error) {
  if (!error.is_object()) return absl::UnknownError("malformed error from the cairn peer");
  std::string message, code_name;
  auto m = error.find("message");
  if (m != error.end() && m->is_string()) message = m->get<std::string>();
  auto c = error.find("code");
  if (c != error.end() && c->is_string()) code_name = c->get<std::string>();
  for (int i = 0; i <= 16; ++i) {
    auto code = static_cast<absl::StatusCode>(i);
    if (absl::StatusCodeToString(code) == code_name) {
      if (code == absl::StatusCode::kOk) break;
      return absl::Status(code, message);
    }
  }
  return absl::UnknownError(message.empty() ? code_name : message);
}

std::string DumpJson(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("malformed JSON");
  return value;
}

std::string FormatRfc3339(int64_t unix_ns, bool nanoseconds) {
  int64_t secs = unix_ns / 1'000'000'000;
  int64_t frac = unix_ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!nanoseconds) return absl::StrCat(buf, "Z");
  char fbuf[16];
  std::snprintf(fbuf, sizeof fbuf, ".%09lld", static_cast<long long>(frac));
  return absl::StrCat(buf, fbuf, "Z");
}

}  // namespace cairn::api
