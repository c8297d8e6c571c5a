// The peer directory (docs/operations.md "Peer directory"): creating it for
// `cairn init` and loading its secrets.
//
//   DIR/cairn.toml          config (written last: its presence means "initialized")
//   DIR/secrets/owner.key   64 hex chars, the 256-bit owner master key, mode 0600
//   DIR/secrets/api.token   64 hex chars, bearer token of the local HTTP API, mode 0600
//   DIR/secrets/cluster.key 64 hex chars, the 256-bit cluster key shared by all members, 0600
//   DIR/secrets/node.id     32 hex chars, this peer directory's random node id, 0600
//   DIR/secrets/tls.key     PEM Ed25519 private key of its TLS certificate, 0600
//   DIR/secrets/tls.crt     PEM self-signed TLS certificate (cluster/tls_identity.h), 0600
//   DIR/blobs/              DiskBlobStore root
//   DIR/index.db            SQLite catalog + blob registry
//
// Thread-safety: stateless functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/config.h"

namespace cairn::daemon {

std::string SecretsDir(const std::string& dir);
std::string OwnerKeyPath(const std::string& dir);
std::string ApiTokenPath(const std::string& dir);
std::string ClusterKeyPath(const std::string& dir);
std::string NodeIdPath(const std::string& dir);
std::string TlsKeyPath(const std::string& dir);
std::string TlsCertPath(const std::string& dir);
std::string BlobsDir(const std::string& dir);
std::string IndexPath(const std::string& dir);

// Catalog meta keys recording the chunker parameters at init (docs/formats.md "Chunking": they
// never change under existing data); the daemon refuses to start when the config disagrees.
inline constexpr char kMetaChunkerMin[] = "chunker.min_size";
inline constexpr char kMetaChunkerAvg[] = "chunker.avg_size";
inline constexpr char kMetaChunkerMax[] = "chunker.max_size";
inline constexpr char kMetaPeerId[] = "peer_id";
// Catalog meta key holding the peer id -> node id pins (cluster::NodePins::Serialize).
inline constexpr char kMetaNodePins[] = "cluster.node_pins";
// Catalog meta key holding the peer id -> TLS certificate pins (cluster::CertPins::Serialize).
inline constexpr char kMetaCertPins[] = "cluster.cert_pins";

struct InitReport {
  std::vector<std::string> created;  // paths made, in order
};

// Creates a peer directory from `config` (config.dir is the directory; it may exist, e.g. an
// empty temp dir, and is created with mode 0700 otherwise). Makes secrets/ (0700) with a fresh
// owner key and API token (0600 each), blobs/, index.db (migrations run; chunker params and
// peer id recorded with Catalog::SetMeta), and finally cairn.toml. The TLS key and certificate
// (secrets/tls.key, tls.crt) are made from the owner key (cluster/tls_identity.h).
// Errors: ALREADY_EXISTS when DIR/cairn.toml or DIR/secrets/owner.key exists (an owner key is
// never overwritten); INVALID_ARGUMENT for an invalid config (bad chunker params, peer id 0,
// non-loopback api address); errno-mapped errors from the file system.
absl::StatusOr<InitReport> InitPeerDir(const Config& config);
// The same, also writing DIR/secrets/cluster.key (0600) and DIR/secrets/node.id: `cluster_key`
// when given (joining a cluster: `cairn init --join`), else a fresh random key (a new cluster).
absl::StatusOr<InitReport> InitPeerDir(const Config& config,
                                       const std::optional<codec::Key>& cluster_key);

// Secrets given to InitPeerDir instead of fresh random ones.
struct InitSecrets {
  std::optional<codec::Key> cluster_key;  // joining a cluster (`cairn init --join`)
  std::optional<codec::Key> owner_key;    // a recovered peer (`cairn recover`)
  std::optional<std::string> node_id;     // a recovered peer: 32 hex characters
};
// The same with any of the secrets given. INVALID_ARGUMENT for a node id that is not 32 hex
// characters.
absl::StatusOr<InitReport> InitPeerDir(const Config& config, const InitSecrets& secrets);

// Reads DIR/secrets/owner.key. FAILED_PRECONDITION naming the file when it is missing,
// unreadable, or not exactly 64 hex characters (surrounding whitespace is ignored).
absl::StatusOr<codec::Key> LoadOwnerKey(const std::string& dir);
// Reads DIR/secrets/api.token (64 hex characters), with the same errors.
absl::StatusOr<std::string> LoadApiToken(const std::string& dir);
// Reads DIR/secrets/cluster.key (64 hex characters). FAILED_PRECONDITION when garbled, and when
// missing with the way out: a directory made before cluster authentication gets a key with
// `cairn cluster new` (first peer) or `cairn cluster join TOKEN` (the others).
absl::StatusOr<codec::Key> LoadClusterKey(const std::string& dir);
// Writes DIR/secrets/cluster.key (0600) for `cairn cluster new/join` on an existing directory.
// ALREADY_EXISTS when one exists with another value (never overwritten; the same value is OK).
absl::Status WriteClusterKey(const std::string& dir, const codec::Key& key);
// Reads DIR/secrets/node.id, creating it (a fresh random id, 0600) when missing: the node id is
// not a secret and a directory from before node ids simply gets one. FAILED_PRECONDITION when
// garbled.
absl::StatusOr<std::string> LoadOrCreateNodeId(const std::string& dir);

}  // namespace cairn::daemon
