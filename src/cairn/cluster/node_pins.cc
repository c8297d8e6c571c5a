#include "cairn/cluster/node_pins.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/cluster/cluster_key.h"

namespace cairn::cluster {

NodePins::NodePins(Persist persist) : persist_(std::move(persist)) {}

void NodePins::Load(const std::map<PeerId, std::string>& pins) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, node] : pins) {
    if (id != 0 && IsValidNodeId(node)) pins_[id] = absl::AsciiStrToLower(node);
  }
}

absl::Status NodePins::Check(PeerId peer_id, const std::string& node_id) {
  if (!IsValidNodeId(node_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer id ", peer_id, " presented no valid node id"));
  }
  const std::string node = absl::AsciiStrToLower(node_id);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pins_.try_emplace(peer_id, node);
  if (!inserted) {
    if (it->second == node) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("peer id ", peer_id, " belongs to another node (pinned node ",
                     it->second.substr(0, 8), ", this process is node ", node.substr(0, 8),
                     "): another peer already uses this id; give this peer its own --peer-id"));
  }
  if (persist_) {
    // The pin holds in memory either way; losing it at the next restart is the lesser harm
    // than refusing a genuine member now.
    absl::Status saved = persist_(pins_);
    if (!saved.ok())
      spdlog::warn("cannot save the node id pin of peer {}: {}", peer_id, saved.ToString());
  }
  return absl::OkStatus();
}

bool NodePins::Conflicts(PeerId peer_id, const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(peer_id);
  return it != pins_.end() && it->second != absl::AsciiStrToLower(node_id);
}

std::optional<std::string> NodePins::Pinned(PeerId peer_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(peer_id);
  if (it == pins_.end()) return std::nullopt;
  return it->second;
}

std::map<PeerId, std::string> NodePins::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pins_;
}

std::string NodePins::Serialize(const std::map<PeerId, std::string>& pins) {
  std::string out;
  for (const auto& [id, node] : pins) absl::StrAppend(&out, id, " ", node, "\n");
  return out;
}

std::map<PeerId, std::string> NodePins::Parse(const std::string& text) {
  std::map<PeerId, std::string> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  for (const std::string& line : lines) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    PeerId id = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &id) || id == 0 ||
        !IsValidNodeId(parts[1])) {
      continue;
    }
    out[id] = absl::AsciiStrToLower(parts[1]);
  }
  return out;
}

}  // namespace cairn::cluster
