#include "cairn/cluster/membership.h"

#include <algorithm>
#include <set>
#include <utility>

namespace cairn::cluster {

const char* PeerStateName(PeerState state) {
  switch (state) {
    case PeerState::kAlive:
      return "alive";
    case PeerState::kSuspect:
      return "suspect";
    case PeerState::kDead:
      return "dead";
  }
  return "unknown";
}

Membership::Membership(PeerInfo self, MembershipOptions options, env::Clock* clock)
    : self_initial_(self), self_(std::move(self)), options_(options), clock_(clock) {}

uint64_t Room(const PeerInfo& info) {
  uint64_t room = info.quota - std::min(info.quota, info.used);
  if (info.disk_room) room = std::min(room, *info.disk_room);
  return room;
}

void Membership::UpdateSelf(uint64_t quota, uint64_t used, uint64_t extra,
                            std::optional<uint64_t> disk_room) {
  std::lock_guard<std::mutex> lock(mu_);
  self_.quota = quota;
  self_.used = used;
  self_.extra = extra;
  self_.disk_room = disk_room;
}

PeerInfo Membership::Self() const {
  std::lock_guard<std::mutex> lock(mu_);
  return self_;
}

void Membership::ObserveDirect(const PeerInfo& info) {
  if (info.id == self_initial_.id) return;
  if (options_.pins != nullptr && !options_.pins->Check(info.id, info.node_id).ok()) return;
  if (options_.cert_pins != nullptr && !info.cert_fingerprint.empty() &&
      !options_.cert_pins->Check(info.id, info.cert_fingerprint).ok()) {
    return;
  }
  const int64_t now_mono = clock_->MonotonicNanos();
  const int64_t now_wall = clock_->NowNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = peers_.try_emplace(info.id);
  Entry& e = it->second;
  if (inserted) e.learned_mono = now_mono;
  // The peer itself is the authority on its own info.
  e.info = info;
  e.contacted = true;
  e.last_contact_mono = now_mono;
  e.last_seen_ns = now_wall;
  e.failures = 0;
}

void Membership::ObserveIndirect(const PeerInfo& info) {
  if (info.id == self_initial_.id || info.address.empty()) return;
  if (options_.pins != nullptr && options_.pins->Conflicts(info.id, info.node_id)) return;
  if (options_.cert_pins != nullptr && !info.cert_fingerprint.empty() &&
      !options_.cert_pins->Verify(info.id, info.cert_fingerprint).ok()) {
    return;
  }
  const int64_t now_mono = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = peers_.try_emplace(info.id);
  Entry& e = it->second;
  if (inserted) {
    e.info = info;
    e.learned_mono = now_mono;
    return;
  }
  // Second-hand news only wins when it is about a newer process (e.g. the peer restarted on a
  // new address and someone else saw it first).
  if (info.incarnation > e.info.incarnation) e.info = info;
}

void Membership::ReportFailure(PeerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it != peers_.end()) ++it->second.failures;
}

void Membership::ObserveClockOffset(PeerId id, int64_t offset_ms) {
  if (id == self_initial_.id) return;
  const int64_t now_wall = clock_->NowNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  it->second.clock_offset_ms = offset_ms;
  it->second.clock_measured_ns = now_wall;
}

void Membership::ObserveClockRefusal(PeerId id, const std::string& node_id,
                                     const std::string& address, int64_t offset_ms) {
  if (id == self_initial_.id || address.empty()) return;
  if (options_.pins != nullptr && options_.pins->Conflicts(id, node_id)) return;
  const int64_t now_mono = clock_->MonotonicNanos();
  const int64_t now_wall = clock_->NowNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = peers_.try_emplace(id);
  Entry& e = it->second;
  if (inserted) {
    e.info.id = id;
    e.info.node_id = node_id;
    e.info.address = address;
    e.learned_mono = now_mono;
  } else if (!e.info.node_id.empty() && e.info.node_id != node_id) {
    return;
  }
  e.clock_offset_ms = offset_ms;
  e.clock_measured_ns = now_wall;
}

PeerState Membership::StateOf(const Entry& entry, int64_t now_mono) const {
  const int64_t suspect_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.suspect_after).count();
  const int64_t dead_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.dead_after).count();
  if (!entry.contacted) {
    return now_mono - entry.learned_mono >= dead_ns ? PeerState::kDead : PeerState::kSuspect;
  }
  const int64_t age = now_mono - entry.last_contact_mono;
  // A call that failed after its retries is direct evidence: suspect until the next contact,
  // so that engines stop waiting on a peer that was just killed.
  if (age < suspect_ns) return entry.failures > 0 ? PeerState::kSuspect : PeerState::kAlive;
  if (age < dead_ns) return PeerState::kSuspect;
  return PeerState::kDead;
}

PeerView Membership::ViewOf(const Entry& entry, int64_t now_mono) const {
  PeerView view;
  view.info = entry.info;
  view.state = StateOf(entry, now_mono);
  view.last_seen_ns = entry.contacted ? entry.last_seen_ns : 0;
  view.failures = entry.failures;
  view.clock_offset_ms = entry.clock_offset_ms;
  view.clock_measured_ns = entry.clock_measured_ns;
  return view;
}

PeerView Membership::SelfView() const {
  PeerView view;
  view.info = self_;
  view.state = PeerState::kAlive;
  view.last_seen_ns = clock_->NowNanos();
  view.self = true;
  return view;
}

std::vector<PeerView> Membership::Peers() const {
  const int64_t now_mono = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PeerView> out;
  out.reserve(peers_.size() + 1);
  bool self_added = false;
  for (const auto& [id, entry] : peers_) {  // std::map: ascending ids
    if (!self_added && self_.id < id) {
      out.push_back(SelfView());
      self_added = true;
    }
    out.push_back(ViewOf(entry, now_mono));
  }
  if (!self_added) out.push_back(SelfView());
  return out;
}

std::optional<PeerView> Membership::Find(PeerId id) const {
  const int64_t now_mono = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  if (id == self_.id) return SelfView();
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  return ViewOf(it->second, now_mono);
}

std::vector<std::string> Membership::PingTargets() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> known;  // addresses already identified, and our own
  known.insert(self_.address);
  for (const auto& [id, entry] : peers_) known.insert(entry.info.address);

  std::vector<std::string> out;
  std::set<std::string> emitted;
  for (const std::string& seed : seeds_) {
    if (!known.count(seed) && emitted.insert(seed).second) out.push_back(seed);
  }
  for (const auto& [id, entry] : peers_) {
    const std::string& address = entry.info.address;
    if (address.empty() || address == self_.address) continue;
    if (emitted.insert(address).second) out.push_back(address);
  }
  return out;
}

void Membership::AddSeed(const std::string& address) {
  if (address.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (std::find(seeds_.begin(), seeds_.end(), address) == seeds_.end()) {
    seeds_.push_back(address);
  }
}

}  // namespace cairn::cluster
