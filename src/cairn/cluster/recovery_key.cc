#include "cairn/cluster/recovery_key.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bytes.h"
#include "cairn/cluster/cluster_key.h"

namespace cairn::cluster {
namespace {

constexpr size_t kNodeIdBytes = 16;
constexpr size_t kPayloadSize = 1 + 8 + codec::kKeySize + codec::kKeySize + kNodeIdBytes;  // 89
constexpr size_t kCrcSize = 4;
constexpr size_t kRawSize = kPayloadSize + kCrcSize;     // 93
constexpr size_t kBase32Chars = (kRawSize * 8 + 4) / 5;  // 149
constexpr size_t kGroup = 6;
constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648 §6, lower case

std::string Base32(ByteSpan data) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

int Base32Value(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

std::string MistypedHint() {
  return "check it against your copy (only a-z and 2-7 appear in a recovery key; '-' and "
         "spaces are ignored)";
}

void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

uint32_t Crc32(ByteSpan data) {
  // Bitwise CRC-32 (the IEEE 802.3 / zlib polynomial, reflected). The key is 89 bytes: no table.
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

absl::StatusOr<std::string> FormatRecoveryKey(const RecoveryKey& key) {
  if (key.peer_id == 0) return absl::InvalidArgumentError("a recovery key needs a peer id >= 1");
  if (!IsValidNodeId(key.node_id)) {
    return absl::InvalidArgumentError("a recovery key needs a node id of 32 hex characters");
  }
  absl::StatusOr<Bytes> node = FromHex(key.node_id);
  if (!node.ok() || node->size() != kNodeIdBytes) {
    return absl::InvalidArgumentError("a recovery key needs a node id of 32 hex characters");
  }
  Bytes raw;
  raw.reserve(kRawSize);
  raw.push_back(kRecoveryKeyVersion);
  PutU64(raw, key.peer_id);
  raw.insert(raw.end(), key.owner_key.begin(), key.owner_key.end());
  raw.insert(raw.end(), key.cluster_key.begin(), key.cluster_key.end());
  raw.insert(raw.end(), node->begin(), node->end());
  uint32_t crc = Crc32(raw);
  for (int i = 0; i < 4; ++i) raw.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  std::string body = Base32(raw);
  std::string out = absl::StrCat(kRecoveryKeyPrefix, static_cast<int>(kRecoveryKeyVersion), ":");
  for (size_t i = 0; i < body.size(); i += kGroup) {
    if (i > 0) out += '-';
    out += body.substr(i, kGroup);
  }
  return out;
}

absl::StatusOr<RecoveryKey> ParseRecoveryKey(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (char c : text) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    s += absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  const std::string prefix = kRecoveryKeyPrefix;
  size_t colon = s.find(':');
  if (s.compare(0, prefix.size(), prefix) != 0 || colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a cairn recovery key: it must start with \"", prefix,
        static_cast<int>(kRecoveryKeyVersion), ":\" (print one with `cairn key export`)"));
  }
  std::string version_text = s.substr(prefix.size(), colon - prefix.size());
  uint32_t version = 0;
  if (!absl::SimpleAtoi(version_text, &version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a cairn recovery key: \"", prefix, version_text, ":\" names no version"));
  }
  if (version != kRecoveryKeyVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recovery key version ", version, " is not supported: this cairn reads version ",
        static_cast<int>(kRecoveryKeyVersion), " (use the cairn release that exported it)"));
  }
  Bytes raw;
  raw.reserve(kRawSize);
  uint32_t buffer = 0;
  int bits = 0;
  size_t chars = 0;
  for (size_t i = colon + 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '-') continue;
    int v = Base32Value(c);
    if (v < 0) {
      return absl::InvalidArgumentError(absl::StrCat("recovery key contains '", std::string(1, c),
                                                     "', which never appears in one: it was "
                                                     "mistyped; ",
                                                     MistypedHint()));
    }
    ++chars;
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      raw.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
    buffer &= (1u << bits) - 1;
  }
  if (chars != kBase32Chars) {
    return absl::InvalidArgumentError(
        absl::StrCat("recovery key has ", chars, " characters after the prefix, not ", kBase32Chars,
                     ": a character was dropped or added, or it was cut short; ", MistypedHint()));
  }
  if (buffer != 0) {  // the unused low bits of the last character
    return absl::InvalidArgumentError(absl::StrCat(
        "recovery key checksum mismatch: its last character was mistyped; ", MistypedHint()));
  }
  uint32_t crc = 0;
  for (int i = 3; i >= 0; --i) crc = (crc << 8) | raw[kPayloadSize + static_cast<size_t>(i)];
  if (crc != Crc32(ByteSpan(raw.data(), kPayloadSize))) {
    return absl::InvalidArgumentError(
        absl::StrCat("recovery key checksum mismatch: it was mistyped; ", MistypedHint()));
  }
  if (raw[0] != kRecoveryKeyVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recovery key payload version ", static_cast<int>(raw[0]),
        " is not supported: this cairn reads version ", static_cast<int>(kRecoveryKeyVersion),
        " (use the cairn release that exported it)"));
  }
  RecoveryKey key;
  const uint8_t* p = raw.data() + 1;
  key.peer_id = GetU64(p);
  p += 8;
  std::memcpy(key.owner_key.data(), p, codec::kKeySize);
  p += codec::kKeySize;
  std::memcpy(key.cluster_key.data(), p, codec::kKeySize);
  p += codec::kKeySize;
  key.node_id = ToHex(ByteSpan(p, kNodeIdBytes));
  if (key.peer_id == 0) return absl::InvalidArgumentError("recovery key names peer id 0");
  return key;
}

}  // namespace cairn::cluster
