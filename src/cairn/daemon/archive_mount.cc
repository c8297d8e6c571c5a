#include "cairn/daemon/archive_mount.h"

#define FUSE_USE_VERSION 35
#include <fuse.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace cairn::daemon {

using engine::Archive;
using engine::ArchiveAttr;

struct ArchiveMounts::Served {
  std::string name;
  std::string mountpoint;
  std::unique_ptr<Archive> archive;
  struct fuse* fuse = nullptr;
  std::thread loop;
  std::thread committer;
  std::mutex mu;
  std::condition_variable wake;
  bool stop = false;
  std::atomic<bool> ended{false};  // the FUSE loop returned (unmounted)
};

namespace {

Archive* Fs() { return static_cast<Archive*>(fuse_get_context()->private_data); }

// No C++ exception may cross into libfuse's C frames.
template <typename Fn>
int Guard(Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("archive mount: internal error: {}", e.what());
    return -EIO;
  } catch (...) {
    return -EIO;
  }
}

void FillStat(const ArchiveAttr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  switch (a.type) {
    case format::EntryType::kDirectory:
      st->st_mode = S_IFDIR;
      break;
    case format::EntryType::kSymlink:
      st->st_mode = S_IFLNK;
      break;
    default:
      st->st_mode = S_IFREG;
  }
  st->st_mode |= a.mode & 07777;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_blksize = 128 * 1024;
  st->st_ino = a.ino;
  st->st_mtim.tv_sec = a.mtime_ns / 1'000'000'000;
  st->st_mtim.tv_nsec = a.mtime_ns % 1'000'000'000;
  st->st_atim = st->st_mtim;
  st->st_ctim.tv_sec = a.ctime_ns / 1'000'000'000;
  st->st_ctim.tv_nsec = a.ctime_ns % 1'000'000'000;
}

void* OpInit(struct fuse_conn_info* /*conn*/, struct fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 0;
  cfg->hard_remove = 1;  // unlink of an open file: no .fuse_hidden rename
  return fuse_get_context()->private_data;
}

int OpGetAttr(const char* path, struct stat* st, struct fuse_file_info* /*fi*/) {
  return Guard([&] {
    ArchiveAttr a;
    int rc = Fs()->GetAttr(path, &a);
    if (rc == 0) FillStat(a, st);
    return rc;
  });
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

int OpReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t /*offset*/,
              struct fuse_file_info* /*fi*/, enum fuse_readdir_flags /*flags*/) {
  return Guard([&] {
    std::vector<std::pair<std::string, ArchiveAttr>> entries;
    int rc = Fs()->ReadDir(path, &entries);
    if (rc != 0) return rc;
    filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (const auto& [name, attr] : entries) {
      struct stat st;
      FillStat(attr, &st);
      if (filler(buf, name.c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
    }
    return 0;
  });
}

int OpMkdir(const char* path, mode_t mode) {
  return Guard([&] {
    struct fuse_context* c = fuse_get_context();
    return Fs()->Mkdir(path, mode, c->uid, c->gid);
  });
}

int OpUnlink(const char* path) {
  return Guard([&] { return Fs()->Unlink(path); });
}

int OpRmdir(const char* path) {
  return Guard([&] { return Fs()->Rmdir(path); });
}

int OpSymlink(const char* target, const char* path) {
  return Guard([&] {
    struct fuse_context* c = fuse_get_context();
    return Fs()->Symlink(target, path, c->uid, c->gid);
  });
}

int OpRename(const char* from, const char* to, unsigned int flags) {
  return Guard([&] { return Fs()->Rename(from, to, flags); });
}

int OpLink(const char*, const char*) { return -EPERM; }  // hard links: not in archives

int OpMknod(const char*, mode_t, dev_t) { return -EPERM; }  // files come through create

int OpChmod(const char* path, mode_t mode, struct fuse_file_info* /*fi*/) {
  return Guard([&] { return Fs()->Chmod(path, mode); });
}

int OpChown(const char* path, uid_t uid, gid_t gid, struct fuse_file_info* /*fi*/) {
  return Guard([&] { return Fs()->Chown(path, uid, gid); });
}

int OpTruncate(const char* path, off_t size, struct fuse_file_info* fi) {
  return Guard([&] {
    if (size < 0) return -EINVAL;
    std::optional<uint64_t> handle;
    if (fi != nullptr) handle = fi->fh;
    return Fs()->Truncate(path, static_cast<uint64_t>(size), handle);
  });
}

int OpUtimens(const char* path, const struct timespec tv[2], struct fuse_file_info* /*fi*/) {
  return Guard([&] {
    if (tv == nullptr || tv[1].tv_nsec == UTIME_NOW) {
      struct timespec now;
      ::clock_gettime(CLOCK_REALTIME, &now);
      return Fs()->SetMtime(path, now.tv_sec * 1'000'000'000LL + now.tv_nsec);
    }
    if (tv[1].tv_nsec == UTIME_OMIT) return 0;
    return Fs()->SetMtime(path, tv[1].tv_sec * 1'000'000'000LL + tv[1].tv_nsec);
  });
}

int OpCreate(const char* path, mode_t mode, struct fuse_file_info* fi) {
  return Guard([&] {
    struct fuse_context* c = fuse_get_context();
    uint64_t h = 0;
    int rc = Fs()->Create(path, mode, c->uid, c->gid, fi->flags, &h);
    if (rc == 0) fi->fh = h;
    return rc;
  });
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  return Guard([&] {
    uint64_t h = 0;
    int rc = Fs()->Open(path, fi->flags, &h);
    if (rc == 0) fi->fh = h;
    return rc;
  });
}

int OpRead(const char* /*path*/, char* buf, size_t size, off_t offset, struct fuse_file_info* fi) {
  return Guard([&] {
    if (offset < 0) return -EINVAL;
    return static_cast<int>(Fs()->Read(fi->fh, buf, size, static_cast<uint64_t>(offset)));
  });
}

int OpWrite(const char* /*path*/, const char* buf, size_t size, off_t offset,
            struct fuse_file_info* fi) {
  return Guard([&] {
    if (offset < 0) return -EINVAL;
    return static_cast<int>(Fs()->Write(fi->fh, buf, size, static_cast<uint64_t>(offset)));
  });
}

int OpFlush(const char* /*path*/, struct fuse_file_info* fi) {
  return Guard([&] { return Fs()->Flush(fi->fh); });
}

int OpRelease(const char* /*path*/, struct fuse_file_info* fi) {
  return Guard([&] { return Fs()->Release(fi->fh); });
}

int OpFsync(const char* /*path*/, int /*datasync*/, struct fuse_file_info* fi) {
  return Guard([&] { return Fs()->Fsync(fi->fh); });
}

int OpFsyncDir(const char* /*path*/, int /*datasync*/, struct fuse_file_info* /*fi*/) {
  return Guard([&] {
    absl::Status s = Fs()->Commit();
    if (s.ok()) return 0;
    spdlog::error("archive {}: commit failed: {}", Fs()->name(), s.ToString());
    return -EIO;
  });
}

int OpStatFs(const char* /*path*/, struct statvfs* st) {
  return Guard([&] { return Fs()->StatFs(st); });
}

// Runs `fusermount3 -u [-z] MOUNTPOINT` (-z: lazy, also when busy); its exit status (or -1 when
// it could not run).
int FusermountUnmount(const std::string& mountpoint, bool lazy) {
  std::string prog = "fusermount3", flag = lazy ? "-uz" : "-u";
  char* argv[] = {prog.data(), flag.data(), const_cast<char*>(mountpoint.c_str()), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, prog.c_str(), nullptr, nullptr, argv, environ) != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

ArchiveMounts::ArchiveMounts(const engine::EngineContext* ctx, Options options)
    : ctx_(ctx), options_(std::move(options)) {}

ArchiveMounts::~ArchiveMounts() { UnmountAll(); }

absl::Status ArchiveMounts::Mount(const std::string& name, const std::string& mountpoint,
                                  bool allow_other, uint64_t spool_bytes) {
  std::unique_lock lock(mu_);
  if (auto it = mounted_.find(name); it != mounted_.end()) {
    if (!it->second->ended) {
      return absl::FailedPreconditionError(
          absl::StrCat("archive ", name, " is already mounted at ", it->second->mountpoint));
    }
    // Unmounted from outside (fusermount3 -u): finish that one first.
    std::unique_ptr<Served> old = std::move(it->second);
    mounted_.erase(it);
    lock.unlock();
    {
      std::lock_guard l(old->mu);
      old->stop = true;
    }
    old->wake.notify_all();
    if (old->loop.joinable()) old->loop.join();
    if (old->committer.joinable()) old->committer.join();
    lock.lock();
  }
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError("mount point " + mountpoint +
                                         " is not an existing directory");
  }
  engine::ArchiveOptions ao;
  ao.spool_dir = options_.spool_root + "/" + name;
  ao.spool_bytes = spool_bytes > 0 ? spool_bytes : options_.spool_bytes;
  ao.cache_bytes = options_.cache_bytes;
  ao.hostname = options_.hostname;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Archive> archive, Archive::Open(*ctx_, name, ao));

  auto served = std::make_unique<Served>();
  served->name = name;
  served->mountpoint = mountpoint;
  served->archive = std::move(archive);

  struct fuse_operations ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.getattr = OpGetAttr;
  ops.readlink = OpReadLink;
  ops.readdir = OpReadDir;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.mknod = OpMknod;
  ops.chmod = OpChmod;
  ops.chown = OpChown;
  ops.truncate = OpTruncate;
  ops.utimens = OpUtimens;
  ops.create = OpCreate;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.fsyncdir = OpFsyncDir;
  ops.statfs = OpStatFs;

  std::string mount_opts = absl::StrCat("default_permissions,fsname=cairn-archive-", name,
                                        ",subtype=cairn,auto_unmount");
  if (allow_other) mount_opts += ",allow_other";
  std::vector<std::string> argv_s = {"cairn", "-o", mount_opts};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  served->fuse = fuse_new(&args, &ops, sizeof ops, served->archive.get());
  fuse_opt_free_args(&args);
  if (served->fuse == nullptr) {
    return absl::InternalError("cannot set up FUSE (libfuse rejected the options)");
  }
  if (fuse_mount(served->fuse, mountpoint.c_str()) != 0) {
    fuse_destroy(served->fuse);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot mount at ", mountpoint,
                     " (is /dev/fuse there and fuse3 installed? is it a directory you own?)"));
  }
  Served* s = served.get();
  s->loop = std::thread([s] {
    struct fuse_loop_config config;
    std::memset(&config, 0, sizeof config);
    config.clone_fd = 0;
    config.max_idle_threads = 10;
    // Returns once unmounted (fusermount3 -u, ours or the user's).
    int rc = fuse_loop_mt(s->fuse, &config);
    if (rc < 0) spdlog::error("archive {}: the FUSE loop failed: {}", s->name, std::strerror(-rc));
    fuse_unmount(s->fuse);
    fuse_destroy(s->fuse);
    s->fuse = nullptr;
    {
      std::lock_guard l(s->mu);
      s->ended = true;
    }
    s->wake.notify_all();
  });
  s->committer = std::thread([s, interval = options_.commit_interval] {
    std::unique_lock l(s->mu);
    while (true) {
      bool stop = s->wake.wait_for(l, interval, [s] { return s->stop || s->ended.load(); });
      l.unlock();
      absl::Status c = s->archive->Commit();
      if (!c.ok()) spdlog::error("archive {}: commit failed: {}", s->name, c.ToString());
      l.lock();
      if (stop) return;
    }
  });
  spdlog::info("archive {} mounted at {}", name, mountpoint);
  mounted_.emplace(name, std::move(served));
  return absl::OkStatus();
}

absl::Status ArchiveMounts::Unmount(const std::string& name) { return Unmount(name, false); }

absl::Status ArchiveMounts::Unmount(const std::string& name, bool lazy) {
  std::unique_ptr<Served> s;
  {
    std::lock_guard lock(mu_);
    auto it = mounted_.find(name);
    if (it == mounted_.end()) return absl::NotFoundError("archive " + name + " is not mounted");
    if (!it->second->ended) {
      int rc = FusermountUnmount(it->second->mountpoint, lazy);
      if (rc != 0) {
        return absl::FailedPreconditionError(absl::StrCat("cannot unmount ", it->second->mountpoint,
                                                          " (fusermount3 -u exited ", rc,
                                                          "): is a file still open there?"));
      }
    }
    s = std::move(it->second);
    mounted_.erase(it);
  }
  if (lazy) {
    // A lazy unmount ends the FUSE loop only once the last file open there is closed: wait a
    // while, then commit what the mount holds and leave it to the process's exit (the peer is
    // stopping) rather than block the shutdown on someone else's open file.
    std::unique_lock l(s->mu);
    if (!s->wake.wait_for(l, std::chrono::seconds(10), [&] { return s->ended.load(); })) {
      l.unlock();
      absl::Status committed = s->archive->Commit();
      spdlog::warn("archive {}: {} is still in use; committed and left to the peer's exit", name,
                   s->mountpoint);
      s->loop.detach();
      {
        std::lock_guard stop(s->mu);
        s->stop = true;
      }
      s->wake.notify_all();
      s->committer.join();
      (void)s.release();  // the FUSE threads may still call into it until the process exits
      return committed;
    }
  }
  if (s->loop.joinable()) s->loop.join();
  {
    std::lock_guard l(s->mu);
    s->stop = true;
  }
  s->wake.notify_all();
  if (s->committer.joinable()) s->committer.join();
  absl::Status committed = s->archive->Commit();
  spdlog::info("archive {} unmounted from {}", name, s->mountpoint);
  return committed;
}

void ArchiveMounts::UnmountAll() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, _] : mounted_) names.push_back(name);
  }
  for (const std::string& n : names) {
    absl::Status s = Unmount(n, /*lazy=*/true);
    if (!s.ok()) spdlog::error("archive {}: {}", n, s.ToString());
  }
}

std::vector<ArchiveMounts::Mounted> ArchiveMounts::List() {
  std::lock_guard lock(mu_);
  std::vector<Mounted> out;
  for (const auto& [name, s] : mounted_) {
    if (s->ended) continue;
    out.push_back(Mounted{name, s->mountpoint, s->archive->stats()});
  }
  return out;
}

}  // namespace cairn::daemon
