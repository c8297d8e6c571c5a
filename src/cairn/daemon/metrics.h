// A peer's Prometheus metrics (docs/operations.md "Monitoring"): kept in a prometheus-cpp
// registry and rendered in the Prometheus text exposition format (version 0.0.4) for
// GET /metrics. Names and units follow Prometheus conventions: `_bytes`, `_seconds`,
// `_timestamp_seconds`, and `_total` for counters.
//
// Counters and histograms are updated where things happen (Record*); gauges that describe the
// state now (peers, store, chunks, last backups) are set from a MetricsState just before each
// scrape (Render). Counters start at 0 when the peer starts. The bucket's cairn_s3_* counters
// are kept by the object store and carried over at each scrape (Render adds what they grew by).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/store/s3/s3_object_store.h"
#include "cairn/store/scrub.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace cairn::daemon {

// The state the gauges show, gathered by the daemon at scrape time.
struct MetricsState {
  struct Peer {
    uint64_t id = 0;
    std::string state;  // "alive", "suspect" or "dead" (cluster::PeerStateName)
  };
  std::vector<Peer> peers;  // every known peer, this one included (always "alive")
  uint64_t store_used_bytes = 0;
  uint64_t store_quota_bytes = 0;
  uint64_t store_blobs = 0;
  bool have_chunks = false;  // false: the catalog could not be read (no cairn_chunks)
  uint64_t chunks_at_target = 0;
  uint64_t chunks_below_target = 0;
  // Source path (raw bytes; shown as UTF-8 with invalid bytes replaced) -> start time (Unix
  // seconds) of the newest snapshot holding it.
  std::map<std::string, double> last_backup_seconds;
  uint64_t snapshots = 0;
  uint64_t scrub_quarantined_blobs = 0;
  // The bucket's request counters (docs/operations.md "Requests and costs"), totals since the
  // peer started; absent on a peer without a bucket, which then shows no cairn_s3_* series.
  std::optional<store::s3::S3Counters> s3;
};

class Metrics {
 public:
  // `version` and `git_commit` ("" when unknown) label cairn_build_info.
  Metrics(const std::string& version, const std::string& git_commit);
  ~Metrics();

  // One call served by the peer service: `method` as gRPC names it ("/cairn.v1.Peer/Ping";
  // the label is its last component), `grpc_code` its status code (0 = OK), `seconds` the time
  // from its arrival to its answer.
  void RecordRpc(std::string_view method, int grpc_code, double seconds);
  // A backup job that ended: `ok` (a snapshot was saved, degraded or not), the file bytes the
  // snapshot holds (SnapshotStats::bytes) and the blob bytes sent to peers.
  void RecordBackup(bool ok, uint64_t bytes, uint64_t sent_bytes, double seconds);
  // Blobs a scrub pass re-hashed since the last call (a delta of store::ScrubCounts).
  void RecordScrub(const store::ScrubCounts& delta);
  void RecordScrubPassDone();
  // A repair job that ended.
  void RecordRepair(bool ok, uint64_t chunks_repaired, uint64_t blobs_written, uint64_t bytes_sent);
  // A garbage collection that ran: chunks dropped from the catalog, blob deletions queued.
  void RecordGc(uint64_t unreferenced_chunks, uint64_t unreferenced_bytes,
                uint64_t deletions_queued);

  // Sets the gauges from `state` and returns every metric in the text format.
  std::string Render(const MetricsState& state);

 private:
  // The cairn_s3_* series, made at the first scrape that has bucket counters.
  struct S3Series {
    std::array<prometheus::Counter*, store::s3::kRequestKinds> requests{};
    std::array<prometheus::Counter*, store::s3::kErrorClasses> errors{};
    prometheus::Counter* retries = nullptr;
    prometheus::Counter* failures = nullptr;
    prometheus::Counter* sent_bytes = nullptr;
    prometheus::Counter* received_bytes = nullptr;
    store::s3::S3Counters last;  // what the counters stood at when last carried over
  };
  void RenderS3(const store::s3::S3Counters& now);  // with mu_ held

  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mu_;  // guards the caches below and Render
  prometheus::Family<prometheus::Counter>* rpc_requests_;
  prometheus::Family<prometheus::Histogram>* rpc_duration_;
  std::map<std::string, prometheus::Histogram*, std::less<>> rpc_histograms_;
  std::map<std::pair<std::string, int>, prometheus::Counter*> rpc_counters_;
  prometheus::Family<prometheus::Gauge>* peer_up_;
  prometheus::Family<prometheus::Gauge>* peer_state_;
  prometheus::Family<prometheus::Gauge>* last_backup_;
  prometheus::Family<prometheus::Gauge>* chunks_;
  // The labelled gauges Render keeps, by label value (peer id, source path, chunk state).
  std::map<std::string, prometheus::Gauge*> peer_up_gauges_;
  std::map<std::string, prometheus::Gauge*> source_gauges_;
  std::map<std::string, prometheus::Gauge*> chunk_gauges_;
  prometheus::Gauge* store_used_;
  prometheus::Gauge* store_quota_;
  prometheus::Gauge* store_blobs_;
  prometheus::Gauge* snapshots_;
  prometheus::Gauge* scrub_quarantined_;
  prometheus::Counter* backups_ok_;
  prometheus::Counter* backups_failed_;
  prometheus::Counter* backup_bytes_;
  prometheus::Counter* backup_sent_bytes_;
  prometheus::Histogram* backup_duration_;
  prometheus::Counter* scrub_blobs_;
  prometheus::Counter* scrub_bytes_;
  prometheus::Counter* scrub_corrupt_;
  prometheus::Counter* scrub_missing_;
  prometheus::Counter* scrub_errors_;
  prometheus::Counter* scrub_passes_;
  prometheus::Counter* repairs_ok_;
  prometheus::Counter* repairs_failed_;
  prometheus::Counter* repair_chunks_;
  prometheus::Counter* repair_blobs_;
  prometheus::Counter* repair_bytes_;
  prometheus::Counter* gc_runs_;
  prometheus::Counter* gc_chunks_;
  prometheus::Counter* gc_bytes_;
  prometheus::Counter* gc_deletions_;
  std::unique_ptr<S3Series> s3_;
};

}  // namespace cairn::daemon
