// End-to-end tests of PeerServer + the gRPC PeerClient over 127.0.0.1 with a MemBlobStore.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cluster/membership.h"
#include "cairn/codec/checksum.h"
#include "cairn/codec/crypto.h"
#include "cairn/env/clock.h"
#include "cairn/format/blob.h"
#include "cairn/net/batching_peer_client.h"
#include "cairn/net/call_auth.h"
#include "cairn/net/convert.h"
#include "cairn/net/peer_client.h"
#include "cairn/net/peer_server.h"
#include "cairn/net/retrying_peer_client.h"
#include "cairn/store/blob_store.h"
#include "cairn/v1/peer.grpc.pb.h"

namespace cairn::net {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr PeerId kServerId = 2;
constexpr PeerId kOwner = 1;
constexpr uint64_t kQuota = 64 << 20;

// A node id for peer `id` in these tests (32 hex characters).
std::string NodeOf(PeerId id, char fill = 'a') {
  std::string digits = std::to_string(id);
  return std::string(32 - digits.size(), fill) + digits;
}

cluster::ClusterKey TestClusterKey(uint8_t seed = 1) {
  cluster::ClusterKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 17 + i);
  return key;
}

std::shared_ptr<cluster::RpcAuth> AuthAs(PeerId id, uint8_t key_seed = 1, char fill = 'a') {
  return std::make_shared<cluster::RpcAuth>(TestClusterKey(key_seed),
                                            cluster::NodeIdentity{id, NodeOf(id, fill)},
                                            env::RealClock::Default());
}

PeerServerSecurity ServerSecurity(PeerId id = kServerId) {
  PeerServerSecurity security;
  security.auth = AuthAs(id);
  return security;
}

cluster::PeerInfo Info(PeerId id, const std::string& address) {
  cluster::PeerInfo info;
  info.id = id;
  info.host_id = "host-" + std::to_string(id);
  info.address = address;
  info.version = "test";
  info.incarnation = 1000 + id;
  info.node_id = NodeOf(id);
  return info;
}

Bytes RandomBytes(std::mt19937_64& rng, size_t size) {
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Small retries so that failure tests finish fast; calls authenticated as peer `as` of the
// test cluster (nullptr auth: unauthenticated).
ClientOptions TestOptions(std::shared_ptr<cluster::RpcAuth> auth = AuthAs(kOwner)) {
  ClientOptions options;
  options.auth = std::move(auth);
  options.ping_deadline = 5000ms;
  options.blob_deadline = 20000ms;
  options.max_attempts = 3;
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  return options;
}

// A BlobStore that forwards to another and counts the calls that do work, to show that a
// refused call did none and that PutBlobs makes one PutBatch.
class CountingStore final : public ports::BlobStore {
 public:
  explicit CountingStore(ports::BlobStore* inner) : inner_(inner) {}
  using ports::BlobStore::Put;
  absl::StatusOr<ports::PutOutcome> Put(const BlobKey& key, ByteSpan blob,
                                        const codec::Checksum& checksum,
                                        const ports::PutOptions& options) override {
    ++puts;
    return inner_->Put(key, blob, checksum, options);
  }
  std::vector<absl::StatusOr<ports::PutOutcome>> PutBatch(
      std::span<const ports::PutItem> items) override {
    ++put_batches;
    return inner_->PutBatch(items);
  }
  absl::StatusOr<Bytes> Get(const BlobKey& key) override {
    ++gets;
    return inner_->Get(key);
  }
  absl::StatusOr<bool> Has(const BlobKey& key) override { return inner_->Has(key); }
  absl::Status Delete(const BlobKey& key) override { return inner_->Delete(key); }
  ports::StoreStats Stats() override { return inner_->Stats(); }
  absl::StatusOr<std::vector<ports::OwnerUsage>> UsageByOwner() override {
    return inner_->UsageByOwner();
  }
  absl::Status SetQuota(uint64_t quota) override { return inner_->SetQuota(quota); }
  absl::StatusOr<ports::EvictResult> EvictExtras(uint64_t target_used) override {
    return inner_->EvictExtras(target_used);
  }
  absl::StatusOr<std::vector<ports::BlobRecord>> ListOwner(PeerId owner,
                                                           const std::optional<BlobKey>& after,
                                                           size_t limit) override {
    return inner_->ListOwner(owner, after, limit);
  }
  absl::StatusOr<std::vector<ports::BlobRecord>> ListHeld(const std::optional<BlobKey>& after,
                                                          size_t limit) override {
    return inner_->ListHeld(after, limit);
  }
  absl::StatusOr<ports::ScrubOutcome> ScrubBlob(const BlobKey& key) override {
    return inner_->ScrubBlob(key);
  }

  std::atomic<int> puts{0};
  std::atomic<int> put_batches{0};
  std::atomic<int> gets{0};

 private:
  ports::BlobStore* const inner_;
};

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    rng_.seed(seed_);
    codec::Key master{};
    for (size_t i = 0; i < master.size(); ++i) master[i] = static_cast<uint8_t>(i + 1);
    keys_ = codec::DeriveOwnerKeys(master);
    mem_store_ = store::NewMemBlobStore(kQuota);
    auto counting = std::make_unique<CountingStore>(mem_store_.get());
    counting_ = counting.get();
    store_ = std::move(counting);
    cluster::PeerInfo self = Info(kServerId, "127.0.0.1:1");
    self.node_id = NodeOf(kServerId);
    cluster::MembershipOptions options;
    options.pins = &pins_;
    membership_ = std::make_unique<cluster::Membership>(self, options, env::RealClock::Default());
    PeerServerSecurity security = ServerSecurity();
    security.on_conflict = [this](const absl::Status& s) {
      std::lock_guard<std::mutex> lock(conflict_mu_);
      conflict_ = s;
    };
    security.on_blobs_moved = [this](PeerId from, const std::vector<MovedBlob>& moves) {
      std::lock_guard<std::mutex> lock(moved_mu_);
      moved_.push_back({from, moves});
      return moved_answer_;
    };
    auto server = PeerServer::Start("127.0.0.1:0", store_.get(), membership_.get(), security);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    client_ = NewGrpcPeerClient(address_, TestOptions());
  }

  void TearDown() override {
    if (HasFailure()) ADD_FAILURE() << "random seed was " << seed_;
  }

  // A valid blob (sealed envelope) and its key, from seeded random plaintext.
  std::pair<BlobKey, Bytes> MakeBlob(size_t plain_size = 4096, PeerId owner = kOwner) {
    Bytes plain = RandomBytes(rng_, plain_size);
    auto sealed = format::SealChunk(keys_, owner, BlobKind::kData, plain);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    BlobKey key;
    key.owner = owner;
    key.chunk = sealed->id;
    key.shard = 0;
    return {key, std::move(sealed->blob)};
  }

  absl::Status Conflict() {
    std::lock_guard<std::mutex> lock(conflict_mu_);
    return conflict_;
  }

  // The BlobMoved calls the server's hook received: (caller, moves).
  std::vector<std::pair<PeerId, std::vector<MovedBlob>>> Moved() {
    std::lock_guard<std::mutex> lock(moved_mu_);
    return moved_;
  }
  void SetMovedAnswer(absl::Status answer) {
    std::lock_guard<std::mutex> lock(moved_mu_);
    moved_answer_ = std::move(answer);
  }

  std::unique_ptr<v1::Peer::Stub> RawStub() {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(80 << 20);
    return v1::Peer::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

  uint32_t seed_ = 0;
  std::mt19937_64 rng_;
  codec::OwnerKeys keys_;
  std::unique_ptr<ports::BlobStore> mem_store_;
  CountingStore* counting_ = nullptr;  // store_
  std::unique_ptr<ports::BlobStore> store_;
  cluster::NodePins pins_;
  std::unique_ptr<cluster::Membership> membership_;
  std::mutex conflict_mu_;
  absl::Status conflict_;
  std::mutex moved_mu_;
  std::vector<std::pair<PeerId, std::vector<MovedBlob>>> moved_;
  absl::Status moved_answer_;
  std::unique_ptr<PeerServer> server_;
  std::string address_;
  std::shared_ptr<PeerClient> client_;
};

TEST_F(PeerTest, PutGetRoundTripAndIdempotentPut) {
  for (size_t size : {1, 1000, 300 * 1024}) {
    auto [key, blob] = MakeBlob(size);
    auto put = client_->PutBlob(key, blob);
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(*put, ports::PutOutcome::kStored);

    auto got = client_->GetBlob(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, blob) << "plaintext size " << size;

    auto again = client_->PutBlob(key, blob);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, ports::PutOutcome::kAlreadyStored);
  }
}

TEST_F(PeerTest, LargeBlobRoundTrip) {
  auto [key, blob] = MakeBlob(8 << 20);  // the largest chunk size
  ASSERT_TRUE(client_->PutBlob(key, blob).ok());
  auto got = client_->GetBlob(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob);
}

TEST_F(PeerTest, HasBlobsPresentAndAbsent) {
  auto [a, blob_a] = MakeBlob();
  auto [b, blob_b] = MakeBlob();
  auto [absent, unused] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(a, blob_a).ok());
  ASSERT_TRUE(client_->PutBlob(b, blob_b).ok());
  BlobKey other_shard = a;
  other_shard.shard = 1;
  BlobKey other_owner = b;
  other_owner.owner = 99;

  std::vector<BlobKey> keys = {absent, a, other_shard, b, other_owner};
  auto has = client_->HasBlobs(keys);
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_EQ(*has, (std::vector<bool>{false, true, false, true, false}));

  auto none = client_->HasBlobs({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(PeerTest, HasBlobsBatchesLargeAudits) {
  auto [a, blob_a] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(a, blob_a).ok());
  std::vector<BlobKey> keys(2 * kMaxHasBlobsKeys + 7);
  for (size_t i = 0; i < keys.size(); ++i) keys[i].owner = 1000 + i;
  keys[kMaxHasBlobsKeys + 3] = a;
  auto has = client_->HasBlobs(keys);
  ASSERT_TRUE(has.ok()) << has.status();
  ASSERT_EQ(has->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ((*has)[i], i == kMaxHasBlobsKeys + 3) << i;
}

TEST_F(PeerTest, GetUnknownIsNotFound) {
  auto [key, blob] = MakeBlob();
  auto got = client_->GetBlob(key);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("peer " + address_ + ": "));
  EXPECT_THAT(got.status().message(), HasSubstr(key.DebugString()));
}

TEST_F(PeerTest, QuotaFullIsResourceExhausted) {
  auto [a, blob_a] = MakeBlob();
  auto [b, blob_b] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(a, blob_a).ok());
  ASSERT_TRUE(store_->SetQuota(store_->Stats().used).ok());
  auto put = client_->PutBlob(b, blob_b);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted);
  // Not retried, and an existing key is still answered.
  auto again = client_->PutBlob(a, blob_a);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, ports::PutOutcome::kAlreadyStored);
}

TEST_F(PeerTest, RawPutWithWrongChecksumIsDataLoss) {
  auto [key, blob] = MakeBlob();
  v1::PutBlobRequest request;
  ToProto(key, request.mutable_key());
  request.set_blob(std::string(AsString(blob)));
  codec::Checksum sum = codec::BlobChecksum(blob);
  sum[3] ^= 0x10;
  request.set_checksum(ChecksumToProto(sum));
  v1::PutBlobResponse response;
  grpc::ClientContext context;
  auto auth = AuthAs(kOwner);
  SignCall(auth.get(), "/cairn.v1.Peer/PutBlob", request, context);
  grpc::Status status = RawStub()->PutBlob(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_FALSE(*store_->Has(key));
}

TEST_F(PeerTest, RawMalformedRequestsAreInvalidArgument) {
  auto [key, blob] = MakeBlob();
  auto stub = RawStub();
  auto auth = AuthAs(kOwner);
  struct Case {
    std::string name;
    std::string chunk_id;
    std::string checksum;
    std::string blob;
  };
  const std::string good_id(reinterpret_cast<const char*>(key.chunk.bytes.data()), 32);
  const std::string good_sum = ChecksumToProto(codec::BlobChecksum(blob));
  const std::string good_blob(AsString(blob));
  const std::string garbage = "definitely not a blob envelope";
  const Case cases[] = {
      {"chunk id 31 bytes", good_id.substr(0, 31), good_sum, good_blob},
      {"chunk id 33 bytes", good_id + "x", good_sum, good_blob},
      {"chunk id empty", "", good_sum, good_blob},
      {"checksum 15 bytes", good_id, good_sum.substr(0, 15), good_blob},
      {"checksum empty", good_id, "", good_blob},
      {"empty blob", good_id, ChecksumToProto(codec::BlobChecksum({})), ""},
      {"not an envelope", good_id, ChecksumToProto(codec::BlobChecksum(AsBytes(garbage))), garbage},
  };
  for (const Case& c : cases) {
    v1::PutBlobRequest request;
    request.mutable_key()->set_owner(kOwner);
    request.mutable_key()->set_chunk_id(c.chunk_id);
    request.set_checksum(c.checksum);
    request.set_blob(c.blob);
    v1::PutBlobResponse response;
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/PutBlob", request, context);
    grpc::Status status = stub->PutBlob(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << status.error_message();
  }

  v1::GetBlobRequest get;
  get.mutable_key()->set_chunk_id("short");
  v1::GetBlobResponse get_response;
  grpc::ClientContext get_context;
  SignCall(auth.get(), "/cairn.v1.Peer/GetBlob", get, get_context);
  EXPECT_EQ(stub->GetBlob(&get_context, get, &get_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::HasBlobsRequest has;
  for (size_t i = 0; i <= kMaxHasBlobsKeys; ++i) has.add_keys()->set_chunk_id(good_id);
  v1::HasBlobsResponse has_response;
  grpc::ClientContext has_context;
  SignCall(auth.get(), "/cairn.v1.Peer/HasBlobs", has, has_context);
  EXPECT_EQ(stub->HasBlobs(&has_context, has, &has_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The server keeps serving.
  ASSERT_TRUE(client_->PutBlob(key, blob).ok());
}

// A member whose clock is an hour ahead is refused in a signed answer: the caller learns the
// offset and which member refused (docs/operations.md "When a peer's clock is off").
TEST_F(PeerTest, PingRefusedForClockSkewNamesTheSigningMember) {
  env::FakeClock ahead(env::RealClock::Default()->NowNanos() +
                       std::chrono::nanoseconds(std::chrono::hours(1)).count());
  auto auth = std::make_shared<cluster::RpcAuth>(TestClusterKey(),
                                                 cluster::NodeIdentity{1, NodeOf(1, 'a')}, &ahead);
  auto reply = NewGrpcPeerClient(address_, TestOptions(auth))->Ping(Info(1, "127.0.0.1:7001"), {});
  ASSERT_EQ(reply.status().code(), absl::StatusCode::kUnauthenticated) << reply.status();
  std::optional<int64_t> skew = cluster::ParseClockSkew(std::string(reply.status().message()));
  ASSERT_TRUE(skew.has_value()) << reply.status();
  EXPECT_NEAR(static_cast<double>(*skew), 3600.0, 2.0);
  EXPECT_EQ(cluster::SignedBy(reply.status()),
            (cluster::NodeIdentity{kServerId, NodeOf(kServerId, 'a')}));
  // An outsider's refusal is not signed by a member.
  auto outsider = NewGrpcPeerClient(address_, TestOptions(AuthAs(1, /*key_seed=*/9)))
                      ->Ping(Info(1, "127.0.0.1:7001"), {});
  ASSERT_FALSE(outsider.ok());
  EXPECT_EQ(cluster::SignedBy(outsider.status()), std::nullopt);
}

TEST_F(PeerTest, PingExchangesMembership) {
  membership_->ObserveDirect(Info(3, "127.0.0.1:7003"));
  // The caller listens on the wildcard address: the server records the IP it called from.
  cluster::PeerInfo caller = Info(1, "0.0.0.0:7001");
  cluster::PeerInfo caller_known = Info(4, "127.0.0.1:7004");

  auto reply = client_->Ping(caller, {caller_known, Info(kServerId, "elsewhere:1")});
  ASSERT_TRUE(reply.ok()) << reply.status();

  // The caller learns the server and the peers it knows.
  EXPECT_EQ(reply->self.id, kServerId);
  EXPECT_EQ(reply->self.quota, kQuota);
  EXPECT_EQ(reply->self.host_id, "host-2");
  // Both ends read the same clock: the measured offset is about 0 (docs/protocol.md "Membership
  // over Ping"), at most the round trip off.
  ASSERT_TRUE(reply->clock_offset_ms.has_value());
  EXPECT_LE(std::abs(*reply->clock_offset_ms), 1000);
  std::vector<PeerId> known_ids;
  for (const auto& info : reply->known) known_ids.push_back(info.id);
  EXPECT_THAT(known_ids, ::testing::Contains(3u));
  EXPECT_THAT(known_ids, ::testing::Not(::testing::Contains(kServerId)));
  auto three = std::find_if(reply->known.begin(), reply->known.end(),
                            [](const cluster::PeerInfo& p) { return p.id == 3; });
  ASSERT_NE(three, reply->known.end());
  EXPECT_EQ(three->address, "127.0.0.1:7003");

  // The server learns the caller (directly, alive) and whom the caller knows.
  auto seen = membership_->Find(1);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->info.address, "127.0.0.1:7001");
  EXPECT_EQ(seen->info.host_id, "host-1");
  EXPECT_EQ(seen->state, cluster::PeerState::kAlive);
  EXPECT_GT(seen->last_seen_ns, 0);
  auto four = membership_->Find(4);
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(four->info.address, "127.0.0.1:7004");
  // A peer naming the server does not change the server's own address.
  EXPECT_EQ(membership_->Self().address, "127.0.0.1:1");
}

TEST_F(PeerTest, PingFromSenderWithoutAddressIsAnsweredNotRecorded) {
  auto reply =
      NewGrpcPeerClient(address_, TestOptions(AuthAs(5)))->Ping(Info(5, ""), {Info(6, "")});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->self.id, kServerId);
  EXPECT_FALSE(membership_->Find(5).has_value());
  EXPECT_FALSE(membership_->Find(6).has_value());
}

TEST_F(PeerTest, PingReportsStoreUsage) {
  auto [key, blob] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(key, blob).ok());
  auto reply = client_->Ping(Info(1, "127.0.0.1:7001"), {});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->self.used, store_->Stats().used);
  EXPECT_GT(reply->self.used, 0u);
}

TEST_F(PeerTest, ConcurrentClients) {
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < 16; ++i) blobs.push_back(MakeBlob(2000 + i));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto client = NewGrpcPeerClient(address_, TestOptions());
      for (size_t i = t; i < blobs.size(); i += 4) {
        if (!client->PutBlob(blobs[i].first, blobs[i].second).ok()) continue;
        auto got = client->GetBlob(blobs[i].first);
        if (got.ok() && *got == blobs[i].second) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 16);
}

int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);  // bound but never listening: connections are refused
  return ntohs(addr.sin_port);
}

TEST(PeerClientTest, ClosedPortIsUnavailableAfterRetries) {
  const std::string address = "127.0.0.1:" + std::to_string(ClosedPort());
  auto client = NewGrpcPeerClient(address, TestOptions());
  auto reply = client->Ping(Info(1, "127.0.0.1:7001"), {});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_THAT(reply.status().message(), HasSubstr("peer " + address + ": "));
  EXPECT_THAT(reply.status().message(), HasSubstr("3 attempts"));

  BlobKey key;
  EXPECT_EQ(client->GetBlob(key).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PeerTest, SecondServerOnSamePortIsUnavailable) {
  auto second = PeerServer::Start(address_, store_.get(), membership_.get(), ServerSecurity());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(client_->Ping(Info(1, "127.0.0.1:7001"), {}).ok());
}

TEST(PeerServerTest, BadListenAddressIsUnavailable) {
  auto store = store::NewMemBlobStore(kQuota);
  cluster::Membership membership(Info(kServerId, "x:1"), {}, env::RealClock::Default());
  struct Case {
    std::string address;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"203.0.113.7:0", absl::StatusCode::kUnavailable},  // not an address of this machine
      {"not an address", absl::StatusCode::kInvalidArgument},
      {"127.0.0.1:99999", absl::StatusCode::kInvalidArgument},
      {"127.0.0.1:-1", absl::StatusCode::kInvalidArgument},
      {"127.0.0.1:", absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto server = PeerServer::Start(c.address, store.get(), &membership, ServerSecurity());
    EXPECT_EQ(server.status().code(), c.code) << c.address << ": " << server.status();
  }
  // No cluster key: refused before binding anything.
  EXPECT_EQ(PeerServer::Start("127.0.0.1:0", store.get(), &membership, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PeerTest, ShutdownServerMakesCallsUnavailable) {
  ASSERT_TRUE(client_->Ping(Info(1, "127.0.0.1:7001"), {}).ok());
  server_->Shutdown(100ms);
  server_->Shutdown(100ms);  // idempotent
  auto reply = client_->Ping(Info(1, "127.0.0.1:7001"), {});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
}

void SendAndClose(int port, const Bytes& data) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  size_t sent = 0;
  while (sent < data.size()) {
    // The server may hang up early on garbage: MSG_NOSIGNAL turns SIGPIPE into EPIPE.
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  close(fd);
}

TEST_F(PeerTest, GarbageOnThePortDoesNotStopTheServer) {
  SendAndClose(server_->port(), RandomBytes(rng_, 64 * 1024));
  std::string http = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  SendAndClose(server_->port(), Bytes(http.begin(), http.end()));
  // An HTTP/2 preface followed by junk frames.
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Bytes h2(preface.begin(), preface.end());
  Bytes junk = RandomBytes(rng_, 4096);
  h2.insert(h2.end(), junk.begin(), junk.end());
  SendAndClose(server_->port(), h2);

  auto fresh = NewGrpcPeerClient(address_, TestOptions());
  auto reply = fresh->Ping(Info(1, "127.0.0.1:7001"), {});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->self.id, kServerId);
  auto [key, blob] = MakeBlob();
  ASSERT_TRUE(fresh->PutBlob(key, blob).ok());
  auto got = fresh->GetBlob(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob);
}

// A peer service that lies about GetBlob, to test the client's verification.
class LyingService final : public v1::Peer::Service {
 public:
  std::string blob;
  std::string checksum;
  grpc::Status GetBlob(grpc::ServerContext*, const v1::GetBlobRequest*,
                       v1::GetBlobResponse* response) override {
    response->set_blob(blob);
    response->set_checksum(checksum);
    return grpc::Status::OK;
  }
};

TEST(PeerClientTest, GetBlobVerifiesWhatThePeerSent) {
  LyingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  // An authenticated client refuses answers that carry no reply MAC (not a cluster member).
  service.blob = "x";
  service.checksum = ChecksumToProto(codec::BlobChecksum(AsBytes(service.blob)));
  EXPECT_EQ(NewGrpcPeerClient(address, TestOptions())->GetBlob(BlobKey{}).status().code(),
            absl::StatusCode::kUnauthenticated);
  // The rest checks the payload verification, which applies with or without authentication.
  auto client = NewGrpcPeerClient(address, TestOptions(nullptr));

  const std::string data = "some blob bytes";
  codec::Checksum good = codec::BlobChecksum(AsBytes(data));
  codec::Checksum bad = good;
  bad[15] ^= 1;
  struct Case {
    std::string name;
    std::string blob;
    std::string checksum;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"honest", data, ChecksumToProto(good), absl::StatusCode::kOk},
      {"flipped checksum", data, ChecksumToProto(bad), absl::StatusCode::kDataLoss},
      {"flipped byte", "some blob bytez", ChecksumToProto(good), absl::StatusCode::kDataLoss},
      {"short checksum", data, ChecksumToProto(good).substr(0, 8), absl::StatusCode::kDataLoss},
      {"empty blob", "", ChecksumToProto(codec::BlobChecksum({})), absl::StatusCode::kDataLoss},
  };
  for (const Case& c : cases) {
    service.blob = c.blob;
    service.checksum = c.checksum;
    auto got = client->GetBlob(BlobKey{});
    EXPECT_EQ(got.status().code(), c.code) << c.name << ": " << got.status();
    if (got.ok()) {
      EXPECT_EQ(AsString(*got), data);
    }
  }
  // Unimplemented RPCs come back as UNIMPLEMENTED, not retried.
  EXPECT_EQ(client->HasBlobs(std::vector<BlobKey>(1)).status().code(),
            absl::StatusCode::kUnimplemented);
  server->Shutdown();
}

// A process without the cluster key (another key, or none) gets UNAUTHENTICATED for every RPC
// and learns nothing; the server's membership and store do not change.
TEST_F(PeerTest, WithoutTheClusterKeyEveryRpcIsUnauthenticatedAndNothingChanges) {
  cluster::PeerInfo three = Info(3, "127.0.0.1:7003");
  three.node_id = NodeOf(3);
  membership_->ObserveDirect(three);
  auto [held_key, held_blob] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(held_key, held_blob).ok());
  auto ids = [&] {
    std::vector<std::pair<PeerId, std::string>> out;
    for (const auto& v : membership_->Peers()) out.push_back({v.info.id, v.info.address});
    return out;
  };
  const auto ids_before = ids();
  const ports::StoreStats stats_before = store_->Stats();

  auto [new_key, new_blob] = MakeBlob(5000);
  struct Case {
    std::string name;
    ClientOptions options;
  } cases[] = {{"other cluster key", TestOptions(AuthAs(9, /*key_seed=*/2))},
               {"no key at all", TestOptions(nullptr)}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto outsider = NewGrpcPeerClient(address_, c.options);
    auto ping = outsider->Ping(Info(9, "127.0.0.1:7009"), {Info(10, "127.0.0.1:7010")});
    EXPECT_EQ(ping.status().code(), absl::StatusCode::kUnauthenticated) << ping.status();
    EXPECT_EQ(outsider->PutBlob(new_key, new_blob).status().code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(outsider->GetBlob(held_key).status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(outsider->HasBlobs(std::vector<BlobKey>{held_key}).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  // Raw call without any header: no peer list, no self info in the answer.
  v1::PingRequest ping;
  ToProto(Info(11, "127.0.0.1:7011"), ping.mutable_sender());
  v1::PingResponse response;
  grpc::ClientContext context;
  grpc::Status status = RawStub()->Ping(&context, ping, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(response.has_self());
  EXPECT_EQ(response.known_size(), 0);

  EXPECT_EQ(ids(), ids_before);
  EXPECT_FALSE(membership_->Find(9).has_value());
  EXPECT_FALSE(membership_->Find(10).has_value());
  EXPECT_FALSE(membership_->Find(11).has_value());
  EXPECT_FALSE(*store_->Has(new_key));
  EXPECT_EQ(store_->Stats().used, stats_before.used);
  EXPECT_EQ(store_->Stats().blobs, stats_before.blobs);
  // Members are unaffected.
  EXPECT_TRUE(client_->GetBlob(held_key).ok());
}

TEST_F(PeerTest, ReplayedOrAlteredRequestsAreRefused) {
  auto auth = AuthAs(kOwner);
  auto stub = RawStub();
  auto put = [&](const v1::PutBlobRequest& request, const std::string& header) {
    v1::PutBlobResponse response;
    grpc::ClientContext context;
    context.AddMetadata(cluster::kAuthMetadataKey, header);
    return stub->PutBlob(&context, request, &response).error_code();
  };
  auto request_for = [&](const std::pair<BlobKey, Bytes>& b) {
    v1::PutBlobRequest request;
    ToProto(b.first, request.mutable_key());
    request.set_blob(std::string(AsString(b.second)));
    request.set_checksum(ChecksumToProto(codec::BlobChecksum(b.second)));
    return request;
  };
  auto a = MakeBlob(3000);
  auto b = MakeBlob(3000);
  v1::PutBlobRequest request_a = request_for(a), request_b = request_for(b);
  std::string header_a = auth->SignRequest("/cairn.v1.Peer/PutBlob", HashMessage(request_a)).header;
  // The body is covered by the MAC: the header of A does not carry B.
  EXPECT_EQ(put(request_b, header_a), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(*store_->Has(b.first));
  // A header admits one body at most: its nonce is claimed before the body is read
  // (docs/protocol.md "Authentication"), so the header the altered call spent is refused even
  // with the body it was signed for.
  EXPECT_EQ(put(request_a, header_a), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(*store_->Has(a.first));
  // Nor another method.
  std::string header_get =
      auth->SignRequest("/cairn.v1.Peer/GetBlob", HashMessage(request_a)).header;
  EXPECT_EQ(put(request_a, header_get), grpc::StatusCode::UNAUTHENTICATED);
  const std::string fresh =
      auth->SignRequest("/cairn.v1.Peer/PutBlob", HashMessage(request_a)).header;
  EXPECT_EQ(put(request_a, fresh), grpc::StatusCode::OK);
  EXPECT_TRUE(*store_->Has(a.first));
  // The same call recorded and sent again is a replay.
  EXPECT_EQ(put(request_a, fresh), grpc::StatusCode::UNAUTHENTICATED);
}

// Peer ids are pinned to node ids on first contact: a second node claiming a peer id in use
// is refused with ALREADY_EXISTS and changes nothing.
TEST_F(PeerTest, DuplicatePeerIdIsRefused) {
  auto first = NewGrpcPeerClient(address_, TestOptions(AuthAs(3, 1, 'a')));
  ASSERT_TRUE(first->Ping(Info(3, "127.0.0.1:7003"), {}).ok());
  EXPECT_EQ(*pins_.Pinned(3), NodeOf(3, 'a'));

  auto duplicate = NewGrpcPeerClient(address_, TestOptions(AuthAs(3, 1, 'b')));
  auto ping = duplicate->Ping(Info(3, "127.0.0.1:7999"), {Info(12, "127.0.0.1:7012")});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kAlreadyExists) << ping.status();
  EXPECT_THAT(ping.status().message(), HasSubstr("peer id 3 belongs to another node"));
  auto [key, blob] = MakeBlob();
  EXPECT_EQ(duplicate->PutBlob(key, blob).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(*store_->Has(key));
  EXPECT_EQ(membership_->Find(3)->info.address, "127.0.0.1:7003");
  EXPECT_EQ(membership_->Find(3)->info.node_id, NodeOf(3, 'a'));
  EXPECT_FALSE(membership_->Find(12).has_value());
  // The genuine peer still works.
  EXPECT_TRUE(first->Ping(Info(3, "127.0.0.1:7003"), {}).ok());
}

// Another node calling with the server's own peer id: the process that started first keeps it.
TEST_F(PeerTest, ClaimingTheServersOwnIdRefusesTheNewer) {
  auto twin = NewGrpcPeerClient(address_, TestOptions(AuthAs(kServerId, 1, 'b')));
  cluster::PeerInfo newer = Info(kServerId, "127.0.0.1:7998");
  newer.incarnation = membership_->Self().incarnation + 1;
  auto ping = twin->Ping(newer, {});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kAlreadyExists) << ping.status();
  EXPECT_THAT(ping.status().message(), HasSubstr("belongs to another node"));
  EXPECT_TRUE(Conflict().ok());  // the server keeps running

  cluster::PeerInfo older = newer;
  older.incarnation = membership_->Self().incarnation - 1;
  ping = twin->Ping(older, {});
  EXPECT_EQ(ping.status().code(), absl::StatusCode::kFailedPrecondition) << ping.status();
  EXPECT_EQ(Conflict().code(), absl::StatusCode::kAlreadyExists);  // the server gives way
}

TEST_F(PeerTest, PingSenderMustBeTheAuthenticatedCaller) {
  auto reply = client_->Ping(Info(4, "127.0.0.1:7004"), {});  // authenticated as peer 1
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument) << reply.status();
  EXPECT_FALSE(membership_->Find(4).has_value());
}

// ---- Lifecycle RPCs: DeleteBlobs, ListBlobs, BlobMoved, extra puts ----

// A blob key of `owner` that need not be held (BlobMoved names blobs by key only).
BlobKey KeyOf(PeerId owner, uint8_t fill, uint32_t shard = 0) {
  BlobKey key;
  key.owner = owner;
  key.chunk.bytes.fill(fill);
  key.shard = shard;
  return key;
}

TEST_F(PeerTest, DeleteBlobsDropsTheCallersBlobsAndIsIdempotent) {
  auto [a, blob_a] = MakeBlob(1000);
  auto [b, blob_b] = MakeBlob(2000);
  auto [kept, blob_kept] = MakeBlob(3000);
  auto [absent, unused] = MakeBlob(100);
  for (const auto& [key, blob] :
       std::vector<std::pair<BlobKey, Bytes>>{{a, blob_a}, {b, blob_b}, {kept, blob_kept}}) {
    ASSERT_TRUE(client_->PutBlob(key, blob).ok());
  }
  const std::vector<BlobKey> doomed = {a, absent, b, a};
  auto deleted = client_->DeleteBlobs(doomed);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2u);
  EXPECT_FALSE(*store_->Has(a));
  EXPECT_FALSE(*store_->Has(b));
  EXPECT_TRUE(*store_->Has(kept));
  EXPECT_EQ(store_->Stats().used, blob_kept.size());
  EXPECT_EQ(store_->Stats().blobs, 1u);

  auto again = client_->DeleteBlobs(doomed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0u);
  auto none = client_->DeleteBlobs({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(*client_->GetBlob(kept), blob_kept);
}

// A blob of another owner is never deleted on this caller's request, and a request naming one
// deletes nothing at all (docs/architecture.md "Invariants and where they hold").
TEST_F(PeerTest, DeleteBlobsOfAnotherOwnerIsPermissionDeniedAndDeletesNothing) {
  auto [mine, blob_mine] = MakeBlob(1000);
  auto [theirs, blob_theirs] = MakeBlob(1000, /*owner=*/3);
  ASSERT_TRUE(client_->PutBlob(mine, blob_mine).ok());
  auto peer3 = NewGrpcPeerClient(address_, TestOptions(AuthAs(3)));
  ASSERT_TRUE(peer3->PutBlob(theirs, blob_theirs).ok());
  const ports::StoreStats before = store_->Stats();

  auto denied = client_->DeleteBlobs(std::vector<BlobKey>{mine, theirs});
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_THAT(denied.status().message(), HasSubstr(theirs.DebugString()));
  EXPECT_TRUE(*store_->Has(mine));
  EXPECT_TRUE(*store_->Has(theirs));
  EXPECT_EQ(store_->Stats().used, before.used);

  // The owner itself may.
  auto deleted = peer3->DeleteBlobs(std::vector<BlobKey>{theirs});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1u);
  EXPECT_FALSE(*store_->Has(theirs));
  EXPECT_TRUE(*store_->Has(mine));
}

TEST_F(PeerTest, ListBlobsPagesThroughTheCallersBlobs) {
  std::map<BlobKey, Bytes> mine;
  for (int i = 0; i < 23; ++i) {
    auto [key, blob] = MakeBlob(100 + i);
    ASSERT_TRUE(client_->PutBlob(key, blob, ports::PutOptions{.extra = i % 5 == 0}).ok());
    mine[key] = blob;
  }
  auto peer3 = NewGrpcPeerClient(address_, TestOptions(AuthAs(3)));
  for (int i = 0; i < 3; ++i) {
    auto [key, blob] = MakeBlob(100, /*owner=*/3);
    ASSERT_TRUE(peer3->PutBlob(key, blob).ok());
  }
  std::vector<BlobKey> listed;
  std::optional<BlobKey> after;
  int pages = 0;
  while (true) {
    auto page = client_->ListBlobs(kOwner, after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    ASSERT_LE(page->blobs.size(), 7u);
    for (const ports::BlobRecord& r : page->blobs) {
      ASSERT_EQ(mine.count(r.key), 1u) << r.key.DebugString();
      EXPECT_EQ(r.size, mine[r.key].size());
      EXPECT_EQ(r.checksum, codec::BlobChecksum(mine[r.key]));
      listed.push_back(r.key);
    }
    if (!page->more) break;
    ASSERT_FALSE(page->blobs.empty());
    after = page->blobs.back().key;
  }
  EXPECT_EQ(pages, 4);  // 7 + 7 + 7 + 2
  std::vector<BlobKey> want;
  for (const auto& [key, blob] : mine) want.push_back(key);
  EXPECT_EQ(listed, want);  // key order, each once

  // Exactly one full page: no more.
  auto all = client_->ListBlobs(kOwner, std::nullopt, 23);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->blobs.size(), 23u);
  EXPECT_FALSE(all->more);
  int extras = 0;
  for (const ports::BlobRecord& r : all->blobs) extras += r.extra ? 1 : 0;
  EXPECT_EQ(extras, 5);  // i = 0, 5, 10, 15, 20

  // Only the owner may list its blobs.
  auto denied = client_->ListBlobs(3, std::nullopt, 10);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  auto theirs = peer3->ListBlobs(3, std::nullopt, 10);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(theirs->blobs.size(), 3u);
  auto nothing = peer3->ListBlobs(3, theirs->blobs.back().key, 10);
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_TRUE(nothing->blobs.empty());
  EXPECT_FALSE(nothing->more);
}

TEST_F(PeerTest, ExtraPutIsListedAsExtraUntilARegularPut) {
  auto [key, blob] = MakeBlob(2000);
  auto put = client_->PutBlob(key, blob, ports::PutOptions{.extra = true});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, ports::PutOutcome::kStored);
  EXPECT_EQ(store_->Stats().extra_blobs, 1u);
  auto page = client_->ListBlobs(kOwner, std::nullopt, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->blobs.size(), 1u);
  EXPECT_EQ(page->blobs[0].key, key);
  EXPECT_TRUE(page->blobs[0].extra);

  auto promote = client_->PutBlob(key, blob);
  ASSERT_TRUE(promote.ok()) << promote.status();
  EXPECT_EQ(*promote, ports::PutOutcome::kAlreadyStored);
  page = client_->ListBlobs(kOwner, std::nullopt, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->blobs.size(), 1u);
  EXPECT_FALSE(page->blobs[0].extra);
  EXPECT_EQ(store_->Stats().extra_blobs, 0u);
}

TEST_F(PeerTest, BlobMovedReachesTheHookWithTheCaller) {
  auto storage = NewGrpcPeerClient(address_, TestOptions(AuthAs(3)));
  const std::vector<MovedBlob> moves = {{KeyOf(kServerId, 1), 4}, {KeyOf(kServerId, 2, 1), 5}};
  ASSERT_TRUE(storage->BlobMoved(moves).ok());
  auto moved = Moved();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].first, 3u);
  EXPECT_EQ(moved[0].second, moves);

  // The hook's answer is the call's answer.
  SetMovedAnswer(absl::FailedPreconditionError("catalog busy"));
  absl::Status refused = storage->BlobMoved(moves);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("catalog busy"));
  EXPECT_EQ(Moved().size(), 2u);
}

TEST_F(PeerTest, BlobMovedOfAnotherOwnersBlobIsInvalidArgument) {
  auto storage = NewGrpcPeerClient(address_, TestOptions(AuthAs(3)));
  const std::vector<MovedBlob> moves = {{KeyOf(kServerId, 1), 4}, {KeyOf(kOwner, 2), 5}};
  absl::Status status = storage->BlobMoved(moves);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(KeyOf(kOwner, 2).DebugString()));
  EXPECT_TRUE(Moved().empty());
}

TEST_F(PeerTest, BlobMovedWithoutAHookIsUnimplemented) {
  auto plain = PeerServer::Start("127.0.0.1:0", store_.get(), membership_.get(), ServerSecurity());
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto storage =
      NewGrpcPeerClient("127.0.0.1:" + std::to_string((*plain)->port()), TestOptions(AuthAs(3)));
  const std::vector<MovedBlob> moves = {{KeyOf(kServerId, 1), 4}};
  EXPECT_EQ(storage->BlobMoved(moves).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(PeerTest, OversizeLifecycleRequestsAreInvalidArgument) {
  auto [key, blob] = MakeBlob(1000);
  ASSERT_TRUE(client_->PutBlob(key, blob).ok());
  std::vector<BlobKey> too_many(kMaxKeysPerCall + 1, key);
  // Refused by the client before sending...
  EXPECT_EQ(client_->DeleteBlobs(too_many).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<MovedBlob> too_many_moves(kMaxKeysPerCall + 1, MovedBlob{KeyOf(kServerId, 1), 4});
  EXPECT_EQ(client_->BlobMoved(too_many_moves).code(), absl::StatusCode::kInvalidArgument);
  for (size_t limit : {size_t{0}, kMaxKeysPerCall + 1}) {
    EXPECT_EQ(client_->ListBlobs(kOwner, std::nullopt, limit).status().code(),
              absl::StatusCode::kInvalidArgument)
        << limit;
  }
  EXPECT_TRUE(*store_->Has(key));

  // ...and by the server.
  auto stub = RawStub();
  auto auth = AuthAs(kOwner);
  {
    v1::DeleteBlobsRequest request;
    for (size_t i = 0; i <= kMaxKeysPerCall; ++i) ToProto(key, request.add_keys());
    v1::DeleteBlobsResponse response;
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/DeleteBlobs", request, context);
    grpc::Status status = stub->DeleteBlobs(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  {
    v1::DeleteBlobsRequest request;
    ToProto(key, request.add_keys());
    request.add_keys()->set_chunk_id("short");
    v1::DeleteBlobsResponse response;
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/DeleteBlobs", request, context);
    grpc::Status status = stub->DeleteBlobs(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  EXPECT_TRUE(*store_->Has(key));
  {
    v1::BlobMovedRequest request;
    for (size_t i = 0; i <= kMaxKeysPerCall; ++i) {
      v1::BlobMovedRequest::Move* move = request.add_moves();
      ToProto(KeyOf(kServerId, 1), move->mutable_key());
      move->set_to(4);
    }
    v1::BlobMovedResponse response;
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/BlobMoved", request, context);
    grpc::Status status = stub->BlobMoved(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  EXPECT_TRUE(Moved().empty());
  for (uint32_t limit : {0u, static_cast<uint32_t>(kMaxKeysPerCall + 1)}) {
    v1::ListBlobsRequest request;
    request.set_owner(kOwner);
    request.set_limit(limit);
    v1::ListBlobsResponse response;
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/ListBlobs", request, context);
    grpc::Status status = stub->ListBlobs(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << limit << ": " << status.error_message();
  }
  // A full page of kMaxKeysPerCall is fine.
  auto page = client_->ListBlobs(kOwner, std::nullopt, kMaxKeysPerCall);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->blobs.size(), 1u);
}

// Without the cluster key the lifecycle RPCs are UNAUTHENTICATED and change nothing, even for a
// caller claiming the owner's peer id.
TEST_F(PeerTest, LifecycleRpcsWithoutTheClusterKeyAreUnauthenticated) {
  auto [held_key, held_blob] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(held_key, held_blob).ok());
  struct Case {
    std::string name;
    ClientOptions options;
  } cases[] = {{"other cluster key", TestOptions(AuthAs(kOwner, /*key_seed=*/2))},
               {"no key at all", TestOptions(nullptr)}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto outsider = NewGrpcPeerClient(address_, c.options);
    EXPECT_EQ(outsider->DeleteBlobs(std::vector<BlobKey>{held_key}).status().code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(outsider->ListBlobs(kOwner, std::nullopt, 10).status().code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(outsider->BlobMoved(std::vector<MovedBlob>{{KeyOf(kServerId, 1), 4}}).code(),
              absl::StatusCode::kUnauthenticated);
    auto [extra_key, extra_blob] = MakeBlob(500);
    EXPECT_EQ(
        outsider->PutBlob(extra_key, extra_blob, ports::PutOptions{.extra = true}).status().code(),
        absl::StatusCode::kUnauthenticated);
    EXPECT_FALSE(*store_->Has(extra_key));
  }
  EXPECT_TRUE(*store_->Has(held_key));
  EXPECT_TRUE(Moved().empty());
  EXPECT_EQ(*client_->GetBlob(held_key), held_blob);
}

// ---- Batches (docs/protocol.md "Batches"): PutBlobs, GetBlobs ----

std::vector<BlobPut> PutsOf(const std::vector<std::pair<BlobKey, Bytes>>& blobs) {
  std::vector<BlobPut> puts;
  for (const auto& [key, blob] : blobs) puts.push_back(BlobPut{key, blob, {}});
  return puts;
}

std::vector<BlobKey> KeysOf(const std::vector<std::pair<BlobKey, Bytes>>& blobs) {
  std::vector<BlobKey> keys;
  for (const auto& [key, blob] : blobs) keys.push_back(key);
  return keys;
}

TEST_F(PeerTest, PutBlobsGetBlobsRoundTrip) {
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < 40; ++i) blobs.push_back(MakeBlob(1 + 997 * i));
  auto put = client_->PutBlobs(PutsOf(blobs));
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->size(), blobs.size());
  for (const auto& answer : *put) {
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(*answer, ports::PutOutcome::kStored);
  }
  EXPECT_EQ(counting_->put_batches.load(), 1);  // one durable group for the whole batch
  EXPECT_EQ(store_->Stats().blobs, blobs.size());

  // Large blobs too: the answers then span several stream messages (at most 4 MiB of blobs
  // each, or one larger blob).
  std::vector<std::pair<BlobKey, Bytes>> large = {MakeBlob(7 << 20), MakeBlob(6 << 20),
                                                  MakeBlob(5 << 20)};
  for (const auto& blob : large) {
    auto one = client_->PutBlobs(PutsOf({blob}));
    ASSERT_TRUE(one.ok()) << one.status();
    ASSERT_TRUE((*one)[0].ok()) << (*one)[0].status();
  }
  auto [absent, unused] = MakeBlob(10);
  std::vector<std::pair<BlobKey, Bytes>> all = large;
  all.insert(all.begin() + 1, blobs.begin(), blobs.end());
  std::vector<BlobKey> keys = KeysOf(all);
  keys.insert(keys.begin() + 5, absent);
  auto got = client_->GetBlobs(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (size_t i = 0, j = 0; i < keys.size(); ++i) {
    if (i == 5) {
      EXPECT_EQ((*got)[i].status().code(), absl::StatusCode::kNotFound) << (*got)[i].status();
      continue;
    }
    ASSERT_TRUE((*got)[i].ok()) << i << ": " << (*got)[i].status();
    EXPECT_EQ(*(*got)[i], all[j].second) << i;
    ++j;
  }
  auto none = client_->GetBlobs({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

// Every blob of a batch is answered on its own: one bad blob does not fail the others.
TEST_F(PeerTest, PutBlobsMixedBatchIsAnsweredPerItem) {
  auto stored_before = MakeBlob(1000);
  ASSERT_TRUE(client_->PutBlob(stored_before.first, stored_before.second).ok());
  auto good = MakeBlob(2000);
  auto bad_sum = MakeBlob(2000);
  auto wrong_key = MakeBlob(2000);
  auto too_big = MakeBlob(50000);
  // Room for `good` and not for `too_big`.
  ASSERT_TRUE(store_->SetQuota(store_->Stats().used + good.second.size() + 1000).ok());

  v1::PutBlobsRequest request;
  auto add = [&](const BlobKey& key, const Bytes& blob, codec::Checksum sum) {
    v1::PutBlobRequest* put = request.add_blobs();
    ToProto(key, put->mutable_key());
    put->set_blob(std::string(AsString(blob)));
    put->set_checksum(ChecksumToProto(sum));
  };
  add(good.first, good.second, codec::BlobChecksum(good.second));
  codec::Checksum flipped = codec::BlobChecksum(bad_sum.second);
  flipped[0] ^= 1;
  add(bad_sum.first, bad_sum.second, flipped);
  BlobKey other_shard = wrong_key.first;
  other_shard.shard = 1;  // the envelope says shard 0
  add(other_shard, wrong_key.second, codec::BlobChecksum(wrong_key.second));
  add(stored_before.first, stored_before.second, codec::BlobChecksum(stored_before.second));
  add(too_big.first, too_big.second, codec::BlobChecksum(too_big.second));
  request.add_blobs()->mutable_key()->set_chunk_id("short");  // malformed key

  auto auth = AuthAs(kOwner);
  grpc::ClientContext context;
  auto nonce = SignCall(auth.get(), "/cairn.v1.Peer/PutBlobs", request, context);
  v1::PutBlobsResponse response;
  grpc::Status status = RawStub()->PutBlobs(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The answer is MAC'd like every other.
  ASSERT_TRUE(
      CheckReply(auth.get(), "/cairn.v1.Peer/PutBlobs", nonce, status, response, context).ok());
  ASSERT_EQ(response.items_size(), 6);
  const grpc::StatusCode want[] = {grpc::StatusCode::OK,
                                   grpc::StatusCode::DATA_LOSS,
                                   grpc::StatusCode::INVALID_ARGUMENT,
                                   grpc::StatusCode::OK,
                                   grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   grpc::StatusCode::INVALID_ARGUMENT};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(response.items(i).code(), static_cast<uint32_t>(want[i]))
        << i << ": " << response.items(i).message();
  }
  EXPECT_EQ(response.items(0).outcome(), v1::PutBlobResponse::STORED);
  EXPECT_EQ(response.items(3).outcome(), v1::PutBlobResponse::ALREADY_STORED);
  EXPECT_THAT(response.items(1).message(), HasSubstr(bad_sum.first.DebugString()));
  EXPECT_EQ(response.quota(), store_->Stats().quota);
  EXPECT_EQ(response.used(), store_->Stats().used);
  EXPECT_EQ(counting_->put_batches.load(), 1);

  EXPECT_TRUE(*store_->Has(good.first));
  EXPECT_FALSE(*store_->Has(bad_sum.first));
  EXPECT_FALSE(*store_->Has(other_shard));
  EXPECT_FALSE(*store_->Has(wrong_key.first));
  EXPECT_FALSE(*store_->Has(too_big.first));
  EXPECT_EQ(store_->Stats().blobs, 2u);

  // The client maps the same answers to statuses, item by item.
  auto again = client_->PutBlobs(std::vector<BlobPut>{{good.first, good.second, {}},
                                                      {other_shard, wrong_key.second, {}},
                                                      {too_big.first, too_big.second, {}}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)[0], ports::PutOutcome::kAlreadyStored);
  EXPECT_EQ((*again)[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*again)[2].status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT((*again)[2].status().message(), HasSubstr("peer " + address_ + ": "));
}

TEST_F(PeerTest, OversizeBatchesAreInvalidArgument) {
  auto [key, blob] = MakeBlob(1000);
  // The client refuses them before sending...
  std::vector<BlobPut> too_many(kMaxBlobsPerBatch + 1, BlobPut{key, blob, {}});
  EXPECT_EQ(client_->PutBlobs(too_many).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<BlobKey> too_many_keys(kMaxBlobsPerBatch + 1, key);
  EXPECT_EQ(client_->GetBlobs(too_many_keys).status().code(), absl::StatusCode::kInvalidArgument);

  // ...and so does the server, before touching the store.
  auto stub = RawStub();
  auto auth = AuthAs(kOwner);
  const std::string blob_text(AsString(blob));
  const std::string big(6 << 20, 'x');  // three of them exceed kMaxBatchBytes
  struct Case {
    std::string name;
    size_t count;
    const std::string* bytes;
  } cases[] = {{"too many blobs", kMaxBlobsPerBatch + 1, &blob_text}, {"too many bytes", 3, &big}};
  for (const Case& c : cases) {
    v1::PutBlobsRequest request;
    for (size_t i = 0; i < c.count; ++i) {
      v1::PutBlobRequest* put = request.add_blobs();
      ToProto(key, put->mutable_key());
      put->set_blob(*c.bytes);
      put->set_checksum(ChecksumToProto(codec::BlobChecksum(AsBytes(*c.bytes))));
    }
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/PutBlobs", request, context);
    v1::PutBlobsResponse response;
    grpc::Status status = stub->PutBlobs(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << status.error_message();
    EXPECT_EQ(response.items_size(), 0) << c.name;
  }
  {
    v1::GetBlobsRequest request;
    for (size_t i = 0; i <= kMaxBlobsPerBatch; ++i) ToProto(key, request.add_keys());
    grpc::ClientContext context;
    SignCall(auth.get(), "/cairn.v1.Peer/GetBlobs", request, context);
    auto reader = stub->GetBlobs(&context, request);
    v1::GetBlobsResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(counting_->put_batches.load(), 0);
  EXPECT_EQ(counting_->puts.load(), 0);
  EXPECT_EQ(counting_->gets.load(), 0);
  EXPECT_EQ(store_->Stats().blobs, 0u);
  // The client counts bytes too: three blobs of 6 MiB do not make one batch; one does.
  std::vector<std::pair<BlobKey, Bytes>> large = {MakeBlob(6 << 20), MakeBlob(6 << 20),
                                                  MakeBlob(6 << 20)};
  EXPECT_EQ(client_->PutBlobs(PutsOf(large)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Stats().blobs, 0u);
  auto alone = client_->PutBlobs(PutsOf({large[0]}));
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(*(*alone)[0], ports::PutOutcome::kStored);
}

TEST_F(PeerTest, BatchesWithoutTheClusterKeyAreRefusedBeforeAnyWork) {
  auto [held_key, held_blob] = MakeBlob();
  ASSERT_TRUE(client_->PutBlob(held_key, held_blob).ok());
  const ports::StoreStats before = store_->Stats();
  const int puts_before = counting_->puts.load();
  auto [new_key, new_blob] = MakeBlob(3000);
  struct Case {
    std::string name;
    ClientOptions options;
  } cases[] = {{"other cluster key", TestOptions(AuthAs(kOwner, /*key_seed=*/2))},
               {"no key at all", TestOptions(nullptr)}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto outsider = NewGrpcPeerClient(address_, c.options);
    EXPECT_EQ(outsider->PutBlobs(std::vector<BlobPut>{{new_key, new_blob, {}}}).status().code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(outsider->GetBlobs(std::vector<BlobKey>{held_key}).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(counting_->put_batches.load(), 0);
  EXPECT_EQ(counting_->puts.load(), puts_before);
  EXPECT_EQ(counting_->gets.load(), 0);
  EXPECT_FALSE(*store_->Has(new_key));
  EXPECT_EQ(store_->Stats().used, before.used);
  EXPECT_EQ(store_->Stats().blobs, before.blobs);
}

TEST_F(PeerTest, RepeatedPutBlobsIsHarmless) {
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < 10; ++i) blobs.push_back(MakeBlob(500 + i));
  const std::vector<BlobPut> puts = PutsOf(blobs);
  auto first = client_->PutBlobs(puts);
  ASSERT_TRUE(first.ok()) << first.status();
  const ports::StoreStats after_first = store_->Stats();
  auto second = client_->PutBlobs(puts);
  ASSERT_TRUE(second.ok()) << second.status();
  for (const auto& answer : *second) {
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(*answer, ports::PutOutcome::kAlreadyStored);
  }
  EXPECT_EQ(store_->Stats().blobs, after_first.blobs);
  EXPECT_EQ(store_->Stats().used, after_first.used);
  EXPECT_EQ(after_first.blobs, blobs.size());

  // The same request and header replayed is refused (the nonce was seen).
  v1::PutBlobsRequest request;
  for (const auto& [key, blob] : blobs) {
    v1::PutBlobRequest* put = request.add_blobs();
    ToProto(key, put->mutable_key());
    put->set_blob(std::string(AsString(blob)));
    put->set_checksum(ChecksumToProto(codec::BlobChecksum(blob)));
  }
  auto auth = AuthAs(kOwner);
  const std::string header =
      auth->SignRequest("/cairn.v1.Peer/PutBlobs", HashMessage(request)).header;
  auto stub = RawStub();
  for (grpc::StatusCode want : {grpc::StatusCode::OK, grpc::StatusCode::UNAUTHENTICATED}) {
    grpc::ClientContext context;
    context.AddMetadata(cluster::kAuthMetadataKey, header);
    v1::PutBlobsResponse response;
    EXPECT_EQ(stub->PutBlobs(&context, request, &response).error_code(), want);
  }
  EXPECT_EQ(store_->Stats().blobs, after_first.blobs);
}

// Forwards to a client; its first PutBlobs / GetBlobsStreamed loses the answer (after the
// server did the work) and fails with UNAVAILABLE, like a connection that broke on the way back.
class LossyClient final : public PeerClient {
 public:
  explicit LossyClient(std::shared_ptr<PeerClient> inner, size_t get_answers_kept = 0)
      : inner_(std::move(inner)), get_answers_kept_(get_answers_kept) {}
  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                 const std::vector<cluster::PeerInfo>& known) override {
    return inner_->Ping(self, known);
  }
  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const ports::PutOptions& options) override {
    return inner_->PutBlob(key, blob, options);
  }
  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override { return inner_->GetBlob(key); }
  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override {
    auto answers = inner_->PutBlobs(puts);
    if (put_calls_++ == 0) return absl::UnavailableError("answer lost");
    return answers;
  }
  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override {
    get_sizes_.push_back(keys.size());
    if (get_sizes_.size() > 1) return inner_->GetBlobsStreamed(keys, on_blob);
    // The first stream breaks after `get_answers_kept_` answers.
    size_t delivered = 0;
    absl::Status status = inner_->GetBlobsStreamed(keys, [&](size_t i, absl::StatusOr<Bytes> a) {
      if (delivered < get_answers_kept_) {
        ++delivered;
        on_blob(i, std::move(a));
      }
    });
    if (!status.ok()) return status;
    return absl::UnavailableError("stream broken");
  }
  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
    return inner_->HasBlobs(keys);
  }
  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
    return inner_->DeleteBlobs(keys);
  }
  absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                         size_t limit) override {
    return inner_->ListBlobs(owner, after, limit);
  }
  absl::Status BlobMoved(std::span<const MovedBlob> moves) override {
    return inner_->BlobMoved(moves);
  }

  int put_calls_ = 0;
  std::vector<size_t> get_sizes_;

 private:
  std::shared_ptr<PeerClient> inner_;
  size_t get_answers_kept_;
};

TEST_F(PeerTest, LostPutBlobsAnswerIsRetriedToSuccess) {
  ClientOptions once = TestOptions();
  once.max_attempts = 1;
  auto lossy = std::make_shared<LossyClient>(NewGrpcPeerClient(address_, once));
  RetryingPeerClient client(lossy, TestOptions(), address_);
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < 8; ++i) blobs.push_back(MakeBlob(700 + i));
  auto put = client.PutBlobs(PutsOf(blobs));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(lossy->put_calls_, 2);
  // The first attempt stored them; the retry finds them there.
  for (const auto& answer : *put) {
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(*answer, ports::PutOutcome::kAlreadyStored);
  }
  EXPECT_EQ(counting_->put_batches.load(), 2);
  EXPECT_EQ(store_->Stats().blobs, blobs.size());
  for (const auto& [key, blob] : blobs) EXPECT_EQ(*client_->GetBlob(key), blob);
}

TEST_F(PeerTest, BrokenGetBlobsStreamIsResumedWithTheRest) {
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < 12; ++i) blobs.push_back(MakeBlob(900 + i));
  ASSERT_TRUE(client_->PutBlobs(PutsOf(blobs)).ok());
  ClientOptions once = TestOptions();
  once.max_attempts = 1;
  auto lossy = std::make_shared<LossyClient>(NewGrpcPeerClient(address_, once),
                                             /*get_answers_kept=*/5);
  RetryingPeerClient client(lossy, TestOptions(), address_);
  auto got = client.GetBlobs(KeysOf(blobs));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(lossy->get_sizes_, (std::vector<size_t>{12, 7}));  // the second asks for the rest
  ASSERT_EQ(got->size(), blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) {
    ASSERT_TRUE((*got)[i].ok()) << i << ": " << (*got)[i].status();
    EXPECT_EQ(*(*got)[i], blobs[i].second) << i;
  }
}

TEST_F(PeerTest, GetBlobsReportsACorruptBlobAndReturnsTheOthers) {
  std::vector<std::pair<BlobKey, Bytes>> blobs = {MakeBlob(1000), MakeBlob(2000), MakeBlob(3000)};
  ASSERT_TRUE(client_->PutBlobs(PutsOf(blobs)).ok());
  ASSERT_TRUE(store::MutateMemBlobForTesting(mem_store_.get(), blobs[1].first, [](Bytes& b) {
                b[9] ^= 4;
              }).ok());
  auto got = client_->GetBlobs(KeysOf(blobs));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ(*(*got)[0], blobs[0].second);
  EXPECT_EQ((*got)[1].status().code(), absl::StatusCode::kDataLoss) << (*got)[1].status();
  EXPECT_EQ(*(*got)[2], blobs[2].second);
}

// A peer service that answers GetBlobs with messages it signs itself, in the wrong place or
// altered, to test the client's checks of a stream (docs/protocol.md "Batches").
class ForgingService final : public v1::Peer::Service {
 public:
  enum class Mode { kHonest, kSwapped, kAltered, kRepeated, kCutShort, kClaimsMore };
  explicit ForgingService(std::shared_ptr<cluster::RpcAuth> auth) : auth_(std::move(auth)) {}
  Mode mode = Mode::kHonest;

  grpc::Status GetBlobs(grpc::ServerContext* context, const v1::GetBlobsRequest* request,
                        grpc::ServerWriter<v1::GetBlobsResponse>* writer) override {
    constexpr char kMethod[] = "/cairn.v1.Peer/GetBlobs";
    auto call = VerifyCall(auth_.get(), kMethod, *request, *context);
    if (!call.ok()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no");
    const cluster::Digest request_mac = *RequestMacOf(*context);
    // One message per key; the blob is the key's chunk id.
    std::vector<v1::GetBlobsResponse> messages;
    for (int i = 0; i < request->keys_size(); ++i) {
      v1::GetBlobsResponse message;
      message.set_first(static_cast<uint32_t>(i));
      v1::GetBlobsResponse::Item* item = message.add_items();
      item->set_blob(request->keys(i).chunk_id());
      item->set_checksum(ChecksumToProto(codec::BlobChecksum(AsBytes(item->blob()))));
      message.set_auth(SignStreamMessage(*auth_, kMethod, call->nonce, request_mac,
                                         static_cast<uint64_t>(i), HashMessage(message)));
      messages.push_back(message);
    }
    uint64_t claimed = messages.size();
    switch (mode) {
      case Mode::kHonest:
        break;
      case Mode::kSwapped:
        std::swap(messages[0], messages[1]);
        break;
      case Mode::kAltered:
        (*messages[1].mutable_items(0)->mutable_blob())[0] ^= 1;
        messages[1].mutable_items(0)->set_checksum(
            ChecksumToProto(codec::BlobChecksum(AsBytes(messages[1].items(0).blob()))));
        break;
      case Mode::kRepeated:
        messages[1] = messages[0];
        break;
      case Mode::kCutShort:
        messages.pop_back();
        claimed = messages.size();
        break;
      case Mode::kClaimsMore:
        messages.pop_back();
        break;
    }
    for (const auto& message : messages) writer->Write(message);
    SignStreamEnd(auth_.get(), kMethod, call->nonce, request_mac, grpc::Status::OK, claimed,
                  *context);
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<cluster::RpcAuth> auth_;
};

TEST(PeerClientTest, GetBlobsChecksEveryStreamMessage) {
  ForgingService service(AuthAs(kServerId));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto client = NewGrpcPeerClient("127.0.0.1:" + std::to_string(port), TestOptions());
  const std::vector<BlobKey> keys = {KeyOf(kOwner, 1), KeyOf(kOwner, 2), KeyOf(kOwner, 3)};
  struct Case {
    std::string name;
    ForgingService::Mode mode;
    absl::StatusCode code;
  } cases[] = {
      {"honest", ForgingService::Mode::kHonest, absl::StatusCode::kOk},
      {"swapped", ForgingService::Mode::kSwapped, absl::StatusCode::kUnauthenticated},
      {"altered", ForgingService::Mode::kAltered, absl::StatusCode::kUnauthenticated},
      {"repeated", ForgingService::Mode::kRepeated, absl::StatusCode::kUnauthenticated},
      {"cut short", ForgingService::Mode::kCutShort, absl::StatusCode::kInternal},
      {"claims more", ForgingService::Mode::kClaimsMore, absl::StatusCode::kUnauthenticated},
  };
  for (const Case& c : cases) {
    service.mode = c.mode;
    std::vector<size_t> answered;
    absl::Status status =
        client->GetBlobsStreamed(keys, [&](size_t i, absl::StatusOr<Bytes> answer) {
          EXPECT_TRUE(answer.ok()) << c.name << " " << i << ": " << answer.status();
          if (answer.ok()) {
            EXPECT_EQ(*answer, Bytes(keys[i].chunk.bytes.begin(), keys[i].chunk.bytes.end()));
          }
          answered.push_back(i);
        });
    EXPECT_EQ(status.code(), c.code) << c.name << ": " << status;
    // Whatever was handed out came in order and verified; nothing after a forged message.
    for (size_t i = 0; i < answered.size(); ++i) EXPECT_EQ(answered[i], i) << c.name;
    const size_t want_answered = c.mode == ForgingService::Mode::kHonest    ? 3
                                 : c.mode == ForgingService::Mode::kSwapped ? 0
                                                                            : answered.size();
    EXPECT_EQ(answered.size(), want_answered) << c.name;
    if (c.mode == ForgingService::Mode::kAltered) {
      EXPECT_EQ(answered.size(), 1u);
    }
  }
  // A client of another cluster accepts nothing.
  service.mode = ForgingService::Mode::kHonest;
  auto outsider = NewGrpcPeerClient("127.0.0.1:" + std::to_string(port),
                                    TestOptions(AuthAs(kOwner, /*key_seed=*/2)));
  EXPECT_EQ(outsider->GetBlobs(keys).status().code(), absl::StatusCode::kUnauthenticated);
  server->Shutdown();
}

// Many threads putting and getting single blobs through a BatchingPeerClient over the real
// service: each gets its own answer and the bytes come back equal.
TEST_F(PeerTest, BatchingClientOverTheRealService) {
  BatchingPeerClient batching(NewGrpcPeerClient(address_, TestOptions()));
  constexpr int kThreads = 64;
  std::vector<std::pair<BlobKey, Bytes>> blobs;
  for (int i = 0; i < kThreads; ++i) blobs.push_back(MakeBlob(100 + 37 * i));
  std::vector<absl::StatusOr<ports::PutOutcome>> puts(kThreads, absl::UnknownError("not run"));
  std::vector<absl::StatusOr<Bytes>> gets(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      puts[t] = batching.PutBlob(blobs[t].first, blobs[t].second);
      gets[t] = batching.GetBlob(blobs[t].first);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(puts[t].ok()) << t << ": " << puts[t].status();
    EXPECT_EQ(*puts[t], ports::PutOutcome::kStored);
    ASSERT_TRUE(gets[t].ok()) << t << ": " << gets[t].status();
    EXPECT_EQ(*gets[t], blobs[t].second) << t;
  }
  EXPECT_EQ(store_->Stats().blobs, static_cast<uint64_t>(kThreads));
  EXPECT_EQ(counting_->puts.load(), 0);  // every put arrived in a batch
  const BatchingCounters counters = batching.Counters();
  EXPECT_EQ(counters.bytes_in_flight, 0u);
  EXPECT_LE(counters.put_batches, static_cast<uint64_t>(kThreads));
}

}  // namespace
}  // namespace cairn::net
