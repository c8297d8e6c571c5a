// Fuzz target: recovery keys (cluster/recovery_key.h, docs/security.md "Keys and identities"),
// text a user types or pastes into `cairn recover`. Inputs go to ParseRecoveryKey as text; a key
// that parses formats back to text that parses to the same key. Inputs of 81 bytes or more also
// become a key (peer id, owner key, cluster key, node id bytes) whose text must round-trip.
#include <cstring>

#include "cairn/cluster/recovery_key.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

Seeds MakeSeeds() {
  cluster::RecoveryKey key;
  key.peer_id = 0x0102030405060708ull;
  for (size_t i = 0; i < key.owner_key.size(); ++i) key.owner_key[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < key.cluster_key.size(); ++i) key.cluster_key[i] = static_cast<uint8_t>(~i);
  key.node_id = "00112233445566778899aabbccddeeff";
  std::string text = *cluster::FormatRecoveryKey(key);
  return {{"key", SeedBytes(text)}, {"key_spaced", SeedBytes("  " + text + "\n")}};
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto key = cluster::ParseRecoveryKey(text);
  if (key.ok()) {
    FUZZ_CHECK(key->peer_id != 0);
    auto formatted = cluster::FormatRecoveryKey(*key);
    FUZZ_CHECK(formatted.ok());
    auto again = cluster::ParseRecoveryKey(*formatted);
    FUZZ_CHECK(again.ok() && *again == *key);
  } else {
    FUZZ_CHECK(key.status().code() == absl::StatusCode::kInvalidArgument);
  }
  if (size >= 8 + 32 + 32 + 16) {
    cluster::RecoveryKey k;
    k.peer_id = GetU64(data);
    std::memcpy(k.owner_key.data(), data + 8, 32);
    std::memcpy(k.cluster_key.data(), data + 40, 32);
    k.node_id = fuzz::Hex(data + 72, 16);
    auto formatted = cluster::FormatRecoveryKey(k);
    FUZZ_CHECK(formatted.ok() == (k.peer_id != 0));
    if (formatted.ok()) {
      auto again = cluster::ParseRecoveryKey(*formatted);
      FUZZ_CHECK(again.ok() && *again == k);
    }
  }
  return 0;
}
