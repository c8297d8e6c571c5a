// `cairn source add|list|remove`: the paths the local peer keeps backed up by itself
// ([[source]] in cairn.toml; GET/POST/DELETE /v1/sources). The peer watches a source, backs it
// up after changes (debounced), on its schedule and on periodic rescans (daemon/sources.h).
#include <sys/stat.h>

#include <cerrno>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/keep_flags.h"
#include "cairn/cli/output.h"
#include "cairn/codec/erasure.h"
#include "cairn/daemon/config.h"
#include "cairn/engine/retention.h"

namespace cairn::cli {
namespace {

struct SourceFlags {
  std::string path;
  uint32_t copies = 0;
  std::string ec;
  std::vector<std::string> excludes;
  std::string schedule;
  bool no_watch = false;
  KeepFlags keep;
};

std::string Redundancy(const api::SourceInfo& s) {
  if (s.ec) return *s.ec;
  if (s.copies.value_or(0) > 0) return absl::StrCat(*s.copies, " copies");
  return "default";
}

std::string KeepText(const api::SourceInfo& s) {
  // As the policy reads on the wire: "daily 7, tags a,b" (keys in JSON order).
  const nlohmann::json keep = api::ToJson(s.keep);
  if (keep.empty()) return "[retention]";
  std::vector<std::string> parts;
  for (const auto& [key, value] : keep.items()) {
    std::string name = key.rfind("keep_", 0) == 0 ? key.substr(5) : key;
    if (key == "keep_tags_base64") continue;
    if (value.is_array()) {
      parts.push_back(absl::StrCat(name, " ", absl::StrJoin(RawArray(keep, key), ",")));
    } else if (value.is_number_integer()) {
      parts.push_back(absl::StrCat(name, " ", value.get<int64_t>()));
    } else if (value.is_string()) {
      parts.push_back(absl::StrCat(name, " ", value.get<std::string>()));
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::string LastBackupText(const api::SourceInfo& s) {
  if (s.state && s.state->running_job) return "running now";
  if (!s.state || !s.state->last_backup) return "-";
  const api::LastBackup& b = *s.state->last_backup;
  if (b.state == "done") return absl::StrCat(b.short_id.value_or(""), " ", b.time);
  return absl::StrCat("failed ", b.time, ": ", b.error.value_or(""));
}

int RunAdd(const GlobalOptions& global, const SourceFlags& f) {
  if (f.path.empty()) return PrintUsageError("a path is required");
  std::string path = AbsolutePath(f.path);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return PrintError(ErrnoStatus(errno, absl::StrCat("cannot add source ", path)));
  }
  api::SourceRequest request;
  request.path = path;
  if (f.copies > 0) request.copies = f.copies;
  if (!f.ec.empty()) {
    absl::StatusOr<codec::ErasureScheme> scheme = codec::ParseErasureScheme(f.ec);
    if (!scheme.ok()) return PrintUsageError("--ec: " + std::string(scheme.status().message()));
    request.ec = scheme->ToString();
  }
  request.excludes = f.excludes;
  if (!f.schedule.empty()) {
    auto d = ParseDuration(f.schedule);
    if (!d.ok()) return PrintUsageError("--schedule: " + std::string(d.status().message()));
    request.schedule = *d;
  }
  request.watch = !f.no_watch;
  absl::StatusOr<engine::RetentionPolicy> keep = KeepPolicyFromFlags(f.keep);
  if (!keep.ok()) return PrintUsageError(std::string(keep.status().message()));
  request.keep = *keep;

  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> answer = (*api)->Post("/v1/sources", api::ToJson(request));
  if (!answer.ok()) return PrintError(answer.status());
  absl::StatusOr<api::SourceInfo> added = api::Decode<api::SourceInfo>(*answer);
  if (!added.ok()) return PrintError(Annotate(added.status(), "POST /v1/sources"));
  if (global.json) {
    PrintJson(api::ToJson(*added));
    return kExitOk;
  }
  std::cout << "source " << added->path << " added (" << (f.no_watch ? "not watched" : "watched")
            << ", " << Redundancy(*added)
            << (f.schedule.empty() ? "" : ", every " + added->schedule)
            << "); its first backup starts shortly" << std::endl;
  return kExitOk;
}

int RunList(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::vector<api::SourceInfo>> list =
      (*api)->GetAs<std::vector<api::SourceInfo>>("/v1/sources");
  if (!list.ok()) return PrintError(list.status());
  if (global.json) {
    PrintJson(api::ToJson(*list));
    return kExitOk;
  }
  if (list->empty()) {
    std::cout << "no sources (add one with `cairn source add PATH`)" << std::endl;
    return kExitOk;
  }
  Table table({"PATH", "REDUNDANCY", "SCHEDULE", "WATCH", "EXCLUDE", "KEEP", "LAST BACKUP"});
  for (const api::SourceInfo& s : *list) {
    std::string watch = "no";
    if (s.watch) {
      watch =
          s.state && s.state->watching ? absl::StrCat(s.state->watches, " dirs") : "path missing";
    }
    table.AddRow({s.path, Redundancy(s), s.schedule.empty() ? "-" : s.schedule, watch,
                  absl::StrJoin(s.excludes, " "), KeepText(s), LastBackupText(s)});
  }
  table.Print(std::cout);
  return kExitOk;
}

int RunRemove(const GlobalOptions& global, const SourceFlags& f) {
  if (f.path.empty()) return PrintUsageError("a path is required");
  std::string path = AbsolutePath(f.path);
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> removed =
      (*api)->Delete("/v1/sources?path_base64=" + api::UrlEncode(api::ToBase64(path)));
  if (!removed.ok()) return PrintError(removed.status());
  if (global.json) {
    PrintJson(*removed);
    return kExitOk;
  }
  std::cout << "source " << path << " removed (its snapshots are kept)" << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterSource(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<SourceFlags>();
  CLI::App* cmd = app.add_subcommand(
      "source", "Manage the paths this peer keeps backed up by itself (watched, scheduled)");
  cmd->require_subcommand(1);

  CLI::App* add = cmd->add_subcommand(
      "add", "Back up PATH from now on: after changes, on a schedule, and on periodic rescans");
  add->add_option("path", f->path, "File or directory")->required();
  add->add_option("--copies", f->copies, "Copies of each chunk (default: the peer's config)")
      ->check(CLI::Range(1, 64));
  add->add_option("--ec", f->ec, "Erasure coding K+M instead of copies, e.g. 4+2")
      ->excludes("--copies");
  add->add_option("--exclude", f->excludes, "Skip names or paths matching this glob (repeatable)")
      ->allow_extra_args(false);
  add->add_option("--schedule", f->schedule,
                  "Also back up this often, e.g. 1h, 30m, 1d (default: after changes only)");
  add->add_flag("--no-watch", f->no_watch,
                "Do not watch for changes (back up on the schedule and rescans only)");
  AddKeepFlags(add, f->keep);

  CLI::App* list = cmd->add_subcommand("list", "List the sources and their last backup");
  CLI::App* remove =
      cmd->add_subcommand("remove", "Stop backing up PATH (the snapshots already made are kept)");
  remove->add_option("path", f->path, "The source's path")->required();

  return [&global, f, add, list, remove] {
    if (add->parsed()) return RunAdd(global, *f);
    if (list->parsed()) return RunList(global);
    if (remove->parsed()) return RunRemove(global, *f);
    return PrintUsageError("source: add, list or remove is required");
  };
}

}  // namespace cairn::cli
