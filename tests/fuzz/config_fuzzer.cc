// Fuzz target: the peer's config file DIR/cairn.toml (daemon/config.h, docs/operations.md
// "Configuration"), read at every start and edited by hand, and the duration and host:port
// syntax it and the CLI use. A config that parses renders (RenderConfig, what `cairn init`
// writes) to text that parses to the same settings.
#include "cairn/daemon/config.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

Seeds MakeSeeds() {
  daemon::Config c;
  c.dir = "/fuzz";
  c.peer_id = 3;
  c.host_id = "host-a";
  c.seeds = {"127.0.0.1:7001", "[::1]:7002"};
  c.ec = "4+2";
  c.retention.keep_daily = 7;
  c.retention.keep_within = engine::RetentionDuration{.years = 1, .months = 6};
  daemon::SourceConfig s;
  s.path = "/home/user/Documents";
  s.excludes = {"*.tmp"};
  s.schedule = std::chrono::hours(1);
  s.keep.keep_last = 3;
  c.sources = {s};
  return {{"rendered.toml", SeedBytes(daemon::RenderConfig(c))},
          {"minimal.toml", SeedBytes("peer_id = 1\n")},
          {"durations.toml",
           SeedBytes("peer_id = 9\nping_interval = \"1h30m\"\nquota = \"20G\"\n[watch]\n"
                     "quiet_period = \"1.5s\"\nrescan_interval = \"\"\n[[source]]\npath = \"/x\"\n"
                     "ec = \"10+4\"\nwatch = false\n")}};
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = daemon::ParseConfig(text, "fuzz.toml");
  if (config.ok()) {
    config->dir = "/fuzz";
    std::string rendered = daemon::RenderConfig(*config);
    auto again = daemon::ParseConfig(rendered, "rendered.toml");
    if (!again.ok())
      std::fprintf(stderr, "%s\n---\n%s\n", again.status().ToString().c_str(), rendered.c_str());
    FUZZ_CHECK(again.ok());
    again->dir = "/fuzz";
    FUZZ_CHECK(again->SameSettings(*config));
  } else {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
  }
  auto d = daemon::ParseDuration(text);
  if (d.ok()) {
    FUZZ_CHECK(d->count() > 0);
    auto again = daemon::ParseDuration(daemon::FormatDuration(*d));
    FUZZ_CHECK(again.ok() && *again == *d);
  }
  auto hp = daemon::SplitHostPort(text);
  if (hp.ok()) {
    FUZZ_CHECK(!hp->first.empty() && hp->second >= 0 && hp->second <= 65535);
  }
  return 0;
}
