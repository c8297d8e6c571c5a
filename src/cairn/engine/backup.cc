#include "cairn/engine/backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <shared_mutex>
#include <thread>
#include <unordered_set>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "cairn/base/bounded_queue.h"
#include "cairn/base/status.h"
#include "cairn/engine/chunk_io.h"
#include "cairn/engine/snapshot_io.h"
#include "cairn/engine/snapshot_read.h"
#include "cairn/engine/write_behind_catalog.h"
#include "cairn/format/blob.h"

namespace cairn::engine {
namespace {

// Errors reading the source tree (a file or directory we cannot read) are reported and the
// backup goes on; any other error (cancel, catalog, no peer takes a chunk) stops it.
constexpr char kSourceErrorPayload[] = "cairn.dev/source-error";
absl::Status SourceError(absl::Status st) {
  st.SetPayload(kSourceErrorPayload, absl::Cord("1"));
  return st;
}
bool IsSourceError(const absl::Status& st) {
  return st.GetPayload(kSourceErrorPayload).has_value();
}

int64_t ToNanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool Excluded(const std::vector<std::string>& globs, const std::string& path,
              const std::string& name) {
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
    if (::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

// Lists a directory's entry names (excluding . and ..), sorted bytewise. With `fd` (the
// directory, open), lists through a duplicate of it and leaves `fd` open.
absl::StatusOr<std::vector<std::string>> ReadDirNames(const std::string& path, int fd = -1) {
  DIR* dir = nullptr;
  if (fd >= 0) {
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return ErrnoStatus(errno, "open directory " + path);
    dir = ::fdopendir(dup);
    if (!dir) ::close(dup);
  } else {
    dir = ::opendir(path.c_str());
  }
  if (!dir) return ErrnoStatus(errno, "open directory " + path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  int err = errno;
  ::closedir(dir);
  if (err) return ErrnoStatus(err, "read directory " + path);
  std::sort(names.begin(), names.end());
  return names;
}

// Whether a file changed between two stat calls on it: another inode (replaced), or size,
// mtime or ctime differ (any write, truncation, chmod or utimensat moves ctime).
bool ChangedBetween(const struct stat& before, const struct stat& after) {
  return before.st_ino != after.st_ino || before.st_dev != after.st_dev ||
         before.st_size != after.st_size || ToNanos(before.st_mtim) != ToNanos(after.st_mtim) ||
         ToNanos(before.st_ctim) != ToNanos(after.st_ctim);
}

// Whether `now` (fresh from lstat) has the metadata of the parent snapshot's entry: type, size,
// mtime, ctime and inode. A parent ctime or inode of 0 is unknown (trees written before they
// were recorded) and is not compared. The device is not compared: it is not stable across
// reboots for some filesystems (NFS, btrfs subvolumes).
bool SameMetadata(const format::TreeEntry& parent, const format::TreeEntry& now) {
  return parent.type == format::EntryType::kFile && now.type == format::EntryType::kFile &&
         parent.size == now.size && parent.mtime_ns == now.mtime_ns &&
         (parent.ctime_ns == 0 || parent.ctime_ns == now.ctime_ns) &&
         (parent.inode == 0 || parent.inode == now.inode);
}

// Closes a file descriptor when it goes out of scope.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

format::TreeEntry EntryFromStat(const std::string& name, const struct stat& st) {
  format::TreeEntry e;
  e.name = name;
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_ns = ToNanos(st.st_mtim);
  e.ctime_ns = ToNanos(st.st_ctim);
  e.inode = st.st_ino;
  e.device = st.st_dev;
  if (S_ISREG(st.st_mode)) {
    e.type = format::EntryType::kFile;
    e.size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    e.type = format::EntryType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    e.type = format::EntryType::kSymlink;
  }
  return e;
}

// Bytes the walker may hand to the upload workers before it waits (memory flat in the data
// size: docs/architecture.md "Data path"). A chunk larger than the whole budget still goes when
// nothing else is in flight.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t limit) : limit_(std::max<uint64_t>(limit, 1)) {}
  void Acquire(uint64_t n) {
    std::unique_lock lock(mu_);
    released_.wait(lock, [&] { return used_ == 0 || used_ + n <= limit_; });
    used_ += n;
  }
  // Acquire without waiting: false (nothing taken) when it would wait.
  bool TryAcquire(uint64_t n) {
    std::lock_guard lock(mu_);
    if (used_ != 0 && used_ + n > limit_) return false;
    used_ += n;
    return true;
  }
  void Release(uint64_t n) {
    if (n == 0) return;
    {
      std::lock_guard lock(mu_);
      used_ -= std::min(used_, n);
    }
    released_.notify_all();
  }

 private:
  const uint64_t limit_;
  std::mutex mu_;
  std::condition_variable released_;
  uint64_t used_ = 0;
};

// One backup run: the walker (this thread) reads, chunks, hashes and builds trees; upload
// workers seal and place new chunks.
class BackupRun {
 public:
  BackupRun(const EngineContext& ctx, const BackupOptions& opts, BackupProgress* progress,
            const std::atomic<bool>* cancel)
      : records_(ctx.catalog, kCatalogBatch),
        ctx_(WithCatalog(ctx, &records_)),
        opts_(opts),
        progress_(progress ? progress : &own_progress_),
        cancel_(cancel),
        chunker_(ctx.chunker, ctx.keys.chunker_seed),
        queue_(static_cast<size_t>(std::max(1, opts.queue_chunks))),
        budget_(opts.max_bytes_in_flight) {
    redundancy_.copies = opts.copies;
    redundancy_.ec = opts.ec;
    redundancy_.offsite = opts.offsite;
  }

  absl::StatusOr<BackupResult> Run();

 private:
  struct UploadTask {
    ChunkId id;
    BlobKind kind;
    Bytes plaintext;
    // A stored chunk being topped up (a plain struct, not an optional: GCC 12 warns about
    // moving an optional<ChunkRecord> through the queue).
    bool topping_up = false;
    ports::ChunkRecord known;
  };

  bool Cancelled() const { return cancel_ && cancel_->load(); }
  // Hands the walker's pending chunks to the workers as one batch (no-op when there are none).
  void FlushPending();
  void StartWorkers();
  absl::Status StopWorkers();
  void WorkerLoop();
  // Registers a chunk reference; queues it for upload if no peer holds enough copies yet.
  absl::Status AddChunk(const ChunkId& id, BlobKind kind, ByteSpan plaintext);
  // One pass over an open file from its current offset to EOF: chunks it and registers every
  // chunk (AddChunk). Returns the chunk ids; `*size` gets the bytes read.
  absl::StatusOr<std::vector<ChunkId>> ChunkPass(int fd, const std::string& path, uint64_t* size);
  // Reads a regular file and returns its chunk ids; fills `e`'s size (bytes read) and
  // metadata from `walked` (the walk's lstat of `path`), or from fstat when the file is read a
  // second time. A file that changed while it was read is read once more; if it
  // changed again it is kept as read and flagged (warnings, files_changed_during_read).
  absl::StatusOr<std::vector<ChunkId>> ReadFile(const std::string& path, const struct stat& walked,
                                                format::TreeEntry& e);
  // `parent_id`: the id of `parent` (its cached tree), when there is one.
  absl::StatusOr<ChunkId> BackupDirectory(const std::string& path, const format::Tree* parent,
                                          const std::optional<ChunkId>& parent_id);
  // Fills `entry` (already stat'ed) with content; returns false if the entry must be skipped.
  bool BackupEntry(const std::string& path, const struct stat& st, format::TreeEntry& entry,
                   const format::TreeEntry* parent_entry, absl::Status* fatal);
  // Caches and stores a tree; `cached`: the id of a tree already in the catalog's cache (the
  // parent's), whose write is skipped when this tree is the same.
  absl::StatusOr<ChunkId> StoreTree(const format::Tree& tree,
                                    const std::optional<ChunkId>& cached = std::nullopt);
  std::optional<format::Tree> LoadParentTree(const ChunkId& id);
  void ScanTotals(std::vector<std::string> paths);
  static constexpr std::chrono::milliseconds kScanDelay{2000};
  std::mutex scan_mu_;  // with scan_cv_: the scanner's wait for kScanDelay or the end
  std::condition_variable scan_cv_;

  static EngineContext WithCatalog(const EngineContext& ctx, ports::Catalog* catalog) {
    EngineContext out = ctx;
    out.catalog = catalog;
    return out;
  }
  // Chunk records written per catalog transaction (engine/write_behind_catalog.h). Chunk ids
  // are random, so each record dirties its own B-tree pages: a larger batch shares more of
  // them per commit (512 -> 4096 halved the catalog's CPU in a backup of 73k files; 4096 ->
  // 16384, with a 16 MiB page cache, took its page writes from 123,000 to 70,000). Pending
  // records cost ~200 bytes each (~3 MB at this size).
  static constexpr size_t kCatalogBatch = 16384;

  WriteBehindCatalog records_;  // the run's catalog: chunk records written in batches
  const EngineContext ctx_;     // the caller's, with records_ as its catalog
  const BackupOptions& opts_;
  Redundancy redundancy_;
  BackupProgress own_progress_;
  BackupProgress* progress_;
  const std::atomic<bool>* cancel_;
  codec::Chunker chunker_;
  // Chunks go to the workers in batches (up to kBatchBytes of plaintext or kBatchChunks
  // chunks), and sealed batches to the finisher: one hand-off between threads per batch, not
  // per chunk (docs/architecture.md "Data path"). Under erasure coding a worker waits for the
  // peers on every chunk stored as shards, so such a chunk ends its batch.
  static constexpr uint64_t kBatchBytes = 1 << 20;
  static constexpr size_t kBatchChunks = 64;
  std::vector<UploadTask> pending_;  // the walker's next batch
  uint64_t pending_bytes_ = 0;
  BoundedQueue<std::vector<UploadTask>> queue_;
  ByteBudget budget_;  // plaintext bytes queued, being sealed or with puts in flight
  std::vector<std::thread> workers_;
  // New copies chunks whose puts are in flight, oldest first, finished by finisher_: the
  // workers seal the next chunk instead of waiting for the peers (docs/architecture.md
  // "Data path"). Unbounded as a queue; budget_ bounds what it holds.
  struct Sent {
    ChunkId id;
    uint64_t budget_bytes = 0;
    CopiesInFlight copies;
  };
  BoundedQueue<std::vector<Sent>> sent_{SIZE_MAX};
  std::thread finisher_;
  void FinisherLoop();
  // A chunk is done (stored, or failed with `st`): counters, in-flight set, first error.
  void Done(const ChunkId& id, const absl::StatusOr<StoreOutcome>& outcome);
  Bytes read_buf_;  // the walker's read buffer (ChunkPass)

  std::mutex mu_;  // guards the fields below
  std::unordered_set<ChunkId, ChunkIdHash> in_flight_;
  absl::Status upload_error_;
  uint64_t below_target_ = 0;

  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, std::vector<ChunkId>>> hardlinks_;
  uint64_t next_hardlink_group_ = 1;
  BackupResult result_;
  format::SnapshotStats stats_;
};

void BackupRun::StartWorkers() {
  int n = std::max(1, opts_.upload_threads);
  if (!redundancy_.ec) {
    // Stored as copies, a worker only seals (compress, encrypt) and starts the puts: it never
    // waits for a peer, so more workers than cores add memory (each holds a chunk's plaintext,
    // compressed and sealed forms) and no speed (docs/architecture.md "Data path").
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    n = std::min(n, cores + 1);
  }
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  finisher_ = std::thread([this] { FinisherLoop(); });
}

void BackupRun::FlushPending() {
  if (pending_.empty()) return;
  queue_.Push(std::move(pending_));
  pending_ = std::vector<UploadTask>();
  pending_bytes_ = 0;
}

absl::Status BackupRun::StopWorkers() {
  FlushPending();
  queue_.Close();
  for (auto& t : workers_) t.join();
  workers_.clear();
  sent_.Close();
  if (finisher_.joinable()) finisher_.join();
  std::lock_guard lock(mu_);
  return upload_error_;
}

void BackupRun::WorkerLoop() {
  while (auto batch = queue_.Pop()) {
    uint64_t release = 0;      // budget bytes this batch gives back
    std::vector<Sent> sealed;  // new copies chunks with puts in flight, for the finisher
    for (UploadTask& t : *batch) {
      UploadTask* task = &t;
      {
        std::lock_guard lock(mu_);
        if (!upload_error_.ok()) {  // drain without work after a fatal error
          release += task->plaintext.size();
          continue;
        }
      }
      const uint64_t task_bytes = task->plaintext.size();
      format::PreparedChunk for_shards;
      if (!task->topping_up) {
        // A new chunk stored as copies (or as m+1 copies, small under erasure coding): seal it,
        // start its puts, and hand it to the finisher.
        auto started =
            StartNewCopies(ctx_, task->kind, task->id, task->plaintext, redundancy_, &for_shards);
        if (!started.ok() || started->has_value()) {
          task->plaintext = Bytes();
          if (!started.ok()) {
            release += task_bytes;
            Done(task->id, started.status());
            continue;
          }
          // From here on the chunk holds its sealed blob, not its plaintext: the budget keeps
          // what it holds.
          const uint64_t held = std::min<uint64_t>(task_bytes, (*started)->sealed.blob.size());
          release += task_bytes - held;
          sealed.push_back(Sent{task->id, held, std::move(**started)});
          continue;
        }
      }
      // Shards or topping up: this waits for the peers; what the batch holds so far goes
      // first.
      budget_.Release(std::exchange(release, 0));
      if (!sealed.empty()) sent_.Push(std::exchange(sealed, {}));
      absl::StatusOr<StoreOutcome> outcome;
      if (task->topping_up) {
        outcome = PutChunk(ctx_, task->kind, task->id, task->plaintext, redundancy_, task->known);
      } else {
        outcome =
            StoreNewShards(ctx_, task->kind, for_shards, *redundancy_.ec, redundancy_.offsite);
      }
      task->plaintext = Bytes();
      budget_.Release(task_bytes);
      Done(task->id, outcome);
    }
    budget_.Release(release);
    if (!sealed.empty()) sent_.Push(std::move(sealed));
  }
}

void BackupRun::FinisherLoop() {
  while (auto batch = sent_.Pop()) {
    uint64_t release = 0;
    for (Sent& sent : *batch) {
      auto outcome = FinishCopies(ctx_, sent.copies);
      sent.copies = CopiesInFlight();
      release += sent.budget_bytes;
      Done(sent.id, outcome);
    }
    budget_.Release(release);
  }
}

void BackupRun::Done(const ChunkId& id, const absl::StatusOr<StoreOutcome>& outcome) {
  if (outcome.ok()) progress_->sent_bytes += outcome->sent_bytes;
  std::lock_guard lock(mu_);
  if (outcome.ok() && !outcome->at_target) ++below_target_;
  in_flight_.erase(id);
  if (!outcome.ok() && upload_error_.ok()) upload_error_ = outcome.status();
}

absl::Status BackupRun::AddChunk(const ChunkId& id, BlobKind kind, ByteSpan plaintext) {
  progress_->chunks++;
  if (kind == BlobKind::kData) stats_.chunks++;
  {
    std::lock_guard lock(mu_);
    if (!upload_error_.ok()) return upload_error_;
    if (in_flight_.count(id)) return absl::OkStatus();
  }
  CAIRN_ASSIGN_OR_RETURN(auto known, ctx_.catalog->FindChunk(id));
  if (known && SatisfiesRedundancy(*known, redundancy_)) return absl::OkStatus();  // dedup
  UploadTask task;
  task.id = id;
  task.kind = kind;
  task.plaintext.assign(plaintext.begin(), plaintext.end());
  if (known) {
    task.topping_up = true;
    task.known = std::move(*known);
  } else {
    progress_->new_chunks++;
    progress_->new_bytes += plaintext.size();
    if (kind == BlobKind::kData) {
      stats_.new_chunks++;
      stats_.new_bytes += plaintext.size();
    }
  }
  {
    std::lock_guard lock(mu_);
    in_flight_.insert(id);
  }
  const uint64_t bytes = plaintext.size();
  if (!budget_.TryAcquire(bytes)) {
    // The budget is full: what this walker holds must go before it waits for room.
    FlushPending();
    budget_.Acquire(bytes);
  }
  pending_.push_back(std::move(task));
  pending_bytes_ += bytes;
  // Under erasure coding a chunk large enough for shards ends its batch: its worker waits for
  // the peers, and the small chunks before it have their puts started by then.
  if (pending_bytes_ >= kBatchBytes || pending_.size() >= kBatchChunks ||
      (redundancy_.ec && bytes >= format::kMinErasurePayload)) {
    FlushPending();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ChunkId>> BackupRun::ChunkPass(int fd, const std::string& path,
                                                          uint64_t* size) {
  std::vector<ChunkId> chunks;
  const size_t max = chunker_.params().max_size;
  // One buffer for the whole run (allocating and zeroing one per file would cost more than
  // reading a small file): the chunker needs `max` bytes ahead of a cut, reads add up to
  // kReadSize more.
  constexpr size_t kReadSize = 1 << 20;
  if (read_buf_.size() != max + kReadSize) read_buf_.resize(max + kReadSize);
  Bytes& buf = read_buf_;
  size_t start = 0, end = 0;
  bool eof = false;
  uint64_t total = 0;
  while (true) {
    while (!eof && end - start < max) {
      if (buf.size() - end < kReadSize) {
        std::memmove(buf.data(), buf.data() + start, end - start);
        end -= start;
        start = 0;
      }
      ssize_t n = ::read(fd, buf.data() + end, buf.size() - end);
      if (n < 0) {
        if (errno == EINTR) continue;
        return SourceError(ErrnoStatus(errno, "read " + path));
      }
      if (n == 0) eof = true;
      end += static_cast<size_t>(n);
      progress_->bytes_read += static_cast<uint64_t>(n);
      progress_->bytes_done += static_cast<uint64_t>(n);
    }
    if (start == end) break;
    if (Cancelled()) return absl::CancelledError("backup cancelled");
    ByteSpan data(buf.data() + start, end - start);
    size_t cut = chunker_.NextCut(data);
    ByteSpan chunk = data.subspan(0, cut);
    ChunkId id = codec::ComputeChunkId(ctx_.keys.id_key, chunk);
    chunks.push_back(id);
    CAIRN_RETURN_IF_ERROR(AddChunk(id, BlobKind::kData, chunk));
    start += cut;
    total += cut;
  }
  *size = total;
  return chunks;
}

absl::StatusOr<std::vector<ChunkId>> BackupRun::ReadFile(const std::string& path,
                                                         const struct stat& walked,
                                                         format::TreeEntry& e) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME | O_NOFOLLOW);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return SourceError(ErrnoStatus(errno, "open " + path));
  FdCloser closer(fd);
  constexpr int kAttempts = 2;
  for (int attempt = 1;; ++attempt) {
    // The first pass starts from the walk's lstat, one fstat per file fewer: a file replaced
    // between that lstat and the open has another inode (or size and times) after the read,
    // so it counts as changed and is read again from a fresh fstat.
    struct stat before = walked;
    if (attempt > 1) {
      if (::fstat(fd, &before) != 0) return SourceError(ErrnoStatus(errno, "stat " + path));
      if (::lseek(fd, 0, SEEK_SET) < 0) return SourceError(ErrnoStatus(errno, "seek " + path));
    }
    uint64_t size = 0;
    CAIRN_ASSIGN_OR_RETURN(std::vector<ChunkId> chunks, ChunkPass(fd, path, &size));
    if (opts_.after_file_read) opts_.after_file_read(path, attempt);
    struct stat after;
    const bool changed = ::fstat(fd, &after) == 0 && ChangedBetween(before, after);
    if (changed && attempt < kAttempts) {
      // Read it again from the start. This pass's chunks are stored already (garbage for
      // the next collection unless referenced elsewhere) but no longer referenced here.
      stats_.chunks -= chunks.size();
      progress_->chunks -= chunks.size();
      progress_->bytes_done -= size;
      result_.files_reread++;
      continue;
    }
    // The metadata recorded is the one from before the last pass: for a file that changed
    // during it, that differs from the file's metadata now, so the next run reads it again.
    format::TreeEntry now = EntryFromStat(e.name, before);
    e.mode = now.mode;
    e.uid = now.uid;
    e.gid = now.gid;
    e.mtime_ns = now.mtime_ns;
    e.ctime_ns = now.ctime_ns;
    e.inode = now.inode;
    e.device = now.device;
    e.size = size;  // what was actually read
    if (changed) {
      result_.files_changed_during_read++;
      progress_->files_changed_during_read++;
      result_.warnings.push_back(path +
                                 ": file changed while it was read, twice; the snapshot has the "
                                 "bytes read, which may mix versions");
    }
    result_.files_read++;
    progress_->files_read++;
    return chunks;
  }
}

std::optional<format::Tree> BackupRun::LoadParentTree(const ChunkId& id) {
  auto tree = LoadTree(ctx_, id);
  if (!tree.ok()) return std::nullopt;  // no parent: read everything
  return std::move(*tree);
}

bool BackupRun::BackupEntry(const std::string& path, const struct stat& st,
                            format::TreeEntry& entry, const format::TreeEntry* parent_entry,
                            absl::Status* fatal) {
  if (S_ISREG(st.st_mode)) {
    stats_.files++;
    stats_.bytes += entry.size;
    if (st.st_nlink > 1) {
      auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
      auto it = hardlinks_.find(key);
      if (it != hardlinks_.end()) {  // another name of an inode already in this snapshot
        entry.hardlink_group = it->second.first;
        entry.chunks = it->second.second;
        stats_.chunks += entry.chunks.size();
        progress_->files_done++;
        progress_->bytes_done += entry.size;
        return true;
      }
    }
    const bool same_metadata = parent_entry && SameMetadata(*parent_entry, entry);
    if (same_metadata && !opts_.rehash) {
      entry.chunks = parent_entry->chunks;
      stats_.chunks += entry.chunks.size();
      progress_->chunks += entry.chunks.size();
      progress_->bytes_done += entry.size;
      result_.files_unchanged++;
      progress_->files_unchanged++;
    } else {
      const uint64_t stat_size = entry.size;
      auto chunks = ReadFile(path, st, entry);
      if (!chunks.ok()) {
        if (!IsSourceError(chunks.status())) {
          *fatal = chunks.status();
          return false;
        }
        // A file we cannot read is reported and left out; the rest goes on.
        result_.errors.push_back(std::string(chunks.status().message()));
        stats_.files--;
        stats_.bytes -= stat_size;
        return false;
      }
      stats_.bytes = stats_.bytes - stat_size + entry.size;
      entry.chunks = std::move(*chunks);
      if (opts_.rehash && parent_entry && parent_entry->type == format::EntryType::kFile) {
        if (parent_entry->chunks == entry.chunks) {
          result_.files_unchanged++;
          progress_->files_unchanged++;
        } else if (same_metadata) {
          result_.files_changed_same_metadata++;
        }
      }
    }
    if (st.st_nlink > 1) {
      auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
      entry.hardlink_group = next_hardlink_group_++;
      hardlinks_[key] = {entry.hardlink_group, entry.chunks};
    }
    progress_->files_done++;
    return true;
  }
  if (S_ISDIR(st.st_mode)) {
    stats_.directories++;
    std::optional<format::Tree> parent_tree;
    if (parent_entry && parent_entry->type == format::EntryType::kDirectory &&
        parent_entry->subtree) {
      parent_tree = LoadParentTree(*parent_entry->subtree);
    }
    std::optional<ChunkId> parent_id;
    if (parent_tree) parent_id = *parent_entry->subtree;
    auto id = BackupDirectory(path, parent_tree ? &*parent_tree : nullptr, parent_id);
    if (!id.ok()) {
      if (!IsSourceError(id.status())) {
        *fatal = id.status();
        return false;
      }
      result_.errors.push_back(std::string(id.status().message()));
      stats_.directories--;
      return false;
    }
    entry.subtree = *id;
    return true;
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) {
      result_.errors.push_back(std::string(ErrnoStatus(errno, "readlink " + path).message()));
      return false;
    }
    target.resize(static_cast<size_t>(n));
    entry.symlink_target = target;
    progress_->files_done++;
    return true;
  }
  result_.warnings.push_back(path + ": special file skipped (device, socket or FIFO)");
  return false;
}

absl::StatusOr<ChunkId> BackupRun::BackupDirectory(const std::string& path,
                                                   const format::Tree* parent,
                                                   const std::optional<ChunkId>& parent_id) {
  if (Cancelled()) return absl::CancelledError("backup cancelled");
  // Entries are stat'ed relative to the open directory: a full path per lstat made the kernel
  // walk every component again (path lookup was the largest cost of a no-change backup).
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return SourceError(ErrnoStatus(errno, "open directory " + path));
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};
  auto names = ReadDirNames(path, fd);
  if (!names.ok()) return SourceError(names.status());
  format::Tree tree;
  for (const auto& name : *names) {
    std::string child = JoinPath(path, name);
    if (Excluded(opts_.excludes, child, name)) continue;
    struct stat st;
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      result_.errors.push_back(std::string(ErrnoStatus(errno, "stat " + child).message()));
      continue;
    }
    format::TreeEntry entry = EntryFromStat(name, st);
    const format::TreeEntry* parent_entry = nullptr;
    if (parent) {
      auto it = std::lower_bound(
          parent->entries.begin(), parent->entries.end(), name,
          [](const format::TreeEntry& e, const std::string& n) { return e.name < n; });
      if (it != parent->entries.end() && it->name == name) parent_entry = &*it;
    }
    absl::Status fatal;
    if (BackupEntry(child, st, entry, parent_entry, &fatal)) {
      tree.entries.push_back(std::move(entry));
    } else if (!fatal.ok()) {
      return fatal;
    }
  }
  return StoreTree(tree, parent_id);
}

absl::StatusOr<ChunkId> BackupRun::StoreTree(const format::Tree& tree,
                                             const std::optional<ChunkId>& cached) {
  Bytes encoded = format::EncodeTree(tree);
  ChunkId id = codec::ComputeChunkId(ctx_.keys.id_key, encoded);
  // An unchanged directory: its tree is the parent's, cached and stored with the parent
  // snapshot, so it is neither written to the cache again nor looked up, as an unchanged file's
  // chunks are not (a catalog write, then a lookup, per directory were most of a no-change
  // backup's work).
  if (id == cached) {
    progress_->chunks++;
    return id;
  }
  CAIRN_RETURN_IF_ERROR(ctx_.catalog->PutTree(id, encoded));
  CAIRN_RETURN_IF_ERROR(AddChunk(id, BlobKind::kTree, encoded));
  return id;
}

void BackupRun::ScanTotals(std::vector<std::string> paths) {
  // A stat-only walk for the progress bar's totals; errors are the walker's to report. It
  // starts only when the backup is still running after kScanDelay: a short run (a re-backup
  // with few changes) needs no ETA, and the scan would double its stat calls.
  {
    std::unique_lock lock(scan_mu_);
    if (scan_cv_.wait_for(lock, kScanDelay, [&] { return progress_->scan_done.load(); })) return;
  }
  std::vector<std::string> stack = std::move(paths);
  while (!stack.empty() && !Cancelled() && !progress_->scan_done.load()) {
    std::string p = std::move(stack.back());
    stack.pop_back();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      progress_->files_total++;
      progress_->bytes_total += static_cast<uint64_t>(st.st_size);
    } else if (S_ISLNK(st.st_mode)) {
      progress_->files_total++;
    } else if (S_ISDIR(st.st_mode)) {
      auto names = ReadDirNames(p);
      if (!names.ok()) continue;
      for (const auto& n : *names) {
        std::string child = JoinPath(p, n);
        if (!Excluded(opts_.excludes, child, n)) stack.push_back(child);
      }
    }
  }
  progress_->scan_done = true;
}

absl::StatusOr<BackupResult> BackupRun::Run() {
  const int64_t start_mono = ctx_.clock->MonotonicNanos();
  if (opts_.paths.empty()) return absl::InvalidArgumentError("backup: no paths given");
  if (opts_.ec) {
    if (opts_.ec->k < 1 || opts_.ec->k > codec::kMaxDataShards || opts_.ec->m < 1 ||
        opts_.ec->m > codec::kMaxParityShards) {
      return absl::InvalidArgumentError("backup: erasure scheme " + opts_.ec->ToString() +
                                        " out of range (k 1..16, m 1..8)");
    }
  } else if (opts_.copies < 1) {
    return absl::InvalidArgumentError("backup: copies must be at least 1");
  }
  const std::vector<StoragePeer> peers_now = ctx_.peers->Peers();
  result_.redundancy_warning = RedundancyWarning(opts_.copies, opts_.ec, peers_now);
  if (opts_.offsite > 0) {
    // docs/operations.md "Sites and off-site copies": stored anyway, below target.
    const auto away = std::count_if(peers_now.begin(), peers_now.end(), [&](const auto& p) {
      return p.alive && p.id != ctx_.owner && p.site != ctx_.site;
    });
    if (static_cast<uint64_t>(away) < opts_.offsite) {
      const std::string site = ctx_.site.empty() ? "the LAN" : "'" + ctx_.site + "'";
      std::string w = absl::StrCat(
          "--offsite ", opts_.offsite, " asks for ", opts_.offsite, " off-site copies but ", away,
          away == 1 ? " alive storage peer is" : " alive storage peers are",
          " of a site other than ", site, ": chunks are stored below their off-site target");
      result_.redundancy_warning = result_.redundancy_warning.empty()
                                       ? w
                                       : absl::StrCat(result_.redundancy_warning, "; ", w);
    }
  }
  // Absolute, normalized source paths; root entries are named by their last component.
  std::vector<std::string> paths;
  std::map<std::string, std::string> by_name;
  for (const auto& p : opts_.paths) {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(p, ec).lexically_normal().string();
    if (ec) return absl::InvalidArgumentError("backup: bad path " + p);
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) return ErrnoStatus(errno, "backup " + p);
    std::string name = abs == "/" ? std::string("root") : BaseName(abs);
    if (by_name.count(name)) {
      return absl::InvalidArgumentError("backup: paths " + by_name[name] + " and " + abs +
                                        " have the same name '" + name +
                                        "'; back them up separately");
    }
    by_name[name] = abs;
    paths.push_back(abs);
  }
  std::sort(paths.begin(), paths.end());

  // Parent: the latest snapshot of exactly these paths.
  std::optional<format::Tree> parent_root;
  std::optional<ChunkId> parent_id;
  if (opts_.use_parent) {
    CAIRN_ASSIGN_OR_RETURN(auto snaps, ctx_.catalog->ListSnapshots());
    for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
      auto sp = it->snapshot.paths;
      std::sort(sp.begin(), sp.end());
      if (sp == paths) {
        parent_id = it->id;
        parent_root = LoadParentTree(it->snapshot.root);
        break;
      }
    }
  }

  std::thread scanner([this, paths] { ScanTotals(paths); });
  StartWorkers();
  const int64_t start_wall = ctx_.clock->NowNanos();
  absl::Status fatal;
  format::Tree root;
  for (const auto& [name, abs] : by_name) {
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) {
      fatal = ErrnoStatus(errno, "stat " + abs);
      break;
    }
    format::TreeEntry entry = EntryFromStat(name, st);
    const format::TreeEntry* parent_entry = nullptr;
    if (parent_root) {
      for (const auto& e : parent_root->entries)
        if (e.name == name) parent_entry = &e;
    }
    absl::Status entry_fatal;
    if (BackupEntry(abs, st, entry, parent_entry, &entry_fatal)) {
      root.entries.push_back(std::move(entry));
    } else if (!entry_fatal.ok()) {
      fatal = entry_fatal;
      break;
    }
  }
  std::optional<ChunkId> root_id;
  if (fatal.ok()) {
    auto id = StoreTree(root);
    if (id.ok())
      root_id = *id;
    else
      fatal = id.status();
  }
  absl::Status upload = StopWorkers();
  {
    std::lock_guard lock(scan_mu_);
    progress_->scan_done = true;
  }
  scan_cv_.notify_all();
  scanner.join();
  CAIRN_RETURN_IF_ERROR(fatal);
  CAIRN_RETURN_IF_ERROR(upload);
  CAIRN_RETURN_IF_ERROR(records_.Flush());

  format::Snapshot snap;
  snap.time_ns = start_wall;
  snap.owner = ctx_.owner;
  snap.hostname = opts_.hostname;
  snap.paths = paths;
  snap.tags = opts_.tags;
  snap.root = *root_id;
  snap.parent = parent_id;
  snap.copies = opts_.ec ? redundancy_.CopiesForCopiesChunk() : opts_.copies;
  if (opts_.ec) {
    snap.ec_k = static_cast<uint32_t>(opts_.ec->k);
    snap.ec_m = static_cast<uint32_t>(opts_.ec->m);
  }
  stats_.sent_bytes = progress_->sent_bytes.load();
  snap.stats = stats_;
  CAIRN_ASSIGN_OR_RETURN(StoredChunk stored, StoreSnapshot(ctx_, snap, redundancy_));
  const ChunkId snapshot_id = stored.id;
  progress_->sent_bytes += stored.outcome.sent_bytes;
  if (!stored.outcome.at_target) ++below_target_;

  result_.rehash = opts_.rehash;
  result_.offsite = opts_.offsite;
  result_.snapshot_id = snapshot_id;
  result_.snapshot = snap;
  result_.snapshot.stats.sent_bytes = progress_->sent_bytes.load();
  result_.bytes_read = progress_->bytes_read.load();
  result_.chunks_below_target = below_target_;
  result_.seconds = static_cast<double>(ctx_.clock->MonotonicNanos() - start_mono) / 1e9;
  return std::move(result_);
}

}  // namespace

std::string RedundancyWarning(uint32_t copies, const std::optional<codec::ErasureScheme>& ec,
                              const std::vector<StoragePeer>& peers) {
  const uint64_t needed = ec ? static_cast<uint64_t>(ec->k + ec->m) : copies;
  const uint64_t known = peers.size();
  const uint64_t alive = static_cast<uint64_t>(
      std::count_if(peers.begin(), peers.end(), [](const StoragePeer& p) { return p.alive; }));
  if (alive >= needed) return "";
  const std::string asks =
      ec ? absl::StrCat("--ec ", ec->ToString(), " asks for ", needed, " shards on distinct peers")
         : absl::StrCat("--copies ", copies, " asks for ", copies,
                        copies == 1 ? " copy" : " copies");
  if (known < needed) {
    return absl::StrCat(asks, " but only ", known,
                        known == 1 ? " other storage peer is" : " other storage peers are",
                        " known; chunks will stay below target until more peers join");
  }
  return absl::StrCat(asks, " but only ", alive, " of the ", known,
                      " other storage peers are alive; chunks will stay below target until enough "
                      "of them are back");
}

absl::StatusOr<BackupResult> BackupEngine::Run(const BackupOptions& options,
                                               BackupProgress* progress,
                                               const std::atomic<bool>* cancel) {
  if (!ctx_.catalog || !ctx_.peers || !ctx_.clock) {
    return absl::FailedPreconditionError("backup engine is missing its catalog, peers or clock");
  }
  // Shared for the whole run (engine/gc.h): the chunks this backup deduplicates against are
  // referenced by no snapshot until it records its own, so no collection may sweep meanwhile.
  std::shared_lock<std::shared_mutex> gc_lock;
  if (ctx_.gc_lock) gc_lock = std::shared_lock(*ctx_.gc_lock);
  BackupRun run(ctx_, options, progress, cancel);
  return run.Run();
}

}  // namespace cairn::engine
