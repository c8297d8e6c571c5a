// The peer configuration DIR/cairn.toml (docs/operations.md "Configuration `cairn.toml`"):
// parsing and validation (toml++), rendering with comments for `cairn init`, and the write-back
// of ports resolved at first start.
//
// Every error names the file, the key and the problem ("DIR/cairn.toml: key 'quota': invalid
// size 'abc' ..."), with code INVALID_ARGUMENT; a missing file is NOT_FOUND. Unknown keys are
// errors (a misspelt key must not silently fall back to a default).
//
// Thread-safety: value types and stateless functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/duration.h"
#include "cairn/base/ids.h"
#include "cairn/codec/chunker.h"
#include "cairn/engine/retention.h"

namespace cairn::daemon {

// [discovery]: UDP multicast announcements on the LAN (cluster/discovery.h, docs/protocol.md).
struct DiscoveryConfig {
  bool multicast = true;
  std::string group = "239.255.67.82";  // IPv4 multicast group
  int port = 7946;
  std::chrono::milliseconds interval{2000};
  // Interface name or IPv4 address to announce on. Empty: the loopback interface when `listen`
  // is a loopback address (such an address is no use to other hosts), else the kernel's choice.
  std::string interface;
  bool operator==(const DiscoveryConfig&) const = default;
};

// [extra]: extra copies of this peer's chunks in other peers' spare space (engine/extras.h).
struct ExtraConfig {
  bool metadata = true;   // trees and snapshots
  bool data = false;      // file chunks, least spread across hosts first
  uint32_t copies = 1;    // extra copies per chunk, 1..8
  double max_fill = 0.9;  // use a peer only while it stays below this share of its quota
  bool operator==(const ExtraConfig&) const = default;
};

// [[source]]: a path the daemon keeps backed up by itself (daemon/sources.h): after changes
// (inotify, debounced by [watch] quiet_period), every `schedule`, every [watch] rescan_interval
// and at start. Also managed with `cairn source add|list|remove` (WriteBackSources).
struct SourceConfig {
  std::string path;                       // absolute, no trailing '/', UTF-8 (TOML strings are)
  uint32_t copies = 0;                    // 0 = unset: the [backup] default applies
  std::string ec;                         // "K+M"; "" = unset. Not together with `copies`.
  std::vector<std::string> excludes;      // TOML key "exclude": fnmatch(3) globs, as --exclude
  std::chrono::milliseconds schedule{0};  // back up this often anyway; 0 = no schedule
  bool watch = true;                      // inotify; false: schedule and rescans only
  engine::RetentionPolicy keep;  // keep_* keys: this source's policy; empty: [retention] applies
  bool operator==(const SourceConfig&) const = default;
};

// [[archive]]: an archive (engine/archive.h) mounted when the peer starts and unmounted when it
// stops (docs/operations.md "Archives: files that live only on the peers"). The archive must
// exist (`cairn archive create NAME`); one that cannot be mounted is logged and skipped.
struct ArchiveConfig {
  std::string name;             // [A-Za-z0-9._-]{1,64}
  std::string mountpoint;       // absolute; an existing directory
  uint64_t spool = 1ull << 30;  // bytes of written data kept before it is stored ("1G")
  bool allow_other = false;     // -o allow_other (needs user_allow_other in /etc/fuse.conf)
  bool operator==(const ArchiveConfig&) const = default;
};

// [watch]: how watched sources are debounced and rescanned (daemon/debouncer.h).
struct WatchConfig {
  // A source is backed up once no change was seen for this long (and at the latest
  // kMaxDelayFactor x quiet_period after its first unsaved change).
  std::chrono::milliseconds quiet_period{10'000};
  // A full backup of every source this often, whatever inotify reported; 0 = never.
  std::chrono::milliseconds rescan_interval{3'600'000};
  bool operator==(const WatchConfig&) const = default;
};

// INVALID_ARGUMENT (naming the problem) unless `source` is valid: absolute path, copies 1..64,
// a valid ec and not both, keep counts -1..1000000, keep tags UTF-8.
absl::Status ValidateSource(const SourceConfig& source);
// `path` without "." / ".." components and repeated or trailing '/' (lexically; symlinks are not
// resolved): the form source paths are stored and compared in.
std::string NormalSourcePath(const std::string& path);

struct Config {
  std::string dir;      // the peer directory the file was loaded from (not stored in the file)
  PeerId peer_id = 0;   // required, >= 1
  std::string host_id;  // failure domain; default DefaultHostId()
  // Site label (docs/operations.md "Sites and off-site copies"): "" = the LAN site; when the
  // key is absent, "offsite" for a peer with a [storage] bucket, else "".
  std::string site;
  std::string listen = "127.0.0.1:0";  // peer service host:port; port 0 = pick at first start
  std::string api = "127.0.0.1:0";     // local HTTP API; loopback host only
  uint64_t quota = 10ull << 30;        // bytes lent to other peers
  std::vector<std::string> seeds;      // other peers' listen addresses (host:port)
  std::chrono::milliseconds ping_interval{2000};
  std::chrono::milliseconds suspect_after{15000};
  std::chrono::milliseconds dead_after{600000};
  uint32_t copies = 2;           // [backup] default replication degree
  uint32_t offsite = 0;          // [backup] copies (or shards) wanted on another site
  std::string ec;                // [backup] default erasure coding "K+M"; "" = copies
  int upload_threads = 8;        // [backup]
  codec::ChunkerParams chunker;  // [chunker]; fixed at init
  // [scrub]: re-hash held blobs in the background (daemon/scrubber.h).
  bool scrub_enabled = true;
  std::chrono::milliseconds scrub_interval{86'400'000};  // from one pass's end to the next
  uint64_t scrub_rate = 20ull << 20;                     // bytes per second, >= 1
  // [storage]: how blobs held for other peers are kept (docs/operations.md "Storage").
  // layout: "segments" (append-only pack files with group commit, store/segment_blob_store.h),
  // "files" (one file per blob, the layout of peer directories made before segments), or ""
  // (auto: "files" when the directory already holds blobs in that layout, else "segments").
  std::string storage_layout;
  uint64_t segment_size = 64ull << 20;  // a segment is sealed at this many bytes
  double compact_below = 0.5;           // rewrite sealed segments less live than this
  uint64_t compact_rate = 32ull << 20;  // bytes per second copied by compaction; 0 = no limit
  // Bytes puts leave free on the disk holding the segments, for the index and compaction
  // (docs/operations.md "A full disk").
  uint64_t disk_reserve = 64ull << 20;
  // [storage] bucket: sealed segments kept in an S3-compatible bucket, "s3://BUCKET[/PREFIX]"
  // ("" = local only; docs/operations.md "An off-site copy in S3-compatible storage"); with
  // keep_local, uploaded segments also stay on the local disk as a read cache.
  std::string storage_bucket;
  bool storage_keep_local = false;
  // [s3]: how to reach the bucket. endpoint "" = AWS (https://s3.REGION.amazonaws.com);
  // credentials_file: an AWS shared credentials file, "" = the environment, then
  // ~/.aws/credentials (store/s3/s3_config.h LoadCredentials); profile "" = AWS_PROFILE or
  // "default".
  std::string s3_endpoint;
  std::string s3_region = "us-east-1";
  std::string s3_credentials_file;
  std::string s3_profile;
  // Upload rate to the bucket, bytes per second of request bodies (0 = unlimited), and the
  // most requests in flight at once (1..64).
  uint64_t s3_rate = 0;
  int s3_max_requests = 8;
  // [repair]: check this peer's own backups and repair what is below target, every
  // `repair_interval` and whenever a peer becomes dead (daemon repair loop).
  bool repair_enabled = true;
  std::chrono::milliseconds repair_interval{600'000};
  uint64_t repair_rate = 50ull << 20;  // bytes per second sent by repair; 0 = unlimited
  // [metrics] listen: a separate loopback host:port serving GET /metrics (and /v1/health)
  // without the API token (docs/operations.md "Monitoring"); "" = off (the default: /metrics
  // is then served on the API only, with the token). Port 0 picks a free port at each start.
  std::string metrics_listen;

  DiscoveryConfig discovery;  // [discovery]
  // [retention]: restic's `forget --keep-*` policy, applied after each backup to the snapshots
  // of the same host and paths (engine/retention.h). Counts: 0 = unset, -1 = unlimited. All
  // unset: keep everything (the default).
  engine::RetentionPolicy retention;
  ExtraConfig extra;  // [extra]

  WatchConfig watch;                    // [watch]
  std::vector<SourceConfig> sources;    // [[source]], paths distinct
  std::vector<ArchiveConfig> archives;  // [[archive]], names distinct

  // Field-wise equality (including chunker params).
  bool SameSettings(const Config& other) const;
};

// DIR/cairn.toml.
std::string ConfigPath(const std::string& dir);

// Parses and validates config text. `source` names the file in error messages.
absl::StatusOr<Config> ParseConfig(std::string_view text, const std::string& source);
// Reads DIR/cairn.toml. NOT_FOUND ("DIR/cairn.toml not found: run `cairn init --dir DIR`")
// when missing; INVALID_ARGUMENT for any problem in it.
absl::StatusOr<Config> LoadConfig(const std::string& dir);

// The config as TOML with explanatory comments (what `cairn init` writes).
std::string RenderConfig(const Config& config);
// Writes RenderConfig(config) to ConfigPath(config.dir) atomically (mode 0600).
absl::Status WriteConfig(const Config& config);

// Rewrites the `listen` and `api` values in DIR/cairn.toml (ports resolved at first start),
// atomically, keeping every other setting and the comments: the value text is replaced in
// place; if the result does not re-parse to the same settings the whole file is re-rendered.
absl::Status WriteBackAddresses(const std::string& dir, const std::string& listen,
                                const std::string& api);
// Rewrites `quota` in DIR/cairn.toml (cairn reclaim) the same way.
absl::Status WriteBackQuota(const std::string& dir, uint64_t quota);
// Replaces the [[source]] tables of DIR/cairn.toml with `sources` (cairn source add|remove),
// atomically: the old [[source]] blocks are cut out and the new ones appended, keeping every
// other line and comment; if the result does not re-parse to the expected settings the whole
// file is re-rendered.
absl::Status WriteBackSources(const std::string& dir, const std::vector<SourceConfig>& sources);

// Durations ("500ms", "2s", "10m", "1h", "1d", "1h30m"): the one parser in base/duration.h,
// which cairn.toml, the CLI's flags and the API's requests share.
using ::cairn::FormatDuration;
using ::cairn::ParseDuration;

// Splits "host:port" or "[v6]:port". INVALID_ARGUMENT unless the port is 0..65535 and the host
// is non-empty.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view address);
// "host:port" ("[host]:port" when host contains ':').
std::string JoinHostPort(const std::string& host, int port);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

// /etc/machine-id contents if present, else the host name.
std::string DefaultHostId();

// The site of a peer whose storage is a bucket when none is given (docs/operations.md "Sites
// and off-site copies").
inline constexpr char kBucketSite[] = "offsite";

}  // namespace cairn::daemon
