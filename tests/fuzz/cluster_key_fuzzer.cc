// Fuzz target: join tokens (cluster/cluster_key.h, docs/security.md "Keys and identities"),
// text a user pastes into `cairn init --join`. A token that parses formats back to text that
// parses to the same token; node ids are checked as the wire carries them.
#include "cairn/cluster/cluster_key.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

Seeds MakeSeeds() {
  cluster::JoinToken token;
  for (size_t i = 0; i < token.key.size(); ++i) token.key[i] = static_cast<uint8_t>(i * 3);
  token.address = "192.0.2.1:7600";
  std::string text = *cluster::FormatJoinToken(token);
  token.address = "[::1]:7600";
  std::string v6 = *cluster::FormatJoinToken(token);
  return {{"token", SeedBytes(text)}, {"token_v6", SeedBytes(" " + v6 + " \n")}};
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto token = cluster::ParseJoinToken(text);
  if (token.ok()) {
    auto formatted = cluster::FormatJoinToken(*token);
    FUZZ_CHECK(formatted.ok());
    auto again = cluster::ParseJoinToken(*formatted);
    FUZZ_CHECK(again.ok() && *again == *token);
  } else {
    FUZZ_CHECK(token.status().code() == absl::StatusCode::kInvalidArgument);
  }
  if (cluster::IsValidNodeId(text)) FUZZ_CHECK(text.size() == 32);
  return 0;
}
