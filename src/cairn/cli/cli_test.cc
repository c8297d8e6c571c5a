#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "cairn/api/json_paths.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/keep_flags.h"
#include "cairn/cli/main.h"
#include "cairn/cli/output.h"
#include "cairn/cli/progress.h"
#include "cairn/cluster/cluster_key.h"
#include "cairn/cluster/recovery_key.h"
#include "cairn/daemon/daemon.h"
#include "cairn/daemon/peer_dir.h"
#include "cairn/daemon/test_util.h"
#include "cairn/daemon/version.h"
#include "cairn/env/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

// Runs `cairn args...` in-process, capturing stdout and stderr.
CliRun Cairn(std::vector<std::string> args) {
  args.insert(args.begin(), "cairn");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code = Main(static_cast<int>(args.size()), argv.data());
  CliRun r{code, ::testing::internal::GetCapturedStdout(),
           ::testing::internal::GetCapturedStderr()};
  return r;
}

// The --keep-* flags `cairn forget` and `cairn source add` share, and the policy they make.
TEST(KeepFlagsTest, ParsedIntoThePolicy) {
  auto parse = [](std::vector<std::string> args) {
    CLI::App app("test");
    KeepFlags flags;
    AddKeepFlags(&app, flags);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
    return flags;
  };
  KeepFlags none = parse({});
  EXPECT_FALSE(none.any());
  auto empty = KeepPolicyFromFlags(none);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  KeepFlags f = parse({"--keep-last", "3", "--keep-hourly", "1", "--keep-daily", "7",
                       "--keep-weekly", "4", "--keep-monthly", "-1", "--keep-yearly", "2",
                       "--keep-within", "1y6m", "--keep-tag", "a", "--keep-tag", "b,c"});
  EXPECT_TRUE(f.any());
  auto p = KeepPolicyFromFlags(f);
  ASSERT_TRUE(p.ok()) << p.status();
  engine::RetentionPolicy want;
  want.keep_last = 3;
  want.keep_hourly = 1;
  want.keep_daily = 7;
  want.keep_weekly = 4;
  want.keep_monthly = -1;
  want.keep_yearly = 2;
  want.keep_within = engine::RetentionDuration{.years = 1, .months = 6};
  want.keep_tags = {"a", "b,c"};
  EXPECT_EQ(*p, want);

  KeepFlags bad = parse({"--keep-within", "soon"});
  EXPECT_TRUE(bad.any());
  auto err = KeepPolicyFromFlags(bad);
  ASSERT_TRUE(absl::IsInvalidArgument(err.status()));
  EXPECT_THAT(std::string(err.status().message()), ::testing::StartsWith("--keep-within: "));
}

TEST(OutputTest, ModeStrings) {
  const std::tuple<const char*, uint32_t, const char*> kCases[] = {
      {"dir", 0755, "drwxr-xr-x"},   {"file", 0644, "-rw-r--r--"},  {"symlink", 0777, "lrwxrwxrwx"},
      {"file", 04755, "-rwsr-xr-x"}, {"file", 02644, "-rw-r-Sr--"}, {"dir", 01777, "drwxrwxrwt"},
      {"file", 0, "----------"},
  };
  for (const auto& [type, mode, want] : kCases) EXPECT_EQ(ModeString(type, mode), want);
}

TEST(OutputTest, TableAlignsColumns) {
  Table t({"ID", "NAME", "SIZE"}, {false, false, true});
  t.AddRow({"1", "caf\xc3\xa9", "10 B"});
  t.AddRow({"22", "x", "1.5 KiB"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "ID  NAME     SIZE\n"
            "1   caf\xc3\xa9     10 B\n"
            "22  x     1.5 KiB\n");
}

TEST(OutputTest, ProgressLine) {
  json p{{"files_total", 10},
         {"bytes_total", 2000000},
         {"scan_done", true},
         {"files_done", 5},
         {"bytes_done", 1000000}};
  std::string line = RenderProgressLine(p, 1e6);
  EXPECT_THAT(line, HasSubstr(" 50.0%"));
  EXPECT_THAT(line, HasSubstr("5/10 files"));
  EXPECT_THAT(line, HasSubstr("1.0 MB/s"));
  EXPECT_THAT(line, HasSubstr("ETA 0:01"));
  EXPECT_THAT(RenderProgressLine(json{{"scan_done", false}}, 0), HasSubstr("scanning"));
  // Check and repair jobs report chunks.
  EXPECT_THAT(
      RenderProgressLine(json{{"chunks_total", 200}, {"chunks_done", 50}, {"bytes_done", 0}}, 0),
      HasSubstr("25.0%  50/200 chunks"));
  // Garbage progress does not throw, and says so.
  EXPECT_EQ(RenderProgressLine(json("nonsense"), 1), "[progress not readable]");
  EXPECT_EQ(RenderProgressLine(json{{"bytes_done", "lots"}}, 1), "[progress not readable]");
}

TEST(OutputTest, UrlEncode) {
  EXPECT_EQ(api::UrlEncode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
  EXPECT_EQ(api::UrlEncode("latest"), "latest");
}

TEST(OutputTest, TimesAndRates) {
  EXPECT_EQ(FormatSeconds(4.25), "4.2 s");
  EXPECT_EQ(FormatRate(121'900'000, 1.0), "121.9 MB/s");
  EXPECT_EQ(FormatRate(5, 0), "-");
  EXPECT_EQ(FormatAge(3'000'000'000), "3s ago");
  EXPECT_EQ(FormatAge(600'000'000'000), "10m ago");
}

TEST(CliTest, HelpAndUsageErrors) {
  EXPECT_EQ(Cairn({"--help"}).code, 0);
  CliRun r = Cairn({"backup", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--exclude"));
  EXPECT_EQ(Cairn({}).code, 2);
  EXPECT_EQ(Cairn({"frobnicate"}).code, 2);
  r = Cairn({"init", "--dir", "/nonexistent/x"});  // --peer-id missing
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("cairn: "));
  EXPECT_EQ(Cairn({"ls", "--dir", "/x"}).code, 2);                 // SNAPSHOT missing
  EXPECT_EQ(Cairn({"restore", "latest", "--dir", "/x"}).code, 2);  // --target missing
  EXPECT_EQ(Cairn({"backup", "--copies", "0", "/x"}).code, 2);
  EXPECT_THAT(Cairn({"backup", "--help"}).out, HasSubstr("--ec"));
  EXPECT_EQ(Cairn({"backup", "--ec", "4", "/x"}).code, 2);
  EXPECT_EQ(Cairn({"backup", "--ec", "17+2", "/x"}).code, 2);
  EXPECT_EQ(Cairn({"backup", "--ec", "4+2", "--copies", "2", "/x"}).code, 2);
}

TEST(CliTest, UnknownCommandsJsonErrorsAndVersion) {
  CliRun r = Cairn({"bakup", "/x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("cairn: unknown command 'bakup'; did you mean backup?"));
  EXPECT_THAT(Cairn({"--dir", "/x", "snap"}).err, HasSubstr("did you mean snapshots?"));
  EXPECT_THAT(Cairn({"restor"}).err, HasSubstr("did you mean restore?"));
  r = Cairn({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'; the commands are: init, peer,"));
  EXPECT_THAT(r.err, HasSubstr("watch, ui, archive, version"));
  // `cairn help [COMMAND]` is `--help` of the program or of the command.
  r = Cairn({"help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, Cairn({"--help"}).out);
  EXPECT_THAT(r.out, HasSubstr("backup"));
  r = Cairn({"help", "backup"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, Cairn({"backup", "--help"}).out);
  EXPECT_THAT(r.out, HasSubstr("--ec"));
  EXPECT_EQ(Cairn({"help", "source", "add"}).out, Cairn({"source", "add", "--help"}).out);
  r = Cairn({"help", "bakup"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean backup?"));
  // Under --json: one JSON object on stderr, restic's exit_error shape.
  r = Cairn({"--json", "bakup"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "{\"message_type\":\"exit_error\",\"code\":2,\"message\":\"unknown command "
            "'bakup'; did you mean backup?\"}\n");
  r = Cairn({"status", "--dir", "/nonexistent/cairn-dir", "--json"});
  EXPECT_EQ(r.code, 1);
  auto j = nlohmann::json::parse(r.err);
  EXPECT_EQ(j["message_type"], "exit_error");
  EXPECT_EQ(j["code"], 1);
  EXPECT_THAT(j["message"].get<std::string>(), HasSubstr("cairn.toml not found"));
  EXPECT_EQ(r.out, "");
  // Without --json again: text.
  EXPECT_THAT(Cairn({"status", "--dir", "/nonexistent/cairn-dir"}).err, HasSubstr("cairn: "));
  r = Cairn({"version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr(std::string("cairn ") + daemon::CairnVersion()));
  EXPECT_THAT(r.out, HasSubstr("protocol cairn.v1; formats: blob 1"));
  r = Cairn({"version", "--json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out), daemon::VersionJson());
  r = Cairn({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, ::testing::StartsWith(std::string("cairn ") + daemon::CairnVersion()));
}

TEST(CliTest, InitThenRefuseAgain) {
  daemon::testing::TempDir tmp;
  std::string dir = tmp.File("p");
  CliRun r = Cairn({"init", "--dir", dir, "--peer-id", "3", "--quota", "20G", "--seed",
                    "127.0.0.1:7001", "--seed", "127.0.0.1:7002", "--copies", "3",
                    "--ping-interval", "500ms", "--dead-after", "5s"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("initialized cairn peer 3"));
  auto config = daemon::LoadConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->peer_id, 3u);
  EXPECT_EQ(config->quota, 20ull << 30);
  EXPECT_EQ(config->seeds, (std::vector<std::string>{"127.0.0.1:7001", "127.0.0.1:7002"}));
  EXPECT_EQ(config->copies, 3u);
  EXPECT_EQ(config->ping_interval, 500ms);
  EXPECT_EQ(config->dead_after, 5s);
  EXPECT_LE(config->suspect_after, config->dead_after);

  r = Cairn({"init", "--dir", dir, "--peer-id", "3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cairn: "));
  EXPECT_THAT(r.err, HasSubstr("exists"));

  r = Cairn({"init", "--dir", tmp.File("q"), "--peer-id", "4", "--quota", "lots"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--quota: invalid size 'lots'"));
  r = Cairn({"init", "--dir", tmp.File("q"), "--peer-id", "4", "--api", "0.0.0.0:0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("loopback"));
}

// docs/operations.md "Sites and off-site copies": --site, and a bucket peer's default site.
TEST(CliTest, InitSite) {
  daemon::testing::TempDir tmp;
  ASSERT_EQ(Cairn({"init", "--dir", tmp.File("lan"), "--peer-id", "1"}).code, 0);
  ASSERT_EQ(Cairn({"init", "--dir", tmp.File("cabin"), "--peer-id", "2", "--site", "cabin"}).code,
            0);
  ASSERT_EQ(Cairn({"init", "--dir", tmp.File("bucket"), "--peer-id", "3", "--storage",
                   "s3://backups/p3", "--s3-endpoint", "http://127.0.0.1:9"})
                .code,
            0);
  ASSERT_EQ(Cairn({"init", "--dir", tmp.File("bucket-lan"), "--peer-id", "4", "--site", "",
                   "--storage", "s3://backups/p4", "--s3-endpoint", "http://127.0.0.1:9"})
                .code,
            0);
  const std::pair<const char*, const char*> want[] = {
      {"lan", ""}, {"cabin", "cabin"}, {"bucket", "offsite"}, {"bucket-lan", ""}};
  for (const auto& [name, site] : want) {
    auto config = daemon::LoadConfig(tmp.File(name));
    ASSERT_TRUE(config.ok()) << name << ": " << config.status();
    EXPECT_EQ(config->site, site) << name;
  }
}

// `cairn cluster token` on a member, `cairn init --join` on a new peer; typos are caught.
TEST(CliTest, ClusterTokenAndJoin) {
  daemon::testing::TempDir tmp;
  const std::string one = tmp.File("one"), two = tmp.File("two");
  ASSERT_EQ(Cairn({"init", "--dir", one, "--peer-id", "1", "--listen", "127.0.0.1:7101"}).code, 0);
  CliRun r = Cairn({"cluster", "token", "--dir", one});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string token(absl::StripAsciiWhitespace(r.out));
  auto parsed = cluster::ParseJoinToken(token);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->address, "127.0.0.1:7101");
  EXPECT_EQ(parsed->key, *daemon::LoadClusterKey(one));
  r = Cairn({"cluster", "token", "--dir", one, "--address", "192.0.2.9:7000", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"address\": \"192.0.2.9:7000\""));

  r = Cairn({"init", "--dir", two, "--peer-id", "2", "--join", token});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("joined the cluster of the peer at 127.0.0.1:7101"));
  EXPECT_EQ(*daemon::LoadClusterKey(two), parsed->key);
  EXPECT_EQ(daemon::LoadConfig(two)->seeds, std::vector<std::string>{"127.0.0.1:7101"});
  EXPECT_NE(*daemon::LoadOrCreateNodeId(two), *daemon::LoadOrCreateNodeId(one));

  // A mistyped token: usage error, nothing created.
  std::string typo = token;
  typo[10] = typo[10] == 'A' ? 'B' : 'A';
  r = Cairn({"init", "--dir", tmp.File("three"), "--peer-id", "3", "--join", typo});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("mistyped"));
  EXPECT_FALSE(fs::exists(tmp.File("three")));
  EXPECT_EQ(Cairn({"init", "--dir", tmp.File("three"), "--peer-id", "3", "--join",
                   token.substr(0, token.size() - 3)})
                .code,
            2);

  // A port not picked yet cannot go into a token.
  ASSERT_EQ(Cairn({"init", "--dir", tmp.File("zero"), "--peer-id", "4"}).code, 0);
  r = Cairn({"cluster", "token", "--dir", tmp.File("zero")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--address"));

  // Directories from before cluster keys: `cluster join` / `cluster new`; never overwritten.
  EXPECT_EQ(Cairn({"cluster", "new", "--dir", two}).code, 1);
  ASSERT_EQ(::unlink(daemon::ClusterKeyPath(two).c_str()), 0);
  r = Cairn({"cluster", "join", token, "--dir", two});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(*daemon::LoadClusterKey(two), parsed->key);
  EXPECT_EQ(Cairn({"cluster", "join", token, "--dir", two}).code, 0);  // same key: fine
  ASSERT_EQ(::unlink(daemon::ClusterKeyPath(one).c_str()), 0);
  ASSERT_EQ(Cairn({"cluster", "new", "--dir", one}).code, 0);
  EXPECT_NE(*daemon::LoadClusterKey(one), parsed->key);
  r = Cairn({"cluster", "token", "--dir", one});
  ASSERT_EQ(r.code, 0);
  r = Cairn({"cluster", "join", std::string(absl::StripAsciiWhitespace(r.out)), "--dir", two});
  EXPECT_EQ(r.code, 1);  // another key is already there
  EXPECT_THAT(r.err, HasSubstr("never overwritten"));
  EXPECT_EQ(Cairn({"cluster", "--dir", two}).code, 2);  // subcommand missing
}

// `cairn key export` prints the directory's keys as a recovery key; `cairn recover` refuses a
// mistyped key or another peer id (usage errors) and an existing peer directory, making nothing.
TEST(CliTest, KeyExportAndRecoverRefusals) {
  daemon::testing::TempDir tmp;
  const std::string one = tmp.File("one");
  ASSERT_EQ(Cairn({"init", "--dir", one, "--peer-id", "5"}).code, 0);
  CliRun r = Cairn({"key", "export", "--dir", one});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("OFF this machine"));
  const std::string text(absl::StripAsciiWhitespace(r.out));
  auto key = cluster::ParseRecoveryKey(text);
  ASSERT_TRUE(key.ok()) << key.status() << ": " << text;
  EXPECT_EQ(key->peer_id, 5u);
  EXPECT_EQ(key->owner_key, *daemon::LoadOwnerKey(one));
  EXPECT_EQ(key->cluster_key, *daemon::LoadClusterKey(one));
  EXPECT_EQ(key->node_id, *daemon::LoadOrCreateNodeId(one));
  r = Cairn({"key", "export", "--dir", one, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["recovery_key"], text);
  EXPECT_EQ(Cairn({"key", "--dir", one}).code, 2);  // subcommand missing

  const std::string two = tmp.File("two");
  std::string typo = text;
  typo[20] = typo[20] == 'a' ? 'b' : 'a';  // a base32 character (not a group dash)
  r = Cairn({"recover", "--recovery-key", typo, "--peer-id", "5", "--dir", two});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("mistyped"));
  r = Cairn({"recover", "--recovery-key", text, "--peer-id", "6", "--dir", two});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("belongs to peer 5"));
  EXPECT_FALSE(fs::exists(two));
  r = Cairn({"recover", "--recovery-key", text, "--peer-id", "5", "--dir", one});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("already a cairn peer directory"));
  EXPECT_EQ(key->owner_key, *daemon::LoadOwnerKey(one));  // untouched
}

TEST(CliTest, NoPeerRunningIsAClearError) {
  daemon::testing::TempDir tmp;
  ASSERT_EQ(Cairn({"init", "--dir", tmp.path(), "--peer-id", "1"}).code, 0);
  CliRun r = Cairn({"status", "--dir", tmp.path()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cairn: cannot reach the cairn peer at 127.0.0.1:0: is `cairn "
                               "peer --dir " +
                               tmp.path() + "` running?"));
  r = Cairn({"snapshots", "--dir", tmp.File("not-a-peer")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cairn init"));
}

template <typename Fn>
bool WaitFor(Fn done, std::chrono::milliseconds timeout = 60s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// The CLI against three in-process peers: backup, snapshots, ls, restore, peers, status.
TEST(CliTest, BackupListRestoreAgainstRunningPeers) {
  signal(SIGPIPE, SIG_IGN);
  // The daemons log through spdlog's default (stdout) logger; keep captured output clean.
  spdlog::set_level(spdlog::level::off);
  daemon::testing::TempDir tmp;
  std::vector<std::unique_ptr<daemon::Daemon>> peers;
  std::string token;
  for (int id = 1; id <= 3; ++id) {
    std::string dir = tmp.File("p" + std::to_string(id));
    std::vector<std::string> args = {"init",
                                     "--dir",
                                     dir,
                                     "--peer-id",
                                     std::to_string(id),
                                     "--host-id",
                                     "h" + std::to_string(id),
                                     "--ping-interval",
                                     "100ms",
                                     "--chunk-min",
                                     "16K",
                                     "--chunk-avg",
                                     "64K",
                                     "--chunk-max",
                                     "256K"};
    // Peers 2 and 3 join peer 1's cluster with its token (which also makes it their seed).
    if (!token.empty()) args.insert(args.end(), {"--join", token});
    CliRun init = Cairn(args);
    ASSERT_EQ(init.code, 0) << init.err;
    auto d = daemon::Daemon::Start(dir);
    ASSERT_TRUE(d.ok()) << d.status();
    if (token.empty()) {
      CliRun t = Cairn({"cluster", "token", "--dir", dir});
      ASSERT_EQ(t.code, 0) << t.err;
      token = std::string(absl::StripAsciiWhitespace(t.out));
      EXPECT_THAT(token, ::testing::StartsWith("cairn1:"));
      auto parsed = cluster::ParseJoinToken(token);
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(parsed->address, (*d)->listen_address());
    }
    peers.push_back(*std::move(d));
  }
  std::string home = tmp.File("p1");
  ASSERT_TRUE(WaitFor([&] {
    int alive = 0;
    json list = peers[0]->status_api().GetPeers().value_or(json::array());
    for (const json& p : list) alive += p["state"] == "alive";
    return alive == 3;
  }));

  std::string src = tmp.File("data");
  fs::create_directories(src + "/d");
  std::ofstream(src + "/d/a.txt") << "alpha";
  std::ofstream(src + "/b\xff.bin") << std::string(100000, 'b');
  fs::create_symlink("d/a.txt", src + "/link");

  CliRun r = Cairn({"backup", "--dir", home, "--copies", "2", "--tag", "t1", src});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(" saved\nfiles:      2 (2 read, 0 unchanged)"));
  EXPECT_THAT(r.out, HasSubstr("(2 copies)"));

  r = Cairn({"backup", "--dir", home, "--json", src});
  ASSERT_EQ(r.code, 0) << r.err;
  auto backup = api::ParseJson(r.out);
  ASSERT_TRUE(backup.ok()) << r.out;
  for (const char* field :
       {"snapshot_id", "short_id", "files", "files_read", "files_unchanged", "directories", "bytes",
        "bytes_read", "new_bytes", "sent_bytes", "chunks", "new_chunks", "duration_seconds",
        "copies", "warnings", "errors", "chunks_below_target", "degraded"}) {
    EXPECT_TRUE(backup->contains(field)) << field;
  }
  EXPECT_EQ((*backup)["files_unchanged"], 2);

  r = Cairn({"snapshots", "--dir", home});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ID"));
  EXPECT_THAT(r.out, HasSubstr("t1"));
  r = Cairn({"snapshots", "--dir", home, "--json"});
  auto snaps = api::ParseJson(r.out);
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 2u);
  EXPECT_EQ((*snaps)[1]["id"], (*backup)["snapshot_id"]);

  r = Cairn({"ls", "--dir", home, "latest", "-r"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("a.txt"));
  EXPECT_THAT(r.out, HasSubstr("b\xff.bin"));  // raw bytes on a terminal
  EXPECT_THAT(r.out, HasSubstr("link -> d/a.txt"));
  r = Cairn({"ls", "--dir", home, "--json", "latest", "-r"});
  auto ls = api::ParseJson(r.out);
  ASSERT_TRUE(ls.ok()) << r.out;
  bool found = false;
  for (const json& e : *ls) {
    if (e.contains("path_base64")) {
      EXPECT_THAT(*api::GetPathField(e, "path"), HasSubstr("b\xff.bin"));
      found = true;
    }
  }
  EXPECT_TRUE(found) << r.out;

  std::string target = tmp.File("out");
  r = Cairn(
      {"restore", "--dir", home, (*backup)["short_id"].get<std::string>(), "--target", target});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("restored 2 files"));
  EXPECT_EQ(*env::ReadFileString(target + "/data/d/a.txt"), "alpha");
  EXPECT_EQ(*env::ReadFileString(target + "/data/b\xff.bin"), std::string(100000, 'b'));
  EXPECT_EQ(fs::read_symlink(target + "/data/link"), "d/a.txt");

  std::string sub_target = tmp.File("sub");
  r = Cairn({"restore", "--dir", home, "latest:data/d", "--target", sub_target, "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(*env::ReadFileString(sub_target + "/d/a.txt"), "alpha");

  r = Cairn({"restore", "--dir", home, "deadbeef", "--target", sub_target});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cairn: "));

  r = Cairn({"peers", "--dir", home});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1*"));
  EXPECT_THAT(r.out, HasSubstr("alive"));
  r = Cairn({"peers", "--dir", home, "--json"});
  auto plist = api::ParseJson(r.out);
  ASSERT_TRUE(plist.ok());
  EXPECT_EQ(plist->size(), 3u);

  r = Cairn({"status", "--dir", home});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("peer 1"));
  EXPECT_THAT(r.out, HasSubstr("scrub:      no pass yet; next "));
  r = Cairn({"status", "--dir", home, "--json"});
  auto status = api::ParseJson(r.out);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["snapshots"], 2);
  EXPECT_EQ((*status)["scrub"]["enabled"], true);

  for (auto& p : peers) p->Shutdown();
}

}  // namespace
}  // namespace cairn::cli
