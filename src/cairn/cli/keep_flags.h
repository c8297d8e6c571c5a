// The --keep-* flags of a retention policy (engine::RetentionPolicy, restic's `forget`
// semantics): shared by `cairn forget` and `cairn source add`. Internal to cli/.
// Thread-safety: single-threaded use from Main().
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/engine/retention.h"

namespace cairn::cli {

// The flags as CLI11 fills them in (keep_within as typed; parsed by KeepPolicyFromFlags).
struct KeepFlags {
  int keep_last = 0, keep_hourly = 0, keep_daily = 0, keep_weekly = 0, keep_monthly = 0,
      keep_yearly = 0;
  std::string keep_within;
  std::vector<std::string> keep_tags;
  // Whether any --keep-* flag was given a value other than 0 or "".
  bool any() const {
    return keep_last || keep_hourly || keep_daily || keep_weekly || keep_monthly || keep_yearly ||
           !keep_within.empty() || !keep_tags.empty();
  }
};

// Adds --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly,
// --keep-within and --keep-tag (repeatable) to `cmd`, filling `flags`.
void AddKeepFlags(CLI::App* cmd, KeepFlags& flags);

// The policy the flags describe (empty when none was given). INVALID_ARGUMENT "--keep-within:
// <why>" when --keep-within is not restic's duration form; the caller prints it as a usage
// error.
absl::StatusOr<engine::RetentionPolicy> KeepPolicyFromFlags(const KeepFlags& flags);

}  // namespace cairn::cli
