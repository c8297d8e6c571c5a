#include "cairn/store/s3/memory_object_store.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::store::s3 {
namespace {

std::string EtagOf(ByteSpan data) {
  // Any stable digest of the content serves; S3's is an MD5 (or a multipart composite).
  return absl::StrCat(data.size(), "-",
                      std::hash<std::string_view>{}(std::string_view(
                          reinterpret_cast<const char*>(data.data()), data.size())));
}

}  // namespace

absl::Status MemoryObjectStore::Put(std::string_view key, ByteSpan data) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard lock(mu_);
  objects_[std::string(key)] = Bytes(data.begin(), data.end());
  return absl::OkStatus();
}

absl::Status MemoryObjectStore::PutFile(std::string_view key, env::FileSystem* fs,
                                        const std::string& path) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  CAIRN_ASSIGN_OR_RETURN(auto file, fs->Open(path, env::OpenMode::kRead));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  Bytes data(size);
  uint64_t done = 0;
  while (done < size) {
    CAIRN_ASSIGN_OR_RETURN(size_t n, file->ReadAt(done, std::span<uint8_t>(data).subspan(done)));
    if (n == 0) return absl::DataLossError(absl::StrCat(path, " shrank while being read"));
    done += n;
  }
  return Put(key, data);
}

absl::StatusOr<Bytes> MemoryObjectStore::GetRange(std::string_view key, uint64_t offset,
                                                  uint64_t length) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  if (length == 0) return Bytes{};
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end())
    return absl::NotFoundError(absl::StrCat("no object \"", std::string(key), "\""));
  const Bytes& data = it->second;
  if (offset >= data.size()) {
    return absl::OutOfRangeError(absl::StrCat("range starts at byte ", offset, " of \"",
                                              std::string(key), "\", which has ", data.size(),
                                              " bytes"));
  }
  uint64_t end = offset + std::min<uint64_t>(data.size() - offset, length);
  return Bytes(data.begin() + offset, data.begin() + end);
}

absl::StatusOr<ObjectInfo> MemoryObjectStore::Head(std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end())
    return absl::NotFoundError(absl::StrCat("no object \"", std::string(key), "\""));
  ObjectInfo info;
  info.key = it->first;
  info.size = it->second.size();
  info.etag = EtagOf(it->second);
  return info;
}

absl::Status MemoryObjectStore::Delete(std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard lock(mu_);
  objects_.erase(std::string(key));
  return absl::OkStatus();
}

absl::StatusOr<ListPage> MemoryObjectStore::List(std::string_view prefix, std::string_view token,
                                                 int max_keys) {
  if (max_keys < 1 || max_keys > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("max_keys ", max_keys, " is not in 1..1000"));
  }
  std::lock_guard lock(mu_);
  auto it = token.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(token);
  ListPage page;
  for (; it != objects_.end() && it->first.starts_with(prefix); ++it) {
    if (static_cast<int>(page.objects.size()) == max_keys) {
      page.next_token = page.objects.back().key;
      break;
    }
    ObjectInfo info;
    info.key = it->first;
    info.size = it->second.size();
    info.etag = EtagOf(it->second);
    page.objects.push_back(std::move(info));
  }
  return page;
}

size_t MemoryObjectStore::object_count() {
  std::lock_guard lock(mu_);
  return objects_.size();
}

}  // namespace cairn::store::s3
