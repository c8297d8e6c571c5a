#include "cairn/env/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "cairn/base/status.h"

namespace cairn::env {

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status File::AppendV(std::span<const ByteSpan> parts) {
  if (parts.size() == 1) return Append(parts[0]);
  size_t total = 0;
  for (ByteSpan part : parts) total += part.size();
  Bytes joined;
  joined.reserve(total);
  for (ByteSpan part : parts) joined.insert(joined.end(), part.begin(), part.end());
  return Append(joined);
}

namespace {

// ---- POSIX ----

// Appends to a writable file go through a second descriptor opened with O_DIRECT where the file
// system supports it (docs/architecture.md "Segment writes bypass the page cache"): whole 4 KiB
// blocks are written from an aligned buffer straight to the device, so a segment's bytes are not
// copied into the page cache and written back at fdatasync. The last, partial block is written
// with a buffered pwrite and kept in memory; the next direct write rewrites that block whole, with
// the same leading bytes, so a torn write cannot damage bytes that were already durable. Where
// O_DIRECT is refused (tmpfs, some FUSE and network file systems) appends are plain pwrites.
constexpr size_t kDirectBlock = 4096;             // alignment of direct offsets, lengths, buffers
constexpr size_t kDirectStage = size_t{1} << 20;  // bytes per direct write at most

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;

AlignedBuffer NewAligned(size_t size) {
  void* p = std::aligned_alloc(kDirectBlock, size);
  if (p == nullptr) std::abort();  // out of memory
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

// Writes all of `data` at `offset`; errors errno-mapped (RESOURCE_EXHAUSTED for ENOSPC/EDQUOT).
absl::Status PwriteAll(int fd, const uint8_t* data, size_t size, uint64_t offset,
                       const std::string& what) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    if (n == 0) return ErrnoStatus(EIO, what);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

class PosixFile : public File {
 public:
  // `writable`: opened for appends (fd_ without O_APPEND: appends are pwrites at size_).
  // `direct_fd`: the same file opened O_DIRECT|O_WRONLY, or -1.
  PosixFile(int fd, std::string path, bool writable, int direct_fd, uint64_t size)
      : fd_(fd), path_(std::move(path)), writable_(writable), dfd_(direct_fd), size_(size) {}
  ~PosixFile() override {
    if (dfd_ >= 0) ::close(dfd_);
    ::close(fd_);
  }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EIO) {
          return absl::DataLossError("read " + path_ + " at " + std::to_string(offset + done) +
                                     ": " + std::strerror(EIO));
        }
        return ErrnoStatus(errno, "read " + path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  absl::Status Append(ByteSpan data) override {
    const ByteSpan part[1] = {data};
    return AppendV(part);
  }

  absl::Status AppendV(std::span<const ByteSpan> parts) override {
    if (!writable_)
      return absl::FailedPreconditionError("append to " + path_ + ": opened read-only");
    std::lock_guard<std::mutex> lock(mu_);
    if (dfd_ >= 0) {
      bool unsupported = false;
      absl::Status st = AppendDirectLocked(parts, &unsupported);
      if (!unsupported) return st;
      // EINVAL on the first direct write: this file system wants another alignment after all.
      // Nothing of `parts` was written; go on with buffered appends.
      CAIRN_RETURN_IF_ERROR(StopDirectLocked());
    }
    absl::Status st = PwritevAll(parts);
    if (!st.ok()) return ResyncLocked(st);
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    // fdatasync works on the inode: it covers the direct writes of dfd_ too (their extents and
    // the file size) and flushes the device's write cache.
    if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, "fdatasync " + path_);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(mu_);
    CAIRN_ASSIGN_OR_RETURN(uint64_t now, StatSize());
    if (size > now) {
      return absl::InvalidArgumentError("truncate " + path_ + " to " + std::to_string(size) +
                                        " bytes: longer than the file");
    }
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus(errno, "truncate " + path_);
    }
    size_ = size;
    tail_len_ = 0;
    tail_loaded_ = false;
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() override {
    if (!writable_) return StatSize();
    std::lock_guard<std::mutex> lock(mu_);
    return size_;
  }

  void DropCache() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); }

 private:
  absl::StatusOr<uint64_t> StatSize() {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

  // The bytes of the last partial block, [size_ rounded down to a block, size_), into tail_.
  absl::Status LoadTailLocked() {
    if (!tail_) tail_ = NewAligned(kDirectBlock);
    tail_len_ = static_cast<size_t>(size_ % kDirectBlock);
    const uint64_t start = size_ - tail_len_;
    size_t done = 0;
    while (done < tail_len_) {
      ssize_t n =
          ::pread(fd_, tail_.get() + done, tail_len_ - done, static_cast<off_t>(start + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, "read the last block of " + path_);
      done += static_cast<size_t>(n);
    }
    tail_loaded_ = true;
    return absl::OkStatus();
  }

  // `*unsupported`: set when the first direct write failed with EINVAL and nothing changed.
  absl::Status AppendDirectLocked(std::span<const ByteSpan> parts, bool* unsupported) {
    if (!tail_loaded_) CAIRN_RETURN_IF_ERROR(LoadTailLocked());
    // The file's staging buffer (appends are serialized by mu_), kept for the file's life: a
    // fresh one per call, or per thread of a pool that comes and goes, costs page faults on
    // every megabyte.
    if (!stage_) stage_ = NewAligned(kDirectStage);
    uint8_t* const stage = stage_.get();
    std::memcpy(stage, tail_.get(), tail_len_);
    size_t fill = tail_len_;
    const uint64_t first_offset = size_ - tail_len_;
    uint64_t offset = first_offset;  // block-aligned file offset of stage[0]
    size_t total = 0;
    for (ByteSpan part : parts) total += part.size();
    size_t part = 0, in_part = 0;  // the next byte to stage: parts[part][in_part]
    size_t pos = 0;                // bytes of all parts staged so far
    while (pos < total) {
      while (fill < kDirectStage && pos < total) {
        ByteSpan p = parts[part];
        const size_t take = std::min(p.size() - in_part, kDirectStage - fill);
        std::memcpy(stage + fill, p.data() + in_part, take);
        fill += take;
        pos += take;
        in_part += take;
        if (in_part == p.size()) {
          ++part;
          in_part = 0;
        }
      }
      const size_t whole = fill & ~(kDirectBlock - 1);
      if (whole == 0 || (fill < kDirectStage && pos < total)) continue;
      ssize_t n;
      do {
        n = ::pwrite(dfd_, stage, whole, static_cast<off_t>(offset));
      } while (n < 0 && errno == EINTR);
      if (n < 0 && errno == EINVAL && offset == first_offset) {
        *unsupported = true;
        return absl::OkStatus();
      }
      if (n < 0) return ResyncLocked(ErrnoStatus(errno, "append to " + path_));
      if (static_cast<size_t>(n) != whole) {
        // A short direct write (a full disk): the file holds some prefix.
        return ResyncLocked(ErrnoStatus(ENOSPC, "append to " + path_));
      }
      offset += whole;
      std::memmove(stage, stage + whole, fill - whole);
      fill -= whole;
    }
    // The last partial block goes in with a buffered write, so that the file (and every other
    // handle) holds each appended byte when Append returns; the next direct write replaces
    // that block whole.
    if (fill > 0) {
      absl::Status st = PwriteAll(fd_, stage, fill, offset, "append to " + path_);
      if (!st.ok()) return ResyncLocked(st);
    }
    size_ += total;
    std::memcpy(tail_.get(), stage, fill);
    tail_len_ = fill;
    return absl::OkStatus();
  }

  // Buffered appends: pwritev(2) of up to IOV_MAX parts at a time at size_; size_ grows by
  // what was written (also on an error, which ResyncLocked then corrects from the file).
  absl::Status PwritevAll(std::span<const ByteSpan> parts) {
    std::vector<struct iovec> iov;
    iov.reserve(std::min<size_t>(parts.size(), IOV_MAX));
    size_t next = 0;  // first part not yet in iov
    while (next < parts.size() || !iov.empty()) {
      while (next < parts.size() && iov.size() < IOV_MAX) {
        if (!parts[next].empty()) {
          iov.push_back({const_cast<uint8_t*>(parts[next].data()), parts[next].size()});
        }
        ++next;
      }
      if (iov.empty()) break;
      ssize_t n =
          ::pwritev(fd_, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(size_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "append to " + path_);
      }
      if (n == 0) return ErrnoStatus(EIO, "append to " + path_);
      size_ += static_cast<size_t>(n);
      // Drop what was written from the front of iov.
      size_t left = static_cast<size_t>(n);
      size_t done = 0;
      while (done < iov.size() && left >= iov[done].iov_len) left -= iov[done++].iov_len;
      if (done < iov.size() && left > 0) {
        iov[done].iov_base = static_cast<uint8_t*>(iov[done].iov_base) + left;
        iov[done].iov_len -= left;
      }
      iov.erase(iov.begin(), iov.begin() + static_cast<std::ptrdiff_t>(done));
    }
    return absl::OkStatus();
  }

  absl::Status StopDirectLocked() {
    ::close(dfd_);
    dfd_ = -1;
    tail_.reset();
    tail_len_ = 0;
    tail_loaded_ = false;
    return absl::OkStatus();
  }

  // After a failed write: the file keeps some prefix of what was appended. size_ becomes what
  // the file holds (as the contract says: Size tells how much), the tail is read back lazily.
  absl::Status ResyncLocked(const absl::Status& st) {
    if (auto now = StatSize(); now.ok()) size_ = *now;
    tail_len_ = 0;
    tail_loaded_ = false;
    return st;
  }

  const int fd_;
  const std::string path_;
  const bool writable_;
  int dfd_;              // O_DIRECT descriptor, or -1 (guarded by mu_ after construction)
  std::mutex mu_;        // appends, the tail, truncation
  uint64_t size_;        // every byte appended
  AlignedBuffer stage_;  // kDirectStage bytes for direct writes, made at the first one
  AlignedBuffer tail_;   // kDirectBlock bytes: [size_ - tail_len_, size_) of the file
  size_t tail_len_ = 0;
  bool tail_loaded_ = false;  // tail_ holds the file's last partial block
};

class PosixFs : public FileSystem {
 public:
  explicit PosixFs(bool direct_io) : direct_io_(direct_io) {}

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreate:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
    }
    int fd = ::open(path.c_str(), flags, 0600);
    if (fd < 0) {
      if (errno == EEXIST) return absl::AlreadyExistsError("create " + path + ": exists");
      return ErrnoStatus(errno, "open " + path);
    }
    const bool writable = mode != OpenMode::kRead;
    uint64_t size = 0;
    int dfd = -1;
    if (writable) {
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, "stat " + path);
      }
      size = static_cast<uint64_t>(st.st_size);
      // Refused (EINVAL) where the file system has no direct I/O: appends stay buffered.
      if (direct_io_) dfd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    }
    return std::unique_ptr<File>(new PosixFile(fd, path, writable, dfd, size));
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<bool> Exists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus(errno, "stat " + path);
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "rename " + from + " to " + to);
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus(errno, "remove " + path);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, "list " + dir);
    std::vector<std::string> out;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus(err, "list " + dir);
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return absl::OkStatus();
    return ErrnoStatus(errno, "create directory " + dir);
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open directory " + dir);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus(err, "fsync directory " + dir);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> FreeSpace(const std::string& path) override {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) != 0) return ErrnoStatus(errno, "statvfs " + path);
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
  }

 private:
  const bool direct_io_;
};

// ---- In memory ----

// The bytes a MemFs holds, against its capacity. Shared by its nodes, which give their bytes
// back when the last handle is gone (as unlinked files do).
struct MemSpace {
  explicit MemSpace(uint64_t capacity) : capacity(capacity) {}
  const uint64_t capacity;
  std::mutex mu;
  uint64_t used = 0;

  // Takes up to `size` bytes; returns how many fit.
  uint64_t Take(uint64_t size) {
    std::lock_guard<std::mutex> lock(mu);
    uint64_t n = std::min(size, capacity - std::min(capacity, used));
    used += n;
    return n;
  }
  void Give(uint64_t size) {
    std::lock_guard<std::mutex> lock(mu);
    used -= std::min(used, size);
  }
  uint64_t Free() {
    std::lock_guard<std::mutex> lock(mu);
    return capacity - std::min(capacity, used);
  }
};

struct MemNode {
  explicit MemNode(std::shared_ptr<MemSpace> space) : space(std::move(space)) {}
  ~MemNode() { space->Give(data.size()); }
  std::shared_ptr<MemSpace> space;
  std::mutex mu;
  Bytes data;
};

class MemFile : public File {
 public:
  MemFile(std::shared_ptr<MemNode> node, bool writable)
      : node_(std::move(node)), writable_(writable) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    if (offset >= node_->data.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), node_->data.size() - offset);
    if (n > 0) std::memcpy(out.data(), node_->data.data() + offset, n);
    return n;
  }
  absl::Status Append(ByteSpan data) override {
    if (!writable_) return absl::FailedPreconditionError("append to a file opened for reading");
    std::lock_guard<std::mutex> lock(node_->mu);
    const uint64_t fits = node_->space->Take(data.size());
    node_->data.insert(node_->data.end(), data.begin(), data.begin() + fits);
    if (fits < data.size()) {
      return absl::ResourceExhaustedError("append: " + std::string(std::strerror(ENOSPC)));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Truncate(uint64_t size) override {
    if (!writable_) return absl::FailedPreconditionError("truncate a file opened for reading");
    std::lock_guard<std::mutex> lock(node_->mu);
    if (size > node_->data.size()) {
      return absl::InvalidArgumentError("truncate: longer than the file");
    }
    node_->space->Give(node_->data.size() - size);
    node_->data.resize(size);
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(node_->mu);
    return node_->data.size();
  }

 private:
  std::shared_ptr<MemNode> node_;
  const bool writable_;
};

class MemFs : public FileSystem {
 public:
  explicit MemFs(uint64_t capacity) : space_(std::make_shared<MemSpace>(capacity)) {
    dirs_.insert("/");
  }

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (mode == OpenMode::kCreate) {
      if (it != files_.end() || dirs_.count(path)) {
        return absl::AlreadyExistsError("create " + path + ": exists");
      }
      if (!dirs_.count(DirName(path))) return absl::NotFoundError("create " + path + ": no dir");
      auto node = std::make_shared<MemNode>(space_);
      files_[path] = node;
      return std::unique_ptr<File>(new MemFile(node, true));
    }
    if (it == files_.end()) return absl::NotFoundError("open " + path + ": no such file");
    return std::unique_ptr<File>(new MemFile(it->second, mode == OpenMode::kReadWrite));
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    std::shared_ptr<MemNode> node;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = files_.find(path);
      if (it == files_.end()) return absl::NotFoundError("stat " + path + ": no such file");
      node = it->second;
    }
    std::lock_guard<std::mutex> lock(node->mu);
    return node->data.size();
  }

  absl::StatusOr<bool> Exists(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.count(path) > 0 || dirs_.count(path) > 0;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(from);
    if (it == files_.end()) return absl::NotFoundError("rename " + from + ": no such file");
    if (!dirs_.count(DirName(to))) return absl::NotFoundError("rename to " + to + ": no dir");
    auto node = it->second;
    files_.erase(it);
    files_[to] = node;
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.erase(path) == 0) return absl::NotFoundError("remove " + path + ": no such file");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirs_.count(dir)) return absl::NotFoundError("list " + dir + ": no such directory");
    std::vector<std::string> out;
    auto add_child = [&](const std::string& path) {
      if (path != dir && DirName(path) == dir) out.push_back(path.substr(path.rfind('/') + 1));
    };
    for (const auto& [path, node] : files_) add_child(path);
    for (const auto& path : dirs_) add_child(path);
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::Status CreateDir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (dirs_.count(dir)) return absl::OkStatus();
    if (files_.count(dir)) return absl::AlreadyExistsError("create directory " + dir + ": a file");
    if (!dirs_.count(DirName(dir))) {
      return absl::NotFoundError("create directory " + dir + ": no parent");
    }
    dirs_.insert(dir);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirs_.count(dir)) return absl::NotFoundError("sync " + dir + ": no such directory");
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> FreeSpace(const std::string& path) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!files_.count(path) && !dirs_.count(path)) {
        return absl::NotFoundError("statvfs " + path + ": no such file or directory");
      }
    }
    return space_->Free();
  }

 private:
  const std::shared_ptr<MemSpace> space_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<MemNode>> files_;
  std::set<std::string> dirs_;
};

}  // namespace

FileSystem* PosixFileSystem() {
  static PosixFs* fs = new PosixFs(/*direct_io=*/true);
  return fs;
}

FileSystem* PosixFileSystemBuffered() {
  static PosixFs* fs = new PosixFs(/*direct_io=*/false);
  return fs;
}

std::unique_ptr<FileSystem> NewMemFileSystem(uint64_t capacity) {
  return std::make_unique<MemFs>(capacity);
}

// ---- Fault injection ----

class FaultInjectionFile : public File {
 public:
  FaultInjectionFile(FaultInjectionFileSystem* fs, std::unique_ptr<File> base, std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    CAIRN_RETURN_IF_ERROR(fs_->Tick(FaultInjectionFileSystem::Op::kRead, "read " + path_));
    return base_->ReadAt(offset, out);
  }
  absl::Status Append(ByteSpan data) override {
    CAIRN_RETURN_IF_ERROR(fs_->Tick(FaultInjectionFileSystem::Op::kAppend, "append " + path_));
    const uint64_t fits = fs_->TakeSpace(data.size());
    if (fits < data.size()) {
      // A full disk: the prefix that fits lands, as a short write(2) before ENOSPC leaves it.
      absl::Status st = base_->Append(data.subspan(0, fits));
      if (!st.ok()) return st;
      return absl::ResourceExhaustedError("append to " + path_ + ": " + std::strerror(ENOSPC) +
                                          " (simulated)");
    }
    return base_->Append(data);
  }
  absl::Status Sync() override {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(fs_->mu_);
      hook = fs_->sync_hook_;
    }
    if (hook) hook();
    CAIRN_RETURN_IF_ERROR(fs_->Tick(FaultInjectionFileSystem::Op::kSync, "sync " + path_));
    CAIRN_RETURN_IF_ERROR(base_->Sync());
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, base_->Size());
    fs_->OnSynced(path_, size);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    CAIRN_RETURN_IF_ERROR(fs_->Tick(FaultInjectionFileSystem::Op::kTruncate, "truncate " + path_));
    CAIRN_ASSIGN_OR_RETURN(uint64_t before, base_->Size());
    CAIRN_RETURN_IF_ERROR(base_->Truncate(size));
    fs_->ReturnSpace(before - std::min(before, size));
    fs_->OnTruncated(path_, size);
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> Size() override { return base_->Size(); }
  void DropCache() override { base_->DropCache(); }

 private:
  FaultInjectionFileSystem* const fs_;
  std::unique_ptr<File> base_;
  const std::string path_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

absl::Status FaultInjectionFileSystem::Tick(Op op, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = ++counts_[op];
  auto it = fail_at_.find(op);
  if (it != fail_at_.end() && it->second == n) {
    fail_at_.erase(it);
    return absl::InternalError("injected I/O error: " + what);
  }
  return absl::OkStatus();
}

void FaultInjectionFileSystem::OnSynced(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[path].synced_size = size;
}

void FaultInjectionFileSystem::OnTruncated(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced_size = std::min(it->second.synced_size, size);
}

absl::StatusOr<std::unique_ptr<File>> FaultInjectionFileSystem::Open(const std::string& path,
                                                                     OpenMode mode) {
  if (mode == OpenMode::kCreate) CAIRN_RETURN_IF_ERROR(Tick(Op::kCreate, "create " + path));
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_->Open(path, mode));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (mode == OpenMode::kCreate) {
      files_[path] = FileState{};
      unsynced_creates_.insert(path);
    } else if (!files_.count(path)) {
      // Not written through this wrapper so far: what is there now is taken as durable.
      auto size = file->Size();
      files_[path].synced_size = size.ok() ? *size : 0;
    }
  }
  return std::unique_ptr<File>(new FaultInjectionFile(this, std::move(file), path));
}

absl::StatusOr<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  return base_->FileSize(path);
}

absl::StatusOr<bool> FaultInjectionFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  CAIRN_RETURN_IF_ERROR(Tick(Op::kRename, "rename " + from));
  CAIRN_RETURN_IF_ERROR(base_->Rename(from, to));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(from);
  }
  if (unsynced_creates_.erase(from)) unsynced_creates_.insert(to);
  unsynced_renames_.push_back({from, to});
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::Remove(const std::string& path) {
  CAIRN_RETURN_IF_ERROR(Tick(Op::kRemove, "remove " + path));
  auto size = base_->FileSize(path);
  CAIRN_RETURN_IF_ERROR(base_->Remove(path));
  // Simplification: the space comes back at once, not when the last open handle closes.
  if (size.ok()) ReturnSpace(*size);
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(path);
  unsynced_creates_.erase(path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  return base_->ListDir(dir);
}

absl::Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  return base_->CreateDir(dir);
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  CAIRN_RETURN_IF_ERROR(Tick(Op::kSyncDir, "sync directory " + dir));
  CAIRN_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = unsynced_creates_.begin(); it != unsynced_creates_.end();) {
    it = DirName(*it) == dir ? unsynced_creates_.erase(it) : std::next(it);
  }
  std::erase_if(unsynced_renames_, [&](const PendingRename& r) { return DirName(r.to) == dir; });
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::SimulateCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  // Unsynced appends go first, by the names the files have now.
  for (auto& [path, state] : files_) {
    auto size = base_->FileSize(path);
    if (!size.ok()) {
      if (size.status().code() == absl::StatusCode::kNotFound) continue;
      return size.status();
    }
    if (*size > state.synced_size) {
      uint64_t keep = state.synced_size;
      if (torn_) {
        // splitmix64 (Steele et al., "Fast splittable pseudorandom number generators", 2014).
        uint64_t z = (torn_state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        keep += z % (*size - state.synced_size + 1);
      }
      CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->Open(path, OpenMode::kReadWrite));
      CAIRN_RETURN_IF_ERROR(f->Truncate(keep));
      state.synced_size = keep;
    }
  }
  // Then unsynced renames, newest first, then unsynced creates.
  for (auto it = unsynced_renames_.rbegin(); it != unsynced_renames_.rend(); ++it) {
    CAIRN_RETURN_IF_ERROR(base_->Rename(it->to, it->from));
    auto state = files_.find(it->to);
    if (state != files_.end()) {
      files_[it->from] = state->second;
      files_.erase(state);
    }
    if (unsynced_creates_.erase(it->to)) unsynced_creates_.insert(it->from);
  }
  unsynced_renames_.clear();
  for (const std::string& path : unsynced_creates_) {
    absl::Status st = base_->Remove(path);
    if (!st.ok() && st.code() != absl::StatusCode::kNotFound) return st;
    files_.erase(path);
  }
  unsynced_creates_.clear();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FaultInjectionFileSystem::FreeSpace(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_space_) {
      CAIRN_ASSIGN_OR_RETURN(bool exists, base_->Exists(path));
      if (!exists) return absl::NotFoundError("statvfs " + path + ": no such file or directory");
      return *free_space_;
    }
  }
  return base_->FreeSpace(path);
}

void FaultInjectionFileSystem::SimulateFreeSpace(std::optional<uint64_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_space_ = bytes;
}

uint64_t FaultInjectionFileSystem::TakeSpace(uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!free_space_) return size;
  const uint64_t n = std::min(size, *free_space_);
  *free_space_ -= n;
  return n;
}

void FaultInjectionFileSystem::ReturnSpace(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_space_) *free_space_ += bytes;
}

void FaultInjectionFileSystem::FailAfter(Op op, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_[op] = counts_[op] + std::max<uint64_t>(n, 1);
}

void FaultInjectionFileSystem::ClearFailures() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_.clear();
}

uint64_t FaultInjectionFileSystem::Count(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[op];
}

void FaultInjectionFileSystem::KeepRandomUnsyncedPrefixes(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  torn_ = true;
  torn_state_ = seed;
}

void FaultInjectionFileSystem::SetSyncHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_hook_ = std::move(hook);
}

uint64_t FaultInjectionFileSystem::TotalCalls() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const auto& [op, n] : counts_) total += n;
  return total;
}

}  // namespace cairn::env
