// GET /v1/read (the route `cairn mount` reads file bytes with): request parsing and validation,
// raw bytes in the body, errors as JSON. The daemon side end to end is
// tests/cluster/test_mount.py.
#include <signal.h>

#include <mutex>

#include "cairn/api/client.h"
#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_server.h"
#include "cairn/daemon/api_snapshots.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using nlohmann::json;

const std::string kToken(64, 'a');

// A file "f" of 300 bytes (byte i is i % 251, NUL included) in snapshot "s1".
class ReadHandler : public ApiHandler, public SnapshotsApi {
 public:
  std::vector<ApiRoute> Routes() override { return SnapshotsApi::Routes(); }
  ReadHandler() : SnapshotsApi(ApiContext{}) {
    for (int i = 0; i < 300; ++i) file.push_back(static_cast<char>(i % 251));
  }
  absl::StatusOr<json> GetSnapshots() override { return json::array(); }
  absl::StatusOr<json> List(const std::string&, const std::string&, bool) override {
    return json::array();
  }

  absl::StatusOr<std::string> ReadFile(const api::ReadRequest& r) override {
    std::lock_guard lock(mu);
    last = r;
    ++calls;
    if (r.snapshot != "s1") return absl::NotFoundError("no snapshot '" + r.snapshot + "'");
    if (r.path == "dir") return absl::InvalidArgumentError("'dir' is a directory, not a file");
    if (r.path != "f" && r.path != "caf\xe9") return absl::NotFoundError("no such path");
    if (r.offset > file.size()) return absl::InvalidArgumentError("offset beyond the end");
    return file.substr(r.offset, std::min<uint64_t>(r.length, 4 << 20));
  }

  std::mutex mu;
  std::string file;
  api::ReadRequest last;
  int calls = 0;
};

class ReadRouteTest : public ::testing::Test {
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

  absl::StatusOr<api::HttpAnswer> Get(const std::string& target) {
    return client_->Send("GET", target);
  }

  // The error code of a JSON error response ("" when the body is not one).
  static std::string ErrorCode(const api::HttpAnswer& res) {
    auto j = api::ParseJson(res.body);
    if (!j.ok() || !j->is_object() || !j->contains("error")) return "";
    return (*j)["error"].value("code", "");
  }

  ReadHandler handler_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<api::ApiClient> client_;
};

TEST_F(ReadRouteTest, ReturnsRawBytes) {
  auto r = Get("/v1/read?snapshot=s1&path_base64=" + api::ToBase64("f") + "&offset=250&length=10");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/octet-stream");
  EXPECT_EQ(r->body, handler_.file.substr(250, 10));  // contains byte 0 (251 % 251)
  EXPECT_EQ(handler_.last.offset, 250u);
  EXPECT_EQ(handler_.last.length, 10u);

  // Up to the end of the file, and nothing at the end.
  r = Get("/v1/read?snapshot=s1&path=f&offset=295&length=100");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, handler_.file.substr(295));
  r = Get("/v1/read?snapshot=s1&path=f&offset=300&length=100");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
}

TEST_F(ReadRouteTest, PathBase64CarriesRawBytes) {
  // "caf\xe9" (Latin-1) is not UTF-8: only base64 carries it exactly.
  auto r =
      Get("/v1/read?snapshot=s1&path_base64=" + api::ToBase64("caf\xe9") + "&offset=0&length=3");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(handler_.last.path, "caf\xe9");
  EXPECT_EQ(r->body, handler_.file.substr(0, 3));
  EXPECT_EQ(handler_.last.offset + handler_.last.length, 3u);
}

TEST_F(ReadRouteTest, BadParametersAre400AndNeverReachTheHandler) {
  const std::string f = "&path=f";
  const char* kBad[] = {
      "/v1/read?snapshot=s1&path=f&offset=-1&length=10",
      "/v1/read?snapshot=s1&path=f&offset=abc&length=10",
      "/v1/read?snapshot=s1&path=f&offset=1.5&length=10",
      "/v1/read?snapshot=s1&path=f&offset=%2B5&length=10",  // "+5"
      "/v1/read?snapshot=s1&path=f&offset=%205&length=10",  // " 5"
      "/v1/read?snapshot=s1&path=f&offset=0x10&length=10",
      "/v1/read?snapshot=s1&path=f&offset=&length=10",
      "/v1/read?snapshot=s1&path=f&offset=18446744073709551616&length=1",  // 2^64
      "/v1/read?snapshot=s1&path=f&offset=99999999999999999999999&length=1",
      "/v1/read?snapshot=s1&path=f&length=10",  // no offset
      "/v1/read?snapshot=s1&path=f&offset=0",   // no length
      "/v1/read?snapshot=s1&path=f&offset=0&length=-5",
      "/v1/read?path=f&offset=0&length=1",                        // no snapshot
      "/v1/read?snapshot=s1&offset=0&length=1",                   // no path
      "/v1/read?snapshot=s1&path_base64=%%%%&offset=0&length=1",  // not base64
  };
  for (const char* target : kBad) {
    auto r = Get(target);
    ASSERT_TRUE(r.ok()) << target << r.status();
    EXPECT_EQ(r->status, 400) << target << ": " << r->body;
    EXPECT_EQ(ErrorCode(*r), "INVALID_ARGUMENT") << target;
  }
  EXPECT_EQ(handler_.calls, 0);
  // The largest offset parses; the handler says it is beyond the end of the file.
  auto r = Get("/v1/read?snapshot=s1" + f + "&offset=18446744073709551615&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(handler_.last.offset, UINT64_MAX);
  r = Get("/v1/read?snapshot=s1" + f + "&offset=301&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400);
}

TEST_F(ReadRouteTest, HandlerErrorsMapToStatuses) {
  auto r = Get("/v1/read?snapshot=nope&path=f&offset=0&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(ErrorCode(*r), "NOT_FOUND");
  r = Get("/v1/read?snapshot=s1&path=missing&offset=0&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  r = Get("/v1/read?snapshot=s1&path=dir&offset=0&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(ErrorCode(*r), "INVALID_ARGUMENT");
}

TEST_F(ReadRouteTest, NeedsTheToken) {
  auto anonymous = api::ApiClient::Connect("127.0.0.1:" + std::to_string(server_->port()), "");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  auto r = (*anonymous)->Send("GET", "/v1/read?snapshot=s1&path=f&offset=0&length=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(handler_.calls, 0);
}

}  // namespace
}  // namespace cairn::daemon
