// Sizes and intervals shared by the peer client and server (internal to net/).
#pragma once

#include <chrono>
#include <cstddef>

#include "cairn/codec/crypto.h"
#include "cairn/format/blob.h"

namespace cairn::net {

// Largest blob envelope on the wire: header + largest payload + GCM tag (format/blob.h).
constexpr size_t kMaxWireBlobSize =
    format::kBlobHeaderSize + format::kMaxBlobSize + codec::kTagSize;
// gRPC message limit in both directions: the largest blob plus slack for the other fields.
constexpr int kMaxMessageSize = 80 << 20;
static_assert(kMaxWireBlobSize + (1 << 20) < static_cast<size_t>(kMaxMessageSize));

// Client keepalive pings (HTTP/2 PING) notice a dead connection during long transfers; the
// server accepts pings this often.
constexpr std::chrono::milliseconds kKeepaliveTime{30000};
constexpr std::chrono::milliseconds kKeepaliveTimeout{10000};
constexpr std::chrono::milliseconds kMinKeepaliveTime{10000};
// Longest a client channel waits between attempts to reconnect to a peer that went away
// (gRPC adds up to 20% jitter). Chunk fetches retry unreachable holders for longer
// (engine/backup.h FetchRetry), so a peer that restarted is read again.
constexpr std::chrono::milliseconds kMaxReconnectBackoff{1000};
// Longest one connection attempt (TCP connect, TLS handshake, HTTP/2 settings) may take before
// the channel gives it up. gRPC's core gives an attempt max(this, the current reconnect
// backoff) and reads it from GRPC_ARG_MIN_RECONNECT_BACKOFF_MS (gRPC doc/connection-backoff.md,
// MIN_CONNECT_TIMEOUT). A refused connection fails at once and is retried after the backoff
// above, so this bound matters for a slow handshake, which a busy peer's TLS can be (one cut
// short fails every call waiting on it), and for a host that is off and answers nothing (calls
// to it wait this long, or their deadline, before UNAVAILABLE; membership then marks it suspect
// and placement passes it over).
constexpr std::chrono::milliseconds kConnectTimeout{2000};

// Server bounds on connections, whoever opens them (docs/security.md "What an unauthenticated
// client can do"). Calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS;
// a member's channel queues any beyond it). A connection that has not finished its HTTP/2
// handshake after kServerHandshakeTimeout, or has had no call for kMaxConnectionIdle, is
// closed (a member's channel reconnects on its next call).
constexpr int kMaxConcurrentStreams = 64;
constexpr std::chrono::milliseconds kServerHandshakeTimeout{10000};
constexpr std::chrono::milliseconds kMaxConnectionIdle{60000};

// Idle threads the peer service keeps for the next calls (gRPC's synchronous server,
// ServerBuilder::SyncServerOption::MAX_POLLERS; default 2). Each sleeps in the completion queue.
constexpr int kMaxIdlePollers = 8;

}  // namespace cairn::net
