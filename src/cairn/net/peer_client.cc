#include "cairn/net/peer_client.h"

#include <grpcpp/generic/generic_stub.h>
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
#include "absl/synchronization/notification.h"
#include "cairn/base/status.h"
#include "cairn/cluster/tls_identity.h"
#include "cairn/codec/checksum.h"
#include "cairn/net/call_auth.h"
#include "cairn/net/convert.h"
#include "cairn/net/limits.h"
#include "cairn/net/put_blobs_wire.h"
#include "cairn/net/retrying_peer_client.h"
#include "cairn/net/status_map.h"
#include "cairn/net/tls.h"
#include "cairn/v1/peer.grpc.pb.h"

namespace cairn::net {
namespace {

constexpr char kPutBlobsMethod[] = "/cairn.v1.Peer/PutBlobs";

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  GrpcPeerClient(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
                 std::shared_ptr<TlsRefusals> refusals)
      : stub_(v1::Peer::NewStub(channel)),
        generic_stub_(channel),
        options_(options),
        refusals_(std::move(refusals)) {}

  // A call that failed because this client refused the server's certificate says so
  // (PERMISSION_DENIED with the refusal's message, which RetryingPeerClient does not retry);
  // gRPC itself only reports UNAVAILABLE.
  absl::Status Explained(absl::Status status) const {
    if (status.ok() || refusals_ == nullptr || !absl::IsUnavailable(status)) return status;
    std::optional<absl::Status> refusal = refusals_->Last();
    return refusal.has_value() ? *refusal : status;
  }

  // One authenticated unary call: signs the request, runs it, checks the reply MAC.
  // `server_cert` (when given) receives the fingerprint of the certificate the server
  // presented on this call's connection (nullopt without TLS).
  template <typename Request, typename Response, typename Rpc>
  absl::Status Call(const char* method, Rpc rpc, const Request& request, Response* response,
                    std::chrono::milliseconds deadline, cluster::NodeIdentity* callee = nullptr,
                    std::optional<std::string>* server_cert = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    const cluster::RpcAuth* auth = options_.auth.get();
    std::optional<cluster::CallNonce> nonce = SignCall(auth, method, request, context);
    grpc::Status status = (stub_.get()->*rpc)(&context, request, response);
    if (server_cert != nullptr && status.ok()) {
      *server_cert = PeerCertFingerprint(context.auth_context().get());
    }
    return Explained(CheckReply(auth, method, nonce, status, *response, context, callee));
  }

  // One authenticated unary call whose request is already serialized (`encoded`), through the
  // generic stub: the bytes go out as they are.
  template <typename Response>
  absl::Status CallEncoded(const char* method, const EncodedPutBlobs& encoded, Response* response,
                           std::chrono::milliseconds deadline) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    const cluster::RpcAuth* auth = options_.auth.get();
    std::optional<cluster::CallNonce> nonce = SignCall(auth, method, encoded.hash, context);
    grpc::Status status;
    absl::Notification done;
    generic_stub_.UnaryCall(&context, method, grpc::StubOptions(), &encoded.request, response,
                            [&](grpc::Status s) {
                              status = std::move(s);
                              done.Notify();
                            });
    done.WaitForNotification();
    return Explained(CheckReply(auth, method, nonce, status, *response, context, nullptr));
  }

  absl::StatusOr<PingReply> Ping(const cluster::PeerInfo& self,
                                 const std::vector<cluster::PeerInfo>& known) override {
    return Guard<PingReply>("ping", [&]() -> absl::StatusOr<PingReply> {
      v1::PingRequest request;
      ToProto(self, request.mutable_sender());
      for (const cluster::PeerInfo& info : known) ToProto(info, request.add_known());
      v1::PingResponse response;
      cluster::NodeIdentity callee;
      std::optional<std::string> server_cert;
      const int64_t sent_ms = WallMillis();
      absl::Status called = Call("/cairn.v1.Peer/Ping", &v1::Peer::Stub::Ping, request, &response,
                                 options_.ping_deadline, &callee, &server_cert);
      const int64_t received_ms = WallMillis();
      if (!called.ok()) {
        // Which member refused (its MAC verified), e.g. because of the clocks (docs/operations.md
        // "When a peer's clock is off").
        if (callee.peer_id != 0) cluster::SetSignedBy(&called, callee);
        return called;
      }
      PingReply reply;
      if (response.time_unix_ms() != 0) {
        reply.clock_offset_ms = response.time_unix_ms() - (sent_ms + (received_ms - sent_ms) / 2);
      }
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
      if (options_.tls != nullptr) {
        // The certificate that counts is the one the connection presented (the callee's own
        // claim is not needed): membership pins it on first contact (cluster/cert_pins.h).
        if (!server_cert.has_value()) {
          return absl::UnauthenticatedError("the Ping answer came without a TLS certificate");
        }
        reply.self.cert_fingerprint = *server_cert;
      }
      reply.known.reserve(response.known_size());
      for (const v1::PeerInfo& info : response.known()) reply.known.push_back(FromProto(info));
      return reply;
    });
  }

  using PeerClient::PutBlob;
  absl::StatusOr<ports::PutOutcome> PutBlob(const BlobKey& key, ByteSpan blob,
                                            const ports::PutOptions& options) override {
    return Guard<ports::PutOutcome>(
        absl::StrCat("put ", options.extra ? "extra " : "", "blob ", key.DebugString()),
        [&]() -> absl::StatusOr<ports::PutOutcome> {
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

  // docs/protocol.md "Batches". Blobs that PutBlob would refuse before sending (empty, larger
  // than a blob can be) are answered here and not sent.
  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> PutBlobs(
      std::span<const BlobPut> puts) override {
    using Answers = std::vector<absl::StatusOr<ports::PutOutcome>>;
    return Guard<Answers>(
        absl::StrCat("put blobs (", puts.size(), " blobs)"), [&]() -> absl::StatusOr<Answers> {
          CAIRN_RETURN_IF_ERROR(CheckPutBatch(puts));
          Answers answers(puts.size(), absl::InternalError("not answered"));
          std::vector<size_t> sent;  // the request's blob j is puts[sent[j]]
          std::vector<const BlobPut*> wire;
          for (size_t i = 0; i < puts.size(); ++i) {
            const BlobPut& put = puts[i];
            if (put.blob.empty() || put.blob.size() > kMaxWireBlobSize) {
              answers[i] = absl::InvalidArgumentError(absl::StrCat(
                  "put blob ", put.key.DebugString(), ": ",
                  put.blob.empty() ? std::string("empty blob")
                                   : absl::StrCat("blob of ", put.blob.size(), " bytes exceeds ",
                                                  kMaxWireBlobSize)));
              continue;
            }
            sent.push_back(i);
            wire.push_back(&put);
          }
          if (sent.empty()) return answers;
          // Serialized once, straight from the blobs (put_blobs_wire.h).
          EncodedPutBlobs encoded = EncodePutBlobs(wire);
          v1::PutBlobsResponse response;
          CAIRN_RETURN_IF_ERROR(
              CallEncoded(kPutBlobsMethod, encoded, &response, options_.blob_deadline));
          if (static_cast<size_t>(response.items_size()) != sent.size()) {
            return absl::InternalError(absl::StrCat("peer answered ", response.items_size(),
                                                    " items for ", sent.size(), " blobs"));
          }
          for (size_t j = 0; j < sent.size(); ++j) {
            const v1::PutBlobsResponse::Item& item = response.items(static_cast<int>(j));
            if (item.code() != 0) {
              answers[sent[j]] = ItemStatus(item.code(), item.message());
            } else {
              answers[sent[j]] = FromProto(item.outcome());
            }
          }
          return answers;
        });
  }

  absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> GetBlobs(
      std::span<const BlobKey> keys) override {
    std::vector<absl::StatusOr<Bytes>> answers;
    answers.reserve(keys.size());
    CAIRN_RETURN_IF_ERROR(GetBlobsStreamed(
        keys, [&](size_t, absl::StatusOr<Bytes> answer) { answers.push_back(std::move(answer)); }));
    return answers;
  }

  // One GetBlobs stream (docs/protocol.md "Batches"): every message's MAC is checked in its place
  // (sequence number), every blob against its checksum (DATA_LOSS for that key only), and the
  // trailer against the number of messages received.
  absl::Status GetBlobsStreamed(std::span<const BlobKey> keys, const BlobSink& on_blob) override {
    constexpr char kMethod[] = "/cairn.v1.Peer/GetBlobs";
    return Guard<std::monostate>(
               absl::StrCat("get blobs (", keys.size(), " keys)"),
               [&]() -> absl::StatusOr<std::monostate> {
                 if (keys.empty()) return std::monostate{};
                 if (keys.size() > kMaxBlobsPerBatch) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "at most ", kMaxBlobsPerBatch, " keys per GetBlobs, got ", keys.size()));
                 }
                 v1::GetBlobsRequest request;
                 request.mutable_keys()->Reserve(static_cast<int>(keys.size()));
                 for (const BlobKey& key : keys) ToProto(key, request.add_keys());
                 grpc::ClientContext context;
                 SetDeadline(context, options_.blob_deadline);
                 const cluster::RpcAuth* auth = options_.auth.get();
                 std::optional<StreamCall> call = SignStreamCall(auth, kMethod, request, context);
                 std::unique_ptr<grpc::ClientReader<v1::GetBlobsResponse>> reader =
                     stub_->GetBlobs(&context, request);
                 size_t next = 0;        // index of the next key to answer
                 uint64_t messages = 0;  // messages received and accepted
                 std::optional<cluster::NodeIdentity> signer;
                 absl::Status broken;  // the stream is not to be trusted past this
                 v1::GetBlobsResponse message;
                 while (reader->Read(&message)) {
                   broken = CheckMessage(auth, kMethod, call, messages, keys.size(), next, signer,
                                         message);
                   if (!broken.ok()) break;
                   for (const v1::GetBlobsResponse::Item& item : message.items()) {
                     on_blob(next, CheckedItem(keys[next], item));
                     ++next;
                   }
                   ++messages;
                 }
                 if (!broken.ok()) {
                   context.TryCancel();
                   (void)reader->Finish();
                   return broken;
                 }
                 const grpc::Status status = reader->Finish();
                 cluster::NodeIdentity end_signer;
                 CAIRN_RETURN_IF_ERROR(Explained(
                     CheckStreamEnd(auth, kMethod, call, status, messages, context, &end_signer)));
                 if (auth != nullptr && signer.has_value() && end_signer != *signer) {
                   return absl::UnauthenticatedError(
                       "the stream's end is signed by another peer than its messages");
                 }
                 if (next != keys.size()) {
                   return absl::InternalError(absl::StrCat(
                       "peer answered ", next, " of ", keys.size(), " keys and ended the stream"));
                 }
                 return std::monostate{};
               })
        .status();
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

  // Verifies what the storage peer sent (docs/architecture.md "Invariants and where they hold":
  // verification): a non-empty blob whose XXH3-128 matches the checksum it recorded. DATA_LOSS
  // otherwise.
  static absl::StatusOr<Bytes> CheckedBlob(const v1::GetBlobResponse& response) {
    return CheckedBlob(response.blob(), response.checksum());
  }
  static absl::StatusOr<Bytes> CheckedBlob(const std::string& bytes, const std::string& checksum) {
    if (bytes.empty()) return absl::DataLossError("peer sent an empty blob");
    auto sent = ChecksumFromProto(checksum);
    if (!sent.ok())
      return absl::DataLossError(absl::StrCat("bad checksum field: ", sent.status().message()));
    ByteSpan blob = AsBytes(bytes);
    if (codec::BlobChecksum(blob) != *sent) {
      return absl::DataLossError("blob checksum mismatch (corrupted in transfer)");
    }
    return Bytes(blob.begin(), blob.end());
  }

  // One answer of a GetBlobs stream: the blob (verified), or the peer's error for that key.
  static absl::StatusOr<Bytes> CheckedItem(const BlobKey& key,
                                           const v1::GetBlobsResponse::Item& item) {
    absl::StatusOr<Bytes> blob = item.code() != 0 ? ItemStatus(item.code(), item.message())
                                                  : CheckedBlob(item.blob(), item.checksum());
    if (blob.ok() || item.code() != 0) return blob;
    return Annotate(blob.status(), absl::StrCat("get blob ", key.DebugString()));
  }

  // A per-item status from the wire; a code this version does not know is UNKNOWN, and a
  // nonzero code never becomes OK.
  static absl::Status ItemStatus(uint32_t code, const std::string& message) {
    absl::Status status =
        FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(code <= 16 ? code : 2), message));
    return status.ok() ? absl::UnknownError(message) : status;
  }

  // Checks one GetBlobs message before its items are used: its MAC in place `sequence` (when
  // authenticating; every message by the same signer), and that it continues the answers at
  // key `next` without going past the last key.
  static absl::Status CheckMessage(const cluster::RpcAuth* auth, const char* method,
                                   const std::optional<StreamCall>& call, uint64_t sequence,
                                   size_t keys, size_t next,
                                   std::optional<cluster::NodeIdentity>& signer,
                                   v1::GetBlobsResponse& message) {
    if (auth != nullptr && call.has_value()) {
      const std::string mac = message.auth();
      message.clear_auth();
      CAIRN_ASSIGN_OR_RETURN(
          cluster::NodeIdentity who,
          net::CheckStreamMessage(*auth, method, *call, sequence, HashMessage(message), mac));
      if (signer.has_value() && who != *signer) {
        return absl::UnauthenticatedError("stream messages signed by different peers");
      }
      signer = who;
    }
    if (message.first() != next || message.items_size() == 0 ||
        static_cast<size_t>(message.items_size()) > keys - next) {
      return absl::InternalError(absl::StrCat("GetBlobs message ", sequence, " answers keys ",
                                              message.first(), "..+", message.items_size(), " of ",
                                              keys, " where key ", next, " was next"));
    }
    return absl::OkStatus();
  }

  // INVALID_ARGUMENT unless `puts` fits one PutBlobs (kMaxBlobsPerBatch, kMaxBatchBytes).
  static absl::Status CheckPutBatch(std::span<const BlobPut> puts) {
    if (puts.size() > kMaxBlobsPerBatch) {
      return absl::InvalidArgumentError(
          absl::StrCat("at most ", kMaxBlobsPerBatch, " blobs per PutBlobs, got ", puts.size()));
    }
    uint64_t total = 0;
    for (const BlobPut& put : puts) total += put.blob.size();
    if (puts.size() > 1 && total > kMaxBatchBytes) {
      return absl::InvalidArgumentError(absl::StrCat("PutBlobs of ", puts.size(), " blobs carries ",
                                                     total, " bytes, more than ", kMaxBatchBytes));
    }
    return absl::OkStatus();
  }

  std::unique_ptr<v1::Peer::Stub> stub_;
  grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::PutBlobsResponse> generic_stub_;
  const ClientOptions options_;
  const std::shared_ptr<TlsRefusals> refusals_;  // null without TLS
};

}  // namespace

std::shared_ptr<PeerClient> NewGrpcPeerClient(const std::string& address,
                                              const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageSize);
  args.SetMaxSendMessageSize(kMaxMessageSize);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // RetryingPeerClient retries
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(kKeepaliveTime.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(kKeepaliveTimeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // Reconnect soon after a peer comes back, so that our own retries can reach it: a channel
  // whose peer was down waits at most kMaxReconnectBackoff (plus gRPC's 20% jitter) before it
  // tries again, which a chunk fetch's retry budget outlasts (engine/backup.h FetchRetry).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // Not a backoff: gRPC's core reads it as the least time a connection attempt is given.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kConnectTimeout.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kMaxReconnectBackoff.count()));
  // TLS with this peer's certificate, the server's checked against its pin (net/tls.h); calls
  // are authenticated with the cluster key on top (options.auth; call_auth.h).
  std::shared_ptr<TlsRefusals> refusals;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.tls != nullptr) {
    // Every peer's certificate names kTlsServerName; nothing checks it (the fingerprint counts).
    args.SetSslTargetNameOverride(cluster::kTlsServerName);
    refusals = std::make_shared<TlsRefusals>();
    credentials = MakeChannelCredentials(*options.tls, address, refusals);
  }
  auto raw = std::make_shared<GrpcPeerClient>(grpc::CreateCustomChannel(address, credentials, args),
                                              options, std::move(refusals));
  return std::make_shared<RetryingPeerClient>(std::move(raw), options, address);
}

}  // namespace cairn::net
