// The local HTTP API (docs/cli.md "Local HTTP API"): libmicrohttpd on a
// loopback address, JSON in and out, bearer-token authentication. The CLI is its client.
//
// ApiServer owns the HTTP side — authentication, routing, mapping absl codes to HTTP statuses,
// the dashboard's files and login codes, the event stream — and concatenates the feature route
// tables (api_routes.h) the ApiHandler gives (ApiHandler::Routes: api_status.h,
// api_snapshots.h, ...; each feature parses and validates its requests).
// Whatever arrives (malformed JSON, wrong types, garbage bytes, unknown routes, a handler that
// throws) gets an error response and the server keeps serving.
//
// Errors: body {"error":{"code":"NOT_FOUND","message":"..."}}; HTTP status 400
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409
// FAILED_PRECONDITION/ALREADY_EXISTS, 503 UNAVAILABLE, 507 RESOURCE_EXHAUSTED, 500 others.
//
// Browsers (docs/security.md "The local API and browsers"): a request whose Host header is not
// this server's own loopback address and port (the bound host, 127.0.0.1, [::1] or localhost,
// with the bound port) is refused with 403 before anything else, which defeats DNS rebinding;
// so is one carrying an Origin header other than its own origin (http://HOST:PORT). No CORS
// headers are ever sent, so a page of another origin cannot read an answer either.
//
// The dashboard (docs/dashboard.md): GET / and GET /ui/NAME serve the embedded files
// (ui_assets.h) without the token, and POST /v1/ui/login exchanges a one-time login code (made
// by POST /v1/ui/code, with the token, for `cairn ui`) for the token. Every other route needs
// the token.
//
// Threads (docs/cli.md "Local HTTP API"): one polling thread reads and writes every connection;
// a complete request is handed to a small pool of handler threads (kMaxWorkers), its connection
// suspended meanwhile, so an idle, slow or streaming connection holds no thread.
// Thread-safety: the handler is called concurrently from the handler threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/api/requests.h"
#include "cairn/api/responses.h"
#include "cairn/daemon/api_routes.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/events.h"
#include "nlohmann/json.hpp"

struct MHD_Daemon;
struct MHD_Connection;

namespace cairn::daemon {

// What the API serves beyond the server's own routes: the feature tables, the event bus, and
// what the [metrics] listener shares (metrics, health).
class ApiHandler {
 public:
  virtual ~ApiHandler() = default;
  // The route tables of the features (api_status.h, api_snapshots.h, api_versions.h,
  // api_jobs.h, api_lifecycle.h, api_sources.h), served after the server's own routes; none by
  // default.
  virtual std::vector<ApiRoute> Routes() { return {}; }
  // GET /metrics (docs/operations.md "Monitoring"): the Prometheus text exposition (format
  // 0.0.4). UNIMPLEMENTED unless overridden.
  virtual absl::StatusOr<std::string> GetMetrics() {
    return absl::UnimplementedError("metrics are not available");
  }
  // GET /v1/events (docs/cli.md "Local HTTP API"): the bus whose events the stream sends; must
  // outlive the server. nullptr (the default): 501 UNIMPLEMENTED.
  virtual EventBus* Events() { return nullptr; }
  // GET /v1/health (api::Health); answered 200 when `ready`, else 503 with the same body. The
  // default: live and ready, nothing else known.
  virtual api::Health GetHealth() { return api::Health{}; }
};

// HTTP status for an absl code (see file comment).
int HttpStatusFor(absl::StatusCode code);

// ApiServer's own types (api_server.cc): a parsed request, its answer, an open event stream.
namespace api_detail {
struct HttpRequest;
struct EventStream;
}  // namespace api_detail

class ApiServer {
 public:
  // Binds `address` (host:port, loopback only; port 0 picks a free port) and serves on a
  // background thread. `token` is the bearer token (hex); `handler` must outlive the server.
  // INVALID_ARGUMENT for a malformed or non-loopback address; UNAVAILABLE if it cannot bind.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(const std::string& address,
                                                          const std::string& token,
                                                          ApiHandler* handler);
  // The [metrics] listener (docs/operations.md "Monitoring"): binds `address` (loopback only)
  // and serves GET /metrics and GET /v1/health of `handler` without a token; every other path
  // is 404. The Host and Origin checks apply as on the API. Errors as Start.
  static absl::StatusOr<std::unique_ptr<ApiServer>> StartMetrics(const std::string& address,
                                                                 ApiHandler* handler);
  ~ApiServer();

  int port() const { return port_; }
  // host:port actually bound.
  std::string address() const;

  // Handler threads: each runs one complete request's route (which may block in the engine)
  // while its connection is suspended. Connections themselves hold no thread: one polling
  // thread serves them all, so idle, kept-alive and streaming connections do not delay
  // requests.
  static constexpr size_t kMaxWorkers = 8;
  // Connections open at once (idle ones included); beyond it new connections are closed at
  // once.
  static constexpr unsigned kMaxConnections = 2048;
  // A connection with no traffic this long (reading a request, waiting for the next one on a
  // kept-alive connection, or sending an answer the client does not read) is closed. Not while
  // its request is being handled.
  static constexpr std::chrono::seconds kIdleTimeout{5};
  // GET /v1/events streams open at once; one more is answered 503 UNAVAILABLE.
  static constexpr int kMaxEventStreams = 64;
  // An event stream sends the comment ": keepalive" after this long without an event (so a
  // client gone away is noticed and its slot freed).
  static constexpr std::chrono::seconds kKeepalive{10};

  // Ends the open event streams, stops accepting requests and waits for the serving threads.
  // Idempotent.
  void Stop();

 private:
  using Request = api_detail::HttpRequest;
  using Response = ApiResponse;
  using Stream = api_detail::EventStream;
  using Handler = RouteHandler;
  struct RouteEntry;

  ApiServer();
  static absl::StatusOr<std::unique_ptr<ApiServer>> StartServer(const std::string& address,
                                                                const std::string& token,
                                                                ApiHandler* handler,
                                                                bool metrics_only);
  // The token-protected API: the dashboard, the event stream and the feature tables
  // (api_routes.h), concatenated.
  void Route();
  using RouteSpec = ApiRoute;
  void RouteMetrics();
  // The routes the [metrics] listener serves too: GET /metrics and GET /v1/health.
  std::vector<RouteSpec> SharedRoutes();
  Handler EventsRoute();
  void AddRoutes(std::vector<RouteSpec> table);
  void Add(const char* method, const std::string& pattern, Handler fn);
  // Runs the checks and the matching route of a complete request (on a handler thread).
  void Dispatch(const Request& req, Response& res);
  // One-time login codes (docs/dashboard.md "Logging in"): a new code, valid kLoginCodeTtl;
  // and the token for a code, which is then forgotten (UNAUTHENTICATED for an unknown, used or
  // expired code).
  std::string NewLoginCode();
  absl::StatusOr<std::string> RedeemLoginCode(const std::string& code);
  static constexpr std::chrono::seconds kLoginCodeTtl{300};
  static constexpr size_t kMaxLoginCodes = 32;  // the oldest is dropped beyond this
  // Whether a request's Host and Origin headers name this server (see file comment); the
  // refusal otherwise.
  absl::Status CheckBrowserHeaders(const std::string& host, const std::string& origin,
                                   bool has_origin) const;

  // libmicrohttpd callbacks (api_server.cc), on the polling thread.
  static void* OnUri(void* cls, const char* uri, MHD_Connection* connection);
  static int OnRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                       const char* version, const char* upload_data, size_t* upload_data_size,
                       void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* connection, void** con_cls, int toe);
  static long StreamRead(void* cls, uint64_t pos, char* buf, size_t max);
  static void StreamFree(void* cls);
  int Answer(MHD_Connection* connection, Request& req);
  // The handler threads and the thread that resumes event streams when events arrive.
  void Work();
  void WakeStreams();
  // Suspended connections not yet resumed and run again (Stop waits for none before stopping
  // libmicrohttpd, which must not stop with suspended connections).
  void Suspended(int delta);

  std::string host_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};  // Stop() was called: event streams end
  std::atomic<int> event_streams_{0};
  std::string token_;
  ApiHandler* handler_ = nullptr;
  std::vector<RouteEntry> routes_;
  // Runs before routing; true: it answered (the request goes no further).
  std::function<bool(const Request&, Response&)> pre_routing_;
  MHD_Daemon* daemon_ = nullptr;
  std::mutex codes_mu_;
  // Unredeemed login codes (hex) and when they expire, oldest first.
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> codes_;

  // Complete requests waiting for a handler thread (their connections suspended).
  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<Request*> work_;
  bool work_closed_ = false;
  std::vector<std::thread> workers_;

  // Event streams suspended until an event, their keepalive time or Stop().
  std::mutex streams_mu_;
  std::condition_variable streams_cv_;
  std::vector<Stream*> waiting_streams_;
  EventBus* bus_ = nullptr;  // the bus of the first stream (handler_->Events())
  std::thread waker_;

  std::mutex suspended_mu_;
  std::condition_variable suspended_cv_;
  int suspended_ = 0;
};

}  // namespace cairn::daemon
