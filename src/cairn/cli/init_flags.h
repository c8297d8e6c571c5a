// The settings of a new peer directory as command-line flags: shared by `cairn init` and
// `cairn recover` (which makes a directory too, with the keys of a recovery key). Internal to
// cli/. Thread-safety: single-threaded use from Main().
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/cli/commands.h"
#include "cairn/daemon/config.h"

namespace cairn::cli {

struct InitFlags {
  uint64_t peer_id = 0;
  std::string listen = "127.0.0.1:0";
  std::string api = "127.0.0.1:0";
  std::string quota = "10G";
  std::string host_id;
  std::string site;
  bool site_given = false;
  std::vector<std::string> seeds;
  uint32_t copies = 2;
  std::string chunk_min, chunk_avg, chunk_max;
  std::string ping_interval, suspect_after, dead_after;
  // Sealed segments in an S3-compatible bucket ([storage] bucket, [s3]).
  std::string storage, s3_endpoint, s3_region = "us-east-1", s3_credentials;
};

// Adds --peer-id (required), --listen, --api, --quota, --host-id, --site, --seed, --copies,
// --storage,
// --s3-endpoint, --s3-region, --s3-credentials and the
// advanced (hidden) --chunk-*, --ping-interval, --suspect-after and --dead-after to `cmd`.
void AddInitFlags(CLI::App* cmd, InitFlags& flags);

// The config the flags describe (dir from `global`). Returns kExitOk, or prints a usage error
// naming the flag and returns kExitUsage.
int ConfigFromInitFlags(const GlobalOptions& global, const InitFlags& flags, daemon::Config& out);

}  // namespace cairn::cli
