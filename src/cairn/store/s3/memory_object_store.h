// MemoryObjectStore: an ObjectStore held in process memory, for tests of the code above the
// object store (the engines' tests later). Same semantics and status codes as the S3 store
// (object_store.h), checked by the same conformance suite (object_store_conformance.h).
// Continuation tokens are the last key of the previous page.
//
// Thread-safety: thread-safe (one mutex).
#pragma once

#include <map>
#include <mutex>

#include "cairn/store/s3/object_store.h"

namespace cairn::store::s3 {

class MemoryObjectStore : public ObjectStore {
 public:
  absl::Status Put(std::string_view key, ByteSpan data) override;
  absl::Status PutFile(std::string_view key, env::FileSystem* fs, const std::string& path) override;
  absl::StatusOr<Bytes> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  absl::StatusOr<ObjectInfo> Head(std::string_view key) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view token,
                                int max_keys) override;

  size_t object_count();

 private:
  std::mutex mu_;
  std::map<std::string, Bytes, std::less<>> objects_;
};

}  // namespace cairn::store::s3
