#include "cairn/daemon/disk_watch.h"

#include <gtest/gtest.h>

namespace cairn::daemon {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

store::StoreStats Stats(uint64_t quota, uint64_t used, std::optional<uint64_t> disk_free,
                        uint64_t reserve = 64 * kMiB) {
  store::StoreStats s;
  s.quota = quota;
  s.used = used;
  s.disk_free = disk_free;
  s.disk_reserve = reserve;
  return s;
}

TEST(DiskWatchTest, ReportsStartAndEndOnceEach) {
  DiskWatch w;
  using C = DiskWatch::Change;
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 500 * kMiB)), std::nullopt);   // plenty of room
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 70 * kMiB)), C::kBecameFull);  // room 6 MiB
  EXPECT_TRUE(w.full());
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 65 * kMiB)), std::nullopt);     // still full: no repeat
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 84 * kMiB)), std::nullopt);     // 20 MiB: not yet over
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, std::nullopt)), std::nullopt);  // unknown: no change
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 200 * kMiB)), C::kNoLongerFull);
  EXPECT_FALSE(w.full());
  EXPECT_EQ(w.Observe(Stats(1024 * kMiB, 0, 200 * kMiB)), std::nullopt);
}

TEST(DiskWatchTest, AQuotaUsedUpIsNotADiskFull) {
  DiskWatch w;
  // 1 MiB of quota left, 2 MiB on the disk: the quota is the limit.
  EXPECT_EQ(w.Observe(Stats(100 * kMiB, 99 * kMiB, 66 * kMiB)), std::nullopt);
  EXPECT_EQ(w.Observe(Stats(100 * kMiB, 99 * kMiB, 64 * kMiB)), DiskWatch::Change::kBecameFull);
  // The quota shrinks below the disk's room: the disk is no longer what keeps puts out.
  EXPECT_EQ(w.Observe(Stats(99 * kMiB, 99 * kMiB, 64 * kMiB)), DiskWatch::Change::kNoLongerFull);
}

}  // namespace
}  // namespace cairn::daemon
