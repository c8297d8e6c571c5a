#include "cairn/daemon/api_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/api_requests.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/json_paths.h"
#include "cairn/daemon/ui_assets.h"
#include "cairn/daemon/version.h"
#include "cairn/engine/versions.h"
#include "cairn/env/file.h"

namespace cairn::daemon {
namespace {

// A route's outcome: HTTP status and JSON body.
using Reply = std::pair<int, Json>;
using RouteFn = std::function<absl::StatusOr<Reply>(const httplib::Request&)>;

constexpr size_t kMaxBodyBytes = 16 << 20;
constexpr int kListenBacklog = 256;

void WriteJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(DumpJson(body) + "\n", "application/json");
}

void WriteError(httplib::Response& res, const absl::Status& status) {
  WriteJson(res, HttpStatusFor(status.code()), Json{{"error", StatusToJson(status)}});
}

// httplib hands each accepted connection to its task queue, and the task keeps its thread for
// the connection's whole life: reading the first request (up to the read timeout) and then
// waiting for the next one (keep-alive). With a fixed pool a few idle connections hold every
// worker while requests queue behind them. This queue starts a thread whenever no worker is
// free, up to `max` (ApiServer::kMaxWorkers), so idle connections cost an idle thread each
// (bounded) instead of delaying everyone (docs/cli.md "Local HTTP API"). Threads are kept until
// shutdown.
class ElasticTaskQueue : public httplib::TaskQueue {
 public:
  explicit ElasticTaskQueue(size_t max) : max_(max) {}
  ~ElasticTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (shut_down_) {  // httplib does not do this; run it here rather than leak its socket
        lock.unlock();
        fn();
        return;
      }
      tasks_.push_back(std::move(fn));
      if (tasks_.size() > idle_ && threads_.size() < max_) {
        threads_.emplace_back([this] { Work(); });
      }
    }
    cv_.notify_one();
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      shut_down_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (std::thread& t : threads) t.join();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lock, [this] { return shut_down_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // shut down, nothing left to do
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  size_t idle_ = 0;  // workers waiting for a task
  bool shut_down_ = false;
  std::vector<std::thread> threads_;
};

// Runs a route, turning statuses and any exception into an error response.
httplib::Server::Handler Wrap(RouteFn fn) {
  return [fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    try {
      absl::StatusOr<Reply> reply = fn(req);
      if (reply.ok()) {
        WriteJson(res, reply->first, reply->second);
      } else {
        WriteError(res, reply.status());
      }
    } catch (const std::exception& e) {
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    } catch (...) {
      WriteError(res, absl::InternalError("internal error"));
    }
  };
}

// The routes that need no token (docs/dashboard.md): the dashboard's files and the exchange of
// a one-time login code for the token.
bool IsPublicRoute(const httplib::Request& req) {
  if (req.method == "GET" || req.method == "HEAD") {
    return req.path == "/" || req.path.rfind("/ui/", 0) == 0;
  }
  return req.method == "POST" && req.path == "/v1/ui/login";
}

// A dashboard file with headers that keep it to itself: scripts and styles of its own origin
// only, no framing (clickjacking), no referrer (the login code is in the fragment, which is
// never sent, but the page sends nothing anyway), not cached (docs/security.md "The local API
// and browsers").
void WriteAsset(httplib::Response& res, const UiAsset& asset) {
  res.status = 200;
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: "
                 "blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                 "form-action 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::string(asset.body), std::string(asset.content_type));
}

absl::StatusOr<Json> BodyObject(const httplib::Request& req) { return ParseRequestBody(req.body); }

// A required query parameter holding a non-negative decimal integer (bytes).
absl::StatusOr<uint64_t> ParseByteCount(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter '", name, "' (bytes) is required"));
  }
  std::string v = req.get_param_value(name);
  uint64_t n = 0;
  bool ok = !v.empty() && v.size() <= 20;
  for (char c : v) ok = ok && c >= '0' && c <= '9';
  for (size_t i = 0; ok && i < v.size(); ++i) {
    uint64_t digit = static_cast<uint64_t>(v[i] - '0');
    if (n > (UINT64_MAX - digit) / 10) ok = false;  // overflow
    n = n * 10 + digit;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("query parameter '", name,
                                                   "' must be a non-negative integer (bytes), "
                                                   "got '",
                                                   SanitizeUtf8(v), "'"));
  }
  return n;
}

// GET /v1/read?snapshot=ID&path_base64=B (or path=P)&offset=N&length=N.
absl::StatusOr<ReadRequest> ParseReadRequest(const httplib::Request& req) {
  ReadRequest r;
  r.snapshot = req.get_param_value("snapshot");
  if (r.snapshot.empty()) {
    return absl::InvalidArgumentError("query parameter 'snapshot' is required");
  }
  if (req.has_param("path_base64")) {
    auto decoded = FromBase64(req.get_param_value("path_base64"));
    if (!decoded.ok()) {
      return absl::InvalidArgumentError("query parameter 'path_base64' is not base64");
    }
    r.path = *std::move(decoded);
  } else {
    r.path = req.get_param_value("path");
  }
  if (r.path.empty()) return absl::InvalidArgumentError("query parameter 'path' is required");
  CAIRN_ASSIGN_OR_RETURN(r.offset, ParseByteCount(req, "offset"));
  CAIRN_ASSIGN_OR_RETURN(r.length, ParseByteCount(req, "length"));
  return r;
}

absl::StatusOr<bool> ParseBool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v.empty() || v == "0" || v == "false" || v == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat("query parameter '", name, "' must be 0 or 1"));
}

const char* DefaultMessage(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 404:
      return "no such API route";
    case 405:
      return "method not allowed";
    case 413:
      return "request body too large";
    default:
      return "HTTP error";
  }
}

absl::StatusCode CodeForHttp(int status) {
  switch (status) {
    case 400:
    case 413:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kResourceExhausted:
      return 507;
    default:
      return 500;
  }
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& address,
                                                            const std::string& token,
                                                            ApiHandler* handler) {
  return StartServer(address, token, handler, /*metrics_only=*/false);
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::StartMetrics(const std::string& address,
                                                                   ApiHandler* handler) {
  return StartServer(address, "", handler, /*metrics_only=*/true);
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::StartServer(const std::string& address,
                                                                  const std::string& token,
                                                                  ApiHandler* handler,
                                                                  bool metrics_only) {
  CAIRN_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(address));
  auto [host, port] = host_port;
  if (!IsLoopbackHost(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the API address must be a loopback address, got '", address, "'"));
  }
  std::unique_ptr<ApiServer> s(new ApiServer());
  s->host_ = host;
  s->token_ = token;
  s->handler_ = handler;
  s->server_ = std::make_unique<httplib::Server>();
  // httplib's default sets SO_REUSEPORT, which would let two peers share one API port
  // silently; SO_REUSEADDR alone still allows a quick restart.
  auto listen_fd = std::make_shared<int>(-1);
  s->server_->set_socket_options([listen_fd](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = sock;
  });
  s->server_->new_task_queue = [] { return new ElasticTaskQueue(kMaxWorkers); };
  s->server_->set_payload_max_length(kMaxBodyBytes);
  s->server_->set_read_timeout(std::chrono::seconds(5));
  s->server_->set_write_timeout(std::chrono::seconds(30));
  if (metrics_only) {
    s->RouteMetrics();
  } else {
    s->Route();
  }
  if (port == 0) {
    s->port_ = s->server_->bind_to_any_port(host);
    if (s->port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("cannot bind the API to ", address));
    }
  } else {
    if (!s->server_->bind_to_port(host, port)) {
      return absl::UnavailableError(
          absl::StrCat("cannot bind the API to ", address, " (address in use?)"));
    }
    s->port_ = port;
  }
  // Debian's libcpp-httplib listens with a backlog of 5: a burst of connections (the dashboard,
  // scripts, idle clients) overflowed it and each one beyond waited for a SYN retransmission
  // (1 s and more). listen() again on the bound socket sets a deeper queue.
  if (*listen_fd >= 0) ::listen(*listen_fd, kListenBacklog);
  httplib::Server* server = s->server_.get();
  s->thread_ = std::thread([server] { server->listen_after_bind(); });
  // stop() is a no-op until the accept loop runs; wait for it so that Stop() always works.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return s;
}

ApiServer::~ApiServer() { Stop(); }

std::string ApiServer::NewLoginCode() {
  uint8_t rnd[16];
  env::RandomFill(rnd, sizeof rnd);
  std::string code = ToHex(rnd);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(codes_mu_);
  std::erase_if(codes_, [&](const auto& c) { return c.second <= now; });
  if (codes_.size() >= kMaxLoginCodes) codes_.erase(codes_.begin());
  codes_.emplace_back(code, now + kLoginCodeTtl);
  return code;
}

absl::StatusOr<std::string> ApiServer::RedeemLoginCode(const std::string& code) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(codes_mu_);
  std::erase_if(codes_, [&](const auto& c) { return c.second <= now; });
  for (auto it = codes_.begin(); it != codes_.end(); ++it) {
    if (codec::ConstantTimeEqual(AsBytes(it->first), AsBytes(code))) {
      codes_.erase(it);
      return token_;
    }
  }
  return absl::UnauthenticatedError(
      "this login code is unknown, used or expired (each code works once, for 5 minutes): run "
      "`cairn ui` again, or paste the API token (DIR/secrets/api.token)");
}

std::string ApiServer::address() const { return JoinHostPort(host_, port_); }

void ApiServer::Stop() {
  stopping_ = true;
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

absl::Status ApiServer::CheckBrowserHeaders(const std::string& host, const std::string& origin,
                                            bool has_origin) const {
  std::string got = host;
  std::transform(got.begin(), got.end(), got.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string port = std::to_string(port_);
  bool ok = false;
  for (const std::string& name :
       {JoinHostPort(host_, port_), "127.0.0.1:" + port, "[::1]:" + port, "localhost:" + port}) {
    ok = ok || got == name;
  }
  if (!ok) {
    return absl::PermissionDeniedError(absl::StrCat(
        "refused: the Host header '", SanitizeUtf8(host), "' is not this peer's API address ",
        JoinHostPort(host_, port_), " (docs/security.md \"The local API and browsers\")"));
  }
  if (has_origin && origin != "http://" + got) {
    return absl::PermissionDeniedError(
        absl::StrCat("refused: a request from the web page at '", SanitizeUtf8(origin),
                     "' (the local API answers no other origin; docs/security.md \"The local "
                     "API and browsers\")"));
  }
  return absl::OkStatus();
}

void ApiServer::RouteMetrics() {
  httplib::Server& s = *server_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    absl::Status browser = CheckBrowserHeaders(
        req.get_header_value("Host"), req.get_header_value("Origin"), req.has_header("Origin"));
    if (!browser.ok()) {
      WriteError(res, browser);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  RouteShared();
}

// The routes the [metrics] listener serves too: /metrics and /v1/health.
void ApiServer::RouteShared() {
  httplib::Server& s = *server_;
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                              httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = DefaultMessage(res.status);
    if (res.status == 404)
      message = absl::StrCat(message, ": ", req.method, " ", SanitizeUtf8(req.path));
    res.set_content(
        DumpJson(Json{{"error", StatusToJson(absl::Status(CodeForHttp(res.status), message))}}) +
            "\n",
        "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    WriteError(res, absl::InternalError("internal error"));
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    try {
      absl::StatusOr<std::string> text = handler_->GetMetrics();
      if (!text.ok()) {
        WriteError(res, text.status());
        return;
      }
      res.status = 200;
      res.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
    } catch (const std::exception& e) {
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    }
  });
  s.Get("/v1/health", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          Json j = handler_->GetHealth();
          const bool ready = j.value("ready", false);
          return Reply{ready ? 200 : 503, std::move(j)};
        }));
}

// GET /v1/events: Server-Sent Events (text/event-stream; docs/cli.md "Local HTTP API"). Each
// event is "id: N\nevent: TYPE\ndata: JSON\n\n"; the stream starts with a comment line and a
// "retry: 2000" hint, sends ": keepalive" after kKeepalive without events, and "event: missed"
// with {"missed":N} when the client fell more than EventBus::kKeep events behind (or asked, by
// Last-Event-ID, for events no longer kept).
void ApiServer::RouteEvents() {
  server_->Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    EventBus* bus = handler_->Events();
    if (bus == nullptr) {
      WriteError(res, absl::UnimplementedError("the event stream is not available"));
      return;
    }
    uint64_t after = bus->last_id();
    if (req.has_header("Last-Event-ID")) {
      const std::string v = req.get_header_value("Last-Event-ID");
      if (!absl::SimpleAtoi(v, &after)) {
        WriteError(res, absl::InvalidArgumentError(
                            absl::StrCat("Last-Event-ID must be an event id (a decimal integer), "
                                         "got '",
                                         SanitizeUtf8(v), "'")));
        return;
      }
    }
    if (event_streams_.fetch_add(1) >= kMaxEventStreams) {
      --event_streams_;
      WriteError(res,
                 absl::UnavailableError(absl::StrCat("too many event streams open (at most ",
                                                     kMaxEventStreams, "); close one and retry")));
      return;
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>();
    auto started = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, bus, after, last_write, started](size_t, httplib::DataSink& sink) mutable {
          auto write = [&](const std::string& text) {
            *last_write = std::chrono::steady_clock::now();
            return sink.write(text.data(), text.size());
          };
          if (!*started) {
            *started = true;
            return write(": cairn events\nretry: 2000\n\n");
          }
          while (!stopping_) {
            EventBus::Batch b = bus->WaitAfter(after, std::chrono::milliseconds(250));
            if (b.closed) break;
            std::string out;
            if (b.missed > 0) {
              out = absl::StrCat("event: missed\ndata: ", DumpJson(Json{{"missed", b.missed}}),
                                 "\n\n");
            }
            for (const Event& e : b.events) {
              absl::StrAppend(&out, "id: ", e.id, "\nevent: ", e.type, "\ndata: ", DumpJson(e.data),
                              "\n\n");
              after = e.id;
            }
            if (!out.empty()) return write(out);
            if (std::chrono::steady_clock::now() - *last_write >= kKeepalive) {
              return write(": keepalive\n\n");
            }
          }
          sink.done();
          return true;
        },
        [this](bool) { --event_streams_; });
  });
}

void ApiServer::Route() {
  httplib::Server& s = *server_;

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Host and Origin first: a page in a browser learns nothing, not even whether a token
    // would have been right.
    absl::Status browser = CheckBrowserHeaders(
        req.get_header_value("Host"), req.get_header_value("Origin"), req.has_header("Origin"));
    if (!browser.ok()) {
      WriteError(res, browser);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (IsPublicRoute(req)) return httplib::Server::HandlerResponse::Unhandled;
    std::string want = "Bearer " + token_;
    std::string got = req.get_header_value("Authorization");
    if (token_.empty() || !codec::ConstantTimeEqual(AsBytes(got), AsBytes(want))) {
      WriteError(res,
                 absl::UnauthenticatedError(
                     "missing or wrong API token (Authorization: Bearer <DIR/secrets/api.token>)"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib produces itself (no route, unparsable request) get the same JSON shape.
  RouteShared();
  // The dashboard (docs/dashboard.md): files without the token, everything else through the
  // API with it.
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const UiAsset* asset = FindUiAsset("index.html");
    if (asset == nullptr) {
      WriteError(res, absl::NotFoundError("this binary was built without the dashboard"));
      return;
    }
    WriteAsset(res, *asset);
  });
  s.Get(R"(/ui/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    const UiAsset* asset = FindUiAsset(req.matches[1].str());
    if (asset == nullptr) {
      WriteError(res, absl::NotFoundError(
                          absl::StrCat("no dashboard file '", SanitizeUtf8(req.path), "'")));
      return;
    }
    WriteAsset(res, *asset);
  });
  s.Post("/v1/ui/code", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
           return Reply{201,
                        Json{{"code", NewLoginCode()}, {"expires_seconds", kLoginCodeTtl.count()}}};
         }));
  s.Post("/v1/ui/login", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           if (!body.contains("code") || !body["code"].is_string()) {
             return absl::InvalidArgumentError("field 'code' (a string) is required");
           }
           CAIRN_ASSIGN_OR_RETURN(std::string token,
                                  RedeemLoginCode(body["code"].get<std::string>()));
           return Reply{200, Json{{"token", token}}};
         }));
  RouteEvents();
  s.Get("/v1/jobs", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetJobs());
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/version", Wrap([](const httplib::Request&) -> absl::StatusOr<Reply> {
          return Reply{200, VersionJson()};
        }));
  s.Get("/v1/status", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetStatus());
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/peers", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetPeers());
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/snapshots", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetSnapshots());
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/ls", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
          std::string snapshot = req.get_param_value("snapshot");
          if (snapshot.empty()) {
            return absl::InvalidArgumentError("query parameter 'snapshot' is required");
          }
          std::string path;
          if (req.has_param("path_base64")) {
            auto decoded = FromBase64(req.get_param_value("path_base64"));
            if (!decoded.ok()) {
              return absl::InvalidArgumentError("query parameter 'path_base64' is not base64");
            }
            path = *std::move(decoded);
          } else {
            path = req.get_param_value("path");
          }
          CAIRN_ASSIGN_OR_RETURN(bool recursive,
                                 ParseBool("recursive", req.get_param_value("recursive")));
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->List(snapshot, path, recursive));
          return Reply{200, std::move(j)};
        }));
  // File bytes (`cairn mount`): the body is the raw bytes, not JSON; errors are JSON as usual.
  s.Get("/v1/read", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      absl::StatusOr<ReadRequest> r = ParseReadRequest(req);
      absl::StatusOr<std::string> data = r.ok() ? handler_->ReadFile(*r) : r.status();
      if (!data.ok()) {
        WriteError(res, data.status());
        return;
      }
      res.status = 200;
      res.set_content(*data, "application/octet-stream");
    } catch (const std::exception& e) {
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    } catch (...) {
      WriteError(res, absl::InternalError("internal error"));
    }
  });
  // Versions (issue 5): raw-byte parameters come as NAME_base64 (else NAME as text).
  auto raw_param = [](const httplib::Request& req,
                      const std::string& name) -> absl::StatusOr<std::string> {
    if (!req.has_param(name + "_base64")) return req.get_param_value(name);
    auto decoded = FromBase64(req.get_param_value(name + "_base64"));
    if (!decoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter '", name, "_base64' is not base64"));
    }
    return *std::move(decoded);
  };
  s.Get("/v1/versions",
        Wrap([this, raw_param](const httplib::Request& req) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(std::string path, raw_param(req, "path"));
          CAIRN_RETURN_IF_ERROR(RequireAbsolute(path, "the path"));
          CAIRN_ASSIGN_OR_RETURN(bool all, ParseBool("all", req.get_param_value("all")));
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetVersions(path, all));
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/diff", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
          std::string a = req.get_param_value("a"), b = req.get_param_value("b");
          if (a.empty() || b.empty()) {
            return absl::InvalidArgumentError("query parameters 'a' and 'b' are required");
          }
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetDiff(a, b));
          return Reply{200, std::move(j)};
        }));
  s.Get("/v1/find", Wrap([this, raw_param](const httplib::Request& req) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(std::string pattern, raw_param(req, "pattern"));
          if (pattern.empty()) {
            return absl::InvalidArgumentError("query parameter 'pattern' is required");
          }
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->FindEntries(pattern));
          return Reply{200, std::move(j)};
        }));
  s.Post("/v1/backup", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(BackupRequest r, ParseBackupRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartBackup(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/restore", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(RestoreRequest r, ParseRestoreRequest(body));
           CAIRN_ASSIGN_OR_RETURN(
               std::string id, r.at_ns ? handler_->StartRestoreAt(r) : handler_->StartRestore(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/check", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(CheckRequest r, ParseCheckRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartCheck(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/repair", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(CheckRequest r, ParseCheckRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartRepair(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/forget", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(ForgetRequest r, ParseForgetRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartForget(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/delete", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(DeleteRequest r, ParseDeleteRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartDelete(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/reclaim", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(ReclaimRequest r, ParseReclaimRequest(body));
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartReclaim(r));
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Post("/v1/index/rebuild", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(std::string id, handler_->StartIndexRebuild());
           return Reply{202, Json{{"job_id", id}}};
         }));
  s.Get("/v1/sources", Wrap([this](const httplib::Request&) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetSources());
          return Reply{200, std::move(j)};
        }));
  s.Post("/v1/sources", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
           CAIRN_ASSIGN_OR_RETURN(Json body, BodyObject(req));
           CAIRN_ASSIGN_OR_RETURN(SourceConfig source, ParseSourceRequest(body));
           CAIRN_ASSIGN_OR_RETURN(Json j, handler_->AddSource(source));
           return Reply{201, std::move(j)};
         }));
  s.Delete("/v1/sources", Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
             std::string path;
             if (req.has_param("path_base64")) {
               auto decoded = FromBase64(req.get_param_value("path_base64"));
               if (!decoded.ok()) {
                 return absl::InvalidArgumentError("query parameter 'path_base64' is not base64");
               }
               path = *std::move(decoded);
             } else {
               path = req.get_param_value("path");
             }
             CAIRN_RETURN_IF_ERROR(RequireAbsolute(path, "a source path"));
             CAIRN_RETURN_IF_ERROR(handler_->RemoveSource(path));
             Json j{{"removed", true}};
             SetPathField(j, "path", path);
             return Reply{200, std::move(j)};
           }));
  s.Get(R"(/v1/jobs/([0-9A-Za-z_-]+))",
        Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
          CAIRN_ASSIGN_OR_RETURN(Json j, handler_->GetJob(req.matches[1].str()));
          return Reply{200, std::move(j)};
        }));
  s.Delete(R"(/v1/jobs/([0-9A-Za-z_-]+))",
           Wrap([this](const httplib::Request& req) -> absl::StatusOr<Reply> {
             std::string id = req.matches[1].str();
             CAIRN_RETURN_IF_ERROR(handler_->CancelJob(id));
             return Reply{200, Json{{"job_id", id}, {"cancelled", true}}};
           }));
}

}  // namespace cairn::daemon
