#include "cairn/daemon/scrubber.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "cairn/api/json_paths.h"
#include "cairn/daemon/daemon.h"
#include "cairn/daemon/peer_dir.h"
#include "cairn/daemon/test_util.h"
#include "cairn/format/blob.h"
#include "cairn/index/database.h"
#include "cairn/index/sqlite_blob_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::daemon {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using std::chrono::nanoseconds;

// ---- [scrub] in cairn.toml ----

TEST(ScrubConfigTest, DefaultsAndValues) {
  auto c = ParseConfig("peer_id = 1\n", "cairn.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->scrub_enabled);
  EXPECT_EQ(c->scrub_interval, 24h);
  EXPECT_EQ(c->scrub_rate, 20ull << 20);
  ScrubberOptions o = ScrubberOptionsFrom(*c);
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.interval, 24h);
  EXPECT_EQ(o.rate, 20ull << 20);

  c = ParseConfig("peer_id = 1\n[scrub]\nenabled = false\ninterval = \"90m\"\nrate = \"512K\"\n",
                  "cairn.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->scrub_enabled);
  EXPECT_EQ(c->scrub_interval, 90min);
  EXPECT_EQ(c->scrub_rate, 512u << 10);
  c = ParseConfig("peer_id = 1\n[scrub]\nrate = 1000\n", "cairn.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scrub_rate, 1000u);
}

TEST(ScrubConfigTest, BadValuesNameTheKey) {
  struct Case {
    std::string text, want;
  };
  const std::vector<Case> cases = {
      {"[scrub]\nenabled = 1\n", "key 'scrub.enabled': expected true or false"},
      {"[scrub]\ninterval = 5\n", "key 'scrub.interval': expected a duration"},
      {"[scrub]\ninterval = \"soon\"\n", "key 'scrub.interval': invalid duration"},
      {"[scrub]\nrate = \"fast\"\n", "key 'scrub.rate'"},
      {"[scrub]\nrate = 0\n", "key 'scrub.rate': must be at least 1"},
      {"[scrub]\nspeed = \"1M\"\n", "key 'scrub.speed': unknown key"},
      {"scrub = 3\n", "key 'scrub': expected a table"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = ParseConfig("peer_id = 1\n" + c.text, "cairn.toml");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr(c.want));
  }
}

TEST(ScrubConfigTest, RenderParsesBack) {
  Config c;
  c.peer_id = 3;
  c.host_id = "h";
  c.scrub_enabled = false;
  c.scrub_interval = 36h;
  c.scrub_rate = 12345;
  std::string text = RenderConfig(c);
  EXPECT_THAT(text, ::testing::HasSubstr("[scrub]"));
  auto back = ParseConfig(text, "cairn.toml");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->SameSettings(c));
  back->scrub_rate = 1;
  EXPECT_FALSE(back->SameSettings(c));
}

// ---- Scrubber on a peer directory's real store, registry and catalog ----

codec::OwnerKeys TestKeys() {
  codec::OwnerKeys keys;
  for (size_t i = 0; i < codec::kKeySize; ++i) keys.id_key[i] = static_cast<uint8_t>(i * 7);
  return keys;
}

struct Held {
  BlobKey key;
  Bytes data;
};

// Waits on a gate until Open() or Interrupt(); counts the sleeps that entered it.
class GateSleeper : public env::Sleeper {
 public:
  bool SleepFor(nanoseconds d) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (d.count() <= 0) return !interrupted_;
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_ || interrupted_; });
    return !interrupted_;
  }
  void Interrupt() override {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
    cv_.notify_all();
  }
  bool WaitEntered(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return entered_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
  bool interrupted_ = false;
};

// A FakeSleeper that reports an interruption from its (n+1)-th sleep on: stops a pass after n
// rate-limited blobs, as Stop() or a shutdown would.
class StopAfterSleeper : public env::Sleeper {
 public:
  StopAfterSleeper(env::FakeClock* clock, int n) : inner_(clock), left_(n) {}
  bool SleepFor(nanoseconds d) override {
    if (d.count() > 0 && left_-- <= 0) return false;
    return inner_.SleepFor(d);
  }
  void Interrupt() override { inner_.Interrupt(); }

 private:
  env::FakeSleeper inner_;
  int left_;
};

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    auto db = index::Database::Open(tmp_.File("index.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    registry_ = index::NewSqliteBlobRegistry(db_.get());
    auto store = store::DiskBlobStore::Open(tmp_.File("blobs"), 1ull << 30, registry_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    catalog_ = index::NewSqliteCatalog(db_.get());
  }

  void Close() {
    store_.reset();
    catalog_.reset();
    registry_.reset();
    db_.reset();
  }

  // `n` blobs of random sizes, in key order.
  std::vector<Held> Fill(int n, std::mt19937_64& rng) {
    std::map<BlobKey, Bytes> blobs;
    for (int i = 0; i < n; ++i) {
      Bytes plain(200 + rng() % 3000);
      for (auto& b : plain) b = static_cast<uint8_t>(rng());
      auto sealed = format::SealChunk(TestKeys(), 2, BlobKind::kData, plain);
      EXPECT_TRUE(sealed.ok()) << sealed.status();
      BlobKey key{2, sealed->id, 0};
      auto put = store_->Put(key, sealed->blob, codec::BlobChecksum(sealed->blob));
      EXPECT_TRUE(put.ok()) << put.status();
      blobs[key] = std::move(sealed->blob);
    }
    std::vector<Held> out;
    for (auto& [k, v] : blobs) out.push_back({k, std::move(v)});
    return out;
  }

  void Flip(const BlobKey& key, size_t offset) {
    std::fstream f(store_->PathFor(key), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x20));
    ASSERT_TRUE(f.good());
  }

  std::unique_ptr<Scrubber> MakeScrubber(ScrubberOptions options) {
    auto s = Scrubber::Create(store_.get(), catalog_.get(), options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  testing::TempDir tmp_;
  std::unique_ptr<index::Database> db_;
  std::unique_ptr<store::BlobRegistry> registry_;
  std::unique_ptr<store::DiskBlobStore> store_;
  std::unique_ptr<index::Catalog> catalog_;
};

TEST_F(ScrubberTest, PassQuarantinesExactlyTheCorruptBlobsAtTheConfiguredRate) {
  testing::SeededRandom random;
  std::vector<Held> blobs = Fill(30, random.rng());
  std::set<BlobKey> flipped;
  uint64_t total = 0;
  for (size_t i = 0; i < blobs.size(); ++i) {
    total += blobs[i].data.size();
    if (i % 7 == 3) {
      Flip(blobs[i].key, random.rng()() % blobs[i].data.size());
      flipped.insert(blobs[i].key);
    }
  }
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  ScrubberOptions options;
  options.rate = 8000;
  options.batch = 4;
  options.clock = &clock;
  options.sleeper = &sleeper;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  const int64_t start = clock.NowNanos();

  auto pass = scrubber->RunPass();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->counts.checked, blobs.size());
  EXPECT_EQ(pass->counts.bytes, total);
  EXPECT_EQ(pass->counts.corrupt, flipped.size());
  EXPECT_EQ(pass->counts.missing, 0u);
  EXPECT_EQ(pass->started_ns, start);
  // The bucket starts with one second's worth of bytes; the rest took bytes / rate seconds.
  const double want_ns = static_cast<double>(total - options.rate) * 1e9 / options.rate;
  EXPECT_NEAR(static_cast<double>(pass->finished_ns - start), want_ns, blobs.size());

  uint64_t intact = 0;
  for (const Held& b : blobs) {
    if (flipped.count(b.key)) {
      EXPECT_EQ(*store_->Has(b.key), false);
      EXPECT_EQ(store_->Get(b.key).status().code(), absl::StatusCode::kNotFound);
    } else {
      EXPECT_EQ(*store_->Get(b.key), b.data);
      intact += b.data.size();
    }
  }
  EXPECT_EQ(store_->Stats().used, intact);
  EXPECT_EQ(store_->Stats().quarantined, flipped.size());

  json status = api::ToJson(scrubber->Status());
  EXPECT_EQ(status["enabled"], true);
  EXPECT_EQ(status["interval"], "24h");
  EXPECT_EQ(status["rate"], 8000);
  EXPECT_EQ(status["running"], false);
  EXPECT_EQ(status["last_pass"]["checked"], blobs.size());
  EXPECT_EQ(status["last_pass"]["corrupt"], flipped.size());
  EXPECT_EQ(status["last_pass"]["finished_ns"], pass->finished_ns);
  EXPECT_EQ(status["last_pass"]["finished"], api::FormatRfc3339(pass->finished_ns));
  EXPECT_TRUE(status["current_pass"].is_null());
  EXPECT_EQ(status["next_pass"], api::FormatRfc3339(pass->finished_ns + nanoseconds(24h).count()));
  EXPECT_EQ(status["quarantined"], flipped.size());
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(24h));

  // The next pass sees only the healthy blobs.
  auto again = scrubber->RunPass();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->counts.checked, blobs.size() - flipped.size());
  EXPECT_EQ(again->counts.corrupt, 0u);
}

TEST_F(ScrubberTest, AStoppedPassResumesAfterARestartWhereItStopped) {
  testing::SeededRandom random;
  std::vector<Held> blobs = Fill(11, random.rng());
  Flip(blobs[2].key, 10);
  Flip(blobs[9].key, 20);
  env::FakeClock clock;
  ScrubberOptions options;
  options.rate = 1;  // every blob waits, so the sleeper decides where the pass stops
  options.batch = 2;
  options.clock = &clock;
  {
    StopAfterSleeper sleeper(&clock, 5);
    options.sleeper = &sleeper;
    auto scrubber = MakeScrubber(options);
    ASSERT_NE(scrubber, nullptr);
    auto pass = scrubber->RunPass();
    ASSERT_TRUE(pass.ok()) << pass.status();
    EXPECT_EQ(pass->finished_ns, 0);
    EXPECT_EQ(pass->counts.checked, 5u);
    EXPECT_EQ(pass->counts.corrupt, 1u);
    json status = api::ToJson(scrubber->Status());
    EXPECT_EQ(status["current_pass"]["checked"], 5);
    EXPECT_TRUE(status["last_pass"].is_null());
    EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(0));
    scrubber->Stop();
  }
  // Restart: everything reopened from the directory.
  Close();
  Open();
  env::FakeSleeper sleeper(&clock);
  options.sleeper = &sleeper;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(0));  // an unfinished pass is due
  auto pass = scrubber->RunPass();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_NE(pass->finished_ns, 0);
  // Each blob checked once over both runs.
  EXPECT_EQ(pass->counts.checked, blobs.size());
  EXPECT_EQ(pass->counts.corrupt, 2u);
  EXPECT_EQ(sleeper.sleeps(), static_cast<int>(blobs.size()) - 5);
  EXPECT_EQ(store_->Stats().blobs, blobs.size() - 2);
  EXPECT_EQ(store_->Stats().quarantined, 2u);
}

TEST_F(ScrubberTest, PassesRunAnIntervalApart) {
  env::FakeClock clock;
  env::FakeSleeper sleeper(&clock);
  ScrubberOptions options;
  options.interval = 10h;
  options.clock = &clock;
  options.sleeper = &sleeper;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  // The first pass comes one interval after the scrubber first ran here ...
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(10h));
  clock.Advance(4h);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(6h));
  // ... also across a restart.
  scrubber.reset();
  scrubber = MakeScrubber(options);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(6h));
  clock.Advance(7h);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(0));
  ASSERT_TRUE(scrubber->RunPass().ok());
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(10h));
  // A wall clock that jumps back never postpones a pass by more than one interval.
  clock.Advance(-100h);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(10h));
}

TEST_F(ScrubberTest, OnePassAtATimeAndStopEndsARunningPass) {
  testing::SeededRandom random;
  Fill(3, random.rng());
  GateSleeper gate;
  ScrubberOptions options;
  options.rate = 1;
  options.sleeper = &gate;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  auto first = std::async(std::launch::async, [&] { return scrubber->RunPass(); });
  ASSERT_TRUE(gate.WaitEntered(60s));
  EXPECT_EQ(scrubber->RunPass().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(api::ToJson(scrubber->Status())["running"], true);
  scrubber->Stop();
  ASSERT_EQ(first.wait_for(60s), std::future_status::ready);
  auto result = first.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finished_ns, 0);
  EXPECT_EQ(scrubber->RunPass().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(api::ToJson(scrubber->Status())["running"], false);
}

TEST_F(ScrubberTest, BackgroundLoopScrubsOnScheduleUntilStopped) {
  testing::SeededRandom random;
  std::vector<Held> blobs = Fill(6, random.rng());
  Flip(blobs[4].key, 5);
  ScrubberOptions options;
  options.interval = 20ms;
  options.rate = 1ull << 30;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  scrubber->Start();
  // Passes keep coming: wait for one that started after the corrupt blob was quarantined.
  bool seen = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    json last = api::ToJson(scrubber->Status())["last_pass"];
    seen = !last.is_null() && last["checked"] == blobs.size() - 1 && last["corrupt"] == 0;
    if (!seen) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(seen);
  scrubber->Stop();
  EXPECT_EQ(store_->Stats().quarantined, 1u);
  EXPECT_EQ(*store_->Has(blobs[4].key), false);
}

TEST_F(ScrubberTest, DisabledScrubberNeverStartsAPass) {
  ScrubberOptions options;
  options.enabled = false;
  options.interval = 1ms;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  scrubber->Start();
  json status = api::ToJson(scrubber->Status());
  EXPECT_EQ(status["enabled"], false);
  EXPECT_TRUE(status["next_pass"].is_null());
  scrubber->Stop();
  EXPECT_TRUE(api::ToJson(scrubber->Status())["last_pass"].is_null());
}

TEST_F(ScrubberTest, GarbledSavedStateIsReplaced) {
  ASSERT_TRUE(catalog_->SetMeta(kMetaScrubState, "{not json").ok());
  env::FakeClock clock;
  ScrubberOptions options;
  options.clock = &clock;
  auto scrubber = MakeScrubber(options);
  ASSERT_NE(scrubber, nullptr);
  EXPECT_EQ(scrubber->TimeUntilNextPass(), nanoseconds(24h));
  auto saved = catalog_->GetMeta(kMetaScrubState);
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_TRUE(api::ParseJson(**saved).ok());
}

// ---- Daemon wiring ----

TEST(DaemonScrubTest, StatusShowsScrubAndTheConfigHasAScrubSection) {
  testing::TempDir tmp;
  Config c;
  c.dir = tmp.path();
  c.peer_id = 7;
  c.host_id = "host-7";
  c.quota = 1ull << 30;
  c.scrub_interval = 12h;
  c.scrub_rate = 5ull << 20;
  c.chunker.min_size = 16 * 1024;
  c.chunker.avg_size = 64 * 1024;
  c.chunker.max_size = 256 * 1024;
  ASSERT_TRUE(InitPeerDir(c).ok());
  auto loaded = LoadConfig(tmp.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->scrub_interval, 12h);
  EXPECT_EQ(loaded->scrub_rate, 5ull << 20);
  auto d = Daemon::Start(tmp.path());
  ASSERT_TRUE(d.ok()) << d.status();
  auto status = (*d)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  json scrub = (*status)["scrub"];
  EXPECT_EQ(scrub["enabled"], true);
  EXPECT_EQ(scrub["interval"], "12h");
  EXPECT_EQ(scrub["rate"], 5ull << 20);
  EXPECT_EQ(scrub["running"], false);
  EXPECT_TRUE(scrub["last_pass"].is_null());
  EXPECT_TRUE(scrub["next_pass"].is_string());
  EXPECT_EQ(scrub["quarantined"], 0);
  (*d)->Shutdown();
}

}  // namespace
}  // namespace cairn::daemon
