// The `cairn` command line (docs/cli.md "Commands"): CLI11 app with one file per command.
// Thread-safety: call once from main().
#pragma once

namespace cairn::cli {

// Parses argv, runs the command and returns the process exit code: 0 ok, 1 error, 2 usage,
// 3 done but degraded.
int Main(int argc, char** argv);

}  // namespace cairn::cli
