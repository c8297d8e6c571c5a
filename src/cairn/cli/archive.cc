// `cairn archive create|list|unmount`: archives, file trees that live only on the peers
// (docs/operations.md "Archives: files that live only on the peers"), over /v1/archives.
// `cairn mount --archive NAME MOUNTPOINT` (cli/mount.cc) mounts one.
#include <iostream>
#include <memory>
#include <string>

#include "cairn/api/archives.h"
#include "cairn/api/requests.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/connect.h"
#include "cairn/cli/output.h"
#include "cairn/codec/erasure.h"

namespace cairn::cli {
namespace {

struct ArchiveFlags {
  std::string name;
  uint32_t copies = 0;
  std::string ec;
};

int RunCreate(const GlobalOptions& global, const ArchiveFlags& f) {
  api::ArchiveCreateRequest request;
  request.name = f.name;
  if (f.copies > 0) request.copies = f.copies;
  if (!f.ec.empty()) {
    absl::StatusOr<codec::ErasureScheme> scheme = codec::ParseErasureScheme(f.ec);
    if (!scheme.ok()) return PrintUsageError("--ec: " + std::string(scheme.status().message()));
    request.ec = *scheme;
  }
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> answer = (*api)->Post("/v1/archives", api::ToJson(request));
  if (!answer.ok()) return PrintError(answer.status());
  if (global.json) {
    PrintJson(*answer);
    return kExitOk;
  }
  absl::StatusOr<api::ArchiveInfo> info = api::Decode<api::ArchiveInfo>(*answer);
  if (!info.ok()) return PrintError(info.status());
  std::cout << "archive " << info->name << " created ("
            << (info->ec ? *info->ec + " erasure coded"
                         : std::to_string(info->copies) + (info->copies == 1 ? " copy" : " copies"))
            << "); mount it with `cairn mount --archive " << info->name << " MOUNTPOINT`"
            << std::endl;
  return kExitOk;
}

int RunList(const GlobalOptions& global) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  absl::StatusOr<nlohmann::json> answer = (*api)->Get("/v1/archives");
  if (!answer.ok()) return PrintError(answer.status());
  if (global.json) {
    PrintJson(*answer);
    return kExitOk;
  }
  auto list = api::Decode<std::vector<api::ArchiveInfo>>(*answer);
  if (!list.ok()) return PrintError(list.status());
  if (list->empty()) {
    std::cout << "no archives (cairn archive create NAME makes one)" << std::endl;
    return kExitOk;
  }
  Table table({"NAME", "VERSIONS", "LATEST", "REDUNDANCY", "FILES", "SIZE", "MOUNTED AT"},
              {false, true, false, false, true, true, false});
  for (const api::ArchiveInfo& a : *list) {
    table.AddRow({a.name, std::to_string(a.versions), FormatLocalTime(a.time_ns),
                  a.ec ? *a.ec : std::to_string(a.copies) + (a.copies == 1 ? " copy" : " copies"),
                  std::to_string(a.files), FormatSize(a.bytes), a.mountpoint.value_or("-")});
  }
  table.Print(std::cout);
  return kExitOk;
}

int RunUnmount(const GlobalOptions& global, const ArchiveFlags& f) {
  absl::StatusOr<std::unique_ptr<api::ApiClient>> api = ConnectToPeer(global.dir);
  if (!api.ok()) return PrintError(api.status());
  api::ArchiveMountRequest request;
  request.name = f.name;
  absl::StatusOr<nlohmann::json> answer =
      (*api)->Post("/v1/archives/unmount", api::ToJson(request));
  if (!answer.ok()) return PrintError(answer.status());
  if (global.json) {
    PrintJson(*answer);
  } else {
    std::cout << "archive " << f.name << " unmounted (everything written is committed)"
              << std::endl;
  }
  return kExitOk;
}

}  // namespace

Action RegisterArchive(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<ArchiveFlags>();
  CLI::App* cmd = app.add_subcommand(
      "archive", "Manage archives: file trees that live only on the peers (mount --archive)");
  cmd->require_subcommand(1);
  CLI::App* create = cmd->add_subcommand("create", "Create an empty archive named NAME");
  create->add_option("name", f->name, "1 to 64 of A-Z a-z 0-9 . _ -")->required();
  create->add_option("--copies", f->copies, "Copies of each chunk (default: the peer's config)")
      ->check(CLI::Range(1, 64));
  create->add_option("--ec", f->ec, "Erasure coding K+M instead of copies, e.g. 4+2")
      ->excludes("--copies");
  CLI::App* list = cmd->add_subcommand("list", "List the archives, their versions and mounts");
  CLI::App* unmount = cmd->add_subcommand(
      "unmount", "Commit and unmount archive NAME (as Ctrl-C on its `cairn mount --archive`)");
  unmount->add_option("name", f->name, "The archive's name")->required();
  return [&global, f, create, list, unmount] {
    if (create->parsed()) return RunCreate(global, *f);
    if (list->parsed()) return RunList(global);
    if (unmount->parsed()) return RunUnmount(global, *f);
    return PrintUsageError("archive: create, list or unmount is required");
  };
}

}  // namespace cairn::cli
