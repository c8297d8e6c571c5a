// Daemon side of `cairn mount` (cli/mount.cc): GET /v1/read serves byte ranges of files in
// snapshots through one engine::FileReader (its chunk cache is shared by every reader, 64 MiB).
// Directory listings are GET /v1/ls (daemon.cc).
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"
#include "cairn/daemon/daemon.h"
#include "cairn/engine/restore.h"

namespace cairn::daemon {

absl::StatusOr<std::string> Daemon::ReadFile(const api::ReadRequest& request) {
  CAIRN_RETURN_IF_ERROR(IndexReady("read a file"));
  std::call_once(file_reader_once_,
                 [this] { file_reader_ = std::make_unique<engine::FileReader>(ctx_); });
  CAIRN_ASSIGN_OR_RETURN(index::SnapshotRecord record,
                         engine::ResolveSnapshot(catalog_.get(), request.snapshot));
  CAIRN_ASSIGN_OR_RETURN(Bytes data, file_reader_->Read(record.snapshot, request.path,
                                                        request.offset, request.length));
  return std::string(data.begin(), data.end());
}

}  // namespace cairn::daemon
