#include "cairn/daemon/peer_dir.h"

#include <sys/stat.h>

#include "cairn/base/bytes.h"
#include "cairn/daemon/test_util.h"
#include "cairn/env/file.h"
#include "cairn/index/catalog.h"
#include "cairn/index/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using ::testing::HasSubstr;

uint32_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0xffffffff;
  return st.st_mode & 07777;
}

Config TestConfig(const std::string& dir) {
  Config c;
  c.dir = dir;
  c.peer_id = 7;
  c.host_id = "test-host";
  c.seeds = {"127.0.0.1:7001"};
  c.chunker.min_size = 64 * 1024;
  c.chunker.avg_size = 256 * 1024;
  c.chunker.max_size = 1024 * 1024;
  return c;
}

TEST(PeerDirTest, InitCreatesTheLayoutWithPrivateModes) {
  testing::TempDir tmp;
  std::string dir = tmp.File("peer");
  auto report = InitPeerDir(TestConfig(dir));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(SecretsDir(dir)), 0700u);
  EXPECT_EQ(ModeOf(OwnerKeyPath(dir)), 0600u);
  EXPECT_EQ(ModeOf(ApiTokenPath(dir)), 0600u);
  EXPECT_EQ(ModeOf(ConfigPath(dir)), 0600u);
  struct stat st;
  EXPECT_EQ(::stat(BlobsDir(dir).c_str(), &st), 0);
  EXPECT_EQ(::stat(IndexPath(dir).c_str(), &st), 0);
  EXPECT_THAT(report->created, ::testing::Contains(ConfigPath(dir)));

  // The config loads back with the settings given.
  auto config = LoadConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->SameSettings(TestConfig(dir)));
  // Keys are 64 hex characters, distinct, and load.
  auto key = LoadOwnerKey(dir);
  ASSERT_TRUE(key.ok()) << key.status();
  auto token = LoadApiToken(dir);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->size(), 64u);
  EXPECT_NE(ToHex(*key), *token);
  // The chunker params are recorded in the index.
  auto db = index::Database::Open(IndexPath(dir));
  ASSERT_TRUE(db.ok()) << db.status();
  auto catalog = index::NewSqliteCatalog(db->get());
  auto avg = catalog->GetMeta(kMetaChunkerAvg);
  ASSERT_TRUE(avg.ok());
  ASSERT_TRUE(avg->has_value());
  EXPECT_EQ(**avg, "262144");
}

// `cairn recover`: the owner key, cluster key and node id come from the recovery key.
TEST(PeerDirTest, InitWithGivenSecretsWritesThem) {
  testing::TempDir tmp;
  std::string dir = tmp.File("peer");
  InitSecrets secrets;
  secrets.owner_key = codec::RandomKey();
  secrets.cluster_key = codec::RandomKey();
  secrets.node_id = "00112233445566778899AABBCCDDEEFF";
  auto report = InitPeerDir(TestConfig(dir), secrets);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*LoadOwnerKey(dir), *secrets.owner_key);
  EXPECT_EQ(*LoadClusterKey(dir), *secrets.cluster_key);
  EXPECT_EQ(*LoadOrCreateNodeId(dir), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(ModeOf(NodeIdPath(dir)), 0600u);

  secrets.node_id = "not-a-node-id";
  auto bad = InitPeerDir(TestConfig(tmp.File("other")), secrets);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  struct stat st;
  EXPECT_NE(::stat(tmp.File("other").c_str(), &st), 0);  // nothing written
}

TEST(PeerDirTest, InitIntoAnExistingEmptyDirectoryWorks) {
  testing::TempDir tmp;
  ASSERT_TRUE(InitPeerDir(TestConfig(tmp.path())).ok());
}

TEST(PeerDirTest, InitRefusesAnInitializedDirectory) {
  testing::TempDir tmp;
  ASSERT_TRUE(InitPeerDir(TestConfig(tmp.path())).ok());
  auto key_before = LoadOwnerKey(tmp.path());
  auto again = InitPeerDir(TestConfig(tmp.path()));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("cairn.toml exists"));
  // Nothing was overwritten.
  EXPECT_EQ(ToHex(*LoadOwnerKey(tmp.path())), ToHex(*key_before));
}

TEST(PeerDirTest, InitNeverOverwritesAnOwnerKey) {
  testing::TempDir tmp;
  ASSERT_TRUE(env::MakeDirs(SecretsDir(tmp.path()), 0700).ok());
  std::string key(64, 'a');
  ASSERT_TRUE(env::WriteFileAtomic(OwnerKeyPath(tmp.path()), AsBytes(key), 0600).ok());
  auto r = InitPeerDir(TestConfig(tmp.path()));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*env::ReadFileString(OwnerKeyPath(tmp.path())), key);
}

TEST(PeerDirTest, InitRejectsInvalidSettingsBeforeWriting) {
  testing::TempDir tmp;
  Config c = TestConfig(tmp.File("p"));
  c.api = "0.0.0.0:0";
  EXPECT_EQ(InitPeerDir(c).status().code(), absl::StatusCode::kInvalidArgument);
  c = TestConfig(tmp.File("p"));
  c.chunker.avg_size = 1000;  // not a power of two
  EXPECT_EQ(InitPeerDir(c).status().code(), absl::StatusCode::kInvalidArgument);
  struct stat st;
  EXPECT_NE(::stat(tmp.File("p").c_str(), &st), 0);
}

TEST(PeerDirTest, MissingOrGarbledKeysAreClearErrors) {
  testing::TempDir tmp;
  auto missing = LoadOwnerKey(tmp.path());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(OwnerKeyPath(tmp.path())));

  ASSERT_TRUE(env::MakeDirs(SecretsDir(tmp.path()), 0700).ok());
  for (std::string garbled : {std::string("abc"), std::string(64, 'z'), std::string(66, 'a'),
                              std::string("\xff\x00\x01", 3)}) {
    ASSERT_TRUE(env::WriteFileAtomic(OwnerKeyPath(tmp.path()), AsBytes(garbled), 0600).ok());
    auto r = LoadOwnerKey(tmp.path());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("garbled"));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(OwnerKeyPath(tmp.path())));
  }
  // Whitespace around the hex is fine.
  std::string ok = "  " + std::string(64, 'A') + "\n";
  ASSERT_TRUE(env::WriteFileAtomic(ApiTokenPath(tmp.path()), AsBytes(ok), 0600).ok());
  auto token = LoadApiToken(tmp.path());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, std::string(64, 'a'));
}

}  // namespace
}  // namespace cairn::daemon
