#include "cairn/net/retrying_peer_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <thread>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::net {
namespace {

std::mt19937_64& ThreadRng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace

RetryingPeerClient::RetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                       const ClientOptions& options, std::string label,
                                       SleepFn sleep)
    : inner_(std::move(inner)),
      options_(options),
      label_(std::move(label)),
      sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

bool RetryingPeerClient::IsRetryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

std::chrono::milliseconds RetryingPeerClient::BackoffCap(const ClientOptions& options, int retry) {
  const int64_t initial = std::max<int64_t>(0, options.initial_backoff.count());
  const int64_t max = std::max<int64_t>(0, options.max_backoff.count());
  int64_t cap = initial;
  for (int i = 0; i < retry && cap < max; ++i) cap *= 2;  // no overflow: stops at max
  return std::chrono::milliseconds(std::min(cap, max));
}

std::chrono::milliseconds RetryingPeerClient::Jitter(std::chrono::milliseconds cap) {
  if (cap.count() <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<int64_t> dist(0, cap.count());
  return std::chrono::milliseconds(dist(ThreadRng()));
}

absl::Status RetryingPeerClient::Finish(const absl::Status& status, int attempts) const {
  std::string message(status.message());
  if (attempts > 1) absl::StrAppend(&message, " (gave up after ", attempts, " attempts)");
  if (!label_.empty()) message = absl::StrCat("peer ", label_, ": ", message);
  return WithMessage(status, message);
}

template <typename T>
absl::StatusOr<T> RetryingPeerClient::Run(const std::function<absl::StatusOr<T>()>& call) {
  const int max_attempts = std::max(1, options_.max_attempts);
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<T> result = call();
    if (result.ok()) return result;
    if (!IsRetryable(result.status()) || attempt + 1 >= max_attempts) {
      return Finish(result.status(), attempt + 1);
    }
    std::chrono::milliseconds wait = Jitter(BackoffCap(options_, attempt));
    spdlog::debug("peer {}: attempt {} failed ({}); retrying in {} ms", label_, attempt + 1,
                  result.status().ToString(), wait.count());
    sleep_(wait);
  }
}

absl::StatusOr<PingReply> RetryingPeerClient::Ping(const cluster::PeerInfo& self,
                                                   const std::vector<cluster::PeerInfo>& known) {
  return Run<PingReply>([&] { return inner_->Ping(self, known); });
}

absl::StatusOr<ports::PutOutcome> RetryingPeerClient::PutBlob(const BlobKey& key, ByteSpan blob,
                                                              const ports::PutOptions& options) {
  return Run<ports::PutOutcome>([&] { return inner_->PutBlob(key, blob, options); });
}

absl::StatusOr<Bytes> RetryingPeerClient::GetBlob(const BlobKey& key) {
  return Run<Bytes>([&] { return inner_->GetBlob(key); });
}

absl::StatusOr<std::vector<bool>> RetryingPeerClient::HasBlobs(std::span<const BlobKey> keys) {
  return Run<std::vector<bool>>([&] { return inner_->HasBlobs(keys); });
}

absl::StatusOr<uint64_t> RetryingPeerClient::DeleteBlobs(std::span<const BlobKey> keys) {
  return Run<uint64_t>([&] { return inner_->DeleteBlobs(keys); });
}

absl::StatusOr<BlobListPage> RetryingPeerClient::ListBlobs(PeerId owner,
                                                           const std::optional<BlobKey>& after,
                                                           size_t limit) {
  return Run<BlobListPage>([&] { return inner_->ListBlobs(owner, after, limit); });
}

absl::Status RetryingPeerClient::BlobMoved(std::span<const MovedBlob> moves) {
  return Run<std::monostate>([&]() -> absl::StatusOr<std::monostate> {
           CAIRN_RETURN_IF_ERROR(inner_->BlobMoved(moves));
           return std::monostate{};
         })
      .status();
}

absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> RetryingPeerClient::PutBlobs(
    std::span<const BlobPut> puts) {
  // Puts are idempotent (a blob stored by a lost attempt answers ALREADY_STORED), so the whole
  // batch is sent again.
  using Answers = std::vector<absl::StatusOr<ports::PutOutcome>>;
  CAIRN_ASSIGN_OR_RETURN(Answers answers, Run<Answers>([&] { return inner_->PutBlobs(puts); }));
  for (absl::StatusOr<ports::PutOutcome>& answer : answers) {
    if (!answer.ok()) answer = Label(answer.status());
  }
  return answers;
}

absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> RetryingPeerClient::GetBlobs(
    std::span<const BlobKey> keys) {
  std::vector<absl::StatusOr<Bytes>> answers;
  answers.reserve(keys.size());
  CAIRN_RETURN_IF_ERROR(GetBlobsStreamed(
      keys, [&](size_t, absl::StatusOr<Bytes> answer) { answers.push_back(std::move(answer)); }));
  return answers;
}

absl::Status RetryingPeerClient::GetBlobsStreamed(std::span<const BlobKey> keys,
                                                  const BlobSink& on_blob) {
  const int max_attempts = std::max(1, options_.max_attempts);
  size_t done = 0;   // keys[0..done) are answered: an attempt asks for the rest only
  int failures = 0;  // attempts in a row that answered nothing
  int attempts = 0;
  for (;;) {
    size_t got = 0;
    absl::Status status =
        inner_->GetBlobsStreamed(keys.subspan(done), [&](size_t i, absl::StatusOr<Bytes> answer) {
          // The inner client answers a prefix in order (PeerClient::GetBlobsStreamed).
          if (i != got) return;
          ++got;
          on_blob(done + i, answer.ok() ? std::move(answer) : Label(answer.status()));
        });
    ++attempts;
    done += got;
    if (status.ok()) return status;
    // An attempt that answered some keys made progress (a long batch cut by its deadline): only
    // attempts in a row that answered nothing count toward max_attempts.
    failures = got > 0 ? 1 : failures + 1;
    if (!IsRetryable(status) || failures >= max_attempts) return Finish(status, attempts);
    std::chrono::milliseconds wait = Jitter(BackoffCap(options_, failures - 1));
    spdlog::debug(
        "peer {}: GetBlobs attempt {} failed after {} of {} keys ({}); retrying the "
        "rest in {} ms",
        label_, attempts, done, keys.size(), status.ToString(), wait.count());
    sleep_(wait);
  }
}

absl::Status RetryingPeerClient::Label(const absl::Status& status) const {
  if (label_.empty()) return status;
  return WithMessage(status, absl::StrCat("peer ", label_, ": ", status.message()));
}

std::shared_ptr<PeerClient> NewRetryingPeerClient(std::shared_ptr<PeerClient> inner,
                                                  const ClientOptions& options) {
  return std::make_shared<RetryingPeerClient>(std::move(inner), options, "");
}

}  // namespace cairn::net
