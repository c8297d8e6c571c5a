#include "cairn/cli/api_client.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/base/status.h"
#include "cairn/cli/progress.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::cli {
namespace {

volatile sig_atomic_t g_interrupted = 0;
volatile sig_atomic_t g_ever_interrupted = 0;  // InterruptedByUser

void OnInterrupt(int) {
  g_interrupted = 1;
  g_ever_interrupted = 1;
}

// Installs a SIGINT handler for the lifetime of the object (no SA_RESTART: a blocked read
// returns early, and httplib retries on EINTR).
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptGuard() { sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

}  // namespace

bool InterruptedByUser() { return g_ever_interrupted != 0; }

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

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Open(const std::string& dir) {
  CAIRN_ASSIGN_OR_RETURN(daemon::Config config, daemon::LoadConfig(dir));
  std::unique_ptr<ApiClient> c(new ApiClient());
  c->dir_ = dir;
  c->address_ = config.api;
  CAIRN_ASSIGN_OR_RETURN(c->token_, daemon::LoadApiToken(dir));
  CAIRN_ASSIGN_OR_RETURN(auto host_port, daemon::SplitHostPort(config.api));
  c->client_ = std::make_unique<httplib::Client>(host_port.first, host_port.second);
  c->client_->set_connection_timeout(std::chrono::seconds(5));
  c->client_->set_read_timeout(std::chrono::seconds(600));
  c->client_->set_write_timeout(std::chrono::seconds(60));
  c->client_->set_bearer_token_auth(c->token_);
  c->client_->set_keep_alive(true);
  return c;
}

ApiClient::~ApiClient() = default;

absl::StatusOr<nlohmann::json> ApiClient::Finish(const std::string& method,
                                                 const std::string& target,
                                                 const void* result_ptr) {
  const auto& result = *static_cast<const httplib::Result*>(result_ptr);
  if (!result) {
    return absl::UnavailableError(absl::StrCat("cannot reach the cairn peer at ", address_,
                                               ": is `cairn peer --dir ", dir_, "` running?"));
  }
  const httplib::Response& res = *result;
  absl::StatusOr<nlohmann::json> body = api::ParseJson(res.body);
  if (res.status >= 200 && res.status < 300) {
    if (!body.ok()) {
      return absl::InternalError(
          absl::StrCat(method, " ", target, ": the peer answered with malformed JSON"));
    }
    return body;
  }
  if (body.ok() && body->is_object() && body->contains("error")) {
    return api::StatusFromJson((*body)["error"]);
  }
  return absl::UnknownError(
      absl::StrCat(method, " ", target, ": the peer answered HTTP ", res.status));
}

absl::StatusOr<nlohmann::json> ApiClient::Get(const std::string& target) {
  httplib::Result r = client_->Get(target.c_str());
  return Finish("GET", target, &r);
}

absl::StatusOr<nlohmann::json> ApiClient::Post(const std::string& target,
                                               const nlohmann::json& body) {
  httplib::Result r = client_->Post(target.c_str(), api::DumpJson(body), "application/json");
  return Finish("POST", target, &r);
}

absl::StatusOr<nlohmann::json> ApiClient::Delete(const std::string& target) {
  httplib::Result r = client_->Delete(target.c_str());
  return Finish("DELETE", target, &r);
}

absl::StatusOr<nlohmann::json> ApiClient::WaitForJob(const std::string& id, ProgressBar* bar) {
  InterruptGuard guard;
  const std::string target = "/v1/jobs/" + UrlEncode(id);
  int ticks = 1;  // 10 ms each
  while (true) {
    if (g_interrupted) {
      if (bar) bar->Finish();
      absl::StatusOr<nlohmann::json> cancelled = Delete(target);
      return absl::CancelledError(cancelled.ok()
                                      ? "interrupted: the job was cancelled"
                                      : absl::StrCat("interrupted; cancelling the job failed: ",
                                                     cancelled.status().message()));
    }
    CAIRN_ASSIGN_OR_RETURN(nlohmann::json job, Get(target));
    std::string state = job.is_object() && job.contains("state") && job["state"].is_string()
                            ? job["state"].get<std::string>()
                            : "";
    if (bar && job.is_object() && job.contains("progress")) bar->Update(job["progress"]);
    if (state == "done") {
      if (bar) bar->Finish();
      return job;
    }
    if (state == "failed") {
      if (bar) bar->Finish();
      if (job.contains("error")) return api::StatusFromJson(job["error"]);
      return absl::UnknownError("the job failed");
    }
    if (state != "running") return absl::InternalError("malformed job status from the peer");
    // Poll after 10, 20, 40 ... ms, then every 200 ms (a short job is not made to wait for a
    // long interval), waking early on Ctrl-C.
    for (int i = 0; i < ticks && !g_interrupted; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ticks = std::min(ticks * 2, 20);
  }
}

}  // namespace cairn::cli
