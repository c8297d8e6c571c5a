// Placement: which peers hold a chunk's blobs (docs/architecture.md "Placement").
//
// Weighted rendezvous (highest-random-weight) hashing — Thaler & Ravishankar, "Using
// name-based mappings to increase hit rates", IEEE/ACM ToN 1998; the weighted form
// score = -w / ln(h(peer, chunk)) with h uniform in (0,1) is from Schindelhauer & Schomaker,
// "Weighted distributed hash tables", SPAA 2005. Pure and deterministic: any peer with the
// same candidate list computes the same order, so blobs can be found without the index and a
// membership change moves few blobs.
//
// Thread-safety: stateless functions.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/ids.h"

namespace cairn::placement {

struct Candidate {
  PeerId peer = 0;
  std::string host;   // failure domain
  double weight = 1;  // normally the peer's quota in bytes; <= 0 is never chosen
  std::string site;   // "" = the LAN site (docs/operations.md "Sites and off-site copies")
};

enum class Spread {
  kHost,  // one peer per host first; reuse hosts only when they run out
  kPeer,  // ignore hosts
};

// Returns every candidate with weight > 0, best first, for `chunk`.
// kHost: the best-scoring peer of each host in score order, then all remaining peers in
// score order. The caller walks this list and takes the first peers that are alive and have
// space. Candidates must have distinct peer ids.
std::vector<PeerId> PlacementOrder(const ChunkId& chunk, std::span<const Candidate> candidates,
                                   Spread spread = Spread::kHost);

// Off-site placement (docs/architecture.md "Placement"): `order` (a PlacementOrder over
// `candidates`) with its first `offsite` peers whose site differs from `home_site` moved to the
// front, in their order; the rest keep theirs. A caller that takes the first N usable peers of
// the result thus puts min(N, offsite) of them on another site when such peers are usable, and
// otherwise falls back to the order as it was. Peers of `order` not in `candidates` count as
// the home site.
std::vector<PeerId> OffsiteFirst(std::vector<PeerId> order, std::span<const Candidate> candidates,
                                 std::string_view home_site, uint32_t offsite);

// The HRW score of one (peer, chunk) pair; exposed for tests. Larger is better.
// h = (floor(XXH3_64(chunk id bytes || u64le(peer)) / 2^11) + 0.5) / 2^53, in (0,1), and
// score = -weight / ln(h) > 0. Returns 0 when weight is not finite and positive (such
// candidates are never placed on, as are weights <= 0).
double Score(const ChunkId& chunk, PeerId peer, double weight);

}  // namespace cairn::placement
