// The one place where absl::Status and grpc::Status are converted (conventions: convert once
// per surface). Both use the canonical code set (google.rpc.Code), so codes map 1:1 by value;
// a code outside 0..16 becomes UNKNOWN. Messages are kept as they are.
//
// Internal to net/. Thread-safety: stateless functions.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace cairn::net {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace cairn::net
