#include "cairn/daemon/api_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"
#include "cairn/daemon/api_requests.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/json_paths.h"
#include "cairn/engine/versions.h"

namespace cairn::daemon {
namespace {

// A route's outcome: HTTP status and JSON body.
using Reply = std::pair<int, Json>;
using RouteFn = std::function<absl::StatusOr<Reply>(const httplib::Request&)>;

constexpr size_t kMaxBodyBytes = 16 << 20;

void WriteJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(DumpJson(body) + "\n", "application/json");
}

void WriteError(httplib::Response& res, const absl::Status& status) {
  WriteJson(res, HttpStatusFor(status.code()), Json{{"error", StatusToJson(status)}});
}

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
  s->server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s->server_->set_payload_max_length(kMaxBodyBytes);
  s->server_->set_read_timeout(std::chrono::seconds(5));
  s->server_->set_write_timeout(std::chrono::seconds(30));
  s->Route();
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

std::string ApiServer::address() const { return JoinHostPort(host_, port_); }

void ApiServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void ApiServer::Route() {
  httplib::Server& s = *server_;

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
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
  // Errors httplib produces itself (no route, unparsable request) get the same JSON shape;
  // responses that already carry a body are left alone.
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
