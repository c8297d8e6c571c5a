// Watcher: reports changes under one directory tree (or to one file) with Linux inotify(7), on
// a thread of its own, for continuous backup (daemon/sources.h, `cairn watch`).
//
// Recursive: every directory of the tree gets a watch (inotify watches one directory, not its
// subtree). A directory that appears (created, or moved in) is watched and then listed, so that
// what was created inside it before its watch existed is reported too (and its subdirectories
// watched): `mkdir -p a/b/c && touch a/b/c/f` is never missed. A directory that is moved out or
// deleted loses its watches (IN_IGNORED). Names matching an exclude glob (fnmatch(3) against the
// base name and the full path, as the backup engine does) are neither watched nor reported.
//
// An event-queue overflow (IN_Q_OVERFLOW: the kernel dropped events) is reported through
// `on_overflow`; the watcher then re-walks the tree to watch any directory it may have missed.
// When the root itself disappears it is reported as a change, and the watcher looks for it
// again every `retry_interval` (as it does when the root is missing at Start()).
// Running out of watches (fs.inotify.max_user_watches) is reported once through `on_error`;
// the rest of the tree is still watched (the periodic rescan covers what is not).
//
// What is reported: creations, writes (IN_MODIFY, IN_CLOSE_WRITE), attribute changes, renames
// (both names) and deletions, as the absolute path of the entry that changed. Reads are not
// events, so a backup reading the tree does not trigger itself.
//
// Thread-safety: Start/Stop/the accessors may be called from any thread; the callbacks run on
// the watcher's thread, one at a time, and must not call Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::daemon {

struct WatcherOptions {
  std::string root;                   // absolute path of a directory or a file
  std::vector<std::string> excludes;  // fnmatch(3) globs
  std::function<void(const std::string& path)> on_change;
  std::function<void()> on_overflow;
  std::function<void(const std::string& message)> on_error;  // optional: problems to log
  std::chrono::milliseconds retry_interval{1000};            // look for a missing root this often
};

class Watcher {
 public:
  // Creates the inotify instance, watches the tree (a missing root is looked for again every
  // retry_interval) and starts the thread. INVALID_ARGUMENT for a relative root or missing
  // callbacks; an errno status when inotify or the wake-up eventfd cannot be created (e.g.
  // fs.inotify.max_user_instances reached).
  static absl::StatusOr<std::unique_ptr<Watcher>> Start(WatcherOptions options);
  ~Watcher();  // Stop()

  // Wakes the thread, waits for it and closes the descriptors. Idempotent.
  void Stop();

  // Directories (or the root file) being watched right now.
  size_t watch_count() const;
  // Whether the root is watched (false while it is missing).
  bool watching_root() const;

  // Delivers `on_overflow` and re-walks the tree on the watcher thread as an IN_Q_OVERFLOW
  // would (tests: a real overflow needs more events than fs.inotify.max_queued_events).
  void SimulateOverflowForTesting();

 private:
  explicit Watcher(WatcherOptions options);
  void Run();
  void HandleBuffer(const char* data, size_t size);
  // Watches `dir` and, recursively, the directories below it; with `report`, reports every
  // entry found (they appeared with a new directory).
  void AddTree(const std::string& dir, bool report);
  bool AddWatch(const std::string& path, bool is_root);  // false when it cannot be watched
  void RemoveTree(const std::string& dir);               // drops the watches of `dir` and below it
  void TryRoot();                                        // (re)watches a missing root
  void Overflowed();
  bool Excluded(const std::string& path) const;
  void Report(const std::string& path);
  void Error(const std::string& message);

  WatcherOptions options_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() and SimulateOverflowForTesting() wake poll()
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> simulate_overflow_{false};
  bool root_is_dir_ = true;
  bool warned_no_space_ = false;

  mutable std::mutex mu_;               // guards the maps (read by the accessors)
  std::map<int, std::string> paths_;    // watch descriptor -> path
  std::map<std::string, int> watches_;  // path -> watch descriptor
  int root_wd_ = -1;
};

}  // namespace cairn::daemon
