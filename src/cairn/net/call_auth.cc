#include "cairn/net/call_auth.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
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
  cluster::SignedRequest signed_request = auth->SignRequest(method, HashMessage(request));
  context.AddMetadata(cluster::kAuthMetadataKey, signed_request.header);
  return signed_request.nonce;
}

absl::Status CheckReply(const cluster::RpcAuth* auth, const char* method,
                        const std::optional<cluster::CallNonce>& nonce, const grpc::Status& status,
                        const google::protobuf::MessageLite& response,
                        const grpc::ClientContext& context, cluster::NodeIdentity* callee) {
  absl::Status result = FromGrpcStatus(status);
  if (auth == nullptr || !nonce.has_value()) return result;
  std::string header =
      Metadata(context.GetServerTrailingMetadata(), cluster::kAuthReplyMetadataKey);
  const cluster::Digest body = status.ok() ? HashMessage(response) : EmptyBodyHash();
  absl::StatusOr<cluster::NodeIdentity> who = auth->VerifyReply(
      method, *nonce, static_cast<int>(status.error_code()), status.error_message(), body, header);
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

}  // namespace cairn::net
