// Human-readable output of the CLI: aligned tables, times, sizes, rates, file modes, and the
// raw bytes of path fields from API JSON. Thread-safety: stateless apart from Table.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace cairn::cli {

// Columns separated by two spaces, left-aligned except those marked right-aligned; widths
// count UTF-8 code points so that names line up in a terminal.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned = {});
  void AddRow(std::vector<std::string> row);
  bool empty() const { return rows_.empty(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// Local time "2024-01-02 03:04:05" of nanoseconds since the epoch.
std::string FormatLocalTime(int64_t unix_ns);
// "4.2 s".
std::string FormatSeconds(double seconds);
// Decimal megabytes per second, "121.9 MB/s" ("-" when seconds <= 0).
std::string FormatRate(uint64_t bytes, double seconds);
// "3s ago", "5m ago", "2h ago", "3d ago".
std::string FormatAge(int64_t age_ns);
// ls-style mode string: type letter ('-', 'd', 'l') and rwx bits with setuid/setgid/sticky.
std::string ModeString(const std::string& type, uint32_t mode);

// Exact bytes of a path field in API JSON (`<field>_base64` when present); "" if absent or
// malformed.
std::string RawField(const nlohmann::json& obj, const std::string& field);
std::vector<std::string> RawArray(const nlohmann::json& obj, const std::string& field);

// Numbers and strings from API JSON without throwing (0 / "" when missing or mistyped).
uint64_t U64(const nlohmann::json& obj, const char* field);
int64_t I64(const nlohmann::json& obj, const char* field);
double Double(const nlohmann::json& obj, const char* field);
bool Bool(const nlohmann::json& obj, const char* field);
std::string Str(const nlohmann::json& obj, const char* field);

// Prints JSON (pretty, 2-space indent) and a newline on stdout.
void PrintJson(const nlohmann::json& value);

}  // namespace cairn::cli
