// Parsing points in time as users and the local API write them (docs/cli.md). Split from
// versions.h so that the local API's request parsing (api/requests.h) and its fuzz target
// need not link the engine.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace cairn::engine {

// A point in time as users write it, in ns since the Unix epoch:
//   "@1700000000" (Unix seconds, optionally with a fraction "@1700000000.5"),
//   "2026-11-22T10:00:00Z" / "2026-11-22T10:00:00.25+01:00" (RFC 3339 §5.6; 't', 'z' and a
//   space instead of 'T' accepted),
//   "2026-11-22 10:00:00", "2026-11-22 10:00" or "2026-11-22" (local time, mktime(3); a date
//   alone is its midnight) when `allow_local`,
//   "1700000000000000000" (digits only: Unix nanoseconds) when `allow_unix_ns`.
// INVALID_ARGUMENT naming the accepted forms otherwise.
absl::StatusOr<int64_t> ParseTimePoint(const std::string& text, bool allow_local,
                                       bool allow_unix_ns);

}  // namespace cairn::engine
