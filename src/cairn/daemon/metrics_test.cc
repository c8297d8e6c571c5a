#include "cairn/daemon/metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MetricsState ThreePeers() {
  MetricsState s;
  s.peers = {{1, "alive"}, {2, "alive"}, {3, "dead"}};
  s.store_used_bytes = 12345;
  s.store_quota_bytes = 10737418240;
  s.have_chunks = true;
  s.chunks_at_target = 40;
  s.chunks_below_target = 2;
  s.last_backup_seconds["/home/ann"] = 1764763200.5;
  return s;
}

TEST(MetricsTest, RendersStateAndCountersWithConventionalNames) {
  Metrics m("0.1.0", "abcdef123456");
  m.RecordBackup(true, 1000, 2100, 3.5);
  m.RecordBackup(true, 24, 0, 0.2);
  m.RecordBackup(false, 0, 0, 0);
  m.RecordRpc("/cairn.v1.Peer/Ping", 0, 0.002);
  m.RecordRpc("/cairn.v1.Peer/Ping", 0, 0.004);
  m.RecordRpc("/cairn.v1.Peer/PutBlobs", 8, 0.3);
  m.RecordScrub(store::ScrubCounts{3, 300, 1, 0, 0});
  m.RecordScrubPassDone();
  m.RecordRepair(true, 5, 6, 7000);
  m.RecordGc(4, 4096, 8);
  const std::string text = m.Render(ThreePeers());
  EXPECT_THAT(text, HasSubstr("cairn_build_info{git_commit=\"abcdef123456\",version=\"0.1.0\"} 1"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_up{peer=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_up{peer=\"2\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_up{peer=\"3\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_state{peer=\"3\",state=\"dead\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_state{peer=\"3\",state=\"alive\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cairn_store_used_bytes 12345\n"));
  EXPECT_THAT(text, HasSubstr("cairn_store_quota_bytes 10737418240\n"));
  EXPECT_THAT(text, HasSubstr("cairn_chunks{state=\"below_target\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cairn_chunks{state=\"at_target\"} 40\n"));
  EXPECT_THAT(text, HasSubstr("cairn_backup_bytes_total 1024\n"));
  EXPECT_THAT(text, HasSubstr("cairn_backup_sent_bytes_total 2100\n"));
  EXPECT_THAT(text, HasSubstr("cairn_backups_total{result=\"success\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cairn_backups_total{result=\"failure\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_backup_last_success_timestamp_seconds{source=\"/home/ann\"} "
                              "1764763200.5\n"));
  EXPECT_THAT(text, HasSubstr("cairn_rpc_requests_total{code=\"OK\",method=\"Ping\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("cairn_rpc_requests_total{code=\"RESOURCE_EXHAUSTED\",method=\"PutBlobs\"} 1"));
  EXPECT_THAT(text, HasSubstr("cairn_rpc_duration_seconds_count{method=\"Ping\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("cairn_rpc_duration_seconds_bucket{method=\"Ping\",le=\"0.005\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("cairn_rpc_duration_seconds_bucket{method=\"Ping\",le=\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_scrub_blobs_total 3\n"));
  EXPECT_THAT(text, HasSubstr("cairn_scrub_corrupt_blobs_total 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_scrub_passes_total 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_repair_chunks_total 5\n"));
  EXPECT_THAT(text, HasSubstr("cairn_repairs_total{result=\"success\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_gc_chunks_total 4\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE cairn_backup_bytes_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE cairn_store_used_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE cairn_rpc_duration_seconds histogram\n"));
}

TEST(MetricsTest, StaleLabelsGoAndUnreadableCatalogIsNotZero) {
  Metrics m("0.1.0", "");
  EXPECT_THAT(m.Render(ThreePeers()), HasSubstr("git_commit=\"unknown\""));
  MetricsState later = ThreePeers();
  later.last_backup_seconds.clear();
  later.last_backup_seconds["/srv/\xff"] = 5;  // raw bytes: shown as valid UTF-8
  later.have_chunks = false;
  later.peers[2].state = "alive";
  const std::string text = m.Render(later);
  EXPECT_THAT(text, Not(HasSubstr("/home/ann")));
  EXPECT_THAT(text, HasSubstr("source=\"/srv/\xef\xbf\xbd\"} 5\n"));
  EXPECT_THAT(text, Not(HasSubstr("cairn_chunks{")));
  EXPECT_THAT(text, HasSubstr("cairn_peer_up{peer=\"3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_peer_state{peer=\"3\",state=\"dead\"} 0\n"));
}

TEST(MetricsTest, BucketCountersOnlyOnABucketPeerAndCarriedOverAtEachScrape) {
  namespace s3 = store::s3;
  Metrics m("0.1.0", "");
  EXPECT_THAT(m.Render(ThreePeers()), Not(HasSubstr("cairn_s3_")));

  MetricsState with_bucket = ThreePeers();
  s3::S3Counters c;
  c.requests[static_cast<int>(s3::RequestKind::kPut)] = 7;
  c.requests[static_cast<int>(s3::RequestKind::kGet)] = 3;
  c.retries = 2;
  c.failures = 1;
  c.errors[static_cast<int>(s3::ErrorClass::kThrottled)] = 2;
  c.errors[static_cast<int>(s3::ErrorClass::kClient)] = 1;
  c.bytes_sent = 1 << 20;
  c.bytes_received = 4096;
  with_bucket.s3 = c;
  std::string text = m.Render(with_bucket);
  EXPECT_THAT(text, HasSubstr("# TYPE cairn_s3_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"put\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"get\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"upload_part\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"list\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_retries_total 2\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_failures_total 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_errors_total{class=\"throttled\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_errors_total{class=\"client\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_errors_total{class=\"timeout\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_sent_bytes_total 1048576\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_received_bytes_total 4096\n"));

  // The next scrape shows the store's new totals, not their sum with the old ones.
  c.requests[static_cast<int>(s3::RequestKind::kPut)] = 10;
  c.bytes_sent = 2 << 20;
  with_bucket.s3 = c;
  text = m.Render(with_bucket);
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"put\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_requests_total{op=\"get\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("cairn_s3_sent_bytes_total 2097152\n"));
}

}  // namespace
}  // namespace cairn::daemon
