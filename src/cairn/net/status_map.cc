#include "cairn/net/status_map.h"

#include <string>

namespace cairn::net {
namespace {

// Both enums are the canonical code set 0 (OK) .. 16 (UNAUTHENTICATED).
constexpr int kMaxCanonicalCode = 16;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  int code = static_cast<int>(status.code());
  if (code < 1 || code > kMaxCanonicalCode) code = grpc::StatusCode::UNKNOWN;
  return grpc::Status(static_cast<grpc::StatusCode>(code), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 1 || code > kMaxCanonicalCode) code = static_cast<int>(absl::StatusCode::kUnknown);
  std::string message = status.error_message();
  if (message.empty()) message = "(no message)";
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace cairn::net
