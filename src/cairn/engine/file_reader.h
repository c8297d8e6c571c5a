// Ranged reads of files in snapshots, for `cairn mount` (GET /v1/read; docs/architecture.md
// "Continuous backup, versions and mount"): a byte range (offset, length) of a file is mapped
// to the file's chunks, the chunks are fetched with FetchChunk (verified and decrypted) through
// a cache of plaintext chunks bounded in bytes, and the requested bytes are copied out.
//
// Chunk offsets come from the chunk sizes the catalog records (ChunkRecord::plain_size), in the
// order of the tree entry's chunk list; a chunk the catalog does not know is fetched once (into
// the cache) to learn its size. The layout of a file — its chunks and their offsets — is
// remembered for later reads of the same file (bounded in chunk references); snapshots are
// immutable, so neither cache needs invalidation. A chunk whose plaintext size disagrees with
// the layout, or a layout that does not add up to the entry's size, is DATA_LOSS.
//
// Read-only: no placement is written, so no gc_lock is taken (docs/operations.md). A chunk
// collected by a concurrent forget is simply not found.
//
// Thread-safety: ChunkCache and FileReader are thread-safe. Concurrent requests for a chunk that
// is not cached fetch it once; the other callers wait for that fetch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"
#include "cairn/engine/context.h"
#include "cairn/format/tree.h"

namespace cairn::engine {

// Least-recently-used cache of decrypted chunks; the bytes it holds (the sum of the plaintext
// sizes of its entries) never exceed `capacity_bytes`. A chunk larger than the capacity is
// returned but not kept. Values are shared: a caller may keep using a chunk after it was
// evicted (that memory is the caller's, not the cache's).
class ChunkCache {
 public:
  using Loader = std::function<absl::StatusOr<Bytes>()>;

  struct Stats {
    uint64_t capacity_bytes = 0;
    uint64_t bytes = 0;       // held now
    uint64_t peak_bytes = 0;  // most ever held at once (<= capacity_bytes)
    uint64_t entries = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;  // loads started
    uint64_t evictions = 0;
  };

  explicit ChunkCache(uint64_t capacity_bytes);

  // The chunk `id`: from the cache, or loaded with `load` — once, however many callers ask for
  // it at the same time — and kept when it fits. A failed load is returned to every waiting
  // caller and not cached.
  absl::StatusOr<std::shared_ptr<const Bytes>> Get(const ChunkId& id, const Loader& load);

  Stats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const Bytes> data;
    std::list<ChunkId>::iterator lru;  // position in lru_ (front = most recent)
  };
  struct Pending {
    bool done = false;
    absl::StatusOr<std::shared_ptr<const Bytes>> result = absl::UnknownError("not loaded");
  };

  // Keeps `data` under `id`, evicting the least recently used entries to make room. mu_ held.
  void Insert(const ChunkId& id, std::shared_ptr<const Bytes> data);

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::unordered_map<ChunkId, Entry, ChunkIdHash> entries_;
  std::list<ChunkId> lru_;
  std::unordered_map<ChunkId, std::shared_ptr<Pending>, ChunkIdHash> pending_;
  Stats stats_;
};

struct FileReaderOptions {
  uint64_t cache_bytes = 64ull << 20;    // plaintext chunk cache (ChunkCache capacity)
  uint64_t max_read_bytes = 4ull << 20;  // a longer read returns this many bytes
  uint64_t layout_chunk_refs = 1 << 18;  // bound of the file-layout cache, in chunk references
};

class FileReader {
 public:
  // `ctx` must outlive the reader.
  explicit FileReader(const EngineContext& ctx, FileReaderOptions options = {});

  // Up to min(length, max_read_bytes) bytes of the regular file at `path` (relative to the
  // snapshot root, '/'-separated raw bytes; leading '/' ignored) in `snapshot`, starting at
  // byte `offset`. Fewer bytes only at the end of the file; none at offset == size.
  // NOT_FOUND: no such path (or a chunk no peer has); INVALID_ARGUMENT: the path is a directory
  // or a symlink, or offset > size; DATA_LOSS/UNAVAILABLE as FetchChunk. Errors name the path.
  absl::StatusOr<Bytes> Read(const format::Snapshot& snapshot, const std::string& path,
                             uint64_t offset, uint64_t length);

  ChunkCache::Stats cache_stats() const { return cache_.stats(); }
  const FileReaderOptions& options() const { return options_; }

 private:
  // A file's chunks and where each starts; offsets.size() == chunks.size() + 1 and
  // offsets.back() is the file size.
  struct Layout {
    std::vector<ChunkId> chunks;
    std::vector<uint64_t> offsets;
  };
  absl::StatusOr<std::shared_ptr<const Layout>> GetLayout(const format::Snapshot& snapshot,
                                                          const std::string& path);
  absl::StatusOr<std::shared_ptr<const Bytes>> GetChunk(const ChunkId& id);

  const EngineContext& ctx_;
  const FileReaderOptions options_;
  ChunkCache cache_;

  // Layout cache: key (root tree id hex + '\0' + normalized path), least recently used first.
  std::mutex layout_mu_;
  std::list<std::pair<std::string, std::shared_ptr<const Layout>>> layouts_;
  std::map<std::string, decltype(layouts_)::iterator> layout_index_;
  uint64_t layout_refs_ = 0;
};

}  // namespace cairn::engine
