// `cairn diff SNAP1 SNAP2`: what changed between two snapshots (GET /v1/diff), restic-style:
// `+` added, `-` removed, `M` modified (content, type or mode), with sizes, and a summary.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

struct DiffFlags {
  std::string a;
  std::string b;
};

std::string Octal(uint64_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The path on the backed-up machine ("/home/u/data/docs/" for a directory, "/home/u/data/a.txt"
// for a file), else "/" + the path inside the snapshots.
std::string Shown(const nlohmann::json& c, const std::string& type) {
  std::string p =
      c.contains("source_path") ? RawField(c, "source_path") : "/" + RawField(c, "path");
  if (type == "dir") p += "/";
  return p;
}

std::string ChangeLine(const nlohmann::json& c) {
  std::string kind = Str(c, "change");
  if (kind == "added") {
    std::string type = Str(c, "type_after");
    std::string line = absl::StrCat("+    ", Shown(c, type));
    if (type == "file") absl::StrAppend(&line, "  (", FormatSize(U64(c, "size_after")), ")");
    return line;
  }
  if (kind == "removed") {
    std::string type = Str(c, "type_before");
    std::string line = absl::StrCat("-    ", Shown(c, type));
    if (type == "file") absl::StrAppend(&line, "  (", FormatSize(U64(c, "size_before")), ")");
    return line;
  }
  std::string before = Str(c, "type_before"), after = Str(c, "type_after");
  std::string line = absl::StrCat("M    ", Shown(c, after));
  std::vector<std::string> what;
  if (Bool(c, "type_changed")) what.push_back(absl::StrCat(before, " -> ", after));
  if (Bool(c, "content_changed") && after == "file") {
    what.push_back(
        absl::StrCat(FormatSize(U64(c, "size_before")), " -> ", FormatSize(U64(c, "size_after"))));
  } else if (Bool(c, "content_changed") && after == "symlink") {
    what.push_back("target changed");
  }
  if (Bool(c, "mode_changed")) {
    what.push_back(
        absl::StrCat("mode ", Octal(U64(c, "mode_before")), " -> ", Octal(U64(c, "mode_after"))));
  }
  for (size_t i = 0; i < what.size(); ++i) {
    absl::StrAppend(&line, i == 0 ? "  (" : ", ", what[i]);
  }
  if (!what.empty()) line += ")";
  return line;
}

int RunDiff(const GlobalOptions& global, const DiffFlags& f) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> r =
      (*api)->Get(absl::StrCat("/v1/diff?a=", api::UrlEncode(f.a), "&b=", api::UrlEncode(f.b)));
  if (!r.ok()) return PrintError(r.status());
  if (global.json) {
    PrintJson(*r);
    return kExitOk;
  }
  const nlohmann::json& a = (*r)["a"];
  const nlohmann::json& b = (*r)["b"];
  std::cout << "comparing snapshot " << Str(a, "short_id") << " ("
            << FormatLocalTime(I64(a, "time_ns")) << ") to " << Str(b, "short_id") << " ("
            << FormatLocalTime(I64(b, "time_ns")) << "):\n\n";
  const nlohmann::json& changes = (*r)["changes"];
  if (changes.is_array()) {
    for (const nlohmann::json& c : changes) std::cout << ChangeLine(c) << "\n";
  }
  if (!changes.is_array() || changes.empty()) std::cout << "no changes\n";
  std::cout << "\n"
            << U64(*r, "added") << " added (" << FormatSize(U64(*r, "added_bytes")) << "), "
            << U64(*r, "removed") << " removed (" << FormatSize(U64(*r, "removed_bytes")) << "), "
            << U64(*r, "modified") << " modified" << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterDiff(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<DiffFlags>();
  CLI::App* cmd = app.add_subcommand("diff", "Show what changed between two snapshots");
  cmd->add_option("snapshot1", f->a, "The older snapshot (id, unique prefix or 'latest')")
      ->required();
  cmd->add_option("snapshot2", f->b, "The newer snapshot")->required();
  return [&global, f] { return RunDiff(global, *f); };
}

}  // namespace cairn::cli
