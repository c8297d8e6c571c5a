#include "cairn/store/s3/s3_object_store.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"

namespace cairn::store::s3 {
namespace {

constexpr uint64_t kMinPartSize = 5ull << 20;  // S3's minimum for every part but the last
constexpr uint64_t kMaxParts = 10000;

// The part size for a multipart upload of `size` bytes: `configured`, raised so that the upload
// needs at most S3's 10000 parts.
uint64_t PartSize(uint64_t configured, uint64_t size) {
  return std::max(configured, (size + kMaxParts - 1) / kMaxParts);
}
constexpr size_t kMaxErrorBody = 1 << 20;  // an error or listing body larger than this is cut

std::string HexSha256(ByteSpan data) {
  auto digest = codec::Sha256(data);
  return ToHex(ByteSpan(digest.data(), digest.size()));
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// What the write and header callbacks fill in.
struct Sink {
  HttpResult* result = nullptr;
  size_t cap = 0;  // bytes of body kept at most
  bool overflow = false;
  bool range_past_end = false;  // a Content-Range whose first byte is not below its total
  std::string content_range;
};

bool ParseContentRange(std::string_view v, uint64_t* first, uint64_t* last, uint64_t* total);

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  size_t n = size * nmemb;
  if (sink->result->body.size() + n > sink->cap) {
    sink->overflow = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->result->body.append(ptr, n);
  return n;
}

size_t WriteHeader(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  const std::string line(ptr, size * nmemb);
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * nmemb;
  std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  absl::string_view value = absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1));
  if (name == "etag") {
    std::string v(value);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    sink->result->etag = v;
  } else if (name == "content-range") {
    sink->content_range = std::string(value);
    uint64_t first = 0, last = 0, total = 0;
    if (ParseContentRange(sink->content_range, &first, &last, &total) && first >= total) {
      // "bytes 0-0/0": a range of an empty object. S3 answers 416 instead; some emulators
      // (s3rver) announce a body they never send, which would stall the transfer.
      sink->range_past_end = true;
      return 0;
    }
  }
  return size * nmemb;
}

// Parses "bytes FIRST-LAST/TOTAL" (RFC 9110 §14.4). `total` is set to UINT64_MAX for "*"
// (length unknown).
bool ParseContentRange(std::string_view v, uint64_t* first, uint64_t* last, uint64_t* total) {
  if (!v.starts_with("bytes ")) return false;
  v.remove_prefix(6);
  size_t dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return false;
  }
  auto num = [](std::string_view s, uint64_t* out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  std::string_view t = v.substr(slash + 1);
  if (t == "*") {
    *total = UINT64_MAX;
  } else if (!num(t, total)) {
    return false;
  }
  return num(v.substr(0, dash), first) && num(v.substr(dash + 1, slash - dash - 1), last) &&
         *last >= *first;
}

}  // namespace

struct S3ObjectStore::Request {
  RequestKind kind;
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::string what;  // "get s3://bucket/key", for messages
  std::vector<std::string> headers;
  ByteSpan body;
  size_t body_cap = kMaxErrorBody;
  // The statuses that mean success; anything else is an error.
  std::vector<long> ok_status;
};

absl::StatusOr<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Create(S3Options options) {
  if (options.part_size < kMinPartSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 part size ", options.part_size, " is below S3's minimum of 5 MiB"));
  }
  if (options.max_parallel_requests < 1 || options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("S3 parallel requests and attempts must be at least 1");
  }
  if (options.credentials.access_key_id.empty() || options.credentials.secret_access_key.empty()) {
    return absl::InvalidArgumentError("S3 credentials are empty");
  }
  if (options.multipart_threshold < options.part_size) {
    options.multipart_threshold = options.part_size;
  }
  GlobalInit();
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(options)));
}

S3ObjectStore::S3ObjectStore(S3Options options)
    : options_(std::move(options)),
      builder_(options_.location),
      slots_free_(options_.max_parallel_requests) {
  if (options_.sleeper == nullptr) {
    own_sleeper_ = std::make_unique<env::InterruptibleSleeper>();
    sleeper_ = own_sleeper_.get();
  } else {
    sleeper_ = options_.sleeper;
  }
  rng_.seed(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}());
}

S3ObjectStore::~S3ObjectStore() {
  for (void* h : handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void S3ObjectStore::AcquireSlot() {
  std::unique_lock lock(slots_mu_);
  slots_cv_.wait(lock, [&] { return slots_free_ > 0; });
  --slots_free_;
}

void S3ObjectStore::ReleaseSlot() {
  {
    std::lock_guard lock(slots_mu_);
    ++slots_free_;
  }
  slots_cv_.notify_one();
}

void* S3ObjectStore::TakeHandle() {
  {
    std::lock_guard lock(handles_mu_);
    if (!handles_.empty()) {
      void* h = handles_.back();
      handles_.pop_back();
      curl_easy_reset(static_cast<CURL*>(h));
      return h;
    }
  }
  return curl_easy_init();
}

void S3ObjectStore::ReturnHandle(void* handle) {
  std::lock_guard lock(handles_mu_);
  handles_.push_back(handle);
}

std::string S3ObjectStore::What(std::string_view verb, std::string_view key) const {
  return absl::StrCat(std::string(verb), " s3://", builder_.location().bucket, "/",
                      builder_.FullKey(key));
}

HttpResult S3ObjectStore::Attempt(const Request& req) {
  HttpResult result;
  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (curl == nullptr) {
    result.transport_error = CURLE_FAILED_INIT;
    result.transport_message = "curl_easy_init failed";
    return result;
  }
  if (!req.body.empty() && options_.upload_limiter != nullptr) {
    options_.upload_limiter->Acquire(req.body.size(), sleeper_);
  }
  AcquireSlot();
  requests_[static_cast<int>(req.kind)]++;

  const Credentials& cred = options_.credentials;
  std::string sigv4 = absl::StrCat("aws:amz:", builder_.location().region, ":s3");
  curl_slist* headers = nullptr;
  std::vector<std::string> lines = req.headers;
  lines.push_back(absl::StrCat("x-amz-content-sha256: ", HexSha256(req.body)));
  if (!cred.session_token.empty()) {
    lines.push_back(absl::StrCat("x-amz-security-token: ", cred.session_token));
  }
  // No "Expect:" line to suppress 100-continue: libcurl's SigV4 would sign an "expect" header
  // that is never sent, and S3 would reject the signature.
  if (req.method == "PUT" || req.method == "POST") {
    lines.push_back("Content-Type: application/octet-stream");
  }
  for (const auto& l : lines) headers = curl_slist_append(headers, l.c_str());

  char errbuf[CURL_ERROR_SIZE] = {0};
  Sink sink;
  sink.result = &result;
  sink.cap = req.body_cap;
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(curl, CURLOPT_USERNAME, cred.access_key_id.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, cred.secret_access_key.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>(options_.stall_timeout.count() / 1000)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
  static const char kEmpty[] = "";
  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "DELETE") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {  // PUT, POST: the body from memory, so that libcurl's SigV4 hashes the same bytes
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
                     req.body.empty() ? kEmpty : reinterpret_cast<const char*>(req.body.data()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  ReleaseSlot();
  curl_slist_free_all(headers);
  // What moved, also for an attempt that failed half-way (the bytes were sent and billed).
  curl_off_t sent = 0, received = 0;
  if (curl_easy_getinfo(curl, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0) {
    bytes_sent_ += static_cast<uint64_t>(sent);
  }
  if (curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &received) == CURLE_OK && received > 0) {
    bytes_received_ += static_cast<uint64_t>(received);
  }
  if (rc != CURLE_OK) {
    result.transport_error = rc;
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.transport_message = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (sink.range_past_end) {
      result.transport_error = 0;
      result.transport_message.clear();
      result.http_status = 416;
    } else if (sink.overflow) {
      result.transport_error = 0;
      result.oversized = true;
    }
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.http_status);
    curl_off_t length = 0;
    if (curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length > 0) {
      result.content_length = static_cast<uint64_t>(length);
    }
  }
  result.content_range = std::move(sink.content_range);
  ReturnHandle(curl);
  return result;
}

absl::StatusOr<HttpResult> S3ObjectStore::Run(const Request& req) {
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1) retries_++;
    HttpResult r = Attempt(req);
    if (r.oversized) {
      errors_[static_cast<int>(ErrorClass::kBadAnswer)]++;
      failures_++;
      return absl::DataLossError(
          absl::StrCat(req.what, ": answer larger than the ", req.body_cap, " bytes expected"));
    }
    std::optional<S3ErrorBody> error;
    if (r.transport_error == 0) {
      bool ok = std::find(req.ok_status.begin(), req.ok_status.end(), r.http_status) !=
                req.ok_status.end();
      if (!ok || req.kind == RequestKind::kCompleteMultipart) {
        // CompleteMultipartUpload may answer 200 and then an <Error> (S3 API Reference).
        auto parsed = ParseError(r.body);
        if (parsed.ok()) error = *std::move(parsed);
      }
      if (ok && !error) return r;
    }
    const S3ErrorBody* e = error ? &*error : nullptr;
    errors_[static_cast<int>(ClassifyError(r, e))]++;
    if (attempt < options_.retry.max_attempts && IsRetryable(r, e)) {
      double u;
      {
        std::lock_guard lock(rng_mu_);
        u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      }
      if (!sleeper_->SleepFor(BackoffDelay(options_.retry, attempt, u))) {
        failures_++;
        return absl::CancelledError(absl::StrCat(req.what, ": interrupted while backing off"));
      }
      continue;
    }
    failures_++;
    if (r.transport_error == 0 && !e && r.http_status >= 200 && r.http_status < 300) {
      return absl::DataLossError(
          absl::StrCat(req.what, ": unexpected answer HTTP ", r.http_status));
    }
    return StatusFor(r, e, builder_.location(), req.what, attempt, options_.credentials.source);
  }
}

absl::Status S3ObjectStore::Put(std::string_view key, ByteSpan data) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  if (data.size() > options_.multipart_threshold) {
    return Multipart(key, data.size(), [&](uint64_t index, Bytes* out) {
      uint64_t part = PartSize(options_.part_size, data.size());
      uint64_t begin = std::min<uint64_t>(data.size(), index * part);
      auto s = data.subspan(begin, std::min<uint64_t>(part, data.size() - begin));
      out->assign(s.begin(), s.end());
      return absl::OkStatus();
    });
  }
  Request req;
  req.kind = RequestKind::kPut;
  req.method = "PUT";
  req.url = builder_.ObjectUrl(key);
  req.what = What("put", key);
  req.body = data;
  req.ok_status = {200};
  return Run(req).status();
}

absl::Status S3ObjectStore::PutFile(std::string_view key, env::FileSystem* fs,
                                    const std::string& path) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  auto opened = fs->Open(path, env::OpenMode::kRead);
  if (!opened.ok()) return Annotate(opened.status(), absl::StrCat("upload ", path));
  std::unique_ptr<env::File> file = *std::move(opened);
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  // One part per request of a multipart upload, else the whole file in one put.
  const bool multipart = size > options_.multipart_threshold;
  const uint64_t part = multipart ? PartSize(options_.part_size, size) : size;
  auto read = [&](uint64_t index, Bytes* out) -> absl::Status {
    uint64_t begin = std::min(size, index * part);
    out->resize(std::min(part, size - begin));
    uint64_t done = 0;
    while (done < out->size()) {
      auto n = file->ReadAt(begin + done, std::span<uint8_t>(*out).subspan(done));
      if (!n.ok()) return Annotate(n.status(), absl::StrCat("upload ", path));
      if (*n == 0) return absl::DataLossError(absl::StrCat("upload ", path, ": file shrank"));
      done += *n;
    }
    return absl::OkStatus();
  };
  if (multipart) return Multipart(key, size, read);
  Bytes data;
  CAIRN_RETURN_IF_ERROR(read(0, &data));
  Request req;
  req.kind = RequestKind::kPut;
  req.method = "PUT";
  req.url = builder_.ObjectUrl(key);
  req.what = What("put", key);
  req.body = data;
  req.ok_status = {200};
  return Run(req).status();
}

absl::Status S3ObjectStore::Multipart(std::string_view key, uint64_t size,
                                      const PartReader& read_part) {
  const uint64_t part = PartSize(options_.part_size, size);
  uint64_t parts = (size + part - 1) / part;

  Request init;
  init.kind = RequestKind::kInitiateMultipart;
  init.method = "POST";
  init.url = builder_.ObjectUrl(key, {{"uploads", ""}});
  init.what = What("start multipart upload of", key);
  init.ok_status = {200};
  CAIRN_ASSIGN_OR_RETURN(HttpResult started, Run(init));
  auto upload_id = ParseInitiateMultipartUpload(started.body);
  if (!upload_id.ok()) return Annotate(upload_id.status(), init.what);

  std::vector<CompletedPart> done(parts);
  std::atomic<uint64_t> next{0};
  std::mutex error_mu;
  absl::Status first_error;
  auto failed = [&] {
    std::lock_guard lock(error_mu);
    return !first_error.ok();
  };
  auto worker = [&] {
    Bytes buf;
    for (uint64_t i = next++; i < parts && !failed(); i = next++) {
      absl::Status s = read_part(i, &buf);
      if (s.ok()) {
        Request up;
        up.kind = RequestKind::kUploadPart;
        up.method = "PUT";
        up.url = builder_.ObjectUrl(
            key, {{"partNumber", std::to_string(i + 1)}, {"uploadId", *upload_id}});
        up.what = absl::StrCat(What("upload", key), " part ", i + 1, " of ", parts);
        up.body = buf;
        up.ok_status = {200};
        auto r = Run(up);
        if (r.ok() && r->etag.empty()) {
          r = absl::DataLossError(absl::StrCat(up.what, ": answer has no ETag"));
        }
        if (r.ok()) {
          done[i].number = static_cast<int>(i + 1);
          done[i].etag = absl::StrCat("\"", r->etag, "\"");
        }
        s = r.status();
      }
      if (!s.ok()) {
        std::lock_guard lock(error_mu);
        if (first_error.ok()) first_error = s;
      }
    }
  };
  int threads = static_cast<int>(
      std::min<uint64_t>(parts, static_cast<uint64_t>(options_.max_parallel_requests)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  absl::Status status = first_error;
  if (status.ok()) {
    std::string body = BuildCompleteMultipartUpload(done);
    Request complete;
    complete.kind = RequestKind::kCompleteMultipart;
    complete.method = "POST";
    complete.url = builder_.ObjectUrl(key, {{"uploadId", *upload_id}});
    complete.what = What("complete multipart upload of", key);
    complete.body = ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size());
    complete.ok_status = {200};
    auto r = Run(complete);
    if (r.ok()) {
      auto etag = ParseCompleteMultipartUpload(r->body);
      if (etag.ok()) return absl::OkStatus();
      status = Annotate(etag.status(), complete.what);
    } else {
      status = r.status();
    }
  }
  // Parts of an unfinished upload are billed until aborted; best effort.
  Request abort;
  abort.kind = RequestKind::kAbortMultipart;
  abort.method = "DELETE";
  abort.url = builder_.ObjectUrl(key, {{"uploadId", *upload_id}});
  abort.what = What("abort multipart upload of", key);
  abort.ok_status = {204, 200};
  (void)Run(abort);
  return status;
}

absl::StatusOr<Bytes> S3ObjectStore::GetRange(std::string_view key, uint64_t offset,
                                              uint64_t length) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  if (length == 0) return Bytes{};
  if (length > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ranged get of ", length, " bytes (at most 4 GiB)"));
  }
  Request req;
  req.kind = RequestKind::kGet;
  req.method = "GET";
  req.url = builder_.ObjectUrl(key);
  req.what = absl::StrCat(What("get", key), " bytes ", offset, "+", length);
  req.headers.push_back(RangeHeader(offset, length));
  req.body_cap = std::max<size_t>(length, kMaxErrorBody);
  req.ok_status = {206};
  CAIRN_ASSIGN_OR_RETURN(HttpResult r, Run(req));
  uint64_t first = 0, last = 0, total = 0;
  if (!ParseContentRange(r.content_range, &first, &last, &total) || first != offset ||
      last - first + 1 != r.body.size() || r.body.size() > length) {
    errors_[static_cast<int>(ErrorClass::kBadAnswer)]++;
    failures_++;
    return absl::DataLossError(absl::StrCat(req.what, ": answer holds ", r.body.size(),
                                            " bytes with Content-Range \"", r.content_range, "\""));
  }
  return Bytes(r.body.begin(), r.body.end());
}

absl::StatusOr<ObjectInfo> S3ObjectStore::Head(std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.kind = RequestKind::kHead;
  req.method = "HEAD";
  req.url = builder_.ObjectUrl(key);
  req.what = What("head", key);
  req.ok_status = {200};
  CAIRN_ASSIGN_OR_RETURN(HttpResult r, Run(req));
  ObjectInfo info;
  info.key = std::string(key);
  info.size = r.content_length;
  info.etag = r.etag;
  return info;
}

absl::Status S3ObjectStore::Delete(std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.kind = RequestKind::kDelete;
  req.method = "DELETE";
  req.url = builder_.ObjectUrl(key);
  req.what = What("delete", key);
  req.ok_status = {204, 200};
  return Run(req).status();
}

absl::StatusOr<ListPage> S3ObjectStore::List(std::string_view prefix, std::string_view token,
                                             int max_keys) {
  if (max_keys < 1 || max_keys > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("max_keys ", max_keys, " is not in 1..1000"));
  }
  Request req;
  req.kind = RequestKind::kList;
  req.method = "GET";
  req.url = builder_.ListUrl(prefix, token, max_keys);
  req.what = absl::StrCat("list s3://", builder_.location().bucket, "/", builder_.FullKey(prefix));
  req.body_cap = 64u << 20;
  req.ok_status = {200};
  CAIRN_ASSIGN_OR_RETURN(HttpResult r, Run(req));
  auto page = ParseListObjectsV2(r.body);
  if (!page.ok()) return Annotate(page.status(), req.what);
  const std::string& root = builder_.location().prefix;
  for (auto& o : page->objects) {
    if (!o.key.starts_with(root)) {
      return absl::DataLossError(
          absl::StrCat(req.what, ": listed key \"", o.key, "\" is outside the prefix"));
    }
    o.key.erase(0, root.size());
  }
  return page;
}

S3Counters S3ObjectStore::counters() const {
  S3Counters c;
  for (int i = 0; i < kRequestKinds; ++i) c.requests[i] = requests_[i].load();
  c.retries = retries_.load();
  for (int i = 0; i < kErrorClasses; ++i) c.errors[i] = errors_[i].load();
  c.failures = failures_.load();
  c.bytes_sent = bytes_sent_.load();
  c.bytes_received = bytes_received_.load();
  return c;
}

uint64_t S3Counters::total_requests() const {
  uint64_t n = 0;
  for (uint64_t r : requests) n += r;
  return n;
}

uint64_t S3Counters::total_errors() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

}  // namespace cairn::store::s3
