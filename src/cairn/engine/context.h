// EngineContext: what every engine (backup, restore, check and repair, GC, extras, recovery,
// versions) is given — the owner's identity and keys, its catalog and the cluster, through the
// ports (docs/architecture.md "Modules") — and how chunk fetches retry.
#pragma once

#include <chrono>
#include <shared_mutex>

#include "cairn/base/ids.h"
#include "cairn/codec/chunker.h"
#include "cairn/codec/crypto.h"
#include "cairn/engine/peer_set.h"
#include "cairn/env/clock.h"
#include "cairn/placement/placement.h"
#include "cairn/ports/catalog.h"

namespace cairn::engine {

class PeerFailures;  // engine/peer_failures.h

// How a chunk fetch retries holders it could not reach (engine/chunk_io.h FetchChunk;
// docs/architecture.md "Holders and retries").
struct FetchRetry {
  // Holders that failed with UNAVAILABLE or DEADLINE_EXCEEDED are asked again, after a backoff,
  // until this long after the fetch began. Longer than gRPC takes to reconnect to a peer that
  // restarted (net/peer_client.cc caps its reconnect backoff at 1 s, plus 20% jitter).
  std::chrono::milliseconds budget{5000};
  // Before retry round r (0-based) a fetch sleeps a uniformly random time in [c/2, c] with
  // c = min(max_backoff, initial_backoff * 2^r) (jittered, but long enough for a reconnect to
  // make progress), never past the budget.
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{1000};
};

// What the engines share: this owner's identity and keys, its catalog and the cluster.
struct EngineContext {
  PeerId owner = 0;
  codec::OwnerKeys keys;
  codec::ChunkerParams chunker;
  ports::Catalog* catalog = nullptr;
  PeerSet* peers = nullptr;
  env::Clock* clock = nullptr;
  placement::Spread spread = placement::Spread::kHost;
  // This peer's site label: off-site copies go to peers whose site differs (docs/operations.md
  // "Sites and off-site copies").
  std::string site;
  // Garbage-collection lock (docs/operations.md "Garbage collection"; engine/gc.h): backup,
  // check, repair, extra-copy placement, snapshot rewrite and BlobMoved take it shared; GC's
  // mark+sweep and each batch of deletion delivery take it exclusive. Null: no locking.
  std::shared_mutex* gc_lock = nullptr;
  FetchRetry fetch_retry;
  // Peers that could not be reached lately, shared by fetches: tried after the holders that
  // answer. Null: each fetch knows only its own failures (a restore then keeps one of its own).
  PeerFailures* peer_failures = nullptr;
};

}  // namespace cairn::engine
