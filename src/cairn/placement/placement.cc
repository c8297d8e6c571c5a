#include "cairn/placement/placement.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_set>

namespace cairn::placement {
namespace {

bool Eligible(double weight) { return std::isfinite(weight) && weight > 0; }

// h(peer, chunk) in (0, 1), exclusive at both ends: XXH3-64 of chunk id bytes || u64le(peer),
// top 53 bits, centred in their interval.
double UnitHash(const ChunkId& chunk, PeerId peer) {
  uint8_t buf[ChunkId::kSize + 8];
  std::memcpy(buf, chunk.bytes.data(), ChunkId::kSize);
  for (int i = 0; i < 8; ++i) buf[ChunkId::kSize + i] = static_cast<uint8_t>(peer >> (8 * i));
  const uint64_t x = XXH3_64bits(buf, sizeof buf);
  return (static_cast<double>(x >> 11) + 0.5) * 0x1p-53;
}

}  // namespace

double Score(const ChunkId& chunk, PeerId peer, double weight) {
  if (!Eligible(weight)) return 0;
  // ln(h) < 0 for h in (0,1), so the score is positive; P(peer has the largest score) is
  // w / sum(w) (the minimum of exponential variables -ln(h)/w).
  return -weight / std::log(UnitHash(chunk, peer));
}

std::vector<PeerId> PlacementOrder(const ChunkId& chunk, std::span<const Candidate> candidates,
                                   Spread spread) {
  struct Scored {
    double score;
    const Candidate* c;
  };
  std::vector<Scored> scored;
  scored.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    if (Eligible(c.weight)) scored.push_back({Score(chunk, c.peer, c.weight), &c});
  }
  // Ties (practically impossible) break by peer id so every peer computes the same order.
  std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.c->peer < b.c->peer;
  });

  std::vector<PeerId> order;
  order.reserve(scored.size());
  if (spread == Spread::kPeer) {
    for (const Scored& s : scored) order.push_back(s.c->peer);
    return order;
  }
  // kHost: each host's best peer in score order, then everything else in score order.
  std::unordered_set<std::string_view> hosts_seen;
  std::vector<PeerId> rest;
  for (const Scored& s : scored) {
    if (hosts_seen.insert(s.c->host).second) {
      order.push_back(s.c->peer);
    } else {
      rest.push_back(s.c->peer);
    }
  }
  order.insert(order.end(), rest.begin(), rest.end());
  return order;
}

std::vector<PeerId> OffsiteFirst(std::vector<PeerId> order, std::span<const Candidate> candidates,
                                 std::string_view home_site, uint32_t offsite) {
  if (offsite == 0) return order;
  auto away = [&](PeerId p) {
    for (const Candidate& c : candidates) {
      if (c.peer == p) return c.site != home_site;
    }
    return false;
  };
  std::vector<PeerId> front, rest;
  for (PeerId p : order) {
    if (front.size() < offsite && away(p)) {
      front.push_back(p);
    } else {
      rest.push_back(p);
    }
  }
  front.insert(front.end(), rest.begin(), rest.end());
  return front;
}

}  // namespace cairn::placement
