#include "cairn/net/peer_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/net/convert.h"
#include "cairn/net/limits.h"
#include "cairn/net/status_map.h"
#include "cairn/v1/peer.grpc.pb.h"

namespace cairn::net {
namespace {

// Runs a handler body; any exception (protobuf, allocation, our bugs) becomes INTERNAL so that
// no request can take the process down (design.md §11.8).
template <typename Fn>
grpc::Status Guard(const char* rpc, grpc::ServerContext* context, Fn&& fn) {
  absl::Status status;
  try {
    status = fn();
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat(rpc, ": ", e.what()));
  } catch (...) {
    status = absl::InternalError(absl::StrCat(rpc, ": unknown exception"));
  }
  if (!status.ok()) {
    spdlog::debug("{} from {} failed: {}", rpc, context->peer(), status.ToString());
  }
  return ToGrpcStatus(status);
}

class PeerService final : public v1::Peer::Service {
 public:
  PeerService(store::BlobStore* store, cluster::Membership* membership)
      : store_(store), membership_(membership) {}

  grpc::Status Ping(grpc::ServerContext* context, const v1::PingRequest* request,
                    v1::PingResponse* response) override {
    return Guard("Ping", context, [&]() -> absl::Status {
      const PeerId self_id = membership_->self().id;
      if (request->has_sender()) {
        cluster::PeerInfo sender = FromProto(request->sender());
        // A sender without an address cannot be called back: answer it, but do not record it.
        if (sender.id != self_id && !sender.address.empty()) {
          // A peer listening on 0.0.0.0 cannot know its own LAN address; the IP it called
          // from is the best one we have.
          sender.address = FillWildcardHost(sender.address, HostFromGrpcPeer(context->peer()));
          spdlog::debug("Ping from peer {} at {} ({})", sender.id, sender.address, context->peer());
          membership_->ObserveDirect(sender);
        }
      }
      for (const v1::PeerInfo& known : request->known()) {
        cluster::PeerInfo info = FromProto(known);
        if (info.id == self_id || info.address.empty()) continue;
        membership_->ObserveIndirect(info);
      }
      store::StoreStats stats = store_->Stats();
      membership_->UpdateSelf(stats.quota, stats.used);
      ToProto(membership_->Self(), response->mutable_self());
      for (const cluster::PeerView& view : membership_->Peers()) {
        if (view.self || view.info.id == self_id) continue;
        ToProto(view.info, response->add_known());
      }
      return absl::OkStatus();
    });
  }

  grpc::Status PutBlob(grpc::ServerContext* context, const v1::PutBlobRequest* request,
                       v1::PutBlobResponse* response) override {
    return Guard("PutBlob", context, [&]() -> absl::Status {
      CAIRN_ASSIGN_OR_RETURN(BlobKey key, FromProto(request->key()));
      CAIRN_ASSIGN_OR_RETURN(codec::Checksum checksum, ChecksumFromProto(request->checksum()));
      const std::string& blob = request->blob();
      if (blob.empty()) return absl::InvalidArgumentError("empty blob");
      if (blob.size() > kMaxWireBlobSize) {
        return absl::InvalidArgumentError(
            absl::StrCat("blob of ", blob.size(), " bytes exceeds ", kMaxWireBlobSize));
      }
      auto outcome = store_->Put(key, AsBytes(blob), checksum);
      if (!outcome.ok()) {
        return Annotate(outcome.status(), absl::StrCat("put blob ", key.DebugString()));
      }
      spdlog::debug("PutBlob {} ({} bytes) from {}: {}", key.DebugString(), blob.size(),
                    context->peer(),
                    *outcome == store::PutOutcome::kStored ? "stored" : "already stored");
      response->set_outcome(ToProto(*outcome));
      store::StoreStats stats = store_->Stats();
      response->set_quota(stats.quota);
      response->set_used(stats.used);
      return absl::OkStatus();
    });
  }

  grpc::Status GetBlob(grpc::ServerContext* context, const v1::GetBlobRequest* request,
                       v1::GetBlobResponse* response) override {
    return Guard("GetBlob", context, [&]() -> absl::Status {
      CAIRN_ASSIGN_OR_RETURN(BlobKey key, FromProto(request->key()));
      auto blob = store_->Get(key);
      if (!blob.ok()) return Annotate(blob.status(), absl::StrCat("get blob ", key.DebugString()));
      // The store verified the bytes against its recorded checksum, so this equals it.
      response->set_checksum(ChecksumToProto(codec::BlobChecksum(*blob)));
      response->set_blob(reinterpret_cast<const char*>(blob->data()), blob->size());
      spdlog::debug("GetBlob {} ({} bytes) to {}", key.DebugString(), blob->size(),
                    context->peer());
      return absl::OkStatus();
    });
  }

  grpc::Status HasBlobs(grpc::ServerContext* context, const v1::HasBlobsRequest* request,
                        v1::HasBlobsResponse* response) override {
    return Guard("HasBlobs", context, [&]() -> absl::Status {
      CAIRN_ASSIGN_OR_RETURN(std::vector<BlobKey> keys, KeysFromProto(*request));
      response->mutable_present()->Reserve(static_cast<int>(keys.size()));
      for (const BlobKey& key : keys) {
        auto has = store_->Has(key);
        if (!has.ok()) return Annotate(has.status(), absl::StrCat("has blob ", key.DebugString()));
        response->add_present(*has);
      }
      spdlog::debug("HasBlobs ({} keys) from {}", keys.size(), context->peer());
      return absl::OkStatus();
    });
  }

 private:
  store::BlobStore* const store_;
  cluster::Membership* const membership_;
};

class GrpcPeerServer final : public PeerServer {
 public:
  GrpcPeerServer(std::unique_ptr<PeerService> service, std::unique_ptr<grpc::Server> server,
                 int port)
      : service_(std::move(service)), server_(std::move(server)), port_(port) {}

  ~GrpcPeerServer() override { Shutdown(std::chrono::milliseconds(2000)); }

  int port() const override { return port_; }

  void Shutdown(std::chrono::milliseconds grace) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
    spdlog::debug("peer server on port {} stopped", port_);
  }

 private:
  std::unique_ptr<PeerService> service_;  // must outlive server_
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  std::mutex mu_;
  bool stopped_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerServer>> PeerServer::Start(const std::string& listen_address,
                                                              store::BlobStore* store,
                                                              cluster::Membership* membership) {
  // gRPC silently truncates ports above 65535 (99999 binds 34463): check before it parses.
  size_t colon = listen_address.rfind(':');
  std::string port_text = colon == std::string::npos ? "" : listen_address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address, "\" is not host:port (port 0-65535)"));
  }
  try {
    auto service = std::make_unique<PeerService>(store, membership);
    grpc::ServerBuilder builder;
    int selected_port = 0;
    // Cluster authentication comes with the cluster key (design.md §8); insecure until then.
    builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &selected_port);
    builder.RegisterService(service.get());
    builder.SetMaxReceiveMessageSize(kMaxMessageSize);
    builder.SetMaxSendMessageSize(kMaxMessageSize);
    // gRPC sets SO_REUSEPORT by default, which would let two peers silently share a port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Accept the clients' keepalive pings (see peer_client.cc) instead of sending GOAWAY.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               static_cast<int>(kMinKeepaliveTime.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (server == nullptr || selected_port == 0) {
      if (server != nullptr) server->Shutdown();
      return absl::UnavailableError(absl::StrCat("peer service cannot listen on ", listen_address));
    }
    spdlog::debug("peer server listening on {} (port {})", listen_address, selected_port);
    return std::unique_ptr<PeerServer>(
        new GrpcPeerServer(std::move(service), std::move(server), selected_port));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("start peer service on ", listen_address, ": ", e.what()));
  }
}

}  // namespace cairn::net
