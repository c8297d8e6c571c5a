#include "cairn/cluster/tls_identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "cairn/base/bytes.h"
#include "cairn/env/file.h"

namespace cairn::cluster {
namespace {

using ::testing::HasSubstr;

codec::Key KeyOf(uint8_t seed) {
  codec::Key key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed + i);
  return key;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "cairn-tls-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(TlsIdentityTest, TheKeyComesFromTheOwnerKeySoARecoveredPeerKeepsItsFingerprint) {
  auto a = MakeTlsIdentity(KeyOf(1), 5);
  auto again = MakeTlsIdentity(KeyOf(1), 5);
  auto other = MakeTlsIdentity(KeyOf(2), 5);
  ASSERT_TRUE(a.ok() && again.ok() && other.ok()) << a.status();
  EXPECT_TRUE(IsValidCertFingerprint(a->fingerprint));
  EXPECT_EQ(a->fingerprint, again->fingerprint);
  EXPECT_NE(a->fingerprint, other->fingerprint);
  EXPECT_THAT(a->cert_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(a->key_pem, HasSubstr("BEGIN PRIVATE KEY"));
  EXPECT_EQ(CertFingerprint(a->cert_pem).value_or(""), a->fingerprint);
  EXPECT_EQ(CertFingerprint("garbage").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TlsIdentityTest, MadeOnFirstUseThenLoaded) {
  TempDir dir;
  const std::string key = dir.File("tls.key");
  const std::string cert = dir.File("tls.crt");
  auto made = LoadOrCreateTlsIdentity(key, cert, KeyOf(1), 5);
  ASSERT_TRUE(made.ok()) << made.status();
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Loaded as written, even when the owner key given no longer matches (the files count).
  auto loaded = LoadOrCreateTlsIdentity(key, cert, KeyOf(9), 5);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->fingerprint, made->fingerprint);
  EXPECT_EQ(loaded->key_pem, made->key_pem);
}

TEST(TlsIdentityTest, DamagedOrMismatchedFilesAreRefusedNamingThem) {
  TempDir dir;
  const std::string key = dir.File("tls.key");
  const std::string cert = dir.File("tls.crt");
  ASSERT_TRUE(LoadOrCreateTlsIdentity(key, cert, KeyOf(1), 5).ok());
  auto other = MakeTlsIdentity(KeyOf(2), 5);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(env::WriteFileAtomic(cert, AsBytes(other->cert_pem), 0600).ok());
  absl::Status mismatched = LoadOrCreateTlsIdentity(key, cert, KeyOf(1), 5).status();
  EXPECT_EQ(mismatched.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatched.message(), HasSubstr("does not match the certificate " + cert));
  ASSERT_TRUE(env::WriteFileAtomic(key, AsBytes("not pem"), 0600).ok());
  absl::Status garbled = LoadOrCreateTlsIdentity(key, cert, KeyOf(1), 5).status();
  EXPECT_EQ(garbled.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(garbled.message(), HasSubstr(key + " is not a PEM private key"));
  std::filesystem::remove(cert);
  absl::Status half = LoadOrCreateTlsIdentity(key, cert, KeyOf(1), 5).status();
  EXPECT_EQ(half.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(half.message(), HasSubstr(cert + " is missing"));
}

}  // namespace
}  // namespace cairn::cluster
