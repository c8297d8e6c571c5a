#include "cairn/cli/output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"

namespace cairn::cli {
namespace {

size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
  right_.resize(header_.size(), false);
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) width[i] = DisplayWidth(header_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      size_t pad = width[i] - DisplayWidth(row[i]);
      bool last = i + 1 == row.size();
      if (right_[i]) line += std::string(pad, ' ');
      line += row[i];
      if (!right_[i] && !last) line += std::string(pad, ' ');
      if (!last) line += "  ";
    }
    out << line << "\n";
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

std::string FormatLocalTime(int64_t unix_ns) {
  int64_t secs = unix_ns / 1'000'000'000;
  if (unix_ns < 0 && unix_ns % 1'000'000'000 != 0) --secs;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatSeconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  return buf;
}

std::string FormatRate(uint64_t bytes, double seconds) {
  if (!(seconds > 0)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", static_cast<double>(bytes) / seconds / 1e6);
  return buf;
}

std::string FormatAge(int64_t age_ns) {
  int64_t s = std::max<int64_t>(0, age_ns / 1'000'000'000);
  if (s < 120) return absl::StrCat(s, "s ago");
  if (s < 7200) return absl::StrCat(s / 60, "m ago");
  if (s < 2 * 86400) return absl::StrCat(s / 3600, "h ago");
  return absl::StrCat(s / 86400, "d ago");
}

std::string ModeString(const std::string& type, uint32_t mode) {
  std::string s(10, '-');
  s[0] = type == "dir" ? 'd' : type == "symlink" ? 'l' : '-';
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (1u << (8 - i))) s[1 + i] = rwx[i];
  }
  if (mode & 04000) s[3] = (mode & 0100) ? 's' : 'S';
  if (mode & 02000) s[6] = (mode & 0010) ? 's' : 'S';
  if (mode & 01000) s[9] = (mode & 0001) ? 't' : 'T';
  return s;
}

std::string RawField(const nlohmann::json& obj, const std::string& field) {
  auto v = api::GetPathField(obj, field);
  return v.ok() ? *v : std::string();
}

std::vector<std::string> RawArray(const nlohmann::json& obj, const std::string& field) {
  auto v = api::GetPathArray(obj, field);
  return v.ok() ? *v : std::vector<std::string>();
}

uint64_t U64(const nlohmann::json& obj, const char* field) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_number()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  return static_cast<uint64_t>(std::max(0.0, it->get<double>()));
}

int64_t I64(const nlohmann::json& obj, const char* field) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_number()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  return static_cast<int64_t>(it->get<double>());
}

double Double(const nlohmann::json& obj, const char* field) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_number()) return 0;
  return it->get<double>();
}

bool Bool(const nlohmann::json& obj, const char* field) {
  if (!obj.is_object()) return false;
  auto it = obj.find(field);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

std::string Str(const nlohmann::json& obj, const char* field) {
  if (!obj.is_object()) return "";
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

void PrintJson(const nlohmann::json& value) { std::cout << api::DumpJson(value, 2) << std::endl; }

}  // namespace cairn::cli
