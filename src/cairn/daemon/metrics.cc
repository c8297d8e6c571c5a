#include "cairn/daemon/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "cairn/api/json_paths.h"

namespace cairn::daemon {
namespace {

// Seconds; from a local Ping (~1 ms) to a batch of blobs over a slow link.
const prometheus::Histogram::BucketBoundaries& RpcBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return *b;
}

// Seconds; a backup takes from under a second (nothing changed) to hours.
const prometheus::Histogram::BucketBoundaries& BackupBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600};
  return *b;
}

// "/cairn.v1.Peer/Ping" -> "Ping".
std::string MethodLabel(std::string_view method) {
  size_t slash = method.rfind('/');
  return std::string(slash == std::string_view::npos ? method : method.substr(slash + 1));
}

// Keeps one gauge per label value of `family`: adds the values in `want`, sets them, removes
// the gauges whose value is no longer there (a forgotten source path).
template <typename Values>
void SetLabelled(prometheus::Family<prometheus::Gauge>* family, const std::string& label,
                 const Values& want, std::map<std::string, prometheus::Gauge*>* have) {
  std::set<std::string> seen;
  for (const auto& [value, number] : want) {
    seen.insert(value);
    auto it = have->find(value);
    if (it == have->end()) it = have->emplace(value, &family->Add({{label, value}})).first;
    it->second->Set(number);
  }
  for (auto it = have->begin(); it != have->end();) {
    if (seen.count(it->first) == 0) {
      family->Remove(it->second);
      it = have->erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

Metrics::Metrics(const std::string& version, const std::string& git_commit)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  prometheus::BuildGauge()
      .Name("cairn_build_info")
      .Help("Always 1; labelled with the cairn version and git commit of this peer's binary")
      .Register(r)
      .Add({{"version", version}, {"git_commit", git_commit.empty() ? "unknown" : git_commit}})
      .Set(1);

  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("cairn_rpc_requests_total")
                       .Help("Calls served by this peer's peer service, by method and gRPC code")
                       .Register(r);
  rpc_duration_ = &prometheus::BuildHistogram()
                       .Name("cairn_rpc_duration_seconds")
                       .Help("Time from a call's arrival at this peer's peer service to its answer")
                       .Register(r);

  peer_up_ = &prometheus::BuildGauge()
                  .Name("cairn_peer_up")
                  .Help(
                      "1 when the peer is alive as this peer's membership sees it (this peer: "
                      "always 1), 0 when it is suspect or dead")
                  .Register(r);
  peer_state_ = &prometheus::BuildGauge()
                     .Name("cairn_peer_state")
                     .Help("1 for the peer's current membership state (alive, suspect, dead)")
                     .Register(r);
  last_backup_ = &prometheus::BuildGauge()
                      .Name("cairn_backup_last_success_timestamp_seconds")
                      .Help("Start time of the newest snapshot holding the source path")
                      .Register(r);
  chunks_ = &prometheus::BuildGauge()
                 .Name("cairn_chunks")
                 .Help(
                     "This peer's own chunks in its catalog, at or below their target "
                     "redundancy")
                 .Register(r);
  store_used_ = &prometheus::BuildGauge()
                     .Name("cairn_store_used_bytes")
                     .Help("Bytes of blobs this peer holds for the cluster")
                     .Register(r)
                     .Add({});
  store_quota_ = &prometheus::BuildGauge()
                      .Name("cairn_store_quota_bytes")
                      .Help("Bytes this peer lends to the cluster (its quota)")
                      .Register(r)
                      .Add({});
  store_blobs_ = &prometheus::BuildGauge()
                      .Name("cairn_store_blobs")
                      .Help("Blobs this peer holds for the cluster")
                      .Register(r)
                      .Add({});
  snapshots_ = &prometheus::BuildGauge()
                    .Name("cairn_snapshots")
                    .Help("Snapshots in this peer's catalog")
                    .Register(r)
                    .Add({});
  scrub_quarantined_ = &prometheus::BuildGauge()
                            .Name("cairn_scrub_quarantined_blobs")
                            .Help("Blobs the scrubber found corrupt and set aside")
                            .Register(r)
                            .Add({});

  auto& backups = prometheus::BuildCounter()
                      .Name("cairn_backups_total")
                      .Help("Backup jobs that ended, by result")
                      .Register(r);
  backups_ok_ = &backups.Add({{"result", "success"}});
  backups_failed_ = &backups.Add({{"result", "failure"}});
  backup_bytes_ = &prometheus::BuildCounter()
                       .Name("cairn_backup_bytes_total")
                       .Help("File bytes in the snapshots that backups saved")
                       .Register(r)
                       .Add({});
  backup_sent_bytes_ = &prometheus::BuildCounter()
                            .Name("cairn_backup_sent_bytes_total")
                            .Help("Blob bytes backups sent to peers (new data, all copies)")
                            .Register(r)
                            .Add({});
  backup_duration_ = &prometheus::BuildHistogram()
                          .Name("cairn_backup_duration_seconds")
                          .Help("Wall time of successful backups")
                          .Register(r)
                          .Add({}, BackupBuckets());

  auto counter = [&r](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
  };
  scrub_blobs_ = counter("cairn_scrub_blobs_total", "Blobs the scrubber re-hashed");
  scrub_bytes_ = counter("cairn_scrub_bytes_total", "Bytes of the blobs the scrubber re-hashed");
  scrub_corrupt_ =
      counter("cairn_scrub_corrupt_blobs_total", "Blobs the scrubber found corrupt (quarantined)");
  scrub_missing_ =
      counter("cairn_scrub_missing_blobs_total", "Blobs the scrubber found registered but missing");
  scrub_errors_ =
      counter("cairn_scrub_errors_total", "Blobs the scrubber could not check (I/O errors)");
  scrub_passes_ = counter("cairn_scrub_passes_total", "Scrub passes finished");
  auto& repairs = prometheus::BuildCounter()
                      .Name("cairn_repairs_total")
                      .Help("Repair jobs that ended, by result")
                      .Register(r);
  repairs_ok_ = &repairs.Add({{"result", "success"}});
  repairs_failed_ = &repairs.Add({{"result", "failure"}});
  repair_chunks_ =
      counter("cairn_repair_chunks_total", "Chunks repairs brought back towards their target");
  repair_blobs_ = counter("cairn_repair_blobs_written_total", "Blobs repairs wrote to peers");
  repair_bytes_ = counter("cairn_repair_sent_bytes_total", "Blob bytes repairs sent to peers");
  gc_runs_ = counter("cairn_gc_runs_total", "Garbage collections run");
  gc_chunks_ = counter("cairn_gc_chunks_total",
                       "Chunks garbage collection dropped (no snapshot referenced them)");
  gc_bytes_ = counter("cairn_gc_bytes_total",
                      "Blob bytes of the chunks garbage collection dropped (all their blobs)");
  gc_deletions_ =
      counter("cairn_gc_deletions_total", "Blob deletions garbage collection queued for peers");
}

Metrics::~Metrics() = default;

void Metrics::RecordRpc(std::string_view method, int grpc_code, double seconds) {
  prometheus::Histogram* histogram;
  prometheus::Counter* counter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto h = rpc_histograms_.find(method);
    if (h == rpc_histograms_.end()) {
      h = rpc_histograms_
              .emplace(std::string(method),
                       &rpc_duration_->Add({{"method", MethodLabel(method)}}, RpcBuckets()))
              .first;
    }
    histogram = h->second;
    auto key = std::make_pair(std::string(method), grpc_code);
    auto c = rpc_counters_.find(key);
    if (c == rpc_counters_.end()) {
      std::string code = absl::StatusCodeToString(static_cast<absl::StatusCode>(grpc_code));
      if (code.empty()) code = std::to_string(grpc_code);
      c = rpc_counters_
              .emplace(key, &rpc_requests_->Add({{"method", MethodLabel(method)}, {"code", code}}))
              .first;
    }
    counter = c->second;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

void Metrics::RecordBackup(bool ok, uint64_t bytes, uint64_t sent_bytes, double seconds) {
  if (!ok) {
    backups_failed_->Increment();
    return;
  }
  backups_ok_->Increment();
  backup_bytes_->Increment(static_cast<double>(bytes));
  backup_sent_bytes_->Increment(static_cast<double>(sent_bytes));
  backup_duration_->Observe(seconds);
}

void Metrics::RecordScrub(const store::ScrubCounts& d) {
  scrub_blobs_->Increment(static_cast<double>(d.checked));
  scrub_bytes_->Increment(static_cast<double>(d.bytes));
  scrub_corrupt_->Increment(static_cast<double>(d.corrupt));
  scrub_missing_->Increment(static_cast<double>(d.missing));
  scrub_errors_->Increment(static_cast<double>(d.errors));
}

void Metrics::RecordScrubPassDone() { scrub_passes_->Increment(); }

void Metrics::RecordRepair(bool ok, uint64_t chunks_repaired, uint64_t blobs_written,
                           uint64_t bytes_sent) {
  (ok ? repairs_ok_ : repairs_failed_)->Increment();
  repair_chunks_->Increment(static_cast<double>(chunks_repaired));
  repair_blobs_->Increment(static_cast<double>(blobs_written));
  repair_bytes_->Increment(static_cast<double>(bytes_sent));
}

void Metrics::RecordGc(uint64_t unreferenced_chunks, uint64_t unreferenced_bytes,
                       uint64_t deletions_queued) {
  gc_runs_->Increment();
  gc_chunks_->Increment(static_cast<double>(unreferenced_chunks));
  gc_bytes_->Increment(static_cast<double>(unreferenced_bytes));
  gc_deletions_->Increment(static_cast<double>(deletions_queued));
}

void Metrics::RenderS3(const store::s3::S3Counters& now) {
  namespace s3 = store::s3;
  if (s3_ == nullptr) {
    prometheus::Registry& r = *registry_;
    s3_ = std::make_unique<S3Series>();
    auto& requests = prometheus::BuildCounter()
                         .Name("cairn_s3_requests_total")
                         .Help(
                             "HTTP requests this peer sent to its bucket, by operation (each "
                             "attempt of a retried request counts)")
                         .Register(r);
    for (int i = 0; i < s3::kRequestKinds; ++i) {
      s3_->requests[i] =
          &requests.Add({{"op", s3::RequestKindName(static_cast<s3::RequestKind>(i))}});
    }
    auto& errors = prometheus::BuildCounter()
                       .Name("cairn_s3_errors_total")
                       .Help(
                           "Bucket requests that failed, one per failed attempt, by class "
                           "(throttled, server, timeout, transport, client, bad_answer)")
                       .Register(r);
    for (int i = 0; i < s3::kErrorClasses; ++i) {
      s3_->errors[i] = &errors.Add({{"class", s3::ErrorClassName(static_cast<s3::ErrorClass>(i))}});
    }
    auto counter = [&r](const char* name, const char* help) {
      return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
    };
    s3_->retries = counter("cairn_s3_retries_total", "Bucket requests that were a retry");
    s3_->failures = counter("cairn_s3_failures_total",
                            "Bucket requests that still failed after their last attempt");
    s3_->sent_bytes = counter("cairn_s3_sent_bytes_total",
                              "Request body bytes sent to the bucket, retries included");
    s3_->received_bytes =
        counter("cairn_s3_received_bytes_total", "Response body bytes received from the bucket");
  }
  // The store's counters only grow; a smaller value (never expected) adds nothing.
  auto carry = [](prometheus::Counter* c, uint64_t now, uint64_t* last) {
    if (now > *last) c->Increment(static_cast<double>(now - *last));
    *last = std::max(now, *last);
  };
  S3Series& m = *s3_;
  for (int i = 0; i < s3::kRequestKinds; ++i) {
    carry(m.requests[i], now.requests[i], &m.last.requests[i]);
  }
  for (int i = 0; i < s3::kErrorClasses; ++i) carry(m.errors[i], now.errors[i], &m.last.errors[i]);
  carry(m.retries, now.retries, &m.last.retries);
  carry(m.failures, now.failures, &m.last.failures);
  carry(m.sent_bytes, now.bytes_sent, &m.last.bytes_sent);
  carry(m.received_bytes, now.bytes_received, &m.last.bytes_received);
}

std::string Metrics::Render(const MetricsState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, double> up;
  for (const MetricsState::Peer& p : s.peers) up[std::to_string(p.id)] = p.state == "alive";
  SetLabelled(peer_up_, "peer", up, &peer_up_gauges_);
  // cairn_peer_state{peer,state}: one series per peer and state, 1 for the current one.
  static const char* const kStates[] = {"alive", "suspect", "dead"};
  for (const MetricsState::Peer& p : s.peers) {
    for (const char* state : kStates) {
      peer_state_->Add({{"peer", std::to_string(p.id)}, {"state", state}}).Set(p.state == state);
    }
  }
  std::map<std::string, double> sources;
  for (const auto& [path, seconds] : s.last_backup_seconds)
    sources[api::SanitizeUtf8(path)] = seconds;
  SetLabelled(last_backup_, "source", sources, &source_gauges_);
  std::map<std::string, double> chunks;
  if (s.have_chunks) {
    chunks["at_target"] = static_cast<double>(s.chunks_at_target);
    chunks["below_target"] = static_cast<double>(s.chunks_below_target);
  }
  SetLabelled(chunks_, "state", chunks, &chunk_gauges_);
  store_used_->Set(static_cast<double>(s.store_used_bytes));
  store_quota_->Set(static_cast<double>(s.store_quota_bytes));
  store_blobs_->Set(static_cast<double>(s.store_blobs));
  snapshots_->Set(static_cast<double>(s.snapshots));
  scrub_quarantined_->Set(static_cast<double>(s.scrub_quarantined_blobs));
  if (s.s3) RenderS3(*s.s3);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace cairn::daemon
