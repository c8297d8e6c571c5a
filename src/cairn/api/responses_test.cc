#include "cairn/api/responses.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cairn::api {
namespace {

// ToJson then Decode gives the value back (each field's name is written once, in responses.cc).
template <typename T>
T RoundTrip(const T& value) {
  absl::StatusOr<T> back = Decode<T>(ToJson(value));
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : T{};
}

SnapshotInfo SampleSnapshot() {
  SnapshotInfo s;
  s.id = std::string(64, 'a');
  s.short_id = std::string(8, 'a');
  s.time_ns = 1763805600123456789;
  s.hostname = "h\xff";  // not UTF-8: carried as hostname_base64
  s.paths = {"/home/alice", std::string("/caf\xe9", 5)};
  s.tags = {"daily"};
  s.parent = std::string(64, 'b');
  s.copies = 2;
  s.ec = "4+2";
  s.files = 12;
  s.directories = 3;
  s.bytes = 1 << 20;
  return s;
}

TEST(SnapshotInfoJsonTest, RoundTripAndShape) {
  const SnapshotInfo s = SampleSnapshot();
  Json j = ToJson(s);
  EXPECT_EQ(j["time"], "2025-11-22T10:00:00Z");
  EXPECT_TRUE(j.contains("hostname_base64"));
  EXPECT_TRUE(j.contains("paths_base64"));
  SnapshotInfo back = RoundTrip(s);
  EXPECT_EQ(back.id, s.id);
  EXPECT_EQ(back.short_id, s.short_id);
  EXPECT_EQ(back.time_ns, s.time_ns);
  EXPECT_EQ(back.hostname, s.hostname);
  EXPECT_EQ(back.paths, s.paths);
  EXPECT_EQ(back.tags, s.tags);
  EXPECT_EQ(back.parent, s.parent);
  EXPECT_EQ(back.copies, s.copies);
  EXPECT_EQ(back.ec, s.ec);
  EXPECT_EQ(back.files, s.files);
  EXPECT_EQ(back.directories, s.directories);
  EXPECT_EQ(back.bytes, s.bytes);
  EXPECT_EQ(ToJson(back), j);

  // No parent, no erasure coding: null on the wire, unset after decoding.
  SnapshotInfo plain = s;
  plain.parent.reset();
  plain.ec.reset();
  Json pj = ToJson(plain);
  EXPECT_TRUE(pj["parent"].is_null());
  EXPECT_TRUE(pj["ec"].is_null());
  EXPECT_FALSE(RoundTrip(plain).ec.has_value());

  // An array answer decodes element by element.
  auto list = Decode<std::vector<SnapshotInfo>>(ToJson(std::vector<SnapshotInfo>{s, plain}));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].parent, std::nullopt);
}

TEST(SnapshotInfoJsonTest, MalformedAnswersNameTheField) {
  EXPECT_TRUE(absl::IsInvalidArgument(Decode<SnapshotInfo>(Json::object()).status()));
  Json j = ToJson(SampleSnapshot());
  j["files"] = "many";
  absl::Status bad = Decode<SnapshotInfo>(j).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("files"), std::string::npos) << bad;
  EXPECT_TRUE(absl::IsInvalidArgument(Decode<std::vector<SnapshotInfo>>(Json::object()).status()));
}

TEST(PeerInfoJsonTest, RoundTrip) {
  PeerInfo p;
  p.peer_id = 7;
  p.host_id = "box";
  p.site = "attic";
  p.address = "192.0.2.7:7001";
  p.quota = 200;
  p.used = 50;
  p.room = 150;
  p.disk_room = 120;
  p.state = "suspect";
  p.node_id = std::string(32, 'c');
  p.cert_fingerprint = std::string(64, 'd');
  p.last_seen_ns = 1763805600000000000;
  p.clock_offset_seconds = -1.5;
  p.clock_skewed = true;
  p.clock_window_seconds = 300;
  Json j = ToJson(p);
  EXPECT_EQ(j["last_seen"], "2025-11-22T10:00:00Z");
  PeerInfo back = RoundTrip(p);
  EXPECT_EQ(ToJson(back), j);
  EXPECT_EQ(back.disk_room, p.disk_room);
  EXPECT_EQ(back.clock_offset_seconds, p.clock_offset_seconds);

  // Never seen, not measured, disk unknown: nulls, and unset again after decoding.
  PeerInfo fresh;
  fresh.peer_id = 2;
  fresh.state = "alive";
  Json fj = ToJson(fresh);
  EXPECT_TRUE(fj["last_seen"].is_null());
  EXPECT_TRUE(fj["clock_offset_seconds"].is_null());
  EXPECT_TRUE(fj["disk_room"].is_null());
  PeerInfo fback = RoundTrip(fresh);
  EXPECT_FALSE(fback.clock_offset_seconds.has_value());
  EXPECT_FALSE(fback.disk_room.has_value());
  EXPECT_EQ(ToJson(fback), fj);
  EXPECT_TRUE(absl::IsInvalidArgument(Decode<PeerInfo>(Json{{"host_id", "x"}}).status()));
}

TEST(JobInfoJsonTest, RoundTripEachState) {
  JobInfo running{"j1",         "backup",    "running", 5, Json{{"files_done", 3}},
                  std::nullopt, std::nullopt};
  Json rj = ToJson(running);
  EXPECT_FALSE(rj.contains("result"));
  EXPECT_FALSE(rj.contains("error"));
  EXPECT_EQ(ToJson(RoundTrip(running)), rj);

  JobInfo done = running;
  done.state = "done";
  done.result = Json{{"snapshot_id", "ab"}};
  EXPECT_EQ(ToJson(RoundTrip(done)), ToJson(done));
  EXPECT_EQ(*RoundTrip(done).result, *done.result);

  JobInfo failed = running;
  failed.state = "failed";
  failed.error = absl::NotFoundError("no snapshot 'x'");
  JobInfo fback = RoundTrip(failed);
  ASSERT_TRUE(fback.error.has_value());
  EXPECT_EQ(*fback.error, *failed.error);
  EXPECT_EQ(ToJson(fback), ToJson(failed));

  EXPECT_TRUE(absl::IsInvalidArgument(Decode<JobInfo>(Json{{"id", "j"}}).status()));
}

TEST(VersionListJsonTest, RoundTrip) {
  FileVersionInfo file;
  file.snapshot_id = std::string(64, '1');
  file.snapshot_time_ns = 1763805600000000000;
  file.last_snapshot_id = std::string(64, '2');
  file.last_snapshot_time_ns = 1763892000000000000;
  file.snapshots = 2;
  file.snapshot_path = "home/alice/report.odt";
  file.type = "file";
  file.size = 4096;
  file.mode = 0644;
  file.mtime_ns = 1763805500123456789;
  file.content_hash = std::string(64, 'e');
  FileVersionInfo link = file;
  link.type = "symlink";
  link.target = std::string("t\xff", 2);
  VersionList list{"/home/alice/report.odt", true, {file, link}};
  Json j = ToJson(list);
  EXPECT_EQ(j["versions"][0]["snapshot_short_id"], "11111111");
  EXPECT_EQ(j["versions"][0]["mtime"], "2025-11-22T09:58:20.123456789Z");
  EXPECT_FALSE(j["versions"][0].contains("target"));
  EXPECT_TRUE(j["versions"][1].contains("target_base64"));
  VersionList back = RoundTrip(list);
  EXPECT_EQ(back.path, list.path);
  EXPECT_TRUE(back.collapsed);
  ASSERT_EQ(back.versions.size(), 2u);
  EXPECT_FALSE(back.versions[0].target.has_value());
  EXPECT_EQ(back.versions[1].target, link.target);
  EXPECT_EQ(ToJson(back), j);
  EXPECT_TRUE(absl::IsInvalidArgument(Decode<VersionList>(Json{{"path", "/x"}}).status()));
}

TEST(HealthJsonTest, RoundTripAndShape) {
  Health h;
  h.ready = false;
  h.problems = {"the index is being rebuilt from the peers (rebuild requested)"};
  h.index = "rebuilding";
  h.peers_known = 3;
  h.peers_alive = 2;
  h.snapshots = Json::array({Json{{"short_id", "3fa2c1d9"}, {"rebuild_seconds", 12.0}}});
  h.snapshot_health.computed_at = "2026-11-22T10:00:00Z";
  h.snapshot_health.age_seconds = 42;
  h.snapshot_health.compute_seconds = 1.5;
  h.snapshot_health.rebuild_rate_bytes_per_second = 1e6;
  h.snapshot_health.rebuild_rate_source = "repair";
  Json j = ToJson(h);
  // The names docs/cli.md documents (the dashboard and the cluster tests read them).
  for (const char* name : {"live", "ready", "problems", "index", "peers_known", "peers_alive",
                           "snapshots", "snapshot_health"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  for (const char* name : {"computed_at", "age_seconds", "compute_seconds", "error",
                           "rebuild_rate_bytes_per_second", "rebuild_rate_source"}) {
    EXPECT_TRUE(j["snapshot_health"].contains(name)) << name;
  }
  EXPECT_TRUE(j["snapshot_health"]["error"].is_null());
  Health back = RoundTrip(h);
  EXPECT_EQ(back.live, h.live);
  EXPECT_EQ(back.ready, h.ready);
  EXPECT_EQ(back.problems, h.problems);
  EXPECT_EQ(back.index, h.index);
  EXPECT_EQ(back.peers_known, h.peers_known);
  EXPECT_EQ(back.peers_alive, h.peers_alive);
  EXPECT_EQ(back.snapshots, h.snapshots);
  EXPECT_EQ(back.snapshot_health.computed_at, h.snapshot_health.computed_at);
  EXPECT_EQ(back.snapshot_health.age_seconds, h.snapshot_health.age_seconds);
  EXPECT_EQ(back.snapshot_health.compute_seconds, h.snapshot_health.compute_seconds);
  EXPECT_FALSE(back.snapshot_health.error.has_value());
  EXPECT_EQ(back.snapshot_health.rebuild_rate_source, h.snapshot_health.rebuild_rate_source);
  EXPECT_EQ(ToJson(back), j);

  // Before the first computation every summary field is null, and decodes unset.
  Health fresh = RoundTrip(Health{});
  EXPECT_TRUE(fresh.ready);
  EXPECT_FALSE(fresh.snapshot_health.computed_at.has_value());
  EXPECT_FALSE(fresh.snapshot_health.rebuild_rate_bytes_per_second.has_value());

  EXPECT_FALSE(Decode<Health>(Json{{"live", true}}).ok());  // "ready" is required
  EXPECT_FALSE(Decode<Health>(Json{{"ready", true}, {"problems", "x"}}).ok());
}

TEST(BackupAnswerJsonTest, RoundTripAndShape) {
  BackupAnswer a;
  a.snapshot_id = std::string(64, 'c');
  a.short_id = std::string(8, 'c');
  a.files = 10;
  a.files_read = 4;
  a.files_unchanged = 6;
  a.files_reread = 1;
  a.directories = 3;
  a.bytes = 1000;
  a.bytes_read = 400;
  a.new_bytes = 300;
  a.sent_bytes = 600;
  a.chunks = 12;
  a.new_chunks = 5;
  a.duration_seconds = 1.25;
  a.copies = 2;
  a.ec = "4+2";
  a.offsite = 1;
  a.warnings = {"skipped /dev/x: a device"};
  a.errors = {std::string("/home/caf\xe9: permission denied")};  // not UTF-8
  a.chunks_below_target = 2;
  a.redundancy_warning = "3 peers cannot hold 4+2 shards on distinct peers";
  a.degraded = true;
  a.retention = Json{{"forgot", Json::array()}};
  Json j = ToJson(a);
  for (const char* name : {"snapshot_id",
                           "short_id",
                           "files",
                           "files_read",
                           "files_unchanged",
                           "rehash",
                           "files_changed_same_metadata",
                           "files_reread",
                           "files_changed_during_read",
                           "directories",
                           "bytes",
                           "bytes_read",
                           "new_bytes",
                           "sent_bytes",
                           "chunks",
                           "new_chunks",
                           "duration_seconds",
                           "copies",
                           "ec",
                           "offsite",
                           "warnings",
                           "errors",
                           "chunks_below_target",
                           "redundancy_warning",
                           "degraded",
                           "retention"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  EXPECT_TRUE(j.contains("errors_base64"));
  BackupAnswer back = RoundTrip(a);
  EXPECT_EQ(back.errors, a.errors);
  EXPECT_EQ(back.ec, a.ec);
  EXPECT_EQ(back.redundancy_warning, a.redundancy_warning);
  EXPECT_EQ(back.retention, a.retention);
  EXPECT_EQ(ToJson(back), j);

  BackupAnswer plain;
  plain.snapshot_id = std::string(64, 'd');
  Json pj = ToJson(plain);
  EXPECT_TRUE(pj["ec"].is_null());
  EXPECT_TRUE(pj["redundancy_warning"].is_null());
  EXPECT_FALSE(pj.contains("retention"));
  BackupAnswer plain_back = RoundTrip(plain);
  EXPECT_FALSE(plain_back.ec.has_value());
  pj.erase("short_id");
  absl::StatusOr<BackupAnswer> derived = Decode<BackupAnswer>(pj);
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ(derived->short_id, std::string(8, 'd'));  // derived when absent

  EXPECT_FALSE(Decode<BackupAnswer>(Json{{"files", 1}}).ok());  // no snapshot_id
  Json bad = j;
  bad["files"] = -1;
  EXPECT_FALSE(Decode<BackupAnswer>(bad).ok());
}

TEST(RestoreAnswerJsonTest, RoundTripAndShape) {
  RestoreAnswer r;
  r.snapshot_id = std::string(64, 'e');
  r.short_id = std::string(8, 'e');
  r.target = std::string("/tmp/caf\xe9", 9);
  r.files = 5;
  r.directories = 2;
  r.symlinks = 1;
  r.hardlinks = 1;
  r.bytes = 4096;
  r.duration_seconds = 0.5;
  r.errors = {"/tmp/x: chunk 3fa2c1d9 lost"};
  Json j = ToJson(r);
  EXPECT_TRUE(j.contains("target_base64"));
  for (const char* name : {"snapshot_id", "short_id", "target", "files", "directories", "symlinks",
                           "hardlinks", "bytes", "duration_seconds", "errors"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  RestoreAnswer back = RoundTrip(r);
  EXPECT_EQ(back.target, r.target);
  EXPECT_EQ(back.errors, r.errors);
  EXPECT_EQ(ToJson(back), j);
  EXPECT_FALSE(Decode<RestoreAnswer>(Json{{"files", 1}}).ok());
}

TEST(CheckAnswerJsonTest, RoundTripAndShape) {
  CheckAnswer c;
  c.chunks = 10;
  c.at_target = 7;
  c.below_target = 2;
  c.lost = 1;
  c.corrupt = 1;
  c.blobs_read = 20;
  c.bytes_read = 1 << 20;
  c.snapshots = {SnapshotCheck{std::string(64, 'a'), std::string(8, 'a'), 10, 7, 2, 1}};
  c.below_target_detail = {BelowTargetChunk{std::string(64, 'b'), 1}};
  c.storage_peers = 2;
  c.short_of_peers = {ShortfallInfo{3, 2, "2 chunks below target: only 2 storage peers for 3"}};
  c.survives = {ToleranceInfo{0, 2, "2 chunks below target survive 0 lost peers"}};
  c.corrupt_blobs = {CorruptBlobInfo{std::string(64, 'c'), 1, 4, "checksum mismatch"}};
  c.errors = {"snapshot 3fa2c1d9: tree unreadable"};
  Json j = ToJson(c);
  for (const char* name :
       {"healthy", "chunks", "at_target", "below_target", "without_offsite", "lost", "corrupt",
        "blobs_read", "bytes_read", "snapshots", "below_target_detail", "storage_peers",
        "short_of_peers", "survives", "corrupt_blobs", "errors"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  EXPECT_EQ(j["corrupt_blobs"][0]["peer"], 4);
  EXPECT_EQ(j["short_of_peers"][0]["target"], 3);
  CheckAnswer back = RoundTrip(c);
  ASSERT_EQ(back.snapshots.size(), 1u);
  EXPECT_EQ(back.snapshots[0].lost, 1u);
  ASSERT_EQ(back.corrupt_blobs.size(), 1u);
  EXPECT_EQ(back.corrupt_blobs[0].reason, "checksum mismatch");
  EXPECT_EQ(back.errors, c.errors);
  EXPECT_EQ(ToJson(back), j);
  // An error that is not a string is refused instead of crashing the CLI.
  Json bad = j;
  bad["errors"] = Json::array({1});
  EXPECT_FALSE(Decode<CheckAnswer>(bad).ok());
  bad = j;
  bad["snapshots"][0].erase("id");
  EXPECT_FALSE(Decode<CheckAnswer>(bad).ok());
  EXPECT_FALSE(Decode<CheckAnswer>(Json::array()).ok());
}

TEST(RepairAnswerJsonTest, RoundTripAndShape) {
  RepairAnswer r;
  r.chunks = 10;
  r.repaired = 3;
  r.blobs_written = 3;
  r.bytes_sent = 3000;
  r.still_below_target = 1;
  r.storage_peers = 2;
  r.unimprovable = 1;
  r.survives = {ToleranceInfo{1, 1, "1 chunk below target survives any 1 lost peer"}};
  r.errors = {"chunk 3fa2c1d9: no holder answered"};
  r.errors_omitted = 4;
  Json j = ToJson(r);
  for (const char* name : {"chunks", "repaired", "blobs_written", "bytes_sent",
                           "still_below_target", "lost", "storage_peers", "short_of_peers",
                           "unimprovable", "survives", "errors", "errors_omitted"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  RepairAnswer back = RoundTrip(r);
  EXPECT_EQ(back.errors_omitted, 4u);
  ASSERT_EQ(back.survives.size(), 1u);
  EXPECT_EQ(back.survives[0].message, r.survives[0].message);
  EXPECT_EQ(ToJson(back), j);
  EXPECT_FALSE(Decode<RepairAnswer>(Json{{"repaired", 1}}).ok());  // no chunks
}

TEST(LifecycleAnswersJsonTest, ForgetDeleteAndReclaimRoundTrip) {
  ForgetAnswer f;
  f.kept = {ForgetDecision{SampleSnapshot(), {"last snapshot", "daily snapshot"}}};
  f.removed = {ForgetDecision{SampleSnapshot(), {}}};
  f.gc = GcInfo{1, 10, 4, 4000, 8, 1, 0};
  f.deletions = DeliveryInfo{6, 3, 1, 2};
  Json j = ToJson(f);
  EXPECT_EQ(j["kept"][0]["reasons"][1], "daily snapshot");
  EXPECT_EQ(j["kept"][0]["short_id"], std::string(8, 'a'));  // the snapshot's own fields
  EXPECT_TRUE(j["kept"][0].contains("hostname_base64"));
  EXPECT_EQ(j["gc"]["unreferenced_bytes"], 4000);
  EXPECT_EQ(j["deletions"]["pending"], 2);
  EXPECT_FALSE(j.contains("targets"));
  ForgetAnswer fb = RoundTrip(f);
  ASSERT_EQ(fb.kept.size(), 1u);
  EXPECT_EQ(fb.kept[0].snapshot.hostname, SampleSnapshot().hostname);
  EXPECT_EQ(fb.kept[0].reasons, f.kept[0].reasons);
  ASSERT_TRUE(fb.deletions.has_value());
  EXPECT_EQ(fb.deletions->pending, 2u);
  EXPECT_EQ(ToJson(fb), j);
  ForgetAnswer no_prune;
  no_prune.targets = GcInfo{};
  no_prune.targets->targets_lowered = 3;
  Json nj = ToJson(no_prune);
  EXPECT_EQ(nj["targets"], (Json{{"targets_lowered", 3}, {"targets_raised", 0}}));
  EXPECT_EQ(RoundTrip(no_prune).targets->targets_lowered, 3u);
  Json bad = j;
  bad["removed"] = Json{{"id", "x"}};
  EXPECT_FALSE(Decode<ForgetAnswer>(bad).ok());

  DeleteAnswer d;
  d.path = std::string("/home/caf\xe9", 10);
  d.rewritten = {RewrittenSnapshot{std::string(64, '1'), std::string(8, '1'), std::string(64, '2'),
                                   std::string(8, '2'), 3, 300}};
  d.unchanged = 1;
  d.gc = GcInfo{};
  d.deletions = DeliveryInfo{0, 0, 1, 5};
  Json dj = ToJson(d);
  EXPECT_TRUE(dj.contains("path_base64"));
  EXPECT_EQ(dj["rewritten"][0]["removed_bytes"], 300);
  DeleteAnswer db = RoundTrip(d);
  EXPECT_EQ(db.path, d.path);
  ASSERT_EQ(db.rewritten.size(), 1u);
  EXPECT_EQ(db.rewritten[0].new_short_id, std::string(8, '2'));
  EXPECT_EQ(db.deletions->pending, 5u);
  EXPECT_EQ(ToJson(db), dj);

  ReclaimAnswer r{1 << 20, 2 << 20, 900000, 4, 400000, 2, 2000, 1};
  Json rj = ToJson(r);
  for (const char* name : {"quota", "old_quota", "used", "moved_blobs", "moved_bytes",
                           "evicted_blobs", "evicted_bytes", "notices_delivered"}) {
    EXPECT_TRUE(rj.contains(name)) << name;
  }
  ReclaimAnswer rb = RoundTrip(r);
  EXPECT_EQ(rb.old_quota, r.old_quota);
  EXPECT_EQ(rb.evicted_bytes, r.evicted_bytes);
  EXPECT_FALSE(Decode<ReclaimAnswer>(Json{{"used", 1}}).ok());  // no quota
}

TEST(IndexRebuildAnswerJsonTest, RoundTripAndNothingToRebuild) {
  IndexRebuildAnswer a;
  a.complete = false;
  a.peers_listed = {2, 3};
  a.peers_not_listed = {4};
  a.blobs = 40;
  a.chunks = 20;
  a.data_chunks = 15;
  a.tree_chunks = 4;
  a.snapshot_chunks = 1;
  a.snapshots = {SampleSnapshot()};
  a.missing_chunks = 2;
  a.errors = {"peer 4: unreachable"};
  Json j = ToJson(a);
  EXPECT_EQ(j["peers_listed"], Json::array({2, 3}));
  EXPECT_EQ(j["snapshots"][0]["id"], std::string(64, 'a'));
  EXPECT_FALSE(j.contains("note"));
  IndexRebuildAnswer back = RoundTrip(a);
  EXPECT_EQ(back.peers_listed, a.peers_listed);
  ASSERT_EQ(back.snapshots.size(), 1u);
  EXPECT_EQ(back.snapshots[0].paths, SampleSnapshot().paths);
  EXPECT_EQ(ToJson(back), j);

  IndexRebuildAnswer nothing;
  nothing.complete = true;
  nothing.note = "the peers hold no snapshot of peer 1";
  Json nj = ToJson(nothing);
  EXPECT_EQ(nj["snapshots"], Json::array());
  EXPECT_EQ(RoundTrip(nothing).note, nothing.note);
  Json bad = j;
  bad["peers_listed"] = Json::array({"two"});
  EXPECT_FALSE(Decode<IndexRebuildAnswer>(bad).ok());
  EXPECT_FALSE(Decode<IndexRebuildAnswer>(Json{{"chunks", 1}}).ok());  // no complete
}

TEST(PeerStatusJsonTest, RoundTripAndShape) {
  PeerStatus st;
  st.peer_id = 4;
  st.host_id = "h4";
  st.site = "office";
  st.address = "127.0.0.1:7001";
  st.api = "127.0.0.1:7101";
  st.quota = 1 << 30;
  st.used = 5000;
  st.room = 4000;
  st.disk_free = 123456;
  st.disk_reserve = 1000;
  st.blobs = 7;
  st.extra_blobs = 2;
  st.extra_bytes = 300;
  st.owners = {OwnerUsageInfo{1, 5, 4000, 2, 300}, OwnerUsageInfo{2, 2, 1000, 0, 0}};
  st.moved_notices_pending = 1;
  st.snapshots = 3;
  st.chunks = 10;
  st.chunks_at_target = 9;
  st.chunks_below_target = 1;
  st.plain_bytes = 9000;
  st.stored_bytes = 18000;
  st.chunks_without_offsite = 2;
  st.scrub.enabled = true;
  st.scrub.interval = "7d";
  st.scrub.rate = 20 << 20;
  st.scrub.last_pass = ScrubPassInfo{
      7, 5000, 1, 0, 0, "2026-12-01T00:00:00Z", "2026-12-01T00:00:02Z", 1764547202000000000, 2.0};
  st.scrub.next_pass = "2026-12-08T00:00:00Z";
  st.scrub.next_pass_ns = 1765152000000000000;
  st.scrub.quarantined = 1;
  st.scrub.quarantined_bytes = 700;
  st.index.state = "rebuilt";
  st.index.problem = "index.db: file is not a database";
  st.index.kept_aside = "/p/index.db.damaged";
  IndexRebuildSummary& rebuilt = st.index.rebuilt.emplace();
  rebuilt.complete = true;
  rebuilt.snapshots = 3;
  rebuilt.chunks = 10;
  rebuilt.peers_listed = {2, 3};
  st.storage.segments = 2;
  st.storage.live_bytes = 4700;
  st.storage.dead_bytes = 300;
  st.storage.compactions = 1;
  st.storage.compaction_copied_bytes = 10;
  st.storage.compaction_reclaimed_bytes = 20;
  st.storage.compacting = CompactionProgress{2, 100, 400};
  BucketStatus& b = st.bucket.emplace();
  b.url = "s3://b/peer4/";
  b.endpoint = "http://127.0.0.1:9000";
  b.region = "us-east-1";
  b.counted = true;
  b.requests = {{"get", 3}, {"put", 5}};
  b.requests_total = 8;
  b.errors = {{"throttled", 1}};
  b.errors_total = 1;
  b.retries = 1;
  b.bytes_sent = 4096;
  HomeStatus& home = st.home.emplace();
  home.snapshots = 3;
  home.logical_bytes = 27000;
  home.unique_bytes = 9000;
  home.dedup_ratio = 3.0;
  home.redundancy_overhead = 2.0;
  home.chunks_without_offsite = 2;

  Json j = ToJson(st);
  // The names docs/cli.md documents (the dashboard and the cluster tests read them).
  for (const char* name : {"peer_id",
                           "host_id",
                           "site",
                           "address",
                           "api",
                           "metrics_address",
                           "quota",
                           "used",
                           "room",
                           "disk_free",
                           "disk_reserve",
                           "blobs",
                           "extra_blobs",
                           "extra_bytes",
                           "owners",
                           "moved_notices_pending",
                           "snapshots",
                           "chunks",
                           "chunks_at_target",
                           "chunks_below_target",
                           "plain_bytes",
                           "stored_bytes",
                           "chunks_without_offsite",
                           "scrub",
                           "index",
                           "storage",
                           "bucket",
                           "home"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  EXPECT_TRUE(j["metrics_address"].is_null());
  EXPECT_EQ(j["owners"][1]["bytes"], 1000);
  EXPECT_EQ(j["scrub"]["last_pass"]["finished_ns"], 1764547202000000000);
  EXPECT_TRUE(j["scrub"]["current_pass"].is_null());
  EXPECT_EQ(j["storage"]["compacting"]["total_bytes"], 400);
  EXPECT_FALSE(j["storage"].contains("migration"));
  EXPECT_EQ(j["bucket"]["requests"]["put"], 5);
  EXPECT_EQ(j["home"]["dedup_ratio"], 3.0);
  EXPECT_EQ(j["index"]["rebuilt"]["chunks"], 10);
  EXPECT_EQ(j["index"]["rebuilt"]["peers_listed"], Json::array({2, 3}));

  PeerStatus back = RoundTrip(st);
  EXPECT_EQ(back.disk_free, st.disk_free);
  ASSERT_EQ(back.owners.size(), 2u);
  EXPECT_EQ(back.owners[0].extra_bytes, 300u);
  ASSERT_TRUE(back.scrub.last_pass.has_value());
  EXPECT_EQ(back.scrub.last_pass->seconds, 2.0);
  ASSERT_TRUE(back.bucket.has_value());
  EXPECT_EQ(back.bucket->requests, b.requests);
  EXPECT_EQ(back.index.kept_aside, st.index.kept_aside);
  ASSERT_TRUE(back.home.has_value());
  EXPECT_EQ(back.home->chunks_without_offsite, 2u);
  EXPECT_EQ(ToJson(back), j);

  // A peer without a bucket, a catalog or disk figures: nulls decode unset.
  PeerStatus bare;
  bare.storage.layout = "files";
  Json bj = ToJson(bare);
  EXPECT_TRUE(bj["bucket"].is_null());
  EXPECT_TRUE(bj["disk_free"].is_null());
  EXPECT_FALSE(bj.contains("home"));
  PeerStatus bare_back = RoundTrip(bare);
  EXPECT_FALSE(bare_back.bucket.has_value());
  EXPECT_FALSE(bare_back.disk_free.has_value());
  EXPECT_FALSE(bare_back.home.has_value());
  EXPECT_EQ(bare_back.storage.layout, "files");

  // What is not a peer's status is refused, naming the field.
  EXPECT_FALSE(Decode<PeerStatus>(Json{{"quota", 1}}).ok());  // no peer_id
  Json no_scrub = j;
  no_scrub.erase("scrub");
  absl::StatusOr<PeerStatus> refused = Decode<PeerStatus>(no_scrub);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("scrub"), std::string::npos);
  Json bad_owner = j;
  bad_owner["owners"][0]["bytes"] = "many";
  EXPECT_FALSE(Decode<PeerStatus>(bad_owner).ok());
  Json bad_counts = j;
  bad_counts["bucket"]["requests"]["put"] = -1;
  EXPECT_FALSE(Decode<PeerStatus>(bad_counts).ok());
}

TEST(SourceInfoJsonTest, RoundTripAndShape) {
  SourceInfo s;
  s.path = "/home/caf\xe9";  // not UTF-8: carried as path_base64
  s.ec = "4+2";
  s.excludes = {"*.tmp"};
  s.schedule = "1h";
  s.watch = false;
  s.keep.keep_daily = 7;
  s.keep.keep_tags = {"daily"};
  Json added = ToJson(s);
  // POST /v1/sources: the settings only.
  for (const char* name :
       {"path_base64", "copies", "ec", "excludes", "schedule", "watch", "keep"}) {
    EXPECT_TRUE(added.contains(name)) << name;
  }
  EXPECT_TRUE(added["copies"].is_null());
  EXPECT_FALSE(added.contains("backups"));
  SourceInfo back = RoundTrip(s);
  EXPECT_EQ(back.path, s.path);
  EXPECT_FALSE(back.copies.has_value());
  EXPECT_EQ(back.ec, s.ec);
  EXPECT_EQ(back.excludes, s.excludes);
  EXPECT_EQ(back.schedule, s.schedule);
  EXPECT_FALSE(back.watch);
  EXPECT_EQ(back.keep.keep_daily, 7);
  EXPECT_EQ(back.keep.keep_tags, s.keep.keep_tags);
  EXPECT_FALSE(back.state.has_value());
  EXPECT_EQ(ToJson(back), added);

  // GET /v1/sources: with the state.
  s.copies = 2;
  s.ec.reset();
  SourceState state;
  state.watching = true;
  state.watches = 12;
  state.pending = true;
  state.running_job = "job7";
  state.backups = 3;
  LastBackup& last = state.last_backup.emplace();
  last.job_id = "job6";
  last.state = "done";
  last.time = "2026-12-05T06:00:00Z";
  last.snapshot_id = std::string(64, '3');
  last.short_id = "33333333";
  s.state = state;
  Json listed = ToJson(s);
  for (const char* name :
       {"watching", "watches", "pending", "running_job", "backups", "last_backup"}) {
    EXPECT_TRUE(listed.contains(name)) << name;
  }
  back = RoundTrip(s);
  ASSERT_TRUE(back.state.has_value());
  EXPECT_EQ(back.copies, std::optional<uint32_t>(2));
  EXPECT_TRUE(back.state->watching);
  EXPECT_EQ(back.state->watches, 12u);
  EXPECT_TRUE(back.state->pending);
  EXPECT_EQ(back.state->running_job, state.running_job);
  EXPECT_EQ(back.state->backups, 3u);
  ASSERT_TRUE(back.state->last_backup.has_value());
  EXPECT_EQ(back.state->last_backup->short_id, last.short_id);
  EXPECT_EQ(back.state->last_backup->job_id, last.job_id);
  EXPECT_FALSE(back.state->last_backup->error.has_value());
  EXPECT_EQ(ToJson(back), listed);

  EXPECT_FALSE(Decode<SourceInfo>(Json{{"watch", true}}).ok());  // no path
}

TEST(LsEntryJsonTest, RoundTripAndShape) {
  LsEntry e;
  e.path = "docs/caf\xe9";  // not UTF-8: carried as path_base64
  e.type = "symlink";
  e.size = 12;
  e.mode = 0755;
  e.mtime_ns = 1763805600123456789;
  e.uid = 1000;
  e.gid = 100;
  e.target = "../x";
  Json j = ToJson(e);
  for (const char* name :
       {"path_base64", "type", "size", "mode", "mtime", "mtime_ns", "uid", "gid", "target"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  LsEntry back = RoundTrip(e);
  EXPECT_EQ(back.path, e.path);
  EXPECT_EQ(back.type, e.type);
  EXPECT_EQ(back.size, e.size);
  EXPECT_EQ(back.mode, e.mode);
  EXPECT_EQ(back.mtime_ns, e.mtime_ns);
  EXPECT_EQ(back.uid, e.uid);
  EXPECT_EQ(back.gid, e.gid);
  EXPECT_EQ(back.target, e.target);
  EXPECT_EQ(ToJson(back), j);

  // A file: no "target".
  e.type = "file";
  e.target.reset();
  EXPECT_FALSE(ToJson(e).contains("target"));
  EXPECT_FALSE(RoundTrip(e).target.has_value());
  EXPECT_FALSE(Decode<LsEntry>(Json{{"type", "file"}}).ok());  // no path
}

TEST(DiffAnswerJsonTest, RoundTripAndShape) {
  DiffAnswer d;
  d.a = {std::string(64, 'a'), 1763805600000000000};
  d.b = {std::string(64, 'b'), 1763809200000000000};
  DiffChange added;
  added.change = "added";
  added.path = "data/new\xff";  // not UTF-8: carried as path_base64
  added.source_path = "/home/u/data/new\xff";
  added.type = "file";
  added.after = DiffSide{"file", 42, 0644};
  DiffChange removed;
  removed.change = "removed";
  removed.path = "data/old";
  removed.type = "dir";
  removed.before = DiffSide{"dir", 0, 0755};
  DiffChange modified;
  modified.change = "modified";
  modified.path = "data/link";
  modified.type = "symlink";
  modified.before = DiffSide{"file", 10, 0600};
  modified.after = DiffSide{"symlink", 3, 0777};
  modified.type_changed = true;
  modified.content_changed = true;
  modified.mode_changed = true;
  d.changes = {added, removed, modified};
  d.added = 1;
  d.removed = 1;
  d.modified = 1;
  d.added_bytes = 42;
  d.removed_bytes = 0;
  d.identical_subtrees = 7;
  Json j = ToJson(d);
  EXPECT_EQ(j["a"]["short_id"], "aaaaaaaa");
  EXPECT_EQ(j["b"]["time_ns"], 1763809200000000000);
  EXPECT_TRUE(j["a"].contains("time"));
  const Json& c = j["changes"];
  ASSERT_EQ(c.size(), 3u);
  EXPECT_TRUE(c[0].contains("path_base64"));
  EXPECT_TRUE(c[0].contains("source_path_base64"));
  EXPECT_FALSE(c[0].contains("size_before"));
  EXPECT_FALSE(c[0].contains("content_changed"));  // modifications only
  EXPECT_FALSE(c[1].contains("size_after"));
  EXPECT_FALSE(c[1].contains("source_path"));
  EXPECT_EQ(c[2]["mode_before"], 0600);
  EXPECT_EQ(c[2]["type_changed"], true);
  DiffAnswer back = RoundTrip(d);
  EXPECT_EQ(ToJson(back), j);
  ASSERT_EQ(back.changes.size(), 3u);
  EXPECT_EQ(back.changes[0].path, added.path);
  EXPECT_EQ(back.changes[0].source_path, added.source_path);
  EXPECT_FALSE(back.changes[0].before.has_value());
  EXPECT_EQ(back.changes[2].after->size, 3u);
  EXPECT_TRUE(back.changes[2].mode_changed);
  EXPECT_EQ(back.identical_subtrees, 7u);

  // Malformed answers are errors, not zeros.
  EXPECT_FALSE(Decode<DiffAnswer>(Json{{"changes", Json::array()}}).ok());  // no a, b
  Json bad = j;
  bad["changes"][2].erase("type_after");  // a modification without its after side
  EXPECT_FALSE(Decode<DiffAnswer>(bad).ok());
  bad = j;
  bad["changes"][0]["change"] = "renamed";
  EXPECT_FALSE(Decode<DiffAnswer>(bad).ok());
  bad = j;
  bad["added"] = "one";
  EXPECT_FALSE(Decode<DiffAnswer>(bad).ok());
}

TEST(FindMatchJsonTest, RoundTripAndShape) {
  FindMatch m;
  m.snapshot_id = std::string(64, 'c');
  m.snapshot_time_ns = 1763805600000000000;
  m.path = "/home/u/caf\xe9.pdf";
  m.snapshot_path = "u/caf\xe9.pdf";
  m.type = "file";
  m.size = 1234;
  m.mode = 0640;
  m.mtime_ns = 1763805600123456789;
  Json j = ToJson(m);
  for (const char* name :
       {"snapshot_id", "snapshot_short_id", "snapshot_time", "snapshot_time_ns", "path_base64",
        "snapshot_path_base64", "type", "size", "mode", "mtime", "mtime_ns"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  EXPECT_EQ(j["snapshot_short_id"], "cccccccc");
  FindMatch back = RoundTrip(m);
  EXPECT_EQ(back.path, m.path);
  EXPECT_EQ(back.snapshot_path, m.snapshot_path);
  EXPECT_EQ(back.size, m.size);
  EXPECT_EQ(back.mode, m.mode);
  EXPECT_EQ(back.mtime_ns, m.mtime_ns);
  EXPECT_EQ(ToJson(back), j);
  EXPECT_FALSE(Decode<FindMatch>(Json{{"type", "file"}}).ok());  // no path
  Json bad = j;
  bad["size"] = -1;
  EXPECT_FALSE(Decode<FindMatch>(bad).ok());
}

}  // namespace
}  // namespace cairn::api
