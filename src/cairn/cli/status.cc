// `cairn status`: this peer as a storage peer and as a home peer (GET /v1/status).
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

// One line on how the blobs are kept (daemon "storage" object): segments with their live and
// dead bytes and compaction, or one file per blob. Empty when the daemon sent none.
std::string LayoutLine(const nlohmann::json& st) {
  if (!st.is_object()) return "";
  if (Str(st, "layout") != "segments") return "layout:     one file per blob\n";
  std::string line = "segments:   " + std::to_string(U64(st, "segments")) + " segments, " +
                     FormatSize(U64(st, "live_bytes")) + " live, " +
                     FormatSize(U64(st, "dead_bytes")) + " dead (returned by compaction)";
  if (st.contains("compacting") && st["compacting"].is_object()) {
    const nlohmann::json& c = st["compacting"];
    line += "; compacting segment " + std::to_string(U64(c, "segment")) + " (" +
            FormatSize(U64(c, "done_bytes")) + " of " + FormatSize(U64(c, "total_bytes")) + ")";
  }
  line += "; " + std::to_string(U64(st, "compactions")) + " compactions since start returned " +
          FormatSize(U64(st, "compaction_reclaimed_bytes"));
  return line + "\n";
}

// The bucket line of a bucket peer (daemon "bucket" object, docs/operations.md "Requests and
// costs"): where, requests by kind, retries and errors by class, bytes each way. Empty without
// a bucket.
std::string BucketLine(const nlohmann::json& b) {
  if (!b.is_object()) return "";
  std::string line = "bucket:     " + Str(b, "url");
  if (!Str(b, "endpoint").empty()) line += " at " + Str(b, "endpoint");
  if (!b.contains("requests")) return line + "\n";
  // Only the kinds and classes that happened, by name.
  auto nonzero = [](const nlohmann::json& counts) {
    std::string out;
    if (!counts.is_object()) return out;
    for (const auto& [name, n] : counts.items()) {
      if (!n.is_number_unsigned() || n.get<uint64_t>() == 0) continue;
      out += (out.empty() ? "" : ", ") + name + " " + std::to_string(n.get<uint64_t>());
    }
    return out;
  };
  const std::string kinds = nonzero(b["requests"]);
  line += "\n            " + std::to_string(U64(b, "requests_total")) + " requests since start" +
          (kinds.empty() ? "" : " (" + kinds + ")") + ", " + std::to_string(U64(b, "retries")) +
          " retries, " + std::to_string(U64(b, "errors_total")) + " errors";
  const std::string classes = b.contains("errors") ? nonzero(b["errors"]) : "";
  if (!classes.empty()) line += " (" + classes + ")";
  if (U64(b, "failures") > 0) line += ", " + std::to_string(U64(b, "failures")) + " failed";
  line += "\n            " + FormatSize(U64(b, "bytes_sent")) + " sent, " +
          FormatSize(U64(b, "bytes_received")) + " received";
  return line + "\n";
}

// One line on the storage peer's scrub (daemon "scrub" object); empty when the daemon sent none.
std::string ScrubLine(const nlohmann::json& scrub) {
  if (!scrub.is_object()) return "";
  std::string line = "scrub:      ";
  const nlohmann::json& last = scrub.contains("last_pass") ? scrub["last_pass"] : nlohmann::json();
  if (!Bool(scrub, "enabled")) {
    line += "disabled";
  } else if (last.is_object()) {
    line += "last pass " + FormatLocalTime(I64(last, "finished_ns")) + ": " +
            std::to_string(U64(last, "checked")) + " blobs checked, " +
            std::to_string(U64(last, "corrupt")) + " corrupt, " +
            std::to_string(U64(last, "missing")) + " missing";
  } else {
    line += "no pass yet";
  }
  const nlohmann::json& current =
      scrub.contains("current_pass") ? scrub["current_pass"] : nlohmann::json();
  if (Bool(scrub, "running") && current.is_object()) {
    line += "; running (" + std::to_string(U64(current, "checked")) + " checked)";
  } else if (scrub.contains("next_pass_ns") && scrub["next_pass_ns"].is_number()) {
    line += "; next " + FormatLocalTime(I64(scrub, "next_pass_ns"));
  }
  line += "; " + std::to_string(U64(scrub, "quarantined")) + " quarantined";
  if (U64(scrub, "quarantined") > 0) {
    line += " (" + FormatSize(U64(scrub, "quarantined_bytes")) + ")";
  }
  return line + "\n";
}

// The index line (daemon "index" object, docs/operations.md "When the index is damaged"): empty
// when the catalog is fine.
std::string IndexLine(const nlohmann::json& index) {
  if (!index.is_object()) return "";
  const std::string state = Str(index, "state");
  if (state.empty() || state == "ok" || state == "checking") return "";
  std::string line = "index:      ";
  if (state == "rebuilding") {
    line += "being rebuilt from the peers (job " + Str(index, "job_id") + ")";
  } else if (state == "rebuilt") {
    const nlohmann::json& r = index.contains("rebuilt") ? index["rebuilt"] : nlohmann::json();
    line += "rebuilt from the peers since start: " + std::to_string(U64(r, "snapshots")) +
            " snapshot(s), " + std::to_string(U64(r, "chunks")) + " chunk(s)";
    if (r.is_object() && r.contains("complete") && !Bool(r, "complete")) line += ", incomplete";
  } else if (state == "failed") {
    line += "rebuilding from the peers failed: " + Str(index, "error") +
            "; run `cairn index rebuild` to try again";
  } else {
    line += state;
  }
  if (!Str(index, "problem").empty()) line += "\n            why: " + Str(index, "problem");
  if (!Str(index, "kept_aside").empty()) {
    line += "\n            the damaged file is kept as " + Str(index, "kept_aside");
  }
  return line + "\n";
}

int RunStatus(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> s = (*api)->Get("/v1/status");
  if (!s.ok()) return PrintError(s.status());
  uint64_t below = U64(*s, "chunks_below_target");
  const nlohmann::json index = s->contains("index") ? (*s)["index"] : nlohmann::json();
  const std::string index_state = index.is_object() ? Str(index, "state") : "";
  if (global.json) {
    PrintJson(*s);
  } else {
    std::cout << "peer " << U64(*s, "peer_id") << " on host " << Str(*s, "host_id")
              << (Str(*s, "site").empty() ? std::string()
                                          : absl::StrCat(", site ", Str(*s, "site")))
              << "\n"
              << "address:    " << Str(*s, "address") << " (api " << Str(*s, "api") << ")\n"
              << "\nas a storage peer\n"
              << "storage:    " << FormatSize(U64(*s, "used")) << " used of "
              << FormatSize(U64(*s, "quota")) << " quota, " << U64(*s, "blobs") << " blobs ("
              << U64(*s, "extra_blobs") << " extra copies, " << FormatSize(U64(*s, "extra_bytes"))
              << ")\n";
    if (s->contains("disk_free") && (*s)["disk_free"].is_number_unsigned()) {
      const uint64_t quota = U64(*s, "quota"), used = U64(*s, "used");
      const uint64_t room = U64(*s, "room");
      std::cout << "room:       " << FormatSize(room) << " for new blobs ("
                << FormatSize(U64(*s, "disk_free")) << " free on disk, "
                << FormatSize(U64(*s, "disk_reserve")) << " kept in reserve)"
                << (room < (quota > used ? quota - used : 0) ? ": the disk is the limit" : "")
                << "\n";
    }
    if (s->contains("owners") && (*s)["owners"].is_array()) {
      for (const nlohmann::json& o : (*s)["owners"]) {
        std::cout << "  owner " << U64(o, "owner") << ": " << FormatSize(U64(o, "bytes")) << " in "
                  << U64(o, "blobs") << " blobs";
        if (U64(o, "extra_blobs") > 0) {
          std::cout << " (" << U64(o, "extra_blobs") << " extra, "
                    << FormatSize(U64(o, "extra_bytes")) << ")";
        }
        std::cout << "\n";
      }
    }
    std::cout << LayoutLine(s->contains("storage") ? (*s)["storage"] : nlohmann::json());
    std::cout << BucketLine(s->contains("bucket") ? (*s)["bucket"] : nlohmann::json());
    if (U64(*s, "moved_notices_pending") > 0) {
      std::cout << "moved:      " << U64(*s, "moved_notices_pending")
                << " BlobMoved notices waiting for their owners\n";
    }
    std::cout << ScrubLine(s->contains("scrub") ? (*s)["scrub"] : nlohmann::json());
    const nlohmann::json home = s->contains("home") ? (*s)["home"] : nlohmann::json::object();
    char ratio[64];
    std::cout << "\nas a home peer\n"
              << IndexLine(index) << "snapshots:  " << U64(*s, "snapshots") << "\n"
              << "chunks:     " << U64(*s, "chunks") << " (" << U64(*s, "chunks_at_target")
              << " at target, " << below << " below target)\n";
    // docs/operations.md "Sites and off-site copies".
    if (uint64_t n = U64(*s, "chunks_without_offsite"); n > 0) {
      std::cout << "off-site:   " << n << (n == 1 ? " chunk" : " chunks")
                << " without their off-site copy\n";
    }
    std::snprintf(ratio, sizeof ratio, "%.2fx", Double(home, "dedup_ratio"));
    std::cout << "data:       " << FormatSize(U64(home, "logical_bytes")) << " in snapshots, "
              << FormatSize(U64(home, "unique_bytes")) << " after deduplication (" << ratio
              << ")\n";
    std::snprintf(ratio, sizeof ratio, "%.2fx", Double(home, "redundancy_overhead"));
    std::cout << "stored:     " << FormatSize(U64(home, "stored_bytes")) << " on peers (" << ratio
              << " one compressed copy of " << FormatSize(U64(home, "one_copy_bytes")) << "), plus "
              << U64(home, "extra_blobs") << " extra copies ("
              << FormatSize(U64(home, "extra_bytes")) << ")\n";
    if (U64(home, "pending_deletions") > 0) {
      std::cout << "deletions:  " << U64(home, "pending_deletions")
                << " blob deletions queued for offline peers\n";
    }
    std::cout << std::flush;
  }
  if (index_state == "rebuilding" || index_state == "failed") {
    std::cerr << "degraded: this peer's index "
              << (index_state == "rebuilding" ? "is being rebuilt from the peers"
                                              : "could not be rebuilt from the peers")
              << " (" << Str(index, "problem") << ")" << std::endl;
    return kExitDegraded;
  }
  if (below > 0) {
    std::cerr << "degraded: " << below << (below == 1 ? " chunk" : " chunks") << " below target"
              << std::endl;
    return kExitDegraded;
  }
  // A chunk short of its off-site copies is below target for `check` too (docs/operations.md
  // "Sites and off-site copies"), whatever the copy count the catalog last recorded for it.
  if (uint64_t n = U64(*s, "chunks_without_offsite"); n > 0) {
    std::cerr << "degraded: " << n << (n == 1 ? " chunk" : " chunks")
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
