// Reclaim (evacuation) through in-memory peers: an emptied peer's blobs all land elsewhere and
// the owner, told by BlobMoved, still finds every chunk at target; a full cluster refuses with
// nothing touched; notices wait for an absent owner; extras go first.
#include "cairn/engine/reclaim.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "cairn/engine/backup.h"
#include "cairn/engine/check.h"
#include "cairn/engine/extras.h"
#include "cairn/engine/restore.h"
#include "cairn/engine/testing/fake_peers.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGiB = 1ull << 30;

// Every held blob of every peer, with its extra flag: what "nothing was touched" compares.
using Holdings = std::map<PeerId, std::vector<std::pair<BlobKey, bool>>>;

struct Scheme {
  std::string name;
  uint32_t copies = 2;
  std::optional<codec::ErasureScheme> ec;
};
void PrintTo(const Scheme& s, std::ostream* os) { *os << s.name; }

class ReclaimFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("cairn-reclaim-" + std::to_string(::getpid()) + "-" +
             std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
             std::to_string(++counter_));
    fs::remove_all(root_);
    fs::create_directories(root_ / "src/sub");
    std::mt19937_64 rng(1234);
    for (int i = 0; i < 8; ++i) {
      std::string data(150'000 + i * 7000, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      std::ofstream(root_ / "src" / ("f" + std::to_string(i)), std::ios::binary) << data;
    }
    std::ofstream(root_ / "src/sub/small") << "small file";
    catalog_ = ports::NewMemCatalog();
    // Hosts: 2,3 share one; the others have their own.
    for (PeerId id = 2; id <= 7; ++id) {
      peers_.AddPeer(id, id == 3 ? "host2" : "host" + std::to_string(id), kGiB);
    }
    codec::Key master{};
    master[0] = 3;
    ctx_.owner = 1;
    ctx_.keys = codec::DeriveOwnerKeys(master);
    ctx_.chunker = {16 << 10, 64 << 10, 256 << 10};
    ctx_.catalog = catalog_.get();
    ctx_.peers = &peers_;
    ctx_.clock = env::RealClock::Default();
    ctx_.gc_lock = &gc_lock_;
    outbox_ = store::NewMemMovedOutbox();
  }
  void TearDown() override { fs::remove_all(root_); }

  // The owner's endpoint: BlobMoved applied to its catalog, or UNAVAILABLE while offline.
  void RegisterOwner() {
    peers_.AddOwner(ctx_.owner, [this](PeerId from, const std::vector<ports::MovedBlob>& moves) {
      if (!owner_online_) return absl::UnavailableError("owner offline");
      return ApplyBlobMoves(ctx_, from, moves);
    });
  }

  void Backup(const Scheme& s) {
    BackupOptions opts;
    opts.paths = {(root_ / "src").string()};
    opts.copies = s.copies;
    opts.ec = s.ec;
    auto r = BackupEngine(ctx_).Run(opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->chunks_below_target, 0u);
  }

  absl::StatusOr<EvacuateReport> Evacuate(PeerId self, uint64_t target,
                                          EvacuateProgress* progress = nullptr,
                                          const std::atomic<bool>* cancel = nullptr,
                                          env::Sleeper* sleeper = nullptr, uint64_t rate = 0) {
    views_.push_back(peers_.ViewFrom(self));
    EvacuateContext ectx;
    ectx.self = self;
    ectx.store = peers_.Store(self);
    ectx.outbox = outbox_.get();
    ectx.peers = views_.back().get();
    ectx.rate = rate;
    ectx.clock = &clock_;
    ectx.sleeper = sleeper;
    peers_.SetQuota(self, target);  // as the daemon does first
    return engine::Evacuate(ectx, target, progress, cancel);
  }

  uint64_t Deliver(PeerId self) {
    views_.push_back(peers_.ViewFrom(self));
    auto n = DeliverMovedNotices(outbox_.get(), views_.back().get());
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : 0;
  }

  uint64_t Queued() {
    auto n = outbox_->Count();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 0;
  }

  std::vector<ports::ChunkRecord> AllChunks() {
    auto page = catalog_->ListChunks(std::nullopt, 1'000'000);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : std::vector<ports::ChunkRecord>{};
  }

  bool Names(const ports::ChunkRecord& c, PeerId p) {
    for (PeerId h : c.holders)
      if (h == p) return true;
    for (PeerId h : c.extras)
      if (h == p) return true;
    for (const auto& s : c.shards)
      if (s.peer == p) return true;
    return false;
  }

  // The peer holding the most blobs.
  PeerId Busiest() {
    PeerId best = 0;
    uint64_t most = 0;
    for (const auto& p : peers_.Peers()) {
      if (p.used > most) {
        most = p.used;
        best = p.id;
      }
    }
    return best;
  }

  Holdings Snapshot() {
    Holdings out;
    for (const auto& p : peers_.Peers()) {
      auto held = peers_.Store(p.id)->ListHeld(std::nullopt, 1'000'000);
      EXPECT_TRUE(held.ok());
      if (!held.ok()) continue;
      for (const auto& r : *held) out[p.id].push_back({r.key, r.extra});
    }
    return out;
  }

  CheckReport MustCheck(bool read_data) {
    CheckOptions o;
    o.read_data = read_data;
    auto r = Check(ctx_, o, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CheckReport{};
  }

  void ExpectRestorable() {
    auto snap = ResolveSnapshot(catalog_.get(), "latest");
    ASSERT_TRUE(snap.ok()) << snap.status();
    RestoreOptions opts;
    opts.target = (root_ / "restore").string();
    fs::remove_all(opts.target);
    auto r = Restore(ctx_, snap->snapshot, opts, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->errors.empty()) << r->errors.front();
    for (const auto& e : fs::recursive_directory_iterator(root_ / "src")) {
      if (!e.is_regular_file()) continue;
      fs::path rel = fs::relative(e.path(), root_ / "src");
      std::ifstream a(e.path(), std::ios::binary), b(root_ / "restore/src" / rel, std::ios::binary);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}),
                std::string(std::istreambuf_iterator<char>(b), {}))
          << rel;
    }
  }

  static inline int counter_ = 0;
  fs::path root_;
  std::unique_ptr<ports::Catalog> catalog_;
  testing::FakePeerSet peers_;
  std::vector<std::unique_ptr<PeerSet>> views_;
  std::unique_ptr<ports::MovedOutbox> outbox_;
  std::shared_mutex gc_lock_;
  std::atomic<bool> owner_online_{true};
  env::FakeClock clock_;
  EngineContext ctx_;
};

class ReclaimTest : public ReclaimFixture, public ::testing::WithParamInterface<Scheme> {};

TEST_P(ReclaimTest, EvacuatingAPeerToZeroKeepsEveryChunkAtTarget) {
  RegisterOwner();
  Backup(GetParam());
  const PeerId self = Busiest();
  const ports::StoreStats before = peers_.Store(self)->Stats();
  ASSERT_GT(before.blobs, 0u);

  EvacuateProgress progress;
  auto r = Evacuate(self, 0, &progress);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(peers_.Store(self)->Stats().blobs, 0u);
  EXPECT_EQ(r->used_after, 0u);
  EXPECT_EQ(r->moved_blobs, before.blobs);
  EXPECT_EQ(r->moved_bytes, before.used);
  EXPECT_EQ(progress.bytes_total.load(), before.used);
  EXPECT_EQ(progress.bytes_moved.load(), before.used);
  EXPECT_EQ(Queued(), r->moved_blobs);

  EXPECT_EQ(Deliver(self), r->moved_blobs);
  EXPECT_EQ(Queued(), 0u);
  for (const auto& c : AllChunks()) {
    EXPECT_TRUE(c.AtTarget()) << c.id.ShortHex();
    EXPECT_FALSE(Names(c, self)) << c.id.ShortHex();
  }
  CheckReport check = MustCheck(/*read_data=*/true);
  EXPECT_TRUE(check.healthy()) << check.below_target << " below, " << check.lost << " lost";
  EXPECT_EQ(check.corrupt, 0u);
  ExpectRestorable();
}

TEST_P(ReclaimTest, FullClusterRefusesAndTouchesNothing) {
  RegisterOwner();
  Backup(GetParam());
  ExtraOptions extras;
  extras.data = true;
  ASSERT_TRUE(PlaceExtraCopies(ctx_, extras).ok());
  const PeerId self = Busiest();
  // The others keep only a little room: less than what `self` must hand over (their extra
  // copies would give way to regular blobs, so they count as room).
  for (const auto& p : peers_.Peers()) {
    if (p.id != self) peers_.SetQuota(p.id, p.used - p.extra + 1000);
  }
  const Holdings before = Snapshot();
  auto r = Evacuate(self, 0);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find("nothing was moved or deleted"), std::string::npos)
      << r.status();
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(Queued(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Schemes, ReclaimTest,
                         ::testing::Values(Scheme{"copies2", 2, std::nullopt},
                                           Scheme{"ec2plus1", 0, codec::ErasureScheme{2, 1}}),
                         [](const auto& info) { return info.param.name; });

using ReclaimCopiesTest = ReclaimFixture;

TEST_F(ReclaimCopiesTest, NoticesWaitForAnAbsentOwner) {
  Backup({"copies2", 2, std::nullopt});
  const PeerId self = Busiest();
  auto r = Evacuate(self, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GT(r->moved_blobs, 0u);
  // No endpoint for the owner yet: nothing delivered, all kept.
  EXPECT_EQ(Deliver(self), 0u);
  EXPECT_EQ(Queued(), r->moved_blobs);
  // Registered but unreachable: same.
  owner_online_ = false;
  RegisterOwner();
  EXPECT_EQ(Deliver(self), 0u);
  EXPECT_EQ(Queued(), r->moved_blobs);
  // Meanwhile the owner's catalog still names `self`: check sees those blobs missing.
  EXPECT_GT(MustCheck(false).below_target, 0u);
  // Back online: everything delivered, the catalog follows the blobs.
  owner_online_ = true;
  EXPECT_EQ(Deliver(self), r->moved_blobs);
  EXPECT_EQ(Queued(), 0u);
  for (const auto& c : AllChunks()) EXPECT_FALSE(Names(c, self)) << c.id.ShortHex();
  EXPECT_TRUE(MustCheck(false).healthy());
  ExpectRestorable();
}

TEST_F(ReclaimCopiesTest, ExtrasAreEvictedBeforeAnythingMoves) {
  RegisterOwner();
  Backup({"copies2", 2, std::nullopt});
  ExtraOptions extras;
  extras.data = true;
  ASSERT_TRUE(PlaceExtraCopies(ctx_, extras).ok());
  const PeerId self = Busiest();
  const ports::StoreStats before = peers_.Store(self)->Stats();
  ASSERT_GT(before.extra_bytes, 0u);

  // Dropping half of the extras' bytes is enough: nothing regular moves.
  auto r = Evacuate(self, before.used - before.extra_bytes / 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->moved_blobs, 0u);
  EXPECT_GT(r->evicted_blobs, 0u);
  EXPECT_LE(r->used_after, before.used - before.extra_bytes / 2);
  EXPECT_EQ(peers_.Store(self)->Stats().blobs - peers_.Store(self)->Stats().extra_blobs,
            before.blobs - before.extra_blobs);

  // To zero: every extra is evicted (none moved), every regular blob moved.
  r = Evacuate(self, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->moved_blobs, before.blobs - before.extra_blobs);
  EXPECT_EQ(r->moved_bytes, before.used - before.extra_bytes);
  EXPECT_EQ(peers_.Store(self)->Stats().blobs, 0u);
  EXPECT_EQ(Deliver(self), r->moved_blobs);
  auto pruned = PruneExtras(ctx_);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, before.extra_blobs);
  for (const auto& c : AllChunks()) {
    EXPECT_TRUE(c.AtTarget()) << c.id.ShortHex();
    EXPECT_FALSE(Names(c, self)) << c.id.ShortHex();
  }
  EXPECT_TRUE(MustCheck(true).healthy());
  ExpectRestorable();
}

// Only some of the blobs can be placed (the others' free space is enough in total, but one
// peer refuses everything): reclaim says how much stayed, and nothing unplaced was deleted.
TEST_F(ReclaimCopiesTest, BlobsThatCannotBePlacedAreKept) {
  RegisterOwner();
  Backup({"copies2", 2, std::nullopt});
  const PeerId self = Busiest();
  // Leave room on one peer only, enough in bytes; but that peer already holds the other copy
  // of some chunks, which therefore have nowhere to go.
  PeerId room_on = 0;
  for (const auto& p : peers_.Peers()) {
    if (p.id == self) continue;
    if (room_on == 0) {
      room_on = p.id;
      continue;
    }
    peers_.SetQuota(p.id, p.used);
  }
  const uint64_t before_blobs = peers_.Store(self)->Stats().blobs;
  auto r = Evacuate(self, 0);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find("could not be placed"), std::string::npos) << r.status();
  const uint64_t kept = peers_.Store(self)->Stats().blobs;
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, before_blobs);
  EXPECT_EQ(Deliver(self), before_blobs - kept);
  // Every chunk is still at target: what moved is recorded on `room_on`, the rest still here.
  for (const auto& c : AllChunks()) EXPECT_TRUE(c.AtTarget()) << c.id.ShortHex();
  EXPECT_TRUE(MustCheck(true).healthy());
  ExpectRestorable();
}

TEST_F(ReclaimCopiesTest, CancelStopsWithWhatMovedRecorded) {
  RegisterOwner();
  Backup({"copies2", 2, std::nullopt});
  const PeerId self = Busiest();
  const uint64_t before_blobs = peers_.Store(self)->Stats().blobs;
  std::atomic<bool> cancel{true};
  auto r = Evacuate(self, 0, nullptr, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_EQ(peers_.Store(self)->Stats().blobs + Queued(), before_blobs);
}

TEST_F(ReclaimCopiesTest, RateLimitPacesTheMoves) {
  RegisterOwner();
  Backup({"copies2", 2, std::nullopt});
  const PeerId self = Busiest();
  const uint64_t used = peers_.Store(self)->Stats().used;
  env::FakeSleeper sleeper(&clock_);
  const uint64_t rate = 100'000;  // bytes per second
  auto r = Evacuate(self, 0, nullptr, nullptr, &sleeper, rate);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->moved_bytes, used);
  // Token bucket: at most burst (= rate) + rate x elapsed bytes were granted.
  const double seconds = std::chrono::duration<double>(sleeper.total()).count();
  EXPECT_GE(seconds * rate + rate, static_cast<double>(used) - 1);
  EXPECT_GT(sleeper.sleeps(), 0);
}

TEST_F(ReclaimCopiesTest, BlobMovedForAnotherOwnersKeysIsRefused) {
  Backup({"copies2", 2, std::nullopt});
  auto chunks = AllChunks();
  ASSERT_FALSE(chunks.empty());
  const ports::ChunkRecord c = chunks[0];
  std::vector<ports::MovedBlob> moves(2);
  moves[0].key = {ctx_.owner, c.id, 0};
  moves[0].to = 7;
  moves[1].key = {ctx_.owner + 100, c.id, 0};
  moves[1].to = 7;
  absl::Status st = ApplyBlobMoves(ctx_, c.holders[0], moves);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  auto after = catalog_->FindChunk(c.id);
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_EQ((*after)->holders, c.holders);  // nothing applied
  // A move "to" the owner itself is refused too.
  std::vector<ports::MovedBlob> to_owner(1);
  to_owner[0].key = {ctx_.owner, c.id, 0};
  to_owner[0].to = ctx_.owner;
  st = ApplyBlobMoves(ctx_, c.holders[0], to_owner);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
}

}  // namespace
}  // namespace cairn::engine
