// The archive requests and answers of the local HTTP API (docs/cli.md "Local HTTP API":
// /v1/archives) and their JSON codec, as api/requests.h and api/responses.h do for the others:
// one ToJson/FromJson pair per type. FromJson never throws: INVALID_ARGUMENT naming the field.
//
// Thread-safety: plain structs and stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cairn/codec/erasure.h"
#include "nlohmann/json.hpp"

namespace cairn::api {

using Json = nlohmann::json;

// POST /v1/archives: {"name": "[A-Za-z0-9._-]{1,64}", "copies": 1..64 | "ec": "K+M"} (neither:
// the config's backup redundancy).
struct ArchiveCreateRequest {
  std::string name;
  std::optional<uint32_t> copies;
  std::optional<codec::ErasureScheme> ec;
};
Json ToJson(const ArchiveCreateRequest& r);
absl::Status FromJson(const Json& j, ArchiveCreateRequest* r);

// POST /v1/archives/mount: {"name", "mountpoint" (absolute, an existing directory),
// "allow_other": bool, "spool_bytes": >= 1 MiB (absent: 1 GiB)}; POST /v1/archives/unmount:
// {"name"}.
struct ArchiveMountRequest {
  std::string name;
  std::string mountpoint;  // empty for unmount
  bool allow_other = false;
  std::optional<uint64_t> spool_bytes;
};
Json ToJson(const ArchiveMountRequest& r);
absl::Status FromJson(const Json& j, ArchiveMountRequest* r);

// One archive as GET /v1/archives lists it (an array, by name) and POST /v1/archives answers:
// {"name","versions","latest" (the latest version's snapshot id),"time_ns" (of it),"copies",
// "ec" ("K+M" or null),"files","bytes" (of the latest version),"mountpoint" (null unless
// mounted),"spooled_bytes" (mounted: written, not yet stored)}.
struct ArchiveInfo {
  std::string name;
  uint64_t versions = 0;
  std::string latest;
  int64_t time_ns = 0;
  uint32_t copies = 0;
  std::optional<std::string> ec;
  uint64_t files = 0;
  uint64_t bytes = 0;
  std::optional<std::string> mountpoint;
  uint64_t spooled_bytes = 0;
};
Json ToJson(const ArchiveInfo& r);
absl::Status FromJson(const Json& j, ArchiveInfo* r);
Json ToJson(const std::vector<ArchiveInfo>& r);
absl::Status FromJson(const Json& j, std::vector<ArchiveInfo>* r);

}  // namespace cairn::api
