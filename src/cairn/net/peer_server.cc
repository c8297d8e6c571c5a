#include "cairn/net/peer_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/codec/checksum.h"
#include "cairn/net/call_auth.h"
#include "cairn/net/convert.h"
#include "cairn/net/limits.h"
#include "cairn/net/status_map.h"
#include "cairn/net/tls.h"
#include "cairn/v1/peer.grpc.pb.h"

namespace cairn::net {
namespace {

constexpr char kPing[] = "/cairn.v1.Peer/Ping";
constexpr char kPutBlob[] = "/cairn.v1.Peer/PutBlob";
constexpr char kGetBlob[] = "/cairn.v1.Peer/GetBlob";
constexpr char kHasBlobs[] = "/cairn.v1.Peer/HasBlobs";
constexpr char kDeleteBlobs[] = "/cairn.v1.Peer/DeleteBlobs";
constexpr char kListBlobs[] = "/cairn.v1.Peer/ListBlobs";
constexpr char kBlobMoved[] = "/cairn.v1.Peer/BlobMoved";
constexpr char kPutBlobs[] = "/cairn.v1.Peer/PutBlobs";
constexpr char kGetBlobs[] = "/cairn.v1.Peer/GetBlobs";

// Blob bytes per GetBlobs message, at most (a larger blob goes alone). Each message is held
// about three times while it is sent (the blobs read, the message, its serialization), per
// stream: at 16 MiB a restore of 4 GB took storage peers to 115-121 MiB of RSS.
constexpr size_t kMaxGetBlobsMessageBytes = size_t{4} << 20;

absl::Status NotAMember() {
  return absl::UnauthenticatedError(
      "not authenticated as a cluster member (another cluster key, clocks more than 5 minutes "
      "apart, or a replayed or altered call)");
}

// Runs `fn`; any exception (protobuf, allocation, our bugs) becomes INTERNAL so that no request
// can take the process down (docs/architecture.md "Invariants and where they hold": bad input).
template <typename Fn>
absl::Status Catching(const char* rpc, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(rpc, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(rpc, ": unknown exception"));
  }
}

// Every method is served "streamed" (a unary call through a ServerUnaryStreamer, GetBlobs
// through a ServerSplitStreamer; the wire is unchanged): gRPC's plain sync handlers only run
// once the whole request message has been received, while these run on the call's metadata
// and read the message only after the caller's call mac verified (docs/security.md "What an
// unauthenticated client can do").
class PeerService final : public v1::Peer::StreamedService {
 public:
  PeerService(store::BlobStore* store, cluster::Membership* membership, PeerServerSecurity security)
      : store_(store), membership_(membership), security_(std::move(security)) {}

  grpc::Status StreamedPing(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::PingRequest, v1::PingResponse>* stream) override {
    return Serve(
        kPing, context, stream, /*self_id_allowed=*/true,
        [&](const cluster::NodeIdentity& caller, const v1::PingRequest* request,
            v1::PingResponse* response) -> absl::Status {
          const cluster::PeerInfo self = membership_->Self();
          if (caller.peer_id == self.id && caller.node_id != self.node_id) {
            return SelfIdConflict(
                request->has_sender() ? request->sender().incarnation() : UINT64_MAX, self);
          }
          if (request->has_sender()) {
            cluster::PeerInfo sender = FromProto(request->sender());
            if (sender.id != caller.peer_id) {
              return absl::InvalidArgumentError(
                  absl::StrCat("Ping sender is peer ", sender.id,
                               " but the call is authenticated as peer ", caller.peer_id));
            }
            sender.node_id = caller.node_id;
            // The certificate that counts is the one the connection presented (CheckCaller
            // pinned or checked it); a claim in the message is not taken.
            sender.cert_fingerprint.clear();
            if (security_.tls != nullptr) {
              sender.cert_fingerprint = ClientCert(*context).value_or(std::string());
            }
            // A sender without an address cannot be called back: answer it, but do not record it.
            if (sender.id != self.id && !sender.address.empty()) {
              // A peer listening on 0.0.0.0 cannot know its own LAN address; the IP it called from
              // is the best one we have.
              sender.address = FillWildcardHost(sender.address, HostFromGrpcPeer(context->peer()));
              spdlog::debug("Ping from peer {} at {} ({})", sender.id, sender.address,
                            context->peer());
              membership_->ObserveDirect(sender);
            }
          }
          for (const v1::PeerInfo& known : request->known()) {
            cluster::PeerInfo info = FromProto(known);
            if (info.id == self.id || info.address.empty()) continue;
            membership_->ObserveIndirect(info);
          }
          store::StoreStats stats = store_->Stats();
          membership_->UpdateSelf(stats.quota, stats.used, stats.extra_bytes,
                                  store::DiskRoom(stats));
          ToProto(membership_->Self(), response->mutable_self());
          for (const cluster::PeerView& view : membership_->Peers()) {
            if (view.self || view.info.id == self.id) continue;
            ToProto(view.info, response->add_known());
          }
          // Last, so that it is as close as possible to the answer's departure.
          response->set_time_unix_ms(membership_->clock()->NowNanos() / 1000000);
          return absl::OkStatus();
        });
  }

  grpc::Status StreamedPutBlob(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::PutBlobRequest, v1::PutBlobResponse>* stream) override {
    return Serve(
        kPutBlob, context, stream, false,
        [&](const cluster::NodeIdentity&, const v1::PutBlobRequest* request,
            v1::PutBlobResponse* response) -> absl::Status {
          CAIRN_ASSIGN_OR_RETURN(BlobKey key, FromProto(request->key()));
          CAIRN_ASSIGN_OR_RETURN(codec::Checksum checksum, ChecksumFromProto(request->checksum()));
          const std::string& blob = request->blob();
          if (blob.empty()) return absl::InvalidArgumentError("empty blob");
          if (blob.size() > kMaxWireBlobSize) {
            return absl::InvalidArgumentError(
                absl::StrCat("blob of ", blob.size(), " bytes exceeds ", kMaxWireBlobSize));
          }
          store::PutOptions options;
          options.extra = request->extra();
          auto outcome = store_->Put(key, AsBytes(blob), checksum, options);
          if (!outcome.ok()) {
            return Annotate(outcome.status(), absl::StrCat("put ", options.extra ? "extra " : "",
                                                           "blob ", key.DebugString()));
          }
          spdlog::debug("PutBlob {} ({} bytes{}) from {}: {}", key.DebugString(), blob.size(),
                        options.extra ? ", extra" : "", context->peer(),
                        *outcome == store::PutOutcome::kStored ? "stored" : "already stored");
          response->set_outcome(ToProto(*outcome));
          store::StoreStats stats = store_->Stats();
          response->set_quota(stats.quota);
          response->set_used(stats.used);
          return absl::OkStatus();
        });
  }

  grpc::Status StreamedGetBlob(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::GetBlobRequest, v1::GetBlobResponse>* stream) override {
    return Serve(kGetBlob, context, stream, false,
                 [&](const cluster::NodeIdentity&, const v1::GetBlobRequest* request,
                     v1::GetBlobResponse* response) -> absl::Status {
                   CAIRN_ASSIGN_OR_RETURN(BlobKey key, FromProto(request->key()));
                   auto blob = store_->Get(key);
                   if (!blob.ok())
                     return Annotate(blob.status(), absl::StrCat("get blob ", key.DebugString()));
                   // The store verified the bytes against its recorded checksum, so this equals it.
                   response->set_checksum(ChecksumToProto(codec::BlobChecksum(*blob)));
                   response->set_blob(reinterpret_cast<const char*>(blob->data()), blob->size());
                   spdlog::debug("GetBlob {} ({} bytes) to {}", key.DebugString(), blob->size(),
                                 context->peer());
                   return absl::OkStatus();
                 });
  }

  grpc::Status StreamedHasBlobs(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::HasBlobsRequest, v1::HasBlobsResponse>* stream) override {
    return Serve(kHasBlobs, context, stream, false,
                 [&](const cluster::NodeIdentity&, const v1::HasBlobsRequest* request,
                     v1::HasBlobsResponse* response) -> absl::Status {
                   CAIRN_ASSIGN_OR_RETURN(std::vector<BlobKey> keys, KeysFromProto(*request));
                   response->mutable_present()->Reserve(static_cast<int>(keys.size()));
                   for (const BlobKey& key : keys) {
                     auto has = store_->Has(key);
                     if (!has.ok())
                       return Annotate(has.status(), absl::StrCat("has blob ", key.DebugString()));
                     response->add_present(*has);
                   }
                   spdlog::debug("HasBlobs ({} keys) from {}", keys.size(), context->peer());
                   return absl::OkStatus();
                 });
  }

  // A peer deletes a blob it holds for another owner only on that owner's authenticated request
  // (docs/architecture.md "Invariants and where they hold"). The whole request is checked before
  // anything is deleted.
  grpc::Status StreamedDeleteBlobs(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::DeleteBlobsRequest, v1::DeleteBlobsResponse>* stream) override {
    return Serve(
        kDeleteBlobs, context, stream, false,
        [&](const cluster::NodeIdentity& caller, const v1::DeleteBlobsRequest* request,
            v1::DeleteBlobsResponse* response) -> absl::Status {
          CAIRN_ASSIGN_OR_RETURN(std::vector<BlobKey> keys, KeysFromProto(*request));
          for (const BlobKey& key : keys) {
            if (key.owner != caller.peer_id) {
              return absl::PermissionDeniedError(
                  absl::StrCat("peer ", caller.peer_id, " may not delete blob ", key.DebugString(),
                               " of owner ", key.owner, "; nothing was deleted"));
            }
          }
          uint64_t deleted = 0;
          for (const BlobKey& key : keys) {
            auto has = store_->Has(key);
            if (!has.ok()) {
              return Annotate(has.status(), absl::StrCat("delete blob ", key.DebugString()));
            }
            CAIRN_RETURN_IF_ERROR(
                Annotate(store_->Delete(key), absl::StrCat("delete blob ", key.DebugString())));
            if (*has) ++deleted;
          }
          spdlog::debug("DeleteBlobs ({} keys, {} held) from peer {}", keys.size(), deleted,
                        caller.peer_id);
          response->set_deleted(deleted);
          return absl::OkStatus();
        });
  }

  grpc::Status StreamedListBlobs(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::ListBlobsRequest, v1::ListBlobsResponse>* stream) override {
    return Serve(kListBlobs, context, stream, false,
                 [&](const cluster::NodeIdentity& caller, const v1::ListBlobsRequest* request,
                     v1::ListBlobsResponse* response) -> absl::Status {
                   CAIRN_ASSIGN_OR_RETURN(ListBlobsArgs args, FromProto(*request));
                   if (args.owner != caller.peer_id) {
                     return absl::PermissionDeniedError(absl::StrCat(
                         "peer ", caller.peer_id, " may not list the blobs of owner ", args.owner));
                   }
                   // One more than asked tells whether another page follows.
                   CAIRN_ASSIGN_OR_RETURN(
                       std::vector<store::BlobRecord> records,
                       Annotate(store_->ListOwner(args.owner, args.after, args.limit + 1),
                                absl::StrCat("list blobs of owner ", args.owner)));
                   const bool more = records.size() > args.limit;
                   if (more) records.resize(args.limit);
                   response->mutable_blobs()->Reserve(static_cast<int>(records.size()));
                   for (const store::BlobRecord& r : records) ToProto(r, response->add_blobs());
                   response->set_more(more);
                   spdlog::debug("ListBlobs ({} blobs{}) to peer {}", records.size(),
                                 more ? ", more" : "", caller.peer_id);
                   return absl::OkStatus();
                 });
  }

  grpc::Status StreamedBlobMoved(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::BlobMovedRequest, v1::BlobMovedResponse>* stream) override {
    return Serve(kBlobMoved, context, stream, false,
                 [&](const cluster::NodeIdentity& caller, const v1::BlobMovedRequest* request,
                     v1::BlobMovedResponse*) -> absl::Status {
                   CAIRN_ASSIGN_OR_RETURN(std::vector<MovedBlob> moves, MovesFromProto(*request));
                   const PeerId self = membership_->self().id;
                   for (const MovedBlob& move : moves) {
                     if (move.key.owner != self) {
                       return absl::InvalidArgumentError(
                           absl::StrCat("BlobMoved names blob ", move.key.DebugString(),
                                        ", which is not of this peer (", self, ")"));
                     }
                   }
                   if (!security_.on_blobs_moved) {
                     return absl::UnimplementedError("this peer does not accept BlobMoved");
                   }
                   spdlog::debug("BlobMoved ({} blobs) from peer {}", moves.size(), caller.peer_id);
                   return security_.on_blobs_moved(caller.peer_id, moves);
                 });
  }

  // PutBlob for many blobs (docs/protocol.md "Batches"): every blob is checked on its own
  // (a bad one is answered with its error and does not fail the others) and the valid ones go
  // to the store in one PutBatch, which a group-committing store makes durable at once.
  grpc::Status StreamedPutBlobs(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::PutBlobsRequest, v1::PutBlobsResponse>* stream) override {
    return Serve(
        kPutBlobs, context, stream, false,
        [&](const cluster::NodeIdentity& caller, const v1::PutBlobsRequest* request,
            v1::PutBlobsResponse* response) -> absl::Status {
          const int count = request->blobs_size();
          if (static_cast<size_t>(count) > kMaxBlobsPerBatch) {
            return absl::InvalidArgumentError(
                absl::StrCat("at most ", kMaxBlobsPerBatch, " blobs per PutBlobs, got ", count));
          }
          uint64_t total = 0;
          for (const v1::PutBlobRequest& put : request->blobs()) total += put.blob().size();
          if (count > 1 && total > kMaxBatchBytes) {
            return absl::InvalidArgumentError(
                absl::StrCat("PutBlobs of ", count, " blobs carries ", total, " bytes, more than ",
                             kMaxBatchBytes, " (send them in several batches)"));
          }
          std::vector<absl::Status> answers(count);
          std::vector<store::PutItem> items;
          std::vector<int> index;  // items[j] is blob index[j] of the request
          items.reserve(count);
          index.reserve(count);
          for (int i = 0; i < count; ++i) {
            absl::StatusOr<store::PutItem> item = CheckedPut(request->blobs(i));
            if (item.ok()) {
              items.push_back(*item);
              index.push_back(i);
            } else {
              answers[i] = item.status();
            }
          }
          std::vector<absl::StatusOr<store::PutOutcome>> outcomes;
          if (!items.empty()) outcomes = store_->PutBatch(items);
          if (outcomes.size() != items.size()) {
            return absl::InternalError(
                absl::StrCat("the store answered ", outcomes.size(), " puts of ", items.size()));
          }
          response->mutable_items()->Reserve(count);
          for (int i = 0; i < count; ++i) response->add_items();
          size_t stored = 0;
          size_t failed = 0;
          for (size_t j = 0; j < items.size(); ++j) {
            v1::PutBlobsResponse::Item* out = response->mutable_items(index[j]);
            if (outcomes[j].ok()) {
              out->set_outcome(ToProto(*outcomes[j]));
              if (*outcomes[j] == store::PutOutcome::kStored) ++stored;
            } else {
              answers[index[j]] = outcomes[j].status();
            }
          }
          for (int i = 0; i < count; ++i) {
            if (answers[i].ok()) continue;
            ++failed;
            const absl::Status status =
                Annotate(answers[i], absl::StrCat("put ", request->blobs(i).extra() ? "extra " : "",
                                                  "blob ", KeyText(request->blobs(i).key())));
            response->mutable_items(i)->set_code(static_cast<uint32_t>(status.code()));
            response->mutable_items(i)->set_message(std::string(status.message()));
          }
          store::StoreStats stats = store_->Stats();
          response->set_quota(stats.quota);
          response->set_used(stats.used);
          spdlog::debug("PutBlobs ({} blobs, {} bytes: {} stored, {} failed) from peer {} ({})",
                        count, total, stored, failed, caller.peer_id, context->peer());
          return absl::OkStatus();
        });
  }

  // GetBlob for many keys: the answers stream back in the request's order, at most
  // kMaxGetBlobsMessageBytes of blob bytes per message (one larger blob goes alone), so that
  // neither side holds more than about one message per stream (docs/protocol.md "Batches").
  grpc::Status StreamedGetBlobs(
      grpc::ServerContext* context,
      grpc::ServerSplitStreamer<v1::GetBlobsRequest, v1::GetBlobsResponse>* stream) override {
    return ServeStream(
        kGetBlobs, context, stream,
        [&](const cluster::NodeIdentity& caller, const v1::GetBlobsRequest* request,
            auto& send) -> absl::Status {
          CAIRN_ASSIGN_OR_RETURN(std::vector<BlobKey> keys, KeysFromProto(*request));
          v1::GetBlobsResponse message;
          size_t message_bytes = 0;
          uint32_t next = 0;  // index of the first key not yet sent
          size_t found = 0;
          uint64_t bytes = 0;
          auto flush = [&]() -> absl::Status {
            message.set_first(next);
            CAIRN_RETURN_IF_ERROR(send(message));
            next += static_cast<uint32_t>(message.items_size());
            message.Clear();
            message_bytes = 0;
            return absl::OkStatus();
          };
          CAIRN_RETURN_IF_ERROR(
              store_->GetEach(keys, [&](size_t k, absl::StatusOr<Bytes> blob) -> absl::Status {
                const BlobKey& key = keys[k];
                // IsCancelled runs an operation through gRPC's call combiner (14% of a storage
                // peer's CPU in a restore when asked per key): ask every 64 keys; a caller gone
                // also fails the next message's Write.
                if (k % 64 == 63 && context->IsCancelled()) {
                  return absl::CancelledError("the caller cancelled");
                }
                const size_t size = blob.ok() ? blob->size() : 0;
                if (message.items_size() > 0 && message_bytes + size > kMaxGetBlobsMessageBytes) {
                  CAIRN_RETURN_IF_ERROR(flush());
                }
                v1::GetBlobsResponse::Item* item = message.add_items();
                if (blob.ok()) {
                  // The store verified the bytes against its recorded checksum, so this equals it.
                  item->set_checksum(ChecksumToProto(codec::BlobChecksum(*blob)));
                  item->set_blob(reinterpret_cast<const char*>(blob->data()), blob->size());
                  message_bytes += size;
                  bytes += size;
                  ++found;
                } else {
                  const absl::Status status =
                      Annotate(blob.status(), absl::StrCat("get blob ", key.DebugString()));
                  item->set_code(static_cast<uint32_t>(status.code()));
                  item->set_message(std::string(status.message()));
                }
                return absl::OkStatus();
              }));
          if (message.items_size() > 0) CAIRN_RETURN_IF_ERROR(flush());
          spdlog::debug("GetBlobs ({} keys, {} found, {} bytes) to peer {} ({})", keys.size(),
                        found, bytes, caller.peer_id, context->peer());
          return absl::OkStatus();
        });
  }

 private:
  // The checks PutBlob makes, for one blob of a PutBlobs (store::ValidateBlobForKey: checksum,
  // envelope, key). INVALID_ARGUMENT / DATA_LOSS otherwise.
  static absl::StatusOr<store::PutItem> CheckedPut(const v1::PutBlobRequest& put) {
    store::PutItem item;
    CAIRN_ASSIGN_OR_RETURN(item.key, FromProto(put.key()));
    CAIRN_ASSIGN_OR_RETURN(item.checksum, ChecksumFromProto(put.checksum()));
    const std::string& blob = put.blob();
    if (blob.empty()) return absl::InvalidArgumentError("empty blob");
    if (blob.size() > kMaxWireBlobSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("blob of ", blob.size(), " bytes exceeds ", kMaxWireBlobSize));
    }
    item.blob = AsBytes(blob);
    item.options.extra = put.extra();
    CAIRN_RETURN_IF_ERROR(store::ValidateBlobForKey(item.key, item.blob, item.checksum));
    return item;
  }

  // A key as logged: its DebugString when well-formed.
  static std::string KeyText(const v1::BlobKey& key) {
    auto parsed = FromProto(key);
    return parsed.ok() ? parsed->DebugString() : "(malformed key)";
  }

  // Every unary handler runs inside Serve: check the call's metadata before its message is
  // read (nothing else happens for a caller that is not a cluster member, and its body is never
  // taken in), read the message and check its body mac, check the caller's node id pin, run
  // `fn(caller, &request, &response)`, sign the answer.
  template <typename Request, typename Response, typename Fn>
  grpc::Status Serve(const char* method, grpc::ServerContext* context,
                     grpc::ServerUnaryStreamer<Request, Response>* stream, bool self_id_allowed,
                     Fn&& fn) {
    return Timed(method, [&] { return ServeUnary(method, context, stream, self_id_allowed, fn); });
  }

  // Runs `serve` and reports its outcome and duration to security_.on_call (metrics).
  template <typename ServeFn>
  grpc::Status Timed(const char* method, ServeFn&& serve) {
    if (!security_.on_call) return serve();
    const auto start = std::chrono::steady_clock::now();
    grpc::Status out = serve();
    security_.on_call(method, static_cast<int>(out.error_code()),
                      std::chrono::steady_clock::now() - start);
    return out;
  }

  template <typename Request, typename Response, typename Fn>
  grpc::Status ServeUnary(const char* method, grpc::ServerContext* context,
                          grpc::ServerUnaryStreamer<Request, Response>* stream,
                          bool self_id_allowed, Fn& fn) {
    grpc::Status refusal;
    std::optional<cluster::VerifiedRequest> call =
        PreAuthenticate(method, context, &refusal, [&](const cluster::VerifiedRequest& skewed) {
          SignReply(security_.auth.get(), method, skewed.nonce, refusal, Response(), *context);
        });
    if (!call.has_value()) return refusal;
    Request request;
    Response response;
    absl::Status status = ReadRequest(method, context, stream, request);
    if (absl::IsUnauthenticated(status)) return ToGrpcStatus(NotAMember());
    if (status.ok()) status = CheckCaller(call->caller, self_id_allowed, *context);
    if (status.ok())
      status = Catching(method, [&] { return fn(call->caller, &request, &response); });
    if (!status.ok()) {
      spdlog::debug("{} from peer {} ({}) failed: {}", method, call->caller.peer_id,
                    context->peer(), status.ToString());
      response.Clear();
    }
    grpc::Status out = ToGrpcStatus(status);
    absl::Status signed_reply = Catching(method, [&] {
      SignReply(security_.auth.get(), method, call->nonce, out, response, *context);
      return absl::OkStatus();
    });
    if (!signed_reply.ok()) return ToGrpcStatus(signed_reply);
    if (out.ok()) stream->Write(response);  // false: the caller went away; nothing to do
    return out;
  }

  // Serve for a call answered by a stream (docs/protocol.md "Batches"): `fn(caller, &request,
  // send)` calls `send(message)` for each message, which signs it in its place in the stream
  // and writes it; the trailer's MAC counts the messages sent.
  template <typename Request, typename Message, typename Fn>
  grpc::Status ServeStream(const char* method, grpc::ServerContext* context,
                           grpc::ServerSplitStreamer<Request, Message>* stream, Fn&& fn) {
    return Timed(method, [&] { return ServeStreamed(method, context, stream, fn); });
  }

  template <typename Request, typename Message, typename Fn>
  grpc::Status ServeStreamed(const char* method, grpc::ServerContext* context,
                             grpc::ServerSplitStreamer<Request, Message>* stream, Fn& fn) {
    grpc::Status refusal;
    std::optional<cluster::Digest> request_mac;
    if (absl::StatusOr<cluster::Digest> mac = RequestMacOf(*context); mac.ok()) request_mac = *mac;
    std::optional<cluster::VerifiedRequest> call =
        PreAuthenticate(method, context, &refusal, [&](const cluster::VerifiedRequest& skewed) {
          if (request_mac.has_value()) {
            SignStreamEnd(security_.auth.get(), method, skewed.nonce, *request_mac, refusal, 0,
                          *context);
          }
        });
    if (!call.has_value()) return refusal;
    if (!request_mac.has_value()) return ToGrpcStatus(NotAMember());
    Request request;
    absl::Status status = ReadRequest(method, context, stream, request);
    if (absl::IsUnauthenticated(status)) return ToGrpcStatus(NotAMember());
    uint64_t sent = 0;
    auto send = [&](Message& message) -> absl::Status {
      message.clear_auth();
      message.set_auth(SignStreamMessage(*security_.auth, method, call->nonce, *request_mac, sent,
                                         HashMessage(message)));
      if (!stream->Write(message)) {
        return absl::CancelledError("the caller went away during the stream");
      }
      ++sent;
      return absl::OkStatus();
    };
    if (status.ok()) status = CheckCaller(call->caller, /*self_id_allowed=*/false, *context);
    if (status.ok()) status = Catching(method, [&] { return fn(call->caller, &request, send); });
    if (!status.ok()) {
      spdlog::debug("{} from peer {} ({}) failed after {} messages: {}", method,
                    call->caller.peer_id, context->peer(), sent, status.ToString());
    }
    grpc::Status out = ToGrpcStatus(status);
    absl::Status signed_reply = Catching(method, [&] {
      SignStreamEnd(security_.auth.get(), method, call->nonce, *request_mac, out, sent, *context);
      return absl::OkStatus();
    });
    if (!signed_reply.ok()) return ToGrpcStatus(signed_reply);
    return out;
  }

  // Checks the call's x-cairn-auth header before its message is read (call mac, time, nonce).
  // nullopt (with *refusal) when the caller is not a cluster member, or is one whose clock is
  // off: then `sign_skew(caller)` signs *refusal, so that the member can trust what it is told
  // (docs/protocol.md "Authentication").
  template <typename SignSkew>
  std::optional<cluster::VerifiedRequest> PreAuthenticate(const char* method,
                                                          grpc::ServerContext* context,
                                                          grpc::Status* refusal,
                                                          SignSkew&& sign_skew) {
    absl::StatusOr<cluster::VerifiedRequest> call;
    cluster::VerifiedRequest skewed;
    absl::Status verified = Catching(method, [&]() -> absl::Status {
      call = PreVerifyCall(security_.auth.get(), method, *context, &skewed);
      return call.status();
    });
    if (verified.ok()) return *std::move(call);
    if (skewed.caller.peer_id != 0) {
      ReportSkew(skewed.caller.peer_id, std::string(verified.message()));
      *refusal = ToGrpcStatus(verified);
      Catching(method, [&] {
        sign_skew(skewed);
        return absl::OkStatus();
      }).IgnoreError();
      return std::nullopt;
    }
    spdlog::debug("{} from {} refused: {}", method, context->peer(), verified.ToString());
    // The caller learns no more than that it is not a member (not even this peer's clock).
    *refusal = ToGrpcStatus(absl::IsUnauthenticated(verified) ? NotAMember() : verified);
    return std::nullopt;
  }

  // Reads the request message of a pre-authenticated call and checks its body mac.
  // UNAUTHENTICATED when the body is not the one signed; INVALID_ARGUMENT when no message
  // could be read (not protobuf, or the caller went away).
  template <typename Stream, typename Request>
  absl::Status ReadRequest(const char* method, grpc::ServerContext* context, Stream* stream,
                           Request& request) {
    return Catching(method, [&]() -> absl::Status {
      if (!stream->Read(&request)) {
        return absl::InvalidArgumentError("no request message could be read");
      }
      absl::Status body = VerifyCallBody(*security_.auth, method, request, *context);
      if (!body.ok())
        spdlog::debug("{} from {} refused: {}", method, context->peer(), body.ToString());
      return body;
    });
  }

  // A member whose clock is more than the accepted window off: its calls are refused; say so
  // in the log, once a minute per peer (docs/operations.md "Clocks").
  void ReportSkew(PeerId caller, const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(skew_mu_);
      auto [it, fresh] = skew_logged_.try_emplace(caller, now);
      if (!fresh && now - it->second < std::chrono::minutes(1)) return;
      it->second = now;
    }
    spdlog::warn("refusing the calls of peer {}: {}", caller, why);
  }

  // The caller's peer id must be pinned to the node id it authenticated with, and (with TLS)
  // to the certificate its connection presented.
  absl::Status CheckCaller(const cluster::NodeIdentity& caller, bool self_id_allowed,
                           const grpc::ServerContext& context) {
    const cluster::PeerInfo& self = membership_->self();
    if (caller.peer_id == self.id) {
      if (caller.node_id == self.node_id || self_id_allowed) return absl::OkStatus();
      return absl::AlreadyExistsError(
          absl::StrCat("peer id ", caller.peer_id, " belongs to another node (this one)"));
    }
    cluster::NodePins* pins = membership_->pins();
    absl::Status pinned =
        pins == nullptr ? absl::OkStatus() : pins->Check(caller.peer_id, caller.node_id);
    if (pinned.ok() && security_.tls != nullptr) {
      std::optional<std::string> cert = ClientCert(context);
      cluster::CertPins* cert_pins = membership_->cert_pins();
      if (!cert.has_value()) {
        pinned = absl::PermissionDeniedError(absl::StrCat(
            "peer id ", caller.peer_id, " connected without a TLS client certificate"));
      } else if (cert_pins != nullptr) {
        pinned = cert_pins->Check(caller.peer_id, *cert);
      }
    }
    if (!pinned.ok()) {
      spdlog::warn("refused a call from {}: {}", caller.peer_id, std::string(pinned.message()));
    }
    return pinned;
  }

  // The fingerprint of the certificate the client presented; nullopt without one (or TLS).
  static std::optional<std::string> ClientCert(const grpc::ServerContext& context) {
    return PeerCertFingerprint(context.auth_context().get());
  }

  // Another node calls with this peer's own id. The process that started first keeps the id:
  // a newer caller is refused; if the caller is older, this process is the newcomer.
  absl::Status SelfIdConflict(uint64_t caller_incarnation, const cluster::PeerInfo& self) {
    if (caller_incarnation > self.incarnation) {
      return absl::AlreadyExistsError(absl::StrCat("peer id ", self.id,
                                                   " belongs to another node (", self.address,
                                                   "), running since before the caller started"));
    }
    absl::Status conflict = absl::AlreadyExistsError(
        absl::StrCat("peer id ", self.id,
                     " belongs to another node: a peer with this id was "
                     "running before this process started; give this peer its own --peer-id"));
    spdlog::error("{}", std::string(conflict.message()));
    if (security_.on_conflict) security_.on_conflict(conflict);
    return absl::FailedPreconditionError(
        absl::StrCat("peer id ", self.id,
                     ": this process is the newer of two with this id and "
                     "gives way"));
  }

  store::BlobStore* const store_;
  cluster::Membership* const membership_;
  const PeerServerSecurity security_;
  std::mutex skew_mu_;
  std::map<PeerId, std::chrono::steady_clock::time_point> skew_logged_;  // last warning
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
                                                              cluster::Membership* membership,
                                                              PeerServerSecurity security) {
  if (security.auth == nullptr) {
    return absl::InvalidArgumentError("the peer service needs the cluster key (no RpcAuth)");
  }
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
    std::shared_ptr<const TlsOptions> tls = security.tls;
    auto service = std::make_unique<PeerService>(store, membership, std::move(security));
    grpc::ServerBuilder builder;
    int selected_port = 0;
    // TLS with this peer's certificate (net/tls.h); every call is authenticated with the
    // cluster key on top (PeerService::Serve), and blobs are end-to-end encrypted
    // (docs/security.md).
    std::shared_ptr<grpc::ServerCredentials> credentials =
        tls != nullptr ? MakeServerCredentials(*tls) : grpc::InsecureServerCredentials();
    builder.AddListeningPort(listen_address, credentials, &selected_port);
    builder.RegisterService(service.get());
    builder.SetMaxReceiveMessageSize(kMaxMessageSize);
    builder.SetMaxSendMessageSize(kMaxMessageSize);
    // The synchronous server starts a thread when a call takes its last idle poller and ends
    // one that finishes a call while 2 (the default maximum) are idle: under a backup's
    // concurrent PutBlobs that made a storage peer start and end ~480 threads (a backup of 73k
    // files). Up to kMaxIdlePollers idle threads stay instead.
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                                kMaxIdlePollers);
    // gRPC sets SO_REUSEPORT by default, which would let two peers silently share a port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Accept the clients' keepalive pings (see peer_client.cc) instead of sending GOAWAY.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               static_cast<int>(kMinKeepaliveTime.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    // Bounds on what a client, before it has authenticated anything, can hold
    // (docs/security.md "What an unauthenticated client can do").
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams);
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                               static_cast<int>(kServerHandshakeTimeout.count()));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               static_cast<int>(kMaxConnectionIdle.count()));
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
