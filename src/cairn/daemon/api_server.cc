#include "cairn/daemon/api_server.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/ui_assets.h"
#include "cairn/env/file.h"
#include "spdlog/spdlog.h"

namespace cairn::daemon {

using Json = nlohmann::json;

namespace api_detail {

// A complete request (what its route sees, ApiRequest) plus what the server keeps about it
// while it is read, handled and answered.
struct HttpRequest : ApiRequest {
  // Server side (api_server.cc only).
  ApiServer* server = nullptr;
  MHD_Connection* connection = nullptr;
  std::string target;         // the request target as received (path and query, encoded)
  bool started = false;       // the access handler has seen the headers
  bool too_large = false;     // the body passed kMaxBodyBytes (answered 413)
  bool handed_out = false;    // given to a handler thread, connection suspended
  bool stream_taken = false;  // an event-stream answer became an EventStream
  std::mutex mu;              // guards `response` (a handler thread writes it)
  ApiResponse response;
};

// One open GET /v1/events answer (libmicrohttpd's content reader): the text not yet sent, and
// whether its connection is suspended waiting for an event (ApiServer::streams_mu_).
struct EventStream {
  ApiServer* server = nullptr;
  EventBus* bus = nullptr;
  MHD_Connection* connection = nullptr;
  uint64_t after = 0;  // the last event id sent (or asked for by Last-Event-ID)
  std::string pending;
  std::chrono::steady_clock::time_point last_write;
  std::chrono::steady_clock::time_point keepalive_at;  // while waiting
  bool suspended = false;
};

}  // namespace api_detail

// A route: method, path pattern and its function. A pattern is a literal path, or a literal
// prefix and one final segment of allowed characters, written "PREFIX([CHARS]+)" with CHARS as
// in a regex bracket (ranges like a-z, a trailing '-' literal); that segment is matches[1].
// (Not std::regex: GCC 12 at -O1 with ASan warns inside <regex>, and these two forms are all
// the routes need.)
struct ApiServer::RouteEntry {
  std::string method;
  std::string prefix;               // the whole path when !segment
  bool segment = false;             // a final segment follows the prefix
  std::array<bool, 256> allowed{};  // the segment's characters
  Handler fn;

  bool Match(const std::string& path, std::vector<std::string>* matches) const {
    if (!segment) {
      if (path != prefix) return false;
      *matches = {path};
      return true;
    }
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
    for (size_t i = prefix.size(); i < path.size(); ++i) {
      if (!allowed[static_cast<unsigned char>(path[i])]) return false;
    }
    *matches = {path, path.substr(prefix.size())};
    return true;
  }
};

namespace {

using api_detail::HttpRequest;

constexpr size_t kMaxBodyBytes = 16 << 20;
// Connections accepted by the kernel but not yet by the server: deep enough for a burst (the
// dashboard, scripts, many clients at once) not to wait for SYN retransmissions (1 s and more).
constexpr int kListenBacklog = 1024;
// Per-connection buffer for the request line and headers (libmicrohttpd's pool); a larger
// header section is refused (431).
constexpr size_t kConnectionMemory = 64 << 10;
// An event stream's connection is closed after this long without sending (its client stopped
// reading); keepalives every kKeepalive keep a live one open.
constexpr unsigned kStreamTimeoutSeconds = 3 * ApiServer::kKeepalive.count();

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding ("%2F" -> "/"; a malformed escape is kept as it is); in a query also "+" ->
// " ".
std::string DecodeUrl(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

// Splits a request target into its decoded path and query parameters.
void ParseTarget(const std::string& target, HttpRequest& req) {
  const size_t q = target.find('?');
  req.path = DecodeUrl(std::string_view(target).substr(0, q), /*plus_is_space=*/false);
  if (q == std::string::npos) return;
  std::string_view query = std::string_view(target).substr(q + 1);
  const size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key = DecodeUrl(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? std::string() : DecodeUrl(pair.substr(eq + 1), true);
    req.params.emplace(std::move(key), std::move(value));
  }
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* req = static_cast<HttpRequest*>(cls);
  std::string name = key == nullptr ? std::string() : key;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  req->headers.emplace_back(std::move(name), value == nullptr ? "" : value);
  return MHD_YES;
}

// The listening socket: SO_REUSEADDR (a quick restart) but not SO_REUSEPORT, so a second peer
// cannot share the port; a deep backlog; non-blocking, as libmicrohttpd needs.
absl::StatusOr<int> Listen(const std::string& host, int port, const std::string& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind the API to ", address, " (cannot resolve '", host, "')"));
  }
  int error = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, kListenBacklog) == 0) {
      ::freeaddrinfo(found);
      return fd;
    }
    error = errno;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat("cannot bind the API to ", address, " (",
                                             std::strerror(error), "; address in use?)"));
}

void LogMhd(void*, const char* format, va_list args) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, format, args);
  std::string text(buf);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  spdlog::debug("api server: {}", text);
}

// The routes that need no token (docs/dashboard.md): the dashboard's files and the exchange of
// a one-time login code for the token.
bool IsPublicRoute(const HttpRequest& req) {
  if (req.method == "GET" || req.method == "HEAD") {
    return req.path == "/" || req.path.rfind("/ui/", 0) == 0;
  }
  return req.method == "POST" && req.path == "/v1/ui/login";
}
// A dashboard file with headers that keep it to itself: scripts and styles of its own origin
// only, no framing (clickjacking), no referrer (the login code is in the fragment, which is
// never sent, but the page sends nothing anyway), not cached (docs/security.md "The local API
// and browsers").
void WriteAsset(ApiResponse& res, const UiAsset& asset) {
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

ApiServer::ApiServer() = default;

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
  if (metrics_only) {
    s->RouteMetrics();
  } else {
    s->Route();
  }
  CAIRN_ASSIGN_OR_RETURN(int fd, Listen(host, port, address));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    s->port_ =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  // libmicrohttpd's callbacks (lambdas here may call the private ones).
  auto uri = [](void* cls, const char* u, MHD_Connection* connection) -> void* {
    return ApiServer::OnUri(cls, u, connection);
  };
  auto access = [](void* cls, MHD_Connection* connection, const char* url, const char* method,
                   const char* version, const char* upload_data, size_t* upload_data_size,
                   void** con_cls) -> MHD_Result {
    return ApiServer::OnRequest(cls, connection, url, method, version, upload_data,
                                upload_data_size, con_cls) == MHD_YES
               ? MHD_YES
               : MHD_NO;
  };
  auto completed = [](void* cls, MHD_Connection* connection, void** con_cls,
                      MHD_RequestTerminationCode toe) {
    ApiServer::OnCompleted(cls, connection, con_cls, static_cast<int>(toe));
  };
  // One polling thread (epoll) for every connection; requests go to the handler threads with
  // their connections suspended (docs/cli.md "Local HTTP API").
  s->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
          MHD_USE_ERROR_LOG,
      0, nullptr, nullptr, +access, s.get(), MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(kMaxConnections),
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(kIdleTimeout.count()),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory, MHD_OPTION_URI_LOG_CALLBACK, +uri,
      s.get(), MHD_OPTION_NOTIFY_COMPLETED, +completed, s.get(), MHD_OPTION_EXTERNAL_LOGGER,
      &LogMhd, nullptr, MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot start the API server on ", address, " (libmicrohttpd)"));
  }
  for (size_t i = 0; i < kMaxWorkers; ++i) {
    s->workers_.emplace_back([server = s.get()] { server->Work(); });
  }
  if (!metrics_only) {
    s->waker_ = std::thread([server = s.get()] { server->WakeStreams(); });
  }
  return s;
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Stop() {
  std::vector<Stream*> resume;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    stopping_ = true;
    resume.swap(waiting_streams_);
  }
  streams_cv_.notify_all();
  // Each stream, resumed, ends (StreamRead sees stopping_).
  for (Stream* st : resume) MHD_resume_connection(st->connection);
  if (waker_.joinable()) waker_.join();
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    work_closed_ = true;  // requests completed from now on are answered 503 at once
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();  // each finishes the requests queued
  workers_.clear();
  if (daemon_ == nullptr) return;
  // libmicrohttpd must not be stopped with a suspended connection: wait until every resumed one
  // has run again.
  {
    std::unique_lock<std::mutex> lock(suspended_mu_);
    if (!suspended_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return suspended_ == 0; })) {
      spdlog::warn("api server: {} connections still suspended at stop", suspended_);
    }
  }
  MHD_stop_daemon(daemon_);  // closes every connection and the listening socket
  daemon_ = nullptr;
}

void ApiServer::Suspended(int delta) {
  std::lock_guard<std::mutex> lock(suspended_mu_);
  suspended_ += delta;
  if (suspended_ == 0) suspended_cv_.notify_all();
}

void ApiServer::Work() {
  while (true) {
    Request* req = nullptr;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      work_cv_.wait(lock, [&] { return work_closed_ || !work_.empty(); });
      if (work_.empty()) return;
      req = work_.front();
      work_.pop_front();
    }
    Response res;
    try {
      Dispatch(*req, res);
    } catch (const std::exception& e) {
      res = Response();
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    } catch (...) {
      res = Response();
      WriteError(res, absl::InternalError("internal error"));
    }
    MHD_Connection* connection = req->connection;
    {
      std::lock_guard<std::mutex> lock(req->mu);
      req->response = std::move(res);
    }
    // The polling thread calls the access handler again, which queues the answer; `req` may be
    // gone from here on.
    MHD_resume_connection(connection);
  }
}

void ApiServer::Dispatch(const Request& req, Response& res) {
  if (pre_routing_ && pre_routing_(req, res)) return;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  for (const RouteEntry& route : routes_) {
    if (route.method != method) continue;
    if (!route.Match(req.path, &req.matches)) continue;
    route.fn(req, res);
    if (res.status < 0) WriteError(res, absl::InternalError("the route gave no answer"));
    return;
  }
  res.status = 404;
  res.set_content(api::DumpJson(Json{{"error", api::StatusToJson(absl::NotFoundError(absl::StrCat(
                                                   DefaultMessage(404), ": ", req.method, " ",
                                                   api::SanitizeUtf8(req.path))))}}) +
                      "\n",
                  "application/json");
}

void ApiServer::Add(const char* method, const std::string& pattern, Handler fn) {
  RouteEntry route;
  route.method = method;
  route.fn = std::move(fn);
  const size_t open = pattern.find("([");
  if (open == std::string::npos) {
    route.prefix = pattern;
  } else {
    const size_t close = pattern.find("]+)", open);
    // A malformed pattern is a programming error in the route table.
    if (close == std::string::npos || close + 3 != pattern.size()) std::abort();
    route.prefix = pattern.substr(0, open);
    route.segment = true;
    const std::string chars = pattern.substr(open + 2, close - open - 2);
    for (size_t i = 0; i < chars.size(); ++i) {
      if (i + 2 < chars.size() && chars[i + 1] == '-') {
        for (int c = static_cast<unsigned char>(chars[i]);
             c <= static_cast<unsigned char>(chars[i + 2]); ++c) {
          route.allowed[c] = true;
        }
        i += 2;
      } else {
        route.allowed[static_cast<unsigned char>(chars[i])] = true;
      }
    }
  }
  routes_.push_back(std::move(route));
}
void ApiServer::AddRoutes(std::vector<RouteSpec> table) {
  for (RouteSpec& route : table) Add(route.method, route.pattern, std::move(route.fn));
}

void* ApiServer::OnUri(void*, const char* uri, MHD_Connection* connection) {
  auto* req = new Request();
  req->connection = connection;
  req->target = uri == nullptr ? "" : uri;
  return req;
}

void ApiServer::OnCompleted(void*, MHD_Connection*, void** con_cls, int) {
  auto* req = static_cast<Request*>(*con_cls);
  if (req == nullptr) return;
  *con_cls = nullptr;
  // An event stream answered but never started (the client left first) frees its slot.
  if (req->response.stream && !req->stream_taken) --req->server->event_streams_;
  delete req;
}

int ApiServer::OnRequest(void* cls, MHD_Connection* connection, const char*, const char* method,
                         const char*, const char* upload_data, size_t* upload_data_size,
                         void** con_cls) {
  auto* self = static_cast<ApiServer*>(cls);
  auto* req = static_cast<Request*>(*con_cls);
  if (req == nullptr) {  // no URI callback ran (not expected)
    req = static_cast<Request*>(OnUri(nullptr, "/", connection));
    *con_cls = req;
  }
  req->server = self;
  if (!req->started) {
    req->started = true;
    req->connection = connection;
    req->method = method == nullptr ? "" : method;
    ParseTarget(req->target, *req);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader, req);
    // A declared body over the limit is refused before it is read.
    uint64_t length = 0;
    const std::string* declared = req->FindHeader("content-length");
    if (declared != nullptr && absl::SimpleAtoi(*declared, &length) && length > kMaxBodyBytes) {
      req->too_large = true;
    }
    if (!req->too_large) return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (!req->too_large) {
      if (req->body.size() + *upload_data_size > kMaxBodyBytes) {
        req->too_large = true;
        req->body.clear();
      } else {
        req->body.append(upload_data, *upload_data_size);
      }
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (req->handed_out) {  // resumed: the handler thread has answered
    req->handed_out = false;
    self->Suspended(-1);
    return self->Answer(connection, *req);
  }
  if (req->too_large) {
    WriteJson(
        req->response, 413,
        Json{{"error", api::StatusToJson(absl::Status(CodeForHttp(413), DefaultMessage(413)))}});
    return self->Answer(connection, *req);
  }
  {
    std::lock_guard<std::mutex> lock(self->work_mu_);
    if (!self->work_closed_) {
      MHD_suspend_connection(connection);
      req->handed_out = true;
      self->Suspended(1);
      self->work_.push_back(req);
    }
  }
  if (!req->handed_out) {
    WriteError(req->response, absl::UnavailableError("the API server is stopping"));
    return self->Answer(connection, *req);
  }
  self->work_cv_.notify_one();
  return MHD_YES;
}

int ApiServer::Answer(MHD_Connection* connection, Request& req) {
  Response res;
  {
    std::lock_guard<std::mutex> lock(req.mu);
    res = req.response;
  }
  MHD_Response* r = nullptr;
  if (res.stream) {
    auto* st = new Stream();
    st->server = this;
    st->bus = res.bus;
    st->connection = connection;
    st->after = res.stream_after;
    st->pending = ": cairn events\nretry: 2000\n\n";
    st->last_write = std::chrono::steady_clock::now();
    r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 64 << 10,
        [](void* cls, uint64_t pos, char* buf, size_t max) -> ssize_t {
          return ApiServer::StreamRead(cls, pos, buf, max);
        },
        st, [](void* cls) { ApiServer::StreamFree(cls); });
    if (r == nullptr) {
      delete st;
      return MHD_NO;  // OnCompleted frees the stream's slot
    }
    req.stream_taken = true;  // StreamFree frees the slot from now on
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, kStreamTimeoutSeconds);
    res.content_type = "text/event-stream";
  } else {
    r = MHD_create_response_from_buffer(res.body.size(), res.body.data(), MHD_RESPMEM_MUST_COPY);
    if (r == nullptr) return MHD_NO;
  }
  if (!res.content_type.empty())
    MHD_add_response_header(r, "Content-Type", res.content_type.c_str());
  for (const auto& [name, value] : res.headers) {
    MHD_add_response_header(r, name.c_str(), value.c_str());
  }
  const MHD_Result ok = MHD_queue_response(connection, static_cast<unsigned>(res.status), r);
  MHD_destroy_response(r);
  return ok;
}

// Called on the polling thread whenever the connection can take more of the stream; never
// blocks: with nothing to send it suspends the connection until WakeStreams or Stop resumes it
// (libmicrohttpd's documented way to wait for data: return 0 and suspend).
long ApiServer::StreamRead(void* cls, uint64_t, char* buf, size_t max) {
  auto* st = static_cast<Stream*>(cls);
  ApiServer* self = st->server;
  {
    std::lock_guard<std::mutex> lock(self->streams_mu_);
    if (st->suspended) {
      st->suspended = false;
      self->Suspended(-1);
    }
  }
  if (st->pending.empty()) {
    if (self->stopping_) return MHD_CONTENT_READER_END_OF_STREAM;
    EventBus::Batch b = st->bus->WaitAfter(st->after, std::chrono::milliseconds(0));
    if (b.closed) return MHD_CONTENT_READER_END_OF_STREAM;
    if (b.missed > 0) {
      st->pending =
          absl::StrCat("event: missed\ndata: ", api::DumpJson(Json{{"missed", b.missed}}), "\n\n");
    }
    for (const Event& e : b.events) {
      absl::StrAppend(&st->pending, "id: ", e.id, "\nevent: ", e.type,
                      "\ndata: ", api::DumpJson(e.data), "\n\n");
      st->after = e.id;
    }
    const auto now = std::chrono::steady_clock::now();
    if (st->pending.empty() && now - st->last_write >= kKeepalive) st->pending = ": keepalive\n\n";
    if (st->pending.empty()) {
      std::lock_guard<std::mutex> lock(self->streams_mu_);
      if (self->stopping_) return MHD_CONTENT_READER_END_OF_STREAM;
      MHD_suspend_connection(st->connection);
      st->suspended = true;
      self->Suspended(1);
      st->keepalive_at = st->last_write + kKeepalive;
      self->waiting_streams_.push_back(st);
      self->streams_cv_.notify_all();
      return 0;
    }
  }
  // Whole events where they fit (a reader sees each one in one chunk).
  size_t n = std::min(max, st->pending.size());
  if (n < st->pending.size()) {
    const size_t end = st->pending.rfind("\n\n", n - 2);
    if (n >= 2 && end != std::string::npos && end > 0) n = end + 2;
  }
  std::memcpy(buf, st->pending.data(), n);
  st->pending.erase(0, n);
  st->last_write = std::chrono::steady_clock::now();
  return static_cast<long>(n);
}

void ApiServer::StreamFree(void* cls) {
  auto* st = static_cast<Stream*>(cls);
  ApiServer* self = st->server;
  {
    std::lock_guard<std::mutex> lock(self->streams_mu_);
    std::erase(self->waiting_streams_, st);
    if (st->suspended) self->Suspended(-1);
  }
  --self->event_streams_;
  delete st;
}

// One thread for every waiting stream: resumes a stream when an event newer than the last it
// sent is published, when its keepalive is due, or when the bus closes.
void ApiServer::WakeStreams() {
  std::unique_lock<std::mutex> lock(streams_mu_);
  while (!stopping_) {
    if (waiting_streams_.empty() || bus_ == nullptr) {
      streams_cv_.wait(lock, [&] { return stopping_ || !waiting_streams_.empty(); });
      continue;
    }
    uint64_t oldest = UINT64_MAX;
    for (const Stream* st : waiting_streams_) oldest = std::min(oldest, st->after);
    EventBus* bus = bus_;
    lock.unlock();
    // Returns at once when an event newer than some stream's is there; 250 ms at most.
    const bool closed = bus->WaitAfter(oldest, std::chrono::milliseconds(250)).closed;
    const uint64_t last = bus->last_id();
    lock.lock();
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Stream*> resume;
    std::erase_if(waiting_streams_, [&](Stream* st) {
      if (!closed && st->after >= last && now < st->keepalive_at) return false;
      resume.push_back(st);
      return true;
    });
    if (resume.empty()) continue;
    lock.unlock();
    // Removed from waiting_streams_ while still suspended: each is resumed exactly once and
    // cannot be freed before.
    for (Stream* st : resume) MHD_resume_connection(st->connection);
    lock.lock();
  }
}

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
        "refused: the Host header '", api::SanitizeUtf8(host), "' is not this peer's API address ",
        JoinHostPort(host_, port_), " (docs/security.md \"The local API and browsers\")"));
  }
  if (has_origin && origin != "http://" + got) {
    return absl::PermissionDeniedError(
        absl::StrCat("refused: a request from the web page at '", api::SanitizeUtf8(origin),
                     "' (the local API answers no other origin; docs/security.md \"The local "
                     "API and browsers\")"));
  }
  return absl::OkStatus();
}

void ApiServer::RouteMetrics() {
  pre_routing_ = [this](const Request& req, Response& res) {
    absl::Status browser = CheckBrowserHeaders(
        req.get_header_value("Host"), req.get_header_value("Origin"), req.has_header("Origin"));
    if (!browser.ok()) {
      WriteError(res, browser);
      return true;
    }
    return false;
  };
  AddRoutes(SharedRoutes());
}

std::vector<ApiServer::RouteSpec> ApiServer::SharedRoutes() {
  ApiHandler* h = handler_;
  std::vector<RouteSpec> table;
  table.push_back({"GET", "/metrics",
                   BytesRoute([h](const ApiRequest&) { return h->GetMetrics(); },
                              "text/plain; version=0.0.4; charset=utf-8")});
  table.push_back({"GET", "/v1/health", Wrap([h](const ApiRequest&) -> absl::StatusOr<Reply> {
                     const api::Health health = h->GetHealth();
                     return Reply{health.ready ? 200 : 503, api::ToJson(health)};
                   })});
  return table;
}

// GET /v1/events: Server-Sent Events (text/event-stream; docs/cli.md "Local HTTP API"). Each
// event is "id: N\nevent: TYPE\ndata: JSON\n\n"; the stream starts with a comment line and a
// "retry: 2000" hint, sends ": keepalive" after kKeepalive without events, and "event: missed"
// with {"missed":N} when the client fell more than EventBus::kKeep events behind (or asked, by
// Last-Event-ID, for events no longer kept). The route only checks and counts the stream;
// StreamRead sends it from the polling thread, its connection suspended while there is
// nothing to send.
RouteHandler ApiServer::EventsRoute() {
  return [this](const ApiRequest& req, ApiResponse& res) {
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
                                         api::SanitizeUtf8(v), "'")));
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
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      if (bus_ == nullptr) bus_ = bus;
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.stream = true;
    res.bus = bus;
    res.stream_after = after;
  };
}

namespace {

// The dashboard's files (docs/dashboard.md), served without the token.
void ServeIndex(const ApiRequest&, ApiResponse& res) {
  const UiAsset* asset = FindUiAsset("index.html");
  if (asset == nullptr) {
    WriteError(res, absl::NotFoundError("this binary was built without the dashboard"));
    return;
  }
  WriteAsset(res, *asset);
}

void ServeUiFile(const ApiRequest& req, ApiResponse& res) {
  const UiAsset* asset = FindUiAsset(req.matches[1]);
  if (asset == nullptr) {
    WriteError(res, absl::NotFoundError(
                        absl::StrCat("no dashboard file '", api::SanitizeUtf8(req.path), "'")));
    return;
  }
  WriteAsset(res, *asset);
}

}  // namespace

// The route table of the token-protected API (docs/cli.md "Local HTTP API"): one row per
// method and path; the job-starting routes all go through JobRoute.
void ApiServer::Route() {
  pre_routing_ = [this](const Request& req, Response& res) {
    // Host and Origin first: a page in a browser learns nothing, not even whether a token
    // would have been right.
    absl::Status browser = CheckBrowserHeaders(
        req.get_header_value("Host"), req.get_header_value("Origin"), req.has_header("Origin"));
    if (!browser.ok()) {
      WriteError(res, browser);
      return true;
    }
    if (IsPublicRoute(req)) return false;
    std::string want = "Bearer " + token_;
    std::string got = req.get_header_value("Authorization");
    if (token_.empty() || !codec::ConstantTimeEqual(AsBytes(got), AsBytes(want))) {
      WriteError(res,
                 absl::UnauthenticatedError(
                     "missing or wrong API token (Authorization: Bearer <DIR/secrets/api.token>)"));
      return true;
    }
    return false;
  };
  AddRoutes(SharedRoutes());
  AddRoutes({
      // The dashboard: files without the token, everything else through the API with it.
      {"GET", "/", ServeIndex},
      {"GET", "/ui/([A-Za-z0-9_.-]+)", ServeUiFile},
      {"POST", "/v1/ui/code", Wrap([this](const ApiRequest&) -> absl::StatusOr<Reply> {
         return Reply{201, api::ToJson(api::LoginCode{NewLoginCode(), kLoginCodeTtl.count()})};
       })},
      {"POST", "/v1/ui/login", Wrap([this](const ApiRequest& req) -> absl::StatusOr<Reply> {
         CAIRN_ASSIGN_OR_RETURN(Json body, api::ParseRequestBody(req.body));
         if (!body.contains("code") || !body["code"].is_string()) {
           return absl::InvalidArgumentError("field 'code' (a string) is required");
         }
         CAIRN_ASSIGN_OR_RETURN(std::string token,
                                RedeemLoginCode(body["code"].get<std::string>()));
         return Reply{200, Json{{"token", token}}};
       })},
      {"GET", "/v1/events", EventsRoute()},
  });
  AddRoutes(handler_->Routes());
}

}  // namespace cairn::daemon
