#include "cairn/daemon/index_open.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::daemon {
namespace {

// -1 when the file does not exist.
absl::StatusOr<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return static_cast<int64_t>(st.st_size);
  if (errno == ENOENT) return -1;
  return ErrnoStatus(errno, "stat " + path);
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", from, " to ", to));
  }
  return absl::OkStatus();
}

// Moves index.db (and its -wal) to index.db.damaged-TIMESTAMP[-N]; returns the new path.
absl::StatusOr<std::string> MoveAside(const std::string& path) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string aside = absl::StrCat(path, ".damaged-", stamp);
  for (int n = 2;; ++n) {
    CAIRN_ASSIGN_OR_RETURN(int64_t size, FileSize(aside));
    if (size < 0) break;
    aside = absl::StrCat(path, ".damaged-", stamp, "-", n);
  }
  CAIRN_RETURN_IF_ERROR(Rename(path, aside));
  CAIRN_ASSIGN_OR_RETURN(int64_t wal, FileSize(path + "-wal"));
  if (wal >= 0) CAIRN_RETURN_IF_ERROR(Rename(path + "-wal", aside + "-wal"));
  (void)::unlink((path + "-shm").c_str());
  return aside;
}

}  // namespace

absl::StatusOr<std::unique_ptr<index::Database>> OpenIndex(const std::string& dir,
                                                           IndexOpenReport* report) {
  *report = IndexOpenReport{};
  const std::string path = IndexPath(dir);
  CAIRN_ASSIGN_OR_RETURN(int64_t size, FileSize(path));
  if (size < 0) {
    report->problem = "index.db is missing";
  } else if (size == 0) {
    report->problem = "index.db is empty (0 bytes)";
    CAIRN_ASSIGN_OR_RETURN(report->kept_aside, MoveAside(path));
  } else {
    absl::StatusOr<std::unique_ptr<index::Database>> db = index::Database::Open(path);
    absl::Status damage;
    if (!db.ok()) {
      if (!absl::IsDataLoss(db.status())) return db.status();
      damage = db.status();
    } else {
      damage = (*db)->QuickCheck();
      if (damage.ok() && (*db)->OpenedSchemaVersion() == 0) {
        // A file SQLite reads as a new database (e.g. only a header): nothing was in it.
        report->problem = absl::StrCat("index.db holds no schema (", size, " bytes)");
      } else if (damage.ok()) {
        return db;
      } else if (!absl::IsDataLoss(damage)) {
        return damage;
      }
    }
    if (!damage.ok()) report->problem = absl::StrCat("index.db is damaged: ", damage.message());
    if (db.ok()) db->reset();  // close it before moving it
    CAIRN_ASSIGN_OR_RETURN(report->kept_aside, MoveAside(path));
  }
  // A new, empty index; the caller rebuilds what it can.
  return index::Database::Open(path);
}

}  // namespace cairn::daemon
