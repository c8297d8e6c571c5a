// The recovery key (docs/formats.md "Recovery key"; docs/security.md): what
// `cairn key export` prints and `cairn recover` reads to rebuild a lost home peer from the
// other peers. It carries everything a fresh machine needs to be that peer again: the owner
// master key (decrypts the backups), the cluster key (lets it join), its peer id and its node
// id (other members pinned peer id -> node id and refuse a new node id, node_pins.h).
//
// Text form, version 1:
//   "cairn-recovery-1:" base32( payload[89] || crc[4] ), in groups of 6 characters joined by '-'
//   payload = version u8 (= 1) || peer id u64 LE || owner key[32] || cluster key[32] ||
//             node id[16]
//   crc     = CRC-32 (ISO 3309 / ITU-T V.42, as zlib's crc32) of the payload, u32 LE
// base32 is RFC 4648's alphabet in lower case, without '=' padding; the unused low bits of the
// last character must be zero. Parsing ignores case, '-', and white space, so a key copied from
// paper or wrapped over lines still reads.
//
// Why CRC-32 rather than a hash prefix: a CRC detects every error burst of up to 32 bits. One
// mistyped base32 character changes 5 adjacent bits, two swapped neighbours at most 10, so every
// such typo is caught, not just with probability 1 - 2^-32; a dropped or added character changes
// the length, which is fixed. Other damage passes with probability 2^-32. The key is not
// authenticated by the checksum (it does not need to be: a forged key cannot decrypt anything).
//
// Thread-safety: value types and stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/base/ids.h"
#include "cairn/codec/crypto.h"

namespace cairn::cluster {

inline constexpr char kRecoveryKeyPrefix[] = "cairn-recovery-";
inline constexpr uint8_t kRecoveryKeyVersion = 1;

struct RecoveryKey {
  PeerId peer_id = 0;
  codec::Key owner_key{};
  codec::Key cluster_key{};
  std::string node_id;  // 32 lower-case hex characters (cluster_key.h)
  bool operator==(const RecoveryKey&) const = default;
};

// The text form (see file comment). INVALID_ARGUMENT when peer_id is 0 or node_id is not 32 hex
// characters.
absl::StatusOr<std::string> FormatRecoveryKey(const RecoveryKey& key);

// Parses a recovery key. INVALID_ARGUMENT naming the problem: not a recovery key (prefix),
// an unsupported version ("cairn-recovery-2:", or a payload version other than 1), a character
// outside base32, the wrong length ("a character was dropped or added"), a checksum mismatch
// ("mistyped"), or a peer id of 0.
absl::StatusOr<RecoveryKey> ParseRecoveryKey(std::string_view text);

// CRC-32 (reflected polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF): the
// checksum of the recovery key, exposed for tests.
uint32_t Crc32(ByteSpan data);

}  // namespace cairn::cluster
