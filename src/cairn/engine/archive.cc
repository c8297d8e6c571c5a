#include "cairn/engine/archive.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"
#include "cairn/codec/chunker.h"
#include "cairn/codec/crypto.h"
#include "cairn/engine/snapshot_io.h"
#include "cairn/engine/snapshot_read.h"
#include "spdlog/spdlog.h"

namespace cairn::engine {

namespace fs = std::filesystem;
using format::EntryType;

// One entry of the archive's tree. Fields up to `content_mu` are guarded by Archive::mu_; the
// content fields after it by `content_mu` (taken before mu_ when both are needed).
struct Archive::Node {
  EntryType type = EntryType::kFile;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;
  Node* parent = nullptr;  // null for the root and for unlinked nodes
  // Directories: children by name (byte order), and the stored tree while nothing below changed.
  std::map<std::string, std::shared_ptr<Node>> children;
  std::optional<ChunkId> tree_id;
  std::string target;  // symlinks
  // Files: the content the latest version records, and descriptors open for writing.
  bool in_version = false;
  std::vector<ChunkId> version_chunks;
  uint64_t version_size = 0;
  int writers = 0;
  int handles = 0;

  std::mutex content_mu;
  // The stored content ("base"): chunks and their start offsets (offsets.size() ==
  // chunks.size() + 1 once known; empty until then).
  std::vector<ChunkId> chunks;
  std::vector<uint64_t> offsets;
  uint64_t base_size = 0;
  // Bytes [0, base_valid) not covered by `written` read from the base; beyond it, zeros.
  uint64_t base_valid = 0;
  std::atomic<uint64_t> size{0};
  std::map<uint64_t, uint64_t> written;  // spooled ranges: start -> end, disjoint
  int spool_fd = -1;
  std::string spool_path;
  bool dirty = false;               // written (or truncated) since the base was stored
  bool stored_unversioned = false;  // the base was stored by a spool flush, not yet versioned
};

namespace {

constexpr uint64_t kNoOffset = std::numeric_limits<uint64_t>::max();

int64_t NowNs(const EngineContext& ctx) { return ctx.clock->NowNanos(); }

int ErrnoOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return -ENOENT;
    case absl::StatusCode::kResourceExhausted:
      return -ENOSPC;
    default:
      return -EIO;
  }
}

// The components of an absolute path ("/" has none); false for a relative path or "." / "..".
bool SplitPath(const std::string& path, std::vector<std::string>* out) {
  out->clear();
  if (path.empty() || path[0] != '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") return false;
    out->emplace_back(part);
  }
  return true;
}

absl::Status PreadFull(int fd, char* out, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, "read spool");
    if (r == 0) return absl::DataLossError("spool file shorter than recorded");
    out += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

absl::Status PwriteFull(int fd, const char* in, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pwrite(fd, in, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, "write spool");
    in += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace

Redundancy RedundancyOf(const format::Snapshot& version) {
  Redundancy r;
  if (version.ec_k > 0) {
    r.ec = codec::ErasureScheme{static_cast<int>(version.ec_k), static_cast<int>(version.ec_m)};
  }
  r.copies = version.copies > 0 ? version.copies : 2;
  return r;
}

absl::StatusOr<std::vector<ArchiveInfo>> ListArchives(ports::Catalog* catalog) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ports::SnapshotRecord> all, catalog->ListSnapshots());
  std::map<std::string, ArchiveInfo> by_name;
  for (ports::SnapshotRecord& s : all) {  // oldest first: the last one seen is the latest
    if (s.snapshot.archive.empty()) continue;
    ArchiveInfo& info = by_name[s.snapshot.archive];
    info.name = s.snapshot.archive;
    info.versions++;
    info.latest = std::move(s);
  }
  std::vector<ArchiveInfo> out;
  for (auto& [name, info] : by_name) out.push_back(std::move(info));
  return out;
}

absl::StatusOr<ports::SnapshotRecord> CreateArchive(const EngineContext& ctx,
                                                    const std::string& name,
                                                    const Redundancy& redundancy,
                                                    const std::string& hostname) {
  if (!format::IsArchiveName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "archive name \"", name, "\" is not 1 to 64 of the characters A-Z a-z 0-9 . _ -"));
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<ArchiveInfo> existing, ListArchives(ctx.catalog));
  for (const ArchiveInfo& a : existing) {
    if (a.name == name) return absl::AlreadyExistsError("archive " + name + " already exists");
  }
  std::shared_lock<std::shared_mutex> gc_lock;
  if (ctx.gc_lock) gc_lock = std::shared_lock(*ctx.gc_lock);
  CAIRN_ASSIGN_OR_RETURN(StoredChunk root, StoreTree(ctx, format::Tree{}, redundancy));
  format::Snapshot s;
  s.time_ns = NowNs(ctx);
  s.owner = ctx.owner;
  s.hostname = hostname;
  s.root = root.id;
  s.archive = name;
  if (redundancy.ec) {
    s.ec_k = static_cast<uint32_t>(redundancy.ec->k);
    s.ec_m = static_cast<uint32_t>(redundancy.ec->m);
    s.copies = redundancy.CopiesForCopiesChunk();
  } else {
    s.copies = redundancy.copies;
  }
  s.stats.directories = 1;
  CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreSnapshot(ctx, s, redundancy));
  return ports::SnapshotRecord{stored.id, s};
}

Archive::Archive(const EngineContext& ctx, std::string name, ArchiveOptions options)
    : ctx_(ctx),
      name_(std::move(name)),
      options_(std::move(options)),
      cache_(options_.cache_bytes) {
  for (int i = 0; i < 2; ++i) prefetchers_.emplace_back([this] { PrefetchLoop(); });
}

void Archive::Prefetch(std::vector<ChunkId> ids) {
  {
    std::lock_guard lock(prefetch_mu_);
    for (const ChunkId& id : ids) {
      if (prefetch_queue_.size() >= kPrefetchQueue) break;
      if (prefetch_pending_.insert(id).second) prefetch_queue_.push_back(id);
    }
  }
  prefetch_cv_.notify_all();
}

void Archive::PrefetchLoop() {
  std::unique_lock lock(prefetch_mu_);
  while (true) {
    prefetch_cv_.wait(lock, [this] { return prefetch_stop_ || !prefetch_queue_.empty(); });
    if (prefetch_stop_) return;
    ChunkId id = prefetch_queue_.front();
    prefetch_queue_.pop_front();
    lock.unlock();
    (void)GetChunk(id);  // into the cache; a failure is met again by the read that needs it
    lock.lock();
    prefetch_pending_.erase(id);
  }
}

Archive::~Archive() {
  {
    std::lock_guard lock(prefetch_mu_);
    prefetch_stop_ = true;
  }
  prefetch_cv_.notify_all();
  for (std::thread& t : prefetchers_) t.join();
  std::lock_guard lock(mu_);
  std::vector<Node*> stack = {root_.get()};
  auto drop = [&](Node& n) {
    std::lock_guard content(n.content_mu);
    DropSpool(n);
  };
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n == nullptr) continue;
    if (n->type == EntryType::kFile) drop(*n);
    for (auto& [_, c] : n->children) stack.push_back(c.get());
  }
  for (auto& [_, h] : handles_) {
    if (h.node->parent == nullptr && h.node.get() != root_.get()) drop(*h.node);
  }
}

absl::StatusOr<std::unique_ptr<Archive>> Archive::Open(const EngineContext& ctx,
                                                       const std::string& name,
                                                       ArchiveOptions options) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ArchiveInfo> archives, ListArchives(ctx.catalog));
  const ArchiveInfo* info = nullptr;
  for (const ArchiveInfo& a : archives) {
    if (a.name == name) info = &a;
  }
  if (info == nullptr) {
    return absl::NotFoundError("no archive named " + name + " (cairn archive create " + name +
                               " makes one)");
  }
  std::error_code ec;
  fs::create_directories(options.spool_dir, ec);
  if (ec) return absl::InternalError("spool " + options.spool_dir + ": " + ec.message());
  std::unique_ptr<Archive> a(new Archive(ctx, name, std::move(options)));
  absl::StatusOr<env::DirLock> lock = env::DirLock::Acquire(a->options_.spool_dir);
  if (!lock.ok()) {
    if (absl::IsFailedPrecondition(lock.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("archive ", name, " is already mounted (", lock.status().message(), ")"));
    }
    return lock.status();
  }
  a->lock_ = std::move(*lock);
  // Spool files of writes never stored: a crash while files were open for writing.
  for (const fs::directory_entry& e : fs::directory_iterator(a->options_.spool_dir, ec)) {
    if (e.path().extension() != ".spool") continue;
    std::error_code size_ec;
    uint64_t bytes = fs::file_size(e.path(), size_ec);
    spdlog::warn("archive {}: dropped {} ({} bytes): writes to a file that was never closed", name,
                 e.path().string(), size_ec ? 0 : bytes);
    fs::remove(e.path(), size_ec);
    a->stats_.dropped_spool_files++;
  }
  a->base_version_ = info->latest.snapshot;
  a->redundancy_ = RedundancyOf(info->latest.snapshot);
  a->latest_ = info->latest.id;

  // Load every tree of the latest version.
  a->root_ = std::make_shared<Node>();
  a->root_->type = EntryType::kDirectory;
  a->root_->mode = 0755;
  a->root_->ino = 1;
  a->root_->mtime_ns = info->latest.snapshot.time_ns;
  a->root_->ctime_ns = info->latest.snapshot.time_ns;
  a->root_->tree_id = info->latest.snapshot.root;
  std::vector<Node*> pending = {a->root_.get()};
  while (!pending.empty()) {
    Node* dir = pending.back();
    pending.pop_back();
    CAIRN_ASSIGN_OR_RETURN(format::Tree tree, LoadTree(ctx, *dir->tree_id));
    for (format::TreeEntry& e : tree.entries) {
      auto n = a->NewNode(e.type, e.mode, e.uid, e.gid);
      n->mtime_ns = e.mtime_ns;
      n->ctime_ns = e.ctime_ns;
      n->parent = dir;
      if (e.type == EntryType::kDirectory) {
        n->tree_id = e.subtree;
        pending.push_back(n.get());
      } else if (e.type == EntryType::kSymlink) {
        n->target = e.symlink_target;
      } else {
        n->in_version = true;
        n->version_chunks = e.chunks;
        n->version_size = e.size;
        n->chunks = std::move(e.chunks);
        n->base_size = n->base_valid = e.size;
        n->size = e.size;
      }
      dir->children.emplace(e.name, std::move(n));
    }
  }
  return a;
}

std::shared_ptr<Archive::Node> Archive::NewNode(EntryType type, uint32_t mode, uint32_t uid,
                                                uint32_t gid) {
  auto n = std::make_shared<Node>();
  n->type = type;
  n->mode = mode & 07777;
  n->uid = uid;
  n->gid = gid;
  n->ino = next_ino_++;
  n->mtime_ns = n->ctime_ns = NowNs(ctx_);
  return n;
}

std::shared_ptr<Archive::Node> Archive::Lookup(const std::string& path) const {
  std::vector<std::string> parts;
  if (!SplitPath(path, &parts)) return nullptr;
  std::shared_ptr<Node> n = root_;
  for (const std::string& p : parts) {
    if (n->type != EntryType::kDirectory) return nullptr;
    auto it = n->children.find(p);
    if (it == n->children.end()) return nullptr;
    n = it->second;
  }
  return n;
}

int Archive::LookupParent(const std::string& path, std::shared_ptr<Node>* parent,
                          std::string* leaf) const {
  std::vector<std::string> parts;
  if (!SplitPath(path, &parts)) return -EINVAL;
  if (parts.empty()) return -EBUSY;  // the top directory itself
  *leaf = parts.back();
  if (leaf->size() > 255) return -ENAMETOOLONG;
  std::shared_ptr<Node> n = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = n->children.find(parts[i]);
    if (it == n->children.end()) return -ENOENT;
    n = it->second;
    if (n->type != EntryType::kDirectory) return -ENOTDIR;
  }
  *parent = n;
  return 0;
}

void Archive::Touch(Node* dir) {
  changed_ = true;
  for (Node* d = dir; d != nullptr; d = d->parent) d->tree_id.reset();
}

ArchiveAttr Archive::AttrOf(const Node& n) const {
  ArchiveAttr a;
  a.type = n.type;
  a.mode = n.mode;
  a.uid = n.uid;
  a.gid = n.gid;
  a.mtime_ns = n.mtime_ns;
  a.ctime_ns = n.ctime_ns;
  a.ino = n.ino;
  if (n.type == EntryType::kFile) {
    a.size = n.size.load();
  } else if (n.type == EntryType::kSymlink) {
    a.size = n.target.size();
  } else {
    a.nlink = 2;
    for (const auto& [_, c] : n.children) a.nlink += c->type == EntryType::kDirectory ? 1 : 0;
  }
  return a;
}

int Archive::GetAttr(const std::string& path, ArchiveAttr* out) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  *out = AttrOf(*n);
  return 0;
}

int Archive::ReadDir(const std::string& path,
                     std::vector<std::pair<std::string, ArchiveAttr>>* out) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  if (n->type != EntryType::kDirectory) return -ENOTDIR;
  out->clear();
  for (const auto& [name, c] : n->children) out->emplace_back(name, AttrOf(*c));
  return 0;
}

int Archive::ReadLink(const std::string& path, std::string* target) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  if (n->type != EntryType::kSymlink) return -EINVAL;
  *target = n->target;
  return 0;
}

int Archive::OpenNode(const std::shared_ptr<Node>& node, int flags, uint64_t* handle) {
  // mu_ held.
  bool write = (flags & O_ACCMODE) != O_RDONLY;
  Handle h{node, write};
  node->handles++;
  if (write) node->writers++;
  *handle = next_handle_++;
  handles_.emplace(*handle, std::move(h));
  return 0;
}

int Archive::Create(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid, int flags,
                    uint64_t* handle) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    std::shared_ptr<Node> parent;
    std::string leaf;
    if (int r = LookupParent(path, &parent, &leaf); r != 0) return r;
    auto it = parent->children.find(leaf);
    if (it != parent->children.end()) {
      if (flags & O_EXCL) return -EEXIST;
      if (it->second->type == EntryType::kDirectory) return -EISDIR;
      if (it->second->type != EntryType::kFile) return -EINVAL;
      node = it->second;
    } else {
      node = NewNode(EntryType::kFile, mode, uid, gid);
      node->parent = parent.get();
      parent->children.emplace(leaf, node);
      parent->mtime_ns = parent->ctime_ns = NowNs(ctx_);
      Touch(parent.get());
      OpenNode(node, flags, handle);
      return 0;
    }
  }
  return Open(path, flags, handle);
}

int Archive::Open(const std::string& path, int flags, uint64_t* handle) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    node = Lookup(path);
    if (!node) return -ENOENT;
    if (node->type == EntryType::kDirectory) {
      if ((flags & O_ACCMODE) != O_RDONLY) return -EISDIR;
    } else if (node->type != EntryType::kFile) {
      return -ELOOP;
    }
    OpenNode(node, flags, handle);
  }
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && node->type == EntryType::kFile) {
    std::lock_guard content(node->content_mu);
    if (int r = TruncateLocked(*node, 0); r != 0) return r;
  }
  return 0;
}

int Archive::TruncateLocked(Node& node, uint64_t size) {
  uint64_t old = node.size.load();
  if (size == old) return 0;
  if (size < old) {
    node.base_valid = std::min(node.base_valid, size);
    uint64_t dropped = 0;
    auto it = node.written.lower_bound(size);
    if (it != node.written.begin()) {
      auto p = std::prev(it);
      if (p->second > size) {
        dropped += p->second - size;
        p->second = size;
      }
    }
    for (auto e = it; e != node.written.end(); ++e) dropped += e->second - e->first;
    node.written.erase(it, node.written.end());
    spooled_bytes_ -= dropped;
    if (node.spool_fd >= 0 && ::ftruncate(node.spool_fd, static_cast<off_t>(size)) != 0) {
      return -errno;
    }
  }
  node.size = size;
  node.dirty = true;
  std::lock_guard lock(mu_);
  node.mtime_ns = node.ctime_ns = NowNs(ctx_);
  changed_ = true;
  if (node.parent) Touch(node.parent);
  return 0;
}

int Archive::Truncate(const std::string& path, uint64_t size, std::optional<uint64_t> handle) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    if (handle) {
      auto it = handles_.find(*handle);
      if (it == handles_.end()) return -EBADF;
      node = it->second.node;
    } else {
      node = Lookup(path);
    }
    if (!node) return -ENOENT;
    if (node->type == EntryType::kDirectory) return -EISDIR;
    if (node->type != EntryType::kFile) return -EINVAL;
  }
  std::lock_guard content(node->content_mu);
  return TruncateLocked(*node, size);
}

absl::StatusOr<std::shared_ptr<const Bytes>> Archive::GetChunk(const ChunkId& id) {
  return cache_.Get(id, [&]() { return FetchChunk(ctx_, id); });
}

absl::Status Archive::EnsureOffsets(Node& node) {
  if (node.offsets.size() == node.chunks.size() + 1) return absl::OkStatus();
  std::vector<uint64_t> offsets = {0};
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::optional<ports::ChunkRecord>> records,
                         ctx_.catalog->FindChunks(node.chunks));
  for (size_t i = 0; i < node.chunks.size(); ++i) {
    uint64_t n = records[i] ? records[i]->plain_size : 0;
    if (n == 0) {  // unknown to the catalog (or its size is): fetch it to learn the size
      CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> data, GetChunk(node.chunks[i]));
      n = data->size();
    }
    offsets.push_back(offsets.back() + n);
  }
  if (offsets.back() != node.base_size) {
    return absl::DataLossError(absl::StrCat("archive file's chunks add up to ", offsets.back(),
                                            " bytes, its entry says ", node.base_size));
  }
  node.offsets = std::move(offsets);
  return absl::OkStatus();
}

absl::Status Archive::ReadLogical(Node& node, uint64_t offset, uint64_t length, char* out) {
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    auto it = node.written.upper_bound(pos);
    if (it != node.written.begin()) {
      auto p = std::prev(it);
      if (p->second > pos) {
        uint64_t n = std::min(end, p->second) - pos;
        CAIRN_RETURN_IF_ERROR(PreadFull(node.spool_fd, out + (pos - offset), n, pos));
        pos += n;
        continue;
      }
    }
    uint64_t stop = std::min(end, it == node.written.end() ? kNoOffset : it->first);
    if (pos < node.base_valid) {
      stop = std::min(stop, node.base_valid);
      CAIRN_RETURN_IF_ERROR(EnsureOffsets(node));
      size_t i =
          static_cast<size_t>(std::upper_bound(node.offsets.begin(), node.offsets.end(), pos) -
                              node.offsets.begin() - 1);
      if (i + 1 < node.chunks.size()) {  // read ahead the next chunks of the file
        Prefetch(std::vector<ChunkId>(node.chunks.begin() + static_cast<std::ptrdiff_t>(i + 1),
                                      node.chunks.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                                i + 5, node.chunks.size()))));
      }
      CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> chunk, GetChunk(node.chunks[i]));
      if (chunk->size() != node.offsets[i + 1] - node.offsets[i]) {
        return absl::DataLossError("archive chunk " + node.chunks[i].ShortHex() +
                                   " has another size than the file's layout says");
      }
      uint64_t n = std::min(stop, node.offsets[i + 1]) - pos;
      std::memcpy(out + (pos - offset), chunk->data() + (pos - node.offsets[i]), n);
      pos += n;
    } else {
      std::memset(out + (pos - offset), 0, stop - pos);
      pos = stop;
    }
  }
  return absl::OkStatus();
}

long Archive::Read(uint64_t handle, char* buf, size_t size, uint64_t offset) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    node = it->second.node;
  }
  if (node->type != EntryType::kFile) return -EISDIR;
  std::lock_guard content(node->content_mu);
  uint64_t file_size = node->size.load();
  if (offset >= file_size) return 0;
  uint64_t n = std::min<uint64_t>(size, file_size - offset);
  absl::Status s = ReadLogical(*node, offset, n, buf);
  if (!s.ok()) {
    spdlog::error("archive {}: read failed: {}", name_, s.ToString());
    return ErrnoOf(s) == -ENOENT ? -EIO : ErrnoOf(s);
  }
  return static_cast<long>(n);
}

long Archive::Write(uint64_t handle, const char* buf, size_t size, uint64_t offset) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    if (!it->second.write) return -EBADF;
    node = it->second.node;
  }
  std::lock_guard content(node->content_mu);
  if (spooled_bytes_.load() + size > options_.spool_bytes && !node->written.empty()) {
    // The spool is full: store what this file has spooled (docs/operations.md "Archives").
    {
      std::lock_guard pin(pin_mu_);
      if (ctx_.gc_lock && !gc_pin_.owns_lock()) gc_pin_ = std::shared_lock(*ctx_.gc_lock);
    }
    absl::Status stored = StoreContent(*node);
    if (!stored.ok()) {
      spdlog::error("archive {}: the spool is full and storing a file failed: {}", name_,
                    stored.ToString());
      return -EIO;
    }
    std::lock_guard lock(mu_);
    node->stored_unversioned = true;  // guarded by both locks: read under either
    stats_.spool_flushes++;
  }
  if (node->spool_fd < 0) {
    std::string path;
    {
      std::lock_guard lock(mu_);
      path = absl::StrCat(options_.spool_dir, "/", next_spool_++, ".spool");
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      spdlog::error("archive {}: cannot create spool file {}: {}", name_, path,
                    std::strerror(errno));
      return -EIO;
    }
    node->spool_fd = fd;
    node->spool_path = path;
  }
  if (absl::Status w = PwriteFull(node->spool_fd, buf, size, offset); !w.ok()) {
    spdlog::error("archive {}: {}", name_, w.ToString());
    return -EIO;
  }
  // Record [offset, offset + size), merging with the ranges it touches.
  uint64_t start = offset, end = offset + size, covered_before = 0;
  auto it = node->written.upper_bound(start);
  if (it != node->written.begin() && std::prev(it)->second >= start) --it;
  while (it != node->written.end() && it->first <= end) {
    covered_before += it->second - it->first;
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = node->written.erase(it);
  }
  node->written.emplace(start, end);
  spooled_bytes_ += (end - start) - covered_before;
  if (offset + size > node->size.load()) node->size = offset + size;
  node->dirty = true;
  std::lock_guard lock(mu_);
  node->mtime_ns = node->ctime_ns = NowNs(ctx_);
  changed_ = true;
  if (node->parent) Touch(node->parent);
  return static_cast<long>(size);
}

void Archive::DropSpool(Node& node) {
  uint64_t bytes = 0;
  for (const auto& [s, e] : node.written) bytes += e - s;
  spooled_bytes_ -= bytes;
  node.written.clear();
  if (node.spool_fd >= 0) {
    ::close(node.spool_fd);
    ::unlink(node.spool_path.c_str());
    node.spool_fd = -1;
    node.spool_path.clear();
  }
}

absl::Status Archive::StoreContent(Node& node) {
  if (!node.dirty) return absl::OkStatus();
  CAIRN_RETURN_IF_ERROR(EnsureOffsets(node));
  const uint64_t size = node.size.load();
  // The changed region [cs, ce): written ranges, a cut-off base, a changed length.
  uint64_t cs = kNoOffset, ce = 0;
  if (!node.written.empty()) {
    cs = node.written.begin()->first;
    ce = node.written.rbegin()->second;
  }
  if (node.base_valid < node.base_size || size != node.base_size) {
    cs = std::min({cs, node.base_valid, std::min(size, node.base_size)});
    ce = std::max(ce, size);
  }
  if (cs == kNoOffset) {  // nothing changed after all
    DropSpool(node);
    node.dirty = false;
    return absl::OkStatus();
  }
  // Re-chunk from the start of the stored chunk holding cs (the last one when cs is past them:
  // its end was the end of the file, not a content-defined cut).
  size_t first = 0;
  if (!node.chunks.empty()) {
    first = static_cast<size_t>(std::upper_bound(node.offsets.begin(), node.offsets.end(), cs) -
                                node.offsets.begin() - 1);
    first = std::min(first, node.chunks.size() - 1);
  }
  std::vector<ChunkId> chunks(node.chunks.begin(), node.chunks.begin() + first);
  std::vector<uint64_t> offsets(node.offsets.begin(), node.offsets.begin() + first + 1);
  if (offsets.empty()) offsets.push_back(0);

  codec::Chunker chunker(ctx_.chunker, ctx_.keys.chunker_seed);
  const size_t max_chunk = ctx_.chunker.max_size;
  // New chunks are sealed on their own threads (as backup's upload workers do) and their puts
  // started; the answers are collected in order, at most kInFlight chunks at a time.
  struct Started {
    std::optional<CopiesInFlight> copies;  // puts in flight
    std::optional<StoreOutcome> done;      // stored already (erasure coding)
  };
  constexpr size_t kInFlight = 8;
  std::deque<std::future<absl::StatusOr<Started>>> in_flight;
  uint64_t stored = 0, deduplicated = 0, below = 0, bytes = 0;
  auto finish_one = [&]() -> absl::Status {
    absl::StatusOr<Started> started = in_flight.front().get();
    in_flight.pop_front();
    CAIRN_RETURN_IF_ERROR(started.status());
    StoreOutcome out;
    if (started->copies) {
      CAIRN_ASSIGN_OR_RETURN(out, FinishCopies(ctx_, *started->copies));
    } else {
      out = *started->done;
    }
    if (!out.at_target) below++;
    return absl::OkStatus();
  };
  auto store = [&](ByteSpan data) -> absl::StatusOr<ChunkId> {
    ChunkId id = codec::ComputeChunkId(ctx_.keys.id_key, data);
    CAIRN_ASSIGN_OR_RETURN(std::optional<ports::ChunkRecord> known, ctx_.catalog->FindChunk(id));
    if (known && SatisfiesRedundancy(*known, redundancy_)) {
      deduplicated++;
      return id;
    }
    stored++;
    bytes += data.size();
    if (!known) {
      in_flight.push_back(std::async(
          std::launch::async,
          [this, id, plain = Bytes(data.begin(), data.end())]() -> absl::StatusOr<Started> {
            Started s;
            CAIRN_ASSIGN_OR_RETURN(s.copies,
                                   StartNewCopies(ctx_, BlobKind::kData, id, plain, redundancy_));
            if (!s.copies) {
              CAIRN_ASSIGN_OR_RETURN(
                  s.done, PutChunk(ctx_, BlobKind::kData, id, plain, redundancy_, std::nullopt));
            }
            return s;
          }));
      while (in_flight.size() > kInFlight) CAIRN_RETURN_IF_ERROR(finish_one());
      return id;
    }
    CAIRN_ASSIGN_OR_RETURN(StoreOutcome out,
                           PutChunk(ctx_, BlobKind::kData, id, data, redundancy_, known));
    if (!out.at_target) below++;
    return id;
  };

  uint64_t pos = offsets.back();
  std::string buf;
  absl::Status status = absl::OkStatus();
  while (pos < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(max_chunk, size - pos));
    if (buf.size() < want) {
      size_t had = buf.size();
      buf.resize(want);
      status = ReadLogical(node, pos + had, want - had, buf.data() + had);
      if (!status.ok()) break;
    }
    ByteSpan span(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    size_t cut = chunker.NextCut(span);
    absl::StatusOr<ChunkId> id = store(span.subspan(0, cut));
    if (!id.ok()) {
      status = id.status();
      break;
    }
    chunks.push_back(*id);
    pos += cut;
    offsets.push_back(pos);
    buf.erase(0, cut);
    if (pos >= ce && pos < size) {  // past the change: resume the stored chunks at a shared cut
      auto at = std::lower_bound(node.offsets.begin(), node.offsets.end(), pos);
      if (at != node.offsets.end() && *at == pos) {
        size_t j = static_cast<size_t>(at - node.offsets.begin());
        chunks.insert(chunks.end(), node.chunks.begin() + j, node.chunks.end());
        offsets.insert(offsets.end(), node.offsets.begin() + j + 1, node.offsets.end());
        pos = size;
      }
    }
  }
  while (!in_flight.empty()) {  // also after an error: no thread may outlive this frame
    absl::Status finished = finish_one();
    if (status.ok()) status = finished;
  }
  if (!status.ok()) return status;
  node.chunks = std::move(chunks);
  node.offsets = std::move(offsets);
  node.base_size = node.base_valid = size;
  DropSpool(node);
  node.dirty = false;
  std::lock_guard lock(mu_);
  stats_.files_stored++;
  stats_.chunks_stored += stored;
  stats_.chunks_deduplicated += deduplicated;
  stats_.chunks_below_target += below;
  stats_.bytes_stored += bytes;
  return absl::OkStatus();
}

int Archive::StoreAndCommit(const std::shared_ptr<Node>& node, bool even_if_open) {
  // Peers that cannot be reached yet (the peer just started, a network blip): ask again for a
  // while before close(2) or fsync(2) fails; the data stays spooled either way.
  const auto give_up = std::chrono::steady_clock::now() + options_.unavailable_wait;
  absl::Status s;
  while (true) {
    s = StoreAndCommitOnce(node, even_if_open);
    if (!absl::IsUnavailable(s) || std::chrono::steady_clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!s.ok()) {
    spdlog::error("archive {}: commit failed: {}", name_, s.ToString());
    return ErrnoOf(s) == -ENOENT ? -EIO : ErrnoOf(s);
  }
  return 0;
}

absl::Status Archive::StoreAndCommitOnce(const std::shared_ptr<Node>& node, bool even_if_open) {
  absl::Status s;
  {
    std::lock_guard commit(commit_mu_);
    std::shared_lock<std::shared_mutex> gc_lock;
    {
      std::lock_guard pin(pin_mu_);
      if (ctx_.gc_lock && !gc_pin_.owns_lock()) gc_lock = std::shared_lock(*ctx_.gc_lock);
    }
    if (even_if_open && node->type == EntryType::kFile) {
      std::lock_guard content(node->content_mu);
      s = StoreContent(*node);
      if (s.ok()) {
        std::lock_guard lock(mu_);
        node->stored_unversioned = false;
        if (!node->in_version || node->version_chunks != node->chunks ||
            node->version_size != node->base_size) {
          node->in_version = true;
          node->version_chunks = node->chunks;
          node->version_size = node->base_size;
          changed_ = true;
          if (node->parent) Touch(node->parent);
        }
      }
    }
    if (s.ok()) s = CommitLocked();
  }
  return s;
}

int Archive::Flush(uint64_t handle) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    if (!it->second.write) return 0;
    node = it->second.node;
    if (node->writers > 1) return 0;  // stored when the last writer closes
  }
  return StoreAndCommit(node, /*even_if_open=*/true);
}

int Archive::Fsync(uint64_t handle) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    node = it->second.node;
  }
  return StoreAndCommit(node, /*even_if_open=*/true);
}

int Archive::Release(uint64_t handle) {
  std::shared_ptr<Node> node;
  bool orphan = false;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    node = it->second.node;
    node->handles--;
    if (it->second.write) node->writers--;
    handles_.erase(it);
    if (node->writers > 0) return 0;
    orphan = node->handles == 0 && node->parent == nullptr && node != root_;
  }
  bool store_needed = false;
  {
    std::lock_guard content(node->content_mu);
    if (orphan) {  // unlinked while open: its content goes with it
      DropSpool(*node);
      return 0;
    }
    store_needed = node->dirty || node->stored_unversioned;
  }
  if (store_needed) return StoreAndCommit(node, /*even_if_open=*/true);
  return 0;
}

int Archive::Unlink(const std::string& path) {
  std::shared_ptr<Node> dropped;  // its spool is dropped after mu_ (lock order: content, tree)
  std::unique_lock lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  if (int r = LookupParent(path, &parent, &leaf); r != 0) return r;
  auto it = parent->children.find(leaf);
  if (it == parent->children.end()) return -ENOENT;
  if (it->second->type == EntryType::kDirectory) return -EISDIR;
  std::shared_ptr<Node> node = it->second;
  parent->children.erase(it);
  node->parent = nullptr;
  if (node->type == EntryType::kFile && node->handles == 0) dropped = node;
  parent->mtime_ns = parent->ctime_ns = NowNs(ctx_);
  Touch(parent.get());
  lock.unlock();
  if (dropped) {
    std::lock_guard content(dropped->content_mu);
    DropSpool(*dropped);
  }
  return 0;
}

int Archive::Mkdir(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  if (int r = LookupParent(path, &parent, &leaf); r != 0) return r == -EBUSY ? -EEXIST : r;
  if (parent->children.count(leaf)) return -EEXIST;
  auto n = NewNode(EntryType::kDirectory, mode, uid, gid);
  n->parent = parent.get();
  parent->children.emplace(leaf, std::move(n));
  parent->mtime_ns = parent->ctime_ns = NowNs(ctx_);
  Touch(parent.get());
  return 0;
}

int Archive::Rmdir(const std::string& path) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  if (int r = LookupParent(path, &parent, &leaf); r != 0) return r;
  auto it = parent->children.find(leaf);
  if (it == parent->children.end()) return -ENOENT;
  if (it->second->type != EntryType::kDirectory) return -ENOTDIR;
  if (!it->second->children.empty()) return -ENOTEMPTY;
  it->second->parent = nullptr;
  parent->children.erase(it);
  parent->mtime_ns = parent->ctime_ns = NowNs(ctx_);
  Touch(parent.get());
  return 0;
}

int Archive::Rename(const std::string& from, const std::string& to, unsigned flags) {
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return -EINVAL;
  std::shared_ptr<Node> dropped;  // a replaced file: spool dropped after mu_
  std::unique_lock lock(mu_);
  std::shared_ptr<Node> from_parent, to_parent;
  std::string from_leaf, to_leaf;
  if (int r = LookupParent(from, &from_parent, &from_leaf); r != 0) return r;
  if (int r = LookupParent(to, &to_parent, &to_leaf); r != 0) return r;
  auto src = from_parent->children.find(from_leaf);
  if (src == from_parent->children.end()) return -ENOENT;
  std::shared_ptr<Node> node = src->second;
  // A directory may not move below itself.
  for (Node* d = to_parent.get(); d != nullptr; d = d->parent) {
    if (d == node.get()) return -EINVAL;
  }
  auto dst = to_parent->children.find(to_leaf);
  if (dst != to_parent->children.end()) {
    if (dst->second == node) return 0;
    if (flags & RENAME_NOREPLACE) return -EEXIST;
    Node& old = *dst->second;
    if (node->type == EntryType::kDirectory) {
      if (old.type != EntryType::kDirectory) return -ENOTDIR;
      if (!old.children.empty()) return -ENOTEMPTY;
    } else if (old.type == EntryType::kDirectory) {
      return -EISDIR;
    }
    old.parent = nullptr;
    if (old.type == EntryType::kFile && old.handles == 0) dropped = dst->second;
    to_parent->children.erase(dst);
  }
  from_parent->children.erase(from_leaf);
  node->parent = to_parent.get();
  node->ctime_ns = NowNs(ctx_);
  to_parent->children.emplace(to_leaf, node);
  from_parent->mtime_ns = from_parent->ctime_ns = node->ctime_ns;
  to_parent->mtime_ns = to_parent->ctime_ns = node->ctime_ns;
  Touch(from_parent.get());
  Touch(to_parent.get());
  lock.unlock();
  if (dropped) {
    std::lock_guard content(dropped->content_mu);
    DropSpool(*dropped);
  }
  return 0;
}

int Archive::Symlink(const std::string& target, const std::string& path, uint32_t uid,
                     uint32_t gid) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  if (int r = LookupParent(path, &parent, &leaf); r != 0) return r == -EBUSY ? -EEXIST : r;
  if (parent->children.count(leaf)) return -EEXIST;
  auto n = NewNode(EntryType::kSymlink, 0777, uid, gid);
  n->target = target;
  n->parent = parent.get();
  parent->children.emplace(leaf, std::move(n));
  parent->mtime_ns = parent->ctime_ns = NowNs(ctx_);
  Touch(parent.get());
  return 0;
}

int Archive::Chmod(const std::string& path, uint32_t mode) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  n->mode = mode & 07777;
  n->ctime_ns = NowNs(ctx_);
  Touch(n->type == EntryType::kDirectory ? n.get() : n->parent);
  return 0;
}

int Archive::Chown(const std::string& path, uint32_t uid, uint32_t gid) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  if (uid != UINT32_MAX) n->uid = uid;
  if (gid != UINT32_MAX) n->gid = gid;
  n->ctime_ns = NowNs(ctx_);
  Touch(n->type == EntryType::kDirectory ? n.get() : n->parent);
  return 0;
}

int Archive::SetMtime(const std::string& path, int64_t mtime_ns) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> n = Lookup(path);
  if (!n) return -ENOENT;
  n->mtime_ns = mtime_ns;
  n->ctime_ns = NowNs(ctx_);
  Touch(n->type == EntryType::kDirectory ? n.get() : n->parent);
  return 0;
}

int Archive::StatFs(struct statvfs* out) {
  uint64_t room = 0;
  for (const StoragePeer& p : ctx_.peers->Peers()) {
    if (!p.alive) continue;
    uint64_t r = p.quota > p.used ? p.quota - p.used : 0;
    if (p.disk_room) r = std::min(r, *p.disk_room);
    room += r;
  }
  // Bytes stored per byte of data: copies, or (k+m)/k.
  double overhead = redundancy_.ec ? static_cast<double>(redundancy_.ec->k + redundancy_.ec->m) /
                                         redundancy_.ec->k
                                   : std::max<uint32_t>(1, redundancy_.copies);
  constexpr uint64_t kBlock = 4096;
  std::memset(out, 0, sizeof(*out));
  out->f_bsize = kBlock;
  out->f_frsize = kBlock;
  out->f_bfree = out->f_bavail = static_cast<fsblkcnt_t>(room / overhead / kBlock);
  uint64_t used_blocks = 0;
  {
    std::lock_guard lock(mu_);
    format::SnapshotStats st;
    CountTree(*root_, &st);
    used_blocks = (st.bytes + kBlock - 1) / kBlock;
    out->f_files = st.files + st.directories;
  }
  out->f_blocks = out->f_bfree + used_blocks;
  out->f_ffree = out->f_favail = 1ull << 32;
  out->f_namemax = 255;
  return 0;
}

void Archive::CountTree(const Node& dir, format::SnapshotStats* stats) const {
  stats->directories++;
  for (const auto& [_, c] : dir.children) {
    if (c->type == EntryType::kDirectory) {
      CountTree(*c, stats);
    } else if (c->type == EntryType::kFile && c->in_version) {  // as the version records it
      stats->files++;
      stats->bytes += c->version_size;
      stats->chunks += c->version_chunks.size();
    }
  }
}

absl::StatusOr<ChunkId> Archive::StoreDirTree(Node& dir) {
  if (dir.tree_id) return *dir.tree_id;
  format::Tree tree;
  for (auto& [name, c] : dir.children) {
    format::TreeEntry e;
    e.name = name;
    e.type = c->type;
    e.mode = c->mode;
    e.uid = c->uid;
    e.gid = c->gid;
    e.mtime_ns = c->mtime_ns;
    e.ctime_ns = c->ctime_ns;
    if (c->type == EntryType::kDirectory) {
      CAIRN_ASSIGN_OR_RETURN(ChunkId sub, StoreDirTree(*c));
      e.subtree = sub;
    } else if (c->type == EntryType::kSymlink) {
      e.symlink_target = c->target;
    } else {
      if (!c->in_version) continue;  // new and still being written: not in a version yet
      e.chunks = c->version_chunks;
      e.size = c->version_size;
    }
    tree.entries.push_back(std::move(e));
  }
  CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreTree(ctx_, tree, redundancy_));
  dir.tree_id = stored.id;
  return stored.id;
}

absl::Status Archive::Commit() {
  std::lock_guard commit(commit_mu_);
  std::shared_lock<std::shared_mutex> gc_lock;
  {
    std::lock_guard pin(pin_mu_);
    if (ctx_.gc_lock && !gc_pin_.owns_lock()) gc_lock = std::shared_lock(*ctx_.gc_lock);
  }
  return CommitLocked();
}

absl::Status Archive::CommitLocked() {
  // Files written and closed (or truncated without a descriptor): store them first.
  std::vector<std::shared_ptr<Node>> to_store;
  {
    std::lock_guard lock(mu_);
    std::vector<Node*> stack = {root_.get()};
    while (!stack.empty()) {
      Node* d = stack.back();
      stack.pop_back();
      for (auto& [_, c] : d->children) {
        if (c->type == EntryType::kDirectory) stack.push_back(c.get());
        if (c->type == EntryType::kFile && c->writers == 0) to_store.push_back(c);
      }
    }
  }
  bool unversioned_left = false;
  for (const std::shared_ptr<Node>& node : to_store) {
    std::lock_guard content(node->content_mu);
    bool writing = false;
    {
      std::lock_guard lock(mu_);
      writing = node->writers > 0 || node->parent == nullptr;
    }
    if (writing) {  // opened for writing (or unlinked) meanwhile
      unversioned_left |= node->stored_unversioned;
      continue;
    }
    if (!node->dirty && !node->stored_unversioned && node->in_version) continue;
    CAIRN_RETURN_IF_ERROR(StoreContent(*node));
    std::lock_guard lock(mu_);
    node->stored_unversioned = false;
    node->in_version = true;
    node->version_chunks = node->chunks;
    node->version_size = node->base_size;
    changed_ = true;
    if (node->parent) Touch(node->parent);
  }
  std::lock_guard lock(mu_);
  if (changed_) {
    format::Snapshot s;
    CAIRN_ASSIGN_OR_RETURN(ChunkId root, StoreDirTree(*root_));
    CountTree(*root_, &s.stats);
    s.time_ns = NowNs(ctx_);
    s.owner = ctx_.owner;
    s.hostname = options_.hostname.empty() ? base_version_.hostname : options_.hostname;
    s.root = root;
    s.parent = latest_;
    s.archive = name_;
    s.copies = base_version_.copies;
    s.ec_k = base_version_.ec_k;
    s.ec_m = base_version_.ec_m;
    CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreSnapshot(ctx_, s, redundancy_));
    latest_ = stored.id;
    changed_ = false;
    stats_.versions_committed++;
  }
  // Release the hold on garbage collection once every stored chunk is in a version.
  for (const auto& [_, h] : handles_) {
    if (h.write && h.node->stored_unversioned) unversioned_left = true;
  }
  if (!unversioned_left) {
    std::lock_guard pin(pin_mu_);
    if (gc_pin_.owns_lock()) gc_pin_.unlock();
  }
  return absl::OkStatus();
}

ChunkId Archive::latest_version() const {
  std::lock_guard lock(mu_);
  return latest_;
}

ArchiveStats Archive::stats() const {
  std::lock_guard lock(mu_);
  ArchiveStats s = stats_;
  s.spooled_bytes = spooled_bytes_.load();
  return s;
}

}  // namespace cairn::engine
