#include "cairn/daemon/peer_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/cluster/tls_identity.h"
#include "cairn/env/file.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database.h"

namespace cairn::daemon {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// mkdir with `mode`, fine if it exists as a directory. Records it in `report` when created.
absl::Status MakeDir(const std::string& path, mode_t mode, InitReport& report) {
  if (::mkdir(path.c_str(), mode) == 0) {
    // mkdir's mode is filtered by the umask; secrets must be exactly `mode`.
    if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus(errno, "chmod " + path);
    report.created.push_back(path + "/");
    return absl::OkStatus();
  }
  if (errno != EEXIST) return ErrnoStatus(errno, "create directory " + path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(path + " exists and is not a directory");
  }
  return absl::OkStatus();
}

absl::Status WriteSecret(const std::string& path, const std::string& hex, InitReport& report) {
  std::string text = hex + "\n";
  CAIRN_RETURN_IF_ERROR(env::WriteFileAtomic(path, AsBytes(text), 0600));
  if (::chmod(path.c_str(), 0600) != 0) return ErrnoStatus(errno, "chmod " + path);
  report.created.push_back(path);
  return absl::OkStatus();
}

absl::StatusOr<Bytes> LoadHexSecret(const std::string& path, size_t bytes, const char* what) {
  auto text = env::ReadFileString(path, 4096);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the ", what, " ", path, ": ", text.status().message()));
  }
  std::string hex(absl::StripAsciiWhitespace(*text));
  auto decoded = FromHex(hex);
  if (hex.size() != 2 * bytes || !decoded.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ", what, " ", path, " is garbled: expected ", 2 * bytes, " hex characters"));
  }
  return *std::move(decoded);
}

}  // namespace

std::string SecretsDir(const std::string& dir) { return dir + "/secrets"; }
std::string OwnerKeyPath(const std::string& dir) { return dir + "/secrets/owner.key"; }
std::string ApiTokenPath(const std::string& dir) { return dir + "/secrets/api.token"; }
std::string ClusterKeyPath(const std::string& dir) { return dir + "/secrets/cluster.key"; }
std::string NodeIdPath(const std::string& dir) { return dir + "/secrets/node.id"; }
std::string TlsKeyPath(const std::string& dir) { return dir + "/secrets/tls.key"; }
std::string TlsCertPath(const std::string& dir) { return dir + "/secrets/tls.crt"; }
std::string BlobsDir(const std::string& dir) { return dir + "/blobs"; }
std::string IndexPath(const std::string& dir) { return dir + "/index.db"; }

absl::StatusOr<InitReport> InitPeerDir(const Config& config) {
  return InitPeerDir(config, std::nullopt);
}

absl::StatusOr<InitReport> InitPeerDir(const Config& config,
                                       const std::optional<codec::Key>& cluster_key) {
  InitSecrets secrets;
  secrets.cluster_key = cluster_key;
  return InitPeerDir(config, secrets);
}

absl::StatusOr<InitReport> InitPeerDir(const Config& config, const InitSecrets& secrets) {
  const std::string& dir = config.dir;
  if (dir.empty()) return absl::InvalidArgumentError("no peer directory given");
  if (secrets.node_id && !cluster::IsValidNodeId(*secrets.node_id)) {
    return absl::InvalidArgumentError("a node id must be 32 hex characters");
  }
  // Validate everything (through the same parser the daemon uses) before touching the disk.
  CAIRN_RETURN_IF_ERROR(ParseConfig(RenderConfig(config), ConfigPath(dir)).status());
  if (Exists(ConfigPath(dir))) {
    return absl::AlreadyExistsError(
        absl::StrCat(ConfigPath(dir), " exists: ", dir, " is already a cairn peer directory"));
  }
  if (Exists(OwnerKeyPath(dir))) {
    return absl::AlreadyExistsError(
        absl::StrCat(OwnerKeyPath(dir),
                     " exists (left by an earlier init?); an owner key is never "
                     "overwritten: move it away or remove ",
                     dir, " to start over"));
  }
  InitReport report;
  // The parent of DIR may be missing (e.g. ~/.cairn's parent always exists, /var/lib/cairn/x
  // may not): create parents with default modes, DIR itself 0700.
  std::string parent = dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  size_t slash = parent.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    CAIRN_RETURN_IF_ERROR(env::MakeDirs(parent.substr(0, slash), 0755));
  }
  CAIRN_RETURN_IF_ERROR(MakeDir(dir, 0700, report));
  CAIRN_RETURN_IF_ERROR(MakeDir(SecretsDir(dir), 0700, report));
  codec::Key owner = secrets.owner_key.value_or(codec::RandomKey());
  CAIRN_RETURN_IF_ERROR(WriteSecret(OwnerKeyPath(dir), ToHex(owner), report));
  codec::Key token = codec::RandomKey();
  CAIRN_RETURN_IF_ERROR(WriteSecret(ApiTokenPath(dir), ToHex(token), report));
  codec::Key cluster = secrets.cluster_key.value_or(codec::RandomKey());
  CAIRN_RETURN_IF_ERROR(WriteSecret(ClusterKeyPath(dir), ToHex(cluster), report));
  CAIRN_RETURN_IF_ERROR(WriteSecret(
      NodeIdPath(dir),
      secrets.node_id ? absl::AsciiStrToLower(*secrets.node_id) : cluster::NewNodeId(), report));
  // Made from the owner key, so that a recovered peer presents the certificate members pinned.
  CAIRN_RETURN_IF_ERROR(
      cluster::LoadOrCreateTlsIdentity(TlsKeyPath(dir), TlsCertPath(dir), owner, config.peer_id)
          .status());
  report.created.push_back(TlsKeyPath(dir));
  report.created.push_back(TlsCertPath(dir));
  CAIRN_RETURN_IF_ERROR(MakeDir(BlobsDir(dir), 0700, report));
  {
    bool existed = Exists(IndexPath(dir));
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<index::Database> db,
                           index::Database::Open(IndexPath(dir)));
    std::unique_ptr<index::Catalog> catalog = index::NewSqliteCatalog(db.get());
    CAIRN_RETURN_IF_ERROR(
        catalog->SetMeta(kMetaChunkerMin, std::to_string(config.chunker.min_size)));
    CAIRN_RETURN_IF_ERROR(
        catalog->SetMeta(kMetaChunkerAvg, std::to_string(config.chunker.avg_size)));
    CAIRN_RETURN_IF_ERROR(
        catalog->SetMeta(kMetaChunkerMax, std::to_string(config.chunker.max_size)));
    CAIRN_RETURN_IF_ERROR(catalog->SetMeta(kMetaPeerId, std::to_string(config.peer_id)));
    if (!existed) report.created.push_back(IndexPath(dir));
  }
  CAIRN_RETURN_IF_ERROR(WriteConfig(config));
  report.created.push_back(ConfigPath(dir));
  return report;
}

absl::StatusOr<codec::Key> LoadOwnerKey(const std::string& dir) {
  CAIRN_ASSIGN_OR_RETURN(Bytes b, LoadHexSecret(OwnerKeyPath(dir), codec::kKeySize, "owner key"));
  codec::Key key;
  std::memcpy(key.data(), b.data(), key.size());
  return key;
}

absl::StatusOr<std::string> LoadApiToken(const std::string& dir) {
  CAIRN_ASSIGN_OR_RETURN(Bytes b, LoadHexSecret(ApiTokenPath(dir), 32, "API token"));
  return ToHex(b);
}

absl::StatusOr<codec::Key> LoadClusterKey(const std::string& dir) {
  if (!Exists(ClusterKeyPath(dir))) {
    return absl::FailedPreconditionError(absl::StrCat(
        ClusterKeyPath(dir),
        " not found: every peer needs the cluster key (this directory predates cluster "
        "authentication). On one peer run `cairn cluster new --dir DIR`, then `cairn cluster "
        "token --dir DIR` there, and on each other peer `cairn cluster join TOKEN --dir DIR`; "
        "then start the peers again (this peer: --dir ",
        dir, ")"));
  }
  CAIRN_ASSIGN_OR_RETURN(Bytes b,
                         LoadHexSecret(ClusterKeyPath(dir), codec::kKeySize, "cluster key"));
  codec::Key key;
  std::memcpy(key.data(), b.data(), key.size());
  return key;
}

absl::Status WriteClusterKey(const std::string& dir, const codec::Key& key) {
  if (Exists(ClusterKeyPath(dir))) {
    CAIRN_ASSIGN_OR_RETURN(codec::Key existing, LoadClusterKey(dir));
    if (existing == key) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat(ClusterKeyPath(dir),
                     " exists with another key: this peer is already in a cluster (a "
                     "cluster key is never overwritten; move the file away to re-key)"));
  }
  InitReport unused;
  CAIRN_RETURN_IF_ERROR(MakeDir(SecretsDir(dir), 0700, unused));
  return WriteSecret(ClusterKeyPath(dir), ToHex(key), unused);
}

absl::StatusOr<std::string> LoadOrCreateNodeId(const std::string& dir) {
  if (!Exists(NodeIdPath(dir))) {
    InitReport unused;
    CAIRN_RETURN_IF_ERROR(MakeDir(SecretsDir(dir), 0700, unused));
    CAIRN_RETURN_IF_ERROR(WriteSecret(NodeIdPath(dir), cluster::NewNodeId(), unused));
  }
  CAIRN_ASSIGN_OR_RETURN(Bytes b, LoadHexSecret(NodeIdPath(dir), 16, "node id"));
  return ToHex(b);
}

}  // namespace cairn::daemon
