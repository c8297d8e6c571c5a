#include "cairn/placement/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace cairn::placement {
namespace {

ChunkId RandomChunk(std::mt19937_64& rng) {
  ChunkId id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

std::vector<Candidate> EqualPeers(int n, int hosts) {
  std::vector<Candidate> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({static_cast<PeerId>(100 + i), "host-" + std::to_string(i % hosts), 1.0, ""});
  }
  return out;
}

TEST(ScoreTest, PositiveFiniteAndDeterministic) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    ChunkId c = RandomChunk(rng);
    double s = Score(c, 7, 3.0);
    EXPECT_TRUE(std::isfinite(s));
    EXPECT_GT(s, 0);
    EXPECT_EQ(s, Score(c, 7, 3.0));
    EXPECT_DOUBLE_EQ(Score(c, 7, 6.0), 2 * s) << "score is linear in weight";
  }
  EXPECT_EQ(Score(ChunkId{}, 7, 0), 0);
  EXPECT_EQ(Score(ChunkId{}, 7, -1), 0);
  EXPECT_EQ(Score(ChunkId{}, 7, NAN), 0);
}

TEST(PlacementOrderTest, DeterministicAndIndependentOfCandidateOrder) {
  const uint64_t seed = 2;
  std::mt19937_64 rng(seed);
  std::vector<Candidate> peers = EqualPeers(10, 4);
  for (int i = 0; i < 200; ++i) {
    ChunkId c = RandomChunk(rng);
    for (Spread spread : {Spread::kHost, Spread::kPeer}) {
      std::vector<PeerId> order = PlacementOrder(c, peers, spread);
      EXPECT_EQ(order.size(), peers.size());
      EXPECT_EQ(order, PlacementOrder(c, peers, spread));
      std::vector<Candidate> shuffled = peers;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      EXPECT_EQ(order, PlacementOrder(c, shuffled, spread)) << "seed " << seed;
      std::set<PeerId> unique(order.begin(), order.end());
      EXPECT_EQ(unique.size(), order.size());
    }
  }
}

TEST(PlacementOrderTest, PeerSpreadIsScoreOrder) {
  std::mt19937_64 rng(3);
  std::vector<Candidate> peers = EqualPeers(6, 2);
  peers[2].weight = 5;
  for (int i = 0; i < 100; ++i) {
    ChunkId c = RandomChunk(rng);
    std::vector<PeerId> order = PlacementOrder(c, peers, Spread::kPeer);
    std::map<PeerId, double> weight;
    for (const Candidate& p : peers) weight[p.peer] = p.weight;
    for (size_t k = 1; k < order.size(); ++k) {
      EXPECT_GE(Score(c, order[k - 1], weight[order[k - 1]]), Score(c, order[k], weight[order[k]]));
    }
  }
}

TEST(PlacementOrderTest, HostSpreadPutsDistinctHostsFirst) {
  const uint64_t seed = 4;
  std::mt19937_64 rng(seed);
  std::vector<Candidate> peers = EqualPeers(8, 4);  // 2 peers on each of 4 hosts
  std::map<PeerId, std::string> host_of;
  for (const Candidate& p : peers) host_of[p.peer] = p.host;
  std::map<PeerId, int> first_place;
  for (int i = 0; i < 2000; ++i) {
    ChunkId c = RandomChunk(rng);
    std::vector<PeerId> order = PlacementOrder(c, peers, Spread::kHost);
    ASSERT_EQ(order.size(), 8u);
    std::set<std::string> first_hosts;
    for (int k = 0; k < 4; ++k) first_hosts.insert(host_of[order[k]]);
    EXPECT_EQ(first_hosts.size(), 4u) << "chunk " << c.Hex() << " seed " << seed;
    // Within the spread prefix and within the rest, the order is the score order; the best
    // overall peer always comes first.
    EXPECT_EQ(order[0], PlacementOrder(c, peers, Spread::kPeer)[0]);
    ++first_place[order[0]];
  }
  EXPECT_EQ(first_place.size(), 8u) << "every peer wins some chunks";
}

TEST(PlacementOrderTest, FirstPlaceIsProportionalToWeight) {
  const uint64_t seed = 5;
  std::mt19937_64 rng(seed);
  std::vector<Candidate> peers = {
      {1, "a", 1, ""}, {2, "b", 2, ""}, {3, "c", 3, ""}, {4, "d", 4, ""}};
  std::map<PeerId, int> wins;
  const int kChunks = 20000;
  for (int i = 0; i < kChunks; ++i)
    ++wins[PlacementOrder(RandomChunk(rng), peers, Spread::kPeer)[0]];
  // Tolerance: each peer's share of first places within ±10% (relative) of w / sum(w).
  // The lightest peer expects 2000 wins with a standard deviation of ~42 (2%), so this is
  // ~5 sigma from a flake while still catching an unweighted (25% each) placement.
  for (const Candidate& p : peers) {
    double want = p.weight / 10.0;
    double got = static_cast<double>(wins[p.peer]) / kChunks;
    EXPECT_NEAR(got, want, 0.10 * want) << "peer " << p.peer << " seed " << seed;
  }
}

TEST(PlacementOrderTest, JoiningPeerMovesFewChunksAndOnlyToItself) {
  const uint64_t seed = 6;
  std::mt19937_64 rng(seed);
  std::vector<Candidate> eight = EqualPeers(8, 8);
  std::vector<Candidate> nine = EqualPeers(9, 9);
  const PeerId newcomer = nine.back().peer;
  const int kChunks = 20000;
  int moved = 0;
  for (int i = 0; i < kChunks; ++i) {
    ChunkId c = RandomChunk(rng);
    for (Spread spread : {Spread::kHost, Spread::kPeer}) {
      PeerId before = PlacementOrder(c, eight, spread)[0];
      PeerId after = PlacementOrder(c, nine, spread)[0];
      if (before != after) {
        EXPECT_EQ(after, newcomer) << "chunk " << c.Hex() << " seed " << seed;
        if (spread == Spread::kPeer) ++moved;
      }
    }
  }
  double fraction = static_cast<double>(moved) / kChunks;
  // Expected 1/9 = 11.1%; allow 3 percentage points above.
  EXPECT_LT(fraction, 1.0 / 9 + 0.03) << "seed " << seed;
  EXPECT_GT(fraction, 1.0 / 9 - 0.03) << "the newcomer should get its share; seed " << seed;
}

TEST(PlacementOrderTest, NonPositiveWeightsAreNeverChosen) {
  std::mt19937_64 rng(7);
  std::vector<Candidate> peers = {{1, "a", 1, ""}, {2, "a", 0, ""},   {3, "b", -5, ""},
                                  {4, "c", 2, ""}, {5, "d", NAN, ""}, {6, "d", INFINITY, ""}};
  for (int i = 0; i < 1000; ++i) {
    ChunkId c = RandomChunk(rng);
    for (Spread spread : {Spread::kHost, Spread::kPeer}) {
      std::vector<PeerId> order = PlacementOrder(c, peers, spread);
      EXPECT_EQ(std::set<PeerId>(order.begin(), order.end()), (std::set<PeerId>{1, 4}));
    }
  }
  std::vector<Candidate> none = {{1, "a", 0, ""}};
  EXPECT_TRUE(PlacementOrder(ChunkId{}, none).empty());
  EXPECT_TRUE(PlacementOrder(ChunkId{}, {}).empty());
}

TEST(OffsiteFirstTest, MovesTheFirstOffsitePeersToTheFront) {
  std::vector<Candidate> peers = {
      {1, "a", 1, ""}, {2, "b", 1, ""}, {3, "c", 1, "s3"}, {4, "d", 1, "far"}, {5, "e", 1, ""}};
  const std::vector<PeerId> order = {2, 4, 1, 5, 3};
  EXPECT_EQ(OffsiteFirst(order, peers, "", 0), order);
  EXPECT_EQ(OffsiteFirst(order, peers, "", 1), (std::vector<PeerId>{4, 2, 1, 5, 3}));
  EXPECT_EQ(OffsiteFirst(order, peers, "", 2), (std::vector<PeerId>{4, 3, 2, 1, 5}));
  EXPECT_EQ(OffsiteFirst(order, peers, "", 9), (std::vector<PeerId>{4, 3, 2, 1, 5}));
  // Off-site is relative to the home peer's site.
  EXPECT_EQ(OffsiteFirst(order, peers, "s3", 1), (std::vector<PeerId>{2, 4, 1, 5, 3}));
  EXPECT_EQ(OffsiteFirst(order, peers, "s3", 4), (std::vector<PeerId>{2, 4, 1, 5, 3}));
  // No peer of another site: the order is unchanged. Unknown peers count as the home site.
  std::vector<Candidate> lan = {{1, "a", 1, ""}, {2, "b", 1, ""}};
  EXPECT_EQ(OffsiteFirst({2, 1, 7}, lan, "", 1), (std::vector<PeerId>{2, 1, 7}));
}

TEST(OffsiteFirstTest, TheFirstCopiesOfEveryChunkIncludeAnOffsitePeerAndKeepHostSpread) {
  std::mt19937_64 rng(11);
  // Six LAN peers on three hosts and one off-site peer.
  std::vector<Candidate> peers = EqualPeers(6, 3);
  peers.push_back({200, "bucket-host", 1.0, "offsite"});
  for (int i = 0; i < 2000; ++i) {
    ChunkId c = RandomChunk(rng);
    std::vector<PeerId> order = OffsiteFirst(PlacementOrder(c, peers), peers, "", 1);
    ASSERT_EQ(order.size(), peers.size());
    EXPECT_EQ(order[0], 200u) << "chunk " << c.Hex();
    // The next copies still go to distinct hosts.
    std::set<std::string> hosts;
    for (size_t j = 0; j < 4; ++j) {
      for (const Candidate& p : peers) {
        if (p.peer == order[j]) hosts.insert(p.host);
      }
    }
    EXPECT_EQ(hosts.size(), 4u) << "chunk " << c.Hex();
  }
}

}  // namespace
}  // namespace cairn::placement
