// `cairn backup PATH...`: asks the local peer to back up paths (POST /v1/backup) and follows
// the job.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"
#include "cairn/codec/erasure.h"

namespace cairn::cli {
namespace {

struct BackupFlags {
  std::vector<std::string> paths;
  uint32_t copies = 0;  // 0 = the peer's configured default
  std::string ec;       // "K+M"; "" = copies (or the peer's configured default)
  int offsite = -1;     // -1 = the peer's configured default
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  bool rehash = false;
};

void PrintSummary(const api::BackupAnswer& r) {
  std::string redundancy = absl::StrCat(r.copies, r.copies == 1 ? " copy" : " copies");
  if (r.ec) {
    redundancy = absl::StrCat(*r.ec, " erasure coded, small chunks ", r.copies, " copies");
  }
  if (r.offsite > 0) absl::StrAppend(&redundancy, ", ", r.offsite, " off-site");
  std::cout << "snapshot " << r.short_id << " saved\n"
            << "files:      " << r.files << " (" << r.files_read << " read, " << r.files_unchanged
            << (r.rehash ? " unchanged by content)\n" : " unchanged)\n");
  if (r.files_reread > 0) {
    std::cout << "re-read:    " << r.files_reread << (r.files_reread == 1 ? " file" : " files")
              << " changed while being read";
    if (r.files_changed_during_read > 0) {
      std::cout << " (" << r.files_changed_during_read << " kept changing: stored as read)";
    }
    std::cout << "\n";
  }
  if (const uint64_t silent = r.files_changed_same_metadata; silent > 0) {
    std::cout << "rehash:     " << silent << (silent == 1 ? " file" : " files")
              << " changed with size, mtime, ctime and inode unchanged\n";
  }
  std::cout << "bytes read: " << FormatSize(r.bytes_read) << "\n"
            << "new data:   " << FormatSize(r.new_bytes) << " in " << r.new_chunks
            << " new chunks (of " << r.chunks << " chunks)\n"
            << "sent:       " << FormatSize(r.sent_bytes) << " (" << redundancy << ")\n"
            << "duration:   " << FormatSeconds(r.duration_seconds) << " ("
            << FormatRate(r.bytes_read, r.duration_seconds) << ")" << std::endl;
}

// Warnings, errors and the degraded line go to stderr (stdout stays the summary or JSON).
int ReportProblems(const api::BackupAnswer& r) {
  if (r.redundancy_warning) std::cerr << "warning: " << *r.redundancy_warning << "\n";
  for (const std::string& w : r.warnings) std::cerr << "warning: " << w << "\n";
  for (const std::string& e : r.errors) std::cerr << "error: " << e << "\n";
  const uint64_t below = r.chunks_below_target;
  if (!r.degraded && below == 0 && r.errors.empty()) return kExitOk;
  std::vector<std::string> parts;
  if (below > 0) {
    std::string target = absl::StrCat(r.copies, " copies");
    if (r.ec) target = *r.ec + " shards on distinct peers";
    parts.push_back(absl::StrCat(below, below == 1 ? " chunk" : " chunks", " below ", target));
  }
  if (!r.errors.empty()) {
    parts.push_back(absl::StrCat(r.errors.size(), r.errors.size() == 1 ? " file" : " files",
                                 " unreadable: ", r.errors.front(),
                                 r.errors.size() > 1 ? ", ..." : ""));
  }
  if (parts.empty()) parts.push_back("some data is below its target redundancy");
  std::cerr << "degraded: " << absl::StrJoin(parts, "; ") << std::endl;
  return kExitDegraded;
}

int RunBackup(const GlobalOptions& global, const BackupFlags& f) {
  api::BackupRequest request;
  for (const std::string& p : f.paths) {
    if (p.empty()) return PrintUsageError("empty path");
    request.paths.push_back(AbsolutePath(p));
  }
  if (f.copies > 0) request.copies = f.copies;
  if (f.offsite >= 0) request.offsite = f.offsite;
  if (!f.ec.empty()) {
    absl::StatusOr<codec::ErasureScheme> scheme = codec::ParseErasureScheme(f.ec);
    if (!scheme.ok()) return PrintUsageError("--ec: " + std::string(scheme.status().message()));
    request.ec = *scheme;
  }
  request.tags = f.tags;
  request.excludes = f.excludes;
  request.rehash = f.rehash;

  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<std::string> started = (*api)->StartJob("/v1/backup", request);
  if (!started.ok()) return PrintError(started.status());
  const std::string job_id = *started;

  ProgressBar bar(!global.json && ProgressBar::StderrIsTerminal());
  absl::StatusOr<nlohmann::json> job = WaitForJob(**api, job_id, &bar);
  if (!job.ok()) return PrintError(Annotate(job.status(), "backup failed"));
  const nlohmann::json& result = (*job)["result"];
  absl::StatusOr<api::BackupAnswer> answer = api::Decode<api::BackupAnswer>(result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "backup result"));
  if (global.json) {
    PrintJson(result);
  } else {
    PrintSummary(*answer);
  }
  return ReportProblems(*answer);
}

}  // namespace

Action RegisterBackup(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<BackupFlags>();
  CLI::App* cmd = app.add_subcommand("backup", "Back up files and directories to the peers");
  cmd->add_option("paths", flags->paths, "Files and directories to back up")->required();
  cmd->add_option("--copies", flags->copies, "Copies of each chunk (default: the peer's config)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--ec", flags->ec,
                  "Erasure coding K+M instead of copies, e.g. 4+2 (k up to 16, m up to 8; "
                  "default: the peer's config)")
      ->excludes("--copies");
  cmd->add_option("--offsite", flags->offsite,
                  "Of the copies (or K+M shards), how many go to peers of another site "
                  "(default: the peer's config; docs/operations.md)")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--tag", flags->tags, "Tag for the snapshot (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--exclude", flags->excludes,
                  "Skip names or paths matching this glob (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--rehash", flags->rehash,
                "Read every file and compare its content with the last snapshot instead of its "
                "size, mtime, ctime and inode (slower; finds changes that kept the metadata)");
  return [&global, flags] { return RunBackup(global, *flags); };
}

}  // namespace cairn::cli
