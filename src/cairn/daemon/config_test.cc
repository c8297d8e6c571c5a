#include "cairn/daemon/config.h"

#include <functional>
#include <string>

#include "cairn/base/bytes.h"
#include "cairn/daemon/test_util.h"
#include "cairn/env/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using ::testing::HasSubstr;

constexpr char kSpecExample[] = R"(peer_id = 3
host_id = "a1b2"            # default: /etc/machine-id contents, else hostname
listen = "127.0.0.1:0"      # peer service (gRPC)
api = "127.0.0.1:0"         # local HTTP API
quota = "10G"
seeds = ["127.0.0.1:7001"]
ping_interval = "2s"
suspect_after = "15s"
dead_after = "10m"

[backup]
copies = 2
upload_threads = 4

[chunker]   # recorded at init; never changes under existing data
min_size = 524288
avg_size = 1048576
max_size = 8388608
)";

TEST(ConfigTest, ParsesTheSpecExample) {
  auto c = ParseConfig(kSpecExample, "DIR/cairn.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->peer_id, 3u);
  EXPECT_EQ(c->host_id, "a1b2");
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->api, "127.0.0.1:0");
  EXPECT_EQ(c->quota, 10ull << 30);
  EXPECT_EQ(c->seeds, std::vector<std::string>{"127.0.0.1:7001"});
  EXPECT_EQ(c->ping_interval, std::chrono::seconds(2));
  EXPECT_EQ(c->suspect_after, std::chrono::seconds(15));
  EXPECT_EQ(c->dead_after, std::chrono::minutes(10));
  EXPECT_EQ(c->copies, 2u);
  EXPECT_EQ(c->upload_threads, 4);
  EXPECT_EQ(c->chunker.min_size, 524288u);
  EXPECT_EQ(c->chunker.avg_size, 1048576u);
  EXPECT_EQ(c->chunker.max_size, 8388608u);
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  auto c = ParseConfig("peer_id = 1\n", "x.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  Config defaults;
  EXPECT_EQ(c->listen, defaults.listen);
  EXPECT_EQ(c->quota, defaults.quota);
  EXPECT_FALSE(c->host_id.empty());
  EXPECT_EQ(c->copies, 2u);
  EXPECT_EQ(ParseConfig("peer_id = 1\nquota = 1048576\n", "x")->quota, 1048576u);
}

struct BadCase {
  const char* text;
  const char* want;  // substring of the error message
};

TEST(ConfigTest, ErrorsNameFileKeyAndProblem) {
  const BadCase kCases[] = {
      {"peer_id = 3\nquota = \"abc\"\n", "DIR/cairn.toml: key 'quota': invalid size 'abc'"},
      {"quota = \"1G\"\n", "DIR/cairn.toml: missing required key 'peer_id'"},
      {"peer_id = \"three\"\n", "key 'peer_id': expected an integer, got a string"},
      {"peer_id = 0\n", "key 'peer_id': must be between 1"},
      {"peer_id = 3\nlisten = 7001\n", "key 'listen': expected a string, got an integer"},
      {"peer_id = 3\nlisten = \"nohost\"\n", "key 'listen': invalid address 'nohost'"},
      {"peer_id = 3\nlisten = \"h:99999\"\n", "port must be 0..65535"},
      {"peer_id = 3\napi = \"0.0.0.0:80\"\n", "key 'api': must be a loopback address"},
      {"peer_id = 3\nseeds = \"127.0.0.1:1\"\n", "key 'seeds': expected an array"},
      {"peer_id = 3\nseeds = [1]\n", "key 'seeds': expected a string, got an integer"},
      {"peer_id = 3\nquota = true\n", "key 'quota': expected a size"},
      {"peer_id = 3\nquota = -5\n", "key 'quota': size must not be negative"},
      {"peer_id = 3\nping_interval = 2\n", "key 'ping_interval': expected a duration string"},
      {"peer_id = 3\nping_interval = \"2 parsecs\"\n", "key 'ping_interval': invalid duration"},
      {"peer_id = 3\nsuspect_after = \"1h\"\ndead_after = \"1m\"\n",
       "key 'suspect_after': must not be longer than dead_after"},
      {"peer_id = 3\nbackup = 3\n", "key 'backup': expected a table, got an integer"},
      {"peer_id = 3\n[backup]\ncopies = \"2\"\n", "key 'backup.copies': expected an integer"},
      {"peer_id = 3\n[backup]\ncopies = 0\n", "key 'backup.copies': must be between 1 and 64"},
      {"peer_id = 3\n[backup]\ncopeis = 2\n", "key 'backup.copeis': unknown key"},
      {"peer_id = 3\nqouta = \"1G\"\n", "key 'qouta': unknown key"},
      {"peer_id = 3\n[chunker]\navg_size = 1000\n", "key 'chunker':"},
      {"peer_id = 3\n[chunker]\nmin_size = \"big\"\n", "key 'chunker.min_size': invalid size"},
      {"peer_id = 3\n[discovery]\ngroup = \"10.0.0.1\"\n",
       "key 'discovery.group': must be an IPv4 multicast address"},
      {"peer_id = 3\n[discovery]\nport = 0\n", "key 'discovery.port': must be between 1"},
      {"peer_id = 3\n[discovery]\nmulticast = \"yes\"\n",
       "key 'discovery.multicast': expected true or false"},
      {"peer_id = 3\n[discovery]\ninterval = \"soon\"\n", "key 'discovery.interval'"},
      {"peer_id = 3\n[discovery]\nttl = 3\n", "key 'discovery.ttl': unknown key"},
      {"peer_id = 3\n[metrics]\nlisten = \"0.0.0.0:9464\"\n",
       "key 'metrics.listen': must be a loopback address"},
      {"peer_id = 3\n[metrics]\nlisten = \"9464\"\n", "key 'metrics.listen': invalid address"},
      {"peer_id = 3\n[metrics]\nlisten = 9464\n", "key 'metrics.listen': expected a string"},
      {"peer_id = 3\n[metrics]\nport = 9464\n", "key 'metrics.port': unknown key"},
      {"peer_id = = 3\n", "DIR/cairn.toml:1:"},
      {"peer_id = 3\npeer_id = 4\n", "DIR/cairn.toml:2:"},
      {"\xff\xfe garbage", "DIR/cairn.toml:"},
  };
  for (const BadCase& c : kCases) {
    auto parsed = ParseConfig(c.text, "DIR/cairn.toml");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.want)) << c.text;
  }
}

TEST(ConfigTest, RenderParsesBackToTheSameSettings) {
  Config c;
  c.dir = "/tmp/x";
  c.peer_id = 42;
  c.host_id = "host \"quoted\" \\ name\t";
  c.listen = "[::1]:7001";
  c.api = "127.0.0.1:7101";
  c.quota = 1500;  // not a whole unit: written as bytes
  c.seeds = {"10.0.0.1:7001", "10.0.0.2:7001"};
  c.ping_interval = std::chrono::milliseconds(500);
  c.suspect_after = std::chrono::seconds(90);
  c.dead_after = std::chrono::hours(1);
  c.copies = 3;
  c.upload_threads = 8;
  c.chunker.min_size = 64 * 1024;
  c.chunker.avg_size = 128 * 1024;
  c.chunker.max_size = 1024 * 1024;
  c.discovery.multicast = false;
  c.discovery.group = "239.1.2.3";
  c.discovery.port = 17946;
  c.discovery.interval = std::chrono::milliseconds(250);
  c.discovery.interface = "eth1";
  c.metrics_listen = "127.0.0.1:9464";
  c.storage_bucket = "s3://backups/peer-42";
  c.storage_keep_local = true;
  c.s3_endpoint = "http://127.0.0.1:9000";
  c.s3_region = "eu-west-1";
  c.s3_credentials_file = "/etc/cairn/s3-credentials";
  c.s3_profile = "cairn";
  std::string text = RenderConfig(c);
  auto back = ParseConfig(text, "x");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_TRUE(back->SameSettings(c)) << text;
  EXPECT_EQ(back->metrics_listen, "127.0.0.1:9464");
  // Off by default, and "" turns it off.
  EXPECT_EQ(ParseConfig("peer_id = 1\n", "x")->metrics_listen, "");
  EXPECT_EQ(ParseConfig("peer_id = 1\n[metrics]\nlisten = \"\"\n", "x")->metrics_listen, "");
  EXPECT_EQ(RenderConfig(Config()).find("listen = \"127.0.0.1:9464\""), std::string::npos);
  EXPECT_EQ(back->discovery, c.discovery);
  EXPECT_THAT(text, HasSubstr("# "));  // comments included
}

// docs/operations.md "An off-site copy in S3-compatible storage".
TEST(ConfigTest, StorageBucketAndS3Settings) {
  auto c = ParseConfig(R"(peer_id = 1
[storage]
bucket = "s3://backups/home"
[s3]
endpoint = "http://127.0.0.1:9000"
region = "eu-west-1"
credentials_file = "/secrets/s3"
rate = "2M"
max_requests = 3
)",
                       "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->s3_rate, 2u << 20);
  EXPECT_EQ(c->s3_max_requests, 3);
  auto again = ParseConfig(RenderConfig(*c), "x");  // written back as read
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->s3_rate, 2u << 20);
  EXPECT_EQ(again->s3_max_requests, 3);
  EXPECT_EQ(c->storage_bucket, "s3://backups/home");
  EXPECT_FALSE(c->storage_keep_local);
  EXPECT_EQ(c->s3_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c->s3_region, "eu-west-1");
  EXPECT_EQ(c->s3_credentials_file, "/secrets/s3");
  // Without a bucket: local only, AWS's default region.
  auto d = ParseConfig("peer_id = 1\n", "x");
  EXPECT_EQ(d->storage_bucket, "");
  EXPECT_EQ(d->s3_region, "us-east-1");
  EXPECT_EQ(d->s3_rate, 0u);  // unlimited
  EXPECT_EQ(d->s3_max_requests, 8);
  const BadCase bad[] = {
      {"peer_id = 1\n[storage]\nbucket = \"http://x/y\"\n", "key 'storage.bucket'"},
      {"peer_id = 1\n[storage]\nbucket = \"s3://b\"\n", "key 'storage.bucket'"},
      {"peer_id = 1\n[storage]\nbucket = \"s3://backups\"\n[s3]\nendpoint = \"nas:9000\"\n",
       "key 'storage.bucket'"},
      {"peer_id = 1\n[storage]\nlayout = \"files\"\nbucket = \"s3://backups\"\n", "needs layout"},
      {"peer_id = 1\n[storage]\nkeep_local = 1\n", "key 'storage.keep_local'"},
      {"peer_id = 1\n[s3]\nregion = \"\"\n", "key 's3.region'"},
      {"peer_id = 1\n[s3]\nmax_requests = 0\n", "key 's3.max_requests'"},
      {"peer_id = 1\n[s3]\nmax_requests = 65\n", "key 's3.max_requests'"},
      {"peer_id = 1\n[s3]\nrate = \"fast\"\n", "key 's3.rate'"},
      {"peer_id = 1\n[s3]\nbucket = \"s3://x\"\n", "key 's3.bucket': unknown key"},
  };
  for (const BadCase& b : bad) {
    auto r = ParseConfig(b.text, "x.toml");
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << b.text;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(b.want)) << b.text;
  }
}

TEST(ConfigTest, BackupErasureScheme) {
  auto none = ParseConfig("peer_id = 1\n", "x.toml");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ec, "");  // copies by default
  auto ec = ParseConfig("peer_id = 1\n[backup]\nec = \" 10 + 4 \"\n", "x.toml");
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ec->ec, "10+4");  // normalized
  auto empty = ParseConfig("peer_id = 1\n[backup]\nec = \"\"\n", "x.toml");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->ec, "");
  for (const char* bad : {"ec = \"4\"", "ec = \"17+2\"", "ec = \"4+9\"", "ec = 4"}) {
    auto parsed = ParseConfig(std::string("peer_id = 1\n[backup]\n") + bad + "\n", "x.toml");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("key 'backup.ec'")) << bad;
  }
  Config c;
  c.peer_id = 2;
  c.host_id = "h";
  c.ec = "4+2";
  auto back = ParseConfig(RenderConfig(c), "x");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ec, "4+2");
}

// docs/operations.md "Sites and off-site copies".
TEST(ConfigTest, SiteAndOffsite) {
  auto lan = ParseConfig("peer_id = 1\n", "x.toml");
  ASSERT_TRUE(lan.ok()) << lan.status();
  EXPECT_EQ(lan->site, "");  // the LAN
  EXPECT_EQ(lan->offsite, 0u);
  // A bucket peer without a site key is off-site; an explicit site wins, "" included.
  auto bucket = ParseConfig("peer_id = 1\n[storage]\nbucket = \"s3://backups/p\"\n", "x.toml");
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(bucket->site, kBucketSite);
  auto named =
      ParseConfig("peer_id = 1\nsite = \"\"\n[storage]\nbucket = \"s3://backups/p\"\n", "x");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->site, "");
  auto set = ParseConfig("peer_id = 1\nsite = \"cabin\"\n[backup]\noffsite = 1\n", "x.toml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->site, "cabin");
  EXPECT_EQ(set->offsite, 1u);
  for (const char* bad : {"[backup]\noffsite = -1\n", "[backup]\noffsite = 65\n", "site = 3\n"}) {
    auto parsed = ParseConfig(std::string("peer_id = 1\n") + bad, "x.toml");
    EXPECT_FALSE(parsed.ok()) << bad;
  }
  Config c;
  c.peer_id = 2;
  c.host_id = "h";
  c.site = "cabin";
  c.offsite = 1;
  auto back = ParseConfig(RenderConfig(c), "x");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->SameSettings(c));
  EXPECT_EQ(back->site, "cabin");
  EXPECT_EQ(back->offsite, 1u);
}

TEST(ConfigTest, LoadMissingFileIsNotFound) {
  testing::TempDir dir;
  auto c = LoadConfig(dir.path());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("cairn init"));
}

TEST(ConfigTest, WriteBackKeepsCommentsAndOtherSettings) {
  testing::TempDir dir;
  std::string path = ConfigPath(dir.path());
  ASSERT_TRUE(env::WriteFileAtomic(path, AsBytes(std::string(kSpecExample)), 0600).ok());
  ASSERT_TRUE(WriteBackAddresses(dir.path(), "127.0.0.1:40001", "127.0.0.1:40002").ok());
  auto text = env::ReadFileString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("listen = \"127.0.0.1:40001\"      # peer service (gRPC)"));
  EXPECT_THAT(*text, HasSubstr("api = \"127.0.0.1:40002\"         # local HTTP API"));
  EXPECT_THAT(*text, HasSubstr("[chunker]   # recorded at init"));
  auto loaded = LoadConfig(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto original = ParseConfig(kSpecExample, "x");
  Config want = *original;
  want.listen = "127.0.0.1:40001";
  want.api = "127.0.0.1:40002";
  EXPECT_TRUE(loaded->SameSettings(want));
  EXPECT_EQ(loaded->dir, dir.path());
}

TEST(ConfigTest, WriteBackAddsAbsentKeys) {
  testing::TempDir dir;
  std::string path = ConfigPath(dir.path());
  std::string text = "# mine\npeer_id = 5\n\n[backup]\ncopies = 3\n";
  ASSERT_TRUE(env::WriteFileAtomic(path, AsBytes(text), 0600).ok());
  ASSERT_TRUE(WriteBackAddresses(dir.path(), "127.0.0.1:1234", "127.0.0.1:0").ok());
  auto loaded = LoadConfig(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->listen, "127.0.0.1:1234");
  EXPECT_EQ(loaded->api, "127.0.0.1:0");
  EXPECT_EQ(loaded->copies, 3u);
  EXPECT_THAT(*env::ReadFileString(path), HasSubstr("# mine"));
}

// Durations: base/duration_test.cc.

TEST(AddressTest, SplitsAndChecksLoopback) {
  auto hp = SplitHostPort("127.0.0.1:7001");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 7001);
  hp = SplitHostPort("[::1]:0");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(JoinHostPort("::1", 5), "[::1]:5");
  for (const char* bad : {"", ":80", "host", "host:", "host:-1", "::1:80", "[::1]80", "h:1x"}) {
    EXPECT_FALSE(SplitHostPort(bad).ok()) << bad;
  }
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.2"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.evil.com"));
}

// [[source]] and [watch] (daemon/sources.h).
TEST(SourceConfigTest, ParsesSourcesAndWatch) {
  auto c = ParseConfig(R"(peer_id = 1
[watch]
quiet_period = "2s"
rescan_interval = ""

[[source]]
path = "/home/me/Documents/"
copies = 3
exclude = ["*.tmp", ".cache"]
schedule = "1h"
keep_daily = 7
keep_within = "2d"
keep_tags = ["keep"]

[[source]]
path = "/srv/photos"
ec = " 4 + 2 "
watch = false
)",
                       "x.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->watch.quiet_period, std::chrono::seconds(2));
  EXPECT_EQ(c->watch.rescan_interval.count(), 0);  // never
  ASSERT_EQ(c->sources.size(), 2u);
  const SourceConfig& docs = c->sources[0];
  EXPECT_EQ(docs.path, "/home/me/Documents");  // normalized
  EXPECT_EQ(docs.copies, 3u);
  EXPECT_EQ(docs.ec, "");
  EXPECT_EQ(docs.excludes, (std::vector<std::string>{"*.tmp", ".cache"}));
  EXPECT_EQ(docs.schedule, std::chrono::hours(1));
  EXPECT_TRUE(docs.watch);
  EXPECT_EQ(docs.keep.keep_daily, 7);
  EXPECT_EQ(docs.keep.keep_within.ToString(), "2d");
  EXPECT_EQ(docs.keep.keep_tags, std::vector<std::string>{"keep"});
  const SourceConfig& photos = c->sources[1];
  EXPECT_EQ(photos.ec, "4+2");
  EXPECT_EQ(photos.copies, 0u);
  EXPECT_FALSE(photos.watch);
  EXPECT_EQ(photos.schedule.count(), 0);
  EXPECT_TRUE(photos.keep.empty());

  auto defaults = ParseConfig("peer_id = 1\n", "x.toml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->watch.quiet_period, std::chrono::seconds(10));
  EXPECT_EQ(defaults->watch.rescan_interval, std::chrono::hours(1));
  EXPECT_TRUE(defaults->sources.empty());
}

TEST(SourceConfigTest, ErrorsNameTheSourceAndKey) {
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"[[source]]\ncopies = 2\n", "key 'source[1]': missing required key 'path'"},
      {"[[source]]\npath = \"relative\"\n", "key 'source[1].path': must be an absolute path"},
      {"[[source]]\npath = \"/a\"\ncopies = 2\nec = \"4+2\"\n",
       "key 'source[1]': 'copies' and 'ec' exclude each other"},
      {"[[source]]\npath = \"/a\"\n[[source]]\npath = \"/a/\"\n",
       "key 'source[2].path': '/a' is already a source"},
      {"[[source]]\npath = \"/a\"\nexclude = \"*.tmp\"\n", "key 'source[1].exclude'"},
      {"[[source]]\npath = \"/a\"\nschedule = \"soon\"\n", "key 'source[1].schedule'"},
      {"[[source]]\npath = \"/a\"\nwatch = \"yes\"\n", "key 'source[1].watch'"},
      {"[[source]]\npath = \"/a\"\nkeep_within = \"forever\"\n", "key 'source[1].keep_within'"},
      {"[[source]]\npath = \"/a\"\ncopeis = 2\n", "key 'source[1].copeis': unknown key"},
      {"[[source]]\npath = \"/a\"\nec = \"4\"\n", "key 'source[1].ec'"},
      {"source = \"/a\"\n", "key 'source': expected an array of tables"},
      {"[watch]\nquiet_period = \"\"\n", "key 'watch.quiet_period'"},
      {"[watch]\nquiet = \"1s\"\n", "key 'watch.quiet': unknown key"},
      {"[watch]\nrescan_interval = 5\n", "key 'watch.rescan_interval'"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseConfig("peer_id = 1\n" + c.text, "DIR/cairn.toml");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.want)) << c.text;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("DIR/cairn.toml")) << c.text;
  }
}

Config WithSources() {
  Config c;
  c.peer_id = 7;
  c.host_id = "h";
  c.watch.quiet_period = std::chrono::milliseconds(1500);
  c.watch.rescan_interval = std::chrono::minutes(30);
  SourceConfig a;
  a.path = "/data/a \"quoted\"";
  a.copies = 2;
  a.excludes = {"*.o", "build"};
  a.schedule = std::chrono::hours(6);
  a.keep.keep_last = 5;
  a.keep.keep_monthly = -1;
  a.keep.keep_tags = {"t1", "t2"};
  SourceConfig b;
  b.path = "/data/b";
  b.ec = "3+1";
  b.watch = false;
  c.sources = {a, b};
  return c;
}

// A schedule in days goes through base/duration.h; keep_within is held parsed and rendered in
// restic's form, for [retention] and a [[source]] alike.
TEST(SourceConfigTest, ScheduleInDaysAndKeepWithinRenderBack) {
  auto c = ParseConfig(R"(peer_id = 1
[retention]
keep_within = "1y6m"

[[source]]
path = "/a"
schedule = "1d"
keep_within = " 2d12h "
)",
                       "x.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->retention.keep_within, (engine::RetentionDuration{.years = 1, .months = 6}));
  ASSERT_EQ(c->sources.size(), 1u);
  EXPECT_EQ(c->sources[0].schedule, std::chrono::hours(24));
  EXPECT_EQ(c->sources[0].keep.keep_within, (engine::RetentionDuration{.days = 2, .hours = 12}));
  std::string text = RenderConfig(*c);
  EXPECT_THAT(text, HasSubstr("keep_within = \"1y6m\""));
  EXPECT_THAT(text, HasSubstr("keep_within = \"2d12h\""));
  auto back = ParseConfig(text, "x");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(back->retention, c->retention);
  EXPECT_EQ(back->sources, c->sources);
}

TEST(SourceConfigTest, RenderParsesBackAndSameSettingsComparesSources) {
  Config c = WithSources();
  std::string text = RenderConfig(c);
  auto back = ParseConfig(text, "x");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_TRUE(back->SameSettings(c)) << text;
  EXPECT_EQ(back->sources, c.sources);
  EXPECT_EQ(back->watch, c.watch);
  EXPECT_THAT(text, HasSubstr("[watch]"));
  // Without sources the rendering shows an example in comments only.
  Config none = c;
  none.sources.clear();
  none.watch.rescan_interval = std::chrono::milliseconds(0);
  text = RenderConfig(none);
  EXPECT_THAT(text, HasSubstr("# [[source]]"));
  EXPECT_THAT(text, HasSubstr("rescan_interval = \"\""));
  back = ParseConfig(text, "x");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->SameSettings(none));
  EXPECT_FALSE(back->SameSettings(c));
  Config other = c;
  other.sources[1].excludes.push_back("x");
  EXPECT_FALSE(other.SameSettings(c));
  other = c;
  other.watch.quiet_period = std::chrono::seconds(1);
  EXPECT_FALSE(other.SameSettings(c));
}

TEST(SourceConfigTest, WriteBackSourcesKeepsTheRestOfTheFile) {
  testing::TempDir dir;
  std::string path = ConfigPath(dir.path());
  std::string text = std::string(kSpecExample) +
                     "\n# my sources\n[[source]]\npath = \"/old\"  # going away\nwatch = false\n"
                     "\n# retention, mine\n[retention]\nkeep_last = 4\n";
  ASSERT_TRUE(env::WriteFileAtomic(path, AsBytes(text), 0600).ok());
  SourceConfig fresh;
  fresh.path = "/new";
  fresh.excludes = {"*.tmp"};
  fresh.keep.keep_daily = 3;
  SourceConfig second;
  second.path = "/second";
  ASSERT_TRUE(WriteBackSources(dir.path(), {fresh, second}).ok());
  auto written = env::ReadFileString(path);
  ASSERT_TRUE(written.ok());
  EXPECT_THAT(*written, HasSubstr("host_id = \"a1b2\"            # default: /etc/machine-id"));
  EXPECT_THAT(*written, HasSubstr("# retention, mine\n[retention]\nkeep_last = 4\n"));
  EXPECT_THAT(*written, ::testing::Not(HasSubstr("/old")));
  auto loaded = LoadConfig(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status() << "\n" << *written;
  EXPECT_EQ(loaded->sources, (std::vector<SourceConfig>{fresh, second}));
  EXPECT_EQ(loaded->retention.keep_last, 4);
  Config want = *ParseConfig(text, "x");
  want.sources = {fresh, second};
  EXPECT_TRUE(loaded->SameSettings(want));

  // Down to none, and back to one.
  ASSERT_TRUE(WriteBackSources(dir.path(), {}).ok());
  loaded = LoadConfig(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->sources.empty());
  ASSERT_TRUE(WriteBackSources(dir.path(), {second}).ok());
  loaded = LoadConfig(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->sources, std::vector<SourceConfig>{second});
  EXPECT_THAT(*env::ReadFileString(path), HasSubstr("[chunker]   # recorded at init"));
}

TEST(SourceConfigTest, ValidateSource) {
  SourceConfig s;
  s.path = "/ok";
  EXPECT_TRUE(ValidateSource(s).ok());
  for (auto mutate : std::vector<std::function<void(SourceConfig&)>>{
           [](SourceConfig& x) { x.path = "rel"; },
           [](SourceConfig& x) { x.path = "/caf\xe9"; },  // not UTF-8: cannot be in TOML
           [](SourceConfig& x) { x.copies = 65; },
           [](SourceConfig& x) { x.ec = "4"; },
           [](SourceConfig& x) {
             x.copies = 2;
             x.ec = "4+2";
           },
           [](SourceConfig& x) { x.excludes = {""}; },
           [](SourceConfig& x) { x.keep.keep_last = -2; },
           [](SourceConfig& x) { x.keep.keep_tags = {"caf\xe9"}; },
       }) {
    SourceConfig bad = s;
    mutate(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(ValidateSource(bad))) << bad.path;
  }
  EXPECT_EQ(NormalSourcePath("/a//b/./c/../d/"), "/a/b/d");
  EXPECT_EQ(NormalSourcePath("/"), "/");
}

}  // namespace
}  // namespace cairn::daemon
