#include "cairn/daemon/api_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>

#include "cairn/daemon/json_paths.h"
#include "cairn/daemon/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using nlohmann::json;

const std::string kToken(64, 'f');

// Records requests; answers from canned values.
class FakeHandler : public ApiHandler {
 public:
  absl::StatusOr<json> GetStatus() override { return json{{"peer_id", 3}}; }
  absl::StatusOr<json> GetPeers() override {
    throw std::runtime_error("handler bug");  // must become a 500, not a crash
  }
  absl::StatusOr<json> GetSnapshots() override { return absl::UnavailableError("db is down"); }
  absl::StatusOr<json> List(const std::string& snapshot, const std::string& path,
                            bool recursive) override {
    std::lock_guard<std::mutex> lock(mu);
    last_ls = {snapshot, path, recursive ? "1" : "0"};
    if (snapshot == "missing") return absl::NotFoundError("no snapshot 'missing'");
    json entry;
    SetPathField(entry, "path", path);
    return json::array({entry});
  }
  absl::StatusOr<std::string> StartBackup(const BackupRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    if (backup_running) return absl::FailedPreconditionError("a backup is already running");
    last_backup = r;
    return std::string("job1");
  }
  absl::StatusOr<std::string> StartRestore(const RestoreRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    last_restore = r;
    return std::string("job2");
  }
  absl::StatusOr<json> GetJob(const std::string& id) override {
    if (id != "job1") return absl::NotFoundError("no job '" + id + "'");
    return json{{"id", id}, {"state", "running"}};
  }
  absl::Status CancelJob(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu);
    cancelled = id;
    return absl::OkStatus();
  }

  std::mutex mu;
  bool backup_running = false;
  std::vector<std::string> last_ls;
  BackupRequest last_backup;
  RestoreRequest last_restore;
  std::string cancelled;
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as `cairn peer` does
    auto s = ApiServer::Start("127.0.0.1:0", kToken, &handler_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_bearer_token_auth(kToken);
  }

  // Status code and parsed body of a request.
  std::pair<int, json> Do(const std::string& method, const std::string& path,
                          const std::string& body = "") {
    httplib::Result r = method == "GET"    ? client_->Get(path.c_str())
                        : method == "POST" ? client_->Post(path.c_str(), body, "application/json")
                                           : client_->Delete(path.c_str());
    if (!r) return {-1, json()};
    auto parsed = ParseJson(r->body);
    return {r->status, parsed.ok() ? *parsed : json("<not json>")};
  }

  FakeHandler handler_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ApiServerTest, StatusWithToken) {
  auto [code, body] = Do("GET", "/v1/status");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(body["peer_id"], 3);
}

TEST_F(ApiServerTest, MissingOrWrongTokenIs401) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  auto r = anonymous.Get("/v1/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(ParseJson(r->body)->at("error").at("code"), "UNAUTHENTICATED");

  httplib::Client wrong("127.0.0.1", server_->port());
  wrong.set_bearer_token_auth(std::string(64, 'e'));
  r = wrong.Get("/v1/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // Unknown routes need the token too.
  r = wrong.Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(ApiServerTest, UnknownRouteIs404WithJsonError) {
  for (const char* path : {"/", "/v1", "/v1/nope", "/v1/status/extra", "/v1/jobs/"}) {
    auto [code, body] = Do("GET", path);
    EXPECT_EQ(code, 404) << path;
    EXPECT_EQ(body["error"]["code"], "NOT_FOUND") << path;
  }
  auto [code, body] = Do("POST", "/v1/status", "{}");
  EXPECT_EQ(code, 404);
}

TEST_F(ApiServerTest, MalformedBodiesAre400) {
  const char* kBodies[] = {
      "",
      "{",
      "not json at all",
      "\xff\xfe\x00garbage",
      "[1, 2, 3]",
      R"({"paths_base64": "notanarray"})",
      R"({"paths_base64": [1]})",
      R"({"paths_base64": ["!!!"]})",
      R"({"paths_base64": []})",
      R"({"paths": ["relative/path"]})",
      R"({"paths_base64": ["L3RtcA=="], "copies": "two"})",
      R"({"paths_base64": ["L3RtcA=="], "copies": 0})",
      R"({"paths_base64": ["L3RtcA=="], "copies": 2.5})",
      R"({"paths_base64": ["L3RtcA=="], "ec": "4"})",
      R"({"paths_base64": ["L3RtcA=="], "ec": "17+2"})",
      R"({"paths_base64": ["L3RtcA=="], "ec": 42})",
      R"({"paths_base64": ["L3RtcA=="], "ec": "4+2", "copies": 2})",
      R"({"paths_base64": ["L3RtcA=="], "tags": [{}]})",
      R"({"paths_base64": ["L3RtcA=="], "rehash": "yes"})",
  };
  for (const char* body : kBodies) {
    auto [code, reply] = Do("POST", "/v1/backup", body);
    EXPECT_EQ(code, 400) << body;
    EXPECT_EQ(reply["error"]["code"], "INVALID_ARGUMENT") << body;
  }
  for (const char* body : {"{", R"({"target_base64": 5})", R"({"target": "rel"})",
                           R"({"snapshot": 3, "target": "/t"})", R"({"snapshot": ""})"}) {
    auto [code, reply] = Do("POST", "/v1/restore", body);
    EXPECT_EQ(code, 400) << body;
  }
  auto [code, reply] = Do("GET", "/v1/ls?snapshot=latest&path_base64=%21%21");
  EXPECT_EQ(code, 400);
  std::tie(code, reply) = Do("GET", "/v1/ls?path_base64=");
  EXPECT_EQ(code, 400);
  std::tie(code, reply) = Do("GET", "/v1/ls?snapshot=latest&recursive=maybe");
  EXPECT_EQ(code, 400);
}

TEST_F(ApiServerTest, BackupRequestIsDecoded) {
  json body;
  body["paths_base64"] = {ToBase64("/home/caf\xe9"), ToBase64("/etc")};
  body["copies"] = 3;
  body["tags"] = {"daily"};
  body["excludes"] = json::array();
  body["rehash"] = true;
  auto [code, reply] = Do("POST", "/v1/backup", DumpJson(body));
  EXPECT_EQ(code, 202);
  EXPECT_EQ(reply["job_id"], "job1");
  std::lock_guard<std::mutex> lock(handler_.mu);
  EXPECT_EQ(handler_.last_backup.paths, (std::vector<std::string>{"/home/caf\xe9", "/etc"}));
  EXPECT_EQ(handler_.last_backup.copies, 3u);
  EXPECT_EQ(handler_.last_backup.tags, std::vector<std::string>{"daily"});
  EXPECT_TRUE(handler_.last_backup.rehash);
}

TEST_F(ApiServerTest, BackupRequestWithErasureCoding) {
  json body;
  body["paths_base64"] = {ToBase64("/etc")};
  body["ec"] = "10+4";
  auto [code, reply] = Do("POST", "/v1/backup", DumpJson(body));
  EXPECT_EQ(code, 202) << reply;
  std::lock_guard<std::mutex> lock(handler_.mu);
  ASSERT_TRUE(handler_.last_backup.ec.has_value());
  EXPECT_EQ(handler_.last_backup.ec->k, 10);
  EXPECT_EQ(handler_.last_backup.ec->m, 4);
  EXPECT_FALSE(handler_.last_backup.copies.has_value());
  EXPECT_FALSE(handler_.last_backup.rehash);  // absent: compare metadata
}

TEST_F(ApiServerTest, RestoreRequestIsDecoded) {
  json body{{"snapshot", "3fa2"},
            {"path_base64", ToBase64("docs/\x80x")},
            {"target_base64", ToBase64("/tmp/r")}};
  auto [code, reply] = Do("POST", "/v1/restore", DumpJson(body));
  EXPECT_EQ(code, 202);
  EXPECT_EQ(reply["job_id"], "job2");
  std::lock_guard<std::mutex> lock(handler_.mu);
  EXPECT_EQ(handler_.last_restore.snapshot, "3fa2");
  EXPECT_EQ(handler_.last_restore.path, "docs/\x80x");
  EXPECT_EQ(handler_.last_restore.target, "/tmp/r");
}

TEST_F(ApiServerTest, LsPassesRawPathAndFlag) {
  std::string b64 = ToBase64("a/\xff");
  std::string encoded;
  for (char c : b64)
    encoded += c == '+' ? "%2B" : c == '/' ? "%2F" : c == '=' ? "%3D" : std::string(1, c);
  auto [code, body] = Do("GET", "/v1/ls?snapshot=latest&recursive=1&path_base64=" + encoded);
  EXPECT_EQ(code, 200);
  EXPECT_EQ(*GetPathField(body[0], "path"), "a/\xff");
  std::tie(code, body) = Do("GET", "/v1/ls?snapshot=missing");
  EXPECT_EQ(code, 404);
  EXPECT_EQ(body["error"]["message"], "no snapshot 'missing'");
}

TEST_F(ApiServerTest, ErrorCodesMapToHttpStatuses) {
  auto [code, body] = Do("GET", "/v1/snapshots");
  EXPECT_EQ(code, 503);
  EXPECT_EQ(body["error"]["code"], "UNAVAILABLE");
  std::tie(code, body) = Do("GET", "/v1/jobs/zzz");
  EXPECT_EQ(code, 404);
  {
    std::lock_guard<std::mutex> lock(handler_.mu);
    handler_.backup_running = true;
  }
  std::tie(code, body) = Do("POST", "/v1/backup", R"({"paths_base64": ["L3RtcA=="]})");
  EXPECT_EQ(code, 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 507);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDataLoss), 500);
}

TEST_F(ApiServerTest, JobsRoutes) {
  auto [code, body] = Do("GET", "/v1/jobs/job1");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(body["state"], "running");
  std::tie(code, body) = Do("DELETE", "/v1/jobs/job1");
  EXPECT_EQ(code, 200);
  std::lock_guard<std::mutex> lock(handler_.mu);
  EXPECT_EQ(handler_.cancelled, "job1");
}

TEST_F(ApiServerTest, HandlerExceptionIs500AndServerKeepsServing) {
  auto [code, body] = Do("GET", "/v1/peers");
  EXPECT_EQ(code, 500);
  EXPECT_EQ(body["error"]["code"], "INTERNAL");
  std::tie(code, body) = Do("GET", "/v1/status");
  EXPECT_EQ(code, 200);
}

// Sends raw bytes on a new connection and returns what came back (until EOF or timeout).
std::string RawExchange(int port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "<socket failed>";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "<connect failed>";
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST_F(ApiServerTest, GarbageOnThePortThenAValidRequestStillWorks) {
  daemon::testing::SeededRandom random;
  std::vector<std::string> garbage = {
      std::string("\x00\x01\x02\xff\xfe", 5),
      "GET",
      "GET / HTTP/9.9\r\n\r\n",
      "POST /v1/backup HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "GET /v1/status HTTP/1.1\r\nAuthorization: Bearer " + kToken + "\r\n" +
          std::string(100000, 'x') + "\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS ClientHello start
  };
  std::string noise(2048, '\0');
  for (char& c : noise) c = static_cast<char>(random.rng()());
  garbage.push_back(noise);
  for (const std::string& g : garbage) {
    std::string reply = RawExchange(server_->port(), g);
    EXPECT_NE(reply, "<connect failed>");
  }
  auto [code, body] = Do("GET", "/v1/status");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(body["peer_id"], 3);
}

TEST(ApiServerStartTest, RefusesNonLoopbackAndBusyPorts) {
  FakeHandler handler;
  EXPECT_EQ(ApiServer::Start("0.0.0.0:0", kToken, &handler).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApiServer::Start("nonsense", kToken, &handler).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = ApiServer::Start("127.0.0.1:0", kToken, &handler);
  ASSERT_TRUE(first.ok());
  auto second = ApiServer::Start("127.0.0.1:" + std::to_string((*first)->port()), kToken, &handler);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  (*first)->Stop();
  (*first)->Stop();  // idempotent
}

}  // namespace
}  // namespace cairn::daemon
