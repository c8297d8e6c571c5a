#include "cairn/engine/retention.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>
#include <tuple>

#include "absl/strings/str_split.h"

namespace cairn::engine {
namespace {

constexpr int64_t kNanos = 1'000'000'000;
constexpr int kMaxDurationNumber = 1'000'000;

int64_t FloorSeconds(int64_t ns) { return ns >= 0 ? ns / kNanos : -((-ns + kNanos - 1) / kNanos); }

struct tm LocalTime(int64_t ns) {
  time_t t = static_cast<time_t>(FloorSeconds(ns));
  struct tm tm {};
  localtime_r(&t, &tm);
  return tm;
}

bool IsLeap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

// ISO 8601 week-numbering year and week: the week (Monday first) belongs to the year that
// holds its Thursday, and is numbered from the week of that year's first Thursday.
int IsoYearWeek(const struct tm& tm) {
  int year = tm.tm_year + 1900;
  int weekday = (tm.tm_wday + 6) % 7;       // Monday = 0
  int thursday = tm.tm_yday - weekday + 3;  // day of the year of this week's Thursday
  if (thursday < 0) {
    --year;
    thursday += IsLeap(year) ? 366 : 365;
  } else if (thursday >= (IsLeap(year) ? 366 : 365)) {
    thursday -= IsLeap(year) ? 366 : 365;
    ++year;
  }
  return year * 100 + thursday / 7 + 1;
}

// The buckets of the count rules, as restic's ymdh/ymd/yw/ym/y.
enum Rule { kLast, kHourly, kDaily, kWeekly, kMonthly, kYearly, kRules };
constexpr const char* kReasons[kRules] = {"last snapshot",   "hourly snapshot",  "daily snapshot",
                                          "weekly snapshot", "monthly snapshot", "yearly snapshot"};

int64_t Bucket(Rule rule, const struct tm& tm, size_t nr) {
  const int64_t y = tm.tm_year + 1900, m = tm.tm_mon + 1;
  switch (rule) {
    case kLast:
      return static_cast<int64_t>(nr);  // every snapshot its own bucket
    case kHourly:
      return y * 1'000'000 + m * 10'000 + tm.tm_mday * 100 + tm.tm_hour;
    case kDaily:
      return y * 10'000 + m * 100 + tm.tm_mday;
    case kWeekly:
      return IsoYearWeek(tm);
    case kMonthly:
      return y * 100 + m;
    case kYearly:
    case kRules:
      break;
  }
  return y;
}

bool HasTags(const format::Snapshot& snap, const std::string& spec) {
  for (auto t : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    if (std::find(snap.tags.begin(), snap.tags.end(), std::string(t)) == snap.tags.end())
      return false;
  }
  return true;
}

}  // namespace

std::string RetentionDuration::ToString() const {
  std::string s;
  if (years) s += std::to_string(years) + "y";
  if (months) s += std::to_string(months) + "m";
  if (days) s += std::to_string(days) + "d";
  if (hours) s += std::to_string(hours) + "h";
  return s;
}

absl::StatusOr<RetentionDuration> ParseRetentionDuration(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\n");
  size_t end = text.find_last_not_of(" \t\n");
  if (begin == std::string::npos) return absl::InvalidArgumentError("empty duration");
  const std::string s = text.substr(begin, end - begin + 1);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError("duration '" + s + "': " + why +
                                      " (expected e.g. 1y2m, 7d, 36h: y years, m months, "
                                      "d days, h hours)");
  };
  RetentionDuration d;
  bool seen[4] = {false, false, false, false};
  size_t i = 0;
  while (i < s.size()) {
    size_t digits = i;
    int64_t n = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') {
      n = n * 10 + (s[digits] - '0');
      if (n > kMaxDurationNumber) return bad("number too large");
      ++digits;
    }
    if (digits == i) return bad("expected a number at '" + s.substr(i) + "'");
    if (digits == s.size()) return bad("no unit after " + std::to_string(n));
    int* field = nullptr;
    int slot = 0;
    switch (s[digits]) {
      case 'y':
        field = &d.years, slot = 0;
        break;
      case 'm':
        field = &d.months, slot = 1;
        break;
      case 'd':
        field = &d.days, slot = 2;
        break;
      case 'h':
        field = &d.hours, slot = 3;
        break;
      default:
        return bad(std::string("unknown unit '") + s[digits] + "'");
    }
    if (seen[slot]) return bad(std::string("unit '") + s[digits] + "' given twice");
    seen[slot] = true;
    *field = static_cast<int>(n);
    i = digits + 1;
  }
  return d;
}

int64_t SubtractRetentionDuration(int64_t time_ns, const RetentionDuration& d) {
  const int64_t sec = FloorSeconds(time_ns);
  const int64_t sub_ns = time_ns - sec * kNanos;
  struct tm tm = LocalTime(time_ns);
  tm.tm_year -= d.years;
  tm.tm_mon -= d.months;
  tm.tm_mday -= d.days;
  tm.tm_isdst = -1;  // whatever applies at the new date
  errno = 0;
  time_t back = mktime(&tm);
  if (back == static_cast<time_t>(-1) && errno != 0) {
    return std::numeric_limits<int64_t>::min();  // before anything representable
  }
  const int64_t result_sec = static_cast<int64_t>(back) - int64_t{3600} * d.hours;
  if (result_sec < std::numeric_limits<int64_t>::min() / kNanos + 1) {
    return std::numeric_limits<int64_t>::min();
  }
  return result_sec * kNanos + sub_ns;
}

std::vector<RetentionDecision> ApplyRetention(const std::vector<ports::SnapshotRecord>& snapshots,
                                              const RetentionPolicy& policy) {
  std::vector<RetentionDecision> out(snapshots.size());
  // Groups: hostname + set of paths (an archive's versions: hostname + archive name), numbered
  // by first appearance.
  std::map<std::tuple<std::string, std::string, std::vector<std::string>>, size_t> group_ids;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < snapshots.size(); ++i) {
    out[i].snapshot = snapshots[i];
    auto paths = snapshots[i].snapshot.paths;
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    auto [it, inserted] = group_ids.try_emplace(
        {snapshots[i].snapshot.hostname, snapshots[i].snapshot.archive, std::move(paths)},
        groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
    out[i].group = it->second;
  }
  if (policy.empty()) {
    for (auto& d : out) {
      d.keep = true;
      d.reasons = {"policy is empty"};
    }
    return out;
  }
  const int counts[kRules] = {policy.keep_last,   policy.keep_hourly,  policy.keep_daily,
                              policy.keep_weekly, policy.keep_monthly, policy.keep_yearly};
  for (auto& members : groups) {
    // Newest first; equal times keep their input order (restic sorts stably).
    std::stable_sort(members.begin(), members.end(), [&](size_t a, size_t b) {
      return snapshots[a].snapshot.time_ns > snapshots[b].snapshot.time_ns;
    });
    const int64_t latest = snapshots[members.front()].snapshot.time_ns;
    const int64_t within_cutoff =
        policy.keep_within.zero() ? 0 : SubtractRetentionDuration(latest, policy.keep_within);
    int left[kRules];
    int64_t last[kRules];
    bool any_kept[kRules];
    for (int r = 0; r < kRules; ++r) {
      left[r] = counts[r];
      last[r] = 0;
      any_kept[r] = false;
    }
    for (size_t nr = 0; nr < members.size(); ++nr) {
      RetentionDecision& d = out[members[nr]];
      const format::Snapshot& snap = d.snapshot.snapshot;
      for (const auto& tag : policy.keep_tags) {
        if (HasTags(snap, tag)) d.reasons.push_back("tag " + tag);
      }
      if (!policy.keep_within.zero() && snap.time_ns > within_cutoff) {
        d.reasons.push_back("within " + policy.keep_within.ToString());
      }
      const struct tm tm = LocalTime(snap.time_ns);
      const bool oldest = nr + 1 == members.size();
      for (int r = 0; r < kRules; ++r) {
        if (left[r] == 0 || left[r] < -1) continue;  // unset, or its count is used up
        const int64_t bucket = Bucket(static_cast<Rule>(r), tm, nr);
        const bool new_bucket = !any_kept[r] || bucket != last[r];
        if (!new_bucket && !oldest) continue;
        d.reasons.push_back(new_bucket ? kReasons[r] : std::string("oldest ") + kReasons[r]);
        last[r] = bucket;
        any_kept[r] = true;
        if (left[r] > 0) --left[r];
      }
      d.keep = !d.reasons.empty();
    }
  }
  return out;
}

}  // namespace cairn::engine
