#include "cairn/daemon/api_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cairn/api/client.h"
#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_jobs.h"
#include "cairn/daemon/api_lifecycle.h"
#include "cairn/daemon/api_snapshots.h"
#include "cairn/daemon/api_status.h"
#include "cairn/daemon/test_util.h"
#include "cairn/daemon/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using nlohmann::json;

const std::string kToken(64, 'f');

// Records requests; answers from canned values (the status, snapshot, job and lifecycle routes
// are those of StatusApi, SnapshotsApi, JobsApi and LifecycleApi, their answers overridden here
// but reclaim's and the index rebuild's, which an empty ApiContext does not offer).
class FakeHandler : public ApiHandler,
                    public StatusApi,
                    public SnapshotsApi,
                    public JobsApi,
                    public LifecycleApi {
 public:
  FakeHandler()
      : StatusApi(ApiContext{}),
        SnapshotsApi(ApiContext{}),
        JobsApi(ApiContext{}),
        LifecycleApi(ApiContext{}) {}
  std::vector<ApiRoute> Routes() override {
    std::vector<ApiRoute> routes = StatusApi::Routes();
    for (ApiRoute& r : SnapshotsApi::Routes()) routes.push_back(std::move(r));
    for (ApiRoute& r : JobsApi::Routes()) routes.push_back(std::move(r));
    for (ApiRoute& r : LifecycleApi::Routes()) routes.push_back(std::move(r));
    return routes;
  }
  absl::StatusOr<std::string> StartForget(const api::ForgetRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    last_forget = r;
    return std::string("job3");
  }
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
    api::SetPathField(entry, "path", path);
    return json::array({entry});
  }
  absl::StatusOr<std::string> StartBackup(const api::BackupRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    if (backup_running) return absl::FailedPreconditionError("a backup is already running");
    last_backup = r;
    return std::string("job1");
  }
  absl::StatusOr<std::string> StartRestore(const api::RestoreRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    last_restore = r;
    return std::string("job2");
  }
  absl::StatusOr<json> GetJob(const std::string& id) override {
    if (id != "job1") return absl::NotFoundError("no job '" + id + "'");
    return json{{"id", id}, {"state", "running"}};
  }
  absl::StatusOr<json> GetJobs() override {
    return json::array({json{{"id", "job1"}, {"state", "running"}}});
  }
  absl::Status CancelJob(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu);
    cancelled = id;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> GetMetrics() override {
    return std::string("# TYPE cairn_test gauge\ncairn_test 7\n");
  }
  EventBus* Events() override { return &bus; }
  api::Health GetHealth() override {
    std::lock_guard<std::mutex> lock(mu);
    api::Health h;
    h.ready = ready;
    return h;
  }

  EventBus bus;
  std::mutex mu;
  bool ready = true;
  bool backup_running = false;
  std::vector<std::string> last_ls;
  api::BackupRequest last_backup;
  api::RestoreRequest last_restore;
  api::ForgetRequest last_forget;
  std::string cancelled;
};

// A client that gives up after 2 s (connect and read): an answer slower than that is a failure.
api::ApiClient::Options ShortTimeouts() {
  api::ApiClient::Options o;
  o.connect_timeout = std::chrono::seconds(2);
  o.read_timeout = std::chrono::seconds(2);
  return o;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as `cairn peer` does
    auto s = ApiServer::Start("127.0.0.1:0", kToken, &handler_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ASSERT_GT(server_->port(), 0);
    auto c = api::ApiClient::Connect("127.0.0.1:" + std::to_string(server_->port()), kToken);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  // Status code and parsed body of a request.
  std::pair<int, json> Do(const std::string& method, const std::string& path,
                          const std::string& body = "") {
    absl::StatusOr<api::HttpAnswer> r = client_->Send(method, path, body);
    if (!r.ok()) return {-1, json()};
    auto parsed = api::ParseJson(r->body);
    return {r->status, parsed.ok() ? *parsed : json("<not json>")};
  }

  FakeHandler handler_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<api::ApiClient> client_;
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
  EXPECT_EQ(api::ParseJson(r->body)->at("error").at("code"), "UNAUTHENTICATED");

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
  for (const char* path : {"/v1", "/v1/nope", "/v1/status/extra", "/v1/jobs/"}) {
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
      R"({"paths_base64": ["L3RtcA=="], "offsite": -1})",
      R"({"paths_base64": ["L3RtcA=="], "offsite": "one"})",
      R"({"paths_base64": ["L3RtcA=="], "offsite": 65})",
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
  body["paths_base64"] = {api::ToBase64("/home/caf\xe9"), api::ToBase64("/etc")};
  body["copies"] = 3;
  body["tags"] = {"daily"};
  body["excludes"] = json::array();
  body["rehash"] = true;
  body["offsite"] = 1;
  auto [code, reply] = Do("POST", "/v1/backup", api::DumpJson(body));
  EXPECT_EQ(code, 202);
  EXPECT_EQ(reply["job_id"], "job1");
  std::lock_guard<std::mutex> lock(handler_.mu);
  EXPECT_EQ(handler_.last_backup.paths, (std::vector<std::string>{"/home/caf\xe9", "/etc"}));
  EXPECT_EQ(handler_.last_backup.copies, 3u);
  EXPECT_EQ(handler_.last_backup.tags, std::vector<std::string>{"daily"});
  EXPECT_TRUE(handler_.last_backup.rehash);
  EXPECT_EQ(handler_.last_backup.offsite, std::optional<uint32_t>(1));
}

TEST_F(ApiServerTest, BackupRequestWithErasureCoding) {
  json body;
  body["paths_base64"] = {api::ToBase64("/etc")};
  body["ec"] = "10+4";
  auto [code, reply] = Do("POST", "/v1/backup", api::DumpJson(body));
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
            {"path_base64", api::ToBase64("docs/\x80x")},
            {"target_base64", api::ToBase64("/tmp/r")}};
  auto [code, reply] = Do("POST", "/v1/restore", api::DumpJson(body));
  EXPECT_EQ(code, 202);
  EXPECT_EQ(reply["job_id"], "job2");
  std::lock_guard<std::mutex> lock(handler_.mu);
  EXPECT_EQ(handler_.last_restore.snapshot, "3fa2");
  EXPECT_EQ(handler_.last_restore.path, "docs/\x80x");
  EXPECT_EQ(handler_.last_restore.target, "/tmp/r");
}

TEST_F(ApiServerTest, LifecycleRoutes) {
  auto [code, reply] =
      Do("POST", "/v1/forget", R"({"snapshots": ["3fa2"], "dry_run": true, "prune": false})");
  EXPECT_EQ(code, 202) << reply;
  EXPECT_EQ(reply["job_id"], "job3");
  {
    std::lock_guard<std::mutex> lock(handler_.mu);
    EXPECT_EQ(handler_.last_forget.snapshots, std::vector<std::string>{"3fa2"});
    EXPECT_TRUE(handler_.last_forget.dry_run);
    EXPECT_FALSE(handler_.last_forget.prune);
  }
  // A malformed body never reaches the feature.
  std::tie(code, reply) = Do("POST", "/v1/reclaim", R"({"quota": -1})");
  EXPECT_EQ(code, 400) << reply;
  // Without the engine and the daemon's starters: UNIMPLEMENTED, not a crash.
  std::tie(code, reply) = Do("POST", "/v1/delete", R"({"path": "/etc"})");
  EXPECT_EQ(reply["error"]["code"], "UNIMPLEMENTED") << reply;
  EXPECT_EQ(reply["error"]["message"], "delete is not available");
  std::tie(code, reply) = Do("POST", "/v1/reclaim", R"({"quota": 1024})");
  EXPECT_EQ(reply["error"]["message"], "reclaim is not available") << reply;
  std::tie(code, reply) = Do("POST", "/v1/index/rebuild");
  EXPECT_EQ(reply["error"]["message"], "index rebuild is not available") << reply;
}

TEST_F(ApiServerTest, LsPassesRawPathAndFlag) {
  std::string b64 = api::ToBase64("a/\xff");
  std::string encoded;
  for (char c : b64)
    encoded += c == '+' ? "%2B" : c == '/' ? "%2F" : c == '=' ? "%3D" : std::string(1, c);
  auto [code, body] = Do("GET", "/v1/ls?snapshot=latest&recursive=1&path_base64=" + encoded);
  EXPECT_EQ(code, 200);
  EXPECT_EQ(*api::GetPathField(body[0], "path"), "a/\xff");
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

// DNS rebinding (docs/security.md "The local API and browsers"): a page whose name resolves to
// 127.0.0.1 sends Host: its own name; the token alone must not be enough.
TEST_F(ApiServerTest, RefusesForeignHostAndOrigin) {
  const std::string port = std::to_string(server_->port());
  // Raw HTTP: these requests carry the headers a browser would send.
  httplib::Client raw("127.0.0.1", server_->port());
  raw.set_bearer_token_auth(kToken);
  auto get = [&](httplib::Headers headers) {
    httplib::Result r = raw.Get("/v1/status", headers);
    return r ? std::make_pair(r->status, r->body) : std::make_pair(-1, std::string());
  };
  for (const std::string& host :
       std::vector<std::string>{"evil.example", "evil.example:" + port, "127.0.0.1",
                                "127.0.0.1:" + std::to_string(server_->port() + 1),
                                "127.0.0.1.evil.example:" + port, ""}) {
    auto [code, body] = get({{"Host", host}});
    EXPECT_EQ(code, 403) << host;
    EXPECT_THAT(body, ::testing::HasSubstr("PERMISSION_DENIED")) << host;
    EXPECT_THAT(body, ::testing::Not(::testing::HasSubstr("peer_id"))) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port}) {
    EXPECT_EQ(get({{"Host", host}}).first, 200) << host;
  }
  // Origin: only the API's own.
  for (const std::string& origin :
       std::vector<std::string>{"http://evil.example", "null", "https://127.0.0.1:" + port,
                                "http://localhost:" + port}) {
    auto [code, body] = get({{"Origin", origin}});
    EXPECT_EQ(code, 403) << origin;
    EXPECT_THAT(body, ::testing::HasSubstr("refused: a request from the web page")) << origin;
  }
  EXPECT_EQ(get({{"Origin", "http://127.0.0.1:" + port}}).first, 200);
  // No CORS grant, not even to a preflight with the token.
  httplib::Request preflight;
  preflight.method = "OPTIONS";
  preflight.path = "/v1/backup";
  preflight.headers = {{"Origin", "http://evil.example"},
                       {"Access-Control-Request-Method", "POST"}};
  httplib::Result r = raw.send(preflight);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  for (const auto& [name, value] : r->headers) {
    EXPECT_THAT(name, ::testing::Not(::testing::StartsWith("Access-Control"))) << value;
  }
  r = raw.Get("/v1/status");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
}

// docs/dashboard.md: the page and its files need no token, every data route does.
TEST_F(ApiServerTest, DashboardFilesNeedNoToken) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  auto r = anonymous.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), ::testing::StartsWith("text/html"));
  EXPECT_THAT(r->body, ::testing::HasSubstr("/ui/app.js"));
  EXPECT_THAT(r->get_header_value("Content-Security-Policy"),
              ::testing::HasSubstr("script-src 'self'"));
  EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY");
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
  for (const char* file : {"/ui/app.js", "/ui/style.css", "/ui/index.html"}) {
    r = anonymous.Get(file);
    ASSERT_TRUE(r) << file;
    EXPECT_EQ(r->status, 200) << file;
    EXPECT_GT(r->body.size(), 100u) << file;
  }
  EXPECT_THAT(anonymous.Get("/ui/app.js")->get_header_value("Content-Type"),
              ::testing::StartsWith("text/javascript"));
  for (const char* missing : {"/ui/nope.js", "/ui/", "/ui/../secrets/api.token"}) {
    r = anonymous.Get(missing);
    ASSERT_TRUE(r) << missing;
    EXPECT_EQ(r->status, 404) << missing;
  }
  // Data and the code-making route still need the token; so does a POST to a page path.
  for (const char* path : {"/v1/status", "/v1/jobs"}) {
    r = anonymous.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }
  r = anonymous.Post("/v1/ui/code", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = anonymous.Post("/", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // The Host check comes first, for the page too (DNS rebinding).
  r = anonymous.Get("/",
                    httplib::Headers{{"Host", "evil.example:" + std::to_string(server_->port())}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(ApiServerTest, LoginCodeIsExchangedForTheTokenOnce) {
  auto [code, made] = Do("POST", "/v1/ui/code", "{}");
  ASSERT_EQ(code, 201) << made;
  const std::string login = made["code"];
  EXPECT_EQ(login.size(), 32u);
  EXPECT_EQ(made["expires_seconds"], 300);
  httplib::Client anonymous("127.0.0.1", server_->port());
  const std::string body = json{{"code", login}}.dump();
  // A page of another origin cannot redeem it.
  auto r = anonymous.Post("/v1/ui/login", httplib::Headers{{"Origin", "http://evil.example"}}, body,
                          "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  r = anonymous.Post("/v1/ui/login", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(api::ParseJson(r->body)->at("token"), kToken);
  r = anonymous.Post("/v1/ui/login", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->body, ::testing::HasSubstr("unknown, used or expired"));
  for (const char* bad : {"{}", R"({"code":5})", "not json"}) {
    r = anonymous.Post("/v1/ui/login", bad, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
  }
  r = anonymous.Post("/v1/ui/login", R"({"code":""})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // Only the newest 32 codes are kept.
  std::vector<std::string> codes;
  for (int i = 0; i < 33; ++i) codes.push_back(Do("POST", "/v1/ui/code", "{}").second["code"]);
  auto redeem = [&](const std::string& c) {
    return anonymous.Post("/v1/ui/login", json{{"code", c}}.dump(), "application/json")->status;
  };
  EXPECT_EQ(redeem(codes[0]), 401);
  EXPECT_EQ(redeem(codes[1]), 200);
  EXPECT_EQ(redeem(codes[32]), 200);
}

TEST_F(ApiServerTest, JobListRoute) {
  auto [code, body] = Do("GET", "/v1/jobs");
  EXPECT_EQ(code, 200);
  ASSERT_TRUE(body.is_array());
  EXPECT_EQ(body[0]["id"], "job1");
}

TEST_F(ApiServerTest, MetricsHealthAndVersionNeedTheToken) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  for (const char* path : {"/metrics", "/v1/health", "/v1/version"}) {
    auto r = anonymous.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
  }
  auto r = client_->Send("GET", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->body, "# TYPE cairn_test gauge\ncairn_test 7\n");

  auto [code, version] = Do("GET", "/v1/version");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(version, VersionJson());
  EXPECT_EQ(version["version"], CairnVersion());
  EXPECT_EQ(version["protocol"], "cairn.v1");
  EXPECT_EQ(version["formats"]["blob"], 1);

  auto [ok_code, health] = Do("GET", "/v1/health");
  EXPECT_EQ(ok_code, 200);
  EXPECT_EQ(health["ready"], true);
  {
    std::lock_guard<std::mutex> lock(handler_.mu);
    handler_.ready = false;
  }
  auto [not_ready, health2] = Do("GET", "/v1/health");
  EXPECT_EQ(not_ready, 503);
  EXPECT_EQ(health2["live"], true);
  EXPECT_EQ(health2["ready"], false);
  // What the CLI reads: the typed answer (api/responses.h).
  absl::StatusOr<api::Health> decoded = api::Decode<api::Health>(health2);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->ready);
  EXPECT_TRUE(decoded->live);
}

TEST(ApiServerMetricsTest, SeparateListenerServesMetricsAndHealthOnly) {
  FakeHandler handler;
  auto s = ApiServer::StartMetrics("127.0.0.1:0", &handler);
  ASSERT_TRUE(s.ok()) << s.status();
  httplib::Client anonymous("127.0.0.1", (*s)->port());
  auto r = anonymous.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "# TYPE cairn_test gauge\ncairn_test 7\n");
  r = anonymous.Get("/v1/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Nothing else, with or without a token.
  for (const char* path : {"/v1/status", "/v1/version", "/v1/snapshots", "/v1/jobs/job1"}) {
    r = anonymous.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
  anonymous.set_bearer_token_auth(kToken);
  r = anonymous.Get("/v1/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = anonymous.Post("/v1/backup", "{\"paths\":[\"/x\"]}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  // The browser checks hold here too.
  r = anonymous.Get("/metrics", httplib::Headers{{"Host", "evil.example"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(ApiServer::StartMetrics("0.0.0.0:0", &handler).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ApiServerStartTest, ServesOnIpv6Loopback) {
  FakeHandler handler;
  auto s = ApiServer::Start("[::1]:0", kToken, &handler);
  if (!s.ok() && s.status().code() == absl::StatusCode::kUnavailable) {
    GTEST_SKIP() << "no IPv6 loopback here: " << s.status();
  }
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  ASSERT_GT(port, 0);
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(static_cast<uint16_t>(port));
  addr.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "GET /v1/status HTTP/1.1\r\nHost: [::1]:" + std::to_string(port) +
                              "\r\nAuthorization: Bearer " + kToken +
                              "\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_THAT(got, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(got, ::testing::HasSubstr("\"peer_id\":3"));
}

// A raw HTTP/1.1 connection that sends one request and reads the answer as it arrives (an
// event stream never ends on its own).
class StreamConn {
 public:
  StreamConn(int port, const std::string& request) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (connected_ && !request.empty()) ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~StreamConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  // Reads until `text` has arrived (true) or the deadline passes or the server closes (false).
  bool ReadUntil(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        return got_.find(text) != std::string::npos;
      }
      got_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // Waits until the server closes the connection.
  bool WaitClosed(std::chrono::milliseconds timeout) {
    ReadUntil(std::string(1, '\0') + "never", timeout);
    return closed_;
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string got_;
};

std::string EventsRequest(int port, const std::string& token, const std::string& extra = "") {
  return "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nAuthorization: Bearer " + token + "\r\n" + extra + "\r\n";
}

constexpr std::chrono::seconds kWait{10};

TEST_F(ApiServerTest, EventStreamSendsPublishedEventsInOrder) {
  handler_.bus.Publish("job", json{{"id", "before"}});  // before the stream: not sent
  StreamConn c(server_->port(), EventsRequest(server_->port(), kToken));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.ReadUntil(": cairn events\n", kWait)) << c.got();
  EXPECT_THAT(c.got(), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(c.got(), ::testing::HasSubstr("Content-Type: text/event-stream"));
  handler_.bus.Publish("peer", json{{"peer_id", 2}, {"state", "suspect"}, {"was", "alive"}});
  handler_.bus.Publish("job", json{{"id", "j1"}, {"kind", "backup"}, {"state", "running"}});
  ASSERT_TRUE(c.ReadUntil("\"j1\"", kWait)) << c.got();
  const std::string& got = c.got();
  const size_t peer = got.find(
      "id: 2\nevent: peer\ndata: {\"peer_id\":2,\"state\":\"suspect\",\"was\":\"alive\"}\n\n");
  const size_t job = got.find(
      "id: 3\nevent: job\ndata: {\"id\":\"j1\",\"kind\":\"backup\",\"state\":"
      "\"running\"}\n\n");
  ASSERT_NE(peer, std::string::npos) << got;
  ASSERT_NE(job, std::string::npos) << got;
  EXPECT_LT(peer, job);
  EXPECT_EQ(got.find("before"), std::string::npos) << got;
}

TEST_F(ApiServerTest, EventStreamNeedsTheTokenAndResumesFromLastEventId) {
  StreamConn anonymous(server_->port(), EventsRequest(server_->port(), "wrong"));
  ASSERT_TRUE(anonymous.ReadUntil("UNAUTHENTICATED", kWait)) << anonymous.got();
  EXPECT_THAT(anonymous.got(), ::testing::StartsWith("HTTP/1.1 401"));

  for (int i = 1; i <= 3; ++i) handler_.bus.Publish("job", json{{"n", i}});
  StreamConn resumed(server_->port(),
                     EventsRequest(server_->port(), kToken, "Last-Event-ID: 1\r\n"));
  ASSERT_TRUE(resumed.ReadUntil("id: 3\n", kWait)) << resumed.got();
  EXPECT_EQ(resumed.got().find("id: 1\n"), std::string::npos) << resumed.got();
  EXPECT_NE(resumed.got().find("id: 2\nevent: job\ndata: {\"n\":2}"), std::string::npos);

  // Events no longer kept: the stream says how many were missed, then goes on.
  for (size_t i = 0; i < EventBus::kKeep + 5; ++i) handler_.bus.Publish("job", json{{"n", i}});
  StreamConn late(server_->port(), EventsRequest(server_->port(), kToken, "Last-Event-ID: 0\r\n"));
  ASSERT_TRUE(late.ReadUntil("id: " + std::to_string(EventBus::kKeep + 8) + "\n", kWait));
  EXPECT_NE(late.got().find("event: missed\ndata: {\"missed\":8}\n\n"), std::string::npos)
      << late.got().substr(0, 400);

  StreamConn bad(server_->port(),
                 EventsRequest(server_->port(), kToken, "Last-Event-ID: yesterday\r\n"));
  ASSERT_TRUE(bad.ReadUntil("INVALID_ARGUMENT", kWait)) << bad.got();
  EXPECT_THAT(bad.got(), ::testing::StartsWith("HTTP/1.1 400"));
}

TEST_F(ApiServerTest, EventStreamsAreBoundedAndOrdinaryRequestsStillAnswer) {
  std::vector<std::unique_ptr<StreamConn>> streams;
  for (int i = 0; i < ApiServer::kMaxEventStreams; ++i) {
    streams.push_back(
        std::make_unique<StreamConn>(server_->port(), EventsRequest(server_->port(), kToken)));
    ASSERT_TRUE(streams.back()->ReadUntil(": cairn events\n", kWait)) << i;
  }
  StreamConn extra(server_->port(), EventsRequest(server_->port(), kToken));
  ASSERT_TRUE(extra.ReadUntil("too many event streams", kWait)) << extra.got();
  EXPECT_THAT(extra.got(), ::testing::StartsWith("HTTP/1.1 503"));
  auto [code, body] = Do("GET", "/v1/status");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(body["peer_id"], 3);

  // A closed stream frees its slot.
  streams.pop_back();
  handler_.bus.Publish("job", json{{"n", 1}});  // the server notices the write fails
  bool reopened = false;
  const auto deadline = std::chrono::steady_clock::now() + 3 * ApiServer::kKeepalive;
  while (!reopened && std::chrono::steady_clock::now() < deadline) {
    StreamConn again(server_->port(), EventsRequest(server_->port(), kToken));
    reopened = again.ReadUntil(": cairn events\n", std::chrono::seconds(2));
    if (!reopened) handler_.bus.Publish("job", json{{"n", 2}});
  }
  EXPECT_TRUE(reopened);
}

TEST_F(ApiServerTest, StopEndsOpenEventStreams) {
  StreamConn c(server_->port(), EventsRequest(server_->port(), kToken));
  ASSERT_TRUE(c.ReadUntil(": cairn events\n", kWait)) << c.got();
  const auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(c.WaitClosed(kWait));
}

// Connections that send nothing (or stay open after a request) must not keep ordinary requests
// waiting: each holds a worker only while the server has more (docs/cli.md "Local HTTP API").
TEST_F(ApiServerTest, IdleConnectionsDoNotDelayARequest) {
  // 100 connections that finished one request and stay open (keep-alive), then 100 that send
  // nothing.
  const std::string status =
      "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_->port()) +
      "\r\nAuthorization: Bearer " + kToken + "\r\n\r\n";
  std::vector<std::unique_ptr<StreamConn>> idle;
  for (int i = 0; i < 100; ++i) {
    idle.push_back(std::make_unique<StreamConn>(server_->port(), status));
    ASSERT_TRUE(idle.back()->ReadUntil("\"peer_id\":3", kWait)) << i << ": " << idle.back()->got();
  }
  for (int i = 0; i < 100; ++i) {
    idle.push_back(std::make_unique<StreamConn>(server_->port(), ""));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  auto fresh = api::ApiClient::Connect("127.0.0.1:" + std::to_string(server_->port()), kToken,
                                       ShortTimeouts());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<api::HttpAnswer> r = (*fresh)->Send("GET", "/v1/status");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << "no answer within 2 s behind 200 idle connections";
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, std::chrono::seconds(2));
}

// The threads of this process (entries of /proc/self/task).
int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Whether the server still holds a connection open (reads what is there, without waiting:
// no EOF).
bool StillOpen(int fd) {
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

// Idle connections and open event streams hold no thread (docs/cli.md "Local HTTP API"): with
// 1000 idle connections and 20 streams open, a request is answered at once and the process's
// threads stay few.
TEST(ApiServerScaleTest, ThousandIdleConnectionsAndStreamsHoldNoThread) {
  signal(SIGPIPE, SIG_IGN);
  constexpr int kIdle = 1000;
  constexpr int kStreams = 20;
  constexpr int kMaxThreads = 64;
  // Both ends of every connection are in this process.
  const rlim_t need = 2 * (kIdle + kStreams) + 256;
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < need) {
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < need) {
      GTEST_SKIP() << "RLIMIT_NOFILE's hard limit " << old.rlim_max << " is below the " << need
                   << " descriptors this test needs";
    }
    rlimit raised = old;
    raised.rlim_cur = need;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to " << need << ": " << std::strerror(errno);
    }
  }
  struct Restore {
    rlimit limit;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{old};

  FakeHandler handler;
  auto started = ApiServer::Start("127.0.0.1:0", kToken, &handler);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ApiServer> server = *std::move(started);
  const int port = server->port();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string status = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                             "\r\nAuthorization: Bearer " + kToken + "\r\n\r\n";
  // Half kept alive after a request, half silent from the start.
  std::vector<std::unique_ptr<StreamConn>> idle;
  for (int i = 0; i < kIdle / 2; ++i) {
    idle.push_back(std::make_unique<StreamConn>(port, status));
    ASSERT_TRUE(idle.back()->ReadUntil("\"peer_id\":3", kWait)) << i << ": " << idle.back()->got();
  }
  for (int i = 0; i < kIdle / 2; ++i) {
    idle.push_back(std::make_unique<StreamConn>(port, ""));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  std::vector<std::unique_ptr<StreamConn>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<StreamConn>(port, EventsRequest(port, kToken)));
    ASSERT_TRUE(streams.back()->ReadUntil(": cairn events\n", kWait)) << i;
  }

  auto fresh =
      api::ApiClient::Connect("127.0.0.1:" + std::to_string(port), kToken, ShortTimeouts());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const auto before = std::chrono::steady_clock::now();
  absl::StatusOr<api::HttpAnswer> r = (*fresh)->Send("GET", "/v1/status");
  const auto took = std::chrono::steady_clock::now() - before;
  ASSERT_TRUE(r.ok()) << "no answer within 2 s behind " << kIdle << " idle connections and "
                      << kStreams << " event streams";
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, std::chrono::seconds(2));
  const int threads = ThreadCount();
  EXPECT_LT(threads, kMaxThreads);
  // Unless setting up took longer than the idle timeout (a loaded machine), the idle
  // connections were all still held while the request was answered.
  if (std::chrono::steady_clock::now() - t0 < ApiServer::kIdleTimeout - std::chrono::seconds(1)) {
    int open = 0;
    for (const auto& c : idle) open += StillOpen(c->fd()) ? 1 : 0;
    EXPECT_EQ(open, kIdle) << "idle connections closed early";
  }

  // The streams, each suspended until there is something to send, all get a new event.
  handler.bus.Publish("job", json{{"id", "scale"}});
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(streams[i]->ReadUntil("\"scale\"", kWait)) << i << ": " << streams[i]->got();
  }
  EXPECT_LT(ThreadCount(), kMaxThreads);
  server->Stop();
  for (const auto& c : streams) EXPECT_TRUE(c->WaitClosed(kWait));
}

}  // namespace
}  // namespace cairn::daemon
