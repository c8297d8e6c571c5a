#include "cairn/api/client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"

namespace cairn::api {
namespace {

// "host:port" or "[v6]:port" -> host and port.
absl::StatusOr<std::pair<std::string, int>> HostPort(const std::string& address) {
  std::string host;
  std::string port_text;
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("invalid API address '", address, "'"));
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("invalid API address '", address, "'"));
    }
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  int port = 0;
  if (host.empty() || !absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid API address '", address, "'"));
  }
  return std::make_pair(host, port);
}

}  // namespace

std::string UrlEncode(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Connect(const std::string& address,
                                                              const std::string& token,
                                                              Options options) {
  CAIRN_ASSIGN_OR_RETURN(auto host_port, HostPort(address));
  std::unique_ptr<ApiClient> c(new ApiClient());
  c->address_ = address;
  c->options_ = std::move(options);
  c->client_ = std::make_unique<httplib::Client>(host_port.first, host_port.second);
  c->client_->set_connection_timeout(c->options_.connect_timeout);
  c->client_->set_read_timeout(c->options_.read_timeout);
  c->client_->set_write_timeout(c->options_.write_timeout);
  if (!token.empty()) c->client_->set_bearer_token_auth(token);
  c->client_->set_keep_alive(true);
  return c;
}

ApiClient::~ApiClient() = default;

absl::StatusOr<HttpAnswer> ApiClient::Send(const std::string& method, const std::string& target,
                                           const std::string& body) {
  httplib::Result r = method == "GET"      ? client_->Get(target.c_str())
                      : method == "POST"   ? client_->Post(target.c_str(), body, "application/json")
                      : method == "DELETE" ? client_->Delete(target.c_str())
                                           : httplib::Result(nullptr, httplib::Error::Unknown);
  if (!r) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the cairn peer at ", address_, options_.unreachable_hint));
  }
  return HttpAnswer{r->status, r->get_header_value("Content-Type"), std::move(r->body)};
}

absl::StatusOr<Json> ApiClient::JsonOf(const std::string& method, const std::string& target,
                                       absl::StatusOr<HttpAnswer> answer) {
  if (!answer.ok()) return answer.status();
  absl::StatusOr<Json> body = ParseJson(answer->body);
  if (answer->status >= 200 && answer->status < 300) {
    if (!body.ok()) {
      return absl::InternalError(
          absl::StrCat(method, " ", target, ": the peer answered with malformed JSON"));
    }
    return body;
  }
  if (body.ok() && body->is_object() && body->contains("error")) {
    absl::Status error = StatusFromJson((*body)["error"]);
    if (!error.ok()) return error;  // an "OK" error code is no error: UNKNOWN below
  }
  return absl::UnknownError(
      absl::StrCat(method, " ", target, ": the peer answered HTTP ", answer->status));
}

absl::StatusOr<Json> ApiClient::Get(const std::string& target) {
  return JsonOf("GET", target, Send("GET", target));
}

absl::StatusOr<Json> ApiClient::Post(const std::string& target, const Json& body) {
  return JsonOf("POST", target, Send("POST", target, DumpJson(body)));
}

absl::StatusOr<Json> ApiClient::Delete(const std::string& target) {
  return JsonOf("DELETE", target, Send("DELETE", target));
}

absl::StatusOr<std::string> ApiClient::GetBytes(const std::string& target) {
  CAIRN_ASSIGN_OR_RETURN(HttpAnswer answer, Send("GET", target));
  if (answer.status >= 200 && answer.status < 300) return std::move(answer.body);
  return JsonOf("GET", target, std::move(answer)).status();
}

absl::StatusOr<Json> ApiClient::WaitForJob(const std::string& id, const WaitOptions& options) {
  const std::string target = "/v1/jobs/" + UrlEncode(id);
  // The end of a job is seen as it happens, not at the next poll: a poll every 200 ms added
  // 100 ms on average to a one-second backup.
  constexpr std::chrono::milliseconds kPoll(200);
  const std::string poll = absl::StrCat(target, "?wait_ms=", kPoll.count());
  auto interrupted = [&] { return options.interrupted && options.interrupted(); };
  while (true) {
    if (interrupted()) {
      absl::StatusOr<Json> cancelled = Delete(target);
      return absl::CancelledError(cancelled.ok()
                                      ? "interrupted: the job was cancelled"
                                      : absl::StrCat("interrupted; cancelling the job failed: ",
                                                     cancelled.status().message()));
    }
    const auto asked = std::chrono::steady_clock::now();
    CAIRN_ASSIGN_OR_RETURN(Json job, Get(poll));
    JobInfo info;
    if (!FromJson(job, &info).ok()) {
      return absl::InternalError("malformed job status from the peer");
    }
    if (options.on_progress && job.contains("progress")) options.on_progress(info.progress);
    if (info.state == "done") return job;
    if (info.state == "failed") {
      if (info.error && !info.error->ok()) return *info.error;
      return absl::UnknownError("the job failed");
    }
    if (info.state != "running") return absl::InternalError("malformed job status from the peer");
    while (std::chrono::steady_clock::now() - asked < kPoll && !interrupted()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace cairn::api
