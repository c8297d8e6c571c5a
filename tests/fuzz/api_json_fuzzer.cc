// Fuzz target: the local API's JSON request bodies (api/requests.h, docs/cli.md) and the
// helpers they use for raw-byte paths (api/json_paths.h) and times (engine/time_point.h).
// Every input is parsed as a body and given to every request parser; the same bytes are also
// decoded as base64, sanitized as UTF-8 and parsed as a time. Parsers must return a status,
// never throw; base64 and UTF-8 sanitizing round-trip.
#include "cairn/api/json_paths.h"
#include "cairn/api/requests.h"
#include "cairn/engine/time_point.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

Seeds MakeSeeds() {
  return {
      {"backup.json", SeedBytes(R"({"paths":["/home/a"],"paths_base64":["L2hvbWUv/w=="],)"
                                R"("copies":2,"tags":["t"],"excludes":["*.o"],"rehash":true})")},
      {"backup_ec.json", SeedBytes(R"({"paths":["/a"],"ec":"4+2"})")},
      {"restore.json",
       SeedBytes(R"({"snapshot":"latest","path":"home/a","target":"/tmp/r","at":null})")},
      {"restore_at.json", SeedBytes(R"({"path":"/home/a","target":"/tmp/r",)"
                                    R"("at":"2026-11-22T10:00:00.25+01:00"})")},
      {"check.json", SeedBytes(R"({"read_data":true,"read_subset_percent":12.5})")},
      {"forget.json", SeedBytes(R"({"keep_last":3,"keep_within":"7d","keep_tags":["x"],)"
                                R"("dry_run":true,"prune":false})")},
      {"forget_ids.json", SeedBytes(R"({"snapshots":["abc123"]})")},
      {"delete.json", SeedBytes(R"({"path":"/home/a/f","snapshot":"abc"})")},
      {"reclaim.json", SeedBytes(R"({"quota":1073741824})")},
      {"source.json", SeedBytes(R"({"path":"/srv","ec":"2+1","schedule":"1h","watch":false,)"
                                R"("keep_daily":7,"excludes_base64":["KiV+"]})")},
      {"error.json", SeedBytes(R"({"code":"NOT_FOUND","message":"no such snapshot"})")},
      {"time", SeedBytes("@1700000000.5")},
  };
}

template <typename T>
void Check(const absl::StatusOr<T>& r) {
  if (!r.ok()) FUZZ_CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  using namespace cairn::fuzz;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = api::ParseRequestBody(text);
  if (body.ok()) {
    FUZZ_CHECK(body->is_object());
    Check(api::Decode<api::BackupRequest>(*body));
    Check(api::Decode<api::RestoreRequest>(*body));
    Check(api::Decode<api::CheckRequest>(*body));
    Check(api::Decode<api::ForgetRequest>(*body));
    Check(api::Decode<api::DeleteRequest>(*body));
    Check(api::Decode<api::ReclaimRequest>(*body));
    Check(api::Decode<api::SourceRequest>(*body));
    Check(api::GetPathField(*body, "path"));
    Check(api::GetPathArray(*body, "paths"));
    (void)api::StatusFromJson(*body);
    // What the server sends back must serialize whatever came in.
    (void)api::DumpJson(*body);
  } else {
    FUZZ_CHECK(body.status().code() == absl::StatusCode::kInvalidArgument);
  }
  auto decoded = api::FromBase64(text);
  if (decoded.ok()) {
    FUZZ_CHECK(api::FromBase64(api::ToBase64(*decoded)).value_or("\x01") == *decoded);
  }
  std::string clean = api::SanitizeUtf8(text);
  FUZZ_CHECK(api::SanitizeUtf8(clean) == clean);
  std::string owned(text);
  auto t = engine::ParseTimePoint(owned, /*allow_local=*/false, /*allow_unix_ns=*/true);
  if (t.ok()) {
    // RFC 3339 output (FormatRfc3339) of an accepted time parses back to it.
    auto again = engine::ParseTimePoint(api::FormatRfc3339(*t, /*nanoseconds=*/true), false, false);
    FUZZ_CHECK(again.ok() && *again == *t);
  }
  return 0;
}
