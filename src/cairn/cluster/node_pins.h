// Peer id -> node id pins (docs/security.md "Node ids and pinning"): trust on first use, like
// SSH known_hosts or Syncthing device ids. The first authenticated contact from a peer id pins
// the node id it presented; later contacts claiming that peer id with another node id are
// refused, so that a second process started with a peer id already in use (a copied config, a
// typo in --peer-id) cannot take over that peer's place in the cluster.
//
// Pins are persisted through a callback (the daemon stores them in the index `meta` table) and
// loaded at start with Load(). A pin is never replaced automatically; see docs/security.md for
// how an operator re-keys a peer.
//
// Thread-safety: thread-safe. The persist callback runs under the pins' lock (it must not call
// back into this object).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cairn/base/ids.h"

namespace cairn::cluster {

class NodePins {
 public:
  // Called with every pin (peer id -> node id) after a new pin was added. An error is logged;
  // the pin still holds in memory.
  using Persist = std::function<absl::Status(const std::map<PeerId, std::string>& pins)>;

  explicit NodePins(Persist persist = nullptr);

  // Adds pins read back from storage (no persist call). Invalid node ids are skipped.
  void Load(const std::map<PeerId, std::string>& pins);

  // OK when `peer_id` is pinned to `node_id`, or was not pinned and now is (persisted).
  // ALREADY_EXISTS "peer id N belongs to another node (...)" when it is pinned to another node
  // id; INVALID_ARGUMENT when `node_id` is not 32 hex characters.
  absl::Status Check(PeerId peer_id, const std::string& node_id);
  // True when `peer_id` is pinned to a node id other than `node_id` (never pins).
  bool Conflicts(PeerId peer_id, const std::string& node_id) const;
  std::optional<std::string> Pinned(PeerId peer_id) const;
  std::map<PeerId, std::string> All() const;

  // The text form used for storage: one "peer_id node_id" line per pin, ascending ids.
  static std::string Serialize(const std::map<PeerId, std::string>& pins);
  // Parses Serialize()'s output; malformed lines are skipped.
  static std::map<PeerId, std::string> Parse(const std::string& text);

 private:
  Persist persist_;
  mutable std::mutex mu_;
  std::map<PeerId, std::string> pins_;
};

}  // namespace cairn::cluster
