#include "cairn/engine/file_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/snapshot_read.h"

namespace cairn::engine {

ChunkCache::ChunkCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {
  stats_.capacity_bytes = capacity_bytes;
}

absl::StatusOr<std::shared_ptr<const Bytes>> ChunkCache::Get(const ChunkId& id,
                                                             const Loader& load) {
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      stats_.hits++;
      return it->second.data;
    }
    auto p = pending_.find(id);
    if (p != pending_.end()) {
      // Someone is fetching it: wait for that fetch instead of starting another.
      std::shared_ptr<Pending> other = p->second;
      loaded_.wait(lock, [&] { return other->done; });
      stats_.hits++;
      return other->result;
    }
    pending = std::make_shared<Pending>();
    pending_[id] = pending;
    stats_.misses++;
  }
  absl::StatusOr<std::shared_ptr<const Bytes>> result;
  {
    absl::StatusOr<Bytes> data = absl::UnknownError("chunk loader threw");
    try {
      data = load();
    } catch (...) {
      // A loader must not throw; if it does, waiting callers still have to be released.
    }
    if (data.ok()) {
      result = std::make_shared<const Bytes>(*std::move(data));
    } else {
      result = data.status();
    }
  }
  std::lock_guard lock(mu_);
  if (result.ok()) Insert(id, *result);
  pending->result = result;
  pending->done = true;
  pending_.erase(id);
  loaded_.notify_all();
  return result;
}

void ChunkCache::Insert(const ChunkId& id, std::shared_ptr<const Bytes> data) {
  const uint64_t size = data->size();
  if (size > capacity_ || entries_.count(id)) return;
  while (stats_.bytes + size > capacity_ && !lru_.empty()) {
    auto victim = entries_.find(lru_.back());
    stats_.bytes -= victim->second.data->size();
    entries_.erase(victim);
    lru_.pop_back();
    stats_.evictions++;
  }
  lru_.push_front(id);
  entries_[id] = Entry{std::move(data), lru_.begin()};
  stats_.bytes += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.bytes);
}

ChunkCache::Stats ChunkCache::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

FileReader::FileReader(const EngineContext& ctx, FileReaderOptions options)
    : ctx_(ctx), options_(options), cache_(options.cache_bytes) {}

absl::StatusOr<std::shared_ptr<const Bytes>> FileReader::GetChunk(const ChunkId& id) {
  return cache_.Get(id, [&] { return FetchChunk(ctx_, id); });
}

namespace {

// "a/b/c" without empty and "." components (as ListSnapshot reads paths).
std::string NormalizePath(const std::string& path) {
  std::string out;
  for (auto part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (!out.empty()) out += '/';
    out.append(part.data(), part.size());
  }
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const FileReader::Layout>> FileReader::GetLayout(
    const format::Snapshot& snapshot, const std::string& path) {
  const std::string normal = NormalizePath(path);
  std::string key = snapshot.root.Hex();
  key += '\0';
  key += normal;
  {
    std::lock_guard lock(layout_mu_);
    auto it = layout_index_.find(key);
    if (it != layout_index_.end()) {
      layouts_.splice(layouts_.begin(), layouts_, it->second);
      return it->second->second;
    }
  }
  if (normal.empty()) {
    return absl::InvalidArgumentError("the snapshot root is a directory, not a file");
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<ListedEntry> listed,
                         ListSnapshot(ctx_, snapshot, normal, /*recursive=*/false));
  if (listed.empty()) return absl::NotFoundError("path '" + normal + "' is not in the snapshot");
  const format::TreeEntry& entry = listed.front().entry;
  if (entry.type == format::EntryType::kDirectory) {
    return absl::InvalidArgumentError("'" + normal + "' is a directory, not a file");
  }
  if (entry.type == format::EntryType::kSymlink) {
    return absl::InvalidArgumentError("'" + normal + "' is a symlink, not a file");
  }
  auto layout = std::make_shared<Layout>();
  layout->chunks = entry.chunks;
  layout->offsets.reserve(entry.chunks.size() + 1);
  uint64_t offset = 0;
  for (const ChunkId& id : entry.chunks) {
    layout->offsets.push_back(offset);
    CAIRN_ASSIGN_OR_RETURN(std::optional<ports::ChunkRecord> record, ctx_.catalog->FindChunk(id));
    if (record && record->plain_size > 0) {
      offset += record->plain_size;
    } else {
      // Size unknown (after `cairn recover`): learn it from the chunk itself (it stays cached),
      // and the catalog keeps it for the next time.
      CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> data,
                             Annotate(GetChunk(id), "read '" + normal + "'"));
      offset += data->size();
      if (record) {
        ports::ChunkRecord learned = *record;
        learned.holders.clear();
        learned.shards.clear();
        learned.extras.clear();
        learned.plain_size = data->size();
        (void)ctx_.catalog->AddChunk(learned);  // best effort: only a cache of the size
      }
    }
  }
  layout->offsets.push_back(offset);
  if (offset != entry.size) {
    return absl::DataLossError(absl::StrCat("read '", normal, "': its chunks hold ", offset,
                                            " bytes but the snapshot records ", entry.size));
  }
  std::shared_ptr<const Layout> shared = std::move(layout);
  std::lock_guard lock(layout_mu_);
  if (layout_index_.count(key) == 0) {
    const uint64_t refs = shared->chunks.size() + 1;
    while (layout_refs_ + refs > options_.layout_chunk_refs && !layouts_.empty()) {
      layout_refs_ -= layouts_.back().second->chunks.size() + 1;
      layout_index_.erase(layouts_.back().first);
      layouts_.pop_back();
    }
    if (refs <= options_.layout_chunk_refs) {
      layouts_.emplace_front(key, shared);
      layout_index_[key] = layouts_.begin();
      layout_refs_ += refs;
    }
  }
  return shared;
}

absl::StatusOr<Bytes> FileReader::Read(const format::Snapshot& snapshot, const std::string& path,
                                       uint64_t offset, uint64_t length) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Layout> layout, GetLayout(snapshot, path));
  const uint64_t size = layout->offsets.back();
  if (offset > size) {
    return absl::InvalidArgumentError(absl::StrCat("read '", NormalizePath(path), "': offset ",
                                                   offset, " is beyond the end of the file (", size,
                                                   " bytes)"));
  }
  const uint64_t end = offset + std::min({length, options_.max_read_bytes, size - offset});
  Bytes out;
  out.reserve(end - offset);
  // The first chunk that ends after `offset`.
  size_t i = std::upper_bound(layout->offsets.begin(), layout->offsets.end(), offset) -
             layout->offsets.begin();
  i = i == 0 ? 0 : i - 1;
  for (uint64_t pos = offset; pos < end; ++i) {
    const uint64_t start = layout->offsets[i];
    const uint64_t chunk_size = layout->offsets[i + 1] - start;
    CAIRN_ASSIGN_OR_RETURN(
        std::shared_ptr<const Bytes> data,
        Annotate(GetChunk(layout->chunks[i]), "read '" + NormalizePath(path) + "'"));
    if (data->size() != chunk_size) {
      return absl::DataLossError(absl::StrCat("read '", NormalizePath(path), "': chunk ",
                                              layout->chunks[i].ShortHex(), " holds ", data->size(),
                                              " bytes, the catalog says ", chunk_size));
    }
    const uint64_t from = pos - start;
    const uint64_t n = std::min(chunk_size - from, end - pos);
    out.insert(out.end(), data->begin() + static_cast<ptrdiff_t>(from),
               data->begin() + static_cast<ptrdiff_t>(from + n));
    pos += n;
  }
  return out;
}

}  // namespace cairn::engine
