#include "cairn/store/s3/s3_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace cairn::store::s3 {
namespace {

TEST(ParseS3Url, BucketPrefixAndAwsDefaults) {
  auto loc = ParseS3Url("s3://my-bucket/backups/peer7", "", "eu-west-1");
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->bucket, "my-bucket");
  EXPECT_EQ(loc->prefix, "backups/peer7/");
  EXPECT_EQ(loc->endpoint, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(loc->region, "eu-west-1");
  EXPECT_EQ(loc->addressing, Addressing::kVirtualHost);
}

TEST(ParseS3Url, CustomEndpointIsPathStyle) {
  auto loc = ParseS3Url("s3://Test_Bucket", "http://127.0.0.1:9000/", "");
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->bucket, "Test_Bucket");
  EXPECT_EQ(loc->prefix, "");
  EXPECT_EQ(loc->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(loc->region, "us-east-1");
  EXPECT_EQ(loc->addressing, Addressing::kPath);
  auto vhost = ParseS3Url("s3://bucket/p/", "https://minio.lan", "", Addressing::kVirtualHost);
  ASSERT_TRUE(vhost.ok());
  EXPECT_EQ(vhost->addressing, Addressing::kVirtualHost);
  EXPECT_EQ(vhost->prefix, "p/");
}

TEST(ParseS3Url, RejectsBadInput) {
  for (const char* url :
       {"http://bucket/x", "s3://", "s3://ab", "s3://UPPER/x", "bucket/x", "s3://has space/x"}) {
    EXPECT_EQ(ParseS3Url(url, "", "").status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
  EXPECT_EQ(ParseS3Url("s3://bucket", "127.0.0.1:9000", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseCredentialsFile, ProfilesAndComments) {
  const char* text =
      "# comment\n[default]\naws_access_key_id = AKDEF\naws_secret_access_key=SKDEF\n\n"
      "[backup]\r\n  AWS_ACCESS_KEY_ID = AKB \r\naws_secret_access_key = SKB\r\n"
      "aws_session_token = TOK\r\n[broken]\naws_access_key_id = X\n";
  auto def = ParseCredentialsFile(text, "default");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->access_key_id, "AKDEF");
  EXPECT_EQ(def->secret_access_key, "SKDEF");
  auto b = ParseCredentialsFile(text, "backup");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->access_key_id, "AKB");
  EXPECT_EQ(b->secret_access_key, "SKB");
  EXPECT_EQ(b->session_token, "TOK");
  EXPECT_EQ(ParseCredentialsFile(text, "broken").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCredentialsFile(text, "absent").status().code(), absl::StatusCode::kNotFound);
}

class LoadCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-s3-cred-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / ".aws");
    std::ofstream(dir_ / ".aws/credentials")
        << "[default]\naws_access_key_id=AKHOME\naws_secret_access_key=SKHOME\n"
        << "[work]\naws_access_key_id=AKWORK\naws_secret_access_key=SKWORK\n";
    vars_["HOME"] = dir_.string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  EnvLookup Env() {
    return [this](const std::string& n) -> std::optional<std::string> {
      auto it = vars_.find(n);
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
  }
  std::filesystem::path dir_;
  std::map<std::string, std::string> vars_;
};

TEST_F(LoadCredentialsTest, EnvironmentWinsOverTheHomeFile) {
  vars_["AWS_ACCESS_KEY_ID"] = "AKENV";
  vars_["AWS_SECRET_ACCESS_KEY"] = "SKENV";
  vars_["AWS_SESSION_TOKEN"] = "TOKENV";
  auto c = LoadCredentials("", "", Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKENV");
  EXPECT_EQ(c->session_token, "TOKENV");
  EXPECT_NE(c->source.find("environment"), std::string::npos);
}

TEST_F(LoadCredentialsTest, HomeFileWithAwsProfile) {
  auto c = LoadCredentials("", "", Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKHOME");
  vars_["AWS_PROFILE"] = "work";
  c = LoadCredentials("", "", Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKWORK");
  EXPECT_NE(c->source.find("[work]"), std::string::npos);
}

TEST_F(LoadCredentialsTest, ExplicitFileWinsAndMustExist) {
  vars_["AWS_ACCESS_KEY_ID"] = "AKENV";
  vars_["AWS_SECRET_ACCESS_KEY"] = "SKENV";
  std::ofstream(dir_ / "explicit")
      << "[default]\naws_access_key_id=AKX\naws_secret_access_key=SKX\n";
  auto c = LoadCredentials((dir_ / "explicit").string(), "", Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKX");
  EXPECT_EQ(LoadCredentials((dir_ / "missing").string(), "", Env()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadCredentials((dir_ / "explicit").string(), "other", Env()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LoadCredentialsTest, NothingFoundSaysWhereItLooked) {
  vars_["HOME"] = (dir_ / "empty-home").string();
  auto c = LoadCredentials("", "", Env());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
  EXPECT_NE(c.status().message().find("empty-home/.aws/credentials"), std::string::npos);
}

}  // namespace
}  // namespace cairn::store::s3
