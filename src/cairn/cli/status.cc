// `cairn status`: this peer as a storage peer and as a home peer (GET /v1/status).
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

// One line on how the blobs are kept: segments with their live and dead bytes and compaction,
// or one file per blob.
std::string LayoutLine(const api::StorageStatus& st) {
  if (st.layout != "segments") return "layout:     one file per blob\n";
  std::string line = "segments:   " + std::to_string(st.segments.value_or(0)) + " segments, " +
                     FormatSize(st.live_bytes) + " live, " + FormatSize(st.dead_bytes) +
                     " dead (returned by compaction)";
  if (st.compacting) {
    const api::CompactionProgress& c = *st.compacting;
    line += "; compacting segment " + std::to_string(c.segment) + " (" + FormatSize(c.done_bytes) +
            " of " + FormatSize(c.total_bytes) + ")";
  }
  line += "; " + std::to_string(st.compactions.value_or(0)) + " compactions since start returned " +
          FormatSize(st.compaction_reclaimed_bytes.value_or(0));
  return line + "\n";
}

// The bucket line of a bucket peer (docs/operations.md "Requests and costs"): where, requests by
// kind, retries and errors by class, bytes each way.
std::string BucketLine(const api::BucketStatus& b) {
  std::string line = "bucket:     " + b.url;
  if (b.endpoint && !b.endpoint->empty()) line += " at " + *b.endpoint;
  if (!b.counted) return line + "\n";
  // Only the kinds and classes that happened, by name.
  auto nonzero = [](const std::vector<std::pair<std::string, uint64_t>>& counts) {
    std::string out;
    for (const auto& [name, n] : counts) {
      if (n == 0) continue;
      out += (out.empty() ? "" : ", ") + name + " " + std::to_string(n);
    }
    return out;
  };
  const std::string kinds = nonzero(b.requests);
  line += "\n            " + std::to_string(b.requests_total) + " requests since start" +
          (kinds.empty() ? "" : " (" + kinds + ")") + ", " + std::to_string(b.retries) +
          " retries, " + std::to_string(b.errors_total) + " errors";
  const std::string classes = nonzero(b.errors);
  if (!classes.empty()) line += " (" + classes + ")";
  if (b.failures > 0) line += ", " + std::to_string(b.failures) + " failed";
  line += "\n            " + FormatSize(b.bytes_sent) + " sent, " + FormatSize(b.bytes_received) +
          " received";
  return line + "\n";
}

// One line on the storage peer's scrub.
std::string ScrubLine(const api::ScrubStatus& scrub) {
  std::string line = "scrub:      ";
  if (!scrub.enabled) {
    line += "disabled";
  } else if (scrub.last_pass) {
    const api::ScrubPassInfo& last = *scrub.last_pass;
    line += "last pass " + FormatLocalTime(last.finished_ns.value_or(0)) + ": " +
            std::to_string(last.checked) + " blobs checked, " + std::to_string(last.corrupt) +
            " corrupt, " + std::to_string(last.missing) + " missing";
  } else {
    line += "no pass yet";
  }
  if (scrub.running && scrub.current_pass) {
    line += "; running (" + std::to_string(scrub.current_pass->checked) + " checked)";
  } else if (scrub.next_pass_ns) {
    line += "; next " + FormatLocalTime(*scrub.next_pass_ns);
  }
  line += "; " + std::to_string(scrub.quarantined) + " quarantined";
  if (scrub.quarantined > 0) line += " (" + FormatSize(scrub.quarantined_bytes) + ")";
  return line + "\n";
}

// The index line (docs/operations.md "When the index is damaged"): empty when the catalog is
// fine.
std::string IndexLine(const api::IndexStatus& index) {
  const std::string& state = index.state;
  if (state.empty() || state == "ok" || state == "checking") return "";
  std::string line = "index:      ";
  if (state == "rebuilding") {
    line += "being rebuilt from the peers (job " + index.job_id.value_or("") + ")";
  } else if (state == "rebuilt") {
    const api::IndexRebuildSummary r = index.rebuilt.value_or(api::IndexRebuildSummary{});
    line += "rebuilt from the peers since start: " + std::to_string(r.snapshots) +
            " snapshot(s), " + std::to_string(r.chunks) + " chunk(s)";
    if (index.rebuilt && !r.complete) line += ", incomplete";
  } else if (state == "failed") {
    line += "rebuilding from the peers failed: " + index.error.value_or("") +
            "; run `cairn index rebuild` to try again";
  } else {
    line += state;
  }
  if (index.problem && !index.problem->empty()) line += "\n            why: " + *index.problem;
  if (index.kept_aside && !index.kept_aside->empty()) {
    line += "\n            the damaged file is kept as " + *index.kept_aside;
  }
  return line + "\n";
}

int RunStatus(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> answer = (*api)->Get("/v1/status");
  if (!answer.ok()) return PrintError(answer.status());
  absl::StatusOr<api::PeerStatus> decoded = api::Decode<api::PeerStatus>(*answer);
  if (!decoded.ok()) return PrintError(decoded.status());
  const api::PeerStatus& s = *decoded;
  const uint64_t below = s.chunks_below_target;
  const uint64_t without_offsite = s.chunks_without_offsite.value_or(0);
  const std::string& index_state = s.index.state;
  if (global.json) {
    PrintJson(*answer);
  } else {
    std::cout << "peer " << s.peer_id << " on host " << s.host_id
              << (s.site.empty() ? std::string() : absl::StrCat(", site ", s.site)) << "\n"
              << "address:    " << s.address << " (api " << s.api << ")\n"
              << "\nas a storage peer\n"
              << "storage:    " << FormatSize(s.used) << " used of " << FormatSize(s.quota)
              << " quota, " << s.blobs << " blobs (" << s.extra_blobs << " extra copies, "
              << FormatSize(s.extra_bytes) << ")\n";
    if (s.disk_free) {
      const uint64_t free_in_quota = s.quota > s.used ? s.quota - s.used : 0;
      std::cout << "room:       " << FormatSize(s.room) << " for new blobs ("
                << FormatSize(*s.disk_free) << " free on disk, " << FormatSize(s.disk_reserve)
                << " kept in reserve)" << (s.room < free_in_quota ? ": the disk is the limit" : "")
                << "\n";
    }
    for (const api::OwnerUsageInfo& o : s.owners) {
      std::cout << "  owner " << o.owner << ": " << FormatSize(o.bytes) << " in " << o.blobs
                << " blobs";
      if (o.extra_blobs > 0) {
        std::cout << " (" << o.extra_blobs << " extra, " << FormatSize(o.extra_bytes) << ")";
      }
      std::cout << "\n";
    }
    std::cout << LayoutLine(s.storage);
    if (s.bucket) std::cout << BucketLine(*s.bucket);
    if (s.moved_notices_pending > 0) {
      std::cout << "moved:      " << s.moved_notices_pending
                << " BlobMoved notices waiting for their owners\n";
    }
    std::cout << ScrubLine(s.scrub);
    const api::HomeStatus home = s.home.value_or(api::HomeStatus{});
    char ratio[64];
    std::cout << "\nas a home peer\n"
              << IndexLine(s.index) << "snapshots:  " << s.snapshots << "\n"
              << "chunks:     " << s.chunks << " (" << s.chunks_at_target << " at target, " << below
              << " below target)\n";
    // docs/operations.md "Sites and off-site copies".
    if (without_offsite > 0) {
      std::cout << "off-site:   " << without_offsite
                << (without_offsite == 1 ? " chunk" : " chunks")
                << " without their off-site copy\n";
    }
    std::snprintf(ratio, sizeof ratio, "%.2fx", home.dedup_ratio);
    std::cout << "data:       " << FormatSize(home.logical_bytes) << " in snapshots, "
              << FormatSize(home.unique_bytes) << " after deduplication (" << ratio << ")\n";
    std::snprintf(ratio, sizeof ratio, "%.2fx", home.redundancy_overhead);
    std::cout << "stored:     " << FormatSize(home.stored_bytes) << " on peers (" << ratio
              << " one compressed copy of " << FormatSize(home.one_copy_bytes) << "), plus "
              << home.extra_blobs << " extra copies (" << FormatSize(home.extra_bytes) << ")\n";
    if (home.pending_deletions > 0) {
      std::cout << "deletions:  " << home.pending_deletions
                << " blob deletions queued for offline peers\n";
    }
    std::cout << std::flush;
  }
  if (index_state == "rebuilding" || index_state == "failed") {
    std::cerr << "degraded: this peer's index "
              << (index_state == "rebuilding" ? "is being rebuilt from the peers"
                                              : "could not be rebuilt from the peers")
              << " (" << s.index.problem.value_or("") << ")" << std::endl;
    return kExitDegraded;
  }
  if (below > 0) {
    std::cerr << "degraded: " << below << (below == 1 ? " chunk" : " chunks") << " below target"
              << std::endl;
    return kExitDegraded;
  }
  // A chunk short of its off-site copies is below target for `check` too (docs/operations.md
  // "Sites and off-site copies"), whatever the copy count the catalog last recorded for it.
  if (without_offsite > 0) {
    std::cerr << "degraded: " << without_offsite << (without_offsite == 1 ? " chunk" : " chunks")
              << " without their off-site copy" << std::endl;
    return kExitDegraded;
  }
  return kExitOk;
}

}  // namespace

Action RegisterStatus(CLI::App& app, GlobalOptions& global) {
  app.add_subcommand("status", "Show this peer's storage and backup health");
  return [&global] { return RunStatus(global); };
}

}  // namespace cairn::cli
