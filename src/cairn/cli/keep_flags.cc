#include "cairn/cli/keep_flags.h"

namespace cairn::cli {

void AddKeepFlags(CLI::App* cmd, KeepFlags& f) {
  cmd->add_option("--keep-last", f.keep_last, "Keep the N newest snapshots (-1: all)");
  cmd->add_option("--keep-hourly", f.keep_hourly, "Keep the newest snapshot of each of N hours");
  cmd->add_option("--keep-daily", f.keep_daily, "Keep the newest snapshot of each of N days");
  cmd->add_option("--keep-weekly", f.keep_weekly, "Keep the newest snapshot of each of N weeks");
  cmd->add_option("--keep-monthly", f.keep_monthly, "Keep the newest snapshot of each of N months");
  cmd->add_option("--keep-yearly", f.keep_yearly, "Keep the newest snapshot of each of N years");
  cmd->add_option("--keep-within", f.keep_within,
                  "Keep snapshots newer than this before the latest one, e.g. 7d, 1y6m, 36h");
  cmd->add_option("--keep-tag", f.keep_tags, "Keep snapshots with this tag (repeatable)")
      ->allow_extra_args(false);
}

absl::StatusOr<engine::RetentionPolicy> KeepPolicyFromFlags(const KeepFlags& f) {
  engine::RetentionPolicy p;
  p.keep_last = f.keep_last;
  p.keep_hourly = f.keep_hourly;
  p.keep_daily = f.keep_daily;
  p.keep_weekly = f.keep_weekly;
  p.keep_monthly = f.keep_monthly;
  p.keep_yearly = f.keep_yearly;
  if (!f.keep_within.empty()) {
    auto d = engine::ParseRetentionDuration(f.keep_within);
    if (!d.ok()) {
      return absl::InvalidArgumentError("--keep-within: " + std::string(d.status().message()));
    }
    p.keep_within = *d;
  }
  p.keep_tags = f.keep_tags;
  return p;
}

}  // namespace cairn::cli
