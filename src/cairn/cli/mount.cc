// `cairn mount MOUNTPOINT`: a read-only FUSE view of this peer's snapshots (cli/fuse_fs.h),
// served in the foreground until SIGINT/SIGTERM or `fusermount3 -u MOUNTPOINT`. The process is
// a client of the local peer's API: listings with GET /v1/snapshots and GET /v1/ls, file bytes
// with GET /v1/read (the daemon fetches and decrypts the chunks through its chunk cache).
//
// `cairn mount --archive NAME MOUNTPOINT`: a writable archive (docs/operations.md "Archives:
// files that live only on the peers"). The peer serves that file system itself
// (daemon/archive_mount.h: POST /v1/archives/mount); this command waits in the foreground and
// asks the peer to commit and unmount on SIGINT/SIGTERM/SIGHUP, or returns when the archive was
// unmounted otherwise (`fusermount3 -u`, `cairn archive unmount`).
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cairn/api/archives.h"
#include "cairn/api/json_paths.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/base/status.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/fuse_fs.h"
#include "cairn/cli/output.h"
#include "cairn/daemon/config.h"
#include "cairn/daemon/peer_dir.h"

namespace cairn::cli {
namespace {

// SnapshotSource over the local API. FUSE calls come from several threads; each request takes
// an API client (a kept-alive connection) from a small pool.
class ApiSource : public SnapshotSource {
 public:
  static absl::StatusOr<std::unique_ptr<ApiSource>> Open(const std::string& dir) {
    std::unique_ptr<ApiSource> s(new ApiSource());
    s->dir_ = dir;
    // One client now: a wrong directory is reported before anything is mounted.
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<api::ApiClient> first, s->NewClient());
    s->Give(std::move(first));
    return s;
  }

  absl::StatusOr<std::vector<Snapshot>> Snapshots() override {
    CAIRN_ASSIGN_OR_RETURN(nlohmann::json list, GetJson("/v1/snapshots"));
    absl::StatusOr<std::vector<api::SnapshotInfo>> infos =
        api::Decode<std::vector<api::SnapshotInfo>>(list);
    if (!infos.ok()) return Annotate(infos.status(), "GET /v1/snapshots");
    std::vector<Snapshot> out;
    for (const api::SnapshotInfo& s : *infos) out.push_back(Snapshot{s.id, s.time_ns});
    return out;
  }

  absl::StatusOr<std::vector<Entry>> List(const std::string& id, const std::string& path) override {
    std::string target =
        absl::StrCat("/v1/ls?snapshot=", api::UrlEncode(id),
                     "&path_base64=", api::UrlEncode(api::ToBase64(path)), "&recursive=0");
    CAIRN_ASSIGN_OR_RETURN(nlohmann::json answer, GetJson(target));
    CAIRN_ASSIGN_OR_RETURN(std::vector<api::LsEntry> list,
                           api::Decode<std::vector<api::LsEntry>>(answer));
    std::vector<Entry> out;
    for (const api::LsEntry& e : list) {
      const std::string& full = e.path;
      Entry entry;
      size_t slash = full.rfind('/');
      entry.name = slash == std::string::npos ? full : full.substr(slash + 1);
      if (entry.name.empty()) continue;
      FsNode& n = entry.node;
      if (e.type == "dir") {
        n.type = FsNode::Type::kDirectory;
      } else if (e.type == "symlink") {
        n.type = FsNode::Type::kSymlink;
        if (!e.target) return absl::InternalError("GET /v1/ls: a symlink without its target");
        n.target = *e.target;
      } else {
        n.type = FsNode::Type::kFile;
      }
      n.mode = e.mode & 07777;
      n.uid = e.uid;
      n.gid = e.gid;
      n.size = n.type == FsNode::Type::kSymlink ? n.target.size() : e.size;
      n.mtime_ns = e.mtime_ns;
      out.push_back(std::move(entry));
    }
    return out;
  }

  absl::StatusOr<std::string> Read(const std::string& id, const std::string& path, uint64_t offset,
                                   uint64_t length) override {
    std::string target = absl::StrCat("/v1/read?snapshot=", api::UrlEncode(id),
                                      "&path_base64=", api::UrlEncode(api::ToBase64(path)),
                                      "&offset=", offset, "&length=", length);
    return GetRaw(target);
  }

 private:
  ApiSource() = default;

  absl::StatusOr<std::unique_ptr<api::ApiClient>> NewClient() {
    CAIRN_ASSIGN_OR_RETURN(daemon::Config config, daemon::LoadConfig(dir_));
    CAIRN_ASSIGN_OR_RETURN(std::string token, daemon::LoadApiToken(dir_));
    api::ApiClient::Options options;
    options.read_timeout = std::chrono::seconds(300);  // a read may fetch chunks from peers
    options.unreachable_hint = absl::StrCat(": is `cairn peer --dir ", dir_, "` running?");
    return api::ApiClient::Connect(config.api, token, std::move(options));
  }

  absl::StatusOr<std::unique_ptr<api::ApiClient>> Take() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return NewClient();
  }

  void Give(std::unique_ptr<api::ApiClient> c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < 16) idle_.push_back(std::move(c));
  }

  // The body of a 2xx answer; otherwise the API's error.
  absl::StatusOr<std::string> GetRaw(const std::string& target) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<api::ApiClient> c, Take());
    absl::StatusOr<std::string> body = c->GetBytes(target);
    if (!absl::IsUnavailable(body.status())) Give(std::move(c));
    return body;
  }

  absl::StatusOr<nlohmann::json> GetJson(const std::string& target) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<api::ApiClient> c, Take());
    absl::StatusOr<nlohmann::json> j = c->Get(target);
    if (!absl::IsUnavailable(j.status())) Give(std::move(c));
    return j;
  }

  std::string dir_;
  std::mutex mu_;
  std::vector<std::unique_ptr<api::ApiClient>> idle_;
};

struct MountFlags {
  std::string mountpoint;
  bool allow_other = false;
  bool debug = false;
  std::string archive;
  std::string spool;
};

volatile sig_atomic_t g_stop_signal = 0;
void OnStopSignal(int sig) { g_stop_signal = sig; }

// True while GET /v1/archives shows `name` mounted; errors: the API's.
absl::StatusOr<bool> ArchiveMounted(api::ApiClient& client, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(auto list, client.GetAs<std::vector<api::ArchiveInfo>>("/v1/archives"));
  for (const api::ArchiveInfo& a : list) {
    if (a.name == name) return a.mountpoint.has_value();
  }
  return false;
}

int RunArchiveMount(const GlobalOptions& global, const MountFlags& f) {
  api::ArchiveMountRequest request;
  request.name = f.archive;
  request.mountpoint = AbsolutePath(f.mountpoint);
  request.allow_other = f.allow_other;
  if (!f.spool.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseSize(f.spool);
    if (!bytes.ok()) return PrintUsageError("--spool: " + std::string(bytes.status().message()));
    request.spool_bytes = *bytes;
  }
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  absl::StatusOr<nlohmann::json> mounted = (*api)->Post("/v1/archives/mount", api::ToJson(request));
  if (!mounted.ok()) return PrintError(mounted.status());
  std::cerr << "cairn: archive " << f.archive << " mounted read-write at " << request.mountpoint
            << " (Ctrl-C or `cairn archive unmount " << f.archive << "` commits and unmounts)"
            << std::endl;
  int ticks = 0;
  while (true) {
    if (g_stop_signal != 0) {
      g_stop_signal = 0;
      api::ArchiveMountRequest unmount;
      unmount.name = f.archive;
      absl::StatusOr<nlohmann::json> done =
          (*api)->Post("/v1/archives/unmount", api::ToJson(unmount));
      if (done.ok()) {
        std::cerr << "cairn: archive " << f.archive << " committed and unmounted" << std::endl;
        return kExitOk;
      }
      if (absl::IsNotFound(done.status())) break;
      PrintError(done.status());  // busy: keep serving; another Ctrl-C tries again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (++ticks % 10 == 0) {  // unmounted another way?
      absl::StatusOr<bool> still = ArchiveMounted(**api, f.archive);
      if (!still.ok() && absl::IsUnavailable(still.status())) {
        return PrintError(still.status());  // the peer stopped: its mounts went with it
      }
      if (still.ok() && !*still) break;
    }
  }
  std::cerr << "cairn: archive " << f.archive << " was unmounted" << std::endl;
  return kExitOk;
}

int RunMount(const GlobalOptions& global, const MountFlags& f) {
  if (!f.archive.empty()) return RunArchiveMount(global, f);
  absl::StatusOr<std::unique_ptr<ApiSource>> source = ApiSource::Open(global.dir);
  if (!source.ok()) return PrintError(source.status());
  // Fail early (and clearly) when the peer is not running.
  absl::StatusOr<std::vector<SnapshotSource::Snapshot>> snapshots = (*source)->Snapshots();
  if (!snapshots.ok()) return PrintError(snapshots.status());

  std::string mountpoint = AbsolutePath(f.mountpoint);
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    return PrintError(ErrnoStatus(errno, "mount point " + mountpoint));
  }
  if (!S_ISDIR(st.st_mode)) {
    return PrintError(
        absl::InvalidArgumentError("mount point " + mountpoint + " is not a directory"));
  }

  SnapshotFs::Options options;
  options.uid = ::getuid();
  options.gid = ::getgid();
  SnapshotFs fs(source->get(), options);
  FuseOptions fuse_options;
  fuse_options.allow_other = f.allow_other;
  fuse_options.debug = f.debug;
  absl::Status served = ServeFuse(&fs, mountpoint, fuse_options, [&] {
    std::cerr << "cairn: " << snapshots->size()
              << (snapshots->size() == 1 ? " snapshot" : " snapshots") << " mounted read-only at "
              << mountpoint << " (Ctrl-C or `fusermount3 -u " << mountpoint << "` unmounts)"
              << std::endl;
  });
  if (!served.ok()) return PrintError(served);
  std::cerr << "cairn: unmounted " << mountpoint << std::endl;
  return kExitOk;
}

}  // namespace

Action RegisterMount(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<MountFlags>();
  CLI::App* cmd = app.add_subcommand(
      "mount",
      "Browse the snapshots as a read-only file system (FUSE), or an archive read-write, until "
      "Ctrl-C");
  cmd->add_option("mountpoint", flags->mountpoint, "An existing empty directory")->required();
  cmd->add_flag("--allow-other", flags->allow_other,
                "Let other users read it (needs user_allow_other in /etc/fuse.conf)");
  cmd->add_flag("--fuse-debug", flags->debug, "Print libfuse's debug output")->group("");
  cmd->add_option("--archive", flags->archive,
                  "Mount this archive read-write instead (cairn archive create NAME makes one)");
  cmd->add_option("--spool", flags->spool,
                  "With --archive: written data kept locally before it is stored, e.g. 1G "
                  "(default 1G)")
      ->needs("--archive");
  return [&global, flags] { return RunMount(global, *flags); };
}

}  // namespace cairn::cli
