// Membership: what this peer knows about the others (docs/architecture.md "Membership").
//
// Sources: the config's seed addresses, the peer lists exchanged in Ping, and multicast
// announcements (discovery.h), which count as direct contact.
// States, computed from the monotonic clock whenever asked:
//   - a peer contacted directly (ObserveDirect) is alive while its last contact is less than
//     `suspect_after` ago, suspect until `dead_after`, dead after that; any contact makes it
//     alive again;
//   - a peer only heard of (ObserveIndirect) and never contacted is suspect from when it was
//     learned, and dead once that is `dead_after` ago: nobody vouches for it until it answers.
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
#include "cairn/cluster/cert_pins.h"
#include "cairn/cluster/node_pins.h"
#include "cairn/env/clock.h"

namespace cairn::cluster {

struct PeerInfo {
  PeerId id = 0;
  std::string host_id;
  // Site label (docs/operations.md "Sites and off-site copies"); "" = the LAN site.
  std::string site;
  std::string address;  // host:port of its peer service
  uint64_t quota = 0;   // bytes lent
  uint64_t used = 0;    // bytes held
  std::string version;
  uint64_t incarnation = 0;  // start time of the process (ns); newer wins
  std::string node_id;       // 32 hex characters (cluster_key.h); empty when unknown
  uint64_t extra = 0;        // of used: bytes held as extra copies (evicted for regular blobs)
  // Bytes its store may still write on its disk (free space minus a reserve); nullopt when
  // unknown. docs/operations.md "A full disk".
  std::optional<uint64_t> disk_room;
  // Its TLS certificate's fingerprint (tls_identity.h, 64 hex characters); empty when unknown.
  std::string cert_fingerprint;
  bool operator==(const PeerInfo&) const = default;
};

// Bytes `info`'s peer can take now: the smaller of quota - used and its disk room.
uint64_t Room(const PeerInfo& info);

enum class PeerState { kAlive, kSuspect, kDead };
// "alive", "suspect" or "dead".
const char* PeerStateName(PeerState state);

struct PeerView {
  PeerInfo info;
  PeerState state = PeerState::kAlive;
  int64_t last_seen_ns = 0;  // wall clock of the last direct contact; 0 = never
  bool self = false;
  uint64_t failures = 0;  // failed calls reported since the last direct contact
  // Its clock minus this peer's, in ms, as last measured by a ping (ObserveClockOffset,
  // ObserveClockRefusal); nullopt when never measured, and for self. docs/operations.md "When a
  // peer's clock is off".
  std::optional<int64_t> clock_offset_ms;
  int64_t clock_measured_ns = 0;  // wall clock of that measurement; 0 = never
};

struct MembershipOptions {
  std::chrono::seconds suspect_after{15};
  std::chrono::seconds dead_after{600};
  // When set (it must outlive the Membership): a direct observation pins the peer's node id
  // on first contact and is ignored when it claims a peer id pinned to another node; indirect
  // news about a pinned peer id with another node id is ignored (node_pins.h).
  NodePins* pins = nullptr;
  // The same for TLS certificate fingerprints (cert_pins.h): a direct observation carrying a
  // fingerprint pins it on first contact and is ignored when the peer id is pinned to another
  // certificate; indirect news with another fingerprint is ignored.
  CertPins* cert_pins = nullptr;
};

class Membership {
 public:
  Membership(PeerInfo self, MembershipOptions options, env::Clock* clock);

  // Identity this peer was created with (id, host, address); quota/used as at construction.
  const PeerInfo& self() const { return self_initial_; }
  // The node id pins given in the options (nullptr when none).
  NodePins* pins() const { return options_.pins; }
  // The certificate pins given in the options (nullptr when none).
  CertPins* cert_pins() const { return options_.cert_pins; }
  // The clock given at construction.
  env::Clock* clock() const { return clock_; }
  // Updates this peer's own quota/used/disk room (reported in Ping and announcements).
  void UpdateSelf(uint64_t quota, uint64_t used, uint64_t extra = 0,
                  std::optional<uint64_t> disk_room = std::nullopt);
  PeerInfo Self() const;

  // A peer answered us or called us: record its info (as it reported it) and that it is alive
  // now. Ignored when `info.id` is this peer's own id, or (with pins) when its node id is not
  // the one pinned for its peer id.
  void ObserveDirect(const PeerInfo& info);
  // A peer was named by someone else: learn it if unknown; take its info if `info` comes from a
  // newer incarnation than what we know. Never refreshes liveness. Ignored for self and for an
  // empty address.
  void ObserveIndirect(const PeerInfo& info);
  // A call to this peer failed after its retries (unreachable): counted for `cairn peers`, and
  // the peer is suspect (not a placement target) until its next direct contact.
  void ReportFailure(PeerId id);
  // A ping measured peer `id`'s clock minus ours as `offset_ms` (ms). Ignored for self and for
  // unknown peers (call it after ObserveDirect).
  void ObserveClockOffset(PeerId id, int64_t offset_ms);
  // A member (`who`, authenticated by its signed answer) at `address` refused our ping because
  // the clocks are more than the accepted window apart, its clock minus ours being `offset_ms`.
  // An unknown peer is learnt as by ObserveIndirect (it stays suspect, then dead: it cannot be
  // called) so that `cairn peers` shows it; the offset is recorded unless the entry is for
  // another node. Ignored for self, an empty address, and (with pins) a node id pinned elsewhere.
  void ObserveClockRefusal(PeerId id, const std::string& node_id, const std::string& address,
                           int64_t offset_ms);

  // Every known peer including self (self = true, alive, last_seen_ns = now), sorted by id,
  // with states computed from the clock.
  std::vector<PeerView> Peers() const;
  std::optional<PeerView> Find(PeerId id) const;
  // Addresses to ping, deduplicated, never this peer's own address: seeds that no known peer
  // has as its address (in the order added), then the address of every known peer, dead ones
  // included so that they are noticed when they come back (by peer id).
  std::vector<std::string> PingTargets() const;
  // Adds a seed address (host:port); duplicates and empty strings are ignored.
  void AddSeed(const std::string& address);

 private:
  struct Entry;
  // Caller holds mu_.
  PeerState StateOf(const Entry& entry, int64_t now_mono) const;
  PeerView ViewOf(const Entry& entry, int64_t now_mono) const;
  PeerView SelfView() const;

  const PeerInfo self_initial_;
  PeerInfo self_;
  MembershipOptions options_;
  env::Clock* clock_;
  mutable std::mutex mu_;
  struct Entry {
    PeerInfo info;
    int64_t last_seen_ns = 0;
    bool contacted = false;         // ever observed directly
    int64_t last_contact_mono = 0;  // valid when `contacted`
    int64_t learned_mono = 0;       // when this entry was created
    uint64_t failures = 0;
    std::optional<int64_t> clock_offset_ms;
    int64_t clock_measured_ns = 0;
  };
  std::map<PeerId, Entry> peers_;
  std::vector<std::string> seeds_;
};

}  // namespace cairn::cluster
