#include "cairn/cluster/discovery.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::cluster {
namespace {

// The IPv4 address of interface `name` (first one), or nullopt.
std::optional<in_addr> InterfaceAddress(const std::string& name) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<in_addr> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && name == i->ifa_name) {
      out = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
      break;
    }
  }
  ::freeifaddrs(list);
  return out;
}

// "host:port" with an empty or wildcard host replaced by `ip` (a peer listening on 0.0.0.0
// cannot know the address others reach it at; the datagram's source is the best guess).
std::string FillWildcardHost(const std::string& address, const std::string& ip) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || ip.empty()) return address;
  std::string host = address.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    return absl::StrCat(ip, address.substr(colon));
  }
  return address;
}

}  // namespace

MulticastDiscovery::MulticastDiscovery(const DiscoveryOptions& options,
                                       const ClusterKey& cluster_key, Membership* membership,
                                       env::Clock* clock, ConflictFn on_conflict)
    : options_(options),
      announce_key_(DeriveClusterSubkeys(cluster_key).announce),
      membership_(membership),
      clock_(clock),
      on_conflict_(std::move(on_conflict)) {}

absl::StatusOr<std::unique_ptr<MulticastDiscovery>> MulticastDiscovery::Start(
    const DiscoveryOptions& options, const ClusterKey& cluster_key, Membership* membership,
    env::Clock* clock, ConflictFn on_conflict) {
  in_addr group{};
  if (::inet_pton(AF_INET, options.group.c_str(), &group) != 1 ||
      !IN_MULTICAST(ntohl(group.s_addr))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "multicast group '", options.group, "' is not an IPv4 multicast address (224.0.0.0/4)"));
  }
  if (options.port <= 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("multicast port ", options.port, " is not in 1..65535"));
  }
  if (options.interval.count() <= 0) {
    return absl::InvalidArgumentError("announcement interval must be positive");
  }
  if (!IsValidNodeId(membership->self().node_id)) {
    return absl::InvalidArgumentError("discovery needs this peer's node id");
  }
  ip_mreqn mreq{};
  mreq.imr_multiaddr = group;
  mreq.imr_address.s_addr = htonl(INADDR_ANY);
  mreq.imr_ifindex = 0;
  if (!options.interface.empty()) {
    in_addr addr{};
    if (::inet_pton(AF_INET, options.interface.c_str(), &addr) == 1) {
      mreq.imr_address = addr;
    } else {
      unsigned index = ::if_nametoindex(options.interface.c_str());
      if (index == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("multicast interface '", options.interface, "' does not exist"));
      }
      mreq.imr_ifindex = static_cast<int>(index);
      // The loopback interface needs its address as well (it has no multicast route).
      if (auto a = InterfaceAddress(options.interface)) mreq.imr_address = *a;
    }
  }

  std::unique_ptr<MulticastDiscovery> d(
      new MulticastDiscovery(options, cluster_key, membership, clock, std::move(on_conflict)));
  d->group_addr_ = group.s_addr;
  const std::string where = absl::StrCat("multicast ", options.group, ":", options.port);
  d->fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (d->fd_ < 0) return ErrnoStatus(errno, absl::StrCat(where, ": socket"));
  int one = 1, zero = 0;
  if (::setsockopt(d->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(d->fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return absl::UnavailableError(
        absl::StrCat(where, ": SO_REUSEADDR/SO_REUSEPORT: ", std::strerror(errno)));
  }
  sockaddr_in bind_addr{};
  bind_addr.sin_family = AF_INET;
  bind_addr.sin_port = htons(static_cast<uint16_t>(options.port));
  bind_addr.sin_addr = group;  // only datagrams sent to the group, not unicast to the port
  if (::bind(d->fd_, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) != 0) {
    return absl::UnavailableError(absl::StrCat(where, ": bind: ", std::strerror(errno)));
  }
  if (::setsockopt(d->fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
    return absl::UnavailableError(absl::StrCat(
        where, ": join the group: ", std::strerror(errno),
        options.interface.empty() ? " (no multicast route? set [discovery] interface)" : ""));
  }
  const int ttl = std::clamp(options.ttl, 0, 255);
  // IP_MULTICAST_ALL off: only this group's datagrams, whatever other sockets joined.
  if (::setsockopt(d->fd_, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) != 0 ||
      ::setsockopt(d->fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one) != 0 ||
      ::setsockopt(d->fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
      ::setsockopt(d->fd_, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) != 0) {
    return absl::UnavailableError(absl::StrCat(where, ": socket options: ", std::strerror(errno)));
  }
  d->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->wake_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  spdlog::info("announcing on {} every {} ms{}", where, options.interval.count(),
               options.interface.empty() ? "" : absl::StrCat(" via ", options.interface));
  d->thread_ = std::thread([raw = d.get()] { raw->Run(); });
  return d;
}

MulticastDiscovery::~MulticastDiscovery() {
  Stop();
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void MulticastDiscovery::Stop() {
  std::call_once(stop_once_, [this] {
    if (wake_fd_ >= 0) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }
    if (thread_.joinable()) thread_.join();
  });
}

DiscoveryStats MulticastDiscovery::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void MulticastDiscovery::SendAnnouncement() {
  Announcement a;
  a.peer = membership_->Self();
  a.sequence = ++sequence_;
  a.time_unix_ms = clock_->NowNanos() / 1'000'000;
  absl::StatusOr<Bytes> datagram = EncodeAnnouncement(a, announce_key_);
  bool ok = false;
  if (!datagram.ok()) {
    spdlog::warn("cannot announce: {}", datagram.status().ToString());
  } else {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(options_.port));
    to.sin_addr.s_addr = group_addr_;
    ssize_t n = ::sendto(fd_, datagram->data(), datagram->size(), MSG_NOSIGNAL,
                         reinterpret_cast<sockaddr*>(&to), sizeof to);
    ok = n == static_cast<ssize_t>(datagram->size());
    if (!ok) spdlog::debug("announce to {}: {}", options_.group, std::strerror(errno));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? stats_.sent : stats_.send_errors);
}

bool MulticastDiscovery::HandleDatagram(ByteSpan datagram, const std::string& source_ip) {
  const PeerInfo self = membership_->Self();
  absl::StatusOr<Announcement> a = DecodeAnnouncement(datagram, announce_key_);
  std::unique_lock<std::mutex> lock(mu_);
  ++stats_.received;
  if (!a.ok()) {
    ++(absl::IsUnauthenticated(a.status()) ? stats_.unauthenticated : stats_.malformed);
    return false;
  }
  const int64_t now_ms = clock_->NowNanos() / 1'000'000;
  const int64_t skew_ms = options_.max_skew.count() * 1000;
  if (a->time_unix_ms < now_ms - skew_ms || a->time_unix_ms > now_ms + skew_ms) {
    ++stats_.stale;
    return false;
  }
  if (a->peer.id == self.id && a->peer.node_id == self.node_id) {
    ++stats_.own;
    return false;
  }
  NodePins* pins = membership_->pins();
  if (a->peer.id != self.id && pins != nullptr && pins->Conflicts(a->peer.id, a->peer.node_id)) {
    ++stats_.conflicts;
    spdlog::debug("ignored an announcement from {}: peer id {} belongs to another node", source_ip,
                  a->peer.id);
    return false;
  }
  CertPins* cert_pins = membership_->cert_pins();
  if (a->peer.id != self.id && cert_pins != nullptr && !a->peer.cert_fingerprint.empty()) {
    absl::Status pinned = cert_pins->Verify(a->peer.id, a->peer.cert_fingerprint);
    if (!pinned.ok()) {
      ++stats_.conflicts;
      spdlog::debug("ignored an announcement from {}: {}", source_ip,
                    std::string(pinned.message()));
      return false;
    }
  }
  if (!filter_.Accept(*a)) {
    ++stats_.replayed;
    return false;
  }
  if (a->peer.id == self.id) {
    // Another node claims our peer id. The one that was running first keeps it.
    ++stats_.conflicts;
    if (a->peer.incarnation < self.incarnation && !conflict_reported_) {
      conflict_reported_ = true;
      lock.unlock();
      absl::Status conflict = absl::AlreadyExistsError(absl::StrCat(
          "peer id ", self.id, " belongs to another node: a peer at ",
          FillWildcardHost(a->peer.address, source_ip),
          " has been running with this id since before this process started; give this peer "
          "its own --peer-id"));
      spdlog::error("{}", std::string(conflict.message()));
      if (on_conflict_) on_conflict_(conflict);
    }
    return false;
  }
  ++stats_.accepted;
  lock.unlock();
  PeerInfo info = a->peer;
  info.address = FillWildcardHost(info.address, source_ip);
  membership_->ObserveDirect(info);
  return true;
}

void MulticastDiscovery::Run() {
  using Clock = std::chrono::steady_clock;
  auto next_send = Clock::now();
  uint8_t buf[kMaxAnnouncementSize + 1];
  while (true) {
    auto now = Clock::now();
    if (now >= next_send) {
      SendAnnouncement();
      next_send = now + options_.interval;
    }
    int timeout_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(next_send - Clock::now()).count() +
        1);
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int rc = ::poll(fds, 2, std::max(timeout_ms, 0));
    if (rc < 0 && errno != EINTR) {
      spdlog::warn("multicast discovery: poll: {}", std::strerror(errno));
      return;
    }
    if (rc > 0 && (fds[1].revents & POLLIN)) return;  // Stop()
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      // Drain what is queued; each datagram is handled on its own.
      for (int i = 0; i < 256; ++i) {
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        ssize_t n =
            ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) break;  // EAGAIN: drained
        char ip[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        HandleDatagram(ByteSpan(buf, static_cast<size_t>(n)), ip);
      }
    }
  }
}

}  // namespace cairn::cluster
