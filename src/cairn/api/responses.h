// The response bodies of the local HTTP API (docs/cli.md "Local HTTP API") and their JSON codec,
// as api/requests.h for requests: one ToJson/FromJson pair per type. The daemon encodes with
// ToJson; the CLI and the tests decode with FromJson (api::Decode<T>).
//
// FromJson never throws: INVALID_ARGUMENT naming the field when a required field is missing or
// has the wrong JSON type (an answer from a peer of another version, or not a cairn peer).
//
// Thread-safety: plain structs and stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cairn/api/requests.h"
#include "cairn/ports/catalog.h"
#include "nlohmann/json.hpp"

namespace cairn::api {

// 202 answer of every job-starting route (backup, restore, check, repair, forget, delete,
// reclaim, index rebuild): {"job_id": "..."} (non-empty).
struct JobStarted {
  std::string job_id;
};
Json ToJson(const JobStarted& r);
absl::Status FromJson(const Json& j, JobStarted* r);

// 201 answer of POST /v1/ui/code (`cairn ui`): a one-time dashboard login code,
// {"code","expires_seconds"}.
struct LoginCode {
  std::string code;
  int64_t expires_seconds = 0;
};
Json ToJson(const LoginCode& r);
absl::Status FromJson(const Json& j, LoginCode* r);

// 200 answer of DELETE /v1/jobs/ID: {"job_id": "...", "cancelled": true}.
struct JobCancelled {
  std::string job_id;
  bool cancelled = true;
};
Json ToJson(const JobCancelled& r);
absl::Status FromJson(const Json& j, JobCancelled* r);

// A snapshot as GET /v1/snapshots lists it (an array of these, oldest first) and `cairn
// snapshots --json` prints it: {"id","short_id","time" (RFC 3339, from time_ns),"time_ns",
// "hostname","paths":[...],"tags":[...] (raw bytes: with "<field>_base64" when not UTF-8),
// "parent" (id or null),"copies","ec" ("K+M" or null),"files","directories","bytes",
// "archive" (the archive's name for an archive version, null for a backup)}.
struct SnapshotInfo {
  std::string id;        // 64 hex digits
  std::string short_id;  // its first 8
  int64_t time_ns = 0;   // Unix ns
  std::string hostname;
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  std::optional<std::string> parent;
  uint32_t copies = 0;
  std::optional<std::string> ec;  // "K+M" when erasure coded
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t bytes = 0;
  std::optional<std::string> archive;
};
// The API's view of a catalog record.
SnapshotInfo SnapshotInfoOf(const ports::SnapshotRecord& record);
Json ToJson(const SnapshotInfo& r);
absl::Status FromJson(const Json& j, SnapshotInfo* r);

// A peer as GET /v1/peers lists it (an array of these; `cairn peers --json`): {"peer_id",
// "host_id","site","address","quota","used","room","disk_room" (bytes or null),"state",
// "node_id","cert_fingerprint","last_seen" (RFC 3339 from last_seen_ns, null when 0),
// "last_seen_ns","self","clock_offset_seconds" (null when not measured),"clock_skewed",
// "clock_window_seconds"} (docs/cli.md "Commands": peers).
struct PeerInfo {
  uint64_t peer_id = 0;
  std::string host_id;
  std::string site;
  std::string address;
  uint64_t quota = 0;  // bytes
  uint64_t used = 0;   // bytes
  uint64_t room = 0;   // bytes it can take now
  std::optional<uint64_t> disk_room;
  std::string state;  // "alive", "suspect", "dead"
  std::string node_id;
  std::string cert_fingerprint;
  int64_t last_seen_ns = 0;  // 0: never
  bool self = false;
  std::optional<double> clock_offset_seconds;
  bool clock_skewed = false;
  int64_t clock_window_seconds = 0;
};
Json ToJson(const PeerInfo& r);
absl::Status FromJson(const Json& j, PeerInfo* r);

// A job as GET /v1/jobs/ID answers it (and GET /v1/jobs lists them, newest first): {"id",
// "kind","state":"running|done|failed","started_ns","progress":{...},"result":{...} (done only),
// "error":{"code","message"} (failed only)}. The progress and result objects depend on the
// kind (docs/cli.md "Commands") and stay JSON here.
struct JobInfo {
  std::string id;
  std::string kind;   // "backup", "restore", ...
  std::string state;  // "running", "done", "failed"
  int64_t started_ns = 0;
  Json progress = Json::object();
  std::optional<Json> result;         // state "done"
  std::optional<absl::Status> error;  // state "failed"
};
Json ToJson(const JobInfo& r);
absl::Status FromJson(const Json& j, JobInfo* r);

// One stored version of a path in GET /v1/versions: {"snapshot_id","snapshot_short_id",
// "snapshot_time","snapshot_time_ns","last_snapshot_id","last_snapshot_short_id",
// "last_snapshot_time","last_snapshot_time_ns","snapshots","snapshot_path","type","size","mode",
// "mtime" (RFC 3339 with ns),"mtime_ns","content_hash","target" (symlinks)}.
struct FileVersionInfo {
  std::string snapshot_id;  // the first snapshot of the run
  int64_t snapshot_time_ns = 0;
  std::string last_snapshot_id;  // the last one
  int64_t last_snapshot_time_ns = 0;
  uint64_t snapshots = 0;     // how many snapshots the run spans
  std::string snapshot_path;  // inside the snapshot, raw bytes
  std::string type;           // "file", "dir", "symlink"
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  std::string content_hash;           // 64 hex digits
  std::optional<std::string> target;  // symlinks, raw bytes
};
// GET /v1/versions: {"path","collapsed","versions":[...]} (oldest first).
struct VersionList {
  std::string path;  // absolute, raw bytes
  bool collapsed = true;
  std::vector<FileVersionInfo> versions;
};
Json ToJson(const FileVersionInfo& r);
absl::Status FromJson(const Json& j, FileVersionInfo* r);
Json ToJson(const VersionList& r);
absl::Status FromJson(const Json& j, VersionList* r);

// GET /v1/health (docs/cli.md "Local HTTP API"; also served on the [metrics] listener): {"live":
// true,"ready","problems":["..."],"index":"ok|checking|rebuilding|rebuilt|failed","peers_known",
// "peers_alive" (peers other than this one),"snapshots":[...],"snapshot_health":{...}}; answered
// 200 when ready, else 503 with the same body.
struct SnapshotHealthSummary {
  std::optional<std::string> computed_at;               // RFC 3339; null before the first result
  std::optional<int64_t> age_seconds;                   // null before the first result
  std::optional<double> compute_seconds;                // how long the last computation took
  std::optional<std::string> error;                     // why the last computation failed
  std::optional<double> rebuild_rate_bytes_per_second;  // null: not measured yet
  std::optional<std::string> rebuild_rate_source;       // "repair", "backup", "restore"
};
struct Health {
  bool live = true;
  bool ready = true;
  std::vector<std::string> problems;
  std::string index = "ok";
  uint64_t peers_known = 0;
  uint64_t peers_alive = 0;
  // What each snapshot survives now (engine/snapshot_health.h, with "rebuild_seconds"; shapes
  // in docs/cli.md "Local HTTP API"); stays JSON here.
  Json snapshots = Json::array();
  SnapshotHealthSummary snapshot_health;
};
Json ToJson(const Health& r);
absl::Status FromJson(const Json& j, Health* r);

// The progress of a running job (GET /v1/jobs/ID "progress", the job events). Backup and
// restore: {"files_total","bytes_total" (known once the scan is done),"scan_done","files_done",
// "bytes_done"}; a backup adds {"bytes_read","new_bytes","sent_bytes","chunks","new_chunks",
// "files_read","files_unchanged","files_changed_during_read"}. Check and repair:
// {"chunks_total","chunks_done","bytes_done" (bytes read)}.
struct TransferProgress {
  uint64_t files_total = 0;
  uint64_t bytes_total = 0;
  bool scan_done = false;
  uint64_t files_done = 0;
  uint64_t bytes_done = 0;
};
Json ToJson(const TransferProgress& r);
absl::Status FromJson(const Json& j, TransferProgress* r);
struct BackupProgressInfo {
  TransferProgress transfer;
  uint64_t bytes_read = 0;
  uint64_t new_bytes = 0;
  uint64_t sent_bytes = 0;
  uint64_t chunks = 0;
  uint64_t new_chunks = 0;
  uint64_t files_read = 0;
  uint64_t files_unchanged = 0;
  uint64_t files_changed_during_read = 0;
};
Json ToJson(const BackupProgressInfo& r);
absl::Status FromJson(const Json& j, BackupProgressInfo* r);
struct ChunkProgress {
  uint64_t chunks_total = 0;  // 0 while the chunks are being collected
  uint64_t chunks_done = 0;
  uint64_t bytes_done = 0;
};
Json ToJson(const ChunkProgress& r);
absl::Status FromJson(const Json& j, ChunkProgress* r);

// The result of a backup job (GET /v1/jobs/ID "result"; `cairn backup --json`; docs/cli.md
// "Commands": backup): {"snapshot_id","short_id","files","files_read","files_unchanged","rehash",
// "files_changed_same_metadata","files_reread","files_changed_during_read","directories","bytes",
// "bytes_read","new_bytes","sent_bytes","chunks","new_chunks","duration_seconds","copies","ec"
// ("K+M" or null),"offsite","warnings":[...],"errors":[...] (raw bytes),"chunks_below_target",
// "redundancy_warning" (or null),"degraded"} and, after a source's policy ran, "retention".
struct BackupAnswer {
  std::string snapshot_id;  // 64 hex digits
  std::string short_id;     // its first 8
  uint64_t files = 0;
  uint64_t files_read = 0;       // read and chunked
  uint64_t files_unchanged = 0;  // taken from the parent snapshot
  bool rehash = false;           // unchanged by content (--rehash), not by metadata
  uint64_t files_changed_same_metadata = 0;
  uint64_t files_reread = 0;               // changed while read, read again
  uint64_t files_changed_during_read = 0;  // kept changing: stored as read
  uint64_t directories = 0;
  uint64_t bytes = 0;       // file bytes in the snapshot
  uint64_t bytes_read = 0;  // read from disk
  uint64_t new_bytes = 0;   // in new chunks
  uint64_t sent_bytes = 0;  // to the peers, all copies or shards
  uint64_t chunks = 0;
  uint64_t new_chunks = 0;
  double duration_seconds = 0;
  uint32_t copies = 0;
  std::optional<std::string> ec;  // "K+M" when erasure coded
  uint32_t offsite = 0;
  std::vector<std::string> warnings;  // raw bytes
  std::vector<std::string> errors;    // files that could not be read; raw bytes
  uint64_t chunks_below_target = 0;
  std::optional<std::string> redundancy_warning;
  bool degraded = false;
  // What the source's retention policy forgot ({"forgot",...} or {"error"}); stays JSON here.
  Json retention;
};
Json ToJson(const BackupAnswer& r);
absl::Status FromJson(const Json& j, BackupAnswer* r);

// The result of a restore job (`cairn restore --json`): {"snapshot_id","short_id","target" (raw
// bytes),"files","directories","symlinks","hardlinks","bytes","duration_seconds","errors":[...]
// (paths that could not be restored, with why; raw bytes)}.
struct RestoreAnswer {
  std::string snapshot_id;
  std::string short_id;
  std::string target;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t bytes = 0;
  double duration_seconds = 0;
  std::vector<std::string> errors;
};
Json ToJson(const RestoreAnswer& r);
absl::Status FromJson(const Json& j, RestoreAnswer* r);

// Parts of the check and repair results. Chunks below target for want of storage peers, by
// target: {"target","chunks","message"}; chunks below target by the peer losses they survive:
// {"peers","chunks","message"}.
struct ShortfallInfo {
  uint32_t target = 0;
  uint64_t chunks = 0;
  std::string message;
};
struct ToleranceInfo {
  uint32_t peers = 0;
  uint64_t chunks = 0;
  std::string message;
};
Json ToJson(const ShortfallInfo& r);
absl::Status FromJson(const Json& j, ShortfallInfo* r);
Json ToJson(const ToleranceInfo& r);
absl::Status FromJson(const Json& j, ToleranceInfo* r);

// One snapshot's chunks in a check: {"id","short_id","chunks","at_target","below_target","lost"}.
struct SnapshotCheck {
  std::string id;
  std::string short_id;
  uint64_t chunks = 0;
  uint64_t at_target = 0;
  uint64_t below_target = 0;
  uint64_t lost = 0;
};
Json ToJson(const SnapshotCheck& r);
absl::Status FromJson(const Json& j, SnapshotCheck* r);
// A chunk below target: {"chunk" (hex),"missing" (blobs)}.
struct BelowTargetChunk {
  std::string chunk;
  uint32_t missing = 0;
};
Json ToJson(const BelowTargetChunk& r);
absl::Status FromJson(const Json& j, BelowTargetChunk* r);
// A blob a check read and found corrupt: {"chunk" (hex),"shard","peer","reason"}.
struct CorruptBlobInfo {
  std::string chunk;
  uint32_t shard = 0;
  uint64_t peer = 0;
  std::string reason;
};
Json ToJson(const CorruptBlobInfo& r);
absl::Status FromJson(const Json& j, CorruptBlobInfo* r);

// The result of a check job (`cairn check --json`, docs/cli.md "Commands": check): {"healthy",
// "chunks","at_target","below_target","without_offsite","lost","corrupt","blobs_read",
// "bytes_read","snapshots":[...],"below_target_detail":[...] (at most 100),"storage_peers",
// "short_of_peers":[...],"survives":[...],"corrupt_blobs":[...],"errors":[...]}.
struct CheckAnswer {
  bool healthy = false;
  uint64_t chunks = 0;
  uint64_t at_target = 0;
  uint64_t below_target = 0;
  uint64_t without_offsite = 0;  // of below_target: short of their off-site copies
  uint64_t lost = 0;
  uint64_t corrupt = 0;
  uint64_t blobs_read = 0;  // --read-data
  uint64_t bytes_read = 0;
  std::vector<SnapshotCheck> snapshots;
  std::vector<BelowTargetChunk> below_target_detail;
  uint64_t storage_peers = 0;  // alive storage peers other than this one
  std::vector<ShortfallInfo> short_of_peers;
  std::vector<ToleranceInfo> survives;
  std::vector<CorruptBlobInfo> corrupt_blobs;
  std::vector<std::string> errors;
};
Json ToJson(const CheckAnswer& r);
absl::Status FromJson(const Json& j, CheckAnswer* r);

// The result of a repair job (`cairn repair --json`): {"chunks","repaired","blobs_written",
// "bytes_sent","still_below_target","lost","storage_peers","short_of_peers":[...],
// "unimprovable","survives":[...],"errors":[...],"errors_omitted"}.
struct RepairAnswer {
  uint64_t chunks = 0;
  uint64_t repaired = 0;
  uint64_t blobs_written = 0;
  uint64_t bytes_sent = 0;
  uint64_t still_below_target = 0;
  uint64_t lost = 0;
  uint64_t storage_peers = 0;
  std::vector<ShortfallInfo> short_of_peers;
  uint64_t unimprovable = 0;  // below target as far as the alive peers allow
  std::vector<ToleranceInfo> survives;
  std::vector<std::string> errors;  // per chunk, the first 10
  uint64_t errors_omitted = 0;      // chunks that failed beyond those
};
Json ToJson(const RepairAnswer& r);
absl::Status FromJson(const Json& j, RepairAnswer* r);

// Garbage collection after forget or delete (docs/operations.md "Forgetting snapshots and
// garbage collection"): "gc":{"snapshots","referenced_chunks","unreferenced_chunks",
// "unreferenced_bytes","deletions_queued","targets_lowered","targets_raised"} and
// "deletions":{"delivered","peers_done","peers_unreachable","pending" (queued for offline
// peers)}.
struct GcInfo {
  uint64_t snapshots = 0;
  uint64_t referenced_chunks = 0;
  uint64_t unreferenced_chunks = 0;
  uint64_t unreferenced_bytes = 0;  // on the peers
  uint64_t deletions_queued = 0;
  uint64_t targets_lowered = 0;
  uint64_t targets_raised = 0;
};
struct DeliveryInfo {
  uint64_t delivered = 0;
  uint64_t peers_done = 0;
  uint64_t peers_unreachable = 0;
  uint64_t pending = 0;
};
struct GarbageCollected {
  GcInfo gc;
  DeliveryInfo deletions;
};
Json ToJson(const GcInfo& r);
absl::Status FromJson(const Json& j, GcInfo* r);
Json ToJson(const DeliveryInfo& r);
absl::Status FromJson(const Json& j, DeliveryInfo* r);

// A snapshot forget kept or removed: the snapshot (SnapshotInfo's fields) and restic's reasons,
// {...,"reasons":["last snapshot",...]}.
struct ForgetDecision {
  SnapshotInfo snapshot;
  std::vector<std::string> reasons;
};
Json ToJson(const ForgetDecision& r);
absl::Status FromJson(const Json& j, ForgetDecision* r);

// The result of a forget job (`cairn forget --json`) and the "retention" of a backup after a
// source's policy ran: {"dry_run","kept":[...],"removed":[...]} and, after removals, either
// "gc" and "deletions" (pruned) or "targets":{"targets_lowered","targets_raised"} (--no-prune).
struct ForgetAnswer {
  bool dry_run = false;
  std::vector<ForgetDecision> kept;
  std::vector<ForgetDecision> removed;
  std::optional<GcInfo> gc;
  std::optional<DeliveryInfo> deletions;
  std::optional<GcInfo> targets;  // only targets_lowered and targets_raised are sent
};
Json ToJson(const ForgetAnswer& r);
absl::Status FromJson(const Json& j, ForgetAnswer* r);

// The result of a delete job (`cairn delete --json`): {"path" (raw bytes),"rewritten":[{"old_id",
// "old_short_id","new_id","new_short_id","removed_files","removed_bytes"}],"unchanged" (snapshots
// without the path),"gc","deletions"}.
struct RewrittenSnapshot {
  std::string old_id;
  std::string old_short_id;
  std::string new_id;
  std::string new_short_id;
  uint64_t removed_files = 0;
  uint64_t removed_bytes = 0;
};
Json ToJson(const RewrittenSnapshot& r);
absl::Status FromJson(const Json& j, RewrittenSnapshot* r);
struct DeleteAnswer {
  std::string path;
  std::vector<RewrittenSnapshot> rewritten;
  uint64_t unchanged = 0;
  std::optional<GcInfo> gc;
  std::optional<DeliveryInfo> deletions;
};
Json ToJson(const DeleteAnswer& r);
absl::Status FromJson(const Json& j, DeleteAnswer* r);

// The result of a reclaim job (`cairn reclaim --json`): {"quota","old_quota","used",
// "moved_blobs","moved_bytes","evicted_blobs","evicted_bytes","notices_delivered"}.
struct ReclaimAnswer {
  uint64_t quota = 0;
  uint64_t old_quota = 0;
  uint64_t used = 0;
  uint64_t moved_blobs = 0;  // regular blobs handed to other peers
  uint64_t moved_bytes = 0;
  uint64_t evicted_blobs = 0;  // extra copies dropped
  uint64_t evicted_bytes = 0;
  uint64_t notices_delivered = 0;  // BlobMoved notices the owners took at once
};
Json ToJson(const ReclaimAnswer& r);
absl::Status FromJson(const Json& j, ReclaimAnswer* r);

// The result of an index rebuild job (`cairn index rebuild --json`; also `cairn recover --json`
// with "peer_id" and "dir"; docs/operations.md "When the index is damaged"): {"complete",
// "peers_listed":[ids],"peers_not_listed":[ids],"blobs","chunks","data_chunks","tree_chunks",
// "snapshot_chunks","erasure_chunks","headers_read","trees","snapshots":[SnapshotInfo],
// "snapshots_unreadable","missing_chunks","chunks_below_target","plain_sizes_unknown",
// "errors":[...]}; when the peers hold nothing to rebuild, {"complete":true,"snapshots":[],
// "note"}.
struct IndexRebuildAnswer {
  bool complete = false;
  std::optional<std::string> note;  // nothing to rebuild: why
  std::vector<uint64_t> peers_listed;
  std::vector<uint64_t> peers_not_listed;
  uint64_t blobs = 0;
  uint64_t chunks = 0;
  uint64_t data_chunks = 0;
  uint64_t tree_chunks = 0;
  uint64_t snapshot_chunks = 0;
  uint64_t erasure_chunks = 0;
  uint64_t headers_read = 0;
  uint64_t trees = 0;
  std::vector<SnapshotInfo> snapshots;
  uint64_t snapshots_unreadable = 0;
  uint64_t missing_chunks = 0;  // referenced, on no live peer
  uint64_t chunks_below_target = 0;
  uint64_t plain_sizes_unknown = 0;
  std::vector<std::string> errors;
};
Json ToJson(const IndexRebuildAnswer& r);
absl::Status FromJson(const Json& j, IndexRebuildAnswer* r);

// GET /v1/status and `cairn status --json` (docs/cli.md "Commands": status): this peer as a
// storage peer and as a home peer. Sizes in bytes, times in Unix ns unless said otherwise.

// A scrub pass's counts (store::ScrubCounts): blobs re-hashed and their bytes, and what it found.
struct ScrubPassInfo {
  uint64_t checked = 0;
  uint64_t bytes = 0;
  uint64_t corrupt = 0;
  uint64_t missing = 0;
  uint64_t errors = 0;
  std::string started;                  // RFC 3339
  std::optional<std::string> finished;  // RFC 3339; the last pass only
  std::optional<int64_t> finished_ns;   // the last pass only
  std::optional<double> seconds;        // the last pass only
};
Json ToJson(const ScrubPassInfo& r);
absl::Status FromJson(const Json& j, ScrubPassInfo* r);
// "scrub": {"enabled","interval" (e.g. "7d"),"rate" (bytes/s),"running","last_pass" (null or a
// pass),"current_pass" (null or a pass),"next_pass" (RFC 3339 or null),"next_pass_ns",
// "quarantined","quarantined_bytes"}.
struct ScrubStatus {
  bool enabled = false;
  std::string interval;
  uint64_t rate = 0;
  bool running = false;
  std::optional<ScrubPassInfo> last_pass;
  std::optional<ScrubPassInfo> current_pass;
  std::optional<std::string> next_pass;
  std::optional<int64_t> next_pass_ns;
  uint64_t quarantined = 0;
  uint64_t quarantined_bytes = 0;
};
Json ToJson(const ScrubStatus& r);
absl::Status FromJson(const Json& j, ScrubStatus* r);

// "index" (docs/operations.md "When the index is damaged"): {"state":"ok|checking|rebuilding|
// rebuilt|failed","problem","kept_aside","job_id","error" (each a string or null),"rebuilt"
// (an IndexRebuildSummary, or null)}.
// What the last index rebuild found: {"complete","snapshots" (a count),"chunks","peers_listed",
// "missing_chunks","chunks_below_target"}, or {"complete":true,"snapshots":0,"note"} when there
// was nothing to rebuild.
struct IndexRebuildSummary {
  bool complete = false;
  uint64_t snapshots = 0;
  uint64_t chunks = 0;
  std::vector<uint64_t> peers_listed;
  uint64_t missing_chunks = 0;
  uint64_t chunks_below_target = 0;
  std::optional<std::string> note;
};
Json ToJson(const IndexRebuildSummary& r);
absl::Status FromJson(const Json& j, IndexRebuildSummary* r);
struct IndexStatus {
  std::string state = "ok";
  std::optional<std::string> problem;          // what was wrong with index.db
  std::optional<std::string> kept_aside;       // where the damaged file was moved
  std::optional<std::string> job_id;           // the rebuild job
  std::optional<std::string> error;            // why the last rebuild failed
  std::optional<IndexRebuildSummary> rebuilt;  // since the peer started
};
Json ToJson(const IndexStatus& r);
absl::Status FromJson(const Json& j, IndexStatus* r);

// "storage" (docs/operations.md "Storage: segments and compaction"): {"layout":"segments|files",
// "live_bytes","dead_bytes"} and, with segments, {"segments","compactions",
// "compaction_copied_bytes","compaction_reclaimed_bytes","compacting":{"segment","done_bytes",
// "total_bytes"} (while one is rewritten)}; "migration":{...} while blob files move to segments.
struct CompactionProgress {
  uint64_t segment = 0;
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};
struct LayoutMigrationStatus {
  bool done = false;
  uint64_t moved_blobs = 0;
  uint64_t moved_bytes = 0;
  uint64_t remaining_blobs = 0;
  uint64_t remaining_bytes = 0;
  uint64_t damaged_blobs = 0;
  uint64_t missing_blobs = 0;
};
Json ToJson(const CompactionProgress& r);
absl::Status FromJson(const Json& j, CompactionProgress* r);
Json ToJson(const LayoutMigrationStatus& r);
absl::Status FromJson(const Json& j, LayoutMigrationStatus* r);
struct StorageStatus {
  std::string layout = "segments";  // "segments" or "files" (one file per blob)
  uint64_t live_bytes = 0;
  uint64_t dead_bytes = 0;
  std::optional<uint64_t> segments;  // the segment counters: segments only
  std::optional<uint64_t> compactions;
  std::optional<uint64_t> compaction_copied_bytes;
  std::optional<uint64_t> compaction_reclaimed_bytes;
  std::optional<CompactionProgress> compacting;
  std::optional<LayoutMigrationStatus> migration;
};
Json ToJson(const StorageStatus& r);
absl::Status FromJson(const Json& j, StorageStatus* r);

// "bucket" of a bucket peer (docs/operations.md "Requests and costs"), null without one:
// {"url","endpoint","region"} and the S3 client's counters since start, {"requests":{kind:n},
// "requests_total","retries","failures","errors":{class:n},"errors_total","bytes_sent",
// "bytes_received"}.
struct BucketStatus {
  std::string url;
  std::optional<std::string> endpoint;
  std::optional<std::string> region;
  bool counted = false;                                    // the counters below were sent
  std::vector<std::pair<std::string, uint64_t>> requests;  // by kind, in the peer's order
  uint64_t requests_total = 0;
  uint64_t retries = 0;
  uint64_t failures = 0;
  std::vector<std::pair<std::string, uint64_t>> errors;  // by class
  uint64_t errors_total = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};
Json ToJson(const BucketStatus& r);
absl::Status FromJson(const Json& j, BucketStatus* r);

// One owner's blobs on this storage peer: {"owner","blobs","bytes","extra_blobs","extra_bytes"}.
struct OwnerUsageInfo {
  uint64_t owner = 0;
  uint64_t blobs = 0;
  uint64_t bytes = 0;
  uint64_t extra_blobs = 0;
  uint64_t extra_bytes = 0;
};
Json ToJson(const OwnerUsageInfo& r);
absl::Status FromJson(const Json& j, OwnerUsageInfo* r);
// "home": this peer as a home peer. logical_bytes: file bytes over all snapshots; unique_bytes:
// after deduplication; stored_bytes: on the peers, all copies and shards; one_copy_bytes: one
// compressed copy; dedup_ratio = logical / unique; redundancy_overhead = stored / one copy.
struct HomeStatus {
  uint64_t snapshots = 0;
  uint64_t logical_bytes = 0;
  uint64_t unique_bytes = 0;
  uint64_t stored_bytes = 0;
  uint64_t one_copy_bytes = 0;
  double dedup_ratio = 0;
  double redundancy_overhead = 0;
  uint64_t chunks = 0;
  uint64_t chunks_at_target = 0;
  uint64_t chunks_below_target = 0;
  uint64_t extra_blobs = 0;
  uint64_t extra_bytes = 0;
  uint64_t pending_deletions = 0;
  std::optional<uint64_t> chunks_without_offsite;  // null: could not be counted
};
Json ToJson(const HomeStatus& r);
absl::Status FromJson(const Json& j, HomeStatus* r);
struct PeerStatus {
  uint64_t peer_id = 0;
  std::string host_id;
  std::string site;
  std::string address;                         // the peer protocol's, host:port
  std::string api;                             // this API's, host:port
  std::optional<std::string> metrics_address;  // the [metrics] listener as bound; null: off
  uint64_t quota = 0;
  uint64_t used = 0;
  uint64_t room = 0;                  // for new blobs: quota and disk space both allow it
  std::optional<uint64_t> disk_free;  // null: unknown
  uint64_t disk_reserve = 0;          // kept free on the disk
  uint64_t blobs = 0;                 // held for other owners
  uint64_t extra_blobs = 0;           // of which extra copies
  uint64_t extra_bytes = 0;
  std::vector<OwnerUsageInfo> owners;  // by owner
  uint64_t moved_notices_pending = 0;  // BlobMoved notices waiting for their owners
  uint64_t snapshots = 0;
  uint64_t chunks = 0;
  uint64_t chunks_at_target = 0;
  uint64_t chunks_below_target = 0;
  uint64_t plain_bytes = 0;
  uint64_t stored_bytes = 0;
  std::optional<uint64_t> chunks_without_offsite;  // short of their off-site copies; null: unknown
  ScrubStatus scrub;
  IndexStatus index;
  StorageStatus storage;
  std::optional<BucketStatus> bucket;
  std::optional<HomeStatus> home;  // absent when the catalog could not be read
};
Json ToJson(const PeerStatus& r);
absl::Status FromJson(const Json& j, PeerStatus* r);

// A source the peer keeps backed up (docs/cli.md "Commands": source add, source list): POST
// /v1/sources answers the one added (201, without `state`) and GET /v1/sources lists them all
// (an array of these, with `state`; `cairn source list --json`): {"path" (raw bytes),"copies"
// (null: the [backup] default),"ec" ("K+M" or null),"excludes":[],"schedule" ("" = none),
// "watch","keep":{the keep_* that are set}} and, listed, {"watching","watches","pending",
// "running_job" (id or null),"backups","last_backup"}.
// The last backup of a source that finished, or failed to start: {"job_id" (absent when it
// could not start),"state":"done|failed","time" (RFC 3339),"snapshot_id","short_id" (done),
// "error" (failed)}.
struct LastBackup {
  std::optional<std::string> job_id;
  std::string state;  // "done" or "failed"
  std::string time;
  std::optional<std::string> snapshot_id;
  std::optional<std::string> short_id;
  std::optional<std::string> error;
};
Json ToJson(const LastBackup& r);
absl::Status FromJson(const Json& j, LastBackup* r);
struct SourceState {
  bool watching = false;  // its root is watched
  uint64_t watches = 0;   // directories watched
  bool pending = false;   // changes not yet backed up
  std::optional<std::string> running_job;
  uint64_t backups = 0;                   // started since the peer started
  std::optional<LastBackup> last_backup;  // null until a backup of it finished
};
struct SourceInfo {
  std::string path;  // absolute, raw bytes
  std::optional<uint32_t> copies;
  std::optional<std::string> ec;
  std::vector<std::string> excludes;  // globs, raw bytes
  std::string schedule;               // "1h", "" = none
  bool watch = true;
  engine::RetentionPolicy keep;      // empty: [retention] applies
  std::optional<SourceState> state;  // GET /v1/sources only
};
Json ToJson(const SourceInfo& r);
absl::Status FromJson(const Json& j, SourceInfo* r);

// An entry of a snapshot as GET /v1/ls lists it (an array of these; `cairn ls --json`, `cairn
// mount`): {"path" (inside the snapshot, raw bytes),"type":"file|dir|symlink","size" (bytes),
// "mode","mtime" (RFC 3339 with ns),"mtime_ns","uid","gid","target" (symlinks only, raw bytes)}.
struct LsEntry {
  std::string path;
  std::string type;  // "file", "dir", "symlink"
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits (st_mode & 07777)
  int64_t mtime_ns = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<std::string> target;  // symlinks
};
Json ToJson(const LsEntry& r);
absl::Status FromJson(const Json& j, LsEntry* r);

// One side of a change in GET /v1/diff: the entry's type ("file","dir","symlink"), size in
// bytes and permission bits in that snapshot.
struct DiffSide {
  std::string type;
  uint64_t size = 0;
  uint32_t mode = 0;
};

// A change between two snapshots (GET /v1/diff "changes"): {"change":"added|removed|modified",
// "path" (inside the snapshots, raw bytes),"source_path" (on the backed-up machine, when known),
// "type" (after the change, or before for a removal),"type_before","size_before","mode_before"
// (not for an addition),"type_after","size_after","mode_after" (not for a removal), and for a
// modification "content_changed","type_changed","mode_changed"}.
struct DiffChange {
  std::string change;  // "added", "removed", "modified"
  std::string path;
  std::optional<std::string> source_path;
  std::string type;
  std::optional<DiffSide> before;  // absent for "added"
  std::optional<DiffSide> after;   // absent for "removed"
  bool content_changed = false;    // these three: "modified" only
  bool type_changed = false;
  bool mode_changed = false;
};
Json ToJson(const DiffChange& r);
absl::Status FromJson(const Json& j, DiffChange* r);

// A snapshot a diff compares: {"id","short_id","time" (RFC 3339),"time_ns"}.
struct DiffSnapshot {
  std::string id;  // hex
  int64_t time_ns = 0;
};

// GET /v1/diff?a=SNAP&b=SNAP (`cairn diff`): {"a","b","changes":[...],"added","removed",
// "modified" (entry counts),"added_bytes","removed_bytes" (bytes of added and removed files),
// "identical_subtrees" (directories skipped as equal)}.
struct DiffAnswer {
  DiffSnapshot a;
  DiffSnapshot b;
  std::vector<DiffChange> changes;
  uint64_t added = 0;
  uint64_t removed = 0;
  uint64_t modified = 0;
  uint64_t added_bytes = 0;
  uint64_t removed_bytes = 0;
  uint64_t identical_subtrees = 0;
};
Json ToJson(const DiffAnswer& r);
absl::Status FromJson(const Json& j, DiffAnswer* r);

// An entry found by GET /v1/find (an array of these; `cairn find`): {"snapshot_id",
// "snapshot_short_id","snapshot_time" (RFC 3339),"snapshot_time_ns","path" (on the backed-up
// machine, raw bytes),"snapshot_path" (inside the snapshot),"type","size" (bytes),"mode",
// "mtime" (RFC 3339 with ns),"mtime_ns"}.
struct FindMatch {
  std::string snapshot_id;  // hex
  int64_t snapshot_time_ns = 0;
  std::string path;
  std::string snapshot_path;
  std::string type;  // "file", "dir", "symlink"
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
};
Json ToJson(const FindMatch& r);
absl::Status FromJson(const Json& j, FindMatch* r);

// The array answers (GET /v1/snapshots, /v1/peers, /v1/jobs): each element as its type.
template <typename T>
Json ToJson(const std::vector<T>& list) {
  Json out = Json::array();
  for (const T& e : list) out.push_back(ToJson(e));
  return out;
}
template <typename T>
absl::Status FromJson(const Json& j, std::vector<T>* list) {
  if (!j.is_array()) return absl::InvalidArgumentError("the answer is not a JSON array");
  list->clear();
  for (const Json& e : j) {
    T value;
    CAIRN_RETURN_IF_ERROR(FromJson(e, &value));
    list->push_back(std::move(value));
  }
  return absl::OkStatus();
}

}  // namespace cairn::api
