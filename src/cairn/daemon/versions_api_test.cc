// The versions routes of the local API (GET /v1/versions, /v1/diff, /v1/find; POST /v1/restore
// with "at") against a recording handler: parameters arrive as the exact bytes sent, bad
// requests are 400 before the handler is called, and a restore with "at" goes to
// StartRestoreAt with the time in Unix nanoseconds.
#include <signal.h>

#include <cctype>
#include <mutex>

#include "cairn/api/client.h"
#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_jobs.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/api_versions.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using nlohmann::json;

const std::string kToken(64, 'a');

// The routes are VersionsApi's (api_versions.h) and JobsApi's (api_jobs.h), their answers
// overridden here.
class RecordingHandler : public ApiHandler, public VersionsApi, public JobsApi {
 public:
  RecordingHandler() : VersionsApi(ApiContext{}), JobsApi(ApiContext{}) {}
  std::vector<ApiRoute> Routes() override {
    std::vector<ApiRoute> routes = VersionsApi::Routes();
    for (ApiRoute& r : JobsApi::Routes()) routes.push_back(std::move(r));
    return routes;
  }
  absl::StatusOr<std::string> StartBackup(const api::BackupRequest&) override {
    return std::string("b");
  }
  absl::StatusOr<std::string> StartRestore(const api::RestoreRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("restore");
    restore = r;
    return std::string("r1");
  }
  absl::StatusOr<std::string> StartRestoreAt(const api::RestoreRequest& r) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("restore_at");
    restore = r;
    return std::string("r2");
  }
  absl::StatusOr<json> GetVersions(const std::string& path, bool all) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("versions");
    args = {path, all ? "1" : "0"};
    if (path == "/missing") return absl::NotFoundError("'/missing' is in no snapshot");
    return json{{"versions", json::array()}};
  }
  absl::StatusOr<json> GetDiff(const std::string& a, const std::string& b) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("diff");
    args = {a, b};
    return json{{"changes", json::array()}};
  }
  absl::StatusOr<json> FindEntries(const std::string& pattern) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("find");
    args = {pattern};
    return json::array();
  }
  absl::StatusOr<json> GetJob(const std::string&) override { return json::object(); }
  absl::Status CancelJob(const std::string&) override { return absl::OkStatus(); }

  std::mutex mu;
  std::vector<std::string> calls;
  std::vector<std::string> args;
  api::RestoreRequest restore;
};

class VersionsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    auto s = ApiServer::Start("127.0.0.1:0", kToken, &handler_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto c = api::ApiClient::Connect("127.0.0.1:" + std::to_string(server_->port()), kToken);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  int Get(const std::string& path) {
    absl::StatusOr<api::HttpAnswer> r = client_->Send("GET", path);
    return r.ok() ? r->status : -1;
  }
  int Post(const std::string& path, const json& body) {
    absl::StatusOr<api::HttpAnswer> r = client_->Send("POST", path, api::DumpJson(body));
    return r.ok() ? r->status : -1;
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(handler_.mu);
    return handler_.calls;
  }

  RecordingHandler handler_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<api::ApiClient> client_;
};

TEST_F(VersionsApiTest, VersionsPassesTheExactPath) {
  const std::string raw = std::string("/home/caf\xe9/r\xff.txt");
  EXPECT_EQ(Get("/v1/versions?path_base64=" + api::UrlEncode(api::ToBase64(raw)) + "&all=1"), 200);
  EXPECT_EQ(handler_.args, (std::vector<std::string>{raw, "1"}));
  EXPECT_EQ(Get("/v1/versions?path=/plain/x"), 200);
  EXPECT_EQ(handler_.args, (std::vector<std::string>{"/plain/x", "0"}));
  EXPECT_EQ(Get("/v1/versions?path=/missing"), 404);
  const size_t calls = Calls().size();
  EXPECT_EQ(Get("/v1/versions?path=relative/x"), 400);
  EXPECT_EQ(Get("/v1/versions"), 400);
  EXPECT_EQ(Get("/v1/versions?path_base64=%%%"), 400);
  EXPECT_EQ(Get("/v1/versions?path=/x&all=maybe"), 400);
  EXPECT_EQ(Calls().size(), calls);  // refused before the handler
}

TEST_F(VersionsApiTest, DiffAndFind) {
  EXPECT_EQ(Get("/v1/diff?a=3fa2c1d9&b=latest"), 200);
  EXPECT_EQ(handler_.args, (std::vector<std::string>{"3fa2c1d9", "latest"}));
  EXPECT_EQ(Get("/v1/diff?a=3fa2c1d9"), 400);
  const std::string pattern = "*/Docs/*.t\xe9xt";
  EXPECT_EQ(Get("/v1/find?pattern_base64=" + api::UrlEncode(api::ToBase64(pattern))), 200);
  EXPECT_EQ(handler_.args, (std::vector<std::string>{pattern}));
  EXPECT_EQ(Get("/v1/find?pattern=" + api::UrlEncode("*.pdf")), 200);
  EXPECT_EQ(handler_.args, (std::vector<std::string>{"*.pdf"}));
  EXPECT_EQ(Get("/v1/find"), 400);
}

TEST_F(VersionsApiTest, RestoreAt) {
  json body{{"path_base64", api::ToBase64("/home/u/a.txt")},
            {"target_base64", api::ToBase64("/tmp/r")}};
  json rfc = body;
  rfc["at"] = "2023-11-14T22:13:20.5Z";
  EXPECT_EQ(Post("/v1/restore", rfc), 202);
  EXPECT_EQ(Calls().back(), "restore_at");
  ASSERT_TRUE(handler_.restore.at_ns.has_value());
  EXPECT_EQ(*handler_.restore.at_ns, 1'700'000'000'500'000'000);
  EXPECT_EQ(handler_.restore.path, "/home/u/a.txt");
  EXPECT_EQ(handler_.restore.target, "/tmp/r");

  json ns = body;
  ns["at"] = 1'700'000'000'000'000'001;
  EXPECT_EQ(Post("/v1/restore", ns), 202);
  EXPECT_EQ(*handler_.restore.at_ns, 1'700'000'000'000'000'001);
  ns["at"] = "1700000000000000002";
  EXPECT_EQ(Post("/v1/restore", ns), 202);
  EXPECT_EQ(*handler_.restore.at_ns, 1'700'000'000'000'000'002);

  // Without "at": an ordinary restore.
  json plain = body;
  plain["snapshot"] = "latest";
  EXPECT_EQ(Post("/v1/restore", plain), 202);
  EXPECT_EQ(Calls().back(), "restore");
  EXPECT_FALSE(handler_.restore.at_ns.has_value());

  const size_t calls = Calls().size();
  json both = rfc;
  both["snapshot"] = "latest";
  EXPECT_EQ(Post("/v1/restore", both), 400);
  json local = body;
  local["at"] = "2023-11-14 22:13:20";  // no zone: the API takes no local times
  EXPECT_EQ(Post("/v1/restore", local), 400);
  json garbage = body;
  garbage["at"] = json::array();
  EXPECT_EQ(Post("/v1/restore", garbage), 400);
  json relative = rfc;
  relative["path_base64"] = api::ToBase64("home/u/a.txt");
  EXPECT_EQ(Post("/v1/restore", relative), 400);
  EXPECT_EQ(Calls().size(), calls);
}

}  // namespace
}  // namespace cairn::daemon
