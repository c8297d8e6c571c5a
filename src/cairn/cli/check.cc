// `cairn check [--read-data | --read-data-subset P%]` and `cairn repair`: verify this peer's
// own backups on their holders (POST /v1/check) and rebuild what is below target
// (POST /v1/repair). Exit 0 healthy, 3 below target, 1 data lost (docs/cli.md "Commands").
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"

namespace cairn::cli {
namespace {

struct CheckFlags {
  bool read_data = false;
  std::string subset;  // "P%" or "P"
};

absl::StatusOr<nlohmann::json> RunJob(const GlobalOptions& global, const std::string& route,
                                      const CheckFlags& f) {
  api::CheckRequest request;
  request.read_data = f.read_data;
  if (!f.subset.empty()) {
    std::string p = f.subset;
    if (!p.empty() && p.back() == '%') p.pop_back();
    double percent = 0;
    if (!absl::SimpleAtod(p, &percent) || !(percent > 0 && percent <= 100)) {
      return absl::InvalidArgumentError(
          "--read-data-subset wants a percentage in (0, 100], e.g. 10%");
    }
    request.read_subset = percent / 100;
  }
  CAIRN_ASSIGN_OR_RETURN(auto api, ConnectToPeer(global.dir));
  CAIRN_ASSIGN_OR_RETURN(std::string job_id, api->StartJob(route, request));
  ProgressBar bar(!global.json && ProgressBar::StderrIsTerminal());
  CAIRN_ASSIGN_OR_RETURN(nlohmann::json job, WaitForJob(*api, job_id, &bar));
  return job["result"];
}

// The chunks below target for want of storage peers, one line per target; returns how many.
uint64_t PrintShortfalls(const std::vector<api::ShortfallInfo>& shortfalls) {
  uint64_t chunks = 0;
  for (const api::ShortfallInfo& s : shortfalls) {
    chunks += s.chunks;
    std::cerr << "degraded: " << s.message
              << " (they reach it when more peers join; lower the target with `cairn forget` "
                 "of the snapshots that ask for it)\n";
  }
  return chunks;
}

// What the chunks below target survive (docs/operations.md "When the cluster is too small"):
// "degraded: N chunks below target survive any P lost peers", one line per P.
void PrintTolerance(const std::vector<api::ToleranceInfo>& survives) {
  for (const api::ToleranceInfo& t : survives) std::cerr << "degraded: " << t.message << "\n";
}

int ExitFor(uint64_t below, uint64_t lost) {
  if (lost > 0) return kExitError;
  if (below > 0) return kExitDegraded;
  return kExitOk;
}

int RunCheck(const GlobalOptions& global, const CheckFlags& f) {
  auto result = RunJob(global, "/v1/check", f);
  if (!result.ok()) {
    if (absl::IsInvalidArgument(result.status()) && !f.subset.empty())
      return PrintUsageError(std::string(result.status().message()));
    return PrintError(Annotate(result.status(), "check failed"));
  }
  absl::StatusOr<api::CheckAnswer> answer = api::Decode<api::CheckAnswer>(*result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "check result"));
  const api::CheckAnswer& r = *answer;
  const uint64_t below = r.below_target, lost = r.lost;
  if (global.json) {
    PrintJson(*result);
  } else {
    for (const api::SnapshotCheck& s : r.snapshots) {
      std::cout << "snapshot " << s.short_id << ": " << s.chunks << " chunks, " << s.at_target
                << " at target, " << s.below_target << " below target, " << s.lost << " lost\n";
    }
    std::cout << "total: " << r.chunks << " chunks, " << r.at_target << " at target, " << below
              << " below target, " << lost << " lost";
    if (f.read_data || !f.subset.empty()) {
      std::cout << "; read " << r.blobs_read << " blobs (" << FormatSize(r.bytes_read) << "), "
                << r.corrupt << " corrupt";
    }
    std::cout << std::endl;
    // docs/operations.md "Sites and off-site copies".
    if (const uint64_t n = r.without_offsite; n > 0) {
      std::cout << n << (n == 1 ? " chunk" : " chunks") << " without their off-site copy\n";
    }
    for (const api::CorruptBlobInfo& d : r.corrupt_blobs) {
      std::cerr << "corrupt: chunk " << d.chunk.substr(0, 8) << " shard " << d.shard << " on peer "
                << d.peer << ": " << d.reason << "\n";
    }
  }
  for (const std::string& e : r.errors) std::cerr << "error: " << e << "\n";
  if (lost > 0) {
    std::cerr << "data lost: " << lost << " chunks have no readable copy (or fewer than k shards)"
              << std::endl;
  } else if (below > 0) {
    PrintTolerance(r.survives);
    const uint64_t short_of_peers = PrintShortfalls(r.short_of_peers);
    if (below > short_of_peers) {
      std::cerr << "degraded: " << below - short_of_peers
                << " chunks below target redundancy (`cairn repair` rebuilds them; the peer "
                   "also repairs automatically)"
                << std::endl;
    }
  }
  if (!r.errors.empty() && lost == 0) return kExitError;
  return ExitFor(below, lost);
}

int RunRepair(const GlobalOptions& global, const CheckFlags& f) {
  auto result = RunJob(global, "/v1/repair", f);
  if (!result.ok()) {
    if (absl::IsInvalidArgument(result.status()) && !f.subset.empty())
      return PrintUsageError(std::string(result.status().message()));
    return PrintError(Annotate(result.status(), "repair failed"));
  }
  absl::StatusOr<api::RepairAnswer> answer = api::Decode<api::RepairAnswer>(*result);
  if (!answer.ok()) return PrintError(Annotate(answer.status(), "repair result"));
  const api::RepairAnswer& r = *answer;
  const uint64_t below = r.still_below_target, lost = r.lost;
  if (global.json) {
    PrintJson(*result);
  } else {
    std::cout << "repair: " << r.chunks << " chunks checked, " << r.repaired << " repaired ("
              << r.blobs_written << " blobs, " << FormatSize(r.bytes_sent) << " sent), " << below
              << " still below target";
    if (r.unimprovable > 0) {
      std::cout << " (" << r.unimprovable << " as far as the alive peers allow)";
    }
    std::cout << ", " << lost << " lost" << std::endl;
  }
  for (const std::string& e : r.errors) std::cerr << "error: " << e << "\n";
  if (r.errors_omitted > 0) {
    std::cerr << "error: " << r.errors_omitted << " more chunks could not be repaired\n";
  }
  if (below > 0 && lost == 0) {
    PrintTolerance(r.survives);
    PrintShortfalls(r.short_of_peers);
  }
  return ExitFor(below, lost);
}

void AddReadFlags(CLI::App* cmd, CheckFlags& f) {
  cmd->add_flag("--read-data", f.read_data, "Fetch and verify every blob, not only ask holders");
  cmd->add_option("--read-data-subset", f.subset,
                  "Fetch and verify the blobs of this share of the chunks, e.g. 10%");
}

}  // namespace

Action RegisterCheck(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Verify that every chunk of this peer's snapshots is held at its target redundancy");
  AddReadFlags(cmd, *flags);
  return [&global, flags] { return RunCheck(global, *flags); };
}

Action RegisterRepair(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* cmd = app.add_subcommand(
      "repair", "Rebuild missing or corrupt copies and shards of this peer's backups now");
  AddReadFlags(cmd, *flags);
  return [&global, flags] { return RunRepair(global, *flags); };
}

}  // namespace cairn::cli
