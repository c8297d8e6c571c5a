#include "cairn/cli/connect.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
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

absl::StatusOr<std::unique_ptr<api::ApiClient>> ConnectToPeer(const std::string& dir) {
  CAIRN_ASSIGN_OR_RETURN(daemon::Config config, daemon::LoadConfig(dir));
  CAIRN_ASSIGN_OR_RETURN(std::string token, daemon::LoadApiToken(dir));
  api::ApiClient::Options options;
  options.unreachable_hint = absl::StrCat(": is `cairn peer --dir ", dir, "` running?");
  return api::ApiClient::Connect(config.api, token, std::move(options));
}

absl::StatusOr<nlohmann::json> WaitForJob(api::ApiClient& client, const std::string& id,
                                          ProgressBar* bar) {
  InterruptGuard guard;
  api::ApiClient::WaitOptions options;
  if (bar != nullptr) options.on_progress = [bar](const nlohmann::json& p) { bar->Update(p); };
  options.interrupted = [] { return g_interrupted != 0; };
  absl::StatusOr<nlohmann::json> job = client.WaitForJob(id, options);
  if (bar != nullptr) bar->Finish();
  return job;
}

}  // namespace cairn::cli
