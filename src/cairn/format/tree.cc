#include "cairn/format/tree.h"

#include <climits>
#include <exception>
#include <string>
#include <string_view>

#include "cairn/base/status.h"
#include "cairn/v1/format.pb.h"
#include "google/protobuf/stubs/logging.h"

namespace cairn::format {
namespace {

constexpr uint32_t kModeMask = 07777;

absl::Status Corrupt(const char* what, const std::string& why) {
  return absl::DataLossError(std::string("corrupt ") + what + ": " + why);
}

std::string IdString(const ChunkId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

// The proto declares hostname and tags as `string`, which protobuf requires to be UTF-8 (a
// message holding invalid UTF-8 there would not parse back). Text that is not UTF-8 is made
// so by replacing each invalid byte with U+FFFD, so an encoded snapshot always decodes.
std::string ToValidUtf8(const std::string& s) {
  if (IsValidUtf8(s)) return s;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80                   ? 1
                 : (c >= 0xC2 && c <= 0xDF) ? 2
                 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4
                                            : 0;
    if (len > 0 && i + len <= s.size() && IsValidUtf8(std::string_view(s).substr(i, len))) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// Parses `data` = version byte + serialized message into `msg`. Never throws.
template <typename Message>
absl::Status ParseVersioned(ByteSpan data, uint8_t version, const char* what, Message& msg) {
  if (data.empty()) return absl::InvalidArgumentError(std::string("empty ") + what);
  if (data[0] != version) {
    return absl::InvalidArgumentError(std::string("unsupported ") + what + " version " +
                                      std::to_string(data[0]));
  }
  if (data.size() - 1 > static_cast<size_t>(INT_MAX)) return Corrupt(what, "too large");
  bool ok = false;
  try {
    // Malformed input is reported through the returned status; protobuf's own log line for
    // it (e.g. invalid UTF-8 in a string field) would only be noise.
    google::protobuf::LogSilencer silence;
    ok = msg.ParseFromArray(data.data() + 1, static_cast<int>(data.size() - 1));
  } catch (const std::exception& e) {
    return Corrupt(what, e.what());
  }
  if (!ok) return Corrupt(what, "malformed protobuf");
  return absl::OkStatus();
}

template <typename Message>
Bytes SerializeVersioned(uint8_t version, const Message& msg) {
  std::string body = msg.SerializeAsString();
  Bytes out;
  out.reserve(body.size() + 1);
  out.push_back(version);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

absl::Status ValidateName(const std::string& name) {
  if (name.empty()) return Corrupt("tree", "empty entry name");
  if (name == "." || name == "..") return Corrupt("tree", "entry named \"" + name + "\"");
  if (name.find('/') != std::string::npos) return Corrupt("tree", "entry name contains '/'");
  if (name.find('\0') != std::string::npos) return Corrupt("tree", "entry name contains NUL");
  return absl::OkStatus();
}

absl::StatusOr<ChunkId> IdFromProto(const std::string& bytes, const char* what) {
  auto id = ChunkId::FromBytes(AsBytes(bytes));
  if (!id.ok()) return Corrupt(what, "chunk id is not 32 bytes");
  return *id;
}

absl::StatusOr<TreeEntry> EntryFromProto(const v1::TreeEntryProto& p) {
  TreeEntry e;
  e.name = p.name();
  CAIRN_RETURN_IF_ERROR(ValidateName(e.name));
  // Entry names may be arbitrary bytes; quote them only as hex in errors.
  const std::string where = "entry " + ToHex(AsBytes(e.name));
  if (p.type() < 1 || p.type() > 3) {
    return Corrupt("tree", where + " has unknown type " + std::to_string(p.type()));
  }
  e.type = static_cast<EntryType>(p.type());
  if (p.mode() & ~kModeMask) return Corrupt("tree", where + " has mode beyond 07777");
  e.mode = p.mode();
  e.uid = p.uid();
  e.gid = p.gid();
  e.mtime_ns = p.mtime_ns();
  e.ctime_ns = p.ctime_ns();
  e.size = p.size();
  e.inode = p.inode();
  e.device = p.device();
  e.hardlink_group = p.hardlink_group();
  e.symlink_target = p.symlink_target();
  if (e.type != EntryType::kSymlink && !e.symlink_target.empty()) {
    return Corrupt("tree", where + " is not a symlink but has a target");
  }
  if (e.type != EntryType::kFile && p.chunks_size() > 0) {
    return Corrupt("tree", where + " is not a file but has chunks");
  }
  e.chunks.reserve(p.chunks_size());
  for (const std::string& c : p.chunks()) {
    CAIRN_ASSIGN_OR_RETURN(ChunkId id, IdFromProto(c, "tree"));
    e.chunks.push_back(id);
  }
  if (e.type == EntryType::kDirectory) {
    if (p.subtree().empty()) return Corrupt("tree", where + " is a directory without subtree");
    CAIRN_ASSIGN_OR_RETURN(ChunkId id, IdFromProto(p.subtree(), "tree"));
    e.subtree = id;
  } else if (!p.subtree().empty()) {
    return Corrupt("tree", where + " is not a directory but has a subtree");
  }
  return e;
}

}  // namespace

const char* EntryTypeName(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDirectory:
      return "dir";
    case EntryType::kSymlink:
      return "symlink";
  }
  return "unknown";
}

Bytes EncodeTree(const Tree& tree) {
  v1::TreeProto msg;
  msg.mutable_entries()->Reserve(static_cast<int>(tree.entries.size()));
  for (const TreeEntry& e : tree.entries) {
    v1::TreeEntryProto* p = msg.add_entries();
    p->set_name(e.name);
    p->set_type(static_cast<uint32_t>(e.type));
    p->set_mode(e.mode);
    p->set_uid(e.uid);
    p->set_gid(e.gid);
    p->set_mtime_ns(e.mtime_ns);
    p->set_ctime_ns(e.ctime_ns);
    p->set_size(e.size);
    p->set_inode(e.inode);
    p->set_device(e.device);
    p->set_symlink_target(e.symlink_target);
    for (const ChunkId& c : e.chunks) p->add_chunks(IdString(c));
    if (e.subtree) p->set_subtree(IdString(*e.subtree));
    p->set_hardlink_group(e.hardlink_group);
  }
  return SerializeVersioned(kTreeVersion, msg);
}

absl::StatusOr<Tree> DecodeTree(ByteSpan data) {
  v1::TreeProto msg;
  CAIRN_RETURN_IF_ERROR(ParseVersioned(data, kTreeVersion, "tree", msg));
  Tree tree;
  tree.entries.reserve(msg.entries_size());
  for (const v1::TreeEntryProto& p : msg.entries()) {
    CAIRN_ASSIGN_OR_RETURN(TreeEntry e, EntryFromProto(p));
    // std::string compares as unsigned char (char_traits<char>), i.e. byte order.
    if (!tree.entries.empty() && !(tree.entries.back().name < e.name)) {
      return Corrupt("tree", "entries not sorted or not unique at " + ToHex(AsBytes(e.name)));
    }
    tree.entries.push_back(std::move(e));
  }
  return tree;
}

bool IsArchiveName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::pair<std::string, std::string>> ParseArchivePath(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos || colon + 1 >= text.size() || text[colon + 1] != '/') {
    return std::nullopt;
  }
  std::string name = text.substr(0, colon);
  if (!IsArchiveName(name)) return std::nullopt;
  return std::make_pair(std::move(name), text.substr(colon + 1));
}

Bytes EncodeSnapshot(const Snapshot& s) {
  v1::SnapshotProto msg;
  msg.set_time_ns(s.time_ns);
  msg.set_owner(s.owner);
  msg.set_hostname(ToValidUtf8(s.hostname));
  for (const std::string& p : s.paths) msg.add_paths(p);
  for (const std::string& t : s.tags) msg.add_tags(ToValidUtf8(t));
  msg.set_root(IdString(s.root));
  if (s.parent) msg.set_parent(IdString(*s.parent));
  msg.set_copies(s.copies);
  msg.set_ec_k(s.ec_k);
  msg.set_ec_m(s.ec_m);
  msg.set_archive(ToValidUtf8(s.archive));
  v1::SnapshotStatsProto* st = msg.mutable_stats();
  st->set_files(s.stats.files);
  st->set_directories(s.stats.directories);
  st->set_bytes(s.stats.bytes);
  st->set_new_bytes(s.stats.new_bytes);
  st->set_sent_bytes(s.stats.sent_bytes);
  st->set_chunks(s.stats.chunks);
  st->set_new_chunks(s.stats.new_chunks);
  return SerializeVersioned(kSnapshotVersion, msg);
}

absl::StatusOr<Snapshot> DecodeSnapshot(ByteSpan data) {
  v1::SnapshotProto msg;
  CAIRN_RETURN_IF_ERROR(ParseVersioned(data, kSnapshotVersion, "snapshot", msg));
  Snapshot s;
  s.time_ns = msg.time_ns();
  s.owner = msg.owner();
  s.hostname = msg.hostname();
  for (const std::string& p : msg.paths()) {
    if (p.empty() || p[0] != '/') return Corrupt("snapshot", "source path is not absolute");
    if (p.find('\0') != std::string::npos) return Corrupt("snapshot", "source path contains NUL");
    s.paths.push_back(p);
  }
  s.tags.assign(msg.tags().begin(), msg.tags().end());
  CAIRN_ASSIGN_OR_RETURN(s.root, IdFromProto(msg.root(), "snapshot"));
  if (!msg.parent().empty()) {
    CAIRN_ASSIGN_OR_RETURN(ChunkId parent, IdFromProto(msg.parent(), "snapshot"));
    s.parent = parent;
  }
  s.copies = msg.copies();
  s.ec_k = msg.ec_k();
  s.ec_m = msg.ec_m();
  if (s.ec_k > 16 || s.ec_m > 8 || (s.ec_k == 0) != (s.ec_m == 0)) {
    return Corrupt("snapshot", "erasure scheme out of range");
  }
  s.archive = msg.archive();
  if (!s.archive.empty() && !IsArchiveName(s.archive)) {
    return Corrupt("snapshot", "archive name is not [A-Za-z0-9._-]{1,64}");
  }
  const v1::SnapshotStatsProto& st = msg.stats();
  s.stats.files = st.files();
  s.stats.directories = st.directories();
  s.stats.bytes = st.bytes();
  s.stats.new_bytes = st.new_bytes();
  s.stats.sent_bytes = st.sent_bytes();
  s.stats.chunks = st.chunks();
  s.stats.new_chunks = st.new_chunks();
  return s;
}

}  // namespace cairn::format
