// `cairn key export`: prints this peer's recovery key (cluster/recovery_key.h; docs/formats.md
// "Recovery key"; docs/security.md): the owner key, the cluster key, the peer id and the node
// id, with a checksum, so that `cairn recover` can rebuild this peer on a new machine from the
// others.
// Reads the peer directory only; no peer needs to be running.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/output.h"
#include "cairn/cluster/recovery_key.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::cli {
namespace {

int RunExport(const GlobalOptions& global) {
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  cluster::RecoveryKey key;
  key.peer_id = config->peer_id;
  absl::StatusOr<codec::Key> owner = daemon::LoadOwnerKey(global.dir);
  if (!owner.ok()) return PrintError(owner.status());
  key.owner_key = *owner;
  absl::StatusOr<codec::Key> cluster_key = daemon::LoadClusterKey(global.dir);
  if (!cluster_key.ok()) return PrintError(cluster_key.status());
  key.cluster_key = *cluster_key;
  absl::StatusOr<std::string> node_id = daemon::LoadOrCreateNodeId(global.dir);
  if (!node_id.ok()) return PrintError(node_id.status());
  key.node_id = *node_id;
  absl::StatusOr<std::string> text = cluster::FormatRecoveryKey(key);
  if (!text.ok()) return PrintError(text.status());
  if (global.json) {
    PrintJson(nlohmann::json{{"recovery_key", *text}, {"peer_id", key.peer_id}});
    return kExitOk;
  }
  std::cout << *text << std::endl;
  std::cerr
      << "This is the recovery key of peer " << key.peer_id
      << ". Keep it OFF this machine (print it, or store it in a password manager): if the "
         "machine is lost, it is the only way to get its backups back, with\n"
         "  cairn recover --recovery-key KEY --peer-id "
      << key.peer_id
      << " --dir DIR --seed HOST:PORT\n"
         "on a new machine. Whoever has it can decrypt every backup of this peer and join the "
         "cluster: guard it like the machine itself.\n";
  return kExitOk;
}

}  // namespace

Action RegisterKey(CLI::App& app, GlobalOptions& global) {
  CLI::App* cmd = app.add_subcommand("key", "This peer's keys: export the recovery key");
  cmd->require_subcommand(1);
  CLI::App* export_cmd = cmd->add_subcommand(
      "export", "Print this peer's recovery key (for `cairn recover`; keep it off the machine)");
  return [&global, export_cmd] {
    if (export_cmd->parsed()) return RunExport(global);
    return PrintUsageError("cairn key: a subcommand is required (export)");
  };
}

}  // namespace cairn::cli
