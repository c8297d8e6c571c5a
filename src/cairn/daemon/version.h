// What this binary is (GET /v1/version, `cairn version`, cairn_build_info; docs/cli.md
// "Local HTTP API"): the cairn release version, the git commit it was built from when the
// source was a git checkout, and the versions of the wire protocol and of the on-disk formats
// it reads and writes.
// Thread-safety: immutable data.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace cairn::daemon {

// "0.1.0" (the CMake project version).
const char* CairnVersion();
// The commit's hex id (12 digits), with "-dirty" when the work tree had changes at build time;
// "" when the source was not a git checkout.
const char* GitCommit();

// {"version":"0.1.0","git_commit":"3fa2c1d9e0b1" or null,"protocol":"cairn.v1",
//  "formats":{"blob":1,"tree":1,"snapshot":1,"segment":1,"index_schema":N,"recovery_key":1}}.
nlohmann::json VersionJson();

}  // namespace cairn::daemon
