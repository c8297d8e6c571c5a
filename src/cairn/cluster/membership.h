// Membership: what this peer knows about the others (design.md §7).
//
// Sources (this slice): the config's seed addresses and the peer lists exchanged in Ping.
// Each known peer is alive while it answers; it becomes suspect after `suspect_after` without
// contact and dead after `dead_after`; any contact makes it alive again. Multicast discovery
// and the failure detector's use by repair come later (issue 3).
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/ids.h"
#include "cairn/env/clock.h"

namespace cairn::cluster {

struct PeerInfo {
  PeerId id = 0;
  std::string host_id;
  std::string address;  // host:port of its peer service
  uint64_t quota = 0;   // bytes lent
  uint64_t used = 0;    // bytes held
  std::string version;
  uint64_t incarnation = 0;  // start time of the process (ns); newer wins
  bool operator==(const PeerInfo&) const = default;
};

enum class PeerState { kAlive, kSuspect, kDead };
const char* PeerStateName(PeerState state);

struct PeerView {
  PeerInfo info;
  PeerState state = PeerState::kAlive;
  int64_t last_seen_ns = 0;  // wall clock of the last direct contact; 0 = never
  bool self = false;
};

struct MembershipOptions {
  std::chrono::seconds suspect_after{15};
  std::chrono::seconds dead_after{600};
};

class Membership {
 public:
  Membership(PeerInfo self, MembershipOptions options, env::Clock* clock);

  const PeerInfo& self() const { return self_; }
  // Updates this peer's own quota/used (reported in Ping).
  void UpdateSelf(uint64_t quota, uint64_t used);
  PeerInfo Self() const;

  // A peer answered us or called us: record it as alive now.
  void ObserveDirect(const PeerInfo& info);
  // A peer was named by someone else: learn its address if unknown; does not refresh liveness.
  void ObserveIndirect(const PeerInfo& info);
  // A call to this peer failed (unreachable); it does not change state by itself (time does),
  // but is counted for `cairn peers`.
  void ReportFailure(PeerId id);

  // Every known peer including self, sorted by id, with states computed from the clock.
  std::vector<PeerView> Peers() const;
  std::optional<PeerView> Find(PeerId id) const;
  // Addresses to ping: seeds not yet identified plus every known peer's address.
  std::vector<std::string> PingTargets() const;
  void AddSeed(const std::string& address);

 private:
  PeerState StateOf(int64_t last_contact_mono) const;

  const PeerInfo self_initial_;
  PeerInfo self_;
  MembershipOptions options_;
  env::Clock* clock_;
  mutable std::mutex mu_;
  struct Entry {
    PeerInfo info;
    int64_t last_seen_ns = 0;
    int64_t last_contact_mono = 0;  // 0 = never contacted directly
    int64_t learned_mono = 0;
    uint64_t failures = 0;
  };
  std::map<PeerId, Entry> peers_;
  std::vector<std::string> seeds_;
};

}  // namespace cairn::cluster
