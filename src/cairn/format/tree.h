// Trees and snapshots: the metadata of a backup (docs/formats.md "Trees and snapshots").
// Encoded with protobuf (proto/cairn/v1/format.proto) behind a one-byte format version; the
// generated types do not leave format/. Names and paths are raw bytes (Linux file names need
// not be UTF-8) and are carried unchanged.
//
// Thread-safety: value types; stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"
#include "cairn/base/ids.h"

namespace cairn::format {

constexpr uint8_t kTreeVersion = 1;
constexpr uint8_t kSnapshotVersion = 1;

enum class EntryType : uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3 };

// "file", "dir" or "symlink" ("unknown" for any other value): the names `--json` and the
// local API use.
const char* EntryTypeName(EntryType t);

struct TreeEntry {
  std::string name;  // one path component, raw bytes, no '/' and not "." or ".."
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (st_mode & 07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;            // change detection only; not restored
  uint64_t size = 0;               // file bytes
  uint64_t inode = 0;              // change detection only
  uint64_t device = 0;             // change detection only
  std::string symlink_target;      // kSymlink: raw bytes
  std::vector<ChunkId> chunks;     // kFile: content, in order
  std::optional<ChunkId> subtree;  // kDirectory: its Tree
  // Non-zero for files with more than one hard link: entries with equal group in one snapshot
  // are the same inode and are restored as hard links to each other.
  uint64_t hardlink_group = 0;

  bool operator==(const TreeEntry&) const = default;
};

// One directory's entries, sorted by name (byte order), names unique.
struct Tree {
  std::vector<TreeEntry> entries;
  bool operator==(const Tree&) const = default;
};

// Encodes a tree. Entries must be sorted and unique (the encoder does not re-sort).
Bytes EncodeTree(const Tree& tree);
// Decodes and validates (version, names non-empty without '/' or NUL and not "." or "..",
// sorted unique, types known, chunk ids 32 bytes, only files have chunks, only directories
// have (and need) a subtree, only symlinks have a target, mode <= 07777). INVALID_ARGUMENT for
// an empty input or unknown version, DATA_LOSS for anything malformed, with the reason.
absl::StatusOr<Tree> DecodeTree(ByteSpan data);

struct SnapshotStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t bytes = 0;       // logical bytes of all files
  uint64_t new_bytes = 0;   // plaintext bytes of chunks new in this backup
  uint64_t sent_bytes = 0;  // blob bytes uploaded (all copies)
  uint64_t chunks = 0;      // chunk references
  uint64_t new_chunks = 0;
  bool operator==(const SnapshotStats&) const = default;
};

struct Snapshot {
  int64_t time_ns = 0;  // when the backup started (Unix epoch)
  PeerId owner = 0;
  std::string hostname;
  std::vector<std::string> paths;  // absolute source paths, raw bytes
  std::vector<std::string> tags;
  ChunkId root;  // root Tree: one entry per source path, named by its last component
  std::optional<ChunkId> parent;
  uint32_t copies = 0;  // requested replication degree (when ec_k == 0)
  uint32_t ec_k = 0;    // requested erasure coding ec_k+ec_m; 0 = copies
  uint32_t ec_m = 0;
  SnapshotStats stats;
  // Non-empty for a version of an archive (engine/archive.h): the archive's name
  // ([A-Za-z0-9._-], 1..64 characters). Such a snapshot has no source paths; its root tree is
  // the archive's top directory.
  std::string archive;
  bool operator==(const Snapshot&) const = default;
};

// True for a valid archive name: 1..64 of [A-Za-z0-9._-], not "." or "..".
bool IsArchiveName(std::string_view name);

// An archive path "NAME:/path/inside" (NAME as IsArchiveName, the rest absolute): the archive's
// name and the path inside it. nullopt for anything else, e.g. an absolute path. `cairn
// versions` and `cairn restore --at` take either form (engine/versions.h).
std::optional<std::pair<std::string, std::string>> ParseArchivePath(const std::string& text);

// Encodes a snapshot. `hostname` and `tags` are text: bytes that are not UTF-8 are replaced by
// U+FFFD (the wire type is a protobuf string). `paths` are carried as raw bytes.
Bytes EncodeSnapshot(const Snapshot& snapshot);
// Decodes and validates (version; root and parent 32 bytes, parent absent when empty; paths
// absolute without NUL; ec_k 0..16 and ec_m 0..8, both zero or both non-zero). INVALID_ARGUMENT for
// an empty input or unknown version, DATA_LOSS for anything malformed.
absl::StatusOr<Snapshot> DecodeSnapshot(ByteSpan data);

}  // namespace cairn::format
