#include "cairn/net/call_auth.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/codec/crypto.h"
#include "cairn/net/status_map.h"

namespace cairn::net {
namespace {

// A ZeroCopyOutputStream that hashes what is written to it instead of keeping it.
class HashingOutputStream final : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  bool Next(void** data, int* size) override {
    Flush();
    *data = buffer_;
    *size = sizeof buffer_;
    pending_ = sizeof buffer_;
    count_ += pending_;
    return true;
  }
  void BackUp(int count) override {
    pending_ -= count;
    count_ -= count;
  }
  int64_t ByteCount() const override { return count_; }
  cluster::Digest Finish() {
    Flush();
    return hasher_.Finish();
  }

 private:
  void Flush() {
    if (pending_ > 0) hasher_.Update(ByteSpan(buffer_, static_cast<size_t>(pending_)));
    pending_ = 0;
  }
  codec::Sha256Hasher hasher_;
  uint8_t buffer_[64 * 1024];
  int pending_ = 0;
  int64_t count_ = 0;
};

std::string Metadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                     const char* key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  // A value of absurd length is not ours: cut it short (it then fails to parse).
  return std::string(it->second.data(), std::min<size_t>(it->second.size(), 1024));
}

// The outcome of a call whose reply MAC covers `body` (CheckReply's rules).
absl::Status CheckSignedEnd(const cluster::RpcAuth& auth, const char* method,
                            const cluster::CallNonce& nonce, const grpc::Status& status,
                            const cluster::Digest& body, const grpc::ClientContext& context,
                            cluster::NodeIdentity* callee) {
  absl::Status result = FromGrpcStatus(status);
  std::string header =
      Metadata(context.GetServerTrailingMetadata(), cluster::kAuthReplyMetadataKey);
  absl::StatusOr<cluster::NodeIdentity> who = auth.VerifyReply(
      method, nonce, static_cast<int>(status.error_code()), status.error_message(), body, header);
  if (who.ok()) {
    if (callee != nullptr) *callee = *who;
    return result;
  }
  if (status.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the callee is not an authenticated cluster member: ", who.status().message()));
  }
  if (result.code() == absl::StatusCode::kAlreadyExists) {
    return absl::UnauthenticatedError(
        absl::StrCat("unauthenticated answer: ", std::string(result.message())));
  }
  return result;
}

void PutBe64(codec::Sha256Hasher& hasher, uint64_t value) {
  uint8_t be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<uint8_t>(value >> (56 - 8 * i));
  hasher.Update(ByteSpan(be, sizeof be));
}

cluster::Digest StreamHash(std::string_view domain, const cluster::Digest& request_mac,
                           uint64_t number, const cluster::Digest* message_hash) {
  codec::Sha256Hasher hasher;
  // The domain string with its terminating NUL.
  hasher.Update(ByteSpan(reinterpret_cast<const uint8_t*>(domain.data()), domain.size() + 1));
  hasher.Update(request_mac);
  PutBe64(hasher, number);
  if (message_hash != nullptr) hasher.Update(*message_hash);
  return hasher.Finish();
}

constexpr char kStreamDomain[] = "cairn-rpc-stream-v1";
constexpr char kStreamEndDomain[] = "cairn-rpc-stream-end-v1";

}  // namespace

cluster::Digest HashMessage(const google::protobuf::MessageLite& message) {
  auto stream = std::make_unique<HashingOutputStream>();  // 64 KiB buffer: not on the stack
  {
    google::protobuf::io::CodedOutputStream coded(stream.get());
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }  // the CodedOutputStream hands back what it did not use here
  return stream->Finish();
}

const cluster::Digest& EmptyBodyHash() {
  static const cluster::Digest empty = codec::Sha256({});
  return empty;
}

std::optional<cluster::CallNonce> SignCall(const cluster::RpcAuth* auth, const char* method,
                                           const google::protobuf::MessageLite& request,
                                           grpc::ClientContext& context) {
  if (auth == nullptr) return std::nullopt;
  return SignCall(auth, method, HashMessage(request), context);
}

std::optional<cluster::CallNonce> SignCall(const cluster::RpcAuth* auth, const char* method,
                                           const cluster::Digest& request_hash,
                                           grpc::ClientContext& context) {
  if (auth == nullptr) return std::nullopt;
  cluster::SignedRequest signed_request = auth->SignRequest(method, request_hash);
  context.AddMetadata(cluster::kAuthMetadataKey, signed_request.header);
  return signed_request.nonce;
}

absl::Status CheckReply(const cluster::RpcAuth* auth, const char* method,
                        const std::optional<cluster::CallNonce>& nonce, const grpc::Status& status,
                        const google::protobuf::MessageLite& response,
                        const grpc::ClientContext& context, cluster::NodeIdentity* callee) {
  if (auth == nullptr || !nonce.has_value()) return FromGrpcStatus(status);
  const cluster::Digest body = status.ok() ? HashMessage(response) : EmptyBodyHash();
  return CheckSignedEnd(*auth, method, *nonce, status, body, context, callee);
}

absl::StatusOr<cluster::VerifiedRequest> PreVerifyCall(cluster::RpcAuth* auth, const char* method,
                                                       const grpc::ServerContext& context,
                                                       cluster::VerifiedRequest* skewed) {
  if (auth == nullptr) return absl::UnauthenticatedError("this peer has no cluster key");
  return auth->PreVerifyRequest(
      method, Metadata(context.client_metadata(), cluster::kAuthMetadataKey), skewed);
}

absl::Status VerifyCallBody(const cluster::RpcAuth& auth, const char* method,
                            const google::protobuf::MessageLite& request,
                            const grpc::ServerContext& context) {
  return auth.VerifyRequestBody(
      method, Metadata(context.client_metadata(), cluster::kAuthMetadataKey), HashMessage(request));
}

absl::StatusOr<cluster::VerifiedRequest> VerifyCall(cluster::RpcAuth* auth, const char* method,
                                                    const google::protobuf::MessageLite& request,
                                                    const grpc::ServerContext& context) {
  if (auth == nullptr) return absl::UnauthenticatedError("this peer has no cluster key");
  std::string header = Metadata(context.client_metadata(), cluster::kAuthMetadataKey);
  // Refuse callers without a header before hashing what they sent.
  if (header.empty()) return auth->VerifyRequest(method, header, EmptyBodyHash());
  return auth->VerifyRequest(method, header, HashMessage(request));
}

void SignReply(const cluster::RpcAuth* auth, const char* method,
               const cluster::CallNonce& request_nonce, const grpc::Status& status,
               const google::protobuf::MessageLite& response, grpc::ServerContext& context) {
  if (auth == nullptr) return;
  const cluster::Digest body = status.ok() ? HashMessage(response) : EmptyBodyHash();
  context.AddTrailingMetadata(
      cluster::kAuthReplyMetadataKey,
      auth->SignReply(method, request_nonce, static_cast<int>(status.error_code()),
                      status.error_message(), body));
}

std::optional<cluster::Digest> RequestMacOf(std::string_view header) {
  size_t space = header.rfind(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto mac = FromHex(header.substr(space + 1));
  cluster::Digest out{};
  if (!mac.ok() || mac->size() != out.size()) return std::nullopt;
  std::copy(mac->begin(), mac->end(), out.begin());
  return out;
}

cluster::Digest StreamMessageHash(const cluster::Digest& request_mac, uint64_t sequence,
                                  const cluster::Digest& message_hash) {
  return StreamHash(kStreamDomain, request_mac, sequence, &message_hash);
}

cluster::Digest StreamEndHash(const cluster::Digest& request_mac, uint64_t messages) {
  return StreamHash(kStreamEndDomain, request_mac, messages, nullptr);
}

std::optional<StreamCall> SignStreamCall(const cluster::RpcAuth* auth, const char* method,
                                         const google::protobuf::MessageLite& request,
                                         grpc::ClientContext& context) {
  if (auth == nullptr) return std::nullopt;
  cluster::SignedRequest signed_request = auth->SignRequest(method, HashMessage(request));
  context.AddMetadata(cluster::kAuthMetadataKey, signed_request.header);
  StreamCall call;
  call.nonce = signed_request.nonce;
  call.request_mac = RequestMacOf(signed_request.header).value_or(cluster::Digest{});
  return call;
}

absl::StatusOr<cluster::NodeIdentity> CheckStreamMessage(const cluster::RpcAuth& auth,
                                                         const char* method, const StreamCall& call,
                                                         uint64_t sequence,
                                                         const cluster::Digest& message_hash,
                                                         std::string_view message_auth) {
  absl::StatusOr<cluster::NodeIdentity> who =
      auth.VerifyReply(method, call.nonce, 0, "",
                       StreamMessageHash(call.request_mac, sequence, message_hash), message_auth);
  if (!who.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "stream message ", sequence, " is not authenticated: ", who.status().message()));
  }
  return who;
}

absl::Status CheckStreamEnd(const cluster::RpcAuth* auth, const char* method,
                            const std::optional<StreamCall>& call, const grpc::Status& status,
                            uint64_t messages, const grpc::ClientContext& context,
                            cluster::NodeIdentity* callee) {
  if (auth == nullptr || !call.has_value()) return FromGrpcStatus(status);
  return CheckSignedEnd(*auth, method, call->nonce, status,
                        StreamEndHash(call->request_mac, messages), context, callee);
}

absl::StatusOr<cluster::Digest> RequestMacOf(const grpc::ServerContext& context) {
  std::optional<cluster::Digest> mac =
      RequestMacOf(Metadata(context.client_metadata(), cluster::kAuthMetadataKey));
  if (!mac.has_value()) return absl::UnauthenticatedError("no request MAC");
  return *mac;
}

std::string SignStreamMessage(const cluster::RpcAuth& auth, const char* method,
                              const cluster::CallNonce& request_nonce,
                              const cluster::Digest& request_mac, uint64_t sequence,
                              const cluster::Digest& message_hash) {
  return auth.SignReply(method, request_nonce, 0, "",
                        StreamMessageHash(request_mac, sequence, message_hash));
}

void SignStreamEnd(const cluster::RpcAuth* auth, const char* method,
                   const cluster::CallNonce& request_nonce, const cluster::Digest& request_mac,
                   const grpc::Status& status, uint64_t messages, grpc::ServerContext& context) {
  if (auth == nullptr) return;
  context.AddTrailingMetadata(
      cluster::kAuthReplyMetadataKey,
      auth->SignReply(method, request_nonce, static_cast<int>(status.error_code()),
                      status.error_message(), StreamEndHash(request_mac, messages)));
}

}  // namespace cairn::net
