// `cairn init`: creates a peer directory (daemon/peer_dir.h).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/init_flags.h"
#include "cairn/cli/output.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/peer_dir.h"
#include "cairn/store/s3/s3_config.h"

namespace cairn::cli {
namespace {

struct JoinInitFlags : InitFlags {
  std::string join;  // --join TOKEN (cairn cluster token)
};

int RunInit(const GlobalOptions& global, const JoinInitFlags& f) {
  daemon::Config c;
  if (int rc = ConfigFromInitFlags(global, f, c); rc != kExitOk) return rc;
  std::optional<cluster::JoinToken> token;
  if (!f.join.empty()) {
    auto parsed = cluster::ParseJoinToken(f.join);
    if (!parsed.ok()) return PrintUsageError(absl::StrCat("--join: ", parsed.status().message()));
    token = *std::move(parsed);
    // The issuing member is a seed: that works across subnets, where multicast does not reach.
    if (std::find(c.seeds.begin(), c.seeds.end(), token->address) == c.seeds.end()) {
      c.seeds.push_back(token->address);
    }
  }
  absl::StatusOr<daemon::InitReport> report =
      daemon::InitPeerDir(c, token ? std::optional<codec::Key>(token->key) : std::nullopt);
  if (!report.ok()) {
    // Invalid settings come from the flags: a usage error.
    if (absl::IsInvalidArgument(report.status())) {
      return PrintUsageError(std::string(report.status().message()));
    }
    return PrintError(report.status());
  }
  if (global.json) {
    nlohmann::json j;
    j["peer_id"] = c.peer_id;
    api::SetPathField(j, "dir", c.dir);
    api::SetPathField(j, "config", daemon::ConfigPath(c.dir));
    api::SetPathArray(j, "created", report->created);
    j["joined"] = token.has_value();
    j["seeds"] = c.seeds;
    PrintJson(j);
    return kExitOk;
  }
  std::cout << "initialized cairn peer " << c.peer_id << " in " << c.dir << "\n";
  for (const std::string& path : report->created) std::cout << "  created " << path << "\n";
  if (token) {
    std::cout << "joined the cluster of the peer at " << token->address << " (seed)\n";
  } else {
    std::cout << "made a new cluster key; let other peers join with the token from "
              << "`cairn cluster token --dir " << c.dir << "`\n";
  }
  std::cout << "print this peer's recovery key with `cairn key export --dir " << c.dir
            << "` and keep it off this machine: without it a lost machine's backups cannot be "
               "decrypted\n"
            << "start the peer with: cairn peer --dir " << c.dir << std::endl;
  return kExitOk;
}

}  // namespace

void AddInitFlags(CLI::App* cmd, InitFlags& f) {
  InitFlags* flags = &f;
  cmd->add_option("--peer-id", flags->peer_id, "This peer's permanent id (unique, >= 1)")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 62));
  cmd->add_option("--listen", flags->listen, "Peer service address HOST:PORT (port 0 = pick)")
      ->capture_default_str();
  cmd->add_option("--api", flags->api, "Local HTTP API address, loopback only")
      ->capture_default_str();
  cmd->add_option("--quota", flags->quota, "Disk space lent to other peers (e.g. 500M, 20G, 1T)")
      ->capture_default_str();
  cmd->add_option("--host-id", flags->host_id,
                  "Failure domain name (default: /etc/machine-id, else the host name)");
  cmd->add_option("--site", flags->site,
                  "Site label; \"\" = the LAN (default; \"offsite\" with --storage s3://...)")
      ->each([flags](const std::string&) { flags->site_given = true; });
  cmd->add_option("--seed", flags->seeds, "Another peer's listen address (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--copies", flags->copies, "Default number of copies per chunk")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--storage", flags->storage,
                  "Keep sealed segments in an S3-compatible bucket: s3://BUCKET/PREFIX");
  cmd->add_option("--s3-endpoint", flags->s3_endpoint,
                  "S3 endpoint URL, e.g. http://nas.lan:9000 (default: AWS)");
  cmd->add_option("--s3-region", flags->s3_region, "S3 region")->capture_default_str();
  cmd->add_option("--s3-credentials", flags->s3_credentials,
                  "AWS credentials file (default: AWS_* environment, then ~/.aws/credentials)");
  // Advanced settings, mostly for tests.
  cmd->add_option("--chunk-min", flags->chunk_min, "Chunker minimum size")->group("");
  cmd->add_option("--chunk-avg", flags->chunk_avg, "Chunker average size")->group("");
  cmd->add_option("--chunk-max", flags->chunk_max, "Chunker maximum size")->group("");
  cmd->add_option("--ping-interval", flags->ping_interval, "Ping interval")->group("");
  cmd->add_option("--suspect-after", flags->suspect_after, "Suspect after")->group("");
  cmd->add_option("--dead-after", flags->dead_after, "Dead after")->group("");
}

int ConfigFromInitFlags(const GlobalOptions& global, const InitFlags& f, daemon::Config& c) {
  c.dir = global.dir;
  c.peer_id = f.peer_id;
  c.listen = f.listen;
  c.api = f.api;
  c.host_id = f.host_id.empty() ? daemon::DefaultHostId() : f.host_id;
  c.site = f.site;
  c.seeds = f.seeds;
  c.copies = f.copies;
  auto size = [](const char* flag, const std::string& text, uint64_t& out) -> bool {
    auto v = ParseSize(text);
    if (!v.ok()) {
      PrintUsageError(absl::StrCat(flag, ": ", v.status().message()));
      return false;
    }
    out = *v;
    return true;
  };
  auto chunk = [&](const char* flag, const std::string& text, uint32_t& out) -> bool {
    if (text.empty()) return true;
    uint64_t v;
    if (!size(flag, text, v)) return false;
    if (v > 0xffffffffu) {
      PrintUsageError(absl::StrCat(flag, ": too large"));
      return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
  };
  auto duration = [](const char* flag, const std::string& text,
                     std::chrono::milliseconds& out) -> bool {
    if (text.empty()) return true;
    auto v = daemon::ParseDuration(text);
    if (!v.ok()) {
      PrintUsageError(absl::StrCat(flag, ": ", v.status().message()));
      return false;
    }
    out = *v;
    return true;
  };
  if (!size("--quota", f.quota, c.quota) ||
      !chunk("--chunk-min", f.chunk_min, c.chunker.min_size) ||
      !chunk("--chunk-avg", f.chunk_avg, c.chunker.avg_size) ||
      !chunk("--chunk-max", f.chunk_max, c.chunker.max_size) ||
      !duration("--ping-interval", f.ping_interval, c.ping_interval) ||
      !duration("--suspect-after", f.suspect_after, c.suspect_after) ||
      !duration("--dead-after", f.dead_after, c.dead_after)) {
    return kExitUsage;
  }
  if (!f.storage.empty()) {
    auto where = store::s3::ParseS3Url(f.storage, f.s3_endpoint, f.s3_region);
    if (!where.ok()) {
      PrintUsageError(absl::StrCat("--storage: ", where.status().message()));
      return kExitUsage;
    }
    c.storage_bucket = f.storage;
    if (!f.site_given) c.site = daemon::kBucketSite;
  } else if (!f.s3_endpoint.empty() || !f.s3_credentials.empty()) {
    PrintUsageError("--s3-endpoint and --s3-credentials need --storage s3://BUCKET/PREFIX");
    return kExitUsage;
  }
  c.s3_endpoint = f.s3_endpoint;
  c.s3_region = f.s3_region;
  // Absolute: the peer may be started from another directory.
  c.s3_credentials_file =
      f.s3_credentials.empty() ? "" : std::filesystem::absolute(f.s3_credentials).string();
  // A short --dead-after alone should not trip "suspect_after longer than dead_after".
  if (f.suspect_after.empty() && c.suspect_after > c.dead_after) c.suspect_after = c.dead_after;
  return kExitOk;
}

Action RegisterInit(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<JoinInitFlags>();
  CLI::App* cmd = app.add_subcommand("init", "Create a peer directory (config, keys, index)");
  AddInitFlags(cmd, *flags);
  cmd->add_option("--join", flags->join,
                  "Join the cluster of a member: the token printed by `cairn cluster token` "
                  "there (default: make a new cluster)");
  return [&global, flags] { return RunInit(global, *flags); };
}

}  // namespace cairn::cli
