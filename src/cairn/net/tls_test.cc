// TLS between peers (net/tls.h; docs/security.md "TLS between peers"): a TLS PeerServer and
// gRPC PeerClient over 127.0.0.1, with certificates pinned to peer ids.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cluster/cert_pins.h"
#include "cairn/cluster/membership.h"
#include "cairn/cluster/node_pins.h"
#include "cairn/cluster/tls_identity.h"
#include "cairn/codec/crypto.h"
#include "cairn/env/clock.h"
#include "cairn/format/blob.h"
#include "cairn/net/peer_client.h"
#include "cairn/net/peer_server.h"
#include "cairn/store/blob_store.h"

namespace cairn::net {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr PeerId kServerId = 2;
constexpr PeerId kOwner = 1;

codec::Key KeyOf(uint8_t seed) {
  codec::Key key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 31 + i);
  return key;
}

std::string NodeOf(PeerId id) {
  std::string digits = std::to_string(id);
  return std::string(32 - digits.size(), 'a') + digits;
}

std::shared_ptr<cluster::RpcAuth> AuthAs(PeerId id) {
  cluster::ClusterKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(7 + i);
  return std::make_shared<cluster::RpcAuth>(key, cluster::NodeIdentity{id, NodeOf(id)},
                                            env::RealClock::Default());
}

cluster::TlsIdentity IdentityOf(uint8_t owner_seed, PeerId id) {
  absl::StatusOr<cluster::TlsIdentity> made = cluster::MakeTlsIdentity(KeyOf(owner_seed), id);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : cluster::TlsIdentity{};
}

// A TCP relay on 127.0.0.1 in front of `target_port` that holds every piece of data it forwards,
// either way, for `delay` before passing it on: a slow link (or a busy peer) on which a TLS
// handshake takes several times `delay`.
class SlowLink {
 public:
  SlowLink(int target_port, std::chrono::milliseconds delay)
      : target_port_(target_port), delay_(delay) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "relay socket: " << strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { Accept(); });
  }
  ~SlowLink() {
    stop_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();
    for (auto& t : pumps_) t.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) close(fd);
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  // Waits up to 50 ms for `fd` to become readable; false on timeout (or stop).
  bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 50) > 0;
  }
  void Accept() {
    while (!stop_) {
      if (!Readable(listen_fd_)) continue;
      int in = accept(listen_fd_, nullptr, nullptr);
      if (in < 0) continue;
      int out = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (out < 0 || connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(in);
        if (out >= 0) close(out);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        fds_.push_back(in);
        fds_.push_back(out);
      }
      pumps_.emplace_back([this, in, out] { Pump(in, out); });
      pumps_.emplace_back([this, in, out] { Pump(out, in); });
    }
  }
  void Pump(int from, int to) {
    char buf[64 << 10];
    while (!stop_) {
      if (!Readable(from)) continue;
      ssize_t n = read(from, buf, sizeof(buf));
      if (n <= 0) {
        shutdown(to, SHUT_WR);
        return;
      }
      std::this_thread::sleep_for(delay_);
      for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) return;
        off += w;
      }
    }
  }

  const int target_port_;
  const std::chrono::milliseconds delay_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> fds_;
  std::thread accept_thread_;
  std::vector<std::thread> pumps_;  // added to by the accept thread only
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_identity_ = IdentityOf(2, kServerId);
    client_identity_ = IdentityOf(1, kOwner);
    store_ = store::NewMemBlobStore(64 << 20);
    cluster::PeerInfo self;
    self.id = kServerId;
    self.address = "127.0.0.1:1";
    self.node_id = NodeOf(kServerId);
    self.cert_fingerprint = server_identity_.fingerprint;
    cluster::MembershipOptions options;
    options.pins = &node_pins_;
    options.cert_pins = &server_cert_pins_;
    membership_ = std::make_unique<cluster::Membership>(self, options, env::RealClock::Default());
    PeerServerSecurity security;
    security.auth = AuthAs(kServerId);
    auto tls = std::make_shared<TlsOptions>();
    tls->cert_pem = server_identity_.cert_pem;
    tls->key_pem = server_identity_.key_pem;
    security.tls = tls;
    auto server = PeerServer::Start("127.0.0.1:0", store_.get(), membership_.get(), security);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }

  // A client of the test cluster as peer kOwner, presenting `identity`, that expects the
  // server (peer kServerId) to present the certificate pinned in client_cert_pins_ (TOFU).
  std::shared_ptr<PeerClient> Client(const cluster::TlsIdentity& identity, bool tls = true) {
    ClientOptions options;
    options.ping_deadline = 3000ms;
    options.blob_deadline = 5000ms;
    options.max_attempts = 2;
    options.initial_backoff = 5ms;
    options.max_backoff = 20ms;
    return Client(identity, tls, options);
  }
  // The same with the retry budget and deadlines of `options`.
  std::shared_ptr<PeerClient> Client(const cluster::TlsIdentity& identity, bool tls,
                                     ClientOptions options) {
    options.auth = AuthAs(kOwner);
    if (tls) {
      auto t = std::make_shared<TlsOptions>();
      t->cert_pem = identity.cert_pem;
      t->key_pem = identity.key_pem;
      t->check_server = [this](const std::string&, const std::string& fingerprint) {
        return client_cert_pins_.Check(kServerId, fingerprint);
      };
      options.tls = t;
    }
    return NewGrpcPeerClient(address_, options);
  }

  cluster::PeerInfo OwnerInfo() const {
    cluster::PeerInfo info;
    info.id = kOwner;
    info.address = "127.0.0.1:2";
    info.node_id = NodeOf(kOwner);
    return info;
  }

  std::pair<BlobKey, Bytes> MakeBlob() {
    codec::OwnerKeys keys = codec::DeriveOwnerKeys(KeyOf(1));
    Bytes plain(4096);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 13);
    auto sealed = format::SealChunk(keys, kOwner, BlobKind::kData, plain);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    BlobKey key;
    key.owner = kOwner;
    key.chunk = sealed->id;
    key.shard = 0;
    return {key, std::move(sealed->blob)};
  }

  cluster::TlsIdentity server_identity_;
  cluster::TlsIdentity client_identity_;
  cluster::NodePins node_pins_;
  cluster::CertPins server_cert_pins_;  // the server's pins of its callers
  cluster::CertPins client_cert_pins_;  // the client's pins of the server
  std::unique_ptr<store::BlobStore> store_;
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<PeerServer> server_;
  std::string address_;
};

TEST_F(TlsTest, ServerAndClientTalkAndPinEachOthersCertificate) {
  std::shared_ptr<PeerClient> client = Client(client_identity_);
  absl::StatusOr<PingReply> reply = client->Ping(OwnerInfo(), {});
  ASSERT_TRUE(reply.ok()) << reply.status();
  // The client learned the certificate the connection presented, and pinned it first.
  EXPECT_EQ(reply->self.cert_fingerprint, server_identity_.fingerprint);
  EXPECT_EQ(client_cert_pins_.Pinned(kServerId), server_identity_.fingerprint);
  // The server pinned the caller's client certificate to the caller's peer id.
  EXPECT_EQ(server_cert_pins_.Pinned(kOwner), client_identity_.fingerprint);
  std::optional<cluster::PeerView> seen = membership_->Find(kOwner);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->info.cert_fingerprint, client_identity_.fingerprint);

  auto [key, blob] = MakeBlob();
  ASSERT_TRUE(client->PutBlob(key, blob).ok());
  absl::StatusOr<Bytes> got = client->GetBlob(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob);
}

TEST_F(TlsTest, ClientRefusesAServerWhoseCertificateIsNotThePinnedOne) {
  cluster::TlsIdentity other = IdentityOf(9, kServerId);
  ASSERT_TRUE(client_cert_pins_.Check(kServerId, other.fingerprint).ok());
  std::shared_ptr<PeerClient> client = Client(client_identity_);
  auto [key, blob] = MakeBlob();
  absl::Status put = client->PutBlob(key, blob).status();
  EXPECT_EQ(put.code(), absl::StatusCode::kPermissionDenied) << put;
  EXPECT_THAT(put.message(),
              HasSubstr("peer id 2 presented TLS certificate " + server_identity_.fingerprint));
  EXPECT_THAT(put.message(), HasSubstr("pinned to certificate " + other.fingerprint));
  absl::StatusOr<PingReply> ping = client->Ping(OwnerInfo(), {});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kPermissionDenied) << ping.status();
  // Nothing reached the server: no blob, no pin, no membership entry for the caller.
  EXPECT_EQ(store_->Stats().used, 0u);
  EXPECT_FALSE(server_cert_pins_.Pinned(kOwner).has_value());
  EXPECT_FALSE(membership_->Find(kOwner).has_value());
  EXPECT_EQ(client_cert_pins_.Pinned(kServerId), other.fingerprint);
}

TEST_F(TlsTest, ServerRefusesACallerWhoseCertificateIsNotThePinnedOne) {
  cluster::TlsIdentity other = IdentityOf(9, kOwner);
  ASSERT_TRUE(server_cert_pins_.Check(kOwner, other.fingerprint).ok());
  std::shared_ptr<PeerClient> client = Client(client_identity_);
  auto [key, blob] = MakeBlob();
  absl::Status put = client->PutBlob(key, blob).status();
  EXPECT_EQ(put.code(), absl::StatusCode::kPermissionDenied) << put;
  EXPECT_THAT(put.message(),
              HasSubstr("peer id 1 presented TLS certificate " + client_identity_.fingerprint));
  EXPECT_THAT(put.message(), HasSubstr(other.fingerprint));
  EXPECT_EQ(store_->Stats().used, 0u);
  absl::StatusOr<PingReply> ping = client->Ping(OwnerInfo(), {});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kPermissionDenied) << ping.status();
  EXPECT_FALSE(membership_->Find(kOwner).has_value());
}

TEST_F(TlsTest, PlaintextClientCannotTalkToATlsServer) {
  std::shared_ptr<PeerClient> client = Client(client_identity_, /*tls=*/false);
  absl::StatusOr<PingReply> ping = client->Ping(OwnerInfo(), {});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kUnavailable) << ping.status();
  auto [key, blob] = MakeBlob();
  EXPECT_FALSE(client->PutBlob(key, blob).ok());
  EXPECT_EQ(store_->Stats().used, 0u);
  EXPECT_FALSE(membership_->Find(kOwner).has_value());
  EXPECT_FALSE(server_cert_pins_.Pinned(kOwner).has_value());
}

// A connection attempt is given kConnectTimeout (net/limits.h), not the 100 ms reconnect
// backoff: a handshake of several 80 ms hops (a busy peer, as under a sanitizer) still lets the
// first calls of a new client through, with the client's default retry budget.
TEST_F(TlsTest, SlowHandshakeStillConnectsOnTheFirstCall) {
  SlowLink link(server_->port(), 80ms);
  address_ = "127.0.0.1:" + std::to_string(link.port());
  ClientOptions defaults;
  std::shared_ptr<PeerClient> client = Client(client_identity_, true, defaults);
  auto [key, blob] = MakeBlob();
  const auto start = std::chrono::steady_clock::now();
  auto put = client->PutBlob(key, blob);
  ASSERT_TRUE(put.ok()) << put.status();
  // The relay really slowed the handshake down past the old 100 ms bound.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  absl::StatusOr<Bytes> got = client->GetBlob(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob);
}

}  // namespace
}  // namespace cairn::net
