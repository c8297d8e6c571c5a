// Durations as users write them in flags, cairn.toml and API requests (docs/cli.md
// "Durations"): the one parser every `--schedule`, `--quiet`, `--ping-interval`, `interval = ...`
// and "schedule" field goes through.
// Thread-safety: stateless functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cairn {

// Parses a sequence of <number><unit> with units ms, s, m (minutes), h, d (days of 24 h),
// case-insensitive, surrounding spaces allowed; numbers may have a fraction: "500ms", "2s",
// "10m", "1h", "1h30m", "1.5s", "1d", "2d12h". Returns milliseconds (rounded to the nearest).
// INVALID_ARGUMENT for an empty text, a number without a unit, an unknown unit, a result below
// 1 ms or above 10^15 ms (about 31,700 years).
absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest exact form in ms, s, m or h: "500ms", "2s", "10m", "1h", "90s", "24h". Days are
// written as hours so that a cairn.toml written by this version stays readable by versions
// before `d` was accepted. ParseDuration(FormatDuration(d)) == d for every d >= 1 ms.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace cairn
