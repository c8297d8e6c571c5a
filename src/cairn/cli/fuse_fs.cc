#include "cairn/cli/fuse_fs.h"

#define FUSE_USE_VERSION 35
#include <fcntl.h>
#include <fuse.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"

namespace cairn::cli {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  for (auto p : absl::StrSplit(path, '/', absl::SkipEmpty())) parts.emplace_back(p);
  return parts;
}

std::string JoinPath(const std::vector<std::string>& parts, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

std::string TimeName(int64_t time_ns) {
  time_t secs = static_cast<time_t>(time_ns >= 0 ? time_ns / 1'000'000'000
                                                 : (time_ns - 999'999'999) / 1'000'000'000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H-%M-%S", &tm);
  return buf;
}

void FillStat(const FsNode& node, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  switch (node.type) {
    case FsNode::Type::kDirectory:
      st->st_mode = S_IFDIR | (node.mode & 07777);
      st->st_nlink = 2;
      break;
    case FsNode::Type::kFile:
      st->st_mode = S_IFREG | (node.mode & 07777);
      st->st_nlink = 1;
      st->st_size = static_cast<off_t>(node.size);
      break;
    case FsNode::Type::kSymlink:
      st->st_mode = S_IFLNK | 0777;
      st->st_nlink = 1;
      st->st_size = static_cast<off_t>(node.target.size());
      break;
  }
  st->st_uid = node.uid;
  st->st_gid = node.gid;
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
  int64_t ns = node.mtime_ns;
  int64_t secs = ns >= 0 ? ns / 1'000'000'000 : (ns - 999'999'999) / 1'000'000'000;
  st->st_mtim.tv_sec = static_cast<time_t>(secs);
  st->st_mtim.tv_nsec = static_cast<long>(ns - secs * 1'000'000'000);
  st->st_atim = st->st_mtim;
  st->st_ctim = st->st_mtim;
}

}  // namespace

std::vector<std::string> SnapshotDirNames(const std::vector<SnapshotSource::Snapshot>& snapshots) {
  std::vector<std::string> names;
  std::map<std::string, int> seconds;
  for (const auto& s : snapshots) {
    names.push_back(TimeName(s.time_ns));
    seconds[names.back()]++;
  }
  std::map<std::string, int> taken;
  for (size_t i = 0; i < names.size(); ++i) {
    if (seconds[names[i]] > 1) names[i] += "-" + snapshots[i].id.substr(0, 8);
    taken[names[i]]++;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (taken[names[i]] > 1) names[i] = TimeName(snapshots[i].time_ns) + "-" + snapshots[i].id;
  }
  for (std::string& n : names) std::replace(n.begin(), n.end(), '/', '_');
  return names;
}

SnapshotFs::SnapshotFs(SnapshotSource* source, Options options)
    : source_(source), options_(options) {}

int SnapshotFs::Errno(const absl::Status& status, const std::string& what) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return -ENOENT;
    case absl::StatusCode::kInvalidArgument:
      std::cerr << "cairn mount: " << what << ": " << status.message() << std::endl;
      return -EINVAL;
    default:
      std::cerr << "cairn mount: " << what << ": " << status.message() << std::endl;
      return -EIO;
  }
}

absl::Status SnapshotFs::RefreshSnapshots(bool force) {
  // snapshots_mu_ held by the caller.
  auto now = std::chrono::steady_clock::now();
  if (have_snapshots_ && !force && now - refreshed_ < options_.snapshot_refresh) {
    return absl::OkStatus();
  }
  // A forced refresh (an unknown name) at most every 250 ms.
  if (have_snapshots_ && force && now - refreshed_ < std::chrono::milliseconds(250)) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<SnapshotSource::Snapshot>> list = source_->Snapshots();
  if (!list.ok()) {
    // Keep serving what we knew (the peer may be restarting); without anything: an error.
    if (have_snapshots_) return absl::OkStatus();
    return list.status();
  }
  snapshots_ = *std::move(list);
  names_ = SnapshotDirNames(snapshots_);
  by_name_.clear();
  for (size_t i = 0; i < names_.size(); ++i) by_name_[names_[i]] = i;
  have_snapshots_ = true;
  refreshed_ = now;
  return absl::OkStatus();
}

std::string SnapshotFs::LatestName() {
  std::lock_guard lock(snapshots_mu_);
  if (!RefreshSnapshots(false).ok() || names_.empty()) return "";
  return names_.back();
}

FsNode SnapshotFs::SyntheticDir(int64_t mtime_ns) const {
  FsNode n;
  n.type = FsNode::Type::kDirectory;
  n.mode = 0555;
  n.uid = options_.uid;
  n.gid = options_.gid;
  n.mtime_ns = mtime_ns;
  return n;
}

absl::StatusOr<std::shared_ptr<const SnapshotFs::Listing>> SnapshotFs::GetListing(
    const std::string& id, const std::string& dir) {
  std::string key = id;
  key += '\0';
  key += dir;
  {
    std::lock_guard lock(listings_mu_);
    auto it = listings_.find(key);
    if (it != listings_.end()) return it->second;
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<SnapshotSource::Entry> entries, source_->List(id, dir));
  auto listing = std::make_shared<Listing>();
  listing->entries = std::move(entries);
  std::sort(listing->entries.begin(), listing->entries.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (size_t i = 0; i < listing->entries.size(); ++i) {
    listing->index.emplace(listing->entries[i].name, i);
  }
  std::shared_ptr<const Listing> shared = std::move(listing);
  std::lock_guard lock(listings_mu_);
  if (cached_entries_ + shared->entries.size() + 1 > options_.max_cached_entries) {
    listings_.clear();  // snapshots are immutable: dropping only costs refetching
    cached_entries_ = 0;
  }
  if (listings_.emplace(key, shared).second) cached_entries_ += shared->entries.size() + 1;
  return shared;
}

absl::StatusOr<SnapshotFs::Resolved> SnapshotFs::Resolve(const std::string& path) {
  std::vector<std::string> parts = SplitPath(path);
  Resolved r;
  std::unique_lock lock(snapshots_mu_);
  if (parts.empty() || (parts.size() == 1 && parts[0] == "snapshots")) {
    CAIRN_RETURN_IF_ERROR(RefreshSnapshots(false));
    r.node = SyntheticDir(snapshots_.empty() ? 0 : snapshots_.back().time_ns);
    return r;
  }
  if (parts.size() == 1 && parts[0] == "latest") {
    CAIRN_RETURN_IF_ERROR(RefreshSnapshots(false));
    if (names_.empty()) return absl::NotFoundError("no snapshots yet");
    r.node.type = FsNode::Type::kSymlink;
    r.node.target = "snapshots/" + names_.back();
    r.node.size = r.node.target.size();
    r.node.uid = options_.uid;
    r.node.gid = options_.gid;
    r.node.mtime_ns = snapshots_.back().time_ns;
    return r;
  }
  if (parts[0] != "snapshots") return absl::NotFoundError("no such file");
  CAIRN_RETURN_IF_ERROR(RefreshSnapshots(false));
  auto it = by_name_.find(parts[1]);
  if (it == by_name_.end()) {
    CAIRN_RETURN_IF_ERROR(RefreshSnapshots(true));  // a snapshot made since the last refresh?
    it = by_name_.find(parts[1]);
    if (it == by_name_.end()) return absl::NotFoundError("no such snapshot");
  }
  const SnapshotSource::Snapshot snap = snapshots_[it->second];
  r.snapshot_id = snap.id;
  if (parts.size() == 2) {
    r.node = SyntheticDir(snap.time_ns);
    return r;
  }
  r.inner_path = JoinPath(parts, 2, parts.size());
  // The listing is fetched without holding snapshots_mu_ (it may take a round trip).
  lock.unlock();
  absl::StatusOr<std::shared_ptr<const Listing>> listing =
      GetListing(snap.id, JoinPath(parts, 2, parts.size() - 1));
  if (!listing.ok()) return listing.status();
  auto e = (*listing)->index.find(parts.back());
  if (e == (*listing)->index.end()) return absl::NotFoundError("no such file");
  r.node = (*listing)->entries[e->second].node;
  return r;
}

int SnapshotFs::GetAttr(const std::string& path, struct stat* st) {
  absl::StatusOr<Resolved> r = Resolve(path);
  if (!r.ok()) return Errno(r.status(), path);
  FillStat(r->node, st);
  return 0;
}

int SnapshotFs::ReadDir(const std::string& path, std::vector<std::pair<std::string, FsNode>>* out) {
  out->clear();
  std::vector<std::string> parts = SplitPath(path);
  if (parts.empty()) {
    std::lock_guard lock(snapshots_mu_);
    absl::Status st = RefreshSnapshots(false);
    if (!st.ok()) return Errno(st, path);
    out->emplace_back("snapshots", SyntheticDir(0));
    if (!names_.empty()) {
      FsNode link;
      link.type = FsNode::Type::kSymlink;
      link.target = "snapshots/" + names_.back();
      out->emplace_back("latest", link);
    }
    return 0;
  }
  if (parts.size() == 1 && parts[0] == "snapshots") {
    std::lock_guard lock(snapshots_mu_);
    absl::Status st = RefreshSnapshots(true);
    if (!st.ok()) return Errno(st, path);
    for (size_t i = 0; i < names_.size(); ++i) {
      out->emplace_back(names_[i], SyntheticDir(snapshots_[i].time_ns));
    }
    return 0;
  }
  absl::StatusOr<Resolved> r = Resolve(path);
  if (!r.ok()) return Errno(r.status(), path);
  if (r->node.type != FsNode::Type::kDirectory) return -ENOTDIR;
  if (r->snapshot_id.empty()) return -ENOENT;
  absl::StatusOr<std::shared_ptr<const Listing>> listing =
      GetListing(r->snapshot_id, r->inner_path);
  if (!listing.ok()) return Errno(listing.status(), path);
  for (const auto& e : (*listing)->entries) out->emplace_back(e.name, e.node);
  return 0;
}

int SnapshotFs::ReadLink(const std::string& path, std::string* target) {
  absl::StatusOr<Resolved> r = Resolve(path);
  if (!r.ok()) return Errno(r.status(), path);
  if (r->node.type != FsNode::Type::kSymlink) return -EINVAL;
  *target = r->node.target;
  return 0;
}

int SnapshotFs::Open(const std::string& path, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT | O_APPEND))) return -EROFS;
  absl::StatusOr<Resolved> r = Resolve(path);
  if (!r.ok()) return Errno(r.status(), path);
  if (r->node.type == FsNode::Type::kDirectory) return -EISDIR;
  if (r->node.type != FsNode::Type::kFile || r->snapshot_id.empty()) return -EINVAL;
  return 0;
}

absl::StatusOr<std::shared_ptr<const std::string>> SnapshotFs::GetBlock(const std::string& id,
                                                                        const std::string& path,
                                                                        uint64_t block,
                                                                        uint64_t file_size) {
  std::string key = absl::StrCat(id, std::string(1, '\0'), path, std::string(1, '\0'), block);
  std::shared_ptr<Block> entry;
  {
    std::unique_lock lock(blocks_mu_);
    auto it = blocks_.find(key);
    if (it != blocks_.end()) {
      entry = it->second.first;
      block_lru_.splice(block_lru_.begin(), block_lru_, it->second.second);
      block_loaded_.wait(lock, [&] { return entry->done; });
      return entry->data;
    }
    entry = std::make_shared<Block>();
    block_lru_.push_front(key);
    blocks_[key] = {entry, block_lru_.begin()};
    // Evict the least recently used blocks that are not being fetched.
    for (auto victim = block_lru_.end();
         blocks_.size() > options_.cache_blocks && victim != block_lru_.begin();) {
      --victim;
      auto b = blocks_.find(*victim);
      if (!b->second.first->done) continue;
      blocks_.erase(b);
      victim = block_lru_.erase(victim);
    }
  }
  const uint64_t start = block * options_.block_bytes;
  const uint64_t want = std::min(options_.block_bytes, file_size - start);
  absl::StatusOr<std::shared_ptr<const std::string>> result;
  std::string data;
  data.reserve(want);
  absl::Status status;
  while (data.size() < want) {
    absl::StatusOr<std::string> part =
        source_->Read(id, path, start + data.size(), want - data.size());
    if (!part.ok()) {
      status = part.status();
      break;
    }
    if (part->empty()) {
      status = absl::DataLossError(absl::StrCat("the file ended at ", start + data.size(),
                                                " bytes, its size is ", file_size));
      break;
    }
    data += *part;
  }
  if (status.ok()) {
    result = std::make_shared<const std::string>(std::move(data));
  } else {
    result = status;
  }
  std::lock_guard lock(blocks_mu_);
  entry->data = result;
  entry->done = true;
  if (!result.ok()) {
    // Not cached: the next read tries again.
    auto it = blocks_.find(key);
    if (it != blocks_.end() && it->second.first == entry) {
      block_lru_.erase(it->second.second);
      blocks_.erase(it);
    }
  }
  block_loaded_.notify_all();
  return result;
}

long SnapshotFs::Read(const std::string& path, char* buf, size_t size, uint64_t offset) {
  absl::StatusOr<Resolved> r = Resolve(path);
  if (!r.ok()) return Errno(r.status(), path);
  if (r->node.type == FsNode::Type::kDirectory) return -EISDIR;
  if (r->node.type != FsNode::Type::kFile || r->snapshot_id.empty()) return -EINVAL;
  const uint64_t file_size = r->node.size;
  if (offset >= file_size) return 0;
  const uint64_t end = offset + std::min<uint64_t>(size, file_size - offset);
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t block = pos / options_.block_bytes;
    absl::StatusOr<std::shared_ptr<const std::string>> data =
        GetBlock(r->snapshot_id, r->inner_path, block, file_size);
    if (!data.ok()) {
      if (pos > offset) break;  // a short read; the caller asks again for the rest
      return Errno(data.status(), path);
    }
    const uint64_t from = pos - block * options_.block_bytes;
    if (from >= (*data)->size()) break;
    const uint64_t n = std::min<uint64_t>((*data)->size() - from, end - pos);
    std::memcpy(buf + (pos - offset), (*data)->data() + from, n);
    pos += n;
  }
  return static_cast<long>(pos - offset);
}

// --- libfuse binding ---------------------------------------------------------------------------

namespace {

SnapshotFs* Fs() { return static_cast<SnapshotFs*>(fuse_get_context()->private_data); }

// No C++ exception may cross into libfuse's C frames.
template <typename Fn>
int Guard(Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    std::cerr << "cairn mount: internal error: " << e.what() << std::endl;
    return -EIO;
  } catch (...) {
    return -EIO;
  }
}

void* OpInit(struct fuse_conn_info* /*conn*/, struct fuse_config* cfg) {
  cfg->kernel_cache = 1;  // file contents never change: keep pages across opens
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 0;  // new snapshots and `latest` appear at once
  cfg->use_ino = 0;
  return fuse_get_context()->private_data;
}

int OpGetAttr(const char* path, struct stat* st, struct fuse_file_info* /*fi*/) {
  return Guard([&] { return Fs()->GetAttr(path, st); });
}

int OpReadLink(const char* path, char* buf, size_t size) {
  return Guard([&] {
    std::string target;
    int rc = Fs()->ReadLink(path, &target);
    if (rc != 0) return rc;
    if (size == 0) return -EINVAL;
    size_t n = std::min(size - 1, target.size());  // libfuse wants it NUL-terminated
    std::memcpy(buf, target.data(), n);
    buf[n] = '\0';
    return 0;
  });
}

int OpOpenDir(const char* path, struct fuse_file_info* /*fi*/) {
  return Guard([&] {
    struct stat st;
    int rc = Fs()->GetAttr(path, &st);
    if (rc != 0) return rc;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  });
}

int OpReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t /*offset*/,
              struct fuse_file_info* /*fi*/, enum fuse_readdir_flags /*flags*/) {
  return Guard([&] {
    std::vector<std::pair<std::string, FsNode>> entries;
    int rc = Fs()->ReadDir(path, &entries);
    if (rc != 0) return rc;
    filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (const auto& [name, node] : entries) {
      struct stat st;
      FillStat(node, &st);
      if (filler(buf, name.c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
    }
    return 0;
  });
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  return Guard([&] {
    int rc = Fs()->Open(path, fi->flags);
    if (rc == 0) fi->keep_cache = 1;
    return rc;
  });
}

int OpRead(const char* path, char* buf, size_t size, off_t offset, struct fuse_file_info* /*fi*/) {
  return Guard([&] {
    if (offset < 0) return -EINVAL;
    long n = Fs()->Read(path, buf, size, static_cast<uint64_t>(offset));
    return static_cast<int>(n);
  });
}

int OpStatFs(const char* /*path*/, struct statvfs* st) {
  std::memset(st, 0, sizeof *st);
  st->f_bsize = 4096;
  st->f_frsize = 4096;
  st->f_namemax = 255;
  st->f_flag = ST_RDONLY;
  return 0;
}

int OpAccess(const char* path, int mask) {
  return Guard([&] {
    if (mask & W_OK) return -EROFS;
    struct stat st;
    return Fs()->GetAttr(path, &st);
  });
}

// Every operation that would change something.
int RoPath(const char*) { return -EROFS; }
int RoPathMode(const char*, mode_t) { return -EROFS; }
int RoTwoPaths(const char*, const char*) { return -EROFS; }
int RoRename(const char*, const char*, unsigned int) { return -EROFS; }
int RoChmod(const char*, mode_t, struct fuse_file_info*) { return -EROFS; }
int RoChown(const char*, uid_t, gid_t, struct fuse_file_info*) { return -EROFS; }
int RoTruncate(const char*, off_t, struct fuse_file_info*) { return -EROFS; }
int RoWrite(const char*, const char*, size_t, off_t, struct fuse_file_info*) { return -EROFS; }
int RoCreate(const char*, mode_t, struct fuse_file_info*) { return -EROFS; }
int RoMknod(const char*, mode_t, dev_t) { return -EROFS; }
int RoUtimens(const char*, const struct timespec[2], struct fuse_file_info*) { return -EROFS; }
int RoSetXattr(const char*, const char*, const char*, size_t, int) { return -EROFS; }
int RoRemoveXattr(const char*, const char*) { return -EROFS; }

}  // namespace

absl::Status ServeFuse(SnapshotFs* fs, const std::string& mountpoint, const FuseOptions& options,
                       const std::function<void()>& on_mounted) {
  struct fuse_operations ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.getattr = OpGetAttr;
  ops.readlink = OpReadLink;
  ops.opendir = OpOpenDir;
  ops.readdir = OpReadDir;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.statfs = OpStatFs;
  ops.access = OpAccess;
  ops.mkdir = RoPathMode;
  ops.unlink = RoPath;
  ops.rmdir = RoPath;
  ops.symlink = RoTwoPaths;
  ops.link = RoTwoPaths;
  ops.rename = RoRename;
  ops.chmod = RoChmod;
  ops.chown = RoChown;
  ops.truncate = RoTruncate;
  ops.write = RoWrite;
  ops.create = RoCreate;
  ops.mknod = RoMknod;
  ops.utimens = RoUtimens;
  ops.setxattr = RoSetXattr;
  ops.removexattr = RoRemoveXattr;

  std::string mount_opts = "ro,default_permissions,fsname=cairn,subtype=cairn,auto_unmount";
  if (options.allow_other) mount_opts += ",allow_other";
  std::vector<std::string> argv_s = {"cairn", "-o", mount_opts};
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  struct fuse* f = fuse_new(&args, &ops, sizeof ops, fs);
  fuse_opt_free_args(&args);
  if (f == nullptr) return absl::InternalError("cannot set up FUSE (libfuse rejected the options)");
  if (fuse_mount(f, mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot mount at ", mountpoint,
                     " (is /dev/fuse there and fuse3 installed? is it a directory you own?)"));
  }
  struct fuse_session* se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    return absl::InternalError("cannot install signal handlers");
  }
  on_mounted();
  struct fuse_loop_config config;
  std::memset(&config, 0, sizeof config);
  config.clone_fd = 0;
  config.max_idle_threads = 10;
  // 0: unmounted from outside (fusermount3 -u); a signal number: SIGINT/SIGTERM/SIGHUP;
  // negative: an error reading /dev/fuse.
  int rc = fuse_loop_mt(f, &config);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat("the FUSE loop failed: ", std::strerror(-rc)));
  }
  return absl::OkStatus();
}

}  // namespace cairn::cli
