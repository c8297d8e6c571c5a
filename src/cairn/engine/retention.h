// Retention: which snapshots a `forget` policy keeps, with restic's semantics (restic
// internal/restic/snapshot_policy.go, ApplyPolicy, and the `restic forget` documentation).
//
// Snapshots are grouped by hostname and set of source paths (an archive's versions by hostname
// and archive name: engine/archive.h); each group is walked newest
// first (equal times keep the input order) and a snapshot is kept when any rule keeps it:
//  - keep_last N: the N newest;
//  - keep_hourly/daily/weekly/monthly/yearly N: a snapshot whose bucket — local time hour,
//    day, ISO 8601 year and week, month, year — differs from the bucket of the last snapshot
//    that rule kept, until the rule has kept N; -1 keeps one per bucket without limit. As in
//    restic (0.16 and later) a rule that still has count left when it reaches the group's
//    oldest snapshot keeps that one too (reason "oldest daily snapshot" when it shares its
//    bucket with a snapshot already kept), so a short history is not cut short;
//  - keep_within D: every snapshot newer than (the group's newest snapshot time - D), where D
//    is subtracted calendar-wise in local time (years, months, days; then hours as 3600 s);
//    restic also ignores snapshots dated in the future when it picks the newest, cairn does not;
//  - keep_tags: every snapshot having the tag; an element "a,b" needs all of a and b.
// An empty policy keeps every snapshot ("policy is empty"); `cairn forget` refuses one.
//
// Thread-safety: pure functions, except that they read the local time zone (localtime_r).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

// A calendar duration, as restic's: years, months, days and hours, applied field by field
// (one month back from 31 March is 3 March, as mktime(3) and Go's AddDate normalize).
struct RetentionDuration {
  int years = 0;
  int months = 0;
  int days = 0;
  int hours = 0;

  bool zero() const { return years == 0 && months == 0 && days == 0 && hours == 0; }
  // restic's form, e.g. "1y2m", "7d", "36h"; "" for zero.
  std::string ToString() const;
  bool operator==(const RetentionDuration&) const = default;
};

// Parses restic's duration form: one or more NUMBER UNIT with units y (years), m (months),
// d (days), h (hours), e.g. "1y2m", "7d", "36h", "2d12h"; surrounding spaces allowed.
// INVALID_ARGUMENT for an empty text, a missing number or unit, an unknown unit, a unit given
// twice, or a number above 1,000,000.
absl::StatusOr<RetentionDuration> ParseRetentionDuration(const std::string& text);

// `time_ns` (Unix epoch, nanoseconds) moved back by `d`: years, months and days in local
// calendar time (mktime(3) normalization), then hours as exact 3600 s each.
int64_t SubtractRetentionDuration(int64_t time_ns, const RetentionDuration& d);

// The one keep policy type: `cairn forget --keep-*`, [retention] and a [[source]]'s keep_* in
// cairn.toml, the API's keep_* fields (api/requests.h encodes and decodes it) and the
// CLI's --keep-* flags (cli/keep_flags.h) all hold one of these.
struct RetentionPolicy {
  // Counts: 0 = rule unset, -1 = unlimited (one per bucket).
  int keep_last = 0;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  RetentionDuration keep_within;  // zero = unset
  std::vector<std::string> keep_tags;

  bool empty() const {
    return keep_last == 0 && keep_hourly == 0 && keep_daily == 0 && keep_weekly == 0 &&
           keep_monthly == 0 && keep_yearly == 0 && keep_within.zero() && keep_tags.empty();
  }
  bool operator==(const RetentionPolicy&) const = default;
};

struct RetentionDecision {
  ports::SnapshotRecord snapshot;
  bool keep = false;
  // Why it is kept, in restic's order (tags, within, then the count rules): "last snapshot",
  // "hourly snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"
  // (each possibly prefixed "oldest "), "within 7d", "tag T", "policy is empty". Empty when the
  // snapshot is to be forgotten.
  std::vector<std::string> reasons;
  // Its group (hostname + set of paths, or + archive name), numbered 0, 1, ... in order of first
  // appearance in the input.
  size_t group = 0;
};

// One decision per snapshot, in the order of `snapshots` (any order; the catalog lists them
// oldest first).
std::vector<RetentionDecision> ApplyRetention(const std::vector<ports::SnapshotRecord>& snapshots,
                                              const RetentionPolicy& policy);

}  // namespace cairn::engine
