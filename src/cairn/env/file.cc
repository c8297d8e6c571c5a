#include "cairn/env/file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "cairn/base/status.h"

namespace cairn::env {
namespace {

absl::Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path);
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, "fsync directory " + dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, ByteSpan data, uint32_t mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  uint8_t rnd[8];
  RandomFill(rnd, sizeof rnd);
  std::string tmp = dir + "/." + p.filename().string() + ".tmp-" + ToHex(rnd);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "create " + tmp);
  absl::Status st = WriteAll(fd, data, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus(errno, "fsync " + tmp);
  if (::close(fd) != 0 && st.ok()) st = ErrnoStatus(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = ErrnoStatus(errno, "rename to " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(dir);
}

absl::StatusOr<Bytes> ReadFile(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "stat " + path);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return absl::ResourceExhaustedError(path + ": file larger than " + std::to_string(max_bytes) +
                                        " bytes");
  }
  Bytes out(static_cast<size_t>(st.st_size));
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::read(fd, out.data() + off, out.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  out.resize(off);
  ::close(fd);
  return out;
}

absl::StatusOr<std::string> ReadFileString(const std::string& path, uint64_t max_bytes) {
  auto b = ReadFile(path, max_bytes);
  if (!b.ok()) return b.status();
  return std::string(b->begin(), b->end());
}

absl::Status MakeDirs(const std::string& dir, uint32_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "create directory " + dir);
  (void)mode;
  ::chmod(dir.c_str(), mode);
  return absl::OkStatus();
}

void RandomFill(uint8_t* out, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::getrandom(out + off, n - off, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::abort();  // cannot happen on Linux >= 3.17 with a valid buffer
    }
    off += static_cast<size_t>(r);
  }
}

}  // namespace cairn::env
