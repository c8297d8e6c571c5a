#include "cairn/net/peer_client.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/codec/checksum.h"
#include "cairn/net/call_auth.h"
#include "cairn/net/convert.h"
#include "cairn/net/limits.h"
#include "cairn/net/retrying_peer_client.h"
#include "cairn/net/status_map.h"
#include "cairn/v1/peer.grpc.pb.h"

namespace cairn::net {
namespace {

// Runs a client call body; exceptions from protobuf/gRPC (e.g. allocation failures) become
// INTERNAL instead of escaping into the engine.
template <typename T, typename Fn>
absl::StatusOr<T> Guard(const std::string& what, Fn&& fn) {
  try {
    return Annotate(fn(), what);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": unknown exception"));
  }
}

// One gRPC channel to one peer; every call carries a deadline. No retries of its own (gRPC's
// built-in retries are off): RetryingPeerClient decides.
class GrpcPeerClient final : public PeerClient {
 public:
  GrpcPeerClient(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
      : stub_(v1::Peer::NewStub(channel)), options_(options) {}

  // One authenticated unary call: signs the request, runs it, checks the reply MAC.
  template <typename Request, typename Response, typename Rpc>
  absl::Status Call(const char* method, Rpc rpc, const Request& request, Response* response,
                    std::chrono::milliseconds deadline, cluster::NodeIdentity* callee = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    const cluster::RpcAuth* auth = options_.auth.get();
    std::optional<cluster::CallNonce> nonce = SignCall(auth, method, request, context);
    grpc::Status status = (stub_.get()->*rpc)(&context, request, response);
    return CheckReply(auth, method, nonce, status, *response, context, callee);
  }

  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                 const std::vector<cluster::PeerInfo>& known) override {
    return Guard<PingReply>("ping", [&]() -> absl::StatusOr<PingReply> {
      v1::PingRequest request;
      ToProto(self, request.mutable_sender());
      for (const cluster::PeerInfo& info : known) ToProto(info, request.add_known());
      v1::PingResponse response;
      cluster::NodeIdentity callee;
      CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/Ping", &v1::Peer::Stub::Ping, request, &response,
                                 options_.ping_deadline, &callee));
      PingReply reply;
      reply.self = FromProto(response.self());
      if (options_.auth != nullptr) {
        // The callee's info must be about the peer that signed the answer.
        if (reply.self.id != callee.peer_id) {
          return absl::InvalidArgumentError(absl::StrCat("Ping answer describes peer ",
                                                         reply.self.id, " but is signed by peer ",
                                                         callee.peer_id));
        }
        reply.self.node_id = callee.node_id;
      }
      reply.known.reserve(response.known_size());
      for (const v1::PeerInfo& info : response.known()) reply.known.push_back(FromProto(info));
      return reply;
    });
  }

  using PeerClient::PutBlob;
  absl::StatusOr<store::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const store::PutOptions& options) override {
    return Guard<store::PutOutcome>(
        absl::StrCat("put ", options.extra ? "extra " : "", "blob ", key.DebugString()),
        [&]() -> absl::StatusOr<store::PutOutcome> {
          // Checked here so that gRPC's own RESOURCE_EXHAUSTED (message too large) is never
          // mistaken for a full quota.
          if (blob.empty()) return absl::InvalidArgumentError("empty blob");
          if (blob.size() > kMaxWireBlobSize) {
            return absl::InvalidArgumentError(
                absl::StrCat("blob of ", blob.size(), " bytes exceeds ", kMaxWireBlobSize));
          }
          v1::PutBlobRequest request;
          ToProto(key, request.mutable_key());
          request.set_blob(reinterpret_cast<const char*>(blob.data()), blob.size());
          request.set_checksum(ChecksumToProto(codec::BlobChecksum(blob)));
          request.set_extra(options.extra);
          v1::PutBlobResponse response;
          CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/PutBlob", &v1::Peer::Stub::PutBlob, request,
                                     &response, options_.blob_deadline));
          return FromProto(response.outcome());
        });
  }

  absl::StatusOr<Bytes> GetBlob(const BlobKey& key) override {
    return Guard<Bytes>(
        absl::StrCat("get blob ", key.DebugString()), [&]() -> absl::StatusOr<Bytes> {
          v1::GetBlobRequest request;
          ToProto(key, request.mutable_key());
          v1::GetBlobResponse response;
          CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/GetBlob", &v1::Peer::Stub::GetBlob, request,
                                     &response, options_.blob_deadline));
          return CheckedBlob(response);
        });
  }

  absl::StatusOr<std::vector<bool>> HasBlobs(std::span<const BlobKey> keys) override {
    return Guard<std::vector<bool>>(
        absl::StrCat("has blobs (", keys.size(), " keys)"),
        [&]() -> absl::StatusOr<std::vector<bool>> {
          std::vector<bool> present;
          present.reserve(keys.size());
          // The protocol allows kMaxHasBlobsKeys keys per request; larger audits are batched.
          for (size_t start = 0; start < keys.size(); start += kMaxHasBlobsKeys) {
            size_t count = std::min(kMaxHasBlobsKeys, keys.size() - start);
            v1::HasBlobsRequest request;
            for (const BlobKey& key : keys.subspan(start, count)) {
              ToProto(key, request.add_keys());
            }
            v1::HasBlobsResponse response;
            CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/HasBlobs", &v1::Peer::Stub::HasBlobs,
                                       request, &response, options_.ping_deadline));
            if (static_cast<size_t>(response.present_size()) != count) {
              return absl::InternalError(absl::StrCat("peer answered ", response.present_size(),
                                                      " flags for ", count, " keys"));
            }
            present.insert(present.end(), response.present().begin(), response.present().end());
          }
          return present;
        });
  }

  absl::StatusOr<uint64_t> DeleteBlobs(std::span<const BlobKey> keys) override {
    return Guard<uint64_t>(
        absl::StrCat("delete blobs (", keys.size(), " keys)"), [&]() -> absl::StatusOr<uint64_t> {
          // Not batched: one call is all or nothing (PERMISSION_DENIED deletes nothing).
          if (keys.size() > kMaxKeysPerCall) {
            return absl::InvalidArgumentError(
                absl::StrCat("at most ", kMaxKeysPerCall, " keys per DeleteBlobs"));
          }
          v1::DeleteBlobsRequest request;
          for (const BlobKey& key : keys) ToProto(key, request.add_keys());
          v1::DeleteBlobsResponse response;
          CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/DeleteBlobs", &v1::Peer::Stub::DeleteBlobs,
                                     request, &response, options_.blob_deadline));
          return response.deleted();
        });
  }

  absl::StatusOr<BlobListPage> ListBlobs(PeerId owner, const std::optional<BlobKey>& after,
                                         size_t limit) override {
    return Guard<BlobListPage>(
        absl::StrCat("list blobs of owner ", owner), [&]() -> absl::StatusOr<BlobListPage> {
          if (limit < 1 || limit > kMaxKeysPerCall) {
            return absl::InvalidArgumentError(
                absl::StrCat("ListBlobs limit must be 1..", kMaxKeysPerCall, ", got ", limit));
          }
          v1::ListBlobsRequest request;
          ToProto(ListBlobsArgs{owner, after, limit}, &request);
          v1::ListBlobsResponse response;
          CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/ListBlobs", &v1::Peer::Stub::ListBlobs,
                                     request, &response, options_.blob_deadline));
          return PageFromProto(response, owner, limit);
        });
  }

  absl::Status BlobMoved(std::span<const MovedBlob> moves) override {
    return Guard<std::monostate>(
               absl::StrCat("blob moved (", moves.size(), " blobs)"),
               [&]() -> absl::StatusOr<std::monostate> {
                 if (moves.size() > kMaxKeysPerCall) {
                   return absl::InvalidArgumentError(
                       absl::StrCat("at most ", kMaxKeysPerCall, " moves per BlobMoved"));
                 }
                 v1::BlobMovedRequest request;
                 ToProto(moves, &request);
                 v1::BlobMovedResponse response;
                 CAIRN_RETURN_IF_ERROR(Call("/cairn.v1.Peer/BlobMoved", &v1::Peer::Stub::BlobMoved,
                                            request, &response, options_.blob_deadline));
                 return std::monostate{};
               })
        .status();
  }

 private:
  static void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds deadline) {
    context.set_deadline(std::chrono::system_clock::now() + deadline);
  }

  // Verifies what the storage peer sent (design.md §11.5): a non-empty blob whose XXH3-128
  // matches the checksum it recorded. DATA_LOSS otherwise.
  static absl::StatusOr<Bytes> CheckedBlob(const v1::GetBlobResponse& response) {
    if (response.blob().empty()) return absl::DataLossError("peer sent an empty blob");
    auto sent = ChecksumFromProto(response.checksum());
    if (!sent.ok())
      return absl::DataLossError(absl::StrCat("bad checksum field: ", sent.status().message()));
    ByteSpan blob = AsBytes(response.blob());
    if (codec::BlobChecksum(blob) != *sent) {
      return absl::DataLossError("blob checksum mismatch (corrupted in transfer)");
    }
    return Bytes(blob.begin(), blob.end());
  }

  std::unique_ptr<v1::Peer::Stub> stub_;
  const ClientOptions options_;
};

std::mt19937_64& ThreadRng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace

RetryingPeerClient::RetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                       const ClientOptions& options, std::string label,
                                       SleepFn sleep)
    : inner_(std::move(inner)),
      options_(options),
      label_(std::move(label)),
      sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

bool RetryingPeerClient::IsRetryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

std::chrono::milliseconds RetryingPeerClient::BackoffCap(const ClientOptions& options, int retry) {
  const int64_t initial = std::max<int64_t>(0, options.initial_backoff.count());
  const int64_t max = std::max<int64_t>(0, options.max_backoff.count());
  int64_t cap = initial;
  for (int i = 0; i < retry && cap < max; ++i) cap *= 2;  // no overflow: stops at max
  return std::chrono::milliseconds(std::min(cap, max));
}

std::chrono::milliseconds RetryingPeerClient::Jitter(std::chrono::milliseconds cap) {
  if (cap.count() <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<int64_t> dist(0, cap.count());
  return std::chrono::milliseconds(dist(ThreadRng()));
}

absl::Status RetryingPeerClient::Finish(const absl::Status& status, int attempts) const {
  std::string message(status.message());
  if (attempts > 1) absl::StrAppend(&message, " (gave up after ", attempts, " attempts)");
  if (!label_.empty()) message = absl::StrCat("peer ", label_, ": ", message);
  return absl::Status(status.code(), message);
}

template <typename T>
absl::StatusOr<T> RetryingPeerClient::Run(const std::function<absl::StatusOr<T>()>& call) {
  const int max_attempts = std::max(1, options_.max_attempts);
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<T> result = call();
    if (result.ok()) return result;
    if (!IsRetryable(result.status()) || attempt + 1 >= max_attempts) {
      return Finish(result.status(), attempt + 1);
    }
    std::chrono::milliseconds wait = Jitter(BackoffCap(options_, attempt));
    spdlog::debug("peer {}: attempt {} failed ({}); retrying in {} ms", label_, attempt + 1,
                  result.status().ToString(), wait.count());
    sleep_(wait);
  }
}

absl::StatusOr<PingReply> RetryingPeerClient::Ping(const cluster::PeerInfo& self,
                                                   const std::vector<cluster::PeerInfo>& known) {
  return Run<PingReply>([&] { return inner_->Ping(self, known); });
}

absl::StatusOr<store::PutOutcome> RetryingPeerClient::PutBlob(const BlobKey& key, ByteSpan blob,
                                                              const store::PutOptions& options) {
  return Run<store::PutOutcome>([&] { return inner_->PutBlob(key, blob, options); });
}

absl::StatusOr<Bytes> RetryingPeerClient::GetBlob(const BlobKey& key) {
  return Run<Bytes>([&] { return inner_->GetBlob(key); });
}

absl::StatusOr<std::vector<bool>> RetryingPeerClient::HasBlobs(std::span<const BlobKey> keys) {
  return Run<std::vector<bool>>([&] { return inner_->HasBlobs(keys); });
}

absl::StatusOr<uint64_t> RetryingPeerClient::DeleteBlobs(std::span<const BlobKey> keys) {
  return Run<uint64_t>([&] { return inner_->DeleteBlobs(keys); });
}

absl::StatusOr<BlobListPage> RetryingPeerClient::ListBlobs(PeerId owner,
                                                           const std::optional<BlobKey>& after,
                                                           size_t limit) {
  return Run<BlobListPage>([&] { return inner_->ListBlobs(owner, after, limit); });
}

absl::Status RetryingPeerClient::BlobMoved(std::span<const MovedBlob> moves) {
  return Run<std::monostate>([&]() -> absl::StatusOr<std::monostate> {
           CAIRN_RETURN_IF_ERROR(inner_->BlobMoved(moves));
           return std::monostate{};
         })
      .status();
}

std::shared_ptr<PeerClient> NewGrpcPeerClient(const std::string& address,
                                              const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageSize);
  args.SetMaxSendMessageSize(kMaxMessageSize);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // RetryingPeerClient retries
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(kKeepaliveTime.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(kKeepaliveTimeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // Reconnect soon after a peer comes back, so that our own retries can reach it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::max<int64_t>(100, options.max_backoff.count())));
  // No TLS: calls are authenticated with the cluster key (options.auth; call_auth.h).
  auto raw = std::make_shared<GrpcPeerClient>(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args), options);
  return std::make_shared<RetryingPeerClient>(std::move(raw), options, address);
}

std::shared_ptr<PeerClient> NewRetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                                  const ClientOptions& options) {
  return std::make_shared<RetryingPeerClient>(std::move(inner), options, "");
}

}  // namespace cairn::net
