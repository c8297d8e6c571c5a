// `cairn cluster token|new|join`: the cluster key of a peer directory (docs/security.md "Keys
// and identities"). These work on the directory itself; no peer needs to be running.
//
//   token [--address HOST:PORT]  prints a join token for `cairn init --join` (key + this peer's
//                                listen address as a seed)
//   new                          makes a cluster key for a directory that has none (made before
//                                cluster authentication): the first peer of the cluster
//   join TOKEN                   writes the token's key into a directory that has none
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/output.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::cli {
namespace {

bool IsWildcardHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

// The first IPv4 address of an interface that is up and not loopback, or "".
std::string FirstLanAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    const in_addr a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    if ((ntohl(a.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &a, text, sizeof text) != nullptr) out = text;
  }
  ::freeifaddrs(list);
  return out;
}

// The address other peers reach this one at: --address, else `listen` from cairn.toml with a
// wildcard host replaced by this machine's first LAN address.
absl::StatusOr<std::string> TokenAddress(const daemon::Config& config,
                                         const std::string& override_address) {
  if (!override_address.empty()) {
    CAIRN_RETURN_IF_ERROR(daemon::SplitHostPort(override_address).status());
    return override_address;
  }
  CAIRN_ASSIGN_OR_RETURN(auto hp, daemon::SplitHostPort(config.listen));
  if (hp.second == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this peer's port is not known yet (listen = \"", config.listen,
        "\" picks one at first start): start the peer once, or pass --address HOST:PORT"));
  }
  if (IsWildcardHost(hp.first)) {
    std::string lan = FirstLanAddress();
    if (lan.empty()) {
      return absl::FailedPreconditionError(
          "this peer listens on all interfaces and none has a LAN address: pass --address "
          "HOST:PORT");
    }
    return daemon::JoinHostPort(lan, hp.second);
  }
  return config.listen;
}

int RunToken(const GlobalOptions& global, const std::string& address_flag) {
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  absl::StatusOr<codec::Key> key = daemon::LoadClusterKey(global.dir);
  if (!key.ok()) return PrintError(key.status());
  absl::StatusOr<std::string> address = TokenAddress(*config, address_flag);
  if (!address.ok()) {
    if (absl::IsInvalidArgument(address.status())) {
      return PrintUsageError(absl::StrCat("--address: ", address.status().message()));
    }
    return PrintError(address.status());
  }
  absl::StatusOr<std::string> token = cluster::FormatJoinToken({*key, *address});
  if (!token.ok()) return PrintError(token.status());
  if (global.json) {
    PrintJson(nlohmann::json{{"token", *token}, {"address", *address}});
    return kExitOk;
  }
  std::cout << *token << std::endl;
  std::cerr << "This token holds the cluster key: whoever has it can join the cluster. Use it "
               "on the new peer with\n  cairn init --dir DIR --peer-id N --join TOKEN\n";
  auto hp = daemon::SplitHostPort(*address);
  if (hp.ok() && daemon::IsLoopbackHost(hp->first)) {
    std::cerr << "(its seed " << *address
              << " is a loopback address: only peers on this computer can use it)\n";
  }
  return kExitOk;
}

int RunNew(const GlobalOptions& global) {
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  if (daemon::LoadClusterKey(global.dir).ok()) {
    return PrintError(absl::AlreadyExistsError(
        absl::StrCat(daemon::ClusterKeyPath(global.dir),
                     " exists: this peer already has a cluster key (print a token to join it "
                     "with `cairn cluster token`)")));
  }
  absl::Status st = daemon::WriteClusterKey(global.dir, codec::RandomKey());
  if (!st.ok()) return PrintError(st);
  std::cout << "made a new cluster key in " << daemon::ClusterKeyPath(global.dir)
            << "\nlet other peers join with the token from `cairn cluster token --dir "
            << global.dir << "`" << std::endl;
  return kExitOk;
}

int RunJoin(const GlobalOptions& global, const std::string& token_text) {
  absl::StatusOr<cluster::JoinToken> token = cluster::ParseJoinToken(token_text);
  if (!token.ok()) return PrintUsageError(std::string(token.status().message()));
  absl::StatusOr<daemon::Config> config = daemon::LoadConfig(global.dir);
  if (!config.ok()) return PrintError(config.status());
  absl::Status st = daemon::WriteClusterKey(global.dir, token->key);
  if (!st.ok()) return PrintError(st);
  std::cout << "wrote the cluster key to " << daemon::ClusterKeyPath(global.dir) << "\n";
  bool seeded = false;
  for (const std::string& seed : config->seeds) seeded = seeded || seed == token->address;
  if (!seeded) {
    std::cout << "peers on this LAN are found by multicast; otherwise add \"" << token->address
              << "\" to seeds in " << daemon::ConfigPath(global.dir) << "\n";
  }
  std::cout << "restart the peer to use it" << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterCluster(CLI::App& app, GlobalOptions& global) {
  CLI::App* cmd = app.add_subcommand("cluster", "The cluster key: join tokens and re-keying");
  cmd->require_subcommand(1);
  auto address = std::make_shared<std::string>();
  auto token = std::make_shared<std::string>();
  CLI::App* token_cmd =
      cmd->add_subcommand("token", "Print a token that lets a new peer join this cluster");
  token_cmd->add_option("--address", *address,
                        "Address other peers reach this one at (default: `listen` from "
                        "cairn.toml)");
  CLI::App* new_cmd =
      cmd->add_subcommand("new", "Make a cluster key for a peer directory that has none");
  CLI::App* join_cmd =
      cmd->add_subcommand("join",
                          "Give a peer directory that has no cluster key the key of a "
                          "token (for directories made before cluster keys)");
  join_cmd->add_option("TOKEN", *token, "Token from `cairn cluster token` on a member")->required();
  return [&global, token_cmd, new_cmd, join_cmd, address, token] {
    if (token_cmd->parsed()) return RunToken(global, *address);
    if (new_cmd->parsed()) return RunNew(global);
    if (join_cmd->parsed()) return RunJoin(global, *token);
    return PrintUsageError("cairn cluster: a subcommand is required (token, new, join)");
  };
}

}  // namespace cairn::cli
