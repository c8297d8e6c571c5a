#include "cairn/daemon/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/codec/erasure.h"
#include "cairn/engine/retention.h"
#include "cairn/env/file.h"
#include "cairn/format/tree.h"
#include "cairn/store/s3/s3_config.h"

namespace cairn::daemon {
namespace {

constexpr uint64_t kMaxConfigBytes = 1 << 20;

// Errors about one key: "<source>: key '<key>': <problem>".
class KeyErrors {
 public:
  explicit KeyErrors(std::string source) : source_(std::move(source)) {}
  absl::Status Bad(const std::string& key, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", key, "': ", problem));
  }
  absl::Status File(std::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", std::string(problem)));
  }

 private:
  std::string source_;
};

const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date/time";
  }
}

absl::StatusOr<int64_t> GetInt(const KeyErrors& err, const std::string& key, const toml::node& node,
                               int64_t min, int64_t max) {
  if (!node.is_integer()) {
    return err.Bad(key, absl::StrCat("expected an integer, got ", TypeName(node)));
  }
  int64_t v = node.as_integer()->get();
  if (v < min || v > max) {
    return err.Bad(key, absl::StrCat("must be between ", min, " and ", max, ", got ", v));
  }
  return v;
}

absl::StatusOr<std::string> GetString(const KeyErrors& err, const std::string& key,
                                      const toml::node& node) {
  if (!node.is_string())
    return err.Bad(key, absl::StrCat("expected a string, got ", TypeName(node)));
  return node.as_string()->get();
}

absl::StatusOr<std::string> GetAddress(const KeyErrors& err, const std::string& key,
                                       const toml::node& node) {
  CAIRN_ASSIGN_OR_RETURN(std::string s, GetString(err, key, node));
  auto hp = SplitHostPort(s);
  if (!hp.ok()) return err.Bad(key, std::string(hp.status().message()));
  return s;
}

// A size: integer bytes or a size string ("10G").
absl::StatusOr<uint64_t> GetSize(const KeyErrors& err, const std::string& key,
                                 const toml::node& node) {
  if (node.is_integer()) {
    int64_t v = node.as_integer()->get();
    if (v < 0) return err.Bad(key, absl::StrCat("size must not be negative, got ", v));
    return static_cast<uint64_t>(v);
  }
  if (!node.is_string()) {
    return err.Bad(key, absl::StrCat("expected a size (\"10G\" or bytes), got ", TypeName(node)));
  }
  auto v = ParseSize(node.as_string()->get());
  if (!v.ok()) return err.Bad(key, std::string(v.status().message()));
  return *v;
}

absl::StatusOr<std::chrono::milliseconds> GetDuration(const KeyErrors& err, const std::string& key,
                                                      const toml::node& node) {
  if (!node.is_string()) {
    return err.Bad(key,
                   absl::StrCat("expected a duration string like \"2s\", got ", TypeName(node)));
  }
  auto d = ParseDuration(node.as_string()->get());
  if (!d.ok()) return err.Bad(key, std::string(d.status().message()));
  return *d;
}

// Adds `key` (a chunker/backup size) as an integer of bytes; sizes are also accepted as strings.
absl::StatusOr<uint32_t> GetChunkSize(const KeyErrors& err, const std::string& key,
                                      const toml::node& node) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t v, GetSize(err, key, node));
  if (v > std::numeric_limits<uint32_t>::max()) return err.Bad(key, "chunk size too large");
  return static_cast<uint32_t>(v);
}

std::string TomlQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// "10G" when exact, else plain bytes.
std::string SizeForConfig(uint64_t bytes) {
  static const struct {
    uint64_t mult;
    const char* suffix;
  } kUnits[] = {{1ull << 40, "T"}, {1ull << 30, "G"}, {1ull << 20, "M"}, {1ull << 10, "K"}};
  if (bytes == 0) return "\"0\"";
  for (const auto& u : kUnits) {
    if (bytes % u.mult == 0) return absl::StrCat("\"", bytes / u.mult, u.suffix, "\"");
  }
  return std::to_string(bytes);
}

absl::StatusOr<toml::table> ParseToml(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat(source, ":", begin.line, ":", begin.column, ": ",
                                                   std::string(e.description())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

// Replaces the value of root key `key` in `text` with the TOML string `value`, using the source
// region toml++ recorded. False when the key is absent or spans lines.
// Replaces the value text of top-level `key` with `value` (already TOML: quoted if a string).
bool ReplaceValue(std::string& text, const toml::table& table, const std::string& key,
                  const std::string& value) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return false;
  const toml::source_region& r = node->source();
  if (r.begin.line == 0 || r.begin.line != r.end.line || r.end.column <= r.begin.column) {
    return false;
  }
  // Find the start of the line (1-based line numbers, 1-based columns).
  size_t pos = 0;
  for (uint32_t line = 1; line < r.begin.line; ++line) {
    pos = text.find('\n', pos);
    if (pos == std::string::npos) return false;
    ++pos;
  }
  size_t begin = pos + r.begin.column - 1, end = pos + r.end.column - 1;
  if (end > text.size()) return false;
  text.replace(begin, end - begin, value);
  return true;
}

// [[source]] and [watch] (daemon/sources.h) -------------------------------------------------

// One keep_* key of a retention policy ([retention] or a [[source]]); false when `name` is
// not one.
absl::StatusOr<bool> ParseKeepKey(const KeyErrors& err, const std::string& sub,
                                  const std::string& name, const toml::node& node,
                                  engine::RetentionPolicy& r) {
  int* count = name == "keep_last"      ? &r.keep_last
               : name == "keep_hourly"  ? &r.keep_hourly
               : name == "keep_daily"   ? &r.keep_daily
               : name == "keep_weekly"  ? &r.keep_weekly
               : name == "keep_monthly" ? &r.keep_monthly
               : name == "keep_yearly"  ? &r.keep_yearly
                                        : nullptr;
  if (count != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, node, -1, 1000000));
    *count = static_cast<int>(v);
    return true;
  }
  if (name == "keep_within") {
    CAIRN_ASSIGN_OR_RETURN(std::string text, GetString(err, sub, node));
    r.keep_within = {};
    if (!text.empty()) {
      auto d = engine::ParseRetentionDuration(text);
      if (!d.ok()) return err.Bad(sub, std::string(d.status().message()));
      r.keep_within = *d;
    }
    return true;
  }
  if (name == "keep_tags") {
    const toml::array* arr = node.as_array();
    if (arr == nullptr) {
      return err.Bad(sub, absl::StrCat("expected an array of strings, got ", TypeName(node)));
    }
    for (const toml::node& e : *arr) {
      CAIRN_ASSIGN_OR_RETURN(std::string tag, GetString(err, sub, e));
      r.keep_tags.push_back(std::move(tag));
    }
    return true;
  }
  return false;
}

// A duration, or "" for none (0).
absl::StatusOr<std::chrono::milliseconds> GetOptionalDuration(const KeyErrors& err,
                                                              const std::string& key,
                                                              const toml::node& node) {
  if (node.is_string() && node.as_string()->get().empty()) return std::chrono::milliseconds(0);
  return GetDuration(err, key, node);
}

std::string OptionalDurationText(std::chrono::milliseconds d) {
  return d.count() > 0 ? FormatDuration(d) : std::string();
}

absl::StatusOr<ArchiveConfig> ParseArchive(const KeyErrors& err, size_t index,
                                           const toml::node& node) {
  const std::string name = absl::StrCat("archive[", index + 1, "]");
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    return err.Bad(name, absl::StrCat("expected a table ([[archive]]), got ", TypeName(node)));
  }
  ArchiveConfig a;
  for (auto&& [k2, n2] : *t) {
    std::string key(k2.str());
    std::string sub = absl::StrCat(name, ".", key);
    if (key == "name") {
      CAIRN_ASSIGN_OR_RETURN(a.name, GetString(err, sub, n2));
      if (!format::IsArchiveName(a.name)) {
        return err.Bad(sub, "must be 1 to 64 of the characters A-Z a-z 0-9 . _ -");
      }
    } else if (key == "mountpoint") {
      CAIRN_ASSIGN_OR_RETURN(a.mountpoint, GetString(err, sub, n2));
      if (a.mountpoint.empty() || a.mountpoint[0] != '/') {
        return err.Bad(sub, absl::StrCat("must be an absolute path, got '", a.mountpoint, "'"));
      }
    } else if (key == "spool") {
      CAIRN_ASSIGN_OR_RETURN(a.spool, GetSize(err, sub, n2));
      if (a.spool < (1u << 20)) return err.Bad(sub, "must be at least 1M");
    } else if (key == "allow_other") {
      if (!n2.is_boolean()) {
        return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
      }
      a.allow_other = n2.as_boolean()->get();
    } else {
      return err.Bad(sub, "unknown key");
    }
  }
  if (a.name.empty()) return err.Bad(name, "missing required key 'name'");
  if (a.mountpoint.empty()) return err.Bad(name, "missing required key 'mountpoint'");
  return a;
}

absl::StatusOr<SourceConfig> ParseSource(const KeyErrors& err, size_t index,
                                         const toml::node& node) {
  const std::string name = absl::StrCat("source[", index + 1, "]");
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    return err.Bad(name, absl::StrCat("expected a table ([[source]]), got ", TypeName(node)));
  }
  SourceConfig s;
  bool have_path = false;
  for (auto&& [k2, n2] : *t) {
    std::string key(k2.str());
    std::string sub = absl::StrCat(name, ".", key);
    if (key == "path") {
      CAIRN_ASSIGN_OR_RETURN(s.path, GetString(err, sub, n2));
      if (s.path.empty() || s.path[0] != '/') {
        return err.Bad(sub, absl::StrCat("must be an absolute path, got '", s.path, "'"));
      }
      s.path = NormalSourcePath(s.path);
      have_path = true;
    } else if (key == "copies") {
      CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 64));
      s.copies = static_cast<uint32_t>(v);
    } else if (key == "ec") {
      CAIRN_ASSIGN_OR_RETURN(s.ec, GetString(err, sub, n2));
      if (!s.ec.empty()) {
        auto scheme = codec::ParseErasureScheme(s.ec);
        if (!scheme.ok()) return err.Bad(sub, std::string(scheme.status().message()));
        s.ec = scheme->ToString();
      }
    } else if (key == "exclude") {
      const toml::array* arr = n2.as_array();
      if (arr == nullptr) {
        return err.Bad(sub, absl::StrCat("expected an array of globs, got ", TypeName(n2)));
      }
      for (const toml::node& e : *arr) {
        CAIRN_ASSIGN_OR_RETURN(std::string glob, GetString(err, sub, e));
        if (glob.empty()) return err.Bad(sub, "an exclude glob must not be empty");
        s.excludes.push_back(std::move(glob));
      }
    } else if (key == "schedule") {
      CAIRN_ASSIGN_OR_RETURN(s.schedule, GetOptionalDuration(err, sub, n2));
    } else if (key == "watch") {
      if (!n2.is_boolean()) {
        return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
      }
      s.watch = n2.as_boolean()->get();
    } else {
      CAIRN_ASSIGN_OR_RETURN(bool keep, ParseKeepKey(err, sub, key, n2, s.keep));
      if (!keep) return err.Bad(sub, "unknown key");
    }
  }
  if (!have_path) return err.Bad(name, "missing required key 'path'");
  if (s.copies != 0 && !s.ec.empty()) {
    return err.Bad(name, "'copies' and 'ec' exclude each other");
  }
  return s;
}

void RenderSources(std::ostringstream& o, const std::vector<SourceConfig>& sources) {
  for (const SourceConfig& s : sources) {
    o << "\n[[source]]\n"
      << "path = " << TomlQuote(s.path) << "\n";
    if (s.copies != 0) o << "copies = " << s.copies << "\n";
    if (!s.ec.empty()) o << "ec = " << TomlQuote(s.ec) << "\n";
    o << "exclude = [";
    for (size_t i = 0; i < s.excludes.size(); ++i) {
      o << (i ? ", " : "") << TomlQuote(s.excludes[i]);
    }
    o << "]\n"
      << "schedule = " << TomlQuote(OptionalDurationText(s.schedule)) << "\n"
      << "watch = " << (s.watch ? "true" : "false") << "\n";
    const engine::RetentionPolicy& k = s.keep;
    const std::pair<const char*, int> counts[] = {
        {"keep_last", k.keep_last},       {"keep_hourly", k.keep_hourly},
        {"keep_daily", k.keep_daily},     {"keep_weekly", k.keep_weekly},
        {"keep_monthly", k.keep_monthly}, {"keep_yearly", k.keep_yearly}};
    for (const auto& [name, v] : counts) {
      if (v != 0) o << name << " = " << v << "\n";
    }
    if (!k.keep_within.zero()) {
      o << "keep_within = " << TomlQuote(k.keep_within.ToString()) << "\n";
    }
    if (!k.keep_tags.empty()) {
      o << "keep_tags = [";
      for (size_t i = 0; i < k.keep_tags.size(); ++i) {
        o << (i ? ", " : "") << TomlQuote(k.keep_tags[i]);
      }
      o << "]\n";
    }
  }
}

// `text` without its [[source]] blocks: from a `[[source]]` header line to the next table
// header, leaving the comment and blank lines right above that header to it.
std::string CutSourceBlocks(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  auto is_header = [](const std::string& line) {
    absl::string_view v = absl::StripLeadingAsciiWhitespace(line);
    return !v.empty() && v[0] == '[';
  };
  auto is_source_header = [](const std::string& line) {
    std::string v(absl::StripAsciiWhitespace(line));
    size_t hash = v.find('#');
    if (hash != std::string::npos) v = std::string(absl::StripAsciiWhitespace(v.substr(0, hash)));
    v.erase(std::remove(v.begin(), v.end(), ' '), v.end());
    return v == "[[source]]";
  };
  std::vector<bool> cut(lines.size(), false);
  for (size_t i = 0; i < lines.size();) {
    if (!is_source_header(lines[i])) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < lines.size() && !is_header(lines[end])) ++end;
    size_t keep_from = end;
    if (end < lines.size()) {
      while (keep_from > i + 1) {
        absl::string_view v = absl::StripLeadingAsciiWhitespace(lines[keep_from - 1]);
        if (!v.empty() && v[0] != '#') break;
        --keep_from;
      }
    }
    for (size_t j = i; j < keep_from; ++j) cut[j] = true;
    i = end;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!cut[i]) kept.push_back(std::move(lines[i]));
  }
  std::string out = absl::StrJoin(kept, "\n");
  // Drop the blank lines the cut left at the end.
  while (!out.empty() && absl::ascii_isspace(static_cast<unsigned char>(out.back()))) {
    out.pop_back();
  }
  return out + "\n";
}

}  // namespace

bool Config::SameSettings(const Config& o) const {
  return peer_id == o.peer_id && host_id == o.host_id && site == o.site && listen == o.listen &&
         api == o.api && quota == o.quota && seeds == o.seeds && ping_interval == o.ping_interval &&
         suspect_after == o.suspect_after && dead_after == o.dead_after && copies == o.copies &&
         offsite == o.offsite && ec == o.ec && upload_threads == o.upload_threads &&
         chunker.min_size == o.chunker.min_size && chunker.avg_size == o.chunker.avg_size &&
         chunker.max_size == o.chunker.max_size && scrub_enabled == o.scrub_enabled &&
         scrub_interval == o.scrub_interval && scrub_rate == o.scrub_rate &&
         storage_layout == o.storage_layout && segment_size == o.segment_size &&
         compact_below == o.compact_below && compact_rate == o.compact_rate &&
         disk_reserve == o.disk_reserve && storage_bucket == o.storage_bucket &&
         storage_keep_local == o.storage_keep_local && s3_endpoint == o.s3_endpoint &&
         s3_region == o.s3_region && s3_credentials_file == o.s3_credentials_file &&
         s3_profile == o.s3_profile && s3_rate == o.s3_rate &&
         s3_max_requests == o.s3_max_requests && repair_enabled == o.repair_enabled &&
         repair_interval == o.repair_interval && repair_rate == o.repair_rate &&
         metrics_listen == o.metrics_listen && discovery == o.discovery &&
         retention == o.retention && extra == o.extra && watch == o.watch && sources == o.sources;
}

std::string ConfigPath(const std::string& dir) { return dir + "/cairn.toml"; }

absl::StatusOr<Config> ParseConfig(std::string_view text, const std::string& source) {
  KeyErrors err(source);
  CAIRN_ASSIGN_OR_RETURN(toml::table root, ParseToml(text, source));
  Config c;
  bool have_peer_id = false, have_host_id = false, have_site = false;
  for (auto&& [k, node] : root) {
    std::string key(k.str());
    if (key == "peer_id") {
      CAIRN_ASSIGN_OR_RETURN(int64_t v,
                             GetInt(err, key, node, 1, std::numeric_limits<int64_t>::max()));
      c.peer_id = static_cast<PeerId>(v);
      have_peer_id = true;
    } else if (key == "host_id") {
      CAIRN_ASSIGN_OR_RETURN(c.host_id, GetString(err, key, node));
      if (c.host_id.empty()) return err.Bad(key, "must not be empty");
      have_host_id = true;
    } else if (key == "site") {
      CAIRN_ASSIGN_OR_RETURN(c.site, GetString(err, key, node));
      if (c.site.size() > 256) return err.Bad(key, "must be at most 256 bytes");
      have_site = true;
    } else if (key == "listen") {
      CAIRN_ASSIGN_OR_RETURN(c.listen, GetAddress(err, key, node));
    } else if (key == "api") {
      CAIRN_ASSIGN_OR_RETURN(c.api, GetAddress(err, key, node));
      std::string host = SplitHostPort(c.api)->first;
      if (!IsLoopbackHost(host)) {
        return err.Bad(
            key, absl::StrCat("must be a loopback address (127.0.0.1, ::1), got '", c.api, "'"));
      }
    } else if (key == "quota") {
      CAIRN_ASSIGN_OR_RETURN(c.quota, GetSize(err, key, node));
    } else if (key == "seeds") {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) {
        return err.Bad(
            key, absl::StrCat("expected an array of \"host:port\" strings, got ", TypeName(node)));
      }
      for (const toml::node& e : *arr) {
        CAIRN_ASSIGN_OR_RETURN(std::string seed, GetAddress(err, key, e));
        c.seeds.push_back(std::move(seed));
      }
    } else if (key == "ping_interval") {
      CAIRN_ASSIGN_OR_RETURN(c.ping_interval, GetDuration(err, key, node));
    } else if (key == "suspect_after") {
      CAIRN_ASSIGN_OR_RETURN(c.suspect_after, GetDuration(err, key, node));
    } else if (key == "dead_after") {
      CAIRN_ASSIGN_OR_RETURN(c.dead_after, GetDuration(err, key, node));
    } else if (key == "backup") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("backup.", std::string(k2.str()));
        if (k2.str() == "copies") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 64));
          c.copies = static_cast<uint32_t>(v);
        } else if (k2.str() == "offsite") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 0, 64));
          c.offsite = static_cast<uint32_t>(v);
        } else if (k2.str() == "ec") {
          CAIRN_ASSIGN_OR_RETURN(c.ec, GetString(err, sub, n2));
          if (!c.ec.empty()) {
            auto scheme = codec::ParseErasureScheme(c.ec);
            if (!scheme.ok()) return err.Bad(sub, std::string(scheme.status().message()));
            c.ec = scheme->ToString();
          }
        } else if (k2.str() == "upload_threads") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 256));
          c.upload_threads = static_cast<int>(v);
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "chunker") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("chunker.", std::string(k2.str()));
        if (k2.str() == "min_size") {
          CAIRN_ASSIGN_OR_RETURN(c.chunker.min_size, GetChunkSize(err, sub, n2));
        } else if (k2.str() == "avg_size") {
          CAIRN_ASSIGN_OR_RETURN(c.chunker.avg_size, GetChunkSize(err, sub, n2));
        } else if (k2.str() == "max_size") {
          CAIRN_ASSIGN_OR_RETURN(c.chunker.max_size, GetChunkSize(err, sub, n2));
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
      absl::Status valid = c.chunker.Validate();
      if (!valid.ok()) return err.Bad("chunker", std::string(valid.message()));
    } else if (key == "discovery") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("discovery.", std::string(k2.str()));
        if (k2.str() == "multicast") {
          if (!n2.is_boolean()) {
            return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
          }
          c.discovery.multicast = n2.as_boolean()->get();
        } else if (k2.str() == "group") {
          CAIRN_ASSIGN_OR_RETURN(c.discovery.group, GetString(err, sub, n2));
          in_addr group{};
          if (::inet_pton(AF_INET, c.discovery.group.c_str(), &group) != 1 ||
              !IN_MULTICAST(ntohl(group.s_addr))) {
            return err.Bad(sub,
                           "must be an IPv4 multicast address (224.0.0.0/4), e.g. "
                           "\"239.255.67.82\"");
          }
        } else if (k2.str() == "port") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 65535));
          c.discovery.port = static_cast<int>(v);
        } else if (k2.str() == "interval") {
          CAIRN_ASSIGN_OR_RETURN(c.discovery.interval, GetDuration(err, sub, n2));
        } else if (k2.str() == "interface") {
          CAIRN_ASSIGN_OR_RETURN(c.discovery.interface, GetString(err, sub, n2));
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "scrub") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("scrub.", std::string(k2.str()));
        if (k2.str() == "enabled") {
          if (!n2.is_boolean()) {
            return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
          }
          c.scrub_enabled = n2.as_boolean()->get();
        } else if (k2.str() == "interval") {
          CAIRN_ASSIGN_OR_RETURN(c.scrub_interval, GetDuration(err, sub, n2));
        } else if (k2.str() == "rate") {
          CAIRN_ASSIGN_OR_RETURN(c.scrub_rate, GetSize(err, sub, n2));
          if (c.scrub_rate == 0) return err.Bad(sub, "must be at least 1 byte per second");
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "storage") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("storage.", std::string(k2.str()));
        if (k2.str() == "layout") {
          CAIRN_ASSIGN_OR_RETURN(c.storage_layout, GetString(err, sub, n2));
          if (c.storage_layout != "" && c.storage_layout != "segments" &&
              c.storage_layout != "files") {
            return err.Bad(sub, "must be \"segments\", \"files\" or \"\" (auto)");
          }
        } else if (k2.str() == "segment_size") {
          CAIRN_ASSIGN_OR_RETURN(c.segment_size, GetSize(err, sub, n2));
          if (c.segment_size < (1u << 20)) return err.Bad(sub, "must be at least 1M");
        } else if (k2.str() == "compact_below") {
          if (!n2.is_number()) {
            return err.Bad(sub, absl::StrCat("expected a number, got ", TypeName(n2)));
          }
          c.compact_below = n2.value<double>().value_or(0.5);
          if (!(c.compact_below >= 0 && c.compact_below <= 1)) {
            return err.Bad(sub, "must be between 0 and 1");
          }
        } else if (k2.str() == "compact_rate") {
          CAIRN_ASSIGN_OR_RETURN(c.compact_rate, GetSize(err, sub, n2));
        } else if (k2.str() == "disk_reserve") {
          CAIRN_ASSIGN_OR_RETURN(c.disk_reserve, GetSize(err, sub, n2));
        } else if (k2.str() == "bucket") {
          CAIRN_ASSIGN_OR_RETURN(c.storage_bucket, GetString(err, sub, n2));
        } else if (k2.str() == "keep_local") {
          if (!n2.is_boolean()) {
            return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
          }
          c.storage_keep_local = n2.as_boolean()->get();
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "repair") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("repair.", std::string(k2.str()));
        if (k2.str() == "enabled") {
          if (!n2.is_boolean()) {
            return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
          }
          c.repair_enabled = n2.as_boolean()->get();
        } else if (k2.str() == "interval") {
          CAIRN_ASSIGN_OR_RETURN(c.repair_interval, GetDuration(err, sub, n2));
        } else if (k2.str() == "rate") {
          CAIRN_ASSIGN_OR_RETURN(c.repair_rate, GetSize(err, sub, n2));
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "s3") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("s3.", std::string(k2.str()));
        if (k2.str() == "endpoint") {
          CAIRN_ASSIGN_OR_RETURN(c.s3_endpoint, GetString(err, sub, n2));
        } else if (k2.str() == "region") {
          CAIRN_ASSIGN_OR_RETURN(c.s3_region, GetString(err, sub, n2));
          if (c.s3_region.empty()) return err.Bad(sub, "must not be empty");
        } else if (k2.str() == "credentials_file") {
          CAIRN_ASSIGN_OR_RETURN(c.s3_credentials_file, GetString(err, sub, n2));
        } else if (k2.str() == "profile") {
          CAIRN_ASSIGN_OR_RETURN(c.s3_profile, GetString(err, sub, n2));
        } else if (k2.str() == "rate") {
          CAIRN_ASSIGN_OR_RETURN(c.s3_rate, GetSize(err, sub, n2));
        } else if (k2.str() == "max_requests") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 64));
          c.s3_max_requests = static_cast<int>(v);
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "metrics") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("metrics.", std::string(k2.str()));
        if (k2.str() == "listen") {
          CAIRN_ASSIGN_OR_RETURN(c.metrics_listen, GetString(err, sub, n2));
          if (c.metrics_listen.empty()) continue;  // off
          CAIRN_ASSIGN_OR_RETURN(c.metrics_listen, GetAddress(err, sub, n2));
          // Served without the token: loopback only, like the API (docs/security.md).
          if (!IsLoopbackHost(SplitHostPort(c.metrics_listen)->first)) {
            return err.Bad(sub, absl::StrCat("must be a loopback address (127.0.0.1, ::1), got '",
                                             c.metrics_listen, "'"));
          }
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "retention") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string name(k2.str());
        std::string sub = absl::StrCat("retention.", name);
        CAIRN_ASSIGN_OR_RETURN(bool known, ParseKeepKey(err, sub, name, n2, c.retention));
        if (!known) return err.Bad(sub, "unknown key");
      }
    } else if (key == "extra") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("extra.", std::string(k2.str()));
        if (k2.str() == "metadata" || k2.str() == "data") {
          if (!n2.is_boolean()) {
            return err.Bad(sub, absl::StrCat("expected true or false, got ", TypeName(n2)));
          }
          (k2.str() == "metadata" ? c.extra.metadata : c.extra.data) = n2.as_boolean()->get();
        } else if (k2.str() == "copies") {
          CAIRN_ASSIGN_OR_RETURN(int64_t v, GetInt(err, sub, n2, 1, 8));
          c.extra.copies = static_cast<uint32_t>(v);
        } else if (k2.str() == "max_fill") {
          if (!n2.is_number()) {
            return err.Bad(sub, absl::StrCat("expected a number, got ", TypeName(n2)));
          }
          double v = n2.is_integer() ? static_cast<double>(n2.as_integer()->get())
                                     : n2.as_floating_point()->get();
          if (!(v > 0 && v <= 1)) return err.Bad(sub, "must be in (0, 1]");
          c.extra.max_fill = v;
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "watch") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return err.Bad(key, absl::StrCat("expected a table, got ", TypeName(node)));
      for (auto&& [k2, n2] : *t) {
        std::string sub = absl::StrCat("watch.", std::string(k2.str()));
        if (k2.str() == "quiet_period") {
          CAIRN_ASSIGN_OR_RETURN(c.watch.quiet_period, GetDuration(err, sub, n2));
        } else if (k2.str() == "rescan_interval") {
          CAIRN_ASSIGN_OR_RETURN(c.watch.rescan_interval, GetOptionalDuration(err, sub, n2));
        } else {
          return err.Bad(sub, "unknown key");
        }
      }
    } else if (key == "source") {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) {
        return err.Bad(
            key, absl::StrCat("expected an array of tables ([[source]]), got ", TypeName(node)));
      }
      for (size_t i = 0; i < arr->size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(SourceConfig s, ParseSource(err, i, *arr->get(i)));
        for (const SourceConfig& other : c.sources) {
          if (other.path == s.path) {
            return err.Bad(absl::StrCat("source[", i + 1, "].path"),
                           absl::StrCat("'", s.path, "' is already a source"));
          }
        }
        c.sources.push_back(std::move(s));
      }
    } else if (key == "archive") {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) {
        return err.Bad(
            key, absl::StrCat("expected an array of tables ([[archive]]), got ", TypeName(node)));
      }
      for (size_t i = 0; i < arr->size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(ArchiveConfig a, ParseArchive(err, i, *arr->get(i)));
        for (const ArchiveConfig& other : c.archives) {
          if (other.name == a.name) {
            return err.Bad(
                absl::StrCat("archive[", i + 1, "].name"),
                absl::StrCat("'", a.name, "' is already mounted by another [[archive]]"));
          }
        }
        c.archives.push_back(std::move(a));
      }
    } else {
      return err.Bad(key, "unknown key");
    }
  }
  if (!have_peer_id) return err.File("missing required key 'peer_id'");
  if (!have_host_id) c.host_id = DefaultHostId();
  if (!have_site && !c.storage_bucket.empty()) c.site = kBucketSite;
  if (c.suspect_after > c.dead_after) {
    return err.Bad("suspect_after", "must not be longer than dead_after");
  }
  if (!c.storage_bucket.empty()) {
    auto where = store::s3::ParseS3Url(c.storage_bucket, c.s3_endpoint, c.s3_region);
    if (!where.ok()) return err.Bad("storage.bucket", std::string(where.status().message()));
    if (c.storage_layout == "files") {
      return err.Bad("storage.bucket", "needs layout \"segments\" (or \"\"), not \"files\"");
    }
  }
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& dir) {
  std::string path = ConfigPath(dir);
  auto text = env::ReadFileString(path, kMaxConfigBytes);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat(
          path, " not found: is ", dir,
          " a cairn peer directory? (create one with `cairn init --dir ", dir, " --peer-id N`)"));
    }
    return text.status();
  }
  CAIRN_ASSIGN_OR_RETURN(Config c, ParseConfig(*text, path));
  c.dir = dir;
  return c;
}

std::string RenderConfig(const Config& c) {
  std::ostringstream o;
  o << "# cairn peer configuration (see `cairn --help` and docs/operations.md).\n"
    << "\n"
    << "# This peer's permanent id, unique in the cluster.\n"
    << "peer_id = " << c.peer_id << "\n"
    << "# Failure domain: peers with the same host_id are on the same computer.\n"
    << "host_id = " << TomlQuote(c.host_id) << "\n"
    << "# Site: \"\" = the LAN. A backup's off-site copies go to peers of another site\n"
    << "# (docs/operations.md \"Sites and off-site copies\").\n"
    << "site = " << TomlQuote(c.site) << "\n"
    << "# Peer service (gRPC) address. Port 0 = pick a free port at first start (written back).\n"
    << "listen = " << TomlQuote(c.listen) << "\n"
    << "# Local HTTP API used by the cairn CLI; loopback only. Port 0 as above.\n"
    << "api = " << TomlQuote(c.api) << "\n"
    << "# Disk space lent to other peers (bytes, or a size like \"500M\", \"20G\", \"1T\").\n"
    << "quota = " << SizeForConfig(c.quota) << "\n"
    << "# Other peers' listen addresses, used to join the cluster.\n"
    << "seeds = [";
  for (size_t i = 0; i < c.seeds.size(); ++i) o << (i ? ", " : "") << TomlQuote(c.seeds[i]);
  o << "]\n"
    << "# Membership timing (durations: \"500ms\", \"2s\", \"10m\", \"1h\").\n"
    << "ping_interval = " << TomlQuote(FormatDuration(c.ping_interval)) << "\n"
    << "suspect_after = " << TomlQuote(FormatDuration(c.suspect_after)) << "\n"
    << "dead_after = " << TomlQuote(FormatDuration(c.dead_after)) << "\n"
    << "\n"
    << "[discovery]  # UDP multicast announcements: peers on one LAN find each other\n"
    << "multicast = " << (c.discovery.multicast ? "true" : "false") << "\n"
    << "group = " << TomlQuote(c.discovery.group) << "\n"
    << "port = " << c.discovery.port << "\n"
    << "interval = " << TomlQuote(FormatDuration(c.discovery.interval)) << "\n"
    << "# Interface name or IPv4 address; empty: loopback if `listen` is, else the default.\n"
    << "interface = " << TomlQuote(c.discovery.interface) << "\n"
    << "\n"
    << "[backup]\n"
    << "# Default number of copies of each chunk, on distinct peers (and hosts when possible).\n"
    << "copies = " << c.copies << "\n"
    << "# Of those copies (or k+m shards), how many go to peers of another site.\n"
    << "offsite = " << c.offsite << "\n"
    << "# Default erasure coding instead of copies, \"K+M\" (e.g. \"4+2\": any 2 of 6 peers may\n"
    << "# be lost, 1.5x the data stored); \"\" = copies. See docs/operations.md.\n"
    << "ec = " << TomlQuote(c.ec) << "\n"
    << "upload_threads = " << c.upload_threads << "\n"
    << "\n"
    << "[chunker]  # recorded at init; never changes under existing data\n"
    << "min_size = " << c.chunker.min_size << "\n"
    << "avg_size = " << c.chunker.avg_size << "\n"
    << "max_size = " << c.chunker.max_size << "\n"
    << "\n"
    << "[scrub]  # re-hash the blobs held for others; corrupt ones are quarantined\n"
    << "enabled = " << (c.scrub_enabled ? "true" : "false") << "\n"
    << "# Time from the end of one full pass to the start of the next.\n"
    << "interval = " << TomlQuote(FormatDuration(c.scrub_interval)) << "\n"
    << "# Bytes read per second (a size like \"20M\").\n"
    << "rate = " << SizeForConfig(c.scrub_rate) << "\n"
    << "\n"
    << "[storage]  # blobs held for other peers (docs/operations.md \"Storage\")\n"
    << "# \"segments\" (pack files), \"files\" (one file per blob, older peers), \"\" = auto.\n"
    << "layout = " << TomlQuote(c.storage_layout) << "\n"
    << "segment_size = " << SizeForConfig(c.segment_size) << "\n"
    << "# Segments whose live fraction falls below this are rewritten (compaction).\n"
    << "compact_below = " << c.compact_below << "\n"
    << "# Bytes per second copied by compaction (0 = unlimited).\n"
    << "compact_rate = " << SizeForConfig(c.compact_rate) << "\n"
    << "# Bytes puts leave free on the disk (for the index and compaction).\n"
    << "disk_reserve = " << SizeForConfig(c.disk_reserve) << "\n"
    << "# Sealed segments kept in an S3-compatible bucket, \"s3://BUCKET/PREFIX\" (\"\" = local\n"
    << "# only); keep_local also keeps uploaded segments on this disk as a read cache.\n"
    << "bucket = " << TomlQuote(c.storage_bucket) << "\n"
    << "keep_local = " << (c.storage_keep_local ? "true" : "false") << "\n"
    << "\n"
    << "[s3]  # how to reach [storage] bucket; endpoint \"\" = AWS\n"
    << "endpoint = " << TomlQuote(c.s3_endpoint) << "\n"
    << "region = " << TomlQuote(c.s3_region) << "\n"
    << "# AWS credentials file; \"\" = AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then\n"
    << "# ~/.aws/credentials. profile \"\" = AWS_PROFILE or \"default\".\n"
    << "credentials_file = " << TomlQuote(c.s3_credentials_file) << "\n"
    << "profile = " << TomlQuote(c.s3_profile) << "\n"
    << "# Upload rate, bytes per second (0 = unlimited), and requests in flight at once.\n"
    << "rate = " << SizeForConfig(c.s3_rate) << "\n"
    << "max_requests = " << c.s3_max_requests << "\n"
    << "\n"
    << "[repair]  # check own backups and rebuild what is below target\n"
    << "enabled = " << (c.repair_enabled ? "true" : "false") << "\n"
    << "# Also runs whenever a peer becomes dead.\n"
    << "interval = " << TomlQuote(FormatDuration(c.repair_interval)) << "\n"
    << "# Bytes sent per second by repair (0 = unlimited), so that backups are not starved.\n"
    << "rate = " << SizeForConfig(c.repair_rate) << "\n"
    << "\n"
    << "[metrics]  # GET /metrics (Prometheus) is always on the API, with the token; listen\n"
    << "# adds a loopback address serving /metrics and /v1/health without it (\"\" = off).\n"
    << "listen = " << TomlQuote(c.metrics_listen) << "\n"
    << "\n"
    << "[retention]  # like restic forget --keep-*: applied after each backup to the snapshots\n"
    << "# of the same host and paths; unused blobs are then deleted on every peer. Counts:\n"
    << "# 0 = unset, -1 = unlimited; keep_within like \"7d\", \"1y6m\". All unset: keep all.\n"
    << "keep_last = " << c.retention.keep_last << "\n"
    << "keep_hourly = " << c.retention.keep_hourly << "\n"
    << "keep_daily = " << c.retention.keep_daily << "\n"
    << "keep_weekly = " << c.retention.keep_weekly << "\n"
    << "keep_monthly = " << c.retention.keep_monthly << "\n"
    << "keep_yearly = " << c.retention.keep_yearly << "\n"
    << "keep_within = " << TomlQuote(c.retention.keep_within.ToString()) << "\n"
    << "keep_tags = [";
  for (size_t i = 0; i < c.retention.keep_tags.size(); ++i) {
    o << (i ? ", " : "") << TomlQuote(c.retention.keep_tags[i]);
  }
  o << "]\n"
    << "\n"
    << "[extra]  # extra copies in other peers' spare space: never counted toward the target,\n"
    << "# the first thing evicted when a peer needs the space\n"
    << "metadata = " << (c.extra.metadata ? "true" : "false") << "  # trees and snapshots\n"
    << "data = " << (c.extra.data ? "true" : "false")
    << "  # file chunks, least spread across hosts first\n"
    << "copies = " << c.extra.copies << "\n"
    << "# Use a peer for extra copies only while it is below this share of its quota.\n"
    << "max_fill = " << absl::StrCat(c.extra.max_fill) << "\n";
  o << "\n"
    << "[watch]  # how sources ([[source]] below) are kept backed up as they change\n"
    << "# Back up a changed source once nothing changed in it for this long (and at the\n"
    << "# latest 6 times this long after its first change).\n"
    << "quiet_period = " << TomlQuote(FormatDuration(c.watch.quiet_period)) << "\n"
    << "# A full backup of every source this often, to catch what inotify missed; \"\" = never.\n"
    << "rescan_interval = " << TomlQuote(OptionalDurationText(c.watch.rescan_interval)) << "\n"
    << "\n"
    << "# Sources this peer backs up by itself (also `cairn source add|list|remove`), e.g.\n"
    << "# [[source]]\n"
    << "# path = \"/home/me/Documents\"  # absolute\n"
    << "# copies = 2                   # or ec = \"4+2\"; default: [backup]\n"
    << "# exclude = [\"*.tmp\", \".cache\"]\n"
    << "# schedule = \"1h\"              # also back up this often; \"\" = after changes only\n"
    << "# watch = true                 # inotify; false: schedule and rescans only\n"
    << "# keep_daily = 7               # keep_* as in [retention], for this source's snapshots\n";
  RenderSources(o, c.sources);
  return o.str();
}

absl::Status WriteConfig(const Config& config) {
  std::string text = RenderConfig(config);
  return env::WriteFileAtomic(ConfigPath(config.dir), AsBytes(text), 0600);
}

absl::Status WriteBackAddresses(const std::string& dir, const std::string& listen,
                                const std::string& api) {
  std::string path = ConfigPath(dir);
  CAIRN_ASSIGN_OR_RETURN(std::string text, env::ReadFileString(path, kMaxConfigBytes));
  CAIRN_ASSIGN_OR_RETURN(Config old_config, ParseConfig(text, path));
  CAIRN_ASSIGN_OR_RETURN(toml::table table, ParseToml(text, path));
  Config want = old_config;
  want.listen = listen;
  want.api = api;
  if (want.SameSettings(old_config)) return absl::OkStatus();

  std::string edited = text;
  bool ok = true;
  // Replace the later key first so that the earlier key's recorded position stays valid.
  std::vector<std::pair<std::string, std::string>> edits;
  if (old_config.listen != listen) edits.push_back({"listen", listen});
  if (old_config.api != api) edits.push_back({"api", api});
  std::sort(edits.begin(), edits.end(), [&](const auto& a, const auto& b) {
    const toml::node* na = table.get(a.first);
    const toml::node* nb = table.get(b.first);
    uint32_t la = na ? na->source().begin.line : 0, lb = nb ? nb->source().begin.line : 0;
    return la > lb;
  });
  std::string prepend;
  for (const auto& [key, value] : edits) {
    if (table.get(key) == nullptr) {
      // Absent (default was used): add it at the top, which is always the root table.
      prepend += absl::StrCat(key, " = ", TomlQuote(value), "\n");
    } else if (!ReplaceValue(edited, table, key, TomlQuote(value))) {
      ok = false;
    }
  }
  edited = prepend + edited;
  if (ok) {
    auto reparsed = ParseConfig(edited, path);
    ok = reparsed.ok() && reparsed->SameSettings(want);
  }
  if (!ok) {
    want.dir = dir;
    edited = RenderConfig(want);
  }
  return env::WriteFileAtomic(path, AsBytes(edited), 0600);
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid address '", std::string(address),
                                                   "': ", std::string(why),
                                                   " (expected host:port, e.g. 127.0.0.1:7001)"));
  };
  std::string host;
  std::string_view port_text;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return bad("malformed [ipv6]:port");
    }
    host = std::string(address.substr(1, close - 1));
    port_text = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = std::string(address.substr(0, colon));
    if (host.find(':') != std::string::npos) return bad("IPv6 hosts need brackets");
    port_text = address.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  int port;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(std::string(port_text), &port) || port > 65535) {
    return bad("port must be 0..65535");
  }
  return std::make_pair(host, port);
}

std::string JoinHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (const std::string& p : parts) {
    int v;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

std::string DefaultHostId() {
  auto id = env::ReadFileString("/etc/machine-id", 4096);
  if (id.ok()) {
    std::string s(absl::StripAsciiWhitespace(*id));
    if (!s.empty()) return s;
  }
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0') return buf;
  return "localhost";
}

absl::Status WriteBackQuota(const std::string& dir, uint64_t quota) {
  std::string path = ConfigPath(dir);
  CAIRN_ASSIGN_OR_RETURN(std::string text, env::ReadFileString(path, kMaxConfigBytes));
  CAIRN_ASSIGN_OR_RETURN(Config old_config, ParseConfig(text, path));
  CAIRN_ASSIGN_OR_RETURN(toml::table table, ParseToml(text, path));
  Config want = old_config;
  want.quota = quota;
  if (want.SameSettings(old_config)) return absl::OkStatus();
  std::string edited = text;
  bool ok = true;
  if (table.get("quota") == nullptr) {
    edited = absl::StrCat("quota = ", SizeForConfig(quota), "\n", edited);
  } else {
    ok = ReplaceValue(edited, table, "quota", SizeForConfig(quota));
  }
  if (ok) {
    auto reparsed = ParseConfig(edited, path);
    ok = reparsed.ok() && reparsed->SameSettings(want);
  }
  if (!ok) {
    want.dir = dir;
    edited = RenderConfig(want);
  }
  return env::WriteFileAtomic(path, AsBytes(edited), 0600);
}

std::string NormalSourcePath(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

absl::Status ValidateSource(const SourceConfig& s) {
  auto bad = [](const std::string& why) { return absl::InvalidArgumentError(why); };
  if (s.path.empty() || s.path[0] != '/') {
    return bad(
        absl::StrCat("a source path must be absolute, got '", api::SanitizeUtf8(s.path), "'"));
  }
  if (api::SanitizeUtf8(s.path) != s.path) {
    return bad("a source path must be valid UTF-8 (cairn.toml holds text)");
  }
  if (s.copies > 64) return bad("copies must be between 1 and 64");
  if (!s.ec.empty()) {
    auto scheme = codec::ParseErasureScheme(s.ec);
    if (!scheme.ok()) return scheme.status();
    if (s.copies != 0) return bad("copies and ec exclude each other");
  }
  if (s.schedule.count() < 0) return bad("the schedule must not be negative");
  for (const std::string& g : s.excludes) {
    if (g.empty() || api::SanitizeUtf8(g) != g) {
      return bad("exclude globs must be non-empty UTF-8 text");
    }
  }
  const engine::RetentionPolicy& k = s.keep;
  for (int v :
       {k.keep_last, k.keep_hourly, k.keep_daily, k.keep_weekly, k.keep_monthly, k.keep_yearly}) {
    if (v < -1 || v > 1000000) return bad("keep counts must be between -1 and 1000000");
  }
  for (const std::string& t : k.keep_tags) {
    if (api::SanitizeUtf8(t) != t) return bad("keep tags must be UTF-8 text");
  }
  return absl::OkStatus();
}

absl::Status WriteBackSources(const std::string& dir, const std::vector<SourceConfig>& sources) {
  std::string path = ConfigPath(dir);
  CAIRN_ASSIGN_OR_RETURN(std::string text, env::ReadFileString(path, kMaxConfigBytes));
  CAIRN_ASSIGN_OR_RETURN(Config old_config, ParseConfig(text, path));
  Config want = old_config;
  want.sources = sources;
  if (want.SameSettings(old_config)) return absl::OkStatus();
  std::ostringstream rendered;
  RenderSources(rendered, sources);
  std::string edited = CutSourceBlocks(text) + rendered.str();
  auto reparsed = ParseConfig(edited, path);
  if (!reparsed.ok() || !reparsed->SameSettings(want)) {
    want.dir = dir;
    edited = RenderConfig(want);
  }
  return env::WriteFileAtomic(path, AsBytes(edited), 0600);
}

}  // namespace cairn::daemon
