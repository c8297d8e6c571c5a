// `cairn backup PATH...`: asks the local peer to back up paths (POST /v1/backup) and follows
// the job.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
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

void PrintSummary(const nlohmann::json& r) {
  uint64_t copies = U64(r, "copies");
  std::string redundancy = absl::StrCat(copies, copies == 1 ? " copy" : " copies");
  if (r.contains("ec") && r["ec"].is_string()) {
    redundancy = absl::StrCat(r["ec"].get<std::string>(), " erasure coded, small chunks ", copies,
                              " copies");
  }
  if (uint64_t offsite = U64(r, "offsite"); offsite > 0) {
    absl::StrAppend(&redundancy, ", ", offsite, " off-site");
  }
  std::cout << "snapshot " << Str(r, "short_id") << " saved\n"
            << "files:      " << U64(r, "files") << " (" << U64(r, "files_read") << " read, "
            << U64(r, "files_unchanged")
            << (Bool(r, "rehash") ? " unchanged by content)\n" : " unchanged)\n");
  if (uint64_t reread = U64(r, "files_reread"); reread > 0) {
    uint64_t flagged = U64(r, "files_changed_during_read");
    std::cout << "re-read:    " << reread << (reread == 1 ? " file" : " files")
              << " changed while being read";
    if (flagged > 0) std::cout << " (" << flagged << " kept changing: stored as read)";
    std::cout << "\n";
  }
  if (uint64_t silent = U64(r, "files_changed_same_metadata"); silent > 0) {
    std::cout << "rehash:     " << silent << (silent == 1 ? " file" : " files")
              << " changed with size, mtime, ctime and inode unchanged\n";
  }
  std::cout << "bytes read: " << FormatSize(U64(r, "bytes_read")) << "\n"
            << "new data:   " << FormatSize(U64(r, "new_bytes")) << " in " << U64(r, "new_chunks")
            << " new chunks (of " << U64(r, "chunks") << " chunks)\n"
            << "sent:       " << FormatSize(U64(r, "sent_bytes")) << " (" << redundancy << ")\n"
            << "duration:   " << FormatSeconds(Double(r, "duration_seconds")) << " ("
            << FormatRate(U64(r, "bytes_read"), Double(r, "duration_seconds")) << ")" << std::endl;
}

// Warnings, errors and the degraded line go to stderr (stdout stays the summary or JSON).
int ReportProblems(const nlohmann::json& r) {
  if (r.contains("redundancy_warning") && r["redundancy_warning"].is_string()) {
    std::cerr << "warning: " << r["redundancy_warning"].get<std::string>() << "\n";
  }
  for (const std::string& w : RawArray(r, "warnings")) std::cerr << "warning: " << w << "\n";
  std::vector<std::string> errors = RawArray(r, "errors");
  for (const std::string& e : errors) std::cerr << "error: " << e << "\n";
  uint64_t below = U64(r, "chunks_below_target");
  if (!Bool(r, "degraded") && below == 0 && errors.empty()) return kExitOk;
  std::vector<std::string> parts;
  if (below > 0) {
    std::string target = absl::StrCat(U64(r, "copies"), " copies");
    if (r.contains("ec") && r["ec"].is_string()) {
      target = r["ec"].get<std::string>() + " shards on distinct peers";
    }
    parts.push_back(absl::StrCat(below, below == 1 ? " chunk" : " chunks", " below ", target));
  }
  if (!errors.empty()) {
    parts.push_back(absl::StrCat(errors.size(), errors.size() == 1 ? " file" : " files",
                                 " unreadable: ", errors.front(),
                                 errors.size() > 1 ? ", ..." : ""));
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
  if (global.json) {
    PrintJson(result);
  } else {
    PrintSummary(result);
  }
  return ReportProblems(result);
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
