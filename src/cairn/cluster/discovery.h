// MulticastDiscovery: finds the other peers on the LAN without seeds (docs/protocol.md
// "Announcements").
//
// One UDP socket bound to group:port (SO_REUSEADDR + SO_REUSEPORT, so that several peers on
// one host share the port; IP_MULTICAST_LOOP on, so that they hear each other), joined to the
// group on the chosen interface. A thread sends this peer's announcement (announcement.h) every
// `interval` and feeds every valid announcement it receives to Membership::ObserveDirect, after
// filling a wildcard listen host (0.0.0.0) with the datagram's source address. Ignored: bad
// MACs (other clusters, outsiders), malformed datagrams, times off by more than max_skew,
// replays and older incarnations (AnnouncementFilter), this peer's own announcements, and
// claims of a peer id pinned to another node. An announcement from another node claiming
// *this* peer's id with an older incarnation means this process is the newcomer: `on_conflict`
// is called (the daemon exits).
//
// Thread-safety: thread-safe; Stop() and the destructor join the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "cairn/cluster/announcement.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/cluster/membership.h"
#include "cairn/env/clock.h"

namespace cairn::cluster {

struct DiscoveryOptions {
  std::string group = "239.255.67.82";  // IPv4 multicast group (administratively scoped)
  int port = 7946;
  std::chrono::milliseconds interval{2000};
  // Interface name ("eth0", "lo") or one of its IPv4 addresses; empty = the kernel's choice
  // (the route to the group, normally the default route's interface).
  std::string interface;
  int ttl = 1;  // IP_MULTICAST_TTL: 1 = this LAN segment only
  std::chrono::seconds max_skew{300};
};

struct DiscoveryStats {
  uint64_t sent = 0;
  uint64_t send_errors = 0;
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t unauthenticated = 0;  // bad MAC
  uint64_t malformed = 0;
  uint64_t stale = 0;     // time off by more than max_skew
  uint64_t replayed = 0;  // old sequence or incarnation
  uint64_t own = 0;
  uint64_t conflicts = 0;  // peer id pinned to another node, or our own id from another node
};

class MulticastDiscovery {
 public:
  using ConflictFn = std::function<void(const absl::Status&)>;

  // Opens the socket, joins the group and starts the thread (first announcement right away).
  // `membership` (whose Self() is announced; its node_id must be set) and `clock` must outlive
  // this object. INVALID_ARGUMENT for a group that is not IPv4 multicast, a bad port or an
  // unknown interface; UNAVAILABLE when the socket cannot be set up (e.g. no multicast route:
  // the caller may run on seeds alone).
  static absl::StatusOr<std::unique_ptr<MulticastDiscovery>> Start(const DiscoveryOptions& options,
                                                                   const ClusterKey& cluster_key,
                                                                   Membership* membership,
                                                                   env::Clock* clock,
                                                                   ConflictFn on_conflict = {});
  ~MulticastDiscovery();
  MulticastDiscovery(const MulticastDiscovery&) = delete;
  MulticastDiscovery& operator=(const MulticastDiscovery&) = delete;

  // Stops the thread and closes the socket. Idempotent.
  void Stop();
  DiscoveryStats stats() const;

  // Handles one received datagram as the thread does (exposed for tests): true when it was
  // accepted and fed to Membership. `source_ip` is the sender's IPv4 address as text.
  bool HandleDatagram(ByteSpan datagram, const std::string& source_ip);

 private:
  MulticastDiscovery(const DiscoveryOptions& options, const ClusterKey& cluster_key,
                     Membership* membership, env::Clock* clock, ConflictFn on_conflict);
  void Run();
  void SendAnnouncement();

  const DiscoveryOptions options_;
  const codec::Key announce_key_;
  Membership* const membership_;
  env::Clock* const clock_;
  ConflictFn on_conflict_;
  int fd_ = -1;
  int wake_fd_ = -1;         // eventfd: wakes the thread for Stop()
  uint32_t group_addr_ = 0;  // network order
  uint64_t sequence_ = 0;    // thread only
  std::thread thread_;
  std::once_flag stop_once_;

  mutable std::mutex mu_;  // guards stats_, filter_
  DiscoveryStats stats_;
  AnnouncementFilter filter_;
  bool conflict_reported_ = false;
};

}  // namespace cairn::cluster
