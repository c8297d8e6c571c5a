#include "cairn/daemon/version.h"

#include "cairn/cluster/recovery_key.h"
#include "cairn/format/blob.h"
#include "cairn/format/tree.h"
#include "cairn/index/database.h"
#include "cairn/store/segment.h"
#include "cairn_git_commit.h"  // CAIRN_GIT_COMMIT, written at build time by git_commit.cmake

namespace cairn::daemon {

const char* CairnVersion() { return CAIRN_VERSION; }

const char* GitCommit() { return CAIRN_GIT_COMMIT; }

nlohmann::json VersionJson() {
  nlohmann::json j;
  j["version"] = CairnVersion();
  j["git_commit"] = *GitCommit() ? nlohmann::json(GitCommit()) : nlohmann::json(nullptr);
  // The gRPC package of proto/cairn/v1/peer.proto (docs/protocol.md).
  j["protocol"] = "cairn.v1";
  j["formats"] = {{"blob", format::kBlobVersion},
                  {"tree", format::kTreeVersion},
                  {"snapshot", format::kSnapshotVersion},
                  {"segment", store::kSegmentVersion},
                  {"index_schema", index::Database::LatestSchemaVersion()},
                  {"recovery_key", cluster::kRecoveryKeyVersion}};
  return j;
}

}  // namespace cairn::daemon
