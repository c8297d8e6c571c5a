// ObjectStore: the narrow view of an S3-compatible bucket that a storage peer needs to keep sealed
// segments off-site (docs/architecture.md "Object store client"): whole-object puts (from memory
// or from a file, multipart above a size), ranged gets, head, delete and paginated listing.
//
// Keys are relative to the store's root (an S3 store's `s3://BUCKET/PREFIX` prefix is added on
// the way out and removed from listed keys); they are non-empty UTF-8 strings of at most 1024
// bytes with no leading '/'. Objects are immutable: Put replaces the whole object.
//
// Status codes every implementation returns (docs/operations.md "An off-site copy in
// S3-compatible storage"):
//   NOT_FOUND          no such key (NoSuchKey), or no such bucket (NoSuchBucket; the message
//                      names the bucket)
//   PERMISSION_DENIED  the service refused the credentials or the signature (HTTP 403)
//   UNAVAILABLE        the service could not be reached, timed out, or kept answering 5xx /
//                      SlowDown after the bounded retries
//   OUT_OF_RANGE       a ranged read starting at or past the end of the object
//   INVALID_ARGUMENT   a bad key or a request the service rejected as malformed
//   DATA_LOSS          the service answered with bytes that cannot be what was asked for
//                      (a short range, an unparseable listing)
//
// Thread-safety: implementations are thread-safe; calls may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/env/file_system.h"

namespace cairn::store::s3 {

struct ObjectInfo {
  std::string key;    // relative to the store's root
  uint64_t size = 0;  // bytes
  std::string etag;   // as the service reports it, quotes removed; opaque
};

// One page of a listing, keys in ascending byte order.
struct ListPage {
  std::vector<ObjectInfo> objects;
  // Non-empty when more keys follow: pass it to the next List call.
  std::string next_token;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Stores `data` (any size, may be empty) as `key`, replacing any object of that key.
  virtual absl::Status Put(std::string_view key, ByteSpan data) = 0;

  // Stores the whole file `path` of `fs` as `key`. An implementation may read the file in parts
  // (an S3 store uploads files above its multipart threshold as a multipart upload, reading one
  // part per request); the file must not change meanwhile. File errors keep their code, with
  // the path in the message.
  virtual absl::Status PutFile(std::string_view key, env::FileSystem* fs,
                               const std::string& path) = 0;

  // Reads `length` bytes from byte `offset` of `key` (HTTP Range bytes=offset-(offset+length-1)).
  // A range reaching past the end returns the bytes up to the end (fewer than `length`);
  // OUT_OF_RANGE when `offset` is at or past the end of the object (an empty object has no
  // byte to read); NOT_FOUND when there is no such key. `length` 0 returns no bytes without
  // asking the service.
  virtual absl::StatusOr<Bytes> GetRange(std::string_view key, uint64_t offset,
                                         uint64_t length) = 0;

  // Size and ETag of `key`; NOT_FOUND when it does not exist.
  virtual absl::StatusOr<ObjectInfo> Head(std::string_view key) = 0;

  // Removes `key`. Deleting a key that does not exist is OK (S3 semantics).
  virtual absl::Status Delete(std::string_view key) = 0;

  // One page of at most `max_keys` (1..1000) keys starting with `prefix`, after the page that
  // returned `token` ("" for the first page).
  virtual absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view token,
                                        int max_keys) = 0;
};

// Every key starting with `prefix`, following the pages of ObjectStore::List (`page_size` keys a
// request). Stops at the first error.
absl::StatusOr<std::vector<ObjectInfo>> ListAll(ObjectStore* store, std::string_view prefix,
                                                int page_size = 1000);

// INVALID_ARGUMENT unless `key` is a valid key (see above).
absl::Status ValidateKey(std::string_view key);

}  // namespace cairn::store::s3
