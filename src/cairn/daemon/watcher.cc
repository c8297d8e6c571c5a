#include "cairn/daemon/watcher.h"

#include <dirent.h>
#include <fnmatch.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::daemon {
namespace {

constexpr uint32_t kEvents = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |
                             IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                             IN_DONT_FOLLOW | IN_EXCL_UNLINK;

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Under(const std::string& path, const std::string& dir) {
  if (path == dir) return true;
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

Watcher::Watcher(WatcherOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Watcher>> Watcher::Start(WatcherOptions options) {
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("watch: '", options.root, "' is not an absolute path"));
  }
  if (!options.on_change || !options.on_overflow) {
    return absl::InvalidArgumentError("watch: on_change and on_overflow are required");
  }
  while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
  if (options.retry_interval.count() <= 0) options.retry_interval = std::chrono::seconds(1);
  std::unique_ptr<Watcher> w(new Watcher(std::move(options)));
  w->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->inotify_fd_ < 0) {
    return ErrnoStatus(errno,
                       "inotify_init1 (too many inotify instances? see "
                       "fs.inotify.max_user_instances)");
  }
  w->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->wake_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  w->TryRoot();
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

Watcher::~Watcher() { Stop(); }

void Watcher::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

size_t Watcher::watch_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return paths_.size();
}

bool Watcher::watching_root() const {
  std::lock_guard<std::mutex> lock(mu_);
  return root_wd_ >= 0;
}

void Watcher::SimulateOverflowForTesting() {
  simulate_overflow_ = true;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

bool Watcher::Excluded(const std::string& path) const {
  const std::string name = BaseName(path);
  for (const std::string& g : options_.excludes) {
    if (::fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
    if (::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

void Watcher::Report(const std::string& path) { options_.on_change(path); }

void Watcher::Error(const std::string& message) {
  if (options_.on_error) options_.on_error(message);
}

bool Watcher::AddWatch(const std::string& path, bool is_root) {
  uint32_t mask = kEvents | (is_root && !root_is_dir_ ? 0 : IN_ONLYDIR);
  int wd = ::inotify_add_watch(inotify_fd_, path.c_str(), mask);
  if (wd < 0) {
    int e = errno;
    if (e == ENOSPC) {
      if (!warned_no_space_) {
        warned_no_space_ = true;
        Error(absl::StrCat("cannot watch ", path,
                           ": no inotify watches left (raise fs.inotify.max_user_watches); "
                           "changes below it are found by the periodic rescan"));
      }
    } else if (e != ENOENT && e != ENOTDIR) {  // gone or replaced meanwhile: not a problem
      Error(absl::StrCat("cannot watch ", path, ": ", std::strerror(e)));
    }
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  // The same inode watched again (a directory that moved) keeps its descriptor: re-point it.
  auto old = paths_.find(wd);
  if (old != paths_.end() && old->second != path) {
    auto it = watches_.find(old->second);
    if (it != watches_.end() && it->second == wd) watches_.erase(it);
  }
  paths_[wd] = path;
  watches_[path] = wd;
  if (is_root) root_wd_ = wd;
  return true;
}

void Watcher::AddTree(const std::string& dir, bool report) {
  std::vector<std::string> stack{dir};
  while (!stack.empty()) {
    std::string path = std::move(stack.back());
    stack.pop_back();
    if (!AddWatch(path, path == options_.root)) continue;
    // Listed after the watch exists: whatever is created meanwhile is an event, whatever came
    // before is in the listing.
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) continue;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = Join(path, name);
      if (Excluded(child)) continue;
      if (report) Report(child);
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      if (is_dir) stack.push_back(std::move(child));
    }
    ::closedir(d);
  }
}

void Watcher::RemoveTree(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = watches_.lower_bound(dir); it != watches_.end();) {
    if (!Under(it->first, dir)) {
      // Paths below `dir` sort after "dir/" ... but "dir-x" sorts between: keep scanning
      // while the prefix matches.
      if (it->first.compare(0, dir.size(), dir) != 0) break;
      ++it;
      continue;
    }
    ::inotify_rm_watch(inotify_fd_, it->second);
    paths_.erase(it->second);
    if (it->second == root_wd_) root_wd_ = -1;
    it = watches_.erase(it);
  }
}

void Watcher::TryRoot() {
  struct stat st;
  if (::lstat(options_.root.c_str(), &st) != 0) return;
  root_is_dir_ = S_ISDIR(st.st_mode);
  if (root_is_dir_) {
    AddTree(options_.root, /*report=*/false);
  } else {
    AddWatch(options_.root, /*is_root=*/true);
  }
}

void Watcher::Overflowed() {
  options_.on_overflow();
  // Directories created while events were being dropped may have no watch yet.
  if (watching_root() && root_is_dir_) {
    AddTree(options_.root, /*report=*/false);
  } else if (!watching_root()) {
    TryRoot();
  }
}

void Watcher::Run() {
  alignas(struct inotify_event) char buf[64 * 1024];
  auto next_retry = std::chrono::steady_clock::now() + options_.retry_interval;
  while (!stop_) {
    int timeout = -1;
    if (!watching_root()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next_retry - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      Error(absl::StrCat("poll: ", std::strerror(errno)));
      break;
    }
    if (stop_) break;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof v);
      if (simulate_overflow_.exchange(false)) Overflowed();
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      while (true) {
        ssize_t got = ::read(inotify_fd_, buf, sizeof buf);
        if (got <= 0) break;  // EAGAIN: drained
        HandleBuffer(buf, static_cast<size_t>(got));
      }
    }
    if (!watching_root() && std::chrono::steady_clock::now() >= next_retry) {
      TryRoot();
      if (watching_root()) Report(options_.root);  // it is back: back it up
      next_retry = std::chrono::steady_clock::now() + options_.retry_interval;
    }
  }
}

void Watcher::HandleBuffer(const char* data, size_t size) {
  size_t off = 0;
  while (off + sizeof(struct inotify_event) <= size) {
    const auto* ev = reinterpret_cast<const struct inotify_event*>(data + off);
    off += sizeof(struct inotify_event) + ev->len;
    if (ev->mask & IN_Q_OVERFLOW) {
      Overflowed();
      continue;
    }
    std::string dir;
    bool is_root;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = paths_.find(ev->wd);
      if (it == paths_.end()) continue;  // a watch already dropped
      dir = it->second;
      is_root = ev->wd == root_wd_;
      if (ev->mask & IN_IGNORED) {
        auto w = watches_.find(dir);
        if (w != watches_.end() && w->second == ev->wd) watches_.erase(w);
        paths_.erase(it);
        if (is_root) root_wd_ = -1;
      }
    }
    if (ev->mask & IN_IGNORED) {
      if (is_root) Report(options_.root);  // the root was deleted
      continue;
    }
    std::string name = ev->len > 0 ? std::string(ev->name, strnlen(ev->name, ev->len)) : "";
    if (name.empty()) {
      // An event on the watched object itself.
      if (is_root && (ev->mask & IN_MOVE_SELF)) {
        // The root moved away: its watches would report under the wrong paths.
        RemoveTree(options_.root);
        Report(options_.root);
      } else if (is_root || !root_is_dir_) {
        Report(dir);
      }
      // A subdirectory's own delete/move is reported by its parent.
      continue;
    }
    std::string path = Join(dir, name);
    if (Excluded(path)) continue;
    if (ev->mask & IN_ISDIR) {
      if (ev->mask & (IN_CREATE | IN_MOVED_TO)) AddTree(path, /*report=*/true);
      if (ev->mask & IN_MOVED_FROM) RemoveTree(path);
    }
    Report(path);
  }
}

}  // namespace cairn::daemon
