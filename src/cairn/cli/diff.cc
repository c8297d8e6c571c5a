// `cairn diff SNAP1 SNAP2`: what changed between two snapshots (GET /v1/diff), restic-style:
// `+` added, `-` removed, `M` modified (content, type or mode), with sizes, and a summary.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/api/responses.h"
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
std::string Shown(const api::DiffChange& c, const std::string& type) {
  std::string p = c.source_path ? *c.source_path : "/" + c.path;
  if (type == "dir") p += "/";
  return p;
}

std::string ChangeLine(const api::DiffChange& c) {
  const api::DiffSide none;
  const api::DiffSide& before = c.before ? *c.before : none;
  const api::DiffSide& after = c.after ? *c.after : none;
  if (c.change == "added") {
    std::string line = absl::StrCat("+    ", Shown(c, after.type));
    if (after.type == "file") absl::StrAppend(&line, "  (", FormatSize(after.size), ")");
    return line;
  }
  if (c.change == "removed") {
    std::string line = absl::StrCat("-    ", Shown(c, before.type));
    if (before.type == "file") absl::StrAppend(&line, "  (", FormatSize(before.size), ")");
    return line;
  }
  std::string line = absl::StrCat("M    ", Shown(c, after.type));
  std::vector<std::string> what;
  if (c.type_changed) what.push_back(absl::StrCat(before.type, " -> ", after.type));
  if (c.content_changed && after.type == "file") {
    what.push_back(absl::StrCat(FormatSize(before.size), " -> ", FormatSize(after.size)));
  } else if (c.content_changed && after.type == "symlink") {
    what.push_back("target changed");
  }
  if (c.mode_changed) {
    what.push_back(absl::StrCat("mode ", Octal(before.mode), " -> ", Octal(after.mode)));
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
  const std::string target =
      absl::StrCat("/v1/diff?a=", api::UrlEncode(f.a), "&b=", api::UrlEncode(f.b));
  absl::StatusOr<nlohmann::json> r = (*api)->Get(target);
  if (!r.ok()) return PrintError(r.status());
  if (global.json) {
    PrintJson(*r);
    return kExitOk;
  }
  absl::StatusOr<api::DiffAnswer> d = api::Decode<api::DiffAnswer>(*r);
  if (!d.ok()) {
    return PrintError(absl::InternalError(
        absl::StrCat("malformed answer to GET ", target, ": ", d.status().message())));
  }
  std::cout << "comparing snapshot " << d->a.id.substr(0, 8) << " ("
            << FormatLocalTime(d->a.time_ns) << ") to " << d->b.id.substr(0, 8) << " ("
            << FormatLocalTime(d->b.time_ns) << "):\n\n";
  for (const api::DiffChange& c : d->changes) std::cout << ChangeLine(c) << "\n";
  if (d->changes.empty()) std::cout << "no changes\n";
  std::cout << "\n"
            << d->added << " added (" << FormatSize(d->added_bytes) << "), " << d->removed
            << " removed (" << FormatSize(d->removed_bytes) << "), " << d->modified << " modified"
            << std::endl;
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
