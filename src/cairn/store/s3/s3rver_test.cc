// S3ObjectStore against a real S3 server: s3rver (npm, an S3 API emulator in Node.js) on
// 127.0.0.1. Installed on first use into $CAIRN_S3RVER_DIR (the build directory's
// s3rver-cache/, set by ctest); prints "SKIP:" and passes when node or npm is missing.
//
// s3rver checks that the access key exists (InvalidAccessKeyId, HTTP 403) but does not verify
// Signature V4 signatures, so a wrong *secret* is only covered by the error mapping tests in
// s3_object_store_test.cc and s3_request_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cairn/store/s3/object_store_conformance.h"
#include "cairn/store/s3/s3_object_store.h"

namespace cairn::store::s3 {
namespace {

namespace fs = std::filesystem;
constexpr char kBucket[] = "cairn-test";

std::string CacheDir() {
  const char* d = std::getenv("CAIRN_S3RVER_DIR");
  return d != nullptr && *d ? d : (fs::current_path() / "s3rver-cache").string();
}
std::string ServerScript() { return CacheDir() + "/node_modules/s3rver/bin/s3rver.js"; }

bool OnPath(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// One s3rver process with its own data directory, stopped (SIGTERM, then SIGKILL) on Stop or
// destruction.
class S3rver {
 public:
  // Starts s3rver on an ephemeral port of 127.0.0.1 and waits (at most 60 s) for it to report
  // the port.
  static std::unique_ptr<S3rver> Start(const std::string& data_dir, std::string* error) {
    fs::remove_all(data_dir);
    fs::create_directories(data_dir);
    int out[2];
    if (pipe(out) != 0) {
      *error = "pipe failed";
      return nullptr;
    }
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      int err = open((data_dir + ".log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      close(out[0]);
      std::string script = ServerScript();
      // s3rver 3.7 makes continuation tokens with DES, which Node >= 17 (OpenSSL 3) only has
      // in its legacy provider.
      execlp("node", "node", "--openssl-legacy-provider", script.c_str(), "-d", data_dir.c_str(),
             "-a", "127.0.0.1", "-p", "0", "--silent", "--configure-bucket", kBucket,
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    auto server = std::unique_ptr<S3rver>(new S3rver(pid));
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 200) > 0) {
        char buf[512];
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
        size_t at = text.find("listening on 127.0.0.1:");
        if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
          server->port_ = std::atoi(text.c_str() + at + std::strlen("listening on 127.0.0.1:"));
          break;
        }
      }
    }
    close(out[0]);
    if (server->port_ <= 0) {
      *error = "s3rver did not report its port within 60 s (see " + data_dir + ".log): " + text;
      return nullptr;
    }
    return server;
  }
  ~S3rver() { Stop(); }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // up to 10 s, then SIGKILL
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  explicit S3rver(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int port_ = 0;
};

S3rver* g_server = nullptr;

S3Options OptionsFor(const std::string& endpoint, const std::string& url) {
  S3Options o;
  auto loc = ParseS3Url(url, endpoint, "us-east-1");
  EXPECT_TRUE(loc.ok()) << loc.status();
  if (loc.ok()) o.location = *loc;
  o.credentials = {"S3RVER", "S3RVER", "", "test (s3rver's built-in account)"};
  o.part_size = 5 << 20;
  o.multipart_threshold = 5 << 20;
  o.retry.initial_backoff = std::chrono::milliseconds(20);
  o.retry.max_backoff = std::chrono::milliseconds(200);
  return o;
}

std::unique_ptr<S3ObjectStore> StoreAt(const std::string& url) {
  auto s = S3ObjectStore::Create(OptionsFor(g_server->endpoint(), url));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::atomic<int> g_prefix{0};

INSTANTIATE_TEST_SUITE_P(S3rver, ObjectStoreConformance,
                         ::testing::Values(StoreFactory{"s3rver",
                                                        []() -> std::unique_ptr<ObjectStore> {
                                                          return StoreAt(
                                                              "s3://cairn-test/conformance-" +
                                                              std::to_string(g_prefix++));
                                                        }}),
                         [](const auto& info) { return info.param.name; });

TEST(S3rverTest, ListingOfMoreThanAThousandKeysSpansPages) {
  auto store = StoreAt("s3://cairn-test/many");
  ASSERT_NE(store, nullptr);
  constexpr int kKeys = 1100;
  std::vector<std::thread> threads;
  std::atomic<int> next{0}, failed{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kKeys; i = next++) {
        char key[32];
        std::snprintf(key, sizeof(key), "seg/%08d", i);
        if (!store->Put(key, Bytes(static_cast<size_t>(i % 7), 1)).ok()) failed++;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failed.load(), 0);
  auto lists_before = store->counters().requests[static_cast<int>(RequestKind::kList)];
  auto all = ListAll(store.get(), "seg/");  // 1000 keys a page
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), static_cast<size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "seg/%08d", i);
    ASSERT_EQ((*all)[i].key, key);
    ASSERT_EQ((*all)[i].size, static_cast<uint64_t>(i % 7));
  }
  EXPECT_EQ(store->counters().requests[static_cast<int>(RequestKind::kList)] - lists_before, 2u);
}

TEST(S3rverTest, MultipartUploadOfA12MiBFileReadsBackEqual) {
  auto store = StoreAt("s3://cairn-test/multipart");
  ASSERT_NE(store, nullptr);
  const std::string path = CacheDir() + "/upload-" + std::to_string(getpid()) + ".seg";
  Bytes data = RandomBytes(12 << 20, 12);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  absl::Status put = store->PutFile("seg/00000042", env::PosixFileSystem(), path);
  fs::remove(path);
  ASSERT_TRUE(put.ok()) << put;
  auto c = store->counters();
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kInitiateMultipart)], 1u);
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kUploadPart)], 3u);  // 5 + 5 + 2 MiB
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kCompleteMultipart)], 1u);

  auto head = store->Head("seg/00000042");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->size, data.size());
  auto all = store->GetRange("seg/00000042", 0, data.size());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(*all == data);
  // A record straddling the first part boundary.
  const uint64_t at = (5 << 20) - 1000;
  auto straddle = store->GetRange("seg/00000042", at, 5000);
  ASSERT_TRUE(straddle.ok()) << straddle.status();
  EXPECT_TRUE(*straddle == Bytes(data.begin() + at, data.begin() + at + 5000));
  // And from memory.
  ASSERT_TRUE(store->Put("seg/00000043", data).ok());
  auto again = store->GetRange("seg/00000043", 0, data.size());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again == data);
}

TEST(S3rverTest, UnknownAccessKeyIsPermissionDenied) {
  S3Options o = OptionsFor(g_server->endpoint(), "s3://cairn-test/denied");
  o.credentials = {"NOT-A-KEY", "whatever", "", "AWS_ACCESS_KEY_ID (environment)"};
  auto store = *S3ObjectStore::Create(o);
  absl::Status s = store->Put("k", Bytes{1});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("check the credentials (from AWS_ACCESS_KEY_ID (environment))"),
            std::string::npos)
      << s;
  EXPECT_EQ(store->counters().retries, 0u);
}

TEST(S3rverTest, MissingBucketIsNotFoundNamingIt) {
  auto store = StoreAt("s3://no-such-bucket/x");
  ASSERT_NE(store, nullptr);
  absl::Status s = store->Put("k", Bytes{1});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("bucket \"no-such-bucket\" does not exist"), std::string::npos) << s;
}

TEST(S3rverTest, StoppedServerIsUnavailableAfterRetries) {
  std::string error;
  auto own = S3rver::Start(CacheDir() + "/data-stopped-" + std::to_string(getpid()), &error);
  ASSERT_NE(own, nullptr) << error;
  S3Options o = OptionsFor(own->endpoint(), "s3://cairn-test/stop");
  o.retry.max_attempts = 4;
  auto store = *S3ObjectStore::Create(o);
  Bytes data = RandomBytes(1000, 3);
  ASSERT_TRUE(store->Put("k", data).ok());
  own->Stop();
  auto got = store->GetRange("k", 0, 1000);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find(own->endpoint() + " unreachable (after 4 attempts)"),
            std::string::npos)
      << got.status();
  EXPECT_EQ(store->counters().retries, 3u);
  EXPECT_EQ(store->counters().failures, 1u);
  const std::string dir = CacheDir() + "/data-stopped-" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::remove(dir + ".log");
}

}  // namespace
}  // namespace cairn::store::s3

int main(int argc, char** argv) {
  using namespace cairn::store::s3;
  ::testing::InitGoogleTest(&argc, argv);
  if (!fs::exists(ServerScript())) {
    if (!OnPath("npm") || !OnPath("node")) {
      std::printf("SKIP: npm or node is not installed; s3rver cannot be installed\n");
      return 0;
    }
    fs::create_directories(CacheDir());
    std::string cmd = "npm install --no-audit --no-fund --silent --prefix '" + CacheDir() +
                      "' s3rver@3.7.1 >'" + CacheDir() + "/npm.log' 2>&1";
    if (std::system(cmd.c_str()) != 0 || !fs::exists(ServerScript())) {
      std::fprintf(stderr, "npm install s3rver into %s failed (see npm.log there)\n",
                   CacheDir().c_str());
      return 1;
    }
  }
  std::string error;
  auto server = S3rver::Start(CacheDir() + "/data-" + std::to_string(getpid()), &error);
  if (server == nullptr) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  g_server = server.get();
  int rc = RUN_ALL_TESTS();
  server->Stop();
  fs::remove_all(CacheDir() + "/data-" + std::to_string(getpid()));
  if (rc == 0) fs::remove(CacheDir() + "/data-" + std::to_string(getpid()) + ".log");
  return rc;
}
