// S3ObjectStore against a canned HTTP server on 127.0.0.1 (cpp-httplib): what goes on the wire
// (method, path, query, Range, signature headers) and what each answer becomes (retries, error
// mapping, multipart flow, parallelism bound, upload rate limit). The real-server test is
// s3rver_test.cc.
#include "cairn/store/s3/s3_object_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "cairn/base/bytes.h"
#include "cairn/codec/crypto.h"
#include "cairn/env/clock.h"

namespace cairn::store::s3 {
namespace {

struct Seen {
  std::string method, target, range, authorization, content_sha256, body;
  // Headers named in the Authorization's SignedHeaders but absent from the request: the
  // service computes the signature from the headers it receives, so any would fail it.
  std::vector<std::string> signed_but_not_sent;
};

std::vector<std::string> SignedButNotSent(const httplib::Request& req) {
  std::string auth = req.get_header_value("Authorization");
  size_t at = auth.find("SignedHeaders=");
  if (at == std::string::npos) return {"(no SignedHeaders)"};
  at += std::strlen("SignedHeaders=");
  std::string list = auth.substr(at, auth.find(',', at) - at);
  std::vector<std::string> missing;
  for (size_t pos = 0; pos <= list.size();) {
    size_t end = std::min(list.find(';', pos), list.size());
    std::string name = list.substr(pos, end - pos);
    if (!req.has_header(name.c_str())) missing.push_back(name);
    pos = end + 1;
  }
  return missing;
}

class CannedServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  explicit CannedServer(Handler handler) : handler_(std::move(handler)) {
    // Routes, not a pre-routing handler: cpp-httplib reads the body only for a routed request.
    auto record = [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        seen_.push_back({req.method, req.target, req.get_header_value("Range"),
                         req.get_header_value("Authorization"),
                         req.get_header_value("x-amz-content-sha256"), req.body,
                         SignedButNotSent(req)});
      }
      handler_(req, res);
    };
    server_.Get(".*", record);  // and HEAD
    server_.Put(".*", record);
    server_.Post(".*", record);
    server_.Delete(".*", record);
    server_.set_payload_max_length(64 << 20);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost: wait for it (deadline 10 s).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~CannedServer() {
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

void XmlError(httplib::Response& res, int status, const std::string& code) {
  res.status = status;
  res.set_content("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                      "</Code><Message>canned " + code +
                      "</Message><RequestId>R1</RequestId>"
                      "</Error>",
                  "application/xml");
}

class S3ObjectStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<S3ObjectStore> Make(const std::string& endpoint, int attempts = 3) {
    S3Options o;
    auto loc = ParseS3Url("s3://cairn-test/peer7", endpoint, "eu-west-1");
    EXPECT_TRUE(loc.ok()) << loc.status();
    o.location = *loc;
    o.credentials.access_key_id = "AKIDTEST";
    o.credentials.secret_access_key = "secret";
    o.credentials.source = "test credentials";
    o.retry.max_attempts = attempts;
    o.sleeper = &sleeper_;
    o.jitter_seed = 7;
    o.part_size = 5 << 20;
    o.multipart_threshold = 5 << 20;
    o.connect_timeout = std::chrono::milliseconds(2000);
    auto s = S3ObjectStore::Create(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(s).value();
  }
  env::FakeClock clock_;
  env::FakeSleeper sleeper_{&clock_};
};

TEST_F(S3ObjectStoreTest, PutSignsTheBodyAndGetAsksForTheRange) {
  CannedServer server([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "PUT") {
      res.set_header("ETag", "\"e1\"");
      res.status = 200;
    } else {
      // cpp-httplib answers the Range header itself: 206 with bytes 10-13 and Content-Range.
      std::string object(100, '.');
      object.replace(10, 4, "abcd");
      res.status = 206;
      res.set_content(object, "application/octet-stream");
    }
  });
  auto store = Make(server.endpoint());
  std::string body = "hello segment";
  ASSERT_TRUE(
      store->Put("seg/1", ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()))
          .ok());
  auto got = store->GetRange("seg/1", 10, 4);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::string(got->begin(), got->end()), "abcd");

  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/cairn-test/peer7/seg/1");
  EXPECT_EQ(seen[0].body, body);
  auto digest = codec::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
  EXPECT_EQ(seen[0].content_sha256, ToHex(ByteSpan(digest.data(), digest.size())));
  EXPECT_TRUE(seen[0].authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"))
      << seen[0].authorization;
  EXPECT_NE(seen[0].authorization.find("/eu-west-1/s3/aws4_request"), std::string::npos);
  EXPECT_NE(seen[0].authorization.find("x-amz-content-sha256"), std::string::npos)
      << "the payload hash must be a signed header: " << seen[0].authorization;
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].range, "bytes=10-13");
  for (const auto& s : seen) {
    EXPECT_TRUE(s.signed_but_not_sent.empty())
        << s.method << " signs headers it does not send: " << s.signed_but_not_sent[0] << " in "
        << s.authorization;
  }
  auto c = store->counters();
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kPut)], 1u);
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kGet)], 1u);
  EXPECT_EQ(c.bytes_sent, body.size());
  EXPECT_EQ(c.bytes_received, 4u);
}

TEST_F(S3ObjectStoreTest, SlowDownIsRetriedWithBackoffThenSucceeds) {
  std::atomic<int> calls{0};
  CannedServer server([&](const httplib::Request&, httplib::Response& res) {
    if (calls++ < 2) return XmlError(res, 503, "SlowDown");
    res.status = 200;
    res.set_header("ETag", "\"e\"");
  });
  auto store = Make(server.endpoint(), 5);
  ASSERT_TRUE(store->Put("k", Bytes{1, 2, 3}).ok());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(store->counters().retries, 2u);
  EXPECT_EQ(store->counters().failures, 0u);
  EXPECT_EQ(sleeper_.sleeps(), 2);  // seeded jitter: both waits are non-zero
  EXPECT_LE(sleeper_.total(), std::chrono::milliseconds(100 + 200));  // two capped waits
}

TEST_F(S3ObjectStoreTest, PersistentServerErrorsEndUnavailableAfterTheBoundedAttempts) {
  std::atomic<int> calls{0};
  CannedServer server([&](const httplib::Request&, httplib::Response& res) {
    calls++;
    XmlError(res, 503, "SlowDown");
  });
  auto store = Make(server.endpoint(), 4);
  absl::Status s = store->Put("k", Bytes{1});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("after 4 attempts"), std::string::npos) << s;
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(store->counters().retries, 3u);
  EXPECT_EQ(store->counters().failures, 1u);
}

TEST_F(S3ObjectStoreTest, ClientErrorsAreNotRetriedAndMapToTheirCodes) {
  struct Case {
    int http;
    std::string code;
    absl::StatusCode want;
    std::string in_message;
  } cases[] = {
      {403, "SignatureDoesNotMatch", absl::StatusCode::kPermissionDenied, "credentials"},
      {403, "InvalidAccessKeyId", absl::StatusCode::kPermissionDenied, "test credentials"},
      {404, "NoSuchBucket", absl::StatusCode::kNotFound, "bucket \"cairn-test\""},
      {404, "NoSuchKey", absl::StatusCode::kNotFound, "no such object"},
      {416, "InvalidRange", absl::StatusCode::kOutOfRange, "past the end"},
  };
  for (const auto& c : cases) {
    std::atomic<int> calls{0};
    CannedServer server([&](const httplib::Request&, httplib::Response& res) {
      calls++;
      XmlError(res, c.http, c.code);
    });
    auto store = Make(server.endpoint(), 5);
    // cpp-httplib would cut an error body to a Range too: ranged gets only where the mapping
    // needs no body.
    absl::Status s = c.http == 416 || c.code == "NoSuchKey" ? store->GetRange("k", 0, 10).status()
                                                            : store->Put("k", Bytes{1});
    EXPECT_EQ(s.code(), c.want) << c.code << ": " << s;
    EXPECT_NE(s.message().find(c.in_message), std::string::npos) << c.code << ": " << s;
    EXPECT_EQ(calls.load(), 1) << c.code;
  }
}

TEST_F(S3ObjectStoreTest, CountersMatchWhatTheServerSawRetriesIncluded) {
  // Each path fails as many times as its first segment says, then answers; what the server
  // answered (body bytes) is summed for the bytes-received check.
  std::mutex mu;
  std::map<std::string, int> failures_left = {{"/cairn-test/peer7/slow", 2},
                                              {"/cairn-test/peer7/flaky", 1}};
  uint64_t answered_bytes = 0;
  CannedServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    auto left = failures_left.find(req.path);
    if (left != failures_left.end() && left->second > 0) {
      left->second--;
      XmlError(res, req.path.ends_with("slow") ? 503 : 500,
               req.path.ends_with("slow") ? "SlowDown" : "InternalError");
    } else if (req.path.ends_with("/denied")) {
      XmlError(res, 403, "AccessDenied");
    } else if (req.method == "HEAD") {
      res.status = req.path.ends_with("/missing") ? 404 : 200;
      return;  // no body
    } else if (req.method == "PUT") {
      res.status = 200;
      res.set_header("ETag", "\"e\"");
    } else if (req.method == "DELETE") {
      res.status = 204;
    } else if (req.has_param("list-type")) {
      res.status = 200;
      res.set_content(
          "<ListBucketResult><IsTruncated>false</IsTruncated>"
          "<Contents><Key>peer7/slow</Key><Size>5</Size><ETag>\"a\"</ETag></Contents>"
          "</ListBucketResult>",
          "application/xml");
    } else {
      res.status = 206;  // cpp-httplib cuts the content to the Range: 4 bytes
      res.set_content(std::string(100, 'x'), "application/octet-stream");
      answered_bytes += 4;
      return;
    }
    // cpp-httplib cuts an error body to the Range too.
    answered_bytes += req.has_header("Range") ? 4 : res.body.size();
  });
  auto store = Make(server.endpoint(), 5);
  const Bytes data(1000, 9);
  EXPECT_TRUE(store->Put("slow", data).ok());         // 503 SlowDown x2, then 200
  EXPECT_TRUE(store->GetRange("flaky", 10, 4).ok());  // 500, then 206
  EXPECT_EQ(store->Put("denied", data).code(), absl::StatusCode::kPermissionDenied);  // 403
  EXPECT_EQ(store->Head("missing").status().code(), absl::StatusCode::kNotFound);     // 404
  EXPECT_TRUE(store->Head("slow").ok());
  EXPECT_TRUE(store->Delete("slow").ok());
  EXPECT_TRUE(ListAll(store.get(), "", 1000).ok());
  const int calls = 7;

  const std::vector<Seen> seen = server.seen();
  std::map<std::string, uint64_t> by_method;
  uint64_t body_bytes = 0;
  for (const Seen& s : seen) {
    std::string kind = s.method;
    if (s.method == "GET")
      kind = s.target.find("list-type=2") != std::string::npos ? "LIST" : "GET";
    by_method[kind]++;
    body_bytes += s.body.size();
  }
  const S3Counters c = store->counters();
  auto requests = [&](RequestKind k) { return c.requests[static_cast<int>(k)]; };
  auto errors = [&](ErrorClass e) { return c.errors[static_cast<int>(e)]; };
  EXPECT_EQ(c.total_requests(), seen.size());
  EXPECT_EQ(requests(RequestKind::kPut), by_method["PUT"]);
  EXPECT_EQ(requests(RequestKind::kPut), 4u);  // 3 for "slow", 1 for "denied"
  EXPECT_EQ(requests(RequestKind::kGet), by_method["GET"]);
  EXPECT_EQ(requests(RequestKind::kGet), 2u);
  EXPECT_EQ(requests(RequestKind::kHead), by_method["HEAD"]);
  EXPECT_EQ(requests(RequestKind::kDelete), by_method["DELETE"]);
  EXPECT_EQ(requests(RequestKind::kList), by_method["LIST"]);
  EXPECT_EQ(requests(RequestKind::kList), 1u);
  EXPECT_EQ(c.retries, seen.size() - calls);
  EXPECT_EQ(c.retries, 3u);
  EXPECT_EQ(c.failures, 2u);  // denied, missing
  EXPECT_EQ(errors(ErrorClass::kThrottled), 2u);
  EXPECT_EQ(errors(ErrorClass::kServer), 1u);
  EXPECT_EQ(errors(ErrorClass::kClient), 2u);
  EXPECT_EQ(errors(ErrorClass::kTransport) + errors(ErrorClass::kTimeout) +
                errors(ErrorClass::kBadAnswer),
            0u);
  EXPECT_EQ(c.total_errors(), 5u);
  EXPECT_EQ(c.bytes_sent, body_bytes);
  EXPECT_EQ(c.bytes_sent, 4 * data.size());  // every attempt sent the whole body
  std::lock_guard lock(mu);
  EXPECT_EQ(c.bytes_received, answered_bytes);
}

TEST_F(S3ObjectStoreTest, RefusedConnectionsCountAsTransportErrors) {
  std::string endpoint;
  {
    CannedServer gone([](const httplib::Request&, httplib::Response&) {});
    endpoint = gone.endpoint();
  }  // the port is closed now
  auto store = Make(endpoint, 3);
  EXPECT_EQ(store->Put("k", Bytes(10, 1)).code(), absl::StatusCode::kUnavailable);
  const S3Counters c = store->counters();
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kPut)], 3u);
  EXPECT_EQ(c.errors[static_cast<int>(ErrorClass::kTransport)], 3u);
  EXPECT_EQ(c.failures, 1u);
  EXPECT_EQ(c.bytes_sent, 0u);  // nothing reached a server
}

TEST_F(S3ObjectStoreTest, HeadWithoutBodyMapsByStatus) {
  CannedServer server([](const httplib::Request& req, httplib::Response& res) {
    res.status = req.target.ends_with("/denied") ? 403 : 404;
  });
  auto store = Make(server.endpoint());
  EXPECT_EQ(store->Head("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Head("denied").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(S3ObjectStoreTest, NobodyListeningIsUnavailableAfterRetries) {
  std::string endpoint;
  {
    CannedServer gone([](const httplib::Request&, httplib::Response&) {});
    endpoint = gone.endpoint();
  }  // the port is closed now
  auto store = Make(endpoint, 3);
  absl::Status s = store->Head("k").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(endpoint + " unreachable (after 3 attempts)"), std::string::npos) << s;
  EXPECT_EQ(store->counters().retries, 2u);
  EXPECT_EQ(sleeper_.sleeps(), 2);
}

// Answers every connection with one fixed HTTP response (cpp-httplib would fix up a wrong
// Content-Range).
class RawServer {
 public:
  explicit RawServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // shutdown() below
        char buf[4096];
        std::string req;
        while (req.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0) break;
          req.append(buf, static_cast<size_t>(n));
        }
        // MSG_NOSIGNAL: the client may hang up first (no SIGPIPE).
        (void)!send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
        close(c);
      }
    });
  }
  ~RawServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(S3ObjectStoreTest, MisplacedOrMissingContentRangeIsDataLoss) {
  for (const char* answer : {
           // asked for bytes 10-13
           "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/100\r\n"
           "Content-Length: 4\r\nConnection: close\r\n\r\nabcd",
           "HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
           "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-13/100\r\n"
           "Content-Length: 3\r\nConnection: close\r\n\r\nabc",
       }) {
    RawServer server(answer);
    auto store = Make(server.endpoint());
    auto got = store->GetRange("k", 10, 4);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << answer << "\n" << got.status();
  }
}

TEST_F(S3ObjectStoreTest, ListFollowsTokensAndStripsThePrefix) {
  CannedServer server([](const httplib::Request& req, httplib::Response& res) {
    res.status = 200;
    if (!req.has_param("continuation-token")) {
      res.set_content(
          "<ListBucketResult><IsTruncated>true</IsTruncated>"
          "<NextContinuationToken>t+/=1</NextContinuationToken>"
          "<Contents><Key>peer7/seg/1</Key><Size>5</Size><ETag>\"a\"</ETag></Contents>"
          "</ListBucketResult>",
          "application/xml");
    } else {
      EXPECT_EQ(req.get_param_value("continuation-token"), "t+/=1");
      res.set_content(
          "<ListBucketResult><IsTruncated>false</IsTruncated>"
          "<Contents><Key>peer7/seg/2</Key><Size>6</Size><ETag>\"b\"</ETag></Contents>"
          "</ListBucketResult>",
          "application/xml");
    }
  });
  auto store = Make(server.endpoint());
  auto all = ListAll(store.get(), "seg/", 1);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "seg/1");
  EXPECT_EQ((*all)[1].key, "seg/2");
  EXPECT_EQ((*all)[1].size, 6u);
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/cairn-test/?list-type=2&max-keys=1&prefix=peer7%2Fseg%2F");
  EXPECT_EQ(
      seen[1].target,
      "/cairn-test/?continuation-token=t%2B%2F%3D1&list-type=2&max-keys=1&prefix=peer7%2Fseg%2F");
}

TEST_F(S3ObjectStoreTest, MultipartUploadsPartsCompletesInOrderAndRetriesA200Error) {
  std::mutex mu;
  std::map<int, std::string> parts;
  std::string complete_body;
  std::atomic<int> completes{0};
  CannedServer server([&](const httplib::Request& req, httplib::Response& res) {
    res.status = 200;
    if (req.method == "POST" && req.has_param("uploads")) {
      res.set_content(
          "<InitiateMultipartUploadResult><UploadId>UP1</UploadId>"
          "</InitiateMultipartUploadResult>",
          "application/xml");
    } else if (req.method == "PUT" && req.has_param("partNumber")) {
      EXPECT_EQ(req.get_param_value("uploadId"), "UP1");
      int n = std::stoi(req.get_param_value("partNumber"));
      std::lock_guard lock(mu);
      parts[n] = req.body;
      res.set_header("ETag", "\"etag" + std::to_string(n) + "\"");
    } else if (req.method == "POST" && req.has_param("uploadId")) {
      if (completes++ == 0) {
        // S3 may answer a completion with 200 and an error body: retried.
        res.set_content("<Error><Code>InternalError</Code><Message>x</Message></Error>",
                        "application/xml");
        return;
      }
      complete_body = req.body;
      res.set_content(
          "<CompleteMultipartUploadResult><ETag>\"all-3\"</ETag>"
          "</CompleteMultipartUploadResult>",
          "application/xml");
    } else {
      res.status = 400;
    }
  });
  auto store = Make(server.endpoint());
  Bytes data(12 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
  ASSERT_TRUE(store->Put("big", data).ok());
  ASSERT_EQ(parts.size(), 3u);  // 5 + 5 + 2 MiB
  std::string joined = parts[1] + parts[2] + parts[3];
  EXPECT_EQ(parts[1].size(), 5u << 20);
  EXPECT_EQ(parts[3].size(), 2u << 20);
  EXPECT_TRUE(joined == std::string(data.begin(), data.end()));
  for (const auto& s : server.seen()) {
    EXPECT_TRUE(s.signed_but_not_sent.empty()) << s.method << " " << s.authorization;
  }
  EXPECT_EQ(complete_body,
            BuildCompleteMultipartUpload({{1, "\"etag1\""}, {2, "\"etag2\""}, {3, "\"etag3\""}}));
  EXPECT_EQ(completes.load(), 2);
  auto c = store->counters();
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kUploadPart)], 3u);
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kCompleteMultipart)], 2u);
  EXPECT_EQ(c.requests[static_cast<int>(RequestKind::kPut)], 0u);
}

TEST_F(S3ObjectStoreTest, PutFileBetweenPartSizeAndThresholdIsOneWholePut) {
  std::mutex mu;
  std::vector<std::string> bodies;
  CannedServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    bodies.push_back(req.body);
    res.status = 200;
    res.set_header("ETag", "\"e\"");
  });
  S3Options o;
  o.location = *ParseS3Url("s3://cairn-test", server.endpoint(), "");
  o.credentials = {"AK", "SK", "", "test"};
  o.part_size = 5 << 20;
  o.multipart_threshold = 16 << 20;
  auto store = *S3ObjectStore::Create(o);
  auto fs = env::NewMemFileSystem();
  Bytes data(7 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + (i >> 16));
  ASSERT_TRUE((*fs->Open("/f", env::OpenMode::kCreate))->Append(data).ok());
  ASSERT_TRUE(store->PutFile("f", fs.get(), "/f").ok());
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_TRUE(bodies[0] == std::string(data.begin(), data.end()));
  EXPECT_EQ(store->counters().requests[static_cast<int>(RequestKind::kPut)], 1u);
}

TEST_F(S3ObjectStoreTest, FailedPartAbortsTheUpload) {
  std::atomic<int> aborts{0};
  CannedServer server([&](const httplib::Request& req, httplib::Response& res) {
    res.status = 200;
    if (req.method == "POST" && req.has_param("uploads")) {
      res.set_content(
          "<InitiateMultipartUploadResult><UploadId>UP2</UploadId>"
          "</InitiateMultipartUploadResult>",
          "application/xml");
    } else if (req.method == "PUT" && req.get_param_value("partNumber") == "2") {
      XmlError(res, 403, "AccessDenied");
    } else if (req.method == "PUT") {
      res.set_header("ETag", "\"p\"");
    } else if (req.method == "DELETE" && req.get_param_value("uploadId") == "UP2") {
      aborts++;
      res.status = 204;
    } else {
      res.status = 400;
    }
  });
  auto store = Make(server.endpoint());
  absl::Status s = store->Put("big", Bytes(11 << 20, 7));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("part 2 of 3"), std::string::npos) << s;
  EXPECT_EQ(aborts.load(), 1);
}

TEST_F(S3ObjectStoreTest, ParallelRequestsStayWithinTheBound) {
  std::atomic<int> in_flight{0}, peak{0};
  std::mutex mu;
  std::condition_variable cv;
  CannedServer server([&](const httplib::Request&, httplib::Response& res) {
    int now = ++in_flight;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    {
      // Hold the request until a second one arrives or a deadline passes, so that requests
      // overlap whenever the client lets them.
      std::unique_lock lock(mu);
      cv.notify_all();
      cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return in_flight.load() >= 3; });
    }
    --in_flight;
    res.status = 200;
    res.set_header("ETag", "\"e\"");
  });
  S3Options o;
  o.location = *ParseS3Url("s3://cairn-test", server.endpoint(), "");
  o.credentials = {"AK", "SK", "", "test"};
  o.max_parallel_requests = 2;
  auto store = *S3ObjectStore::Create(o);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back(
        [&, i] { EXPECT_TRUE(store->Put("k" + std::to_string(i), Bytes{1}).ok()); });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 2);
  EXPECT_GE(peak.load(), 1);
}

TEST_F(S3ObjectStoreTest, UploadsArePacedByTheRateLimiter) {
  CannedServer server([](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_header("ETag", "\"e\"");
  });
  env::RateLimiter limiter(100'000, 100'000, &clock_);  // 100 kB/s, 100 kB bucket
  S3Options o;
  o.location = *ParseS3Url("s3://cairn-test", server.endpoint(), "");
  o.credentials = {"AK", "SK", "", "test"};
  o.upload_limiter = &limiter;
  o.sleeper = &sleeper_;
  auto store = *S3ObjectStore::Create(o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(store->Put("k", Bytes(100'000, 1)).ok());
  // 400 kB through a 100 kB bucket at 100 kB/s: 3 s of waiting (the fake clock moves only
  // when the sleeper waits).
  EXPECT_EQ(sleeper_.total(), std::chrono::seconds(3));
}

TEST_F(S3ObjectStoreTest, AnswerLargerThanTheRangeIsDataLossWithoutRetry) {
  // A server ignoring Range sends the whole (here 3 MiB) object: cut at the cap, not retried.
  std::string big(3 << 20, 'x');
  RawServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-13/100\r\n"
      "Content-Length: " +
      std::to_string(big.size()) + "\r\nConnection: close\r\n\r\n" + big);
  auto store = Make(server.endpoint(), 5);
  auto got = store->GetRange("k", 10, 4);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_EQ(store->counters().retries, 0u);
  EXPECT_EQ(store->counters().errors[static_cast<int>(ErrorClass::kBadAnswer)], 1u);
  EXPECT_EQ(store->counters().failures, 1u);
}

TEST_F(S3ObjectStoreTest, RangeOfAnEmptyObjectIsOutOfRangeEvenWhenTheServerPromisesABody) {
  // s3rver's answer: a 206 announcing one byte of a zero-byte object and sending none. Without
  // the Content-Range check the transfer would stall until the stall timeout, then retry.
  RawServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/0\r\nContent-Length: 1\r\n"
      "\r\n");
  auto store = Make(server.endpoint());
  EXPECT_EQ(store->GetRange("empty", 0, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store->counters().retries, 0u);
}

}  // namespace
}  // namespace cairn::store::s3
