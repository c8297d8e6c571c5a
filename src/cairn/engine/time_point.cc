#include "cairn/engine/time_point.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <optional>

#include "absl/strings/numbers.h"

namespace cairn::engine {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Parses exactly `n` digits at `s[*pos]`.
bool Digits(const std::string& s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

// Up to 9 fraction digits after a '.' at `s[*pos]` (none when no '.'), as nanoseconds.
bool Fraction(const std::string& s, size_t* pos, int64_t* nanos) {
  *nanos = 0;
  if (*pos >= s.size() || s[*pos] != '.') return true;
  ++*pos;
  size_t start = *pos;
  int64_t scale = 100'000'000;
  while (*pos < s.size() && std::isdigit(static_cast<unsigned char>(s[*pos]))) {
    if (*pos - start < 9) {
      *nanos += (s[*pos] - '0') * scale;
      scale /= 10;
    }
    ++*pos;
  }
  return *pos > start;
}

}  // namespace

absl::StatusOr<int64_t> ParseTimePoint(const std::string& text, bool allow_local,
                                       bool allow_unix_ns) {
  std::string s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  auto bad = [&]() {
    std::string forms = "\"@UNIX_SECONDS\", RFC 3339 (\"2026-11-22T10:00:00Z\", \"...+01:00\")";
    if (allow_local) forms += ", local \"2026-11-22 10:00:00\" or \"2026-11-22\"";
    if (allow_unix_ns) forms += ", Unix nanoseconds";
    return absl::InvalidArgumentError("bad time '" + text + "': expected " + forms);
  };
  // Nanoseconds since the epoch fit in int64 from 1677 to 2262.
  constexpr int64_t kMaxSeconds = INT64_MAX / kNanosPerSecond - 1;
  auto out_of_range = [&]() {
    return absl::InvalidArgumentError("time '" + text +
                                      "' is out of range (years 1678 to 2261 only)");
  };
  if (s.empty()) return bad();
  if (s[0] == '@') {
    size_t pos = 1, start = 1;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    int64_t secs = 0;
    if (pos == start || pos - start > 12 || !absl::SimpleAtoi(s.substr(start, pos - start), &secs))
      return bad();
    int64_t nanos = 0;
    if (!Fraction(s, &pos, &nanos) || pos != s.size()) return bad();
    if (secs > kMaxSeconds) return out_of_range();
    return secs * kNanosPerSecond + nanos;
  }
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t ns = 0;
    if (!allow_unix_ns || !absl::SimpleAtoi(s, &ns)) return bad();
    return ns;
  }
  struct tm tm {};
  size_t pos = 0;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!Digits(s, &pos, 4, &year) || pos >= s.size() || s[pos++] != '-' ||
      !Digits(s, &pos, 2, &month) || pos >= s.size() || s[pos++] != '-' ||
      !Digits(s, &pos, 2, &day)) {
    return bad();
  }
  int64_t nanos = 0;
  bool has_time = false;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == 't' || s[pos] == ' ')) {
    ++pos;
    has_time = true;
    if (!Digits(s, &pos, 2, &hour) || pos >= s.size() || s[pos++] != ':' ||
        !Digits(s, &pos, 2, &minute)) {
      return bad();
    }
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!Digits(s, &pos, 2, &second) || !Fraction(s, &pos, &nanos)) return bad();
    }
  }
  std::optional<int> offset_seconds;
  if (pos < s.size()) {
    if (!has_time) return bad();
    if (s[pos] == 'Z' || s[pos] == 'z') {
      offset_seconds = 0;
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int sign = s[pos++] == '-' ? -1 : 1, oh, om;
      if (!Digits(s, &pos, 2, &oh) || pos >= s.size() || s[pos++] != ':' ||
          !Digits(s, &pos, 2, &om) || oh > 23 || om > 59) {
        return bad();
      }
      offset_seconds = sign * (oh * 3600 + om * 60);
    }
    if (pos != s.size()) return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second == 60 ? 59 : second;  // a leap second counts as the one before
  time_t t;
  struct tm check {};
  if (offset_seconds) {
    t = timegm(&tm);
    gmtime_r(&t, &check);
    t -= *offset_seconds;
  } else {
    if (!allow_local) {
      return absl::InvalidArgumentError("time '" + text +
                                        "' has no time zone: add 'Z' or an offset like +01:00");
    }
    tm.tm_isdst = -1;
    t = mktime(&tm);
    localtime_r(&t, &check);
  }
  // February 30th and the like normalize to another date: refuse them.
  if (check.tm_mday != day || check.tm_mon != month - 1 || check.tm_year != year - 1900) {
    return bad();
  }
  if (t > kMaxSeconds || t < -kMaxSeconds) return out_of_range();
  return static_cast<int64_t>(t) * kNanosPerSecond + nanos;
}

}  // namespace cairn::engine
