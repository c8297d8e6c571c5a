#include "cairn/net/convert.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::net {

void ToProto(const BlobKey& key, v1::BlobKey* out) {
  out->set_owner(key.owner);
  out->set_chunk_id(reinterpret_cast<const char*>(key.chunk.bytes.data()), key.chunk.bytes.size());
  out->set_shard(key.shard);
}

absl::StatusOr<BlobKey> FromProto(const v1::BlobKey& key) {
  if (key.chunk_id().size() != ChunkId::kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk id must be ", ChunkId::kSize, " bytes, got ", key.chunk_id().size()));
  }
  BlobKey out;
  out.owner = key.owner();
  std::memcpy(out.chunk.bytes.data(), key.chunk_id().data(), ChunkId::kSize);
  out.shard = key.shard();
  return out;
}

void ToProto(const cluster::PeerInfo& info, v1::PeerInfo* out) {
  out->set_peer_id(info.id);
  out->set_host_id(info.host_id);
  out->set_site(info.site);
  out->set_address(info.address);
  out->set_quota(info.quota);
  out->set_used(info.used);
  out->set_extra(info.extra);
  if (info.disk_room) out->set_disk_room(*info.disk_room);
  out->set_version(info.version);
  out->set_incarnation(info.incarnation);
  // Node ids travel as their 16 raw bytes; one that is not valid hex is left out.
  auto node = FromHex(info.node_id);
  if (node.ok() && node->size() == 16) {
    out->set_node_id(reinterpret_cast<const char*>(node->data()), node->size());
  }
  // Certificate fingerprints likewise as their 32 raw bytes.
  auto cert = FromHex(info.cert_fingerprint);
  if (cert.ok() && cert->size() == 32) {
    out->set_cert_sha256(reinterpret_cast<const char*>(cert->data()), cert->size());
  }
}

cluster::PeerInfo FromProto(const v1::PeerInfo& info) {
  cluster::PeerInfo out;
  out.id = info.peer_id();
  out.host_id = info.host_id();
  out.site = info.site();
  out.address = info.address();
  out.quota = info.quota();
  out.used = info.used();
  out.extra = info.extra();
  if (info.has_disk_room()) out.disk_room = info.disk_room();
  out.version = info.version();
  out.incarnation = info.incarnation();
  // Anything but 16 bytes is no node id (left empty: such a peer is not pinned or trusted).
  if (info.node_id().size() == 16) out.node_id = ToHex(AsBytes(info.node_id()));
  if (info.cert_sha256().size() == 32) out.cert_fingerprint = ToHex(AsBytes(info.cert_sha256()));
  return out;
}

std::string ChecksumToProto(const codec::Checksum& checksum) {
  return std::string(reinterpret_cast<const char*>(checksum.data()), checksum.size());
}

absl::StatusOr<codec::Checksum> ChecksumFromProto(std::string_view bytes) {
  codec::Checksum out{};
  if (bytes.size() != out.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checksum must be ", out.size(), " bytes, got ", bytes.size()));
  }
  std::memcpy(out.data(), bytes.data(), out.size());
  return out;
}

v1::PutBlobResponse::Outcome ToProto(ports::PutOutcome outcome) {
  return outcome == ports::PutOutcome::kAlreadyStored ? v1::PutBlobResponse::ALREADY_STORED
                                                      : v1::PutBlobResponse::STORED;
}

absl::StatusOr<ports::PutOutcome> FromProto(v1::PutBlobResponse::Outcome outcome) {
  switch (outcome) {
    case v1::PutBlobResponse::STORED:
      return ports::PutOutcome::kStored;
    case v1::PutBlobResponse::ALREADY_STORED:
      return ports::PutOutcome::kAlreadyStored;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown put outcome ", static_cast<int>(outcome)));
  }
}

namespace {

// At most `max` well-formed keys.
absl::StatusOr<std::vector<BlobKey>> KeysFrom(
    const google::protobuf::RepeatedPtrField<v1::BlobKey>& in, const char* rpc,
    size_t max = kMaxKeysPerCall) {
  if (static_cast<size_t>(in.size()) > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", max, " keys per ", rpc, ", got ", in.size()));
  }
  std::vector<BlobKey> keys;
  keys.reserve(in.size());
  for (int i = 0; i < in.size(); ++i) {
    auto key = FromProto(in.Get(i));
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("key ", i, ": ", key.status().message()));
    }
    keys.push_back(*key);
  }
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::HasBlobsRequest& request) {
  return KeysFrom(request.keys(), "HasBlobs");
}

absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::DeleteBlobsRequest& request) {
  return KeysFrom(request.keys(), "DeleteBlobs");
}

absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::GetBlobsRequest& request) {
  return KeysFrom(request.keys(), "GetBlobs", kMaxBlobsPerBatch);
}

absl::StatusOr<ListBlobsArgs> FromProto(const v1::ListBlobsRequest& request) {
  ListBlobsArgs args;
  args.owner = request.owner();
  if (request.limit() < 1 || request.limit() > kMaxKeysPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("ListBlobs limit must be 1..", kMaxKeysPerCall, ", got ", request.limit()));
  }
  args.limit = request.limit();
  if (request.has_after()) {
    auto after = FromProto(request.after());
    if (!after.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("after: ", after.status().message()));
    }
    args.after = *after;
  }
  return args;
}

void ToProto(const ListBlobsArgs& args, v1::ListBlobsRequest* out) {
  out->set_owner(args.owner);
  if (args.after) ToProto(*args.after, out->mutable_after());
  out->set_limit(static_cast<uint32_t>(std::min<size_t>(args.limit, UINT32_MAX)));
}

void ToProto(const ports::BlobRecord& record, v1::ListedBlob* out) {
  ToProto(record.key, out->mutable_key());
  out->set_size(record.size);
  out->set_checksum(ChecksumToProto(record.checksum));
  out->set_extra(record.extra);
  out->set_kind(record.kind);
}

absl::StatusOr<ports::BlobRecord> FromProto(const v1::ListedBlob& blob) {
  ports::BlobRecord record;
  CAIRN_ASSIGN_OR_RETURN(record.key, FromProto(blob.key()));
  CAIRN_ASSIGN_OR_RETURN(record.checksum, ChecksumFromProto(blob.checksum()));
  record.size = blob.size();
  record.extra = blob.extra();
  // An unknown value (a later kind) is "unknown" here: the owner reads the header instead.
  record.kind = blob.kind() <= 255 ? static_cast<uint8_t>(blob.kind()) : 0;
  return record;
}

absl::StatusOr<BlobListPage> PageFromProto(const v1::ListBlobsResponse& response, PeerId owner,
                                           size_t limit) {
  if (static_cast<size_t>(response.blobs_size()) > limit) {
    return absl::InvalidArgumentError(absl::StrCat("ListBlobs answer lists ", response.blobs_size(),
                                                   " blobs, asked for ", limit));
  }
  BlobListPage page;
  page.more = response.more();
  page.blobs.reserve(response.blobs_size());
  for (int i = 0; i < response.blobs_size(); ++i) {
    auto record = FromProto(response.blobs(i));
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ListBlobs answer, blob ", i, ": ", record.status().message()));
    }
    if (record->key.owner != owner) {
      return absl::InvalidArgumentError(
          absl::StrCat("ListBlobs answer for owner ", owner, " lists ", record->key.DebugString()));
    }
    page.blobs.push_back(*record);
  }
  return page;
}

void ToProto(std::span<const MovedBlob> moves, v1::BlobMovedRequest* out) {
  out->mutable_moves()->Reserve(static_cast<int>(moves.size()));
  for (const MovedBlob& move : moves) {
    v1::BlobMovedRequest::Move* m = out->add_moves();
    ToProto(move.key, m->mutable_key());
    m->set_to(move.to);
  }
}

absl::StatusOr<std::vector<MovedBlob>> MovesFromProto(const v1::BlobMovedRequest& request) {
  if (static_cast<size_t>(request.moves_size()) > kMaxKeysPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxKeysPerCall, " moves per BlobMoved, got ", request.moves_size()));
  }
  std::vector<MovedBlob> moves;
  moves.reserve(request.moves_size());
  for (int i = 0; i < request.moves_size(); ++i) {
    auto key = FromProto(request.moves(i).key());
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("move ", i, ": ", key.status().message()));
    }
    moves.push_back(MovedBlob{*key, request.moves(i).to()});
  }
  return moves;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; malformed escapes are kept as they are.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool IsWildcardHost(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::" ||
         host == "[0:0:0:0:0:0:0:0]";
}

}  // namespace

std::string HostFromGrpcPeer(std::string_view grpc_peer) {
  std::string_view rest;
  bool v6 = false;
  if (grpc_peer.substr(0, 5) == "ipv4:") {
    rest = grpc_peer.substr(5);
  } else if (grpc_peer.substr(0, 5) == "ipv6:") {
    rest = grpc_peer.substr(5);
    v6 = true;
  } else {
    return "";
  }
  std::string decoded = PercentDecode(rest);
  size_t colon = decoded.rfind(':');
  if (colon == std::string::npos || colon == 0) return "";
  std::string host = decoded.substr(0, colon);
  if (v6 && (host.front() != '[' || host.back() != ']')) return "";
  if (!v6 && host.find(':') != std::string::npos) return "";
  return host;
}

std::string FillWildcardHost(const std::string& address, const std::string& caller_host) {
  if (caller_host.empty()) return address;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return address;
  std::string_view host(address.data(), colon);
  std::string_view port(address.data() + colon + 1, address.size() - colon - 1);
  if (port.empty() || !IsWildcardHost(host)) return address;
  return caller_host + ":" + std::string(port);
}

}  // namespace cairn::net
