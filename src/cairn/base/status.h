// Status helpers shared by every module.
//
// cairn returns absl::Status / absl::StatusOr<T> (the gRPC canonical code set) and never throws.
// Abseil 20220623 (Debian 12) has no RETURN_IF_ERROR macros, so they are defined once here.
// Thread-safety: stateless.
#pragma once

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define CAIRN_CONCAT_INNER_(a, b) a##b
#define CAIRN_CONCAT_(a, b) CAIRN_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define CAIRN_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status cairn_status_ = (expr);         \
    if (!cairn_status_.ok()) return cairn_status_; \
  } while (0)

// `lhs = value of expr` where expr is an absl::StatusOr<T>; returns its status when not OK.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_CONCAT_(cairn_statusor_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

namespace cairn {

// Returns `status` with `context` prepended to its message ("put blob 3f2a… to peer 7: ..."),
// keeping the code and the payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);
// `status`'s code and payloads with `message` instead of its message. OK stays OK.
absl::Status WithMessage(const absl::Status& status, std::string_view message);

template <typename T>
absl::StatusOr<T> Annotate(absl::StatusOr<T> value, std::string_view context) {
  if (value.ok()) return value;
  return Annotate(value.status(), context);
}

// Builds an errno-based status: ENOENT -> NOT_FOUND, ENOSPC/EDQUOT -> RESOURCE_EXHAUSTED,
// EACCES/EPERM -> PERMISSION_DENIED, EINVAL -> INVALID_ARGUMENT, else INTERNAL.
absl::Status ErrnoStatus(int err, std::string_view context);

}  // namespace cairn
