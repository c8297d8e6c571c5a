#include "cairn/store/s3/object_store.h"

#include "cairn/base/status.h"

namespace cairn::store::s3 {

absl::StatusOr<std::vector<ObjectInfo>> ListAll(ObjectStore* store, std::string_view prefix,
                                                int page_size) {
  std::vector<ObjectInfo> all;
  std::string token;
  do {
    CAIRN_ASSIGN_OR_RETURN(ListPage page, store->List(prefix, token, page_size));
    if (!page.next_token.empty() && page.next_token == token) {
      return absl::DataLossError("object store listing returned the same continuation token twice");
    }
    for (auto& o : page.objects) all.push_back(std::move(o));
    token = std::move(page.next_token);
  } while (!token.empty());
  return all;
}

absl::Status ValidateKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("object key is empty");
  if (key.size() > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("object key is ", key.size(), " bytes long (at most 1024)"));
  }
  if (key.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("object key \"", std::string(key), "\" starts with '/'"));
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("object key contains a control character");
    }
  }
  return absl::OkStatus();
}

}  // namespace cairn::store::s3
