#include "cairn/engine/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/base/bounded_queue.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/peer_failures.h"

namespace cairn::engine {

namespace {

// Creates `path` for writing with permission bits `mode` (less the umask), replacing whatever
// is there (also a symlink: never written through). A restore into an empty directory finds
// nothing: the exclusive create succeeds at once, and only an existing entry costs an unlink
// and a second open.
int CreateReplacing(const std::string& path, mode_t mode) {
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  int fd = ::open(path.c_str(), kFlags, mode);
  if (fd >= 0 || errno != EEXIST) return fd;
  ::unlink(path.c_str());
  return ::open(path.c_str(), kFlags, mode);
}

// The process's umask, read without changing it (umask(2) sets it for every thread of the
// daemon); nullopt when /proc does not say.
std::optional<mode_t> CurrentUmask() {
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return std::nullopt;
  char line[256];
  std::optional<mode_t> mask;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned int m = 0;
    if (std::sscanf(line, "Umask: %o", &m) == 1) {
      mask = static_cast<mode_t>(m);
      break;
    }
  }
  std::fclose(f);
  return mask;
}

// Chunk records looked up for a window of a directory's entries at once (one read transaction
// of the catalog instead of one per chunk); bounds the records held, whatever the directory.
constexpr size_t kLookupEntries = 256;

// One regular file being restored. The first worker to take one of its chunks creates it
// (create_once) and keeps the descriptor; whoever writes the last chunk sets owner, mode and
// times on that descriptor and closes it. Creating files on the workers rather than on the tree
// walker keeps the walker (one thread) off the file system's inode allocation, which dominated
// its time (docs/architecture.md "Restore data flow").
struct FileState {
  std::string path;
  format::TreeEntry entry;  // chunks cleared once queued
  bool single_chunk = false;
  // Whether the file as created still needs its owner, or its mode, set: a file is created
  // with its permission bits and owned by the restoring user, which is most often what the
  // snapshot has (two system calls fewer per file; docs/architecture.md "Restore data flow").
  bool set_owner = true;
  bool set_mode = true;
  std::atomic<size_t> remaining{0};
  std::atomic<bool> failed{false};
  std::once_flag create_once;
  int fd = -1;  // set inside create_once; -1 when creating failed
  ~FileState() {
    if (fd >= 0) ::close(fd);
  }
};

struct ChunkTask {
  std::shared_ptr<FileState> file;
  ChunkId id;
  uint64_t offset = 0;
  std::optional<Bytes> data;  // already fetched (to learn its size), else fetched by the worker
  std::optional<ChunkFetchInFlight> fetch;  // started by the walker (read-ahead)
  size_t window_bytes = 0;                  // reserved in the read-ahead window
};

// The read-ahead window: plaintext bytes of queued chunks, at most `limit` (one larger chunk
// goes alone). The walker reserves before it starts a fetch; a worker releases once written.
class ReadAheadWindow {
 public:
  explicit ReadAheadWindow(size_t limit) : limit_(std::max<size_t>(limit, 1)) {}
  void Reserve(size_t n) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return used_ == 0 || used_ + n <= limit_; });
    used_ += n;
  }
  void Release(size_t n) {
    {
      std::lock_guard lock(mu_);
      used_ -= std::min(n, used_);
    }
    room_.notify_all();
  }

 private:
  const size_t limit_;
  std::mutex mu_;
  std::condition_variable room_;
  size_t used_ = 0;
};

// Tasks queued at most: the read-ahead window bounds the bytes; this bounds the bookkeeping of
// many tiny chunks.
constexpr size_t kMaxQueuedChunks = 4096;

struct DirMeta {
  std::string path;
  format::TreeEntry entry;
  size_t depth = 0;
};

int64_t Sec(int64_t ns) { return ns / 1'000'000'000; }
long Nsec(int64_t ns) { return static_cast<long>(ns % 1'000'000'000); }

void SetTimes(const std::string& path, int64_t mtime_ns, bool nofollow) {
  struct timespec ts[2];
  ts[0].tv_sec = Sec(mtime_ns);
  ts[0].tv_nsec = Nsec(mtime_ns);
  ts[1] = ts[0];
  ::utimensat(AT_FDCWD, path.c_str(), ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
}

class RestoreRun {
 public:
  RestoreRun(const EngineContext& ctx, const RestoreOptions& opts, RestoreProgress* progress,
             const std::atomic<bool>* cancel)
      : ctx_(ctx),
        opts_(opts),
        progress_(progress ? progress : &own_progress_),
        cancel_(cancel),
        queue_(kMaxQueuedChunks),
        erasure_queue_(static_cast<size_t>(std::max(1, opts.erasure_threads)) * 4),
        window_(opts.read_ahead_bytes),
        as_root_(::geteuid() == 0),
        euid_(::geteuid()),
        egid_(::getegid()),
        umask_(CurrentUmask()) {}

  absl::StatusOr<RestoreResult> Run(const format::Snapshot& snapshot);

 private:
  bool Cancelled() const { return cancel_ && cancel_->load(); }
  void Error(const std::string& msg) {
    std::lock_guard lock(mu_);
    result_.errors.push_back(msg);
  }
  // Restores `entry` at `path`; directories recurse.
  absl::Status RestoreEntry(const format::TreeEntry& entry, const std::string& path, size_t depth);
  // `records`: the catalog's records of entry.chunks, in order, when looked up already (else
  // empty); `parent_setgid`: the directory gives new files its group.
  void RestoreFile(const format::TreeEntry& entry, const std::string& path,
                   std::span<std::optional<ports::ChunkRecord>> records, bool parent_setgid);
  void FinishFile(FileState& f);
  // Creates f's file once (the first of its chunks to be written); false when that failed.
  bool CreateFile(FileState& f);
  void WorkerLoop(BoundedQueue<ChunkTask>& queue);
  void ApplyOwner(const std::string& path, const format::TreeEntry& e, bool nofollow) {
    if (opts_.restore_owner && as_root_) {
      if (nofollow)
        (void)::lchown(path.c_str(), e.uid, e.gid);
      else
        (void)::chown(path.c_str(), e.uid, e.gid);
    }
  }

  const EngineContext& ctx_;
  const RestoreOptions& opts_;
  RestoreProgress own_progress_;
  RestoreProgress* progress_;
  const std::atomic<bool>* cancel_;
  BoundedQueue<ChunkTask> queue_;          // chunks read ahead (copies), and unknown ones
  BoundedQueue<ChunkTask> erasure_queue_;  // chunks stored as shards: fetched by their worker
  ReadAheadWindow window_;
  const bool as_root_;
  const uid_t euid_;
  const gid_t egid_;
  const std::optional<mode_t> umask_;
  std::mutex mu_;
  RestoreResult result_;
  std::vector<DirMeta> dirs_;
  std::map<uint64_t, std::string> hardlink_first_;              // group -> first restored path
  std::vector<std::pair<std::string, std::string>> hardlinks_;  // (path, first path)
};

void RestoreRun::FinishFile(FileState& f) {
  if (f.failed) return;
  if (f.fd < 0) {                                         // an empty file: created by the walker
    if (f.set_owner) ApplyOwner(f.path, f.entry, false);  // before chmod: chown clears setuid
    if (f.set_mode) ::chmod(f.path.c_str(), f.entry.mode);
    SetTimes(f.path, f.entry.mtime_ns, false);
  } else {
    if (f.set_owner && opts_.restore_owner && as_root_) {
      (void)::fchown(f.fd, f.entry.uid, f.entry.gid);
    }
    if (f.set_mode) ::fchmod(f.fd, f.entry.mode);
    struct timespec ts[2];
    ts[0].tv_sec = Sec(f.entry.mtime_ns);
    ts[0].tv_nsec = Nsec(f.entry.mtime_ns);
    ts[1] = ts[0];
    ::futimens(f.fd, ts);
    ::close(f.fd);
    f.fd = -1;
  }
  progress_->files_done++;
}

bool RestoreRun::CreateFile(FileState& f) {
  std::call_once(f.create_once, [&] {
    int fd = CreateReplacing(f.path, f.entry.mode & 0777);
    if (fd < 0) {
      if (!f.failed.exchange(true))
        Error(std::string(ErrnoStatus(errno, "create " + f.path).message()));
      return;
    }
    // Several chunks land at their offsets from several workers: the size is set up front.
    if (!f.single_chunk && ::ftruncate(fd, static_cast<off_t>(f.entry.size)) != 0) {
      if (!f.failed.exchange(true))
        Error(std::string(ErrnoStatus(errno, "truncate " + f.path).message()));
      ::close(fd);
      return;
    }
    f.fd = fd;
    std::lock_guard lock(mu_);
    result_.files++;
    result_.bytes += f.entry.size;
  });
  return f.fd >= 0;
}

void RestoreRun::WorkerLoop(BoundedQueue<ChunkTask>& queue) {
  while (auto task = queue.Pop()) {
    FileState& f = *task->file;
    if (!f.failed && !Cancelled()) {
      absl::StatusOr<Bytes> data = task->data    ? absl::StatusOr<Bytes>(std::move(*task->data))
                                   : task->fetch ? FinishFetchChunk(ctx_, *task->fetch)
                                                 : FetchChunk(ctx_, task->id);
      absl::Status st = data.status();
      if (data.ok() && CreateFile(f)) {
        size_t off = 0;
        while (off < data->size()) {
          ssize_t n = ::pwrite(f.fd, data->data() + off, data->size() - off,
                               static_cast<off_t>(task->offset + off));
          if (n < 0) {
            if (errno == EINTR) continue;
            st = ErrnoStatus(errno, "write " + f.path);
            break;
          }
          off += static_cast<size_t>(n);
        }
        progress_->bytes_done += data->size();
      }
      if (!st.ok() && !f.failed.exchange(true)) Error(f.path + ": " + std::string(st.message()));
    } else if (Cancelled()) {
      f.failed = true;
    }
    window_.Release(task->window_bytes);
    if (--f.remaining == 0) FinishFile(f);
  }
}

void RestoreRun::RestoreFile(const format::TreeEntry& entry, const std::string& path,
                             std::span<std::optional<ports::ChunkRecord>> records,
                             bool parent_setgid) {
  if (entry.hardlink_group) {
    auto it = hardlink_first_.find(entry.hardlink_group);
    if (it != hardlink_first_.end()) {
      hardlinks_.push_back({path, it->second});
      return;
    }
    hardlink_first_[entry.hardlink_group] = path;
  }
  progress_->files_total++;
  progress_->bytes_total += entry.size;
  auto state = std::make_shared<FileState>();
  state->path = path;
  state->entry = entry;
  state->entry.chunks.clear();
  state->single_chunk = entry.chunks.size() == 1;
  // Created by us: owned by our user and group (the directory's group when it is setgid),
  // with the permission bits less the umask.
  state->set_owner = !(entry.uid == euid_ && entry.gid == egid_ && !parent_setgid);
  state->set_mode =
      !umask_ || state->set_owner || (entry.mode & 07777) != (entry.mode & 0777 & ~*umask_);
  if (entry.chunks.empty()) {
    // An empty file has no chunk for a worker to create it: made here.
    int fd = CreateReplacing(path, entry.mode & 0777);
    if (fd < 0) {
      Error(std::string(ErrnoStatus(errno, "create " + path).message()));
      return;
    }
    int rc = ::ftruncate(fd, static_cast<off_t>(entry.size));
    ::close(fd);
    if (rc != 0) {
      Error(std::string(ErrnoStatus(errno, "truncate " + path).message()));
      return;
    }
    std::lock_guard lock(mu_);
    result_.files++;
    result_.bytes += entry.size;
  }
  // A guard count of 1 so that the file is not finished before every chunk is queued.
  state->remaining = 1;
  uint64_t offset = 0;
  for (size_t i = 0; i < entry.chunks.size(); ++i) {
    const ChunkId& id = entry.chunks[i];
    // Chunk sizes come from the catalog when known; otherwise (chunks of multi-chunk files
    // after `cairn recover`) offsets are learned by fetching in order, and the catalog keeps
    // the size for the next time.
    ChunkTask task{state, id, offset, std::nullopt, std::nullopt, 0};
    auto rec = i < records.size()
                   ? absl::StatusOr<std::optional<ports::ChunkRecord>>(std::move(records[i]))
                   : ctx_.catalog->FindChunk(id);
    if (rec.ok() && *rec && (*rec)->plain_size > 0) {
      offset += (*rec)->plain_size;
      task.window_bytes = (*rec)->plain_size;
      window_.Reserve(task.window_bytes);
      task.fetch = StartFetchChunk(ctx_, id, std::move(**rec));
    } else {
      auto data = FetchChunk(ctx_, id);
      if (!data.ok()) {
        if (!state->failed.exchange(true))
          Error(path + ": " + std::string(data.status().message()));
        break;
      }
      offset += data->size();
      if (rec.ok() && *rec) {
        ports::ChunkRecord learned = **rec;
        learned.holders.clear();
        learned.shards.clear();
        learned.extras.clear();
        learned.plain_size = data->size();
        (void)ctx_.catalog->AddChunk(learned);  // best effort: only a cache of the size
      }
      task.window_bytes = data->size();
      window_.Reserve(task.window_bytes);
      task.data = std::move(*data);
    }
    ++state->remaining;
    const bool shards =
        task.fetch && !task.fetch->answer && task.fetch->record && task.fetch->record->erasure();
    (shards ? erasure_queue_ : queue_).Push(std::move(task));
  }
  if (--state->remaining == 0) FinishFile(*state);
}

absl::Status RestoreRun::RestoreEntry(const format::TreeEntry& entry, const std::string& path,
                                      size_t depth) {
  if (Cancelled()) return absl::CancelledError("restore cancelled");
  switch (entry.type) {
    case format::EntryType::kDirectory: {
      if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        Error(std::string(ErrnoStatus(errno, "mkdir " + path).message()));
        return absl::OkStatus();
      }
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        Error(path + ": exists and is not a directory");
        return absl::OkStatus();
      }
      ::chmod(path.c_str(), 0700 | entry.mode);  // writable while we fill it
      {
        std::lock_guard lock(mu_);
        result_.directories++;
      }
      dirs_.push_back({path, entry, depth});
      if (!entry.subtree) return absl::OkStatus();
      auto tree = LoadTree(ctx_, *entry.subtree);
      if (!tree.ok()) {
        if (absl::IsCancelled(tree.status())) return tree.status();
        Error(path + ": " + std::string(tree.status().message()));
        return absl::OkStatus();
      }
      const bool setgid = (entry.mode & S_ISGID) != 0;
      const auto& children = tree->entries;
      for (size_t begin = 0; begin < children.size(); begin += kLookupEntries) {
        const size_t end = std::min(children.size(), begin + kLookupEntries);
        std::vector<ChunkId> ids;
        for (size_t c = begin; c < end; ++c) {
          if (children[c].type != format::EntryType::kFile) continue;
          ids.insert(ids.end(), children[c].chunks.begin(), children[c].chunks.end());
        }
        // Looked up together; on an error each file looks its chunks up alone (and reports).
        std::vector<std::optional<ports::ChunkRecord>> found;
        if (!ids.empty()) {
          auto all = ctx_.catalog->FindChunks(ids);
          if (all.ok() && all->size() == ids.size()) found = std::move(*all);
        }
        size_t next = 0;
        for (size_t c = begin; c < end; ++c) {
          const format::TreeEntry& child = children[c];
          const std::string child_path = path + "/" + child.name;
          if (child.type == format::EntryType::kFile) {
            std::span<std::optional<ports::ChunkRecord>> records;
            if (!found.empty()) records = std::span(found).subspan(next, child.chunks.size());
            next += child.chunks.size();
            if (Cancelled()) return absl::CancelledError("restore cancelled");
            RestoreFile(child, child_path, records, setgid);
            continue;
          }
          CAIRN_RETURN_IF_ERROR(RestoreEntry(child, child_path, depth + 1));
        }
      }
      return absl::OkStatus();
    }
    case format::EntryType::kSymlink: {
      // As CreateReplacing: whatever is at `path` is replaced, unlinked only when it exists.
      int rc = ::symlink(entry.symlink_target.c_str(), path.c_str());
      if (rc != 0 && errno == EEXIST) {
        ::unlink(path.c_str());
        rc = ::symlink(entry.symlink_target.c_str(), path.c_str());
      }
      if (rc != 0) {
        Error(std::string(ErrnoStatus(errno, "symlink " + path).message()));
        return absl::OkStatus();
      }
      ApplyOwner(path, entry, true);
      SetTimes(path, entry.mtime_ns, true);
      std::lock_guard lock(mu_);
      result_.symlinks++;
      return absl::OkStatus();
    }
    case format::EntryType::kFile:  // a file given alone (restore of one path): the target
      RestoreFile(entry, path, {}, /*parent_setgid=*/true);  // is not ours, owner always set
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<RestoreResult> RestoreRun::Run(const format::Snapshot& snapshot) {
  const int64_t start = ctx_.clock->MonotonicNanos();
  if (opts_.target.empty()) return absl::InvalidArgumentError("restore: no target directory given");
  CAIRN_RETURN_IF_ERROR(Annotate(
      [&]() -> absl::Status {
        std::error_code ec;
        std::filesystem::create_directories(opts_.target, ec);
        if (ec) return ErrnoStatus(ec.value(), "create target " + opts_.target);
        return absl::OkStatus();
      }(),
      "restore"));
  // What to restore: the root's entries, or the entry at opts_.path.
  CAIRN_ASSIGN_OR_RETURN(std::vector<format::TreeEntry> tops,
                         EntriesAt(ctx_, snapshot, opts_.path));

  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, opts_.threads); ++i)
    workers.emplace_back([this] { WorkerLoop(queue_); });
  for (int i = 0; i < std::max(1, opts_.erasure_threads); ++i)
    workers.emplace_back([this] { WorkerLoop(erasure_queue_); });
  absl::Status st;
  for (const auto& e : tops) {
    st = RestoreEntry(e, opts_.target + "/" + e.name, 0);
    if (!st.ok()) break;
  }
  queue_.Close();
  erasure_queue_.Close();
  for (auto& t : workers) t.join();
  CAIRN_RETURN_IF_ERROR(st);
  if (Cancelled()) return absl::CancelledError("restore cancelled");

  // Hard links after their first name has its content.
  for (const auto& [path, first] : hardlinks_) {
    ::unlink(path.c_str());
    if (::link(first.c_str(), path.c_str()) != 0) {
      Error(std::string(ErrnoStatus(errno, "link " + path).message()));
    } else {
      result_.hardlinks++;
    }
  }
  // Directory modes and times last, deepest first (writing inside changes a directory's mtime).
  std::stable_sort(dirs_.begin(), dirs_.end(),
                   [](const DirMeta& a, const DirMeta& b) { return a.depth > b.depth; });
  for (const auto& d : dirs_) {
    ApplyOwner(d.path, d.entry, false);
    ::chmod(d.path.c_str(), d.entry.mode);
    SetTimes(d.path, d.entry.mtime_ns, false);
  }
  result_.seconds = static_cast<double>(ctx_.clock->MonotonicNanos() - start) / 1e9;
  return std::move(result_);
}

}  // namespace

absl::StatusOr<RestoreResult> Restore(const EngineContext& ctx, const format::Snapshot& snapshot,
                                      const RestoreOptions& options, RestoreProgress* progress,
                                      const std::atomic<bool>* cancel) {
  // A peer that fails one chunk's fetch is asked after the other holders by the next chunks
  // (engine/peer_failures.h): the restore's own memory when the context keeps none.
  EngineContext run_ctx = ctx;
  PeerFailures failures(ctx.clock != nullptr ? ctx.clock : env::RealClock::Default());
  if (run_ctx.peer_failures == nullptr) run_ctx.peer_failures = &failures;
  RestoreRun run(run_ctx, options, progress, cancel);
  return run.Run(snapshot);
}

}  // namespace cairn::engine
