#include "cairn/net/batching_peer_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::net {
namespace {

BatchingOptions Normalized(BatchingOptions options) {
  options.max_batches_in_flight = std::max<size_t>(1, options.max_batches_in_flight);
  options.max_bytes_in_flight = std::max<size_t>(1, options.max_bytes_in_flight);
  options.max_batch_blobs = std::clamp<size_t>(options.max_batch_blobs, 1, kMaxBlobsPerBatch);
  options.max_batch_bytes = std::clamp<size_t>(options.max_batch_bytes, 1, kMaxBatchBytes);
  return options;
}

absl::Status ShuttingDown() {
  return absl::FailedPreconditionError("the batching peer client is shutting down");
}

template <typename T>
std::future<absl::StatusOr<T>> ReadyFuture(absl::StatusOr<T> value) {
  std::promise<absl::StatusOr<T>> promise;
  promise.set_value(std::move(value));
  return promise.get_future();
}

}  // namespace

BatchingPeerClient::BatchingPeerClient(std::shared_ptr<PeerClient> inner, BatchingOptions options)
    : inner_(std::move(inner)), options_(Normalized(options)) {
  senders_.reserve(options_.max_batches_in_flight);
  for (size_t i = 0; i < options_.max_batches_in_flight; ++i) {
    senders_.emplace_back([this] { SenderLoop(); });
  }
}

BatchingPeerClient::~BatchingPeerClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  room_cv_.notify_all();
  // The senders send what is queued, then return.
  for (std::thread& sender : senders_) sender.join();
}

absl::Status BatchingPeerClient::Admit(size_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  room_cv_.wait(lock, [&]() {
    return stopping_ || bytes_in_flight_ == 0 ||
           bytes_in_flight_ + bytes <= options_.max_bytes_in_flight;
  });
  if (stopping_) return ShuttingDown();
  bytes_in_flight_ += bytes;
  peak_bytes_in_flight_ = std::max(peak_bytes_in_flight_, bytes_in_flight_);
  return absl::OkStatus();
}

void BatchingPeerClient::Release(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_in_flight_ -= std::min(bytes, bytes_in_flight_);
  }
  room_cv_.notify_all();
}

std::future<absl::StatusOr<ports::PutOutcome>> BatchingPeerClient::EnqueuePut(
    std::unique_ptr<PendingPut> put) {
  std::future<absl::StatusOr<ports::PutOutcome>> answer = put->answer.get_future();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_) {
      put->order = next_order_++;
      puts_.push_back(std::move(put));
      lock.unlock();
      work_cv_.notify_one();
      return answer;
    }
  }
  Release(put->blob.size());
  put->answer.set_value(ShuttingDown());
  return answer;
}

absl::StatusOr<ports::PutOutcome> BatchingPeerClient::PutBlob(const BlobKey& key, ByteSpan blob,
                                                              const ports::PutOptions& options) {
  CAIRN_RETURN_IF_ERROR(Admit(blob.size()));
  auto put = std::make_unique<PendingPut>();
  put->key = key;
  put->blob = blob;
  put->options = options;
  return EnqueuePut(std::move(put)).get();
}

std::future<absl::StatusOr<ports::PutOutcome>> BatchingPeerClient::StartPutBlob(
    const BlobKey& key, ByteSpan blob, const ports::PutOptions& options) {
  absl::Status admitted = Admit(blob.size());
  if (!admitted.ok()) return ReadyFuture<ports::PutOutcome>(admitted);
  auto put = std::make_unique<PendingPut>();
  put->key = key;
  put->blob = blob;
  put->options = options;
  return EnqueuePut(std::move(put));
}

std::future<absl::StatusOr<ports::PutOutcome>> BatchingPeerClient::PutBlobAsync(
    const BlobKey& key, Bytes blob, const ports::PutOptions& options) {
  absl::Status admitted = Admit(blob.size());
  if (!admitted.ok()) return ReadyFuture<ports::PutOutcome>(admitted);
  auto put = std::make_unique<PendingPut>();
  put->key = key;
  put->owned = std::move(blob);
  put->blob = put->owned;
  put->options = options;
  return EnqueuePut(std::move(put));
}

absl::StatusOr<Bytes> BatchingPeerClient::GetBlob(const BlobKey& key) {
  return GetBlobAsync(key).get();
}

std::future<absl::StatusOr<Bytes>> BatchingPeerClient::GetBlobAsync(const BlobKey& key) {
  auto get = std::make_unique<PendingGet>();
  get->key = key;
  std::future<absl::StatusOr<Bytes>> answer = get->answer.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return ReadyFuture<Bytes>(ShuttingDown());
    get->order = next_order_++;
    gets_.push_back(std::move(get));
  }
  work_cv_.notify_one();
  return answer;
}

bool BatchingPeerClient::HasWork() const { return stopping_ || !puts_.empty() || !gets_.empty(); }

void BatchingPeerClient::SenderLoop() {
  for (;;) {
    std::vector<std::unique_ptr<PendingPut>> puts;
    std::vector<std::unique_ptr<PendingGet>> gets;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this]() { return HasWork(); });
      if (puts_.empty() && gets_.empty()) return;  // stopping, and everything was sent
      const bool take_puts =
          !puts_.empty() && (gets_.empty() || puts_.front()->order < gets_.front()->order);
      if (take_puts) {
        // Everything pending, up to the limits (a first blob larger than the byte limit goes
        // alone).
        size_t bytes = 0;
        while (!puts_.empty() && puts.size() < options_.max_batch_blobs &&
               (puts.empty() || bytes + puts_.front()->blob.size() <= options_.max_batch_bytes)) {
          bytes += puts_.front()->blob.size();
          puts.push_back(std::move(puts_.front()));
          puts_.pop_front();
        }
        ++put_batches_;
      } else {
        while (!gets_.empty() && gets.size() < options_.max_batch_blobs) {
          gets.push_back(std::move(gets_.front()));
          gets_.pop_front();
        }
        ++get_batches_;
      }
      ++batches_in_flight_;
    }
    if (!puts.empty()) SendPuts(std::move(puts));
    if (!gets.empty()) SendGets(std::move(gets));
  }
}

void BatchingPeerClient::FinishBatch(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_in_flight_ -= std::min(bytes, bytes_in_flight_);
    --batches_in_flight_;
  }
  room_cv_.notify_all();
}

void BatchingPeerClient::SendPuts(std::vector<std::unique_ptr<PendingPut>> batch) {
  std::vector<BlobPut> puts;
  puts.reserve(batch.size());
  size_t bytes = 0;
  for (const auto& put : batch) {
    puts.push_back(BlobPut{put->key, put->blob, put->options});
    bytes += put->blob.size();
  }
  absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> answers = inner_->PutBlobs(puts);
  if (answers.ok() && answers->size() != batch.size()) {
    answers = absl::InternalError(
        absl::StrCat("PutBlobs answered ", answers->size(), " of ", batch.size(), " blobs"));
  }
  // The batch leaves the window before its waiters learn the answers, so that a waiter that goes
  // on sees its bytes gone (and the copies of async puts are dropped first).
  for (const auto& put : batch) Bytes().swap(put->owned);
  FinishBatch(bytes);
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->answer.set_value(answers.ok() ? std::move((*answers)[i])
                                            : absl::StatusOr<ports::PutOutcome>(answers.status()));
  }
}

void BatchingPeerClient::SendGets(std::vector<std::unique_ptr<PendingGet>> batch) {
  std::vector<BlobKey> keys;
  keys.reserve(batch.size());
  for (const auto& get : batch) keys.push_back(get->key);
  std::vector<bool> answered(batch.size(), false);
  // Each waiter is answered as soon as its blob arrives.
  absl::Status status = inner_->GetBlobsStreamed(keys, [&](size_t i, absl::StatusOr<Bytes> answer) {
    if (i >= batch.size() || answered[i]) return;
    answered[i] = true;
    batch[i]->answer.set_value(std::move(answer));
  });
  if (status.ok()) status = absl::InternalError("GetBlobs ended without answering this key");
  FinishBatch(0);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!answered[i]) batch[i]->answer.set_value(status);
  }
}

std::vector<std::pair<size_t, size_t>> BatchingPeerClient::PutBatches(
    std::span<const BlobPut> puts) const {
  std::vector<std::pair<size_t, size_t>> batches;
  size_t begin = 0;
  while (begin < puts.size()) {
    size_t end = begin;
    size_t bytes = 0;
    while (end < puts.size() && end - begin < options_.max_batch_blobs &&
           (end == begin || bytes + puts[end].blob.size() <= options_.max_batch_bytes)) {
      bytes += puts[end].blob.size();
      ++end;
    }
    batches.emplace_back(begin, end);
    begin = end;
  }
  return batches;
}

absl::StatusOr<std::vector<absl::StatusOr<ports::PutOutcome>>> BatchingPeerClient::PutBlobs(
    std::span<const BlobPut> puts) {
  std::vector<absl::StatusOr<ports::PutOutcome>> out;
  out.reserve(puts.size());
  for (const auto& [begin, end] : PutBatches(puts)) {
    std::span<const BlobPut> batch = puts.subspan(begin, end - begin);
    size_t bytes = 0;
    for (const BlobPut& put : batch) bytes += put.blob.size();
    CAIRN_RETURN_IF_ERROR(Admit(bytes));
    auto answers = inner_->PutBlobs(batch);
    Release(bytes);
    if (!answers.ok()) return answers.status();
    if (answers->size() != batch.size()) {
      return absl::InternalError(
          absl::StrCat("PutBlobs answered ", answers->size(), " of ", batch.size(), " blobs"));
    }
    for (auto& answer : *answers) out.push_back(std::move(answer));
  }
  return out;
}

absl::StatusOr<std::vector<absl::StatusOr<Bytes>>> BatchingPeerClient::GetBlobs(
    std::span<const BlobKey> keys) {
  std::vector<absl::StatusOr<Bytes>> out;
  out.reserve(keys.size());
  CAIRN_RETURN_IF_ERROR(GetBlobsStreamed(
      keys, [&](size_t, absl::StatusOr<Bytes> answer) { out.push_back(std::move(answer)); }));
  return out;
}

absl::Status BatchingPeerClient::GetBlobsStreamed(std::span<const BlobKey> keys,
                                                  const BlobSink& on_blob) {
  for (size_t begin = 0; begin < keys.size(); begin += options_.max_batch_blobs) {
    const size_t count = std::min(options_.max_batch_blobs, keys.size() - begin);
    CAIRN_RETURN_IF_ERROR(inner_->GetBlobsStreamed(
        keys.subspan(begin, count),
        [&](size_t i, absl::StatusOr<Bytes> answer) { on_blob(begin + i, std::move(answer)); }));
  }
  return absl::OkStatus();
}

absl::StatusOr<PingReply> BatchingPeerClient::Ping(const cluster::PeerInfo& self,
                                                   const std::vector<cluster::PeerInfo>& known) {
  return inner_->Ping(self, known);
}

absl::StatusOr<std::vector<bool>> BatchingPeerClient::HasBlobs(std::span<const BlobKey> keys) {
  return inner_->HasBlobs(keys);
}

absl::StatusOr<uint64_t> BatchingPeerClient::DeleteBlobs(std::span<const BlobKey> keys) {
  return inner_->DeleteBlobs(keys);
}

absl::StatusOr<BlobListPage> BatchingPeerClient::ListBlobs(PeerId owner,
                                                           const std::optional<BlobKey>& after,
                                                           size_t limit) {
  return inner_->ListBlobs(owner, after, limit);
}

absl::Status BatchingPeerClient::BlobMoved(std::span<const MovedBlob> moves) {
  return inner_->BlobMoved(moves);
}

BatchingCounters BatchingPeerClient::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  BatchingCounters counters;
  counters.queued_puts = puts_.size();
  counters.queued_gets = gets_.size();
  counters.batches_in_flight = batches_in_flight_;
  counters.bytes_in_flight = bytes_in_flight_;
  counters.peak_bytes_in_flight = peak_bytes_in_flight_;
  counters.put_batches = put_batches_;
  counters.get_batches = get_batches_;
  return counters;
}

}  // namespace cairn::net
